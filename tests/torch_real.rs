//! Real PyTorch files (`fixtures/torch-real/`, written by torch 2.11.0 with
//! `make_corpus.py`; see the README there) through the CLI, judged against
//! what torch itself did with them (`manifest.json`: `weights_only` is how
//! `torch.load(path, weights_only=True)` took the file).
//!
//! - A file torch loads weights-only scans with exit 0 and no warning or
//!   error, once the globals torch's weights-only unpickler admits are
//!   allowed (`scripts/data/torch_weights_only.txt`).
//! - A hostile file reports its dangerous call (PK101 and PK102 errors).
//! - `torchscript.pt` is recognised as a TorchScript archive.
//! - `full_module_sequential.pt` (a pickled `nn.Module`) is not clean.
//! - `dtypes_legacy.pt`, which torch writes but cannot read back, is
//!   reported for exactly that (PK304) and nothing else.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

const DIR: &str = "fixtures/torch-real";

/// The suffix `skipped_members` gives a TorchScript archive's source records
/// (`container::torch::TORCHSCRIPT_SOURCE_MARK`).
const TORCHSCRIPT_SOURCE_MARK: &str = " (TorchScript source)";

fn manifest() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(format!("{DIR}/manifest.json")).expect("manifest");
    let v: Value = serde_json::from_str(&text).expect("manifest is JSON");
    v["files"].as_object().expect("files").clone()
}

/// No `--allow`: the globals torch's weights-only unpickler admits are on
/// the built-in allowlist (checked by `every_weights_only_global_is_allowlisted`).
fn weights_only_allow() -> Vec<String> {
    Vec::new()
}

#[test]
fn every_weights_only_global_is_allowlisted() {
    let text = std::fs::read_to_string(format!("{DIR}/torch_allowed_globals.json")).expect("globals");
    let names: Vec<String> = serde_json::from_str(&text).expect("a JSON list");
    assert_eq!(names.len(), 144);
    let policy = pkinspect::policy::Policy::builtin();
    let refused: Vec<&String> = names
        .iter()
        .filter(|g| {
            let (m, n) = g.rsplit_once('.').expect("module.name");
            policy.judge(m, n).verdict != pkinspect::policy::Verdict::Safe
        })
        .collect();
    assert!(refused.is_empty(), "not allowlisted: {refused:?}");
}

/// Exit code and the JSON report of `pkinspect scan --format json --no-config ARGS FILE`.
fn scan(args: &[String], file: &str) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(["scan", "--format", "json", "--no-config"])
        .args(args)
        .arg(format!("{DIR}/{file}"))
        .output()
        .expect("run pkinspect");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v["files"][0].clone())
}

/// `(rule, severity, global, message)` of every finding above `info`.
fn loud(file: &Value) -> Vec<(String, String, String, String)> {
    file["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (s("rule"), s("severity"), s("global"), s("message"))
        })
        .collect()
}

#[test]
fn every_file_is_in_the_manifest() {
    let listed: BTreeSet<String> = manifest().keys().cloned().collect();
    let here: BTreeSet<String> = std::fs::read_dir(DIR)
        .expect("fixtures/torch-real")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".json") && !n.ends_with(".md") && !n.ends_with(".py"))
        .collect();
    assert_eq!(here, listed);
    for (file, e) in manifest() {
        let size = std::fs::metadata(format!("{DIR}/{file}")).expect("fixture").len();
        assert_eq!(Some(size), e["size"].as_u64(), "{file} is the file torch wrote");
    }
}

#[test]
fn files_torch_loads_weights_only_scan_clean() {
    let allow = weights_only_allow();
    let mut failures = Vec::new();
    let mut n = 0;
    for (file, e) in manifest() {
        if e["weights_only"] != "loads" {
            continue;
        }
        n += 1;
        let (code, v) = scan(&allow, &file);
        let loud = loud(&v);
        if code != 0 || !loud.is_empty() || v["error"] != Value::Null {
            failures.push(format!("{file}: exit {code}, {loud:?}, error {}", v["error"]));
        }
    }
    assert_eq!(n, 9, "the files torch loads weights-only");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn hostile_files_report_their_dangerous_call() {
    let allow = weights_only_allow();
    let mut n = 0;
    for (file, e) in manifest() {
        if e["hostile"] != true {
            continue;
        }
        n += 1;
        assert!(e["weights_only"].as_str().is_some_and(|w| w.starts_with("refused")), "{file}");
        let (code, v) = scan(&allow, &file);
        let loud = loud(&v);
        assert_eq!(code, 1, "{file}: {loud:?}");
        let dangerous: BTreeSet<&str> = loud
            .iter()
            .filter(|f| f.1 == "error" && matches!(f.0.as_str(), "PK101" | "PK102"))
            .map(|f| f.2.as_str())
            .collect();
        // The global torch's own check names (posix.system, builtins.eval), or, for the
        // legacy file it cannot check, the one make_corpus.py wrote.
        let want: Vec<String> = match e["unsafe_globals"].as_array() {
            Some(g) => g.iter().filter_map(|s| s.as_str().map(String::from)).collect(),
            None => vec!["posix.system".into()],
        };
        for g in &want {
            assert!(dangerous.contains(g.as_str()), "{file}: {g} in {loud:?}");
        }
        for rule in ["PK101", "PK102"] {
            assert!(loud.iter().any(|f| f.0 == rule && f.1 == "error"), "{file}: {rule} in {loud:?}");
        }
        // Nothing about the checkpoint's layout: torch.save wrote it.
        assert!(!loud.iter().any(|f| f.0.starts_with("PK3")), "{file}: {loud:?}");
    }
    assert_eq!(n, 3);
}

#[test]
fn torchscript_archive_is_recognised() {
    let (_, v) = scan(&weights_only_allow(), "torchscript.pt");
    let loud = loud(&v);
    // Not a broken checkpoint: no layout finding (constants.pkl and the
    // .debug_pkl source maps are pickles torch.jit.load reads).
    assert!(!loud.iter().any(|f| f.0.starts_with("PK3") || f.0.starts_with("PK2")), "{loud:?}");
    // The flag: every TorchScript source record is marked in skipped_members.
    let skipped: Vec<&str> =
        v["skipped_members"].as_array().expect("skipped").iter().filter_map(Value::as_str).collect();
    let sources: Vec<&str> = skipped.iter().filter_map(|m| m.strip_suffix(TORCHSCRIPT_SOURCE_MARK)).collect();
    assert_eq!(
        sources,
        ["container", "linear", "activation"]
            .map(|m| format!("torchscript/code/__torch__/torch/nn/modules/{m}.py"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "{skipped:?}"
    );
    // Its tensors are raw storage records, not pickles.
    assert!(skipped.contains(&"torchscript/data/0") && skipped.contains(&"torchscript/data/1"), "{skipped:?}");
    // Every pickle torch.jit.load reads is scanned.
    let mut members: Vec<&str> =
        v["pickles"].as_array().expect("pickles").iter().filter_map(|p| p["member"].as_str()).collect();
    members.sort();
    assert_eq!(
        members,
        [
            "torchscript/code/__torch__/torch/nn/modules/activation.py.debug_pkl",
            "torchscript/code/__torch__/torch/nn/modules/container.py.debug_pkl",
            "torchscript/code/__torch__/torch/nn/modules/linear.py.debug_pkl",
            "torchscript/constants.pkl",
            "torchscript/data.pkl",
        ]
    );
    // A checkpoint is not marked.
    let (_, v) = scan(&weights_only_allow(), "dtypes.pt");
    let skipped = v["skipped_members"].as_array().expect("skipped");
    assert!(!skipped.iter().filter_map(Value::as_str).any(|m| m.ends_with(TORCHSCRIPT_SOURCE_MARK)));
}

#[test]
fn pickled_module_is_not_clean() {
    let (code, v) = scan(&weights_only_allow(), "full_module_sequential.pt");
    let loud = loud(&v);
    assert_eq!(code, 1, "{loud:?}");
    // The nn.Module classes torch refuses are what is reported.
    let e = &manifest()["full_module_sequential.pt"];
    for g in e["unsafe_globals"].as_array().expect("unsafe_globals").iter().filter_map(Value::as_str) {
        assert!(loud.iter().any(|f| f.2 == g), "{g} in {loud:?}");
    }
    assert!(!loud.iter().any(|f| f.0.starts_with("PK3")), "{loud:?}");
}

#[test]
fn legacy_file_with_new_dtypes_is_reported_as_unreadable() {
    // torch.save wrote float8/uint16/32/64 tensors with UntypedStorage persistent
    // ids into the legacy format, which torch.load then refuses.
    let e = &manifest()["dtypes_legacy.pt"];
    assert!(e["weights_only"].as_str().is_some_and(|w| w.contains("UntypedStorage' has no attribute 'dtype'")));
    let (code, v) = scan(&weights_only_allow(), "dtypes_legacy.pt");
    let loud = loud(&v);
    assert_eq!(code, 1);
    assert_eq!(loud.len(), 5, "one per UntypedStorage tensor: {loud:?}");
    for f in &loud {
        assert_eq!((f.0.as_str(), f.1.as_str()), ("PK304", "warning"));
        assert!(f.3.contains("torch.storage.UntypedStorage in a legacy checkpoint"), "{}", f.3);
    }
    // Nothing worse: the storage section is followed to its end.
    let mut args = weights_only_allow();
    args.extend(["--fail-on".into(), "error".into()]);
    assert_eq!(scan(&args, "dtypes_legacy.pt").0, 0);
}
