//! Legacy tar checkpoints (torch ≤ 0.3): the members `storages` and
//! `tensors` hold a pickled count, then per record a header pickle (which
//! `torch.load` unpickles, so it is scanned) followed by raw bytes whose
//! sizes the header and a few integers give.

use std::fmt;

use super::diag::{After, PickleSlot, TorchFault};
use super::held::{read_i32, Held};
use super::storage::{class_of, root, Layout};
use super::{Stream, SHOWN_CHARS};
use crate::container::diag::{Limit, Unreadable};
use crate::container::format::{sniff, Format};
use crate::container::readers::Peeked;
use crate::container::walk::{Layer, Part, Walker};
use crate::limits::{MAX_TORCH_STORAGES, MAX_TORCH_TENSOR_DIMS};
use crate::pickle::source::{ByteSource, Input, ReadSource};
use crate::view::render::Renderer;
use crate::vm::{Analysis, Value};

/// A member of a legacy tar checkpoint that mixes pickles and raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarSection {
    /// `storages`: count, then `(key, location, storage_type)` + `int64`
    /// count + bytes per storage, then a list of views.
    Storages,
    /// `tensors`: count, then `(key, storage_id, original_type)` + `<i4 ndim>`,
    /// 4 bytes, `ndim` sizes, `ndim` strides and an offset (`<q>` each).
    Tensors,
}

impl TarSection {
    fn name(self) -> &'static str {
        match self {
            TarSection::Storages => "storages",
            TarSection::Tensors => "tensors",
        }
    }
}

impl fmt::Display for TarSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The section a tar member of this name is in a legacy checkpoint.
pub(in crate::container) fn section(name: &str) -> Option<TarSection> {
    match name {
        "storages" => Some(TarSection::Storages),
        "tensors" => Some(TarSection::Tensors),
        _ => None,
    }
}

/// Walks the `storages` or `tensors` member of a tar archive, layer `at`:
/// when it starts with a pickle, as the legacy loader reads it; else as
/// any member.
pub(in crate::container) fn walk<R: Input>(w: &mut Walker, body: R, size: u64, at: &Layer, section: TarSection) {
    let p = match Peeked::new(body) {
        Ok(p) => p,
        Err(e) => return w.note(&at.member, 0, Unreadable::ReadError { error: e.to_string() }),
    };
    if sniff(p.head()) != Format::Pickle {
        w.walk(p, Some(size), at);
        return;
    }
    let mut src = ReadSource::new(p, Some(size));
    let mut held = Held::new();
    let analyzer = w.analyzer();
    let mut cx = Stream::new(w, at);
    let trailing = records(&mut cx, &mut src, &mut held, section);
    cx.finish(held.analysis(&analyzer), trailing);
}

/// Reads a section's pickles and skips the bytes between them. Returns the
/// analysis of a pickle found after the section's end.
fn records<S: ByteSource>(cx: &mut Stream<'_, '_>, src: &mut S, held: &mut Held, section: TarSection) -> Option<Part> {
    let at = src.position();
    if let Err(c) = held.pickle(src) {
        cx.cut(c, at, PickleSlot::TarCount { section });
        return None;
    }
    let count = held.last().and_then(|a| root(&a, 0).and_then(|v| a.int(v)));
    let Some(count) = count.and_then(|c| u64::try_from(c).ok()) else {
        cx.note(at, TorchFault::NoRecordCount { section });
        return None;
    };
    if count > MAX_TORCH_STORAGES as u64 {
        cx.note(at, Limit::TorchTarRecords { section, count });
        return None;
    }
    for index in 0..count {
        let at = src.position();
        if let Err(c) = held.pickle(src) {
            cx.cut(c, at, PickleSlot::TarRecord { index, count, section });
            return None;
        }
        let h = held.last()?;
        if let Err(fault) = record(cx, src, &h, at, section, index) {
            cx.note(at, TorchFault::Unfollowable { fault: Box::new(fault), section });
            return None;
        }
    }
    if section == TarSection::Storages {
        let at = src.position();
        if let Err(c) = held.pickle(src) {
            cx.cut(c, at, PickleSlot::TarViews {});
            return None;
        }
        let views_ok = held.last().is_some_and(|a| root(&a, 0).is_some_and(|v| matches!(a.value(v), Value::List(_))));
        if !views_ok {
            cx.note(at, TorchFault::NoViewList {});
        }
    }
    let after = match section {
        TarSection::Storages => After::ViewList {},
        TarSection::Tensors => After::LastTensor {},
    };
    cx.trailing(src, after)
}

/// The raw bytes after record `index`'s header pickle `h` (read from
/// `at`): skipped by the sizes the header and the integers after it give.
/// `Err` when the section cannot be followed past it.
fn record<S: ByteSource>(
    cx: &mut Stream<'_, '_>,
    src: &mut S,
    h: &Analysis,
    at: u64,
    section: TarSection,
    index: u64,
) -> Result<(), TorchFault> {
    let rend = Renderer::new(h, SHOWN_CHARS);
    let header = root(h, 0);
    let items = header.and_then(|v| h.tuple(v)).filter(|t| t.len() == 3);
    match (section, items) {
        (TarSection::Storages, Some(t)) => {
            let key = rend.expr(t[0]);
            let class = class_of(h, t[2], &rend);
            if let Some(why) = class.refused(Layout::Legacy) {
                cx.note(at, why);
            }
            let elem = class.size()?;
            cx.storage_bytes(src, &key, None, elem)
        }
        (TarSection::Tensors, Some(_)) => tensor_metadata(src),
        (_, None) => Err(TorchFault::NotATriple {
            index,
            section,
            shown: header.map(|v| rend.expr(v)).unwrap_or_else(|| "missing".into()),
        }),
    }
}

/// Skips one legacy tensor's metadata: `<i4 ndim>`, 4 bytes, `ndim` sizes,
/// `ndim` strides and the storage offset (`<q>` each).
fn tensor_metadata<S: ByteSource>(src: &mut S) -> Result<(), TorchFault> {
    let ndim = match read_i32(src) {
        Ok(Some(n)) => n,
        Ok(None) => return Err(TorchFault::DimsMissing {}),
        Err(e) => return Err(TorchFault::TensorRead { error: e.to_string() }),
    };
    let dims = u64::try_from(ndim).ok().filter(|&d| d <= MAX_TORCH_TENSOR_DIMS).ok_or(TorchFault::Dims { ndim })?;
    // 4 skipped bytes, sizes and strides, the offset; dims is small, so no overflow.
    let need = 4 + dims * 16 + 8;
    if let Some(left) = src.remaining().filter(|&left| need > left) {
        return Err(TorchFault::MetadataPastEnd { need, left });
    }
    match src.skip(need) {
        Ok(got) if got == need => Ok(()),
        Ok(_) => Err(TorchFault::EndsInMetadata {}),
        Err(e) => Err(TorchFault::TensorRead { error: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::torch::tests::note_rules;

    /// A tar section: count, then per record a header pickle and its bytes.
    fn pickled_int(n: u8) -> Vec<u8> {
        vec![0x80, 0x02, b'K', n, b'.']
    }

    /// Walks `data` as the tar member that holds `section`.
    fn walk_section(data: &[u8], section: TarSection) -> crate::container::walk::Walked {
        let mut w = Walker::new();
        let at = Layer { member: Some(section.name().into()), layers: vec!["tar"], depth: 1 };
        walk(&mut w, data, data.len() as u64, &at, section);
        w.finish()
    }

    #[test]
    fn tar_storages_section_is_followed() {
        let header = b"\x80\x02K\x01X\x03\x00\x00\x00cpuctorch\nFloatStorage\n\x87.";
        let mut data = pickled_int(1);
        data.extend_from_slice(header);
        data.extend_from_slice(&2i64.to_le_bytes());
        data.extend_from_slice(&[0u8; 8]);
        data.extend_from_slice(b"\x80\x02].");
        let w = walk_section(&data, TarSection::Storages);
        assert_eq!(note_rules(&w), Vec::<&str>::new(), "{:?}", w.notes);
        assert_eq!(w.parts[0].analysis.pickles.len(), 3);
        assert!(w.parts[0].analysis.error.is_none());
        // The same with the storage cut short.
        let cut = &data[..data.len() - 6];
        let w = walk_section(cut, TarSection::Storages);
        assert_eq!(note_rules(&w), vec!["PK304"]);
    }

    #[test]
    fn tar_tensors_section_is_followed() {
        let header = b"\x80\x02X\x01\x00\x00\x005K\x01ctorch\nFloatTensor\n\x87.";
        let mut data = pickled_int(1);
        data.extend_from_slice(header);
        data.extend_from_slice(&2i32.to_le_bytes());
        data.extend_from_slice(&[0u8; 4 + 2 * 16 + 8]);
        let w = walk_section(&data, TarSection::Tensors);
        assert_eq!(note_rules(&w), Vec::<&str>::new(), "{:?}", w.notes);
        assert_eq!(w.parts[0].analysis.pickles.len(), 2);
        // A negative dimension count.
        let mut bad = pickled_int(1);
        bad.extend_from_slice(header);
        bad.extend_from_slice(&(-1i32).to_le_bytes());
        let w = walk_section(&bad, TarSection::Tensors);
        assert!(w.notes.iter().any(|n| n.problem.to_string().contains("-1 dimensions")), "{:?}", w.notes);
    }

    #[test]
    fn a_member_named_storages_that_is_not_a_pickle_is_walked_as_usual() {
        let data = b"just text\n".to_vec();
        let w = walk_section(&data, TarSection::Storages);
        assert!(w.notes.is_empty());
    }
}
