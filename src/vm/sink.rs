//! Extraction's plumbing: the [`Sink`] that receives the bytes a scan passes
//! over (joblib array payloads, values too long to keep), the [`Graph`] view
//! of the machine's values it reads them with, and [`Spilling`], the source
//! that hands skipped arguments to the sink.

use super::value::{Analysis, Value, ValueId};
use crate::pickle::source::ByteSource;

/// Read-only access to the values a machine has built, with the last BUILD
/// state of each constructed object: what array and dtype decoding needs,
/// during analysis (a [`Sink`]) and after it.
pub trait Graph {
    /// The values (and the item pool tuples point into).
    fn analysis(&self) -> &Analysis;
    /// The last state a BUILD applied to this (constructed) object.
    fn state(&self, id: ValueId) -> Option<ValueId>;
    /// The value with this id.
    fn value(&self, id: ValueId) -> &Value {
        self.analysis().value(id)
    }
    /// The text of the value `id`, when it is a `str` kept whole.
    fn full_str(&self, id: ValueId) -> Option<&str> {
        self.analysis().full_str(id)
    }
}

/// The machine's own [`Graph`], handed to a [`Sink`].
pub struct View<'a> {
    pub(super) a: &'a Analysis,
    pub(super) states: &'a std::collections::HashMap<ValueId, ValueId>,
}

impl Graph for View<'_> {
    fn analysis(&self) -> &Analysis {
        self.a
    }
    fn state(&self, id: ValueId) -> Option<ValueId> {
        self.states.get(&id).copied()
    }
}

/// Receives the bytes a scan passes over, so that extraction reads a file
/// (or a decompressing stream) once: joblib array payloads as the machine
/// reaches them, and string/bytes values too long to keep.
pub trait Sink {
    /// A new pickle stream starts; `part` numbers the streams of one file.
    fn begin(&mut self, part: usize);
    /// A joblib raw array payload of `len` bytes at `offset`, after the
    /// BUILD of `wrapper`: `src` stands at its first byte and the sink must
    /// consume all of it; returns how many bytes it consumed.
    fn payload(
        &mut self,
        graph: &View<'_>,
        wrapper: ValueId,
        offset: u64,
        len: u64,
        src: &mut dyn ByteSource,
    ) -> std::io::Result<u64>;
    /// A value's bytes that the machine does not keep (already read).
    fn spill_bytes(&mut self, offset: u64, bytes: &[u8]);
    /// A value's bytes that the reader would skip: the sink consumes them
    /// from `src`; returns how many.
    fn spill_stream(&mut self, offset: u64, len: u64, src: &mut dyn ByteSource) -> std::io::Result<u64>;
}

/// A sink shared between the caller and the machines of one file.
pub type SharedSink = std::rc::Rc<std::cell::RefCell<dyn Sink>>;

/// A source that hands what the reader skips (arguments longer than
/// [`crate::limits::MAX_INLINE_ARG`]) to a [`Sink`] instead.
pub struct Spilling<S> {
    pub(super) inner: S,
    pub(super) sink: SharedSink,
}

impl<S: ByteSource> ByteSource for Spilling<S> {
    fn position(&self) -> u64 {
        self.inner.position()
    }
    fn remaining(&self) -> Option<u64> {
        self.inner.remaining()
    }
    fn take(&mut self, n: usize) -> std::io::Result<Option<&[u8]>> {
        self.inner.take(n)
    }
    fn take_line(&mut self, max: usize) -> std::io::Result<crate::pickle::source::Line<'_>> {
        self.inner.take_line(max)
    }
    fn skip(&mut self, n: u64) -> std::io::Result<u64> {
        let at = self.inner.position();
        match self.sink.try_borrow_mut() {
            Ok(mut sink) => sink.spill_stream(at, n, &mut self.inner),
            // The sink itself is skipping (a payload it does not write): a
            // plain skip.
            Err(_) => self.inner.skip(n),
        }
    }
    fn at_eof(&mut self) -> std::io::Result<bool> {
        self.inner.at_eof()
    }
    fn copy_to(&mut self, n: u64, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
        self.inner.copy_to(n, out)
    }
    fn copy_to_file(&mut self, n: u64, out: &mut std::fs::File) -> std::io::Result<u64> {
        self.inner.copy_to_file(n, out)
    }
    #[inline]
    fn buffered(&self) -> &[u8] {
        self.inner.buffered()
    }
    #[inline]
    fn advance(&mut self, n: usize) {
        self.inner.advance(n)
    }
}
