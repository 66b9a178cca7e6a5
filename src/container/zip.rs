//! Zip archives: PyTorch checkpoints, `.npz`, `.skops`, model bundles.
//!
//! The zip crate finds the end record and the central directory (ZIP64,
//! prepended data); everything after that is read here, from the bytes,
//! because readers disagree on inconsistent archives and a scanner has to see
//! what each of them would load:
//!
//! - **Every central-directory entry** is walked, duplicates included (the
//!   zip crate keeps only the last of two same-named entries; Python's
//!   `zipfile` lists both and opens the last, other readers the first).
//! - Each entry's **local header** is read and compared with its central
//!   entry (name, method, CRC, sizes). Python's `zipfile` reads data where the
//!   central directory says; streaming readers go by the local header. When
//!   the two disagree on how to find the data, both readings are scanned.
//! - Entries whose bytes **overlap** (a non-recursive zip bomb, or a member
//!   hidden inside another) are reported.
//! - Member data is decompressed here (stored, deflate, bzip2, LZMA) with the
//!   walker's bomb limits, **not cut at the declared size**, and its CRC and
//!   size are checked at the end. A bad CRC or a size that disagrees with the
//!   central directory is a finding; the member's content is still scanned,
//!   as loaders that do not check (or check only at the end) would run it.
//!
//! Every member is sniffed and walked like a file of its own; members that
//! are not pickles (raw storages, `.npy` data, JSON) are read to the end
//! anyway so their CRC is checked. Nothing here ever stops the scan of the
//! other members: each problem becomes a [`super::Note`] naming the member and
//! the offset of its local header.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};

use super::{join, pickle_name, sniff, ByRef, CountIn, Format, LimitHit, Limited, Walker, SNIFF_BYTES};
use crate::limits::{
    MAX_ARCHIVE_MEMBERS, MAX_ARCHIVE_NOTES_PER_KIND, MAX_COMPRESSION_RATIO, MAX_CONTAINER_DEPTH,
    MAX_DECOMPRESSED_BYTES, MAX_LZMA_MEMORY_KIB,
};
use crate::pickle::source::Input;
use crate::rules::Rule;

const LOCAL_SIG: [u8; 4] = *b"PK\x03\x04";
const CENTRAL_SIG: [u8; 4] = *b"PK\x01\x02";
/// Fixed part of a central directory header.
const CENTRAL_FIXED: usize = 46;
/// Fixed part of a local file header.
const LOCAL_FIXED: usize = 30;
/// General-purpose flag bits (APPNOTE 4.4.4).
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
/// A 32-bit field that says "see the ZIP64 extra field".
const ZIP64_MARK: u32 = 0xFFFF_FFFF;

/// One central directory entry, as written.
#[derive(Debug, Clone)]
struct Entry {
    name_raw: Vec<u8>,
    name: String,
    flags: u16,
    method: u16,
    crc: u32,
    csize: u64,
    usize: u64,
    /// Absolute offset of the local header (archive offset applied).
    header_start: u64,
}

/// One local file header, as written.
#[derive(Debug, Clone)]
struct Local {
    name_raw: Vec<u8>,
    flags: u16,
    method: u16,
    crc: u32,
    csize: u64,
    usize: u64,
    /// Offset of the member's data (just past the local header).
    data_start: u64,
}

/// How to read one member's bytes.
#[derive(Debug, Clone, Copy)]
struct Reading {
    method: u16,
    data_start: u64,
    csize: u64,
    usize: u64,
    crc: u32,
    /// `usize`/`crc` are checked (false for a local header with a data descriptor).
    checked: bool,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads `n` bytes at `pos`, failing if fewer remain before `end`.
fn read_at<R: Read + Seek>(r: &mut R, pos: u64, n: usize, end: u64) -> Result<Vec<u8>, String> {
    if pos.checked_add(n as u64).is_none_or(|e| e > end) {
        return Err(format!("{n} bytes at offset {pos} run past the end of the archive ({end} bytes)"));
    }
    r.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
    // n is at most a fixed header or a u16-sized field, and fits before `end`.
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).map_err(|e| e.to_string())?;
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
fn decode_name(raw: &[u8], flags: u16) -> String {
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
fn central_entries<R: Read + Seek>(
    r: &mut R,
    dir_start: u64,
    offset: u64,
    end: u64,
) -> (Vec<Entry>, Option<(u64, String)>) {
    let mut out = Vec::new();
    let mut pos = dir_start;
    while pos.saturating_add(4) <= end && out.len() <= MAX_ARCHIVE_MEMBERS {
        match read_at(r, pos, 4, end) {
            Ok(sig) if sig[..] == CENTRAL_SIG => {}
            _ => break,
        }
        let fixed = match read_at(r, pos, CENTRAL_FIXED, end) {
            Ok(b) => b,
            Err(e) => return (out, Some((pos, format!("central directory entry cut short: {e}")))),
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
            Err(err) => return (out, Some((pos, format!("central directory entry cut short: {err}")))),
        };
        let (name_raw, extra) = var.split_at(n);
        apply_zip64(extra, &mut usize, &mut csize, Some(&mut rel));
        let Some(header_start) = rel.checked_add(offset) else {
            return (out, Some((pos, "local header offset overflows".into())));
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
fn local_header<R: Read + Seek>(r: &mut R, at: u64, end: u64) -> Result<Local, String> {
    let fixed = read_at(r, at, LOCAL_FIXED, end)?;
    if fixed[..4] != LOCAL_SIG {
        return Err(format!("no local file header at offset {at}"));
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
fn disagreements(e: &Entry, l: &Local) -> Vec<String> {
    let mut out = Vec::new();
    if e.name_raw != l.name_raw {
        out.push(format!("name {:?} in the local header", decode_name(&l.name_raw, l.flags)));
    }
    if e.method != l.method {
        out.push(format!("compression method {} (central) vs {} (local)", e.method, l.method));
    }
    if (e.flags ^ l.flags) & FLAG_ENCRYPTED != 0 {
        out.push("encryption flag differs".into());
    }
    if l.flags & FLAG_DATA_DESCRIPTOR == 0 {
        if e.crc != l.crc {
            out.push(format!("CRC {:08x} (central) vs {:08x} (local)", e.crc, l.crc));
        }
        if e.csize != l.csize {
            out.push(format!("compressed size {} (central) vs {} (local)", e.csize, l.csize));
        }
        if e.usize != l.usize {
            out.push(format!("size {} (central) vs {} (local)", e.usize, l.usize));
        }
    }
    out
}

/// Caps how many notes of one kind one archive gives; the rest are counted.
#[derive(Default)]
struct Budget {
    used: HashMap<&'static str, usize>,
}

impl Budget {
    fn take(&mut self, kind: &'static str) -> bool {
        let n = self.used.entry(kind).or_insert(0);
        *n += 1;
        *n <= MAX_ARCHIVE_NOTES_PER_KIND
    }
    fn overflow(&self) -> impl Iterator<Item = (&'static str, usize)> + '_ {
        self.used.iter().filter(|(_, n)| **n > MAX_ARCHIVE_NOTES_PER_KIND).map(|(k, n)| (*k, *n))
    }
}

/// Member bytes on their way out: CRC-32 and length of what was produced,
/// and the first error (a corrupt stream, a decompression limit).
struct Checked<R> {
    inner: R,
    crc: flate2::Crc,
    len: u64,
    error: Option<(bool, String)>,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.crc.update(&buf[..n]);
                self.len += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                if self.error.is_none() {
                    let limit = e.get_ref().is_some_and(|i| i.is::<LimitHit>());
                    self.error = Some((limit, e.to_string()));
                }
                Err(e)
            }
        }
    }
}

impl<R: Read> Input for Checked<R> {}

/// A reader with the default (read-through) skip.
struct ReadOnly<R>(R);

impl<R: Read> Read for ReadOnly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Input for ReadOnly<R> {}

/// The decoder for a zip compression method, or why there is none.
fn decoder<'a, R: Read + 'a>(method: u16, raw: R, usize: u64, flags: u16) -> Result<Box<dyn Read + 'a>, String> {
    Ok(match method {
        0 => Box::new(raw),
        8 => Box::new(flate2::read::DeflateDecoder::new(raw)),
        12 => Box::new(bzip2::read::BzDecoder::new(raw)),
        14 => {
            // APPNOTE 5.8.8: version (2), properties size (2), properties, raw LZMA.
            let mut raw = raw;
            let mut head = [0u8; 4];
            raw.read_exact(&mut head).map_err(|e| format!("LZMA header: {e}"))?;
            let props_len = le16(&head, 2) as usize;
            if props_len != 5 {
                return Err(format!("LZMA properties of {props_len} bytes (5 expected)"));
            }
            let mut props = [0u8; 5];
            raw.read_exact(&mut props).map_err(|e| format!("LZMA properties: {e}"))?;
            let dict = le32(&props, 1);
            let need = lzma_rust2::lzma_get_memory_usage_by_props(dict, props[0]).map_err(|e| e.to_string())?;
            if need > MAX_LZMA_MEMORY_KIB {
                return Err(format!("LZMA needs {need} KiB, more than MAX_LZMA_MEMORY_KIB ({MAX_LZMA_MEMORY_KIB})"));
            }
            // Flag bit 1: an end marker ends the stream; else the declared size does.
            let size = if flags & 2 != 0 { u64::MAX } else { usize };
            let dec = lzma_rust2::LzmaReader::new_with_props(raw, size, props[0], dict, None)
                .map_err(|e| format!("LZMA: {e}"))?;
            Box::new(dec)
        }
        m => return Err(format!("compression method {m} is not supported: the member was not scanned")),
    })
}

impl Walker {
    /// Walks a zip archive held in a seekable reader. `depth` counts the
    /// containers around it.
    pub(super) fn zip<R: Read + Seek>(&mut self, mut r: R, member: Option<String>, depth: usize) {
        let end = match r.seek(SeekFrom::End(0)) {
            Ok(n) => n,
            Err(e) => {
                self.note(Rule::ContainerError, &member, 0, format!("zip: {e}"));
                return;
            }
        };
        let (offset, dir_start, crate_len) = match zip::ZipArchive::new(&mut r) {
            Ok(a) => (a.offset(), a.central_directory_start(), a.len()),
            Err(e) => {
                self.note(Rule::ContainerError, &member, 0, format!("zip: {e}"));
                return;
            }
        };
        let (entries, cut) = central_entries(&mut r, dir_start, offset, end);
        if entries.len() > MAX_ARCHIVE_MEMBERS {
            let msg = format!("more than MAX_ARCHIVE_MEMBERS ({MAX_ARCHIVE_MEMBERS}) members");
            self.note(Rule::LimitExceeded, &member, dir_start, msg);
            return;
        }
        if let Some((at, why)) = cut {
            self.note(Rule::ArchiveAnomaly, &member, at, why);
        }
        let mut budget = Budget::default();
        // Duplicate names: every copy is scanned.
        let mut first: HashMap<&[u8], usize> = HashMap::new();
        let mut dups = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if let Some(&j) = first.get(&e.name_raw[..]) {
                dups.push((i, j));
            } else {
                first.insert(&e.name_raw, i);
            }
        }
        if first.len() != crate_len {
            let msg = format!(
                "the central directory holds {} distinct names where the end record leads readers to {crate_len}",
                first.len()
            );
            self.note(Rule::ArchiveAnomaly, &member, dir_start, msg);
        }
        for (i, j) in dups {
            if budget.take("duplicate") {
                let e = &entries[i];
                let msg = format!(
                    "duplicate member name (entry {} repeats entry {}): readers disagree on which one is loaded; both are scanned",
                    i, j
                );
                self.note(Rule::ArchiveAnomaly, &join(&member, &e.name), e.header_start, msg);
            }
        }
        // Local headers.
        let mut locals: Vec<Option<Local>> = Vec::with_capacity(entries.len());
        for e in &entries {
            let name = join(&member, &e.name);
            match local_header(&mut r, e.header_start, end) {
                Ok(l) => {
                    let diff = disagreements(e, &l);
                    if !diff.is_empty() && budget.take("header") {
                        let msg = format!("local header disagrees with the central directory: {}", diff.join("; "));
                        self.note(Rule::ArchiveAnomaly, &name, e.header_start, msg);
                    }
                    locals.push(Some(l));
                }
                Err(why) => {
                    if budget.take("local") {
                        self.note(Rule::ArchiveAnomaly, &name, e.header_start, format!("unreadable member: {why}"));
                    }
                    locals.push(None);
                }
            }
        }
        self.overlaps(&entries, &locals, dir_start, &member, &mut budget);
        // A PyTorch checkpoint: storage references checked, storage records not sniffed (torch.rs).
        let torch =
            self.torch_zip_begin(&mut r, entries.iter().map(|e| (e.name.as_str(), e.usize, e.header_start)), &member);
        for (e, l) in entries.iter().zip(&locals) {
            let Some(l) = l else { continue };
            let name = join(&member, &e.name);
            if e.flags & FLAG_ENCRYPTED != 0 || l.flags & FLAG_ENCRYPTED != 0 {
                self.note(Rule::ArchiveAnomaly, &name, e.header_start, "encrypted member cannot be scanned");
                continue;
            }
            if e.name.ends_with('/') && e.csize == 0 && e.usize == 0 {
                continue;
            }
            // What Python's zipfile reads: central sizes and method, data after the local header.
            let central = Reading {
                method: e.method,
                data_start: l.data_start,
                csize: e.csize,
                usize: e.usize,
                crc: e.crc,
                checked: true,
            };
            self.zip_member(&mut r, e, central, name.clone(), depth, end, &mut budget);
            // What a streaming reader reads, when it differs in where the data ends or how it decodes.
            let streaming = l.flags & FLAG_DATA_DESCRIPTOR == 0 && (l.csize != e.csize || l.method != e.method);
            if streaming {
                let local = Reading {
                    method: l.method,
                    data_start: l.data_start,
                    csize: l.csize,
                    usize: l.usize,
                    crc: l.crc,
                    checked: true,
                };
                let local_name = join(&member, &format!("{} (local header)", decode_name(&l.name_raw, l.flags)));
                self.zip_member(&mut r, e, local, local_name, depth, end, &mut budget);
            }
        }
        for (kind, n) in budget.overflow().collect::<Vec<_>>() {
            let msg = format!(
                "{} {kind} anomalies in this archive; the first MAX_ARCHIVE_NOTES_PER_KIND ({MAX_ARCHIVE_NOTES_PER_KIND}) are listed",
                n
            );
            self.note(Rule::ArchiveAnomaly, &member, dir_start, msg);
        }
        self.torch_zip_end(torch, &member);
    }

    /// Entries whose bytes (local header and data) overlap another's, or
    /// run into the central directory.
    fn overlaps(
        &mut self,
        entries: &[Entry],
        locals: &[Option<Local>],
        dir_start: u64,
        member: &Option<String>,
        budget: &mut Budget,
    ) {
        let mut ranges: Vec<(u64, u64, usize)> = entries
            .iter()
            .zip(locals)
            .enumerate()
            .filter_map(|(i, (e, l))| l.as_ref().map(|l| (e.header_start, l.data_start.saturating_add(e.csize), i)))
            .collect();
        ranges.sort_unstable();
        let mut reach: Option<(u64, usize)> = None;
        for &(start, stop, i) in &ranges {
            let e = &entries[i];
            let name = join(member, &e.name);
            if let Some((end, j)) = reach {
                if start < end && budget.take("overlap") {
                    let msg = format!(
                        "member bytes {start}..{stop} overlap those of {:?}: entries sharing data (a zip bomb) or a member hidden inside another",
                        entries[j].name
                    );
                    self.note(Rule::ArchiveAnomaly, &name, start, msg);
                }
            }
            if stop > dir_start && start < dir_start && budget.take("overlap") {
                let msg = format!("member data runs into the central directory at offset {dir_start}");
                self.note(Rule::ArchiveAnomaly, &name, start, msg);
            }
            if reach.is_none_or(|(end, _)| stop > end) {
                reach = Some((stop, i));
            }
        }
    }

    /// Scans one member read as `how` says, then checks its CRC and size.
    #[allow(clippy::too_many_arguments)]
    fn zip_member<R: Read + Seek>(
        &mut self,
        r: &mut R,
        e: &Entry,
        how: Reading,
        name: Option<String>,
        depth: usize,
        end: u64,
        budget: &mut Budget,
    ) {
        let header = e.header_start;
        let declared = how.usize;
        let ratio_ok = declared / how.csize.max(1) <= MAX_COMPRESSION_RATIO || declared <= 64 << 20;
        if declared > MAX_DECOMPRESSED_BYTES || !ratio_ok {
            let msg =
                format!("declared size {declared} for {} compressed bytes exceeds the decompression limits", how.csize);
            self.note(Rule::DecompressionLimit, &name, header, msg);
            return;
        }
        let available = end.saturating_sub(how.data_start);
        if how.csize > available {
            let msg = format!(
                "declared compressed size {} runs past the end of the archive ({available} bytes remain); what is there is scanned",
                how.csize
            );
            self.note(Rule::ArchiveAnomaly, &name, header, msg);
        }
        if let Err(err) = r.seek(SeekFrom::Start(how.data_start)) {
            self.note(Rule::ArchiveAnomaly, &name, header, format!("unreadable member: {err}"));
            return;
        }
        let count = std::rc::Rc::new(std::cell::Cell::new(0));
        let raw = CountIn { inner: ByRef(&mut *r).take(how.csize.min(available)), count: count.clone() };
        let dec = match decoder(how.method, raw, how.usize, e.flags) {
            Ok(d) => d,
            Err(why) => {
                self.note(Rule::ContainerError, &name, header, why);
                return;
            }
        };
        let mut body =
            Checked { inner: Limited::new(dec, count.clone()), crc: flate2::Crc::new(), len: 0, error: None };
        let notes_before = self.out.notes.len();
        let parts_before = self.out.parts.len();
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        let head_ok = (&mut body).take(SNIFF_BYTES as u64).read_to_end(&mut head).is_ok();
        let fmt = sniff(&head);
        let pickle_name = pickle_name(&e.name);
        if !head_ok {
            // Reported below from body.error.
        } else if (fmt == Format::Unknown && !pickle_name) || self.torch_raw(&name) {
            self.out.skipped_members.push(name.clone().unwrap_or_default());
        } else if depth + 1 >= MAX_CONTAINER_DEPTH && fmt != Format::Pickle {
            let msg = format!("{} nested deeper than MAX_CONTAINER_DEPTH ({MAX_CONTAINER_DEPTH})", fmt.name());
            self.note(Rule::LimitExceeded, &name, header, msg);
        } else {
            // Stored data has exactly the bytes read; a compressed member's size is only declared.
            let total = (how.method == 0).then_some(how.csize.min(available));
            let src = ReadOnly(io::Cursor::new(head).chain(ByRef(&mut body)));
            self.stream(src, total, name.clone(), vec!["zip"], depth + 1);
        }
        // Read what the scan left, so the CRC and size cover the whole member.
        let _ = io::copy(&mut body, &mut io::sink());
        let noted = |w: &Walker, rule: Rule| w.out.notes[notes_before..].iter().any(|n| n.rule == rule);
        if body.error.is_some() {
            // The member's decoder failed: reported once, as the container's problem.
            for part in &mut self.out.parts[parts_before..] {
                if matches!(part.analysis.error.as_ref().map(|e| e.kind()), Some(crate::ErrorKind::Io(_))) {
                    part.analysis.error = None;
                }
            }
        }
        match &body.error {
            Some((true, msg)) if !noted(self, Rule::DecompressionLimit) => {
                self.note(Rule::DecompressionLimit, &name, header, msg.clone());
            }
            Some((false, msg)) if !noted(self, Rule::ContainerError) => {
                let at = how.data_start + count.get();
                let msg = format!("cannot decompress member (near offset {at}): {msg}");
                self.note(Rule::ContainerError, &name, header, msg);
            }
            Some(_) => {}
            None if how.checked => {
                let crc = body.crc.sum();
                if body.len != how.usize {
                    if budget.take("size") {
                        let msg = format!(
                            "the central directory declares {} bytes, the data holds {} (CRC {crc:08x}, declared {:08x}); all of it was scanned",
                            how.usize, body.len, how.crc
                        );
                        self.note(Rule::ArchiveAnomaly, &name, header, msg);
                    }
                } else if crc != how.crc && budget.take("crc") {
                    let msg = format!(
                        "CRC mismatch: the data has CRC {crc:08x}, the archive declares {:08x}; the content was scanned anyway",
                        how.crc
                    );
                    self.note(Rule::ArchiveAnomaly, &name, header, msg);
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::Walked;

    /// One member for [`build`]: name, data (stored), and overrides.
    #[derive(Default, Clone)]
    struct M {
        name: &'static str,
        data: Vec<u8>,
        method: u16,
        crc: Option<u32>,
        local_name: Option<&'static str>,
        /// Central entry points at the local header of this earlier member.
        same_as: Option<usize>,
    }

    fn crc(data: &[u8]) -> u32 {
        let mut c = flate2::Crc::new();
        c.update(data);
        c.sum()
    }

    /// A zip written field by field (APPNOTE 4.3.7, 4.3.12, 4.3.16).
    fn build(members: &[M]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        let mut offsets = Vec::new();
        for m in members {
            let here = match m.same_as {
                Some(i) => offsets[i],
                None => {
                    let here = out.len() as u32;
                    let lname = m.local_name.unwrap_or(m.name).as_bytes();
                    out.extend_from_slice(b"PK\x03\x04");
                    for v in [20u16, 0, m.method, 0, 0x21] {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                    for v in [m.crc.unwrap_or_else(|| crc(&m.data)), m.data.len() as u32, m.data.len() as u32] {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                    out.extend_from_slice(&(lname.len() as u16).to_le_bytes());
                    out.extend_from_slice(&0u16.to_le_bytes());
                    out.extend_from_slice(lname);
                    out.extend_from_slice(&m.data);
                    here
                }
            };
            offsets.push(here);
            central.extend_from_slice(b"PK\x01\x02");
            for v in [20u16, 20, 0, m.method, 0, 0x21] {
                central.extend_from_slice(&v.to_le_bytes());
            }
            for v in [m.crc.unwrap_or_else(|| crc(&m.data)), m.data.len() as u32, m.data.len() as u32] {
                central.extend_from_slice(&v.to_le_bytes());
            }
            for v in [m.name.len() as u16, 0, 0, 0, 0] {
                central.extend_from_slice(&v.to_le_bytes());
            }
            central.extend_from_slice(&0u32.to_le_bytes());
            central.extend_from_slice(&here.to_le_bytes());
            central.extend_from_slice(m.name.as_bytes());
        }
        let cd_at = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        let n = members.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_at.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn walk(zip: Vec<u8>) -> Walked {
        let mut w = Walker::new();
        w.zip(io::Cursor::new(zip), None, 0);
        w.finish()
    }

    fn notes(w: &Walked, rule: Rule) -> Vec<(Option<&str>, &str)> {
        w.notes.iter().filter(|n| n.rule == rule).map(|n| (n.member.as_deref(), n.message.as_str())).collect()
    }

    const EVIL: &[u8] = b"cos\nsystem\n(S'echo hi'\ntR.";
    const OK: &[u8] = b"\x80\x04K\x01.";

    fn imports(w: &Walked, member: &str) -> usize {
        w.parts
            .iter()
            .filter(|p| p.member.as_deref() == Some(member))
            .flat_map(|p| &p.analysis.events)
            .filter(|e| matches!(e.kind, crate::vm::EventKind::Import { .. }))
            .count()
    }

    #[test]
    fn a_consistent_archive_has_no_notes() {
        let w = walk(build(&[M { name: "a.pkl", data: OK.to_vec(), ..M::default() }]));
        assert!(w.notes.is_empty(), "{:?}", w.notes);
        assert_eq!(w.parts.len(), 1);
    }

    #[test]
    fn every_copy_of_a_duplicate_name_is_scanned() {
        let evil = M { name: "a.pkl", data: EVIL.to_vec(), ..M::default() };
        let w = walk(build(&[evil, M { name: "a.pkl", data: OK.to_vec(), ..M::default() }]));
        assert_eq!(w.parts.len(), 2);
        assert_eq!(imports(&w, "a.pkl"), 1, "the first (hidden to the zip crate) copy is read");
        assert!(notes(&w, Rule::ArchiveAnomaly)[0].1.starts_with("duplicate member name"));
    }

    #[test]
    fn a_bad_crc_is_noted_after_the_content_is_scanned() {
        let w = walk(build(&[M { name: "a.pkl", data: EVIL.to_vec(), crc: Some(1), ..M::default() }]));
        assert_eq!(imports(&w, "a.pkl"), 1);
        let n = notes(&w, Rule::ArchiveAnomaly);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].0, Some("a.pkl"));
        assert!(n[0].1.starts_with("CRC mismatch"), "{n:?}");
    }

    #[test]
    fn local_and_central_names_must_agree() {
        let w = walk(build(&[M { name: "a.pkl", local_name: Some("b.pkl"), data: OK.to_vec(), ..M::default() }]));
        let n = notes(&w, Rule::ArchiveAnomaly);
        assert!(n.iter().any(|(_, m)| m.contains("local header disagrees") && m.contains("b.pkl")), "{n:?}");
    }

    #[test]
    fn entries_sharing_bytes_overlap() {
        let a = M { name: "a.pkl", data: OK.to_vec(), ..M::default() };
        let b = M { name: "b.pkl", local_name: Some("a.pkl"), same_as: Some(0), ..a.clone() };
        let w = walk(build(&[a, b]));
        let n = notes(&w, Rule::ArchiveAnomaly);
        assert!(n.iter().any(|(_, msg)| msg.contains("overlap")), "{n:?}");
        assert_eq!(w.parts.len(), 2, "both entries are scanned");
    }

    #[test]
    fn an_unsupported_method_names_the_member_and_the_next_is_scanned() {
        let odd = M { name: "a.pkl", data: OK.to_vec(), method: 77, ..M::default() };
        let w = walk(build(&[odd, M { name: "b.pkl", data: EVIL.to_vec(), ..M::default() }]));
        let n = notes(&w, Rule::ContainerError);
        assert_eq!(n, vec![(Some("a.pkl"), "compression method 77 is not supported: the member was not scanned")]);
        assert_eq!(imports(&w, "b.pkl"), 1);
    }

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
