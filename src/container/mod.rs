//! Containers: what a file is, by its bytes, and every pickle stream inside.
//!
//! A model reaches a loader in many wrappings: a bare pickle, a joblib file
//! compressed with zlib/gzip/bz2/lzma/xz/lz4, a PyTorch zip checkpoint, an
//! `.npy` with object dtype, an `.npz`, a zip or tar archive, a
//! `model.pkl.gz`. [`sniff`] decides by magic bytes — never by file name —
//! and [`Walker`] unwraps layer by layer (bounded depth), streaming through
//! decompressors with named limits, and hands every pickle stream to the
//! machine. Container-level problems (a corrupt stream, a decompression bomb,
//! an encrypted member) become [`Note`]s holding a typed [`Problem`]
//! ([`diag`]), which the judging stage ([`crate::rules::container_finding`])
//! turns into findings; everything found before a problem is kept.
//!
//! Where the bytes admit more than one reading that some loader takes (a
//! pickle with a zip behind it; a compressor magic that `pickle.load` runs
//! as opcodes), each reading is walked ([`Walker::seekable`]). Companion
//! files of joblib < 0.10 pickles are looked up beside the file
//! ([`legacy`]).

mod compressed;
pub mod diag;
mod format;
pub(crate) mod joblib;
pub mod legacy;
pub mod npy;
mod polyglot;
mod readers;
pub mod tar;
mod torch;
mod walk;
pub(crate) mod zip;

pub use diag::{
    ArchiveFault, Bomb, CompanionFault, Disagreement, FaultKind, HeaderError, Limit, Note, Polyglot, Problem,
    Unreadable,
};
pub use format::{sniff, Format, SNIFF_BYTES};
pub use readers::Peeked;
#[cfg(test)]
pub use torch::FLOAT32;
pub use torch::{
    parse_pid, storage_class, storage_class_of, torch_dtype, After, PickleSlot, Pid, PidClass, PidLayout, StorageClass,
    StorageElem, StorageRef, TarSection, TorchDtype, TorchFault, ZipKind, STORAGE_CLASSES, TORCH_DTYPES, UINT8,
};
pub use walk::{walk_file, Part, Walked, Walker};
