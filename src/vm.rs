//! The symbolic machine: runs a pickle's opcodes on symbolic values, never
//! importing or calling anything, and records what a real unpickler would do.
//!
//! Values live in an arena ([`Value`], addressed by [`ValueId`]); the stack
//! and the memo hold ids, so a memo reference never copies a value and a
//! memo-reference "bomb" stays a small DAG. Mutating opcodes (`APPEND`,
//! `SETITEMS`, `BUILD`, ...) update the arena value in place, as CPython
//! mutates the shared object.
//!
//! The stack discipline follows `Lib/pickle.py`: `MARK` pushes the current
//! stack on a meta-stack and starts an empty one; opcodes that take a mark pop
//! it back. Where CPython would raise (stack underflow, a missing memo key, an
//! `APPEND` to a tuple, ...) the machine records an [`Anomaly`], pushes an
//! [`Value::Unknown`] where a value was expected, and keeps going, so that what
//! a file does after a deliberate inconsistency is still seen.
//!
//! The machine holds no policy: it never decides what is dangerous. It only
//! reports [`Event`]s — every import, call, `BUILD`, persistent id and anomaly,
//! each with its byte offset — for [`crate::rules`] to judge.

use crate::error::{Error, ErrorKind};
use crate::limits::*;
use crate::pickle::opcodes::Opcode;
use crate::pickle::reader::{
    decode_fixed_as, decode_text_as, Arg, FixedArg, FixedOp, FrameNote, Op, OpReader, Payload, Text,
};
use crate::pickle::source::ByteSource;
use crate::py::compat::{IMPORT_MAPPING, NAME_MAPPING};
use crate::py::num::PyInt;
use crate::py::repr::{cut_dotted, cut_text, floor_char_boundary};
use std::sync::Arc;

/// Index of a value in [`Analysis::values`].
pub type ValueId = u32;

/// Largest string or bytes value whose contents the machine keeps; longer ones
/// are kept as offset and length (plus a short prefix for display).
pub const MAX_KEPT_VALUE_BYTES: usize = 64 * 1024;

/// Bytes kept from the start of a long string or bytes value, for display.
pub const PREVIEW_BYTES: usize = 64;

/// Contents of a `str`, `bytes` or `bytearray` value.
///
/// Kept compact (one pointer and a tag) because a pickle may hold millions.
#[derive(Debug, PartialEq)]
pub enum Blob<T: ?Sized> {
    /// The whole contents (no longer than [`MAX_KEPT_VALUE_BYTES`]).
    Full(Box<T>),
    /// Too long to keep: where the value is, and its first bytes.
    Part(Box<Partial<T>>),
}

/// A string or bytes value that was not kept whole.
#[derive(Debug, PartialEq)]
pub struct Partial<T: ?Sized> {
    /// The first [`PREVIEW_BYTES`] or so, or `None` when skipped unread.
    pub prefix: Option<Box<T>>,
    /// Absolute offset of the value's bytes in the input.
    pub offset: u64,
    /// Length of the value's encoded bytes.
    pub len: u64,
}

impl<T: ?Sized> Clone for Blob<T>
where
    Box<T>: Clone,
{
    fn clone(&self) -> Self {
        match self {
            Blob::Full(d) => Blob::Full(d.clone()),
            Blob::Part(p) => Blob::Part(Box::new(Partial { prefix: p.prefix.clone(), offset: p.offset, len: p.len })),
        }
    }
}

impl<T: ?Sized> Blob<T> {
    /// The whole value, when it was kept.
    pub fn full(&self) -> Option<&T> {
        match self {
            Blob::Full(d) => Some(d),
            Blob::Part(_) => None,
        }
    }

    /// A borrowed view.
    pub fn as_view(&self) -> BlobView<'_, T> {
        match self {
            Blob::Full(d) => BlobView::Full(d),
            Blob::Part(p) => BlobView::Part(p),
        }
    }
}

/// A borrowed [`Blob`]: a `bytes` value's or (through [`Analysis::str`]) a
/// `str` value's contents, whole or in part.
#[derive(Debug, PartialEq)]
pub enum BlobView<'a, T: ?Sized> {
    /// The whole contents.
    Full(&'a T),
    /// Too long to keep: where the value is, and its first bytes.
    Part(&'a Partial<T>),
}

impl<'a, T: ?Sized> BlobView<'a, T> {
    /// The whole value, when it was kept.
    pub fn full(&self) -> Option<&'a T> {
        match self {
            BlobView::Full(d) => Some(d),
            BlobView::Part(_) => None,
        }
    }
}

/// Where a `str` value is: its text in [`Analysis::text`], or, for one too
/// long to keep, its [`Partial`] in [`Analysis::long_strs`]. Read it with
/// [`Analysis::str`].
///
/// A pickle may hold millions of strings (vocabularies, column labels):
/// kept in one buffer for the whole file they cost no allocation each, where
/// a boxed string cost two (and 64 bytes of heap for a short one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrRef {
    at: u32,
    /// The text's length, or [`StrRef::LONG`] when `at` indexes
    /// [`Analysis::long_strs`].
    len: u32,
}

impl StrRef {
    const LONG: u32 = u32::MAX;
}

/// A global's module and (possibly dotted) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalName {
    /// Module, as imported (after Python 2 mapping).
    pub module: Arc<str>,
    /// Name, possibly dotted (an attribute path).
    pub name: Arc<str>,
}

/// How a callable is invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// `REDUCE`: `func(*args)`.
    Reduce,
    /// `NEWOBJ`: `cls.__new__(cls, *args)`.
    NewObj,
    /// `NEWOBJ_EX`: `cls.__new__(cls, *args, **kwargs)`.
    NewObjEx,
    /// `INST`: `cls(*args)` (protocol 0).
    Inst,
    /// `OBJ`: `cls(*args)` (protocol 1).
    Obj,
    /// `BUILD` on an object whose `__setstate__` attribute was set by an
    /// earlier `BUILD`: calls that attribute with the state.
    SetState,
    /// `APPEND`/`APPENDS` on a non-list: calls the object's `append`/`extend`.
    Append,
    /// `SETITEM`/`SETITEMS` on a non-dict: calls the object's `__setitem__`.
    SetItem,
    /// `ADDITEMS` on a non-set: calls the object's `add`.
    Add,
}

/// Why a value is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownWhy {
    /// The opcode needed more stack items than there were.
    StackUnderflow,
    /// A memo key that was never stored.
    MissingMemo,
    /// An `EXT` code with no registration in the stream.
    UnregisteredExtension,
    /// A string too long to keep.
    Unreadable,
}

/// Where the items of a tuple or frozenset sit in the shared pool
/// [`Analysis::items`].
///
/// Tuples and frozensets never change once built, so their items are stored
/// back to back in one vector for the whole file instead of one heap
/// allocation per value: a pickle may hold millions of small tuples, and the
/// per-tuple `malloc`/`free` was a fifth of the time spent on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Items {
    start: u32,
    len: u32,
}

impl Items {
    /// How many items.
    pub fn len(&self) -> usize {
        self.len as usize
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The result of a call ([`Value::Call`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CallValue {
    /// How it was invoked.
    pub kind: CallKind,
    /// The callable (or, for method calls, the receiving object).
    pub func: ValueId,
    /// The positional arguments (usually a tuple).
    pub args: ValueId,
    /// Keyword arguments (`NEWOBJ_EX`).
    pub kwargs: Option<ValueId>,
}

/// A symbolic value.
///
/// Two words: a pickle may hold millions of values, and the arena's size is
/// what the kernel must fault in and zero (at about 3 µs per 4 KiB page,
/// 32-byte values cost more in page faults than in computing them). So every
/// variant's payload fits in one word: numbers, ids and pool ranges inline,
/// everything larger (strings, lists, dicts, calls) behind a `Box`. The
/// common bulk values (ints, floats, tuples) need no allocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits in an i64.
    Int(i64),
    /// A larger integer.
    BigInt(Box<PyInt>),
    /// A float.
    Float(f64),
    /// A `str` (protocol 0/1 byte strings are read as latin-1 text); read
    /// it with [`Analysis::str`] or [`Analysis::full_str`].
    Str(StrRef),
    /// A `bytes`.
    Bytes(Box<Blob<[u8]>>),
    /// A `bytearray`.
    ByteArray(Box<Blob<[u8]>>),
    /// A tuple: its items sit in [`Analysis::items`] (see [`Analysis::tuple`]).
    Tuple(Items),
    /// A list (mutated in place by `APPEND`).
    List(Box<Vec<ValueId>>),
    /// A dict, in insertion order.
    Dict(Box<Vec<(ValueId, ValueId)>>),
    /// A set.
    Set(Box<Vec<ValueId>>),
    /// A frozenset: its items sit in [`Analysis::items`].
    FrozenSet(Items),
    /// An imported global (after Python 2 name mapping).
    Global(Box<GlobalName>),
    /// A `STACK_GLOBAL` whose operands were not plain strings.
    ComputedGlobal {
        /// The module operand.
        module: ValueId,
        /// The name operand.
        name: ValueId,
    },
    /// The result of a call.
    Call(Box<CallValue>),
    /// The result of `persistent_load(pid)`.
    Persistent {
        /// The persistent id.
        pid: ValueId,
    },
    /// An out-of-band buffer (`NEXT_BUFFER`).
    Buffer {
        /// Marked read-only by `READONLY_BUFFER`.
        readonly: bool,
    },
    /// Something the machine cannot know.
    Unknown(UnknownWhy),
}

impl Value {
    /// A `bytes` value's contents, when they were kept whole.
    pub fn full_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => b.full(),
            _ => None,
        }
    }
}

/// An inconsistency CPython would stumble on, or a trick a scanner must see.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// An opcode needed more stack items than there were.
    StackUnderflow {
        /// The opcode.
        opcode: &'static str,
    },
    /// An opcode needed a mark and none was open.
    NoMark {
        /// The opcode.
        opcode: &'static str,
    },
    /// A container opcode applied to the wrong type (e.g. `APPEND` to a tuple).
    TypeMismatch {
        /// The opcode.
        opcode: &'static str,
        /// What it needed.
        expected: &'static str,
    },
    /// `GET` of a memo key never stored.
    MemoMissing {
        /// The key.
        key: u64,
    },
    /// `PUT` over a memo key already stored (a memo swap).
    MemoOverwrite {
        /// The key.
        key: u64,
    },
    /// `PUT`/`MEMOIZE` with nothing (or a mark) on the stack.
    MemoEmptyStack,
    /// A negative or unusable memo key.
    MemoBadKey,
    /// `STACK_GLOBAL` operands that are not plain strings.
    ComputedGlobal,
    /// A global name with dots (an attribute path).
    DottedName {
        /// The full name.
        name: String,
    },
    /// An opcode newer than the protocol the stream declared.
    AboveProtocol {
        /// The opcode.
        opcode: &'static str,
        /// The protocol the opcode needs.
        needs: u8,
        /// The protocol declared by `PROTO`.
        declared: u8,
    },
    /// `PROTO` with an unsupported protocol, or not at the start.
    BadProto {
        /// The protocol number.
        proto: i64,
    },
    /// An opcode whose bytes run past the end of its `FRAME`.
    FrameCrossing {
        /// Where the frame ended.
        frame_end: u64,
    },
    /// A `FRAME` before the previous one was used up.
    FrameNotFinished {
        /// Where the previous frame would have ended.
        frame_end: u64,
    },
    /// A `FRAME` longer than the rest of the input.
    FramePastInput,
    /// `STOP` before the end of its `FRAME`: buffered and unbuffered readers
    /// start the next pickle at different offsets.
    StopInsideFrame {
        /// Where the frame ends.
        frame_end: u64,
    },
    /// An argument the C unpickler and `pickle.py` decode differently.
    ParserDifferential {
        /// The opcode.
        opcode: &'static str,
    },
    /// `EXT` with code 0 or an unregistered code.
    BadExtension {
        /// The code.
        code: i64,
    },
    /// `DICT`/`SETITEMS` with an odd number of items.
    OddItems {
        /// The opcode.
        opcode: &'static str,
    },
    /// The input ended between opcodes before `STOP`.
    MissingStop,
    /// Bytes after the last `STOP` that do not start a pickle.
    TrailingData {
        /// How many bytes.
        len: u64,
    },
    /// Another pickle follows the first one.
    AnotherPickle {
        /// Its index in the file (1 for the second).
        index: usize,
    },
    /// A `BUILD` state that sets a dunder attribute such as `__setstate__`.
    DunderState {
        /// The attribute.
        attr: String,
    },
    /// A joblib array payload that starts inside a `FRAME` (joblib reads
    /// payloads from the file, past whatever the unpickler buffered).
    PayloadInFrame,
    /// joblib alignment padding that joblib would not write (length 0 or over
    /// 16, or bytes other than 0xFF): room to hide data.
    UnusualPadding {
        /// The padding length byte.
        len: u8,
    },
    /// A named limit was reached; analysis of the file stopped.
    LimitExceeded {
        /// The constant's name.
        limit: &'static str,
    },
}

impl Anomaly {
    /// One line saying what happened. Text from the file is escaped.
    pub fn message(&self) -> String {
        use crate::py::repr::escape_for_terminal as esc;
        match self {
            Anomaly::StackUnderflow { opcode } => format!("{opcode} pops more items than the stack holds"),
            Anomaly::NoMark { opcode } => format!("{opcode} needs a MARK and none is open"),
            Anomaly::TypeMismatch { opcode, expected } => {
                format!("{opcode} applied to something that is not a {expected}")
            }
            Anomaly::OddItems { opcode } => format!("{opcode} with an odd number of items"),
            Anomaly::MemoMissing { key } => format!("memo key {key} is read but was never stored"),
            Anomaly::MemoOverwrite { key } => format!("memo key {key} is overwritten with a different object"),
            Anomaly::MemoEmptyStack => "memo store with an empty stack".to_string(),
            Anomaly::MemoBadKey => "negative or unusable memo key".to_string(),
            Anomaly::ComputedGlobal => "STACK_GLOBAL operands are not plain strings".to_string(),
            Anomaly::DottedName { name } => format!("global {} is an attribute path", esc(name)),
            Anomaly::AboveProtocol { opcode, needs, declared } => {
                format!("{opcode} needs protocol {needs} but the stream declares {declared}")
            }
            Anomaly::BadProto { proto } => format!("PROTO {proto} is invalid or repeated"),
            Anomaly::FrameCrossing { frame_end } => {
                format!("opcode runs past the end of its FRAME at offset {frame_end}")
            }
            Anomaly::FrameNotFinished { frame_end } => {
                format!("FRAME starts before the previous frame ends at offset {frame_end}")
            }
            Anomaly::FramePastInput => "FRAME is longer than the rest of the input".to_string(),
            Anomaly::StopInsideFrame { frame_end } => {
                format!("STOP before the end of its FRAME at offset {frame_end}: readers disagree on where the next pickle starts")
            }
            Anomaly::ParserDifferential { opcode } => {
                format!("{opcode} argument means different things to the C unpickler and pickle.py")
            }
            Anomaly::BadExtension { code } => format!("EXT code {code} cannot be resolved"),
            Anomaly::MissingStop => "the input ends before STOP".to_string(),
            Anomaly::TrailingData { len } => format!("{len} bytes after the last STOP are not a pickle"),
            Anomaly::AnotherPickle { index } => format!("pickle {} starts here", index + 1),
            Anomaly::DunderState { attr } => format!("BUILD state sets {}", esc(attr)),
            Anomaly::PayloadInFrame => "joblib array payload starts inside a FRAME".to_string(),
            Anomaly::UnusualPadding { len } => {
                format!("joblib alignment padding (length byte {len}) that joblib would not write")
            }
            Anomaly::LimitExceeded { limit } => format!("limit {limit} reached; analysis stopped"),
        }
    }
}

/// What happened at one offset.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A global was imported.
    Import {
        /// The opcode that imported it.
        via: Opcode,
        /// The module, as imported (Python 2 names mapped). Shared with the
        /// pushed value: a `STACK_GLOBAL` of memoised names costs the file
        /// five bytes, and must not cost a copy of names of up to 1 MiB.
        module: Arc<str>,
        /// The name, possibly dotted.
        name: Arc<str>,
        /// The module and name as written, when the mapping changed them.
        written: Option<(String, String)>,
        /// The pushed value.
        value: ValueId,
    },
    /// A `STACK_GLOBAL` with computed operands: an import nobody can name.
    ComputedImport {
        /// The pushed value.
        value: ValueId,
    },
    /// Something was called.
    Call {
        /// How.
        kind: CallKind,
        /// The callable.
        func: ValueId,
        /// Positional arguments.
        args: ValueId,
        /// Keyword arguments.
        kwargs: Option<ValueId>,
        /// The result.
        result: ValueId,
    },
    /// `BUILD` applied a state.
    Build {
        /// The object.
        target: ValueId,
        /// The state.
        state: ValueId,
    },
    /// A persistent id was handed to the loader's `persistent_load`.
    PersistentId {
        /// The id value.
        pid: ValueId,
    },
    /// An `EXT` code was used.
    Extension {
        /// The code.
        code: i64,
        /// The global it resolves to through an in-stream registration
        /// (each part cut to [`SHOWN_NAME_BYTES`]; the import that follows
        /// has the whole names).
        resolved: Option<(String, String)>,
    },
    /// `NEXT_BUFFER`: data outside the file.
    ExternalBuffer,
    /// A joblib array payload after a `NumpyArrayWrapper` BUILD.
    ArrayPayload {
        /// The wrapper object.
        wrapper: ValueId,
        /// Absolute offset of the raw array bytes (or of the nested pickle).
        offset: u64,
        /// Their length.
        len: u64,
        /// For object arrays: what the nested pickle returned.
        nested: Option<ValueId>,
    },
    /// An inconsistency.
    Anomaly(Anomaly),
}

/// An event with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Absolute offset of the opcode.
    pub offset: u64,
    /// Index of the pickle in the file (0 for the first).
    pub pickle: usize,
    /// What happened.
    pub kind: EventKind,
}

/// One pickle of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleInfo {
    /// Offset of its first opcode.
    pub start: u64,
    /// Offset just past its `STOP` (or where analysis ended).
    pub end: u64,
    /// Protocol declared by `PROTO` (0 when absent).
    pub proto: u8,
    /// The highest protocol among its opcodes.
    pub max_opcode_proto: u8,
    /// What `STOP` returned.
    pub root: Option<ValueId>,
    /// Opcodes read.
    pub ops: u64,
}

/// Everything the machine learned from one input.
#[derive(Debug, Default)]
pub struct Analysis {
    /// The value arena.
    pub values: Vec<Value>,
    /// The items of every tuple and frozenset, back to back (see [`Items`]).
    /// Read them through [`Analysis::items`], [`Analysis::tuple`] or
    /// [`Analysis::range`].
    pub items: Vec<ValueId>,
    /// The text of every `str` value kept whole, back to back (see
    /// [`StrRef`]).
    pub text: String,
    /// The `str` values too long to keep (see [`StrRef`]).
    pub long_strs: Vec<Partial<str>>,
    /// Events in stream order.
    pub events: Vec<Event>,
    /// The pickles found, in order.
    pub pickles: Vec<PickleInfo>,
    /// The error that ended reading, if any. Everything before it is kept.
    pub error: Option<Error>,
    /// Total opcodes read.
    pub ops: u64,
    /// Bytes consumed.
    pub bytes: u64,
}

impl Analysis {
    /// The value with this id.
    pub fn value(&self, id: ValueId) -> &Value {
        // Ids are only created by `Machine::alloc`, so they are in range.
        &self.values[id as usize]
    }

    /// A `str` value's contents.
    pub fn str(&self, r: StrRef) -> BlobView<'_, str> {
        // Refs are only created by `Machine::str_value`, which bounds them.
        if r.len == StrRef::LONG {
            return BlobView::Part(&self.long_strs[r.at as usize]);
        }
        let at = r.at as usize;
        BlobView::Full(&self.text[at..at + r.len as usize])
    }

    /// The text of the value `id`, when it is a `str` kept whole.
    pub fn full_str(&self, id: ValueId) -> Option<&str> {
        match self.value(id) {
            Value::Str(r) => self.str(*r).full(),
            _ => None,
        }
    }

    /// The items of a tuple or frozenset.
    pub fn range(&self, r: Items) -> &[ValueId] {
        // Ranges are only created by `Machine::pool`, which bounds them.
        let start = r.start as usize;
        &self.items[start..start + r.len as usize]
    }

    /// The items of a tuple, list, set or frozenset; empty for any other value.
    pub fn items(&self, id: ValueId) -> &[ValueId] {
        match self.value(id) {
            Value::Tuple(r) | Value::FrozenSet(r) => self.range(*r),
            Value::List(v) | Value::Set(v) => v,
            _ => &[],
        }
    }

    /// A tuple's items; `None` when the value is not a tuple.
    pub fn tuple(&self, id: ValueId) -> Option<&[ValueId]> {
        match self.value(id) {
            Value::Tuple(r) => Some(self.range(*r)),
            _ => None,
        }
    }

    /// A tuple's or list's items; `None` for any other value.
    pub fn tuple_or_list(&self, id: ValueId) -> Option<&[ValueId]> {
        match self.value(id) {
            Value::Tuple(r) => Some(self.range(*r)),
            Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// A dict's key/value pairs, in insertion order; empty for any other value.
    pub fn pairs(&self, id: ValueId) -> &[(ValueId, ValueId)] {
        match self.value(id) {
            Value::Dict(p) => p,
            _ => &[],
        }
    }
}

/// Why the machine stopped early.
enum HaltKind {
    /// A named limit; recorded as an anomaly.
    Limit(&'static str),
    /// A reader error.
    Error(Error),
}

/// A [`HaltKind`], boxed: every step of the machine returns
/// `Result<_, Halt>`, and one pointer (null-niched in `Result<(), Halt>`)
/// comes back in registers where the unboxed enum went through memory. A
/// halt happens at most a few times per file.
struct Halt(Box<HaltKind>);

impl Halt {
    #[cold]
    fn limit(name: &'static str) -> Halt {
        Halt(Box::new(HaltKind::Limit(name)))
    }

    #[cold]
    fn error(e: Error) -> Halt {
        Halt(Box::new(HaltKind::Error(e)))
    }
}

/// The memo: dense for the small consecutive keys picklers use, sparse for
/// the rest (a `LONG_BINPUT 4000000000` must not allocate 16 GB).
#[derive(Default)]
struct Memo {
    dense: Vec<ValueId>,
    sparse: std::collections::HashMap<u64, ValueId>,
    len: usize,
}

const NO_VALUE: ValueId = ValueId::MAX;

impl Memo {
    #[inline]
    fn get(&self, key: u64) -> Option<ValueId> {
        match self.dense.get(key as usize) {
            Some(&v) if v != NO_VALUE => Some(v),
            Some(_) => None,
            None => self.sparse.get(&key).copied(),
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Stores `v` at `key` when it is the next key in order (what picklers
    /// write); false, storing nothing, for any other key.
    #[inline(always)]
    fn append(&mut self, key: u64, v: ValueId) -> bool {
        if key == self.dense.len() as u64 && self.sparse.is_empty() {
            self.dense.push(v);
            self.len += 1;
            return true;
        }
        false
    }

    /// Stores `v` at `key`; returns the value it replaced.
    fn insert(&mut self, key: u64, v: ValueId) -> Option<ValueId> {
        if (key as usize) < self.dense.len() {
            let old = std::mem::replace(&mut self.dense[key as usize], v);
            if old == NO_VALUE {
                self.len += 1;
                return None;
            }
            return Some(old);
        }
        if self.append(key, v) {
            return None;
        }
        // Grow densely only a little past what is filled.
        if key <= (self.dense.len() as u64).saturating_mul(2) + 1024 && self.sparse.is_empty() {
            self.dense.resize(key as usize + 1, NO_VALUE);
            self.dense[key as usize] = v;
            self.len += 1;
            return None;
        }
        let old = self.sparse.insert(key, v);
        if old.is_none() {
            self.len += 1;
        }
        old
    }
}

/// The machine's state for one pickle.
///
/// The stack is one vector for all marks, as in CPython's C unpickler: a
/// `MARK` records where its segment starts instead of setting the stack
/// aside, so marks cost no allocation and the items a mark-taking opcode
/// consumes are a slice of the stack.
struct Frame {
    /// Every open mark's segment, bottom first.
    stack: Vec<ValueId>,
    /// Where each open mark's segment starts in `stack`.
    marks: Vec<usize>,
    /// Where the innermost segment starts (the last of `marks`, 0 when no
    /// mark is open): pops stop there.
    base: usize,
    memo: Memo,
    proto: u8,
    max_opcode_proto: u8,
    saw_proto: bool,
    ops: u64,
}

impl Frame {
    fn new() -> Frame {
        Frame {
            stack: Vec::new(),
            marks: Vec::new(),
            base: 0,
            memo: Memo::default(),
            proto: 0,
            max_opcode_proto: 0,
            saw_proto: false,
            ops: 0,
        }
    }
}

/// Runs opcodes symbolically and builds an [`Analysis`].
pub struct Machine {
    limits: Limits,
    out: Analysis,
    pickle: usize,
    offset: u64,
    kept_bytes: usize,
    /// In-stream `copyreg.add_extension(module, name, code)` registrations.
    extensions: std::collections::HashMap<i64, (ValueId, ValueId)>,
    unknown_underflow: Option<ValueId>,
    /// The last BUILD state applied to each object (dtype states, wrappers).
    build_state: std::collections::HashMap<ValueId, ValueId>,
    /// Hook attributes (`__setstate__`, `append`, ...) that BUILDs set on an
    /// object or a class; they persist for the whole file, as class
    /// attributes persist in the loading process.
    plants: std::collections::HashMap<(Receiver, &'static str), ValueId>,
    /// A number for each distinct global `module.name` imported (see
    /// [`Receiver::Class`]).
    class_ids: std::collections::HashMap<(Arc<str>, Arc<str>), u32>,
    /// The class number of each global value.
    global_class: std::collections::HashMap<ValueId, u32>,
    /// Imports of two `str` values, by the values (see [`Machine::import_strs`]).
    global_cache: std::collections::HashMap<(ValueId, ValueId), Imported>,
    /// For each dict applied as BUILD state: its dunder keys and hook
    /// attributes, read once per pair however many BUILDs apply it.
    state_keys: std::collections::HashMap<ValueId, StateKeys>,
    /// Set by a BUILD of a joblib `NumpyArrayWrapper`: its payload follows.
    pending_payload: Option<ValueId>,
    /// How many nested (object-array) pickles are open.
    nesting: usize,
    /// Where extraction wants array payloads and long values (see [`Sink`]).
    sink: Option<SharedSink>,
    /// Longest string or bytes value kept whole.
    keep_max: usize,
    /// Reused for the items of APPENDS, ADDITEMS and SETITEMS, which are
    /// taken off the stack before their target is looked up.
    scratch: Vec<ValueId>,
}

/// Read-only access to the values a machine has built, with the last BUILD
/// state of each constructed object: what array and dtype decoding needs,
/// during analysis (a [`Sink`]) and after it.
pub trait Graph {
    /// The values (and the item pool tuples point into).
    fn analysis(&self) -> &Analysis;
    /// The last state a BUILD applied to this (constructed) object.
    fn state(&self, id: ValueId) -> Option<ValueId>;
    /// The value with this id.
    fn value(&self, id: ValueId) -> &Value {
        self.analysis().value(id)
    }
    /// The text of the value `id`, when it is a `str` kept whole.
    fn full_str(&self, id: ValueId) -> Option<&str> {
        self.analysis().full_str(id)
    }
}

/// The machine's own [`Graph`], handed to a [`Sink`].
pub struct View<'a> {
    a: &'a Analysis,
    states: &'a std::collections::HashMap<ValueId, ValueId>,
}

impl Graph for View<'_> {
    fn analysis(&self) -> &Analysis {
        self.a
    }
    fn state(&self, id: ValueId) -> Option<ValueId> {
        self.states.get(&id).copied()
    }
}

/// Receives the bytes a scan passes over, so that extraction reads a file
/// (or a decompressing stream) once: joblib array payloads as the machine
/// reaches them, and string/bytes values too long to keep.
pub trait Sink {
    /// A new pickle stream starts; `part` numbers the streams of one file.
    fn begin(&mut self, part: usize);
    /// A joblib raw array payload of `len` bytes at `offset`, after the
    /// BUILD of `wrapper`: `src` stands at its first byte and the sink must
    /// consume all of it; returns how many bytes it consumed.
    fn payload(
        &mut self,
        graph: &View<'_>,
        wrapper: ValueId,
        offset: u64,
        len: u64,
        src: &mut dyn ByteSource,
    ) -> std::io::Result<u64>;
    /// A value's bytes that the machine does not keep (already read).
    fn spill_bytes(&mut self, offset: u64, bytes: &[u8]);
    /// A value's bytes that the reader would skip: the sink consumes them
    /// from `src`; returns how many.
    fn spill_stream(&mut self, offset: u64, len: u64, src: &mut dyn ByteSource) -> std::io::Result<u64>;
}

/// A sink shared between the caller and the machines of one file.
pub type SharedSink = std::rc::Rc<std::cell::RefCell<dyn Sink>>;

/// A source that hands what the reader skips (arguments longer than
/// [`crate::limits::MAX_INLINE_ARG`]) to a [`Sink`] instead.
pub struct Spilling<S> {
    inner: S,
    sink: SharedSink,
}

impl<S: ByteSource> ByteSource for Spilling<S> {
    fn position(&self) -> u64 {
        self.inner.position()
    }
    fn remaining(&self) -> Option<u64> {
        self.inner.remaining()
    }
    fn take(&mut self, n: usize) -> std::io::Result<Option<&[u8]>> {
        self.inner.take(n)
    }
    fn take_line(&mut self, max: usize) -> std::io::Result<crate::pickle::source::Line<'_>> {
        self.inner.take_line(max)
    }
    fn skip(&mut self, n: u64) -> std::io::Result<u64> {
        let at = self.inner.position();
        match self.sink.try_borrow_mut() {
            Ok(mut sink) => sink.spill_stream(at, n, &mut self.inner),
            // The sink itself is skipping (a payload it does not write): a
            // plain skip.
            Err(_) => self.inner.skip(n),
        }
    }
    fn at_eof(&mut self) -> std::io::Result<bool> {
        self.inner.at_eof()
    }
    fn copy_to(&mut self, n: u64, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
        self.inner.copy_to(n, out)
    }
    fn copy_to_file(&mut self, n: u64, out: &mut std::fs::File) -> std::io::Result<u64> {
        self.inner.copy_to_file(n, out)
    }
    #[inline]
    fn buffered(&self) -> &[u8] {
        self.inner.buffered()
    }
    #[inline]
    fn advance(&mut self, n: usize) {
        self.inner.advance(n)
    }
}

/// What an attribute set by BUILD lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Receiver {
    /// One object (instance attribute).
    Object(ValueId),
    /// A class, by the number [`Machine::import`] gave its `module.name`:
    /// every instance, and every import of the same name, sees the
    /// attribute. A number, not the name: names run to 64 KiB and the
    /// receiver is looked up by every BUILD, APPEND and SETITEM.
    Class(u32),
}

/// Attributes the unpickler itself looks up and calls: planting one of them
/// turns a later BUILD/APPEND/SETITEM/ADDITEMS into a call of the plant.
const HOOK_ATTRS: [&str; 5] = ["__setstate__", "append", "extend", "add", "__setitem__"];

/// An import of two `str` values made before, for [`Machine::import_strs`].
#[derive(Clone)]
struct Imported {
    value: ValueId,
    dotted: bool,
    written: Option<(String, String)>,
}

/// Longest module, name or attribute text an anomaly keeps (cut with
/// [`cut_text`] or [`cut_dotted`]): an event per import or BUILD must not
/// hold a copy of a name of up to 1 MiB.
pub const SHOWN_NAME_BYTES: usize = 256;

/// What a BUILD state dict sets that the machine watches for, read from its
/// first `seen` pairs (dicts only grow).
#[derive(Default)]
struct StateKeys {
    seen: usize,
    /// Dunder keys (`__setstate__`, `__class__`, ...), one per pair.
    dunders: Vec<String>,
    /// The value of each of [`HOOK_ATTRS`], the last assigned.
    hooks: [Option<ValueId>; HOOK_ATTRS.len()],
}

/// What follows a `NumpyArrayWrapper`'s BUILD.
struct PayloadSpec {
    /// A nested pickle (object dtype) instead of raw bytes.
    object: bool,
    /// A padding-length byte and padding come first.
    padded: bool,
    /// Raw bytes of array data.
    nbytes: u64,
}

/// Most bytes of string and bytes contents the machine keeps for one file.
pub const MAX_KEPT_TOTAL: usize = 256 << 20;

/// Analyses every pickle in `src`.
pub fn analyze<S: ByteSource>(src: S) -> Analysis {
    analyze_with(src, Limits::default())
}

/// Analyses every pickle in `src` under the given limits.
pub fn analyze_with<S: ByteSource>(src: S, limits: Limits) -> Analysis {
    let mut m = Machine::new();
    m.limits = limits;
    m.run(OpReader::new(src));
    m.out
}

/// Analyses every pickle in `src` for extraction: joblib array payloads and
/// values longer than [`MAX_KEPT_VALUE_BYTES`] go to `sink` (values up to
/// [`crate::limits::MAX_INLINE_ARG`] are kept whole instead of cut).
pub fn analyze_into<S: ByteSource>(src: S, part: usize, sink: SharedSink) -> Analysis {
    sink.borrow_mut().begin(part);
    let mut m = Machine::new();
    m.keep_max = crate::limits::MAX_INLINE_ARG;
    m.sink = Some(sink.clone());
    m.run(OpReader::new(Spilling { inner: src, sink }));
    m.out
}

/// Analyses every pickle in a byte slice whose first byte is at `base`.
pub fn analyze_bytes(data: &[u8], base: u64) -> Analysis {
    analyze(crate::pickle::source::SliceSource::new(data, base))
}

/// Values on which CPython turns APPEND/SETITEM/ADDITEMS into method calls
/// (anything but a real list, dict or set that could have such a method).
fn takes_method_calls(v: &Value) -> bool {
    matches!(
        v,
        Value::Call(_) | Value::Persistent { .. } | Value::Unknown(_) | Value::Global(_) | Value::ComputedGlobal { .. }
    )
}

/// The memo index a GET/PUT argument names; `None` when negative (CPython
/// rejects it).
fn memo_key(arg: &Arg<'_>) -> Option<u64> {
    match arg {
        Arg::Int(i) if *i >= 0 => Some(*i as u64),
        Arg::BigInt(PyInt::Small(i)) if *i >= 0 => Some(*i as u64),
        _ => None,
    }
}

/// How one opcode of the fast path went.
enum Fast {
    /// Run; this many bytes consumed.
    Done(usize),
    /// Not a fast-path opcode, or cut short: the general path reads it.
    Run,
    /// Decoded and counted (this many bytes), but only [`Machine::exec`]
    /// runs it.
    Fallback(FixedOp, usize),
    /// Decoded and counted (this many bytes); running it stopped the machine.
    Halt(Halt, usize),
}

macro_rules! define_fast_step {
    ($( ($variant:ident, $name:literal, $byte:literal, $($rest:tt)*) ),* $(,)?) => {
        /// One opcode of the fast path: a single jump on the opcode byte
        /// into [`Machine::fast_op`] specialised for it, so argument decoding
        /// and execution follow without a second dispatch (the table
        /// dispatch this replaced spent a fifth of its time on the two
        /// indirect jumps). `w` is not empty.
        #[inline(always)]
        fn fast_step(m: &mut Machine, f: &mut Frame, w: &[u8], at: u64) -> Fast {
            match w[0] {
                $( $byte => m.fast_op::<$byte>(f, w, at), )*
                _ => Fast::Run,
            }
        }
    };
}

for_each_opcode!(define_fast_step);

/// Python 2 → 3 renaming as `Unpickler.find_class` applies it.
pub fn map_py2_name(module: &str, name: &str) -> Option<(String, String)> {
    if let Some((_, (m, n))) = NAME_MAPPING.iter().find(|((m, n), _)| *m == module && *n == name) {
        return Some((m.to_string(), n.to_string()));
    }
    IMPORT_MAPPING.iter().find(|(m, _)| *m == module).map(|(_, m)| (m.to_string(), name.to_string()))
}

impl Machine {
    fn new() -> Machine {
        Machine {
            limits: Limits::default(),
            out: Analysis::default(),
            pickle: 0,
            offset: 0,
            kept_bytes: 0,
            extensions: std::collections::HashMap::new(),
            unknown_underflow: None,
            build_state: std::collections::HashMap::new(),
            plants: std::collections::HashMap::new(),
            state_keys: std::collections::HashMap::new(),
            class_ids: std::collections::HashMap::new(),
            global_class: std::collections::HashMap::new(),
            global_cache: std::collections::HashMap::new(),
            pending_payload: None,
            nesting: 0,
            sink: None,
            keep_max: MAX_KEPT_VALUE_BYTES,
            scratch: Vec::new(),
        }
    }

    #[inline]
    fn alloc(&mut self, v: Value) -> Result<ValueId, Halt> {
        if self.out.values.len() >= self.limits.max_values {
            return Err(Halt::limit("MAX_VALUES"));
        }
        self.out.values.push(v);
        Ok((self.out.values.len() - 1) as ValueId)
    }

    /// Copies `items` into the shared pool for a tuple or frozenset.
    #[inline]
    fn pool(&mut self, items: &[ValueId]) -> Result<Items, Halt> {
        let start = self.out.items.len();
        // Every pooled item was popped off the stack by an opcode, so the
        // pool stays far below 2^32 under any limits that bound the ops; the
        // check keeps the `u32` offsets honest whatever the limits say.
        if start + items.len() > u32::MAX as usize {
            return Err(Halt::limit("MAX_VALUES"));
        }
        self.out.items.extend_from_slice(items);
        Ok(Items { start: start as u32, len: items.len() as u32 })
    }

    /// A new tuple of `items`.
    #[inline]
    fn tuple(&mut self, items: &[ValueId]) -> Result<ValueId, Halt> {
        let r = self.pool(items)?;
        self.alloc(Value::Tuple(r))
    }

    fn event(&mut self, kind: EventKind) -> Result<(), Halt> {
        if self.out.events.len() >= self.limits.max_events {
            return Err(Halt::limit("MAX_EVENTS"));
        }
        self.out.events.push(Event { offset: self.offset, pickle: self.pickle, kind });
        Ok(())
    }

    /// Records the limit that ended the analysis. Pushed past `max_events`
    /// on purpose: when the event list itself is what filled up, the finding
    /// that says so must not be lost.
    fn record_limit(&mut self, limit: &'static str) {
        self.record_final(Anomaly::LimitExceeded { limit });
    }

    /// Records an anomaly that ends the file's analysis (at most a few per
    /// file), even when the event list is full.
    fn record_final(&mut self, a: Anomaly) {
        let kind = EventKind::Anomaly(a);
        self.out.events.push(Event { offset: self.offset, pickle: self.pickle, kind });
    }

    fn anomaly(&mut self, a: Anomaly) -> Result<(), Halt> {
        self.event(EventKind::Anomaly(a))
    }

    fn unknown(&mut self, why: UnknownWhy) -> Result<ValueId, Halt> {
        if why == UnknownWhy::StackUnderflow {
            // One shared node for all underflows keeps a hostile stream from
            // filling the arena with them.
            if let Some(id) = self.unknown_underflow {
                return Ok(id);
            }
            let id = self.alloc(Value::Unknown(why))?;
            self.unknown_underflow = Some(id);
            return Ok(id);
        }
        self.alloc(Value::Unknown(why))
    }

    #[inline]
    fn push(&mut self, f: &mut Frame, id: ValueId) -> Result<(), Halt> {
        if f.stack.len() >= self.limits.max_stack_depth {
            return Err(Halt::limit("MAX_STACK_DEPTH"));
        }
        f.stack.push(id);
        Ok(())
    }

    #[inline]
    fn push_new(&mut self, f: &mut Frame, v: Value) -> Result<ValueId, Halt> {
        let id = self.alloc(v)?;
        self.push(f, id)?;
        Ok(id)
    }

    #[inline]
    fn pop(&mut self, f: &mut Frame, op: Opcode) -> Result<ValueId, Halt> {
        if f.stack.len() > f.base {
            if let Some(id) = f.stack.pop() {
                return Ok(id);
            }
        }
        self.underflow(op)
    }

    /// What a pop from an empty stack yields, after noting it.
    #[cold]
    #[inline(never)]
    fn underflow(&mut self, op: Opcode) -> Result<ValueId, Halt> {
        self.anomaly(Anomaly::StackUnderflow { opcode: op.name() })?;
        self.unknown(UnknownWhy::StackUnderflow)
    }

    fn top(&mut self, f: &mut Frame, op: Opcode) -> Result<ValueId, Halt> {
        match f.stack[f.base..].last() {
            Some(id) => Ok(*id),
            None => {
                self.anomaly(Anomaly::StackUnderflow { opcode: op.name() })?;
                let id = self.unknown(UnknownWhy::StackUnderflow)?;
                self.push(f, id)?;
                Ok(id)
            }
        }
    }

    /// Closes the innermost mark; returns where its items start in the
    /// stack. They stay there for the caller to read and then truncate:
    /// until it does, the stack is not in a state to push or pop. Without a
    /// mark (an anomaly) the items are the whole stack.
    #[inline]
    fn pop_mark(&mut self, f: &mut Frame, op: Opcode) -> Result<usize, Halt> {
        match f.marks.pop() {
            Some(start) => {
                f.base = f.marks.last().copied().unwrap_or(0);
                Ok(start)
            }
            None => {
                self.anomaly(Anomaly::NoMark { opcode: op.name() })?;
                Ok(0)
            }
        }
    }

    /// Closes the innermost mark and takes its items off the stack.
    fn pop_mark_vec(&mut self, f: &mut Frame, op: Opcode) -> Result<Vec<ValueId>, Halt> {
        let start = self.pop_mark(f, op)?;
        Ok(f.stack.split_off(start))
    }

    /// Closes the innermost mark and moves its items into the reusable
    /// scratch vector (hand it back with [`Machine::return_scratch`]).
    fn pop_mark_scratch(&mut self, f: &mut Frame, op: Opcode) -> Result<Vec<ValueId>, Halt> {
        let start = self.pop_mark(f, op)?;
        let mut items = std::mem::take(&mut self.scratch);
        items.clear();
        items.extend_from_slice(&f.stack[start..]);
        f.stack.truncate(start);
        Ok(items)
    }

    fn return_scratch(&mut self, items: Vec<ValueId>) {
        self.scratch = items;
    }

    /// A `str` value of `text`; `end` is the offset just past its bytes.
    /// Kept whole in [`Analysis::text`] while it and the file's total fit
    /// the limits, else only its place and first bytes.
    fn str_value(&mut self, text: &Text<'_>, end: u64) -> Value {
        let part = match text {
            Text::Inline(s) => {
                let at = self.out.text.len();
                if s.len() <= self.keep_max
                    && self.kept_bytes + s.len() <= MAX_KEPT_TOTAL
                    && at + s.len() <= u32::MAX as usize
                {
                    self.kept_bytes += s.len();
                    self.out.text.push_str(s);
                    return Value::Str(StrRef { at: at as u32, len: s.len() as u32 });
                }
                if let Some(sink) = &self.sink {
                    sink.borrow_mut().spill_bytes(end.saturating_sub(s.len() as u64), s.as_bytes());
                }
                let cut = floor_char_boundary(s, PREVIEW_BYTES);
                let len = s.len() as u64;
                Partial { prefix: Some(s[..cut].into()), offset: end.saturating_sub(len), len }
            }
            Text::Skipped { offset, len } => Partial { prefix: None, offset: *offset, len: *len },
        };
        self.long_str(part)
    }

    /// A `str` value too long to keep.
    fn long_str(&mut self, part: Partial<str>) -> Value {
        // At most one per opcode read, so far below 2^32 under MAX_OPS.
        self.out.long_strs.push(part);
        Value::Str(StrRef { at: (self.out.long_strs.len() - 1) as u32, len: StrRef::LONG })
    }

    fn keep_bytes(&mut self, p: &Payload<'_>, end: u64) -> Blob<[u8]> {
        match p {
            Payload::Inline(b) => {
                if b.len() <= self.keep_max && self.kept_bytes + b.len() <= MAX_KEPT_TOTAL {
                    self.kept_bytes += b.len();
                    Blob::Full((*b).into())
                } else {
                    if let Some(sink) = &self.sink {
                        sink.borrow_mut().spill_bytes(end.saturating_sub(b.len() as u64), b);
                    }
                    let len = b.len() as u64;
                    let prefix = Some(b[..PREVIEW_BYTES.min(b.len())].into());
                    Blob::Part(Box::new(Partial { prefix, offset: end.saturating_sub(len), len }))
                }
            }
            Payload::Skipped { offset, len } => {
                Blob::Part(Box::new(Partial { prefix: None, offset: *offset, len: *len }))
            }
        }
    }

    fn call(
        &mut self,
        f: &mut Frame,
        kind: CallKind,
        func: ValueId,
        args: ValueId,
        kwargs: Option<ValueId>,
    ) -> Result<ValueId, Halt> {
        let result = self.alloc(Value::Call(Box::new(CallValue { kind, func, args, kwargs })))?;
        self.event(EventKind::Call { kind, func, args, kwargs, result })?;
        self.note_registration(func, args);
        self.push(f, result)?;
        Ok(result)
    }

    /// Records `copyreg.add_extension('mod', 'name', code)` so later `EXT`
    /// codes resolve as CPython's registry would.
    fn note_registration(&mut self, func: ValueId, args: ValueId) {
        let is_add = matches!(self.out.value(func), Value::Global(g)
            if &*g.module == "copyreg" && &*g.name == "add_extension");
        if !is_add {
            return;
        }
        if let Some(&[m, n, c]) = self.out.tuple(args) {
            let (Some(_), Some(_), Some(c)) = (self.out.full_str(m), self.out.full_str(n), self.code_of(c)) else {
                return;
            };
            // copyreg rejects codes outside 1..=0x7fffffff. The str values,
            // not copies: they never change.
            if (1..=0x7fff_ffff).contains(&c) {
                self.extensions.insert(c, (m, n));
            }
        }
    }

    /// The extension code `copyreg.add_extension` makes of a value:
    /// `int(code)`, so strings and bytes of digits and integral floats work too.
    fn code_of(&self, id: ValueId) -> Option<i64> {
        match self.out.value(id) {
            Value::Str(r) => self
                .out
                .str(*r)
                .full()
                .and_then(|t| crate::py::num::parse_int(t.as_bytes(), false))
                .and_then(|i| i.as_i64()),
            Value::Bytes(b) | Value::ByteArray(b) => {
                b.full().and_then(|t| crate::py::num::parse_int(t, false)).and_then(|i| i.as_i64())
            }
            Value::Float(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Some(*x as i64),
            _ => self.int_of(id),
        }
    }

    /// The string a value holds, when it is a complete literal string.
    pub fn str_of(&self, id: ValueId) -> Option<String> {
        self.out.full_str(id).map(str::to_string)
    }

    fn int_of(&self, id: ValueId) -> Option<i64> {
        match self.out.value(id) {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    fn import(&mut self, via: Opcode, module: &str, name: &str) -> Result<ValueId, Halt> {
        Ok(self.import_new(via, module, name)?.value)
    }

    /// The import of the `str` values `module` and `name`: the operands of
    /// `STACK_GLOBAL`, or what an `EXT` code was registered as. `None` when
    /// either is not a `str` kept whole.
    ///
    /// str values never change, so importing the same two again reuses the
    /// value, its shared names and what was worked out about them, in time
    /// and memory independent of the names' length (a repeat costs the file
    /// five bytes, the names up to 1 MiB each). As `find_class` returns the
    /// same object each time, one value stands for every such import.
    fn import_strs(&mut self, via: Opcode, module: ValueId, name: ValueId) -> Result<Option<ValueId>, Halt> {
        let key = (module, name);
        let imported = match self.global_cache.get(&key).cloned() {
            Some(imported) => {
                let Value::Global(g) = self.out.value(imported.value) else { unreachable!("the cache holds globals") };
                let (m, n) = (g.module.clone(), g.name.clone());
                if imported.dotted {
                    self.anomaly(Anomaly::DottedName { name: cut_dotted(&m, &n, SHOWN_NAME_BYTES) })?;
                }
                let (written, value) = (imported.written, imported.value);
                self.event(EventKind::Import { via, module: m, name: n, written, value })?;
                return Ok(Some(value));
            }
            None => {
                let texts = self.out.full_str(module).zip(self.out.full_str(name));
                let Some((m, n)) = texts.map(|(m, n)| (m.to_string(), n.to_string())) else { return Ok(None) };
                self.import_new(via, &m, &n)?
            }
        };
        let value = imported.value;
        self.global_cache.insert(key, imported);
        Ok(Some(value))
    }

    /// A new global value for `module name` and its Import event.
    fn import_new(&mut self, via: Opcode, module: &str, name: &str) -> Result<Imported, Halt> {
        // find_class applies the Python 2 mapping only below protocol 3; the
        // scanner maps regardless, judging what the file would import in the
        // reading where it means the most.
        let (m, n, written): (Arc<str>, Arc<str>, _) = match map_py2_name(module, name) {
            Some((m, n)) => (m.into(), n.into(), Some((module.to_string(), name.to_string()))),
            None => (module.into(), name.into(), None),
        };
        let dotted = n.contains('.');
        if dotted {
            self.anomaly(Anomaly::DottedName { name: cut_dotted(&m, &n, SHOWN_NAME_BYTES) })?;
        }
        let value = self.alloc(Value::Global(Box::new(GlobalName { module: m.clone(), name: n.clone() })))?;
        let next = self.class_ids.len() as u32;
        let class = *self.class_ids.entry((m.clone(), n.clone())).or_insert(next);
        self.global_class.insert(value, class);
        let imported = Imported { value, dotted, written: written.clone() };
        self.event(EventKind::Import { via, module: m, name: n, written, value })?;
        Ok(imported)
    }

    /// `PUT`/`MEMOIZE` of the stack top at `key`. Inline only for what
    /// picklers write, the next key in order; the rest is
    /// [`Machine::memo_put_any`].
    #[inline(always)]
    fn memo_put(&mut self, f: &mut Frame, key: Option<u64>) -> Result<(), Halt> {
        if let (Some(key), Some(&top)) = (key, f.stack[f.base..].last()) {
            if f.memo.len() < self.limits.max_memo_entries && f.memo.append(key, top) {
                return Ok(());
            }
        }
        self.memo_put_any(f, key)
    }

    #[inline(never)]
    fn memo_put_any(&mut self, f: &mut Frame, key: Option<u64>) -> Result<(), Halt> {
        let Some(key) = key else { return self.anomaly(Anomaly::MemoBadKey) };
        let Some(&top) = f.stack[f.base..].last() else { return self.anomaly(Anomaly::MemoEmptyStack) };
        if f.memo.len() >= self.limits.max_memo_entries && f.memo.get(key).is_none() {
            return Err(Halt::limit("MAX_MEMO_ENTRIES"));
        }
        if let Some(old) = f.memo.insert(key, top) {
            if old != top {
                self.anomaly(Anomaly::MemoOverwrite { key })?;
            }
        }
        Ok(())
    }

    /// `GET` of `key`: pushes the stored value, or notes the miss and pushes
    /// an unknown.
    #[inline(always)]
    fn memo_get(&mut self, f: &mut Frame, key: Option<u64>) -> Result<(), Halt> {
        match key.and_then(|k| f.memo.get(k)) {
            Some(id) => self.push(f, id),
            None => self.memo_missing(f, key),
        }
    }

    #[cold]
    #[inline(never)]
    fn memo_missing(&mut self, f: &mut Frame, key: Option<u64>) -> Result<(), Halt> {
        match key {
            Some(key) => self.anomaly(Anomaly::MemoMissing { key })?,
            None => self.anomaly(Anomaly::MemoBadKey)?,
        }
        let id = self.unknown(UnknownWhy::MissingMemo)?;
        self.push(f, id)
    }

    fn run<S: ByteSource>(&mut self, mut reader: OpReader<S>) {
        let mut index = 0usize;
        loop {
            let start = reader.position();
            // Every event from here on is this pickle's.
            let first_event = self.out.events.len();
            let mut f = Frame::new();
            reader.reset_frame();
            self.pickle = index;
            let outcome = self.run_one(&mut reader, &mut f).map_err(|h| *h.0);
            let end = reader.position();
            let root = match &outcome {
                Ok(Some(root)) => Some(*root),
                _ => None,
            };
            let read_nothing = f.ops == 0;
            match outcome {
                Ok(_) if read_nothing && index > 0 => {
                    // Clean end of input right after a STOP.
                    break;
                }
                Err(HaltKind::Error(e)) if read_nothing && index > 0 => {
                    // Bytes after the last STOP that are not a pickle.
                    let len = reader.source_mut().remaining().map(|r| r + (e.offset() - start).min(1)).unwrap_or(0);
                    let len = len.max(end - start);
                    // numpy under Python 2 ended object .npy data with one
                    // newline after the pickle: a byte that cannot carry
                    // anything is not reported.
                    let newline = len == 1 && matches!(e.kind(), ErrorKind::UnknownOpcode(b'\n'));
                    if !newline {
                        self.offset = start;
                        self.record_final(Anomaly::TrailingData { len });
                    }
                    break;
                }
                _ => {}
            }
            if index > 0 {
                self.offset = start;
                // Recorded after the fact so it sits with the pickle's events.
                let ev =
                    Event { offset: start, pickle: index, kind: EventKind::Anomaly(Anomaly::AnotherPickle { index }) };
                if self.out.events.len() < self.limits.max_events {
                    // Before the pickle's first event (found from where the
                    // pickle started: a scan of the whole list per pickle
                    // made 1,000 small pickles after a large one quadratic).
                    let pos = first_event
                        + self.out.events[first_event..]
                            .iter()
                            .position(|e| e.pickle == index)
                            .unwrap_or(self.out.events.len() - first_event);
                    self.out.events.insert(pos, ev);
                }
            }
            self.out.pickles.push(PickleInfo {
                start,
                end,
                proto: f.proto,
                max_opcode_proto: f.max_opcode_proto,
                root,
                ops: f.ops,
            });
            match outcome {
                Ok(Some(_)) => {}
                Ok(None) => {
                    if read_nothing && index == 0 {
                        self.out.error = Some(Error::new(ErrorKind::EmptyInput, start));
                    } else {
                        self.offset = end;
                        self.record_final(Anomaly::MissingStop);
                    }
                    break;
                }
                Err(HaltKind::Limit(limit)) => {
                    self.record_limit(limit);
                    break;
                }
                Err(HaltKind::Error(e)) => {
                    self.out.error = Some(e);
                    break;
                }
            }
            index += 1;
            if index >= self.limits.max_pickles_per_file {
                let more = !matches!(reader.at_eof(), Ok(true));
                if more {
                    self.offset = reader.position();
                    self.record_limit("MAX_PICKLES_PER_FILE");
                }
                break;
            }
        }
        self.out.bytes = reader.position();
    }

    /// Runs one pickle to its STOP. `Ok(None)`: clean end of input first.
    fn run_one<S: ByteSource>(&mut self, reader: &mut OpReader<S>, f: &mut Frame) -> Result<Option<ValueId>, Halt> {
        loop {
            if self.out.ops >= self.limits.max_ops {
                return Err(Halt::limit("MAX_OPS"));
            }
            // Most opcodes of a large pickle take the fast path: a run of
            // fixed-width opcodes decoded straight from the reader's window,
            // no `Op` built, only the protocol check before each opcode's
            // work (such an opcode has no frame note and no differential).
            // None of the opcodes `exec_fixed` runs ends a pickle or starts
            // a payload.
            let (pos, window) = reader.fixed_window();
            let budget = self.limits.max_ops.saturating_sub(self.out.ops);
            let mut used = 0;
            let mut count = 0u64;
            let end = loop {
                if count >= budget || used >= window.len() {
                    break Fast::Run;
                }
                match fast_step(self, f, &window[used..], pos + used as u64) {
                    Fast::Done(n) => {
                        used += n;
                        count += 1;
                    }
                    Fast::Run => break Fast::Run,
                    end @ (Fast::Fallback(_, n) | Fast::Halt(_, n)) => {
                        used += n;
                        count += 1;
                        break end;
                    }
                }
            };
            self.out.ops += count;
            f.ops += count;
            reader.advance(used);
            let root = if let Fast::Halt(h, _) = end {
                return Err(h);
            } else if let Fast::Fallback(q, _) = end {
                self.exec(f, &q.op(reader.position()))?
            } else if used > 0 {
                // Back to the limit check, then the next run or next_op.
                continue;
            } else {
                let at = reader.position();
                let op = match reader.next_op() {
                    Ok(Some(op)) => op,
                    Ok(None) => return Ok(None),
                    Err(e) => {
                        // An argument that ran past its FRAME and then failed to
                        // decode: readers that honour frames read something else.
                        if let Some(fe) = reader.frame_end() {
                            if at < fe && reader.position() > fe {
                                self.offset = at;
                                self.record_final(Anomaly::FrameCrossing { frame_end: fe });
                            }
                        }
                        return Err(Halt::error(e));
                    }
                };
                self.out.ops += 1;
                f.ops += 1;
                self.offset = op.offset;
                if op.differential {
                    self.anomaly(Anomaly::ParserDifferential { opcode: op.opcode.name() })?;
                }
                self.step(f, &op)?
            };
            if let Some(root) = root {
                if let Some(frame_end) = reader.frame_end().filter(|_| reader.frame_open()) {
                    self.anomaly(Anomaly::StopInsideFrame { frame_end })?;
                }
                return Ok(Some(root));
            }
            if let Some(wrapper) = self.pending_payload.take() {
                self.payload(reader, wrapper)?;
            }
        }
    }

    /// Reads the array payload joblib writes after a `NumpyArrayWrapper`'s
    /// BUILD (shared/FORMATS.md §1.1): a nested pickle for object dtypes,
    /// else optional alignment padding and `prod(shape) * itemsize` raw bytes,
    /// which are skipped (a seek for files), never copied.
    fn payload<S: ByteSource>(&mut self, reader: &mut OpReader<S>, wrapper: ValueId) -> Result<(), Halt> {
        let at = reader.position();
        if reader.frame_open() {
            self.offset = at;
            self.anomaly(Anomaly::PayloadInFrame)?;
        }
        let spec = match self.wrapper_spec(wrapper) {
            Ok(spec) => spec,
            Err(why) => {
                let e = Error::new(ErrorKind::BadArgument { what: "joblib array", detail: why.into() }, at);
                return Err(Halt::error(e));
            }
        };
        if spec.object {
            if self.nesting >= self.limits.max_nested_pickles {
                return Err(Halt::limit("MAX_NESTED_PICKLES"));
            }
            self.nesting += 1;
            let mut inner = Frame::new();
            reader.reset_frame();
            let root = self.run_one(reader, &mut inner);
            self.nesting -= 1;
            let root = match root? {
                Some(root) => root,
                None => {
                    return Err(Halt::error(Error::new(
                        ErrorKind::UnexpectedEof { what: "a nested object-array pickle" },
                        at,
                    )))
                }
            };
            self.offset = at;
            let len = reader.position() - at;
            return self.event(EventKind::ArrayPayload { wrapper, offset: at, len, nested: Some(root) });
        }
        let src = reader.source_mut();
        let io = |e: std::io::Error| Halt::error(Error::new(ErrorKind::Io(e.to_string()), at));
        if spec.padded {
            let pad = match src.take(1).map_err(io)? {
                Some(b) => b[0],
                None => return Err(Halt::error(Error::new(ErrorKind::UnexpectedEof { what: "joblib padding" }, at))),
            };
            let unusual = match src.take(pad as usize).map_err(io)? {
                Some(b) => pad == 0 || pad > 16 || b.iter().any(|&x| x != 0xff),
                None => return Err(Halt::error(Error::new(ErrorKind::UnexpectedEof { what: "joblib padding" }, at))),
            };
            if unusual {
                self.offset = at;
                self.anomaly(Anomaly::UnusualPadding { len: pad })?;
            }
        }
        let start = src.position();
        let remaining = src.remaining();
        if remaining.is_some_and(|r| spec.nbytes > r) {
            let e = ErrorKind::BadLength { what: "joblib array payload", declared: spec.nbytes as i128, remaining };
            return Err(Halt::error(Error::new(e, start)));
        }
        let skipped = match &self.sink {
            Some(sink) => {
                let view = View { a: &self.out, states: &self.build_state };
                sink.borrow_mut().payload(&view, wrapper, start, spec.nbytes, src).map_err(io)?
            }
            None => src.skip(spec.nbytes).map_err(io)?,
        };
        if skipped < spec.nbytes {
            return Err(Halt::error(Error::new(ErrorKind::UnexpectedEof { what: "a joblib array payload" }, start)));
        }
        self.offset = start;
        self.event(EventKind::ArrayPayload { wrapper, offset: start, len: spec.nbytes, nested: None })
    }

    /// What a wrapper's state says about the payload that follows it.
    fn wrapper_spec(&self, wrapper: ValueId) -> Result<PayloadSpec, &'static str> {
        let state = self.build_state.get(&wrapper).copied().ok_or("wrapper has no state")?;
        let Value::Dict(pairs) = self.out.value(state) else { return Err("wrapper state is not a dict") };
        let get = |key: &str| pairs.iter().find(|(k, _)| self.str_of(*k).as_deref() == Some(key)).map(|(_, v)| *v);
        let padded = get("numpy_array_alignment_bytes").is_some_and(|v| !matches!(self.out.value(v), Value::None));
        let dtype = get("dtype").ok_or("wrapper state has no dtype")?;
        let (itemsize, object) = self.dtype_size(dtype)?;
        if object {
            return Ok(PayloadSpec { object, padded: false, nbytes: 0 });
        }
        let shape = get("shape").ok_or("wrapper state has no shape")?;
        let Some(dims) = self.out.tuple(shape) else { return Err("shape is not a tuple") };
        let mut count: u64 = 1;
        for d in dims {
            let n = self.int_of(*d).ok_or("shape holds a non-integer")?;
            let n = u64::try_from(n).map_err(|_| "shape holds a negative size")?;
            count = count.checked_mul(n).ok_or("shape product overflows")?;
        }
        let nbytes = count.checked_mul(itemsize).ok_or("array size overflows")?;
        Ok(PayloadSpec { object, padded, nbytes })
    }

    /// Item size and whether a pickled `numpy.dtype` holds Python objects.
    fn dtype_size(&self, dtype: ValueId) -> Result<(u64, bool), &'static str> {
        let Value::Call(c) = self.out.value(dtype) else { return Err("dtype is not constructed") };
        let (func, args) = (&c.func, &c.args);
        let is_dtype =
            matches!(self.out.value(*func), Value::Global(g) if &*g.module == "numpy" && &*g.name == "dtype");
        if !is_dtype {
            return Err("dtype is not numpy.dtype");
        }
        let Some(a) = self.out.tuple(*args) else { return Err("dtype arguments are not a tuple") };
        let code = a.first().and_then(|c| self.str_of(*c)).ok_or("dtype code is not a string")?;
        // State: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]).
        let state: &[ValueId] = self.build_state.get(&dtype).and_then(|s| self.out.tuple(*s)).unwrap_or(&[]);
        let elsize = state.get(5).and_then(|v| self.int_of(*v)).filter(|n| *n > 0);
        let flags = state.get(7).and_then(|v| self.int_of(*v)).unwrap_or(0);
        let kind: String = code.chars().take_while(|c| !c.is_ascii_digit()).collect();
        let digits = &code[kind.len()..];
        let object = kind == "O" || flags & 1 != 0;
        if object {
            return Ok((8, true));
        }
        let size = match elsize {
            Some(n) => n as u64,
            None => {
                let n: u64 = digits.parse().map_err(|_| "dtype code has no size")?;
                if kind == "U" {
                    n.checked_mul(4).ok_or("dtype size overflows")?
                } else {
                    n
                }
            }
        };
        if !matches!(kind.as_str(), "b" | "i" | "u" | "f" | "c" | "S" | "U" | "V" | "M" | "m" | "?") {
            return Err("unknown dtype kind");
        }
        Ok((size, false))
    }

    /// One opcode of the fast path, the byte `B` known at compile time (see
    /// [`fast_step`]): decodes its argument, notes its protocol and runs
    /// [`Machine::exec_fixed`], whose `match` the constant opcode folds away.
    ///
    /// Short UTF-8 strings (`SHORT_BINUNICODE`, `BINUNICODE`) take it too,
    /// through [`Machine::push_text`] as in [`Machine::exec`].
    #[inline(always)]
    fn fast_op<const B: u8>(&mut self, f: &mut Frame, w: &[u8], at: u64) -> Fast {
        if let Some((q, n)) = decode_fixed_as::<B>(w, at) {
            self.offset = at;
            return match self.check_proto(f, q.opcode, q.proto).and_then(|()| self.exec_fixed(f, q.opcode, q.arg)) {
                Ok(true) => Fast::Done(n),
                Ok(false) => Fast::Fallback(q, n),
                Err(h) => Fast::Halt(h, n),
            };
        }
        if let Some((code, proto, text, n)) = decode_text_as::<B>(w) {
            self.offset = at;
            let end = at + n as u64;
            return match self
                .check_proto(f, code, proto)
                .and_then(|()| self.push_text(f, &Text::Inline(text.into()), end))
            {
                Ok(()) => Fast::Done(n),
                Err(h) => Fast::Halt(h, n),
            };
        }
        Fast::Run
    }

    /// Pushes a `str` value; `end` is the offset just past its bytes.
    #[inline]
    fn push_text(&mut self, f: &mut Frame, text: &Text<'_>, end: u64) -> Result<(), Halt> {
        let v = self.str_value(text, end);
        self.push_new(f, v)?;
        Ok(())
    }

    /// Executes one opcode. Returns the root value at `STOP`.
    fn step(&mut self, f: &mut Frame, op: &Op<'_>) -> Result<Option<ValueId>, Halt> {
        self.check_proto(f, op.opcode, op.opcode.proto())?;
        match op.frame {
            FrameNote::Ok => {}
            FrameNote::CrossesEnd { frame_end } => self.anomaly(Anomaly::FrameCrossing { frame_end })?,
            FrameNote::NewBeforeEnd { frame_end } => self.anomaly(Anomaly::FrameNotFinished { frame_end })?,
            FrameNote::PastInput => self.anomaly(Anomaly::FramePastInput)?,
        }
        self.exec(f, op)
    }

    /// Tracks the highest protocol among a pickle's opcodes and notes an
    /// opcode newer than the one `PROTO` declared. `proto` is the opcode's.
    #[inline]
    fn check_proto(&mut self, f: &mut Frame, code: Opcode, proto: u8) -> Result<(), Halt> {
        f.max_opcode_proto = f.max_opcode_proto.max(proto);
        if proto > f.proto && code != Opcode::Proto {
            // Only worth noting once per opcode kind per pickle would be
            // nicer; one per occurrence is bounded by MAX_EVENTS.
            if f.saw_proto {
                self.anomaly(Anomaly::AboveProtocol { opcode: code.name(), needs: proto, declared: f.proto })?;
            }
        }
        Ok(())
    }

    /// Executes an opcode whose argument has a fixed width (or none), when it
    /// is one of the stack, container, memo and constant opcodes that make up
    /// most of a pickle; `Ok(false)` (nothing done) for any other, which
    /// [`Machine::exec`] then runs. Shared by the reader's fast path and
    /// `exec`, so each of these opcodes has one implementation.
    #[inline(always)]
    fn exec_fixed(&mut self, f: &mut Frame, code: Opcode, arg: FixedArg) -> Result<bool, Halt> {
        use Opcode::*;
        match code {
            Mark => {
                if f.marks.len() >= self.limits.max_mark_depth {
                    return Err(Halt::limit("MAX_MARK_DEPTH"));
                }
                f.base = f.stack.len();
                f.marks.push(f.base);
            }
            Pop => {
                if f.stack.len() > f.base {
                    f.stack.pop();
                } else if f.marks.is_empty() {
                    self.anomaly(Anomaly::StackUnderflow { opcode: code.name() })?;
                } else {
                    let start = self.pop_mark(f, code)?;
                    f.stack.truncate(start);
                }
            }
            PopMark => {
                let start = self.pop_mark(f, code)?;
                f.stack.truncate(start);
            }
            Dup => {
                let t = self.top(f, code)?;
                self.push(f, t)?;
            }
            None => {
                self.push_new(f, Value::None)?;
            }
            Newtrue => {
                self.push_new(f, Value::Bool(true))?;
            }
            Newfalse => {
                self.push_new(f, Value::Bool(false))?;
            }
            Binint | Binint1 | Binint2 => {
                let FixedArg::Int(i) = arg else { return Ok(false) };
                self.push_new(f, Value::Int(i))?;
            }
            Float | Binfloat => {
                let FixedArg::Float(x) = arg else { return Ok(false) };
                self.push_new(f, Value::Float(x))?;
            }
            EmptyTuple => {
                self.push_new(f, Value::Tuple(Items::default()))?;
            }
            EmptyList => {
                self.push_new(f, Value::List(Box::default()))?;
            }
            EmptyDict => {
                self.push_new(f, Value::Dict(Box::default()))?;
            }
            EmptySet => {
                self.push_new(f, Value::Set(Box::default()))?;
            }
            Tuple => {
                let start = self.pop_mark(f, code)?;
                let id = self.tuple(&f.stack[start..])?;
                f.stack.truncate(start);
                self.push(f, id)?;
            }
            Tuple1 => {
                let a = self.pop(f, code)?;
                let id = self.tuple(&[a])?;
                self.push(f, id)?;
            }
            Tuple2 => {
                let b = self.pop(f, code)?;
                let a = self.pop(f, code)?;
                let id = self.tuple(&[a, b])?;
                self.push(f, id)?;
            }
            Tuple3 => {
                let c = self.pop(f, code)?;
                let b = self.pop(f, code)?;
                let a = self.pop(f, code)?;
                let id = self.tuple(&[a, b, c])?;
                self.push(f, id)?;
            }
            List => {
                let items = self.pop_mark_vec(f, code)?;
                self.push_new(f, Value::List(Box::new(items)))?;
            }
            Frozenset => {
                let start = self.pop_mark(f, code)?;
                let r = self.pool(&f.stack[start..])?;
                f.stack.truncate(start);
                self.push_new(f, Value::FrozenSet(r))?;
            }
            Dict => {
                let start = self.pop_mark(f, code)?;
                let items = &f.stack[start..];
                if items.len() % 2 == 1 {
                    self.anomaly(Anomaly::OddItems { opcode: code.name() })?;
                }
                let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                f.stack.truncate(start);
                self.push_new(f, Value::Dict(Box::new(pairs)))?;
            }
            Append => {
                let item = self.pop(f, code)?;
                let target = self.top(f, code)?;
                self.extend(target, &[item], code)?;
            }
            Appends | Additems => {
                let items = self.pop_mark_scratch(f, code)?;
                let target = self.top(f, code)?;
                self.extend(target, &items, code)?;
                self.return_scratch(items);
            }
            Setitem => {
                let v = self.pop(f, code)?;
                let k = self.pop(f, code)?;
                let target = self.top(f, code)?;
                self.set_items(target, &[k, v], code)?;
            }
            Setitems => {
                let items = self.pop_mark_scratch(f, code)?;
                if items.len() % 2 == 1 {
                    self.anomaly(Anomaly::OddItems { opcode: code.name() })?;
                }
                let target = self.top(f, code)?;
                self.set_items(target, &items, code)?;
                self.return_scratch(items);
            }
            Memoize => {
                let key = f.memo.len() as u64;
                self.memo_put(f, Some(key))?;
            }
            Put | Binput | LongBinput => {
                let FixedArg::Int(i) = arg else { return Ok(false) };
                self.memo_put(f, u64::try_from(i).ok())?;
            }
            Get | Binget | LongBinget => {
                let FixedArg::Int(i) = arg else { return Ok(false) };
                self.memo_get(f, u64::try_from(i).ok())?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Executes one opcode after its notes. Returns the root value at `STOP`.
    fn exec(&mut self, f: &mut Frame, op: &Op<'_>) -> Result<Option<ValueId>, Halt> {
        use Opcode::*;
        let code = op.opcode;
        if let Some(arg) = op.arg.fixed() {
            if self.exec_fixed(f, code, arg)? {
                return Ok(Option::None);
            }
        }
        match (code, &op.arg) {
            (Proto, Arg::Int(p)) => {
                if *p > 5 || f.ops > 1 && f.saw_proto {
                    self.anomaly(Anomaly::BadProto { proto: *p })?;
                }
                f.proto = (*p).clamp(0, 255) as u8;
                f.saw_proto = true;
            }
            (Frame, _) => {}
            (Stop, _) => {
                let root = self.pop(f, code)?;
                return Ok(Some(root));
            }
            (_, Arg::Bool(b)) => {
                self.push_new(f, Value::Bool(*b))?;
            }
            (Int | Long | Long1 | Long4, Arg::BigInt(i)) => {
                let v = match i {
                    PyInt::Small(v) => Value::Int(*v),
                    big => Value::BigInt(Box::new(big.clone())),
                };
                self.push_new(f, v)?;
            }
            (String, Arg::Escaped(b)) => {
                let s: std::string::String = b.iter().map(|&c| c as char).collect();
                self.push_text(f, &Text::Inline(s.into()), op.end)?;
            }
            (Binstring | ShortBinstring, Arg::Bytes(p)) => {
                let text = match p {
                    Payload::Inline(b) => {
                        Text::Inline(b.iter().map(|&c| c as char).collect::<std::string::String>().into())
                    }
                    Payload::Skipped { offset, len } => Text::Skipped { offset: *offset, len: *len },
                };
                self.push_text(f, &text, op.end)?;
            }
            (Binbytes | ShortBinbytes | Binbytes8, Arg::Bytes(p)) => {
                let blob = self.keep_bytes(p, op.end);
                self.push_new(f, Value::Bytes(Box::new(blob)))?;
            }
            (Bytearray8, Arg::Bytes(p)) => {
                let blob = self.keep_bytes(p, op.end);
                self.push_new(f, Value::ByteArray(Box::new(blob)))?;
            }
            (Unicode | Binunicode | ShortBinunicode | Binunicode8, Arg::Str(t)) => {
                self.push_text(f, t, op.end)?;
            }
            (Put | Binput | LongBinput, arg) => {
                self.memo_put(f, memo_key(arg))?;
            }
            (Get | Binget | LongBinget, arg) => {
                self.memo_get(f, memo_key(arg))?;
            }
            (Global, Arg::Global { module, name }) => {
                let id = self.import(code, module, name)?;
                self.push(f, id)?;
            }
            (StackGlobal, _) => {
                let name = self.pop(f, code)?;
                let module = self.pop(f, code)?;
                match self.import_strs(code, module, name)? {
                    Some(id) => self.push(f, id)?,
                    Option::None => {
                        self.anomaly(Anomaly::ComputedGlobal)?;
                        let value = self.push_new(f, Value::ComputedGlobal { module, name })?;
                        self.event(EventKind::ComputedImport { value })?;
                    }
                }
            }
            (Inst, Arg::Global { module, name }) => {
                let cls = self.import(code, module, name)?;
                let items = self.pop_mark_vec(f, code)?;
                let args = self.tuple(&items)?;
                self.call(f, CallKind::Inst, cls, args, Option::None)?;
            }
            (Obj, _) => {
                let mut items = self.pop_mark_vec(f, code)?;
                let cls = if items.is_empty() {
                    self.anomaly(Anomaly::StackUnderflow { opcode: code.name() })?;
                    self.unknown(UnknownWhy::StackUnderflow)?
                } else {
                    items.remove(0)
                };
                let args = self.tuple(&items)?;
                self.call(f, CallKind::Obj, cls, args, Option::None)?;
            }
            (Reduce, _) => {
                let args = self.pop(f, code)?;
                let func = self.pop(f, code)?;
                self.call(f, CallKind::Reduce, func, args, Option::None)?;
            }
            (Newobj, _) => {
                let args = self.pop(f, code)?;
                let cls = self.pop(f, code)?;
                self.call(f, CallKind::NewObj, cls, args, Option::None)?;
            }
            (NewobjEx, _) => {
                let kwargs = self.pop(f, code)?;
                let args = self.pop(f, code)?;
                let cls = self.pop(f, code)?;
                self.call(f, CallKind::NewObjEx, cls, args, Some(kwargs))?;
            }
            (Build, _) => {
                let state = self.pop(f, code)?;
                let target = self.top(f, code)?;
                self.build(target, state)?;
                if self.is_array_wrapper(target) {
                    self.pending_payload = Some(target);
                }
            }
            (Persid, Arg::Str(t)) => {
                let v = self.str_value(t, op.end);
                let pid = self.alloc(v)?;
                self.persistent(f, pid)?;
            }
            (Binpersid, _) => {
                let pid = self.pop(f, code)?;
                self.persistent(f, pid)?;
            }
            (Ext1 | Ext2 | Ext4, Arg::Int(c)) => {
                let registered = self.extensions.get(c).copied();
                let cut = |id| cut_text(self.out.full_str(id).unwrap_or_default(), SHOWN_NAME_BYTES);
                let resolved = registered.map(|(m, n)| (cut(m), cut(n)));
                self.event(EventKind::Extension { code: *c, resolved })?;
                // As a STACK_GLOBAL of the same two values (registrations
                // keep only whole strs, so this imports).
                let imported = match registered {
                    Some((m, n)) => self.import_strs(code, m, n)?,
                    Option::None => Option::None,
                };
                match imported {
                    Some(id) => self.push(f, id)?,
                    Option::None => {
                        self.anomaly(Anomaly::BadExtension { code: *c })?;
                        let id = self.unknown(UnknownWhy::UnregisteredExtension)?;
                        self.push(f, id)?;
                    }
                }
            }
            (NextBuffer, _) => {
                self.event(EventKind::ExternalBuffer)?;
                self.push_new(f, Value::Buffer { readonly: false })?;
            }
            (ReadonlyBuffer, _) => {
                let t = self.top(f, code)?;
                if let Value::Buffer { readonly } = &mut self.out.values[t as usize] {
                    *readonly = true;
                }
            }
            // The reader only produces the argument kinds matched above; an
            // opcode/argument pairing outside them cannot occur, but is
            // treated as an unknown value rather than trusted.
            _ => {
                let id = self.unknown(UnknownWhy::Unreadable)?;
                self.push(f, id)?;
            }
        }
        Ok(Option::None)
    }

    fn persistent(&mut self, f: &mut Frame, pid: ValueId) -> Result<(), Halt> {
        self.event(EventKind::PersistentId { pid })?;
        self.push_new(f, Value::Persistent { pid })?;
        Ok(())
    }

    /// APPEND / APPENDS / ADDITEMS.
    ///
    /// On a real list or set the items are added. On anything else CPython
    /// calls a method looked up on the object: the C unpickler tries
    /// `extend(items)` first and falls back to `append(item)` per item;
    /// `pickle.py` calls `append` (and `add` for ADDITEMS). A method planted
    /// by an earlier BUILD is called as itself; otherwise the call is
    /// recorded against the object (judged by the class that made it).
    fn extend(&mut self, target: ValueId, items: &[ValueId], code: Opcode) -> Result<(), Halt> {
        let is_add = code == Opcode::Additems;
        match &mut self.out.values[target as usize] {
            Value::List(v) if !is_add => {
                v.extend_from_slice(items);
                return Ok(());
            }
            Value::Set(v) if is_add => {
                v.extend_from_slice(items);
                return Ok(());
            }
            v if takes_method_calls(v) => {}
            _ => {
                let expected = if is_add { "set" } else { "list" };
                return self.anomaly(Anomaly::TypeMismatch { opcode: code.name(), expected });
            }
        }
        let names: &[&'static str] = if is_add { &["add"] } else { &["extend", "append"] };
        let mut planted = false;
        for &name in names {
            if let Some(hook) = self.planted(target, name) {
                planted = true;
                if name == "extend" {
                    let list = self.alloc(Value::List(Box::new(items.to_vec())))?;
                    let args = self.tuple(&[list])?;
                    self.hook_call(hook, args)?;
                } else {
                    for &item in items {
                        let args = self.tuple(&[item])?;
                        self.hook_call(hook, args)?;
                    }
                }
            }
        }
        if !planted {
            let kind = if is_add { CallKind::Add } else { CallKind::Append };
            for &item in items {
                let args = self.tuple(&[item])?;
                self.method_call(kind, target, args)?;
            }
        }
        Ok(())
    }

    /// SETITEM / SETITEMS: `obj[key] = value`, which on anything but a dict
    /// calls the type's `__setitem__` (a class-level plant included).
    fn set_items(&mut self, target: ValueId, items: &[ValueId], code: Opcode) -> Result<(), Halt> {
        match &mut self.out.values[target as usize] {
            Value::Dict(d) => {
                d.extend(items.chunks_exact(2).map(|p| (p[0], p[1])));
                return Ok(());
            }
            v if takes_method_calls(v) => {}
            _ => return self.anomaly(Anomaly::TypeMismatch { opcode: code.name(), expected: "dict" }),
        }
        let class_hook = self.class_of(target).and_then(|c| self.plants.get(&(c, "__setitem__")).copied());
        for pair in items.chunks_exact(2) {
            let args = self.tuple(&[pair[0], pair[1]])?;
            match class_hook {
                Some(hook) => self.hook_call(hook, args)?,
                None => self.method_call(CallKind::SetItem, target, args)?,
            }
        }
        Ok(())
    }

    /// The class an object was made from, when it is a named global.
    fn class_of(&self, obj: ValueId) -> Option<Receiver> {
        match self.out.value(obj) {
            Value::Call(c) => self.global_receiver(c.func),
            _ => None,
        }
    }

    /// The class receiver of a global value (`None` for any other value).
    fn global_receiver(&self, id: ValueId) -> Option<Receiver> {
        self.global_class.get(&id).map(|&c| Receiver::Class(c))
    }

    /// The value a BUILD planted as attribute `name` that `getattr(obj,
    /// name)` would find: on the object itself, else on its class. A
    /// global (a class or module attribute) is its own receiver.
    fn planted(&self, obj: ValueId, name: &'static str) -> Option<ValueId> {
        if let Some(&v) = self.plants.get(&(Receiver::Object(obj), name)) {
            return Some(v);
        }
        let class = match self.out.value(obj) {
            Value::Global(_) => self.global_receiver(obj),
            _ => self.class_of(obj),
        };
        class.and_then(|c| self.plants.get(&(c, name)).copied())
    }

    /// A call of a planted hook (recorded as `SetState`: a call the
    /// unpickler makes of an attribute a BUILD set).
    fn hook_call(&mut self, hook: ValueId, args: ValueId) -> Result<(), Halt> {
        let kind = CallKind::SetState;
        let result = self.alloc(Value::Call(Box::new(CallValue { kind, func: hook, args, kwargs: Option::None })))?;
        self.event(EventKind::Call { kind, func: hook, args, kwargs: Option::None, result })
    }

    /// A call of a method on an object (the object stands in for the callable).
    fn method_call(&mut self, kind: CallKind, target: ValueId, args: ValueId) -> Result<(), Halt> {
        let result = self.alloc(Value::Call(Box::new(CallValue { kind, func: target, args, kwargs: Option::None })))?;
        self.event(EventKind::Call { kind, func: target, args, kwargs: Option::None, result })
    }

    /// True for an object made by calling joblib's `NumpyArrayWrapper`, after
    /// whose BUILD `joblib.load` reads the array payload.
    fn is_array_wrapper(&self, target: ValueId) -> bool {
        match self.out.value(target) {
            Value::Call(c)
                if matches!(
                    c.kind,
                    CallKind::NewObj | CallKind::NewObjEx | CallKind::Reduce | CallKind::Inst | CallKind::Obj
                ) =>
            {
                matches!(self.out.value(c.func), Value::Global(g)
                    if &*g.module == "joblib.numpy_pickle" && &*g.name == "NumpyArrayWrapper")
            }
            _ => false,
        }
    }

    /// BUILD: `inst.__setstate__(state)` if the instance (or its class) has
    /// one, else a `__dict__` update plus `setattr` for a `(state,
    /// slotstate)` pair — which is how a pickle plants attributes.
    fn build(&mut self, target: ValueId, state: ValueId) -> Result<(), Halt> {
        self.event(EventKind::Build { target, state })?;
        if matches!(self.out.value(target), Value::Call(_)) {
            self.build_state.insert(target, state);
        }
        if let Some(hook) = self.planted(target, "__setstate__") {
            let args = self.tuple(&[state])?;
            return self.hook_call(hook, args);
        }
        // Which dicts would be applied as attributes.
        let mut dicts = Vec::new();
        match self.out.value(state) {
            Value::Dict(_) => dicts.push(state),
            Value::Tuple(r) if r.len() == 2 => {
                dicts.extend(
                    self.out.range(*r).iter().copied().filter(|i| matches!(self.out.value(*i), Value::Dict(_))),
                );
            }
            _ => {}
        }
        // setattr on a class object sets a class attribute.
        let receiver = self.global_receiver(target).unwrap_or(Receiver::Object(target));
        for d in dicts {
            let Value::Dict(pairs) = &self.out.values[d as usize] else { continue };
            // Only the pairs added since this dict was last applied are read:
            // one state dict may be applied by any number of BUILDs.
            let keys = self.state_keys.entry(d).or_default();
            for &(k, v) in &pairs[keys.seen..] {
                let Some(key) = self.out.full_str(k) else { continue };
                if key.starts_with("__") && key.ends_with("__") && key.len() > 4 {
                    keys.dunders.push(cut_text(key, SHOWN_NAME_BYTES));
                }
                if let Some(i) = HOOK_ATTRS.iter().position(|h| *h == key) {
                    // The last assignment wins, as in the dict.
                    keys.hooks[i] = Some(v);
                }
            }
            keys.seen = pairs.len();
            let keys = &self.state_keys[&d];
            let hooks = keys.hooks;
            // Each costs an event, so MAX_EVENTS bounds this loop over all BUILDs.
            for attr in keys.dunders.clone() {
                self.anomaly(Anomaly::DunderState { attr })?;
            }
            for (hook, v) in HOOK_ATTRS.iter().zip(hooks) {
                if let Some(v) = v {
                    self.plants.insert((receiver, hook), v);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imports(a: &Analysis) -> Vec<String> {
        a.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Import { module, name, .. } => Some(format!("{module}.{name}")),
                _ => Option::None,
            })
            .collect()
    }

    fn calls(a: &Analysis) -> Vec<(CallKind, ValueId)> {
        a.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Call { kind, func, .. } => Some((*kind, *func)),
                _ => Option::None,
            })
            .collect()
    }

    fn anomalies(a: &Analysis) -> Vec<Anomaly> {
        a.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Anomaly(x) => Some(x.clone()),
                _ => Option::None,
            })
            .collect()
    }

    #[test]
    fn protocol0_reduce() {
        let a = analyze_bytes(b"cos\nsystem\n(S'echo hi'\ntR.", 0);
        assert_eq!(imports(&a), vec!["os.system"]);
        let c = calls(&a);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, CallKind::Reduce);
        assert!(a.error.is_none());
        assert_eq!(a.events[0].offset, 0);
        assert_eq!(a.events[1].offset, 24);
    }

    #[test]
    fn py2_names_are_mapped() {
        let a = analyze_bytes(b"ccommands\ngetoutput\n(S'x'\ntR.", 0);
        assert_eq!(imports(&a), vec!["subprocess.getoutput"]);
    }

    #[test]
    fn memo_pop_trick_still_resolves() {
        // GLOBAL, BINPUT 0, POP, BINGET 0, args, REDUCE
        let a = analyze_bytes(b"\x80\x02cos\nsystem\nq\x000h\x00X\x02\x00\x00\x00hi\x85R.", 0);
        let c = calls(&a);
        assert_eq!(c.len(), 1);
        assert!(matches!(a.value(c[0].1), Value::Global(g) if &*g.module == "os"));
    }

    #[test]
    fn setstate_hijack_becomes_a_call() {
        // OrderedDict() ; BUILD (None, {'__setstate__': os.system}) ; BUILD 'x'
        let p = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93)\x81N}\x8c\x0c__setstate__\x8c\x02os\x8c\x06system\x93s\x86b\x8c\x01xb.";
        let a = analyze_bytes(p, 0);
        let c = calls(&a);
        assert_eq!(c.last().map(|c| c.0), Some(CallKind::SetState));
        assert!(matches!(a.value(c.last().unwrap().1), Value::Global(g) if &*g.name == "system"));
        assert!(anomalies(&a).contains(&Anomaly::DunderState { attr: "__setstate__".into() }));
    }

    /// A state dict applied again after it grew: the new keys count (the
    /// machine reads only the pairs added since the last BUILD that applied it).
    #[test]
    fn state_dict_applied_again_after_it_grew() {
        // d = {'a': 1}; o1 = OrderedDict(); BUILD o1 with d; d['__setstate__'] = os.system;
        // o2 = OrderedDict(); BUILD o2 with d; BUILD o2 with 'x' -> os.system('x')
        let p = b"\x80\x04}\x94\x8c\x01aK\x01s\x8c\x0bcollections\x8c\x0bOrderedDict\x93\x94)\x81h\x00b0\
                  h\x00\x8c\x0c__setstate__\x8c\x02os\x8c\x06system\x93s0\
                  h\x01)\x81h\x00b\x8c\x01xb.";
        let a = analyze_bytes(p, 0);
        assert!(a.error.is_none(), "{:?}", a.error);
        let c = calls(&a);
        assert_eq!(c.last().map(|c| c.0), Some(CallKind::SetState), "{c:?}");
        assert!(matches!(a.value(c.last().unwrap().1), Value::Global(g) if &*g.name == "system"));
        let dunders = anomalies(&a).into_iter().filter(|x| matches!(x, Anomaly::DunderState { .. })).count();
        assert_eq!(dunders, 1, "the first BUILD saw no dunder, the second one");
    }

    /// An attribute planted on a class reaches instances made from another
    /// import of the same name, and no other class.
    #[test]
    fn class_plants_reach_every_import_of_the_class() {
        // BUILD OrderedDict (the class) with (None, {'__setstate__': os.system});
        // then a new import of OrderedDict, an instance, BUILD 'x'; and a
        // collections.Counter instance, BUILD 'y' (not planted).
        let p = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93N}\x8c\x0c__setstate__\x8c\x02os\x8c\x06system\x93s\x86b0\
                  \x8c\x0bcollections\x8c\x07Counter\x93)\x81\x8c\x01yb0\
                  \x8c\x0bcollections\x8c\x0bOrderedDict\x93)\x81\x8c\x01xb.";
        let a = analyze_bytes(p, 0);
        assert!(a.error.is_none(), "{:?}", a.error);
        let hooks: Vec<_> = calls(&a).into_iter().filter(|c| c.0 == CallKind::SetState).collect();
        assert_eq!(hooks.len(), 1, "{hooks:?}");
        assert!(matches!(a.value(hooks[0].1), Value::Global(g) if &*g.name == "system"));
    }

    /// A STACK_GLOBAL repeated on the same memoised names is one value whose
    /// names every import event shares; what events say about a long name
    /// is cut.
    #[test]
    fn repeated_imports_share_one_value_and_long_names_are_cut() {
        let name = format!("A.{}", "b".repeat(5000));
        let mut p = b"\x80\x04\x8c\x05mypkg\x94X".to_vec();
        p.extend_from_slice(&(name.len() as u32).to_le_bytes());
        p.extend_from_slice(name.as_bytes());
        p.extend_from_slice(b"\x94");
        for _ in 0..3 {
            p.extend_from_slice(b"h\x00h\x01\x930");
        }
        p.extend_from_slice(b"N.");
        let a = analyze_bytes(&p, 0);
        let imports: Vec<(&Arc<str>, ValueId)> = a
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Import { name, value, .. } => Some((name, *value)),
                _ => None,
            })
            .collect();
        assert_eq!(imports.len(), 3);
        assert!(imports.iter().all(|(n, v)| Arc::ptr_eq(n, imports[0].0) && *v == imports[0].1));
        assert_eq!(&**imports[0].0, name.as_str(), "the import has the whole name");
        let dotted: Vec<String> = anomalies(&a)
            .into_iter()
            .filter_map(|x| match x {
                Anomaly::DottedName { name } => Some(name),
                _ => None,
            })
            .collect();
        assert_eq!(dotted.len(), 3);
        assert!(dotted[0].starts_with("mypkg.A.bbb") && dotted[0].ends_with('…'), "{}", &dotted[0][..20]);
        assert!(dotted[0].len() <= SHOWN_NAME_BYTES + '…'.len_utf8());
    }

    #[test]
    fn extension_registered_in_stream() {
        let p = b"\x80\x02ccopyreg\nadd_extension\nX\x02\x00\x00\x00osX\x06\x00\x00\x00systemK\xf0\x87R0\x82\xf0X\x01\x00\x00\x00x\x85R.";
        let a = analyze_bytes(p, 0);
        assert_eq!(imports(&a), vec!["copyreg.add_extension", "os.system"]);
        assert_eq!(calls(&a).len(), 2);
    }

    #[test]
    fn computed_stack_global() {
        let p = b"\x80\x04c_codecs\ndecode\n\x8c\x02bf\x8c\x05rot13\x86R\x8c\x06system\x93)R.";
        let a = analyze_bytes(p, 0);
        assert!(anomalies(&a).contains(&Anomaly::ComputedGlobal));
        assert!(a.events.iter().any(|e| matches!(e.kind, EventKind::ComputedImport { .. })));
    }

    #[test]
    fn underflow_and_missing_memo_keep_going() {
        let a = analyze_bytes(b"\x80\x02Rh\x05cos\nsystem\n)R.", 0);
        let an = anomalies(&a);
        assert!(an.contains(&Anomaly::StackUnderflow { opcode: "REDUCE" }));
        assert!(an.contains(&Anomaly::MemoMissing { key: 5 }));
        assert_eq!(imports(&a), vec!["os.system"]);
    }

    #[test]
    fn second_pickle_and_trailing_data() {
        let a = analyze_bytes(b"N.cos\nsystem\n)R.", 0);
        assert_eq!(a.pickles.len(), 2);
        assert!(anomalies(&a).contains(&Anomaly::AnotherPickle { index: 1 }));
        assert_eq!(imports(&a), vec!["os.system"]);
        let a = analyze_bytes(b"N.\x00\x01\x02", 0);
        assert_eq!(a.pickles.len(), 1);
        assert!(matches!(anomalies(&a)[..], [Anomaly::TrailingData { .. }]));
        assert!(a.error.is_none());
    }

    #[test]
    fn truncation_keeps_earlier_events() {
        let a = analyze_bytes(b"cos\nsystem\n(S'x'\ntR\x8c\x10ab", 0);
        assert_eq!(calls(&a).len(), 1);
        assert!(matches!(
            a.error.as_ref().map(|e| e.kind()),
            Some(ErrorKind::BadLength { declared: 16, remaining: Some(2), .. })
        ));
        let a = analyze_bytes(b"cos\nsystem\n(S'x'\ntR", 0);
        assert!(anomalies(&a).contains(&Anomaly::MissingStop));
    }

    #[test]
    fn memo_dag_stays_small() {
        // x = []; repeat 100 times: x = (x, x)
        let mut p = b"\x80\x02]".to_vec();
        for _ in 0..100 {
            p.extend_from_slice(b"2\x86");
        }
        p.push(b'.');
        let a = analyze_bytes(&p, 0);
        assert!(a.values.len() < 300);
        assert!(a.pickles[0].root.is_some());
    }

    #[test]
    fn values_stay_small() {
        // Millions of values per file: keep each to two words.
        assert!(std::mem::size_of::<Value>() <= 16, "{}", std::mem::size_of::<Value>());
    }

    /// Strings share one text buffer; one past MAX_KEPT_VALUE_BYTES keeps
    /// its place and a prefix, one past MAX_INLINE_ARG is never read.
    #[test]
    fn strings_kept_whole_in_part_or_skipped() {
        let long = "é".repeat(MAX_KEPT_VALUE_BYTES / 2 + 10); // 2 bytes each
        let huge = "x".repeat(MAX_INLINE_ARG + 1);
        let mut p = b"\x80\x04(\x8c\x03abcX".to_vec();
        p.extend_from_slice(&(long.len() as u32).to_le_bytes());
        let long_at = p.len() as u64;
        p.extend_from_slice(long.as_bytes());
        p.push(b'X');
        p.extend_from_slice(&(huge.len() as u32).to_le_bytes());
        let huge_at = p.len() as u64;
        p.extend_from_slice(huge.as_bytes());
        p.extend_from_slice(b"\x8c\x03d\xc3\xa9t.");
        let a = analyze_bytes(&p, 0);
        assert!(a.error.is_none() && a.pickles.len() == 1, "{:?}", a.error);
        let items = a.tuple(a.pickles[0].root.expect("root")).expect("tuple").to_vec();
        let strs: Vec<BlobView<'_, str>> = items
            .iter()
            .map(|&id| match a.value(id) {
                Value::Str(r) => a.str(*r),
                v => panic!("{v:?}"),
            })
            .collect();
        assert_eq!(strs[0], BlobView::Full("abc"));
        assert_eq!(strs[3], BlobView::Full("dé"));
        assert_eq!(a.text, "abcdé", "only the strings kept whole are in the buffer");
        let BlobView::Part(p1) = &strs[1] else { panic!("{:?}", strs[1]) };
        assert_eq!((p1.offset, p1.len), (long_at, long.len() as u64));
        assert!(p1.prefix.as_deref().is_some_and(|s| long.starts_with(s) && !s.is_empty()));
        let BlobView::Part(p2) = &strs[2] else { panic!("{:?}", strs[2]) };
        assert_eq!((p2.offset, p2.len, p2.prefix.as_deref()), (huge_at, huge.len() as u64, None));
        assert_eq!(a.full_str(items[0]), Some("abc"));
        assert_eq!(a.full_str(items[1]), None);
    }

    /// A source that never offers its window, so every opcode takes the
    /// general path (`OpReader::next_op`).
    struct NoWindow<'a>(crate::pickle::source::SliceSource<'a>);

    impl ByteSource for NoWindow<'_> {
        fn position(&self) -> u64 {
            self.0.position()
        }
        fn remaining(&self) -> Option<u64> {
            self.0.remaining()
        }
        fn take(&mut self, n: usize) -> std::io::Result<Option<&[u8]>> {
            self.0.take(n)
        }
        fn take_line(&mut self, max: usize) -> std::io::Result<crate::pickle::source::Line<'_>> {
            self.0.take_line(max)
        }
        fn skip(&mut self, n: u64) -> std::io::Result<u64> {
            self.0.skip(n)
        }
        fn at_eof(&mut self) -> std::io::Result<bool> {
            self.0.at_eof()
        }
    }

    fn summary(a: &Analysis) -> String {
        format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{} {}",
            a.events, a.values, a.items, a.text, a.long_strs, a.pickles, a.error, a.ops, a.bytes
        )
    }

    /// The fast path for fixed-width opcodes must change nothing: every
    /// fixture (and every prefix of the small ones, to cut opcodes and
    /// frames short) analyses the same through a slice, through a stream
    /// window, and through the general path alone.
    #[test]
    fn fast_path_agrees_with_general_path() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut dirs = vec![root];
        let mut files = 0;
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                    continue;
                }
                if !matches!(p.extension().and_then(|x| x.to_str()), Some("pkl" | "joblib" | "bin")) {
                    continue;
                }
                let data = std::fs::read(&p).unwrap();
                files += 1;
                let cuts: Vec<usize> = if data.len() <= 300 { (0..=data.len()).collect() } else { vec![data.len()] };
                for n in cuts {
                    let d = &data[..n];
                    let general = summary(&analyze(NoWindow(crate::pickle::source::SliceSource::new(d, 0))));
                    let fast = summary(&analyze_bytes(d, 0));
                    assert_eq!(fast, general, "{} cut at {n}", p.display());
                    let stream = crate::pickle::source::ReadSource::new(d, Some(n as u64));
                    assert_eq!(summary(&analyze(stream)), general, "{} (stream) cut at {n}", p.display());
                }
            }
        }
        assert!(files > 100, "{files}");
    }

    #[test]
    fn deep_marks_hit_a_limit_not_the_stack() {
        let p = vec![b'('; MAX_MARK_DEPTH + 10];
        let a = analyze_bytes(&p, 0);
        assert!(anomalies(&a).contains(&Anomaly::LimitExceeded { limit: "MAX_MARK_DEPTH" }));
    }
}
