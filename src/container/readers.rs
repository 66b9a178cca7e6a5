//! The readers every layer is read through: [`Peeked`] (the bytes
//! [`super::sniff`] looks at, then the rest), [`Limited`] with its
//! [`CountIn`] (the decompression bomb limits), and [`ByRef`] (one input
//! read again for another reading).

use std::io::{self, Read, Seek};

use super::format::SNIFF_BYTES;
use crate::limits::{MAX_COMPRESSION_RATIO, MAX_DECOMPRESSED_BYTES};
use crate::pickle::source::Input;

/// A reader that yields `head` first, then the rest of `inner`.
pub struct Peeked<R> {
    head: Vec<u8>,
    pos: usize,
    inner: R,
}

impl<R: Read> Peeked<R> {
    /// Reads up to [`SNIFF_BYTES`] from `inner` to look at.
    pub fn new(mut inner: R) -> io::Result<Peeked<R>> {
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        (&mut inner).take(SNIFF_BYTES as u64).read_to_end(&mut head)?;
        Ok(Peeked { head, pos: 0, inner })
    }
    /// The bytes looked at.
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

impl<R: Read> Read for Peeked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

impl<R: Input> Input for Peeked<R> {
    fn skip_forward(&mut self, n: u64) -> io::Result<u64> {
        let in_head = ((self.head.len() - self.pos) as u64).min(n);
        self.pos += in_head as usize;
        Ok(in_head + self.inner.skip_forward(n - in_head)?)
    }
    fn as_file(&mut self) -> Option<&mut std::fs::File> {
        // Only once the peeked head is used up is the file where we are.
        if self.pos < self.head.len() {
            return None;
        }
        self.inner.as_file()
    }
}

/// Output below which the ratio limit is not applied: small streams may
/// compress far better than models do (a pickle of zeros).
const RATIO_GRACE_BYTES: u64 = 64 << 20;

/// A decompressed stream with the bomb limits applied: at most
/// [`MAX_DECOMPRESSED_BYTES`], and at most [`MAX_COMPRESSION_RATIO`] output
/// bytes per compressed byte once past [`RATIO_GRACE_BYTES`].
pub(super) struct Limited<R> {
    inner: R,
    out: u64,
    compressed: std::rc::Rc<std::cell::Cell<u64>>,
    max_out: u64,
    max_ratio: u64,
    grace: u64,
}

impl<R> Limited<R> {
    /// `compressed` counts the bytes the decoder has pulled (see [`CountIn`]).
    pub(super) fn new(inner: R, compressed: std::rc::Rc<std::cell::Cell<u64>>) -> Limited<R> {
        Limited::with_bounds(inner, compressed, MAX_DECOMPRESSED_BYTES, MAX_COMPRESSION_RATIO, RATIO_GRACE_BYTES)
    }

    /// The same limits with other values (tests reach them cheaply).
    fn with_bounds(
        inner: R,
        compressed: std::rc::Rc<std::cell::Cell<u64>>,
        max_out: u64,
        max_ratio: u64,
        grace: u64,
    ) -> Limited<R> {
        Limited { inner, out: 0, compressed, max_out, max_ratio, grace }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        let compressed = self.compressed.get().max(1);
        if self.out > self.max_out {
            return Err(io::Error::other(LimitHit(format!(
                "more than MAX_DECOMPRESSED_BYTES ({}) of output",
                self.max_out
            ))));
        }
        if self.out > self.grace && self.out / compressed > self.max_ratio {
            return Err(io::Error::other(LimitHit(format!(
                "{} bytes out of {compressed} compressed bytes, more than MAX_COMPRESSION_RATIO ({}) to one",
                self.out, self.max_ratio
            ))));
        }
        Ok(n)
    }
}

impl<R: Read> Input for Limited<R> {}

/// Marker error: a decompression limit was reached, and which.
#[derive(Debug)]
pub(super) struct LimitHit(String);

impl LimitHit {
    /// True when `e` is a limit reached (through any number of readers).
    pub(super) fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|i| i.is::<LimitHit>())
    }

    /// True when `msg`, an I/O error as the machine recorded it (its text
    /// only), is a limit reached.
    pub(super) fn in_message(msg: &str) -> bool {
        msg.contains("decompression limit")
    }
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decompression limit reached: {}", self.0)
    }
}

impl std::error::Error for LimitHit {}

/// Counts the compressed bytes a decoder pulls, for the ratio limit.
pub(super) struct CountIn<R> {
    /// The decoder's input.
    pub(super) inner: R,
    /// Bytes pulled so far, shared with [`Limited`].
    pub(super) count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for CountIn<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A reader borrowed for one layer of the walk, so the walker can come
/// back to the same input for another reading.
pub(super) struct ByRef<'a, R: ?Sized>(pub(super) &'a mut R);

impl<R: Read + ?Sized> Read for ByRef<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Seek + ?Sized> Seek for ByRef<'_, R> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl<R: Input + ?Sized> Input for ByRef<'_, R> {
    fn skip_forward(&mut self, n: u64) -> io::Result<u64> {
        self.0.skip_forward(n)
    }
    fn as_file(&mut self) -> Option<&mut std::fs::File> {
        self.0.as_file()
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub(super) fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_applies_ratio_past_the_grace_and_the_size_cap() {
        use std::{cell::Cell, rc::Rc};
        // 10 compressed bytes: ratio 100 allows 1000 bytes, checked only past 500.
        let count = Rc::new(Cell::new(10));
        let mut l = Limited::with_bounds(io::repeat(0).take(5000), count.clone(), u64::MAX, 100, 500);
        let e = io::copy(&mut l, &mut io::sink()).unwrap_err();
        assert!(LimitHit::is(&e), "{e}");
        assert!(e.to_string().contains("MAX_COMPRESSION_RATIO"));
        // Under the grace, any ratio passes.
        let mut l = Limited::with_bounds(io::repeat(0).take(400), count.clone(), u64::MAX, 1, 500);
        assert_eq!(io::copy(&mut l, &mut io::sink()).unwrap(), 400);
        // The size cap holds whatever the ratio.
        let mut l = Limited::with_bounds(io::repeat(0).take(5000), count, 4096, u64::MAX, 0);
        let e = io::copy(&mut l, &mut io::sink()).unwrap_err();
        assert!(LimitHit::is(&e) && e.to_string().contains("MAX_DECOMPRESSED_BYTES"), "{e}");
    }
}
