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
    /// One entry per scanned file, in the order given (a folder's files in
    /// sorted path order).
    pub files: Vec<FileReport>,
    /// Files met while walking folders and not scanned, in sorted path order.
    pub skipped: Vec<Skipped>,
    /// Whether the reports list [`Report::skipped`] file by file (`--list-skipped`),
    /// rather than only count it.
    pub list_skipped: bool,
}

/// A file met while walking a folder and not scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The path, as walked.
    pub path: String,
    /// Why it was not scanned.
    pub reason: SkipReason,
}

/// Why a walked file was not scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Its content is not a pickle or a container pkinspect reads.
    NotModel,
    /// It starts like a protocol 0/1 pickle (or has a model extension), but
    /// does not decode as one before doing anything a loader would do.
    NotPickle,
    /// A FIFO, socket or device: never opened.
    NotRegular,
    /// A symbolic link, not followed (no `--follow-symlinks`).
    Symlink,
    /// With `--follow-symlinks`: a link to nothing.
    BrokenLink,
    /// Matched by a `--exclude` glob: not looked at (a folder is not entered).
    Excluded,
}

impl SkipReason {
    /// The reason as a short phrase; also its JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotModel => "not a model file",
            SkipReason::NotPickle => "does not decode as a pickle",
            SkipReason::NotRegular => "not a regular file",
            SkipReason::Symlink => "symbolic link, not followed",
            SkipReason::BrokenLink => "broken symbolic link",
            SkipReason::Excluded => "excluded",
        }
    }
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
    /// Skipped files that are not model files (every reason but
    /// [`SkipReason::Symlink`] and [`SkipReason::Excluded`]: paths excluded
    /// are listed with `--list-skipped` only).
    pub fn skipped_not_model(&self) -> usize {
        self.skipped.iter().filter(|s| !matches!(s.reason, SkipReason::Symlink | SkipReason::Excluded)).count()
    }
    /// Symbolic links met in folders and not followed.
    pub fn symlinks_not_followed(&self) -> usize {
        self.skipped.iter().filter(|s| s.reason == SkipReason::Symlink).count()
    }
    /// The most severe finding's severity over all files.
    pub fn max_severity(&self) -> Option<Severity> {
        self.files.iter().filter_map(|f| f.max_severity()).max()
    }
}
