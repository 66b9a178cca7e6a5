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
    Analysis, Blob, BlobView, CallKind, CallValue, GlobalName, Items, Partial, StrRef, UnknownWhy, Value, ValueId,
    PREVIEW_BYTES,
};

use crate::limits::Limits;
use crate::pickle::reader::OpReader;
use crate::pickle::source::ByteSource;

/// The hook every entry point installs: joblib's array payloads.
const JOBLIB: &dyn AfterBuild = &crate::container::joblib::ArrayPayloads;

/// Analyses every pickle in `src`.
pub fn analyze<S: ByteSource>(src: S) -> Analysis {
    analyze_with(src, Limits::default())
}

/// Analyses every pickle in `src` under the given limits.
pub fn analyze_with<S: ByteSource>(src: S, limits: Limits) -> Analysis {
    let mut m = Machine::new(JOBLIB);
    m.limits = limits;
    m.run(OpReader::new(src));
    m.out
}

/// Analyses every pickle in `src` for extraction: joblib array payloads and
/// values longer than [`crate::limits::MAX_KEPT_VALUE_BYTES`] go to `sink` (values up to
/// [`crate::limits::MAX_INLINE_ARG`] are kept whole instead of cut).
pub fn analyze_into<S: ByteSource>(src: S, part: usize, sink: SharedSink) -> Analysis {
    sink.borrow_mut().begin(part);
    let mut m = Machine::new(JOBLIB);
    m.keep_max = crate::limits::MAX_INLINE_ARG;
    m.sink = Some(sink.clone());
    m.run(OpReader::new(Spilling { inner: src, sink }));
    m.out
}

/// Analyses every pickle in a byte slice whose first byte is at `base`.
pub fn analyze_bytes(data: &[u8], base: u64) -> Analysis {
    analyze(crate::pickle::source::SliceSource::new(data, base))
}
