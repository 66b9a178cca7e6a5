//! `pkinspect extract`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

use super::{EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use pkinspect::extract::Extracted;
use pkinspect::policy::Policy;
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
}

impl Opts {
    pub fn run(self) -> anyhow::Result<u8> {
        if !self.file.is_file() {
            eprintln!("error: {}: not a file", self.file.display());
            return Ok(EXIT_ERROR);
        }
        let policy = Policy::builtin();
        let ex = match pkinspect::extract::extract_file(&self.file, Some(&self.out), &policy) {
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
            print_summary(&ex);
            let bytes: u64 = ex.arrays.iter().map(|a| a.nbytes).sum();
            println!(
                "wrote {} and {} array file(s), {} bytes of array data",
                doc_path.display(),
                ex.arrays.len(),
                bytes
            );
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

/// Prints the top-level attributes as a table.
pub fn print_summary(ex: &Extracted) {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(["name", "type", "dtype", "shape", "size"]);
    for row in ex.summary_rows() {
        t.add_row(row);
    }
    println!("{t}");
}
