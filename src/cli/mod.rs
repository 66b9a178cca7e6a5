//! Command-line definitions: one `Opts` struct per subcommand, each with `run()`.
//!
//! Output goes to stdout through a writer whose errors propagate ([`print`],
//! or a locked, buffered stdout and `?`), never through `println!`, which
//! panics when the reader has gone away (`pkinspect rules | head`); `main`
//! ends such a run quietly with status 0.

#[deny(clippy::print_stdout)]
mod convert;
#[deny(clippy::print_stdout)]
mod dis;
#[deny(clippy::print_stdout)]
mod docs;
#[deny(clippy::print_stdout)]
mod extract;
#[deny(clippy::print_stdout)]
mod policy;
#[deny(clippy::print_stdout)]
mod progress;
#[deny(clippy::print_stdout)]
mod rules;
#[deny(clippy::print_stdout)]
mod scan;
#[deny(clippy::print_stdout)]
mod show;
#[deny(clippy::print_stdout)]
mod trace;

use std::io::Write;

use clap::{Parser, Subcommand};

/// Exit status: nothing at or above `--fail-on` was found.
pub const EXIT_CLEAN: u8 = 0;
/// Exit status: a finding at or above `--fail-on`.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: a file could not be read, a policy file or flag is invalid, or the command line was wrong.
pub const EXIT_ERROR: u8 = 2;

const AFTER_HELP: &str = "\
Exit status (scan):
  0  no finding at or above --fail-on
  1  a finding at or above --fail-on (default: warning)
  2  a file could not be read, a policy file or --allow/--deny is invalid, or a usage
     error (takes precedence over 1)

pkinspect never imports or runs Python: every file is read as data.";

/// Says what a Python pickle would import and call if loaded, without running it.
#[derive(Parser, Debug)]
#[command(name = "pkinspect", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Scan files (or folders) and report dangerous, unknown and safe globals.
    Scan(scan::Opts),
    /// Disassemble a pickle, as `python -m pickletools` does.
    Dis(dis::Opts),
    /// Print the object graph a pickle builds, as Python-like code.
    Show(show::Opts),
    /// Write the object graph as JSON and every array as .npy, without running anything.
    Extract(extract::Opts),
    /// Rewrite a model as .skops or .safetensors, refusing any file the scan does not pass; nothing is run.
    Convert(convert::Opts),
    /// Print the import/call events as normalised JSON lines (for the differential oracle).
    Trace(trace::Opts),
    /// List every rule with its code, severity and summary.
    Rules(rules::ListOpts),
    /// Explain one rule.
    Explain(rules::ExplainOpts),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(docs::CompletionsOpts),
    /// Print the manual page as roff, or write every page with --out-dir.
    Man(docs::ManOpts),
}

/// Writes `text` to stdout and flushes it. A write error, a closed pipe
/// included, is returned rather than panicking as `print!` would.
fn print(text: impl AsRef<[u8]>) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_ref())?;
    stdout.flush()
}

/// Parses the command line and runs it; returns the exit code.
pub fn run() -> anyhow::Result<u8> {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_CLEAN };
            let _ = e.print();
            return Ok(code);
        }
    };
    match cli.command {
        Command::Scan(o) => o.run(),
        Command::Dis(o) => o.run(),
        Command::Show(o) => o.run(),
        Command::Trace(o) => o.run(),
        Command::Extract(o) => o.run(),
        Command::Convert(o) => o.run(),
        Command::Rules(o) => o.run(),
        Command::Explain(o) => o.run(),
        Command::Completions(o) => o.run(),
        Command::Man(o) => o.run(),
    }
}
