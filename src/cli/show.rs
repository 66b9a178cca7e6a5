//! `pkinspect show`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::EXIT_CLEAN;
use pkinspect::container::walk_file;
use pkinspect::policy::config::{ConfigSource, Flags, Policies};
use pkinspect::view::parts;

/// Options of `pkinspect show`.
#[derive(Args, Debug)]
pub struct Opts {
    /// The file: a pickle, or any container `scan` reads (compressed joblib, zip and PyTorch checkpoints, .npz,
    /// tar, .npy). Each pickle stream inside is shown after a line naming its member.
    file: PathBuf,
    /// Show only the pickle streams of this archive member (nested members: `outer!inner`).
    #[arg(long, value_name = "NAME", conflicts_with = "summary")]
    member: Option<String>,
    /// Print a table of the top-level object's attributes (name, type, dtype,
    /// shape, size, value) and the library versions the file records instead,
    /// as `extract` does; any supported format.
    #[arg(long)]
    summary: bool,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<u8> {
        if self.summary {
            return self.summary();
        }
        let walked = walk_file(&self.file, false).with_context(|| format!("reading {}", self.file.display()))?;
        let selected = parts::select(&walked, self.member.as_deref())
            .with_context(|| pkinspect::py::repr::escape_for_terminal(&self.file.display().to_string()))?;
        let mut out = BufWriter::new(std::io::stdout().lock());
        if selected.parts.is_empty() {
            writeln!(out, "# {}", parts::no_pickle(&walked))?;
        }
        for (i, part) in selected.parts.iter().enumerate() {
            if selected.headers {
                if i > 0 {
                    writeln!(out)?;
                }
                writeln!(out, "# === {} ===", parts::label(part))?;
            }
            pkinspect::view::show::show(&part.analysis, &mut out)?;
        }
        for note in parts::container_notes(&walked, self.member.as_deref()) {
            writeln!(out, "# container: {note}")?;
        }
        out.flush()?;
        Ok(EXIT_CLEAN)
    }

    /// `--summary`: what `extract` prints, writing nothing, with the policy
    /// `extract` would find for the file.
    fn summary(&self) -> anyhow::Result<u8> {
        let mut policies = Policies::new(&ConfigSource::Search, &Flags::default())?;
        let ex = super::extract::extract_judged(&self.file, None, &mut policies)?
            .with_context(|| format!("reading {}", self.file.display()))?;
        let mut out = std::io::stdout().lock();
        super::extract::print_summary(&ex, &mut out)?;
        out.flush()?;
        Ok(EXIT_CLEAN)
    }
}
