//! pkinspect: what a Python pickle, joblib or PyTorch file would do if it
//! were loaded — read statically, never executed.
//!
//! Data flows down one path, one module per stage (docs/architecture.md):
//!
//! 1. [`container`] decides what a file is by its bytes and unwraps it
//!    (compressed joblib, zip and tar archives, PyTorch checkpoints, `.npy`),
//!    streaming, under the limits in [`limits`]; what it finds wrong is a
//!    typed [`container::Problem`], not a finding;
//! 2. [`pickle`] decodes opcodes ([`pickle::reader`] over a
//!    [`pickle::source`], from the one table in [`pickle::opcodes`]), every
//!    one with its absolute offset;
//! 3. [`vm`] runs them on symbolic values and records imports, calls, BUILDs
//!    and anomalies as events — it never imports or calls anything, and holds
//!    no policy;
//! 4. [`policy`] classifies global names and the uses a file may make of them
//!    (allowlist, denylist, policy files), and [`rules`] turns events and
//!    container problems into findings with stable codes;
//! 5. [`scan`] ties the stages together per file and walks folders (one
//!    policy per folder, on all cores), and
//!    [`report`] prints human, JSON or SARIF output; [`view`] holds the other
//!    views of the same stream (`dis`, `show`, `trace`), and [`extract`]
//!    writes the object graph as JSON and `.npy` files.
//!
//! Nothing here runs Python. Every length a file declares is checked against
//! what remains and a named limit before anything is allocated.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod container;
pub mod convert;
pub mod error;
pub mod extract;
pub mod limits;
#[macro_use]
pub mod pickle;
pub mod policy;
pub mod py;
pub mod report;
pub mod rules;
pub mod scan;
pub mod view;
pub mod vm;

pub use error::{Error, ErrorKind, Result};
