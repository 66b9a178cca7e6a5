//! [`Scanner`]: the options of one scan, and its two entry points, a file
//! on disk ([`Scanner::scan_file`], streamed and unwrapped layer by layer)
//! and a pickle in memory ([`Scanner::scan_bytes`]).

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::FileReport;
use crate::container::{Part, Walker};
use crate::pickle::source::Input;
use crate::policy::Policy;
use crate::rules::Levels;
use crate::vm::Analyzer;

/// How to scan: the policy to judge globals with and the options of the
/// run, set one by one, ripgrep's `SearcherBuilder` style, then used for
/// any number of files.
///
/// ```no_run
/// use pkinspect::policy::Policy;
/// use pkinspect::scan::Scanner;
/// let policy = Policy::builtin();
/// let report = Scanner::new(&policy).scan_file("model.pkl".as_ref());
/// println!("{:?}", report.max_severity());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Scanner<'a> {
    policy: &'a Policy,
    /// Rule severities; `None`: every rule's default.
    levels: Option<&'a Levels>,
    /// Where to count the bytes read; `None`: nowhere.
    progress: Option<&'a AtomicU64>,
    /// See [`Scanner::free_analyses`].
    free_analyses: bool,
}

impl<'a> Scanner<'a> {
    /// A scan that judges globals by `policy`, gives every rule its default
    /// severity, counts nothing and frees what it analysed.
    pub fn new(policy: &'a Policy) -> Scanner<'a> {
        Scanner { policy, levels: None, progress: None, free_analyses: true }
    }

    /// Rule severities from `levels` (a policy file's `[rules]` and
    /// `[[ignore]]` for the scanned path) instead of the defaults.
    pub fn levels(mut self, levels: &'a Levels) -> Scanner<'a> {
        self.levels = Some(levels);
        self
    }

    /// Adds to `read` each byte of the input as it is read or skipped, so
    /// that another thread can show progress through a large file. Bytes
    /// read a second time (another reading of the same layer) count again,
    /// so a progress display clamps the count to the input's size.
    pub fn progress(mut self, read: &'a AtomicU64) -> Scanner<'a> {
        self.progress = Some(read);
        self
    }

    /// Whether the machine's analyses are freed once judged (the default).
    ///
    /// Set `false` only in a process that exits soon after the scan, such as
    /// the command line scanning one file: freeing walks every value of
    /// every pickle (millions for a large one, a tenth of the time of the
    /// whole scan) only for the operating system to drop the same pages at
    /// exit, so the analyses are left to the exit (`std::mem::forget`).
    /// Anything that scans many files in one process must free them, or its
    /// memory grows with every file.
    pub fn free_analyses(mut self, free: bool) -> Scanner<'a> {
        self.free_analyses = free;
        self
    }

    /// Scans the file at `path`, streaming it, through every container
    /// layer pkinspect reads. A file that cannot be opened or read is a
    /// report with [`FileReport::error`] set.
    pub fn scan_file(&self, path: &Path) -> FileReport {
        let no_count = AtomicU64::new(0);
        let read = self.progress.unwrap_or(&no_count);
        let (report, parts) = self.scan_file_parts(path, read);
        self.dispose(parts);
        report
    }

    /// Scans `data` as a pickle stream (or several back to back) held in
    /// memory, reported under `name`. Containers are not unwrapped: `data`
    /// is read as pickle opcodes from its first byte.
    pub fn scan_bytes(&self, name: &str, data: &[u8]) -> FileReport {
        let a = Analyzer::new().run(data);
        let walked = FileReport::pickle_walked(a);
        let default = Levels::default();
        let levels = self.levels.unwrap_or(&default);
        let (report, parts) = FileReport::judge(name.to_string(), data.len() as u64, walked, self.policy, levels);
        if let Some(read) = self.progress {
            read.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        self.dispose(parts);
        report
    }

    /// Drops the analyses judged, or leaves them to the exit (see
    /// [`Scanner::free_analyses`]).
    fn dispose(&self, parts: Vec<Part>) {
        if self.free_analyses {
            drop(parts);
        } else {
            std::mem::forget(parts);
        }
    }

    fn scan_file_parts(&self, path: &Path, read: &AtomicU64) -> (FileReport, Vec<Part>) {
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
        let walked = Walker::new().file(Counted { file, read }, size, path);
        if let [part] = &walked.parts[..] {
            if let Some(crate::ErrorKind::Io(e)) = part.analysis.error.as_ref().map(|e| e.kind()) {
                if part.analysis.ops == 0 && part.member.is_none() && part.layers.is_empty() {
                    return (FileReport::unreadable(shown, e.clone()), Vec::new());
                }
            }
        }
        let default = Levels::default();
        FileReport::judge(shown, size, walked, self.policy, self.levels.unwrap_or(&default))
    }
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
