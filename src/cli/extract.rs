//! `pkinspect extract`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::policy::PolicyArgs;
use super::{EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use pkinspect::extract::Extracted;
use pkinspect::policy::config::Policies;
use pkinspect::rules::Severity;

/// Options of `pkinspect extract`.
#[derive(Args, Debug)]
pub struct Opts {
    /// The pickle, joblib, PyTorch, .npy or .npz file.
    file: PathBuf,
    /// Output folder: <stem>.json, arrays/*.npy and blobs/*.bin are written there.
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
    // The policy the findings and the exit status are judged by, found and applied as `scan` does.
    #[command(flatten)]
    policy: PolicyArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<u8> {
        // A policy file or flag error stops the run before anything is written (exit 2).
        let mut policies = self.policy.policies()?;
        if !self.file.is_file() {
            eprintln!("error: {}: not a file", self.file.display());
            return Ok(EXIT_ERROR);
        }
        let ex = match extract_judged(&self.file, Some(&self.out), &mut policies)? {
            Ok(ex) => ex,
            Err(e) => {
                eprintln!("error: {}: {e}", self.file.display());
                return Ok(EXIT_ERROR);
            }
        };
        let stem = self.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let doc_path = self.out.join(format!("{}.json", pkinspect::extract::store::safe_name(&stem)));
        pkinspect::extract::write_doc(&ex.doc, &doc_path).with_context(|| format!("writing {}", doc_path.display()))?;
        if !self.quiet {
            let mut out = std::io::stdout().lock();
            print_summary(&ex, &mut out)?;
            let bytes: u64 = ex.arrays.iter().map(|a| a.nbytes).sum();
            writeln!(
                out,
                "wrote {} and {} array file(s), {} bytes of array data",
                doc_path.display(),
                ex.arrays.len(),
                bytes
            )?;
            out.flush()?;
        }
        for e in &ex.errors {
            let member = e.member.as_deref().map(|m| format!(" (member {m})")).unwrap_or_default();
            eprintln!(
                "error: {}{member} at offset {}: {}",
                self.file.display(),
                e.offset,
                pkinspect::py::repr::escape_for_terminal(&e.error.to_string())
            );
        }
        if ex.findings > 0 && !self.quiet {
            eprintln!(
                "note: {} scan finding(s) are listed in the document; run `pkinspect scan` for details",
                ex.findings
            );
        }
        Ok(if !ex.errors.is_empty() {
            EXIT_ERROR
        } else if ex.max_severity.is_some_and(|s| s >= Severity::Warning) {
            EXIT_FINDINGS
        } else {
            EXIT_CLEAN
        })
    }
}

/// Extracts `file` (into `out`; `None`: a dry run) judged by the policy
/// that applies to it in `policies`, with its rule severities. The outer
/// error is the policy file's, the inner one the file's.
pub fn extract_judged(
    file: &Path,
    out: Option<&Path>,
    policies: &mut Policies,
) -> anyhow::Result<std::io::Result<Extracted>> {
    let index = policies.for_file(file)?;
    let (policy, config) = policies.get(index);
    let levels = config.levels_for(file);
    Ok(pkinspect::extract::extract_file_with(file, out, policy, &levels))
}

/// Columns the summary is cut to when stdout is not a terminal.
const PIPED_WIDTH: usize = 120;

/// Writes the attribute table, its values cut to the terminal's width, and
/// the library versions the file records.
pub fn print_summary(ex: &Extracted, out: &mut impl Write) -> std::io::Result<()> {
    let width = if std::io::stdout().is_terminal() {
        crossterm::terminal::size().ok().map(|(w, _)| usize::from(w)).filter(|&w| w > 0).unwrap_or(80)
    } else {
        PIPED_WIDTH
    };
    out.write_all(ex.summary_table(width).as_bytes())
}
