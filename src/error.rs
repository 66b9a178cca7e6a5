//! The library's error type.
//!
//! An [`Error`] is one pointer wide (the details are boxed, as in wasmparser),
//! and always says where: the absolute byte offset in the file and, for a
//! member of an archive, the member's name.

use std::fmt;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A byte that is not a pickle opcode.
    UnknownOpcode(u8),
    /// The input has no bytes at all.
    EmptyInput,
    /// The input ended inside an opcode or its argument.
    UnexpectedEof {
        /// What was being read.
        what: &'static str,
    },
    /// A declared length is negative or larger than what the input holds.
    BadLength {
        /// What the length was for.
        what: &'static str,
        /// The declared length.
        declared: i128,
        /// Bytes left in the input, when known.
        remaining: Option<u64>,
    },
    /// A newline-terminated argument longer than the named limit.
    LineTooLong {
        /// The limit it broke, in bytes.
        limit: usize,
        /// The limit's name (`MAX_LINE_ARG`, `MAX_TEXT_LINE_ARG`).
        name: &'static str,
    },
    /// An argument that does not decode (bad decimal, bad UTF-8, bad quoting).
    BadArgument {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// A named limit of [`crate::limits`] was reached.
    LimitExceeded {
        /// The constant's name.
        limit: &'static str,
        /// Its value.
        value: u64,
    },
    /// Reading the input failed.
    Io(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    offset: u64,
    member: Option<String>,
}

/// An error with the byte offset (and archive member) it happened at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    inner: Box<Inner>,
}

/// `Result` with pkinspect's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error at an absolute file offset.
    #[cold]
    pub fn new(kind: ErrorKind, offset: u64) -> Error {
        Error { inner: Box::new(Inner { kind, offset, member: None }) }
    }
    /// The same error, inside an archive member.
    pub fn with_member(mut self, member: impl Into<String>) -> Error {
        self.inner.member = Some(member.into());
        self
    }
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }
    /// Absolute byte offset in the file.
    pub fn offset(&self) -> u64 {
        self.inner.offset
    }
    /// The archive member, if any.
    pub fn member(&self) -> Option<&str> {
        self.inner.member.as_deref()
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnknownOpcode(b) => write!(f, "unknown opcode byte 0x{b:02x}"),
            ErrorKind::EmptyInput => write!(f, "the input is empty, not a pickle"),
            ErrorKind::UnexpectedEof { what } => write!(f, "input ends inside {what}"),
            ErrorKind::BadLength { what, declared, remaining: Some(r) } => {
                write!(f, "{what} declares length {declared} but {r} bytes remain")
            }
            ErrorKind::BadLength { what, declared, remaining: None } => {
                write!(f, "{what} declares invalid length {declared}")
            }
            ErrorKind::LineTooLong { limit, name } => {
                write!(f, "newline-terminated argument longer than {limit} bytes ({name})")
            }
            ErrorKind::BadArgument { what, detail } => write!(f, "bad {what}: {detail}"),
            ErrorKind::LimitExceeded { limit, value } => write!(f, "limit {limit} ({value}) reached"),
            ErrorKind::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {}", self.inner.kind, self.inner.offset)?;
        if let Some(m) = &self.inner.member {
            write!(f, " in member {m}")?;
        }
        write!(f, ")")
    }
}

impl std::error::Error for Error {}

/// Returns early with an [`Error`] at `offset`.
#[macro_export]
macro_rules! bail {
    ($offset:expr, $kind:expr) => {
        return Err($crate::error::Error::new($kind, $offset))
    };
}
