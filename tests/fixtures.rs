//! Every committed fixture, judged against its manifest.
//!
//! `fixtures/benign/` holds pickles written by real numpy, scikit-learn,
//! scipy, pandas and CPython (see fixtures/README.md): each must scan with no
//! warning or error, and every global the generator saw in it must be
//! reported as imported. `fixtures/hostile/` holds hand-written opcode streams
//! with harmless payloads: each must exit 1 and report the rules its manifest
//! names.

use std::path::Path;
use std::process::Command;

use pkinspect::policy::{Policy, Verdict};
use pkinspect::rules::Severity;
use pkinspect::scan::Scanner;

fn manifest(dir: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(Path::new("fixtures").join(dir).join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest is JSON")
}

/// The scan of `path`, and what keeps it from being clean (a warning or
/// error finding, or a read error), if anything.
fn scan_clean(path: &Path, policy: &Policy) -> (pkinspect::scan::FileReport, Option<String>) {
    let r = Scanner::new(policy).scan_file(path);
    let bad: Vec<String> = r
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| format!("{} @{} {}", f.rule.code(), f.offset, f.message))
        .collect();
    let why = (!bad.is_empty() || r.error.is_some()).then(|| format!("{bad:?} {:?}", r.error));
    (r, why)
}

/// Files the real libraries wrote that use allowlisted names the way real
/// files do (`scripts/fixtures_real.py`: memmaps, random generators, pandas
/// indexes, masked arrays in search CVs, scipy distributions, enums,
/// numpy's own test data, ...): each scans clean, the same names in hostile
/// uses being `fixtures/gadgets/` (tests/gadgets.rs).
#[test]
fn real_files_using_allowlisted_names_scan_clean() {
    let policy = Policy::builtin();
    let entries = manifest("real");
    assert!(entries.len() >= 500, "expected the full real-file set");
    let failures: Vec<String> = entries
        .iter()
        .filter_map(|e| {
            let file = e["file"].as_str().expect("file");
            scan_clean(&Path::new("fixtures/real").join(file), &policy).1.map(|why| format!("{file}: {why}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn benign_fixtures_scan_clean() {
    let policy = Policy::builtin();
    let entries = manifest("benign");
    assert!(entries.len() >= 60, "expected the full benign set");
    let mut failures = Vec::new();
    for e in &entries {
        let file = e["file"].as_str().expect("file");
        let (r, loud) = scan_clean(&Path::new("fixtures/benign").join(file), &policy);
        failures.extend(loud.map(|why| format!("{file}: {why}")));
        // Every global the generator listed (statically, from the real file) is seen, and safe.
        if let Some(globals) = e["globals"].as_array() {
            for g in globals {
                let g = g.as_str().expect("global name");
                // The manifest lists names as written; pkinspect reports them
                // after CPython's Python 2 mapping (__builtin__ -> builtins).
                let (m, n) = g.rsplit_once('.').expect("module.name");
                let (m, n) = pkinspect::vm::map_py2_name(m, n).unwrap_or((m.to_string(), n.to_string()));
                let want = format!("{m}.{n}");
                let found = r.globals.iter().find(|u| format!("{}.{}", u.module, u.name) == want);
                match found {
                    // Conditional globals (getattr) are judged per call; the file has no warning.
                    Some(u) if matches!(u.verdict, Verdict::Safe | Verdict::Conditional) => {}
                    Some(u) => failures.push(format!("{file}: {g} judged {:?}", u.verdict)),
                    None => failures.push(format!("{file}: {g} not reported")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hostile_fixtures_exit_1_with_their_rules() {
    let entries = manifest("hostile");
    assert!(entries.len() >= 40);
    let mut failures = Vec::new();
    for e in &entries {
        let file = e["file"].as_str().expect("file");
        let path = format!("fixtures/hostile/{file}");
        let (code, out) = pkinspect(&["scan", "--format", "json", &path]);
        let v: serde_json::Value = match serde_json::from_str(&out) {
            Ok(v) => v,
            Err(err) => {
                failures.push(format!("{file}: output is not JSON ({err})"));
                continue;
            }
        };
        let got: Vec<&str> =
            v["files"][0]["findings"].as_array().into_iter().flatten().filter_map(|f| f["rule"].as_str()).collect();
        if code != 1 {
            failures.push(format!("{file}: exit {code}, expected 1"));
        }
        for want in e["expect_rules"].as_array().expect("expect_rules") {
            let want = want.as_str().expect("code");
            if !got.contains(&want) {
                failures.push(format!("{file}: missing {want}, got {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn pkinspect(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pkinspect")).args(args).output().expect("run pkinspect");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn exit_codes() {
    assert_eq!(pkinspect(&["scan", "fixtures/benign/sklearn_logreg_iris_p4.pkl"]).0, 0);
    assert_eq!(pkinspect(&["scan", "fixtures/hostile/os_system_global_p0.pkl"]).0, 1);
    // An unknown global fails at the default --fail-on warning, passes at error.
    assert_eq!(pkinspect(&["scan", "fixtures/hostile/terminal_escape_global_p2.pkl"]).0, 1);
    assert_eq!(pkinspect(&["scan", "--fail-on", "error", "fixtures/hostile/terminal_escape_global_p2.pkl"]).0, 0);
    assert_eq!(pkinspect(&["scan", "--fail-on", "never", "fixtures/hostile/os_system_global_p0.pkl"]).0, 0);
    // A file that cannot be read: 2, even next to a dangerous one.
    assert_eq!(pkinspect(&["scan", "fixtures/no-such-file.pkl"]).0, 2);
    assert_eq!(pkinspect(&["scan", "fixtures/no-such-file.pkl", "fixtures/hostile/os_system_global_p0.pkl"]).0, 2);
    assert_eq!(pkinspect(&["scan"]).0, 2);
}

#[test]
fn human_output_never_carries_control_characters() {
    let (code, out) = pkinspect(&["scan", "fixtures/hostile/terminal_escape_global_p2.pkl"]);
    assert_eq!(code, 1);
    assert!(!out.contains('\x1b'), "raw escape in output");
    assert!(out.contains("\\x1b"), "escape shown escaped: {out}");
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'));
}

#[test]
fn json_output_is_versioned_and_complete() {
    let (code, out) = pkinspect(&["scan", "--format", "json", "fixtures/hostile/os_system_global_p0.pkl"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["schema_version"], 1);
    let f = &v["files"][0];
    assert_eq!(f["findings"][1]["rule"], "PK102");
    assert_eq!(f["findings"][1]["slug"], "dangerous-call");
    assert_eq!(f["findings"][1]["severity"], "error");
    assert_eq!(f["findings"][1]["call"], "os.system('echo pkinspect-fixture')");
    assert_eq!(f["globals"][0]["verdict"], "dangerous");
    assert_eq!(v["summary"]["findings"]["error"], 2);
}

#[test]
fn folders_are_walked() {
    let (code, out) = pkinspect(&["scan", "--format", "json", "fixtures/benign"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert!(v["files"].as_array().map(|a| a.len()).unwrap_or(0) >= 60);
    assert_eq!(code, 0, "every benign fixture is clean");
}

#[test]
fn docs_rule_table_matches_registry() {
    let readme = std::fs::read_to_string("docs/rules.md").expect("docs/rules.md");
    for r in pkinspect::rules::Rule::ALL {
        let row = format!("| {} | {} | {} | {} |", r.code(), r.slug(), r.default_severity().as_str(), r.summary());
        assert!(readme.contains(&row), "docs/rules.md is missing or has a stale row: {row}");
    }
    let rows = readme.lines().filter(|l| l.starts_with("| PK")).count();
    assert_eq!(rows, pkinspect::rules::Rule::ALL.len(), "docs/rules.md lists a rule the registry does not have");
}

#[test]
fn joblib_payloads_are_where_joblib_maps_them() {
    use pkinspect::vm::{Analyzer, EventKind};
    let policy = Policy::builtin();
    let mut failures = Vec::new();
    for e in manifest("joblib") {
        let file = e["file"].as_str().expect("file");
        let path = Path::new("fixtures/joblib").join(file);
        let r = Scanner::new(&policy).scan_file(&path);
        if !r.findings.is_empty() {
            failures.push(format!("{file}: {:?}", r.findings.iter().map(|f| f.rule.code()).collect::<Vec<_>>()));
        }
        let data = std::fs::read(&path).expect("read");
        let a = Analyzer::new().run(&data);
        let found: Vec<(u64, u64)> = a
            .events
            .iter()
            .filter_map(|ev| match ev.kind {
                EventKind::ArrayPayload { offset, len, nested: None, .. } => Some((offset, len)),
                _ => None,
            })
            .collect();
        // joblib.load(mmap_mode='r') reported these (offset, nbytes); the
        // walker that collected them cannot see inside Cython objects, so
        // pkinspect may find more, never fewer.
        for want in e["memmap_payloads"].as_array().expect("memmap_payloads") {
            let want = (want[0].as_u64().expect("offset"), want[1].as_u64().expect("nbytes"));
            if !found.contains(&want) {
                failures.push(format!("{file}: payload {want:?} not found in {found:?}"));
            }
        }
        let nested = a.events.iter().filter(|ev| matches!(ev.kind, EventKind::ArrayPayload { nested: Some(_), .. }));
        if file.starts_with("joblib_object_array") && nested.count() == 0 {
            failures.push(format!("{file}: the nested object-array pickle was not followed"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
