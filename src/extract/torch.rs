//! PyTorch tensors (shared/FORMATS.md §4): `torch._utils._rebuild_tensor_v2(
//! storage, offset, size, stride, requires_grad, ...)` (and
//! `_rebuild_tensor`, `_rebuild_parameter[_with_state]`), whose storage is
//! a persistent id `('storage', torch.<T>Storage, key, location, numel)`.
//! The storage's bytes are the `data/<key>` record of a zip checkpoint, or
//! the key's slot in the storage section of a legacy one. A tensor is a view
//! of its storage (offset and strides in elements); it is written as its
//! contiguous data, in C order.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Read, Seek};
use std::sync::Arc;

use serde_json::{json, Value as J};

use super::dtype::{npy_header, Dtype, Reader};
use super::emit::path_name;
use super::error::{StorageError, TensorError};
use super::layout::{gather, is_c_contiguous, last_element};
use super::{Emitter, Seg};
use crate::container::{storage_class, StorageElem};
use crate::limits::{MAX_GATHER_BYTES, MAX_VIEW_REPEAT};
use crate::vm::{EventKind, Value, ValueId};

/// Storage key → (offset, length) in a legacy PyTorch checkpoint.
pub(super) type Slots = HashMap<String, (u64, u64)>;

/// A tensor as `_rebuild_tensor_v2` receives it: a view of a storage.
#[derive(Debug, Clone, PartialEq)]
struct TensorSpec {
    /// The storage's key (its record `data/<key>`).
    key: String,
    /// Elements in the storage.
    numel: u64,
    /// The view's first element in the storage.
    offset: u64,
    size: Vec<u64>,
    /// Strides in elements.
    stride: Vec<u64>,
    /// The `.npy` descriptor of the storage's elements.
    descr: &'static str,
    /// torch's name for the element type.
    torch_dtype: &'static str,
    /// Bytes per element.
    elsize: u64,
    requires_grad: bool,
}

/// How a view that lies inside its storage is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    /// Bytes of the contiguous copy.
    nbytes: u64,
    /// The view is its storage's bytes from `offset` on, in order: copied
    /// as it streams by, not gathered in memory.
    contiguous: bool,
}

impl TensorSpec {
    /// Checks that the view lies inside its storage and that its copy stays
    /// under the limits (a view can repeat its storage with stride 0: bound
    /// what a small file can make us write).
    fn plan(&self) -> Result<Plan, TensorError> {
        let (size, stride, elsize) = (&self.size, &self.stride, self.elsize);
        if size.len() != stride.len() {
            return Err(TensorError::RankMismatch);
        }
        let count = size.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or(TensorError::SizeOverflows)?;
        // The last element read must lie inside the storage.
        if count > 0 && last_element(self.offset, size, stride).is_none_or(|l| l >= self.numel) {
            return Err(TensorError::PastStorage { numel: self.numel, offset: self.offset });
        }
        let contiguous = is_c_contiguous(size, stride);
        let nbytes = count.checked_mul(elsize).ok_or(TensorError::SizeOverflows)?;
        let storage_bytes = self.numel.saturating_mul(elsize);
        if !contiguous && nbytes > MAX_GATHER_BYTES {
            return Err(TensorError::ReorderTooBig);
        }
        if !contiguous && nbytes > storage_bytes.max(1 << 20).saturating_mul(MAX_VIEW_REPEAT) {
            return Err(TensorError::ViewRepeats { nbytes, storage_bytes });
        }
        Ok(Plan { nbytes, contiguous })
    }
}

impl Emitter<'_, '_> {
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.
    pub(super) fn tensor(&mut self, func: &str, args: ValueId, path: &mut Vec<Seg>) -> Result<J, TensorError> {
        if func.starts_with("torch._utils._rebuild_parameter") {
            return self.parameter(args, path);
        }
        let t = self.tensor_spec(args)?;
        let plan = t.plan()?;
        let file = self.write_tensor(&t, plan, path)?;
        self.record_array(file.clone(), path, json!(t.descr), t.size.clone(), false, plan.nbytes);
        Ok(json!({"type": "tensor", "dtype": t.descr, "torch_dtype": t.torch_dtype, "shape": t.size,
                  "file": file, "requires_grad": t.requires_grad}))
    }

    /// `_rebuild_parameter(data, requires_grad, backward_hooks[, state])`:
    /// the tensor inside, marked as a parameter.
    fn parameter(&mut self, args: ValueId, path: &mut Vec<Seg>) -> Result<J, TensorError> {
        let items = self.tuple_items(args);
        let Some(&data) = items.first() else { return Err(TensorError::ParameterNoData) };
        let mut t = self.value(data, path);
        if let (J::Object(m), Some(rg)) = (&mut t, items.get(1)) {
            if let Value::Bool(b) = self.v(*rg) {
                m.insert("requires_grad".into(), json!(b));
            }
            m.insert("parameter".into(), json!(true));
        }
        Ok(t)
    }

    /// The rebuild's arguments read: the view, and its storage from the
    /// persistent id `('storage', StorageClass, key, location, numel)`.
    fn tensor_spec(&self, args: ValueId) -> Result<TensorSpec, TensorError> {
        let items = self.tuple_items(args);
        let (storage, offset, size, stride) = match items {
            [s, o, z, t, ..] => (*s, *o, *z, *t),
            _ => return Err(TensorError::Arity),
        };
        let requires_grad = items.get(4).map(|v| matches!(self.v(*v), Value::Bool(true))).unwrap_or(false);
        let g = self.graph();
        let r = Reader { g: &g };
        let (Ok(size), Ok(stride)) = (r.shape(size), r.shape(stride)) else { return Err(TensorError::SizeOrStride) };
        let Some(offset) = self.a.int_or_bool(offset).and_then(|o| u64::try_from(o).ok()) else {
            return Err(TensorError::Offset);
        };
        let Value::Persistent { pid } = self.v(storage) else { return Err(TensorError::NotPersistent) };
        let (cls, key, numel) = match self.tuple_items(*pid) {
            [_, c, k, _, n, ..] => (*c, *k, *n),
            _ => return Err(TensorError::PidNotTuple),
        };
        let Value::Global(cls) = self.v(cls) else { return Err(TensorError::ClassNotGlobal) };
        let Some((descr, torch_dtype, elsize)) = tensor_elem(&cls.module, &cls.name) else {
            return Err(TensorError::UnknownClass { module: cls.module.to_string(), name: cls.name.to_string() });
        };
        let a = self.a;
        let (Some(key), Some(numel)) = (a.str_or_latin1(key), a.int_or_bool(numel).and_then(|n| u64::try_from(n).ok()))
        else {
            return Err(TensorError::KeyOrSize);
        };
        let key = key.into_owned();
        Ok(TensorSpec { key, numel, offset, size, stride, descr, torch_dtype, elsize, requires_grad })
    }

    /// Writes the view's contiguous data to `arrays/<path>.npy`: streamed
    /// when contiguous, gathered from the whole storage in memory otherwise.
    fn write_tensor(&mut self, t: &TensorSpec, plan: Plan, path: &[Seg]) -> Result<String, StorageError> {
        let name = path_name(path);
        let store = self.ex.store.clone();
        let header = npy_header(&Dtype::Plain { descr: t.descr.into(), itemsize: t.elsize }, false, &t.size);
        let (offset, numel, elsize, nbytes) = (t.offset, t.numel, t.elsize, plan.nbytes);
        self.with_storage(&t.key, numel, elsize, |m| {
            store.borrow_mut().write_new("arrays", &name, "npy", |w| {
                w.write_all(&header)?;
                if plan.contiguous {
                    io::copy(&mut m.take(offset * elsize), &mut io::sink())?;
                    let n = io::copy(&mut m.take(nbytes), w)?;
                    if n != nbytes {
                        return Err(io::Error::other(StorageError::CutShort));
                    }
                    Ok(())
                } else {
                    if numel * elsize > MAX_GATHER_BYTES {
                        return Err(io::Error::other(StorageError::GatherTooBig));
                    }
                    let mut all = Vec::new();
                    m.take(numel * elsize).read_to_end(&mut all)?;
                    if (all.len() as u64) < numel * elsize {
                        return Err(io::Error::other(StorageError::CutShort));
                    }
                    w.write_all(&gather(&all, elsize as usize, offset, &t.size, &t.stride))
                }
            })
        })
    }

    /// Runs `f` on a reader of storage `key`'s bytes: the `data/<key>` record
    /// of a zip checkpoint, or the key's slot in a legacy checkpoint's
    /// storage section (FORMATS.md §4.2: after the five pickles, per key an
    /// `int64` element count and the raw bytes).
    fn with_storage<T>(
        &mut self,
        key: &str,
        numel: u64,
        elsize: u64,
        f: impl FnOnce(&mut dyn Read) -> io::Result<T>,
    ) -> Result<T, StorageError> {
        let need = numel.checked_mul(elsize).ok_or(StorageError::SizeOverflows)?;
        if self.member.is_none() && !self.layered && self.a.pickles.len() >= 5 {
            let slots = self.legacy_slots()?;
            let &(at, len) = slots.get(key).ok_or_else(|| StorageError::NotInSection(key.to_string()))?;
            if len < need {
                return Err(StorageError::ShortSlot { key: key.to_string(), len, numel });
            }
            let mut file = std::fs::File::open(&self.ex.file)?;
            file.seek(io::SeekFrom::Start(at))?;
            let mut r = io::BufReader::new(file).take(len);
            return Ok(f(&mut r)?);
        }
        let member = match self.member.as_deref().and_then(|m| m.rfind('/').map(|i| &m[..=i])) {
            Some(prefix) if !prefix.contains('!') && !self.layered => format!("{prefix}data/{key}"),
            _ => return Err(StorageError::Nested),
        };
        let mut zip = match self.ex.zip.take() {
            Some(z) => z,
            None => {
                let file = std::fs::File::open(&self.ex.file).map_err(|e| StorageError::OpenCheckpoint(Arc::new(e)))?;
                zip::ZipArchive::new(file).map_err(|e| StorageError::OpenZip(Arc::new(e)))?
            }
        };
        let result = (|| {
            let mut m = zip
                .by_name(&member)
                .map_err(|e| StorageError::Member { member: member.clone(), error: Arc::new(e) })?;
            if m.size() < need {
                return Err(StorageError::ShortMember { member: member.clone(), size: m.size(), numel });
            }
            Ok(f(&mut m)?)
        })();
        self.ex.zip = Some(zip);
        result
    }

    /// Where each storage's bytes are in a legacy checkpoint: key →
    /// (offset, length), read once from the file.
    fn legacy_slots(&mut self) -> Result<&Slots, StorageError> {
        if self.legacy.is_none() {
            let slots = self.read_legacy_slots();
            self.legacy = Some(slots);
        }
        match self.legacy.as_ref().expect("just set") {
            Ok(m) => Ok(m),
            Err(e) => Err(e.clone()),
        }
    }

    fn read_legacy_slots(&self) -> Result<Slots, StorageError> {
        let a = self.a;
        // Element sizes by key, from the object pickle's persistent ids.
        let mut elsize: HashMap<String, u64> = HashMap::new();
        for e in a.events.iter().filter(|e| e.pickle == 3) {
            let EventKind::PersistentId { pid } = e.kind else { continue };
            if let Some([_, cls, key, ..]) = a.tuple_or_list(pid) {
                if let (Value::Global(cls), Some(key)) = (a.value(*cls), a.str_or_latin1(*key)) {
                    if let Some((_, _, size)) = tensor_elem(&cls.module, &cls.name) {
                        elsize.entry(key.into_owned()).or_insert(size);
                    }
                }
            }
        }
        let keys_root = a.pickles[4].root.ok_or(StorageError::NoKeyList)?;
        let keys: Vec<String> = a
            .tuple_or_list(keys_root)
            .ok_or(StorageError::KeysNotList)?
            .iter()
            .map(|k| a.str_or_latin1(*k).map(Cow::into_owned).ok_or(StorageError::KeyNotStr))
            .collect::<Result<_, _>>()?;
        if keys.len() > crate::limits::MAX_TORCH_STORAGES {
            return Err(StorageError::TooManyStorages);
        }
        let mut file = std::fs::File::open(&self.ex.file)?;
        let total = file.metadata()?.len();
        let mut pos = a.pickles[4].end;
        let mut out = HashMap::new();
        for key in keys {
            let size = *elsize.get(&key).ok_or_else(|| StorageError::NoPersistentId(key.clone()))?;
            let mut n = [0u8; 8];
            file.seek(io::SeekFrom::Start(pos))?;
            file.read_exact(&mut n).map_err(|_| StorageError::SectionEnds(pos))?;
            let numel = u64::try_from(i64::from_le_bytes(n)).map_err(|_| StorageError::NegativeSize)?;
            let len = numel.checked_mul(size).ok_or(StorageError::SizeOverflows)?;
            let at = pos + 8;
            if at.checked_add(len).is_none_or(|end| end > total) {
                return Err(StorageError::PastEnd(key));
            }
            out.entry(key).or_insert((at, len));
            pos = at + len;
        }
        Ok(out)
    }
}

/// The `.npy` descriptor, torch dtype name and element size of a storage
/// class's elements, for a typed class of the one storage table
/// ([`STORAGE_CLASSES`], module and name both) whose dtype has a `.npy`
/// form; `None` for any other global, `UntypedStorage` (counted in bytes,
/// its tensor's dtype is elsewhere), `TypedStorage` and the quantized
/// classes.
fn tensor_elem(module: &str, name: &str) -> Option<(&'static str, &'static str, u64)> {
    match storage_class(module, name)?.elem {
        StorageElem::Typed { dtype, size } => Some((npy_descr(dtype)?, dtype, size)),
        StorageElem::Bytes | StorageElem::NoDtype => None,
    }
}

/// The `.npy` descriptor of a torch dtype's elements: bfloat16, which numpy
/// has not, as its raw bits (`<u2`); `None` for the quantized dtypes.
fn npy_descr(dtype: &str) -> Option<&'static str> {
    Some(match dtype {
        "float32" => "<f4",
        "float64" => "<f8",
        "float16" => "<f2",
        "bfloat16" => "<u2",
        "int64" => "<i8",
        "int32" => "<i4",
        "int16" => "<i2",
        "int8" => "|i1",
        "uint8" => "|u1",
        "bool" => "|b1",
        "complex64" => "<c8",
        "complex128" => "<c16",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::container::STORAGE_CLASSES;
    use crate::extract::error::ExtractError;
    use crate::extract::testkit::{extract, extract_bytes, fixture, npy, Scratch};

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn spec(numel: u64, offset: u64, size: &[u64], stride: &[u64]) -> TensorSpec {
        TensorSpec {
            key: "0".into(),
            numel,
            offset,
            size: size.to_vec(),
            stride: stride.to_vec(),
            descr: "<f4",
            torch_dtype: "float32",
            elsize: 4,
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
        assert!(
            matches!(&e[..], [TensorError::Storage(StorageError::ShortMember { size: 24, numel: 1000, .. })]),
            "{e:?}"
        );
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
        assert!(matches!(&e, TensorError::UnknownClass { module, name } if module == "torch" && name == "FooStorage"));
        let e = tensor_error(rebuild_pickle("FloatStorage", "0", 4, -1, &[4], &[1]), "offset");
        assert!(matches!(e, TensorError::Offset), "{e:?}");
        let e = tensor_error(rebuild_pickle("FloatStorage", "0", -4, 0, &[4], &[1]), "numel");
        assert!(matches!(e, TensorError::KeyOrSize), "{e:?}");
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
    fn storage_classes_map_to_numpy_descriptors() {
        assert_eq!(tensor_elem("torch", "FloatStorage"), Some(("<f4", "float32", 4)));
        assert_eq!(tensor_elem("torch", "BFloat16Storage"), Some(("<u2", "bfloat16", 2)));
        assert_eq!(tensor_elem("torch", "ComplexDoubleStorage"), Some(("<c16", "complex128", 16)));
        assert_eq!(tensor_elem("torch", "BoolStorage"), Some(("|b1", "bool", 1)));
        assert_eq!(tensor_elem("torch.cuda", "HalfStorage"), Some(("<f2", "float16", 2)));
        for (module, name) in [
            ("torch", "UntypedStorage"),
            ("torch.storage", "UntypedStorage"),
            ("torch.storage", "TypedStorage"),
            ("torch", "QInt8Storage"),
            // The name of a storage class in a module that is not torch's.
            ("os", "FloatStorage"),
            ("torch.storage", "FloatStorage"),
        ] {
            assert_eq!(tensor_elem(module, name), None, "{module}.{name}");
        }
        // Every descriptor's item size is the element size of the table.
        let mut typed = 0;
        for c in STORAGE_CLASSES {
            if let Some((descr, _, size)) = tensor_elem(c.module, c.name) {
                let digits: u64 = descr[2..].parse().expect("a size");
                assert_eq!(digits, size, "{}.{}", c.module, c.name);
                typed += 1;
            }
        }
        assert_eq!(typed, 24, "12 classes in torch and in torch.cuda");
    }

    #[test]
    fn a_storage_class_of_another_module_is_no_tensor() {
        let (ex, _out) = extract_bytes(&rebuild_pickle_in("os", "FloatStorage", "0", 4, 0, &[4], &[1]), "os");
        let e: Vec<_> = ex.errors.into_iter().map(|e| e.error).collect();
        assert!(
            matches!(&e[..], [ExtractError::Tensor(TensorError::UnknownClass { module, name })]
                if module == "os" && name == "FloatStorage"),
            "{e:?}"
        );
    }
}
