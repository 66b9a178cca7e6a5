//! Events: what the machine saw at each offset (imports, calls, BUILDs,
//! persistent ids, joblib payloads) and the [`Anomaly`]s it noted.

use super::value::{CallKind, ValueId};
use crate::pickle::opcodes::Opcode;
use std::sync::Arc;

/// Longest module, name or attribute text an anomaly keeps (cut with
/// [`cut_text`](crate::py::repr::cut_text) or
/// [`cut_dotted`](crate::py::repr::cut_dotted)): an event per import or
/// BUILD must not hold a copy of a name of up to 1 MiB.
pub const SHOWN_NAME_BYTES: usize = 256;

/// An inconsistency CPython would stumble on, or a trick a scanner must see.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// An opcode needed more stack items than there were.
    StackUnderflow {
        /// The opcode.
        opcode: &'static str,
    },
    /// An opcode needed a mark and none was open.
    NoMark {
        /// The opcode.
        opcode: &'static str,
    },
    /// A container opcode applied to the wrong type (e.g. `APPEND` to a tuple).
    TypeMismatch {
        /// The opcode.
        opcode: &'static str,
        /// What it needed.
        expected: &'static str,
    },
    /// `GET` of a memo key never stored.
    MemoMissing {
        /// The key.
        key: u64,
    },
    /// `PUT` over a memo key already stored (a memo swap).
    MemoOverwrite {
        /// The key.
        key: u64,
    },
    /// `PUT`/`MEMOIZE` with nothing (or a mark) on the stack.
    MemoEmptyStack,
    /// A negative or unusable memo key.
    MemoBadKey,
    /// `STACK_GLOBAL` operands that are not plain strings.
    ComputedGlobal,
    /// A global name with dots (an attribute path).
    DottedName {
        /// The full name.
        name: String,
    },
    /// An opcode newer than the protocol the stream declared.
    AboveProtocol {
        /// The opcode.
        opcode: &'static str,
        /// The protocol the opcode needs.
        needs: u8,
        /// The protocol declared by `PROTO`.
        declared: u8,
    },
    /// `PROTO` with an unsupported protocol, or not at the start.
    BadProto {
        /// The protocol number.
        proto: i64,
    },
    /// An opcode whose bytes run past the end of its `FRAME`.
    FrameCrossing {
        /// Where the frame ended.
        frame_end: u64,
    },
    /// A `FRAME` before the previous one was used up.
    FrameNotFinished {
        /// Where the previous frame would have ended.
        frame_end: u64,
    },
    /// A `FRAME` longer than the rest of the input.
    FramePastInput,
    /// `STOP` before the end of its `FRAME`: buffered and unbuffered readers
    /// start the next pickle at different offsets.
    StopInsideFrame {
        /// Where the frame ends.
        frame_end: u64,
    },
    /// An argument the C unpickler and `pickle.py` decode differently.
    ParserDifferential {
        /// The opcode.
        opcode: &'static str,
    },
    /// `EXT` with code 0 or an unregistered code.
    BadExtension {
        /// The code.
        code: i64,
    },
    /// `DICT`/`SETITEMS` with an odd number of items.
    OddItems {
        /// The opcode.
        opcode: &'static str,
    },
    /// The input ended between opcodes before `STOP`.
    MissingStop,
    /// Bytes after the last `STOP` that do not start a pickle.
    TrailingData {
        /// How many bytes.
        len: u64,
    },
    /// Another pickle follows the first one.
    AnotherPickle {
        /// Its index in the file (1 for the second).
        index: usize,
    },
    /// A `BUILD` state that sets a dunder attribute such as `__setstate__`.
    DunderState {
        /// The attribute.
        attr: String,
    },
    /// A joblib array payload that starts inside a `FRAME` (joblib reads
    /// payloads from the file, past whatever the unpickler buffered).
    PayloadInFrame,
    /// joblib alignment padding that joblib would not write (length 0 or over
    /// 16, or bytes other than 0xFF): room to hide data.
    UnusualPadding {
        /// The padding length byte.
        len: u8,
    },
    /// A named limit was reached; analysis of the file stopped.
    LimitExceeded {
        /// The constant's name.
        limit: &'static str,
    },
}

impl Anomaly {
    /// One line saying what happened. Text from the file is escaped.
    pub fn message(&self) -> String {
        use crate::py::repr::escape_for_terminal as esc;
        match self {
            Anomaly::StackUnderflow { opcode } => format!("{opcode} pops more items than the stack holds"),
            Anomaly::NoMark { opcode } => format!("{opcode} needs a MARK and none is open"),
            Anomaly::TypeMismatch { opcode, expected } => {
                format!("{opcode} applied to something that is not a {expected}")
            }
            Anomaly::OddItems { opcode } => format!("{opcode} with an odd number of items"),
            Anomaly::MemoMissing { key } => format!("memo key {key} is read but was never stored"),
            Anomaly::MemoOverwrite { key } => format!("memo key {key} is overwritten with a different object"),
            Anomaly::MemoEmptyStack => "memo store with an empty stack".to_string(),
            Anomaly::MemoBadKey => "negative or unusable memo key".to_string(),
            Anomaly::ComputedGlobal => "STACK_GLOBAL operands are not plain strings".to_string(),
            Anomaly::DottedName { name } => format!("global {} is an attribute path", esc(name)),
            Anomaly::AboveProtocol { opcode, needs, declared } => {
                format!("{opcode} needs protocol {needs} but the stream declares {declared}")
            }
            Anomaly::BadProto { proto } => format!("PROTO {proto} is invalid or repeated"),
            Anomaly::FrameCrossing { frame_end } => {
                format!("opcode runs past the end of its FRAME at offset {frame_end}")
            }
            Anomaly::FrameNotFinished { frame_end } => {
                format!("FRAME starts before the previous frame ends at offset {frame_end}")
            }
            Anomaly::FramePastInput => "FRAME is longer than the rest of the input".to_string(),
            Anomaly::StopInsideFrame { frame_end } => {
                format!("STOP before the end of its FRAME at offset {frame_end}: readers disagree on where the next pickle starts")
            }
            Anomaly::ParserDifferential { opcode } => {
                format!("{opcode} argument means different things to the C unpickler and pickle.py")
            }
            Anomaly::BadExtension { code } => format!("EXT code {code} cannot be resolved"),
            Anomaly::MissingStop => "the input ends before STOP".to_string(),
            Anomaly::TrailingData { len } => format!("{len} bytes after the last STOP are not a pickle"),
            Anomaly::AnotherPickle { index } => format!("pickle {} starts here", index + 1),
            Anomaly::DunderState { attr } => format!("BUILD state sets {}", esc(attr)),
            Anomaly::PayloadInFrame => "joblib array payload starts inside a FRAME".to_string(),
            Anomaly::UnusualPadding { len } => {
                format!("joblib alignment padding (length byte {len}) that joblib would not write")
            }
            Anomaly::LimitExceeded { limit } => format!("limit {limit} reached; analysis stopped"),
        }
    }
}

/// What happened at one offset.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A global was imported.
    Import {
        /// The opcode that imported it.
        via: Opcode,
        /// The module, as imported (Python 2 names mapped). Shared with the
        /// pushed value: a `STACK_GLOBAL` of memoised names costs the file
        /// five bytes, and must not cost a copy of names of up to 1 MiB.
        module: Arc<str>,
        /// The name, possibly dotted.
        name: Arc<str>,
        /// The module and name as written, when the mapping changed them.
        written: Option<(String, String)>,
        /// The pushed value.
        value: ValueId,
    },
    /// A `STACK_GLOBAL` with computed operands: an import nobody can name.
    ComputedImport {
        /// The pushed value.
        value: ValueId,
    },
    /// Something was called.
    Call {
        /// How.
        kind: CallKind,
        /// The callable.
        func: ValueId,
        /// Positional arguments.
        args: ValueId,
        /// Keyword arguments.
        kwargs: Option<ValueId>,
        /// The result.
        result: ValueId,
    },
    /// `BUILD` applied a state.
    Build {
        /// The object.
        target: ValueId,
        /// The state.
        state: ValueId,
    },
    /// A persistent id was handed to the loader's `persistent_load`.
    PersistentId {
        /// The id value.
        pid: ValueId,
    },
    /// An `EXT` code was used.
    Extension {
        /// The code.
        code: i64,
        /// The global it resolves to through an in-stream registration
        /// (each part cut to [`SHOWN_NAME_BYTES`]; the import that follows
        /// has the whole names).
        resolved: Option<(String, String)>,
    },
    /// `NEXT_BUFFER`: data outside the file.
    ExternalBuffer,
    /// A joblib array payload after a `NumpyArrayWrapper` BUILD.
    ArrayPayload {
        /// The wrapper object.
        wrapper: ValueId,
        /// Absolute offset of the raw array bytes (or of the nested pickle).
        offset: u64,
        /// Their length.
        len: u64,
        /// For object arrays: what the nested pickle returned.
        nested: Option<ValueId>,
    },
    /// An inconsistency.
    Anomaly(Anomaly),
}

/// An event with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Absolute offset of the opcode.
    pub offset: u64,
    /// Index of the pickle in the file (0 for the first).
    pub pickle: usize,
    /// What happened.
    pub kind: EventKind,
}

/// One pickle of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleInfo {
    /// Offset of its first opcode.
    pub start: u64,
    /// Offset just past its `STOP` (or where analysis ended).
    pub end: u64,
    /// Protocol declared by `PROTO` (0 when absent).
    pub proto: u8,
    /// The highest protocol among its opcodes.
    pub max_opcode_proto: u8,
    /// What `STOP` returned.
    pub root: Option<ValueId>,
    /// Opcodes read.
    pub ops: u64,
}
