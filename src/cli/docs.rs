//! `pkinspect completions SHELL` and `pkinspect man`: shell completion
//! scripts (`clap_complete`) and roff manual pages (`clap_mangen`), both
//! generated from the clap definitions in [`super::Cli`], so they cannot
//! drift from the real options.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{print, Cli, EXIT_CLEAN, EXIT_ERROR};

/// Options of `pkinspect completions`.
#[derive(Args, Debug)]
pub struct CompletionsOpts {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Options of `pkinspect man`.
#[derive(Args, Debug)]
pub struct ManOpts {
    /// Print the page of this subcommand (e.g. `scan`) instead of the main page.
    subcommand: Option<String>,
    /// Write every page (pkinspect.1, pkinspect-scan.1, ...) into this folder instead of printing one.
    #[arg(long, value_name = "DIR", conflicts_with = "subcommand")]
    out_dir: Option<PathBuf>,
}

/// The full command definition, as the pages and scripts describe it.
fn command() -> clap::Command {
    // `help` is a clap built-in; it needs no page of its own.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The page of `cmd`, every page footed with "pkinspect VERSION" (clap
/// gives subcommands no version of their own).
fn man(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(concat!("pkinspect ", env!("CARGO_PKG_VERSION")))
}

impl CompletionsOpts {
    /// Prints the completion script to stdout.
    pub fn run(self) -> anyhow::Result<u8> {
        let mut cmd = Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, "pkinspect", &mut out);
        print(out).context("writing the completion script")?;
        Ok(EXIT_CLEAN)
    }
}

impl ManOpts {
    /// Prints one page as roff, or writes them all to `--out-dir`.
    pub fn run(self) -> anyhow::Result<u8> {
        let cmd = command();
        if let Some(dir) = &self.out_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for page in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
                man(page.clone()).generate_to(dir).with_context(|| format!("writing pages to {}", dir.display()))?;
            }
            return Ok(EXIT_CLEAN);
        }
        let page = match &self.subcommand {
            None => cmd,
            Some(name) => match cmd.find_subcommand(name) {
                Some(sub) => sub.clone(),
                None => {
                    let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                    eprintln!("pkinspect: no subcommand {name:?}; the subcommands are {}", names.join(", "));
                    return Ok(EXIT_ERROR);
                }
            },
        };
        let mut out = Vec::new();
        man(page).render(&mut out).context("rendering the manual page")?;
        print(out).context("writing the manual page")?;
        Ok(EXIT_CLEAN)
    }
}
