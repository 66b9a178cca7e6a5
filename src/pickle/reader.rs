//! The opcode reader: bytes in, [`Op`]s with absolute offsets out.
//!
//! This is the only code that decodes opcode arguments. It follows CPython's
//! unpickler (`Modules/_pickle.c`, `Lib/pickle.py`) for what an argument
//! *means*, and pickletools' argument descriptors for its *shape*. Every
//! declared length is checked against the bytes that remain and against
//! [`crate::limits`] before anything is read; arguments longer than
//! [`MAX_INLINE_ARG`] are skipped and reported by offset and length only.
//!
//! The reader also tracks `FRAME`s (protocol 4+) and marks any opcode whose
//! bytes run past the end of the current frame: CPython's C unpickler ignores
//! frame boundaries while `pickle.py` rejects such a stream, so a crossing is a
//! parser differential a scanner must see.

use std::borrow::Cow;

use crate::error::{Error, ErrorKind, Result};
use crate::limits::{MAX_INLINE_ARG, MAX_LINE_ARG, MAX_LONG_BYTES, MAX_TEXT_LINE_ARG};
use crate::pickle::opcodes::{ArgKind, Opcode, BY_BYTE_CONST};
use crate::pickle::source::{ByteSource, Line};
use crate::py::codec::{decode_raw_unicode_escape, decode_utf8_surrogatepass, escape_decode};
use crate::py::num::{int_arg_c, int_arg_py, parse_float, parse_int, IntArg, PyInt};

/// Bytes of an argument: in memory, or skipped because they were too long.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload<'s> {
    /// The bytes themselves.
    Inline(&'s [u8]),
    /// Not held: `len` bytes at absolute `offset`.
    Skipped {
        /// Absolute offset of the first byte.
        offset: u64,
        /// Length in bytes.
        len: u64,
    },
}

impl Payload<'_> {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Payload::Inline(b) => b.len() as u64,
            Payload::Skipped { len, .. } => *len,
        }
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Text of an argument: decoded, or skipped because it was too long.
#[derive(Debug, Clone, PartialEq)]
pub enum Text<'s> {
    /// The decoded text. Lone surrogates (allowed by CPython's
    /// `surrogatepass`) are replaced by U+FFFD.
    Inline(Cow<'s, str>),
    /// Not decoded: `len` bytes at absolute `offset`.
    Skipped {
        /// Absolute offset of the first byte.
        offset: u64,
        /// Length in bytes.
        len: u64,
    },
}

/// A decoded opcode argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'s> {
    /// The opcode has no argument.
    None,
    /// A fixed-width integer (uint1, uint2, int4, uint4).
    Int(i64),
    /// An eight-byte unsigned integer (FRAME length).
    U64(u64),
    /// `INT` with `00`/`01`: False/True.
    Bool(bool),
    /// An integer of any size (INT, LONG, LONG1, LONG4, GET/PUT text).
    BigInt(PyInt),
    /// A float (FLOAT, BINFLOAT).
    Float(f64),
    /// Raw bytes (bytes1/4/8, bytearray8) or a protocol-0/1 byte string
    /// (string1/string4, which py3 decodes per the unpickler's encoding).
    Bytes(Payload<'s>),
    /// `STRING`'s quoted literal after Python's escape decoding.
    Escaped(Vec<u8>),
    /// UTF-8 or raw-unicode-escape text.
    Str(Text<'s>),
    /// GLOBAL / INST: module and qualified name, each a UTF-8 line.
    Global {
        /// The module line.
        module: String,
        /// The name line.
        name: String,
    },
}

/// How an opcode relates to the `FRAME` it sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameNote {
    /// Nothing to note.
    Ok,
    /// The opcode or its argument runs past the end of the current frame.
    CrossesEnd {
        /// Absolute offset where the frame ended.
        frame_end: u64,
    },
    /// A FRAME opcode inside a frame that still had bytes left.
    NewBeforeEnd {
        /// Absolute offset where the previous frame would have ended.
        frame_end: u64,
    },
    /// A FRAME whose length runs past the end of the input.
    PastInput,
}

/// One opcode with its argument and position.
#[derive(Debug, Clone, PartialEq)]
pub struct Op<'s> {
    /// Absolute offset of the opcode byte.
    pub offset: u64,
    /// Absolute offset just past the argument.
    pub end: u64,
    /// The opcode.
    pub opcode: Opcode,
    /// Its decoded argument.
    pub arg: Arg<'s>,
    /// Its relation to the current frame.
    pub frame: FrameNote,
    /// CPython's C unpickler and `pickle.py` read this argument differently
    /// (the value decoded is the C unpickler's, what `pickle.loads` uses).
    pub differential: bool,
}

/// The argument of an opcode whose argument has a fixed width (or none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FixedArg {
    /// No argument.
    None,
    /// A fixed-width integer (uint1, uint2, int4, uint4).
    Int(i64),
    /// An eight-byte float (BINFLOAT).
    Float(f64),
}

impl FixedArg {
    /// The same argument as [`OpReader::next_op`] decodes it.
    pub fn arg(self) -> Arg<'static> {
        match self {
            FixedArg::None => Arg::None,
            FixedArg::Int(i) => Arg::Int(i),
            FixedArg::Float(x) => Arg::Float(x),
        }
    }
}

impl Arg<'_> {
    /// This argument as a [`FixedArg`], when it is one of those kinds.
    pub fn fixed(&self) -> Option<FixedArg> {
        match self {
            Arg::None => Some(FixedArg::None),
            Arg::Int(i) => Some(FixedArg::Int(*i)),
            Arg::Float(x) => Some(FixedArg::Float(*x)),
            _ => None,
        }
    }
}

/// An opcode read by [`decode_fixed_as`]: one with a fixed-width
/// argument (or none) that lies inside its frame, so it has nothing to note
/// beyond its value. Small and `Copy`, unlike [`Op`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedOp {
    /// Absolute offset of the opcode byte.
    pub offset: u64,
    /// The opcode.
    pub opcode: Opcode,
    /// The protocol that introduced it ([`Opcode::proto`]).
    pub proto: u8,
    /// Its argument.
    pub arg: FixedArg,
}

impl FixedOp {
    /// The same opcode as [`OpReader::next_op`] returns it; `end` is the
    /// offset just past the argument.
    pub fn op(&self, end: u64) -> Op<'static> {
        Op {
            offset: self.offset,
            end,
            opcode: self.opcode,
            arg: self.arg.arg(),
            frame: FrameNote::Ok,
            differential: false,
        }
    }
}

/// A row of [`FIXED`]: an opcode whose argument has a fixed width.
#[derive(Clone, Copy)]
struct Fixed {
    opcode: Opcode,
    kind: ArgKind,
    /// Bytes of argument after the opcode byte.
    width: u8,
    proto: u8,
}

/// The argument width of the kinds [`decode_fixed_as`] decodes. `FRAME`'s
/// eight-byte length is left out: it opens a frame, which only
/// [`OpReader::next_op`] tracks.
const fn fixed_width(kind: ArgKind) -> Option<u8> {
    match kind {
        ArgKind::None => Some(0),
        ArgKind::Uint1 => Some(1),
        ArgKind::Uint2 => Some(2),
        ArgKind::Int4 | ArgKind::Uint4 => Some(4),
        ArgKind::Float8 => Some(8),
        _ => None,
    }
}

/// For each byte, the fixed-width opcode it starts, if it is one, with its
/// argument's width and kind and its protocol: read at compile time by
/// [`decode_fixed_as`], so the fast path never walks [`Opcode::from_byte`],
/// [`Opcode::arg`] or [`Opcode::proto`].
const FIXED: [Option<Fixed>; 256] = {
    let mut t: [Option<Fixed>; 256] = [None; 256];
    let mut i = 0;
    while i < 256 {
        if let Some((opcode, kind, proto)) = BY_BYTE_CONST[i] {
            if let Some(width) = fixed_width(kind) {
                t[i] = Some(Fixed { opcode, kind, width, proto });
            }
        }
        i += 1;
    }
    t
};

/// Decodes the fixed-width opcode (one whose argument has a fixed width, or
/// none) at the start of `w`, whose first byte is `B` and sits at absolute
/// `offset`; returns it with its length in bytes. `None` when `B` is not a
/// fixed-width opcode (decided at compile time) or `w` ends inside the
/// argument. See [`OpReader::fixed_window`].
///
/// `B` is a constant so that the table row is one too: the fast path's one
/// jump on the opcode byte (`vm::fast_step`) leaves no second dispatch on
/// the argument kind.
#[inline(always)]
pub fn decode_fixed_as<const B: u8>(w: &[u8], offset: u64) -> Option<(FixedOp, usize)> {
    decode_row(const { FIXED[B as usize] }?, w, offset)
}

/// The text opcode `B` (`SHORT_BINUNICODE` or `BINUNICODE`, else `None`,
/// decided at compile time) at the start of `w`, for the fast path: its
/// opcode, protocol, text and length in bytes, when the whole argument is in
/// `w`, is at most [`MAX_INLINE_ARG`] bytes and is strict UTF-8. Anything
/// else (a cut argument, lone surrogates, invalid UTF-8, a length past the
/// input) is left to [`OpReader::next_op`], which reads it as always.
#[inline(always)]
pub fn decode_text_as<const B: u8>(w: &[u8]) -> Option<(Opcode, u8, &str, usize)> {
    let (opcode, kind, proto) = const { BY_BYTE_CONST[B as usize] }?;
    let (len, head) = match kind {
        ArgKind::Unicodestring1 => (*w.get(1)? as usize, 2),
        ArgKind::Unicodestring4 => (u32::from_le_bytes(w.get(1..5)?.try_into().ok()?) as usize, 5),
        _ => return None,
    };
    if len > MAX_INLINE_ARG {
        return None;
    }
    let n = head + len;
    let text = std::str::from_utf8(w.get(head..n)?).ok()?;
    Some((opcode, proto, text, n))
}

#[inline(always)]
fn decode_row(row: Fixed, w: &[u8], offset: u64) -> Option<(FixedOp, usize)> {
    let n = 1 + row.width as usize;
    let arg = decode_fixed(row.kind, w.get(1..n)?)?;
    Some((FixedOp { offset, opcode: row.opcode, proto: row.proto, arg }, n))
}

/// The one decoder of fixed-width arguments, for the fast path
/// ([`decode_fixed_as`]) and [`OpReader::next_op`] alike: `b` holds exactly
/// [`fixed_width`] bytes of `kind`. `None` for a kind that is not fixed-width
/// or bytes of the wrong length.
#[inline(always)]
fn decode_fixed(kind: ArgKind, b: &[u8]) -> Option<FixedArg> {
    Some(match kind {
        ArgKind::None => FixedArg::None,
        ArgKind::Uint1 => FixedArg::Int(*b.first()? as i64),
        ArgKind::Uint2 => FixedArg::Int(u16::from_le_bytes(b.try_into().ok()?) as i64),
        ArgKind::Int4 => FixedArg::Int(i32::from_le_bytes(b.try_into().ok()?) as i64),
        ArgKind::Uint4 => FixedArg::Int(u32::from_le_bytes(b.try_into().ok()?) as i64),
        ArgKind::Float8 => FixedArg::Float(f64::from_be_bytes(b.try_into().ok()?)),
        _ => return None,
    })
}

/// Reads opcodes one at a time from a [`ByteSource`].
pub struct OpReader<S> {
    src: S,
    frame_end: Option<u64>,
}

/// The note for an opcode that ends at `end` inside the frame ending at `open`.
fn crossing(open: Option<u64>, end: u64) -> FrameNote {
    match open {
        Some(frame_end) if end > frame_end => FrameNote::CrossesEnd { frame_end },
        _ => FrameNote::Ok,
    }
}

fn eof(what: &'static str, offset: u64) -> Error {
    Error::new(ErrorKind::UnexpectedEof { what }, offset)
}

fn io_err(e: std::io::Error, offset: u64) -> Error {
    Error::new(ErrorKind::Io(e.to_string()), offset)
}

fn bad(what: &'static str, detail: impl Into<String>, offset: u64) -> Error {
    Error::new(ErrorKind::BadArgument { what, detail: detail.into() }, offset)
}

impl<S: ByteSource> OpReader<S> {
    /// A reader over `src`.
    pub fn new(src: S) -> Self {
        OpReader { src, frame_end: None }
    }

    /// Absolute offset of the next opcode.
    pub fn position(&self) -> u64 {
        self.src.position()
    }

    /// The underlying source (for container payloads that follow an opcode).
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.src
    }

    /// True when the input is exhausted.
    pub fn at_eof(&mut self) -> Result<bool> {
        let pos = self.src.position();
        self.src.at_eof().map_err(|e| io_err(e, pos))
    }

    /// Where the current `FRAME` ends, if one was opened.
    pub fn frame_end(&self) -> Option<u64> {
        self.frame_end
    }

    /// True when the next byte lies inside the current `FRAME`.
    pub fn frame_open(&self) -> bool {
        self.frame_end.is_some_and(|fe| self.src.position() < fe)
    }

    /// Forgets the current frame (a new pickle starts).
    pub fn reset_frame(&mut self) {
        self.frame_end = None;
    }

    fn fixed<const N: usize>(&mut self, what: &'static str, at: u64) -> Result<[u8; N]> {
        match self.src.take(N).map_err(|e| io_err(e, at))? {
            Some(b) => {
                let mut out = [0u8; N];
                out.copy_from_slice(b);
                Ok(out)
            }
            None => Err(eof(what, at)),
        }
    }

    fn line(&mut self, what: &'static str, at: u64) -> Result<&[u8]> {
        self.line_upto(what, at, MAX_LINE_ARG, "MAX_LINE_ARG")
    }

    /// A newline-terminated text argument (`STRING`, `UNICODE`, `PERSID`):
    /// pickle reads these at any length, so the bound is the one for
    /// inline arguments, not the one for names and numbers.
    fn text_line(&mut self, what: &'static str, at: u64) -> Result<&[u8]> {
        self.line_upto(what, at, MAX_TEXT_LINE_ARG, "MAX_TEXT_LINE_ARG")
    }

    fn line_upto(&mut self, what: &'static str, at: u64, max: usize, name: &'static str) -> Result<&[u8]> {
        let pos = self.src.position();
        match self.src.take_line(max).map_err(|e| io_err(e, pos))? {
            Line::Found(l) => Ok(l),
            Line::TooLong => Err(Error::new(ErrorKind::LineTooLong { limit: max, name }, pos)),
            Line::Eof => Err(eof(what, at)),
        }
    }

    /// Checks a declared length against what remains; returns it as u64.
    fn check_len(&self, what: &'static str, declared: i128, at: u64) -> Result<u64> {
        let remaining = self.src.remaining();
        let ok = declared >= 0 && remaining.is_none_or(|r| declared as u128 <= r as u128);
        if !ok {
            return Err(Error::new(ErrorKind::BadLength { what, declared, remaining }, at));
        }
        Ok(declared as u64)
    }

    /// Reads `len` bytes inline, or skips them when longer than `MAX_INLINE_ARG`.
    fn payload(&mut self, what: &'static str, len: u64, at: u64) -> Result<Payload<'_>> {
        let start = self.src.position();
        if len > MAX_INLINE_ARG as u64 {
            let got = self.src.skip(len).map_err(|e| io_err(e, start))?;
            if got < len {
                return Err(eof(what, at));
            }
            return Ok(Payload::Skipped { offset: start, len });
        }
        match self.src.take(len as usize).map_err(|e| io_err(e, start))? {
            Some(b) => Ok(Payload::Inline(b)),
            None => Err(eof(what, at)),
        }
    }

    fn utf8(&mut self, what: &'static str, len: u64, at: u64) -> Result<Arg<'_>> {
        let start = self.src.position();
        match self.payload(what, len, at)? {
            Payload::Inline(b) => match decode_utf8_surrogatepass(b) {
                Some(s) => Ok(Arg::Str(Text::Inline(s))),
                None => Err(bad(what, "invalid UTF-8", start)),
            },
            Payload::Skipped { offset, len } => Ok(Arg::Str(Text::Skipped { offset, len })),
        }
    }

    /// Where the fast path for fixed-width opcodes may decode
    /// ([`decode_fixed_as`]): the absolute offset of the next byte, and the
    /// bytes after it that are already in the source's window
    /// ([`ByteSource::buffered`]), cut at the end of the current frame so
    /// that an opcode crossing it is left to [`OpReader::next_op`], which
    /// notes the crossing. Hand back what was decoded with
    /// [`OpReader::advance`]; whatever does not decode (another kind of
    /// opcode, a window too short) is left to `next_op`, which refills.
    ///
    /// Opcodes decoded this way are exactly what `next_op` would return:
    /// the same opcode, argument and end, with [`FrameNote::Ok`] and no
    /// differential. Nothing is allocated, and nothing needs dropping.
    #[inline]
    pub fn fixed_window(&mut self) -> (u64, &[u8]) {
        let pos = self.src.position();
        let w = self.src.buffered();
        match self.frame_end {
            Some(fe) if pos < fe => (pos, &w[..(w.len() as u64).min(fe - pos) as usize]),
            Some(_) if !w.is_empty() => {
                // An opcode at or past the frame's end: the frame is over
                // (as next_op would find).
                self.frame_end = None;
                (pos, w)
            }
            _ => (pos, w),
        }
    }

    /// Consumes `n` bytes of [`OpReader::fixed_window`].
    #[inline]
    pub fn advance(&mut self, n: usize) {
        self.src.advance(n);
    }

    /// Reads the next opcode. `Ok(None)` means the input ended cleanly
    /// between opcodes.
    ///
    /// # Errors
    /// An unknown opcode byte, an argument cut short by the end of the input,
    /// a declared length that is negative or exceeds what remains, an
    /// argument that does not decode, or an I/O error — each at its offset.
    pub fn next_op(&mut self) -> Result<Option<Op<'_>>> {
        let offset = self.src.position();
        let byte = match self.src.take(1).map_err(|e| io_err(e, offset))? {
            None => return Ok(None),
            Some(b) => b[0],
        };
        let opcode = Opcode::from_byte(byte).ok_or_else(|| Error::new(ErrorKind::UnknownOpcode(byte), offset))?;
        // The frame this opcode starts in, if any (a frame ends at its last byte).
        let open = match self.frame_end {
            Some(fe) if offset < fe => Some(fe),
            _ => {
                self.frame_end = None;
                None
            }
        };
        let (arg, end, frame, differential) = self.read_arg(opcode, offset, open)?;
        Ok(Some(Op { offset, end, opcode, arg, frame, differential }))
    }

    /// Reads the argument of `opcode`, whose byte was at `at` inside the
    /// frame ending at `open`: the argument, the offset just past it, its
    /// relation to the frame and whether the two unpicklers differ on it.
    fn read_arg(&mut self, opcode: Opcode, at: u64, open: Option<u64>) -> Result<(Arg<'_>, u64, FrameNote, bool)> {
        let mut differential = false;
        // Work out owned/scalar arguments first; borrowed ones return early.
        let what = opcode.name();
        let arg: Arg<'static> = match opcode.arg() {
            kind @ (ArgKind::None
            | ArgKind::Uint1
            | ArgKind::Uint2
            | ArgKind::Int4
            | ArgKind::Uint4
            | ArgKind::Float8) => self.read_fixed_arg(kind, what, at)?,
            ArgKind::Uint8 => {
                let v = u64::from_le_bytes(self.fixed::<8>(what, at)?);
                if opcode == Opcode::Frame {
                    return Ok(self.open_frame(v, open));
                }
                Arg::U64(v)
            }
            kind @ (ArgKind::Long1 | ArgKind::Long4) => self.read_long_bytes(kind, what, at)?,
            ArgKind::DecimalnlShort | ArgKind::DecimalnlLong => {
                let (arg, differs) = self.read_decimal_line(opcode, at)?;
                differential = differs;
                arg
            }
            ArgKind::Floatnl => self.read_float_line(what, at)?,
            ArgKind::Stringnl => self.read_quoted_string(what, at)?,
            ArgKind::StringnlNoescape => self.read_persistent_id(what, at)?,
            ArgKind::StringnlNoescapePair => self.read_global_pair(what, at)?,
            ArgKind::Unicodestringnl => self.read_unicode_line(what, at)?,
            // Borrowing arguments: handled below.
            ArgKind::String1
            | ArgKind::String4
            | ArgKind::Bytes1
            | ArgKind::Bytes4
            | ArgKind::Bytes8
            | ArgKind::Bytearray8
            | ArgKind::Unicodestring1
            | ArgKind::Unicodestring4
            | ArgKind::Unicodestring8 => return self.read_sized(opcode, at, open),
        };
        let end = self.src.position();
        Ok((arg, end, crossing(open, end), differential))
    }

    /// A fixed-width argument (or none): uint1, uint2, int4, uint4, float8.
    fn read_fixed_arg(&mut self, kind: ArgKind, what: &'static str, at: u64) -> Result<Arg<'static>> {
        let width = fixed_width(kind).unwrap_or(0) as usize;
        let bytes = match self.src.take(width).map_err(|e| io_err(e, at))? {
            Some(b) => b,
            None => return Err(eof(what, at)),
        };
        // Always Some: `bytes` has the width of `kind`.
        Ok(decode_fixed(kind, bytes).map_or(Arg::None, FixedArg::arg))
    }

    /// Opens the frame of a `FRAME` whose eight-byte length `v` was just
    /// read, noting a frame still open (`open`) or a length past the input.
    fn open_frame(&mut self, v: u64, open: Option<u64>) -> (Arg<'static>, u64, FrameNote, bool) {
        let end = self.src.position();
        self.frame_end = Some(end.saturating_add(v));
        let note = match open {
            Some(frame_end) => FrameNote::NewBeforeEnd { frame_end },
            None if self.src.remaining().is_some_and(|r| v > r) => FrameNote::PastInput,
            None => FrameNote::Ok,
        };
        (Arg::U64(v), end, note, false)
    }

    /// `LONG1`/`LONG4`: a length, then that many bytes of a little-endian
    /// two's-complement integer, at most [`MAX_LONG_BYTES`].
    fn read_long_bytes(&mut self, kind: ArgKind, what: &'static str, at: u64) -> Result<Arg<'static>> {
        let n: i128 = if kind == ArgKind::Long1 {
            self.fixed::<1>(what, at)?[0] as i128
        } else {
            i32::from_le_bytes(self.fixed::<4>(what, at)?) as i128
        };
        let n = self.check_len(what, n, at)?;
        if n > MAX_LONG_BYTES as u64 {
            return Err(Error::new(
                ErrorKind::LimitExceeded { limit: "MAX_LONG_BYTES", value: MAX_LONG_BYTES as u64 },
                at,
            ));
        }
        match self.src.take(n as usize).map_err(|e| io_err(e, at))? {
            Some(b) => Ok(Arg::BigInt(PyInt::from_le_twos(b))),
            None => Err(eof(what, at)),
        }
    }

    /// A decimal line: `INT` (with `00`/`01` for False/True, and the C and
    /// Python unpicklers' readings compared), `LONG` (one `L` dropped), or a
    /// memo key (`GET`, `PUT`). Returns the argument and whether the two
    /// unpicklers read it differently.
    fn read_decimal_line(&mut self, opcode: Opcode, at: u64) -> Result<(Arg<'static>, bool)> {
        let what = opcode.name();
        let line = self.line(what, at)?;
        match opcode {
            Opcode::Int => {
                let c = int_arg_c(line);
                let differential = c != int_arg_py(line);
                match c {
                    Some(IntArg::Bool(b)) => Ok((Arg::Bool(b), differential)),
                    Some(IntArg::Int(v)) => Ok((Arg::BigInt(v), differential)),
                    None => Err(bad(what, "not an integer literal", at)),
                }
            }
            Opcode::Long => {
                let text = line.strip_suffix(b"L").unwrap_or(line);
                match parse_int(text, true) {
                    Some(v) => Ok((Arg::BigInt(v), false)),
                    None => Err(bad(what, "not an integer literal", at)),
                }
            }
            _ => match parse_int(line, false) {
                Some(v) => Ok((Arg::BigInt(v), false)),
                None => Err(bad(what, "not a decimal integer", at)),
            },
        }
    }

    /// `FLOAT`: a float literal on a line.
    fn read_float_line(&mut self, what: &'static str, at: u64) -> Result<Arg<'static>> {
        let line = self.line(what, at)?;
        match parse_float(line) {
            Some(f) => Ok(Arg::Float(f)),
            None => Err(bad(what, "not a float literal", at)),
        }
    }

    /// `STRING`: a quoted literal on a line, escape-decoded.
    fn read_quoted_string(&mut self, what: &'static str, at: u64) -> Result<Arg<'static>> {
        let line = self.text_line(what, at)?;
        let quoted = line.len() >= 2 && matches!(line[0], b'\'' | b'"') && line[line.len() - 1] == line[0];
        if !quoted {
            return Err(bad(what, "the STRING argument must be quoted", at));
        }
        match escape_decode(&line[1..line.len() - 1]) {
            Some(v) => Ok(Arg::Escaped(v)),
            None => Err(bad(what, "invalid escape", at)),
        }
    }

    /// `PERSID`: the persistent id on a line.
    fn read_persistent_id(&mut self, what: &'static str, at: u64) -> Result<Arg<'static>> {
        let line = self.text_line(what, at)?;
        // pickle.py decodes the persistent id as ASCII.
        match std::str::from_utf8(line) {
            Ok(s) if s.is_ascii() => Ok(Arg::Str(Text::Inline(Cow::Owned(s.to_owned())))),
            _ => Err(bad(what, "persistent id is not ASCII", at)),
        }
    }

    /// `GLOBAL`/`INST`: a module line and a name line, each UTF-8.
    fn read_global_pair(&mut self, what: &'static str, at: u64) -> Result<Arg<'static>> {
        let module = self.line(what, at)?;
        let module = match std::str::from_utf8(module) {
            Ok(s) => s.to_owned(),
            Err(_) => return Err(bad(what, "module name is not UTF-8", at)),
        };
        let name = self.line(what, at)?;
        let name = match std::str::from_utf8(name) {
            Ok(s) => s.to_owned(),
            Err(_) => return Err(bad(what, "name is not UTF-8", at)),
        };
        Ok(Arg::Global { module, name })
    }

    /// `UNICODE`: a raw-unicode-escape line.
    fn read_unicode_line(&mut self, what: &'static str, at: u64) -> Result<Arg<'static>> {
        let line = self.text_line(what, at)?;
        match decode_raw_unicode_escape(line) {
            Some(s) => Ok(Arg::Str(Text::Inline(Cow::Owned(s)))),
            None => Err(bad(what, "invalid raw-unicode-escape", at)),
        }
    }

    /// A length-prefixed argument (byte strings, bytes, bytearrays, UTF-8
    /// text), borrowed from the source or skipped when long.
    fn read_sized(&mut self, opcode: Opcode, at: u64, open: Option<u64>) -> Result<(Arg<'_>, u64, FrameNote, bool)> {
        let what = opcode.name();
        let kind = opcode.arg();
        let declared: i128 = match kind {
            ArgKind::String1 | ArgKind::Bytes1 | ArgKind::Unicodestring1 => self.fixed::<1>(what, at)?[0] as i128,
            ArgKind::String4 => i32::from_le_bytes(self.fixed::<4>(what, at)?) as i128,
            ArgKind::Bytes4 | ArgKind::Unicodestring4 => u32::from_le_bytes(self.fixed::<4>(what, at)?) as i128,
            _ => u64::from_le_bytes(self.fixed::<8>(what, at)?) as i128,
        };
        let len = self.check_len(what, declared, at)?;
        if matches!(kind, ArgKind::Bytes8 | ArgKind::Bytearray8 | ArgKind::Unicodestring8) && len > i64::MAX as u64 {
            return Err(Error::new(ErrorKind::BadLength { what, declared, remaining: None }, at));
        }
        let end = self.src.position() + len;
        let arg = match kind {
            ArgKind::Unicodestring1 | ArgKind::Unicodestring4 | ArgKind::Unicodestring8 => self.utf8(what, len, at)?,
            _ => Arg::Bytes(self.payload(what, len, at)?),
        };
        Ok((arg, end, crossing(open, end), false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::source::SliceSource;

    fn ops(data: &[u8]) -> Vec<(u64, Opcode, String)> {
        let mut r = OpReader::new(SliceSource::new(data, 0));
        let mut out = Vec::new();
        while let Some(op) = r.next_op().unwrap() {
            out.push((op.offset, op.opcode, format!("{:?}", op.arg)));
        }
        out
    }

    fn err(data: &[u8]) -> Error {
        let mut r = OpReader::new(SliceSource::new(data, 0));
        loop {
            match r.next_op() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("expected an error"),
                Err(e) => return e,
            }
        }
    }

    #[test]
    fn text_forms_of_protocol_0() {
        let v = ops(b"I00\nI01\nI-12\nL123456789012345678901234L\nF-1.25\nS'a\\x41\\n'\nVcaf\\u00e9\n.");
        assert_eq!(v[0].2, "Bool(false)");
        assert_eq!(v[1].2, "Bool(true)");
        assert_eq!(v[2].2, "BigInt(Small(-12))");
        assert!(v[3].2.starts_with("BigInt(Big"));
        assert_eq!(v[4].2, "Float(-1.25)");
        assert_eq!(v[5].2, format!("{:?}", Arg::Escaped(b"aA\n".to_vec())));
        assert_eq!(v[6].2, format!("{:?}", Arg::Str(Text::Inline(Cow::Borrowed("café")))));
        assert_eq!(v[7].1, Opcode::Stop);
    }

    #[test]
    fn binary_forms() {
        let mut data = vec![0x80, 4, b'G'];
        data.extend_from_slice(&(-1.25f64).to_be_bytes());
        data.extend_from_slice(&[0x8a, 2, 0x00, 0x80]); // LONG1 -32768
        data.extend_from_slice(&[0x8c, 2, b'h', b'i']);
        data.extend_from_slice(&[0x8e, 1, 0, 0, 0, 0, 0, 0, 0, 0xff]);
        let v = ops(&data);
        assert_eq!(v[0].2, "Int(4)");
        assert_eq!(v[1].2, "Float(-1.25)");
        assert_eq!(v[2].2, "BigInt(Small(-32768))");
        assert_eq!(v[3].0, 15);
        assert_eq!(v[4].2, format!("{:?}", Arg::Bytes(Payload::Inline(&[0xff]))));
    }

    #[test]
    fn declared_length_checked_before_reading() {
        let e = err(&[0x8e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2]);
        assert!(matches!(e.kind(), ErrorKind::BadLength { remaining: Some(2), .. }), "{e}");
        assert_eq!(e.offset(), 0);
        let e = err(&[b'T', 0xff, 0xff, 0xff, 0xff]); // BINSTRING -1
        assert!(matches!(e.kind(), ErrorKind::BadLength { declared: -1, .. }), "{e}");
        let e = err(&[b'N', 0x01]);
        assert_eq!(e.kind(), &ErrorKind::UnknownOpcode(1));
        assert_eq!(e.offset(), 1);
        let e = err(b"cos\nsys");
        assert!(matches!(e.kind(), ErrorKind::UnexpectedEof { .. }));
        let e = err(&[b'J', 1, 2]);
        assert!(matches!(e.kind(), ErrorKind::UnexpectedEof { .. }));
    }

    #[test]
    fn big_payloads_are_skipped_not_copied() {
        let n = crate::limits::MAX_INLINE_ARG + 10;
        let mut data = vec![0x8e];
        data.extend_from_slice(&(n as u64).to_le_bytes());
        data.resize(9 + n, 7);
        data.push(b'.');
        let mut r = OpReader::new(SliceSource::new(&data, 100));
        let op = r.next_op().unwrap().unwrap();
        assert_eq!(op.arg, Arg::Bytes(Payload::Skipped { offset: 109, len: n as u64 }));
        assert_eq!(r.next_op().unwrap().unwrap().opcode, Opcode::Stop);
    }

    #[test]
    fn frame_crossing_is_noted() {
        // FRAME 3 covers "\x8c\x05a" but the SHORT_BINUNICODE needs 5 more bytes.
        let mut data = vec![0x80, 4, 0x95, 3, 0, 0, 0, 0, 0, 0, 0];
        data.extend_from_slice(&[0x8c, 5]);
        data.extend_from_slice(b"abcde");
        data.push(b'.');
        let mut r = OpReader::new(SliceSource::new(&data, 0));
        let mut notes = Vec::new();
        while let Some(op) = r.next_op().unwrap() {
            notes.push((op.opcode, op.frame));
        }
        assert_eq!(notes[2], (Opcode::ShortBinunicode, FrameNote::CrossesEnd { frame_end: 14 }));
        assert_eq!(notes[3], (Opcode::Stop, FrameNote::Ok));
    }
}
