//! `pkinspect dis`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::EXIT_CLEAN;

/// Options of `pkinspect dis`.
#[derive(Args, Debug)]
pub struct Opts {
    /// The pickle file.
    file: PathBuf,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<u8> {
        let data = std::fs::read(&self.file).with_context(|| format!("reading {}", self.file.display()))?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        pkinspect::view::dis::dis_all(&data, &mut out)?;
        out.flush()?;
        Ok(EXIT_CLEAN)
    }
}
