//! pkinspect: static inspection of Python pickle files.
#![forbid(unsafe_code)]

pub mod error;
pub mod limits;
pub mod opcodes;
pub mod pynum;
pub mod pyrepr;
pub mod reader;
pub mod source;

pub use error::{Error, ErrorKind, Result};
