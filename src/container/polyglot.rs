//! Second readings: where a file's bytes admit a reading other than the one
//! its first bytes select, and some loader takes it, that reading is walked
//! too and reported ([`Polyglot`]).

use std::io::{self, Read, Seek};

use super::diag::Polyglot;
use super::format::Format;
use super::readers::ByRef;
use super::walk::{Layer, Part, Walker};
use super::zip;
use crate::pickle::source::{Input, ReadSource};
use crate::vm::Analysis;

/// The readings of file `at` other than the one its first bytes select:
///
/// - a pickle (or unrecognised bytes) with a zip end record: `pickle.load`
///   reads the pickle, zip readers that search for the end record
///   (Python's `zipfile`) read the archive behind it;
/// - a container or compressed stream whose first byte is a pickle
///   opcode: joblib goes by the magic bytes, `pickle.load` runs the
///   opcodes. That reading is kept when `pickle.load` would import or
///   call something before it fails.
///
/// Each reading found is a [`Polyglot`] note.
pub(super) fn other_readings<R: Read + Seek + Input>(
    w: &mut Walker,
    r: &mut R,
    format: Format,
    head: &[u8],
    at: &Layer,
) {
    match format {
        Format::Pickle | Format::Unknown => zip_behind(w, r, at),
        _ => pickle_inside(w, r, format, head, at),
    }
}

/// The zip archive behind a pickle, if its end record follows the pickle.
fn zip_behind<R: Read + Seek + Input>(w: &mut Walker, r: &mut R, at: &Layer) {
    let Some(end) = zip_end_record(r) else { return };
    if r.seek(io::SeekFrom::Start(0)).is_err() {
        return;
    }
    let config = super::zip::config_for(r);
    let Ok(archive) = ::zip::ZipArchive::with_config(config, ByRef(&mut *r)) else { return };
    // A zip held in a bytes value of the pickle is data, not a second reading;
    // one whose end record follows the pickle is.
    let pickle_end = w
        .out
        .parts
        .iter()
        .filter(|p| p.member == at.member && p.layers.is_empty())
        .flat_map(|p| p.analysis.pickles.iter().map(|k| k.end))
        .max()
        .unwrap_or(0);
    drop(archive);
    if end < pickle_end {
        return;
    }
    w.note(&at.member, end, Polyglot::ZipBehind { at: end });
    zip::walk(w, ByRef(&mut *r), at);
}

/// The pickle reading of a container whose first byte is a pickle opcode,
/// kept when `pickle.load` would import or call something before failing.
fn pickle_inside<R: Read + Seek + Input>(w: &mut Walker, r: &mut R, format: Format, head: &[u8], at: &Layer) {
    let opens = head.first().and_then(|&b| crate::pickle::opcodes::Opcode::from_byte(b)).is_some();
    if !opens || r.seek(io::SeekFrom::Start(0)).is_err() {
        return;
    }
    let analysis = w.analyzer().run(ReadSource::new(ByRef(&mut *r), None));
    if let Some(offset) = runs_before_failing(&analysis) {
        w.note(&at.member, offset, Polyglot::PickleInside { format, at: offset });
        w.out.parts.push(Part { member: at.member.clone(), layers: Vec::new(), analysis });
    }
}

/// Bytes at the end of a file searched for a zip end record: the record
/// (22 bytes) plus the longest comment (65535).
const ZIP_END_SEARCH: u64 = 22 + 65_535;

/// Offset of the last zip end-of-central-directory record, if the tail of
/// the input holds one.
fn zip_end_record<R: Read + Seek>(r: &mut R) -> Option<u64> {
    let len = r.seek(io::SeekFrom::End(0)).ok()?;
    let from = len.saturating_sub(ZIP_END_SEARCH);
    r.seek(io::SeekFrom::Start(from)).ok()?;
    let mut tail = Vec::new();
    r.take(ZIP_END_SEARCH).read_to_end(&mut tail).ok()?;
    let i = tail.windows(4).rposition(|w| w == b"PK\x05\x06")?;
    (tail.len() - i >= 22).then_some(from + i as u64)
}

/// Where a pickle reading imports a module before the first point at which
/// CPython's unpickler would raise (a stack underflow, a missing MARK, a
/// persistent id `pickle.load` cannot resolve, a name no module can have...),
/// if it does. Every call in a pickle needs such an import first.
fn runs_before_failing(a: &Analysis) -> Option<u64> {
    use crate::vm::{Anomaly, EventKind};
    // `find_class` fails on anything but dotted identifiers (a tar header
    // read as GLOBAL yields names with '/' and NUL bytes).
    let ident = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|p| {
                p.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
                    && p.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
    };
    for ev in &a.events {
        match &ev.kind {
            EventKind::Import { module, name, written, .. } => {
                let (m, n) = written.as_ref().map_or((&**module, &**name), |(m, n)| (m.as_str(), n.as_str()));
                return (ident(m) && ident(n)).then_some(ev.offset);
            }
            EventKind::ComputedImport { .. } | EventKind::PersistentId { .. } | EventKind::ExternalBuffer => {
                return None
            }
            EventKind::Anomaly(
                Anomaly::StackUnderflow { .. }
                | Anomaly::NoMark { .. }
                | Anomaly::TypeMismatch { .. }
                | Anomaly::OddItems { .. }
                | Anomaly::MemoMissing { .. }
                | Anomaly::MemoEmptyStack
                | Anomaly::MemoBadKey
                | Anomaly::BadExtension { .. },
            ) => return None,
            // CPython refuses protocols above 5; a repeated PROTO is accepted.
            EventKind::Anomaly(Anomaly::BadProto { proto }) if !(0..=5).contains(proto) => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pickle_reading_counts_until_cpython_would_raise() {
        let a = crate::vm::Analyzer::new().run(b"cos\nsystem\n(S'x'\ntR.");
        assert_eq!(runs_before_failing(&a), Some(0));
        // STACK_GLOBAL on an empty stack (the .npy magic byte): CPython raises first.
        let a = crate::vm::Analyzer::new().run(b"\x93NUMPY\x01\x00cos\nsystem\n.");
        assert_eq!(runs_before_failing(&a), None);
        // A persistent id: pickle.load has no persistent_load.
        let a = crate::vm::Analyzer::new().run(b"PK\x03\x04\ncos\nsystem\n.");
        assert_eq!(runs_before_failing(&a), None);
        // A tar header whose first name starts with 'c': GLOBAL of names find_class cannot import.
        let mut tar = b"config/model.pkl".to_vec();
        tar.resize(100, 0);
        tar.extend_from_slice(b"0000644\0\n\nmore");
        let a = crate::vm::Analyzer::new().run(&tar);
        assert_eq!(runs_before_failing(&a), None);
    }

    #[test]
    fn zip_end_record_is_found_in_the_tail_only() {
        let mut data = vec![0u8; 100];
        data.extend_from_slice(b"PK\x05\x06");
        data.extend_from_slice(&[0u8; 18]);
        assert_eq!(zip_end_record(&mut io::Cursor::new(&data)), Some(100));
        data.truncate(110);
        assert_eq!(zip_end_record(&mut io::Cursor::new(&data)), None, "a record needs 22 bytes");
    }
}
