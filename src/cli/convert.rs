//! `pkinspect convert FILE --to skops -o OUT`: a minimal front for
//! [`pkinspect::convert::skops::write_skops`] (the full command, with the
//! other targets, is the shared `convert` skeleton).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::policy::PolicyArgs;
use super::{EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use pkinspect::convert::skops::{write_skops, SkopsError};

/// The formats `convert` writes.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Target {
    /// A `.skops` file (skops 0.16, protocol 2) of a scikit-learn model.
    Skops,
}

/// Options of `pkinspect convert`.
#[derive(Args, Debug)]
pub struct Opts {
    /// The pickle or joblib file.
    file: PathBuf,
    /// The format to write.
    #[arg(long = "to", value_enum)]
    to: Target,
    /// The file to write (replaced only once the whole file is written).
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
    // The policy the scan judges the file by, found and applied as `scan` does.
    #[command(flatten)]
    policy: PolicyArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<u8> {
        let mut policies = self.policy.policies()?;
        if !self.file.is_file() {
            eprintln!("error: {}: not a file", self.file.display());
            return Ok(EXIT_ERROR);
        }
        let index = policies.for_file(&self.file)?;
        let (policy, config) = policies.get(index);
        let levels = config.levels_for(&self.file);
        let Target::Skops = self.to;
        let report = match write_skops(&self.file, &self.out, policy, &levels) {
            Ok(r) => r,
            Err(e) => {
                let msg = pkinspect::py::repr::escape_for_terminal(&e.to_string());
                eprintln!("error: {}: {msg}; nothing written", self.file.display());
                return Ok(if e.is_refusal() { EXIT_FINDINGS } else { exit_of(&e) });
            }
        };
        if self.quiet {
            return Ok(EXIT_CLEAN);
        }
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "wrote {} (skops protocol 2): {}, {} member(s), {} bytes",
            self.out.display(),
            report.root_class,
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
            writeln!(
                out,
                "untrusted types ({}), to pass as skops.io.load(..., trusted=[...]):",
                report.untrusted.len()
            )?;
            for t in &report.untrusted {
                writeln!(out, "  {t}")?;
            }
        }
        out.flush()?;
        Ok(EXIT_CLEAN)
    }
}

fn exit_of(_: &SkopsError) -> u8 {
    EXIT_ERROR
}
