//! Every way converting a file to `.skops` can fail. Nothing is written
//! when any of them happens (the output is renamed into place only after
//! the whole archive was written).

use std::fmt;
use std::io;

use serde_json::Value as J;

use crate::extract::ValueError;

/// A problem found by the semantic checks: state that would load but is
/// inconsistent (docs/convert.md "skops", "Semantic checks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistency {
    /// The attribute path of the value (`estimators_.3.tree_.nodes`).
    pub path: String,
    /// What is wrong, with the numbers.
    pub message: String,
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a file was not converted.
#[derive(Debug)]
#[non_exhaustive]
pub enum SkopsError {
    /// Reading the input or writing the output failed.
    Io(io::Error),
    /// The scan did not pass the file (a finding at or above
    /// [`REFUSE_AT`](crate::convert::REFUSE_AT)): it is not converted.
    Refused {
        /// The scan's findings, as in the `extract` document.
        findings: Vec<J>,
        /// Values that could not be extracted.
        errors: Vec<ValueError>,
    },
    /// Values the extraction could not rebuild (each with its offset and
    /// archive member).
    Extract(Vec<ValueError>),
    /// The file holds no pickle, or more than one object graph.
    Pickles(usize),
    /// A value skops cannot express (a call, a custom class, a lambda, a
    /// tensor, ...), at its attribute path.
    Unsupported {
        /// The attribute path (`steps.1.1.func`).
        path: String,
        /// What the value is and why it cannot be stored.
        what: String,
    },
    /// The semantic checks found inconsistent state.
    Inconsistent(Vec<Inconsistency>),
    /// The graph is deeper than [`crate::limits::MAX_EXTRACT_DEPTH`].
    TooDeep(String),
}

impl SkopsError {
    /// True for a refusal because of what the file holds (a dangerous call,
    /// inconsistent state): exit status 1, as a scan finding. Everything
    /// else is an error (exit status 2).
    pub fn is_refusal(&self) -> bool {
        matches!(self, SkopsError::Refused { .. } | SkopsError::Inconsistent(_))
    }
}

impl fmt::Display for SkopsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkopsError::Io(e) => write!(f, "{e}"),
            SkopsError::Refused { findings, .. } => {
                write!(f, "refused: the scan found {} finding(s)", findings.len())
            }
            SkopsError::Extract(errors) => {
                write!(f, "{} value(s) could not be extracted", errors.len())?;
                for e in errors {
                    let member = e.member.as_deref().map(|m| format!(" (member {m})")).unwrap_or_default();
                    write!(f, "; offset {}{member}: {}", e.offset, e.error)?;
                }
                Ok(())
            }
            SkopsError::Pickles(0) => write!(f, "the file holds no pickle to convert"),
            SkopsError::Pickles(n) => write!(f, "the file holds {n} pickles; a .skops file holds one object"),
            SkopsError::Unsupported { path, what } => write!(f, "cannot express {path} in skops: {what}"),
            SkopsError::Inconsistent(list) => {
                write!(f, "refused: {} inconsistent value(s): ", list.len())?;
                for (i, x) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{x}")?;
                }
                Ok(())
            }
            SkopsError::TooDeep(path) => {
                write!(f, "{path}: nested deeper than MAX_EXTRACT_DEPTH ({})", crate::limits::MAX_EXTRACT_DEPTH)
            }
        }
    }
}

impl std::error::Error for SkopsError {}

impl From<io::Error> for SkopsError {
    fn from(e: io::Error) -> Self {
        SkopsError::Io(e)
    }
}
