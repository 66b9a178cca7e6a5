//! joblib < 0.10 companion files (shared/FORMATS.md §1.3).
//!
//! joblib 0.9 and earlier kept each array of a dump in a file of its own
//! next to the pickle, and `joblib.load` still reads such files: the pickle
//! holds a `joblib.numpy_pickle.NDArrayWrapper` (or `ZNDArrayWrapper`, for
//! compressed dumps) whose BUILD state names the companion in `filename`.
//! joblib's `NumpyUnpickler.load_build` then does
//! `os.path.join(dirname(pickle), filename)` with **no check** and
//!
//! - `NDArrayWrapper`: `numpy.load(path, allow_pickle=True)`, which unpickles
//!   object arrays (and any file that is neither `.npy` nor zip);
//! - `ZNDArrayWrapper`: reads `path` as a ZF-framed zlib stream of raw array
//!   bytes (`read_zfile`), never unpickled.
//!
//! So an absolute `filename`, or one that climbs out with `..`, makes
//! loading unpickle a file chosen by the attacker ([`CompanionFault::UnsafeName`]).
//! Safe names are resolved **only inside the scanned file's folder** (after
//! symbolic links, which must not lead out either) and the companion is
//! scanned as joblib would read it; a safe name that is not there is a
//! [`CompanionFault::NotInFolder`]. The machine is not involved: this reads the
//! BUILD events it recorded.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;

use super::compressed::zf_body;
use super::diag::{Bomb, CompanionFault, Limit, Unreadable};
use super::readers::{CountIn, LimitHit, Limited};
use super::walk::Walker;
use crate::limits::MAX_COMPANION_FILES;
use crate::vm::{Analysis, EventKind, Value};

/// A companion file named by a legacy wrapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Companion {
    /// The `filename` as written; `None` when too long to have been kept.
    pub filename: Option<String>,
    /// `ZNDArrayWrapper`: a ZF-framed zlib stream of raw bytes; else a file
    /// for `numpy.load(allow_pickle=True)`.
    pub compressed: bool,
    /// Offset of the wrapper's BUILD.
    pub offset: u64,
}

/// The companions named by the legacy wrappers of one analysis, in order.
pub fn companions(a: &Analysis) -> Vec<Companion> {
    let mut out = Vec::new();
    for ev in &a.events {
        let EventKind::Build { target, state } = ev.kind else { continue };
        let Value::Call(c) = a.value(target) else { continue };
        let compressed = match a.value(c.func) {
            Value::Global(g) if &*g.module == "joblib.numpy_pickle" && &*g.name == "NDArrayWrapper" => false,
            Value::Global(g) if &*g.module == "joblib.numpy_pickle" && &*g.name == "ZNDArrayWrapper" => true,
            _ => continue,
        };
        // The state is the instance dict (or the dict of a (dict, slots) pair).
        let dict = match a.value(state) {
            Value::Dict(r) => a.dict(*r),
            Value::Tuple(_) => match a.items(state).first().map(|i| a.value(*i)) {
                Some(Value::Dict(r)) => a.dict(*r),
                _ => continue,
            },
            _ => continue,
        };
        let is_key = |k| a.full_str(k) == Some("filename");
        // The last assignment wins, as in a dict update.
        let Some((_, v)) = dict.iter().rev().find(|(k, _)| is_key(*k)) else { continue };
        let filename = match a.value(*v) {
            Value::Str(r) => a.str(*r).full().map(str::to_string),
            // os.path.join refuses anything but str: joblib fails, nothing is opened.
            _ => continue,
        };
        out.push(Companion { filename, compressed, offset: ev.offset });
    }
    out
}

/// Why `filename`, joined to a folder, could lead out of it (on POSIX or on
/// Windows, where the file may be loaded too).
pub fn unsafe_reason(filename: &str) -> Option<&'static str> {
    let b = filename.as_bytes();
    if filename.is_empty() {
        return Some("it is empty (joblib would open the folder itself)");
    }
    if filename.contains('\0') {
        return Some("it contains a NUL character");
    }
    if b[0] == b'/' || b[0] == b'\\' {
        return Some("it is an absolute path (os.path.join discards the pickle's folder)");
    }
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Some("it starts with a Windows drive (os.path.join discards the pickle's folder)");
    }
    if filename.split(['/', '\\']).any(|c| c == "..") {
        return Some("it climbs out of the pickle's folder with ..");
    }
    None
}

/// Checks the companion files named by the legacy joblib wrappers in the
/// pickles `w` found so far, and scans those of the file itself found in
/// `dir` ([`Walker::companions`]).
pub(super) fn check(w: &mut Walker, dir: Option<&Path>) {
    let mut seen = HashSet::new();
    let mut todo = Vec::new();
    for part in &w.out.parts {
        for c in companions(&part.analysis) {
            if seen.insert((part.member.clone(), c.filename.clone())) {
                todo.push((part.member.clone(), c));
            }
        }
    }
    let mut looked_up = 0usize;
    for (member, c) in todo {
        let Some(filename) = &c.filename else {
            w.note(&member, c.offset, CompanionFault::NameTooLong {});
            continue;
        };
        if let Some(why) = unsafe_reason(filename) {
            let fault = CompanionFault::UnsafeName { filename: filename.clone(), why, compressed: c.compressed };
            w.note(&member, c.offset, fault);
            continue;
        }
        let (None, Some(dir)) = (&member, dir) else { continue };
        looked_up += 1;
        if looked_up > MAX_COMPANION_FILES {
            w.note(&member, c.offset, Limit::CompanionFiles {});
            return;
        }
        companion(w, dir, filename, &c);
    }
}

/// Opens the companion `filename` (a name [`unsafe_reason`] accepts) in
/// `dir`, the pickle's folder, as joblib would, only if it is a regular
/// file that stays inside `dir` once links are followed: the file and its
/// size. Scanning and extraction both open companions through this.
///
/// # Errors
///
/// The [`CompanionFault`] that says why it is not opened.
pub fn open(dir: &Path, filename: &str) -> Result<(std::fs::File, u64), CompanionFault> {
    let path = dir.join(filename);
    let name = || filename.to_string();
    // The name was checked to stay lexically inside `dir`; links must too.
    match (dir.canonicalize(), path.canonicalize()) {
        (Ok(d), Ok(p)) if p.starts_with(&d) => {}
        (Ok(_), Ok(_)) => return Err(CompanionFault::LinkOutside { filename: name() }),
        _ => return Err(CompanionFault::NotInFolder { filename: name() }),
    }
    let file = std::fs::File::open(&path)
        .map_err(|e| CompanionFault::CannotRead { filename: name(), error: e.to_string() })?;
    match file.metadata() {
        Ok(m) if m.is_file() => Ok((file, m.len())),
        _ => Err(CompanionFault::NotRegular { filename: name() }),
    }
}

/// Looks `filename` up in `dir` and scans it as joblib would read it.
fn companion(w: &mut Walker, dir: &Path, filename: &str, c: &Companion) {
    let (file, size) = match open(dir, filename) {
        Ok(f) => f,
        Err(fault) => return w.note(&None, c.offset, fault),
    };
    let member = Some(filename.to_string());
    if c.compressed {
        zf_raw(w, file, member);
    } else {
        w.seekable(file, Some(size), member);
    }
}

/// Compressed bytes read so far, shared with the decompressor.
pub type Counter = std::rc::Rc<std::cell::Cell<u64>>;

/// The raw array bytes of a `ZNDArrayWrapper` companion (`ZF` + 19 bytes
/// of hex length (+ one optional space) + a zlib stream), decompressed
/// under the limits of every decompressor (a limit hit is a
/// `LimitHit` error); `None` when the header is cut short. The count is
/// the compressed bytes read so far.
pub fn zf_data<'a, R: Read + 'a>(r: R) -> Option<(Box<dyn Read + 'a>, Counter)> {
    let rest = zf_body(r)?;
    let count = std::rc::Rc::new(std::cell::Cell::new(0));
    let dec = flate2::read::ZlibDecoder::new(CountIn { inner: rest, count: count.clone() });
    Some((Box::new(Limited::new(dec, count.clone())), count))
}

/// A `ZNDArrayWrapper` companion, which joblib's `read_zfile` never
/// unpickles: decompressed (with the limits) to check it, and listed as
/// skipped.
fn zf_raw<R: Read>(w: &mut Walker, r: R, member: Option<String>) {
    let Some((mut data, count)) = zf_data(r) else {
        w.note(&member, 0, Unreadable::CompanionZfHeaderShort {});
        return;
    };
    match io::copy(&mut data, &mut io::sink()) {
        Ok(_) => w.out.skipped_members.push(member.unwrap_or_default()),
        Err(e) if LimitHit::is(&e) => w.note(&member, 0, Bomb::Reached { detail: e.to_string() }),
        Err(e) => {
            let at = 21 + count.get();
            w.note(&member, at, Unreadable::CompanionNotZf { error: e.to_string() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_folder() {
        assert_eq!(unsafe_reason("model.pkl_01.npy"), None);
        assert_eq!(unsafe_reason("sub/model.npy"), None);
        assert_eq!(unsafe_reason("a..b.npy"), None);
        for bad in ["../x.npy", "a/../../x.npy", "..\\x.npy", "/etc/x.npy", "\\\\srv\\x.npy", "C:x.npy", "", "a\0b"] {
            assert!(unsafe_reason(bad).is_some(), "{bad:?}");
        }
    }
}
