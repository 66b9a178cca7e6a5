//! The facade: scan one input and produce a [`FileReport`].
//!
//! Reading, interpreting and judging stay separate: [`crate::vm`] runs the
//! opcodes, [`crate::rules`] judges what it saw against a [`Policy`], and this
//! module only wires them together for a path or a byte slice. Files are read
//! as a stream through a small window, so their size does not set the memory
//! used.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::container::{Format, Part, Walked, Walker};
use crate::pickle::source::Input;
use crate::policy::Policy;
use crate::rules::{check_with, container_finding, Finding, GlobalUse, Levels, Severity};
use crate::vm::{Analysis, Analyzer};

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
}

impl FileReport {
    /// The most severe finding's severity.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    fn from_analysis(path: String, size: u64, a: Analysis, policy: &Policy, levels: &Levels) -> FileReport {
        let walked = Walked {
            format: Some(Format::Pickle),
            parts: vec![Part { member: None, layers: Vec::new(), analysis: a }],
            ..Walked::default()
        };
        FileReport::from_walked(path, size, walked, policy, levels)
    }

    /// Judges every pickle stream found in a file and merges the results.
    pub fn from_walked(path: String, size: u64, walked: Walked, policy: &Policy, levels: &Levels) -> FileReport {
        FileReport::judge(path, size, walked, policy, levels).0
    }

    /// [`FileReport::from_walked`], handing back the analyses judged, for
    /// the caller to free (or not).
    fn judge(path: String, size: u64, walked: Walked, policy: &Policy, levels: &Levels) -> (FileReport, Vec<Part>) {
        let mut pickles = Vec::new();
        let mut findings = Vec::new();
        let mut globals: Vec<GlobalUse> = Vec::new();
        let mut suppressed = std::collections::BTreeMap::new();
        let mut layers: Vec<&'static str> = Vec::new();
        for part in &walked.parts {
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
        }
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

/// Scans a pickle held in memory.
pub fn scan_bytes(name: &str, data: &[u8], policy: &Policy) -> FileReport {
    let a = Analyzer::new().run(data);
    FileReport::from_analysis(name.to_string(), data.len() as u64, a, policy, &Levels::default())
}

/// Scans a file, streaming it.
pub fn scan_file(path: &Path, policy: &Policy) -> FileReport {
    scan_file_with(path, policy, &Levels::default())
}

/// Scans a file, streaming it, with rule severities from `levels` (a
/// policy file's `[rules]` and `[[ignore]]` for this path).
pub fn scan_file_with(path: &Path, policy: &Policy, levels: &Levels) -> FileReport {
    scan_file_counted(path, policy, levels, &AtomicU64::new(0))
}

/// A file that adds every byte read or skipped to a shared counter.
struct Counted<'a> {
    file: File,
    read: &'a AtomicU64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Seek for Counted<'_> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

impl Input for Counted<'_> {
    fn skip_forward(&mut self, n: u64) -> io::Result<u64> {
        let k = self.file.skip_forward(n)?;
        self.read.fetch_add(k, Ordering::Relaxed);
        Ok(k)
    }
}

/// Like [`scan_file_with`], and adds to `read` each byte of the file as it
/// is read or skipped, so that another thread can show progress through a
/// large file. The count ends at most at the file's size.
pub fn scan_file_counted(path: &Path, policy: &Policy, levels: &Levels, read: &AtomicU64) -> FileReport {
    scan_file_parts(path, policy, levels, read).0
}

/// [`scan_file_counted`] for a process that exits soon after: the file's
/// analyses are never freed. Freeing them walks every value of every
/// pickle (millions for a large one, a tenth of the time of the whole
/// scan) only for the operating system to drop the same pages at exit. The
/// CLI uses it when it scans one file; anything scanning many files in one
/// process must use [`scan_file_counted`].
pub fn scan_file_counted_unfreed(path: &Path, policy: &Policy, levels: &Levels, read: &AtomicU64) -> FileReport {
    let (report, parts) = scan_file_parts(path, policy, levels, read);
    std::mem::forget(parts);
    report
}

fn scan_file_parts(path: &Path, policy: &Policy, levels: &Levels, read: &AtomicU64) -> (FileReport, Vec<Part>) {
    let shown = path.display().to_string();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return (FileReport::unreadable(shown, e.to_string()), Vec::new()),
    };
    let size = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return (FileReport::unreadable(shown, "not a regular file".into()), Vec::new()),
        Err(e) => return (FileReport::unreadable(shown, e.to_string()), Vec::new()),
    };
    let mut walker = Walker::new();
    walker.seekable(Counted { file, read }, Some(size), None);
    // joblib < 0.10 companion files are looked up next to the file only.
    walker.companions(path.parent().map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d }));
    let walked = walker.finish();
    if let [part] = &walked.parts[..] {
        if let Some(crate::ErrorKind::Io(e)) = part.analysis.error.as_ref().map(|e| e.kind()) {
            if part.analysis.ops == 0 && part.member.is_none() && part.layers.is_empty() {
                return (FileReport::unreadable(shown, e.clone()), Vec::new());
            }
        }
    }
    FileReport::judge(shown, size, walked, policy, levels)
}
