//! One zip member read: decompressed by its method with the walker's bomb
//! limits, not cut at the declared size, sniffed and walked as a layer of
//! its own, then read to the end so its CRC and size are checked.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

use super::headers::{io_error, le16, le32, Entry};
use super::{Archive, FaultKind};
use crate::container::diag::{ArchiveFault, Bomb, Limit, Problem, Unreadable};
use crate::container::format::{pickle_name, sniff, Format, SNIFF_BYTES};
use crate::container::readers::{ByRef, CountIn, LimitHit, Limited};
use crate::container::walk::Layer;
use crate::limits::{MAX_COMPRESSION_RATIO, MAX_CONTAINER_DEPTH, MAX_DECOMPRESSED_BYTES, MAX_LZMA_MEMORY_KIB};
use crate::pickle::source::Input;

/// How to read one member's bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reading {
    pub(super) method: u16,
    pub(super) data_start: u64,
    pub(super) csize: u64,
    pub(super) usize: u64,
    pub(super) crc: u32,
    /// `usize`/`crc` are checked (false for a local header with a data descriptor).
    pub(super) checked: bool,
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
                    self.error = Some((LimitHit::is(&e), e.to_string()));
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

/// What reading a member to its end gave: its first error (a limit
/// reached, and the message), or its CRC-32 and length.
struct Outcome {
    error: Option<(bool, String)>,
    crc: u32,
    len: u64,
    /// Compressed bytes pulled.
    pulled: u64,
}

/// The decoder for a zip compression method, or why there is none.
fn decoder<'a, R: Read + 'a>(method: u16, raw: R, usize: u64, flags: u16) -> Result<Box<dyn Read + 'a>, Unreadable> {
    Ok(match method {
        0 => Box::new(raw),
        8 => Box::new(flate2::read::DeflateDecoder::new(raw)),
        12 => Box::new(bzip2::read::BzDecoder::new(raw)),
        14 => lzma(raw, usize, flags)?,
        method => return Err(Unreadable::UnsupportedMethod { method }),
    })
}

/// APPNOTE 5.8.8: version (2), properties size (2), properties, raw LZMA.
fn lzma<'a, R: Read + 'a>(mut raw: R, usize: u64, flags: u16) -> Result<Box<dyn Read + 'a>, Unreadable> {
    let mut head = [0u8; 4];
    raw.read_exact(&mut head).map_err(|e| Unreadable::ZipLzmaHeader { error: e.to_string() })?;
    let len = le16(&head, 2) as usize;
    if len != 5 {
        return Err(Unreadable::ZipLzmaPropsSize { len });
    }
    let mut props = [0u8; 5];
    raw.read_exact(&mut props).map_err(|e| Unreadable::ZipLzmaProps { error: e.to_string() })?;
    let dict = le32(&props, 1);
    let need_kib = lzma_rust2::lzma_get_memory_usage_by_props(dict, props[0])
        .map_err(|e| Unreadable::ZipLzmaDict { error: e.to_string() })?;
    if need_kib > MAX_LZMA_MEMORY_KIB {
        return Err(Unreadable::ZipLzmaMemory { need_kib });
    }
    // Flag bit 1: an end marker ends the stream; else the declared size does.
    let size = if flags & 2 != 0 { u64::MAX } else { usize };
    let dec = lzma_rust2::LzmaReader::new_with_props(raw, size, props[0], dict, None)
        .map_err(|e| Unreadable::ZipLzmaReader { error: e.to_string() })?;
    Ok(Box::new(dec))
}

impl<R: Read + Seek> Archive<'_, '_, R> {
    /// Scans one member, layer `inner`, read as `how` says, then checks its
    /// CRC and size.
    pub(super) fn member(&mut self, e: &Entry, how: Reading, inner: &Layer) {
        let header = e.header_start;
        let declared = how.usize;
        let ratio_ok = declared / how.csize.max(1) <= MAX_COMPRESSION_RATIO || declared <= 64 << 20;
        if declared > MAX_DECOMPRESSED_BYTES || !ratio_ok {
            return self.w.note(&inner.member, header, Bomb::DeclaredSize { declared, csize: how.csize });
        }
        let available = self.end.saturating_sub(how.data_start);
        if how.csize > available {
            self.w.note(&inner.member, header, ArchiveFault::PastEnd { csize: how.csize, available });
        }
        if let Err(err) = self.r.seek(SeekFrom::Start(how.data_start)) {
            return self.w.note(&inner.member, header, ArchiveFault::UnreadableMember { error: io_error(err) });
        }
        let notes_before = self.w.out.notes.len();
        let parts_before = self.w.out.parts.len();
        let outcome = match self.read(e, &how, available, inner) {
            Ok(outcome) => outcome,
            Err(why) => return self.w.note(&inner.member, header, why),
        };
        if outcome.error.is_some() {
            // The member's decoder failed: reported once, as the container's problem.
            for part in &mut self.w.out.parts[parts_before..] {
                if matches!(part.analysis.error.as_ref().map(|e| e.kind()), Some(crate::ErrorKind::Io(_))) {
                    part.analysis.error = None;
                }
            }
        }
        self.check(&how, header, outcome, notes_before, inner);
    }

    /// Decodes the member, walks its content (unless it is raw data, or
    /// nested too deep) and reads it to the end.
    fn read(&mut self, e: &Entry, how: &Reading, available: u64, inner: &Layer) -> Result<Outcome, Unreadable> {
        let count = Rc::new(Cell::new(0));
        let raw = CountIn { inner: ByRef(&mut self.r).take(how.csize.min(available)), count: count.clone() };
        let dec = decoder(how.method, raw, how.usize, e.flags)?;
        let mut body =
            Checked { inner: Limited::new(dec, count.clone()), crc: flate2::Crc::new(), len: 0, error: None };
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        let head_ok = (&mut body).take(SNIFF_BYTES as u64).read_to_end(&mut head).is_ok();
        let fmt = sniff(&head);
        if !head_ok {
            // Reported by the caller from the outcome's error.
        } else if (fmt == Format::Unknown && !pickle_name(&e.name)) || self.w.torch_raw(&inner.member) {
            self.w.out.skipped_members.push(inner.member.clone().unwrap_or_default());
        } else if inner.depth >= MAX_CONTAINER_DEPTH && fmt != Format::Pickle {
            self.w.note(&inner.member, e.header_start, Limit::TooDeep { format: fmt });
        } else {
            // Stored data has exactly the bytes read; a compressed member's size is only declared.
            let total = (how.method == 0).then_some(how.csize.min(available));
            let src = ReadOnly(io::Cursor::new(head).chain(ByRef(&mut body)));
            self.w.walk(src, total, inner);
        }
        // Read what the scan left, so the CRC and size cover the whole member.
        let _ = io::copy(&mut body, &mut io::sink());
        Ok(Outcome { error: body.error, crc: body.crc.sum(), len: body.len, pulled: count.get() })
    }

    /// Reports how reading the member ended: its decoder's failure (unless
    /// the walk of its content reported it already), or a size or CRC that
    /// is not the declared one.
    fn check(&mut self, how: &Reading, header: u64, outcome: Outcome, notes_before: usize, inner: &Layer) {
        let noted = |w: &crate::container::Walker, bomb: bool| {
            w.out.notes[notes_before..].iter().any(|n| match n.problem {
                Problem::Bomb(_) => bomb,
                Problem::Unreadable(_) => !bomb,
                _ => false,
            })
        };
        let Outcome { error, crc, len, pulled } = outcome;
        match error {
            Some((true, detail)) if !noted(self.w, true) => {
                self.w.note(&inner.member, header, Bomb::Reached { detail });
            }
            Some((false, error)) if !noted(self.w, false) => {
                let near = how.data_start + pulled;
                self.w.note(&inner.member, header, Unreadable::MemberCorrupt { near, error });
            }
            Some(_) => {}
            None if how.checked => {
                if len != how.usize {
                    if self.budget.take(FaultKind::Size) {
                        let fault =
                            ArchiveFault::SizeMismatch { declared: how.usize, actual: len, crc, declared_crc: how.crc };
                        self.w.note(&inner.member, header, fault);
                    }
                } else if crc != how.crc && self.budget.take(FaultKind::Crc) {
                    self.w.note(&inner.member, header, ArchiveFault::CrcMismatch { crc, declared: how.crc });
                }
            }
            None => {}
        }
    }
}
