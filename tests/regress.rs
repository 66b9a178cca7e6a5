//! Regression fixtures found by the differential oracle (`scripts/differential.py`).
//!
//! Each entry of `fixtures/regress/manifest.json` holds what CPython's own
//! unpickler did with the file (recorded by `scripts/oracle.py` with stub
//! globals, per read mode). pkinspect's trace must contain those imports and
//! calls in order; where the read modes disagree, pkinspect must flag the
//! file with PK206. An entry with `known_failing` set is a pkinspect bug not
//! fixed yet: the test then requires the check to *fail*, so that a fix is
//! noticed and the flag cleared. No Python is needed.

use std::path::Path;

use pkinspect::policy::Policy;
use pkinspect::view::trace::{rule_codes, Tracer};
use serde_json::Value;

/// The fields both sides produce for each compared record kind.
fn key(r: &Value) -> Option<String> {
    let op = r["op"].as_str()?;
    let fields: &[&str] = match op {
        "import" => &["module", "name"],
        "call" => &["kind", "callable", "args"],
        "build" => &["target"],
        "persid" => &["pid"],
        "buffer" => &[],
        _ => return None,
    };
    let mut k = format!("{op}|{}", r["pickle"].as_u64().unwrap_or(0));
    for f in fields {
        k.push('|');
        k.push_str(&r[*f].to_string());
    }
    Some(k)
}

/// The first expected record not found, in order, among pkinspect's.
fn first_missing(expected: &[Value], actual: &[String]) -> Option<String> {
    let mut j = 0;
    for e in expected {
        let k = key(e)?;
        match actual[j..].iter().position(|a| *a == k) {
            Some(at) => j += at + 1,
            None => return Some(k),
        }
    }
    None
}

/// Why pkinspect disagrees with CPython on this entry, or `None` when it agrees.
fn disagreement(entry: &Value, root: &Path, policy: &Policy) -> Option<String> {
    let file = entry["file"].as_str().expect("file");
    let data = std::fs::read(root.join(file)).expect("read fixture");
    let a = pkinspect::vm::Analyzer::new().run(&data);
    let actual: Vec<String> = Tracer::new(&a).records().iter().filter_map(key).collect();
    let rules = rule_codes(&a, policy);
    let modes_differ = entry["modes_differ"].as_bool().unwrap_or(false);
    if modes_differ && !rules.contains(&"PK206") {
        return Some(format!("read modes disagree but pkinspect does not flag PK206 (rules {rules:?})"));
    }
    let expect = entry["expect"].as_object().expect("expect");
    for (mode, events) in expect {
        if modes_differ && mode != "loads" {
            continue;
        }
        let events = events.as_array().expect("events");
        if let Some(k) = first_missing(events, &actual) {
            return Some(format!("{mode}: CPython's {k} is not in pkinspect's trace"));
        }
    }
    None
}

#[test]
fn regression_fixtures_match_cpython() {
    let root = Path::new("fixtures/regress");
    let text = std::fs::read_to_string(root.join("manifest.json")).expect("manifest");
    let manifest: Vec<Value> = serde_json::from_str(&text).expect("manifest json");
    assert!(!manifest.is_empty());
    let policy = Policy::builtin();
    let mut failures = Vec::new();
    for entry in &manifest {
        let file = entry["file"].as_str().unwrap_or("?");
        let found = disagreement(entry, root, &policy);
        match (&entry["known_failing"], found) {
            (Value::Null, None) => {}
            (Value::Null, Some(why)) => failures.push(format!("{file}: {why}")),
            (_, Some(_)) => {}
            (_, None) => failures.push(format!(
                "{file}: now agrees with CPython: set \"known_failing\" to null in fixtures/regress/manifest.json \
                 and remove its entry from scripts/differential_allowlist.json"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_regression_fixture_is_in_the_manifest() {
    let root = Path::new("fixtures/regress");
    let text = std::fs::read_to_string(root.join("manifest.json")).expect("manifest");
    let manifest: Vec<Value> = serde_json::from_str(&text).expect("manifest json");
    for e in std::fs::read_dir(root).expect("dir") {
        let name = e.expect("entry").file_name().to_string_lossy().to_string();
        if name.ends_with(".pkl") {
            assert!(manifest.iter().any(|m| m["file"] == name.as_str()), "{name} has no manifest entry");
        }
    }
}

#[test]
fn trace_command_prints_one_json_record_per_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(["trace", "fixtures/hostile/os_system_global_p0.pkl", "fixtures/regress/frame_past_stop_p4.pkl"])
        .output()
        .expect("run pkinspect trace");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let recs: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(recs.iter().filter(|r| r["op"] == "file").count(), 2);
    assert_eq!(recs.iter().filter(|r| r["op"] == "summary").count(), 2);
    let calls: Vec<&Value> = recs.iter().filter(|r| r["op"] == "call").collect();
    assert_eq!(calls[0]["callable"], "os.system");
    assert_eq!(calls[0]["kind"], "call");
    assert_eq!(calls[0]["args"], serde_json::json!(["str:echo pkinspect-fixture"]));
}
