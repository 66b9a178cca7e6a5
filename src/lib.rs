//! pkinspect: static inspection of Python pickle files.
#![forbid(unsafe_code)]

#[rustfmt::skip]
mod compat_table;
pub mod container;
pub mod dis;
pub mod error;
pub mod limits;
pub mod opcodes;
pub mod policy;
pub mod pynum;
pub mod pyrepr;
pub mod reader;
pub mod render;
pub mod report;
pub mod rules;
pub mod scan;
pub mod show;
pub mod source;
pub mod trace;
pub mod vm;

pub use error::{Error, ErrorKind, Result};
