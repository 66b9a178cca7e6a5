//! Tensor data of legacy tar checkpoints (torch ≤ 0.3, FORMATS.md §4.2):
//! the `pickle` member's persistent ids are tensor keys; the `tensors`
//! member holds, per tensor, a header pickle `(key, storage_id,
//! tensor_type)` followed by `<i4 ndim>`, 4 bytes, `ndim` sizes, `ndim`
//! strides and the storage offset (`<q>` each); the `storages` member, per
//! storage, a header pickle `(key, location, storage_type)` followed by an
//! `int64` element count and the raw bytes (torch's legacy `_load`).
//!
//! The walk has already read both members' header pickles (one analysis per
//! member, each pickle's `start` an offset in the member); this index finds
//! where each ends (its `STOP`, read opcode by opcode from the file) and
//! reads the few integers after it, at the member's data offset,
//! and keys both tables by the decimal text of the key, which torch's
//! `persistent_load` looks up with `int(saved_id)`.

use std::collections::HashMap;
use std::io::{self, Read, Seek};
use std::path::Path;

use crate::container::tar::Entries;
use crate::container::{storage_class_of, PidClass, StorageElem, TorchDtype, Walked};
use crate::limits::{MAX_TORCH_PICKLE_BYTES, MAX_TORCH_STORAGES, MAX_TORCH_TENSOR_DIMS};
use crate::pickle::opcodes::Opcode;
use crate::pickle::reader::OpReader;
use crate::pickle::source::{ByteSource, ReadSource, SliceSource};
use crate::view::render::Renderer;
use crate::vm::{Analysis, ValueId};

/// One tensor record of the `tensors` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::extract) struct TarTensor {
    /// The key of its storage.
    pub storage: String,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
    pub offset: u64,
}

/// One storage record of the `storages` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::extract) struct TarStorage {
    pub dtype: &'static TorchDtype,
    /// File offset of its bytes.
    pub at: u64,
    /// Bytes.
    pub len: u64,
}

/// The tensors and storages of a legacy tar checkpoint, by key.
#[derive(Debug, Default)]
pub(in crate::extract) struct TarIndex {
    pub tensors: HashMap<String, TarTensor>,
    pub storages: HashMap<String, TarStorage>,
}

/// A key as `int(key)` reads it: an int, or a string of one, as its decimal text.
pub(in crate::extract) fn key_text(a: &Analysis, id: ValueId) -> Option<String> {
    if let Some(n) = a.int(id) {
        return Some(n.to_string());
    }
    let s = a.str_or_latin1(id)?;
    s.trim().parse::<i128>().ok().map(|n| n.to_string())
}

impl TarIndex {
    /// The index of the file's legacy tar checkpoint, if it is one read
    /// from the file itself (not compressed): `None` otherwise, or when the
    /// members cannot be found again.
    pub(in crate::extract) fn read(walked: &Walked, file: &Path) -> Option<TarIndex> {
        if walked.format != Some(crate::container::Format::Tar) {
            return None;
        }
        let part = |name: &str| {
            walked.parts.iter().find(|p| p.member.as_deref() == Some(name) && p.layers.iter().all(|l| *l == "tar"))
        };
        let (tensors, storages) = (part("tensors")?, part("storages")?);
        let offsets = member_offsets(file).ok()?;
        let mut f = std::fs::File::open(file).ok()?;
        let mut index = TarIndex::default();
        let base = *offsets.get("storages")?;
        for p in storages.analysis.pickles.iter().skip(1).take(MAX_TORCH_STORAGES) {
            let Some(root) = p.root else { break };
            let Some(end) = pickle_end(&mut f, base + p.start) else { break };
            if let Some((key, s)) = storage_record(&storages.analysis, root, &mut f, end) {
                index.storages.entry(key).or_insert(s);
            }
        }
        let base = *offsets.get("tensors")?;
        for p in tensors.analysis.pickles.iter().skip(1).take(MAX_TORCH_STORAGES) {
            let Some(root) = p.root else { break };
            let Some(end) = pickle_end(&mut f, base + p.start) else { break };
            if let Some((key, t)) = tensor_record(&tensors.analysis, root, &mut f, end) {
                index.tensors.entry(key).or_insert(t);
            }
        }
        Some(index)
    }
}

/// Bytes of a header pickle read at once: torch's are a few dozen.
const HEADER_WINDOW: usize = 512;

/// The file offset just past the `STOP` of the pickle at `at`, read
/// opcode by opcode: from a small window first, then (a long header) from
/// the file, at most [`MAX_TORCH_PICKLE_BYTES`] on.
fn pickle_end(f: &mut std::fs::File, at: u64) -> Option<u64> {
    f.seek(io::SeekFrom::Start(at)).ok()?;
    let mut window = Vec::with_capacity(HEADER_WINDOW);
    f.by_ref().take(HEADER_WINDOW as u64).read_to_end(&mut window).ok()?;
    if let Some(end) = stop_end(OpReader::new(SliceSource::new(&window, at))) {
        return Some(end);
    }
    let mut g = f.try_clone().ok()?;
    g.seek(io::SeekFrom::Start(at)).ok()?;
    let limit = MAX_TORCH_PICKLE_BYTES as u64;
    stop_end(OpReader::new(ReadSource::with_base(g, at, Some(limit))))
}

/// The end of the first `STOP` an opcode reader meets.
fn stop_end<S: ByteSource>(mut ops: OpReader<S>) -> Option<u64> {
    while let Ok(Some(op)) = ops.next_op() {
        if op.opcode == Opcode::Stop {
            return Some(op.end);
        }
    }
    None
}

/// File offset of the data of the `storages` and `tensors` members.
fn member_offsets(file: &Path) -> io::Result<HashMap<String, u64>> {
    let mut entries = Entries::new(std::fs::File::open(file)?);
    let mut out = HashMap::new();
    while let Some(e) = entries.next_entry()? {
        if e.regular && matches!(e.name.as_str(), "storages" | "tensors") {
            out.entry(e.name).or_insert(e.header_offset + 512);
        }
    }
    Ok(out)
}

/// Reads `n` little-endian 8-byte integers at `at`.
fn read_i64s(f: &mut std::fs::File, at: u64, n: usize) -> Option<Vec<i64>> {
    f.seek(io::SeekFrom::Start(at)).ok()?;
    let mut buf = vec![0u8; n * 8];
    f.read_exact(&mut buf).ok()?;
    Some(buf.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

/// `(key, location, storage_type)` and the count after it at `at`.
fn storage_record(a: &Analysis, root: ValueId, f: &mut std::fs::File, at: u64) -> Option<(String, TarStorage)> {
    let [key, _, class] = a.tuple(root)? else { return None };
    let r = Renderer::new(a, 60);
    let dtype = match storage_class_of(a, *class, &r) {
        PidClass::Known(c) => match c.elem {
            StorageElem::Typed(d) => d,
            _ => return None,
        },
        _ => return None,
    };
    let numel = u64::try_from(*read_i64s(f, at, 1)?.first()?).ok()?;
    let len = numel.checked_mul(dtype.size)?;
    let total = f.metadata().ok()?.len();
    (at + 8).checked_add(len).filter(|&end| end <= total)?;
    Some((key_text(a, *key)?, TarStorage { dtype, at: at + 8, len }))
}

/// `(key, storage_id, tensor_type)` and the metadata after it at `at`.
fn tensor_record(a: &Analysis, root: ValueId, f: &mut std::fs::File, at: u64) -> Option<(String, TarTensor)> {
    let [key, storage, _] = a.tuple(root)? else { return None };
    f.seek(io::SeekFrom::Start(at)).ok()?;
    let mut n = [0u8; 4];
    f.read_exact(&mut n).ok()?;
    let ndim = u64::try_from(i32::from_le_bytes(n)).ok().filter(|&d| d <= MAX_TORCH_TENSOR_DIMS)? as usize;
    let v = read_i64s(f, at + 8, 2 * ndim + 1)?;
    let u = |x: &i64| u64::try_from(*x).ok();
    let size = v[..ndim].iter().map(u).collect::<Option<Vec<_>>>()?;
    let stride = v[ndim..2 * ndim].iter().map(u).collect::<Option<Vec<_>>>()?;
    let offset = u(&v[2 * ndim])?;
    Some((key_text(a, *key)?, TarTensor { storage: key_text(a, *storage)?, size, stride, offset }))
}
