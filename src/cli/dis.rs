//! `pkinspect dis`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::EXIT_CLEAN;
use pkinspect::container::walk_file;
use pkinspect::view::dis::{dis_all, dis_stream};
use pkinspect::view::parts;
use pkinspect::vm::EventKind;

/// Options of `pkinspect dis`.
#[derive(Args, Debug)]
pub struct Opts {
    /// The file: a pickle, or any container `scan` reads (compressed joblib, zip and PyTorch checkpoints, .npz,
    /// tar, .npy). Each pickle stream inside is listed after a line naming its member.
    file: PathBuf,
    /// List only the pickle streams of this archive member (nested members: `outer!inner`).
    #[arg(long, value_name = "NAME")]
    member: Option<String>,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<u8> {
        let walked = walk_file(&self.file, true).with_context(|| format!("reading {}", self.file.display()))?;
        let selected = parts::select(&walked, self.member.as_deref())
            .with_context(|| pkinspect::py::repr::escape_for_terminal(&self.file.display().to_string()))?;
        let mut out = BufWriter::new(std::io::stdout().lock());
        if selected.parts.is_empty() {
            writeln!(out, "--- {} ---", parts::no_pickle(&walked))?;
        }
        match &selected.parts[..] {
            // A file that is one pickle stream, with no joblib array in it:
            // listed from the file's bytes exactly as pickletools lists it.
            [part] if !selected.headers && !has_payloads(&part.analysis) => {
                let len = std::fs::metadata(&self.file)?.len();
                match part.analysis.recorded.as_ref().and_then(|r| r.whole(len)) {
                    Some(data) => dis_all(data, &mut out)?,
                    None => {
                        let data =
                            std::fs::read(&self.file).with_context(|| format!("reading {}", self.file.display()))?;
                        dis_all(&data, &mut out)?;
                    }
                }
            }
            selected_parts => {
                for (i, part) in selected_parts.iter().enumerate() {
                    if selected.headers {
                        if i > 0 {
                            writeln!(out)?;
                        }
                        writeln!(out, "=== {} ===", parts::label(part))?;
                    }
                    match &part.analysis.recorded {
                        Some(rec) => dis_stream(&part.analysis, rec, &mut out)?,
                        None => writeln!(out, "!! the bytes of this stream were not kept")?,
                    }
                }
            }
        }
        for note in parts::container_notes(&walked, self.member.as_deref()) {
            writeln!(out, "!! container: {note}")?;
        }
        out.flush()?;
        Ok(EXIT_CLEAN)
    }
}

/// Whether the machine read joblib array payloads in `a`.
fn has_payloads(a: &pkinspect::vm::Analysis) -> bool {
    a.events.iter().any(|e| matches!(e.kind, EventKind::ArrayPayload { .. }))
}
