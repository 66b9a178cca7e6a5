//! `pkinspect scan`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

use pkinspect::report::{human, json, sarif, Report};
use pkinspect::rules::Severity;
use pkinspect::scan::{scan_file_counted, FileReport};

use super::hook::Selection;
use super::policy::{Policies, PolicyArgs};
use super::progress::Progress;
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
    #[command(flatten)]
    policy: PolicyArgs,
}

/// Files under `dir` worth scanning, in a stable order. Symlinks are not
/// followed and `.git` is skipped.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<FileReport>) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                errors.push(unreadable(&d, &e.to_string()));
                continue;
            }
        };
        let mut here: Vec<_> = entries.filter_map(|e| e.ok()).collect();
        here.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in here {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_symlink() {
                continue;
            }
            if ft.is_dir() {
                if e.file_name() != ".git" {
                    subdirs.push(e.path());
                }
            } else if ft.is_file() && looks_like_pickle(&e.path()) {
                out.push(e.path());
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
}

/// Content sniffing: a binary pickle starts with PROTO (0x80, then 2..=5);
/// protocol 0/1 pickles are recognised by their usual file extensions.
fn looks_like_pickle(path: &Path) -> bool {
    let mut head = [0u8; 2];
    let n = std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut head)).unwrap_or(0);
    if n == 2 && head[0] == 0x80 && head[1] <= 5 {
        return true;
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    matches!(ext.as_str(), "pkl" | "pickle" | "p" | "pck" | "pcl" | "joblib" | "dat" | "data")
}

fn unreadable(path: &Path, e: &str) -> FileReport {
    FileReport::unreadable(path.display().to_string(), e.to_string())
}

impl Opts {
    pub fn run(self) -> anyhow::Result<u8> {
        // A policy file or flag error stops the run before anything is scanned (exit 2).
        let mut policies = Policies::new(&self.policy)?;
        let mut selection = Selection::default();
        let mut report = Report::default();
        // Walk first, so the progress line knows the total; walk errors keep their place.
        let mut todo: Vec<Result<PathBuf, FileReport>> = Vec::new();
        for p in &self.paths {
            if p.is_dir() {
                let mut files = Vec::new();
                let mut errors = Vec::new();
                walk(p, &mut files, &mut errors);
                todo.extend(errors.into_iter().map(Err));
                todo.extend(files.into_iter().map(Ok));
            } else if !self.hook || selection.admit(p) {
                todo.push(Ok(p.clone()));
            }
        }
        let files = todo.iter().filter_map(|t| t.as_ref().ok());
        let mut chosen = files.map(|f| policies.for_file(f)).collect::<Result<Vec<_>, _>>()?.into_iter();
        let mut progress = Progress::new(todo.iter().filter_map(|t| t.as_ref().ok().map(PathBuf::as_path)));
        for t in todo {
            report.files.push(match t {
                Ok(f) => {
                    let (policy, config) = policies.get(chosen.next().context("a policy for every file")?);
                    let r = progress.scan(&f, |read| scan_file_counted(&f, policy, &config.levels_for(&f), read));
                    if !selection.keep(&f, &r) {
                        continue;
                    }
                    r
                }
                Err(unreadable) => unreadable,
            });
        }
        progress.finish();
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
