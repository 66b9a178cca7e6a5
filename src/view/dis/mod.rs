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
//! * indentation stops growing after [`MAX_INDENT_LEVELS`](crate::limits::MAX_INDENT_LEVELS) open MARKs: the
//!   line then shows `(…N levels)` before the opcode name (pickletools would
//!   print gigabytes of blanks for a 100,000-deep nest);
//! * the stack printed after `stack not empty after STOP:` is cut after
//!   [`MAX_STACK_REPR_ITEMS`](crate::limits::MAX_STACK_REPR_ITEMS) items.
//!
//! Nothing from the file is printed raw: arguments go through Python's
//! `repr()` ([`crate::py::repr`]), error texts through
//! [`crate::py::repr::escape_for_terminal`]. All state lives in `Vec`s and a
//! `HashMap`; only the nested pickles of joblib object arrays recurse (at
//! most [`crate::limits::MAX_NESTED_PICKLES`] deep, as the machine read
//! them), and the work is linear in the input.
//!
//! [`dis_all`] lists a file that is a pickle. A stream inside a container
//! (a member of an archive, a decompressed joblib file) is listed by
//! [`dis_stream`] from the bytes its analysis kept
//! ([`crate::pickle::record`]): joblib array payloads are passed over
//! where the machine passed over them, with a line saying so, so the listing
//! goes on after each array as `joblib.load` reads on.

use std::io::{self, BufWriter, Write};

use crate::error::Error;
use crate::limits::MAX_PICKLES_PER_FILE;
use crate::pickle::opcodes::Opcode;
use crate::pickle::reader::OpReader;
use crate::pickle::record::Recorded;
use crate::pickle::source::{ByteSource, SliceSource};
use crate::py::repr::escape_for_terminal;

mod args;
mod emulate;
mod stream;
#[cfg(test)]
mod tests;

use args::arg_view;
use emulate::Emulation;
pub use stream::dis_stream;
use stream::Payloads;

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

/// `data[from..to]` for absolute u64 offsets, empty when out of range.
fn slice(data: &[u8], from: u64, to: u64) -> &[u8] {
    match (usize::try_from(from), usize::try_from(to)) {
        (Ok(f), Ok(t)) => data.get(f..t).unwrap_or(&[]),
        _ => &[],
    }
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

/// [`dis_one`] writing to `out` unbuffered ([`dis_all`] buffers once for
/// every pickle).
fn dis_one_inner<W: Write>(data: &[u8], start: usize, out: &mut W) -> io::Result<DisEnd> {
    let rest = data.get(start..).unwrap_or(&[]);
    let mut reader = OpReader::new(SliceSource::new(rest, start as u64));
    dis_ops(&mut reader, data, &Payloads::default(), 0, out)
}

/// The bytes opcodes were read from, by absolute offset: pickletools
/// decodes some arguments from their raw bytes.
trait RawBytes {
    /// The bytes from `from` to `to`; empty when they are not all there.
    fn raw(&self, from: u64, to: u64) -> &[u8];
}

impl RawBytes for [u8] {
    fn raw(&self, from: u64, to: u64) -> &[u8] {
        slice(self, from, to)
    }
}

impl RawBytes for Recorded {
    fn raw(&self, from: u64, to: u64) -> &[u8] {
        self.slice(from, to)
    }
}

/// Disassembles one pickle from where `reader` stands through its STOP,
/// with a fresh emulation; `raw` holds the bytes `reader` reads, at the same
/// offsets. At each offset where `payloads` has joblib array data, that is
/// passed over (raw bytes) or listed as the nested pickle it is, `depth`
/// being how many such pickles this one is inside.
fn dis_ops<S: ByteSource, R: RawBytes + ?Sized, W: Write>(
    reader: &mut OpReader<S>,
    raw: &R,
    payloads: &Payloads,
    depth: usize,
    out: &mut W,
) -> io::Result<DisEnd> {
    let mut emu = Emulation::new();
    // A nested pickle starts where its payload does.
    let mut first = depth > 0;
    loop {
        if !payloads.is_empty() && !std::mem::take(&mut first) {
            if let Some(p) = payloads.at(reader.position()) {
                match stream::payload(reader, raw, payloads, p, depth, out)? {
                    Some(end) => return Ok(end),
                    None => continue,
                }
            }
        }
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
        let arg = arg_view(opcode, raw.raw(pos, op_end), &op.arg);
        // `op` borrows the reader; nothing more is needed from it.
        emu.step(pos, opcode, arg.as_ref(), out)?;
        if opcode == Opcode::Stop {
            emu.stop(out)?;
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
