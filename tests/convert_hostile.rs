//! `convert` on every fixture, hostile ones included, with every rule
//! ignored so that no file is refused: the targets' mapping and writing then
//! meet every graph the extraction gives (calls, gadgets, broken containers,
//! deep nesting, torch recipes). Nothing may panic, every run ends with an
//! output or an error, and nothing but the output is ever left beside it.

use std::path::{Path, PathBuf};

use pkinspect::convert::skops::write_skops;
use pkinspect::convert::{convert_file, Target};
use pkinspect::policy::Policy;
use pkinspect::rules::{Levels, Rule};

const FOLDERS: &[&str] = &[
    "hostile",
    "gadgets",
    "extract_bad",
    "containers",
    "torch",
    "torch-recipes",
    "torch-real",
    "joblib-legacy",
    "regress",
    "deep",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_none_or(|x| x != "json" && x != "md" && x != "txt") {
            out.push(p);
        }
    }
}

#[test]
fn every_fixture_converts_or_fails_cleanly_with_every_rule_ignored() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut all = Vec::new();
    for f in FOLDERS {
        files(&root.join(f), &mut all);
    }
    all.sort();
    assert!(all.len() > 300, "{} fixtures", all.len());
    let mut levels = Levels::default();
    for &r in Rule::ALL {
        levels.set(r, None);
    }
    let policy = Policy::builtin();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("convert-hostile");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let (mut written, mut failed) = (0, 0);
    for file in &all {
        for target in ["safetensors", "skops"] {
            let out = dir.join(format!("out.{target}"));
            let ok = match target {
                "skops" => write_skops(file, &out, &policy, &levels).is_ok(),
                _ => matches!(
                    convert_file(file, &out, Target::Safetensors, &policy, &levels),
                    Ok(pkinspect::convert::Outcome::Written(_))
                ),
            };
            let left: Vec<_> = std::fs::read_dir(&dir).expect("list").flatten().map(|e| e.file_name()).collect();
            if ok {
                written += 1;
                assert!(out.is_file(), "{}: {target}: reported written", file.display());
                assert_eq!(left.len(), 1, "{}: {target}: {left:?}", file.display());
                std::fs::remove_file(&out).expect("remove output");
            } else {
                failed += 1;
                assert!(left.is_empty(), "{}: {target}: left behind {left:?}", file.display());
            }
        }
    }
    eprintln!("{} fixtures: {written} outputs written, {failed} refused or failed", all.len());
    let _ = std::fs::remove_dir_all(&dir);
}
