//! `pkinspect extract` on PyTorch files.
//!
//! The real files of `fixtures/torch-real/`
//! (written by torch 2.11.0; see the README there): every tensor
//! `manifest.json` lists comes out as a `.npy` file whose data bytes have the
//! sha256 torch recorded for the tensor's contiguous bytes (bfloat16 and
//! float8 as their raw bits), with the manifest's shape and torch dtype.
//!
//! The manifest's key is the dotted path through dicts and lists, which is
//! the document's `path` joined with `.` (a state dict's own keys contain
//! dots, so the comparison is on the joined text). `make_corpus.py` recorded
//! `lightning.ckpt`'s tensors from its `state_dict` entry, so they are looked
//! up under that key.
//!
//! Files the manifest lists no tensors for (a pickled `nn.Module`, a
//! TorchScript archive, the hostile files) are checked against what
//! `make_corpus.py` built them from: module shapes and torch's initial
//! values (`zeros`, `ones`, BatchNorm's running statistics).
//!
//! The recipe files of `fixtures/torch-recipes/` (quantized, sparse and
//! nested tensors, which torch 2.11 pickles by parts and which no real file
//! holds; `scripts/fixtures_torch_tensors.py` writes them without torch)
//! give every part numpy made for them (`expected.json`: descriptor, shape,
//! sha256), and the node around the parts says what the recipe wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const DIR: &str = "fixtures/torch-real";
const RECIPES: &str = "fixtures/torch-recipes";

/// The key prefix of the manifest's tensors in the document, per file.
fn prefix(file: &str) -> &'static str {
    match file {
        "lightning.ckpt" => "state_dict.",
        _ => "",
    }
}

fn manifest() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(format!("{DIR}/manifest.json")).expect("manifest");
    let v: Value = serde_json::from_str(&text).expect("manifest is JSON");
    v["files"].as_object().expect("files").clone()
}

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One extracted array: its data's sha256, descriptor, shape and the torch
/// dtype its tensor node names.
#[derive(Debug, Clone)]
struct Got {
    sha256: String,
    data: Vec<u8>,
    descr: String,
    shape: Vec<u64>,
    torch_dtype: Option<String>,
}

/// Every `file` → `torch_dtype` of the tensor nodes under `v`.
fn torch_dtypes(v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            if m.get("type") == Some(&Value::from("tensor")) {
                if let (Some(f), Some(d)) = (m.get("file").and_then(Value::as_str), m["torch_dtype"].as_str()) {
                    out.insert(f.to_string(), d.to_string());
                }
            }
            m.values().for_each(|x| torch_dtypes(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| torch_dtypes(x, out)),
        _ => {}
    }
}

/// Extracts `file` with the CLI; the document and every array by dotted path.
fn extract(file: &str) -> (Value, BTreeMap<String, Got>) {
    extract_in(DIR, file)
}

/// [`extract`] of a file of folder `dir`.
fn extract_in(dir: &str, file: &str) -> (Value, BTreeMap<String, Got>) {
    let out = Scratch(std::env::temp_dir().join(format!("pkinspect-torch-real-{}-{file}", std::process::id())));
    let _ = std::fs::remove_dir_all(&out.0);
    let run = Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(["extract", "--no-config", "-o"])
        .arg(&out.0)
        .arg(Path::new(dir).join(file))
        .output()
        .expect("run pkinspect");
    assert!(matches!(run.status.code(), Some(0 | 1)), "{file}: {}", String::from_utf8_lossy(&run.stderr));
    let stem = Path::new(file).file_stem().expect("stem").to_string_lossy().into_owned();
    let doc: Value =
        serde_json::from_slice(&std::fs::read(out.0.join(format!("{stem}.json"))).expect("document")).expect("JSON");
    let mut dtypes = BTreeMap::new();
    torch_dtypes(&doc["pickles"], &mut dtypes);
    let mut got = BTreeMap::new();
    for a in doc["arrays"].as_array().expect("arrays") {
        let key: Vec<String> = a["path"]
            .as_array()
            .expect("path")
            .iter()
            .map(|s| s.as_str().map(String::from).unwrap_or_else(|| s.to_string()))
            .collect();
        let rel = a["file"].as_str().expect("file");
        let bytes = std::fs::read(out.0.join(rel)).expect("array file");
        let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        let data = bytes[10 + len..].to_vec();
        let sha256: String = Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
        let shape = a["shape"].as_array().expect("shape").iter().filter_map(Value::as_u64).collect();
        let descr = a["dtype"].as_str().unwrap_or("").to_string();
        got.insert(key.join("."), Got { sha256, data, descr, shape, torch_dtype: dtypes.get(rel).cloned() });
    }
    (doc, got)
}

#[test]
fn every_manifest_tensor_is_extracted_byte_identical() {
    let mut failures = Vec::new();
    let (mut files, mut tensors) = (0, 0);
    for (file, e) in manifest() {
        files += 1;
        let (doc, got) = extract(&file);
        if let Some(errors) = doc["errors"].as_array().filter(|e| !e.is_empty()) {
            failures.push(format!("{file}: errors {errors:?}"));
        }
        for (key, t) in e["tensors"].as_object().expect("tensors") {
            tensors += 1;
            let Some(g) = got.get(&format!("{}{key}", prefix(&file))) else {
                failures.push(format!("{file}: {key} missing"));
                continue;
            };
            let shape: Vec<u64> = t["shape"].as_array().expect("shape").iter().filter_map(Value::as_u64).collect();
            if Some(g.sha256.as_str()) != t["sha256"].as_str() {
                failures.push(format!("{file}: {key} differs"));
            }
            if g.shape != shape || g.torch_dtype.as_deref() != t["dtype"].as_str() {
                failures
                    .push(format!("{file}: {key} is {:?} {:?}, not {shape:?} {}", g.torch_dtype, g.shape, t["dtype"]));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!((files, tensors), (15, 254));
}

#[test]
fn new_dtypes_are_written_as_their_bits() {
    // The .npy descriptor of each torch dtype of dtypes.pt, and the legacy file the same.
    for file in ["dtypes.pt", "dtypes_legacy.pt"] {
        let (_, got) = extract(file);
        let descr = |k: &str| got[k].descr.clone();
        for (torch, npy) in [
            ("bfloat16", "<u2"),
            ("float8_e4m3fn", "|u1"),
            ("float8_e5m2", "|u1"),
            ("uint16", "<u2"),
            ("uint32", "<u4"),
            ("uint64", "<u8"),
            ("complex128", "<c16"),
            ("bool", "|b1"),
        ] {
            assert_eq!(descr(torch), npy, "{file}: {torch}");
        }
    }
}

/// `n` float32 values `v` as bytes.
fn f32s(n: usize, v: f32) -> Vec<u8> {
    (0..n).flat_map(|_| v.to_le_bytes()).collect()
}

#[test]
fn files_without_manifest_tensors_give_what_make_corpus_built() {
    // hostile_*: {"w": torch.zeros(2, 2), "extra": Evil()} and
    // {"model_state_dict": {"a": torch.ones(3)}, ...}.
    for file in ["hostile_reduce_zip.pt", "hostile_reduce_legacy.pt"] {
        let (_, got) = extract(file);
        assert_eq!((got["w"].shape.as_slice(), &got["w"].data), (&[2u64, 2][..], &f32s(4, 0.0)), "{file}");
    }
    let (_, got) = extract("hostile_in_optimizer.pt");
    assert_eq!(got["model_state_dict.a"].data, f32s(3, 1.0));
    // torch.jit.script(Sequential(Linear(3, 4), Tanh())): the archive's data.pkl tensors.
    let (doc, got) = extract("torchscript.pt");
    assert_eq!(got.keys().collect::<Vec<_>>(), ["0.bias", "0.weight"]);
    assert_eq!((got["0.weight"].shape.as_slice(), got["0.bias"].shape.as_slice()), (&[4u64, 3][..], &[4u64][..]));
    assert!(doc["arrays"].as_array().expect("arrays").iter().all(|a| a["member"] == "torchscript/data.pkl"));
    // Sequential(Conv2d(3, 4, 3), BatchNorm2d(4), ReLU(), Flatten(), Linear(4, 2)), untrained.
    let (_, got) = extract("full_module_sequential.pt");
    let shape = |k: &str| got[&format!("_modules.{k}")].shape.clone();
    assert_eq!(shape("0._parameters.weight"), [4, 3, 3, 3]);
    assert_eq!(shape("4._parameters.weight"), [2, 4]);
    assert_eq!(got["_modules.1._buffers.running_mean"].data, f32s(4, 0.0));
    assert_eq!(got["_modules.1._buffers.running_var"].data, f32s(4, 1.0));
    assert_eq!(got["_modules.1._buffers.num_batches_tracked"].data, 0i64.to_le_bytes());
    assert_eq!(got["_modules.1._parameters.weight"].data, f32s(4, 1.0));
    assert_eq!(got.len(), 9);
}

/// The tensor node at `key` of the root dict of a recipe file's data.pkl.
fn node<'d>(doc: &'d Value, key: &str) -> &'d Value {
    &doc["pickles"][0]["root"]["dictitems"]["items"][key]
}

#[test]
fn recipe_tensors_give_every_part() {
    let text = std::fs::read_to_string(format!("{RECIPES}/expected.json")).expect("expected.json");
    let expected: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("JSON");
    let mut failures = Vec::new();
    let mut parts = 0;
    for (file, arrays) in &expected {
        let (doc, got) = extract_in(RECIPES, file);
        if doc["errors"].as_array().is_none_or(|e| !e.is_empty()) {
            failures.push(format!("{file}: errors {}", doc["errors"]));
        }
        for (key, want) in arrays.as_object().expect("arrays") {
            parts += 1;
            let shape: Vec<u64> = want["shape"].as_array().expect("shape").iter().filter_map(Value::as_u64).collect();
            match got.get(key) {
                Some(g)
                    if Some(g.sha256.as_str()) == want["sha256"].as_str()
                        && Some(g.descr.as_str()) == want["dtype"].as_str()
                        && g.shape == shape => {}
                Some(g) => failures.push(format!("{file}: {key} is {} {:?} {}", g.descr, g.shape, g.sha256)),
                None => failures.push(format!("{file}: {key} missing")),
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!((expected.len(), parts), (6, 15));
}

#[test]
fn recipe_nodes_say_what_the_parts_are() {
    let (doc, _) = extract_in(RECIPES, "quantized_per_tensor.pt");
    let q = node(&doc, "q");
    assert_eq!((&q["type"], &q["torch_dtype"], &q["dtype"]), (&json!("tensor"), &json!("quint8"), &json!("|u1")));
    assert_eq!(q["quantization"], json!({"scheme": "per_tensor_affine", "scale": 0.1, "zero_point": 10}));
    let (doc, _) = extract_in(RECIPES, "qtensor_per_channel.pt");
    let q = &node(&doc, "q");
    assert_eq!((&q["torch_dtype"], &q["quantization"]["scheme"]), (&json!("qint8"), &json!("per_channel_affine")));
    assert_eq!(
        (&q["quantization"]["axis"], &q["quantization"]["scales"]["file"]),
        (&json!(0), &json!("arrays/q.scales.npy"))
    );
    let (doc, _) = extract_in(RECIPES, "sparse_coo.pt");
    let s = node(&doc, "sparse_coo");
    assert_eq!(
        (&s["type"], &s["layout"], &s["shape"]),
        (&json!("sparse_tensor"), &json!("sparse_coo"), &json!([2, 3]))
    );
    assert_eq!((&s["coalesced"], &s["indices"]["shape"]), (&json!(false), &json!([2, 3])));
    let (doc, _) = extract_in(RECIPES, "sparse_csr.pt");
    let s = node(&doc, "csr");
    assert_eq!((&s["layout"], &s["crow_indices"]["type"]), (&json!("sparse_csr"), &json!("tensor")));
    let (doc, _) = extract_in(RECIPES, "nested_tensor.pt");
    let n = node(&doc, "nested");
    assert_eq!((&n["type"], &n["values"]["shape"]), (&json!("nested_tensor"), &json!([18])));
    let (doc, _) = extract_in(RECIPES, "tensor_state.pt");
    let t = node(&doc, "t");
    assert_eq!((&t["type"], &t["class"]), (&json!("tensor"), &json!("torch.Tensor")));
    assert_eq!(t["state"], json!({"type": "dict", "items": {"note": "x"}}));
}
