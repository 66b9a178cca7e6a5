//! `pkinspect extract`: arrays byte-identical to what numpy itself saves
//! (fixtures/extract_expected/, written by scripts/fixtures_extract_expected.py
//! from the real libraries), the JSON document's shape, every compression
//! giving the same arrays, and bad input (fixtures/extract_bad/, written by
//! scripts/fixtures_extract_bad.py) giving errors for the bad value only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as J;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pkinspect-extract-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn extract(file: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .arg("extract")
        .arg(file)
        .arg("-o")
        .arg(out)
        .arg("-q")
        .output()
        .expect("run pkinspect")
}

fn doc(out: &Path, stem: &str) -> J {
    let text = std::fs::read_to_string(out.join(format!("{stem}.json"))).expect("document written");
    let mut de = serde_json::Deserializer::from_str(&text);
    de.disable_recursion_limit();
    serde::Deserialize::deserialize(&mut de).expect("valid JSON")
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn arrays_are_byte_identical_to_numpy_save() {
    let expected = root().join("fixtures/extract_expected");
    let mut compared = 0;
    for entry in std::fs::read_dir(&expected).unwrap() {
        let folder = entry.unwrap().path();
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        let fixture = ["benign", "joblib"]
            .iter()
            .map(|d| root().join("fixtures").join(d).join(&name))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no fixture for {name}"));
        let out = tmp(&name);
        let o = extract(&fixture, &out);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        for want in std::fs::read_dir(&folder).unwrap() {
            let want = want.unwrap().path();
            let got = out.join("arrays").join(want.file_name().unwrap());
            let (a, b) = (std::fs::read(&want).unwrap(), std::fs::read(&got).unwrap_or_default());
            assert!(
                a == b,
                "{name}: {} differs from numpy's np.save ({} vs {} bytes)",
                got.display(),
                b.len(),
                a.len()
            );
            compared += 1;
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    assert!(compared >= 40, "only {compared} arrays compared");
}

#[test]
fn logistic_regression_document() {
    let out = tmp("logreg");
    let f = root().join("fixtures/benign/sklearn_logreg_iris_p4.pkl");
    assert_eq!(extract(&f, &out).status.code(), Some(0));
    let d = doc(&out, "sklearn_logreg_iris_p4");
    assert_eq!(d["schema_version"], 1);
    let r = &d["pickles"][0]["root"];
    assert_eq!(r["type"], "object");
    assert_eq!(r["class"], "sklearn.linear_model._logistic.LogisticRegression");
    let attrs = &r["state"]["items"];
    assert_eq!(attrs["coef_"]["type"], "ndarray");
    assert_eq!(attrs["coef_"]["dtype"], "<f8");
    assert_eq!(attrs["coef_"]["shape"], serde_json::json!([3, 4]));
    assert_eq!(attrs["coef_"]["file"], "arrays/coef_.npy");
    assert_eq!(attrs["classes_"]["file"], "arrays/classes_.npy");
    assert_eq!(attrs["n_iter_"]["type"], "ndarray");
    assert_eq!(attrs["_sklearn_version"], "1.9.1");
    assert_eq!(attrs["C"], 1.0);
    assert_eq!(attrs["class_weight"], J::Null);
    assert_eq!(attrs["n_features_in_"], 4);
    assert_eq!(d["arrays"].as_array().unwrap().len(), 4);
    assert!(d["findings"].as_array().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn every_compression_gives_the_same_arrays() {
    // fixtures/containers holds the same joblib dumps with every compressor.
    let dir = root().join("fixtures/containers");
    let mut seen = 0;
    for proto in 2..=5 {
        let plain = dir.join(format!("joblib_mixed_p{proto}.joblib"));
        let base = tmp(&format!("plain{proto}"));
        assert_eq!(extract(&plain, &base).status.code(), Some(0), "{}", plain.display());
        let base_files = files_under(&base.join("arrays"));
        assert!(!base_files.is_empty());
        for ext in ["z", "gz", "bz2", "xz", "lzma", "lz4"] {
            let p = dir.join(format!("joblib_mixed_p{proto}.joblib.{ext}"));
            let out = tmp(&format!("p{proto}.{ext}"));
            let o = extract(&p, &out);
            assert_eq!(o.status.code(), Some(0), "{}: {}", p.display(), String::from_utf8_lossy(&o.stderr));
            assert_eq!(files_under(&out.join("arrays")).len(), base_files.len());
            for f in &base_files {
                let got = out.join("arrays").join(f.file_name().unwrap());
                assert_eq!(std::fs::read(f).unwrap(), std::fs::read(&got).unwrap_or_default(), "{}", got.display());
            }
            seen += 1;
            let _ = std::fs::remove_dir_all(&out);
        }
        let _ = std::fs::remove_dir_all(&base);
    }
    assert_eq!(seen, 24);
}

#[test]
fn torch_state_dict_tensors() {
    let out = tmp("torch");
    let f = root().join("fixtures/torch/zip_state_dict.pt");
    let o = extract(&f, &out);
    assert_ne!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let d = doc(&out, "zip_state_dict");
    let items = &d["pickles"][0]["root"]["dictitems"]["items"];
    assert_eq!(items["w"]["type"], "tensor");
    assert_eq!(items["w"]["torch_dtype"], "float32");
    assert_eq!(items["bf"]["torch_dtype"], "bfloat16");
    assert_eq!(items["bf"]["dtype"], "<u2");
    // The transposed view is written contiguous: rows of the transpose.
    let t = std::fs::read(out.join("arrays/t.npy")).unwrap();
    assert_eq!(t.len(), 128 + 6 * 4);
    let _ = std::fs::remove_dir_all(&out);
}

fn bad(name: &str) -> (Output, J, PathBuf) {
    let out = tmp(name);
    let f = root().join("fixtures/extract_bad").join(name);
    let o = extract(&f, &out);
    let d = doc(&out, &stem(&f));
    (o, d, out)
}

#[test]
fn a_bad_value_is_an_error_and_the_rest_is_extracted() {
    for name in ["shape_mismatch.pkl", "impossible_dtype.pkl", "empty_object_huge.pkl"] {
        let (o, d, out) = bad(name);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let errors = d["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        assert!(errors[0]["offset"].as_u64().unwrap() > 0);
        let attrs = &d["pickles"][0]["root"]["state"]["items"];
        assert_eq!(attrs["bad_"]["type"], "error", "{name}");
        assert_eq!(attrs["coef_"]["file"], "arrays/coef_.npy", "{name}");
        assert!(out.join("arrays/coef_.npy").exists());
        assert!(!out.join("arrays/bad_.npy").exists());
        let _ = std::fs::remove_dir_all(&out);
    }
    for (name, why) in [("storage_offset.pt", "past its storage"), ("stride_zero.pt", "MAX_GATHER_BYTES")] {
        let (o, d, out) = bad(name);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let items = &d["pickles"][0]["root"]["dictitems"]["items"];
        assert_eq!(items["good"]["type"], "tensor", "{name}");
        assert_eq!(items["bad"]["type"], "error", "{name}");
        assert!(items["bad"]["message"].as_str().unwrap().contains(why), "{name}: {}", items["bad"]);
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn path_like_names_stay_inside_the_folder() {
    let (o, d, out) = bad("path_attr.pkl");
    assert_eq!(o.status.code(), Some(0));
    for f in files_under(&out) {
        assert!(f.starts_with(&out), "{} outside", f.display());
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
    }
    let files: Vec<&str> = d["arrays"].as_array().unwrap().iter().map(|a| a["file"].as_str().unwrap()).collect();
    assert_eq!(files, ["arrays/coef_.npy", "arrays/_.._.._etc_x.npy", "arrays/_abs_path.npy"]);
    // The document keeps the real name.
    assert_eq!(d["arrays"][1]["path"][0], "../../etc/x");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn memo_bomb_stays_a_dag() {
    let (o, d, out) = bad("memo_bomb.pkl");
    assert_eq!(o.status.code(), Some(0));
    let size = std::fs::metadata(out.join("memo_bomb.json")).unwrap().len();
    assert!(size < 1 << 20, "document of {size} bytes for a 10^6-use bomb");
    // One array file for the one array, however many references.
    assert_eq!(d["arrays"].as_array().unwrap().len(), 1);
    let text = d.to_string();
    assert!(text.matches("\"ref\"").count() >= 1000);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn deep_nesting_is_cut_with_an_error() {
    // Objects 12,000 deep (containers do not count, tests/deep.rs): the
    // document nests 10,000 objects deep, which serde_json parses and
    // drops recursively: on a thread with the stack for it.
    let check = || {
        let (o, d, out) = bad("deep_nesting.pkl");
        assert_eq!(o.status.code(), Some(2));
        assert!(d["errors"][0]["message"].as_str().unwrap().contains("MAX_EXTRACT_DEPTH (10000)"));
        assert_eq!(d["pickles"][0]["root"]["state"]["items"]["coef_"]["type"], "ndarray");
        let _ = std::fs::remove_dir_all(&out);
    };
    std::thread::scope(|s| {
        std::thread::Builder::new().stack_size(512 << 20).spawn_scoped(s, check).unwrap().join().unwrap()
    });
}

#[test]
fn a_hostile_call_is_shown_not_run() {
    let (o, d, out) = bad("os_system.pkl");
    assert_eq!(o.status.code(), Some(1), "a dangerous finding");
    let hook = &d["pickles"][0]["root"]["state"]["items"]["hook"];
    assert_eq!(hook["type"], "call");
    assert_eq!(hook["func"]["module"], "posix");
    assert_eq!(hook["func"]["name"], "system");
    assert_eq!(hook["verdict"], "dangerous");
    assert_eq!(hook["args"][0], "echo pkinspect-fixture");
    assert!(d["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "PK101"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn show_summary_writes_nothing() {
    let f = root().join("fixtures/benign/sklearn_logreg_iris_p4.pkl");
    let o = Command::new(env!("CARGO_BIN_EXE_pkinspect")).args(["show", "--summary"]).arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    let coef = text.lines().find(|l| l.contains("coef_")).expect("coef_ row");
    assert!(coef.contains("numpy.ndarray") && coef.contains("<f8") && coef.contains("(3, 4)") && coef.contains("12"));
}

#[test]
fn extraction_fixtures_scan_clean() {
    // The interop fixtures are benign files from the real libraries: the
    // scanner must not flag them (exit 0 at the default --fail-on warning).
    let o = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(["scan", "--format", "json"])
        .arg(root().join("fixtures/extract"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout).chars().take(2000).collect::<String>()
    );
}

#[test]
fn legacy_torch_checkpoint_tensors() {
    // fixtures_torch.py LEGACY_DATA: w = float32 0..5 as (2, 3), b = int64 [75, -2, 3].
    let out = tmp("legacy");
    let f = root().join("fixtures/torch/legacy_state_dict.pt");
    let o = extract(&f, &out);
    assert_ne!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let w = std::fs::read(out.join("arrays/w.npy")).unwrap();
    let want: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    assert_eq!(&w[128..], &want[..]);
    assert!(String::from_utf8_lossy(&w[..128]).contains("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)"));
    let b = std::fs::read(out.join("arrays/b.npy")).unwrap();
    let want: Vec<u8> = [75i64, -2, 3].iter().flat_map(|i| i.to_le_bytes()).collect();
    assert_eq!(&b[128..], &want[..]);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn npy_and_npz_arrays_are_copied() {
    let out = tmp("npy");
    let f = root().join("fixtures/containers/numpy_float64.npy");
    assert_eq!(extract(&f, &out).status.code(), Some(0));
    assert_eq!(std::fs::read(out.join("arrays/root.npy")).unwrap(), std::fs::read(&f).unwrap());
    let _ = std::fs::remove_dir_all(&out);
    let out = tmp("npz");
    let f = root().join("fixtures/containers/numpy_savez.npz");
    assert_eq!(extract(&f, &out).status.code(), Some(0));
    let d = doc(&out, "numpy_savez");
    let files: Vec<&str> = d["arrays"].as_array().unwrap().iter().map(|a| a["file"].as_str().unwrap()).collect();
    assert_eq!(files, ["arrays/a.npy", "arrays/b.npy"]);
    assert!(d["arrays"].as_array().unwrap().iter().all(|a| a["nbytes"].as_u64().unwrap() > 0));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn every_fixture_extracts_without_crashing() {
    // Hostile, malformed and container fixtures: an exit status of 0, 1 or 2,
    // never a panic (101), and nothing written outside the folder.
    let mut n = 0;
    for dir in ["hostile", "containers", "regress", "torch", "joblib", "extract_bad"] {
        for e in std::fs::read_dir(root().join("fixtures").join(dir)).unwrap() {
            let p = e.unwrap().path();
            if !p.is_file() {
                continue;
            }
            // The dry run (`show --summary`) takes the same paths, writing nothing.
            let dry =
                Command::new(env!("CARGO_BIN_EXE_pkinspect")).args(["show", "--summary"]).arg(&p).output().unwrap();
            assert_ne!(
                dry.status.code(),
                Some(101),
                "show --summary {}: {}",
                p.display(),
                String::from_utf8_lossy(&dry.stderr)
            );
            let out = tmp(&format!("all-{n}"));
            let o = extract(&p, &out);
            assert!(
                matches!(o.status.code(), Some(0..=2)),
                "{}: {:?} {}",
                p.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
            if out.exists() {
                for f in files_under(&out) {
                    assert!(f.starts_with(&out));
                    let name = f.file_name().unwrap().to_string_lossy().into_owned();
                    assert!(!name.starts_with(".pkinspect-tmp"), "{}: temporary file left: {name}", p.display());
                }
            }
            let _ = std::fs::remove_dir_all(&out);
            n += 1;
        }
    }
    assert!(n > 150, "{n} fixtures");
}

#[test]
fn a_refused_joblib_payload_is_still_skipped() {
    // The machine accepts the 'f3' wrapper (joblib reads 3-byte items);
    // extraction refuses the array, skips its payload and reads on.
    let (o, d, out) = bad("wrapper_bad_dtype.joblib");
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let items = &d["pickles"][0]["root"]["items"];
    assert_eq!(items["good"]["file"], "arrays/good.npy");
    assert_eq!(items["bad"]["type"], "error");
    assert_eq!(items["after"], "still read");
    let _ = std::fs::remove_dir_all(&out);
}

/// A pickle that imports and instantiates `mycompany.models.Thing`, a class
/// no list knows (PK103 and PK113: exit 1), with a state `{'a': 1}`.
const THING: &[u8] = b"\x80\x02cmycompany.models\nThing\n)\x81}X\x01\x00\x00\x00aK\x01sb.";

/// Runs `pkinspect extract m.pkl -o out ARGS` in `dir`; its exit status and
/// the rule codes of the document's findings.
fn extract_in(dir: &Path, args: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let o = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(["extract", "m.pkl", "-o", "out", "-q"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run pkinspect");
    let rules = if out.join("m.json").is_file() {
        doc(&out, "m")["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect()
    } else {
        Vec::new()
    };
    (o.status.code(), rules)
}

#[test]
fn extract_honours_the_policy_file() {
    let dir = tmp("policy");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("m.pkl"), THING).unwrap();
    let (code, rules) = extract_in(&dir, &[]);
    assert_eq!(code, Some(1));
    assert!(rules.contains(&"PK103".to_string()), "{rules:?}");
    // [[ignore]] drops the rules for this path: nothing left, exit 0.
    std::fs::write(dir.join("pkinspect.toml"), "[[ignore]]\npaths = [\"m.pkl\"]\nrules = [\"*\"]\n").unwrap();
    assert_eq!(extract_in(&dir, &[]), (Some(0), Vec::new()));
    // --no-config leaves the file aside; --config names one.
    assert_eq!(extract_in(&dir, &["--no-config"]).0, Some(1));
    std::fs::write(dir.join("other.toml"), "[rules]\nunknown-import = \"ignore\"\nunlisted-use = \"ignore\"\n")
        .unwrap();
    let (code, rules) = extract_in(&dir, &["--config", "other.toml"]);
    assert!(!rules.contains(&"PK103".to_string()), "{code:?} {rules:?}");
    // An allow entry makes the class known; a deny entry, dangerous.
    std::fs::write(dir.join("pkinspect.toml"), "allow = [\"mycompany.models.Thing\"]\n").unwrap();
    assert_eq!(extract_in(&dir, &[]), (Some(0), Vec::new()));
    std::fs::write(dir.join("pkinspect.toml"), "deny = [\"mycompany.*\"]\n").unwrap();
    let (code, rules) = extract_in(&dir, &[]);
    assert_eq!(code, Some(1));
    assert!(rules.contains(&"PK101".to_string()), "{rules:?}");
    // The flags apply on top of the file, as scan's do.
    std::fs::remove_file(dir.join("pkinspect.toml")).unwrap();
    let (_, rules) = extract_in(&dir, &["--deny", "mycompany.models.Thing"]);
    assert!(rules.contains(&"PK101".to_string()), "{rules:?}");
    // A broken policy file stops the run before anything is written.
    std::fs::write(dir.join("pkinspect.toml"), "alow = []\n").unwrap();
    let (code, rules) = extract_in(&dir, &[]);
    assert_eq!(code, Some(2));
    assert!(rules.is_empty() && !dir.join("out").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_summary_shows_values_and_versions() {
    let f = root().join("fixtures/benign/sklearn_logreg_iris_p4.pkl");
    let o = Command::new(env!("CARGO_BIN_EXE_pkinspect")).args(["show", "--summary"]).arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    let row = |name: &str| {
        text.lines().find(|l| l.split('┆').next().is_some_and(|c| c.trim_start_matches('│').trim() == name)).unwrap()
    };
    assert!(row("solver").contains("'lbfgs'"), "{text}");
    assert!(row("max_iter").contains(" 200 "), "{text}");
    assert!(row("tol").contains(" 0.0001 "), "{text}");
    assert!(row("class_weight").trim_end_matches('│').trim_end().ends_with("┆ None"), "{text}");
    assert!(text.lines().next().unwrap().starts_with('┌'));
    assert!(text.lines().nth(1).unwrap().contains("value"), "{text}");
    assert!(text.ends_with("\nsaved with scikit-learn 1.9.1\n"), "{text}");
    // Piped, every row fits in 120 columns.
    assert!(text.lines().all(|l| l.chars().count() <= 120), "{text}");
    // extract prints the same table after writing.
    let out = tmp("summary");
    let o = Command::new(env!("CARGO_BIN_EXE_pkinspect")).arg("extract").arg(&f).arg("-o").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let printed = String::from_utf8(o.stdout).unwrap();
    assert!(printed.starts_with(&text), "{printed}");
    let _ = std::fs::remove_dir_all(&out);
    // A hostile call is shown as the call it is.
    let f = root().join("fixtures/hostile/os_system_global_p0.pkl");
    let o = Command::new(env!("CARGO_BIN_EXE_pkinspect")).args(["show", "--summary"]).arg(&f).output().unwrap();
    assert!(String::from_utf8(o.stdout).unwrap().contains("os.system('echo pkinspect-fixture')"));
}
