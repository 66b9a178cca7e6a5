//! Keeping the bytes a stream's reading consumed, to be read again.
//!
//! `pkinspect dis` lists a stream's opcodes from their bytes, and a stream
//! inside a container exists only while its decompressor or archive reader
//! runs. [`Recorder`] sits between the machine and such a source and keeps a
//! copy of every byte the machine *reads*; what it *skips* (joblib array
//! payloads, arguments over [`crate::limits::MAX_INLINE_ARG`], the raw
//! storages of a legacy PyTorch checkpoint) is not kept, and leaves a gap.
//! [`Recorded::source_at`] reads the copy back as a [`ByteSource`] at the
//! same offsets. At most [`MAX_RECORDED_BYTES`] are kept per stream.

use std::io;

use super::source::{line_at, ByteSource, Line};
use crate::limits::MAX_RECORDED_BYTES;

/// A run of bytes read back to back, at its offset in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    base: u64,
    bytes: Vec<u8>,
}

impl Segment {
    fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }
}

/// The bytes a reading of one stream consumed, by offset, with gaps where it
/// skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    segs: Vec<Segment>,
    /// Where the stream ends, when its size was known.
    total: Option<u64>,
    /// The offset the reading reached (skips included).
    reached: u64,
    /// Where keeping stopped, [`MAX_RECORDED_BYTES`] being kept.
    cut: Option<u64>,
    kept: usize,
}

impl Recorded {
    /// Keeps `b`, read at offset `at`, within [`MAX_RECORDED_BYTES`].
    fn keep(&mut self, at: u64, b: &[u8]) {
        if self.cut.is_some() || b.is_empty() {
            return;
        }
        if self.kept + b.len() > MAX_RECORDED_BYTES {
            self.cut = Some(at);
            return;
        }
        self.kept += b.len();
        match self.segs.last_mut() {
            Some(s) if s.end() == at => s.bytes.extend_from_slice(b),
            _ => self.segs.push(Segment { base: at, bytes: b.to_vec() }),
        }
    }

    /// Where keeping stopped because [`MAX_RECORDED_BYTES`] were kept, if it did.
    pub fn cut_at(&self) -> Option<u64> {
        self.cut
    }

    /// The offset of the first byte kept.
    pub fn start(&self) -> Option<u64> {
        self.segs.first().map(|s| s.base)
    }

    /// The bytes from `from` to `to`, when they were kept as one run; empty otherwise.
    pub fn slice(&self, from: u64, to: u64) -> &[u8] {
        let Some(s) = self.segment(from) else { return &[] };
        if to < from || to > s.end() {
            return &[];
        }
        // Both within the segment, whose length is a usize.
        &s.bytes[(from - s.base) as usize..(to - s.base) as usize]
    }

    /// The index of the segment holding offset `at`.
    fn segment_index(&self, at: u64) -> Option<usize> {
        let i = self.segs.partition_point(|s| s.base <= at).checked_sub(1)?;
        (at < self.segs[i].end()).then_some(i)
    }

    fn segment(&self, at: u64) -> Option<&Segment> {
        self.segment_index(at).map(|i| &self.segs[i])
    }

    /// The kept bytes read back from offset `at`, at their offsets. Reading
    /// into a gap finds nothing (the end of input, for the reader), skipping
    /// over one works; [`ByteSource::remaining`] is the stream's.
    pub fn source_at(&self, at: u64) -> RecordedSource<'_> {
        RecordedSource { rec: self, pos: at }
    }

    /// The whole stream, when every byte of it from offset 0 was kept and it
    /// is `len` bytes long.
    pub fn whole(&self, len: u64) -> Option<&[u8]> {
        match &self.segs[..] {
            [s] if s.base == 0 && s.bytes.len() as u64 == len && self.cut.is_none() => Some(&s.bytes),
            [] if len == 0 => Some(&[]),
            _ => None,
        }
    }
}

/// A [`ByteSource`] that keeps a copy of the bytes it hands out (see the
/// [module documentation](self)).
pub struct Recorder<'r, S: ByteSource> {
    inner: S,
    rec: &'r mut Recorded,
}

impl<'r, S: ByteSource> Recorder<'r, S> {
    /// Reads `inner`, keeping what is read in `rec`.
    pub fn new(inner: S, rec: &'r mut Recorded) -> Recorder<'r, S> {
        rec.reached = inner.position();
        let mut r = Recorder { inner, rec };
        r.reached();
        r
    }

    /// Notes how far the reading went and, where the source says, how far
    /// the stream goes (a source of several runs, such as the held pickles
    /// of a legacy checkpoint, only knows the end of the current one).
    fn reached(&mut self) {
        let pos = self.inner.position();
        self.rec.reached = self.rec.reached.max(pos);
        if let Some(r) = self.inner.remaining() {
            self.rec.total = Some(self.rec.total.unwrap_or(0).max(pos + r));
        }
    }
}

impl<S: ByteSource> Drop for Recorder<'_, S> {
    fn drop(&mut self) {
        self.reached();
    }
}

impl<S: ByteSource> ByteSource for Recorder<'_, S> {
    fn position(&self) -> u64 {
        self.inner.position()
    }
    fn remaining(&self) -> Option<u64> {
        self.inner.remaining()
    }
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        self.reached();
        let at = self.inner.position();
        let Recorder { inner, rec } = self;
        let got = inner.take(n)?;
        if let Some(b) = got {
            rec.keep(at, b);
        }
        Ok(got)
    }
    fn take_line(&mut self, max: usize) -> io::Result<Line<'_>> {
        self.reached();
        let at = self.inner.position();
        let Recorder { inner, rec } = self;
        let line = inner.take_line(max)?;
        if let Line::Found(l) = &line {
            rec.keep(at, l);
            rec.keep(at + l.len() as u64, b"\n");
        }
        Ok(line)
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let k = self.inner.skip(n)?;
        self.reached();
        Ok(k)
    }
    fn at_eof(&mut self) -> io::Result<bool> {
        self.inner.at_eof()
    }
    fn copy_to_file(&mut self, n: u64, out: &mut std::fs::File) -> io::Result<u64> {
        let k = self.inner.copy_to_file(n, out)?;
        self.reached();
        Ok(k)
    }
    fn copy_to(&mut self, n: u64, out: &mut dyn io::Write) -> io::Result<u64> {
        let k = self.inner.copy_to(n, out)?;
        self.reached();
        Ok(k)
    }
    fn buffered(&self) -> &[u8] {
        self.inner.buffered()
    }
    fn advance(&mut self, n: usize) {
        let at = self.inner.position();
        let b = self.inner.buffered();
        self.rec.keep(at, &b[..n.min(b.len())]);
        self.inner.advance(n);
    }
}

/// The bytes of a [`Recorded`] stream read back ([`Recorded::source_at`]).
pub struct RecordedSource<'a> {
    rec: &'a Recorded,
    pos: u64,
}

impl RecordedSource<'_> {
    /// The kept bytes from the current position to the end of their run.
    fn here(&self) -> &[u8] {
        match self.rec.segment(self.pos) {
            Some(s) => &s.bytes[(self.pos - s.base) as usize..],
            None => &[],
        }
    }

    /// Where reading ends: the stream's end when known, else as far as the
    /// recorded reading went.
    fn end(&self) -> u64 {
        self.rec.total.unwrap_or(self.rec.reached).max(self.rec.segs.last().map_or(0, Segment::end))
    }
}

impl ByteSource for RecordedSource<'_> {
    fn position(&self) -> u64 {
        self.pos
    }
    fn remaining(&self) -> Option<u64> {
        self.rec.total.map(|t| t.saturating_sub(self.pos))
    }
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        let pos = self.pos;
        let Some(s) = self.rec.segment(pos) else { return Ok((n == 0).then_some(&[][..])) };
        let from = (pos - s.base) as usize;
        match from.checked_add(n).and_then(|to| s.bytes.get(from..to)) {
            Some(b) => {
                self.pos += n as u64;
                Ok(Some(b))
            }
            None => Ok(None),
        }
    }
    fn take_line(&mut self, max: usize) -> io::Result<Line<'_>> {
        let rest = match self.rec.segment(self.pos) {
            Some(s) => &s.bytes[(self.pos - s.base) as usize..],
            None => &[][..],
        };
        let (line, used) = line_at(rest, max);
        self.pos += used as u64;
        Ok(line)
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let k = n.min(self.end().saturating_sub(self.pos));
        self.pos += k;
        Ok(k)
    }
    fn at_eof(&mut self) -> io::Result<bool> {
        Ok(self.pos >= self.end())
    }
    fn buffered(&self) -> &[u8] {
        self.here()
    }
    fn advance(&mut self, n: usize) {
        let n = n.min(self.here().len());
        self.pos += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::source::SliceSource;

    #[test]
    fn reads_are_kept_and_skips_leave_gaps() {
        let data = b"abc\ndefghijklmnop";
        let mut rec = Recorded::default();
        {
            let mut r = Recorder::new(SliceSource::new(data, 100), &mut rec);
            assert!(matches!(r.take_line(10).unwrap(), Line::Found(b"abc")));
            assert_eq!(r.take(2).unwrap(), Some(&b"de"[..]));
            assert_eq!(r.skip(5).unwrap(), 5);
            r.advance(3);
            assert_eq!(r.take(1).unwrap(), Some(&b"n"[..]));
        }
        assert_eq!(rec.segs.len(), 2);
        assert_eq!(rec.slice(100, 106), b"abc\nde");
        assert_eq!(rec.slice(111, 115), b"klmn");
        assert_eq!(rec.slice(104, 112), b"", "across the gap");
        let mut s = rec.source_at(104);
        assert_eq!(s.remaining(), Some(13));
        assert_eq!(s.take(2).unwrap(), Some(&b"de"[..]));
        assert_eq!(s.take(1).unwrap(), None, "the gap holds nothing");
        assert_eq!(s.skip(5).unwrap(), 5);
        assert_eq!(s.buffered(), b"klmn");
        assert_eq!(s.take(4).unwrap(), Some(&b"klmn"[..]));
        assert!(!s.at_eof().unwrap(), "the stream goes on past what was read");
        assert_eq!(s.take(1).unwrap(), None);
        assert_eq!(s.skip(10).unwrap(), 2, "to the stream's end");
        assert!(s.at_eof().unwrap());
        assert_eq!(rec.whole(17), None);
    }

    #[test]
    fn a_whole_stream_is_itself() {
        let data = b"\x80\x04K\x01.";
        let mut rec = Recorded::default();
        {
            let mut r = Recorder::new(SliceSource::new(data, 0), &mut rec);
            while r.take(1).unwrap().is_some() {}
        }
        assert_eq!(rec.whole(5), Some(&data[..]));
        assert_eq!(rec.start(), Some(0));
    }
}
