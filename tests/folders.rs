//! `pkinspect scan DIR`: files found by content whatever their names, `.git`
//! left out, symlinks skipped unless followed, non-model files counted and
//! listed as skipped, and the same report in sorted path order on every run
//! although files are scanned on all cores.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// A fresh scratch folder under the target dir.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("folders").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn put(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

fn copy(from: &str, to: &Path) {
    put(to, &std::fs::read(fixture(from)).expect("read fixture"));
}

/// Runs pkinspect in `dir`.
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkinspect")).current_dir(dir).args(args).output().expect("run pkinspect")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

fn paths(v: &Value) -> Vec<String> {
    v["files"].as_array().expect("files").iter().map(|f| f["path"].as_str().expect("path").to_string()).collect()
}

/// The tree most tests scan, in `root/tree`:
///
/// ```text
/// tree/
///   .git/objects/evil.pkl          hostile pickle: never scanned, never listed
///   README.txt                     text that starts like a protocol-0 pickle
///   logo.png                       PNG
///   models/weights.bin             benign scikit-learn pickle (protocol 4)
///   models/v2/weights.ckpt_v2      hostile protocol-4 pickle under an odd name
///   models/v2/old/legacy.model     hostile protocol-0 pickle (no PROTO)
///   models/notes.md                Markdown
///   link.pkl -> ../outside.pkl     symlink to a hostile pickle outside the tree (unix)
///   models/loop -> ..              symlink loop (unix)
/// ```
fn tree(root: &Path) -> PathBuf {
    let t = root.join("tree");
    copy("hostile/os_system_global_p0.pkl", &t.join(".git/objects/evil.pkl"));
    put(&t.join("README.txt"), b"The models in this folder are for tests.\n");
    put(&t.join("logo.png"), b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01");
    copy("benign/sklearn_logreg_iris_p4.pkl", &t.join("models/weights.bin"));
    copy("hostile/stack_global_os_system_p4.pkl", &t.join("models/v2/weights.ckpt_v2"));
    copy("hostile/os_system_global_p0.pkl", &t.join("models/v2/old/legacy.model"));
    put(&t.join("models/notes.md"), b"# Notes\n\nNothing to see.\n");
    copy("hostile/os_system_global_p0.pkl", &root.join("outside.pkl"));
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("../outside.pkl", t.join("link.pkl")).expect("symlink");
        std::os::unix::fs::symlink("..", t.join("models/loop")).expect("symlink");
    }
    t
}

const SCANNED: [&str; 3] =
    ["tree/models/v2/old/legacy.model", "tree/models/v2/weights.ckpt_v2", "tree/models/weights.bin"];

#[test]
fn model_files_are_found_by_content_and_the_rest_is_skipped() {
    let root = scratch("content");
    tree(&root);
    let o = run(&root, &["scan", "tree"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "hostile pickles fail: {out}");
    // Scanned, in sorted path order, whatever the name.
    // The two hostile files are shown; the clean one only under --verbose.
    let verdicts: Vec<&str> = out.lines().filter(|l| l.starts_with("tree/")).collect();
    assert_eq!(verdicts.len(), 2, "{out}");
    for (line, path) in verdicts.iter().zip(SCANNED) {
        assert!(line.starts_with(&format!("{path}: FAIL ")), "{line} is not {path}");
    }
    let verbose = text(&run(&root, &["scan", "-v", "tree"]));
    let verdicts: Vec<&str> = verbose.lines().filter(|l| l.starts_with("tree/")).collect();
    assert_eq!(verdicts.len(), 3, "{verbose}");
    for (line, path) in verdicts.iter().zip(SCANNED) {
        assert!(line.starts_with(&format!("{path}: ")), "{line} is not {path}");
    }
    assert!(verdicts[0].contains("FAIL") && verdicts[1].contains("FAIL") && verdicts[2].contains(": OK"), "{verbose}");
    assert!(verbose.contains("  saved with scikit-learn 1.9.1\n"), "{verbose}");
    assert!(!out.contains(".git"), "nothing under .git: {out}");
    assert!(!out.contains(": skipped ("), "no list without --list-skipped: {out}");
    let summary = out.lines().last().expect("summary line");
    #[cfg(unix)]
    assert_eq!(
        summary,
        "3 files scanned, 3 skipped (not model files), 2 symlinks not followed: 4 error, 0 warning, 0 info findings"
    );
    #[cfg(not(unix))]
    assert!(summary.starts_with("3 files scanned, 3 skipped (not model files):"), "{summary}");
}

#[test]
fn skipped_files_are_listed_on_request() {
    let root = scratch("listed");
    tree(&root);
    let o = run(&root, &["scan", "--list-skipped", "tree"]);
    let out = text(&o);
    let listed: Vec<&str> = out.lines().filter(|l| l.contains(": skipped (")).collect();
    let mut want = vec![
        "tree/README.txt: skipped (does not decode as a pickle)",
        "tree/logo.png: skipped (not a model file)",
        "tree/models/notes.md: skipped (not a model file)",
    ];
    if cfg!(unix) {
        want.insert(1, "tree/link.pkl: skipped (symbolic link, not followed)");
        want.insert(3, "tree/models/loop: skipped (symbolic link, not followed)");
    }
    assert_eq!(listed, want, "{out}");

    let v = json(&run(&root, &["scan", "--format", "json", "--list-skipped", "tree"]));
    let s = &v["summary"];
    assert_eq!(s["files"], 3);
    assert_eq!(s["skipped"], 3);
    assert_eq!(s["symlinks_not_followed"], if cfg!(unix) { 2 } else { 0 });
    let files: Vec<(String, String)> = s["skipped_files"]
        .as_array()
        .expect("skipped_files with --list-skipped")
        .iter()
        .map(|x| (x["path"].as_str().expect("path").into(), x["reason"].as_str().expect("reason").into()))
        .collect();
    let want: Vec<(String, String)> = want
        .iter()
        .map(|l| {
            let (p, r) = l.split_once(": skipped (").expect("shape");
            (p.to_string(), r.trim_end_matches(')').to_string())
        })
        .collect();
    assert_eq!(files, want);
}

#[test]
fn json_summary_counts_skipped_files() {
    let root = scratch("json");
    tree(&root);
    let o = run(&root, &["scan", "--format", "json", "tree"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(paths(&v), SCANNED);
    let s = &v["summary"];
    assert_eq!((s["files"].clone(), s["skipped"].clone(), s["unreadable"].clone()), (3.into(), 3.into(), 0.into()));
    assert!(s.get("skipped_files").is_none(), "listed only on request: {s}");
    assert_eq!(s["findings"]["error"], 4);
    // Files named on the command line are scanned whatever they are, and nothing is skipped.
    let v = json(&run(&root, &["scan", "--format", "json", "tree/logo.png"]));
    assert_eq!(v["summary"]["skipped"], 0);
    assert_eq!(paths(&v), ["tree/logo.png"]);
}

#[test]
fn exit_codes() {
    let root = scratch("exit");
    let t = tree(&root);
    // Only the benign pickle and non-model files: clean.
    put(&root.join("clean/logo.png"), b"\x89PNG\r\n\x1a\n");
    copy("benign/sklearn_logreg_iris_p4.pkl", &root.join("clean/sub/model.joblib"));
    let o = run(&root, &["scan", "clean"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).ends_with("1 file scanned, 1 skipped (not model files): 0 error, 0 warning, 0 info findings\n"));
    // No model file at all: nothing to fail on.
    put(&root.join("docs/a.txt"), b"hello\n");
    let o = run(&root, &["scan", "docs"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).starts_with("0 files scanned, 1 skipped (not model files)"), "{}", text(&o));
    // Findings fail at the default threshold, not with --fail-on never.
    assert_eq!(run(&root, &["scan", "tree"]).status.code(), Some(1));
    assert_eq!(run(&root, &["scan", "--fail-on", "never", "tree"]).status.code(), Some(0));
    // A missing path is an error (exit 2) that wins over findings.
    assert_eq!(run(&root, &["scan", "tree", "no-such-dir"]).status.code(), Some(2));
    assert!(t.is_dir());
}

#[cfg(unix)]
#[test]
fn symlinks_are_followed_on_request_and_loops_end() {
    let root = scratch("links");
    tree(&root);
    let o = run(&root, &["scan", "--format", "json", "--follow-symlinks", "--list-skipped", "tree"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    // link.pkl is scanned under its own name; models/loop leads back to tree/, already walked.
    assert_eq!(paths(&v), ["tree/link.pkl", SCANNED[0], SCANNED[1], SCANNED[2]]);
    assert_eq!(v["summary"]["symlinks_not_followed"], 0);
    assert_eq!(v["summary"]["skipped"], 3);
    let link = &v["files"][0];
    assert_eq!(link["max_severity"], "error");
    // A broken link is skipped with its reason.
    std::os::unix::fs::symlink("nowhere.pkl", root.join("tree/broken.pkl")).expect("symlink");
    let v = json(&run(&root, &["scan", "--format", "json", "--follow-symlinks", "--list-skipped", "tree"]));
    let listed = v["summary"]["skipped_files"].as_array().expect("listed").clone();
    assert!(
        listed.iter().any(|x| x["path"] == "tree/broken.pkl" && x["reason"] == "broken symbolic link"),
        "{listed:?}"
    );
}

/// Many files in many folders, scanned in parallel: the report is in sorted
/// path order and byte-for-byte the same on every run.
#[test]
fn order_is_sorted_and_deterministic() {
    let root = scratch("order");
    let mut want = Vec::new();
    for i in 0..300u32 {
        // Names that sort differently as strings and as paths ("a/b" vs "a.b", "a-").
        let rel = format!("many/d{}/{}{}/f{:03}.bin", i % 7, ["a", "a.b", "a-"][i as usize % 3], i % 5, (i * 37) % 300);
        let path = root.join(&rel);
        if path.exists() {
            continue;
        }
        // pickle.dumps(i, protocol=4) style: PROTO 4, BININT, STOP; every fifth one imports os.system.
        let bytes = if i % 5 == 0 {
            std::fs::read(fixture("hostile/stack_global_os_system_p4.pkl")).expect("fixture")
        } else {
            [&b"\x80\x04J"[..], &i.to_le_bytes(), b"."].concat()
        };
        put(&path, &bytes);
        put(&root.join(format!("many/d{}/readme{i}.txt", i % 7)), b"# not a model\n");
        want.push(rel);
    }
    want.sort_by(|a, b| Path::new(a).cmp(Path::new(b)));
    let first = run(&root, &["scan", "--format", "json", "many"]);
    let v = json(&first);
    assert_eq!(paths(&v), want);
    assert_eq!(v["summary"]["skipped"], want.len());
    for _ in 0..4 {
        let again = run(&root, &["scan", "--format", "json", "many"]);
        assert_eq!(again.stdout, first.stdout, "same report on every run");
        assert_eq!(again.status.code(), first.status.code());
    }
    for flags in [&["scan"][..], &["scan", "-v"], &["scan", "-q"]] {
        let human = run(&root, &[flags, &["many"]].concat());
        assert_eq!(run(&root, &[flags, &["many"]].concat()).stdout, human.stdout, "{flags:?}");
    }
}

/// The human format shows a file when it has a finding at or above the
/// report level (warning, or info with `--fail-on info`), with the findings
/// at or above it; `-v` shows every file and finding, `-q` only the summary
/// line. The summary counts every finding and the exit status is the same
/// in all three.
#[test]
fn quiet_by_default_verbose_and_quiet() {
    let root = scratch("verbosity");
    let d = root.join("models");
    copy("benign/sklearn_logreg_iris_p4.pkl", &d.join("a_clean.pkl"));
    copy("torch-real/views.pt", &d.join("b_info_only.pt"));
    copy("torch-real/torchscript.pt", &d.join("c_warning.pt"));
    copy("hostile/os_system_global_p0.pkl", &d.join("d_error.pkl"));
    let summary = "4 files scanned: 2 error, 13 warning, 14 info findings";
    let headers = |out: &str| -> Vec<String> {
        out.lines().filter(|l| l.starts_with("models/")).map(|l| l.split(':').next().unwrap_or("").into()).collect()
    };

    let o = run(&root, &["scan", "models"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(headers(&out), ["models/c_warning.pt", "models/d_error.pkl"], "{out}");
    assert!(!out.contains("PK110"), "info findings are not listed: {out}");
    assert!(out.contains("  (2 info findings not shown; --verbose lists them)\n"), "{out}");
    assert!(out.contains("PK114") && out.contains("PK102"), "{out}");
    assert_eq!(out.lines().last(), Some(summary));

    // Warnings do not fail with --fail-on error, but they are still shown.
    let o = run(&root, &["scan", "--fail-on", "error", "models"]);
    assert_eq!(headers(&text(&o)), ["models/c_warning.pt", "models/d_error.pkl"]);

    // With --fail-on info every file that fails the run is shown, info rows included.
    let o = run(&root, &["scan", "--fail-on", "info", "models"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(headers(&out), ["models/b_info_only.pt", "models/c_warning.pt", "models/d_error.pkl"], "{out}");
    assert!(out.contains("PK110") && !out.contains("not shown"), "{out}");

    let o = run(&root, &["scan", "-v", "models"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(headers(&out).len(), 4, "{out}");
    assert!(out.contains("models/a_clean.pkl: OK (0 error, 0 warning, 0 info)"), "{out}");
    assert!(out.contains("PK110") && !out.contains("not shown"), "{out}");
    assert_eq!(out.lines().last(), Some(summary));

    for q in ["-q", "--quiet"] {
        let o = run(&root, &["scan", q, "models"]);
        assert_eq!(o.status.code(), Some(1), "{q}: same exit status");
        assert_eq!(text(&o), format!("{summary}\n"));
        let o = run(&root, &["scan", q, "models/a_clean.pkl", "models/nope.pkl"]);
        assert_eq!(o.status.code(), Some(2));
        let out = text(&o);
        assert!(out.starts_with("models/nope.pkl: error: "), "unreadable files are still shown: {out}");
        assert!(out.ends_with("2 files scanned: 0 error, 0 warning, 0 info findings; 1 file could not be read\n"));
    }
    // -q with -v or --show-safe is a usage error.
    assert_eq!(run(&root, &["scan", "-q", "-v", "models"]).status.code(), Some(2));
    assert_eq!(run(&root, &["scan", "-q", "--show-safe", "models"]).status.code(), Some(2));

    // JSON holds every file and finding whatever -v/-q say, and the versions a file records.
    let v = json(&run(&root, &["scan", "-q", "--format", "json", "models"]));
    assert_eq!(paths(&v).len(), 4);
    assert_eq!(v["summary"]["findings"]["info"], 14);
    assert_eq!(v["files"][0]["versions"], serde_json::json!([{"library": "scikit-learn", "version": "1.9.1"}]));
    assert_eq!(v["files"][3]["versions"], serde_json::json!([]));
}
