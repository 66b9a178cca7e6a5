//! pkinspect: static inspection of Python pickle files.
#![forbid(unsafe_code)]

mod compat_table;
pub mod error;
pub mod limits;
pub mod opcodes;
pub mod pynum;
pub mod pyrepr;
pub mod reader;
pub mod source;
pub mod vm;

pub use error::{Error, ErrorKind, Result};
