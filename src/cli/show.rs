//! `pkinspect show`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::EXIT_CLEAN;

/// Options of `pkinspect show`.
#[derive(Args, Debug)]
pub struct Opts {
    /// The pickle file.
    file: PathBuf,
    /// Print a table of the top-level object's attributes (name, type, dtype,
    /// shape, size) instead, as `extract` does; any supported format.
    #[arg(long)]
    summary: bool,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<u8> {
        if self.summary {
            let policy = pkinspect::policy::Policy::builtin();
            let ex = pkinspect::extract::extract_file(&self.file, None, &policy)
                .with_context(|| format!("reading {}", self.file.display()))?;
            super::extract::print_summary(&ex);
            return Ok(EXIT_CLEAN);
        }
        let f = std::fs::File::open(&self.file).with_context(|| format!("opening {}", self.file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        let analysis = pkinspect::vm::Analyzer::new().run(pkinspect::pickle::source::ReadSource::new(f, size));
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        pkinspect::view::show::show(&analysis, &mut out)?;
        out.flush()?;
        Ok(EXIT_CLEAN)
    }
}
