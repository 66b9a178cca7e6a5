//! Scanning: files (or bytes) in, judged [`FileReport`]s out.
//!
//! Reading, interpreting and judging stay separate: [`crate::container`]
//! unwraps a file and [`crate::vm`] runs its opcodes, [`crate::rules`]
//! judges what the machine saw against a [`Policy`], and this module only
//! wires them together. Files are read as a stream through a small window,
//! so their size does not set the memory used.
//!
//! The module is split by idea:
//!
//! - here, the [`FileReport`] of one file and how the analyses of its
//!   pickle streams are judged and merged into it;
//! - `file`: [`Scanner`], the options of one scan, and its two entry
//!   points, [`Scanner::scan_file`] and [`Scanner::scan_bytes`];
//! - `paths`: [`scan_paths`], the scan of what a command line names:
//!   folders walked (less what `--exclude` leaves out), files found
//!   sniffed by content, one policy per folder,
//!   and every file scanned on all cores with [`Progress`] told as it goes;
//! - `sniff`: which files are model files, by their content;
//! - `hook`: which files a git hook passes are scanned ([`Selection`]);
//! - `versions`: the library versions a file records (scikit-learn's
//!   `_sklearn_version`).

mod file;
mod hook;
mod paths;
pub mod sniff;
pub mod versions;

pub use file::Scanner;
pub use hook::Selection;
pub use paths::{scan_paths, Exclude, NoProgress, Options, Outcome, Progress};

use crate::container::{Format, Part, Walked};
use crate::policy::Policy;
use crate::rules::{check_with, container_finding, Finding, GlobalUse, Levels, Severity};
use crate::vm::Analysis;

/// One pickle of a scanned file, in brief.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PickleSummary {
    /// The archive member (or decompressed layer) it is in; `None`: the file itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Index in its stream.
    pub index: usize,
    /// Offset of its first opcode.
    pub start: u64,
    /// Offset just past its end.
    pub end: u64,
    /// Protocol declared by PROTO (0 when absent).
    pub protocol: u8,
    /// Highest protocol among its opcodes.
    pub max_opcode_protocol: u8,
    /// Opcodes read.
    pub ops: u64,
}

/// Everything pkinspect says about one file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FileReport {
    /// The path as given.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// What the file was read as.
    pub format: &'static str,
    /// The pickles found.
    pub pickles: Vec<PickleSummary>,
    /// Every distinct global imported, with its verdict.
    pub globals: Vec<GlobalUse>,
    /// Findings, in offset order.
    pub findings: Vec<Finding>,
    /// Findings left out past the per-rule cap, by rule code.
    pub suppressed: std::collections::BTreeMap<&'static str, usize>,
    /// Set when the file could not be read at all.
    pub error: Option<String>,
    /// Archive members that are not pickles (array data, JSON, text).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_members: Vec<String>,
    /// The library versions the file records ([`versions::library_versions`]
    /// over all its parts), sorted; empty when it records none.
    pub versions: Vec<LibraryVersion>,
}

/// A library version a file records about itself (e.g. scikit-learn's
/// `_sklearn_version`), as `versions` in the JSON report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct LibraryVersion {
    /// The library's name as users know it (`scikit-learn`).
    pub library: &'static str,
    /// The version string, as the file records it (checked to be a short
    /// plain version: digits, letters, `.+-_`).
    pub version: String,
}

impl FileReport {
    /// The most severe finding's severity.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// What a walk of `a`'s stream alone, read as a pickle, finds.
    fn pickle_walked(a: Analysis) -> Walked {
        Walked {
            format: Some(Format::Pickle),
            parts: vec![Part { member: None, layers: Vec::new(), analysis: a }],
            ..Walked::default()
        }
    }

    /// Judges every pickle stream found in a file and merges the results.
    pub fn from_walked(path: String, size: u64, walked: Walked, policy: &Policy, levels: &Levels) -> FileReport {
        FileReport::judge(path, size, walked, policy, levels).0
    }

    /// [`FileReport::from_walked`], handing back the analyses judged, for
    /// the caller to free (or not).
    pub(crate) fn judge(
        path: String,
        size: u64,
        mut walked: Walked,
        policy: &Policy,
        levels: &Levels,
    ) -> (FileReport, Vec<Part>) {
        let mut pickles = Vec::new();
        let mut findings = Vec::new();
        let mut globals: Vec<GlobalUse> = Vec::new();
        let mut suppressed = std::collections::BTreeMap::new();
        let mut layers: Vec<&'static str> = Vec::new();
        let mut recorded = std::collections::BTreeSet::new();
        for part in &mut walked.parts {
            name_member(part);
            recorded.extend(versions::library_versions(&part.analysis));
            if layers.is_empty() && !part.layers.is_empty() {
                layers = part.layers.clone();
            }
            let judged = check_with(&part.analysis, policy, levels);
            for (index, p) in part.analysis.pickles.iter().enumerate() {
                pickles.push(PickleSummary {
                    member: part.member.clone(),
                    index,
                    start: p.start,
                    end: p.end,
                    protocol: p.proto,
                    max_opcode_protocol: p.max_opcode_proto,
                    ops: p.ops,
                });
            }
            for mut f in judged.findings {
                f.member = part.member.clone();
                findings.push(f);
            }
            for g in judged.globals {
                match globals.iter_mut().find(|u| u.module == g.module && u.name == g.name) {
                    Some(u) => {
                        u.imports += g.imports;
                        u.calls += g.calls;
                    }
                    None => globals.push(g),
                }
            }
            for (code, n) in judged.suppressed {
                *suppressed.entry(code).or_insert(0) += n;
            }
        }
        findings.extend(walked.notes.iter().filter_map(|note| container_finding(note, levels)));
        let outer = walked.format.unwrap_or(Format::Unknown);
        let format = format_label(outer, &layers);
        let report = FileReport {
            path,
            size,
            format,
            pickles,
            globals,
            findings,
            suppressed,
            error: None,
            skipped_members: walked.skipped_members,
            versions: recorded.into_iter().map(|(library, version)| LibraryVersion { library, version }).collect(),
        };
        (report, walked.parts)
    }

    /// The report for a file that could not be read at all.
    pub fn unreadable(path: String, error: String) -> FileReport {
        FileReport {
            path,
            size: 0,
            format: "unknown",
            pickles: Vec::new(),
            globals: Vec::new(),
            findings: Vec::new(),
            suppressed: Default::default(),
            error: Some(error),
            skipped_members: Vec::new(),
            versions: Vec::new(),
        }
    }
}

/// Names the member a part was read from in its reader error, if any: the
/// error's offset is in the member's own stream, not in the file.
fn name_member(part: &mut Part) {
    if let Some(member) = &part.member {
        part.analysis.error = part.analysis.error.take().map(|e| e.with_member(member.clone()));
    }
}

/// A short description of a file's layers, e.g. `"joblib (zlib)"`.
fn format_label(outer: Format, layers: &[&'static str]) -> &'static str {
    match (outer, layers) {
        (Format::Pickle | Format::Unknown, _) => "pickle",
        (Format::Zlib, _) => "zlib-compressed (joblib)",
        (Format::Gzip, _) => "gzip-compressed",
        (Format::Bz2, _) => "bz2-compressed",
        (Format::Lzma, _) => "lzma-compressed (joblib)",
        (Format::Xz, _) => "xz-compressed",
        (Format::Lz4, _) => "lz4-compressed (joblib)",
        (Format::JoblibZf, _) => "joblib < 0.10 (ZF, zlib)",
        (Format::Zip, _) => "zip",
        (Format::Tar, _) => "tar",
        (Format::Npy, _) => "npy",
    }
}
