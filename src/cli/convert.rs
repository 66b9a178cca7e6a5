//! `pkinspect convert`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::policy::PolicyArgs;
use super::{EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use pkinspect::convert::check::Inconsistency;
use pkinspect::convert::skops::{write_skops, SkopsError};
use pkinspect::convert::{self, ConvertError, Outcome, Target};
use pkinspect::extract::ValueError;
use pkinspect::policy::Policy;
use pkinspect::py::repr::escape_for_terminal;
use pkinspect::rules::Levels;

const AFTER_HELP: &str = "\
Exit status (convert):
  0  the output was written (what the format cannot hold is listed on stderr)
  1  refused: the scan found something at or above warning (listed); nothing written
  2  the file could not be read, a value could not be extracted, the target cannot
     write it, or a policy file or flag is invalid; nothing written

The file is read as data (the same walk as scan and extract), never loaded.";

/// The formats `convert` writes.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum To {
    /// skops (.skops)
    Skops,
    /// safetensors (.safetensors)
    Safetensors,
}

/// Options of `pkinspect convert`.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Opts {
    /// The pickle, joblib, PyTorch, .npy or .npz file.
    file: PathBuf,
    /// The format to write.
    #[arg(long = "to", value_enum)]
    to: To,
    /// The output file, replaced only once it is complete.
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// Print nothing but errors and what was left out.
    #[arg(short, long)]
    quiet: bool,
    // The policy the scan judges the file by, found and applied as `scan` does.
    #[command(flatten)]
    policy: PolicyArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<u8> {
        // A policy file or flag error stops the run before anything is read (exit 2).
        let mut policies = self.policy.policies()?;
        if !self.file.is_file() {
            eprintln!("error: {}: not a file", self.file.display());
            return Ok(EXIT_ERROR);
        }
        let index = policies.for_file(&self.file)?;
        let (policy, config) = policies.get(index);
        let levels = config.levels_for(&self.file);
        if let To::Skops = self.to {
            return self.run_skops(policy, &levels);
        }
        let shown = self.file.display().to_string();
        match convert::convert_file(&self.file, &self.out, Target::Safetensors, policy, &levels) {
            Ok(Outcome::Written(w)) => {
                for l in &w.left_out {
                    eprintln!(
                        "note: left out {} ({}): {}",
                        escape_for_terminal(&l.name),
                        escape_for_terminal(&l.what),
                        l.why
                    );
                }
                if !self.quiet {
                    let mut out = std::io::stdout().lock();
                    writeln!(
                        out,
                        "wrote {}: {} tensor(s), {} bytes of data, {} left out",
                        self.out.display(),
                        w.items,
                        w.bytes,
                        w.left_out.len()
                    )?;
                    out.flush()?;
                }
                Ok(EXIT_CLEAN)
            }
            Ok(Outcome::Refused { findings, errors }) => Ok(print_refused(&shown, &findings, &errors)),
            Ok(Outcome::Inconsistent(found)) => Ok(print_inconsistent(&shown, &found)),
            Err(ConvertError::Values(errors)) => Ok(print_unextracted(&shown, &errors)),
            Err(e) => {
                eprintln!("error: {shown}: {}; nothing written", escape_for_terminal(&e.to_string()));
                Ok(EXIT_ERROR)
            }
        }
    }
}

impl Opts {
    /// `--to skops`: the report says which scikit-learn version wrote the
    /// model and which types `skops.io.load` will ask to trust.
    fn run_skops(&self, policy: &Policy, levels: &Levels) -> anyhow::Result<u8> {
        let shown = self.file.display().to_string();
        let report = match write_skops(&self.file, &self.out, policy, levels) {
            Ok(r) => r,
            Err(SkopsError::Refused { findings, errors }) => return Ok(print_refused(&shown, &findings, &errors)),
            Err(SkopsError::Inconsistent(found)) => return Ok(print_inconsistent(&shown, &found)),
            Err(SkopsError::Extract(errors)) => return Ok(print_unextracted(&shown, &errors)),
            Err(e) => {
                let msg = escape_for_terminal(&e.to_string());
                eprintln!("error: {}: {msg}; nothing written", self.file.display());
                return Ok(if e.is_refusal() { EXIT_FINDINGS } else { EXIT_ERROR });
            }
        };
        if self.quiet {
            return Ok(EXIT_CLEAN);
        }
        let mut out = std::io::stdout().lock();
        let (file, class) = (self.out.display(), escape_for_terminal(&report.root_class));
        writeln!(
            out,
            "wrote {file} (skops protocol 2): {class}, {} member(s), {} bytes",
            report.members + 1,
            report.bytes
        )?;
        for v in &report.versions {
            writeln!(out, "saved with {} {}: load it with {} {}", v.library, v.version, v.library, v.version)?;
        }
        if report.versions.is_empty() {
            writeln!(out, "the file records no scikit-learn version")?;
        }
        if report.untrusted.is_empty() {
            writeln!(out, "untrusted types: none (skops.io.load needs no trusted=)")?;
        } else {
            let n = report.untrusted.len();
            writeln!(out, "untrusted types ({n}), to pass as skops.io.load(..., trusted=[...]):")?;
            for t in &report.untrusted {
                writeln!(out, "  {}", escape_for_terminal(t))?;
            }
        }
        out.flush()?;
        Ok(EXIT_CLEAN)
    }
}

/// Findings (or value errors) listed when a file is not converted; a file
/// can hold thousands, and `pkinspect scan` lists them all.
const SHOWN: usize = 10;

/// A file the scan did not pass: its findings (and values that could not
/// be extracted), the same for every target. Returns the exit status.
fn print_refused(shown: &str, findings: &[serde_json::Value], errors: &[ValueError]) -> u8 {
    eprintln!(
        "error: {shown}: refused: the scan found {} finding(s); nothing written \
         (run `pkinspect scan` for details)",
        findings.len()
    );
    // The most severe first (those that refuse the file), in file order.
    let rank = |f: &&serde_json::Value| match f.get("severity").and_then(|v| v.as_str()) {
        Some("error") => 0,
        Some("warning") => 1,
        _ => 2,
    };
    let mut ordered: Vec<&serde_json::Value> = findings.iter().collect();
    ordered.sort_by_key(rank);
    for f in ordered.iter().take(SHOWN) {
        eprintln!("  {}", finding_line(f));
    }
    if findings.len() > SHOWN {
        eprintln!("  ... and {} more finding(s)", findings.len() - SHOWN);
    }
    print_errors(shown, errors);
    EXIT_FINDINGS
}

/// State that would load but is inconsistent, one value a line.
fn print_inconsistent(shown: &str, found: &[Inconsistency]) -> u8 {
    eprintln!("error: {shown}: refused: {} inconsistent value(s); nothing written", found.len());
    for f in found {
        eprintln!("  {}", escape_for_terminal(&f.to_string()));
    }
    EXIT_FINDINGS
}

/// Values the extraction could not rebuild, each with its offset.
fn print_unextracted(shown: &str, errors: &[ValueError]) -> u8 {
    print_errors(shown, errors);
    eprintln!("error: {shown}: {} value(s) could not be extracted; nothing written", errors.len());
    EXIT_ERROR
}

/// One finding of the document, on one line.
fn finding_line(f: &serde_json::Value) -> String {
    let text = |k: &str| f.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    let member = f.get("member").and_then(|m| m.as_str()).map(|m| format!(" (member {m})")).unwrap_or_default();
    let offset = f.get("offset").map(|o| o.to_string()).unwrap_or_default();
    escape_for_terminal(&format!(
        "{} {}{member} at offset {offset}: {}",
        text("rule"),
        text("severity"),
        text("message")
    ))
}

fn print_errors(shown: &str, errors: &[ValueError]) {
    if errors.len() > SHOWN {
        eprintln!("error: {shown}: {} value(s) could not be extracted; the first {SHOWN}:", errors.len());
    }
    for e in errors.iter().take(SHOWN) {
        let member = e.member.as_deref().map(|m| format!(" (member {m})")).unwrap_or_default();
        eprintln!("error: {shown}{member} at offset {}: {}", e.offset, escape_for_terminal(&e.error.to_string()));
    }
}
