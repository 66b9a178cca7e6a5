//! `pkinspect convert --to skops`: a scikit-learn model pickle or joblib
//! file written back as a `.skops` file (skops 0.16, protocol 2;
//! shared/FORMATS.md §5), statically: nothing is imported or called.
//!
//! The file is extracted ([`crate::extract`]) into a scratch folder next to
//! the output: the object graph as a document, every array as a `.npy`
//! whose header and bytes are numpy's own, back to back in one arena file
//! ([`crate::extract::arena`]). Then:
//!
//! 1. a file the scan judges dangerous (a finding at `error`), or one with
//!    values that could not be extracted, is refused;
//! 2. the semantic checks (`check`) look for state that would load but is
//!    inconsistent (tree child or feature indices out of range, array
//!    shapes that disagree with `n_features_in_`/`n_classes_`, negative
//!    counts): any is a refusal;
//! 3. the graph is mapped to skops nodes (`schema`, `objects`,
//!    `numpy_objects`); what skops cannot express is an error naming its
//!    attribute path;
//! 4. the archive (`schema.json` plus `.npy`/`.npz`/`.bin` members) is
//!    written to a temporary file beside the output and renamed into place,
//!    so a failed conversion leaves nothing behind.
//!
//! The `.skops` file keeps the state as the pickle recorded it, with its
//! `_sklearn_version`: it targets the scikit-learn version the model was
//! saved with ([`SkopsReport::versions`]).

mod error;
pub(super) mod npy;
mod numpy_objects;
mod objects;
mod schema;
mod trusted;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::Value as J;

pub use error::{Inconsistency, SkopsError};
use schema::{Mapper, Source};

use super::check::Arrays;
use crate::extract::arena::{Arena, RegionReader};
use crate::policy::Policy;
use crate::rules::Levels;
use crate::scan::LibraryVersion;

/// The skops protocol the files are written for.
pub const SKOPS_PROTOCOL: u32 = 2;
/// The skops version written into `_skops_version` (the one the format
/// was checked against).
pub const SKOPS_VERSION: &str = "0.16.0";

/// What a conversion wrote.
#[derive(Debug, Clone)]
pub struct SkopsReport {
    /// The class of the root object (`sklearn.pipeline.Pipeline`).
    pub root_class: String,
    /// The types `skops.io.get_untrusted_types(file=...)` lists for the
    /// file, sorted: what the user must pass as `trusted=` to load it.
    pub untrusted: Vec<String>,
    /// The library versions the input records (`_sklearn_version`).
    pub versions: Vec<LibraryVersion>,
    /// Members of the archive besides `schema.json`.
    pub members: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// Converts the pickle or joblib file `input` to a `.skops` file `out`,
/// judging it with `policy` and `levels` (the scan's policy and severities).
///
/// # Errors
///
/// See [`SkopsError`]; nothing is written at `out` when it fails.
pub fn write_skops(input: &Path, out: &Path, policy: &Policy, levels: &Levels) -> Result<SkopsReport, SkopsError> {
    // The mapping recurses once per level of the document: on a stack for
    // the deepest document extraction gives.
    crate::extract::on_deep_stack(move || Ok(write_skops_here(input, out, policy, levels)))?
}

fn write_skops_here(input: &Path, out: &Path, policy: &Policy, levels: &Levels) -> Result<SkopsReport, SkopsError> {
    let folder = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !folder.is_dir() {
        return Err(SkopsError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("output folder {} does not exist", folder.display()),
        )));
    }
    let scratch = super::Staging::new(out)?;
    // Every array as a whole `.npy` file, back to back in one arena file:
    // an archive member is then one region of it, copied as it is.
    let (ex, arena) = scratch.extract(input, Arena::with_headers(scratch.create_arena()?), policy, levels)?;
    let arrays = Arrays { file: &File::open(scratch.arena_path())?, regions: &arena.regions };
    if ex.max_severity.is_some_and(|s| s >= super::REFUSE_AT) {
        let findings = ex.doc.get("findings").and_then(J::as_array).cloned().unwrap_or_default();
        return Err(SkopsError::Refused { findings, errors: ex.errors });
    }
    if !ex.errors.is_empty() {
        return Err(SkopsError::Extract(ex.errors));
    }
    let pickles = ex.doc["pickles"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let [pickle] = pickles else { return Err(SkopsError::Pickles(pickles.len())) };
    let root = &pickle["root"];
    let found = super::check::check(root, arrays);
    if !found.is_empty() {
        return Err(SkopsError::Inconsistent(found));
    }
    let mut mapper = Mapper::new(scratch.dir.clone(), arrays, root);
    mapper.node(root)?;
    // The root node, reopened for the file's own keys.
    if !mapper.out.pop_if(b'}') {
        return Err(SkopsError::Io(io::Error::other("the schema's root is not an object")));
    }
    mapper.out.raw(&format!(",\"protocol\":{SKOPS_PROTOCOL},\"_skops_version\":"));
    mapper.out.string(SKOPS_VERSION);
    mapper.out.raw("}");
    let Mapper { out: schema, members, untrusted, .. } = mapper;
    let bytes = write_archive(out, &schema.into_bytes(), &members, arrays.file)?;
    Ok(SkopsReport {
        root_class: objects::class_of(root),
        untrusted: untrusted.into_iter().collect(),
        versions: ex.versions,
        members: members.len(),
        bytes,
    })
}

/// Writes the archive to a temporary file beside `out`, then renames it;
/// `Source::Region`s are read from `arena`.
fn write_archive(out: &Path, schema: &[u8], members: &[(String, Source)], arena: &File) -> Result<u64, SkopsError> {
    // Removed when dropped, unless renamed over `out` at the end.
    let mut tmp = super::atomic::TmpOut::create(out)?;
    let r = (|| -> io::Result<u64> {
        let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, &mut tmp.file));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(false);
        for (name, src) in members {
            let size = match src {
                Source::File(p) => std::fs::metadata(p)?.len(),
                Source::Region(start, end) => end.saturating_sub(*start),
                Source::Bytes(b) => b.len() as u64,
            };
            zip.start_file(name.as_str(), opts.large_file(size >= u32::MAX as u64)).map_err(io::Error::other)?;
            let copied = match src {
                Source::File(p) => io::copy(&mut File::open(p)?, &mut zip)?,
                Source::Region(start, end) => io::copy(&mut RegionReader::new(arena, (*start, *end)), &mut zip)?,
                Source::Bytes(b) => {
                    zip.write_all(b)?;
                    size
                }
            };
            if copied != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{name} changed while it was copied"),
                ));
            }
        }
        zip.start_file("schema.json", opts).map_err(io::Error::other)?;
        zip.write_all(schema)?;
        let mut w = zip.finish().map_err(io::Error::other)?;
        w.flush()?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(f.metadata()?.len())
    })()?;
    tmp.persist(out)?;
    Ok(r)
}
