//! `pkinspect trace`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use pkinspect::pickle::source::ReadSource;
use pkinspect::policy::Policy;
use pkinspect::view::trace::write_trace;
use pkinspect::vm::Analyzer;

use super::{EXIT_CLEAN, EXIT_ERROR};

/// Options of `pkinspect trace`.
#[derive(Args, Debug)]
pub struct Opts {
    /// Pickle files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<u8> {
        let policy = Policy::builtin();
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut code = EXIT_CLEAN;
        for path in &self.files {
            let shown = path.display().to_string();
            let opened = std::fs::File::open(path).and_then(|f| f.metadata().map(|m| (f, m)));
            let (file, meta) = match opened {
                Ok((f, m)) if m.is_file() => (f, m),
                Ok(_) => {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"op": "file", "path": shown, "error": "not a regular file"})
                    )?;
                    code = EXIT_ERROR;
                    continue;
                }
                Err(e) => {
                    writeln!(out, "{}", serde_json::json!({"op": "file", "path": shown, "error": e.to_string()}))?;
                    code = EXIT_ERROR;
                    continue;
                }
            };
            let analysis = Analyzer::new().run(ReadSource::new(file, Some(meta.len())));
            write_trace(&shown, &analysis, &policy, &mut out)?;
        }
        out.flush()?;
        Ok(code)
    }
}
