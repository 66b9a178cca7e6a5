//! Python's text codecs as the unpickler applies them to opcode arguments:
//! UTF-8 with `surrogatepass` (`BINUNICODE` and friends), `raw-unicode-escape`
//! (`UNICODE`) and the bytes escapes of `codecs.escape_decode` (`STRING`).
//! Each returns `None` exactly where Python raises.

use std::borrow::Cow;

/// UTF-8 decoded as CPython's `surrogatepass` does, into code points (lone
/// surrogates kept). `None` for input CPython rejects.
pub fn utf8_surrogatepass_codepoints(mut b: &[u8]) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(b.len());
    loop {
        match std::str::from_utf8(b) {
            Ok(s) => {
                out.extend(s.chars().map(|c| c as u32));
                return Some(out);
            }
            Err(e) => {
                let (good, bad) = b.split_at(e.valid_up_to());
                out.extend(std::str::from_utf8(good).ok()?.chars().map(|c| c as u32));
                match bad {
                    [0xED, b1 @ 0xA0..=0xBF, b2 @ 0x80..=0xBF, ..] => {
                        out.push(0xD000 | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F));
                        b = &bad[3..];
                    }
                    _ => return None,
                }
            }
        }
    }
}

/// Python's `raw-unicode-escape` decoder, into code points (surrogates
/// kept): bytes are latin-1 code points, except `\uXXXX` / `\UXXXXXXXX`
/// after an odd run of backslashes. `None` where Python raises.
pub fn raw_unicode_escape_codepoints(bytes: &[u8]) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c != b'\\' {
            out.push(u32::from(c));
            i += 1;
            continue;
        }
        let run_start = i;
        while i < bytes.len() && bytes[i] == b'\\' {
            i += 1;
        }
        let run = i - run_start;
        let escape = run % 2 == 1 && matches!(bytes.get(i), Some(b'u') | Some(b'U'));
        let literal = if escape { run - 1 } else { run };
        out.extend(std::iter::repeat_n(u32::from(b'\\'), literal));
        if escape {
            let width = if bytes.get(i) == Some(&b'u') { 4 } else { 8 };
            let hex = bytes.get(i + 1..i + 1 + width)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let text = std::str::from_utf8(hex).ok()?;
            let cp = u32::from_str_radix(text, 16).ok()?;
            if cp > 0x10FFFF {
                return None;
            }
            out.push(cp);
            i += 1 + width;
        }
    }
    Some(out)
}

/// Code points as a `String`, each lone surrogate replaced by U+FFFD.
fn lossy_string(cps: &[u32]) -> String {
    cps.iter().map(|&c| char::from_u32(c).unwrap_or('\u{FFFD}')).collect()
}

/// Decodes UTF-8 as CPython's `surrogatepass` does, replacing each lone
/// surrogate with U+FFFD. Returns `None` for input CPython rejects.
pub fn decode_utf8_surrogatepass(bytes: &[u8]) -> Option<Cow<'_, str>> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => utf8_surrogatepass_codepoints(bytes).map(|cps| Cow::Owned(lossy_string(&cps))),
    }
}

/// Decodes Python's `raw-unicode-escape` (see
/// [`raw_unicode_escape_codepoints`]), lone surrogates replaced by U+FFFD.
pub fn decode_raw_unicode_escape(bytes: &[u8]) -> Option<String> {
    raw_unicode_escape_codepoints(bytes).map(|cps| lossy_string(&cps))
}

/// Undoes Python's bytes escapes (`codecs.escape_decode`), as the `STRING`
/// opcode does. Returns `None` where Python raises (a bad `\x` escape).
pub fn escape_decode(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        // A trailing backslash is an error ("\\ at end of string").
        let &e = bytes.get(i)?;
        i += 1;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let hex = bytes.get(i..i + 2)?;
                let h = std::str::from_utf8(hex).ok()?;
                if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_unicode_escape_rules() {
        assert_eq!(decode_raw_unicode_escape(br"\u0041").as_deref(), Some("A"));
        assert_eq!(decode_raw_unicode_escape(br"\\u0041").as_deref(), Some(r"\\u0041"));
        assert_eq!(decode_raw_unicode_escape(br"\\\u0041").as_deref(), Some(r"\\A"));
        assert_eq!(decode_raw_unicode_escape(br"\x41").as_deref(), Some(r"\x41"));
        assert_eq!(decode_raw_unicode_escape(br"\u00"), None);
    }

    #[test]
    fn surrogatepass() {
        assert_eq!(decode_utf8_surrogatepass(b"a\xed\xa0\x80b").as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(decode_utf8_surrogatepass(b"a\xffb"), None);
    }
}
