//! The facade: scan one input and produce a [`FileReport`].
//!
//! Reading, interpreting and judging stay separate: [`crate::vm`] runs the
//! opcodes, [`crate::rules`] judges what it saw against a [`Policy`], and this
//! module only wires them together for a path or a byte slice. Files are read
//! as a stream through a small window, so their size does not set the memory
//! used.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::policy::Policy;
use crate::rules::{check_with, Finding, GlobalUse, Levels, Severity};
use crate::source::{Input, ReadSource};
use crate::vm::{analyze, analyze_bytes, Analysis};

/// One pickle of a scanned file, in brief.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PickleSummary {
    /// Index in the file.
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
}

impl FileReport {
    /// The most severe finding's severity.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    fn from_analysis(path: String, size: u64, a: &Analysis, policy: &Policy, levels: &Levels) -> FileReport {
        let judged = check_with(a, policy, levels);
        let pickles = a
            .pickles
            .iter()
            .enumerate()
            .map(|(index, p)| PickleSummary {
                index,
                start: p.start,
                end: p.end,
                protocol: p.proto,
                max_opcode_protocol: p.max_opcode_proto,
                ops: p.ops,
            })
            .collect();
        FileReport {
            path,
            size,
            format: "pickle",
            pickles,
            globals: judged.globals,
            findings: judged.findings,
            suppressed: judged.suppressed,
            error: None,
        }
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
        }
    }
}

/// Scans a pickle held in memory.
pub fn scan_bytes(name: &str, data: &[u8], policy: &Policy) -> FileReport {
    let a = analyze_bytes(data, 0);
    FileReport::from_analysis(name.to_string(), data.len() as u64, &a, policy, &Levels::default())
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
    let shown = path.display().to_string();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return FileReport::unreadable(shown, e.to_string()),
    };
    let size = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return FileReport::unreadable(shown, "not a regular file".into()),
        Err(e) => return FileReport::unreadable(shown, e.to_string()),
    };
    let a = analyze(ReadSource::new(Counted { file, read }, Some(size)));
    if let Some(crate::ErrorKind::Io(e)) = a.error.as_ref().map(|e| e.kind()) {
        if a.ops == 0 {
            return FileReport::unreadable(shown, e.clone());
        }
    }
    FileReport::from_analysis(shown, size, &a, policy, levels)
}
