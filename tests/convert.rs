//! `pkinspect convert --to safetensors`, without Python: the header is
//! parsed back here and every tensor compared with the `.npy` file
//! `pkinspect extract` writes for the same array (whose bytes
//! tests/extract.rs and scripts/interop_extract.py check against the real
//! libraries); hostile files are refused with nothing written.
//! scripts/interop_convert.py checks the same outputs with the real
//! `safetensors` package.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as J;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// A fresh, empty scratch folder.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pkinspect-convert-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch");
    d
}

fn pk(args: &[&str], file: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkinspect"))
        .args(args)
        .arg(file)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run pkinspect")
}

fn convert(file: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["convert", "--to", "safetensors", "-q"];
    args.extend_from_slice(extra);
    pk(&args, file, out)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// A safetensors file read back: the header's tensors, metadata and data.
struct St {
    tensors: HashMap<String, (String, Vec<u64>, Vec<u8>)>,
    meta: HashMap<String, String>,
}

fn read_st(path: &Path) -> St {
    let bytes = std::fs::read(path).expect("output written");
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0, "header padded to 8 bytes");
    let header: J = serde_json::from_slice(&bytes[8..8 + n]).expect("header is JSON");
    let data = &bytes[8 + n..];
    let mut tensors = HashMap::new();
    let mut meta = HashMap::new();
    let mut spans = Vec::new();
    for (k, v) in header.as_object().expect("header object") {
        if k == "__metadata__" {
            for (mk, mv) in v.as_object().unwrap() {
                meta.insert(mk.clone(), mv.as_str().expect("metadata values are strings").to_string());
            }
            continue;
        }
        let off: Vec<usize> =
            v["data_offsets"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        let shape: Vec<u64> = v["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        spans.push((off[0], off[1]));
        tensors.insert(k.clone(), (v["dtype"].as_str().unwrap().to_string(), shape, data[off[0]..off[1]].to_vec()));
    }
    // The data section is exactly the tensors' bytes, back to back (safetensors' own validation).
    spans.sort();
    let mut at = 0;
    for (s, e) in spans {
        assert_eq!(s, at, "tensors are contiguous");
        at = e;
    }
    assert_eq!(at, data.len(), "no bytes after the last tensor");
    St { tensors, meta }
}

/// `pkinspect extract`'s document and each array's (entry, data bytes), by dotted path.
fn extracted(file: &Path, tag: &str) -> (J, HashMap<String, (J, Vec<u8>)>) {
    let out = tmp(&format!("{tag}-extract"));
    let o = pk(&["extract", "-q"], file, &out);
    assert!(o.status.code().is_some_and(|c| c <= 1), "extract {}: {o:?}", file.display());
    let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
    let doc: J = serde_json::from_str(&std::fs::read_to_string(out.join(format!("{stem}.json"))).unwrap()).unwrap();
    let mut arrays = HashMap::new();
    for e in doc["arrays"].as_array().unwrap() {
        let npy = std::fs::read(out.join(e["file"].as_str().unwrap())).unwrap();
        let hl = usize::from(u16::from_le_bytes([npy[8], npy[9]]));
        let path: Vec<String> = e["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().map(str::to_string).unwrap_or_else(|| s.to_string()))
            .collect();
        let name = if path.is_empty() { "root".to_string() } else { path.join(".") };
        arrays.insert(name, (e.clone(), npy[10 + hl..].to_vec()));
    }
    let _ = std::fs::remove_dir_all(&out);
    (doc, arrays)
}

/// The `torch_dtype` of each tensor node of a document, by file.
fn torch_dtypes(doc: &J) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut stack = vec![&doc["pickles"]];
    while let Some(v) = stack.pop() {
        match v {
            J::Object(m) => {
                if let (Some(f), Some(t)) = (m.get("file"), m.get("torch_dtype")) {
                    out.insert(f.as_str().unwrap().to_string(), t.as_str().unwrap().to_string());
                }
                stack.extend(m.values());
            }
            J::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out
}

fn st_dtype(descr: &str) -> &'static str {
    match &descr[1..] {
        "f4" => "F32",
        "f8" => "F64",
        "f2" => "F16",
        "i8" => "I64",
        "i4" => "I32",
        "i2" => "I16",
        "i1" => "I8",
        "u1" => "U8",
        "b1" => "BOOL",
        "c8" => "C64",
        other => panic!("no safetensors dtype in this test for {other}"),
    }
}

#[test]
fn a_torch_state_dict_gives_each_tensor_under_its_key() {
    let file = fixture("extract/torch_state_dict.pt");
    let out = tmp("torch").join("m.safetensors");
    let o = convert(&file, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let st = read_st(&out);
    let (doc, arrays) = extracted(&file, "torch");
    assert!(!arrays.is_empty());
    let torch = torch_dtypes(&doc);
    assert_eq!(st.tensors.len(), arrays.len(), "one tensor per array");
    for (name, (entry, data)) in &arrays {
        let (dtype, shape, bytes) = st.tensors.get(name).unwrap_or_else(|| panic!("tensor {name} missing"));
        let want = match torch.get(entry["file"].as_str().unwrap()).map(String::as_str) {
            Some("bfloat16") => "BF16",
            _ => st_dtype(entry["dtype"].as_str().unwrap()),
        };
        assert_eq!(dtype, want, "{name}");
        assert_eq!(shape, &serde_json::from_value::<Vec<u64>>(entry["shape"].clone()).unwrap(), "{name}");
        assert_eq!(bytes, data, "{name}");
    }
    assert_eq!(st.meta["format"], "pt");
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
}

#[test]
fn a_tree_becomes_one_tensor_per_numeric_field_of_its_nodes() {
    let file = fixture("benign/sklearn_dtree_iris_p4.pkl");
    let out = tmp("tree").join("t.safetensors");
    let o = convert(&file, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let st = read_st(&out);
    let (_, arrays) = extracted(&file, "tree");
    let (entry, data) = &arrays["tree_.nodes"];
    let fields = entry["dtype"].as_array().unwrap();
    let n = entry["shape"][0].as_u64().unwrap() as usize;
    let record = data.len() / n;
    let mut offset = 0;
    let mut seen = 0;
    for f in fields {
        let (name, descr) = (f[0].as_str().unwrap(), f[1].as_str().unwrap());
        let size: usize = descr[2..].parse().unwrap();
        if !name.is_empty() {
            let (dtype, shape, bytes) = &st.tensors[&format!("tree_.nodes.{name}")];
            assert_eq!((dtype.as_str(), shape.as_slice()), (st_dtype(descr), &[n as u64][..]), "{name}");
            let want: Vec<u8> = data.chunks_exact(record).flat_map(|r| r[offset..offset + size].to_vec()).collect();
            assert_eq!(bytes, &want, "{name}");
            seen += 1;
        }
        offset += size;
    }
    assert!(seen >= 7, "threshold, impurity, children, ...: {seen}");
    // Tree's pickled state calls its value array `values`.
    assert_eq!(st.tensors["tree_.values"].2, arrays["tree_.values"].1);
    assert!(!st.tensors.contains_key("tree_.nodes"));
    // The rest of the graph is JSON in the metadata, naming the tensors.
    let graph: J = serde_json::from_str(&st.meta["pkinspect.graph"]).unwrap();
    assert!(graph.to_string().contains("\"tensor\":\"tree_.values\""));
    assert!(graph.to_string().contains("\"threshold\":\"tree_.nodes.threshold\""));
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
}

#[test]
fn big_endian_and_fortran_order_arrays_are_written_little_endian_in_c_order() {
    // joblib keeps '>f8' in its payload; extract writes it as stored.
    let file = fixture("extract/numpy_root_be_f8.joblib.gz");
    let out = tmp("be").join("be.safetensors");
    assert_eq!(convert(&file, &out, &[]).status.code(), Some(0));
    let st = read_st(&out);
    let (_, arrays) = extracted(&file, "be");
    let (entry, data) = &arrays["root"];
    assert_eq!(entry["dtype"], ">f8");
    let swapped: Vec<u8> = data.chunks_exact(8).flat_map(|c| c.iter().rev().copied()).collect();
    assert_eq!(st.tensors["root"].0, "F64");
    assert_eq!(st.tensors["root"].2, swapped);

    let file = fixture("benign/numpy_int16_forder_p4.pkl");
    let out = tmp("forder").join("f.safetensors");
    assert_eq!(convert(&file, &out, &[]).status.code(), Some(0));
    let st = read_st(&out);
    let (_, arrays) = extracted(&file, "forder");
    let (entry, data) = &arrays["root"];
    assert_eq!(entry["order"], "F");
    let (r, c) = (entry["shape"][0].as_u64().unwrap() as usize, entry["shape"][1].as_u64().unwrap() as usize);
    let mut want = Vec::new();
    for i in 0..r {
        for j in 0..c {
            let at = (j * r + i) * 2;
            want.extend_from_slice(&data[at..at + 2]);
        }
    }
    assert_eq!(st.tensors["root"], ("I16".to_string(), vec![r as u64, c as u64], want));
}

#[test]
fn strings_are_left_out_and_listed() {
    let file = fixture("benign/numpy_structured_p4.pkl");
    let out = tmp("structured").join("s.safetensors");
    let o = convert(&file, &out, &[]);
    assert_eq!(o.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("left out root.c (|S3)"), "{stderr}");
    let st = read_st(&out);
    let mut names: Vec<&String> = st.tensors.keys().collect();
    names.sort();
    assert_eq!(names, ["root.a", "root.b"]);
    let left: J = serde_json::from_str(&st.meta["pkinspect.left_out"]).unwrap();
    assert_eq!(left[0]["name"], "root.c");
    assert_eq!(left[0]["dtype"], "|S3");
}

/// Every hostile and gadget fixture: refused (exit 1), nothing written, an
/// older output left as it was.
#[test]
fn hostile_files_are_refused_and_nothing_is_written() {
    let dir = tmp("hostile");
    let out = dir.join("out.safetensors");
    std::fs::write(&out, b"previous").unwrap();
    let mut n = 0;
    for folder in ["hostile", "gadgets"] {
        for e in std::fs::read_dir(fixture(folder)).unwrap() {
            let file = e.unwrap().path();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".json") || name.ends_with(".md") || file.is_dir() {
                continue;
            }
            let o = convert(&file, &out, &[]);
            assert_eq!(o.status.code(), Some(1), "{name}: {}", String::from_utf8_lossy(&o.stderr));
            assert!(String::from_utf8_lossy(&o.stderr).contains("refused"), "{name}");
            assert_eq!(names_in(&dir), ["out.safetensors"], "{name}: nothing else written");
            assert_eq!(std::fs::read(&out).unwrap(), b"previous", "{name}");
            n += 1;
        }
    }
    assert!(n >= 100, "{n} files");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn policy_flags_judge_the_file_as_scan_does() {
    let file = fixture("benign/numpy_float32_p4.pkl");
    let dir = tmp("policy");
    let out = dir.join("p.safetensors");
    let o = convert(&file, &out, &["--no-config", "--deny", "numpy.*"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(names_in(&dir).is_empty());
    assert_eq!(convert(&file, &out, &["--no-config"]).status.code(), Some(0));
    assert_eq!(names_in(&dir), ["p.safetensors"]);
    let o = convert(&file, &out, &["--deny", "not a name"]);
    assert_eq!(o.status.code(), Some(2), "a bad flag: {}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_exit_2_and_write_nothing() {
    let dir = tmp("errors");
    let out = dir.join("e.safetensors");
    // A value that cannot be extracted (a shape that does not match its data).
    let o = convert(&fixture("extract_bad/shape_mismatch.pkl"), &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at offset"));
    // No such file; a folder as input.
    assert_eq!(convert(&dir.join("missing.pkl"), &out, &[]).status.code(), Some(2));
    assert_eq!(convert(&dir, &out, &[]).status.code(), Some(2));
    assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Documents nest as deep as `pickle.load` takes (fixtures/deep: lists 10,000
/// deep, objects 1,000 deep, arrays 3,000 levels down): both targets walk them
/// without exhausting the stack, and a skops error names a cut path.
#[test]
fn deep_documents_convert_without_exhausting_the_stack() {
    let dir = tmp("deep");
    for name in ["list_10000_deep.pkl", "memo_list_10000_deep.pkl", "mixed_9999_deep.pkl", "arrays_3000_deep.pkl"] {
        for to in ["safetensors", "skops"] {
            let out = dir.join(format!("deep.{to}"));
            let o = pk(&["convert", "--to", to], &fixture(&format!("deep/{name}")), &out);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(0), "{name} --to {to}: {err}");
            assert!(out.is_file(), "{name} --to {to}");
        }
    }
    // 12,000 nested objects (past MAX_EXTRACT_DEPTH, and 1,000 protocol
    // anomalies): refused the same way by both targets, with a short message
    // that lists the first findings and counts the rest; nothing written.
    let mut said = Vec::new();
    for to in ["skops", "safetensors"] {
        let out = dir.join(format!("too_deep.{to}"));
        let o = pk(&["convert", "--to", to], &fixture("extract_bad/deep_nesting.pkl"), &out);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{to}: {err}");
        assert!(err.len() < 4096, "{to}: a short message: {} bytes", err.len());
        assert!(err.contains("the scan found 1000 finding(s)") && err.contains("... and 990 more"), "{to}: {err}");
        assert!(!out.exists());
        said.push(err);
    }
    assert_eq!(said[0], said[1], "both targets say the same");
    let _ = std::fs::remove_dir_all(&dir);
}
