//! Python's `int()` and `float()` text parsing, as the unpickler applies them
//! to the newline-terminated arguments of protocol 0 (`INT`, `LONG`, `FLOAT`,
//! `GET`, `PUT`).
//!
//! The rules follow CPython 3.11 `int(text, base)` and `float(text)`:
//! surrounding ASCII whitespace, an optional sign, and single underscores
//! between digits are allowed; base 0 also takes `0x`/`0o`/`0b` prefixes and
//! rejects leading zeros.

/// An integer of any size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PyInt {
    /// Fits in an i64.
    Small(i64),
    /// Larger: sign and magnitude as little-endian u32 limbs (no trailing zero limbs).
    Big {
        /// True when negative.
        negative: bool,
        /// Magnitude, least significant limb first.
        limbs: Vec<u32>,
    },
}

impl PyInt {
    /// The value as i64, when it fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            PyInt::Small(v) => Some(*v),
            PyInt::Big { .. } => None,
        }
    }

    /// Builds from little-endian two's-complement bytes (pickle `LONG1`/`LONG4`).
    pub fn from_le_twos(bytes: &[u8]) -> PyInt {
        if bytes.len() <= 8 {
            if bytes.is_empty() {
                return PyInt::Small(0);
            }
            let neg = bytes[bytes.len() - 1] & 0x80 != 0;
            let mut buf = if neg { [0xffu8; 8] } else { [0u8; 8] };
            buf[..bytes.len()].copy_from_slice(bytes);
            return PyInt::Small(i64::from_le_bytes(buf));
        }
        let negative = bytes[bytes.len() - 1] & 0x80 != 0;
        // Magnitude: for negatives, two's complement negate.
        let mut mag: Vec<u8> = bytes.to_vec();
        if negative {
            let mut carry = 1u16;
            for b in mag.iter_mut() {
                let v = (!*b) as u16 + carry;
                *b = v as u8;
                carry = v >> 8;
            }
        }
        let mut limbs: Vec<u32> = mag
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect();
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
        normalize(negative, limbs)
    }

    /// Decimal text, as Python's `repr(int)`.
    pub fn to_decimal(&self) -> String {
        match self {
            PyInt::Small(v) => v.to_string(),
            PyInt::Big { negative, limbs } => {
                let mut digits = Vec::new();
                let mut work = limbs.clone();
                while !work.is_empty() {
                    let mut rem: u64 = 0;
                    for limb in work.iter_mut().rev() {
                        let cur = (rem << 32) | *limb as u64;
                        *limb = (cur / 1_000_000_000) as u32;
                        rem = cur % 1_000_000_000;
                    }
                    while work.last() == Some(&0) {
                        work.pop();
                    }
                    digits.push(rem as u32);
                }
                let mut s = String::new();
                if *negative {
                    s.push('-');
                }
                let mut first = true;
                for chunk in digits.iter().rev() {
                    if first {
                        s.push_str(&chunk.to_string());
                        first = false;
                    } else {
                        s.push_str(&format!("{chunk:09}"));
                    }
                }
                if first {
                    s.push('0');
                }
                s
            }
        }
    }
}

fn normalize(negative: bool, limbs: Vec<u32>) -> PyInt {
    if limbs.len() <= 2 {
        let mag = limbs.first().copied().unwrap_or(0) as u64 | (limbs.get(1).copied().unwrap_or(0) as u64) << 32;
        if negative {
            if mag <= i64::MAX as u64 + 1 {
                return PyInt::Small((mag as i128).wrapping_neg() as i64);
            }
        } else if mag <= i64::MAX as u64 {
            return PyInt::Small(mag as i64);
        }
    }
    PyInt::Big { negative: negative && !limbs.is_empty(), limbs }
}

fn strip_ws(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() || *first == 0x0b {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() || *last == 0x0b {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Parses like Python's `int(text, 0)` when `base0`, else `int(text)` (base 10).
/// Returns `None` where Python raises `ValueError`.
pub fn parse_int(text: &[u8], base0: bool) -> Option<PyInt> {
    let s = strip_ws(text);
    let (negative, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, body, prefixed) = if base0 && s.len() >= 2 && s[0] == b'0' {
        match s[1] {
            b'x' | b'X' => (16, &s[2..], true),
            b'o' | b'O' => (8, &s[2..], true),
            b'b' | b'B' => (2, &s[2..], true),
            _ => (10, s, false),
        }
    } else {
        (10, s, false)
    };
    // Underscores: single, between digits (after a prefix one may lead).
    let mut digits: Vec<u32> = Vec::with_capacity(body.len());
    let mut prev_underscore = !prefixed; // a leading '_' only after a prefix
    if body.is_empty() {
        return None;
    }
    for (i, &c) in body.iter().enumerate() {
        if c == b'_' {
            if prev_underscore || i + 1 == body.len() {
                return None;
            }
            prev_underscore = true;
            continue;
        }
        prev_underscore = false;
        let d = (c as char).to_digit(radix)?;
        digits.push(d);
    }
    if digits.is_empty() {
        return None;
    }
    if base0 && radix == 10 && digits[0] == 0 && digits.iter().any(|d| *d != 0) {
        return None; // int('010', 0) is an error
    }
    let mut limbs: Vec<u32> = Vec::new();
    for d in digits {
        let mut carry = d as u64;
        for limb in limbs.iter_mut() {
            let v = *limb as u64 * radix as u64 + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            limbs.push(carry as u32);
        }
    }
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    Some(normalize(negative, limbs))
}

/// C `strtol(text, &end, 0)` as `_pickle.c`'s `load_int` uses it: leading
/// whitespace, a sign, `0x` hex, a leading `0` meaning octal. `None` when
/// it would not consume the whole line, or overflows a C long (then the C
/// unpickler falls back to Python's `int(text, 0)`).
fn strtol0(text: &[u8]) -> Option<i64> {
    let mut i = 0;
    while i < text.len() && matches!(text[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let negative = match text.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let radix = if text.get(i) == Some(&b'0')
        && matches!(text.get(i + 1), Some(b'x' | b'X'))
        && text.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
    {
        i += 2;
        16
    } else if text.get(i) == Some(&b'0') {
        8
    } else {
        10
    };
    let start = i;
    let mut mag: u64 = 0;
    while let Some(d) = text.get(i).and_then(|&c| (c as char).to_digit(radix)) {
        mag = mag.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
        i += 1;
    }
    if i == start || i != text.len() {
        return None;
    }
    if negative {
        if mag > i64::MAX as u64 + 1 {
            return None;
        }
        Some((mag as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(mag).ok()
    }
}

/// How the `INT` opcode's line is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntArg {
    /// `True` / `False`.
    Bool(bool),
    /// An integer.
    Int(PyInt),
}

/// `INT` as CPython's C unpickler (`pickle.loads`) reads it: `strtol` base
/// 0, a two-character line worth 0 or 1 being a bool, else Python's
/// `int(text, 0)`.
pub fn int_arg_c(text: &[u8]) -> Option<IntArg> {
    match strtol0(text) {
        Some(v) if text.len() == 2 && (v == 0 || v == 1) => Some(IntArg::Bool(v == 1)),
        Some(v) => Some(IntArg::Int(PyInt::Small(v))),
        None => parse_int(text, true).map(IntArg::Int),
    }
}

/// `INT` as `pickle.py` reads it: `00`/`01` are bools, else `int(text, 0)`.
pub fn int_arg_py(text: &[u8]) -> Option<IntArg> {
    match text {
        b"00" => Some(IntArg::Bool(false)),
        b"01" => Some(IntArg::Bool(true)),
        _ => parse_int(text, true).map(IntArg::Int),
    }
}

/// Parses like Python's `float(text)`. Returns `None` where Python raises.
pub fn parse_float(text: &[u8]) -> Option<f64> {
    let s = strip_ws(text);
    let s = std::str::from_utf8(s).ok()?;
    let mut clean = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'_' {
            let ok = i > 0 && i + 1 < bytes.len() && bytes[i - 1].is_ascii_digit() && bytes[i + 1].is_ascii_digit();
            if !ok {
                return None;
            }
        } else {
            clean.push(c as char);
        }
    }
    let lower = clean.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if unsigned.len() + 1 < lower.len() {
        return None; // more than one sign
    }
    match unsigned {
        "inf" | "infinity" | "nan" => {}
        _ => {
            // Rust accepts forms Python rejects? Only check that all chars are float chars.
            if !unsigned.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-')) {
                return None;
            }
        }
    }
    lower.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_python() {
        assert_eq!(parse_int(b"0x10", true), Some(PyInt::Small(16)));
        assert_eq!(parse_int(b"010", true), None);
        assert_eq!(parse_int(b"00", true), Some(PyInt::Small(0)));
        assert_eq!(parse_int(b"0_0", true), Some(PyInt::Small(0)));
        assert_eq!(parse_int(b" 12 ", true), Some(PyInt::Small(12)));
        assert_eq!(parse_int(b"1__2", true), None);
        assert_eq!(parse_int(b"-0b11", true), Some(PyInt::Small(-3)));
        assert_eq!(parse_int(b"0o7_7", true), Some(PyInt::Small(63)));
        assert_eq!(parse_int(b"+5", true), Some(PyInt::Small(5)));
        assert_eq!(parse_int(b"0x10", false), None);
        assert_eq!(parse_int(b"", false), None);
        assert_eq!(parse_int(b"-", false), None);
        assert_eq!(parse_int(b"-9223372036854775808", false), Some(PyInt::Small(i64::MIN)));
        let big = parse_int(b"123456789012345678901234567890", false).unwrap();
        assert_eq!(big.to_decimal(), "123456789012345678901234567890");
        let neg = parse_int(b"-18446744073709551616", false).unwrap();
        assert_eq!(neg.to_decimal(), "-18446744073709551616");
    }

    #[test]
    fn int_opcode_like_the_c_unpickler() {
        use IntArg::*;
        assert_eq!(int_arg_c(b"010"), Some(Int(PyInt::Small(8))));
        assert_eq!(int_arg_py(b"010"), None);
        assert_eq!(int_arg_c(b"-0"), Some(Bool(false)));
        assert_eq!(int_arg_py(b"-0"), Some(Int(PyInt::Small(0))));
        assert_eq!(int_arg_c(b"+1"), Some(Bool(true)));
        assert_eq!(int_arg_c(b"01"), Some(Bool(true)));
        assert_eq!(int_arg_c(b"00"), Some(Bool(false)));
        assert_eq!(int_arg_c(b"0x1f"), Some(Int(PyInt::Small(31))));
        assert_eq!(int_arg_c(b"0o17"), Some(Int(PyInt::Small(15))));
        assert_eq!(int_arg_c(b"1_0"), Some(Int(PyInt::Small(10))));
        assert_eq!(int_arg_c(b"08"), None);
        assert_eq!(int_arg_c(b" 12"), Some(Int(PyInt::Small(12))));
        assert!(matches!(int_arg_c(b"99999999999999999999"), Some(Int(PyInt::Big { .. }))));
        assert_eq!(int_arg_c(b"-9223372036854775808"), Some(Int(PyInt::Small(i64::MIN))));
    }

    #[test]
    fn twos_complement() {
        assert_eq!(PyInt::from_le_twos(&[]), PyInt::Small(0));
        assert_eq!(PyInt::from_le_twos(&[0xff]), PyInt::Small(-1));
        assert_eq!(PyInt::from_le_twos(&[0x80, 0x00]), PyInt::Small(128));
        // 2**64 = 00 * 8, 01, 00 (sign byte)
        let v = PyInt::from_le_twos(&[0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(v.to_decimal(), "18446744073709551616");
        // -2**64 = 00*8, ff
        let v = PyInt::from_le_twos(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff]);
        assert_eq!(v.to_decimal(), "-18446744073709551616");
    }

    #[test]
    fn floats_like_python() {
        assert_eq!(parse_float(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_float(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_float(b"nAn").unwrap().is_nan());
        assert_eq!(parse_float(b"1_0.5"), Some(10.5));
        assert_eq!(parse_float(b" 1.5 "), Some(1.5));
        assert_eq!(parse_float(b"1."), Some(1.0));
        assert_eq!(parse_float(b"+.5e3"), Some(500.0));
        assert_eq!(parse_float(b"0x10"), None);
        assert_eq!(parse_float(b"1__0"), None);
    }
}
