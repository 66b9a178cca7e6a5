//! [`scan_paths`]: the scan of what a command line names.
//!
//! Files named are scanned as they are; folders are walked ([`walk`]) and
//! each file found is sniffed by its content ([`sniff::found`]): model files
//! are scanned, the rest are counted as skipped. Paths in folders that match
//! an [`Exclude`] glob are neither sniffed nor entered. Each file is judged by the
//! policy of its folder, looked up once per folder ([`Policies::for_file`]).
//! Sniffing and scanning run on all cores, and the report keeps sorted path
//! order whatever the timing. A [`Progress`] is told as each file starts and
//! ends, so a front end can draw a progress line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::hook::Selection;
use super::sniff::{self, Found};
use super::{FileReport, Scanner};
use crate::policy::config::{ConfigError, Glob, Policies};
use crate::report::{Report, SkipReason, Skipped};

/// How [`scan_paths`] treats the paths it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// In folders, follow symbolic links; each folder is then entered once,
    /// by its canonical path, so a link loop ends. Without it, links found
    /// in folders are skipped ([`SkipReason::Symlink`]).
    pub follow_symlinks: bool,
    /// Copied to [`Report::list_skipped`].
    pub list_skipped: bool,
    /// Run for a git hook: every file given (not a folder) goes through a
    /// [`Selection`], which skips the files that are not pickles, and the
    /// [`Outcome`] carries it for the caller to tell what it skipped.
    pub hook: bool,
    /// Whether the analyses of a lone file are freed (the default); see
    /// [`Scanner::free_analyses`], whose reason holds for a run of one file
    /// in a process that exits after it. When more than one file is
    /// scanned, each file's analyses are freed whatever this says, so that
    /// a folder's never pile up.
    pub free_analyses: bool,
    /// Paths met while walking folders that match one of these are not
    /// sniffed, scanned or (folders) entered: they are skipped
    /// ([`SkipReason::Excluded`]). Paths given are never excluded.
    pub exclude: Vec<Exclude>,
}

impl Default for Options {
    fn default() -> Self {
        Options { follow_symlinks: false, list_skipped: false, hook: false, free_analyses: true, exclude: Vec::new() }
    }
}

/// A `--exclude` glob: the syntax of the policy file's path globs ([`Glob`]).
/// One with a `/` (a trailing one aside) is matched against the path
/// relative to the folder given, as `tests/data/**` or `/model.bin`; one
/// without, as `*.bin` or `tests`, against the name of each file and
/// folder, at any depth (as in ruff and `.gitignore`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclude {
    glob: Glob,
    anywhere: bool,
}

impl Exclude {
    /// Parses an exclude glob.
    ///
    /// # Errors
    /// As [`Glob::parse`].
    pub fn parse(s: &str) -> Result<Exclude, &'static str> {
        Ok(Exclude { glob: Glob::parse(s)?, anywhere: !s.trim_end_matches('/').contains('/') })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        self.glob.as_str()
    }

    /// Whether a path met in a walk, `rel` relative to the folder given
    /// (`/`-separated) and named `name`, is excluded. Its folders were
    /// checked before they were entered.
    fn excludes(&self, rel: &str, name: &str) -> bool {
        self.glob.matches_exactly(if self.anywhere { name } else { rel })
    }
}

impl std::str::FromStr for Exclude {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Exclude, &'static str> {
        Exclude::parse(s)
    }
}

/// What a [`scan_paths`] run found.
#[derive(Debug)]
pub struct Outcome {
    /// The report: one entry per file scanned (or path that could not be
    /// read), in the order given, a folder's files in sorted path order.
    pub report: Report,
    /// With [`Options::hook`]: the files given and what became of them.
    pub hook: Option<Selection>,
}

/// Told how a [`scan_paths`] run advances; the command line draws its
/// progress line from it. Files are scanned by several worker threads at
/// once, hence `Sync` and `&self` while they run.
pub trait Progress: Sync {
    /// The files in `files` are about to be scanned by up to `workers`
    /// threads, numbered from 0.
    fn start(&mut self, _files: &[&Path], _workers: usize) {}
    /// Worker `worker` starts on `path`: the counter, if any, that the scan
    /// adds each byte of the file to as it is read or skipped.
    fn file_started(&self, _worker: usize, _path: &Path) -> Option<&AtomicU64> {
        None
    }
    /// Worker `worker` is done with `path`.
    fn file_done(&self, _worker: usize, _path: &Path) {}
    /// Every file is scanned.
    fn finish(&mut self) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Scans every path in `paths`: a file as it is, a folder walked (see the
/// module docs), each file judged by the policy `policies` finds for it.
///
/// # Errors
/// A policy file found for one of the files has a problem, or contradicts
/// the flags `policies` holds; nothing is scanned then. A file or folder
/// that cannot be read is not an error: its entry in the report says why.
pub fn scan_paths(
    paths: &[PathBuf],
    opts: &Options,
    policies: &mut Policies,
    progress: &mut dyn Progress,
) -> Result<Outcome, ConfigError> {
    let mut selection = opts.hook.then(Selection::default);
    // Walk first, so the progress line knows the total; walk errors keep their place.
    let mut items = Vec::new();
    for p in paths {
        if p.is_dir() {
            items.extend(walk(p, opts.follow_symlinks, &opts.exclude).into_iter().map(Item::from));
        } else if selection.as_mut().is_none_or(|s| s.admit(p)) {
            items.push(Item::Given(p.clone()));
        }
    }
    let jobs = sniff_found(&mut items);
    let chosen = choose_policies(&jobs, policies)?;
    // One file: its analyses are left for the exit to free (see `Scanner::free_analyses`).
    let free = opts.free_analyses || jobs.len() != 1;
    let scanned = scan_jobs(&jobs, &chosen, policies, progress, free);
    for (job, r) in jobs.into_iter().zip(scanned) {
        items[job.index] = if job.if_pickle && !sniff::is_pickle(&r) {
            Item::Skip(job.path, SkipReason::NotPickle)
        } else {
            Item::Scanned(job.path, r)
        };
    }
    let mut report = Report { list_skipped: opts.list_skipped, ..Report::default() };
    for item in items {
        match item {
            Item::Scanned(f, r) => {
                if selection.as_mut().is_none_or(|s| s.keep(&f, &r)) {
                    report.files.push(r);
                }
            }
            Item::Skip(f, why) => report.skipped.push(Skipped { path: f.display().to_string(), reason: why }),
            Item::Error(r) => report.files.push(r),
            Item::Given(_) | Item::Found(_) => unreachable!("every file given or found is scanned or skipped by now"),
        }
    }
    Ok(Outcome { report, hook: selection })
}

/// One entry of the report, in output order, as the run gets to it.
enum Item {
    /// A file named on the command line (or admitted by the hook): scanned whatever it is.
    Given(PathBuf),
    /// A file found in a folder: sniffed first.
    Found(PathBuf),
    /// Not scanned, and why.
    Skip(PathBuf, SkipReason),
    /// A path that could not be read.
    Error(FileReport),
    /// A file scanned, with its report.
    Scanned(PathBuf, FileReport),
}

impl From<Entry> for Item {
    fn from(e: Entry) -> Item {
        match e {
            Entry::File(f) => Item::Found(f),
            Entry::Skip(f, why) => Item::Skip(f, why),
            Entry::Error(d, e) => Item::Error(FileReport::unreadable(d.display().to_string(), e)),
        }
    }
}

/// A file to scan: where its report goes in the list of items.
struct Job {
    index: usize,
    path: PathBuf,
    /// Found on weak evidence: kept only if it is a pickle after all.
    if_pickle: bool,
}

/// Sniffs the files found in folders, on all cores, and returns every file
/// to scan; those that are not model files become skipped items.
fn sniff_found(items: &mut [Item]) -> Vec<Job> {
    let found: Vec<&PathBuf> =
        items.iter().filter_map(|i| if let Item::Found(p) = i { Some(p) } else { None }).collect();
    let sniffed = parallel_map(&found, workers(found.len()), |_, p| sniff::found(p));
    let mut sniffed = sniffed.into_iter();
    let mut jobs = Vec::new();
    for (index, item) in items.iter_mut().enumerate() {
        match item {
            Item::Given(p) => jobs.push(Job { index, path: p.clone(), if_pickle: false }),
            Item::Found(p) => match sniffed.next().expect("one sniff per file found, in the same order") {
                Found::Scan => jobs.push(Job { index, path: p.clone(), if_pickle: false }),
                Found::ScanIfPickle => jobs.push(Job { index, path: p.clone(), if_pickle: true }),
                Found::NotModel => *item = Item::Skip(std::mem::take(p), SkipReason::NotModel),
            },
            Item::Skip(..) | Item::Error(_) | Item::Scanned(..) => {}
        }
    }
    jobs
}

/// The index in `policies` of each job's policy. The policy of a file that
/// is not a link is its folder's: it is looked up once per folder.
fn choose_policies(jobs: &[Job], policies: &mut Policies) -> Result<Vec<usize>, ConfigError> {
    let mut by_dir: HashMap<&Path, usize> = HashMap::new();
    let mut chosen = Vec::with_capacity(jobs.len());
    for job in jobs {
        let f = job.path.as_path();
        let plain = std::fs::symlink_metadata(f).is_ok_and(|m| !m.file_type().is_symlink());
        let dir = f.parent().filter(|_| plain);
        chosen.push(match dir.and_then(|d| by_dir.get(d)) {
            Some(&i) => i,
            None => {
                let i = policies.for_file(f)?;
                if let Some(d) = dir {
                    by_dir.insert(d, i);
                }
                i
            }
        });
    }
    Ok(chosen)
}

/// Scans every job on all cores, each with its policy (`chosen`), telling
/// `progress`; the reports come back in the order of `jobs`.
fn scan_jobs(
    jobs: &[Job],
    chosen: &[usize],
    policies: &Policies,
    progress: &mut dyn Progress,
    free: bool,
) -> Vec<FileReport> {
    let workers = workers(jobs.len());
    let files: Vec<&Path> = jobs.iter().map(|j| j.path.as_path()).collect();
    progress.start(&files, workers);
    let indexed: Vec<(usize, &Path)> = chosen.iter().copied().zip(files).collect();
    let told = &*progress;
    let scanned = parallel_map(&indexed, workers, |w, &(policy_index, f)| {
        let (policy, config) = policies.get(policy_index);
        let levels = config.levels_for(f);
        let mut scanner = Scanner::new(policy).levels(&levels).free_analyses(free);
        if let Some(read) = told.file_started(w, f) {
            scanner = scanner.progress(read);
        }
        let report = scanner.scan_file(f);
        told.file_done(w, f);
        report
    });
    progress.finish();
    scanned
}

/// What walking a folder met, one entry per path.
#[derive(Debug)]
enum Entry {
    /// A regular file (or, when following links, a link to one): sniffed, then maybe scanned.
    File(PathBuf),
    /// Not scanned, and why.
    Skip(PathBuf, SkipReason),
    /// A folder that could not be read.
    Error(PathBuf, String),
}

impl Entry {
    fn path(&self) -> &Path {
        match self {
            Entry::File(p) | Entry::Skip(p, _) | Entry::Error(p, _) => p,
        }
    }
}

/// Every file under `dir`, in sorted path order (component by component, so
/// `a/b/x` comes before `a/c`). `.git` folders are left out. Paths that an
/// `exclude` glob matches are skipped, and folders among them not entered.
/// Symbolic links are skipped unless `follow`; then each folder is entered
/// once, by its canonical path, so a link loop ends. FIFOs, sockets and
/// devices are never opened.
fn walk(dir: &Path, follow: bool, exclude: &[Exclude]) -> Vec<Entry> {
    let walker = Walker { root: dir, follow, exclude };
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if follow {
            // A folder reached a second time (through a link) is not walked again.
            match std::fs::canonicalize(&d) {
                Ok(c) => {
                    if !seen.insert(c) {
                        continue;
                    }
                }
                Err(e) => {
                    out.push(Entry::Error(d, e.to_string()));
                    continue;
                }
            }
        }
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                out.push(Entry::Error(d, e.to_string()));
                continue;
            }
        };
        for e in entries {
            match e {
                Ok(e) => walker.entry(&e, &mut stack, &mut out),
                Err(err) => out.push(Entry::Error(d.clone(), err.to_string())),
            }
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

/// How [`walk`] treats what it meets.
struct Walker<'a> {
    /// The folder given.
    root: &'a Path,
    follow: bool,
    exclude: &'a [Exclude],
}

impl Walker<'_> {
    /// Whether `path`, met in the walk, is excluded.
    fn excluded(&self, path: &Path) -> bool {
        if self.exclude.is_empty() {
            return false;
        }
        let Ok(rel) = path.strip_prefix(self.root) else { return false };
        let parts: Vec<_> = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect();
        let (Some(name), rel) = (parts.last(), parts.join("/")) else { return false };
        self.exclude.iter().any(|x| x.excludes(&rel, name))
    }

    /// One entry of a folder being walked: a folder to walk goes on `stack`,
    /// anything else into `out`.
    fn entry(&self, e: &std::fs::DirEntry, stack: &mut Vec<PathBuf>, out: &mut Vec<Entry>) {
        let path = e.path();
        let ft = match e.file_type() {
            Ok(ft) => ft,
            Err(err) => return out.push(Entry::Error(path, err.to_string())),
        };
        if ft.is_dir() && e.file_name() == ".git" {
            return;
        }
        if self.excluded(&path) {
            return out.push(Entry::Skip(path, SkipReason::Excluded));
        }
        walk_entry(path, ft, self.follow, stack, out);
    }
}

/// One entry of a folder being walked, of type `ft`, not excluded.
fn walk_entry(path: PathBuf, ft: std::fs::FileType, follow: bool, stack: &mut Vec<PathBuf>, out: &mut Vec<Entry>) {
    let (is_dir, is_file) = if ft.is_symlink() {
        if !follow {
            return out.push(Entry::Skip(path, SkipReason::Symlink));
        }
        match std::fs::metadata(&path) {
            Ok(m) => (m.is_dir(), m.is_file()),
            Err(_) => return out.push(Entry::Skip(path, SkipReason::BrokenLink)),
        }
    } else {
        (ft.is_dir(), ft.is_file())
    };
    if is_dir {
        if path.file_name().is_none_or(|n| n != ".git") {
            stack.push(path);
        }
    } else if is_file {
        out.push(Entry::File(path));
    } else {
        out.push(Entry::Skip(path, SkipReason::NotRegular));
    }
}

/// Threads to scan `jobs` items with: one per core, no more than there are items.
fn workers(jobs: usize) -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs).max(1)
}

/// Runs `f(worker, item)` on every item with `workers` threads, each taking
/// the next index from a shared counter. The results come back in the
/// order of `items`, whatever the timing.
fn parallel_map<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    if workers <= 1 || items.len() <= 1 {
        return items.iter().map(|t| f(0, t)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (next, f) = (&next, &f);
                s.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(w, item)));
                    }
                    done
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(done) => {
                    for (i, r) in done {
                        out[i] = Some(r);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    out.into_iter().map(|r| r.expect("every index is taken by exactly one worker")).collect()
}
