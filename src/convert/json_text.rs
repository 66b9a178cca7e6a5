//! JSON text written as it is made: the `.skops` schema and the
//! safetensors header go straight into one buffer instead of a tree of
//! `serde_json` values that is serialized and dropped afterwards (a
//! 300-tree forest's schema has 18,000 nodes; the tree cost a third of
//! the conversion's time, docs/convert.md "Speed and memory").

use serde_json::Value as J;

/// A growing JSON text. What is written is the caller's to keep well
/// formed; strings are escaped here.
#[derive(Debug, Default)]
pub struct JsonText {
    buf: Vec<u8>,
}

impl JsonText {
    /// Text that is already JSON (punctuation, a key with its quotes).
    pub fn raw(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// `s` as a JSON string.
    pub fn string(&mut self, s: &str) {
        self.buf.push(b'"');
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f => b"",
                _ => continue,
            };
            self.buf.extend_from_slice(&bytes[start..i]);
            if esc.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.buf.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ]);
            } else {
                self.buf.extend_from_slice(esc);
            }
            start = i + 1;
        }
        self.buf.extend_from_slice(&bytes[start..]);
        self.buf.push(b'"');
    }

    /// An unsigned integer.
    pub fn uint(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&digits[i..]);
    }

    /// A document value, as `serde_json` writes it.
    pub fn value(&mut self, v: &J) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.buf, v).map_err(std::io::Error::other)
    }

    /// Removes the last byte if it is `b` (reopening a closed object).
    pub fn pop_if(&mut self, b: u8) -> bool {
        if self.buf.last() == Some(&b) {
            self.buf.pop();
            true
        } else {
            false
        }
    }

    /// The text.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_read_back_as_json() {
        let mut t = JsonText::default();
        t.raw("[");
        for (i, s) in ["plain", "q\"uote\\", "line\nbreak\ttab\r", "\u{1}\u{1f}", "näive ✓", ""].iter().enumerate() {
            if i > 0 {
                t.raw(",");
            }
            t.string(s);
        }
        for n in [0, 7, 1234567890, u64::MAX] {
            t.raw(",");
            t.uint(n);
        }
        t.raw(",");
        t.value(&serde_json::json!({"a": [1.5, null]})).unwrap();
        t.raw("]");
        let back: J = serde_json::from_slice(&t.into_bytes()).expect("valid JSON");
        assert_eq!(
            back,
            serde_json::json!([
                "plain",
                "q\"uote\\",
                "line\nbreak\ttab\r",
                "\u{1}\u{1f}",
                "näive ✓",
                "",
                0,
                7,
                1234567890u64,
                u64::MAX,
                {"a": [1.5, null]}
            ])
        );
    }
}
