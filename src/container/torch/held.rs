//! Pickles read one at a time from a stream, exactly as `pickle.load` on
//! the stream reads them, and held (within [`MAX_TORCH_PICKLE_BYTES`]) to be
//! analysed as the separate loads they are: the legacy layouts interleave
//! pickles with raw bytes whose sizes the pickles give.

use std::io::{self, Read};

use crate::error::ErrorKind;
use crate::limits::MAX_TORCH_PICKLE_BYTES;
use crate::pickle::opcodes::Opcode;
use crate::pickle::reader::OpReader;
use crate::pickle::source::{ByteSource, Input, Line, SliceSource};
use crate::vm::{Analysis, Analyzer, Anomaly, EventKind};

/// One pickle's bytes, at their offset in the stream.
#[derive(Debug)]
struct Segment {
    base: u64,
    bytes: Vec<u8>,
}

/// Why reading the next pickle stopped short.
#[derive(Debug)]
pub(super) enum Cut {
    /// The input ended before the pickle's first byte.
    End,
    /// The stream is broken inside the pickle (the analysis of the bytes
    /// kept reports how).
    Stream,
    /// An I/O error (a corrupt or over-limit compressed stream).
    Io(String),
    /// The pickles held exceed [`MAX_TORCH_PICKLE_BYTES`].
    Budget,
}

/// A byte source that keeps a copy of every byte it hands out, up to a budget.
struct Tee<'a, S> {
    inner: &'a mut S,
    buf: Vec<u8>,
    budget: usize,
    over: bool,
}

/// Marker error: the budget of held pickle bytes is spent.
#[derive(Debug)]
struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than MAX_TORCH_PICKLE_BYTES ({MAX_TORCH_PICKLE_BYTES}) of pickles")
    }
}

impl std::error::Error for OverBudget {}

/// Appends `b` to `buf` if the budget allows.
fn keep(buf: &mut Vec<u8>, budget: &mut usize, over: &mut bool, b: &[u8]) -> io::Result<()> {
    if b.len() > *budget {
        *over = true;
        return Err(io::Error::other(OverBudget));
    }
    *budget -= b.len();
    buf.extend_from_slice(b);
    Ok(())
}

/// Chunk in which [`Tee::skip`] copies a long argument.
const TEE_CHUNK: usize = 64 * 1024;

impl<S: ByteSource> ByteSource for Tee<'_, S> {
    fn position(&self) -> u64 {
        self.inner.position()
    }
    fn remaining(&self) -> Option<u64> {
        self.inner.remaining()
    }
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        let Tee { inner, buf, budget, over } = self;
        match inner.take(n)? {
            Some(b) => {
                keep(buf, budget, over, b)?;
                Ok(Some(b))
            }
            None => Ok(None),
        }
    }
    fn take_line(&mut self, max: usize) -> io::Result<Line<'_>> {
        let Tee { inner, buf, budget, over } = self;
        match inner.take_line(max)? {
            Line::Found(l) => {
                keep(buf, budget, over, l)?;
                keep(buf, budget, over, b"\n")?;
                Ok(Line::Found(l))
            }
            other => Ok(other),
        }
    }
    /// Arguments too long to hand out inline are still copied: the pickle is
    /// analysed again from the copy.
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        if n > self.budget as u64 {
            self.over = true;
            return Err(io::Error::other(OverBudget));
        }
        let mut done = 0u64;
        let mut chunk = TEE_CHUNK;
        while done < n {
            // At most TEE_CHUNK, so it fits in usize.
            let want = (n - done).min(chunk as u64) as usize;
            let Tee { inner, buf, budget, over } = self;
            match inner.take(want)? {
                Some(b) => {
                    keep(buf, budget, over, b)?;
                    done += want as u64;
                }
                // Fewer bytes remain than asked: take what there is.
                None if want > 1 => chunk = want / 2,
                None => break,
            }
        }
        Ok(done)
    }
    fn at_eof(&mut self) -> io::Result<bool> {
        self.inner.at_eof()
    }
}

/// Pickles read one at a time from a stream and held for analysis.
pub(super) struct Held {
    segs: Vec<Segment>,
    budget: usize,
}

impl Held {
    pub(super) fn new() -> Held {
        Held { segs: Vec::new(), budget: MAX_TORCH_PICKLE_BYTES }
    }

    /// Reads one pickle, up to and including its `STOP`, exactly as
    /// `pickle.load` on the stream would, and keeps its bytes.
    pub(super) fn pickle<S: ByteSource>(&mut self, src: &mut S) -> Result<(), Cut> {
        let base = src.position();
        let mut reader = OpReader::new(Tee { inner: src, buf: Vec::new(), budget: self.budget, over: false });
        let mut ops = 0u64;
        let outcome = loop {
            match reader.next_op() {
                Ok(Some(op)) => {
                    ops += 1;
                    if op.opcode == Opcode::Stop {
                        break Ok(());
                    }
                }
                Ok(None) if ops == 0 => break Err(Cut::End),
                Ok(None) => break Err(Cut::Stream),
                Err(e) => {
                    break Err(match e.kind() {
                        _ if reader.source_mut().over => Cut::Budget,
                        ErrorKind::Io(msg) => Cut::Io(msg.clone()),
                        _ => Cut::Stream,
                    })
                }
            }
        };
        let tee = reader.source_mut();
        self.budget = tee.budget;
        let bytes = std::mem::take(&mut tee.buf);
        if !bytes.is_empty() {
            self.segs.push(Segment { base, bytes });
        }
        outcome
    }

    /// What the last pickle read evaluates to, analysed on its own.
    pub(super) fn last(&self) -> Option<Analysis> {
        self.segs.last().map(|s| Analyzer::new().run(SliceSource::new(&s.bytes, s.base)))
    }

    /// All pickles held, analysed by `analyzer` as the separate loads they are.
    pub(super) fn analysis(&self, analyzer: &Analyzer) -> Option<Analysis> {
        if self.segs.is_empty() {
            return None;
        }
        let mut a = analyzer.run(Spliced { segs: &self.segs, seg: 0, pos: 0 });
        // Each pickle is its own pickle.load by design of the format: the
        // machine's "another pickle follows" is not an anomaly here.
        a.events.retain(|e| !matches!(e.kind, EventKind::Anomaly(Anomaly::AnotherPickle { .. })));
        Some(a)
    }
}

/// Held pickles read back to back, each at its own offset: the machine sees
/// one stream of pickles whose offsets are those of the file.
struct Spliced<'a> {
    segs: &'a [Segment],
    seg: usize,
    pos: usize,
}

impl Spliced<'_> {
    /// The segment and position of the next byte, skipping finished segments.
    fn current(&self) -> Option<(&Segment, usize)> {
        let mut seg = self.seg;
        let mut pos = self.pos;
        while let Some(s) = self.segs.get(seg) {
            if pos < s.bytes.len() {
                return Some((s, pos));
            }
            seg += 1;
            pos = 0;
        }
        None
    }

    fn settle(&mut self) {
        while let Some(s) = self.segs.get(self.seg) {
            if self.pos < s.bytes.len() {
                return;
            }
            self.seg += 1;
            self.pos = 0;
        }
    }
}

impl ByteSource for Spliced<'_> {
    fn position(&self) -> u64 {
        match self.current() {
            Some((s, pos)) => s.base + pos as u64,
            None => self.segs.last().map(|s| s.base + s.bytes.len() as u64).unwrap_or(0),
        }
    }
    fn remaining(&self) -> Option<u64> {
        Some(self.current().map(|(s, pos)| (s.bytes.len() - pos) as u64).unwrap_or(0))
    }
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        if n == 0 {
            return Ok(Some(&[]));
        }
        self.settle();
        let Some(s) = self.segs.get(self.seg) else { return Ok(None) };
        let Some(end) = self.pos.checked_add(n) else { return Ok(None) };
        match s.bytes.get(self.pos..end) {
            Some(b) => {
                self.pos = end;
                Ok(Some(b))
            }
            None => Ok(None),
        }
    }
    fn take_line(&mut self, max: usize) -> io::Result<Line<'_>> {
        self.settle();
        let Some(s) = self.segs.get(self.seg) else { return Ok(Line::Eof) };
        let (line, used) = crate::pickle::source::line_at(&s.bytes[self.pos..], max);
        self.pos += used;
        Ok(line)
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        self.settle();
        let Some(s) = self.segs.get(self.seg) else { return Ok(0) };
        let left = (s.bytes.len() - self.pos) as u64;
        let k = n.min(left);
        // k <= left, which is a usize.
        self.pos += k as usize;
        Ok(k)
    }
    fn at_eof(&mut self) -> io::Result<bool> {
        self.settle();
        Ok(self.seg >= self.segs.len())
    }
}

/// A byte source read as a plain reader (for the bytes after the storages).
pub(super) struct SourceRead<'a, S>(pub(super) &'a mut S);

impl<S: ByteSource> Read for SourceRead<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut want = buf.len().min(TEE_CHUNK);
        if let Some(r) = self.0.remaining() {
            want = want.min(usize::try_from(r).unwrap_or(usize::MAX));
        }
        while want > 0 {
            if let Some(b) = self.0.take(want)? {
                buf[..want].copy_from_slice(b);
                return Ok(want);
            }
            want /= 2;
        }
        Ok(0)
    }
}

impl<S: ByteSource> Input for SourceRead<'_, S> {
    fn skip_forward(&mut self, n: u64) -> io::Result<u64> {
        self.0.skip(n)
    }
}

/// Reads a little-endian `i64` (a legacy storage's element count).
pub(super) fn read_i64<S: ByteSource>(src: &mut S) -> io::Result<Option<i64>> {
    Ok(src.take(8)?.map(|b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        i64::from_le_bytes(a)
    }))
}

/// Reads a little-endian `i32` (a legacy tensor's dimension count).
pub(super) fn read_i32<S: ByteSource>(src: &mut S) -> io::Result<Option<i32>> {
    Ok(src.take(4)?.map(|b| {
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        i32::from_le_bytes(a)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::torch::storage::root;
    use crate::container::torch::tests::MAGIC_P2;
    use crate::pickle::source::SliceSource;

    #[test]
    fn held_pickles_read_back_with_their_offsets() {
        // Two pickles, then raw bytes that are not a pickle.
        let mut data = MAGIC_P2.to_vec();
        data.extend_from_slice(b"\x80\x02M\xe9\x03.");
        data.extend_from_slice(b"\x00\x01\x02");
        let mut src = SliceSource::new(&data, 100);
        let mut held = Held::new();
        held.pickle(&mut src).expect("first");
        held.pickle(&mut src).expect("second");
        assert_eq!(src.position(), 100 + data.len() as u64 - 3);
        assert!(matches!(held.pickle(&mut src), Err(Cut::Stream)));
        let a = held.analysis(&Analyzer::new()).expect("analysis");
        assert_eq!(a.pickles.len(), 2);
        assert_eq!(a.pickles[1].start, 100 + MAGIC_P2.len() as u64);
        assert_eq!(a.int(root(&a, 1).expect("root")), Some(1001));
        // No "another pickle" anomaly between separate loads.
        assert!(!a.events.iter().any(|e| matches!(e.kind, EventKind::Anomaly(Anomaly::AnotherPickle { .. }))));
        // The byte where a third pickle should start is reported as the machine reports trailing bytes.
        assert!(a.events.iter().any(|e| matches!(e.kind, EventKind::Anomaly(Anomaly::TrailingData { .. }))));
    }

    #[test]
    fn held_pickles_stop_at_the_budget() {
        let mut data = b"\x80\x04\x8e".to_vec();
        let len = MAX_TORCH_PICKLE_BYTES as u64 + 1;
        data.extend_from_slice(&len.to_le_bytes());
        let mut src = SliceSource::new(&data, 0);
        let mut held = Held::new();
        // The declared length is checked against what remains first.
        assert!(matches!(held.pickle(&mut src), Err(Cut::Stream)));
        // A long argument that is there is copied until the budget is spent.
        let mut held = Held { segs: Vec::new(), budget: 16 };
        let mut data = b"\x80\x04C\x20".to_vec();
        data.extend_from_slice(&[b'x'; 32]);
        data.push(b'.');
        let mut src = SliceSource::new(&data, 0);
        assert!(matches!(held.pickle(&mut src), Err(Cut::Budget)));
        let mut held = Held { segs: Vec::new(), budget: 64 };
        let mut src = SliceSource::new(&data, 0);
        held.pickle(&mut src).expect("fits");
        assert_eq!(held.segs[0].bytes, data);
    }

    #[test]
    fn tee_copies_skipped_arguments() {
        // A BINBYTES8 longer than MAX_INLINE_ARG is skipped by the reader; the tee keeps it.
        let n = crate::limits::MAX_INLINE_ARG + 10;
        let mut data = b"\x80\x04\x8e".to_vec();
        data.extend_from_slice(&(n as u64).to_le_bytes());
        data.extend(std::iter::repeat_n(7u8, n));
        data.push(b'.');
        let mut src = SliceSource::new(&data, 0);
        let mut held = Held::new();
        held.pickle(&mut src).expect("pickle");
        assert_eq!(held.segs[0].bytes.len(), data.len());
        let a = held.analysis(&Analyzer::new()).expect("analysis");
        assert!(a.error.is_none(), "{:?}", a.error);
        assert_eq!(a.pickles[0].end, data.len() as u64);
    }
}
