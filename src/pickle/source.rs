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
    /// Copies the next `n` bytes to the file `out`; returns how many. The
    /// default goes through [`ByteSource::copy_to`].
    fn copy_to_file(&mut self, n: u64, out: &mut std::fs::File) -> io::Result<u64> {
        self.copy_to(n, out)
    }
    /// Copies the next `n` bytes to `out`; returns how many (fewer at the
    /// end of input).
    fn copy_to(&mut self, n: u64, out: &mut dyn io::Write) -> io::Result<u64> {
        let mut done = 0u64;
        while done < n {
            let want = (n - done).min(CHUNK as u64) as usize;
            match self.take(want)? {
                Some(b) => {
                    out.write_all(b)?;
                    done += want as u64;
                }
                None => {
                    // Fewer than `want` left: the rest, one byte at a time.
                    while let Some(b) = self.take(1)? {
                        out.write_all(b)?;
                        done += 1;
                    }
                    break;
                }
            }
        }
        Ok(done)
    }
    /// The next bytes that are already in memory, not consumed: what `take`
    /// could hand out without reading. May be empty at any time; the
    /// reader's fast path for short fixed-width opcodes
    /// ([`crate::pickle::reader::OpReader::fixed_window`]) decodes from it and falls
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

/// What [`crate::vm::Analyzer::run`] reads: any [`ByteSource`], or bytes in
/// memory (read through a [`SliceSource`] whose first byte is offset 0).
pub trait IntoByteSource {
    /// The source it reads through.
    type Source: ByteSource;
    /// The source.
    fn into_byte_source(self) -> Self::Source;
}

impl<S: ByteSource> IntoByteSource for S {
    type Source = S;
    fn into_byte_source(self) -> S {
        self
    }
}

impl<'a> IntoByteSource for &'a [u8] {
    type Source = SliceSource<'a>;
    fn into_byte_source(self) -> SliceSource<'a> {
        SliceSource::new(self, 0)
    }
}

impl<'a, const N: usize> IntoByteSource for &'a [u8; N] {
    type Source = SliceSource<'a>;
    fn into_byte_source(self) -> SliceSource<'a> {
        SliceSource::new(self, 0)
    }
}

impl<'a> IntoByteSource for &'a Vec<u8> {
    type Source = SliceSource<'a>;
    fn into_byte_source(self) -> SliceSource<'a> {
        SliceSource::new(self, 0)
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
    /// The plain file behind this reader, positioned where this reader's next
    /// byte is, when there is one and nothing is buffered in between: lets a
    /// copy run in the kernel (`copy_file_range`) instead of through memory.
    fn as_file(&mut self) -> Option<&mut std::fs::File> {
        None
    }
}

/// The largest buffer [`Input::skip_forward`] reads a stream through.
pub const SKIP_BUFFER: usize = 256 * 1024;

impl Input for std::fs::File {
    fn as_file(&mut self) -> Option<&mut std::fs::File> {
        Some(self)
    }
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
    fn as_file(&mut self) -> Option<&mut std::fs::File> {
        (**self).as_file()
    }
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
    fn copy_to_file(&mut self, n: u64, out: &mut std::fs::File) -> io::Result<u64> {
        self.copy_file_fast(n, out)
    }
    /// Drains the window, then copies straight from the inner reader through
    /// one large buffer (no window refills).
    fn copy_to(&mut self, n: u64, out: &mut dyn io::Write) -> io::Result<u64> {
        let in_buf = ((self.end - self.start) as u64).min(n) as usize;
        out.write_all(&self.buf[self.start..self.start + in_buf])?;
        self.start += in_buf;
        self.pos += in_buf as u64;
        let mut done = in_buf as u64;
        if done < n && !self.eof {
            let mut buf = vec![0u8; (n - done).min(COPY_BUFFER as u64) as usize];
            while done < n {
                let want = (n - done).min(buf.len() as u64) as usize;
                match self.inner.read(&mut buf[..want]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(k) => {
                        out.write_all(&buf[..k])?;
                        done += k as u64;
                        self.pos += k as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(done)
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

impl<R: Input> ReadSource<R> {
    /// [`ByteSource::copy_to_file`]: after the window, a file-to-file copy
    /// in the kernel when the input is a plain file (std's `io::copy` uses
    /// `copy_file_range` for `File` to `File` on Linux).
    pub fn copy_file_fast(&mut self, n: u64, out: &mut std::fs::File) -> io::Result<u64> {
        use std::io::Write as _;
        let in_buf = ((self.end - self.start) as u64).min(n) as usize;
        out.write_all(&self.buf[self.start..self.start + in_buf])?;
        self.start += in_buf;
        self.pos += in_buf as u64;
        let rest = n - in_buf as u64;
        if rest == 0 || self.eof {
            return Ok(in_buf as u64);
        }
        match self.inner.as_file() {
            Some(f) => {
                let k = io::copy(&mut Read::take(&*f, rest), out)?;
                self.pos += k;
                if k < rest {
                    self.eof = true;
                }
                Ok(in_buf as u64 + k)
            }
            None => Ok(in_buf as u64 + self.copy_threaded(rest, out)?),
        }
    }

    /// Copies from a stream (a decompressor) to a file with the writing on a
    /// second thread, so the decoder never waits for the file system:
    /// buffers of [`COPY_BUFFER`] bytes go through a channel of two and come
    /// back for reuse.
    fn copy_threaded(&mut self, n: u64, out: &mut std::fs::File) -> io::Result<u64> {
        use std::io::Write as _;
        use std::sync::mpsc::sync_channel;
        let (full_tx, full_rx) = sync_channel::<Vec<u8>>(2);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(3);
        for _ in 0..3 {
            empty_tx.send(vec![0u8; COPY_BUFFER]).expect("channel has room");
        }
        std::thread::scope(|scope| {
            let writer = scope.spawn(move || -> io::Result<()> {
                for buf in full_rx {
                    out.write_all(&buf)?;
                    // The reader may have stopped; a closed channel is fine.
                    let _ = empty_tx.send(buf);
                }
                Ok(())
            });
            let mut done = 0u64;
            let mut result = Ok(());
            while done < n {
                let Ok(mut buf) = empty_rx.recv() else { break };
                buf.resize(COPY_BUFFER, 0);
                let want = (n - done).min(COPY_BUFFER as u64) as usize;
                let mut got = 0;
                while got < want {
                    match self.inner.read(&mut buf[got..want]) {
                        Ok(0) => break,
                        Ok(k) => got += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                buf.truncate(got);
                done += got as u64;
                self.pos += got as u64;
                if got > 0 && full_tx.send(buf).is_err() {
                    break;
                }
                if got < want {
                    if result.is_ok() {
                        self.eof = true;
                    }
                    break;
                }
            }
            drop(full_tx);
            let written = writer.join().unwrap_or_else(|_| Err(io::Error::other("writer thread panicked")));
            result.and(written).map(|_| done)
        })
    }
}

/// The buffer [`ReadSource::copy_to`] copies through.
pub const COPY_BUFFER: usize = 1 << 20;

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
