//! The machine: its state (stack, marks, memo, the value arena), the loop
//! that runs each pickle of a file, and the imports and `copyreg` extension
//! registry it keeps. [`super::exec`] runs the opcodes, [`super::build`]
//! BUILD and the method calls it can plant.

use super::build::{AfterBuild, Receiver, StateKeys};
use super::event::{Anomaly, Event, EventKind, PickleInfo, SHOWN_NAME_BYTES};
use super::exec::Fast;
use super::sink::SharedSink;
use super::value::{
    Analysis, Blob, CallKind, CallValue, GlobalName, Items, Partial, StrRef, UnknownWhy, Value, ValueId, PREVIEW_BYTES,
};
use crate::error::{Error, ErrorKind};
use crate::limits::{Limits, MAX_KEPT_TOTAL, MAX_KEPT_VALUE_BYTES};
use crate::pickle::opcodes::Opcode;
use crate::pickle::reader::{OpReader, Payload, Text};
use crate::pickle::source::ByteSource;
use crate::py::compat::{IMPORT_MAPPING, NAME_MAPPING};
use crate::py::repr::{cut_dotted, floor_char_boundary};
use std::sync::Arc;

/// Python 2 → 3 renaming as `Unpickler.find_class` applies it.
pub fn map_py2_name(module: &str, name: &str) -> Option<(String, String)> {
    if let Some((_, (m, n))) = NAME_MAPPING.iter().find(|((m, n), _)| *m == module && *n == name) {
        return Some((m.to_string(), n.to_string()));
    }
    IMPORT_MAPPING.iter().find(|(m, _)| *m == module).map(|(_, m)| (m.to_string(), name.to_string()))
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
pub(crate) struct Halt(Box<HaltKind>);

impl Halt {
    #[cold]
    pub(crate) fn limit(name: &'static str) -> Halt {
        Halt(Box::new(HaltKind::Limit(name)))
    }

    #[cold]
    pub(crate) fn error(e: Error) -> Halt {
        Halt(Box::new(HaltKind::Error(e)))
    }
}

/// The memo: dense for the small consecutive keys picklers use, sparse for
/// the rest (a `LONG_BINPUT 4000000000` must not allocate 16 GB).
#[derive(Default)]
pub(super) struct Memo {
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

    pub(super) fn len(&self) -> usize {
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
pub(super) struct Frame {
    /// Every open mark's segment, bottom first.
    pub(super) stack: Vec<ValueId>,
    /// Where each open mark's segment starts in `stack`.
    pub(super) marks: Vec<usize>,
    /// Where the innermost segment starts (the last of `marks`, 0 when no
    /// mark is open): pops stop there.
    pub(super) base: usize,
    pub(super) memo: Memo,
    pub(super) proto: u8,
    pub(super) max_opcode_proto: u8,
    pub(super) saw_proto: bool,
    pub(super) ops: u64,
}

impl Frame {
    pub(super) fn new() -> Frame {
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
    pub(super) limits: Limits,
    pub(super) out: Analysis,
    pickle: usize,
    pub(super) offset: u64,
    kept_bytes: usize,
    /// In-stream `copyreg.add_extension(module, name, code)` registrations.
    pub(super) extensions: std::collections::HashMap<i64, (ValueId, ValueId)>,
    unknown_underflow: Option<ValueId>,
    /// The last BUILD state applied to each object (dtype states, wrappers).
    pub(super) build_state: std::collections::HashMap<ValueId, ValueId>,
    /// Hook attributes (`__setstate__`, `append`, ...) that BUILDs set on an
    /// object or a class; they persist for the whole file, as class
    /// attributes persist in the loading process.
    pub(super) plants: std::collections::HashMap<(Receiver, &'static str), ValueId>,
    /// A number for each distinct global `module.name` imported (see
    /// [`Receiver::Class`]).
    class_ids: std::collections::HashMap<(Arc<str>, Arc<str>), u32>,
    /// The class number of each global value.
    pub(super) global_class: std::collections::HashMap<ValueId, u32>,
    /// Imports of two `str` values, by the values (see [`Machine::import_strs`]).
    global_cache: std::collections::HashMap<(ValueId, ValueId), Imported>,
    /// For each dict applied as BUILD state: its dunder keys and hook
    /// attributes, read once per pair however many BUILDs apply it.
    pub(super) state_keys: std::collections::HashMap<ValueId, StateKeys>,
    /// What reads the bytes a format writes after a BUILD (joblib's array
    /// payloads; see [`AfterBuild`]).
    pub(super) after_build: &'static dyn AfterBuild,
    /// Set by a BUILD that [`Machine::after_build`] claims: its bytes follow.
    pub(super) pending_trailer: Option<ValueId>,
    /// How many nested (object-array) pickles are open.
    pub(super) nesting: usize,
    /// Where extraction wants array payloads and long values (see [`Sink`](super::Sink)).
    pub(super) sink: Option<SharedSink>,
    /// Longest string or bytes value kept whole.
    pub(super) keep_max: usize,
    /// Reused for the items of APPENDS, ADDITEMS and SETITEMS, which are
    /// taken off the stack before their target is looked up.
    scratch: Vec<ValueId>,
}

/// An import of two `str` values made before, for [`Machine::import_strs`].
#[derive(Clone)]
pub(super) struct Imported {
    value: ValueId,
    dotted: bool,
    written: Option<(String, String)>,
}

impl Machine {
    /// A machine with default limits that keeps values up to
    /// [`MAX_KEPT_VALUE_BYTES`], has no sink, and hands the bytes after a
    /// BUILD to `after_build`.
    pub(super) fn new(after_build: &'static dyn AfterBuild) -> Machine {
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
            after_build,
            pending_trailer: None,
            nesting: 0,
            sink: None,
            keep_max: MAX_KEPT_VALUE_BYTES,
            scratch: Vec::new(),
        }
    }

    #[inline]
    pub(super) fn alloc(&mut self, v: Value) -> Result<ValueId, Halt> {
        if self.out.values.len() >= self.limits.max_values {
            return Err(Halt::limit("MAX_VALUES"));
        }
        self.out.values.push(v);
        Ok((self.out.values.len() - 1) as ValueId)
    }

    /// Copies `items` into the shared pool for a tuple or frozenset.
    #[inline]
    pub(super) fn pool(&mut self, items: &[ValueId]) -> Result<Items, Halt> {
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
    pub(super) fn tuple(&mut self, items: &[ValueId]) -> Result<ValueId, Halt> {
        let r = self.pool(items)?;
        self.alloc(Value::Tuple(r))
    }

    pub(super) fn event(&mut self, kind: EventKind) -> Result<(), Halt> {
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
    pub(super) fn record_final(&mut self, a: Anomaly) {
        let kind = EventKind::Anomaly(a);
        self.out.events.push(Event { offset: self.offset, pickle: self.pickle, kind });
    }

    pub(super) fn anomaly(&mut self, a: Anomaly) -> Result<(), Halt> {
        self.event(EventKind::Anomaly(a))
    }

    pub(super) fn unknown(&mut self, why: UnknownWhy) -> Result<ValueId, Halt> {
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
    pub(super) fn push(&mut self, f: &mut Frame, id: ValueId) -> Result<(), Halt> {
        if f.stack.len() >= self.limits.max_stack_depth {
            return Err(Halt::limit("MAX_STACK_DEPTH"));
        }
        f.stack.push(id);
        Ok(())
    }

    #[inline]
    pub(super) fn push_new(&mut self, f: &mut Frame, v: Value) -> Result<ValueId, Halt> {
        let id = self.alloc(v)?;
        self.push(f, id)?;
        Ok(id)
    }

    #[inline]
    pub(super) fn pop(&mut self, f: &mut Frame, op: Opcode) -> Result<ValueId, Halt> {
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

    pub(super) fn top(&mut self, f: &mut Frame, op: Opcode) -> Result<ValueId, Halt> {
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
    pub(super) fn pop_mark(&mut self, f: &mut Frame, op: Opcode) -> Result<usize, Halt> {
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
    pub(super) fn pop_mark_vec(&mut self, f: &mut Frame, op: Opcode) -> Result<Vec<ValueId>, Halt> {
        let start = self.pop_mark(f, op)?;
        Ok(f.stack.split_off(start))
    }

    /// Closes the innermost mark and moves its items into the reusable
    /// scratch vector (hand it back with [`Machine::return_scratch`]).
    pub(super) fn pop_mark_scratch(&mut self, f: &mut Frame, op: Opcode) -> Result<Vec<ValueId>, Halt> {
        let start = self.pop_mark(f, op)?;
        let mut items = std::mem::take(&mut self.scratch);
        items.clear();
        items.extend_from_slice(&f.stack[start..]);
        f.stack.truncate(start);
        Ok(items)
    }

    pub(super) fn return_scratch(&mut self, items: Vec<ValueId>) {
        self.scratch = items;
    }

    /// A `str` value of `text`; `end` is the offset just past its bytes.
    /// Kept whole in [`Analysis::text`] while it and the file's total fit
    /// the limits, else only its place and first bytes.
    pub(super) fn str_value(&mut self, text: &Text<'_>, end: u64) -> Value {
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

    pub(super) fn keep_bytes(&mut self, p: &Payload<'_>, end: u64) -> Blob<[u8]> {
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

    pub(super) fn call(
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
            _ => self.out.int_or_bool(id),
        }
    }

    pub(super) fn import(&mut self, via: Opcode, module: &str, name: &str) -> Result<ValueId, Halt> {
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
    pub(super) fn import_strs(&mut self, via: Opcode, module: ValueId, name: ValueId) -> Result<Option<ValueId>, Halt> {
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
    pub(super) fn memo_put(&mut self, f: &mut Frame, key: Option<u64>) -> Result<(), Halt> {
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
    pub(super) fn memo_get(&mut self, f: &mut Frame, key: Option<u64>) -> Result<(), Halt> {
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

    /// Runs every pickle in the input, one after another, until the input
    /// ends, a pickle cannot be read, or a limit is reached.
    pub(super) fn run<S: ByteSource>(&mut self, mut reader: OpReader<S>) {
        let mut index = 0usize;
        while self.run_pickle(&mut reader, index) {
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

    /// Runs pickle number `index` of the input from where the reader stands
    /// and records it; false when the file's analysis ends with it (or
    /// before it: after the last pickle, nothing or bytes that are not one).
    fn run_pickle<S: ByteSource>(&mut self, reader: &mut OpReader<S>, index: usize) -> bool {
        let start = reader.position();
        // Every event from here on is this pickle's.
        let first_event = self.out.events.len();
        let mut f = Frame::new();
        reader.reset_frame();
        self.pickle = index;
        let outcome = self.run_one(reader, &mut f).map_err(|h| *h.0);
        let end = reader.position();
        let read_nothing = f.ops == 0;
        if read_nothing && index > 0 {
            match &outcome {
                // Clean end of input right after a STOP.
                Ok(_) => return false,
                Err(HaltKind::Error(e)) => {
                    self.trailing_data(reader, start, end, e);
                    return false;
                }
                Err(HaltKind::Limit(_)) => {}
            }
        }
        if index > 0 {
            self.note_another_pickle(start, index, first_event);
        }
        let root = match &outcome {
            Ok(Some(root)) => Some(*root),
            _ => None,
        };
        self.out.pickles.push(PickleInfo {
            start,
            end,
            proto: f.proto,
            max_opcode_proto: f.max_opcode_proto,
            root,
            ops: f.ops,
        });
        match outcome {
            Ok(Some(_)) => return true,
            Ok(None) => {
                if read_nothing && index == 0 {
                    self.out.error = Some(Error::new(ErrorKind::EmptyInput, start));
                } else {
                    self.offset = end;
                    self.record_final(Anomaly::MissingStop);
                }
            }
            Err(HaltKind::Limit(limit)) => self.record_limit(limit),
            Err(HaltKind::Error(e)) => self.out.error = Some(e),
        }
        false
    }

    /// Bytes after the last STOP that are not a pickle, from `start`; `end`
    /// is where reading them stopped, `e` why.
    fn trailing_data<S: ByteSource>(&mut self, reader: &mut OpReader<S>, start: u64, end: u64, e: &Error) {
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
    }

    /// Notes that pickle `index` (not the first) starts at `start`, before
    /// its first event; `first_event` is where the event list stood when
    /// the pickle started.
    fn note_another_pickle(&mut self, start: u64, index: usize, first_event: usize) {
        self.offset = start;
        // Recorded after the fact so it sits with the pickle's events.
        let ev = Event { offset: start, pickle: index, kind: EventKind::Anomaly(Anomaly::AnotherPickle { index }) };
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

    /// Runs one pickle to its STOP. `Ok(None)`: clean end of input first.
    pub(super) fn run_one<S: ByteSource>(
        &mut self,
        reader: &mut OpReader<S>,
        f: &mut Frame,
    ) -> Result<Option<ValueId>, Halt> {
        loop {
            if self.out.ops >= self.limits.max_ops {
                return Err(Halt::limit("MAX_OPS"));
            }
            // Most opcodes of a large pickle take the fast path (see
            // [`Machine::fast_run`]); what it leaves, the general path reads.
            let (used, end) = self.fast_run(reader, f);
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
            if let Some(target) = self.pending_trailer.take() {
                self.read_trailer(reader, target)?;
            }
        }
    }
}
