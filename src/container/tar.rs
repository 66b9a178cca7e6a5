//! A streaming reader for POSIX tar (ustar, GNU long names, pax headers
//! skipped), enough to reach every regular file in a tar archive — legacy
//! PyTorch checkpoints and `.tar`/`.tar.gz` bundles — without buffering it.
//! A tar layer of a walk (`walk`) walks every regular file in it as a
//! member, except the `storages` and `tensors` sections of a legacy PyTorch
//! checkpoint, which the `torch` module reads.

use std::io::{self, Read};

use super::diag::{Limit, Unreadable};
use super::readers::Peeked;
use super::torch;
use super::walk::{Layer, Walker};
use super::Format;
use crate::limits::{MAX_ARCHIVE_MEMBERS, MAX_TAR_LONG_NAME};
use crate::pickle::source::Input;

/// One entry's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the archive.
    pub name: String,
    /// Body size in bytes.
    pub size: u64,
    /// A regular file (else a directory, link, device...).
    pub regular: bool,
    /// Offset of the header block in the tar stream.
    pub header_offset: u64,
}

/// Entries of a tar stream, read in order.
pub struct Entries<R> {
    r: R,
    pos: u64,
    /// Body bytes of the current entry not yet consumed.
    body_left: u64,
    /// Padding after the current body.
    pad: u64,
}

fn octal(field: &[u8]) -> io::Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // GNU base-256: big-endian, first byte's high bit is the marker.
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256).and_then(|v| v.checked_add(u64::from(b))).ok_or_else(|| bad("size overflows"))?;
        }
        return Ok(v);
    }
    let text: String = field.iter().take_while(|&&b| b != 0).map(|&b| b as char).collect();
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| bad("bad octal number"))
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn cstr(field: &[u8]) -> String {
    String::from_utf8_lossy(&field[..field.iter().position(|&b| b == 0).unwrap_or(field.len())]).into_owned()
}

impl<R: Input> Entries<R> {
    /// Entries of the tar stream `r`.
    pub fn new(r: R) -> Self {
        Entries { r, pos: 0, body_left: 0, pad: 0 }
    }

    /// Offset in the tar stream.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn block(&mut self) -> io::Result<Option<[u8; 512]>> {
        let mut b = [0u8; 512];
        let mut n = 0;
        while n < 512 {
            match self.r.read(&mut b[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += n as u64;
        match n {
            0 => Ok(None),
            512 => Ok(Some(b)),
            _ => Err(bad("archive ends inside a header")),
        }
    }

    /// The next entry, after skipping what is left of the previous one.
    /// `Ok(None)` at the end-of-archive marker or the end of the input.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        self.finish_entry()?;
        let mut long_name: Option<String> = None;
        loop {
            let header_offset = self.pos;
            let Some(h) = self.block()? else { return Ok(None) };
            if h.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            let stored: u64 = octal(&h[148..156])?;
            let sum: u64 =
                h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) }).sum();
            if sum != stored {
                return Err(bad("header checksum mismatch"));
            }
            let size = octal(&h[124..136])?;
            self.body_left = size;
            self.pad = (512 - size % 512) % 512;
            let kind = h[156];
            match kind {
                b'L' => {
                    // GNU long name: the body is the next entry's name.
                    if size > MAX_TAR_LONG_NAME {
                        return Err(bad("long name too long"));
                    }
                    let mut name = Vec::new();
                    (&mut self.r).take(size).read_to_end(&mut name)?;
                    self.pos += name.len() as u64;
                    self.body_left -= name.len() as u64;
                    long_name = Some(cstr(&name));
                    self.finish_entry()?;
                    continue;
                }
                b'x' | b'g' | b'K' => {
                    // pax extended headers and GNU long link names: skipped.
                    self.finish_entry()?;
                    continue;
                }
                _ => {}
            }
            let name = long_name.take().unwrap_or_else(|| {
                let base = cstr(&h[0..100]);
                let prefix = if &h[257..262] == b"ustar" { cstr(&h[345..500]) } else { String::new() };
                if prefix.is_empty() {
                    base
                } else {
                    format!("{prefix}/{base}")
                }
            });
            let regular = matches!(kind, b'0' | 0 | b'7');
            return Ok(Some(Entry { name, size, regular, header_offset }));
        }
    }

    /// A reader over the current entry's body.
    pub fn body(&mut self, size: u64) -> Body<'_, R> {
        let left = size.min(self.body_left);
        Body { e: self, left }
    }

    /// Skips the rest of the current entry and its padding.
    pub fn finish_entry(&mut self) -> io::Result<()> {
        let n = self.body_left + self.pad;
        if n > 0 {
            let k = self.r.skip_forward(n)?;
            self.pos += k;
            self.body_left = 0;
            self.pad = 0;
            if k < n {
                return Err(bad("archive ends inside an entry"));
            }
        }
        Ok(())
    }
}

/// The body of one tar entry.
pub struct Body<'a, R> {
    e: &'a mut Entries<R>,
    left: u64,
}

impl<R: Input> Read for Body<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.e.r.read(&mut buf[..want])?;
        self.left -= n as u64;
        self.e.body_left -= n as u64;
        self.e.pos += n as u64;
        Ok(n)
    }
}

impl<R: Input> Input for Body<'_, R> {
    fn skip_forward(&mut self, n: u64) -> io::Result<u64> {
        let n = n.min(self.left);
        let k = self.e.r.skip_forward(n)?;
        self.left -= k;
        self.e.body_left -= k;
        self.e.pos += k;
        Ok(k)
    }
}

/// Walks the tar archive of layer `at`: every regular file in it is a
/// member, a layer of its own.
pub(super) fn walk<R: Input>(w: &mut Walker, r: Peeked<R>, at: &Layer) {
    let mut entries = Entries::new(r);
    let mut count = 0usize;
    loop {
        let entry = match entries.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => return,
            Err(e) => {
                w.note(&at.member, entries.position(), Unreadable::Tar { error: e.to_string() });
                return;
            }
        };
        count += 1;
        if count > MAX_ARCHIVE_MEMBERS {
            w.note(&at.member, entry.header_offset, Limit::TarEntries {});
            return;
        }
        if !entry.regular {
            continue;
        }
        let inner = at.entry(Format::Tar, &entry.name);
        let size = entry.size;
        // Boxed: a tar inside a tar must not make a new type each level.
        let body: Box<dyn Input + '_> = Box::new(entries.body(size));
        // A legacy tar PyTorch checkpoint mixes pickles and raw bytes in these two.
        match torch::tar::section(&entry.name) {
            Some(s) => torch::tar::walk(w, body, size, &inner, s),
            None => w.archive_member(body, size, &entry.name, &inner),
        }
        if let Err(e) = entries.finish_entry() {
            w.note(&at.member, entry.header_offset, Unreadable::Tar { error: e.to_string() });
            return;
        }
    }
}
