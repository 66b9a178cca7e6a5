//! `pkinspect convert`: a pickle, joblib file or PyTorch checkpoint
//! rewritten in a format that loads without running code (docs/convert.md).
//!
//! Every target shares one flow, held here:
//!
//! 1. the file is read by the same static walk as `scan` and `extract`
//!    ([`crate::extract::extract_file_with`]): nothing is imported or
//!    called; the arrays are written back to back into one file (an
//!    arena: for `safetensors` their data alone, into the output's
//!    temporary file for a large input, else into a file in a staging
//!    folder next to the output; for `skops` whole `.npy` files, into
//!    such a staging file), removed whatever happens;
//! 2. a file the scan does not pass (a finding at or above `warning`,
//!    under the policy that applies to it) is refused: nothing is written
//!    ([`Outcome::Refused`]); a file that cannot be read, or holds values
//!    that cannot be extracted, is an error ([`ConvertError`]), and nothing
//!    is written either;
//! 3. state that would load but is inconsistent ([`check`]) is refused
//!    ([`Outcome::Inconsistent`]);
//! 4. the target writes its file from the extraction ([`Source`]) into a
//!    temporary file in the output's folder ([`atomic`]), renamed over the
//!    output only once it is complete, so no half-written output is ever
//!    left behind.
//!
//! [`convert_file`] writes `safetensors` ([`safetensors`]); the `skops`
//! target ([`skops::write_skops`]) maps the extracted object graph to skops
//! nodes through the same steps (refusal at [`REFUSE_AT`], a scratch folder,
//! a temporary file renamed at the end).

pub mod atomic;
pub mod check;
mod json_text;
pub mod safetensors;
pub mod skops;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value as J;

use crate::extract::arena::Arena;
use crate::extract::store::Store;
use crate::extract::{Extracted, ValueError};
use crate::limits::CONVERT_IN_PLACE_MIN_INPUT;
use crate::policy::Policy;
use crate::rules::{Levels, Severity};

/// The formats `convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A `.safetensors` file: every numeric array as a tensor, the rest as
    /// JSON in `__metadata__`.
    Safetensors,
}

impl Target {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Safetensors => "safetensors",
        }
    }
}

/// What a target writer reads: the input file, its extraction, and the
/// arena that holds the extraction's array data.
pub struct Source<'a> {
    /// The input file.
    pub file: &'a Path,
    /// The extraction: document, arrays, findings (the writer takes the
    /// document for the output's metadata).
    pub ex: Extracted,
    /// The array data, back to back in one file: the output's own
    /// temporary file (written in place) or the staging folder's.
    pub arena: ArenaData<'a>,
}

/// Array data written back to back into one file, without `.npy` headers.
pub struct ArenaData<'a> {
    /// The file.
    pub path: PathBuf,
    /// Each array file's region (`[start, end)`), by its name in the extraction.
    pub regions: &'a std::collections::HashMap<String, (u64, u64)>,
    /// Bytes reserved before the data (for a header written in place).
    pub reserved: u64,
}

/// Something the target format cannot hold, left out of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// Its name (the dotted attribute path).
    pub name: String,
    /// What it is (`<U5`, `blob`).
    pub what: String,
    /// Why it was left out.
    pub why: String,
}

/// What a target wrote.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// Items written (tensors).
    pub items: usize,
    /// Bytes of array data written.
    pub bytes: u64,
    /// What was left out (also recorded in the output, where it has room).
    pub left_out: Vec<LeftOut>,
}

/// How a conversion ended, when it did not fail.
#[derive(Debug)]
pub enum Outcome {
    /// The output was written.
    Written(Written),
    /// The scan did not pass the file: nothing was written. The findings
    /// (the document's `findings` entries) and any values that could not
    /// be extracted are given for printing.
    Refused {
        /// The scan's findings, as in the `extract` document.
        findings: Vec<J>,
        /// Values that could not be extracted.
        errors: Vec<ValueError>,
    },
    /// The state would load but is inconsistent ([`check`]: tree indices
    /// out of range, shapes that disagree with `n_features_in_`, negative
    /// counts): nothing was written.
    Inconsistent(Vec<check::Inconsistency>),
}

/// Why a conversion wrote nothing (besides a refusal).
#[derive(Debug)]
pub enum ConvertError {
    /// The input could not be opened or read.
    Input(io::Error),
    /// Some values could not be extracted (each with offset and member).
    Values(Vec<ValueError>),
    /// The output (or the staging folder beside it) could not be written.
    Output(io::Error),
    /// The target cannot write something it must (a value over a limit);
    /// the message names it.
    Unsupported(String),
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertError::Input(e) => write!(f, "cannot read the input: {e}"),
            ConvertError::Values(v) => write!(f, "{} value(s) could not be extracted", v.len()),
            ConvertError::Output(e) => write!(f, "cannot write the output: {e}"),
            ConvertError::Unsupported(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConvertError {}

/// The scan severity at which `convert` refuses a file: `scan`'s default
/// `--fail-on`.
pub const REFUSE_AT: Severity = Severity::Warning;

/// Converts `file` to `target`, written to `out`, judging it with `policy`
/// and the rule severities `levels` (as `scan` would).
///
/// # Errors
/// [`ConvertError`]: nothing was written.
pub fn convert_file(
    file: &Path,
    out: &Path,
    target: Target,
    policy: &Policy,
    levels: &Levels,
) -> Result<Outcome, ConvertError> {
    // The document is walked recursively (names, metadata, checks): on a
    // stack for the deepest document extraction gives.
    let run = move || Ok(convert_file_sized(file, out, target, policy, levels, CONVERT_IN_PLACE_MIN_INPUT));
    crate::extract::on_deep_stack(run).map_err(ConvertError::Output)?
}

/// [`convert_file`] writing array data in place for inputs of at least
/// `in_place_min` bytes (the tests compare both ways on small files).
pub(crate) fn convert_file_sized(
    file: &Path,
    out: &Path,
    target: Target,
    policy: &Policy,
    levels: &Levels,
    in_place_min: u64,
) -> Result<Outcome, ConvertError> {
    if out.is_dir() {
        let e = io::Error::new(io::ErrorKind::IsADirectory, format!("{} is a folder", out.display()));
        return Err(ConvertError::Output(e));
    }
    let staging = Staging::new(out).map_err(ConvertError::Output)?;
    let size = std::fs::metadata(file).map_err(ConvertError::Input)?.len();
    // safetensors of a large file: array data goes straight into the output,
    // after room for the header, so it is written once (docs/convert.md).
    let in_place = match target {
        Target::Safetensors if size >= in_place_min => Some(safetensors::reserve_for(size)),
        _ => None,
    };
    let arena_out = match in_place {
        Some(reserved) => {
            let tmp = atomic::TmpOut::create(out).map_err(ConvertError::Output)?;
            tmp.file.set_len(reserved).map_err(ConvertError::Output)?;
            Some((tmp, reserved))
        }
        None => None,
    };
    // Otherwise the arrays go back to back into one staging file (one file
    // rather than one per array: a model of 1,200 small arrays converts in
    // about half the time), and are copied from there.
    let staged_arena = staging.arena_path();
    let handle = match &arena_out {
        Some((tmp, _)) => tmp.file.try_clone(),
        None => staging.create_arena(),
    };
    let arena = Arena::new(handle.map_err(ConvertError::Output)?);
    let (ex, arena) = staging.extract(file, arena, policy, levels).map_err(|e| {
        // The staging folder's own errors are the output's; the rest are the input's.
        if staging.dir.is_dir() {
            ConvertError::Input(e)
        } else {
            ConvertError::Output(e)
        }
    })?;
    if ex.max_severity.is_some_and(|s| s >= REFUSE_AT) {
        let findings = ex.doc.get("findings").and_then(J::as_array).cloned().unwrap_or_default();
        return Ok(Outcome::Refused { findings, errors: ex.errors });
    }
    if !ex.errors.is_empty() {
        return Err(ConvertError::Values(ex.errors));
    }
    let arena_data = match &arena_out {
        Some((tmp, reserved)) => ArenaData { path: tmp.path.clone(), regions: &arena.regions, reserved: *reserved },
        None => ArenaData { path: staged_arena.clone(), regions: &arena.regions, reserved: 0 },
    };
    let arena_file = File::open(&arena_data.path).map_err(ConvertError::Output)?;
    let arrays = check::Arrays { file: &arena_file, regions: arena_data.regions };
    let pickles = ex.doc.get("pickles").and_then(J::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let found: Vec<_> = pickles.iter().flat_map(|p| check::check(&p["root"], arrays)).collect();
    if !found.is_empty() {
        return Ok(Outcome::Inconsistent(found));
    }
    let src = Source { file, ex, arena: arena_data };
    let written = match target {
        Target::Safetensors => match arena_out {
            Some((tmp, _)) => safetensors::write_in_place(src, tmp, out)?,
            None => atomic::write_atomic(out, |f: &mut File| safetensors::write(src, f))?,
        },
    };
    Ok(Outcome::Written(written))
}

/// A folder beside the output that the extraction writes into, removed
/// when dropped.
pub(crate) struct Staging {
    pub(crate) dir: PathBuf,
}

impl Staging {
    /// A new, empty folder beside `out` (never one that exists).
    pub(crate) fn new(out: &Path) -> io::Result<Staging> {
        let parent = atomic::parent_of(out);
        let stem = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stem = crate::extract::store::safe_name(&stem);
        for n in 0..100u32 {
            let dir = parent.join(format!(".{stem}.pkinspect-staging-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(Staging { dir }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free staging folder name"))
    }

    /// Where the staging arena file is (`arrays.arena`).
    pub(crate) fn arena_path(&self) -> PathBuf {
        self.dir.join("arrays.arena")
    }

    /// Creates the staging arena file, open for reading and writing.
    pub(crate) fn create_arena(&self) -> io::Result<File> {
        File::options().read(true).write(true).create_new(true).open(self.arena_path())
    }

    /// Extracts `file` with its arrays written into `arena` and anything
    /// else (long strings, bytes) into this folder; hands the arena back.
    pub(crate) fn extract(
        &self,
        file: &Path,
        arena: Arena,
        policy: &Policy,
        levels: &Levels,
    ) -> io::Result<(Extracted, Arena)> {
        let store = Store::with_arena(self.dir.clone(), arena)?;
        let (ex, arena) = crate::extract::extract_with_store(file, store, policy, levels)?;
        // The store was made with an arena, so the extraction hands it back.
        Ok((ex, arena.ok_or_else(|| io::Error::other("the extraction kept no arena"))?))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
