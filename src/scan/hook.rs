//! `pkinspect scan --hook`: which of the files a git hook passes are pickles.
//! [`super::scan_paths`] asks a [`Selection`] about every file it is given
//! when [`super::Options::hook`] is set.
//!
//! pre-commit hands the hook every staged file, so most are not pickles.
//! A file is scanned when its first bytes are a binary pickle or a
//! container pkinspect reads (zip — PyTorch checkpoints, `.npz` —, tar,
//! `.npy`, every joblib compressor), whatever its name. A file with a model
//! extension and no known magic is scanned too, and kept in the report only
//! if it is a pickle after all (see [`is_pickle`]). Every other file is
//! skipped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::sniff::{classify, has_model_extension, is_pickle, read_head, Class};
use super::FileReport;

/// What to do with a file the hook was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniff {
    /// A binary pickle or a supported container: scan it.
    Pickle,
    /// A model extension and no known magic: scan it, then keep the result
    /// only if [`is_pickle`] says so.
    Maybe,
    /// A model-named file with nothing in it to scan (the reason).
    Container(&'static str),
    /// Not a model file.
    Other,
}

/// Looks at the first bytes (through the shared [`classify`]) and the
/// extension of `path`. A file that cannot be read is [`Sniff::Pickle`], so
/// that the scan reports why.
pub(crate) fn sniff(path: &Path) -> Sniff {
    let Ok(head) = read_head(path) else { return Sniff::Pickle };
    let class = classify(&head);
    if let Class::Model(_) = class {
        return Sniff::Pickle;
    }
    if !has_model_extension(path) {
        return Sniff::Other;
    }
    if head.is_empty() {
        return Sniff::Container("an empty file");
    }
    Sniff::Maybe
}

/// The files a hook run was given, and what became of them: what to say
/// about them once the run is over is [`Selection::messages`].
#[derive(Debug, Default)]
pub struct Selection {
    given: usize,
    others: usize,
    maybe: HashSet<PathBuf>,
    notes: Vec<String>,
}

impl Selection {
    /// True when the file `path` given to the hook should be scanned.
    pub(crate) fn admit(&mut self, path: &Path) -> bool {
        self.given += 1;
        match sniff(path) {
            Sniff::Pickle => true,
            Sniff::Maybe => {
                self.maybe.insert(path.to_path_buf());
                true
            }
            Sniff::Container(what) => {
                self.notes.push(format!("skipped {}: {what}", path.display()));
                false
            }
            Sniff::Other => {
                self.others += 1;
                false
            }
        }
    }

    /// True when the scanned `report` of `path` stays in the report: always,
    /// except for a file scanned on weak evidence ([`Sniff::Maybe`]) that is
    /// not a pickle after all.
    pub(crate) fn keep(&mut self, path: &Path, report: &FileReport) -> bool {
        if !self.maybe.contains(path) || is_pickle(report) {
            return true;
        }
        self.notes.push(format!("skipped {}: does not decode as a pickle", path.display()));
        false
    }

    /// What to tell the user once `scanned` files are in the report: every
    /// file skipped and why, then that there was nothing to scan (when
    /// `scanned` is 0), or how many files were not pickles. One line each,
    /// without a program name.
    pub fn messages(&self, scanned: usize) -> Vec<String> {
        let mut out = self.notes.clone();
        if scanned == 0 && self.given == 0 {
            out.push("no files to scan".into());
        } else if scanned == 0 {
            out.push(format!("none of the {} files given is a pickle; nothing to scan", self.given));
        } else if self.others > 0 {
            out.push(format!("skipped {} files that are not pickles", self.others));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        let dir = std::env::temp_dir().join(format!("pkinspect-hook-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let cases: &[(&str, &[u8], Sniff)] = &[
            ("a.png", b"\x89PNG\r\n\x1a\n", Sniff::Other),
            ("notes.txt", b"cos\nsystem\n", Sniff::Other),
            ("odd.name", b"\x80\x04\x95", Sniff::Pickle),
            // Containers are scanned whatever their name: a PyTorch checkpoint
            // or a compressed joblib file must not pass a commit unread.
            ("m.pt", b"PK\x03\x04rest", Sniff::Pickle),
            ("weights", b"PK\x03\x04rest", Sniff::Pickle),
            ("m.NPY", b"\x93NUMPY\x01\x00", Sniff::Pickle),
            ("m.joblib.xz", b"\xfd7zXZ\x00\x00", Sniff::Pickle),
            ("p0.pkl", b"cos\nsystem\n", Sniff::Maybe),
            ("empty.pkl", b"", Sniff::Container("an empty file")),
        ];
        for (name, bytes, want) in cases {
            let p = dir.join(name);
            std::fs::write(&p, bytes).expect("write");
            assert_eq!(sniff(&p), *want, "{name}");
        }
        assert_eq!(sniff(&dir.join("missing.bin")), Sniff::Pickle);
        std::fs::remove_dir_all(&dir).ok();
    }
}
