//! `pkinspect dis` against real `python -m pickletools` output.
//!
//! `fixtures/dis/<folder>__<file>.txt` holds CPython 3.11.7's
//! `python -m pickletools fixtures/<folder>/<file>` output (first pickle
//! only). [`pkinspect::view::dis::dis_one`] must reproduce each one byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use pkinspect::view::dis::{dis_all, dis_one, DisEnd};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `benign__x.pkl.txt` → `fixtures/benign/x.pkl`.
fn fixture_for(golden: &Path) -> PathBuf {
    let name = golden.file_name().and_then(|n| n.to_str()).expect("utf-8 golden name");
    let stem = name.strip_suffix(".txt").expect("golden ends in .txt");
    let (folder, file) = stem.split_once("__").expect("golden is <folder>__<file>.txt");
    root().join(folder).join(file)
}

fn goldens() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(root().join("dis"))
        .expect("fixtures/dis exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt") && p.file_name().is_some_and(|n| n != "SKIPPED.txt"))
        .collect();
    v.sort();
    v
}

#[test]
fn dis_matches_pickletools_goldens() {
    let goldens = goldens();
    assert!(goldens.len() > 100, "expected the golden listings, found {}", goldens.len());
    let mut failures = Vec::new();
    for golden in &goldens {
        let want = fs::read_to_string(golden).expect("golden is utf-8");
        let fixture = fixture_for(golden);
        let data = fs::read(&fixture).unwrap_or_else(|e| panic!("{}: {e}", fixture.display()));
        let mut out = Vec::new();
        let end = dis_one(&data, 0, &mut out).expect("writing to a Vec");
        let got = String::from_utf8(out).expect("dis output is utf-8");
        assert!(matches!(end, DisEnd::Stop { .. }), "{}: ended with {end:?}", fixture.display());
        if got != want {
            let (n, (g, w)) = got
                .lines()
                .map(Some)
                .chain(std::iter::repeat(None))
                .zip(want.lines().map(Some).chain(std::iter::repeat(None)))
                .enumerate()
                .find(|(_, (g, w))| g != w)
                .unwrap_or((0, (None, None)));
            failures.push(format!(
                "{}: first difference at line {}\n  got:  {:?}\n  want: {:?}",
                golden.display(),
                n + 1,
                g.unwrap_or("<end>"),
                w.unwrap_or("<end>")
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} goldens differ:\n{}", failures.len(), goldens.len(), failures.join("\n"));
}

#[test]
fn dis_all_shows_both_pickles() {
    let data = fs::read(root().join("hostile/benign_then_malicious.pkl")).expect("fixture");
    let mut out = Vec::new();
    dis_all(&data, &mut out).expect("writing to a Vec");
    let got = String::from_utf8(out).expect("utf-8");
    let first = fs::read_to_string(root().join("dis/hostile__benign_then_malicious.pkl.txt")).expect("golden");
    assert!(got.starts_with(&first), "the first pickle is shown as pickletools shows it:\n{got}");
    let rest = &got[first.len()..];
    assert!(rest.starts_with("--- pickle 2 at offset "), "second pickle announced:\n{rest}");
    assert_eq!(got.matches("highest protocol among opcodes").count(), 2, "{got}");
    assert!(rest.contains("system"), "the second pickle's GLOBAL is listed:\n{rest}");
}

/// Every fixture, including the ones pickletools fails on and the huge ones.
#[test]
fn dis_all_never_panics_on_fixtures() {
    let mut n = 0;
    for folder in ["benign", "hostile", "joblib"] {
        let mut files: Vec<PathBuf> = fs::read_dir(root().join(folder))
            .expect("fixture folder")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e != "json"))
            .collect();
        files.sort();
        for f in files {
            let data = fs::read(&f).expect("fixture readable");
            let mut out = Vec::new();
            dis_all(&data, &mut out).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{}: output not utf-8: {e}", f.display()));
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "{}: raw control character in output",
                f.display()
            );
            n += 1;
        }
    }
    assert!(n > 100, "only {n} fixtures");
}

#[test]
fn dis_reports_pickletools_errors_and_keeps_going() {
    let cases = [
        ("memo_get_undefined_p2.pkl", "!! memo key 7 has never been stored into"),
        ("memo_memoize_index_arithmetic_p4.pkl", "!! memo key None already defined"),
        ("memo_overwrite_slot_p2.pkl", "!! memo key 0 already defined"),
        ("stack_underflow_reduce_p2.pkl", "!! tries to pop 2 items from stack with only 1 items"),
        ("truncated_after_reduce_p0.pkl", "!! error: "),
        ("truncated_mid_binunicode_p2.pkl", "!! error: "),
        ("unknown_opcode_after_reduce_p2.pkl", "!! error: unknown opcode byte 0xff (at offset 42)"),
    ];
    for (file, want) in cases {
        let data = fs::read(root().join("hostile").join(file)).expect("fixture");
        let mut out = Vec::new();
        dis_one(&data, 0, &mut out).expect("writing to a Vec");
        let got = String::from_utf8(out).expect("utf-8");
        assert!(got.lines().any(|l| l.starts_with(want)), "{file}: no line starting {want:?}:\n{got}");
    }
}
