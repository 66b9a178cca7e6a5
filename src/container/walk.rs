//! The walk: [`Walker`] unwraps a file layer by layer and hands every
//! pickle stream to the machine.
//!
//! [`Walker::walk`] sniffs a layer and hands it to the module of its format
//! ([`super::compressed`], [`super::zip`], [`super::tar`], [`super::npy`],
//! the PyTorch layouts of [`super::torch`]), each a set of functions over a
//! [`Layer`]: where the walk is (member, wrapping layers, depth). A format
//! module reads its layer, records what it found wrong as [`Note`]s, and
//! walks what is inside with the [`Layer`] of that.

use std::collections::HashSet;
use std::io::{self, Read, Seek};
use std::path::Path;

use super::diag::{Bomb, Limit, Note, Problem, Unreadable};
use super::format::{pickle_name, sniff, Format, SNIFF_BYTES};
use super::readers::{read_up_to, ByRef, LimitHit, Peeked};
use super::{compressed, legacy, npy, polyglot, tar, torch, zip};
use crate::limits::MAX_CONTAINER_DEPTH;
use crate::pickle::source::{ByteSource, Input, ReadSource};
use crate::vm::{Analysis, Analyzer};

/// Walks the file at `path` as `pkinspect scan` does ([`Walker::file`]),
/// for the views (`show`, `dis`): the pickle streams found, not judged.
/// With `record`, each stream's analysis keeps the bytes it read
/// ([`crate::vm::Analysis::recorded`]).
///
/// # Errors
/// The file cannot be opened, or is not a regular file.
pub fn walk_file(path: &Path, record: bool) -> io::Result<Walked> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(Walker::new().record(record).file(file, meta.len(), path))
}

/// One pickle stream analysed somewhere in a file.
#[derive(Debug)]
pub struct Part {
    /// Where it sits: `None` for the file itself, else the member path
    /// (nested members joined with `!`).
    pub member: Option<String>,
    /// The wrapping layers outside it, outermost first (e.g. `["gzip"]`).
    pub layers: Vec<&'static str>,
    /// What the machine found.
    pub analysis: Analysis,
}

/// Everything found in one file.
#[derive(Debug, Default)]
pub struct Walked {
    /// The outermost format.
    pub format: Option<Format>,
    /// Every pickle stream, in file order.
    pub parts: Vec<Part>,
    /// Container-level problems.
    pub notes: Vec<Note>,
    /// Members that are not pickles (array data, JSON, text), by name.
    pub skipped_members: Vec<String>,
}

/// Where the walk is: the member being read, the layers wrapped around it
/// and how many containers deep it is. Each format module gets the
/// [`Layer`] of what it reads and makes the one of what is inside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Layer {
    /// `None` for the file itself, else the member path (nested members
    /// joined with `!`).
    pub member: Option<String>,
    /// The wrapping layers outside it, outermost first.
    pub layers: Vec<&'static str>,
    /// Containers around it.
    pub depth: usize,
}

impl Layer {
    /// A file (or a companion file, named by `member`) read from its start.
    pub(super) fn file(member: Option<String>) -> Layer {
        Layer { member, layers: Vec::new(), depth: 0 }
    }

    /// The stream a decoder of `format` yields from this layer.
    pub(super) fn decoded(&self, format: Format) -> Layer {
        Layer { member: self.member.clone(), layers: self.with(format), depth: self.depth + 1 }
    }

    /// Member `name` of the archive of `format` this layer holds.
    pub(super) fn entry(&self, format: Format, name: &str) -> Layer {
        Layer { member: self.join(name), layers: self.with(format), depth: self.depth + 1 }
    }

    /// Member `name` of the zip archive this layer holds: its layers are
    /// `["zip"]` whatever wraps the archive.
    pub(super) fn zip_entry(&self, name: &str) -> Layer {
        Layer { member: self.join(name), layers: vec![Format::Zip.name()], depth: self.depth + 1 }
    }

    /// The path of member `name` of this layer.
    pub(super) fn join(&self, name: &str) -> Option<String> {
        join(&self.member, name)
    }

    /// These layers and `format`.
    pub(super) fn with(&self, format: Format) -> Vec<&'static str> {
        let mut layers = self.layers.clone();
        layers.push(format.name());
        layers
    }
}

/// The path of member `name` of `parent`.
pub(super) fn join(parent: &Option<String>, name: &str) -> Option<String> {
    Some(match parent {
        Some(p) => format!("{p}!{name}"),
        None => name.to_string(),
    })
}

/// Walks one file (or stream) layer by layer.
pub struct Walker {
    pub(super) out: Walked,
    /// Members that are raw tensor storages of a PyTorch checkpoint (see
    /// [`Walker::torch_raw`]): read for their CRC, never sniffed.
    pub(super) raw_records: HashSet<String>,
    /// Extraction's sink for payloads and long values (see [`crate::vm::Sink`]).
    sink: Option<crate::vm::SharedSink>,
    /// Keep the bytes each stream's analysis reads (see [`Walker::record`]).
    record: bool,
}

impl Default for Walker {
    fn default() -> Self {
        Walker::new()
    }
}

impl Walker {
    /// A walker with nothing found yet.
    pub fn new() -> Walker {
        Walker { out: Walked::default(), raw_records: Default::default(), sink: None, record: false }
    }

    /// Keeps the bytes each pickle stream's analysis reads in its
    /// [`Analysis::recorded`](crate::vm::Analysis::recorded), for `dis`.
    pub fn record(mut self, on: bool) -> Walker {
        self.record = on;
        self
    }

    /// A plain analysis of a stream (no sink), keeping its bytes when the
    /// walk records them.
    pub(super) fn analyzer(&self) -> Analyzer {
        Analyzer::new().record(self.record)
    }

    /// A walker whose pickle streams hand array payloads and long values to
    /// `sink` as they are read (extraction).
    pub fn with_sink(sink: crate::vm::SharedSink) -> Walker {
        Walker { sink: Some(sink), ..Walker::new() }
    }

    /// Analyses one pickle stream, through the sink when there is one.
    pub(super) fn analyze_part<S: ByteSource>(&self, src: S) -> Analysis {
        match &self.sink {
            Some(sink) => self.analyzer().extract_into(self.out.parts.len(), sink.clone()).run(src),
            None => self.analyzer().run(src),
        }
    }

    /// What was found.
    pub fn finish(self) -> Walked {
        self.out
    }

    /// Records a problem of `member` at `offset`.
    pub(super) fn note(&mut self, member: &Option<String>, offset: u64, problem: impl Into<Problem>) {
        self.out.notes.push(Note { member: member.clone(), offset, problem: problem.into() });
    }

    /// True when `name` (a member path as the walk builds it) is a storage
    /// record of a torch checkpoint (raw tensor bytes, never unpickled) or
    /// TorchScript source.
    pub(super) fn torch_raw(&self, name: &Option<String>) -> bool {
        name.as_ref().is_some_and(|n| self.raw_records.contains(n))
    }

    /// Checks the companion files named by the legacy joblib wrappers in the
    /// pickles found so far, and scans those of the file itself found in
    /// `dir` (the scanned file's folder; `None`: not a file on disk).
    /// Companions of pickles inside archives or streams are checked for
    /// unsafe names only.
    pub fn companions(&mut self, dir: Option<&Path>) {
        legacy::check(self, dir);
    }

    /// Walks `file`, the `size` bytes of the file at `path`, and the
    /// joblib < 0.10 companion files its pickles name, which are looked up
    /// next to it only: everything `pkinspect scan` reads of it.
    pub fn file<R: Read + Seek + Input>(mut self, file: R, size: u64, path: &Path) -> Walked {
        self.seekable(file, Some(size), None);
        self.companions(path.parent().map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d }));
        self.finish()
    }

    /// Walks a seekable input (a file): zip archives need random access;
    /// everything else streams.
    ///
    /// Where the bytes admit another reading that some loader takes, that
    /// reading is scanned too (see `polyglot::other_readings`).
    pub fn seekable<R: Read + Seek + Input>(&mut self, mut r: R, total: Option<u64>, member: Option<String>) {
        let mut head = [0u8; SNIFF_BYTES];
        let n = read_up_to(&mut r, &mut head).unwrap_or(0);
        let head = &head[..n];
        let at = Layer::file(member);
        if r.seek(io::SeekFrom::Start(0)).is_err() {
            self.note(&at.member, 0, Unreadable::CannotRewind {});
            return;
        }
        let format = sniff(head);
        if format == Format::Zip {
            self.out.format.get_or_insert(Format::Zip);
            zip::walk(self, ByRef(&mut r), &at);
        } else {
            self.walk(ByRef(&mut r), total, &at);
        }
        polyglot::other_readings(self, &mut r, format, head, &at);
    }

    /// Walks a forward-only stream.
    pub fn stream<R: Input>(
        &mut self,
        r: R,
        total: Option<u64>,
        member: Option<String>,
        layers: Vec<&'static str>,
        depth: usize,
    ) {
        self.walk(r, total, &Layer { member, layers, depth });
    }

    /// Walks the forward-only stream of layer `at`: sniffs it and hands it
    /// to the module of its format. `total` is its length, when known.
    pub(super) fn walk<R: Input>(&mut self, r: R, total: Option<u64>, at: &Layer) {
        let p = match Peeked::new(r) {
            Ok(p) => p,
            Err(e) => {
                self.note(&at.member, 0, Unreadable::ReadError { error: e.to_string() });
                return;
            }
        };
        let format = sniff(p.head());
        self.out.format.get_or_insert(format);
        if at.depth >= MAX_CONTAINER_DEPTH && format != Format::Pickle {
            self.note(&at.member, 0, Limit::TooDeep { format });
            return;
        }
        match format {
            // A legacy (non-zip) PyTorch checkpoint: five pickles, then raw storages.
            Format::Pickle if torch::is_legacy(p.head()) => torch::legacy::walk(self, p, total, at),
            // Inside a ZF stream, content that is no pickle is the raw array
            // bytes of a joblib < 0.10 `.npy.z` companion (ZNDArrayWrapper):
            // data, read by the main file's wrapper, not a malformed pickle.
            Format::Unknown if at.layers.last() == Some(&Format::JoblibZf.name()) => {
                let name = at.member.clone().unwrap_or_else(|| "(file)".into());
                self.out.skipped_members.push(format!("{name} (joblib < 0.10 raw array data)"));
            }
            Format::Pickle | Format::Unknown => self.pickle(p, total, at),
            Format::Zlib | Format::Gzip | Format::Bz2 | Format::Xz | Format::Lz4 | Format::Lzma => {
                compressed::walk(self, format, p, at)
            }
            Format::JoblibZf => compressed::joblib_zf(self, p, at),
            Format::Tar => tar::walk(self, p, at),
            Format::Npy => npy::walk(self, p, total, at),
            Format::Zip => zip::walk_stream(self, p, at),
        }
    }

    /// Analyses layer `at` as a pickle stream.
    fn pickle<R: Input>(&mut self, p: Peeked<R>, total: Option<u64>, at: &Layer) {
        let mut analysis = self.analyze_part(ReadSource::new(p, total));
        self.limit_note(&mut analysis, &at.member);
        self.out.parts.push(Part { member: at.member.clone(), layers: at.layers.clone(), analysis });
    }

    /// A read error that ended a pickle's analysis is the container's
    /// problem (a decompression limit, a corrupt stream): it becomes a
    /// container note and leaves the analysis, so it is reported once.
    fn limit_note(&mut self, a: &mut Analysis, member: &Option<String>) {
        if let Some(e) = &a.error {
            if let crate::ErrorKind::Io(msg) = e.kind() {
                if LimitHit::in_message(msg) {
                    self.note(member, e.offset(), Bomb::Reached { detail: msg.clone() });
                    a.error = None;
                } else if a.ops > 0 || a.pickles.len() > 1 {
                    self.note(member, e.offset(), Unreadable::StreamError { error: msg.clone() });
                    a.error = None;
                }
            }
        }
    }

    /// A member of a streamed archive (tar), of layer `at`: walked like a
    /// file, except that one whose bytes are no known format and whose name
    /// is not a pickle's (text, raw array data) is listed as skipped instead
    /// of being read as a pickle; archive loaders pick pickles by name.
    pub(super) fn archive_member<'a>(&mut self, body: Box<dyn Input + 'a>, size: u64, raw_name: &str, at: &Layer) {
        match Peeked::new(body) {
            Ok(p) if sniff(p.head()) == Format::Unknown && !pickle_name(raw_name) => {
                self.out.skipped_members.push(at.member.clone().unwrap_or_default());
            }
            Ok(p) => {
                let p: Box<dyn Input + 'a> = Box::new(p);
                self.walk(p, Some(size), at);
            }
            Err(e) => self.note(&at.member, 0, Unreadable::ReadError { error: e.to_string() }),
        }
    }
}
