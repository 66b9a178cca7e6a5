//! The `.npy` header: magic, version, a Python-literal dict (numpy
//! `lib/format.py`). Only what scanning needs is read: whether the data is a
//! pickle (object dtype) and where it starts. An `.npy` layer of a walk
//! (`walk`) is scanned when its data is a pickle and listed as skipped
//! otherwise.

use std::fmt;
use std::io::{self, Read};

use super::diag::Unreadable;
use super::readers::Peeked;
use super::walk::{Layer, Part, Walker};
use super::Format;
use crate::limits::MAX_NPY_HEADER;
use crate::pickle::source::{Input, ReadSource};

/// What an `.npy` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version (1, 2 or 3).
    pub major: u8,
    /// The `descr` value as written.
    pub descr: String,
    /// The data is a pickle (object dtype, or a structured dtype with objects).
    pub object: bool,
    /// Offset of the data.
    pub data_offset: u64,
    /// The `shape` value, when it is a tuple of integers.
    pub shape: Option<Vec<u64>>,
    /// The `fortran_order` value.
    pub fortran_order: bool,
}

/// Why an `.npy` header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NpyHeaderError {
    /// Reading failed (the I/O error's message).
    Io(String),
    /// The stream does not start with `\x93NUMPY`.
    BadMagic,
    /// A format version other than 1, 2 or 3.
    UnknownVersion(u8),
    /// A declared header length over [`MAX_NPY_HEADER`].
    TooLong {
        /// The declared length.
        len: u64,
    },
    /// The stream ends inside the header.
    CutShort,
    /// The header dict has no `descr` key.
    NoDescr,
}

impl fmt::Display for NpyHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NpyHeaderError::Io(e) => f.write_str(e),
            NpyHeaderError::BadMagic => f.write_str("bad magic"),
            NpyHeaderError::UnknownVersion(v) => write!(f, "unknown version {v}"),
            NpyHeaderError::TooLong { len } => {
                write!(f, "header of {len} bytes exceeds MAX_NPY_HEADER ({MAX_NPY_HEADER})")
            }
            NpyHeaderError::CutShort => f.write_str("header cut short"),
            NpyHeaderError::NoDescr => f.write_str("no 'descr' key"),
        }
    }
}

impl std::error::Error for NpyHeaderError {}

impl From<io::Error> for NpyHeaderError {
    fn from(e: io::Error) -> Self {
        NpyHeaderError::Io(e.to_string())
    }
}

/// Reads the header of an `.npy` stream positioned at its start.
///
/// # Errors
/// A bad magic or version, a header longer than [`MAX_NPY_HEADER`], a
/// header that ends early or has no `descr`.
pub fn read_header<R: Read>(r: &mut R) -> Result<Header, NpyHeaderError> {
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(NpyHeaderError::BadMagic);
    }
    let major = pre[6];
    let (len, fixed) = match major {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            (u64::from(u16::from_le_bytes(b)), 10u64)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)?;
            (u64::from(u32::from_le_bytes(b)), 12u64)
        }
        v => return Err(NpyHeaderError::UnknownVersion(v)),
    };
    if len > MAX_NPY_HEADER as u64 {
        return Err(NpyHeaderError::TooLong { len });
    }
    let mut text = Vec::new();
    r.take(len).read_to_end(&mut text)?;
    if (text.len() as u64) < len {
        return Err(NpyHeaderError::CutShort);
    }
    // v1/v2 headers are latin-1, v3 UTF-8; only ASCII matters for descr.
    let text: String = if major == 3 {
        String::from_utf8_lossy(&text).into_owned()
    } else {
        text.iter().map(|&b| b as char).collect()
    };
    let at = text.find("'descr'").ok_or(NpyHeaderError::NoDescr)?;
    let rest = &text[at + 7..];
    let end = ["'fortran_order'", "'shape'"].iter().filter_map(|k| rest.find(k)).min().unwrap_or(rest.len());
    let descr = rest[..end].trim().trim_start_matches(':').trim().trim_end_matches(',').trim().to_string();
    // A type string is an optional byte order, a kind letter and a size:
    // object is 'O' (with or without '|' and '8'); field names are not types.
    let object = quoted(&descr).iter().any(|t| {
        let t = t.trim_start_matches(['<', '>', '|', '=']);
        t.strip_prefix('O').is_some_and(|size| size.chars().all(|c| c.is_ascii_digit()))
    });
    let shape = text.find("'shape'").and_then(|i| {
        let rest = &text[i + 7..];
        let open = rest.find('(')?;
        let close = rest[open..].find(')')? + open;
        rest[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.trim_end_matches('L').parse::<u64>().ok())
            .collect::<Option<Vec<u64>>>()
    });
    let fortran_order =
        text.find("'fortran_order'").is_some_and(|i| text[i + 15..].trim_start_matches([':', ' ']).starts_with("True"));
    Ok(Header { major, descr, object, data_offset: fixed + len, shape, fortran_order })
}

/// The single-quoted tokens of a Python literal.
fn quoted(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(a) = rest.find('\'') {
        let after = &rest[a + 1..];
        match after.find('\'') {
            Some(b) => {
                out.push(&after[..b]);
                rest = &after[b + 1..];
            }
            None => break,
        }
    }
    out
}

/// Walks the `.npy` layer `at`: its data is analysed when it is a pickle
/// (object dtype), else the layer is listed as skipped.
pub(super) fn walk<R: Input>(w: &mut Walker, mut r: Peeked<R>, total: Option<u64>, at: &Layer) {
    match read_header(&mut r) {
        Ok(h) if h.object => {
            let start = h.data_offset;
            let rest = total.map(|t| t.saturating_sub(start));
            let analysis = w.analyze_part(ReadSource::with_base(r, start, rest));
            w.out.parts.push(Part { member: at.member.clone(), layers: at.with(Format::Npy), analysis });
        }
        Ok(_) => {
            let name = at.member.clone().unwrap_or_else(|| "(file)".into());
            w.out.skipped_members.push(name);
        }
        Err(error) => w.note(&at.member, 0, Unreadable::BadNpyHeader { error }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str) -> Vec<u8> {
        let mut h = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (3,), }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out
    }

    #[test]
    fn object_dtypes_are_pickles() {
        let h = read_header(&mut &npy("'|O'")[..]).unwrap();
        assert!(h.object);
        assert_eq!(h.data_offset % 64, 0, "numpy pads the header to 64 bytes");
        assert!(!read_header(&mut &npy("'<i8'")[..]).unwrap().object);
        assert!(read_header(&mut &npy("[('a', '<i4'), ('b', '|O')]")[..]).unwrap().object);
        assert!(!read_header(&mut &npy("[('Obj', '<i4')]")[..]).unwrap().object);
        assert_eq!(read_header(&mut &b"\x93NUMPY\x01\x00\xff\xff"[..]), Err(NpyHeaderError::CutShort));
        assert_eq!(read_header(&mut &b"\x93NUMPX\x01\x00\x00\x00"[..]), Err(NpyHeaderError::BadMagic));
        assert_eq!(read_header(&mut &b"\x93NUMPY\x04\x00\x00\x00"[..]), Err(NpyHeaderError::UnknownVersion(4)));
        let long = b"\x93NUMPY\x02\x00\x00\x00\x00\x01";
        assert_eq!(read_header(&mut &long[..]), Err(NpyHeaderError::TooLong { len: 1 << 24 }));
        assert!(matches!(read_header(&mut &b"\x93NUM"[..]), Err(NpyHeaderError::Io(_))));
        let no_descr = b"\x93NUMPY\x01\x00\x10\x00{'shape': (3,)}\n";
        assert_eq!(read_header(&mut &no_descr[..]), Err(NpyHeaderError::NoDescr));
    }
}
