//! `scan --format sarif` checked against the official SARIF 2.1.0 schema
//! (`tests/data/sarif-schema-2.1.0.json`; its origin is in
//! `tests/data/README.md`), plus the structure the schema cannot check:
//! rules generated from the registry, levels, indexes and URIs.

use std::path::Path;
use std::process::Command;

use pkinspect::rules::{Rule, Severity};
use serde_json::Value;

/// Runs `pkinspect scan --format sarif ARGS...` in `dir`; returns the exit
/// code, the parsed log and stderr.
fn sarif_in(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .current_dir(dir)
        .args(["scan", "--format", "sarif"])
        .args(args)
        .output()
        .expect("run pkinspect");
    let text = String::from_utf8(out.stdout).expect("SARIF is UTF-8");
    let log = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
    (out.status.code().unwrap_or(-1), log, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn sarif(args: &[&str]) -> (i32, Value, String) {
    sarif_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sarif-schema-2.1.0.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("schema file")).expect("schema is JSON")
}

/// Validates `log` against the schema twice: under draft-04, which the
/// schema declares, and under draft-07 rules, whose format checks include
/// `uri-reference` (`artifactLocation.uri`). Both check formats.
fn assert_schema_valid(log: &Value) {
    let schema = schema();
    let draft4 = jsonschema::draft4::options().should_validate_formats(true).build(&schema).expect("schema compiles");
    let draft7 = jsonschema::draft7::options().should_validate_formats(true).build(&schema).expect("schema compiles");
    for (name, v) in [("draft-04", &draft4), ("draft-07", &draft7)] {
        let errors: Vec<String> = v.iter_errors(log).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "SARIF log is not valid ({name}):\n{}", errors.join("\n"));
    }
}

fn run(log: &Value) -> &Value {
    assert_eq!(log["version"], "2.1.0");
    let runs = log["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "one run per invocation");
    &runs[0]
}

fn results(log: &Value) -> &Vec<Value> {
    run(log)["results"].as_array().expect("results")
}

/// Checks every result against the driver's rules: the index points at the
/// rule with that id, and the level is a SARIF level.
fn assert_results_consistent(log: &Value) {
    let rules = run(log)["tool"]["driver"]["rules"].as_array().expect("rules");
    for r in results(log) {
        let i = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[i]["id"], r["ruleId"], "ruleIndex points at the rule: {r}");
        assert!(matches!(r["level"].as_str(), Some("error" | "warning" | "note")), "{r}");
        let region = &r["locations"][0]["physicalLocation"]["region"];
        assert!(region["byteOffset"].is_u64(), "{r}");
        assert_eq!(region["byteLength"], 1);
        assert!(r["partialFingerprints"]["pkinspect/v1"].is_string());
    }
}

#[test]
fn the_validator_rejects_an_invalid_log() {
    // Guards against a validator that accepts anything.
    let (_, mut log, _) = sarif(&["fixtures/hostile/os_system_global_p0.pkl"]);
    log["runs"][0]["results"][0]["level"] = "fatal".into();
    let schema = schema();
    let v = jsonschema::draft4::new(&schema).expect("schema compiles");
    assert!(!v.is_valid(&log));
    let mut log2 = Value::Object(Default::default());
    log2["runs"] = Value::Array(vec![]);
    assert!(!v.is_valid(&log2), "version is required");
    // Under draft-07 rules the `uri-reference` format is checked: an unescaped space fails.
    let (_, mut log3, _) = sarif(&["fixtures/hostile/os_system_global_p0.pkl"]);
    log3["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "a b.pkl".into();
    let v7 = jsonschema::draft7::options().should_validate_formats(true).build(&schema).expect("schema compiles");
    assert!(!v7.is_valid(&log3), "an unescaped URI is rejected");
}

#[test]
fn hostile_fixture() {
    let (code, log, _) = sarif(&["fixtures/hostile/os_system_global_p0.pkl"]);
    assert_eq!(code, 1, "exit status does not depend on the format");
    assert_schema_valid(&log);
    assert_results_consistent(&log);
    let rs = results(&log);
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0]["ruleId"], "PK101");
    assert_eq!(rs[0]["locations"][0]["physicalLocation"]["region"]["byteOffset"], 0);
    assert_eq!(rs[1]["ruleId"], "PK102");
    assert_eq!(rs[1]["level"], "error");
    assert_eq!(rs[1]["locations"][0]["physicalLocation"]["region"]["byteOffset"], 39);
    assert_eq!(
        rs[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "fixtures/hostile/os_system_global_p0.pkl"
    );
    let msg = rs[1]["message"]["text"].as_str().expect("message");
    assert!(msg.starts_with("calls os.system: denylisted module os"), "{msg}");
    assert!(msg.contains("os.system('echo pkinspect-fixture')"), "the call is in the message: {msg}");
    assert_eq!(rs[1]["properties"]["call"], "os.system('echo pkinspect-fixture')");
    assert_eq!(run(&log)["invocations"][0]["executionSuccessful"], true);
}

#[test]
fn benign_fixture() {
    let (code, log, _) = sarif(&["fixtures/benign/sklearn_logreg_iris_p4.pkl"]);
    assert_eq!(code, 0);
    assert_schema_valid(&log);
    assert!(results(&log).iter().all(|r| r["level"] == "note"), "a benign file has no warning or error");
    let inv = &run(&log)["invocations"][0];
    assert_eq!(inv["executionSuccessful"], true);
    assert_eq!(inv["toolExecutionNotifications"].as_array().map(Vec::len), Some(0));
}

#[test]
fn mixed_run_with_an_unreadable_path() {
    let (code, log, _) = sarif(&[
        "fixtures/benign/sklearn_logreg_iris_p4.pkl",
        "fixtures/no-such-file.pkl",
        "fixtures/hostile/os_system_global_p0.pkl",
    ]);
    assert_eq!(code, 2, "an unreadable file is exit 2 in every format");
    assert_schema_valid(&log);
    assert_results_consistent(&log);
    assert_eq!(results(&log).len(), 2, "the readable files are still reported");
    let inv = &run(&log)["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    let notes = inv["toolExecutionNotifications"].as_array().expect("notifications");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["level"], "error");
    assert_eq!(notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "fixtures/no-such-file.pkl");
    assert!(notes[0]["message"]["text"].as_str().is_some_and(|t| t.contains("fixtures/no-such-file.pkl")));
}

#[test]
fn every_hostile_fixture_gives_a_valid_log() {
    let (code, log, _) = sarif(&["fixtures/hostile"]);
    assert_eq!(code, 1);
    assert_schema_valid(&log);
    assert_results_consistent(&log);
    assert!(results(&log).len() > 50, "the hostile set has many findings");
}

#[test]
fn rules_come_from_the_registry() {
    let (_, log, _) = sarif(&["fixtures/benign/sklearn_logreg_iris_p4.pkl"]);
    let driver = &run(&log)["tool"]["driver"];
    assert_eq!(driver["name"], "pkinspect");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    let rules = driver["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), Rule::ALL.len());
    for (d, r) in rules.iter().zip(Rule::ALL) {
        assert_eq!(d["id"], r.code());
        assert_eq!(d["name"], r.slug());
        assert_eq!(d["shortDescription"]["text"], r.summary());
        assert_eq!(d["fullDescription"]["text"], r.explanation());
        assert!(d["help"]["text"].as_str().is_some_and(|t| t.contains(r.explanation())));
        let level = match r.default_severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "note",
        };
        assert_eq!(d["defaultConfiguration"]["level"], level, "{}", r.code());
    }
}

#[test]
fn odd_file_names_are_escaped_uris() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sarif-odd-names");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let name = "odd name #1 50% ü.pkl";
    std::fs::copy("fixtures/hostile/os_system_global_p0.pkl", dir.join(name)).expect("copy fixture");

    // Relative, as given.
    let (_, log, _) = sarif_in(&dir, &[name]);
    assert_schema_valid(&log);
    let uri = &results(&log)[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
    assert_eq!(uri, "odd%20name%20%231%2050%25%20%C3%BC.pkl");

    // Absolute: a file:// URI.
    let abs = dir.join(name);
    let (_, log, _) = sarif(&[abs.to_str().expect("UTF-8 tmp path")]);
    assert_schema_valid(&log);
    let uri = results(&log)[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().expect("uri");
    assert!(uri.starts_with("file:///"), "{uri}");
    assert!(uri.ends_with("/odd%20name%20%231%2050%25%20%C3%BC.pkl"), "{uri}");
}
