//! BUILD and what it can plant: the state applied to an object, the hook
//! attributes (`__setstate__`, `append`, `__setitem__`, ...) a state sets on
//! an object or a class, the method calls APPEND, SETITEM and ADDITEMS make
//! on anything but a real list, dict or set, and the [`AfterBuild`] hook
//! through which a format reads bytes it writes after a BUILD.

use super::event::{Anomaly, EventKind, SHOWN_NAME_BYTES};
use super::machine::{Frame, Halt, Machine};
use super::sink::View;
use super::value::{CallKind, CallValue, Value, ValueId};
use crate::pickle::opcodes::Opcode;
use crate::pickle::reader::OpReader;
use crate::pickle::source::ByteSource;
use crate::py::repr::cut_text;

/// What an attribute set by BUILD lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Receiver {
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

/// What a BUILD state dict sets that the machine watches for, read from its
/// first `seen` pairs (dicts only grow).
#[derive(Default)]
pub(super) struct StateKeys {
    seen: usize,
    /// Dunder keys (`__setstate__`, `__class__`, ...), one per pair.
    dunders: Vec<String>,
    /// The value of each of [`HOOK_ATTRS`], the last assigned.
    hooks: [Option<ValueId>; HOOK_ATTRS.len()],
}

/// Values on which CPython turns APPEND/SETITEM/ADDITEMS into method calls
/// (anything but a real list, dict or set that could have such a method).
fn takes_method_calls(v: &Value) -> bool {
    matches!(
        v,
        Value::Call(_) | Value::Persistent { .. } | Value::Unknown(_) | Value::Global(_) | Value::ComputedGlobal { .. }
    )
}

/// A format that writes bytes of its own into the stream after a BUILD,
/// outside the pickle's opcodes: joblib's array payloads, read by
/// [`crate::container::joblib`]. After every BUILD the machine asks whether
/// the object is followed by such bytes and, if so, hands the stream to
/// [`AfterBuild::read`] before the next opcode. The machine itself knows
/// nothing of the format.
pub(crate) trait AfterBuild {
    /// True when the BUILD of `target` is followed by bytes of the format.
    fn claims(&self, graph: &View<'_>, target: ValueId) -> bool;
    /// Reads the bytes after the BUILD of `target`; `stream` stands at the
    /// first of them.
    fn read(&self, stream: &mut dyn Trailer, target: ValueId) -> Result<(), Halt>;
}

/// The input as an [`AfterBuild`] hook reads it, between two opcodes, with
/// what the machine has learned so far.
pub(crate) trait Trailer {
    /// Absolute offset of the next byte.
    fn position(&self) -> u64;
    /// True while the next byte is inside the current `FRAME`.
    fn frame_open(&self) -> bool;
    /// The values built so far, with each object's last BUILD state.
    fn graph(&self) -> View<'_>;
    /// The bytes themselves.
    fn source(&mut self) -> &mut dyn ByteSource;
    /// Runs a pickle nested in the stream to its STOP, one level deeper
    /// (under `MAX_NESTED_PICKLES`); `Ok(None)` when the input ends first.
    fn nested_pickle(&mut self) -> Result<Option<ValueId>, Halt>;
    /// Hands the next `len` bytes, at `offset`, to extraction's [`Sink`] as
    /// the payload of `target`, or skips them (a seek for files) when there
    /// is no sink; returns how many were consumed.
    ///
    /// [`Sink`]: super::Sink
    fn payload(&mut self, target: ValueId, offset: u64, len: u64) -> std::io::Result<u64>;
    /// Records an anomaly at `offset`.
    fn anomaly(&mut self, offset: u64, a: Anomaly) -> Result<(), Halt>;
    /// Records an event at `offset`.
    fn event(&mut self, offset: u64, kind: EventKind) -> Result<(), Halt>;
}

/// The machine and its reader, as an [`AfterBuild`] hook sees them.
struct Reading<'a, S> {
    m: &'a mut Machine,
    reader: &'a mut OpReader<S>,
}

impl<S: ByteSource> Trailer for Reading<'_, S> {
    fn position(&self) -> u64 {
        self.reader.position()
    }
    fn frame_open(&self) -> bool {
        self.reader.frame_open()
    }
    fn graph(&self) -> View<'_> {
        self.m.view()
    }
    fn source(&mut self) -> &mut dyn ByteSource {
        self.reader.source_mut()
    }
    fn nested_pickle(&mut self) -> Result<Option<ValueId>, Halt> {
        let m = &mut *self.m;
        if m.nesting >= m.limits.max_nested_pickles {
            return Err(Halt::limit("MAX_NESTED_PICKLES"));
        }
        m.nesting += 1;
        let mut inner = Frame::new();
        self.reader.reset_frame();
        let root = m.run_one(self.reader, &mut inner);
        m.nesting -= 1;
        root
    }
    fn payload(&mut self, target: ValueId, offset: u64, len: u64) -> std::io::Result<u64> {
        let src = self.reader.source_mut();
        match &self.m.sink {
            Some(sink) => sink.borrow_mut().payload(&self.m.view(), target, offset, len, src),
            None => src.skip(len),
        }
    }
    fn anomaly(&mut self, offset: u64, a: Anomaly) -> Result<(), Halt> {
        self.m.offset = offset;
        self.m.anomaly(a)
    }
    fn event(&mut self, offset: u64, kind: EventKind) -> Result<(), Halt> {
        self.m.offset = offset;
        self.m.event(kind)
    }
}

impl Machine {
    /// APPEND / APPENDS / ADDITEMS.
    ///
    /// On a real list or set the items are added. On anything else CPython
    /// calls a method looked up on the object: the C unpickler tries
    /// `extend(items)` first and falls back to `append(item)` per item;
    /// `pickle.py` calls `append` (and `add` for ADDITEMS). A method planted
    /// by an earlier BUILD is called as itself; otherwise the call is
    /// recorded against the object (judged by the class that made it).
    pub(super) fn extend(&mut self, target: ValueId, items: &[ValueId], code: Opcode) -> Result<(), Halt> {
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
    pub(super) fn set_items(&mut self, target: ValueId, items: &[ValueId], code: Opcode) -> Result<(), Halt> {
        match &self.out.values[target as usize] {
            Value::Dict(r) => {
                let r = self.out.dict_extend(*r, items.chunks_exact(2).map(|p| (p[0], p[1])));
                self.out.values[target as usize] = Value::Dict(r);
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
        let result = self.alloc(Value::Call(Box::new(CallValue { kind, func: hook, args, kwargs: None })))?;
        self.event(EventKind::Call { kind, func: hook, args, kwargs: None, result })
    }

    /// A call of a method on an object (the object stands in for the callable).
    fn method_call(&mut self, kind: CallKind, target: ValueId, args: ValueId) -> Result<(), Halt> {
        let result = self.alloc(Value::Call(Box::new(CallValue { kind, func: target, args, kwargs: None })))?;
        self.event(EventKind::Call { kind, func: target, args, kwargs: None, result })
    }

    /// BUILD: `inst.__setstate__(state)` if the instance (or its class) has
    /// one, else a `__dict__` update plus `setattr` for a `(state,
    /// slotstate)` pair — which is how a pickle plants attributes.
    pub(super) fn build(&mut self, target: ValueId, state: ValueId) -> Result<(), Halt> {
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
            let Value::Dict(r) = self.out.values[d as usize] else { continue };
            let pairs = self.out.dict(r);
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

    /// The values built so far, with each object's last BUILD state.
    pub(super) fn view(&self) -> View<'_> {
        View { a: &self.out, states: &self.build_state }
    }

    /// After the BUILD of `target`: when [`Machine::after_build`] claims
    /// it, the bytes that follow are read before the next opcode
    /// ([`Machine::read_trailer`]).
    #[inline]
    pub(super) fn claim_trailer(&mut self, target: ValueId) {
        if self.after_build.claims(&self.view(), target) {
            self.pending_trailer = Some(target);
        }
    }

    /// Hands the stream to [`Machine::after_build`] to read the bytes that
    /// follow the BUILD of `target`.
    pub(super) fn read_trailer<S: ByteSource>(
        &mut self,
        reader: &mut OpReader<S>,
        target: ValueId,
    ) -> Result<(), Halt> {
        let hook = self.after_build;
        hook.read(&mut Reading { m: self, reader }, target)
    }
}
