//! PyTorch checkpoints (shared/FORMATS.md §4): what `torch.load` reads of
//! one, and whether the storages its pickles name are where they say.
//!
//! The pickles themselves are judged like any other; this module knows the
//! three layouts around them and reports what does not fit (rule PK304
//! `torch-anomaly`, plus PK207/PK208 for bytes after the last storage):
//!
//! - **zip** (torch ≥ 1.6): an archive whose records share the folder of the
//!   first entry, `<arch>/`, with `<arch>/data.pkl` and a `version`,
//!   `.data/version`, `.format_version` or `byteorder` record. Before the
//!   members are walked, `data.pkl`'s persistent ids
//!   `('storage', <torch.*Storage>, key, location, numel)` are read and each
//!   is checked against the record `<arch>/data/<key>`: it must exist and hold
//!   at least `numel × element size` bytes. The records they name are raw
//!   tensor bytes, which torch reads as bytes and never unpickles, so they are
//!   not sniffed (float data that happens to start with a pickle or zlib
//!   byte is not a pickle). Every other member is walked as usual; a pickle
//!   other than `data.pkl` is scanned and reported, since `torch.load` never
//!   unpickles it but another tool may. Storage classes are those of
//!   [`STORAGE_CLASSES`]; `UntypedStorage` (tensors of float8 and
//!   uint16/32/64, rebuilt by `_rebuild_tensor_v3`) is counted in bytes.
//!   An archive with a `constants.pkl` record is a **TorchScript** archive
//!   ([`ZipKind::TorchScript`]): `constants.pkl` (storages under
//!   `constants/`) and the `code/**.debug_pkl` source maps are pickles its
//!   loader reads, and the TorchScript source under `code/` is not sniffed
//!   and is marked in `skipped_members` ([`TORCHSCRIPT_SOURCE_MARK`]).
//! - **legacy non-zip** (`_use_new_zipfile_serialization=False`, torch <
//!   1.6): five pickles (the magic number `0x1950a86a20f9469cfc6c`, the
//!   protocol version 1001, `sys_info`, the object, the sorted storage keys),
//!   then for each key an `int64` element count and the raw bytes. The five
//!   pickles are read one at a time (each held in memory, together at most
//!   [`MAX_TORCH_PICKLE_BYTES`]) and analysed as five separate loads; the
//!   storage section is then walked by the declared sizes, skipped rather
//!   than read, and anything after it is reported (and scanned when it is
//!   another pickle). `('module', cls, file, source)` persistent ids, which
//!   carry the Python source of `nn.Module` classes, are reported, and so is
//!   an `UntypedStorage` class, which `torch.save` writes in this format but
//!   the legacy loader cannot read back (its section is still followed).
//! - **legacy tar** (torch ≤ 0.3): the members `storages` and `tensors` hold a
//!   pickled count, then per record a header pickle (which `torch.load`
//!   unpickles, so it is scanned) followed by raw bytes whose sizes the
//!   header and a few integers give. `pickle` and `sys_info` are plain
//!   pickles and are walked as such.
//!
//! Every size a file declares is checked against what remains and with
//! checked arithmetic before anything is skipped; nothing is allocated from a
//! declared size.

use std::collections::HashMap;
use std::io::{self, Read, Seek};

use super::{join, sniff, Format, Part, Peeked, Walker};
use crate::error::ErrorKind;
use crate::limits::{MAX_TORCH_NOTES, MAX_TORCH_PICKLE_BYTES, MAX_TORCH_STORAGES, MAX_TORCH_TENSOR_DIMS};
use crate::pickle::opcodes::Opcode;
use crate::pickle::reader::OpReader;
use crate::pickle::source::{ByteSource, Input, Line, ReadSource};
use crate::rules::Rule;
use crate::view::render::{global_name, Renderer};
use crate::vm::{analyze, analyze_bytes, Analysis, Anomaly, BlobView, EventKind, Value, ValueId};

/// The legacy format's magic number, `0x1950a86a20f9469cfc6c`, as the ten
/// little-endian bytes of its `LONG1`.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// The same number as protocol 0/1 writes it (`LONG` text).
const LEGACY_MAGIC_TEXT: &[u8] = b"L119547037146038801333356L\n.";

/// The protocol version the legacy format's second pickle holds.
const LEGACY_PROTOCOL_VERSION: i64 = 1001;

/// Characters of a value shown in a message.
const SHOWN_CHARS: usize = 120;

/// True when `head` starts with the legacy format's first pickle: the magic
/// number alone (`PROTO n`, an optional `FRAME`, `LONG1` magic, `STOP`), as
/// `torch.save(..., _use_new_zipfile_serialization=False)` writes it with any
/// pickle protocol.
pub fn is_legacy(head: &[u8]) -> bool {
    if head.starts_with(LEGACY_MAGIC_TEXT) {
        return true;
    }
    let rest = match head {
        [0x80, 2..=5, rest @ ..] => rest,
        _ => return false,
    };
    let rest = match rest {
        [0x95, _, _, _, _, _, _, _, _, rest @ ..] => rest,
        _ => rest,
    };
    match rest {
        [0x8a, 0x0a, magic @ ..] if magic.len() >= 11 => magic[..10] == LEGACY_MAGIC && magic[10] == b'.',
        _ => false,
    }
}

/// How `torch.load` works out the element type of a storage class named in
/// a persistent id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageElem {
    /// A typed legacy class (`torch.FloatStorage`, `torch.cuda.HalfStorage`):
    /// `cls.dtype` is this torch dtype, of this many bytes.
    Typed {
        /// The torch dtype's name (`float32`).
        dtype: &'static str,
        /// Bytes per element, `torch._utils._element_size(cls.dtype)`.
        size: u64,
    },
    /// `UntypedStorage`: bytes. `torch.save` names it for tensors whose dtype
    /// has no typed class (float8, uint16/32/64; `_rebuild_tensor_v3` takes
    /// the dtype as a separate argument), with the count in bytes. The zip
    /// loader reads it as `uint8`; the legacy loaders read `cls.dtype`, which
    /// it has not, and fail.
    Bytes,
    /// `torch.storage.TypedStorage`: the dtype belongs to instances, not to
    /// the class, so every loader's `cls.dtype` fails.
    NoDtype,
}

/// A storage class a persistent id may name: the module and name as
/// `find_class` receives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageClass {
    /// `torch`, `torch.cuda` or `torch.storage`.
    pub module: &'static str,
    /// `FloatStorage`, `UntypedStorage`, ...
    pub name: &'static str,
    /// What its elements are.
    pub elem: StorageElem,
}

/// Shorthand for a typed entry of [`STORAGE_CLASSES`].
const fn typed(module: &'static str, name: &'static str, dtype: &'static str, size: u64) -> StorageClass {
    StorageClass { module, name, elem: StorageElem::Typed { dtype, size } }
}

/// Every storage class torch 2.11's weights-only unpickler admits
/// (`torch._storage_classes`: the classes `TypedStorage._pickle_storage_type()`
/// names, their `torch.cuda` forms written by old checkpoints of CUDA
/// tensors, `torch.storage.TypedStorage` and `UntypedStorage`), plus
/// `torch.UntypedStorage`, the same class through the `torch` module, which
/// the full unpickler resolves. The one table of them: the persistent-id
/// checks use it, and extraction's dtypes can.
pub const STORAGE_CLASSES: &[StorageClass] = &[
    typed("torch", "DoubleStorage", "float64", 8),
    typed("torch", "FloatStorage", "float32", 4),
    typed("torch", "HalfStorage", "float16", 2),
    typed("torch", "BFloat16Storage", "bfloat16", 2),
    typed("torch", "LongStorage", "int64", 8),
    typed("torch", "IntStorage", "int32", 4),
    typed("torch", "ShortStorage", "int16", 2),
    typed("torch", "CharStorage", "int8", 1),
    typed("torch", "ByteStorage", "uint8", 1),
    typed("torch", "BoolStorage", "bool", 1),
    typed("torch", "ComplexFloatStorage", "complex64", 8),
    typed("torch", "ComplexDoubleStorage", "complex128", 16),
    typed("torch", "QInt8Storage", "qint8", 1),
    typed("torch", "QUInt8Storage", "quint8", 1),
    typed("torch", "QInt32Storage", "qint32", 4),
    typed("torch", "QUInt4x2Storage", "quint4x2", 1),
    typed("torch", "QUInt2x4Storage", "quint2x4", 1),
    typed("torch.cuda", "DoubleStorage", "float64", 8),
    typed("torch.cuda", "FloatStorage", "float32", 4),
    typed("torch.cuda", "HalfStorage", "float16", 2),
    typed("torch.cuda", "BFloat16Storage", "bfloat16", 2),
    typed("torch.cuda", "LongStorage", "int64", 8),
    typed("torch.cuda", "IntStorage", "int32", 4),
    typed("torch.cuda", "ShortStorage", "int16", 2),
    typed("torch.cuda", "CharStorage", "int8", 1),
    typed("torch.cuda", "ByteStorage", "uint8", 1),
    typed("torch.cuda", "BoolStorage", "bool", 1),
    typed("torch.cuda", "ComplexFloatStorage", "complex64", 8),
    typed("torch.cuda", "ComplexDoubleStorage", "complex128", 16),
    StorageClass { module: "torch.storage", name: "UntypedStorage", elem: StorageElem::Bytes },
    StorageClass { module: "torch", name: "UntypedStorage", elem: StorageElem::Bytes },
    StorageClass { module: "torch.storage", name: "TypedStorage", elem: StorageElem::NoDtype },
];

/// The entry of [`STORAGE_CLASSES`] for a global, if it is a storage class.
pub fn storage_class(module: &str, name: &str) -> Option<&'static StorageClass> {
    STORAGE_CLASSES.iter().find(|c| c.module == module && c.name == name)
}

// ---------------------------------------------------------------------------
// Reading pickles one at a time
// ---------------------------------------------------------------------------

/// One pickle's bytes, at their offset in the stream.
#[derive(Debug)]
struct Segment {
    base: u64,
    bytes: Vec<u8>,
}

/// Why reading the next pickle stopped short.
#[derive(Debug)]
enum Cut {
    /// The input ended before the pickle's first byte.
    End,
    /// The stream is broken inside the pickle (the analysis of the bytes
    /// kept reports how).
    Stream,
    /// An I/O error (a corrupt or over-limit compressed stream).
    Io(String),
    /// The pickles held exceed [`MAX_TORCH_PICKLE_BYTES`].
    Budget,
}

/// A byte source that keeps a copy of every byte it hands out, up to a budget.
struct Tee<'a, S> {
    inner: &'a mut S,
    buf: Vec<u8>,
    budget: usize,
    over: bool,
}

/// Marker error: the budget of held pickle bytes is spent.
#[derive(Debug)]
struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than MAX_TORCH_PICKLE_BYTES ({MAX_TORCH_PICKLE_BYTES}) of pickles")
    }
}

impl std::error::Error for OverBudget {}

/// Appends `b` to `buf` if the budget allows.
fn keep(buf: &mut Vec<u8>, budget: &mut usize, over: &mut bool, b: &[u8]) -> io::Result<()> {
    if b.len() > *budget {
        *over = true;
        return Err(io::Error::other(OverBudget));
    }
    *budget -= b.len();
    buf.extend_from_slice(b);
    Ok(())
}

/// Chunk in which [`Tee::skip`] copies a long argument.
const TEE_CHUNK: usize = 64 * 1024;

impl<S: ByteSource> ByteSource for Tee<'_, S> {
    fn position(&self) -> u64 {
        self.inner.position()
    }
    fn remaining(&self) -> Option<u64> {
        self.inner.remaining()
    }
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        let Tee { inner, buf, budget, over } = self;
        match inner.take(n)? {
            Some(b) => {
                keep(buf, budget, over, b)?;
                Ok(Some(b))
            }
            None => Ok(None),
        }
    }
    fn take_line(&mut self, max: usize) -> io::Result<Line<'_>> {
        let Tee { inner, buf, budget, over } = self;
        match inner.take_line(max)? {
            Line::Found(l) => {
                keep(buf, budget, over, l)?;
                keep(buf, budget, over, b"\n")?;
                Ok(Line::Found(l))
            }
            other => Ok(other),
        }
    }
    /// Arguments too long to hand out inline are still copied: the pickle is
    /// analysed again from the copy.
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        if n > self.budget as u64 {
            self.over = true;
            return Err(io::Error::other(OverBudget));
        }
        let mut done = 0u64;
        let mut chunk = TEE_CHUNK;
        while done < n {
            // At most TEE_CHUNK, so it fits in usize.
            let want = (n - done).min(chunk as u64) as usize;
            let Tee { inner, buf, budget, over } = self;
            match inner.take(want)? {
                Some(b) => {
                    keep(buf, budget, over, b)?;
                    done += want as u64;
                }
                // Fewer bytes remain than asked: take what there is.
                None if want > 1 => chunk = want / 2,
                None => break,
            }
        }
        Ok(done)
    }
    fn at_eof(&mut self) -> io::Result<bool> {
        self.inner.at_eof()
    }
}

/// Pickles read one at a time from a stream and held for analysis.
struct Held {
    segs: Vec<Segment>,
    budget: usize,
}

impl Held {
    fn new() -> Held {
        Held { segs: Vec::new(), budget: MAX_TORCH_PICKLE_BYTES }
    }

    /// Reads one pickle, up to and including its `STOP`, exactly as
    /// `pickle.load` on the stream would, and keeps its bytes.
    fn pickle<S: ByteSource>(&mut self, src: &mut S) -> Result<(), Cut> {
        let base = src.position();
        let mut reader = OpReader::new(Tee { inner: src, buf: Vec::new(), budget: self.budget, over: false });
        let mut ops = 0u64;
        let outcome = loop {
            match reader.next_op() {
                Ok(Some(op)) => {
                    ops += 1;
                    if op.opcode == Opcode::Stop {
                        break Ok(());
                    }
                }
                Ok(None) if ops == 0 => break Err(Cut::End),
                Ok(None) => break Err(Cut::Stream),
                Err(e) => {
                    break Err(match e.kind() {
                        _ if reader.source_mut().over => Cut::Budget,
                        ErrorKind::Io(msg) => Cut::Io(msg.clone()),
                        _ => Cut::Stream,
                    })
                }
            }
        };
        let tee = reader.source_mut();
        self.budget = tee.budget;
        let bytes = std::mem::take(&mut tee.buf);
        if !bytes.is_empty() {
            self.segs.push(Segment { base, bytes });
        }
        outcome
    }

    /// What the last pickle read evaluates to, analysed on its own.
    fn last(&self) -> Option<Analysis> {
        self.segs.last().map(|s| analyze_bytes(&s.bytes, s.base))
    }

    /// All pickles held, analysed as the separate loads they are.
    fn analysis(&self) -> Option<Analysis> {
        if self.segs.is_empty() {
            return None;
        }
        let mut a = analyze(Spliced { segs: &self.segs, seg: 0, pos: 0 });
        // Each pickle is its own pickle.load by design of the format: the
        // machine's "another pickle follows" is not an anomaly here.
        a.events.retain(|e| !matches!(e.kind, EventKind::Anomaly(Anomaly::AnotherPickle { .. })));
        Some(a)
    }
}

/// Held pickles read back to back, each at its own offset: the machine sees
/// one stream of pickles whose offsets are those of the file.
struct Spliced<'a> {
    segs: &'a [Segment],
    seg: usize,
    pos: usize,
}

impl Spliced<'_> {
    /// The segment and position of the next byte, skipping finished segments.
    fn current(&self) -> Option<(&Segment, usize)> {
        let mut seg = self.seg;
        let mut pos = self.pos;
        while let Some(s) = self.segs.get(seg) {
            if pos < s.bytes.len() {
                return Some((s, pos));
            }
            seg += 1;
            pos = 0;
        }
        None
    }

    fn settle(&mut self) {
        while let Some(s) = self.segs.get(self.seg) {
            if self.pos < s.bytes.len() {
                return;
            }
            self.seg += 1;
            self.pos = 0;
        }
    }
}

impl ByteSource for Spliced<'_> {
    fn position(&self) -> u64 {
        match self.current() {
            Some((s, pos)) => s.base + pos as u64,
            None => self.segs.last().map(|s| s.base + s.bytes.len() as u64).unwrap_or(0),
        }
    }
    fn remaining(&self) -> Option<u64> {
        Some(self.current().map(|(s, pos)| (s.bytes.len() - pos) as u64).unwrap_or(0))
    }
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        if n == 0 {
            return Ok(Some(&[]));
        }
        self.settle();
        let Some(s) = self.segs.get(self.seg) else { return Ok(None) };
        let Some(end) = self.pos.checked_add(n) else { return Ok(None) };
        match s.bytes.get(self.pos..end) {
            Some(b) => {
                self.pos = end;
                Ok(Some(b))
            }
            None => Ok(None),
        }
    }
    fn take_line(&mut self, max: usize) -> io::Result<Line<'_>> {
        self.settle();
        let Some(s) = self.segs.get(self.seg) else { return Ok(Line::Eof) };
        let (line, used) = crate::pickle::source::line_at(&s.bytes[self.pos..], max);
        self.pos += used;
        Ok(line)
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        self.settle();
        let Some(s) = self.segs.get(self.seg) else { return Ok(0) };
        let left = (s.bytes.len() - self.pos) as u64;
        let k = n.min(left);
        // k <= left, which is a usize.
        self.pos += k as usize;
        Ok(k)
    }
    fn at_eof(&mut self) -> io::Result<bool> {
        self.settle();
        Ok(self.seg >= self.segs.len())
    }
}

/// A byte source read as a plain reader (for the bytes after the storages).
struct SourceRead<'a, S>(&'a mut S);

impl<S: ByteSource> Read for SourceRead<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut want = buf.len().min(TEE_CHUNK);
        if let Some(r) = self.0.remaining() {
            want = want.min(usize::try_from(r).unwrap_or(usize::MAX));
        }
        while want > 0 {
            if let Some(b) = self.0.take(want)? {
                buf[..want].copy_from_slice(b);
                return Ok(want);
            }
            want /= 2;
        }
        Ok(0)
    }
}

impl<S: ByteSource> Input for SourceRead<'_, S> {
    fn skip_forward(&mut self, n: u64) -> io::Result<u64> {
        self.0.skip(n)
    }
}

/// Reads a little-endian `i64` (a legacy storage's element count).
fn read_i64<S: ByteSource>(src: &mut S) -> io::Result<Option<i64>> {
    Ok(src.take(8)?.map(|b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        i64::from_le_bytes(a)
    }))
}

/// Reads a little-endian `i32` (a legacy tensor's dimension count).
fn read_i32<S: ByteSource>(src: &mut S) -> io::Result<Option<i32>> {
    Ok(src.take(4)?.map(|b| {
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        i32::from_le_bytes(a)
    }))
}

// ---------------------------------------------------------------------------
// Persistent ids
// ---------------------------------------------------------------------------

fn str_at(a: &Analysis, id: ValueId) -> Option<&str> {
    a.full_str(id)
}

fn int_at(a: &Analysis, id: ValueId) -> Option<i64> {
    match a.value(id) {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn tuple_at(a: &Analysis, id: ValueId) -> Option<&[ValueId]> {
    a.tuple(id)
}

fn root(a: &Analysis, index: usize) -> Option<ValueId> {
    a.pickles.get(index).and_then(|p| p.root)
}

/// What a persistent id's storage class is.
#[derive(Debug, Clone, PartialEq)]
enum Class {
    /// A storage class of [`STORAGE_CLASSES`].
    Known(&'static StorageClass),
    /// A `torch` global named `*Storage` that pkinspect does not know.
    UnknownStorage(String),
    /// Anything else, shown.
    NotStorage(String),
}

fn class_of(a: &Analysis, id: ValueId, r: &Renderer<'_>) -> Class {
    match a.value(id) {
        Value::Global(g) => match storage_class(&g.module, &g.name) {
            Some(c) => Class::Known(c),
            None if g.name.ends_with("Storage") && (&*g.module == "torch" || g.module.starts_with("torch.")) => {
                Class::UnknownStorage(global_name(&g.module, &g.name))
            }
            None => Class::NotStorage(global_name(&g.module, &g.name)),
        },
        _ => Class::NotStorage(r.expr(id)),
    }
}

impl Class {
    /// Bytes per counted element as `torch.save` writes the storage (an
    /// `UntypedStorage` is counted in bytes), or why the storage cannot be
    /// measured.
    fn size(&self) -> Result<u64, String> {
        match self {
            Class::Known(StorageClass { elem: StorageElem::Typed { size, .. }, .. }) => Ok(*size),
            Class::Known(StorageClass { elem: StorageElem::Bytes, .. }) => Ok(1),
            Class::Known(c @ StorageClass { elem: StorageElem::NoDtype, .. }) => Err(format!(
                "storage class {} has no class-level dtype: torch.load reads the storage class's .dtype and fails",
                global_name(c.module, c.name)
            )),
            Class::UnknownStorage(name) => {
                Err(format!("storage class {name} is not one pkinspect knows: its element size is unknown"))
            }
            Class::NotStorage(shown) => Err(format!(
                "storage class {shown} is not a torch *Storage global: torch.load would use it as one (its .dtype)"
            )),
        }
    }

    /// Why a loader of this layout cannot use the class although its size
    /// is known: the legacy loaders read `cls.dtype`, which `UntypedStorage`
    /// has not.
    fn refused(&self, layout: Layout) -> Option<String> {
        match (self, layout) {
            (Class::Known(c @ StorageClass { elem: StorageElem::Bytes, .. }), Layout::Legacy) => Some(format!(
                "storage class {} in a legacy checkpoint: the legacy loader reads the storage class's .dtype, \
                 which UntypedStorage has not, and torch.load fails (torch.save names UntypedStorage for dtypes \
                 without a typed storage class, such as float8 and uint16/32/64, which the legacy format cannot \
                 read back)",
                global_name(c.module, c.name)
            )),
            _ => None,
        }
    }

    /// Every reason torch.load cannot use this class in this layout.
    fn problem(&self, layout: Layout) -> Option<String> {
        self.size().err().or_else(|| self.refused(layout))
    }
}

/// Which persistent-id layout a loader expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `('storage', cls, key, location, numel)`.
    Zip,
    /// `('storage', cls, key, location, numel, view_metadata)` or
    /// `('module', cls, source_file, source)`.
    Legacy,
}

/// A storage a persistent id names.
#[derive(Debug, Clone, PartialEq)]
struct StorageRef {
    key: String,
    class: Class,
    numel: u64,
}

/// A persistent id, read as the torch loader reads it.
#[derive(Debug, Clone, PartialEq)]
enum Pid {
    Storage(StorageRef),
    /// A legacy `nn.Module` class with its source text.
    Module {
        class: String,
        file: String,
        /// Length of the source in bytes, and its first non-empty line.
        source: Option<(u64, String)>,
    },
    /// Not something `persistent_load` accepts: why.
    Bad(String),
}

fn parse_pid(a: &Analysis, pid: ValueId, layout: Layout, r: &Renderer<'_>) -> Pid {
    let shown = || r.expr(pid);
    let Some(items) = tuple_at(a, pid) else {
        return Pid::Bad(format!("persistent id {} is not a tuple: torch.load's persistent_load fails", shown()));
    };
    let tag = items.first().and_then(|&t| {
        let v = a.value(t);
        match (a.full_str(t), v.full_bytes()) {
            (Some(s), _) => Some(s.to_string()),
            // _maybe_decode_ascii: a bytes tag is decoded.
            (_, Some(b)) if b.is_ascii() => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    });
    match (tag.as_deref(), layout) {
        (Some("storage"), _) => {
            let want = if layout == Layout::Zip { 5 } else { 6 };
            if items.len() != want {
                return Pid::Bad(format!(
                    "storage persistent id {} has {} items where torch.load expects {want}",
                    shown(),
                    items.len()
                ));
            }
            let class = class_of(a, items[1], r);
            let Some(key) = str_at(a, items[2]) else {
                return Pid::Bad(format!("storage persistent id {} has a key that is not a string", shown()));
            };
            let Some(numel) = int_at(a, items[4]).and_then(|n| u64::try_from(n).ok()) else {
                return Pid::Bad(format!(
                    "storage persistent id {} has an element count that is not a non-negative integer",
                    shown()
                ));
            };
            if layout == Layout::Legacy {
                let view_ok = match (a.value(items[5]), a.tuple(items[5])) {
                    (Value::None, _) => true,
                    (_, Some(v)) => v.len() == 3 && int_at(a, v[1]).is_some() && int_at(a, v[2]).is_some(),
                    _ => false,
                };
                if !view_ok {
                    return Pid::Bad(format!(
                        "storage persistent id {} has view metadata that is neither None nor (key, offset, size)",
                        shown()
                    ));
                }
            }
            Pid::Storage(StorageRef { key: key.to_string(), class, numel })
        }
        (Some("module"), Layout::Legacy) if items.len() == 4 => {
            let class = match a.value(items[1]) {
                Value::Global(g) => global_name(&g.module, &g.name),
                _ => r.expr(items[1]),
            };
            let file = str_at(a, items[2]).map(|s| format!("{s:?}")).unwrap_or_else(|| r.expr(items[2]));
            let source = match a.value(items[3]) {
                Value::Str(r) => match a.str(*r) {
                    BlobView::Full(s) => {
                        let first = s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
                        let first: String = first.chars().take(60).collect();
                        Some((s.len() as u64, first))
                    }
                    BlobView::Part(p) => Some((p.len, String::new())),
                },
                _ => None,
            };
            Pid::Module { class, file, source }
        }
        (Some("module"), Layout::Legacy) => {
            Pid::Bad(format!("module persistent id {} has {} items where torch.load expects 4", shown(), items.len()))
        }
        (Some(other), Layout::Zip) if other != "storage" => Pid::Bad(format!(
            "persistent id {} is of type {other:?}: torch.load's zip loader accepts only 'storage'",
            shown()
        )),
        _ => Pid::Bad(format!("persistent id {} is of a type torch.load does not know", shown())),
    }
}

// ---------------------------------------------------------------------------
// Notes, capped
// ---------------------------------------------------------------------------

/// Notes about one checkpoint, at most [`MAX_TORCH_NOTES`] of them.
struct Notes {
    given: usize,
    first_member: Option<String>,
}

impl Notes {
    fn new() -> Notes {
        Notes { given: 0, first_member: None }
    }
}

impl Walker {
    fn torch_note(&mut self, n: &mut Notes, rule: Rule, member: &Option<String>, at: u64, msg: String) {
        // Limits and container errors are always kept: they say what was not scanned.
        if matches!(rule, Rule::LimitExceeded | Rule::ContainerError | Rule::DecompressionLimit) {
            self.note(rule, member, at, msg);
            return;
        }
        n.given += 1;
        if n.given <= MAX_TORCH_NOTES {
            if n.first_member.is_none() {
                n.first_member.clone_from(member);
            }
            self.note(rule, member, at, msg);
        }
    }

    fn torch_notes_done(&mut self, n: &Notes) {
        if n.given > MAX_TORCH_NOTES {
            let msg = format!(
                "{} PyTorch anomalies in this checkpoint; the first MAX_TORCH_NOTES ({MAX_TORCH_NOTES}) are listed",
                n.given
            );
            self.note(Rule::TorchAnomaly, &n.first_member, 0, msg);
        }
    }

    /// The note for a pickle that could not be read whole.
    fn torch_cut(&mut self, n: &mut Notes, cut: Cut, member: &Option<String>, at: u64, what: String) {
        match cut {
            Cut::End => self.torch_note(n, Rule::TorchAnomaly, member, at, format!("the input ends before {what}")),
            // The analysis of the bytes read reports the broken pickle.
            Cut::Stream => {}
            Cut::Io(msg) if msg.contains("decompression limit") => {
                self.torch_note(n, Rule::DecompressionLimit, member, at, msg)
            }
            Cut::Io(msg) => self.torch_note(n, Rule::ContainerError, member, at, format!("stream error: {msg}")),
            Cut::Budget => self.torch_note(
                n,
                Rule::LimitExceeded,
                member,
                at,
                format!(
                    "the pickles of this checkpoint exceed MAX_TORCH_PICKLE_BYTES ({MAX_TORCH_PICKLE_BYTES}); \
                     {what} and what follows were not scanned"
                ),
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// Zip checkpoints
// ---------------------------------------------------------------------------

/// What wrote a zip archive recognised as PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipKind {
    /// `torch.save` (torch ≥ 1.6): `torch.load` unpickles `data.pkl`.
    Checkpoint,
    /// `torch.jit.save`: a TorchScript archive, told by its `constants.pkl`
    /// record as `torch.load` tells it (`_is_torchscript_zip`). `torch.load`
    /// hands it to `torch.jit.load` (and refuses it under `weights_only=True`),
    /// which unpickles `data.pkl` (the module: `__torch__.*` classes),
    /// `constants.pkl` and the `code/**.debug_pkl` source maps
    /// (`torch.jit._pickle.*` helpers) with its own unpickler, and compiles
    /// the TorchScript source under `code/`.
    TorchScript,
}

/// What is appended to the `skipped_members` entry of a TorchScript
/// archive's source record: the mark a report shows the archive by.
pub const TORCHSCRIPT_SOURCE_MARK: &str = " (TorchScript source)";

impl ZipKind {
    /// The loader that reads this kind of archive, for messages.
    fn loader(self) -> &'static str {
        match self {
            ZipKind::Checkpoint => "torch.load",
            ZipKind::TorchScript => "torch.jit.load",
        }
    }

    /// The pickles whose persistent ids name storage records, each with the
    /// folder (under `<arch>/`) of the records it names.
    fn storage_pickles(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ZipKind::Checkpoint => &[("data.pkl", "data/")],
            ZipKind::TorchScript => &[("data.pkl", "data/"), ("constants.pkl", "constants/")],
        }
    }
}

/// True for a TorchScript archive's source record, `code/...` (relative to
/// `<arch>/`) other than a pickled source map: compiled by `torch.jit.load`,
/// never unpickled.
fn torchscript_source(rel: &str) -> bool {
    rel.starts_with("code/") && !rel.ends_with('/') && !rel.ends_with(".debug_pkl") && !rel.ends_with(".pkl")
}

/// A zip archive recognised as a PyTorch checkpoint or TorchScript archive,
/// between [`Walker::torch_zip_begin`] and [`Walker::torch_zip_end`].
pub(super) struct ZipCheckpoint {
    /// `<arch>/`, the folder of the first entry.
    prefix: String,
    /// Checkpoint or TorchScript: the flag a file summary can carry.
    pub(super) kind: ZipKind,
    /// Every record name with the offset of its local header.
    headers: HashMap<String, u64>,
    /// Parts found before the archive was walked.
    parts_from: usize,
    /// Skipped members listed before the archive was walked.
    skipped_from: usize,
    notes: Notes,
}

impl ZipCheckpoint {
    /// True for a member whose pickle `torch.load` (or `torch.jit.load`) reads.
    fn loads_pickle(&self, raw: &str) -> bool {
        let Some(rel) = raw.strip_prefix(&self.prefix) else { return false };
        rel == "data.pkl"
            || (self.kind == ZipKind::TorchScript
                && (rel == "constants.pkl" || (rel.starts_with("code/") && rel.ends_with(".debug_pkl"))))
    }
}

impl Walker {
    /// Called before a zip archive's members are walked, with every central
    /// directory entry as `(name, uncompressed size, local header offset)`.
    ///
    /// Recognises a PyTorch checkpoint or TorchScript archive by its record
    /// names; if it is one, reads the persistent ids of each pickle the
    /// loader reads (from the archive as the zip crate reads it), checks
    /// each against its storage record, and marks the records they name (and
    /// TorchScript source) as raw bytes for [`Walker::torch_raw`].
    pub(super) fn torch_zip_begin<'n, R: Read + Seek>(
        &mut self,
        r: &mut R,
        records: impl Iterator<Item = (&'n str, u64, u64)>,
        member: &Option<String>,
    ) -> Option<ZipCheckpoint> {
        let records: Vec<(&str, u64, u64)> = records.collect();
        let first = records.first()?.0;
        let prefix = first[..=first.find('/')?].to_string();
        // First record of each name wins, as the folder listing is read.
        let mut inside: HashMap<&str, (u64, u64)> = HashMap::new();
        for &(name, size, header) in &records {
            if let Some(rel) = name.strip_prefix(prefix.as_str()) {
                inside.entry(rel).or_insert((size, header));
            }
        }
        let has = |k: &str| inside.contains_key(k);
        if !has("data.pkl") || !["version", ".data/version", ".format_version", "byteorder"].iter().any(|k| has(k)) {
            return None;
        }
        let kind = if has("constants.pkl") { ZipKind::TorchScript } else { ZipKind::Checkpoint };
        let mut cp = ZipCheckpoint {
            kind,
            headers: records.iter().map(|&(n, _, h)| (n.to_string(), h)).collect(),
            parts_from: self.out.parts.len(),
            skipped_from: self.out.skipped_members.len(),
            notes: Notes::new(),
            prefix,
        };
        let mut notes = Notes::new();
        for &(name, _, header) in &records {
            if !name.starts_with(cp.prefix.as_str()) && !name.ends_with('/') {
                let msg = format!(
                    "record outside the checkpoint's folder {:?}: {} reads only records under the folder \
                     of the first entry and never reads this one; it is scanned like any member",
                    cp.prefix,
                    kind.loader()
                );
                self.torch_note(&mut notes, Rule::TorchAnomaly, &join(member, name), header, msg);
            }
        }
        if kind == ZipKind::TorchScript {
            for &(name, _, _) in &records {
                if name.strip_prefix(cp.prefix.as_str()).is_some_and(torchscript_source) {
                    self.raw_records.insert(join(member, name).unwrap_or_default());
                }
            }
        }
        for &(pickle, folder) in kind.storage_pickles() {
            self.torch_storage_refs(r, &cp, &inside, pickle, folder, member, &mut notes);
        }
        cp.notes = notes;
        Some(cp)
    }

    /// Checks the persistent ids of `<arch>/<pickle>` against the records of
    /// `<arch>/<folder>` they name, and marks those records as raw bytes.
    #[allow(clippy::too_many_arguments)]
    fn torch_storage_refs<R: Read + Seek>(
        &mut self,
        r: &mut R,
        cp: &ZipCheckpoint,
        inside: &HashMap<&str, (u64, u64)>,
        pickle: &str,
        folder: &str,
        member: &Option<String>,
        notes: &mut Notes,
    ) {
        let loader = cp.kind.loader();
        let pkl_name = format!("{}{pickle}", cp.prefix);
        let pkl_member = join(member, &pkl_name);
        let Some(&(pkl_size, pkl_header)) = inside.get(pickle) else { return };
        if pkl_size > MAX_TORCH_PICKLE_BYTES as u64 {
            let msg = format!(
                "{pickle} declares {pkl_size} bytes, more than MAX_TORCH_PICKLE_BYTES ({MAX_TORCH_PICKLE_BYTES}): \
                 its storage references were not checked"
            );
            self.torch_note(notes, Rule::LimitExceeded, &pkl_member, pkl_header, msg);
            return;
        }
        // The walk reports what is wrong with an unreadable member.
        let Some(bytes) = read_record(r, &pkl_name) else { return };
        let a = analyze_bytes(&bytes, 0);
        let rend = Renderer::new(&a, SHOWN_CHARS);
        for e in &a.events {
            let EventKind::PersistentId { pid } = e.kind else { continue };
            let msg = match parse_pid(&a, pid, Layout::Zip, &rend) {
                Pid::Storage(s) => {
                    let rel = format!("{folder}{}", s.key);
                    let record = format!("{}{rel}", cp.prefix);
                    if !s.key.contains('/') {
                        self.raw_records.insert(join(member, &record).unwrap_or_default());
                    }
                    match (inside.get(rel.as_str()), s.class.size()) {
                        (_, Err(why)) => Some(why),
                        (None, _) => Some(format!(
                            "persistent id names storage {:?}, but the archive has no record {record:?}: \
                             {loader} fails on it",
                            s.key
                        )),
                        (Some(&(size, _)), Ok(elem)) => match s.numel.checked_mul(elem) {
                            Some(need) if need <= size => None,
                            Some(need) => Some(format!(
                                "storage {:?} needs {} elements × {elem} bytes = {need} bytes, but {record:?} \
                                 holds {size}: {loader} fails on it",
                                s.key, s.numel
                            )),
                            None => Some(format!(
                                "storage {:?} declares {} elements of {elem} bytes, more bytes than any file holds",
                                s.key, s.numel
                            )),
                        },
                    }
                }
                Pid::Module { class, .. } => Some(format!(
                    "module persistent id for {class} in a zip checkpoint: {loader} accepts only storages and \
                     fails on it"
                )),
                Pid::Bad(why) => Some(why),
            };
            if let Some(msg) = msg {
                self.torch_note(notes, Rule::TorchAnomaly, &pkl_member, e.offset, msg);
            }
        }
    }

    /// True when `name` (a member path as the walk builds it) is a storage
    /// record of a torch checkpoint (raw tensor bytes, never unpickled) or
    /// TorchScript source.
    pub(super) fn torch_raw(&self, name: &Option<String>) -> bool {
        name.as_ref().is_some_and(|n| self.raw_records.contains(n))
    }

    /// Called after a torch checkpoint's members were walked: reports every
    /// member scanned as a pickle that the loader never unpickles, and the
    /// notes gathered before the walk; marks a TorchScript archive's source
    /// records in `skipped_members` with [`TORCHSCRIPT_SOURCE_MARK`].
    pub(super) fn torch_zip_end(&mut self, cp: Option<ZipCheckpoint>, member: &Option<String>) {
        let Some(mut cp) = cp else { return };
        // The path of a member of this archive, relative to it; None for one of a nested archive.
        let record = |path: &str| -> Option<String> {
            let inner = match member {
                Some(m) => path.strip_prefix(m.as_str())?.strip_prefix('!')?,
                None => path,
            };
            Some(inner.split('!').next().unwrap_or(inner).to_string())
        };
        let mut extra: Vec<String> = Vec::new();
        for part in &self.out.parts[cp.parts_from.min(self.out.parts.len())..] {
            let Some(raw) = part.member.as_deref().and_then(record) else { continue };
            // Records outside the folder were reported as such.
            let inside = raw.starts_with(cp.prefix.as_str());
            if inside && cp.headers.contains_key(&raw) && !cp.loads_pickle(&raw) && !extra.contains(&raw) {
                extra.push(raw);
            }
        }
        if cp.kind == ZipKind::TorchScript {
            let from = cp.skipped_from.min(self.out.skipped_members.len());
            for name in &mut self.out.skipped_members[from..] {
                let source = record(name).is_some_and(|raw| {
                    *name == join(member, &raw).unwrap_or_default()
                        && raw.strip_prefix(cp.prefix.as_str()).is_some_and(torchscript_source)
                });
                if source {
                    name.push_str(TORCHSCRIPT_SOURCE_MARK);
                }
            }
        }
        let mut notes = std::mem::replace(&mut cp.notes, Notes::new());
        for raw in extra {
            let header = cp.headers.get(&raw).copied().unwrap_or(0);
            let msg = format!(
                "a pickle in a PyTorch checkpoint that {} never unpickles (it reads {}): scanned anyway, as \
                 another tool may load it",
                cp.kind.loader(),
                match cp.kind {
                    ZipKind::Checkpoint => format!("{}data.pkl", cp.prefix),
                    ZipKind::TorchScript => {
                        format!("{p}data.pkl, {p}constants.pkl and {p}code/**.debug_pkl", p = cp.prefix)
                    }
                }
            );
            self.torch_note(&mut notes, Rule::TorchAnomaly, &join(member, &raw), header, msg);
        }
        self.torch_notes_done(&notes);
    }
}

/// A record's bytes (at most [`MAX_TORCH_PICKLE_BYTES`]) as the zip crate
/// reads it; what was read before an error (a CRC mismatch) is kept.
fn read_record<R: Read + Seek>(r: &mut R, name: &str) -> Option<Vec<u8>> {
    let mut archive = ::zip::ZipArchive::new(&mut *r).ok()?;
    let f = archive.by_name(name).ok()?;
    let mut buf = Vec::new();
    let _ = f.take(MAX_TORCH_PICKLE_BYTES as u64).read_to_end(&mut buf);
    Some(buf)
}

// ---------------------------------------------------------------------------
// Legacy non-zip checkpoints
// ---------------------------------------------------------------------------

/// What the five pickles of a legacy checkpoint are, for messages.
const LEGACY_PICKLES: [&str; 5] =
    ["the magic number", "the protocol version", "sys_info", "the object pickle", "the storage key list"];

impl Walker {
    /// Walks a legacy (non-zip) checkpoint: the five pickles as separate
    /// loads, then the storage section by its declared sizes, then whatever
    /// follows it.
    pub(super) fn torch_legacy<R: Input>(
        &mut self,
        p: Peeked<R>,
        total: Option<u64>,
        member: Option<String>,
        layers: Vec<&'static str>,
    ) {
        let mut src = ReadSource::new(p, total);
        let mut held = Held::new();
        let mut notes = Notes::new();
        let mut cut = None;
        for what in LEGACY_PICKLES {
            let at = src.position();
            if let Err(c) = held.pickle(&mut src) {
                cut = Some((c, at, what));
                break;
            }
        }
        let Some(analysis) = held.analysis() else { return };
        let trailing = match cut {
            None => self.legacy_storages(&analysis, &mut src, &member, &layers, &mut notes),
            Some((c, at, what)) => {
                self.torch_cut(
                    &mut notes,
                    c,
                    &member,
                    at,
                    format!("{what} (a legacy PyTorch checkpoint has 5 pickles)"),
                );
                None
            }
        };
        self.out.parts.push(Part { member, layers, analysis });
        self.out.parts.extend(trailing);
        self.torch_notes_done(&notes);
    }

    /// Checks the legacy object pickle's persistent ids and walks the
    /// storage section. Returns the analysis of a pickle found after it.
    fn legacy_storages<S: ByteSource>(
        &mut self,
        a: &Analysis,
        src: &mut S,
        member: &Option<String>,
        layers: &[&'static str],
        notes: &mut Notes,
    ) -> Option<Part> {
        let rend = Renderer::new(a, SHOWN_CHARS);
        if let Some(v) = root(a, 1) {
            if int_at(a, v) != Some(LEGACY_PROTOCOL_VERSION) {
                let msg = format!(
                    "protocol version {} where torch.load requires {LEGACY_PROTOCOL_VERSION}: it refuses the file",
                    rend.expr(v)
                );
                let at = a.pickles.get(1).map(|p| p.start).unwrap_or(0);
                self.torch_note(notes, Rule::TorchAnomaly, member, at, msg);
            }
        }
        // Storages the object pickle names, first reference wins (as in persistent_load).
        let mut storages: HashMap<String, StorageRef> = HashMap::new();
        let mut named: Vec<String> = Vec::new();
        for e in a.events.iter().filter(|e| e.pickle == 3) {
            let EventKind::PersistentId { pid } = e.kind else { continue };
            let msg = match parse_pid(a, pid, Layout::Legacy, &rend) {
                Pid::Storage(s) => {
                    let why = s.class.problem(Layout::Legacy);
                    if !storages.contains_key(&s.key) {
                        named.push(s.key.clone());
                        storages.insert(s.key.clone(), s);
                    }
                    why
                }
                Pid::Module { class, file, source } => Some(match source {
                    Some((len, first)) => format!(
                        "module persistent id carries {len} bytes of Python source for {class} (file {file}, \
                         first line {first:?}): torch.load compares it with the installed class and imports the \
                         class; it does not run the source"
                    ),
                    None => format!("module persistent id for {class} (file {file}) without source"),
                }),
                Pid::Bad(why) => Some(why),
            };
            if let Some(msg) = msg {
                self.torch_note(notes, Rule::TorchAnomaly, member, e.offset, msg);
            }
        }
        let keys_at = a.pickles.get(4).map(|p| p.start).unwrap_or(0);
        let keys: Vec<&str> = match root(a, 4).map(|v| a.value(v)) {
            Some(Value::List(items)) => match items.iter().map(|&k| str_at(a, k)).collect::<Option<Vec<_>>>() {
                Some(k) => k,
                None => {
                    let msg = "the storage key list holds something other than strings: the storage section \
                               cannot be followed";
                    self.torch_note(notes, Rule::TorchAnomaly, member, keys_at, msg.into());
                    return None;
                }
            },
            _ => {
                let msg = "the fifth pickle is not the list of storage keys: the storage section cannot be followed";
                self.torch_note(notes, Rule::TorchAnomaly, member, keys_at, msg.into());
                return None;
            }
        };
        if keys.len() > MAX_TORCH_STORAGES {
            let msg = format!(
                "{} storages, more than MAX_TORCH_STORAGES ({MAX_TORCH_STORAGES}): the storage section was not checked",
                keys.len()
            );
            self.torch_note(notes, Rule::LimitExceeded, member, keys_at, msg);
            return None;
        }
        for key in &keys {
            let at = src.position();
            let Some(s) = storages.get(*key) else {
                let msg = format!(
                    "storage {key:?} is listed but no persistent id names it: torch.load fails (KeyError); \
                     the rest of the storage section cannot be followed"
                );
                self.torch_note(notes, Rule::TorchAnomaly, member, at, msg);
                return None;
            };
            // An unknown class was reported with its persistent id. An
            // UntypedStorage (reported too) was written in bytes: followed.
            let Ok(elem) = s.class.size() else { return None };
            if let Err(msg) = self.storage_bytes(src, key, Some(s.numel), elem, member, notes) {
                self.torch_note(notes, Rule::TorchAnomaly, member, at, msg);
                return None;
            }
        }
        for key in named.iter().filter(|k| !keys.contains(&k.as_str())) {
            let msg = format!(
                "storage {key:?} is named by a persistent id but has no data in the storage section: torch.load \
                 leaves it uninitialised"
            );
            self.torch_note(notes, Rule::TorchAnomaly, member, keys_at, msg);
        }
        self.torch_trailing(src, member, layers, "the last storage", notes)
    }

    /// One storage's `int64` element count and raw bytes, skipped. `Err`
    /// when the section cannot be followed past it.
    fn storage_bytes<S: ByteSource>(
        &mut self,
        src: &mut S,
        key: &str,
        expect: Option<u64>,
        elem: u64,
        member: &Option<String>,
        notes: &mut Notes,
    ) -> Result<(), String> {
        let at = src.position();
        let numel = match read_i64(src) {
            Ok(Some(n)) => n,
            Ok(None) => return Err(format!("the input ends before the element count of storage {key:?}")),
            Err(e) => return Err(format!("read error before storage {key:?}: {e}")),
        };
        let Ok(numel) = u64::try_from(numel) else {
            return Err(format!("storage {key:?} declares a negative element count ({numel})"));
        };
        if let Some(expect) = expect.filter(|&e| e != numel) {
            let msg = format!(
                "storage {key:?} holds {numel} elements where its persistent id says {expect}: torch.load refuses \
                 it (wrong byte size)"
            );
            self.torch_note(notes, Rule::TorchAnomaly, member, at, msg);
        }
        let Some(nbytes) = numel.checked_mul(elem) else {
            return Err(format!("storage {key:?} declares {numel} elements of {elem} bytes, more than any file holds"));
        };
        if let Some(left) = src.remaining().filter(|&left| nbytes > left) {
            return Err(format!("storage {key:?} declares {nbytes} bytes of data, but only {left} remain"));
        }
        match src.skip(nbytes) {
            Ok(got) if got == nbytes => Ok(()),
            Ok(got) => Err(format!("the input ends inside storage {key:?} ({got} of {nbytes} bytes)")),
            Err(e) => Err(format!("read error inside storage {key:?}: {e}")),
        }
    }

    /// Whatever follows the last storage: scanned when it is a pickle
    /// (PK208), reported by size otherwise (PK207).
    fn torch_trailing<S: ByteSource>(
        &mut self,
        src: &mut S,
        member: &Option<String>,
        layers: &[&'static str],
        after: &str,
        notes: &mut Notes,
    ) -> Option<Part> {
        let at = src.position();
        match src.at_eof() {
            Ok(true) => return None,
            Ok(false) => {}
            Err(e) => {
                self.torch_note(notes, Rule::ContainerError, member, at, format!("read error: {e}"));
                return None;
            }
        }
        let rest = src.remaining();
        let mut p = match Peeked::new(SourceRead(src)) {
            Ok(p) => p,
            Err(e) => {
                self.torch_note(notes, Rule::ContainerError, member, at, format!("read error: {e}"));
                return None;
            }
        };
        if sniff(p.head()) == Format::Pickle {
            let msg = format!(
                "a pickle follows {after} at offset {at}: torch.load stops before it, a loader that reads on runs \
                 it; it was scanned"
            );
            self.torch_note(notes, Rule::MultiplePickles, member, at, msg);
            let analysis = analyze(ReadSource::with_base(p, at, rest));
            return Some(Part { member: member.clone(), layers: layers.to_vec(), analysis });
        }
        let n = p.skip_forward(u64::MAX).unwrap_or(0);
        let msg = format!("{n} bytes after {after} that torch.load never reads");
        self.torch_note(notes, Rule::TrailingData, member, at, msg);
        None
    }
}

// ---------------------------------------------------------------------------
// Legacy tar checkpoints
// ---------------------------------------------------------------------------

/// A member of a legacy tar checkpoint that mixes pickles and raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TarSection {
    /// `storages`: count, then `(key, location, storage_type)` + `int64`
    /// count + bytes per storage, then a list of views.
    Storages,
    /// `tensors`: count, then `(key, storage_id, original_type)` + `<i4 ndim>`,
    /// 4 bytes, `ndim` sizes, `ndim` strides and an offset (`<q>` each).
    Tensors,
}

impl TarSection {
    fn name(self) -> &'static str {
        match self {
            TarSection::Storages => "storages",
            TarSection::Tensors => "tensors",
        }
    }
}

/// The section a tar member of this name is in a legacy checkpoint.
pub(super) fn tar_section(name: &str) -> Option<TarSection> {
    match name {
        "storages" => Some(TarSection::Storages),
        "tensors" => Some(TarSection::Tensors),
        _ => None,
    }
}

impl Walker {
    /// Walks the `storages` or `tensors` member of a tar archive: when it
    /// starts with a pickle, as the legacy loader reads it; else as any member.
    pub(super) fn torch_tar_section<R: Input>(
        &mut self,
        body: R,
        size: u64,
        member: Option<String>,
        layers: Vec<&'static str>,
        depth: usize,
        section: TarSection,
    ) {
        let p = match Peeked::new(body) {
            Ok(p) => p,
            Err(e) => {
                self.note(Rule::ContainerError, &member, 0, format!("read error: {e}"));
                return;
            }
        };
        if sniff(p.head()) != Format::Pickle {
            self.stream(p, Some(size), member, layers, depth);
            return;
        }
        let mut src = ReadSource::new(p, Some(size));
        let mut held = Held::new();
        let mut notes = Notes::new();
        let trailing = self.tar_records(&mut src, &mut held, section, &member, &layers, &mut notes);
        if let Some(analysis) = held.analysis() {
            self.out.parts.push(Part { member, layers, analysis });
        }
        self.out.parts.extend(trailing);
        self.torch_notes_done(&notes);
    }

    fn tar_records<S: ByteSource>(
        &mut self,
        src: &mut S,
        held: &mut Held,
        section: TarSection,
        member: &Option<String>,
        layers: &[&'static str],
        notes: &mut Notes,
    ) -> Option<Part> {
        let what = section.name();
        let at = src.position();
        if let Err(c) = held.pickle(src) {
            self.torch_cut(notes, c, member, at, format!("the record count of `{what}`"));
            return None;
        }
        let count = held.last().and_then(|a| root(&a, 0).and_then(|v| int_at(&a, v)));
        let Some(count) = count.and_then(|c| u64::try_from(c).ok()) else {
            let msg = format!("`{what}` does not start with a record count: the legacy loader fails on it");
            self.torch_note(notes, Rule::TorchAnomaly, member, at, msg);
            return None;
        };
        if count > MAX_TORCH_STORAGES as u64 {
            let msg = format!(
                "`{what}` declares {count} records, more than MAX_TORCH_STORAGES ({MAX_TORCH_STORAGES}): not followed"
            );
            self.torch_note(notes, Rule::LimitExceeded, member, at, msg);
            return None;
        }
        for i in 0..count {
            let at = src.position();
            if let Err(c) = held.pickle(src) {
                self.torch_cut(notes, c, member, at, format!("record {i} of {count} in `{what}`"));
                return None;
            }
            let h = held.last()?;
            let rend = Renderer::new(&h, SHOWN_CHARS);
            let header = root(&h, 0);
            let items = header.and_then(|v| tuple_at(&h, v)).filter(|t| t.len() == 3);
            let result = match (section, items) {
                (TarSection::Storages, Some(t)) => {
                    let key = rend.expr(t[0]);
                    let class = class_of(&h, t[2], &rend);
                    if let Some(why) = class.refused(Layout::Legacy) {
                        self.torch_note(notes, Rule::TorchAnomaly, member, at, why);
                    }
                    match class.size() {
                        Ok(elem) => self.storage_bytes(src, &key, None, elem, member, notes),
                        Err(why) => Err(why),
                    }
                }
                (TarSection::Tensors, Some(_)) => tensor_metadata(src),
                (_, None) => Err(format!(
                    "record {i} of `{what}` is {} where the legacy loader unpacks a 3-tuple",
                    header.map(|v| rend.expr(v)).unwrap_or_else(|| "missing".into())
                )),
            };
            if let Err(msg) = result {
                let msg = format!("{msg}; the rest of `{what}` cannot be followed");
                self.torch_note(notes, Rule::TorchAnomaly, member, at, msg);
                return None;
            }
        }
        if section == TarSection::Storages {
            let at = src.position();
            if let Err(c) = held.pickle(src) {
                self.torch_cut(notes, c, member, at, "the list of storage views in `storages`".into());
                return None;
            }
            let views_ok =
                held.last().is_some_and(|a| root(&a, 0).is_some_and(|v| matches!(a.value(v), Value::List(_))));
            if !views_ok {
                let msg = "the last pickle of `storages` is not the list of storage views".to_string();
                self.torch_note(notes, Rule::TorchAnomaly, member, at, msg);
            }
        }
        let after = match section {
            TarSection::Storages => "the list of storage views",
            TarSection::Tensors => "the last tensor",
        };
        self.torch_trailing(src, member, layers, after, notes)
    }
}

/// Skips one legacy tensor's metadata: `<i4 ndim>`, 4 bytes, `ndim` sizes,
/// `ndim` strides and the storage offset (`<q>` each).
fn tensor_metadata<S: ByteSource>(src: &mut S) -> Result<(), String> {
    let ndim = match read_i32(src) {
        Ok(Some(n)) => n,
        Ok(None) => return Err("the input ends before a tensor's dimension count".into()),
        Err(e) => return Err(format!("read error: {e}")),
    };
    let dims = u64::try_from(ndim).ok().filter(|&d| d <= MAX_TORCH_TENSOR_DIMS).ok_or_else(|| {
        format!("a tensor declares {ndim} dimensions (0 to MAX_TORCH_TENSOR_DIMS, {MAX_TORCH_TENSOR_DIMS}, accepted)")
    })?;
    // 4 skipped bytes, sizes and strides, the offset; dims is small, so no overflow.
    let n = 4 + dims * 16 + 8;
    if let Some(left) = src.remaining().filter(|&left| n > left) {
        return Err(format!("a tensor's metadata needs {n} bytes, but only {left} remain"));
    }
    match src.skip(n) {
        Ok(got) if got == n => Ok(()),
        Ok(_) => Err("the input ends inside a tensor's metadata".into()),
        Err(e) => Err(format!("read error: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::source::SliceSource;

    /// A protocol-2 pickle of the legacy magic number.
    const MAGIC_P2: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";

    #[test]
    fn legacy_magic_is_recognised_in_every_protocol_form() {
        assert!(is_legacy(MAGIC_P2));
        // Protocol 4 frames it.
        let mut p4 = b"\x80\x04\x95\x0d\x00\x00\x00\x00\x00\x00\x00".to_vec();
        p4.extend_from_slice(&MAGIC_P2[2..]);
        assert!(is_legacy(&p4));
        assert!(is_legacy(LEGACY_MAGIC_TEXT));
        // The decimal text is the same number.
        let n = LEGACY_MAGIC.iter().rev().fold(0u128, |acc, &b| acc * 256 + u128::from(b));
        assert_eq!(n, 0x1950a86a20f9469cfc6c);
        assert_eq!(format!("L{n}L\n."), String::from_utf8_lossy(LEGACY_MAGIC_TEXT));
        // Another number, or more after it in the same pickle, is not the magic pickle.
        let mut other = MAGIC_P2.to_vec();
        other[4] ^= 1;
        assert!(!is_legacy(&other));
        assert!(!is_legacy(&MAGIC_P2[..MAGIC_P2.len() - 1]));
        assert!(!is_legacy(b"\x80\x02K\x01."));
    }

    /// The storage class of a global, as a persistent id's class.
    fn class(module: &str, name: &str) -> Class {
        let mut p = b"\x80\x02c".to_vec();
        p.extend_from_slice(format!("{module}\n{name}\n.").as_bytes());
        let a = analyze_bytes(&p, 0);
        let r = Renderer::new(&a, SHOWN_CHARS);
        class_of(&a, root(&a, 0).expect("root"), &r)
    }

    #[test]
    fn element_sizes_follow_the_dtype() {
        assert_eq!(class("torch", "FloatStorage").size(), Ok(4));
        assert_eq!(class("torch", "BFloat16Storage").size(), Ok(2));
        assert_eq!(class("torch", "ComplexDoubleStorage").size(), Ok(16));
        assert_eq!(class("torch", "QInt32Storage").size(), Ok(4));
        assert_eq!(class("torch.cuda", "LongStorage").size(), Ok(8));
        assert_eq!(class("torch.cuda", "ComplexFloatStorage").size(), Ok(8));
        // Counted in bytes, and refused by the legacy loaders only.
        for module in ["torch", "torch.storage"] {
            let c = class(module, "UntypedStorage");
            assert_eq!(c.size(), Ok(1));
            assert_eq!(c.problem(Layout::Zip), None);
            assert!(c.problem(Layout::Legacy).is_some_and(|m| m.contains("has not")), "{c:?}");
        }
        let typed = class("torch.storage", "TypedStorage");
        assert!(typed.size().is_err_and(|m| m.contains("no class-level dtype")));
        // No such class in torch.cuda, nor a float8 storage class.
        assert!(matches!(class("torch.cuda", "QInt8Storage"), Class::UnknownStorage(_)));
        assert!(matches!(class("torch", "Float8Storage"), Class::UnknownStorage(_)));
        assert!(matches!(class("os", "FloatStorage"), Class::NotStorage(_)));
    }

    /// Every storage class of torch 2.11's weights-only allowlist
    /// (`fixtures/torch-real/torch_allowed_globals.json`) is in the table, and
    /// nothing else but the `torch.UntypedStorage` alias.
    #[test]
    fn storage_table_is_torchs_list() {
        let text = std::fs::read_to_string("fixtures/torch-real/torch_allowed_globals.json").expect("globals");
        let names: Vec<String> = serde_json::from_str(&text).expect("a JSON list");
        let mut want: Vec<String> = names.into_iter().filter(|n| n.ends_with("Storage")).collect();
        want.push("torch.UntypedStorage".into());
        want.sort();
        let mut got: Vec<String> = STORAGE_CLASSES.iter().map(|c| format!("{}.{}", c.module, c.name)).collect();
        got.sort();
        assert_eq!(got, want);
        // One entry per class, and every cuda class has the size of its cpu twin.
        for c in STORAGE_CLASSES {
            assert_eq!(storage_class(c.module, c.name), Some(c));
            if c.module == "torch.cuda" {
                assert_eq!(storage_class("torch", c.name).map(|t| t.elem), Some(c.elem));
            }
        }
    }

    #[test]
    fn held_pickles_read_back_with_their_offsets() {
        // Two pickles, then raw bytes that are not a pickle.
        let mut data = MAGIC_P2.to_vec();
        data.extend_from_slice(b"\x80\x02M\xe9\x03.");
        data.extend_from_slice(b"\x00\x01\x02");
        let mut src = SliceSource::new(&data, 100);
        let mut held = Held::new();
        held.pickle(&mut src).expect("first");
        held.pickle(&mut src).expect("second");
        assert_eq!(src.position(), 100 + data.len() as u64 - 3);
        assert!(matches!(held.pickle(&mut src), Err(Cut::Stream)));
        let a = held.analysis().expect("analysis");
        assert_eq!(a.pickles.len(), 2);
        assert_eq!(a.pickles[1].start, 100 + MAGIC_P2.len() as u64);
        assert_eq!(int_at(&a, root(&a, 1).expect("root")), Some(1001));
        // No "another pickle" anomaly between separate loads.
        assert!(!a.events.iter().any(|e| matches!(e.kind, EventKind::Anomaly(Anomaly::AnotherPickle { .. }))));
        // The byte where a third pickle should start is reported as the machine reports trailing bytes.
        assert!(a.events.iter().any(|e| matches!(e.kind, EventKind::Anomaly(Anomaly::TrailingData { .. }))));
    }

    #[test]
    fn held_pickles_stop_at_the_budget() {
        let mut data = b"\x80\x04\x8e".to_vec();
        let len = MAX_TORCH_PICKLE_BYTES as u64 + 1;
        data.extend_from_slice(&len.to_le_bytes());
        let mut src = SliceSource::new(&data, 0);
        let mut held = Held::new();
        // The declared length is checked against what remains first.
        assert!(matches!(held.pickle(&mut src), Err(Cut::Stream)));
        // A long argument that is there is copied until the budget is spent.
        let mut held = Held { segs: Vec::new(), budget: 16 };
        let mut data = b"\x80\x04C\x20".to_vec();
        data.extend_from_slice(&[b'x'; 32]);
        data.push(b'.');
        let mut src = SliceSource::new(&data, 0);
        assert!(matches!(held.pickle(&mut src), Err(Cut::Budget)));
        let mut held = Held { segs: Vec::new(), budget: 64 };
        let mut src = SliceSource::new(&data, 0);
        held.pickle(&mut src).expect("fits");
        assert_eq!(held.segs[0].bytes, data);
    }

    #[test]
    fn tee_copies_skipped_arguments() {
        // A BINBYTES8 longer than MAX_INLINE_ARG is skipped by the reader; the tee keeps it.
        let n = crate::limits::MAX_INLINE_ARG + 10;
        let mut data = b"\x80\x04\x8e".to_vec();
        data.extend_from_slice(&(n as u64).to_le_bytes());
        data.extend(std::iter::repeat_n(7u8, n));
        data.push(b'.');
        let mut src = SliceSource::new(&data, 0);
        let mut held = Held::new();
        held.pickle(&mut src).expect("pickle");
        assert_eq!(held.segs[0].bytes.len(), data.len());
        let a = held.analysis().expect("analysis");
        assert!(a.error.is_none(), "{:?}", a.error);
        assert_eq!(a.pickles[0].end, data.len() as u64);
    }

    fn pid_of(p: &[u8], layout: Layout) -> Pid {
        let a = analyze_bytes(p, 0);
        let pid = a
            .events
            .iter()
            .find_map(|e| match e.kind {
                EventKind::PersistentId { pid } => Some(pid),
                _ => None,
            })
            .expect("a persistent id");
        let r = Renderer::new(&a, SHOWN_CHARS);
        parse_pid(&a, pid, layout, &r)
    }

    #[test]
    fn persistent_ids_are_read_as_torch_reads_them() {
        let zip =
            b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ.";
        assert_eq!(
            pid_of(zip, Layout::Zip),
            Pid::Storage(StorageRef { key: "0".into(), class: class("torch", "FloatStorage"), numel: 6 })
        );
        // The same 5-tuple is short for the legacy loader.
        assert!(matches!(pid_of(zip, Layout::Legacy), Pid::Bad(m) if m.contains("expects 6")));
        let legacy =
            b"\x80\x02(X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x007X\x03\x00\x00\x00cpuK\x03NtQ.";
        assert_eq!(
            pid_of(legacy, Layout::Legacy),
            Pid::Storage(StorageRef { key: "7".into(), class: class("torch", "HalfStorage"), numel: 3 })
        );
        // A storage class that is not a storage.
        let bad = b"\x80\x02(X\x07\x00\x00\x00storagecos\nsystem\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ.";
        match pid_of(bad, Layout::Zip) {
            Pid::Storage(s) => assert!(s.class.size().is_err_and(|m| m.contains("os.system"))),
            other => panic!("{other:?}"),
        }
        // Not a tuple; an unknown tag; a negative count.
        assert!(
            matches!(pid_of(b"\x80\x02X\x01\x00\x00\x000Q.", Layout::Zip), Pid::Bad(m) if m.contains("not a tuple"))
        );
        assert!(
            matches!(pid_of(b"\x80\x02X\x03\x00\x00\x00abc\x85Q.", Layout::Zip), Pid::Bad(m) if m.contains("'storage'"))
        );
        let neg = b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ\xff\xff\xff\xfftQ.";
        assert!(matches!(pid_of(neg, Layout::Zip), Pid::Bad(m) if m.contains("non-negative")));
        // A module id with its source.
        let module = b"\x80\x02(X\x06\x00\x00\x00modulectorch.nn.modules.linear\nLinear\nX\x09\x00\x00\x00linear.pyX\x13\x00\x00\x00\nprint('hi')\nx = 1\ntQ.";
        match pid_of(module, Layout::Legacy) {
            Pid::Module { class, source: Some((19, first)), .. } => {
                assert_eq!(class, "torch.nn.modules.linear.Linear");
                assert_eq!(first, "print('hi')");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A legacy checkpoint: the five pickles, then `storages` as (key, bytes).
    fn legacy(object: &[u8], keys: &[&str], storages: &[(i64, usize)], tail: &[u8]) -> Vec<u8> {
        let mut out = MAGIC_P2.to_vec();
        out.extend_from_slice(b"\x80\x02M\xe9\x03.");
        out.extend_from_slice(b"\x80\x02}.");
        out.extend_from_slice(object);
        out.extend_from_slice(b"\x80\x02(");
        for k in keys {
            out.push(b'X');
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k.as_bytes());
        }
        out.extend_from_slice(b"l.");
        for &(numel, n) in storages {
            out.extend_from_slice(&numel.to_le_bytes());
            out.extend(std::iter::repeat_n(0u8, n));
        }
        out.extend_from_slice(tail);
        out
    }

    /// An object pickle: `{'w': persistent_load(('storage', FloatStorage, '1', 'cpu', 2, None))}`.
    const OBJECT: &[u8] = b"\x80\x02}X\x01\x00\x00\x00w(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x001X\x03\x00\x00\x00cpuK\x02NtQs.";

    fn walk(data: &[u8]) -> super::super::Walked {
        let mut w = Walker::new();
        w.stream(data, Some(data.len() as u64), None, Vec::new(), 0);
        w.finish()
    }

    fn note_rules(w: &super::super::Walked) -> Vec<&'static str> {
        w.notes.iter().map(|n| n.rule.code()).collect()
    }

    #[test]
    fn legacy_checkpoint_stops_after_its_storages() {
        let data = legacy(OBJECT, &["1"], &[(2, 8)], b"");
        let w = walk(&data);
        assert_eq!(note_rules(&w), Vec::<&str>::new(), "{:?}", w.notes);
        assert_eq!(w.parts.len(), 1);
        let a = &w.parts[0].analysis;
        assert_eq!(a.pickles.len(), 5);
        assert!(a.error.is_none());
    }

    #[test]
    fn legacy_storage_section_is_checked() {
        // Count differs from the persistent id.
        let w = walk(&legacy(OBJECT, &["1"], &[(3, 12)], b""));
        assert_eq!(note_rules(&w), vec!["PK304"]);
        assert!(w.notes[0].message.contains("wrong byte size"));
        // The data is cut short.
        let w = walk(&legacy(OBJECT, &["1"], &[(2, 5)], b""));
        assert!(w.notes[0].message.contains("only 5 remain"), "{:?}", w.notes);
        // A key nothing names.
        let w = walk(&legacy(OBJECT, &["9"], &[(2, 8)], b""));
        assert!(w.notes.iter().any(|n| n.message.contains("KeyError")), "{:?}", w.notes);
        // A huge count does not overflow.
        let w = walk(&legacy(OBJECT, &["1"], &[(i64::MAX, 0)], b""));
        assert!(w.notes.iter().any(|n| n.message.contains("more than any file holds")), "{:?}", w.notes);
        // Bytes after the last storage.
        let w = walk(&legacy(OBJECT, &["1"], &[(2, 8)], b"\x00\x00\x00"));
        assert_eq!(note_rules(&w), vec!["PK207"]);
        assert!(w.notes[0].message.starts_with("3 bytes"));
        // A pickle after the last storage is scanned.
        let w = walk(&legacy(OBJECT, &["1"], &[(2, 8)], b"cos\nsystem\n(S'echo'\ntR."));
        assert_eq!(note_rules(&w), vec!["PK208"]);
        assert_eq!(w.parts.len(), 2);
        let tail_start = data_len_before_tail(OBJECT, &["1"], &[(2, 8)]);
        assert_eq!(w.parts[1].analysis.pickles[0].start, tail_start);
        assert!(w.parts[1].analysis.events.iter().any(|e| matches!(e.kind, EventKind::Call { .. })));
    }

    #[test]
    fn legacy_untyped_storage_is_refused_but_followed() {
        // torch.save of a uint16 tensor with _use_new_zipfile_serialization=False:
        // UntypedStorage, counted in bytes; torch.load cannot read it back.
        let object = b"\x80\x02}X\x01\x00\x00\x00w(X\x07\x00\x00\x00storagectorch.storage\nUntypedStorage\nX\x01\x00\x00\x001X\x03\x00\x00\x00cpuK\x06NtQs.";
        let w = walk(&legacy(object, &["1"], &[(6, 6)], b""));
        assert_eq!(note_rules(&w), vec!["PK304"], "{:?}", w.notes);
        assert!(w.notes[0].message.contains("UntypedStorage has not"), "{:?}", w.notes);
        // The section is followed by its byte count: what follows is found.
        let w = walk(&legacy(object, &["1"], &[(6, 6)], b"\x00"));
        assert_eq!(note_rules(&w), vec!["PK304", "PK207"], "{:?}", w.notes);
    }

    fn data_len_before_tail(object: &[u8], keys: &[&str], storages: &[(i64, usize)]) -> u64 {
        legacy(object, keys, storages, b"").len() as u64
    }

    #[test]
    fn legacy_with_fewer_pickles_is_reported() {
        let mut data = MAGIC_P2.to_vec();
        data.extend_from_slice(b"\x80\x02M\xe9\x03.");
        let w = walk(&data);
        assert_eq!(note_rules(&w), vec!["PK304"]);
        assert!(w.notes[0].message.contains("sys_info"), "{:?}", w.notes);
        // A broken third pickle: the analysis says how, no extra note.
        data.extend_from_slice(b"\x80\x02\xff");
        let w = walk(&data);
        assert_eq!(note_rules(&w), Vec::<&str>::new());
        assert!(w.parts[0].analysis.error.is_some());
    }

    /// A tar section: count, then per record a header pickle and its bytes.
    fn pickled_int(n: u8) -> Vec<u8> {
        vec![0x80, 0x02, b'K', n, b'.']
    }

    #[test]
    fn tar_storages_section_is_followed() {
        let header = b"\x80\x02K\x01X\x03\x00\x00\x00cpuctorch\nFloatStorage\n\x87.";
        let mut data = pickled_int(1);
        data.extend_from_slice(header);
        data.extend_from_slice(&2i64.to_le_bytes());
        data.extend_from_slice(&[0u8; 8]);
        data.extend_from_slice(b"\x80\x02].");
        let mut w = Walker::new();
        w.torch_tar_section(
            &data[..],
            data.len() as u64,
            Some("storages".into()),
            vec!["tar"],
            1,
            TarSection::Storages,
        );
        let w = w.finish();
        assert_eq!(note_rules(&w), Vec::<&str>::new(), "{:?}", w.notes);
        assert_eq!(w.parts[0].analysis.pickles.len(), 3);
        assert!(w.parts[0].analysis.error.is_none());
        // The same with the storage cut short.
        let cut = &data[..data.len() - 6];
        let mut w = Walker::new();
        w.torch_tar_section(cut, cut.len() as u64, Some("storages".into()), vec!["tar"], 1, TarSection::Storages);
        let w = w.finish();
        assert_eq!(note_rules(&w), vec!["PK304"]);
    }

    #[test]
    fn tar_tensors_section_is_followed() {
        let header = b"\x80\x02X\x01\x00\x00\x005K\x01ctorch\nFloatTensor\n\x87.";
        let mut data = pickled_int(1);
        data.extend_from_slice(header);
        data.extend_from_slice(&2i32.to_le_bytes());
        data.extend_from_slice(&[0u8; 4 + 2 * 16 + 8]);
        let mut w = Walker::new();
        w.torch_tar_section(&data[..], data.len() as u64, Some("tensors".into()), vec!["tar"], 1, TarSection::Tensors);
        let w = w.finish();
        assert_eq!(note_rules(&w), Vec::<&str>::new(), "{:?}", w.notes);
        assert_eq!(w.parts[0].analysis.pickles.len(), 2);
        // A negative dimension count.
        let mut bad = pickled_int(1);
        bad.extend_from_slice(header);
        bad.extend_from_slice(&(-1i32).to_le_bytes());
        let mut w = Walker::new();
        w.torch_tar_section(&bad[..], bad.len() as u64, Some("tensors".into()), vec!["tar"], 1, TarSection::Tensors);
        let w = w.finish();
        assert!(w.notes.iter().any(|n| n.message.contains("-1 dimensions")), "{:?}", w.notes);
    }

    #[test]
    fn a_member_named_storages_that_is_not_a_pickle_is_walked_as_usual() {
        let data = b"just text\n".to_vec();
        let mut w = Walker::new();
        w.torch_tar_section(
            &data[..],
            data.len() as u64,
            Some("storages".into()),
            vec!["tar"],
            1,
            TarSection::Storages,
        );
        let w = w.finish();
        assert!(w.notes.is_empty());
    }

    /// A zip archive held in memory, as a seekable input.
    struct Mem(io::Cursor<Vec<u8>>);

    impl Read for Mem {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Seek for Mem {
        fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
            self.0.seek(pos)
        }
    }

    impl Input for Mem {}

    /// A zip of stored records, in this order.
    fn zip_of(records: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut w = ::zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let stored = ::zip::write::SimpleFileOptions::default().compression_method(::zip::CompressionMethod::Stored);
        for (name, data) in records {
            w.start_file(*name, stored).expect("zip writer");
            w.write_all(data).expect("zip writer");
        }
        w.finish().expect("zip writer").into_inner()
    }

    fn walk_zip(data: Vec<u8>) -> super::super::Walked {
        let len = data.len() as u64;
        let mut w = Walker::new();
        w.seekable(Mem(io::Cursor::new(data)), Some(len), None);
        w.finish()
    }

    /// A protocol-2 pickle of `persistent_load(('storage', module.name, key, 'cpu', numel))`.
    fn pid_pickle(module: &str, name: &str, key: &str, numel: u8) -> Vec<u8> {
        let mut p = b"\x80\x02(X\x07\x00\x00\x00storagec".to_vec();
        p.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        p.push(b'X');
        p.extend_from_slice(&(key.len() as u32).to_le_bytes());
        p.extend_from_slice(key.as_bytes());
        p.extend_from_slice(b"X\x03\x00\x00\x00cpuK");
        p.push(numel);
        p.extend_from_slice(b"tQ.");
        p
    }

    /// A checkpoint `a/` whose `data.pkl` names storage `0` of `a/data/0`.
    fn checkpoint(module: &str, name: &str, numel: u8, record: &[u8]) -> super::super::Walked {
        let pkl = pid_pickle(module, name, "0", numel);
        walk_zip(zip_of(&[("a/data.pkl", &pkl), ("a/data/0", record), ("a/version", b"3\n")]))
    }

    #[test]
    fn untyped_storage_is_counted_in_bytes_in_a_zip() {
        // _rebuild_tensor_v3's storage: 3 uint16 are 6 bytes.
        let w = checkpoint("torch.storage", "UntypedStorage", 6, &[0; 6]);
        assert_eq!(note_rules(&w), Vec::<&str>::new(), "{:?}", w.notes);
        let w = checkpoint("torch.storage", "UntypedStorage", 7, &[0; 6]);
        assert_eq!(note_rules(&w), vec!["PK304"]);
        assert!(w.notes[0].message.contains("7 elements × 1 bytes = 7 bytes"), "{:?}", w.notes);
    }

    #[test]
    fn every_storage_class_of_torch_is_checked_in_a_zip() {
        for c in STORAGE_CLASSES {
            let w = match c.elem {
                StorageElem::Typed { size, .. } => {
                    let record = vec![0u8; 3 * size as usize];
                    let ok = checkpoint(c.module, c.name, 3, &record);
                    assert_eq!(note_rules(&ok), Vec::<&str>::new(), "{c:?}: {:?}", ok.notes);
                    checkpoint(c.module, c.name, 3, &record[1..])
                }
                StorageElem::Bytes => checkpoint(c.module, c.name, 4, &[0; 3]),
                StorageElem::NoDtype => checkpoint(c.module, c.name, 3, &[0; 24]),
            };
            assert_eq!(note_rules(&w), vec!["PK304"], "{c:?}: {:?}", w.notes);
        }
    }

    #[test]
    fn torchscript_archive_is_recognised_and_checked() {
        let data = pid_pickle("torch", "FloatStorage", "0", 2);
        let constants = pid_pickle("torch", "FloatStorage", "5", 1);
        let debug = b"\x80\x02ctorch.jit._pickle\nbuild_intlist\n]\x85R.";
        let extra = b"\x80\x02K\x01.";
        let zip = zip_of(&[
            ("ts/data/0", &[0; 8]),
            ("ts/data.pkl", &data),
            ("ts/code/__torch__/m.py", b"def forward(self):\n    pass\n"),
            ("ts/code/__torch__/m.py.debug_pkl", debug),
            ("ts/constants.pkl", &constants),
            ("ts/extra/x.pkl", extra),
            ("ts/version", b"3\n"),
        ]);
        let w = walk_zip(zip);
        // constants.pkl's storages are under constants/: one is missing.
        let torch: Vec<_> = w.notes.iter().filter(|n| n.rule == Rule::TorchAnomaly).collect();
        assert_eq!(torch.len(), 2, "{:?}", w.notes);
        assert!(torch.iter().any(|n| n.member.as_deref() == Some("ts/constants.pkl")
            && n.message.contains("no record \"ts/constants/5\": torch.jit.load fails")));
        // A pickle torch.jit.load does not read is reported; its own pickles are not.
        assert!(torch
            .iter()
            .any(|n| n.member.as_deref() == Some("ts/extra/x.pkl")
                && n.message.contains("torch.jit.load never unpickles")));
        let parts: Vec<&str> = w.parts.iter().filter_map(|p| p.member.as_deref()).collect();
        for m in ["ts/data.pkl", "ts/constants.pkl", "ts/code/__torch__/m.py.debug_pkl", "ts/extra/x.pkl"] {
            assert!(parts.contains(&m), "{parts:?}");
        }
        // The source is not sniffed, and is marked in skipped_members; the storage too.
        assert!(w.skipped_members.contains(&format!("ts/code/__torch__/m.py{TORCHSCRIPT_SOURCE_MARK}")));
        assert!(w.skipped_members.contains(&"ts/data/0".to_string()), "{:?}", w.skipped_members);
        // Without constants.pkl it is a checkpoint: nothing marked.
        let zip =
            zip_of(&[("ts/data/0", &[0; 8]), ("ts/data.pkl", &data), ("ts/code/m.py", b"x\n"), ("ts/version", b"3\n")]);
        let w = walk_zip(zip);
        assert!(!w.skipped_members.iter().any(|m| m.ends_with(TORCHSCRIPT_SOURCE_MARK)), "{:?}", w.skipped_members);
    }

    /// The flag itself, on real files (fixtures/torch-real/).
    #[test]
    fn real_torchscript_archive_is_flagged() {
        let kind = |file: &str| {
            let path = format!("fixtures/torch-real/{file}");
            let mut f = std::fs::File::open(&path).expect("fixture");
            let mut archive = ::zip::ZipArchive::new(std::fs::File::open(&path).expect("fixture")).expect("zip");
            let records: Vec<(String, u64, u64)> = (0..archive.len())
                .map(|i| {
                    let m = archive.by_index_raw(i).expect("record");
                    (m.name().expect("name").to_string(), m.size(), m.header_start())
                })
                .collect();
            let mut w = Walker::new();
            let cp = w.torch_zip_begin(&mut f, records.iter().map(|(n, s, h)| (n.as_str(), *s, *h)), &None);
            assert!(w.out.notes.is_empty(), "{file}: {:?}", w.out.notes);
            cp.map(|c| c.kind)
        };
        assert_eq!(kind("torchscript.pt"), Some(ZipKind::TorchScript));
        assert_eq!(kind("dtypes.pt"), Some(ZipKind::Checkpoint));
        assert_eq!(kind("hf_bert_tiny_pytorch_model.bin"), Some(ZipKind::Checkpoint));
    }
}
