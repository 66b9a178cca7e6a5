//! `pkinspect scan`: its flags, its output and its exit status. What is
//! scanned, folders walked and files sniffed, is the library's
//! [`scan_paths`]; this module draws its progress line ([`Progress`]) and
//! prints what the git hook skipped.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use pkinspect::report::{human, json, sarif};
use pkinspect::rules::Severity;
use pkinspect::scan::{scan_paths, Exclude, Options, Outcome};

use super::policy::PolicyArgs;
use super::progress::Progress;
use super::{print, EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};

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
    /// Files or folders to scan (folders are walked; see docs/scan.md).
    #[arg(required_unless_present = "hook")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Lowest severity that makes the exit status 1.
    #[arg(long, value_enum, default_value = "warning")]
    fail_on: FailOn,
    /// Also list globals judged safe (human format); shows every file, as --verbose does.
    #[arg(long)]
    show_safe: bool,
    /// Human format: show every file and every finding, info included. By default only the files with a finding at
    /// or above warning (or --fail-on, when that is lower) are shown, with those findings, then the summary line.
    #[arg(short, long)]
    verbose: bool,
    /// Human format: print only the summary line (and the files that could not be read). The exit status is the same.
    #[arg(short, long, conflicts_with_all = ["verbose", "show_safe"])]
    quiet: bool,
    /// Run as a git pre-commit hook: skip given files that are not pickles, and exit 0 when none is left.
    #[arg(long)]
    hook: bool,
    /// In folders, follow symbolic links (each folder is entered once, so link loops end).
    #[arg(long)]
    follow_symlinks: bool,
    /// List the files in folders that were skipped (not model files, links not followed), with the reason.
    #[arg(long)]
    list_skipped: bool,
    /// In folders, leave out paths matching GLOB (repeatable): relative to the folder given, or any file or folder
    /// name when GLOB has no `/`. Paths named on the command line are still scanned.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<Exclude>,
    #[command(flatten)]
    policy: PolicyArgs,
}

impl Opts {
    /// What the human format shows: with neither -v nor -q, the files with a
    /// finding at or above the report level, which is `warning`, or `info`
    /// with `--fail-on info` (so that every file that fails the run is shown).
    fn detail(&self) -> human::Detail {
        if self.quiet {
            human::Detail::Summary
        } else if self.verbose || self.show_safe {
            human::Detail::All
        } else if self.fail_on == FailOn::Info {
            human::Detail::AtLeast(Severity::Info)
        } else {
            human::Detail::AtLeast(Severity::Warning)
        }
    }

    pub fn run(self) -> anyhow::Result<u8> {
        // A policy file or flag error stops the run before anything is scanned (exit 2).
        let mut policies = self.policy.policies()?;
        let detail = self.detail();
        let opts = Options {
            follow_symlinks: self.follow_symlinks,
            list_skipped: self.list_skipped,
            hook: self.hook,
            // The process exits once the report is printed.
            free_analyses: false,
            exclude: self.exclude,
        };
        let Outcome { report, hook } = scan_paths(&self.paths, &opts, &mut policies, &mut Progress::default())?;
        if let Some(selection) = hook {
            for message in selection.messages(report.files.len()) {
                eprintln!("pkinspect: {message}");
            }
            if report.files.is_empty() && matches!(self.format, Format::Human) {
                return Ok(EXIT_CLEAN);
            }
        }
        let text = match self.format {
            Format::Human => {
                human::render(&report, human::HumanOptions { show_safe: self.show_safe, width: None, detail })
            }
            Format::Json => serde_json::to_string_pretty(&json::to_json(&report))? + "\n",
            Format::Sarif => serde_json::to_string_pretty(&sarif::to_sarif(&report))? + "\n",
        };
        print(text).context("writing the report")?;
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
