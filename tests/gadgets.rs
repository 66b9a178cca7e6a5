//! Policy by use (docs/uses.md), against files built to abuse it.
//!
//! `fixtures/gadgets/` holds hostile files written opcode by opcode
//! (`scripts/fixtures_gadgets.py`) that use only names on pkinspect's own
//! allowlist to overwrite files, compile code or import modules when
//! loaded: directly, through `copyreg._reconstructor`, `NEWOBJ`,
//! `functools.partial` and every launderer, in pickle, joblib (raw and
//! compressed) and PyTorch zip form. Each must exit 1 with the rules its
//! manifest names. The same names used the way real files use them scan
//! clean (`fixtures/real/`, tests/fixtures.rs).

use std::path::Path;
use std::process::Command;

fn manifest(dir: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(Path::new("fixtures").join(dir).join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest is JSON")
}

fn scan_json(path: &str) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(["scan", "--format", "json", "--no-config", path])
        .output()
        .expect("run pkinspect");
    (out.status.code().unwrap_or(-1), serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null))
}

#[test]
fn every_gadget_is_flagged_with_its_rules() {
    let entries = manifest("gadgets");
    assert!(entries.len() >= 100, "expected the full gadget set");
    let mut failures = Vec::new();
    for e in &entries {
        let file = e["file"].as_str().expect("file");
        let (code, v) = scan_json(&format!("fixtures/gadgets/{file}"));
        let got: Vec<&str> =
            v["files"][0]["findings"].as_array().into_iter().flatten().filter_map(|f| f["rule"].as_str()).collect();
        if code != 1 {
            failures.push(format!("{file}: exit {code}, expected 1 ({got:?})"));
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

#[test]
fn every_encoding_and_route_is_covered() {
    let entries = manifest("gadgets");
    let has = |key: &str, value: &str| entries.iter().any(|e| e[key].as_str() == Some(value));
    for enc in ["pickle", "joblib-raw", "joblib-zlib", "joblib-zf", "gzip", "torch-zip", "estimator-state"] {
        assert!(entries.iter().any(|e| e["encoding"].as_str().is_some_and(|s| s.starts_with(enc))), "{enc}");
    }
    for route in ["reduce", "reconstructor", "newobj", "newobj_ex", "partial", "partial-build", "invoke"] {
        assert!(has("route", route), "{route}");
    }
}
