//! `pkinspect convert --to skops` on fixtures/convert/ (written by
//! scripts/fixtures_convert.py from the real libraries): files that must
//! convert ask for exactly the untrusted types skops' own dump of the same
//! object asks for (`skops_untrusted` in the manifest, from
//! `skops.io.get_untrusted_types`); refused files (inconsistent tree nodes
//! or coefficients) exit 1 and leave nothing; files skops cannot express (a
//! lambda, a custom class) exit 2 naming the attribute path. The
//! bit-identical outputs are checked by scripts/interop_skops.py, which
//! needs Python.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as J;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("pkinspect-convert-skops-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch");
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn convert(file: &Path, out: &Path) -> Output {
    convert_with(file, out, &[])
}

fn convert_with(file: &Path, out: &Path, flags: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(["convert", "--to", "skops", "-o"])
        .arg(out)
        .args(flags)
        .arg(file)
        .output()
        .expect("run pkinspect")
}

fn manifest() -> Vec<J> {
    let text = std::fs::read_to_string(root().join("fixtures/convert/manifest.json")).expect("manifest");
    serde_json::from_str::<J>(&text).expect("json").as_array().expect("list").clone()
}

/// The untrusted types `convert` printed.
fn printed_untrusted(stdout: &str) -> Vec<String> {
    if stdout.lines().any(|l| l.starts_with("untrusted types: none")) {
        return Vec::new();
    }
    stdout.lines().skip_while(|l| !l.starts_with("untrusted types (")).skip(1).map(|l| l.trim().to_string()).collect()
}

fn read_skops(out: &Path) -> (J, Vec<String>) {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(out).expect("written")).expect("a zip");
    let names: Vec<String> = zip.file_names().map(|n| n.expect("member name").into_owned()).collect();
    let mut text = String::new();
    zip.by_name("schema.json").expect("schema.json").read_to_string(&mut text).expect("utf-8");
    (serde_json::from_str(&text).expect("schema is JSON"), names)
}

/// Every `file` a node names is a member, every `__id__` is a positive
/// integer, and a `CachedNode` refers to an id written before it.
fn check_nodes(v: &J, members: &[String], seen: &mut std::collections::HashSet<u64>) {
    match v {
        J::Array(a) => a.iter().for_each(|x| check_nodes(x, members, seen)),
        J::Object(o) => {
            if let Some(id) = o.get("__id__") {
                let id = id.as_u64().expect("integer id");
                assert!(id > 0, "skops ignores __id__ 0");
                if o["__loader__"] == "CachedNode" {
                    assert!(seen.contains(&id), "CachedNode {id} before its node");
                } else {
                    assert!(seen.insert(id), "id {id} written twice");
                }
            }
            if let Some(f) = o.get("file").and_then(J::as_str) {
                assert!(members.iter().any(|m| m == f), "member {f} missing");
            }
            o.values().for_each(|x| check_nodes(x, members, seen));
        }
        _ => {}
    }
}

#[test]
fn models_convert_asking_for_what_skops_asks_for() {
    let scratch = Scratch::new("good");
    let mut n = 0;
    for m in manifest().iter().filter(|m| m["expect"] == "convert") {
        let file = m["file"].as_str().expect("file");
        let out = scratch.0.join(format!("{file}.skops"));
        let r = convert(&root().join("fixtures/convert").join(file), &out);
        let stdout = String::from_utf8_lossy(&r.stdout);
        assert_eq!(r.status.code(), Some(0), "{file}: {}", String::from_utf8_lossy(&r.stderr));
        let want: Vec<String> = m["skops_untrusted"]
            .as_array()
            .expect("list")
            .iter()
            .map(|s| s.as_str().expect("str").to_string())
            .collect();
        assert_eq!(printed_untrusted(&stdout), want, "{file}");
        assert!(stdout.contains("saved with scikit-learn 1.9.1"), "{file}: {stdout}");
        let (schema, members) = read_skops(&out);
        assert_eq!(schema["protocol"], 2);
        assert_eq!(schema["__loader__"], "ObjectNode", "{file}");
        check_nodes(&schema, &members, &mut Default::default());
        n += 1;
    }
    assert!(n >= 20, "only {n} files");
}

/// Nothing at `out`, and no temporary file or folder beside it.
fn nothing_written(dir: &Path, out: &Path) {
    assert!(!out.exists(), "{} written", out.display());
    let left: Vec<_> = std::fs::read_dir(dir).expect("dir").filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn inconsistent_state_is_refused_with_nothing_written() {
    let scratch = Scratch::new("refused");
    let mut n = 0;
    for m in manifest().iter().filter(|m| m["expect"] == "refuse") {
        let file = m["file"].as_str().expect("file");
        let out = scratch.0.join("model.skops");
        let r = convert(&root().join("fixtures/convert").join(file), &out);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{file}: {stderr}");
        assert!(stderr.contains("refused:") && stderr.contains("inconsistent"), "{file}: {stderr}");
        let path = m["path"].as_str().expect("path");
        assert!(stderr.contains(&format!("{path}: ")), "{file}: {path} not named in {stderr}");
        nothing_written(&scratch.0, &out);
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn what_skops_cannot_express_names_its_attribute_path() {
    let scratch = Scratch::new("unsupported");
    let mut n = 0;
    for m in manifest().iter().filter(|m| m["expect"] == "error") {
        let file = m["file"].as_str().expect("file");
        let out = scratch.0.join("model.skops");
        // Unknown globals refuse the file (exit 1) unless a reviewer allows them.
        let path = root().join("fixtures/convert").join(file);
        let r = convert(&path, &out);
        assert_eq!(r.status.code(), Some(1), "{file}: {}", String::from_utf8_lossy(&r.stderr));
        nothing_written(&scratch.0, &out);
        let r = convert_with(&path, &out, &["--allow", "__main__.*"]);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{file}: {stderr}");
        let path = m["path"].as_str().expect("path");
        assert!(stderr.contains(&format!("cannot express {path} in skops")), "{file}: {stderr}");
        assert!(stderr.contains("__main__."), "{file}: {stderr}");
        nothing_written(&scratch.0, &out);
        n += 1;
    }
    assert_eq!(n, 2);
}

#[test]
fn a_dangerous_file_is_refused_and_an_existing_output_is_kept() {
    let scratch = Scratch::new("dangerous");
    let out = scratch.0.join("model.skops");
    std::fs::write(&out, b"previous").expect("write");
    let r = convert(&root().join("fixtures/hostile/os_system_global_p0.pkl"), &out);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("os.system"), "{stderr}");
    assert_eq!(std::fs::read(&out).expect("kept"), b"previous");
    let left: Vec<_> =
        std::fs::read_dir(&scratch.0).expect("dir").filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn shared_arrays_stay_shared_and_trees_are_untrusted() {
    // HistGradientBoosting's classes_ is its LabelEncoder's classes_ (one
    // array in the pickle): one member, the second use a CachedNode.
    let scratch = Scratch::new("shared");
    let out = scratch.0.join("hgb.skops");
    let r = convert(&root().join("fixtures/extract/sklearn_hgbc_clf.p4.pkl"), &out);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let (schema, _) = read_skops(&out);
    let content = &schema["content"]["content"];
    let enc = &content["_label_encoder"]["content"]["content"]["classes_"];
    assert_eq!(enc["__loader__"], "NdArrayNode");
    assert_eq!(content["classes_"]["__loader__"], "CachedNode");
    assert_eq!(content["classes_"]["__id__"], enc["__id__"]);
    let out = scratch.0.join("dtree.skops");
    let r = convert(&root().join("fixtures/benign/sklearn_dtree_iris_p4.pkl"), &out);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert_eq!(printed_untrusted(&stdout), ["sklearn.tree._tree.Tree"], "{stdout}");
    let (schema, _) = read_skops(&out);
    assert_eq!(schema["content"]["content"]["tree_"]["__loader__"], "TreeNode");
}

#[test]
fn hostile_and_broken_files_never_leave_anything() {
    // Hand-written hostile pickles and broken extractions: refused (1) or
    // an error (2), never a crash, never a file or scratch folder left. A
    // file whose scan finds only warnings (joblib padding that hides bytes
    // joblib.load never reads) converts what a loader would build.
    let scratch = Scratch::new("hostile");
    let mut n = 0;
    for dir in ["fixtures/hostile", "fixtures/extract_bad"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .expect("fixture folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_none_or(|e| e != "json"))
            .collect();
        files.sort();
        for file in files {
            let out = scratch.0.join("model.skops");
            let r = convert(&file, &out);
            let code = r.status.code();
            assert!(
                matches!(code, Some(0..=2)),
                "{}: exit {code:?}: {}",
                file.display(),
                String::from_utf8_lossy(&r.stderr)
            );
            if code == Some(0) {
                let scan = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
                    .args(["scan", "--fail-on", "error"])
                    .arg(&file)
                    .output();
                assert_eq!(
                    scan.expect("scan").status.code(),
                    Some(0),
                    "{}: converted with an error finding",
                    file.display()
                );
                let (schema, members) = read_skops(&out);
                check_nodes(&schema, &members, &mut Default::default());
                std::fs::remove_file(&out).expect("remove");
            }
            nothing_written(&scratch.0, &out);
            n += 1;
        }
    }
    assert!(n > 50, "only {n} files");
}

#[test]
fn values_skops_cannot_hold_are_errors_at_their_path() {
    let scratch = Scratch::new("values");
    let cases: [(&[u8], &str); 3] = [
        // {(1, 2): 3}: skops writes dict keys as text, a tuple key cannot round-trip.
        (
            b"\x80\x02}q\x00K\x01K\x02\x86q\x01K\x03s.",
            "cannot express <root> in skops: a dict key that is not a str or an int",
        ),
        // l = [l]: skops cannot load a reference cycle.
        (b"\x80\x02]q\x00h\x00a.", "a value that contains itself"),
        // {'a': [1, slice(0, 'x')]}: slice bounds that are not ints.
        (
            b"\x80\x02}q\x00X\x01\x00\x00\x00a]q\x01(K\x01c__builtin__\nslice\nK\x00X\x01\x00\x00\x00x\x86Res.",
            "cannot express a.1 in skops",
        ),
    ];
    for (i, (pickle, want)) in cases.iter().enumerate() {
        let file = scratch.0.join(format!("case{i}.pkl"));
        std::fs::write(&file, pickle).expect("write");
        let out = scratch.0.join("out.skops");
        let r = convert(&file, &out);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "case {i}: {stderr}");
        assert!(stderr.contains(want), "case {i}: {stderr}");
        assert!(!out.exists());
        std::fs::remove_file(&file).expect("remove");
    }
}
