//! Byte sources the opcode reader pulls from.
//!
//! A [`ByteSource`] is either an in-memory slice ([`SliceSource`], zero copy)
//! or any `std::io::Read` — a file, a decompressor — seen through a small
//! window ([`ReadSource`]). Only `take`, `take_line` and `skip` hand out
//! bytes, all bounds-checked; large arguments are skipped rather than
//! buffered, so a 1 GB array payload costs no memory.

use std::io::{self, Read};

/// What [`ByteSource::take_line`] found.
pub enum Line<'s> {
    /// The line, without its `\n`.
    Found(&'s [u8]),
    /// No `\n` within the limit.
    TooLong,
    /// The input ended before a `\n`.
    Eof,
}

/// The line at the start of `rest` for [`ByteSource::take_line`] over bytes
/// in memory, and how many bytes taking it consumes (with its `\n`).
pub fn line_at(rest: &[u8], max: usize) -> (Line<'_>, usize) {
    let window = &rest[..rest.len().min(max.saturating_add(1))];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => (Line::Found(&rest[..i]), i + 1),
        None if rest.len() > max => (Line::TooLong, 0),
        None => (Line::Eof, 0),
    }
}

/// A bounds-checked forward cursor over input bytes.
pub trait ByteSource {
    /// Absolute offset of the next byte.
    fn position(&self) -> u64;
    /// Bytes left, when the total size is known.
    fn remaining(&self) -> Option<u64>;
    /// The next `n` bytes, consumed; `None` (nothing consumed) if fewer remain.
    /// Callers only ask for `n` up to [`crate::limits::MAX_INLINE_ARG`].
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>>;
    /// The next line up to `max` bytes, consumed with its `\n`.
    fn take_line(&mut self, max: usize) -> io::Result<Line<'_>>;
    /// Skips up to `n` bytes; returns how many were skipped (fewer at end of input).
    fn skip(&mut self, n: u64) -> io::Result<u64>;
    /// True when no byte is left.
    fn at_eof(&mut self) -> io::Result<bool>;
    /// The next bytes that are already in memory, not consumed: what `take`
    /// could hand out without reading. May be empty at any time; the
    /// reader's fast path for short fixed-width opcodes
    /// ([`crate::reader::OpReader::fixed_window`]) decodes from it and falls
    /// back to `take` when it is too short.
    fn buffered(&self) -> &[u8] {
        &[]
    }
    /// Consumes `n` bytes of [`ByteSource::buffered`] (`n` no more than its
    /// length).
    fn advance(&mut self, n: usize) {
        let _ = self.take(n);
    }
}

/// A source over bytes already in memory.
pub struct SliceSource<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> SliceSource<'a> {
    /// Reads `data`, whose first byte sits at absolute offset `base`.
    pub fn new(data: &'a [u8], base: u64) -> Self {
        SliceSource { data, pos: 0, base }
    }
}

impl ByteSource for SliceSource<'_> {
    fn position(&self) -> u64 {
        self.base + self.pos as u64
    }
    fn remaining(&self) -> Option<u64> {
        Some((self.data.len() - self.pos) as u64)
    }
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        let Some(end) = self.pos.checked_add(n) else { return Ok(None) };
        let Some(bytes) = self.data.get(self.pos..end) else { return Ok(None) };
        self.pos = end;
        Ok(Some(bytes))
    }
    fn take_line(&mut self, max: usize) -> io::Result<Line<'_>> {
        let (line, used) = line_at(&self.data[self.pos..], max);
        self.pos += used;
        Ok(line)
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let left = (self.data.len() - self.pos) as u64;
        let k = n.min(left);
        self.pos += k as usize;
        Ok(k)
    }
    fn at_eof(&mut self) -> io::Result<bool> {
        Ok(self.pos >= self.data.len())
    }
    #[inline]
    fn buffered(&self) -> &[u8] {
        &self.data[self.pos..]
    }
    #[inline]
    fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.data.len() - self.pos);
        self.pos = (self.pos + n).min(self.data.len());
    }
}

const CHUNK: usize = 64 * 1024;

/// A reader that can move forward without reading what it passes over.
///
/// Files seek; streams (decompressors) read through into a sink.
pub trait Input: Read {
    /// Moves `n` bytes forward; returns how many were passed (fewer at the end).
    ///
    /// Streams read through a buffer of up to [`SKIP_BUFFER`] bytes: a
    /// decompressor handed a larger buffer per call spends less time on its
    /// own window bookkeeping (about 15% less CPU for zlib than `io::copy`'s
    /// 8 KiB).
    fn skip_forward(&mut self, n: u64) -> io::Result<u64> {
        let mut buf = vec![0u8; n.min(SKIP_BUFFER as u64) as usize];
        let mut done = 0u64;
        while done < n {
            let want = (n - done).min(buf.len() as u64) as usize;
            match self.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(k) => done += k as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// The largest buffer [`Input::skip_forward`] reads a stream through.
pub const SKIP_BUFFER: usize = 256 * 1024;

impl Input for std::fs::File {
    fn skip_forward(&mut self, n: u64) -> io::Result<u64> {
        use std::io::{Seek, SeekFrom};
        let here = self.stream_position()?;
        let len = self.metadata()?.len();
        let to = here.saturating_add(n).min(len.max(here));
        self.seek(SeekFrom::Start(to))?;
        Ok(to - here)
    }
}

impl Input for &[u8] {}
impl<R: Input + ?Sized> Input for Box<R> {
    fn skip_forward(&mut self, n: u64) -> io::Result<u64> {
        (**self).skip_forward(n)
    }
}

/// A source over a reader (a file or a decompressing stream) seen through a
/// window that grows only as far as the largest argument actually read.
pub struct ReadSource<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Absolute offset of `buf[start]`.
    pos: u64,
    total: Option<u64>,
    eof: bool,
}

impl<R: Input> ReadSource<R> {
    /// Reads from `inner`; `total` is the input's size when known (a file).
    pub fn new(inner: R, total: Option<u64>) -> Self {
        ReadSource { inner, buf: Vec::new(), start: 0, end: 0, pos: 0, total, eof: false }
    }

    /// Reads from `inner`, whose first byte sits at offset `base` of the
    /// enclosing input; `rest` is how many bytes `inner` holds, when known.
    pub fn with_base(inner: R, base: u64, rest: Option<u64>) -> Self {
        ReadSource { inner, buf: Vec::new(), start: 0, end: 0, pos: base, total: rest.map(|r| r + base), eof: false }
    }

    /// Makes at least `want` bytes available in the window, or reaches EOF.
    /// `want` is bounded by the callers' named limits, so is the window.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        while self.end - self.start < want && !self.eof {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let cap = want.max(CHUNK);
            if self.buf.len() < cap {
                self.buf.resize(cap, 0);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: Input> ByteSource for ReadSource<R> {
    fn position(&self) -> u64 {
        self.pos
    }
    fn remaining(&self) -> Option<u64> {
        self.total.map(|t| t.saturating_sub(self.pos))
    }
    #[inline]
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        if self.end - self.start < n {
            self.fill(n)?;
            if self.end - self.start < n {
                return Ok(None);
            }
        }
        let s = self.start;
        self.start += n;
        self.pos += n as u64;
        Ok(Some(&self.buf[s..s + n]))
    }
    fn take_line(&mut self, max: usize) -> io::Result<Line<'_>> {
        let limit = max.saturating_add(1);
        let mut searched = 0;
        loop {
            let avail = self.end - self.start;
            let upto = avail.min(limit);
            let found = self.buf[self.start + searched.min(upto)..self.start + upto]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + searched.min(upto));
            if let Some(i) = found {
                let s = self.start;
                self.start += i + 1;
                self.pos += i as u64 + 1;
                return Ok(Line::Found(&self.buf[s..s + i]));
            }
            if avail > max {
                return Ok(Line::TooLong);
            }
            if self.eof {
                return Ok(Line::Eof);
            }
            searched = avail;
            self.fill((avail + CHUNK).min(limit).max(avail + 1))?;
            if self.end - self.start == avail {
                return Ok(Line::Eof);
            }
        }
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let in_buf = ((self.end - self.start) as u64).min(n);
        self.start += in_buf as usize;
        self.pos += in_buf;
        let mut left = n - in_buf;
        let mut skipped = in_buf;
        if left > 0 && !self.eof {
            let copied = self.inner.skip_forward(left)?;
            skipped += copied;
            self.pos += copied;
            left -= copied;
            if left > 0 {
                self.eof = true;
            }
        }
        Ok(skipped)
    }
    fn at_eof(&mut self) -> io::Result<bool> {
        self.fill(1)?;
        Ok(self.end == self.start)
    }
    #[inline]
    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
    #[inline]
    fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        let n = n.min(self.end - self.start);
        self.start += n;
        self.pos += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns one byte per call, to exercise window refills.
    struct Trickle<'a>(&'a [u8]);
    impl Input for Trickle<'_> {}
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), out.first_mut()) {
                (Some((b, rest)), Some(o)) => {
                    *o = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn exercise(src: &mut dyn ByteSource) {
        assert_eq!(src.take(2).unwrap(), Some(&b"ab"[..]));
        match src.take_line(10).unwrap() {
            Line::Found(l) => assert_eq!(l, b"cd"),
            _ => panic!("line"),
        }
        assert_eq!(src.position(), 5);
        assert!(matches!(src.take_line(2).unwrap(), Line::TooLong));
        assert_eq!(src.skip(3).unwrap(), 3);
        assert_eq!(src.take(5).unwrap(), None);
        assert_eq!(src.take(2).unwrap(), Some(&b"hi"[..]));
        assert!(matches!(src.take_line(10).unwrap(), Line::Eof));
        assert_eq!(src.skip(100).unwrap(), 1);
        assert!(src.at_eof().unwrap());
    }

    #[test]
    fn slice_and_stream_agree() {
        let data = b"abcd\nefghij";
        exercise(&mut SliceSource::new(data, 0));
        exercise(&mut ReadSource::new(&data[..], Some(data.len() as u64)));
        exercise(&mut ReadSource::new(Trickle(data), None));
    }
}
