//! `pkinspect scan --hook`: which of the files a git hook passes are pickles.
//!
//! pre-commit hands the hook every staged file, so most are not pickles.
//! A file is scanned when its first bytes are a PROTO opcode (`0x80`, then a
//! protocol), whatever its name. A file with a model extension is looked at
//! more closely: a container that pkinspect cannot read yet (zip, `.npy`,
//! compressed) is skipped with a note; anything else is scanned, and kept in
//! the report only if it is a pickle after all (see [`is_pickle`]). Every
//! other file is skipped.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use pkinspect::rules::Rule;
use pkinspect::scan::FileReport;

/// Extensions under which model files are saved.
pub const MODEL_EXTENSIONS: &[&str] =
    &["pkl", "pickle", "joblib", "pt", "pth", "bin", "ckpt", "model", "sav", "npy", "npz", "dat", "p"];

/// What to do with a file the hook was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// It starts with PROTO: scan it.
    Pickle,
    /// A model extension and no known magic: scan it, then keep the result
    /// only if [`is_pickle`] says so.
    Maybe,
    /// A model file in a format that is not scanned yet (the reason).
    Container(&'static str),
    /// Not a model file.
    Other,
}

/// Container magic numbers, with what they are.
const MAGIC: &[(&[u8], &str)] = &[
    (b"PK\x03\x04", "a zip archive (PyTorch checkpoints and .npz files are not scanned yet)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x93NUMPY", "a .npy array file (not scanned yet)"),
    (b"\x1f\x8b", "gzip-compressed (compressed joblib files are not scanned yet)"),
    (b"BZh", "bz2-compressed (compressed joblib files are not scanned yet)"),
    (b"\xfd7zXZ\x00", "xz-compressed (compressed joblib files are not scanned yet)"),
    (b"\x5d\x00\x00", "lzma-compressed (compressed joblib files are not scanned yet)"),
    (b"\x04\x22\x4d\x18", "lz4-compressed (compressed joblib files are not scanned yet)"),
    (b"ZF", "zlib-compressed joblib (compressed joblib files are not scanned yet)"),
    (b"\x78\x01", "zlib-compressed (compressed joblib files are not scanned yet)"),
    (b"\x78\x5e", "zlib-compressed (compressed joblib files are not scanned yet)"),
    (b"\x78\x9c", "zlib-compressed (compressed joblib files are not scanned yet)"),
    (b"\x78\xda", "zlib-compressed (compressed joblib files are not scanned yet)"),
];

/// Looks at the first bytes and the extension of `path`. A file that cannot
/// be read is [`Sniff::Pickle`], so that the scan reports why.
pub fn sniff(path: &Path) -> Sniff {
    let mut head = Vec::with_capacity(8);
    let read = std::fs::File::open(path).and_then(|f| f.take(8).read_to_end(&mut head));
    if read.is_err() || (head.len() >= 2 && head[0] == 0x80 && head[1] <= 5) {
        return Sniff::Pickle;
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if !MODEL_EXTENSIONS.contains(&ext.as_str()) {
        return Sniff::Other;
    }
    if head.is_empty() {
        return Sniff::Container("an empty file");
    }
    match MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        Some((_, what)) => Sniff::Container(what),
        None => Sniff::Maybe,
    }
}

/// For a [`Sniff::Maybe`] file: true when it is a pickle after all. It is
/// when it decodes to its end, imports a global, or hands a persistent id to
/// the loader. A stream that fails to decode before any of that is harmless
/// to a loader (nothing was imported or called before the error), so a
/// binary file that merely starts with an opcode byte is skipped.
pub fn is_pickle(report: &FileReport) -> bool {
    report.error.is_some()
        || !report.globals.is_empty()
        || report.findings.iter().any(|f| f.rule == Rule::PersistentId)
        || !report.findings.iter().any(|f| matches!(f.rule, Rule::MalformedStream | Rule::TruncatedStream))
}

/// The files a hook run was given, and what became of them.
#[derive(Debug, Default)]
pub struct Selection {
    given: usize,
    others: usize,
    maybe: HashSet<PathBuf>,
    notes: Vec<String>,
}

impl Selection {
    /// True when the file `path` given to the hook should be scanned.
    pub fn admit(&mut self, path: &Path) -> bool {
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
    /// except for a [`Sniff::Maybe`] file that is not a pickle after all.
    pub fn keep(&mut self, path: &Path, report: &FileReport) -> bool {
        if !self.maybe.contains(path) || is_pickle(report) {
            return true;
        }
        self.notes.push(format!("skipped {}: does not decode as a pickle", path.display()));
        false
    }

    /// Says on stderr what was skipped, and that there was nothing to scan
    /// when `scanned` is 0.
    pub fn tell(&self, scanned: usize) {
        for note in &self.notes {
            eprintln!("pkinspect: {note}");
        }
        if scanned == 0 && self.given == 0 {
            eprintln!("pkinspect: no files to scan");
        } else if scanned == 0 {
            eprintln!("pkinspect: none of the {} files given is a pickle; nothing to scan", self.given);
        } else if self.others > 0 {
            eprintln!("pkinspect: skipped {} files that are not pickles", self.others);
        }
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
            (
                "m.pt",
                b"PK\x03\x04rest",
                Sniff::Container("a zip archive (PyTorch checkpoints and .npz files are not scanned yet)"),
            ),
            ("m.NPY", b"\x93NUMPY\x01\x00", Sniff::Container("a .npy array file (not scanned yet)")),
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

    #[test]
    fn binary_that_is_not_a_pickle() {
        use pkinspect::policy::Policy;
        use pkinspect::scan::scan_bytes;
        let p = Policy::builtin();
        // A protocol-0 pickle: a pickle.
        assert!(is_pickle(&scan_bytes("x.pkl", b"cos\nsystem\n(S'echo'\ntR.", &p)));
        // Imports, then breaks: a loader has already imported; scanned.
        assert!(is_pickle(&scan_bytes("x.pkl", b"cos\nsystem\n\xff", &p)));
        // Breaks before doing anything: not a pickle.
        assert!(!is_pickle(&scan_bytes("x.bin", b"a\x01\x02\xff\xfe", &p)));
        assert!(!is_pickle(&scan_bytes("x.model", b"\n\x05hello", &p)));
    }
}
