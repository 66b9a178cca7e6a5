//! The symbolic machine: runs a pickle's opcodes on symbolic values, never
//! importing or calling anything, and records what a real unpickler would do.
//!
//! Values live in an arena ([`Value`], addressed by [`ValueId`]); the stack
//! and the memo hold ids, so a memo reference never copies a value and a
//! memo-reference "bomb" stays a small DAG. Mutating opcodes (`APPEND`,
//! `SETITEMS`, `BUILD`, ...) update the arena value in place, as CPython
//! mutates the shared object.
//!
//! The stack discipline follows `Lib/pickle.py`: `MARK` pushes the current
//! stack on a meta-stack and starts an empty one; opcodes that take a mark pop
//! it back. Where CPython would raise (stack underflow, a missing memo key, an
//! `APPEND` to a tuple, ...) the machine records an [`Anomaly`], pushes an
//! [`Value::Unknown`] where a value was expected, and keeps going, so that what
//! a file does after a deliberate inconsistency is still seen.
//!
//! The machine holds no policy: it never decides what is dangerous. It only
//! reports [`Event`]s — every import, call, `BUILD`, persistent id and anomaly,
//! each with its byte offset — for [`crate::rules`] to judge.
//!
//! The code is split by idea: `value` holds the symbolic values and the
//! [`Analysis`] they are collected in; `event` the [`Event`]s and
//! [`Anomaly`]s; `sink` extraction's plumbing ([`Sink`], [`Graph`]);
//! `machine` the machine's state, the loop over the pickles of a file, the
//! memo and the imports; `exec` the opcode dispatch and its fast path;
//! `build` BUILD, the hooks it can plant and the method calls they turn
//! APPEND and SETITEM into. Bytes that a format writes after a BUILD
//! (joblib's array payloads) are read by a hook the machine calls, in
//! `src/container/joblib.rs`: the machine itself does not know their
//! format.

mod build;
mod event;
mod exec;
mod machine;
mod sink;
#[cfg(test)]
mod tests;
mod value;

pub(crate) use build::{AfterBuild, Trailer};
pub use event::{Anomaly, Event, EventKind, PickleInfo, SHOWN_NAME_BYTES};
pub(crate) use machine::Halt;
pub use machine::{map_py2_name, Machine};
pub use sink::{Graph, SharedSink, Sink, Spilling, View};
pub use value::{
    Analysis, Blob, BlobView, CallKind, CallValue, DictRef, GlobalName, Items, Partial, StrRef, UnknownWhy, Value,
    ValueId, PREVIEW_BYTES,
};

use crate::limits::Limits;
use crate::pickle::reader::OpReader;
use crate::pickle::record::{Recorded, Recorder};
use crate::pickle::source::{ByteSource, IntoByteSource};

/// The hook every analysis installs: joblib's array payloads.
const JOBLIB: &dyn AfterBuild = &crate::container::joblib::ArrayPayloads;

/// One run of the machine, with its options: build it with
/// [`Analyzer::new`], set what differs from the defaults, then
/// [`Analyzer::run`] it over each pickle stream.
///
/// ```
/// use pkinspect::vm::Analyzer;
/// let a = Analyzer::new().run(b"cos\nsystem\n(S'echo hi'\ntR.");
/// assert_eq!(a.pickles.len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct Analyzer {
    /// The machine's limits ([`Limits::default`] unless set).
    limits: Limits,
    /// Extraction's sink and the number of the stream in its file.
    sink: Option<(usize, SharedSink)>,
    /// Keep the bytes read ([`Analysis::recorded`]).
    record: bool,
}

impl Analyzer {
    /// An analysis with the default [`Limits`], keeping values up to
    /// [`crate::limits::MAX_KEPT_VALUE_BYTES`] and handing nothing to a sink.
    pub fn new() -> Analyzer {
        Analyzer::default()
    }

    /// Runs under `limits` instead of the defaults (tests lower them to
    /// reach each one cheaply).
    pub fn limits(mut self, limits: Limits) -> Analyzer {
        self.limits = limits;
        self
    }

    /// Analyses for extraction: joblib array payloads and values longer
    /// than [`crate::limits::MAX_KEPT_VALUE_BYTES`] go to `sink`, which is told that
    /// stream number `part` of its file begins; values up to
    /// [`crate::limits::MAX_INLINE_ARG`] are kept whole instead of cut.
    pub fn extract_into(mut self, part: usize, sink: SharedSink) -> Analyzer {
        self.sink = Some((part, sink));
        self
    }

    /// Keeps a copy of the bytes read in [`Analysis::recorded`], gaps where
    /// they were skipped (`pkinspect dis` lists a stream inside a container
    /// from it; see [`crate::pickle::record`]).
    pub fn record(mut self, on: bool) -> Analyzer {
        self.record = on;
        self
    }

    /// Analyses every pickle in `src`: any [`ByteSource`],
    /// or bytes in memory, whose first byte is then offset 0 (for another
    /// base, pass a [`SliceSource`](crate::pickle::source::SliceSource)).
    pub fn run<I: IntoByteSource>(&self, src: I) -> Analysis {
        let src = src.into_byte_source();
        if self.record {
            let mut recorded = Recorded::default();
            let mut a = self.run_source(Recorder::new(src, &mut recorded));
            a.recorded = Some(recorded);
            return a;
        }
        self.run_source(src)
    }

    fn run_source<S: ByteSource>(&self, src: S) -> Analysis {
        let mut m = Machine::new(JOBLIB);
        m.limits = self.limits;
        match &self.sink {
            None => m.run(OpReader::new(src)),
            Some((part, sink)) => {
                sink.borrow_mut().begin(*part);
                m.keep_max = crate::limits::MAX_INLINE_ARG;
                m.sink = Some(sink.clone());
                m.run(OpReader::new(Spilling { inner: src, sink: sink.clone() }));
            }
        }
        m.out
    }
}
