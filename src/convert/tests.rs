//! The two ways of writing safetensors give the same file contents: array
//! data written in place (for large inputs; forced here on small ones) and
//! copied from a staging file that holds every array back to back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{convert_file_sized, Outcome, Target};
use crate::policy::Policy;
use crate::rules::Levels;

/// Tensors (dtype, shape, bytes) and metadata of a safetensors file, and its header length.
type Parsed = (BTreeMap<String, (String, String, Vec<u8>)>, String, u64);

fn parse(path: &Path) -> Parsed {
    let bytes = std::fs::read(path).expect("written");
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let end = 8 + n as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..end]).expect("JSON header");
    let mut tensors = BTreeMap::new();
    let mut meta = String::new();
    for (k, v) in header.as_object().expect("object") {
        if k == "__metadata__" {
            meta = v.to_string();
            continue;
        }
        let o: Vec<usize> =
            v["data_offsets"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        let data = bytes[end + o[0]..end + o[1]].to_vec();
        tensors.insert(k.clone(), (v["dtype"].to_string(), v["shape"].to_string(), data));
    }
    (tensors, meta, n)
}

fn run(file: &Path, out: &Path, in_place_min: u64) -> Parsed {
    match convert_file_sized(file, out, Target::Safetensors, &Policy::builtin(), &Levels::default(), in_place_min) {
        Ok(Outcome::Written(_)) => parse(out),
        other => panic!("{}: {other:?}", file.display()),
    }
}

#[test]
fn in_place_and_copied_outputs_hold_the_same_tensors() {
    let dir = std::env::temp_dir().join(format!("pkinspect-convert-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut in_place = Vec::new();
    for rel in [
        "extract/numpy_dict.joblib",
        "extract/numpy_dict.joblib.z",
        "extract/torch_state_dict.pt",
        "extract/numpy_root_be_f8.joblib.gz",
        "extract/sklearn_rf_clf.joblib.xz",
        "extract/npz_mixed.npz",
        "benign/numpy_structured_p4.pkl",
        "benign/numpy_int16_forder_p4.pkl",
        "torch-real/views.pt",
        "torch-real/hf_gpt2_tiny_pytorch_model.bin",
    ] {
        let file = fixtures.join(rel);
        let (a, b) = (dir.join("copied.safetensors"), dir.join("in_place.safetensors"));
        let copied = run(&file, &a, u64::MAX);
        let placed = run(&file, &b, 0);
        assert_eq!(copied.0, placed.0, "{rel}: the same tensors");
        assert_eq!(copied.1, placed.1, "{rel}: the same metadata");
        // Written in place: the header fills the room reserved for it.
        if placed.2 + 8 == super::safetensors::reserve_for(std::fs::metadata(&file).unwrap().len()) {
            in_place.push(rel);
        }
        let mut left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        assert_eq!(left, ["copied.safetensors", "in_place.safetensors"], "{rel}: no temporary file left");
    }
    // Not the big-endian, structured or Fortran-order arrays, which are
    // rewritten, nor files whose arrays fall unaligned (a uint64 after an
    // odd number of int32s), which are copied into place.
    assert_eq!(in_place, ["torch-real/views.pt", "torch-real/hf_gpt2_tiny_pytorch_model.bin"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inconsistent_state_is_refused_both_ways() {
    let dir = std::env::temp_dir().join(format!("pkinspect-convert-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["sklearn_dtree_bad_child.pkl", "sklearn_dtree_bad_feature.pkl", "sklearn_dtree_negative_samples.pkl"] {
        let file = root.join("fixtures/convert").join(name);
        // 0: the arrays go to the output's own file; MAX: to a staging file (read back from its regions).
        for in_place_min in [0, u64::MAX] {
            let out = dir.join("bad.safetensors");
            let r = convert_file_sized(
                &file,
                &out,
                Target::Safetensors,
                &Policy::builtin(),
                &Levels::default(),
                in_place_min,
            );
            match r {
                Ok(Outcome::Inconsistent(found)) => {
                    assert!(found.iter().any(|f| f.path.ends_with("nodes")), "{name}: {found:?}")
                }
                other => panic!("{name} ({in_place_min}): {other:?}"),
            }
            assert!(!out.exists(), "{name}: nothing may be written");
            let left: Vec<_> = std::fs::read_dir(&dir).expect("list").flatten().map(|e| e.file_name()).collect();
            assert!(left.is_empty(), "{name}: {left:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
