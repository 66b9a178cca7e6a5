//! Zip archives: PyTorch checkpoints, `.npz`, `.skops`, model bundles.
//!
//! Every member is sniffed and walked like a file of its own; members that
//! are not pickles (raw storages, `.npy` data, JSON) are read to the end
//! anyway so the zip crate verifies their CRC. Archive-level problems become
//! notes: duplicate names, encrypted members, CRC mismatches, declared sizes
//! past the decompression limits.

use std::io::{self, Read, Seek};

use super::{join, sniff, Format, Walker, SNIFF_BYTES};
use crate::limits::{MAX_ARCHIVE_MEMBERS, MAX_COMPRESSION_RATIO, MAX_CONTAINER_DEPTH, MAX_DECOMPRESSED_BYTES};
use crate::rules::Rule;
use crate::source::Input;

impl Walker {
    pub(super) fn zip<R: Read + Seek>(&mut self, r: R, member: Option<String>, depth: usize) {
        let mut archive = match zip::ZipArchive::new(r) {
            Ok(a) => a,
            Err(e) => {
                self.note(Rule::ContainerError, &member, 0, format!("zip: {e}"));
                return;
            }
        };
        if archive.len() > MAX_ARCHIVE_MEMBERS {
            let msg = format!("{} members, more than MAX_ARCHIVE_MEMBERS ({MAX_ARCHIVE_MEMBERS})", archive.len());
            self.note(Rule::LimitExceeded, &member, 0, msg);
            return;
        }
        let mut seen = std::collections::HashSet::new();
        for i in 0..archive.len() {
            let mut f = match archive.by_index(i) {
                Ok(f) => f,
                Err(e) => {
                    self.note(Rule::ArchiveAnomaly, &member, 0, format!("zip member {i}: {e}"));
                    continue;
                }
            };
            let raw_name = f.name().map(|n| n.to_string()).unwrap_or_else(|_| format!("#{i}"));
            let name = join(&member, &raw_name);
            let header = f.header_start();
            if !seen.insert(raw_name.clone()) {
                self.note(
                    Rule::ArchiveAnomaly,
                    &name,
                    header,
                    "duplicate member name: loaders disagree on which one is read",
                );
            }
            if f.encrypted() {
                self.note(Rule::ArchiveAnomaly, &name, header, "encrypted member cannot be scanned");
                continue;
            }
            if f.is_dir() {
                continue;
            }
            let declared = f.size();
            let ratio_ok = declared / f.compressed_size().max(1) <= MAX_COMPRESSION_RATIO || declared <= 64 << 20;
            if declared > MAX_DECOMPRESSED_BYTES || !ratio_ok {
                let msg = format!("declared size {declared} exceeds the decompression limits");
                self.note(Rule::DecompressionLimit, &name, header, msg);
                continue;
            }
            // Sniff the member, then stream it (or hold it, for a nested zip).
            let mut head = Vec::with_capacity(SNIFF_BYTES);
            if let Err(e) = (&mut f).take(SNIFF_BYTES as u64).read_to_end(&mut head) {
                self.note(Rule::ArchiveAnomaly, &name, header, format!("cannot read member: {e}"));
                continue;
            }
            let fmt = sniff(&head);
            let pickle_name = raw_name.ends_with(".pkl") || raw_name.ends_with(".pickle");
            if fmt == Format::Unknown && !pickle_name {
                self.out.skipped_members.push(name.unwrap_or_default());
                // Read to the end anyway so the CRC is checked.
                if let Err(e) = io::copy(&mut f, &mut io::sink()) {
                    self.note(Rule::ArchiveAnomaly, &join(&member, &raw_name), header, format!("{e}"));
                }
                continue;
            }
            if depth + 1 >= MAX_CONTAINER_DEPTH && fmt != Format::Pickle {
                let msg = format!("nested deeper than MAX_CONTAINER_DEPTH ({MAX_CONTAINER_DEPTH})");
                self.note(Rule::LimitExceeded, &name, header, msg);
                continue;
            }
            let body = io::Cursor::new(head).chain(CrcChecked { inner: &mut f });
            let before = self.out.notes.len();
            self.stream(ReadOnly(body), Some(declared), name.clone(), vec!["zip"], depth + 1);
            let _ = before;
            // Drain what the scan did not read, so the CRC is verified.
            if let Err(e) = io::copy(&mut f, &mut io::sink()) {
                self.note(Rule::ArchiveAnomaly, &name, header, format!("{e}"));
            }
        }
    }
}

/// Passes reads through (the zip crate checks the CRC at the end of a member).
struct CrcChecked<'a, R> {
    inner: &'a mut R,
}

impl<R: Read> Read for CrcChecked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// A reader with the default (read-through) skip.
struct ReadOnly<R>(R);

impl<R: Read> Read for ReadOnly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Input for ReadOnly<R> {}
