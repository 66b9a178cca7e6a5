//! Legacy non-zip checkpoints (`_use_new_zipfile_serialization=False`,
//! torch < 1.6): five pickles read as five loads, then the storage section
//! walked by the sizes they declare, then whatever follows it.

use std::collections::HashMap;

use super::diag::{After, PickleSlot, TorchFault};
use super::held::Held;
use super::storage::{parse_pid, root, Layout, Pid, StorageRef};
use super::{Stream, LEGACY_PROTOCOL_VERSION, SHOWN_CHARS};
use crate::container::diag::Limit;
use crate::container::readers::Peeked;
use crate::container::walk::{Layer, Part, Walker};
use crate::limits::MAX_TORCH_STORAGES;
use crate::pickle::source::{ByteSource, Input, ReadSource};
use crate::view::render::Renderer;
use crate::vm::{Analysis, EventKind, Value};

/// What the five pickles of a legacy checkpoint are, for messages.
const LEGACY_PICKLES: [&str; 5] =
    ["the magic number", "the protocol version", "sys_info", "the object pickle", "the storage key list"];

/// Walks the legacy (non-zip) checkpoint of layer `at`: the five pickles
/// as separate loads, then the storage section by its declared sizes, then
/// whatever follows it.
pub(in crate::container) fn walk<R: Input>(w: &mut Walker, p: Peeked<R>, total: Option<u64>, at: &Layer) {
    let mut src = ReadSource::new(p, total);
    let mut held = Held::new();
    let mut cut = None;
    for what in LEGACY_PICKLES {
        let offset = src.position();
        if let Err(c) = held.pickle(&mut src) {
            cut = Some((c, offset, what));
            break;
        }
    }
    let Some(analysis) = held.analysis(&w.analyzer()) else { return };
    let mut cx = Stream::new(w, at);
    let trailing = match cut {
        None => storages(&mut cx, &analysis, &mut src),
        Some((c, offset, what)) => {
            cx.cut(c, offset, PickleSlot::Legacy { what });
            None
        }
    };
    cx.finish(Some(analysis), trailing);
}

/// Checks the legacy object pickle's persistent ids and walks the
/// storage section. Returns the analysis of a pickle found after it.
fn storages<S: ByteSource>(cx: &mut Stream<'_, '_>, a: &Analysis, src: &mut S) -> Option<Part> {
    let rend = Renderer::new(a, SHOWN_CHARS);
    if let Some(v) = root(a, 1) {
        if a.int(v) != Some(LEGACY_PROTOCOL_VERSION) {
            let at = a.pickles.get(1).map(|p| p.start).unwrap_or(0);
            cx.note(at, TorchFault::ProtocolVersion { shown: rend.expr(v) });
        }
    }
    let (storages, named) = storage_refs(cx, a, &rend);
    let keys_at = a.pickles.get(4).map(|p| p.start).unwrap_or(0);
    let keys = storage_keys(cx, a, keys_at)?;
    for key in &keys {
        let at = src.position();
        let Some(s) = storages.get(*key) else {
            cx.note(at, TorchFault::KeyUnnamed { key: key.to_string() });
            return None;
        };
        // An unknown class was reported with its persistent id. An
        // UntypedStorage (reported too) was written in bytes: followed.
        let Ok(elem) = s.class.size() else { return None };
        if let Err(fault) = cx.storage_bytes(src, key, Some(s.numel), elem) {
            cx.note(at, fault);
            return None;
        }
    }
    for key in named.iter().filter(|k| !keys.contains(&k.as_str())) {
        cx.note(keys_at, TorchFault::StorageWithoutData { key: key.clone() });
    }
    cx.trailing(src, After::LastStorage {})
}

/// The storages the object pickle's persistent ids name, first reference
/// winning (as in `persistent_load`), and their keys in the order named;
/// what the loader cannot use is reported.
fn storage_refs(
    cx: &mut Stream<'_, '_>,
    a: &Analysis,
    rend: &Renderer<'_>,
) -> (HashMap<String, StorageRef>, Vec<String>) {
    let mut storages: HashMap<String, StorageRef> = HashMap::new();
    let mut named: Vec<String> = Vec::new();
    for e in a.events.iter().filter(|e| e.pickle == 3) {
        let EventKind::PersistentId { pid } = e.kind else { continue };
        let fault = match parse_pid(a, pid, Layout::Legacy, rend) {
            Pid::Storage(s) => {
                let why = s.class.problem(Layout::Legacy);
                if !storages.contains_key(&s.key) {
                    named.push(s.key.clone());
                    storages.insert(s.key.clone(), s);
                }
                why
            }
            Pid::Module { class, file, source } => Some(match source {
                Some((len, first)) => TorchFault::ModuleSource { class, file, len, first },
                None => TorchFault::ModuleNoSource { class, file },
            }),
            Pid::Bad(why) => Some(why),
        };
        if let Some(fault) = fault {
            cx.note(e.offset, fault);
        }
    }
    (storages, named)
}

/// The fifth pickle's list of storage keys, at `keys_at`; `None` (and
/// reported) when it is not one, or too long to follow.
fn storage_keys<'a>(cx: &mut Stream<'_, '_>, a: &'a Analysis, keys_at: u64) -> Option<Vec<&'a str>> {
    let keys: Vec<&str> = match root(a, 4).map(|v| a.value(v)) {
        Some(Value::List(items)) => match items.iter().map(|&k| a.full_str(k)).collect::<Option<Vec<_>>>() {
            Some(k) => k,
            None => {
                cx.note(keys_at, TorchFault::KeysNotStrings {});
                return None;
            }
        },
        _ => {
            cx.note(keys_at, TorchFault::NoKeyList {});
            return None;
        }
    };
    if keys.len() > MAX_TORCH_STORAGES {
        cx.note(keys_at, Limit::TorchStorages { count: keys.len() });
        return None;
    }
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::torch::tests::{note_rules, MAGIC_P2};

    /// A legacy checkpoint: the five pickles, then `storages` as (key, bytes).
    fn legacy(object: &[u8], keys: &[&str], storages: &[(i64, usize)], tail: &[u8]) -> Vec<u8> {
        let mut out = MAGIC_P2.to_vec();
        out.extend_from_slice(b"\x80\x02M\xe9\x03.");
        out.extend_from_slice(b"\x80\x02}.");
        out.extend_from_slice(object);
        out.extend_from_slice(b"\x80\x02(");
        for k in keys {
            out.push(b'X');
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k.as_bytes());
        }
        out.extend_from_slice(b"l.");
        for &(numel, n) in storages {
            out.extend_from_slice(&numel.to_le_bytes());
            out.extend(std::iter::repeat_n(0u8, n));
        }
        out.extend_from_slice(tail);
        out
    }

    /// An object pickle: `{'w': persistent_load(('storage', FloatStorage, '1', 'cpu', 2, None))}`.
    const OBJECT: &[u8] = b"\x80\x02}X\x01\x00\x00\x00w(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x001X\x03\x00\x00\x00cpuK\x02NtQs.";

    fn walk(data: &[u8]) -> crate::container::Walked {
        let mut w = Walker::new();
        w.stream(data, Some(data.len() as u64), None, Vec::new(), 0);
        w.finish()
    }

    #[test]
    fn legacy_checkpoint_stops_after_its_storages() {
        let data = legacy(OBJECT, &["1"], &[(2, 8)], b"");
        let w = walk(&data);
        assert_eq!(note_rules(&w), Vec::<&str>::new(), "{:?}", w.notes);
        assert_eq!(w.parts.len(), 1);
        let a = &w.parts[0].analysis;
        assert_eq!(a.pickles.len(), 5);
        assert!(a.error.is_none());
    }

    #[test]
    fn legacy_storage_section_is_checked() {
        // Count differs from the persistent id.
        let w = walk(&legacy(OBJECT, &["1"], &[(3, 12)], b""));
        assert_eq!(note_rules(&w), vec!["PK304"]);
        assert!(w.notes[0].problem.to_string().contains("wrong byte size"));
        // The data is cut short.
        let w = walk(&legacy(OBJECT, &["1"], &[(2, 5)], b""));
        assert!(w.notes[0].problem.to_string().contains("only 5 remain"), "{:?}", w.notes);
        // A key nothing names.
        let w = walk(&legacy(OBJECT, &["9"], &[(2, 8)], b""));
        assert!(w.notes.iter().any(|n| n.problem.to_string().contains("KeyError")), "{:?}", w.notes);
        // A huge count does not overflow.
        let w = walk(&legacy(OBJECT, &["1"], &[(i64::MAX, 0)], b""));
        assert!(w.notes.iter().any(|n| n.problem.to_string().contains("more than any file holds")), "{:?}", w.notes);
        // Bytes after the last storage.
        let w = walk(&legacy(OBJECT, &["1"], &[(2, 8)], b"\x00\x00\x00"));
        assert_eq!(note_rules(&w), vec!["PK207"]);
        assert!(w.notes[0].problem.to_string().starts_with("3 bytes"));
        // A pickle after the last storage is scanned.
        let w = walk(&legacy(OBJECT, &["1"], &[(2, 8)], b"cos\nsystem\n(S'echo'\ntR."));
        assert_eq!(note_rules(&w), vec!["PK208"]);
        assert_eq!(w.parts.len(), 2);
        let tail_start = data_len_before_tail(OBJECT, &["1"], &[(2, 8)]);
        assert_eq!(w.parts[1].analysis.pickles[0].start, tail_start);
        assert!(w.parts[1].analysis.events.iter().any(|e| matches!(e.kind, EventKind::Call { .. })));
    }

    #[test]
    fn legacy_untyped_storage_is_refused_but_followed() {
        // torch.save of a uint16 tensor with _use_new_zipfile_serialization=False:
        // UntypedStorage, counted in bytes; torch.load cannot read it back.
        let object = b"\x80\x02}X\x01\x00\x00\x00w(X\x07\x00\x00\x00storagectorch.storage\nUntypedStorage\nX\x01\x00\x00\x001X\x03\x00\x00\x00cpuK\x06NtQs.";
        let w = walk(&legacy(object, &["1"], &[(6, 6)], b""));
        assert_eq!(note_rules(&w), vec!["PK304"], "{:?}", w.notes);
        assert!(w.notes[0].problem.to_string().contains("UntypedStorage has not"), "{:?}", w.notes);
        // The section is followed by its byte count: what follows is found.
        let w = walk(&legacy(object, &["1"], &[(6, 6)], b"\x00"));
        assert_eq!(note_rules(&w), vec!["PK304", "PK207"], "{:?}", w.notes);
    }

    fn data_len_before_tail(object: &[u8], keys: &[&str], storages: &[(i64, usize)]) -> u64 {
        legacy(object, keys, storages, b"").len() as u64
    }

    #[test]
    fn legacy_with_fewer_pickles_is_reported() {
        let mut data = MAGIC_P2.to_vec();
        data.extend_from_slice(b"\x80\x02M\xe9\x03.");
        let w = walk(&data);
        assert_eq!(note_rules(&w), vec!["PK304"]);
        assert!(w.notes[0].problem.to_string().contains("sys_info"), "{:?}", w.notes);
        // A broken third pickle: the analysis says how, no extra note.
        data.extend_from_slice(b"\x80\x02\xff");
        let w = walk(&data);
        assert_eq!(note_rules(&w), Vec::<&str>::new());
        assert!(w.parts[0].analysis.error.is_some());
    }
}
