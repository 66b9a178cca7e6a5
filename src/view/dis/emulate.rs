//! pickletools' crude emulation of the stack, memo and mark stack, using
//! the stack effects of [`crate::pickle::opcodes`], and the line it prints
//! for each opcode with its `!!` messages.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::pickle::opcodes::{Opcode, OpcodeInfo, StackItem};
use crate::py::repr::repr_str;

use super::args::{ArgView, MemoKey};
use crate::limits::{MAX_INDENT_LEVELS, MAX_STACK_REPR_ITEMS};

/// Blanks per open MARK (pickletools' default `indentlevel`).
pub(super) const INDENT_CHUNK: &str = "    ";

/// pickletools' name for a stack item (`StackObject.name`, also its repr).
fn item_name(item: StackItem) -> &'static str {
    match item {
        StackItem::Int => "int",
        StackItem::IntOrBool => "int_or_bool",
        StackItem::Bool => "bool",
        StackItem::Float => "float",
        StackItem::BytesOrStr => "bytes_or_str",
        StackItem::Bytes => "bytes",
        StackItem::ByteArray => "bytearray",
        StackItem::Str => "str",
        StackItem::NoneValue => "None",
        StackItem::Tuple => "tuple",
        StackItem::List => "list",
        StackItem::Dict => "dict",
        StackItem::Set => "set",
        StackItem::FrozenSet => "frozenset",
        StackItem::Buffer => "buffer",
        StackItem::Any => "any",
        StackItem::Mark => "mark",
        StackItem::StackSlice => "stackslice",
    }
}

/// `repr(opcode.code)[1:-1]`: the opcode byte as a one-character str repr.
pub(super) fn code_repr(byte: u8) -> String {
    let r = repr_str(char::from(byte).encode_utf8(&mut [0; 4]));
    let mut chars = r.chars();
    chars.next();
    chars.next_back();
    chars.as_str().to_string()
}

/// Python's `repr(list_of_stack_objects)`, cut after [`MAX_STACK_REPR_ITEMS`].
fn stack_repr(stack: &[StackItem]) -> String {
    let mut s = String::from("[");
    for (i, item) in stack.iter().take(MAX_STACK_REPR_ITEMS).enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(item_name(*item));
    }
    if stack.len() > MAX_STACK_REPR_ITEMS {
        let _ = write!(s, ", ...({} more)", stack.len() - MAX_STACK_REPR_ITEMS);
    }
    s.push(']');
    s
}

/// pickletools' crude emulation of one pickle: a stack of [`StackItem`]s,
/// the memo, the mark stack and the highest protocol seen, plus the buffers
/// the current opcode's line is built in.
pub(super) struct Emulation {
    stack: Vec<StackItem>,
    memo: HashMap<MemoKey, StackItem>,
    markstack: Vec<u64>,
    /// -1 before the first opcode, as in pickletools.
    maxproto: i32,
    line: String,
    notes: Vec<String>,
}

/// What one opcode does to the emulated stack, and what is said about it.
struct Effect {
    /// Items to pop from the stack (a MARK-delimited slice is popped already).
    numtopop: usize,
    /// What a memo GET pushes instead of the opcode's `stack_after`.
    got: Option<StackItem>,
    /// `(MARK at N)`, `(as N)` or `no MARK exists on stack`, after the argument.
    markmsg: Option<String>,
    /// The `ValueError` pickletools would raise.
    errormsg: Option<String>,
}

impl Emulation {
    /// Before the first opcode: everything empty, protocol -1.
    pub(super) fn new() -> Self {
        Emulation {
            stack: Vec::new(),
            memo: HashMap::new(),
            markstack: Vec::new(),
            maxproto: -1,
            line: String::new(),
            notes: Vec::new(),
        }
    }

    /// Writes the line of the opcode at `pos` with its `!!` messages, and
    /// applies its stack effects.
    // This and the steps it calls are inlined so that the per-opcode path is
    // one function, as fast as it was before being split into steps.
    #[inline]
    pub(super) fn step<W: Write>(
        &mut self,
        pos: u64,
        opcode: Opcode,
        arg: Option<&ArgView>,
        out: &mut W,
    ) -> io::Result<()> {
        let info = opcode.info();
        self.start_line(pos, info);
        self.maxproto = self.maxproto.max(i32::from(info.proto));
        let mut effect = Effect { numtopop: info.stack_before.len(), got: None, markmsg: None, errormsg: None };
        self.pop_mark(opcode, info.stack_before, &mut effect);
        self.check_memo(opcode, arg, &mut effect);
        self.finish_line(info.name, arg, effect.markmsg.as_deref());
        out.write_all(self.line.as_bytes())?;
        self.write_messages(arg, &effect, out)?;
        let after = match &effect.got {
            Some(item) => std::slice::from_ref(item),
            None => info.stack_after,
        };
        self.apply(pos, effect.numtopop, after, out)
    }

    /// Starts the line: `"%5d: %-4s "` (offset, `repr(opcode.code)[1:-1]`),
    /// four blanks per open MARK up to [`MAX_INDENT_LEVELS`] (then
    /// `(…N levels)`), and the opcode name.
    #[inline]
    fn start_line(&mut self, pos: u64, info: &OpcodeInfo) {
        self.line.clear();
        self.notes.clear();
        let depth = self.markstack.len();
        let _ = write!(self.line, "{pos:5}: {:<4} ", code_repr(info.byte));
        if depth > MAX_INDENT_LEVELS {
            for _ in 0..MAX_INDENT_LEVELS {
                self.line.push_str(INDENT_CHUNK);
            }
            let _ = write!(self.line, "(…{depth} levels) ");
        } else {
            for _ in 0..depth {
                self.line.push_str(INDENT_CHUNK);
            }
        }
        self.line.push_str(info.name);
    }

    /// Sees whether a MARK should be popped (an opcode that takes a
    /// stackslice, or POP with a markobject on top), and pops it with
    /// everything above it.
    #[inline]
    fn pop_mark(&mut self, opcode: Opcode, before: &[StackItem], effect: &mut Effect) {
        let mark_at = before.iter().position(|&x| x == StackItem::Mark);
        if mark_at.is_some() || (opcode == Opcode::Pop && self.stack.last() == Some(&StackItem::Mark)) {
            if let Some(markpos) = self.markstack.pop() {
                effect.markmsg = Some(format!("(MARK at {markpos})"));
                self.pop_through_mark();
                effect.numtopop = mark_at.unwrap_or(0);
            } else {
                let msg = "no MARK exists on stack".to_string();
                effect.markmsg = Some(msg.clone());
                effect.errormsg = Some(msg);
                // To go on: take an empty slice above an imaginary mark.
                effect.numtopop = mark_at.unwrap_or(0);
            }
        }
    }

    /// Pops everything at and after the topmost markobject.
    #[inline]
    fn pop_through_mark(&mut self) {
        loop {
            match self.stack.pop() {
                Some(StackItem::Mark) => break,
                Some(_) => {}
                None => {
                    self.notes.push(
                        "pickletools would fail here: IndexError: list index out of range \
                         (an earlier opcode consumed this MARK as an ordinary item)"
                            .into(),
                    );
                    break;
                }
            }
        }
    }

    /// Checks for correct memo usage: a store needs a new key and an item
    /// (not a markobject) on top; a fetch needs a stored key, and pushes
    /// what was stored.
    #[inline]
    fn check_memo(&mut self, opcode: Opcode, arg: Option<&ArgView>, effect: &mut Effect) {
        let arg_repr = arg.map_or("None", |a| a.repr.as_str());
        match opcode {
            Opcode::Put | Opcode::Binput | Opcode::LongBinput | Opcode::Memoize => {
                let key = if opcode == Opcode::Memoize {
                    effect.markmsg = Some(format!("(as {})", self.memo.len()));
                    Some(MemoKey::Small(self.memo.len() as i64))
                } else {
                    arg.and_then(|a| a.key.clone())
                };
                if let Some(key) = key {
                    match self.memo.entry(key) {
                        Entry::Occupied(_) => effect.errormsg = Some(format!("memo key {arg_repr} already defined")),
                        Entry::Vacant(slot) => match self.stack.last() {
                            None => effect.errormsg = Some("stack is empty -- can't store into memo".into()),
                            Some(StackItem::Mark) => {
                                effect.errormsg = Some("can't store markobject in the memo".into())
                            }
                            Some(&top) => {
                                slot.insert(top);
                            }
                        },
                    }
                }
            }
            Opcode::Get | Opcode::Binget | Opcode::LongBinget => {
                match arg.and_then(|a| a.key.as_ref()).and_then(|k| self.memo.get(k)) {
                    Some(&item) => effect.got = Some(item),
                    None => effect.errormsg = Some(format!("memo key {arg_repr} has never been stored into")),
                }
            }
            _ => {}
        }
    }

    /// Ends the line: when there is an argument or a mark message, the name
    /// padded to ten columns, then each after a blank.
    #[inline]
    fn finish_line(&mut self, name: &str, arg: Option<&ArgView>, markmsg: Option<&str>) {
        if arg.is_some() || markmsg.is_some() {
            // make a mild effort to align arguments
            for _ in name.len()..10 {
                self.line.push(' ');
            }
            if let Some(a) = arg {
                self.line.push(' ');
                self.line.push_str(&a.repr);
            }
            if let Some(m) = markmsg {
                self.line.push(' ');
                self.line.push_str(m);
            }
        }
        self.line.push('\n');
    }

    /// The `!!` lines after the opcode line: where pickletools would fail on
    /// the argument, the notes, then pickletools' error.
    #[inline]
    fn write_messages<W: Write>(&self, arg: Option<&ArgView>, effect: &Effect, out: &mut W) -> io::Result<()> {
        if let Some(fails) = arg.and_then(|a| a.pickletools_fails.as_ref()) {
            writeln!(out, "!! pickletools would fail here: {fails}")?;
        }
        for n in &self.notes {
            writeln!(out, "!! {n}")?;
        }
        if let Some(e) = &effect.errormsg {
            writeln!(out, "!! {e}")?;
        }
        Ok(())
    }

    /// Emulates the stack effects: pops `numtopop` items (an underflow
    /// empties the stack, with a message), then pushes `after`, opening a
    /// mark at `pos` when it holds a markobject.
    #[inline]
    fn apply<W: Write>(&mut self, pos: u64, numtopop: usize, after: &[StackItem], out: &mut W) -> io::Result<()> {
        if self.stack.len() < numtopop {
            writeln!(out, "!! tries to pop {numtopop} items from stack with only {} items", self.stack.len())?;
            self.stack.clear();
        } else {
            self.stack.truncate(self.stack.len() - numtopop);
        }
        if after.contains(&StackItem::Mark) {
            self.markstack.push(pos);
        }
        self.stack.extend_from_slice(after);
        Ok(())
    }

    /// After STOP: the highest protocol, and whatever is left on the stack.
    pub(super) fn stop<W: Write>(&self, out: &mut W) -> io::Result<()> {
        writeln!(out, "highest protocol among opcodes = {}", self.maxproto)?;
        if !self.stack.is_empty() {
            writeln!(out, "!! stack not empty after STOP: {}", stack_repr(&self.stack))?;
        }
        Ok(())
    }
}
