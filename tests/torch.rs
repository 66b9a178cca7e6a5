//! PyTorch checkpoints (`fixtures/torch/`, written by
//! `scripts/fixtures_torch.py` without torch, FORMATS.md §4): every manifest
//! entry through the CLI, plus what the library reports about their layout.
//!
//! Benign entries must exit 0 with no finding at or above `warning` (with
//! the `--allow` entries their manifest names, for classes that are not on
//! the built-in allowlist; without them, those classes are the only
//! warnings). Hostile entries must exit 1 and report their `expect_rules`,
//! and none of their `not_rules` (noise a reader that misses the layout
//! would make).

use std::path::Path;
use std::process::Command;

use pkinspect::policy::Policy;
use pkinspect::scan::Scanner;

fn manifest() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string("fixtures/torch/manifest.json").expect("manifest");
    serde_json::from_str(&text).expect("manifest is JSON")
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
}

/// Exit code and the JSON report of `pkinspect scan --format json ARGS`.
fn scan(args: &[String]) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(["scan", "--format", "json"])
        .args(args)
        .output()
        .expect("run pkinspect");
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v)
}

/// `(rule, severity, global)` of every finding.
fn findings(v: &serde_json::Value) -> Vec<(String, String, String)> {
    v["files"][0]["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (s("rule"), s("severity"), s("global"))
        })
        .collect()
}

#[test]
fn every_torch_fixture_scans_as_its_manifest_says() {
    let entries = manifest();
    assert!(entries.len() >= 14, "the full torch set");
    let mut failures = Vec::new();
    for e in &entries {
        let file = e["file"].as_str().expect("file");
        let path = format!("fixtures/torch/{file}");
        let allow = strings(&e["allow"]);
        let mut args: Vec<String> = allow.iter().flat_map(|a| ["--allow".to_string(), a.clone()]).collect();
        args.push(path.clone());
        let (code, v) = scan(&args);
        let got = findings(&v);
        let loud: Vec<&(String, String, String)> = got.iter().filter(|f| f.1 != "info").collect();
        match e["kind"].as_str() {
            Some("benign") => {
                if code != 0 || !loud.is_empty() {
                    failures.push(format!("{file}: exit {code}, findings {loud:?}"));
                }
                if !allow.is_empty() {
                    // Without the allow entries, the classes they name are the only warnings.
                    let (code, v) = scan(std::slice::from_ref(&path));
                    let got = findings(&v);
                    let unexpected: Vec<_> = got
                        .iter()
                        .filter(|f| f.1 != "info")
                        .filter(|f| !(matches!(f.0.as_str(), "PK103" | "PK104" | "PK115") && allow.contains(&f.2)))
                        .collect();
                    if code != 1 || !unexpected.is_empty() {
                        failures.push(format!("{file} without --allow: exit {code}, unexpected {unexpected:?}"));
                    }
                }
            }
            Some("hostile") => {
                if code != 1 {
                    failures.push(format!("{file}: exit {code}, expected 1"));
                }
                for want in strings(&e["expect_rules"]) {
                    if !got.iter().any(|f| f.0 == want) {
                        failures.push(format!("{file}: missing {want}, got {got:?}"));
                    }
                }
                for unwanted in strings(&e["not_rules"]) {
                    if got.iter().any(|f| f.0 == unwanted) {
                        failures.push(format!("{file}: reports {unwanted}, got {got:?}"));
                    }
                }
            }
            other => failures.push(format!("{file}: unknown kind {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn zip_checkpoint_storages_are_raw_records() {
    let r = Scanner::new(&Policy::builtin()).scan_file(Path::new("fixtures/torch/zip_state_dict.pt"));
    // Only data.pkl is a pickle; data/1 starts with 'K' and data/3 with a zlib header.
    assert_eq!(r.pickles.len(), 1, "{:?}", r.pickles);
    assert_eq!(r.pickles[0].member.as_deref(), Some("zip_state_dict/data.pkl"));
    for k in 0..5 {
        let name = format!("zip_state_dict/data/{k}");
        assert!(r.skipped_members.contains(&name), "{name} not skipped: {:?}", r.skipped_members);
    }
    // Six persistent ids, each an info finding, nothing louder.
    let infos: Vec<_> = r.findings.iter().map(|f| f.rule.code()).collect();
    assert_eq!(infos, vec!["PK110"; 6]);
}

#[test]
fn legacy_checkpoint_is_five_pickles_and_its_storages() {
    let r = Scanner::new(&Policy::builtin()).scan_file(Path::new("fixtures/torch/legacy_state_dict.pt"));
    assert_eq!(r.pickles.len(), 5, "{:?}", r.pickles);
    assert!(r.pickles.iter().all(|p| p.protocol == 2));
    // The storage key list ends where the raw storages start; nothing after them is read as a pickle.
    let size = std::fs::metadata("fixtures/torch/legacy_state_dict.pt").expect("size").len();
    let storages = (8 + 6 * 4) + (8 + 3 * 8);
    assert_eq!(r.pickles[4].end, size - storages);
    assert!(r.findings.iter().all(|f| f.rule.code() == "PK110"), "{:?}", r.findings);
}

#[test]
fn legacy_hidden_pickle_is_scanned_at_its_offset() {
    let r = Scanner::new(&Policy::builtin()).scan_file(Path::new("fixtures/torch/legacy_hidden_sixth_pickle.pt"));
    let clean = std::fs::metadata("fixtures/torch/legacy_state_dict.pt").expect("size").len();
    let hidden = r.findings.iter().find(|f| f.rule.code() == "PK208").expect("PK208");
    assert_eq!(hidden.offset, clean);
    let call = r.findings.iter().find(|f| f.rule.code() == "PK102").expect("PK102");
    assert!(call.offset > clean);
    assert_eq!(call.call.as_deref(), Some("os.system('echo pkinspect-fixture')"));
}

#[test]
fn tar_checkpoint_header_pickles_are_scanned() {
    let r = Scanner::new(&Policy::builtin()).scan_file(Path::new("fixtures/torch/tar_storages_os_system.tar"));
    let call = r.findings.iter().find(|f| f.rule.code() == "PK102").expect("PK102");
    assert_eq!(call.member.as_deref(), Some("storages"));
    // sys_info, pickle; tensors: count + 2 headers; storages: count + 2 headers + views.
    assert_eq!(r.pickles.len(), 2 + 3 + 4, "{:?}", r.pickles);
}

#[test]
fn torch_findings_name_the_member() {
    let r = Scanner::new(&Policy::builtin()).scan_file(Path::new("fixtures/torch/zip_numel_exceeds_record.pt"));
    let f = r.findings.iter().find(|f| f.rule.code() == "PK304").expect("PK304");
    assert_eq!(f.member.as_deref(), Some("zip_numel_exceeds_record/data.pkl"));
    assert!(f.message.contains("4000 bytes"), "{}", f.message);
    let r = Scanner::new(&Policy::builtin()).scan_file(Path::new("fixtures/torch/legacy_module_source.pt"));
    let f = r.findings.iter().find(|f| f.rule.code() == "PK304").expect("PK304");
    assert!(f.message.contains("torch.nn.modules.linear.Linear"), "{}", f.message);
    assert!(f.message.contains("does not run the source"), "{}", f.message);
}
