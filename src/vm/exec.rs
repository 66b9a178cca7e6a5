//! The opcode dispatch: [`Machine::exec`] runs any opcode the reader
//! decodes, [`Machine::exec_fixed`] the fixed-width stack, container, memo
//! and constant opcodes that make up most of a pickle, and the fast path
//! ([`Machine::fast_run`]) runs those straight from the reader's window.

use super::event::{Anomaly, EventKind, SHOWN_NAME_BYTES};
use super::machine::{Frame, Halt, Machine};
use super::value::{CallKind, DictRef, Items, UnknownWhy, Value, ValueId};
use crate::pickle::opcodes::Opcode;
use crate::pickle::reader::{
    decode_fixed_as, decode_text_as, Arg, FixedArg, FixedOp, FrameNote, Op, OpReader, Payload, Text,
};
use crate::pickle::source::ByteSource;
use crate::py::num::PyInt;
use crate::py::repr::cut_text;

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
pub(super) enum Fast {
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

impl Machine {
    /// A run of fast-path opcodes from the reader's window; returns how
    /// many bytes it consumed and how it ended ([`Fast::Run`]: at an opcode
    /// for the general path, or the window's end; never [`Fast::Done`]).
    ///
    /// Most opcodes of a large pickle take the fast path: a run of
    /// fixed-width opcodes decoded straight from the reader's window,
    /// no `Op` built, only the protocol check before each opcode's
    /// work (such an opcode has no frame note and no differential).
    /// None of the opcodes `exec_fixed` runs ends a pickle or starts
    /// a payload.
    ///
    /// Kept out of line: on its own the loop keeps its counters and the
    /// window in registers, where inlined into [`Machine::run_one`] it
    /// reloaded them from the stack for every opcode (4% more instructions
    /// on 2 million opcodes).
    #[inline(never)]
    pub(super) fn fast_run<S: ByteSource>(&mut self, reader: &mut OpReader<S>, f: &mut Frame) -> (usize, Fast) {
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
        (used, end)
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
    pub(super) fn step(&mut self, f: &mut Frame, op: &Op<'_>) -> Result<Option<ValueId>, Halt> {
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
        match code {
            Opcode::Mark => {
                if f.marks.len() >= self.limits.max_mark_depth {
                    return Err(Halt::limit("MAX_MARK_DEPTH"));
                }
                f.base = f.stack.len();
                f.marks.push(f.base);
            }
            Opcode::Pop => {
                if f.stack.len() > f.base {
                    f.stack.pop();
                } else if f.marks.is_empty() {
                    self.anomaly(Anomaly::StackUnderflow { opcode: code.name() })?;
                } else {
                    let start = self.pop_mark(f, code)?;
                    f.stack.truncate(start);
                }
            }
            Opcode::PopMark => {
                let start = self.pop_mark(f, code)?;
                f.stack.truncate(start);
            }
            Opcode::Dup => {
                let t = self.top(f, code)?;
                self.push(f, t)?;
            }
            Opcode::None => {
                self.push_new(f, Value::None)?;
            }
            Opcode::Newtrue => {
                self.push_new(f, Value::Bool(true))?;
            }
            Opcode::Newfalse => {
                self.push_new(f, Value::Bool(false))?;
            }
            Opcode::Binint | Opcode::Binint1 | Opcode::Binint2 => {
                let FixedArg::Int(i) = arg else { return Ok(false) };
                self.push_new(f, Value::Int(i))?;
            }
            Opcode::Float | Opcode::Binfloat => {
                let FixedArg::Float(x) = arg else { return Ok(false) };
                self.push_new(f, Value::Float(x))?;
            }
            Opcode::EmptyTuple => {
                self.push_new(f, Value::Tuple(Items::default()))?;
            }
            Opcode::EmptyList => {
                self.push_new(f, Value::List(Box::default()))?;
            }
            Opcode::EmptyDict => {
                self.push_new(f, Value::Dict(DictRef::default()))?;
            }
            Opcode::EmptySet => {
                self.push_new(f, Value::Set(Box::default()))?;
            }
            Opcode::Tuple => {
                let start = self.pop_mark(f, code)?;
                let id = self.tuple(&f.stack[start..])?;
                f.stack.truncate(start);
                self.push(f, id)?;
            }
            Opcode::Tuple1 => {
                let a = self.pop(f, code)?;
                let id = self.tuple(&[a])?;
                self.push(f, id)?;
            }
            Opcode::Tuple2 => {
                let b = self.pop(f, code)?;
                let a = self.pop(f, code)?;
                let id = self.tuple(&[a, b])?;
                self.push(f, id)?;
            }
            Opcode::Tuple3 => {
                let c = self.pop(f, code)?;
                let b = self.pop(f, code)?;
                let a = self.pop(f, code)?;
                let id = self.tuple(&[a, b, c])?;
                self.push(f, id)?;
            }
            Opcode::List => {
                let items = self.pop_mark_vec(f, code)?;
                self.push_new(f, Value::List(Box::new(items)))?;
            }
            Opcode::Frozenset => {
                let start = self.pop_mark(f, code)?;
                let r = self.pool(&f.stack[start..])?;
                f.stack.truncate(start);
                self.push_new(f, Value::FrozenSet(r))?;
            }
            Opcode::Dict => {
                let start = self.pop_mark(f, code)?;
                let items = &f.stack[start..];
                if items.len() % 2 == 1 {
                    self.anomaly(Anomaly::OddItems { opcode: code.name() })?;
                }
                let r = self.out.new_dict(items.chunks_exact(2).map(|p| (p[0], p[1])));
                f.stack.truncate(start);
                self.push_new(f, Value::Dict(r))?;
            }
            Opcode::Append => {
                let item = self.pop(f, code)?;
                let target = self.top(f, code)?;
                self.extend(target, &[item], code)?;
            }
            Opcode::Appends | Opcode::Additems => {
                let items = self.pop_mark_scratch(f, code)?;
                let target = self.top(f, code)?;
                self.extend(target, &items, code)?;
                self.return_scratch(items);
            }
            Opcode::Setitem => {
                let v = self.pop(f, code)?;
                let k = self.pop(f, code)?;
                let target = self.top(f, code)?;
                self.set_items(target, &[k, v], code)?;
            }
            Opcode::Setitems => {
                let items = self.pop_mark_scratch(f, code)?;
                if items.len() % 2 == 1 {
                    self.anomaly(Anomaly::OddItems { opcode: code.name() })?;
                }
                let target = self.top(f, code)?;
                self.set_items(target, &items, code)?;
                self.return_scratch(items);
            }
            Opcode::Memoize => {
                let key = f.memo.len() as u64;
                self.memo_put(f, Some(key))?;
            }
            Opcode::Put | Opcode::Binput | Opcode::LongBinput => {
                let FixedArg::Int(i) = arg else { return Ok(false) };
                self.memo_put(f, u64::try_from(i).ok())?;
            }
            Opcode::Get | Opcode::Binget | Opcode::LongBinget => {
                let FixedArg::Int(i) = arg else { return Ok(false) };
                self.memo_get(f, u64::try_from(i).ok())?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Executes one opcode after its notes. Returns the root value at `STOP`.
    pub(super) fn exec(&mut self, f: &mut Frame, op: &Op<'_>) -> Result<Option<ValueId>, Halt> {
        let code = op.opcode;
        if let Some(arg) = op.arg.fixed() {
            if self.exec_fixed(f, code, arg)? {
                return Ok(None);
            }
        }
        match (code, &op.arg) {
            (Opcode::Proto, Arg::Int(p)) => {
                if *p > 5 || f.ops > 1 && f.saw_proto {
                    self.anomaly(Anomaly::BadProto { proto: *p })?;
                }
                f.proto = (*p).clamp(0, 255) as u8;
                f.saw_proto = true;
            }
            (Opcode::Frame, _) => {}
            (Opcode::Stop, _) => {
                let root = self.pop(f, code)?;
                return Ok(Some(root));
            }
            (_, Arg::Bool(b)) => {
                self.push_new(f, Value::Bool(*b))?;
            }
            (Opcode::Int | Opcode::Long | Opcode::Long1 | Opcode::Long4, Arg::BigInt(i)) => {
                let v = match i {
                    PyInt::Small(v) => Value::Int(*v),
                    big => Value::BigInt(Box::new(big.clone())),
                };
                self.push_new(f, v)?;
            }
            (Opcode::String, Arg::Escaped(b)) => {
                let s: String = b.iter().map(|&c| c as char).collect();
                self.push_text(f, &Text::Inline(s.into()), op.end)?;
            }
            (Opcode::Binstring | Opcode::ShortBinstring, Arg::Bytes(p)) => {
                let text = match p {
                    Payload::Inline(b) => Text::Inline(b.iter().map(|&c| c as char).collect::<String>().into()),
                    Payload::Skipped { offset, len } => Text::Skipped { offset: *offset, len: *len },
                };
                self.push_text(f, &text, op.end)?;
            }
            (Opcode::Binbytes | Opcode::ShortBinbytes | Opcode::Binbytes8, Arg::Bytes(p)) => {
                let blob = self.keep_bytes(p, op.end);
                self.push_new(f, Value::Bytes(Box::new(blob)))?;
            }
            (Opcode::Bytearray8, Arg::Bytes(p)) => {
                let blob = self.keep_bytes(p, op.end);
                self.push_new(f, Value::ByteArray(Box::new(blob)))?;
            }
            (Opcode::Unicode | Opcode::Binunicode | Opcode::ShortBinunicode | Opcode::Binunicode8, Arg::Str(t)) => {
                self.push_text(f, t, op.end)?;
            }
            (Opcode::Put | Opcode::Binput | Opcode::LongBinput, arg) => {
                self.memo_put(f, memo_key(arg))?;
            }
            (Opcode::Get | Opcode::Binget | Opcode::LongBinget, arg) => {
                self.memo_get(f, memo_key(arg))?;
            }
            (Opcode::Global, Arg::Global { module, name }) => {
                let id = self.import(code, module, name)?;
                self.push(f, id)?;
            }
            (Opcode::StackGlobal, _) => {
                let name = self.pop(f, code)?;
                let module = self.pop(f, code)?;
                match self.import_strs(code, module, name)? {
                    Some(id) => self.push(f, id)?,
                    None => {
                        self.anomaly(Anomaly::ComputedGlobal)?;
                        let value = self.push_new(f, Value::ComputedGlobal { module, name })?;
                        self.event(EventKind::ComputedImport { value })?;
                    }
                }
            }
            (Opcode::Inst, Arg::Global { module, name }) => {
                let cls = self.import(code, module, name)?;
                let items = self.pop_mark_vec(f, code)?;
                let args = self.tuple(&items)?;
                self.call(f, CallKind::Inst, cls, args, None)?;
            }
            (Opcode::Obj, _) => {
                let mut items = self.pop_mark_vec(f, code)?;
                let cls = if items.is_empty() {
                    self.anomaly(Anomaly::StackUnderflow { opcode: code.name() })?;
                    self.unknown(UnknownWhy::StackUnderflow)?
                } else {
                    items.remove(0)
                };
                let args = self.tuple(&items)?;
                self.call(f, CallKind::Obj, cls, args, None)?;
            }
            (Opcode::Reduce, _) => {
                let args = self.pop(f, code)?;
                let func = self.pop(f, code)?;
                self.call(f, CallKind::Reduce, func, args, None)?;
            }
            (Opcode::Newobj, _) => {
                let args = self.pop(f, code)?;
                let cls = self.pop(f, code)?;
                self.call(f, CallKind::NewObj, cls, args, None)?;
            }
            (Opcode::NewobjEx, _) => {
                let kwargs = self.pop(f, code)?;
                let args = self.pop(f, code)?;
                let cls = self.pop(f, code)?;
                self.call(f, CallKind::NewObjEx, cls, args, Some(kwargs))?;
            }
            (Opcode::Build, _) => {
                let state = self.pop(f, code)?;
                let target = self.top(f, code)?;
                self.build(target, state)?;
                self.claim_trailer(target);
            }
            (Opcode::Persid, Arg::Str(t)) => {
                let v = self.str_value(t, op.end);
                let pid = self.alloc(v)?;
                self.persistent(f, pid)?;
            }
            (Opcode::Binpersid, _) => {
                let pid = self.pop(f, code)?;
                self.persistent(f, pid)?;
            }
            (Opcode::Ext1 | Opcode::Ext2 | Opcode::Ext4, Arg::Int(c)) => {
                let registered = self.extensions.get(c).copied();
                let cut = |id| cut_text(self.out.full_str(id).unwrap_or_default(), SHOWN_NAME_BYTES);
                let resolved = registered.map(|(m, n)| (cut(m), cut(n)));
                self.event(EventKind::Extension { code: *c, resolved })?;
                // As a STACK_GLOBAL of the same two values (registrations
                // keep only whole strs, so this imports).
                let imported = match registered {
                    Some((m, n)) => self.import_strs(code, m, n)?,
                    None => None,
                };
                match imported {
                    Some(id) => self.push(f, id)?,
                    None => {
                        self.anomaly(Anomaly::BadExtension { code: *c })?;
                        let id = self.unknown(UnknownWhy::UnregisteredExtension)?;
                        self.push(f, id)?;
                    }
                }
            }
            (Opcode::NextBuffer, _) => {
                self.event(EventKind::ExternalBuffer)?;
                self.push_new(f, Value::Buffer { readonly: false })?;
            }
            (Opcode::ReadonlyBuffer, _) => {
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
        Ok(None)
    }

    fn persistent(&mut self, f: &mut Frame, pid: ValueId) -> Result<(), Halt> {
        self.event(EventKind::PersistentId { pid })?;
        self.push_new(f, Value::Persistent { pid })?;
        Ok(())
    }
}
