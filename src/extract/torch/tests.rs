//! Unit tests of tensor extraction: views, storages, the pickles torch writes.
use serde_json::json;

use super::*;
use crate::container::FLOAT32;
use crate::extract::error::ExtractError;
use crate::extract::testkit::{extract, extract_bytes, fixture, npy, Scratch};

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn spec(numel: u64, offset: u64, size: &[u64], stride: &[u64]) -> TensorSpec {
    TensorSpec {
        key: "0".into(),
        storage_bytes: numel.saturating_mul(4),
        offset,
        size: size.to_vec(),
        stride: stride.to_vec(),
        dtype: &FLOAT32,
        requires_grad: false,
    }
}

/// The data of a tensor node's `.npy` file, after checking its header.
fn data_of(out: &Scratch, node: &J, descr: &str, shape: &str) -> Vec<u8> {
    let (header, data) = npy(out, node["file"].as_str().expect("a file"));
    let want = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    assert!(header.starts_with(&want), "{header} is not {want}");
    data
}

#[test]
fn zip_checkpoint_tensors_are_views_of_their_storages() {
    // scripts/fixtures_torch.py STATE_TENSORS and STATE_DATA.
    let (ex, out) = extract(&fixture("torch/zip_state_dict.pt"), "torch-zip");
    assert!(ex.errors.is_empty(), "{:?}", ex.errors);
    let items = &ex.doc["pickles"][0]["root"]["dictitems"]["items"];
    let w = &items["w"];
    assert_eq!((&w["type"], &w["torch_dtype"], &w["shape"]), (&json!("tensor"), &json!("float32"), &json!([2, 3])));
    assert_eq!(data_of(&out, w, "<f4", "(2, 3)"), f32s(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
    let b = data_of(&out, &items["b"], "<i8", "(3,)");
    assert_eq!(b, [75i64, -2, 3].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
    // float16 0.5, 1.5, -2.0, 3.25.
    let h = data_of(&out, &items["h"], "<f2", "(4,)");
    assert_eq!(h, [0x3800u16, 0x3e00, 0xc000, 0x4280].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
    // bfloat16 (numpy has none): the raw bits of 0.96875, 1.0, -2.0, 0.5 as '<u2'.
    assert_eq!(items["bf"]["torch_dtype"], "bfloat16");
    let bf = data_of(&out, &items["bf"], "<u2", "(2, 2)");
    assert_eq!(bf, [0x3f78u16, 0x3f80, 0xc000, 0x3f00].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
    // Elements 2, 3, 4 of arange(10).
    assert_eq!(data_of(&out, &items["view"], "<f4", "(3,)"), f32s(&[2.0, 3.0, 4.0]));
    // w.T shares w's storage: gathered into C order.
    assert_eq!(data_of(&out, &items["t"], "<f4", "(3, 2)"), f32s(&[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]));
    let t = ex.arrays.iter().find(|a| a.file == "arrays/t.npy").expect("t recorded");
    assert_eq!((t.shape.as_slice(), t.nbytes, t.fortran, t.pickle), (&[3u64, 2][..], 24, false, Some(0)));
    assert_eq!(t.member.as_deref(), Some("zip_state_dict/data.pkl"));
    assert_eq!(t.path, [json!("t")]);
}

#[test]
fn legacy_checkpoint_tensors_come_from_the_storage_section() {
    // fixtures_torch.py LEGACY_DATA: w = float32 0..5 as (2, 3), b = int64 [75, -2, 3].
    let (ex, out) = extract(&fixture("torch/legacy_state_dict.pt"), "torch-legacy");
    assert!(ex.errors.is_empty(), "{:?}", ex.errors);
    let items = &ex.doc["pickles"][3]["root"]["dictitems"]["items"];
    assert_eq!(data_of(&out, &items["w"], "<f4", "(2, 3)"), f32s(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
    let b = data_of(&out, &items["b"], "<i8", "(3,)");
    assert_eq!(b, [75i64, -2, 3].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
}

fn errors(file: &str) -> Vec<TensorError> {
    let (ex, _out) = extract(&fixture(file), file.rsplit('/').next().unwrap_or(file));
    ex.errors
        .into_iter()
        .map(|e| match e.error {
            ExtractError::Tensor(t) => t,
            other => panic!("{file}: {other:?}"),
        })
        .collect()
}

#[test]
fn a_bad_tensor_is_its_own_kind_of_error() {
    // scripts/fixtures_extract_bad.py: 3 floats from element 5 of a 4-element storage.
    let e = errors("extract_bad/storage_offset.pt");
    assert!(matches!(e[..], [TensorError::PastStorage { numel: 4, offset: 5 }]), "{e:?}");
    // 10**9 elements of stride 0: 4 GB from one float.
    let e = errors("extract_bad/stride_zero.pt");
    assert!(matches!(e[..], [TensorError::ReorderTooBig]), "{e:?}");
    let e = errors("torch/zip_missing_storage_record.pt");
    match &e[..] {
        [TensorError::Storage(StorageError::Member { member, .. })] => {
            assert_eq!(member, "zip_missing_storage_record/data/9")
        }
        _ => panic!("{e:?}"),
    }
    let e = errors("torch/zip_numel_exceeds_record.pt");
    assert!(matches!(&e[..], [TensorError::Storage(StorageError::ShortMember { size: 24, need: 4000, .. })]), "{e:?}");
}

/// A protocol 2 pickle of `_rebuild_tensor_v2(persistent_load(pid),
/// offset, size, stride, False, OrderedDict())`, `pid` being
/// `('storage', torch.<class>, key, 'cpu', numel)` (FORMATS.md §4.1).
fn rebuild_pickle(class: &str, key: &str, numel: i32, offset: i32, size: &[i32], stride: &[i32]) -> Vec<u8> {
    rebuild_pickle_in("torch", class, key, numel, offset, size, stride)
}

/// [`rebuild_pickle`] with a storage class of any module.
fn rebuild_pickle_in(
    module: &str,
    class: &str,
    key: &str,
    numel: i32,
    offset: i32,
    size: &[i32],
    stride: &[i32],
) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, s: &str) {
        out.push(b'X');
        out.extend((s.len() as u32).to_le_bytes());
        out.extend(s.as_bytes());
    }
    fn int(out: &mut Vec<u8>, i: i32) {
        out.push(b'J');
        out.extend(i.to_le_bytes());
    }
    let mut p = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
    p.push(b'(');
    text(&mut p, "storage");
    p.extend(format!("c{module}\n{class}\n").as_bytes());
    text(&mut p, key);
    text(&mut p, "cpu");
    int(&mut p, numel);
    p.extend(b"tQ");
    int(&mut p, offset);
    for dims in [size, stride] {
        p.push(b'(');
        dims.iter().for_each(|&d| int(&mut p, d));
        p.push(b't');
    }
    p.extend(b"\x89ccollections\nOrderedDict\n)RtR.");
    p
}

#[test]
fn the_rebuild_arguments_are_read_before_any_storage() {
    let tensor_error = |p: Vec<u8>, tag: &str| {
        let (ex, _out) = extract_bytes(&p, tag);
        let mut e: Vec<_> = ex.errors.into_iter().map(|e| e.error).collect();
        assert_eq!(e.len(), 1, "{tag}: {e:?}");
        match e.pop() {
            Some(ExtractError::Tensor(t)) => t,
            other => panic!("{tag}: {other:?}"),
        }
    };
    let e = tensor_error(rebuild_pickle("FooStorage", "0", 4, 0, &[4], &[1]), "class");
    assert!(matches!(&e, TensorError::UnknownClass(name) if name == "torch.FooStorage"), "{e:?}");
    let e = tensor_error(rebuild_pickle("FloatStorage", "0", 4, -1, &[4], &[1]), "offset");
    assert!(matches!(e, TensorError::Offset), "{e:?}");
    let e = tensor_error(rebuild_pickle("FloatStorage", "0", -4, 0, &[4], &[1]), "numel");
    assert!(matches!(&e, TensorError::BadPid(m) if m.contains("non-negative")), "{e:?}");
    let e = tensor_error(rebuild_pickle("FloatStorage", "0", 4, 0, &[2, 2], &[1]), "rank");
    assert!(matches!(e, TensorError::RankMismatch), "{e:?}");
    // A well-formed tensor in a plain pickle: no checkpoint holds its storage.
    let e = tensor_error(rebuild_pickle("FloatStorage", "0", 4, 0, &[4], &[1]), "nested");
    assert!(matches!(e, TensorError::Storage(StorageError::Nested)), "{e:?}");
    assert_eq!(e.to_string(), "tensor: tensor data is read from zip and legacy checkpoints only, not nested ones");
}

#[test]
fn a_view_must_lie_inside_its_storage() {
    let plan = spec(10, 2, &[3], &[1]).plan().unwrap();
    assert_eq!(plan, Plan { nbytes: 12, contiguous: true });
    // w.T of a 2x3 storage: all six elements, gathered.
    assert_eq!(spec(6, 0, &[3, 2], &[1, 3]).plan().unwrap(), Plan { nbytes: 24, contiguous: false });
    // The last element is offset + sum((size - 1) * stride).
    assert!(spec(6, 0, &[2, 3], &[3, 1]).plan().is_ok());
    assert!(matches!(spec(6, 1, &[2, 3], &[3, 1]).plan(), Err(TensorError::PastStorage { numel: 6, offset: 1 })));
    assert!(matches!(spec(6, 0, &[3, 2], &[2, 3]).plan(), Err(TensorError::PastStorage { .. })));
    // An empty view reads nothing, wherever it starts.
    assert_eq!(spec(0, 7, &[0, 3], &[3, 1]).plan().unwrap(), Plan { nbytes: 0, contiguous: true });
    assert!(matches!(spec(6, 0, &[u64::MAX, 2], &[0, 0]).plan(), Err(TensorError::SizeOverflows)));
    assert!(matches!(spec(6, 0, &[2], &[1, 1]).plan(), Err(TensorError::RankMismatch)));
}

#[test]
fn a_view_may_repeat_its_storage_only_so_much() {
    // Storages under 1 MiB count as 1 MiB: 16 MiB of repeats are allowed.
    assert!(spec(1, 0, &[4 << 20], &[0]).plan().is_ok());
    let e = spec(1, 0, &[(4 << 20) + 1], &[0]).plan().unwrap_err();
    assert!(matches!(e, TensorError::ViewRepeats { nbytes, storage_bytes: 4 } if nbytes == (16 << 20) + 4));
    // Past MAX_GATHER_BYTES whatever the storage.
    let e = spec(1 << 28, 0, &[(1 << 28) + 1], &[0]).plan().unwrap_err();
    assert!(matches!(e, TensorError::ReorderTooBig), "{e:?}");
    // A contiguous view is streamed, not gathered: no bound but its storage.
    assert!(spec(1 << 30, 0, &[1 << 30], &[1]).plan().is_ok());
}

#[test]
fn a_storage_class_of_another_module_is_no_tensor() {
    let (ex, _out) = extract_bytes(&rebuild_pickle_in("os", "FloatStorage", "0", 4, 0, &[4], &[1]), "os");
    let e: Vec<_> = ex.errors.into_iter().map(|e| e.error).collect();
    assert!(
        matches!(&e[..], [ExtractError::Tensor(TensorError::UnknownClass(name))] if name == "os.FloatStorage"),
        "{e:?}"
    );
}

/// [`rebuild_pickle_in`] as `_rebuild_tensor_v3` writes it: an
/// `UntypedStorage` of `nbytes`, the dtype the global `dtype` after the hooks.
fn v3_pickle(dtype: &str, nbytes: i32, size: &[i32]) -> Vec<u8> {
    let stride: Vec<i32> = vec![1; size.len()];
    let p = rebuild_pickle_in("torch.storage", "UntypedStorage", "0", nbytes, 0, size, &stride);
    let mut p = p;
    assert!(p.ends_with(b")RtR."));
    p.truncate(p.len() - 3);
    let (module, name) = dtype.rsplit_once('.').expect("module.name");
    p.extend(format!("c{module}\n{name}\ntR.").as_bytes());
    let at = p.windows(18).position(|w| w == b"_rebuild_tensor_v2").expect("v2");
    p[at + 17] = b'3';
    p
}

#[test]
fn a_v3_tensor_takes_its_dtype_from_the_table() {
    let errs = |p: Vec<u8>, tag: &str| {
        let (ex, _out) = extract_bytes(&p, tag);
        ex.errors.into_iter().map(|e| e.error.to_string()).collect::<Vec<_>>()
    };
    // Read up to the storage, which a bare pickle has not.
    let e = errs(v3_pickle("torch.float8_e4m3fn", 6, &[6]), "v3");
    assert_eq!(e, ["tensor: tensor data is read from zip and legacy checkpoints only, not nested ones"]);
    let e = errs(v3_pickle("os.float32", 6, &[6]), "v3-os");
    assert_eq!(e, ["unknown tensor dtype os.float32"]);
    // 6 bytes are 3 uint16: a view of 4 reads past them.
    let e = errs(v3_pickle("torch.uint16", 6, &[4]), "v3-past");
    assert_eq!(e, ["tensor reads past its storage of 3 elements (offset 0)"]);
}

#[test]
fn legacy_tar_tensors_come_from_the_tensors_and_storages_members() {
    // fixtures_torch.py TAR_TENSORS: w = float32 0..5 as (2, 3), b = int64 [75, -2, 3];
    // the hostile one computes the first storage's location with os.system (never run).
    for file in ["torch/tar_state_dict.tar", "torch/tar_storages_os_system.tar"] {
        let (ex, out) = extract(&fixture(file), "torch-tar");
        assert!(ex.errors.is_empty(), "{file}: {:?}", ex.errors);
        let p = ex.doc["pickles"].as_array().expect("pickles").iter().find(|p| p["member"] == "pickle");
        let items = &p.expect("the pickle member")["root"]["dictitems"]["items"];
        assert_eq!(data_of(&out, &items["w"], "<f4", "(2, 3)"), f32s(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]), "{file}");
        let b = data_of(&out, &items["b"], "<i8", "(3,)");
        assert_eq!(b, [75i64, -2, 3].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>(), "{file}");
    }
}

#[test]
fn a_tar_key_with_no_record_is_an_error() {
    // The tensors member's first header names key 94011812350000; cut its
    // storage out of the index by renaming the key in the pickle member.
    let mut data = std::fs::read(fixture("torch/tar_state_dict.tar")).expect("fixture");
    let at = data.windows(14).position(|w| w == b"94011812350000").expect("key in the pickle member");
    data[at + 13] = b'9';
    let (ex, _out) = extract_bytes(&data, "torch-tar-missing");
    let e: Vec<String> = ex.errors.iter().map(|e| e.error.to_string()).collect();
    assert_eq!(e, ["no readable tar checkpoint record \"94011812350009\""]);
}
