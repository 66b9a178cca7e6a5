//! Zip checkpoints (torch ≥ 1.6) and TorchScript archives: recognised by
//! their record names before the archive's members are walked ([`begin`]),
//! their storage references checked against the records they name, and the
//! pickles the loader never reads reported once the walk is done ([`end`]).

use std::collections::HashMap;
use std::io::{Read, Seek};

use super::diag::TorchFault;
use super::storage::{parse_pid, Layout, Pid, StorageRef};
use super::{Notes, SHOWN_CHARS};
use crate::container::diag::Limit;
use crate::container::walk::{join, Walker};
use crate::limits::MAX_TORCH_PICKLE_BYTES;
use crate::view::render::Renderer;
use crate::vm::{Analyzer, EventKind};

/// What wrote a zip archive recognised as PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipKind {
    /// `torch.save` (torch ≥ 1.6): `torch.load` unpickles `data.pkl`.
    Checkpoint,
    /// `torch.jit.save`: a TorchScript archive, told by its `constants.pkl`
    /// record as `torch.load` tells it (`_is_torchscript_zip`). `torch.load`
    /// hands it to `torch.jit.load` (and refuses it under `weights_only=True`),
    /// which unpickles `data.pkl` (the module: `__torch__.*` classes),
    /// `constants.pkl` and the `code/**.debug_pkl` source maps
    /// (`torch.jit._pickle.*` helpers) with its own unpickler, and compiles
    /// the TorchScript source under `code/`.
    TorchScript,
}

/// What is appended to the `skipped_members` entry of a TorchScript
/// archive's source record: the mark a report shows the archive by.
pub const TORCHSCRIPT_SOURCE_MARK: &str = " (TorchScript source)";

impl ZipKind {
    /// The loader that reads this kind of archive, for messages.
    pub(super) fn loader(self) -> &'static str {
        match self {
            ZipKind::Checkpoint => "torch.load",
            ZipKind::TorchScript => "torch.jit.load",
        }
    }

    /// The pickles whose persistent ids name storage records, each with the
    /// folder (under `<arch>/`) of the records it names.
    fn storage_pickles(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ZipKind::Checkpoint => &[("data.pkl", "data/")],
            ZipKind::TorchScript => &[("data.pkl", "data/"), ("constants.pkl", "constants/")],
        }
    }
}

/// True for a TorchScript archive's source record, `code/...` (relative to
/// `<arch>/`) other than a pickled source map: compiled by `torch.jit.load`,
/// never unpickled.
fn torchscript_source(rel: &str) -> bool {
    rel.starts_with("code/") && !rel.ends_with('/') && !rel.ends_with(".debug_pkl") && !rel.ends_with(".pkl")
}

/// A zip archive recognised as a PyTorch checkpoint or TorchScript archive,
/// between [`begin`] and [`end`].
pub(in crate::container) struct ZipCheckpoint {
    /// `<arch>/`, the folder of the first entry.
    prefix: String,
    /// Checkpoint or TorchScript: the flag a file summary can carry.
    pub(in crate::container) kind: ZipKind,
    /// Every record name with the offset of its local header.
    headers: HashMap<String, u64>,
    /// Parts found before the archive was walked.
    parts_from: usize,
    /// Skipped members listed before the archive was walked.
    skipped_from: usize,
    /// Its notes, from [`begin`] to [`end`].
    notes: Notes,
    /// How the zip crate opens the archive (as the walk found it).
    config: ::zip::read::Config,
}

impl ZipCheckpoint {
    /// True for a member whose pickle `torch.load` (or `torch.jit.load`) reads.
    fn loads_pickle(&self, raw: &str) -> bool {
        let Some(rel) = raw.strip_prefix(&self.prefix) else { return false };
        rel == "data.pkl"
            || (self.kind == ZipKind::TorchScript
                && (rel == "constants.pkl" || (rel.starts_with("code/") && rel.ends_with(".debug_pkl"))))
    }
}

/// Called before a zip archive's members are walked, with every central
/// directory entry as `(name, uncompressed size, local header offset)`;
/// `member` is the archive's.
///
/// Recognises a PyTorch checkpoint or TorchScript archive by its record
/// names; if it is one, reads the persistent ids of each pickle the
/// loader reads (from the archive as the zip crate reads it), checks
/// each against its storage record, and marks the records they name (and
/// TorchScript source) as raw bytes for [`Walker::torch_raw`].
pub(in crate::container) fn begin<'n, R: Read + Seek>(
    w: &mut Walker,
    r: &mut R,
    config: ::zip::read::Config,
    records: impl Iterator<Item = (&'n str, u64, u64)>,
    member: &Option<String>,
) -> Option<ZipCheckpoint> {
    let records: Vec<(&str, u64, u64)> = records.collect();
    let first = records.first()?.0;
    let prefix = first[..=first.find('/')?].to_string();
    // First record of each name wins, as the folder listing is read.
    let mut inside: HashMap<&str, (u64, u64)> = HashMap::new();
    for &(name, size, header) in &records {
        if let Some(rel) = name.strip_prefix(prefix.as_str()) {
            inside.entry(rel).or_insert((size, header));
        }
    }
    let has = |k: &str| inside.contains_key(k);
    if !has("data.pkl") || !["version", ".data/version", ".format_version", "byteorder"].iter().any(|k| has(k)) {
        return None;
    }
    let kind = if has("constants.pkl") { ZipKind::TorchScript } else { ZipKind::Checkpoint };
    let mut cp = ZipCheckpoint {
        kind,
        headers: records.iter().map(|&(n, _, h)| (n.to_string(), h)).collect(),
        parts_from: w.out.parts.len(),
        skipped_from: w.out.skipped_members.len(),
        notes: Notes::default(),
        prefix,
        config,
    };
    for &(name, _, header) in &records {
        if !name.starts_with(cp.prefix.as_str()) && !name.ends_with('/') {
            let fault = TorchFault::OutsideFolder { prefix: cp.prefix.clone(), kind };
            cp.notes.note(w, &join(member, name), header, fault);
        }
    }
    if kind == ZipKind::TorchScript {
        for &(name, _, _) in &records {
            if name.strip_prefix(cp.prefix.as_str()).is_some_and(torchscript_source) {
                w.raw_records.insert(join(member, name).unwrap_or_default());
            }
        }
    }
    for &(pickle, folder) in kind.storage_pickles() {
        storage_refs(w, r, &mut cp, &inside, pickle, folder, member);
    }
    Some(cp)
}

/// Checks the persistent ids of `<arch>/<pickle>` against the records of
/// `<arch>/<folder>` they name, and marks those records as raw bytes.
fn storage_refs<R: Read + Seek>(
    w: &mut Walker,
    r: &mut R,
    cp: &mut ZipCheckpoint,
    inside: &HashMap<&str, (u64, u64)>,
    pickle: &str,
    folder: &str,
    member: &Option<String>,
) {
    let pkl_name = format!("{}{pickle}", cp.prefix);
    let pkl_member = join(member, &pkl_name);
    let Some(&(pkl_size, pkl_header)) = inside.get(pickle) else { return };
    if pkl_size > MAX_TORCH_PICKLE_BYTES as u64 {
        let limit = Limit::TorchPickleSize { pickle: pickle.to_string(), size: pkl_size };
        cp.notes.note(w, &pkl_member, pkl_header, limit);
        return;
    }
    // The walk reports what is wrong with an unreadable member.
    let Some(bytes) = read_record(r, cp.config, &pkl_name) else { return };
    let a = Analyzer::new().run(&bytes);
    let rend = Renderer::new(&a, SHOWN_CHARS);
    for e in &a.events {
        let EventKind::PersistentId { pid } = e.kind else { continue };
        let fault = match parse_pid(&a, pid, Layout::Zip, &rend) {
            Pid::Storage(s) => {
                let rel = format!("{folder}{}", s.key);
                let record = format!("{}{rel}", cp.prefix);
                if !s.key.contains('/') {
                    w.raw_records.insert(join(member, &record).unwrap_or_default());
                }
                record_fault(cp.kind, s, inside.get(rel.as_str()).map(|&(size, _)| size), record)
            }
            Pid::Module { class, .. } => Some(TorchFault::ModuleInZip { class, kind: cp.kind }),
            Pid::Bad(why) => Some(why),
        };
        if let Some(fault) = fault {
            cp.notes.note(w, &pkl_member, e.offset, fault);
        }
    }
}

/// What is wrong with storage `s` whose record, `record`, holds `size`
/// bytes (`None`: there is no such record).
fn record_fault(kind: ZipKind, s: StorageRef, size: Option<u64>, record: String) -> Option<TorchFault> {
    let StorageRef { key, class, numel } = s;
    match (size, class.size()) {
        (_, Err(why)) => Some(why),
        (None, _) => Some(TorchFault::NoRecord { key, record, kind }),
        (Some(size), Ok(elem)) => match numel.checked_mul(elem) {
            Some(need) if need <= size => None,
            Some(need) => Some(TorchFault::ShortRecord { key, numel, elem, need, record, size, kind }),
            None => Some(TorchFault::ZipStorageOverflow { key, numel, elem }),
        },
    }
}

/// Called after a torch checkpoint's members were walked: reports every
/// member scanned as a pickle that the loader never unpickles, and the
/// notes gathered before the walk; marks a TorchScript archive's source
/// records in `skipped_members` with [`TORCHSCRIPT_SOURCE_MARK`].
pub(in crate::container) fn end(w: &mut Walker, cp: Option<ZipCheckpoint>, member: &Option<String>) {
    let Some(mut cp) = cp else { return };
    // The path of a member of this archive, relative to it; None for one of a nested archive.
    let record = |path: &str| -> Option<String> {
        let inner = match member {
            Some(m) => path.strip_prefix(m.as_str())?.strip_prefix('!')?,
            None => path,
        };
        Some(inner.split('!').next().unwrap_or(inner).to_string())
    };
    let mut extra: Vec<String> = Vec::new();
    for part in &w.out.parts[cp.parts_from.min(w.out.parts.len())..] {
        let Some(raw) = part.member.as_deref().and_then(record) else { continue };
        // Records outside the folder were reported as such.
        let inside = raw.starts_with(cp.prefix.as_str());
        if inside && cp.headers.contains_key(&raw) && !cp.loads_pickle(&raw) && !extra.contains(&raw) {
            extra.push(raw);
        }
    }
    if cp.kind == ZipKind::TorchScript {
        let from = cp.skipped_from.min(w.out.skipped_members.len());
        for name in &mut w.out.skipped_members[from..] {
            let source = record(name).is_some_and(|raw| {
                *name == join(member, &raw).unwrap_or_default()
                    && raw.strip_prefix(cp.prefix.as_str()).is_some_and(torchscript_source)
            });
            if source {
                name.push_str(TORCHSCRIPT_SOURCE_MARK);
            }
        }
    }
    for raw in extra {
        let header = cp.headers.get(&raw).copied().unwrap_or(0);
        let fault = TorchFault::UnreadPickle { kind: cp.kind, prefix: cp.prefix.clone() };
        cp.notes.note(w, &join(member, &raw), header, fault);
    }
    cp.notes.done(w);
}

/// A record's bytes (at most [`MAX_TORCH_PICKLE_BYTES`]) as the zip crate
/// reads it, opened with the configuration the walk found; what was read
/// before an error (a CRC mismatch) is kept.
fn read_record<R: Read + Seek>(r: &mut R, config: ::zip::read::Config, name: &str) -> Option<Vec<u8>> {
    let mut archive = ::zip::ZipArchive::with_config(config, &mut *r).ok()?;
    let f = archive.by_name(name).ok()?;
    let mut buf = Vec::new();
    let _ = f.take(MAX_TORCH_PICKLE_BYTES as u64).read_to_end(&mut buf);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    use crate::container::torch::storage::{StorageElem, STORAGE_CLASSES};
    use crate::container::torch::tests::note_rules;
    use crate::pickle::source::Input;
    use crate::rules::{container_rule, Rule};

    /// A zip archive held in memory, as a seekable input.
    struct Mem(io::Cursor<Vec<u8>>);

    impl Read for Mem {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Seek for Mem {
        fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
            self.0.seek(pos)
        }
    }

    impl Input for Mem {}

    /// A zip of stored records, in this order.
    fn zip_of(records: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut w = ::zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let stored = ::zip::write::SimpleFileOptions::default().compression_method(::zip::CompressionMethod::Stored);
        for (name, data) in records {
            w.start_file(*name, stored).expect("zip writer");
            w.write_all(data).expect("zip writer");
        }
        w.finish().expect("zip writer").into_inner()
    }

    fn walk_zip(data: Vec<u8>) -> crate::container::Walked {
        let len = data.len() as u64;
        let mut w = Walker::new();
        w.seekable(Mem(io::Cursor::new(data)), Some(len), None);
        w.finish()
    }

    /// A protocol-2 pickle of `persistent_load(('storage', module.name, key, 'cpu', numel))`.
    fn pid_pickle(module: &str, name: &str, key: &str, numel: u8) -> Vec<u8> {
        let mut p = b"\x80\x02(X\x07\x00\x00\x00storagec".to_vec();
        p.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        p.push(b'X');
        p.extend_from_slice(&(key.len() as u32).to_le_bytes());
        p.extend_from_slice(key.as_bytes());
        p.extend_from_slice(b"X\x03\x00\x00\x00cpuK");
        p.push(numel);
        p.extend_from_slice(b"tQ.");
        p
    }

    /// A checkpoint `a/` whose `data.pkl` names storage `0` of `a/data/0`.
    fn checkpoint(module: &str, name: &str, numel: u8, record: &[u8]) -> crate::container::Walked {
        let pkl = pid_pickle(module, name, "0", numel);
        walk_zip(zip_of(&[("a/data.pkl", &pkl), ("a/data/0", record), ("a/version", b"3\n")]))
    }

    #[test]
    fn untyped_storage_is_counted_in_bytes_in_a_zip() {
        // _rebuild_tensor_v3's storage: 3 uint16 are 6 bytes.
        let w = checkpoint("torch.storage", "UntypedStorage", 6, &[0; 6]);
        assert_eq!(note_rules(&w), Vec::<&str>::new(), "{:?}", w.notes);
        let w = checkpoint("torch.storage", "UntypedStorage", 7, &[0; 6]);
        assert_eq!(note_rules(&w), vec!["PK304"]);
        assert!(w.notes[0].problem.to_string().contains("7 elements × 1 bytes = 7 bytes"), "{:?}", w.notes);
    }

    #[test]
    fn every_storage_class_of_torch_is_checked_in_a_zip() {
        for c in STORAGE_CLASSES {
            let w = match c.elem {
                StorageElem::Typed(dtype) => {
                    let record = vec![0u8; 3 * dtype.size as usize];
                    let ok = checkpoint(c.module, c.name, 3, &record);
                    assert_eq!(note_rules(&ok), Vec::<&str>::new(), "{c:?}: {:?}", ok.notes);
                    checkpoint(c.module, c.name, 3, &record[1..])
                }
                StorageElem::Bytes => checkpoint(c.module, c.name, 4, &[0; 3]),
                StorageElem::NoDtype => checkpoint(c.module, c.name, 3, &[0; 24]),
            };
            assert_eq!(note_rules(&w), vec!["PK304"], "{c:?}: {:?}", w.notes);
        }
    }

    #[test]
    fn torchscript_archive_is_recognised_and_checked() {
        let data = pid_pickle("torch", "FloatStorage", "0", 2);
        let constants = pid_pickle("torch", "FloatStorage", "5", 1);
        let debug = b"\x80\x02ctorch.jit._pickle\nbuild_intlist\n]\x85R.";
        let extra = b"\x80\x02K\x01.";
        let zip = zip_of(&[
            ("ts/data/0", &[0; 8]),
            ("ts/data.pkl", &data),
            ("ts/code/__torch__/m.py", b"def forward(self):\n    pass\n"),
            ("ts/code/__torch__/m.py.debug_pkl", debug),
            ("ts/constants.pkl", &constants),
            ("ts/extra/x.pkl", extra),
            ("ts/version", b"3\n"),
        ]);
        let w = walk_zip(zip);
        // constants.pkl's storages are under constants/: one is missing.
        let torch: Vec<_> = w.notes.iter().filter(|n| container_rule(&n.problem) == Rule::TorchAnomaly).collect();
        assert_eq!(torch.len(), 2, "{:?}", w.notes);
        assert!(torch.iter().any(|n| n.member.as_deref() == Some("ts/constants.pkl")
            && n.problem.to_string().contains("no record \"ts/constants/5\": torch.jit.load fails")));
        // A pickle torch.jit.load does not read is reported; its own pickles are not.
        assert!(torch.iter().any(|n| n.member.as_deref() == Some("ts/extra/x.pkl")
            && n.problem.to_string().contains("torch.jit.load never unpickles")));
        let parts: Vec<&str> = w.parts.iter().filter_map(|p| p.member.as_deref()).collect();
        for m in ["ts/data.pkl", "ts/constants.pkl", "ts/code/__torch__/m.py.debug_pkl", "ts/extra/x.pkl"] {
            assert!(parts.contains(&m), "{parts:?}");
        }
        // The source is not sniffed, and is marked in skipped_members; the storage too.
        assert!(w.skipped_members.contains(&format!("ts/code/__torch__/m.py{TORCHSCRIPT_SOURCE_MARK}")));
        assert!(w.skipped_members.contains(&"ts/data/0".to_string()), "{:?}", w.skipped_members);
        // Without constants.pkl it is a checkpoint: nothing marked.
        let zip =
            zip_of(&[("ts/data/0", &[0; 8]), ("ts/data.pkl", &data), ("ts/code/m.py", b"x\n"), ("ts/version", b"3\n")]);
        let w = walk_zip(zip);
        assert!(!w.skipped_members.iter().any(|m| m.ends_with(TORCHSCRIPT_SOURCE_MARK)), "{:?}", w.skipped_members);
    }

    /// The flag itself, on real files (fixtures/torch-real/).
    #[test]
    fn real_torchscript_archive_is_flagged() {
        let kind = |file: &str| {
            let path = format!("fixtures/torch-real/{file}");
            let mut f = std::fs::File::open(&path).expect("fixture");
            let mut archive = ::zip::ZipArchive::new(std::fs::File::open(&path).expect("fixture")).expect("zip");
            let records: Vec<(String, u64, u64)> = (0..archive.len())
                .map(|i| {
                    let m = archive.by_index_raw(i).expect("record");
                    (m.name().expect("name").to_string(), m.size(), m.header_start())
                })
                .collect();
            let mut w = Walker::new();
            let cp =
                begin(&mut w, &mut f, Default::default(), records.iter().map(|(n, s, h)| (n.as_str(), *s, *h)), &None);
            assert!(w.out.notes.is_empty(), "{file}: {:?}", w.out.notes);
            cp.map(|c| c.kind)
        };
        assert_eq!(kind("torchscript.pt"), Some(ZipKind::TorchScript));
        assert_eq!(kind("dtypes.pt"), Some(ZipKind::Checkpoint));
        assert_eq!(kind("hf_bert_tiny_pytorch_model.bin"), Some(ZipKind::Checkpoint));
    }
}
