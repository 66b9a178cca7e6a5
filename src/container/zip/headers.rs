//! Zip headers read from the bytes (APPNOTE.TXT 4.3): every central
//! directory entry, duplicates included, each member's local header, ZIP64
//! extra fields, and how a local header disagrees with its central entry.

use std::io::{Read, Seek, SeekFrom};

use super::super::diag::{ArchiveFault, Disagreement, HeaderError};
use crate::limits::MAX_ARCHIVE_MEMBERS;

const LOCAL_SIG: [u8; 4] = *b"PK\x03\x04";
const CENTRAL_SIG: [u8; 4] = *b"PK\x01\x02";
/// Fixed part of a central directory header.
const CENTRAL_FIXED: usize = 46;
/// Fixed part of a local file header.
const LOCAL_FIXED: usize = 30;
/// General-purpose flag bits (APPNOTE 4.4.4).
pub(super) const FLAG_ENCRYPTED: u16 = 1;
pub(super) const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
/// A 32-bit field that says "see the ZIP64 extra field".
const ZIP64_MARK: u32 = 0xFFFF_FFFF;

/// One central directory entry, as written.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) name_raw: Vec<u8>,
    pub(super) name: String,
    pub(super) flags: u16,
    pub(super) method: u16,
    pub(super) crc: u32,
    pub(super) csize: u64,
    pub(super) usize: u64,
    /// Absolute offset of the local header (archive offset applied).
    pub(super) header_start: u64,
}

/// One local file header, as written.
#[derive(Debug, Clone)]
pub(super) struct Local {
    pub(super) name_raw: Vec<u8>,
    pub(super) flags: u16,
    pub(super) method: u16,
    pub(super) crc: u32,
    pub(super) csize: u64,
    pub(super) usize: u64,
    /// Offset of the member's data (just past the local header).
    pub(super) data_start: u64,
}

pub(super) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(super) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// An I/O error, as a header error.
pub(super) fn io_error(e: std::io::Error) -> HeaderError {
    HeaderError::Io { error: e.to_string() }
}

/// Reads `n` bytes at `pos`, failing if fewer remain before `end`.
fn read_at<R: Read + Seek>(r: &mut R, pos: u64, n: usize, end: u64) -> Result<Vec<u8>, HeaderError> {
    if pos.checked_add(n as u64).is_none_or(|e| e > end) {
        return Err(HeaderError::PastEnd { n, pos, end });
    }
    r.seek(SeekFrom::Start(pos)).map_err(io_error)?;
    // n is at most a fixed header or a u16-sized field, and fits before `end`.
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).map_err(io_error)?;
    Ok(buf)
}

/// Applies a ZIP64 extended-information extra field (id 1): each 32-bit
/// field set to `0xFFFFFFFF` is replaced, in order, by a 64-bit value.
fn apply_zip64(extra: &[u8], usize: &mut u64, csize: &mut u64, offset: Option<&mut u64>) {
    let mut rest = extra;
    while rest.len() >= 4 {
        let id = le16(rest, 0);
        let len = le16(rest, 2) as usize;
        let Some(data) = rest.get(4..4 + len) else { return };
        if id == 1 {
            let mut fields = data.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
            let mut next = |v: &mut u64| {
                if *v == u64::from(ZIP64_MARK) {
                    if let Some(x) = fields.next() {
                        *v = x;
                    }
                }
            };
            next(usize);
            next(csize);
            if let Some(o) = offset {
                next(o);
            }
            return;
        }
        rest = &rest[4 + len..];
    }
}

/// A member name for display: UTF-8 when it is, else each byte as one char.
pub(super) fn decode_name(raw: &[u8], flags: u16) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_string(),
        Err(_) if flags & FLAG_UTF8 != 0 => String::from_utf8_lossy(raw).into_owned(),
        // CP437 in principle; latin-1 keeps every byte visible and distinct.
        Err(_) => raw.iter().map(|&b| b as char).collect(),
    }
}

/// Walks the central directory from `dir_start` while entries carry the
/// central signature. Returns the entries and, if the walk was cut short,
/// where and why.
pub(super) fn central_entries<R: Read + Seek>(
    r: &mut R,
    dir_start: u64,
    offset: u64,
    end: u64,
) -> (Vec<Entry>, Option<(u64, ArchiveFault)>) {
    let mut out = Vec::new();
    let mut pos = dir_start;
    while pos.saturating_add(4) <= end && out.len() <= MAX_ARCHIVE_MEMBERS {
        match read_at(r, pos, 4, end) {
            Ok(sig) if sig[..] == CENTRAL_SIG => {}
            _ => break,
        }
        let fixed = match read_at(r, pos, CENTRAL_FIXED, end) {
            Ok(b) => b,
            Err(error) => return (out, Some((pos, ArchiveFault::CentralEntryShort { error }))),
        };
        let flags = le16(&fixed, 8);
        let method = le16(&fixed, 10);
        let crc = le32(&fixed, 16);
        let mut csize = u64::from(le32(&fixed, 20));
        let mut usize = u64::from(le32(&fixed, 24));
        let (n, e, c) = (le16(&fixed, 28) as usize, le16(&fixed, 30) as usize, le16(&fixed, 32) as usize);
        let mut rel = u64::from(le32(&fixed, 42));
        let var = match read_at(r, pos + CENTRAL_FIXED as u64, n + e, end) {
            Ok(b) => b,
            Err(error) => return (out, Some((pos, ArchiveFault::CentralEntryShort { error }))),
        };
        let (name_raw, extra) = var.split_at(n);
        apply_zip64(extra, &mut usize, &mut csize, Some(&mut rel));
        let Some(header_start) = rel.checked_add(offset) else {
            return (out, Some((pos, ArchiveFault::LocalOffsetOverflows {})));
        };
        out.push(Entry {
            name_raw: name_raw.to_vec(),
            name: decode_name(name_raw, flags),
            flags,
            method,
            crc,
            csize,
            usize,
            header_start,
        });
        pos += (CENTRAL_FIXED + n + e + c) as u64;
    }
    (out, None)
}

/// Reads the local header at `at`.
pub(super) fn local_header<R: Read + Seek>(r: &mut R, at: u64, end: u64) -> Result<Local, HeaderError> {
    let fixed = read_at(r, at, LOCAL_FIXED, end)?;
    if fixed[..4] != LOCAL_SIG {
        return Err(HeaderError::NoLocalHeader { at });
    }
    let (n, e) = (le16(&fixed, 26) as usize, le16(&fixed, 28) as usize);
    let var = read_at(r, at + LOCAL_FIXED as u64, n + e, end)?;
    let (name_raw, extra) = var.split_at(n);
    let mut csize = u64::from(le32(&fixed, 18));
    let mut usize = u64::from(le32(&fixed, 22));
    apply_zip64(extra, &mut usize, &mut csize, None);
    Ok(Local {
        name_raw: name_raw.to_vec(),
        flags: le16(&fixed, 6),
        method: le16(&fixed, 8),
        crc: le32(&fixed, 14),
        csize,
        usize,
        data_start: at + (LOCAL_FIXED + n + e) as u64,
    })
}

/// How a local header disagrees with its central entry, if it does.
pub(super) fn disagreements(e: &Entry, l: &Local) -> Vec<Disagreement> {
    let mut out = Vec::new();
    if e.name_raw != l.name_raw {
        out.push(Disagreement::Name { local: decode_name(&l.name_raw, l.flags) });
    }
    if e.method != l.method {
        out.push(Disagreement::Method { central: e.method, local: l.method });
    }
    if (e.flags ^ l.flags) & FLAG_ENCRYPTED != 0 {
        out.push(Disagreement::Encryption {});
    }
    if l.flags & FLAG_DATA_DESCRIPTOR == 0 {
        if e.crc != l.crc {
            out.push(Disagreement::Crc { central: e.crc, local: l.crc });
        }
        if e.csize != l.csize {
            out.push(Disagreement::CompressedSize { central: e.csize, local: l.csize });
        }
        if e.usize != l.usize {
            out.push(Disagreement::Size { central: e.usize, local: l.usize });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip64_extra_fields_replace_marked_sizes() {
        let mut extra = vec![1u8, 0, 16, 0];
        extra.extend_from_slice(&5_000_000_000u64.to_le_bytes());
        extra.extend_from_slice(&42u64.to_le_bytes());
        let (mut u, mut c) = (u64::from(ZIP64_MARK), u64::from(ZIP64_MARK));
        let mut off = 7;
        apply_zip64(&extra, &mut u, &mut c, Some(&mut off));
        assert_eq!((u, c, off), (5_000_000_000, 42, 7));
        // A record cut short changes nothing.
        let (mut u, mut c) = (u64::from(ZIP64_MARK), 3);
        apply_zip64(&extra[..10], &mut u, &mut c, None);
        assert_eq!((u, c), (u64::from(ZIP64_MARK), 3));
    }
}
