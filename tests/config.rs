//! Policy files, `--allow`/`--deny` and `scan --hook`, through the binary.
//!
//! Every test works in its own directory under Cargo's target tmpdir and
//! runs pkinspect from there, so that policy files are found by walking up
//! exactly as they would be in a user's project.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A pickle that imports and instantiates `mycompany.models.Thing`
/// (GLOBAL, NEWOBJ, then BUILD with a small state dict), protocol 2.
const THING: &[u8] = b"\x80\x02cmycompany.models\nThing\n)\x81}X\x01\x00\x00\x00aK\x01sb.";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("config-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch dir");
    dir
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, bytes).expect("write");
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs pkinspect in `cwd`.
fn run(cwd: &Path, args: &[&str]) -> Run {
    let out =
        Command::new(env!("CARGO_BIN_EXE_pkinspect")).args(args).current_dir(cwd).output().expect("run pkinspect");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn fixture(rel: &str) -> String {
    root().join("fixtures").join(rel).display().to_string()
}

#[test]
fn malformed_toml_is_exit_2_with_file_and_line() {
    let dir = scratch("malformed");
    write(&dir.join("pkinspect.toml"), "# policy\nallow = [\"mycompany.models.Thing\"\n\n[rules]\n");
    write(&dir.join("m.pkl"), THING);
    let r = run(&dir, &["scan", "m.pkl"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // The array is found unclosed where the next table starts.
    assert!(r.stderr.contains("pkinspect.toml:4:1: "), "{}", r.stderr);
    // A bad value type is located at the value.
    write(&dir.join("pkinspect.toml"), "\n\nallow = \"mycompany.models.Thing\"\n");
    let r = run(&dir, &["scan", "m.pkl"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("pkinspect.toml:3:9: invalid type: string"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing is scanned: {}", r.stdout);
}

#[test]
fn unknown_keys_rules_and_levels_are_errors() {
    let dir = scratch("unknown");
    write(&dir.join("m.pkl"), THING);
    let cases = [
        ("allow = []\nallwo = [\"a.b\"]\n", "pkinspect.toml:2:1: unknown field `allwo`"),
        ("[rules]\nPK103 = \"error\"\nPK999 = \"error\"\n", "pkinspect.toml:3:1: unknown rule `PK999`"),
        ("[rules]\nPK103 = \"loud\"\n", "pkinspect.toml:2:9: invalid level `loud`"),
        ("[[ignore]]\npaths = [\"x/**\"]\nrules = [\"no-such-rule\"]\n", "pkinspect.toml:3:10: unknown rule"),
        (
            "allow = [\"os.*\"]\n",
            "pkinspect.toml:1:10: pattern `os.*` would allow globals on the built-in denylist: os",
        ),
        ("allow = [\"builtins.eval\"]\n", "pkinspect.toml:1:10: `builtins.eval` is on the built-in denylist"),
        ("allow = [\"mycompany.*.models\"]\n", "pkinspect.toml:1:10: invalid global `mycompany.*.models`"),
        (
            "deny = [\"mycompany.*\"]\nallow = [\"mycompany.models.Thing\"]\n",
            "pkinspect.toml:2:10: `mycompany.models.Thing` is allowed, but",
        ),
    ];
    for (text, want) in cases {
        write(&dir.join("pkinspect.toml"), text);
        let r = run(&dir, &["scan", "m.pkl"]);
        assert_eq!(r.code, 2, "{text}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{text}: want {want:?}, got {}", r.stderr);
    }
}

#[test]
fn allow_flag_makes_an_unknown_global_pass() {
    let dir = scratch("allow-flag");
    write(&dir.join("m.pkl"), THING);
    let r = run(&dir, &["scan", "--format", "json", "m.pkl"]);
    assert_eq!(r.code, 1, "unknown global fails by default");
    assert!(r.stdout.contains("PK103") && r.stdout.contains("PK104"), "{}", r.stdout);
    for allow in ["mycompany.models.Thing", "mycompany.models:Thing", "mycompany.*", "mycompany.models.*"] {
        let r = run(&dir, &["scan", "--allow", allow, "m.pkl"]);
        assert_eq!(r.code, 0, "--allow {allow}: {}{}", r.stdout, r.stderr);
    }
    // A split that is not the one in the file does not match.
    assert_eq!(run(&dir, &["scan", "--allow", "mycompany:models.Thing", "m.pkl"]).code, 1);
    // The reason names the flag.
    let r = run(&dir, &["scan", "--format", "json", "--allow", "mycompany.*", "m.pkl"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["files"][0]["globals"][0]["verdict"], "safe");
    assert_eq!(v["files"][0]["globals"][0]["reason"], "allowed by --allow (mycompany.*)");
    // A flag that would allow denied names is refused.
    let r = run(&dir, &["scan", "--allow", "subprocess.*", "m.pkl"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--allow: pattern `subprocess.*` would allow"), "{}", r.stderr);
    let r = run(&dir, &["scan", "--allow", "os.system", &fixture("hostile/os_system_global_p0.pkl")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("allow-denied"), "{}", r.stderr);
}

#[test]
fn allow_denied_is_explicit() {
    let dir = scratch("allow-denied");
    let hostile = fixture("hostile/os_system_global_p0.pkl");
    let r = run(&dir, &["scan", "--allow-denied", "os.system", &hostile]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = run(&dir, &["scan", "--allow-denied", "os.*", &hostile]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("takes exact names only"), "{}", r.stderr);
}

#[test]
fn deny_flag_makes_a_benign_numpy_pickle_fail() {
    let dir = scratch("deny-flag");
    let numpy = fixture("benign/numpy_float32_p4.pkl");
    assert_eq!(run(&dir, &["scan", &numpy]).code, 0);
    let r = run(&dir, &["scan", "--format", "json", "--deny", "numpy.dtype", &numpy]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    let findings = v["files"][0]["findings"].as_array().expect("findings");
    let dtype = findings.iter().find(|f| f["global"] == "numpy.dtype").expect("a finding on numpy.dtype");
    assert_eq!(dtype["rule"], "PK101");
    assert!(dtype["message"].as_str().unwrap_or("").contains("denied by --deny (numpy.dtype)"), "{dtype}");
    // A module pattern reaches everything in it.
    assert_eq!(run(&dir, &["scan", "--deny", "numpy.*", &numpy]).code, 1);
}

#[test]
fn policy_file_is_found_by_walking_up() {
    let dir = scratch("walk-up");
    let deep = dir.join("project/models/v1/parts");
    write(&deep.join("m.pkl"), THING);
    write(&dir.join("project/pkinspect.toml"), "allow = [\"mycompany.models.Thing\"]\n");
    let elsewhere = scratch("walk-up-cwd");
    let file = deep.join("m.pkl").display().to_string();
    // From an unrelated directory, with an absolute path.
    assert_eq!(run(&elsewhere, &["scan", &file]).code, 0);
    // From inside, with a relative path, and for a folder.
    assert_eq!(run(&deep, &["scan", "m.pkl"]).code, 0);
    assert_eq!(run(&dir, &["scan", "project"]).code, 0);
    // --no-config ignores it.
    assert_eq!(run(&elsewhere, &["scan", "--no-config", &file]).code, 1);
    // The nearest file wins: a pyproject.toml with [tool.pkinspect] closer to the file.
    write(
        &dir.join("project/models/pyproject.toml"),
        "[project]\nname = \"m\"\n\n[tool.pkinspect]\ndeny = [\"mycompany.*\"]\n",
    );
    let r = run(&elsewhere, &["scan", &file]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("denied by") && r.stdout.contains("pyproject.toml:5 (mycompany.*)"), "{}", r.stdout);
    // A pyproject.toml without the table does not count: the walk goes on.
    write(&dir.join("project/models/pyproject.toml"), "[project]\nname = \"m\"\n");
    assert_eq!(run(&elsewhere, &["scan", &file]).code, 0);
    // In one directory, pkinspect.toml wins over pyproject.toml.
    write(&dir.join("project/pyproject.toml"), "[tool.pkinspect]\ndeny = [\"mycompany.*\"]\n");
    assert_eq!(run(&elsewhere, &["scan", &file]).code, 0);
    // --config overrides discovery; a pyproject.toml without the table is an error there.
    let denying = dir.join("project/pyproject.toml").display().to_string();
    assert_eq!(run(&elsewhere, &["scan", "--config", &denying, &file]).code, 1);
    let empty = dir.join("project/models/pyproject.toml").display().to_string();
    let r = run(&elsewhere, &["scan", "--config", &empty, &file]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no [tool.pkinspect] table"), "{}", r.stderr);
    let r = run(&elsewhere, &["scan", "--config", "no-such.toml", &file]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no-such.toml: cannot read the policy file"), "{}", r.stderr);
}

#[test]
fn rule_levels_and_path_ignores() {
    let dir = scratch("levels");
    write(&dir.join("m.pkl"), THING);
    write(&dir.join("tests/data/m.pkl"), THING);
    write(
        &dir.join("pkinspect.toml"),
        "[rules]\nunknown-import = \"error\"\nPK104 = \"info\"\n\n[[ignore]]\npaths = [\"tests/data/**\"]\nrules = [\"PK103\"]\n",
    );
    let r = run(&dir, &["scan", "--format", "json", "m.pkl", "tests/data/m.pkl"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    let sev = |file: usize| -> Vec<(String, String)> {
        v["files"][file]["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| (f["rule"].as_str().unwrap_or("").to_string(), f["severity"].as_str().unwrap_or("").to_string()))
            .collect()
    };
    assert_eq!(sev(0), vec![("PK103".into(), "error".into()), ("PK104".into(), "info".into())]);
    assert_eq!(sev(1), vec![("PK104".into(), "info".into())]);
    assert_eq!(r.code, 1, "PK103 is an error in m.pkl");
    // Under tests/data the only finding left is info.
    assert_eq!(run(&dir, &["scan", "tests/data/m.pkl"]).code, 0);
    assert_eq!(run(&dir, &["scan", "--fail-on", "info", "tests/data/m.pkl"]).code, 1);
}

#[test]
fn hook_skips_what_is_not_a_pickle() {
    let dir = scratch("hook");
    // No files at all: exit 0 and say so.
    let r = run(&dir, &["scan", "--hook"]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("no files to scan"), "{}", r.stderr);
    write(&dir.join("logo.png"), b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR");
    write(&dir.join("README.md"), "# hello\n");
    write(&dir.join("weights.bin"), b"a\x01\x02\xff\xfe\x00\x10");
    let r = run(&dir, &["scan", "--hook", "logo.png", "README.md", "weights.bin"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("none of the 3 files given is a pickle"), "{}", r.stderr);
    assert!(r.stderr.contains("skipped weights.bin: does not decode as a pickle"), "{}", r.stderr);
    // Containers are scanned whatever their name: a hostile PyTorch checkpoint
    // and a broken zip named like a model both stop the commit.
    std::fs::copy(fixture("torch/zip_data_pkl_os_system.pt"), dir.join("ckpt")).expect("copy");
    let r = run(&dir, &["scan", "--hook", "README.md", "ckpt"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("PK102"), "{}", r.stdout);
    write(&dir.join("model.pt"), b"PK\x03\x04\x14\x00");
    assert_eq!(run(&dir, &["scan", "--hook", "model.pt"]).code, 1);
    // Without --hook the same files are scanned (and fail).
    assert_eq!(run(&dir, &["scan", "logo.png"]).code, 1);
    // A benign pickle among them passes; a protocol-0 hostile .pkl fails.
    let benign = fixture("benign/sklearn_logreg_iris_p4.pkl");
    let r = run(&dir, &["scan", "--hook", "logo.png", "README.md", &benign]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("1 file scanned"), "{}", r.stdout);
    std::fs::copy(fixture("hostile/os_system_global_p0.pkl"), dir.join("evil.pkl")).expect("copy");
    let r = run(&dir, &["scan", "--hook", "logo.png", "evil.pkl"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("PK102"), "{}", r.stdout);
    // A pickle under any name is scanned.
    std::fs::copy(fixture("hostile/stack_global_os_system_p4.pkl"), dir.join("innocent.txt")).expect("copy");
    assert_eq!(run(&dir, &["scan", "--hook", "innocent.txt"]).code, 1);
}

/// A policy file is picked up from the scanned repository itself, so its
/// globs must not be able to stall a scan: this one took the old
/// backtracking matcher 14 s on a 40-character name. Only the answer is
/// asserted; the time is not.
#[test]
fn a_pathological_ignore_glob_is_matched() {
    let dir = scratch("pathological-glob");
    write(&dir.join("pkinspect.toml"), "[[ignore]]\npaths = [\"*a*a*a*a*a*a*a*a*a*ab\"]\nrules = [\"*\"]\n");
    let evil = std::fs::read(fixture("hostile/os_system_global_p0.pkl")).expect("read fixture");
    let (no, yes) = ("a".repeat(40), format!("{}b", "a".repeat(39)));
    write(&dir.join(&no), &evil);
    write(&dir.join(&yes), &evil);
    let r = run(&dir, &["scan", "--format", "json", "."]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    let findings = |name: &str| {
        let files = v["files"].as_array().expect("files");
        let f = files.iter().find(|f| f["path"] == format!("./{name}")).expect("scanned");
        f["findings"].as_array().expect("findings").len()
    };
    assert_eq!(findings(&no), 2, "not matched: its findings stay");
    assert_eq!(findings(&yes), 0, "matched: every rule is ignored");
}
