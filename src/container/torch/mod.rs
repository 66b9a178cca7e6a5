//! PyTorch checkpoints (shared/FORMATS.md §4): what `torch.load` reads of
//! one, and whether the storages its pickles name are where they say.
//!
//! The pickles themselves are judged like any other; this module knows the
//! three layouts around them and reports what does not fit as
//! [`TorchFault`]s (which the judging stage makes rule PK304
//! `torch-anomaly`, or PK207/PK208 for bytes after the last storage), one
//! module per layout ([`zip`], [`legacy`], [`tar`]):
//!
//! - **zip** (torch ≥ 1.6): an archive whose records share the folder of the
//!   first entry, `<arch>/`, with `<arch>/data.pkl` and a `version`,
//!   `.data/version`, `.format_version` or `byteorder` record. Before the
//!   members are walked, `data.pkl`'s persistent ids
//!   `('storage', <torch.*Storage>, key, location, numel)` are read and each
//!   is checked against the record `<arch>/data/<key>`: it must exist and hold
//!   at least `numel × element size` bytes. The records they name are raw
//!   tensor bytes, which torch reads as bytes and never unpickles, so they are
//!   not sniffed (float data that happens to start with a pickle or zlib
//!   byte is not a pickle). Every other member is walked as usual; a pickle
//!   other than `data.pkl` is scanned and reported, since `torch.load` never
//!   unpickles it but another tool may. Storage classes are those of
//!   [`STORAGE_CLASSES`]; `UntypedStorage` (tensors of float8 and
//!   uint16/32/64, rebuilt by `_rebuild_tensor_v3`) is counted in bytes.
//!   An archive with a `constants.pkl` record is a **TorchScript** archive
//!   ([`ZipKind::TorchScript`]): `constants.pkl` (storages under
//!   `constants/`) and the `code/**.debug_pkl` source maps are pickles its
//!   loader reads, and the TorchScript source under `code/` is not sniffed
//!   and is marked in `skipped_members` ([`TORCHSCRIPT_SOURCE_MARK`]).
//! - **legacy non-zip** (`_use_new_zipfile_serialization=False`, torch <
//!   1.6): five pickles (the magic number `0x1950a86a20f9469cfc6c`, the
//!   protocol version 1001, `sys_info`, the object, the sorted storage keys),
//!   then for each key an `int64` element count and the raw bytes. The five
//!   pickles are read one at a time (each held in memory, together at most
//!   [`MAX_TORCH_PICKLE_BYTES`]) and analysed as five separate loads; the
//!   storage section is then walked by the declared sizes, skipped rather
//!   than read, and anything after it is reported (and scanned when it is
//!   another pickle). `('module', cls, file, source)` persistent ids, which
//!   carry the Python source of `nn.Module` classes, are reported, and so is
//!   an `UntypedStorage` class, which `torch.save` writes in this format but
//!   the legacy loader cannot read back (its section is still followed).
//! - **legacy tar** (torch ≤ 0.3): the members `storages` and `tensors` hold a
//!   pickled count, then per record a header pickle (which `torch.load`
//!   unpickles, so it is scanned) followed by raw bytes whose sizes the
//!   header and a few integers give. `pickle` and `sys_info` are plain
//!   pickles and are walked as such.
//!
//! Every size a file declares is checked against what remains and with
//! checked arithmetic before anything is skipped; nothing is allocated from a
//! declared size.

pub(super) mod diag;
mod dtypes;
mod held;
pub(super) mod legacy;
mod storage;
pub(super) mod tar;
pub(super) mod zip;

pub use self::diag::{After, PickleSlot, TorchFault};
#[cfg(test)]
pub use self::dtypes::FLOAT32;
pub use self::dtypes::{torch_dtype, TorchDtype, TORCH_DTYPES, UINT8};
pub use self::storage::{
    class_of as storage_class_of, parse_pid, storage_class, Class as PidClass, Layout as PidLayout, Pid, StorageClass,
    StorageElem, StorageRef, STORAGE_CLASSES,
};
pub use self::tar::TarSection;
pub use self::zip::ZipKind;

use self::held::{Cut, SourceRead};
use super::diag::{Bomb, Limit, Problem, Unreadable};
use super::format::{sniff, Format};
use super::readers::{LimitHit, Peeked};
use super::walk::{Layer, Part, Walker};
use crate::limits::MAX_TORCH_NOTES;
use crate::pickle::source::{ByteSource, Input, ReadSource};

/// The legacy format's magic number, `0x1950a86a20f9469cfc6c`, as the ten
/// little-endian bytes of its `LONG1`.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// The same number as protocol 0/1 writes it (`LONG` text).
const LEGACY_MAGIC_TEXT: &[u8] = b"L119547037146038801333356L\n.";

/// The protocol version the legacy format's second pickle holds.
pub(super) const LEGACY_PROTOCOL_VERSION: i64 = 1001;

/// Characters of a value shown in a message.
const SHOWN_CHARS: usize = 120;

/// True when `head` starts with the legacy format's first pickle: the magic
/// number alone (`PROTO n`, an optional `FRAME`, `LONG1` magic, `STOP`), as
/// `torch.save(..., _use_new_zipfile_serialization=False)` writes it with any
/// pickle protocol.
pub fn is_legacy(head: &[u8]) -> bool {
    if head.starts_with(LEGACY_MAGIC_TEXT) {
        return true;
    }
    let rest = match head {
        [0x80, 2..=5, rest @ ..] => rest,
        _ => return false,
    };
    let rest = match rest {
        [0x95, _, _, _, _, _, _, _, _, rest @ ..] => rest,
        _ => rest,
    };
    match rest {
        [0x8a, 0x0a, magic @ ..] if magic.len() >= 11 => magic[..10] == LEGACY_MAGIC && magic[10] == b'.',
        _ => false,
    }
}

/// The notes of one checkpoint: its own faults ([`TorchFault`]) at most
/// [`MAX_TORCH_NOTES`], the rest counted; limits and read errors are always
/// kept, as they say what was not scanned.
#[derive(Debug, Default)]
struct Notes {
    given: usize,
    first_member: Option<String>,
}

impl Notes {
    /// Records `problem` of `member` at `offset`, within the cap.
    fn note(&mut self, w: &mut Walker, member: &Option<String>, offset: u64, problem: impl Into<Problem>) {
        let problem = problem.into();
        if !matches!(problem, Problem::Torch(_)) {
            w.note(member, offset, problem);
            return;
        }
        self.given += 1;
        if self.given <= MAX_TORCH_NOTES {
            if self.first_member.is_none() {
                self.first_member.clone_from(member);
            }
            w.note(member, offset, problem);
        }
    }

    /// Says how many faults were left out, if any.
    fn done(&self, w: &mut Walker) {
        if self.given > MAX_TORCH_NOTES {
            w.note(&self.first_member, 0, TorchFault::TooMany { given: self.given });
        }
    }
}

/// A checkpoint read as a stream (legacy, or a section of a legacy tar):
/// the walker, the layer read and the checkpoint's notes.
struct Stream<'w, 'l> {
    w: &'w mut Walker,
    at: &'l Layer,
    notes: Notes,
}

impl<'w, 'l> Stream<'w, 'l> {
    /// The checkpoint in layer `at`, nothing found yet.
    fn new(w: &'w mut Walker, at: &'l Layer) -> Stream<'w, 'l> {
        Stream { w, at, notes: Notes::default() }
    }

    /// Records `problem` at `offset` of the layer.
    fn note(&mut self, offset: u64, problem: impl Into<Problem>) {
        self.notes.note(self.w, &self.at.member, offset, problem);
    }

    /// The note for a pickle, `what`, that could not be read whole from `offset`.
    fn cut(&mut self, cut: Cut, offset: u64, what: PickleSlot) {
        match cut {
            Cut::End => self.note(offset, TorchFault::InputEnds { what }),
            // The analysis of the bytes read reports the broken pickle.
            Cut::Stream => {}
            Cut::Io(detail) if LimitHit::in_message(&detail) => self.note(offset, Bomb::Reached { detail }),
            Cut::Io(error) => self.note(offset, Unreadable::StreamError { error }),
            Cut::Budget => self.note(offset, Limit::TorchPicklesHeld { what }),
        }
    }

    /// Adds the analyses found (`held`, then what followed the storages)
    /// as parts of the layer, and says how many faults were left out.
    fn finish(self, held: Option<crate::vm::Analysis>, trailing: Option<Part>) {
        if let Some(analysis) = held {
            self.w.out.parts.push(Part { member: self.at.member.clone(), layers: self.at.layers.clone(), analysis });
        }
        self.w.out.parts.extend(trailing);
        self.notes.done(self.w);
    }

    /// One storage's `int64` element count and raw bytes, skipped. `Err`
    /// when the section cannot be followed past it.
    fn storage_bytes<S: ByteSource>(
        &mut self,
        src: &mut S,
        key: &str,
        expect: Option<u64>,
        elem: u64,
    ) -> Result<(), TorchFault> {
        let at = src.position();
        let key = key.to_string();
        let numel = match held::read_i64(src) {
            Ok(Some(n)) => n,
            Ok(None) => return Err(TorchFault::CountMissing { key }),
            Err(e) => return Err(TorchFault::ReadBefore { key, error: e.to_string() }),
        };
        let Ok(numel) = u64::try_from(numel) else {
            return Err(TorchFault::NegativeCount { key, numel });
        };
        if let Some(expect) = expect.filter(|&e| e != numel) {
            self.note(at, TorchFault::CountDiffers { key: key.clone(), numel, expect });
        }
        let Some(nbytes) = numel.checked_mul(elem) else {
            return Err(TorchFault::StorageOverflow { key, numel, elem });
        };
        if let Some(left) = src.remaining().filter(|&left| nbytes > left) {
            return Err(TorchFault::StoragePastEnd { key, nbytes, left });
        }
        match src.skip(nbytes) {
            Ok(got) if got == nbytes => Ok(()),
            Ok(got) => Err(TorchFault::EndsInside { key, got, nbytes }),
            Err(e) => Err(TorchFault::ReadInside { key, error: e.to_string() }),
        }
    }

    /// Whatever follows the last storage, `after`: scanned when it is a
    /// pickle (PK208), reported by size otherwise (PK207).
    fn trailing<S: ByteSource>(&mut self, src: &mut S, after: After) -> Option<Part> {
        let at = src.position();
        match src.at_eof() {
            Ok(true) => return None,
            Ok(false) => {}
            Err(e) => {
                self.note(at, Unreadable::ReadError { error: e.to_string() });
                return None;
            }
        }
        let rest = src.remaining();
        let mut p = match Peeked::new(SourceRead(src)) {
            Ok(p) => p,
            Err(e) => {
                self.note(at, Unreadable::ReadError { error: e.to_string() });
                return None;
            }
        };
        if sniff(p.head()) == Format::Pickle {
            self.note(at, TorchFault::PickleAfter { after, at });
            let analysis = self.w.analyzer().run(ReadSource::with_base(p, at, rest));
            return Some(Part { member: self.at.member.clone(), layers: self.at.layers.clone(), analysis });
        }
        let count = p.skip_forward(u64::MAX).unwrap_or(0);
        self.note(at, TorchFault::BytesAfter { count, after });
        None
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A protocol-2 pickle of the legacy magic number.
    pub(super) const MAGIC_P2: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";

    #[test]
    fn legacy_magic_is_recognised_in_every_protocol_form() {
        assert!(is_legacy(MAGIC_P2));
        // Protocol 4 frames it.
        let mut p4 = b"\x80\x04\x95\x0d\x00\x00\x00\x00\x00\x00\x00".to_vec();
        p4.extend_from_slice(&MAGIC_P2[2..]);
        assert!(is_legacy(&p4));
        assert!(is_legacy(LEGACY_MAGIC_TEXT));
        // The decimal text is the same number.
        let n = LEGACY_MAGIC.iter().rev().fold(0u128, |acc, &b| acc * 256 + u128::from(b));
        assert_eq!(n, 0x1950a86a20f9469cfc6c);
        assert_eq!(format!("L{n}L\n."), String::from_utf8_lossy(LEGACY_MAGIC_TEXT));
        // Another number, or more after it in the same pickle, is not the magic pickle.
        let mut other = MAGIC_P2.to_vec();
        other[4] ^= 1;
        assert!(!is_legacy(&other));
        assert!(!is_legacy(&MAGIC_P2[..MAGIC_P2.len() - 1]));
        assert!(!is_legacy(b"\x80\x02K\x01."));
    }

    /// The rule codes of a walk's notes, as the judging stage gives them.
    pub(in crate::container) fn note_rules(w: &crate::container::Walked) -> Vec<&'static str> {
        w.notes.iter().map(|n| crate::rules::container_rule(&n.problem).code()).collect()
    }
}
