//! Container problems as typed values: what the read stage found wrong
//! with a layer, one variant per kind of problem, with its facts (offsets,
//! sizes, names) as fields and its message written next to it.
//!
//! The read stage ([`super::Walker`] and the format modules) only states
//! facts. It never picks a rule code or a severity: [`crate::rules::container_finding`]
//! turns each [`Note`] into a finding. Problems are grouped by what they say
//! about the file, which is all the read stage needs to know of them itself
//! (a decoder failure already reported once, the cap on a checkpoint's own
//! faults):
//!
//! - [`Unreadable`]: a layer cannot be read (a corrupt stream, a bad header);
//! - [`ArchiveFault`]: an archive is inconsistent or hides members;
//! - [`Bomb`]: a decompression limit was reached;
//! - [`Limit`]: another safety limit was reached, and what was not scanned;
//! - [`TorchFault`]: a PyTorch checkpoint does not match what `torch.save` writes;
//! - [`CompanionFault`]: a joblib < 0.10 companion file is unsafe or missing;
//! - [`Polyglot`]: the file has a second reading, which was scanned too.
//!
//! The messages are the ones the reports print: a change here changes every
//! output format, so tests check them in places.

use std::fmt;

use super::format::Format;
use super::torch::{PickleSlot, TarSection, TorchFault};
use crate::limits::{
    MAX_ARCHIVE_MEMBERS, MAX_ARCHIVE_NOTES_PER_KIND, MAX_COMPANION_FILES, MAX_CONTAINER_DEPTH, MAX_LZMA_MEMORY_KIB,
    MAX_TORCH_PICKLE_BYTES, MAX_TORCH_STORAGES,
};
use crate::py::repr::repr_str;

/// Declares enums of problems, each variant with its fields and message:
/// `Variant { field: Type, ... } => "format string", args...;`. The format
/// string names the fields directly; the enum gets a `Display` that writes it.
macro_rules! problems {
    ($(
        $(#[$meta:meta])*
        pub enum $Enum:ident {
            $(
                $(#[$vmeta:meta])*
                $Variant:ident { $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)? }
                    => $fmt:literal $(, $arg:expr)* ;
            )*
        }
    )*) => {$(
        $(#[$meta])*
        pub enum $Enum {
            $( $(#[$vmeta])* $Variant { $( $(#[$fmeta])* $field: $ty ),* }, )*
        }

        impl std::fmt::Display for $Enum {
            #[allow(unused_variables)]
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $( $Enum::$Variant { $($field),* } => write!(f, $fmt $(, $arg)*), )*
                }
            }
        }
    )*};
}

pub(super) use problems;

/// A container-level problem, placed: the report turns it into a finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// The member concerned (None: the file itself).
    pub member: Option<String>,
    /// Byte offset (in the member's or file's own stream).
    pub offset: u64,
    /// What happened.
    pub problem: Problem,
}

/// What the read stage found wrong with a layer, by what it says about the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A layer cannot be read.
    Unreadable(Unreadable),
    /// An archive is inconsistent or hides members.
    Archive(ArchiveFault),
    /// A decompression limit was reached.
    Bomb(Bomb),
    /// A safety limit was reached.
    Limit(Limit),
    /// A PyTorch checkpoint does not match what `torch.save` writes.
    Torch(TorchFault),
    /// A joblib < 0.10 companion file is unsafe or missing.
    Companion(CompanionFault),
    /// The file has a second reading.
    Polyglot(Polyglot),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable(p) => p.fmt(f),
            Problem::Archive(p) => p.fmt(f),
            Problem::Bomb(p) => p.fmt(f),
            Problem::Limit(p) => p.fmt(f),
            Problem::Torch(p) => p.fmt(f),
            Problem::Companion(p) => p.fmt(f),
            Problem::Polyglot(p) => p.fmt(f),
        }
    }
}

macro_rules! from_groups {
    ($($group:ident => $Variant:ident),* $(,)?) => {$(
        impl From<$group> for Problem {
            fn from(p: $group) -> Problem {
                Problem::$Variant(p)
            }
        }
    )*};
}

from_groups! {
    Unreadable => Unreadable,
    ArchiveFault => Archive,
    Bomb => Bomb,
    Limit => Limit,
    TorchFault => Torch,
    CompanionFault => Companion,
    Polyglot => Polyglot,
}

problems! {
    /// A layer that cannot be read, or read past a point.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Unreadable {
        /// A seekable input could not be rewound for its first reading.
        CannotRewind {} => "cannot rewind the input";
        /// Reading a layer's first bytes (or a member's) failed.
        ReadError {
            /// The I/O error.
            error: String,
        } => "read error: {error}";
        /// An LZMA ("alone") stream's header is refused by the decoder.
        LzmaHeader {
            /// The decoder's error.
            error: String,
        } => "lzma header: {error}";
        /// A stream broke after its pickle was partly read.
        StreamError {
            /// The I/O error the machine met.
            error: String,
        } => "stream error: {error}";
        /// A compressed layer yielded nothing readable.
        CannotDecompress {
            /// The decoder's error.
            error: String,
        } => "cannot decompress: {error}";
        /// A joblib < 0.10 `ZF` file shorter than its header.
        ZfHeaderShort {} => "ZF header cut short";
        /// An `.npy` header that cannot be parsed.
        BadNpyHeader {
            /// Why.
            error: super::npy::NpyHeaderError,
        } => "bad .npy header: {error}";
        /// A tar header that cannot be parsed, or a body cut short.
        Tar {
            /// The reader's error.
            error: String,
        } => "tar: {error}";
        /// A `ZNDArrayWrapper` companion shorter than its `ZF` header.
        CompanionZfHeaderShort {} => "companion ZF header cut short";
        /// A `ZNDArrayWrapper` companion whose body is no zlib stream.
        CompanionNotZf {
            /// The decoder's error.
            error: String,
        } => "companion is not a ZF zlib stream: {error}";
        /// The zip crate cannot find the end record or central directory.
        Zip {
            /// Its error.
            error: String,
        } => "zip: {error}";
        /// A zip member uses a compression method pkinspect cannot decode.
        UnsupportedMethod {
            /// The method number (APPNOTE 4.4.5).
            method: u16,
        } => "compression method {method} is not supported: the member was not scanned";
        /// A zip LZMA member's 4-byte header cannot be read.
        ZipLzmaHeader {
            /// The I/O error.
            error: String,
        } => "LZMA header: {error}";
        /// A zip LZMA member declares properties other than 5 bytes.
        ZipLzmaPropsSize {
            /// The declared size.
            len: usize,
        } => "LZMA properties of {len} bytes (5 expected)";
        /// A zip LZMA member's properties cannot be read.
        ZipLzmaProps {
            /// The I/O error.
            error: String,
        } => "LZMA properties: {error}";
        /// A zip LZMA member's properties are refused (a dictionary too large).
        ZipLzmaDict {
            /// The decoder's error.
            error: String,
        } => "{error}";
        /// A zip LZMA member needs more decoder memory than allowed.
        ZipLzmaMemory {
            /// KiB the decoder would need.
            need_kib: u32,
        } => "LZMA needs {need_kib} KiB, more than MAX_LZMA_MEMORY_KIB ({MAX_LZMA_MEMORY_KIB})";
        /// A zip LZMA member's decoder cannot be set up.
        ZipLzmaReader {
            /// The decoder's error.
            error: String,
        } => "LZMA: {error}";
        /// A zip member's compressed data is corrupt.
        MemberCorrupt {
            /// Offset in the archive near which decoding failed.
            near: u64,
            /// The decoder's error.
            error: String,
        } => "cannot decompress member (near offset {near}): {error}";
    }

    /// An archive that is inconsistent or hides members.
    #[derive(Debug, Clone, PartialEq)]
    pub enum ArchiveFault {
        /// A central directory entry runs past what can be read.
        CentralEntryShort {
            /// Why it could not be read.
            error: HeaderError,
        } => "central directory entry cut short: {error}";
        /// A central directory entry's local header offset overflows.
        LocalOffsetOverflows {} => "local header offset overflows";
        /// The central directory and the end record disagree on the member count.
        NameCount {
            /// Distinct names in the central directory.
            distinct: usize,
            /// Members the end record leads readers to.
            listed: usize,
        } => "the central directory holds {distinct} distinct names where the end record leads readers to {listed}";
        /// Two entries share a name.
        Duplicate {
            /// The later entry's index.
            entry: usize,
            /// The index of the first entry of that name.
            first: usize,
        } => "duplicate member name (entry {entry} repeats entry {first}): \
              readers disagree on which one is loaded; both are scanned";
        /// A local header disagrees with its central entry.
        HeadersDisagree {
            /// Every field that differs.
            diffs: Vec<Disagreement>,
        } => "local header disagrees with the central directory: {}",
            diffs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        /// A member's local header (or data) cannot be read.
        UnreadableMember {
            /// Why.
            error: HeaderError,
        } => "unreadable member: {error}";
        /// An encrypted member.
        Encrypted {} => "encrypted member cannot be scanned";
        /// More faults of one kind than are listed.
        TooMany {
            /// How many there were.
            count: usize,
            /// Of which kind.
            kind: FaultKind,
        } => "{count} {kind} anomalies in this archive; \
              the first MAX_ARCHIVE_NOTES_PER_KIND ({MAX_ARCHIVE_NOTES_PER_KIND}) are listed";
        /// A member's bytes overlap another's.
        Overlap {
            /// Start of its local header.
            start: u64,
            /// End of its data.
            stop: u64,
            /// The member it overlaps.
            other: String,
        } => "member bytes {start}..{stop} overlap those of {other:?}: entries sharing data (a zip bomb) \
              or a member hidden inside another";
        /// A member's data runs into the central directory.
        IntoCentralDirectory {
            /// Where the central directory starts.
            dir_start: u64,
        } => "member data runs into the central directory at offset {dir_start}";
        /// A member's compressed size runs past the end of the archive.
        PastEnd {
            /// The declared compressed size.
            csize: u64,
            /// Bytes left in the archive after the member's data start.
            available: u64,
        } => "declared compressed size {csize} runs past the end of the archive ({available} bytes remain); \
              what is there is scanned";
        /// A member's data is not the size the central directory declares.
        SizeMismatch {
            /// The declared size.
            declared: u64,
            /// The size decoded.
            actual: u64,
            /// The CRC-32 of what was decoded.
            crc: u32,
            /// The declared CRC-32.
            declared_crc: u32,
        } => "the central directory declares {declared} bytes, the data holds {actual} \
              (CRC {crc:08x}, declared {declared_crc:08x}); all of it was scanned";
        /// A member's CRC-32 is not the declared one.
        CrcMismatch {
            /// The CRC-32 of the data.
            crc: u32,
            /// The declared CRC-32.
            declared: u32,
        } => "CRC mismatch: the data has CRC {crc:08x}, the archive declares {declared:08x}; \
              the content was scanned anyway";
    }

    /// Why a zip header could not be read.
    #[derive(Debug, Clone, PartialEq)]
    pub enum HeaderError {
        /// The header runs past the end of the archive.
        PastEnd {
            /// Bytes wanted.
            n: usize,
            /// Where.
            pos: u64,
            /// The archive's length.
            end: u64,
        } => "{n} bytes at offset {pos} run past the end of the archive ({end} bytes)";
        /// An I/O error.
        Io {
            /// The error.
            error: String,
        } => "{error}";
        /// No local header signature where the central directory points.
        NoLocalHeader {
            /// The offset pointed at.
            at: u64,
        } => "no local file header at offset {at}";
    }

    /// One field in which a local header disagrees with its central entry.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Disagreement {
        /// The names differ.
        Name {
            /// The local header's name, decoded.
            local: String,
        } => "name {local:?} in the local header";
        /// The compression methods differ.
        Method {
            /// Central.
            central: u16,
            /// Local.
            local: u16,
        } => "compression method {central} (central) vs {local} (local)";
        /// One says encrypted, the other not.
        Encryption {} => "encryption flag differs";
        /// The CRC-32s differ.
        Crc {
            /// Central.
            central: u32,
            /// Local.
            local: u32,
        } => "CRC {central:08x} (central) vs {local:08x} (local)";
        /// The compressed sizes differ.
        CompressedSize {
            /// Central.
            central: u64,
            /// Local.
            local: u64,
        } => "compressed size {central} (central) vs {local} (local)";
        /// The sizes differ.
        Size {
            /// Central.
            central: u64,
            /// Local.
            local: u64,
        } => "size {central} (central) vs {local} (local)";
    }

    /// A decompression limit reached: a decompression bomb.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Bomb {
        /// A stream's output passed a limit while it was read; the limit's own message.
        Reached {
            /// What the limit says (`decompression limit reached: ...`).
            detail: String,
        } => "{detail}";
        /// A zip member declares a size past the limits.
        DeclaredSize {
            /// The declared size.
            declared: u64,
            /// Its compressed size.
            csize: u64,
        } => "declared size {declared} for {csize} compressed bytes exceeds the decompression limits";
    }

    /// Another safety limit reached: what was not scanned.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Limit {
        /// A container nested deeper than allowed.
        TooDeep {
            /// The container found there.
            format: Format,
        } => "{} nested deeper than MAX_CONTAINER_DEPTH ({MAX_CONTAINER_DEPTH})", format.name();
        /// A zip inside a stream, too large to hold in memory.
        NestedZip {
            /// The limit, in bytes.
            limit: u64,
        } => "a zip inside a stream larger than MAX_NESTED_ARCHIVE_BYTES ({limit}) is not scanned";
        /// A tar archive with too many entries.
        TarEntries {} => "more than MAX_ARCHIVE_MEMBERS ({MAX_ARCHIVE_MEMBERS}) entries";
        /// A zip archive with too many members.
        ZipMembers {} => "more than MAX_ARCHIVE_MEMBERS ({MAX_ARCHIVE_MEMBERS}) members";
        /// Too many joblib < 0.10 companion files.
        CompanionFiles {} => "more than MAX_COMPANION_FILES ({MAX_COMPANION_FILES}) companion files named";
        /// A checkpoint's pickle record too large to read for its persistent ids.
        TorchPickleSize {
            /// The record (`data.pkl`).
            pickle: String,
            /// Its declared size.
            size: u64,
        } => "{pickle} declares {size} bytes, more than MAX_TORCH_PICKLE_BYTES ({MAX_TORCH_PICKLE_BYTES}): \
              its storage references were not checked";
        /// The pickles of a streamed checkpoint exceed what is held.
        TorchPicklesHeld {
            /// The pickle being read.
            what: PickleSlot,
        } => "the pickles of this checkpoint exceed MAX_TORCH_PICKLE_BYTES ({MAX_TORCH_PICKLE_BYTES}); \
              {what} and what follows were not scanned";
        /// A legacy checkpoint with too many storages.
        TorchStorages {
            /// How many it lists.
            count: usize,
        } => "{count} storages, more than MAX_TORCH_STORAGES ({MAX_TORCH_STORAGES}): the \
              storage section was not checked";
        /// A legacy tar section with too many records.
        TorchTarRecords {
            /// The section.
            section: TarSection,
            /// How many it declares.
            count: u64,
        } => "`{section}` declares {count} records, more than MAX_TORCH_STORAGES ({MAX_TORCH_STORAGES}): not followed";
    }

    /// A joblib < 0.10 companion file that is unsafe to open or missing.
    #[derive(Debug, Clone, PartialEq)]
    pub enum CompanionFault {
        /// The name was too long to be kept.
        NameTooLong {} => "legacy joblib wrapper names a companion file whose name is too long to check";
        /// The name leads out of the pickle's folder.
        UnsafeName {
            /// The name as written.
            filename: String,
            /// How it leads out.
            why: &'static str,
            /// `ZNDArrayWrapper` (read with `read_zfile`) rather than `NDArrayWrapper`.
            compressed: bool,
        } => "legacy joblib wrapper names companion file {}: {why}; joblib.load would open it with {}",
            repr_str(filename),
            if *compressed { "read_zfile" } else { "numpy.load(allow_pickle=True)" };
        /// The companion is not in the pickle's folder.
        NotInFolder {
            /// The name as written.
            filename: String,
        } => "legacy joblib wrapper names companion file {}, which is not in the pickle's folder: \
              its content was not scanned",
            repr_str(filename);
        /// A symbolic link leads the companion out of the pickle's folder.
        LinkOutside {
            /// The name as written.
            filename: String,
        } => "legacy joblib wrapper names companion file {}, which a symbolic link resolves outside \
              the pickle's folder; it was not opened",
            repr_str(filename);
        /// The companion cannot be opened.
        CannotRead {
            /// The name as written.
            filename: String,
            /// The I/O error.
            error: String,
        } => "companion file {} cannot be read: {error}", repr_str(filename);
        /// The companion is not a regular file.
        NotRegular {
            /// The name as written.
            filename: String,
        } => "companion file {} is not a regular file; it was not scanned", repr_str(filename);
    }

    /// A second reading of the file, which was scanned too.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Polyglot {
        /// A pickle (or unknown bytes) with a zip end record behind it.
        ZipBehind {
            /// Offset of the end record.
            at: u64,
        } => "the file is also a zip archive (end record at offset {at}): pickle.load reads the pickle, \
              zip readers the archive; both were scanned";
        /// A container whose bytes `pickle.load` runs as opcodes.
        PickleInside {
            /// What its magic bytes say.
            format: Format,
            /// Where the pickle reading imports or calls.
            at: u64,
        } => "the file is a {} to readers that go by its magic bytes, and a pickle to pickle.load, \
              which imports or calls at offset {at}; both readings were scanned",
            format.name();
    }
}

/// The kinds of archive faults counted separately against
/// `MAX_ARCHIVE_NOTES_PER_KIND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Duplicate names.
    Duplicate,
    /// Local headers that disagree with the central directory.
    Header,
    /// Unreadable local headers.
    Local,
    /// Overlapping members.
    Overlap,
    /// Sizes that disagree with the data.
    Size,
    /// CRC mismatches.
    Crc,
}

impl FaultKind {
    /// Every kind, in the order their overflow is reported.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Duplicate,
        FaultKind::Header,
        FaultKind::Local,
        FaultKind::Overlap,
        FaultKind::Size,
        FaultKind::Crc,
    ];
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Duplicate => "duplicate",
            FaultKind::Header => "header",
            FaultKind::Local => "local",
            FaultKind::Overlap => "overlap",
            FaultKind::Size => "size",
            FaultKind::Crc => "crc",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_their_fields() {
        let p: Problem = Unreadable::ReadError { error: "boom".into() }.into();
        assert_eq!(p.to_string(), "read error: boom");
        let p: Problem = ArchiveFault::HeadersDisagree {
            diffs: vec![Disagreement::Encryption {}, Disagreement::Crc { central: 1, local: 0xabc }],
        }
        .into();
        assert_eq!(
            p.to_string(),
            "local header disagrees with the central directory: encryption flag differs; CRC 00000001 (central) vs 00000abc (local)"
        );
        let p: Problem = Polyglot::ZipBehind { at: 7 }.into();
        assert_eq!(
            p.to_string(),
            "the file is also a zip archive (end record at offset 7): pickle.load reads the pickle, zip readers the archive; both were scanned"
        );
        let p: Problem =
            CompanionFault::UnsafeName { filename: "../x".into(), why: "it climbs", compressed: true }.into();
        assert_eq!(
            p.to_string(),
            "legacy joblib wrapper names companion file '../x': it climbs; joblib.load would open it with read_zfile"
        );
    }
}
