//! Which files are model files, by their content: shared by the folder walk
//! of [`super::scan_paths`] and by the git hook's [`super::Selection`].
//!
//! [`classify`] looks at the first [`SNIFF_BYTES`] of a file through
//! [`container::sniff`], the same function the scanner uses to unwrap it, and
//! adds only how much to trust the answer:
//!
//! - **Model**: a binary pickle (`PROTO`) or a container magic number that
//!   cannot be mistaken for text (a zlib header whose check bits hold, `BZh`
//!   and a block size, `ZF0x`, ...). Scanned.
//! - **Maybe**: bytes that a protocol 0/1 pickle could open with, which text
//!   files often do too (`(`, `I`, `S`, `c` + a newline, ...). Scanned, and
//!   kept only if [`is_pickle`] says it is one after all.
//! - **Other**: anything else. A file with a model extension is treated as
//!   Maybe instead (a pickle need not start the way picklers start it, and
//!   a loader does not care); every other file is not a model file.
//!
//! The extension is only ever a reason to look closer: it never makes a file
//! that does not decode as a pickle count as one.

use std::io::Read;
use std::path::Path;

use super::FileReport;
use crate::container::{self, Format, SNIFF_BYTES};
use crate::rules::Rule;

/// Extensions under which model files are saved.
pub const MODEL_EXTENSIONS: &[&str] =
    &["pkl", "pickle", "joblib", "pt", "pth", "bin", "ckpt", "model", "sav", "npy", "npz", "dat", "p"];

/// What the first bytes of a file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A binary pickle or a container: a model file.
    Model(Format),
    /// Could be a protocol 0/1 pickle, could be text: scan, then ask [`is_pickle`].
    Maybe,
    /// Not a model file by its content.
    Other,
}

/// The first [`SNIFF_BYTES`] of `path`.
///
/// # Errors
/// The file cannot be opened or read.
pub fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    std::fs::File::open(path)?.take(SNIFF_BYTES as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// True when `path` has one of the [`MODEL_EXTENSIONS`] (any case).
pub fn has_model_extension(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    MODEL_EXTENSIONS.contains(&ext.as_str())
}

/// Classifies a file by its first bytes `head` alone (see the module docs).
pub fn classify(head: &[u8]) -> Class {
    let format = container::sniff(head);
    let strong = match format {
        Format::Unknown => return Class::Other,
        Format::Pickle => return if matches!(head, [0x80, 0..=5, ..]) { Class::Model(format) } else { Class::Maybe },
        // RFC 1950: CMF 0x78 (deflate, 32 KiB window), FCHECK makes the
        // 16-bit header a multiple of 31, and no preset dictionary (FDICT),
        // which zlib's compress never writes. Text starting with `x` fails.
        Format::Zlib => matches!(head, [0x78, flg, ..] if (0x7800u16 | u16::from(*flg)) % 31 == 0 && flg & 0x20 == 0),
        // A block size digit follows `BZh`.
        Format::Bz2 => matches!(head, [b'B', b'Z', b'h', b'1'..=b'9', ..]),
        // joblib < 0.10 writes `ZF` then `hex(length)`.
        Format::JoblibZf => head.starts_with(b"ZF0x"),
        Format::Gzip | Format::Lzma | Format::Xz | Format::Lz4 | Format::Zip | Format::Tar | Format::Npy => true,
    };
    if strong {
        Class::Model(format)
    } else {
        Class::Other
    }
}

/// What the folder walk does with a file it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Scan it and report it.
    Scan,
    /// Scan it, and report it only if [`is_pickle`] says it is a pickle.
    ScanIfPickle,
    /// Not a model file: count it as skipped.
    NotModel,
}

/// Decides what the folder walk does with the regular file `path`. A file
/// that cannot be read is scanned, so that the report says why.
pub fn found(path: &Path) -> Found {
    let Ok(head) = read_head(path) else { return Found::Scan };
    match classify(&head) {
        Class::Model(_) => Found::Scan,
        Class::Maybe => Found::ScanIfPickle,
        Class::Other if !head.is_empty() && has_model_extension(path) => Found::ScanIfPickle,
        Class::Other => Found::NotModel,
    }
}

/// For a file scanned on weak evidence ([`Class::Maybe`]): true when it is a
/// pickle after all, that is when it could not be read (the report says
/// why), decodes to its end, imports a global whose module a loader could
/// import, or hands a persistent id to the loader. A stream that breaks
/// before any of that is harmless to a loader (nothing was imported or
/// called before the error), so a text file that merely starts with an
/// opcode byte is not a pickle; neither is one whose "import" is a line of
/// prose such as `lass Foo:` (from `class Foo:`), which no loader can import.
pub fn is_pickle(report: &FileReport) -> bool {
    report.error.is_some()
        || report.globals.iter().any(|g| importable(&g.module))
        || report.findings.iter().any(|f| f.rule == Rule::PersistentId)
        || !report.findings.iter().any(|f| matches!(f.rule, Rule::MalformedStream | Rule::TruncatedStream))
}

/// True when `module` is a dotted name of identifiers, as `import` needs.
fn importable(module: &str) -> bool {
    !module.is_empty()
        && module.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let cases: &[(&[u8], Class)] = &[
            (b"\x80\x04\x95", Class::Model(Format::Pickle)),
            (b"\x80\x02cos\nsystem\n", Class::Model(Format::Pickle)),
            (b"cos\nsystem\n", Class::Maybe),
            (b"(dp0\n", Class::Maybe),
            (b"\x89PNG\r\n\x1a\n", Class::Other),
            (b"# notes\n", Class::Other),
            (b"", Class::Other),
            (b"x = 1\n", Class::Other),
            (b"xyz", Class::Other),
            (b"\x78\x9c\x01", Class::Model(Format::Zlib)),
            (b"\x78\x01\x01", Class::Model(Format::Zlib)),
            (b"\x78\xda\x01", Class::Model(Format::Zlib)),
            (b"\x78\x5e\x01", Class::Model(Format::Zlib)),
            (b"BZh9", Class::Model(Format::Bz2)),
            (b"BZhello", Class::Other),
            (b"ZF0x337   ", Class::Model(Format::JoblibZf)),
            (b"ZFS pool", Class::Other),
            (b"PK\x03\x04", Class::Model(Format::Zip)),
            (b"\x1f\x8b\x08", Class::Model(Format::Gzip)),
            (b"\x93NUMPY\x01\x00", Class::Model(Format::Npy)),
        ];
        for (head, want) in cases {
            assert_eq!(classify(head), *want, "{head:?}");
        }
    }

    #[test]
    fn importable_modules() {
        assert!(importable("os"));
        assert!(importable("numpy.core.multiarray"));
        assert!(importable("_codecs"));
        assert!(!importable("lass Foo:"));
        assert!(!importable("mport numpy as np"));
        assert!(!importable("a..b"));
        assert!(!importable("1abc"));
        assert!(!importable(""));
    }

    #[test]
    fn binary_that_is_not_a_pickle() {
        use crate::policy::Policy;
        let p = Policy::builtin();
        let scanner = crate::scan::Scanner::new(&p);
        // A protocol-0 pickle: a pickle.
        assert!(is_pickle(&scanner.scan_bytes("x.pkl", b"cos\nsystem\n(S'echo'\ntR.")));
        // Imports, then breaks: a loader has already imported; scanned.
        assert!(is_pickle(&scanner.scan_bytes("x.pkl", b"cos\nsystem\n\xff")));
        // Breaks before doing anything: not a pickle.
        assert!(!is_pickle(&scanner.scan_bytes("x.bin", b"a\x01\x02\xff\xfe")));
        assert!(!is_pickle(&scanner.scan_bytes("x.model", b"\n\x05hello")));
        // Source code whose first line reads as a GLOBAL: no importable module.
        assert!(!is_pickle(&scanner.scan_bytes("m.py", b"class Foo:\n    pass\n\x00")));
    }
}
