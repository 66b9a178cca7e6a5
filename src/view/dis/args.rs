//! An opcode's argument as pickletools' argument readers decode it and
//! `repr()` prints it, which is not always the way the unpickler reads it
//! (see the [module documentation](super)), and the memo key it names.

use crate::pickle::opcodes::{ArgKind, Opcode};
use crate::pickle::reader::{Arg, Payload, Text};
use crate::py::codec::{escape_decode, raw_unicode_escape_codepoints, utf8_surrogatepass_codepoints};
use crate::py::num::{parse_int, PyInt};
use crate::py::repr::{
    repr_bytearray, repr_bytes, repr_float, repr_int_le_twos_limited, repr_str, repr_str_codepoints, INT_MAX_STR_DIGITS,
};

/// A memo key: a Python int (bools are equal to 0 and 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum MemoKey {
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
pub(super) struct ArgView {
    /// `repr(arg)`, or a placeholder.
    pub(super) repr: String,
    /// The memo key, for GET/PUT and friends.
    pub(super) key: Option<MemoKey>,
    /// Why pickletools itself would fail on this argument.
    pub(super) pickletools_fails: Option<String>,
}

impl ArgView {
    fn plain(repr: String) -> ArgView {
        ArgView { repr, key: None, pickletools_fails: None }
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

pub(super) const TOO_LARGE: &str = "<int too large to print: more than 4300 digits>";

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
pub(super) fn arg_view(opcode: Opcode, raw: &[u8], arg: &Arg<'_>) -> Option<ArgView> {
    let kind = opcode.arg();
    let body = raw.get(1..).unwrap_or(&[]);
    let view = match kind {
        ArgKind::None => return None,
        ArgKind::Uint1 | ArgKind::Uint2 | ArgKind::Int4 | ArgKind::Uint4 | ArgKind::Uint8 => fixed_int_arg(arg),
        ArgKind::Long1 | ArgKind::Long4 => long_arg(kind, body),
        ArgKind::Float8 | ArgKind::Floatnl => match arg {
            Arg::Float(f) => ArgView::plain(repr_float(*f)),
            other => ArgView::plain(format!("{other:?}")),
        },
        ArgKind::DecimalnlShort | ArgKind::DecimalnlLong => {
            decimal_arg(split_line(body).0, kind == ArgKind::DecimalnlLong)
        }
        ArgKind::Stringnl | ArgKind::StringnlNoescape | ArgKind::StringnlNoescapePair => string_line_arg(kind, body),
        ArgKind::String1
        | ArgKind::String4
        | ArgKind::Bytes1
        | ArgKind::Bytes4
        | ArgKind::Bytes8
        | ArgKind::Bytearray8 => sized_bytes_arg(kind, arg),
        ArgKind::Unicodestringnl => unicode_line_arg(body, arg),
        ArgKind::Unicodestring1 | ArgKind::Unicodestring4 | ArgKind::Unicodestring8 => {
            sized_unicode_arg(kind, body, arg)
        }
    };
    Some(view)
}

/// uint1, uint2, int4, uint4 and uint8: the decoded integer, also a memo key.
fn fixed_int_arg(arg: &Arg<'_>) -> ArgView {
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

/// `LONG1`/`LONG4`: the two's-complement bytes after the length, refused
/// past 4300 digits as pickletools would.
fn long_arg(kind: ArgKind, body: &[u8]) -> ArgView {
    let header = if kind == ArgKind::Long1 { 1 } else { 4 };
    let bytes = body.get(header..).unwrap_or(&[]);
    match repr_int_le_twos_limited(bytes, INT_MAX_STR_DIGITS) {
        Some(repr) => ArgView::plain(repr),
        None => ArgView { repr: TOO_LARGE.into(), key: None, pickletools_fails: Some(int_limit_message()) },
    }
}

/// `STRING` (the quotes dropped), `PERSID` and the `GLOBAL`/`INST` pair
/// (`"module name"`): escape-decoded, then ASCII-decoded, to a str.
fn string_line_arg(kind: ArgKind, body: &[u8]) -> ArgView {
    let (cps, fails) = match kind {
        ArgKind::Stringnl => {
            let line = split_line(body).0;
            let inner = if line.len() >= 2 { &line[1..line.len() - 1] } else { &[][..] };
            escaped_ascii(inner)
        }
        ArgKind::StringnlNoescape => escaped_ascii(split_line(body).0),
        _ => {
            let (module, rest) = split_line(body);
            let name = split_line(rest).0;
            let (mut cps, f1) = escaped_ascii(module);
            let (name_cps, f2) = escaped_ascii(name);
            cps.push(u32::from(b' '));
            cps.extend(name_cps);
            (cps, f1.or(f2))
        }
    };
    ArgView { repr: repr_str_codepoints(&cps), key: None, pickletools_fails: fails }
}

/// Length-prefixed byte strings: `BINSTRING`/`SHORT_BINSTRING` as latin-1
/// strs, bytes and bytearrays as such; long ones by offset and length.
fn sized_bytes_arg(kind: ArgKind, arg: &Arg<'_>) -> ArgView {
    match arg {
        Arg::Bytes(Payload::Inline(b)) if matches!(kind, ArgKind::String1 | ArgKind::String4) => {
            ArgView::plain(repr_str_codepoints(&latin1(b)))
        }
        Arg::Bytes(Payload::Inline(b)) if kind == ArgKind::Bytearray8 => ArgView::plain(repr_bytearray(b)),
        Arg::Bytes(Payload::Inline(b)) => ArgView::plain(repr_bytes(b)),
        Arg::Bytes(Payload::Skipped { offset, len }) => skipped(*len, *offset),
        other => ArgView::plain(format!("{other:?}")),
    }
}

/// `UNICODE`: raw-unicode-escape, lone surrogates kept.
fn unicode_line_arg(body: &[u8], arg: &Arg<'_>) -> ArgView {
    match raw_unicode_escape_codepoints(split_line(body).0) {
        Some(cps) => ArgView::plain(repr_str_codepoints(&cps)),
        None => match arg {
            Arg::Str(Text::Inline(s)) => ArgView::plain(repr_str(s)),
            other => ArgView::plain(format!("{other:?}")),
        },
    }
}

/// Length-prefixed UTF-8 (`SHORT_BINUNICODE`, `BINUNICODE`,
/// `BINUNICODE8`), lone surrogates kept; long ones by offset and length.
fn sized_unicode_arg(kind: ArgKind, body: &[u8], arg: &Arg<'_>) -> ArgView {
    match arg {
        Arg::Str(Text::Skipped { offset, len }) => skipped(*len, *offset),
        Arg::Str(Text::Inline(s)) => {
            let header = match kind {
                ArgKind::Unicodestring1 => 1,
                ArgKind::Unicodestring4 => 4,
                _ => 8,
            };
            match body.get(header..).and_then(utf8_surrogatepass_codepoints) {
                Some(cps) => ArgView::plain(repr_str_codepoints(&cps)),
                None => ArgView::plain(repr_str(s)),
            }
        }
        other => ArgView::plain(format!("{other:?}")),
    }
}
