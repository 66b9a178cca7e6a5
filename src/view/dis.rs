//! A symbolic disassembler that reproduces `python -m pickletools FILE`
//! (CPython 3.11.7) line for line.
//!
//! [`dis_one`] follows `pickletools.dis`: one line per opcode,
//! `"%5d: %-4s %s%s"` (offset, `repr(opcode.code)[1:-1]`, four blanks per open
//! MARK, opcode name), then, when there is an argument or a mark message, the
//! name padded to ten columns, `repr(arg)` and `(MARK at N)` / `(as N)`. It
//! emulates pickletools' crude stack, memo and mark stack, using the stack
//! effects of [`crate::pickle::opcodes`] (no arity is hard-coded here), and ends with
//! `highest protocol among opcodes = N`.
//!
//! The opcode reader ([`crate::pickle::reader`]) frames the opcodes and finds errors;
//! arguments are then re-decoded from their raw bytes the way pickletools'
//! argument readers do, which is not always the way the unpickler does:
//!
//! * `GLOBAL`/`INST` print the str `"module name"`, `PERSID` its id, both
//!   escape-decoded and then ASCII-decoded;
//! * `STRING` is escape-decoded then ASCII-decoded to a str;
//!   `BINSTRING`/`SHORT_BINSTRING` are latin-1 strs;
//! * `INT`, `GET` and `PUT` with the text `00`/`01` are `False`/`True`, other
//!   text integers are parsed in base 10 (`LONG` after dropping one `L`);
//! * unicode arguments keep lone surrogates (`'\udc80'`).
//!
//! # Where the output departs from pickletools
//!
//! pickletools raises `ValueError` at the first inconsistency and prints a
//! traceback. Here:
//!
//! * an emulation error (no MARK, memo key undefined or already defined,
//!   markobject stored in the memo, stack underflow, stack not empty after
//!   STOP) prints the opcode line exactly as pickletools does, then
//!   `!! <pickletools' message>`, and the disassembly goes on. To continue, a
//!   mark-consuming opcode with no MARK takes an empty slice, an underflowing
//!   pop empties the stack, and a rejected memo store stores nothing;
//! * an argument pickletools cannot decode or print (a non-ASCII `STRING`, an
//!   int over 4300 digits, a base-10 parse failure) is shown as well as we can,
//!   followed by `!! pickletools would fail here: ...`; an int over 4300
//!   digits is shown as `<int too large to print: more than 4300 digits>`
//!   and is never converted to decimal;
//! * an error of the opcode reader (truncation, unknown opcode, a declared
//!   length past the end, a limit of [`crate::limits`]) prints
//!   `!! error: <error>` and ends the disassembly (pickletools stops there
//!   too, except for the reader's limits, which pickletools does not have,
//!   and for the few texts the reader's `int(x, 0)`-style parse rejects);
//! * arguments longer than [`crate::limits::MAX_INLINE_ARG`] are not held in
//!   memory and print as `<N bytes at offset X>`;
//! * indentation stops growing after [`MAX_INDENT_LEVELS`] open MARKs: the
//!   line then shows `(…N levels)` before the opcode name (pickletools would
//!   print gigabytes of blanks for a 100,000-deep nest);
//! * the stack printed after `stack not empty after STOP:` is cut after
//!   [`MAX_STACK_REPR_ITEMS`] items.
//!
//! Nothing from the file is printed raw: arguments go through Python's
//! `repr()` ([`crate::py::repr`]), error texts through
//! [`crate::py::repr::escape_for_terminal`]. All state lives in `Vec`s and a
//! `HashMap`; nothing recurses, and the work is linear in the input.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use crate::error::Error;
use crate::limits::{MAX_INDENT_LEVELS, MAX_PICKLES_PER_FILE, MAX_STACK_REPR_ITEMS};
use crate::pickle::opcodes::{ArgKind, Opcode, StackItem};
use crate::pickle::reader::{escape_decode, Arg, OpReader, Payload, Text};
use crate::pickle::source::SliceSource;
use crate::py::num::{parse_int, PyInt};
use crate::py::repr::{
    escape_for_terminal, repr_bytearray, repr_bytes, repr_float, repr_int_le_twos_limited, repr_str,
    repr_str_codepoints, INT_MAX_STR_DIGITS,
};

/// Blanks per open MARK (pickletools' default `indentlevel`).
const INDENT_CHUNK: &str = "    ";

/// Where [`dis_one`] stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum DisEnd {
    /// The pickle ended with STOP; `end` is the offset just past it.
    Stop {
        /// Absolute offset after the STOP opcode.
        end: u64,
    },
    /// The opcode reader failed (truncated argument, unknown opcode, ...).
    Error(Error),
    /// The input ended between opcodes before a STOP.
    Eof {
        /// Absolute offset of the end of the input.
        offset: u64,
    },
}

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

/// A memo key: a Python int (bools are equal to 0 and 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum MemoKey {
    Small(i64),
    Big(bool, Vec<u32>),
}

impl MemoKey {
    fn from_pyint(v: &PyInt) -> MemoKey {
        match v {
            PyInt::Small(i) => MemoKey::Small(*i),
            PyInt::Big { negative, limbs } => MemoKey::Big(*negative, limbs.clone()),
        }
    }
}

/// An opcode argument as pickletools would decode and print it.
struct ArgView {
    /// `repr(arg)`, or a placeholder.
    repr: String,
    /// The memo key, for GET/PUT and friends.
    key: Option<MemoKey>,
    /// Why pickletools itself would fail on this argument.
    pickletools_fails: Option<String>,
}

impl ArgView {
    fn plain(repr: String) -> ArgView {
        ArgView { repr, key: None, pickletools_fails: None }
    }
}

/// `data[from..to]` for absolute u64 offsets, empty when out of range.
fn slice(data: &[u8], from: u64, to: u64) -> &[u8] {
    match (usize::try_from(from), usize::try_from(to)) {
        (Ok(f), Ok(t)) => data.get(f..t).unwrap_or(&[]),
        _ => &[],
    }
}

/// Splits off the first `\n`-terminated line (without the newline).
fn split_line(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|&c| c == b'\n') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &[]),
    }
}

/// Bytes as latin-1 code points.
fn latin1(b: &[u8]) -> Vec<u32> {
    b.iter().map(|&c| u32::from(c)).collect()
}

/// Number of bits in a magnitude held as little-endian u32 limbs.
fn limb_bits(limbs: &[u32]) -> u64 {
    match limbs.last() {
        None => 0,
        Some(top) => (limbs.len() as u64 - 1) * 32 + u64::from(32 - top.leading_zeros()),
    }
}

const TOO_LARGE: &str = "<int too large to print: more than 4300 digits>";

fn int_limit_message() -> String {
    format!("ValueError: Exceeds the limit ({INT_MAX_STR_DIGITS} digits) for integer string conversion")
}

/// `repr(int)`, refusing (as CPython 3.11 does) more than 4300 digits without
/// ever running the quadratic conversion on a huge value.
fn repr_pyint(v: &PyInt) -> Option<String> {
    match v {
        PyInt::Small(i) => Some(i.to_string()),
        PyInt::Big { limbs, .. } => {
            // 14,300 bits is about 4,305 decimal digits: anything larger is
            // surely over the limit, anything smaller is cheap to convert.
            if limb_bits(limbs) > 14_300 {
                return None;
            }
            let s = v.to_decimal();
            (s.trim_start_matches('-').len() <= INT_MAX_STR_DIGITS).then_some(s)
        }
    }
}

/// pickletools' `read_decimalnl_short` / `read_decimalnl_long` on the line.
fn decimal_arg(line: &[u8], long: bool) -> ArgView {
    if !long && line == b"00" {
        return ArgView { repr: "False".into(), key: Some(MemoKey::Small(0)), pickletools_fails: None };
    }
    if !long && line == b"01" {
        return ArgView { repr: "True".into(), key: Some(MemoKey::Small(1)), pickletools_fails: None };
    }
    let text = if long { line.strip_suffix(b"L").unwrap_or(line) } else { line };
    match parse_int(text, false) {
        Some(v) => {
            let key = Some(MemoKey::from_pyint(&v));
            match repr_pyint(&v) {
                Some(repr) => ArgView { repr, key, pickletools_fails: None },
                None => ArgView { repr: TOO_LARGE.into(), key, pickletools_fails: Some(int_limit_message()) },
            }
        }
        None => ArgView {
            repr: repr_str_codepoints(&latin1(line)),
            key: None,
            pickletools_fails: Some("ValueError: invalid literal for int() with base 10".into()),
        },
    }
}

/// pickletools' `read_stringnl(decode=True)`: escape-decode, then ASCII.
fn escaped_ascii(body: &[u8]) -> (Vec<u32>, Option<String>) {
    match escape_decode(body) {
        Some(bytes) => {
            let fails = (!bytes.is_ascii())
                .then(|| "UnicodeDecodeError: 'ascii' codec can't decode the escape-decoded argument".to_string());
            (latin1(&bytes), fails)
        }
        None => (latin1(body), Some("ValueError: invalid \\x escape".into())),
    }
}

fn skipped(len: u64, offset: u64) -> ArgView {
    ArgView::plain(format!("<{len} bytes at offset {offset}>"))
}

/// Decodes the argument of the opcode whose bytes are `raw` (opcode byte
/// included) as pickletools' argument reader would, and `repr()`s it.
fn arg_view(opcode: Opcode, raw: &[u8], arg: &Arg<'_>) -> Option<ArgView> {
    let kind = opcode.arg();
    let body = raw.get(1..).unwrap_or(&[]);
    let view = match kind {
        ArgKind::None => return None,
        ArgKind::Uint1 | ArgKind::Uint2 | ArgKind::Int4 | ArgKind::Uint4 | ArgKind::Uint8 => {
            let (repr, key) = match arg {
                Arg::Int(v) => (v.to_string(), Some(MemoKey::Small(*v))),
                Arg::U64(v) => (
                    v.to_string(),
                    Some(match i64::try_from(*v) {
                        Ok(i) => MemoKey::Small(i),
                        Err(_) => MemoKey::Big(false, vec![*v as u32, (*v >> 32) as u32]),
                    }),
                ),
                other => (format!("{other:?}"), None),
            };
            ArgView { repr, key, pickletools_fails: None }
        }
        ArgKind::Long1 | ArgKind::Long4 => {
            let header = if kind == ArgKind::Long1 { 1 } else { 4 };
            let bytes = body.get(header..).unwrap_or(&[]);
            match repr_int_le_twos_limited(bytes, INT_MAX_STR_DIGITS) {
                Some(repr) => ArgView::plain(repr),
                None => ArgView { repr: TOO_LARGE.into(), key: None, pickletools_fails: Some(int_limit_message()) },
            }
        }
        ArgKind::Float8 | ArgKind::Floatnl => match arg {
            Arg::Float(f) => ArgView::plain(repr_float(*f)),
            other => ArgView::plain(format!("{other:?}")),
        },
        ArgKind::DecimalnlShort | ArgKind::DecimalnlLong => {
            decimal_arg(split_line(body).0, kind == ArgKind::DecimalnlLong)
        }
        ArgKind::Stringnl => {
            let line = split_line(body).0;
            let inner = if line.len() >= 2 { &line[1..line.len() - 1] } else { &[][..] };
            let (cps, fails) = escaped_ascii(inner);
            ArgView { repr: repr_str_codepoints(&cps), key: None, pickletools_fails: fails }
        }
        ArgKind::StringnlNoescape => {
            let (cps, fails) = escaped_ascii(split_line(body).0);
            ArgView { repr: repr_str_codepoints(&cps), key: None, pickletools_fails: fails }
        }
        ArgKind::StringnlNoescapePair => {
            let (module, rest) = split_line(body);
            let name = split_line(rest).0;
            let (mut cps, f1) = escaped_ascii(module);
            let (name_cps, f2) = escaped_ascii(name);
            cps.push(u32::from(b' '));
            cps.extend(name_cps);
            ArgView { repr: repr_str_codepoints(&cps), key: None, pickletools_fails: f1.or(f2) }
        }
        ArgKind::String1 | ArgKind::String4 => match arg {
            Arg::Bytes(Payload::Inline(b)) => ArgView::plain(repr_str_codepoints(&latin1(b))),
            Arg::Bytes(Payload::Skipped { offset, len }) => skipped(*len, *offset),
            other => ArgView::plain(format!("{other:?}")),
        },
        ArgKind::Bytes1 | ArgKind::Bytes4 | ArgKind::Bytes8 | ArgKind::Bytearray8 => match arg {
            Arg::Bytes(Payload::Inline(b)) if kind == ArgKind::Bytearray8 => ArgView::plain(repr_bytearray(b)),
            Arg::Bytes(Payload::Inline(b)) => ArgView::plain(repr_bytes(b)),
            Arg::Bytes(Payload::Skipped { offset, len }) => skipped(*len, *offset),
            other => ArgView::plain(format!("{other:?}")),
        },
        ArgKind::Unicodestringnl => match crate::pickle::reader::raw_unicode_escape_codepoints(split_line(body).0) {
            Some(cps) => ArgView::plain(repr_str_codepoints(&cps)),
            None => match arg {
                Arg::Str(Text::Inline(s)) => ArgView::plain(repr_str(s)),
                other => ArgView::plain(format!("{other:?}")),
            },
        },
        ArgKind::Unicodestring1 | ArgKind::Unicodestring4 | ArgKind::Unicodestring8 => match arg {
            Arg::Str(Text::Skipped { offset, len }) => skipped(*len, *offset),
            Arg::Str(Text::Inline(s)) => {
                let header = match kind {
                    ArgKind::Unicodestring1 => 1,
                    ArgKind::Unicodestring4 => 4,
                    _ => 8,
                };
                match body.get(header..).and_then(crate::pickle::reader::utf8_surrogatepass_codepoints) {
                    Some(cps) => ArgView::plain(repr_str_codepoints(&cps)),
                    None => ArgView::plain(repr_str(s)),
                }
            }
            other => ArgView::plain(format!("{other:?}")),
        },
    };
    Some(view)
}

/// `repr(opcode.code)[1:-1]`: the opcode byte as a one-character str repr.
fn code_repr(byte: u8) -> String {
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

/// Disassembles one pickle starting at offset `start` of `data`,
/// pickletools-style, through its STOP.
///
/// Offsets printed are absolute offsets in `data`. The output is exactly what
/// `python -m pickletools` prints for a pickle it accepts; see the module
/// documentation for what is printed where pickletools would raise. Output
/// is buffered internally.
///
/// # Errors
/// Only errors writing to `out`. Problems in the pickle are reported in the
/// output and in the returned [`DisEnd`].
pub fn dis_one<W: Write>(data: &[u8], start: usize, out: &mut W) -> io::Result<DisEnd> {
    let mut w = BufWriter::with_capacity(64 * 1024, out);
    let end = dis_one_inner(data, start, &mut w)?;
    w.flush()?;
    Ok(end)
}

fn dis_one_inner<W: Write>(data: &[u8], start: usize, out: &mut W) -> io::Result<DisEnd> {
    let rest = data.get(start..).unwrap_or(&[]);
    let mut reader = OpReader::new(SliceSource::new(rest, start as u64));
    let mut stack: Vec<StackItem> = Vec::new();
    let mut memo: HashMap<MemoKey, StackItem> = HashMap::new();
    let mut markstack: Vec<u64> = Vec::new();
    let mut maxproto: i32 = -1;
    let mut line = String::new();
    let mut notes: Vec<String> = Vec::new();

    loop {
        let op = match reader.next_op() {
            Ok(Some(op)) => op,
            Ok(None) => {
                let offset = reader.position();
                writeln!(out, "!! error: pickle exhausted before seeing STOP (at offset {offset})")?;
                return Ok(DisEnd::Eof { offset });
            }
            Err(e) => {
                writeln!(out, "!! error: {}", escape_for_terminal(&e.to_string()))?;
                return Ok(DisEnd::Error(e));
            }
        };
        let pos = op.offset;
        let op_end = op.end;
        let opcode = op.opcode;
        let info = opcode.info();
        let arg = arg_view(opcode, slice(data, pos, op_end), &op.arg);
        // `op` borrows the reader; nothing more is needed from it.

        line.clear();
        notes.clear();
        let depth = markstack.len();
        let _ = write!(line, "{pos:5}: {:<4} ", code_repr(info.byte));
        if depth > MAX_INDENT_LEVELS {
            for _ in 0..MAX_INDENT_LEVELS {
                line.push_str(INDENT_CHUNK);
            }
            let _ = write!(line, "(…{depth} levels) ");
        } else {
            for _ in 0..depth {
                line.push_str(INDENT_CHUNK);
            }
        }
        line.push_str(info.name);

        maxproto = maxproto.max(i32::from(info.proto));
        let before = info.stack_before;
        let mut after: &[StackItem] = info.stack_after;
        let got_item: [StackItem; 1];
        let mut numtopop = before.len();
        let mark_at = before.iter().position(|&x| x == StackItem::Mark);

        // See whether a MARK should be popped.
        let mut markmsg: Option<String> = None;
        let mut errormsg: Option<String> = None;
        if mark_at.is_some() || (opcode == Opcode::Pop && stack.last() == Some(&StackItem::Mark)) {
            if let Some(markpos) = markstack.pop() {
                markmsg = Some(format!("(MARK at {markpos})"));
                // Pop everything at and after the topmost markobject.
                loop {
                    match stack.pop() {
                        Some(StackItem::Mark) => break,
                        Some(_) => {}
                        None => {
                            notes.push(
                                "pickletools would fail here: IndexError: list index out of range \
                                 (an earlier opcode consumed this MARK as an ordinary item)"
                                    .into(),
                            );
                            break;
                        }
                    }
                }
                numtopop = mark_at.unwrap_or(0);
            } else {
                let msg = "no MARK exists on stack".to_string();
                markmsg = Some(msg.clone());
                errormsg = Some(msg);
                // To go on: take an empty slice above an imaginary mark.
                numtopop = mark_at.unwrap_or(0);
            }
        }

        // Check for correct memo usage.
        let arg_repr = arg.as_ref().map_or("None", |a| a.repr.as_str());
        match opcode {
            Opcode::Put | Opcode::Binput | Opcode::LongBinput | Opcode::Memoize => {
                let key = if opcode == Opcode::Memoize {
                    markmsg = Some(format!("(as {})", memo.len()));
                    Some(MemoKey::Small(memo.len() as i64))
                } else {
                    arg.as_ref().and_then(|a| a.key.clone())
                };
                if let Some(key) = key {
                    match memo.entry(key) {
                        Entry::Occupied(_) => errormsg = Some(format!("memo key {arg_repr} already defined")),
                        Entry::Vacant(slot) => match stack.last() {
                            None => errormsg = Some("stack is empty -- can't store into memo".into()),
                            Some(StackItem::Mark) => errormsg = Some("can't store markobject in the memo".into()),
                            Some(&top) => {
                                slot.insert(top);
                            }
                        },
                    }
                }
            }
            Opcode::Get | Opcode::Binget | Opcode::LongBinget => {
                match arg.as_ref().and_then(|a| a.key.as_ref()).and_then(|k| memo.get(k)) {
                    Some(&item) => {
                        got_item = [item];
                        after = &got_item;
                    }
                    None => errormsg = Some(format!("memo key {arg_repr} has never been stored into")),
                }
            }
            _ => {}
        }

        if arg.is_some() || markmsg.is_some() {
            // make a mild effort to align arguments
            for _ in info.name.len()..10 {
                line.push(' ');
            }
            if let Some(a) = &arg {
                line.push(' ');
                line.push_str(&a.repr);
            }
            if let Some(m) = &markmsg {
                line.push(' ');
                line.push_str(m);
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;

        if let Some(fails) = arg.as_ref().and_then(|a| a.pickletools_fails.as_ref()) {
            writeln!(out, "!! pickletools would fail here: {fails}")?;
        }
        for n in &notes {
            writeln!(out, "!! {n}")?;
        }
        if let Some(e) = &errormsg {
            writeln!(out, "!! {e}")?;
        }

        // Emulate the stack effects.
        if stack.len() < numtopop {
            writeln!(out, "!! tries to pop {numtopop} items from stack with only {} items", stack.len())?;
            stack.clear();
        } else {
            stack.truncate(stack.len() - numtopop);
        }
        if after.contains(&StackItem::Mark) {
            markstack.push(pos);
        }
        stack.extend_from_slice(after);

        if opcode == Opcode::Stop {
            writeln!(out, "highest protocol among opcodes = {maxproto}")?;
            if !stack.is_empty() {
                writeln!(out, "!! stack not empty after STOP: {}", stack_repr(&stack))?;
            }
            return Ok(DisEnd::Stop { end: op_end });
        }
    }
}

/// True when a pickle read from `start` reaches a STOP without a reader error.
fn parses_to_stop(data: &[u8], start: usize) -> bool {
    let rest = data.get(start..).unwrap_or(&[]);
    let mut reader = OpReader::new(SliceSource::new(rest, start as u64));
    loop {
        match reader.next_op() {
            Ok(Some(op)) if op.opcode == Opcode::Stop => return true,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return false,
        }
    }
}

/// Disassembles every pickle in `data`.
///
/// The first pickle is disassembled exactly as pickletools does (see
/// [`dis_one`]). Each further pickle, that is each run of bytes after a STOP
/// that reads without error up to its own STOP, follows a line
/// `--- pickle N at offset X ---` (the first pickle being number 1), with a
/// fresh memo as `pickle.load` would use. Bytes after the last STOP that are
/// not such a pickle are summarised as
/// `--- trailing data: N bytes at offset X ---`. At most
/// [`MAX_PICKLES_PER_FILE`] pickles are shown. After a reader error nothing
/// more is printed.
///
/// # Errors
/// Only errors writing to `out`.
pub fn dis_all<W: Write>(data: &[u8], out: &mut W) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(64 * 1024, out);
    let mut start = 0usize;
    let mut count = 0usize;
    loop {
        if count > 0 {
            if start >= data.len() {
                break;
            }
            if count >= MAX_PICKLES_PER_FILE {
                writeln!(w, "!! stopping after {MAX_PICKLES_PER_FILE} pickles")?;
                writeln!(w, "--- trailing data: {} bytes at offset {start} ---", data.len() - start)?;
                break;
            }
            if !parses_to_stop(data, start) {
                writeln!(w, "--- trailing data: {} bytes at offset {start} ---", data.len() - start)?;
                break;
            }
            writeln!(w, "--- pickle {} at offset {start} ---", count + 1)?;
        }
        count += 1;
        match dis_one_inner(data, start, &mut w)? {
            DisEnd::Stop { end } => match usize::try_from(end) {
                Ok(e) if e > start => start = e,
                _ => break,
            },
            DisEnd::Error(_) | DisEnd::Eof { .. } => break,
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dis(data: &[u8]) -> String {
        let mut v = Vec::new();
        dis_one(data, 0, &mut v).expect("writing to a Vec");
        String::from_utf8(v).expect("utf-8 output")
    }

    fn dis_all_str(data: &[u8]) -> String {
        let mut v = Vec::new();
        dis_all(data, &mut v).expect("writing to a Vec");
        String::from_utf8(v).expect("utf-8 output")
    }

    #[test]
    fn dis_protocol_0_list() {
        // pickle.dumps([1, 2, (3, 4), {b'abc': "def"}], 0), from pickletools' doctest.
        let p = b"(lp0\nI1\naI2\na(I3\nI4\ntp1\na(dp2\nc_codecs\nencode\np3\n(Vabc\np4\nVlatin1\np5\ntp6\nRp7\nVdef\np8\nsa.";
        let got = dis(p);
        let want = "    0: (    MARK
    1: l        LIST       (MARK at 0)
    2: p    PUT        0
    5: I    INT        1
    8: a    APPEND
    9: I    INT        2
   12: a    APPEND
   13: (    MARK
   14: I        INT        3
   17: I        INT        4
   20: t        TUPLE      (MARK at 13)
   21: p    PUT        1
   24: a    APPEND
   25: (    MARK
   26: d        DICT       (MARK at 25)
   27: p    PUT        2
   30: c    GLOBAL     '_codecs encode'
   46: p    PUT        3
   49: (    MARK
   50: V        UNICODE    'abc'
   55: p        PUT        4
   58: V        UNICODE    'latin1'
   66: p        PUT        5
   69: t        TUPLE      (MARK at 49)
   70: p    PUT        6
   73: R    REDUCE
   74: p    PUT        7
   77: V    UNICODE    'def'
   82: p    PUT        8
   85: s    SETITEM
   86: a    APPEND
   87: .    STOP
highest protocol among opcodes = 0
";
        assert_eq!(got, want);
    }

    #[test]
    fn dis_text_args_as_pickletools_reads_them() {
        let got = dis(b"(I00\nI01\ng00\nS'a\\x41'\nL12L\nT\x01\x00\x00\x00\xe9F1.5\nV\\ud800\nl.");
        let want = "    0: (    MARK
    1: I        INT        False
    5: I        INT        True
    9: g        GET        False
!! memo key False has never been stored into
   13: S        STRING     'aA'
   22: L        LONG       12
   27: T        BINSTRING  '\u{e9}'
   33: F        FLOAT      1.5
   38: V        UNICODE    '\\ud800'
   46: l        LIST       (MARK at 0)
   47: .    STOP
highest protocol among opcodes = 1
";
        assert_eq!(got, want);
    }

    #[test]
    fn dis_errors_are_reported_and_skipped() {
        let got = dis(b"N\x94\x94t00.");
        let want = "    0: N    NONE
    1: \\x94 MEMOIZE    (as 0)
    2: \\x94 MEMOIZE    (as 1)
    3: t    TUPLE      no MARK exists on stack
!! no MARK exists on stack
    4: 0    POP
    5: 0    POP
    6: .    STOP
!! tries to pop 1 items from stack with only 0 items
highest protocol among opcodes = 4
";
        assert_eq!(got, want);
        let got = dis(b"NN.");
        assert!(got.ends_with("= 0\n!! stack not empty after STOP: [None]\n"), "{got}");
        let got = dis(b"N\x94q\x00.");
        assert!(got.contains("BINPUT     0\n!! memo key 0 already defined\n"), "{got}");
    }

    #[test]
    fn dis_reader_errors_stop() {
        let got = dis(b"N\xff.");
        assert!(got.ends_with("!! error: unknown opcode byte 0xff (at offset 1)\n"), "{got}");
        let mut v = Vec::new();
        assert!(matches!(dis_one(b"N", 0, &mut v), Ok(DisEnd::Eof { offset: 1 })));
        assert!(matches!(dis_one(b"NX\x05\x00", 0, &mut v), Ok(DisEnd::Error(_))));
        assert!(matches!(dis_one(b"N.N.", 2, &mut v), Ok(DisEnd::Stop { end: 4 })));
    }

    #[test]
    fn dis_huge_ints_are_not_printed() {
        let mut p = vec![0x8b];
        p.extend_from_slice(&3000u32.to_le_bytes());
        p.extend(std::iter::repeat_n(0x11, 3000));
        p.push(b'.');
        let got = dis(&p);
        assert!(got.contains(TOO_LARGE), "{got}");
        assert!(got.contains("!! pickletools would fail here: ValueError: Exceeds the limit"), "{got}");
    }

    #[test]
    fn dis_indent_is_capped() {
        let mut p = vec![b'('; 100];
        p.push(b'N');
        let got = dis(&p);
        let last = got.lines().nth(100).unwrap_or_default();
        assert_eq!(last, format!("  100: N    {}(…100 levels) NONE", INDENT_CHUNK.repeat(MAX_INDENT_LEVELS)));
    }

    #[test]
    fn dis_all_separates_pickles() {
        let got = dis_all_str(b"N.\x80\x02K\x01.\x00\x00");
        let want = "    0: N    NONE
    1: .    STOP
highest protocol among opcodes = 0
--- pickle 2 at offset 2 ---
    2: \\x80 PROTO      2
    4: K    BININT1    1
    6: .    STOP
highest protocol among opcodes = 2
--- trailing data: 2 bytes at offset 7 ---
";
        assert_eq!(got, want);
    }

    #[test]
    fn dis_code_repr() {
        assert_eq!(code_repr(b'('), "(");
        assert_eq!(code_repr(0x80), "\\x80");
    }

    #[test]
    fn dis_surrogatepass() {
        assert_eq!(
            crate::pickle::reader::utf8_surrogatepass_codepoints(b"a\xed\xb2\x80b"),
            Some(vec![0x61, 0xdc80, 0x62])
        );
        assert_eq!(crate::pickle::reader::utf8_surrogatepass_codepoints(b"a\xffb"), None);
        assert_eq!(crate::pickle::reader::raw_unicode_escape_codepoints(br"\\\ud800"), Some(vec![0x5c, 0x5c, 0xd800]));
    }
}
