//! The listing of a pickle stream read inside a container, from the bytes
//! its analysis kept ([`Recorded`]), with joblib array payloads passed over
//! where the machine passed over them.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufWriter, Write};

use super::{dis_ops, DisEnd, RawBytes};
use crate::limits::{MAX_NESTED_PICKLES, MAX_RECORDED_BYTES};
use crate::pickle::reader::OpReader;
use crate::pickle::record::Recorded;
use crate::pickle::source::ByteSource;
use crate::py::repr::escape_for_terminal;
use crate::vm::{Analysis, Anomaly, EventKind};

/// The bytes joblib writes after one `NumpyArrayWrapper`'s BUILD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Payload {
    /// Where the array data (or the nested pickle) starts: after the
    /// alignment padding, if any.
    data: u64,
    /// Just past its end.
    end: u64,
    /// An object array: the data is a nested pickle.
    nested: bool,
}

/// The joblib payloads of a stream, by the offset just after their BUILD.
#[derive(Debug, Default)]
pub(super) struct Payloads(BTreeMap<u64, Payload>);

impl Payloads {
    /// The payloads the machine read in `a`: each follows the last BUILD of
    /// its wrapper.
    pub(super) fn of(a: &Analysis) -> Payloads {
        let mut builds = HashMap::new();
        let mut map = BTreeMap::new();
        for e in &a.events {
            match &e.kind {
                EventKind::Build { target, .. } => {
                    builds.insert(*target, e.offset);
                }
                EventKind::ArrayPayload { wrapper, offset, len, nested } => {
                    if let Some(&build) = builds.get(wrapper) {
                        let end = offset.saturating_add(*len);
                        map.insert(build + 1, Payload { data: *offset, end, nested: nested.is_some() });
                    }
                }
                _ => {}
            }
        }
        Payloads(map)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The payload that starts at `pos`, if one does.
    pub(super) fn at(&self, pos: u64) -> Option<Payload> {
        self.0.get(&pos).copied()
    }
}

/// Passes over payload `p`, which starts where `reader` stands: raw array
/// bytes are skipped with a line saying how many; a nested pickle is listed
/// between two lines. `Some` when the listing ends there.
pub(super) fn payload<S: ByteSource, R: RawBytes + ?Sized, W: Write>(
    reader: &mut OpReader<S>,
    raw: &R,
    payloads: &Payloads,
    p: Payload,
    depth: usize,
    out: &mut W,
) -> io::Result<Option<DisEnd>> {
    let pos = reader.position();
    if p.nested {
        writeln!(out, "--- object array data at offset {pos}: a nested pickle ---")?;
        if depth >= MAX_NESTED_PICKLES {
            writeln!(out, "!! error: more than MAX_NESTED_PICKLES ({MAX_NESTED_PICKLES}) nested pickles")?;
            return Ok(Some(DisEnd::Eof { offset: pos }));
        }
        reader.reset_frame();
        return match dis_ops(reader, raw, payloads, depth + 1, out)? {
            DisEnd::Stop { .. } => {
                writeln!(out, "--- end of the nested pickle; the pickle goes on at offset {} ---", reader.position())?;
                Ok(None)
            }
            end => Ok(Some(end)),
        };
    }
    if p.data > pos {
        writeln!(out, "--- {} bytes of alignment padding at offset {pos} ---", p.data - pos)?;
    }
    let want = p.end.saturating_sub(pos);
    let got = reader.source_mut().skip(want)?;
    writeln!(out, "--- {} bytes of array data at offset {} ---", p.end.saturating_sub(p.data), p.data)?;
    if got < want {
        let offset = reader.position();
        writeln!(out, "!! error: the input ends inside the array data (at offset {offset})")?;
        return Ok(Some(DisEnd::Eof { offset }));
    }
    Ok(None)
}

/// Disassembles every pickle of the stream that `a` analysed, from the
/// bytes it kept (`rec`), as [`super::dis_all`] lists a file: the first
/// pickle as pickletools would (joblib array payloads aside), each further
/// one after `--- pickle N at offset X ---`. Also said, each on its line:
/// the array payloads passed over, bytes between two pickles that were
/// skipped rather than read (a legacy PyTorch checkpoint's raw storages),
/// bytes after the last pickle, where the copy ends when the stream is over
/// [`MAX_RECORDED_BYTES`], and an error that ended the analysis where the
/// listing does not show it.
///
/// # Errors
/// Only errors writing to `out`.
pub fn dis_stream<W: Write>(a: &Analysis, rec: &Recorded, out: &mut W) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(64 * 1024, out);
    let payloads = Payloads::of(a);
    let mut last_end = None;
    let mut ended = None;
    for (i, p) in a.pickles.iter().enumerate() {
        if let Some(end) = last_end {
            if p.start > end {
                writeln!(w, "--- {} bytes at offset {end} not read as a pickle (raw data) ---", p.start - end)?;
            }
            writeln!(w, "--- pickle {} at offset {} ---", i + 1, p.start)?;
        }
        let mut reader = OpReader::new(rec.source_at(p.start));
        match dis_ops(&mut reader, rec, &payloads, 0, &mut w)? {
            DisEnd::Stop { end } => last_end = Some(end),
            other => {
                ended = Some(other);
                break;
            }
        }
    }
    for e in &a.events {
        match &e.kind {
            EventKind::Anomaly(Anomaly::TrailingData { len }) => {
                writeln!(w, "--- trailing data: {len} bytes at offset {} ---", e.offset)?;
            }
            EventKind::Anomaly(an @ Anomaly::LimitExceeded { .. }) => {
                writeln!(w, "!! {} (at offset {})", an.message(), e.offset)?;
            }
            _ => {}
        }
    }
    if let Some(cut) = rec.cut_at() {
        writeln!(
            w,
            "!! not kept past offset {cut}: the stream is longer than MAX_RECORDED_BYTES ({MAX_RECORDED_BYTES})"
        )?;
    }
    if let Some(e) = &a.error {
        let shown = matches!(&ended, Some(DisEnd::Error(d)) if d.to_string() == e.to_string());
        if !shown {
            writeln!(w, "!! the analysis ended: {}", escape_for_terminal(&e.to_string()))?;
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Analyzer;

    fn listing(data: &[u8]) -> String {
        let a = Analyzer::new().record(true).run(data);
        let mut out = Vec::new();
        dis_stream(&a, a.recorded.as_ref().expect("recorded"), &mut out).expect("write to a Vec");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn a_plain_pickle_lists_as_dis_all_does() {
        for p in [&b"\x80\x04K\x01."[..], b"cos\nsystem\n(S'echo hi'\ntR.", b"\x80\x02]q\x00(K\x01K\x02e.\x80\x02N."] {
            let mut want = Vec::new();
            super::super::dis_all(p, &mut want).expect("write");
            assert_eq!(listing(p), String::from_utf8(want).expect("UTF-8"));
        }
    }

    #[test]
    fn joblib_payloads_are_passed_over() {
        let data = std::fs::read("fixtures/containers/joblib_mixed_p4.joblib").expect("fixture");
        let text = listing(&data);
        assert!(text.contains(" bytes of array data at offset "), "{text}");
        assert!(!text.contains("!!"), "{text}");
        assert!(text.ends_with("highest protocol among opcodes = 4\n"), "{text}");
    }
}
