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

mod headers;
mod member;

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};

use self::headers::{
    central_entries, decode_name, disagreements, local_header, Entry, Local, FLAG_DATA_DESCRIPTOR, FLAG_ENCRYPTED,
};
use self::member::Reading;
use super::diag::{ArchiveFault, FaultKind, Limit, Unreadable};
use super::readers::Peeked;
use super::torch;
use super::walk::{Layer, Walker};
use crate::limits::{MAX_ARCHIVE_MEMBERS, MAX_ARCHIVE_NOTES_PER_KIND, MAX_NESTED_ARCHIVE_BYTES};
use crate::pickle::source::Input;

/// Caps how many notes of one kind one archive gives; the rest are counted.
#[derive(Default)]
struct Budget {
    used: [usize; FaultKind::ALL.len()],
}

impl Budget {
    fn take(&mut self, kind: FaultKind) -> bool {
        let n = &mut self.used[kind as usize];
        *n += 1;
        *n <= MAX_ARCHIVE_NOTES_PER_KIND
    }
    fn overflow(&self) -> impl Iterator<Item = (FaultKind, usize)> + '_ {
        FaultKind::ALL.into_iter().map(|k| (k, self.used[k as usize])).filter(|(_, n)| *n > MAX_ARCHIVE_NOTES_PER_KIND)
    }
}

/// One zip archive being walked: the walker, the archive, its layer and
/// what every member needs to know of the archive.
struct Archive<'w, 'l, R> {
    w: &'w mut Walker,
    r: R,
    /// The archive's own layer.
    at: &'l Layer,
    /// Length of the archive.
    end: u64,
    /// Where the central directory starts.
    dir_start: u64,
    budget: Budget,
}

/// The archive at offset 0 of its reader, for when the zip crate's offset
/// detection fails: zip 9.4 takes the central directory to end right before
/// the end record, so when ZIP64 records (76 bytes, which torch writes) sit
/// between them and the first directory entry is also 76 bytes long (a
/// torch checkpoint whose archive name has 21 characters), it starts one
/// entry late and refuses the archive. Python's zipfile and torch read it.
pub(crate) const AT_ZERO: ::zip::read::Config =
    ::zip::read::Config { archive_offset: ::zip::read::ArchiveOffset::Known(0) };

/// Where the zip crate finds the archive in a reader, and the
/// configuration that found it.
struct Located {
    config: ::zip::read::Config,
    /// Bytes before the archive.
    offset: u64,
    /// Where the central directory starts.
    dir_start: u64,
    /// Entries the crate keeps (one per name).
    len: usize,
}

/// Opens the archive in `r` with the crate's detection (archives behind
/// other data), else at offset 0 ([`AT_ZERO`]); the error is detection's.
fn locate<R: Read + Seek>(r: &mut R) -> ::zip::result::ZipResult<Located> {
    let found = |config, a: ::zip::ZipArchive<&mut R>| Located {
        config,
        offset: a.offset(),
        dir_start: a.central_directory_start(),
        len: a.len(),
    };
    let detected = match ::zip::ZipArchive::new(&mut *r) {
        Ok(a) => return Ok(found(::zip::read::Config::default(), a)),
        Err(e) => e,
    };
    ::zip::ZipArchive::with_config(AT_ZERO, &mut *r).map(|a| found(AT_ZERO, a)).map_err(|_| detected)
}

/// The configuration that opens the archive in `r` ([`locate`]; the
/// default when nothing does, so that opening reports detection's error).
pub(crate) fn config_for<R: Read + Seek>(r: &mut R) -> ::zip::read::Config {
    locate(r).map(|l| l.config).unwrap_or_default()
}

/// Walks the zip archive of layer `at` (the file, or a member held in memory).
pub(super) fn walk<R: Read + Seek>(w: &mut Walker, mut r: R, at: &Layer) {
    let end = match r.seek(SeekFrom::End(0)) {
        Ok(n) => n,
        Err(e) => return w.note(&at.member, 0, Unreadable::Zip { error: e.to_string() }),
    };
    let Located { config, offset, dir_start, len: crate_len } = match locate(&mut r) {
        Ok(found) => found,
        Err(e) => return w.note(&at.member, 0, Unreadable::Zip { error: e.to_string() }),
    };
    let (entries, cut) = central_entries(&mut r, dir_start, offset, end);
    if entries.len() > MAX_ARCHIVE_MEMBERS {
        return w.note(&at.member, dir_start, Limit::ZipMembers {});
    }
    if let Some((pos, fault)) = cut {
        w.note(&at.member, pos, fault);
    }
    let mut z = Archive { w, r, at, end, dir_start, budget: Budget::default() };
    z.duplicates(&entries, crate_len);
    let locals = z.local_headers(&entries);
    z.overlaps(&entries, &locals);
    // A PyTorch checkpoint: storage references checked, storage records not sniffed (torch::zip).
    let records = entries.iter().map(|e| (e.name.as_str(), e.usize, e.header_start));
    let torch = torch::zip::begin(z.w, &mut z.r, config, records, &at.member);
    z.members(&entries, &locals);
    for (kind, count) in z.budget.overflow() {
        z.w.note(&at.member, dir_start, ArchiveFault::TooMany { count, kind });
    }
    torch::zip::end(z.w, torch, &at.member);
}

/// A zip archive met in a stream (layer `at`): it needs random access, so
/// it is held in memory if it is small enough.
pub(super) fn walk_stream<R: Input>(w: &mut Walker, p: Peeked<R>, at: &Layer) {
    let mut buf = Vec::new();
    let limit = MAX_NESTED_ARCHIVE_BYTES as u64;
    match p.take(limit + 1).read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 <= limit => walk(w, io::Cursor::new(buf), at),
        Ok(_) => w.note(&at.member, 0, Limit::NestedZip { limit }),
        Err(e) => w.note(&at.member, 0, Unreadable::ReadError { error: e.to_string() }),
    }
}

impl<R: Read + Seek> Archive<'_, '_, R> {
    /// Reports names the central directory repeats (every copy is
    /// scanned), and a member count the end record disagrees with.
    fn duplicates(&mut self, entries: &[Entry], crate_len: usize) {
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
            let fault = ArchiveFault::NameCount { distinct: first.len(), listed: crate_len };
            self.w.note(&self.at.member, self.dir_start, fault);
        }
        for (entry, first) in dups {
            if self.budget.take(FaultKind::Duplicate) {
                let e = &entries[entry];
                self.w.note(&self.at.join(&e.name), e.header_start, ArchiveFault::Duplicate { entry, first });
            }
        }
    }

    /// Reads every entry's local header, reporting those that cannot be
    /// read or that disagree with the central directory.
    fn local_headers(&mut self, entries: &[Entry]) -> Vec<Option<Local>> {
        let mut locals = Vec::with_capacity(entries.len());
        for e in entries {
            let name = self.at.join(&e.name);
            match local_header(&mut self.r, e.header_start, self.end) {
                Ok(l) => {
                    let diffs = disagreements(e, &l);
                    if !diffs.is_empty() && self.budget.take(FaultKind::Header) {
                        self.w.note(&name, e.header_start, ArchiveFault::HeadersDisagree { diffs });
                    }
                    locals.push(Some(l));
                }
                Err(error) => {
                    if self.budget.take(FaultKind::Local) {
                        self.w.note(&name, e.header_start, ArchiveFault::UnreadableMember { error });
                    }
                    locals.push(None);
                }
            }
        }
        locals
    }

    /// Entries whose bytes (local header and data) overlap another's, or
    /// run into the central directory.
    fn overlaps(&mut self, entries: &[Entry], locals: &[Option<Local>]) {
        let dir_start = self.dir_start;
        let mut ranges: Vec<(u64, u64, usize)> = entries
            .iter()
            .zip(locals)
            .enumerate()
            .filter_map(|(i, (e, l))| l.as_ref().map(|l| (e.header_start, l.data_start.saturating_add(e.csize), i)))
            .collect();
        ranges.sort_unstable();
        let mut reach: Option<(u64, usize)> = None;
        for &(start, stop, i) in &ranges {
            let name = self.at.join(&entries[i].name);
            if let Some((end, j)) = reach {
                if start < end && self.budget.take(FaultKind::Overlap) {
                    let fault = ArchiveFault::Overlap { start, stop, other: entries[j].name.clone() };
                    self.w.note(&name, start, fault);
                }
            }
            if stop > dir_start && start < dir_start && self.budget.take(FaultKind::Overlap) {
                self.w.note(&name, start, ArchiveFault::IntoCentralDirectory { dir_start });
            }
            if reach.is_none_or(|(end, _)| stop > end) {
                reach = Some((stop, i));
            }
        }
    }

    /// Scans every member with a readable local header: as Python's
    /// `zipfile` reads it and, where a streaming reader would read it
    /// otherwise, that way too.
    fn members(&mut self, entries: &[Entry], locals: &[Option<Local>]) {
        for (e, l) in entries.iter().zip(locals) {
            let Some(l) = l else { continue };
            if e.flags & FLAG_ENCRYPTED != 0 || l.flags & FLAG_ENCRYPTED != 0 {
                self.w.note(&self.at.join(&e.name), e.header_start, ArchiveFault::Encrypted {});
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
            self.member(e, central, &self.at.zip_entry(&e.name));
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
                let name = format!("{} (local header)", decode_name(&l.name_raw, l.flags));
                self.member(e, local, &self.at.zip_entry(&name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::Walked;
    use crate::rules::{container_rule, Rule};

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
        super::walk(&mut w, io::Cursor::new(zip), &Layer::file(None));
        w.finish()
    }

    fn notes(w: &Walked, rule: Rule) -> Vec<(Option<&str>, String)> {
        let of_rule = w.notes.iter().filter(|n| container_rule(&n.problem) == rule);
        of_rule.map(|n| (n.member.as_deref(), n.problem.to_string())).collect()
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
        assert_eq!(
            n,
            vec![(Some("a.pkl"), "compression method 77 is not supported: the member was not scanned".into())]
        );
        assert_eq!(imports(&w, "b.pkl"), 1);
    }
}
