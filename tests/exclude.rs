//! `pkinspect scan DIR --exclude GLOB`: paths met in folders that match are
//! neither sniffed nor scanned, and a matching folder is not entered; a glob
//! with a `/` is relative to the folder given, one without matches any file
//! or folder name; paths named on the command line are still scanned; the
//! paths left out are listed as `excluded` by `--list-skipped` (human and
//! JSON), not counted as skipped model files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pkinspect::policy::config::{ConfigSource, Flags, Policies};
use pkinspect::report::SkipReason;
use pkinspect::scan::{scan_paths, Exclude, NoProgress, Options};
use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// A fresh scratch folder under the target dir.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("exclude").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn put(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

/// A hostile pickle at `path`.
fn evil(path: &Path) {
    put(path, &std::fs::read(fixture("hostile/os_system_global_p0.pkl")).expect("read fixture"));
}

/// The project most tests scan, in `root/proj`:
///
/// ```text
/// proj/
///   models/a.pkl            hostile
///   models/b.bin            hostile
///   models/notes.txt        text
///   tests/data/evil.pkl     hostile
///   tests/notes.txt         text
///   tests_old/c.pkl         hostile
///   sub/tests/d.pkl         hostile
///   x.bin                   hostile
/// ```
fn project(root: &Path) -> PathBuf {
    let p = root.join("proj");
    evil(&p.join("models/a.pkl"));
    evil(&p.join("models/b.bin"));
    put(&p.join("models/notes.txt"), b"# Notes\n\nNothing to see.\n");
    evil(&p.join("tests/data/evil.pkl"));
    put(&p.join("tests/notes.txt"), b"# Notes\n\nNothing to see.\n");
    evil(&p.join("tests_old/c.pkl"));
    evil(&p.join("sub/tests/d.pkl"));
    evil(&p.join("x.bin"));
    p
}

/// Runs pkinspect in `dir`, with no policy file.
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .current_dir(dir)
        .arg("scan")
        .arg("--no-config")
        .args(args)
        .output()
        .expect("run pkinspect")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The JSON report of `scan --format json --list-skipped ARGS`.
fn json(dir: &Path, args: &[&str]) -> Value {
    let o = run(dir, &[&["--format", "json", "--list-skipped"], args].concat());
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&o)))
}

/// The paths of the files scanned.
fn scanned(v: &Value) -> Vec<&str> {
    v["files"].as_array().expect("files").iter().map(|f| f["path"].as_str().expect("path")).collect()
}

/// The paths skipped with `reason`.
fn skipped<'a>(v: &'a Value, reason: &str) -> Vec<&'a str> {
    v["summary"]["skipped_files"]
        .as_array()
        .expect("skipped_files")
        .iter()
        .filter(|s| s["reason"] == reason)
        .map(|s| s["path"].as_str().expect("path"))
        .collect()
}

#[test]
fn a_matching_folder_is_not_entered() {
    let root = scratch("not-entered");
    project(&root);
    let v = json(&root, &["proj", "--exclude", "tests/**"]);
    assert_eq!(
        scanned(&v),
        ["proj/models/a.pkl", "proj/models/b.bin", "proj/sub/tests/d.pkl", "proj/tests_old/c.pkl", "proj/x.bin"]
    );
    // The folder is listed once; nothing under it is sniffed or listed.
    assert_eq!(skipped(&v, "excluded"), ["proj/tests"]);
    assert_eq!(skipped(&v, "not a model file"), ["proj/models/notes.txt"]);
    // Excluded paths are not "skipped (not model files)".
    assert_eq!(v["summary"]["skipped"], 1);
    // `tests` is the same glob as `tests/**`, anchored or not.
    for same in ["/tests", "./tests/", "tests/**/**"] {
        let w = json(&root, &["proj", "--exclude", same]);
        assert_eq!(skipped(&w, "excluded"), ["proj/tests"], "{same}");
    }
}

#[test]
fn bare_names_match_at_any_depth() {
    let root = scratch("bare");
    project(&root);
    let v = json(&root, &["proj", "--exclude", "tests", "--exclude", "*.bin"]);
    assert_eq!(scanned(&v), ["proj/models/a.pkl", "proj/tests_old/c.pkl"]);
    assert_eq!(skipped(&v, "excluded"), ["proj/models/b.bin", "proj/sub/tests", "proj/tests", "proj/x.bin"]);
    // A trailing `/` does not anchor a glob; a class or `{a,b}` works in a name.
    let v = json(&root, &["proj", "--exclude", "tests*/", "--exclude", "[a-c].{pkl,bin}"]);
    assert_eq!(scanned(&v), ["proj/x.bin"]);
    assert_eq!(
        skipped(&v, "excluded"),
        ["proj/models/a.pkl", "proj/models/b.bin", "proj/sub/tests", "proj/tests", "proj/tests_old"]
    );
}

#[test]
fn globs_with_a_slash_are_relative_to_the_folder_given() {
    let root = scratch("relative");
    let proj = project(&root);
    // `sub/tests` is anchored: proj/tests stays in.
    let v = json(&root, &["proj", "--exclude", "sub/tests"]);
    assert_eq!(skipped(&v, "excluded"), ["proj/sub/tests"]);
    assert!(scanned(&v).contains(&"proj/tests/data/evil.pkl"));
    // `*` does not cross a `/`: `*.bin` with a `/` only matches at the top.
    let v = json(&root, &["proj", "--exclude", "./*.bin"]);
    assert_eq!(skipped(&v, "excluded"), ["proj/x.bin"]);
    let v = json(&root, &["proj", "--exclude", "**/*.bin"]);
    assert_eq!(skipped(&v, "excluded"), ["proj/models/b.bin", "proj/x.bin"]);
    // Relative to the folder on the command line, not to the working directory.
    let v = json(&proj, &["sub", "--exclude", "sub/tests"]);
    assert_eq!(scanned(&v), ["sub/tests/d.pkl"]);
    let v = json(&proj, &["sub", "--exclude", "/tests"]);
    assert_eq!(skipped(&v, "excluded"), ["sub/tests"]);
    let abs = proj.display().to_string();
    let v = json(&root, &[&abs, "--exclude", "models/*.pkl", "--exclude", "tests/data"]);
    assert_eq!(skipped(&v, "excluded"), [format!("{abs}/models/a.pkl"), format!("{abs}/tests/data")]);
}

#[test]
fn paths_named_on_the_command_line_are_still_scanned() {
    let root = scratch("named");
    project(&root);
    let o = run(
        &root,
        &[
            "proj/tests/data/evil.pkl",
            "proj/x.bin",
            "--exclude",
            "tests/**",
            "--exclude",
            "*.pkl",
            "--exclude",
            "*.bin",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("2 files scanned"), "{}", text(&o));
    // So is a folder named, though its files are still matched.
    let v = json(&root, &["proj/tests", "--exclude", "tests"]);
    assert_eq!(scanned(&v), ["proj/tests/data/evil.pkl"]);
    assert!(skipped(&v, "excluded").is_empty());
    let v = json(&root, &["proj/tests", "--exclude", "data"]);
    assert!(scanned(&v).is_empty());
    assert_eq!(skipped(&v, "excluded"), ["proj/tests/data"]);
}

#[test]
fn human_output_lists_excluded_paths_with_list_skipped_only() {
    let root = scratch("human");
    project(&root);
    let o = run(&root, &["proj", "--exclude", "tests", "--list-skipped"]);
    let out = text(&o);
    assert!(out.contains("proj/tests: skipped (excluded)\n"), "{out}");
    assert!(out.contains("proj/sub/tests: skipped (excluded)\n"), "{out}");
    assert!(!out.contains("proj/tests/notes.txt"), "{out}");
    assert!(out.contains("4 files scanned, 1 skipped (not model files)"), "{out}");
    let o = run(&root, &["proj", "--exclude", "tests"]);
    assert!(!text(&o).contains("excluded"), "{}", text(&o));
    // Without --list-skipped, the JSON has no list either.
    let o = run(&root, &["proj", "--exclude", "tests", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert!(v["summary"].get("skipped_files").is_none());
}

#[test]
fn an_invalid_glob_is_a_usage_error() {
    let root = scratch("invalid");
    for (bad, why) in
        [("a/[b", "unclosed `[`"), ("a\\b", "`\\` is not supported"), ("../x", "`..` parts are not allowed")]
    {
        let o = run(&root, &[".", "--exclude", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--exclude") && err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn the_library_takes_excludes_in_options() {
    let root = scratch("library");
    let proj = project(&root);
    let exclude = ["tests", "models/*.bin"].map(|g| Exclude::parse(g).expect("glob")).to_vec();
    let opts = Options { exclude, list_skipped: true, ..Options::default() };
    let mut policies = Policies::new(&ConfigSource::None, &Flags::default()).expect("policies");
    let out = scan_paths(std::slice::from_ref(&proj), &opts, &mut policies, &mut NoProgress).expect("scan");
    let excluded: Vec<_> =
        out.report.skipped.iter().filter(|s| s.reason == SkipReason::Excluded).map(|s| s.path.clone()).collect();
    let at = |rel: &str| proj.join(rel).display().to_string();
    assert_eq!(excluded, [at("models/b.bin"), at("sub/tests"), at("tests")]);
    assert_eq!(out.report.skipped_not_model(), 1);
    assert_eq!(out.report.files.len(), 3);
    assert_eq!(SkipReason::Excluded.as_str(), "excluded");
}
