//! `pkinspect scan`: files named on the command line are scanned as they
//! are; folders are walked (see [`walk`]) and each file found is sniffed by
//! its content ([`sniff::found`]): model files are scanned, the rest are
//! counted as skipped. Sniffing and scanning run on all cores, and the
//! report keeps sorted path order whatever the timing.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use clap::{Args, ValueEnum};

use pkinspect::report::{human, json, sarif, Report, SkipReason, Skipped};
use pkinspect::rules::Severity;
use pkinspect::scan::{scan_file_counted, scan_file_counted_unfreed, FileReport};

use super::hook::Selection;
use super::policy::{Policies, PolicyArgs};
use super::progress::Progress;
use super::sniff::{self, Found};
use super::{EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Human,
    Json,
    /// SARIF 2.1.0, for code-scanning services.
    Sarif,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum FailOn {
    Info,
    Warning,
    Error,
    Never,
}

/// Options of `pkinspect scan`.
#[derive(Args, Debug)]
pub struct Opts {
    /// Files or folders to scan (folders are walked; see README).
    #[arg(required_unless_present = "hook")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Lowest severity that makes the exit status 1.
    #[arg(long, value_enum, default_value = "warning")]
    fail_on: FailOn,
    /// Also list globals judged safe (human format).
    #[arg(long)]
    show_safe: bool,
    /// Run as a git pre-commit hook: skip given files that are not pickles, and exit 0 when none is left.
    #[arg(long)]
    hook: bool,
    /// In folders, follow symbolic links (each folder is entered once, so link loops end).
    #[arg(long)]
    follow_symlinks: bool,
    /// List the files in folders that were skipped (not model files, links not followed), with the reason.
    #[arg(long)]
    list_skipped: bool,
    #[command(flatten)]
    policy: PolicyArgs,
}

/// What walking a folder met, one entry per path.
#[derive(Debug)]
enum Entry {
    /// A regular file (or, with `--follow-symlinks`, a link to one): sniffed, then maybe scanned.
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
/// `a/b/x` comes before `a/c`). `.git` folders are left out. Symbolic links
/// are skipped unless `follow`; then each folder is entered once, by its
/// canonical path, so a link loop ends. FIFOs, sockets and devices are
/// never opened.
fn walk(dir: &Path, follow: bool) -> Vec<Entry> {
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
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    out.push(Entry::Error(d.clone(), err.to_string()));
                    continue;
                }
            };
            let path = e.path();
            let ft = match e.file_type() {
                Ok(ft) => ft,
                Err(err) => {
                    out.push(Entry::Error(path, err.to_string()));
                    continue;
                }
            };
            let (is_dir, is_file) = if ft.is_symlink() {
                if !follow {
                    out.push(Entry::Skip(path, SkipReason::Symlink));
                    continue;
                }
                match std::fs::metadata(&path) {
                    Ok(m) => (m.is_dir(), m.is_file()),
                    Err(_) => {
                        out.push(Entry::Skip(path, SkipReason::BrokenLink));
                        continue;
                    }
                }
            } else {
                (ft.is_dir(), ft.is_file())
            };
            if is_dir {
                if e.file_name() != ".git" {
                    stack.push(path);
                }
            } else if is_file {
                out.push(Entry::File(path));
            } else {
                out.push(Entry::Skip(path, SkipReason::NotRegular));
            }
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
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

/// One entry of the report, in output order.
enum Item {
    /// A file named on the command line (or admitted by the hook): scanned whatever it is.
    Given(PathBuf),
    /// A file found in a folder: sniffed first.
    Found(PathBuf),
    /// A file found in a folder and not scanned.
    Skip(PathBuf, SkipReason),
    /// A path that could not be read.
    Error(FileReport),
}

impl Opts {
    pub fn run(self) -> anyhow::Result<u8> {
        // A policy file or flag error stops the run before anything is scanned (exit 2).
        let mut policies = Policies::new(&self.policy)?;
        let mut selection = Selection::default();
        let mut report = Report { list_skipped: self.list_skipped, ..Report::default() };
        // Walk first, so the progress line knows the total; walk errors keep their place.
        let mut items = Vec::new();
        for p in &self.paths {
            if p.is_dir() {
                items.extend(walk(p, self.follow_symlinks).into_iter().map(|e| match e {
                    Entry::File(f) => Item::Found(f),
                    Entry::Skip(f, why) => Item::Skip(f, why),
                    Entry::Error(d, e) => Item::Error(FileReport::unreadable(d.display().to_string(), e)),
                }));
            } else if !self.hook || selection.admit(p) {
                items.push(Item::Given(p.clone()));
            }
        }
        // Sniff what the folders held, on all cores: (path, whether to keep it only if it is a pickle).
        let found: Vec<&PathBuf> =
            items.iter().filter_map(|i| if let Item::Found(p) = i { Some(p) } else { None }).collect();
        let mut sniffed = parallel_map(&found, workers(found.len()), |_, p| sniff::found(p)).into_iter();
        let mut jobs: Vec<(usize, &Path, bool)> = Vec::new();
        let mut kinds: Vec<Option<SkipReason>> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            kinds.push(None);
            match item {
                Item::Given(p) => jobs.push((i, p, false)),
                Item::Found(p) => match sniffed.next().context("a sniff for every file found")? {
                    Found::Scan => jobs.push((i, p, false)),
                    Found::ScanIfPickle => jobs.push((i, p, true)),
                    Found::NotModel => kinds[i] = Some(SkipReason::NotModel),
                },
                Item::Skip(..) | Item::Error(_) => {}
            }
        }
        // The policy of a file that is not a link is its folder's: look it up once per folder.
        let mut by_dir: HashMap<&Path, usize> = HashMap::new();
        let mut chosen = Vec::with_capacity(jobs.len());
        for (_, f, _) in &jobs {
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
        // Scan on all cores; each result goes back to its item's place.
        let workers = workers(jobs.len());
        let mut progress = Progress::new(jobs.iter().map(|(_, f, _)| *f), workers);
        let indexed: Vec<(usize, &(usize, &Path, bool))> = chosen.iter().copied().zip(&jobs).collect();
        // One file: its analysis is left for the exit to free (see
        // `scan_file_counted_unfreed`); with more, each is freed when judged.
        let scan = if jobs.len() == 1 { scan_file_counted_unfreed } else { scan_file_counted };
        let scanned = parallel_map(&indexed, workers, |w, (policy_index, (_, f, _))| {
            let (policy, config) = policies.get(*policy_index);
            progress.scan(w, f, |read| scan(f, policy, &config.levels_for(f), read))
        });
        progress.finish();
        let mut results: Vec<Option<FileReport>> = std::iter::repeat_with(|| None).take(items.len()).collect();
        for ((i, _, maybe), r) in jobs.iter().zip(scanned) {
            if *maybe && !sniff::is_pickle(&r) {
                kinds[*i] = Some(SkipReason::NotPickle);
            } else {
                results[*i] = Some(r);
            }
        }
        for ((item, result), kind) in items.into_iter().zip(results).zip(kinds) {
            match (item, result, kind) {
                (Item::Given(f) | Item::Found(f), Some(r), _) => {
                    if self.hook && !selection.keep(&f, &r) {
                        continue;
                    }
                    report.files.push(r);
                }
                (Item::Found(f), None, Some(why)) | (Item::Skip(f, why), _, _) => {
                    report.skipped.push(Skipped { path: f.display().to_string(), reason: why });
                }
                (Item::Error(r), _, _) => report.files.push(r),
                (Item::Given(_) | Item::Found(_), None, _) => anyhow::bail!("a scan result for every file"),
            }
        }
        if self.hook {
            selection.tell(report.files.len());
            if report.files.is_empty() && matches!(self.format, Format::Human) {
                return Ok(EXIT_CLEAN);
            }
        }
        let text = match self.format {
            Format::Human => human::render(&report, human::HumanOptions { show_safe: self.show_safe, width: None }),
            Format::Json => serde_json::to_string_pretty(&json::to_json(&report))? + "\n",
            Format::Sarif => serde_json::to_string_pretty(&sarif::to_sarif(&report))? + "\n",
        };
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes()).context("writing the report")?;
        stdout.flush().context("writing the report")?;
        if report.unreadable() > 0 {
            return Ok(EXIT_ERROR);
        }
        let threshold = match self.fail_on {
            FailOn::Info => Some(Severity::Info),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Error => Some(Severity::Error),
            FailOn::Never => None,
        };
        let failed = matches!((threshold, report.max_severity()), (Some(t), Some(m)) if m >= t);
        Ok(if failed { EXIT_FINDINGS } else { EXIT_CLEAN })
    }
}
