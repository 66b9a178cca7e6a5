//! Symbolic values: the arena's [`Value`]s, the compact forms they keep
//! strings, bytes and tuples in, and [`Analysis`], everything the machine
//! learned from one input.
//!
//! [`Analysis`] also holds the one set of accessors every stage reads a
//! value through ([`Analysis::full_str`], [`Analysis::str_or_latin1`],
//! [`Analysis::int`], [`Analysis::int_or_bool`], [`Analysis::tuple`], ...):
//! each name says its rule, such as whether a `bool` counts as an `int`.

use super::event::{Event, PickleInfo};
use crate::error::Error;
use crate::py::latin1;
use crate::py::num::PyInt;
use std::borrow::Cow;
use std::sync::Arc;

/// Index of a value in [`Analysis::values`].
pub type ValueId = u32;

/// Bytes kept from the start of a long string or bytes value, for display.
pub const PREVIEW_BYTES: usize = 64;

/// Contents of a `str`, `bytes` or `bytearray` value.
///
/// Kept compact (one pointer and a tag) because a pickle may hold millions.
#[derive(Debug, PartialEq)]
pub enum Blob<T: ?Sized> {
    /// The whole contents (no longer than [`crate::limits::MAX_KEPT_VALUE_BYTES`]).
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
    pub(super) at: u32,
    /// The text's length, or [`StrRef::LONG`] when `at` indexes
    /// [`Analysis::long_strs`].
    pub(super) len: u32,
}

impl StrRef {
    pub(super) const LONG: u32 = u32::MAX;
}

/// Where a dict's pairs are: a range of [`Analysis::dict_pool`], or, for a
/// dict that grew after another dict's pairs were added, its own vector in
/// [`Analysis::dict_heap`]. Read it with [`Analysis::dict`].
///
/// A pickle may hold hundreds of thousands of small dicts (a list of
/// records), each filled by one `SETITEMS` right after it is made: pooled,
/// they cost no allocation each, where a boxed vector cost two (and 48 to
/// 80 bytes of heap for three pairs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DictRef {
    at: u32,
    /// The number of pairs, or [`DictRef::HEAP`] when `at` indexes
    /// [`Analysis::dict_heap`].
    len: u32,
}

impl DictRef {
    const HEAP: u32 = u32::MAX;

    /// True for a dict with no pairs (one moved to its own vector has some).
    pub fn is_empty(self) -> bool {
        self.len == 0
    }
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
    pub(super) start: u32,
    pub(super) len: u32,
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
    Dict(DictRef),
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
    /// The pairs of every dict filled in one go, back to back (see
    /// [`DictRef`]).
    pub dict_pool: Vec<(ValueId, ValueId)>,
    /// The pairs of each dict that grew after another's (see [`DictRef`]).
    pub dict_heap: Vec<Vec<(ValueId, ValueId)>>,
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
    /// The bytes read, when the analysis was asked to keep them
    /// ([`crate::vm::Analyzer::record`]).
    pub recorded: Option<crate::pickle::record::Recorded>,
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

    /// The text of the value `id` read as numpy's and Python 2's pickles hold
    /// text: a `str` kept whole, or bytes decoded as latin-1 — a `bytes`
    /// value, or protocol ≤ 2's `_codecs.encode(text, 'latin1')`.
    pub fn str_or_latin1(&self, id: ValueId) -> Option<Cow<'_, str>> {
        if let Some(s) = self.full_str(id) {
            return Some(Cow::Borrowed(s));
        }
        let v = self.value(id);
        if let Some(b) = v.full_bytes() {
            return Some(Cow::Owned(b.iter().map(|&c| c as char).collect()));
        }
        let Value::Call(c) = v else { return None };
        let Value::Global(f) = self.value(c.func) else { return None };
        if (&*f.module, &*f.name) != ("_codecs", "encode") {
            return None;
        }
        match self.tuple_or_list(c.args)? {
            [t, e] if self.str_or_latin1(*e).is_some_and(|e| latin1::is_codec(&e)) => {
                self.full_str(*t).map(Cow::Borrowed)
            }
            _ => None,
        }
    }

    /// The integer the value `id` is, when it is an `int` that fits an i64;
    /// a `bool` is not taken.
    pub fn int(&self, id: ValueId) -> Option<i64> {
        match self.value(id) {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The integer the value `id` is, a `bool` counting as 0 or 1 (as
    /// Python's `bool` is an `int`).
    pub fn int_or_bool(&self, id: ValueId) -> Option<i64> {
        match self.value(id) {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
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
            Value::Dict(r) => self.dict(*r),
            _ => &[],
        }
    }

    /// The pairs of a dict value, in insertion order.
    pub fn dict(&self, r: DictRef) -> &[(ValueId, ValueId)] {
        // Refs are only made by `Analysis::new_dict` and `dict_extend`,
        // which keep them in range.
        if r.len == DictRef::HEAP {
            return &self.dict_heap[r.at as usize];
        }
        let at = r.at as usize;
        &self.dict_pool[at..at + r.len as usize]
    }

    /// A new dict holding `pairs`, at the end of the pool.
    pub(crate) fn new_dict(&mut self, pairs: impl Iterator<Item = (ValueId, ValueId)>) -> DictRef {
        let at = self.dict_pool.len();
        self.dict_pool.extend(pairs);
        DictRef { at: at as u32, len: (self.dict_pool.len() - at) as u32 }
    }

    /// `r` with `pairs` added (`SETITEM`/`SETITEMS`): in place when its
    /// pairs end the pool (or it has none), else moved, once, to a vector
    /// of its own. Returns the dict's ref, which the caller stores back.
    pub(crate) fn dict_extend(&mut self, r: DictRef, pairs: impl Iterator<Item = (ValueId, ValueId)>) -> DictRef {
        if r.len == DictRef::HEAP {
            self.dict_heap[r.at as usize].extend(pairs);
            return r;
        }
        let (at, len) = (r.at as usize, r.len as usize);
        if len == 0 || at + len == self.dict_pool.len() {
            let start = if len == 0 { self.dict_pool.len() } else { at };
            self.dict_pool.extend(pairs);
            return DictRef { at: start as u32, len: (self.dict_pool.len() - start) as u32 };
        }
        let mut own = self.dict_pool[at..at + len].to_vec();
        own.extend(pairs);
        self.dict_heap.push(own);
        DictRef { at: (self.dict_heap.len() - 1) as u32, len: DictRef::HEAP }
    }
}
