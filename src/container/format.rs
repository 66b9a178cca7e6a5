//! What a file is, by its first bytes: [`sniff`] and the [`Format`] it
//! names. Never by file name: a loader goes by the bytes too.

/// What the first bytes of an input say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A pickle (PROTO opcode, or a protocol 0/1 opening opcode).
    Pickle,
    /// zlib stream (joblib `compress=True`, `.z`): first byte 0x78.
    Zlib,
    /// gzip (`.gz`).
    Gzip,
    /// bzip2 (`BZh`).
    Bz2,
    /// LZMA "alone" format (joblib `.lzma`): `5d 00`.
    Lzma,
    /// xz.
    Xz,
    /// LZ4 frame format.
    Lz4,
    /// joblib < 0.10 compressed file: `ZF` + hex length + zlib stream.
    JoblibZf,
    /// zip (PyTorch checkpoints, `.npz`, `.skops`, archives).
    Zip,
    /// POSIX tar (legacy PyTorch, archives).
    Tar,
    /// numpy `.npy`.
    Npy,
    /// Anything else.
    Unknown,
}

impl Format {
    /// Short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pickle => "pickle",
            Format::Zlib => "zlib",
            Format::Gzip => "gzip",
            Format::Bz2 => "bz2",
            Format::Lzma => "lzma",
            Format::Xz => "xz",
            Format::Lz4 => "lz4",
            Format::JoblibZf => "joblib-zf",
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::Npy => "npy",
            Format::Unknown => "unknown",
        }
    }
}

/// Bytes [`sniff`] looks at.
pub const SNIFF_BYTES: usize = 512;

/// Decides what `head` (the first up to [`SNIFF_BYTES`] of an input) is.
///
/// Compressor magics are tried in joblib's own order (zlib, gzip, bz2,
/// lzma, xz, lz4; `numpy_pickle_utils._detect_compressor`), because joblib
/// decides by magic alone; then the other containers; then pickle.
pub fn sniff(head: &[u8]) -> Format {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"ZF") {
        return Format::JoblibZf;
    }
    // joblib checks the 0x78 byte alone; a stream zlib can decode also has a
    // valid header check (RFC 1950: CMF*256 + FLG divisible by 31), so text
    // that merely starts with 'x' is not taken for zlib.
    if let [0x78, flg, ..] = head {
        if (0x7800 | u16::from(*flg)) % 31 == 0 {
            return Format::Zlib;
        }
    }
    if starts(b"\x1f\x8b") {
        return Format::Gzip;
    }
    if starts(b"BZh") {
        return Format::Bz2;
    }
    if starts(b"\x5d\x00") {
        return Format::Lzma;
    }
    if starts(b"\xfd7zXZ\x00") {
        return Format::Xz;
    }
    if starts(b"\x04\x22\x4d\x18") {
        return Format::Lz4;
    }
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        return Format::Zip;
    }
    if starts(b"\x93NUMPY") {
        return Format::Npy;
    }
    if head.len() >= 262 && (&head[257..262] == b"ustar") {
        return Format::Tar;
    }
    if looks_like_pickle(head) {
        return Format::Pickle;
    }
    Format::Unknown
}

/// A binary pickle starts with PROTO 2..=5; a protocol 0/1 pickle with one
/// of the opcodes picklers open with, followed by more plausible bytes.
fn looks_like_pickle(head: &[u8]) -> bool {
    match head {
        [0x80, 0..=5, ..] => true,
        // GLOBAL 'module\nname\n', MARK, EMPTY_*, ... as Python 2/3 protocol 0/1 writers begin.
        [b'c', rest @ ..] => rest.iter().take(200).any(|&b| b == b'\n'),
        [b'(' | b'}' | b']' | b')' | b'N' | b'I' | b'S' | b'V' | b'F' | b'L' | b'K' | b'J' | b'X' | b'U' | b'T', ..] => {
            head.len() >= 2
        }
        _ => false,
    }
}

/// A member name that archive loaders would unpickle whatever its bytes.
pub(super) fn pickle_name(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.ends_with(".pkl") || base.ends_with(".pickle")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        assert_eq!(sniff(b"\x80\x04\x95"), Format::Pickle);
        assert_eq!(sniff(b"cos\nsystem\n"), Format::Pickle);
        assert_eq!(sniff(b"\x78\x5e"), Format::Zlib);
        assert_eq!(sniff(b"\x78\x9c"), Format::Zlib);
        assert_eq!(sniff(b"xylophone"), Format::Unknown);
        assert_eq!(sniff(b"\x1f\x8b\x08"), Format::Gzip);
        assert_eq!(sniff(b"BZh9"), Format::Bz2);
        assert_eq!(sniff(b"\x5d\x00\x00\x40\x00"), Format::Lzma);
        assert_eq!(sniff(b"\xfd7zXZ\x00\x00"), Format::Xz);
        assert_eq!(sniff(b"\x04\x22\x4d\x18"), Format::Lz4);
        assert_eq!(sniff(b"ZF0x337   "), Format::JoblibZf);
        assert_eq!(sniff(b"PK\x03\x04"), Format::Zip);
        assert_eq!(sniff(b"\x93NUMPY\x01\x00"), Format::Npy);
        assert_eq!(sniff(b"\x89PNG\r\n"), Format::Unknown);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Format::Tar);
    }
}
