//! Output formats. Reporters read a finished [`Report`] and nothing else:
//! they never judge, filter by policy, or choose severities.

pub mod human;
pub mod json;
pub mod sarif;

use crate::rules::Severity;
use crate::scan::FileReport;

/// Version of the JSON document; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The results of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One entry per scanned file, in the order given.
    pub files: Vec<FileReport>,
}

impl Report {
    /// Findings per severity over all files.
    pub fn counts(&self) -> [usize; 3] {
        let mut c = [0; 3];
        for f in self.files.iter().flat_map(|f| &f.findings) {
            c[f.severity as usize] += 1;
        }
        c
    }
    /// Files that could not be read.
    pub fn unreadable(&self) -> usize {
        self.files.iter().filter(|f| f.error.is_some()).count()
    }
    /// The most severe finding's severity over all files.
    pub fn max_severity(&self) -> Option<Severity> {
        self.files.iter().filter_map(|f| f.max_severity()).max()
    }
}
