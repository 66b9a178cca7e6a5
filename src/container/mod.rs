//! Containers: what a file is, by its bytes, and every pickle stream inside.
//!
//! A model reaches a loader in many wrappings: a bare pickle, a joblib file
//! compressed with zlib/gzip/bz2/lzma/xz/lz4, a PyTorch zip checkpoint, an
//! `.npy` with object dtype, an `.npz`, a zip or tar archive, a
//! `model.pkl.gz`. [`sniff`] decides by magic bytes — never by file name —
//! and [`Walker`] unwraps layer by layer (bounded depth), streaming through
//! decompressors with named limits, and hands every pickle stream to the
//! machine. Container-level problems (a corrupt stream, a decompression bomb,
//! an encrypted member) become [`Note`]s, which the report turns into
//! findings; everything found before a problem is kept.
//!
//! Where the bytes admit more than one reading that some loader takes (a
//! pickle with a zip behind it; a compressor magic that `pickle.load` runs
//! as opcodes), each reading is walked ([`Walker::seekable`]). Companion
//! files of joblib < 0.10 pickles are looked up beside the file
//! ([`legacy`]).

pub(crate) mod joblib;
pub mod legacy;
pub mod npy;
pub mod tar;
mod torch;
mod zip;

use std::io::{self, Read, Seek};

use crate::limits::{
    MAX_ARCHIVE_MEMBERS, MAX_COMPRESSION_RATIO, MAX_CONTAINER_DEPTH, MAX_DECOMPRESSED_BYTES, MAX_LZMA_MEMORY_KIB,
    MAX_NESTED_ARCHIVE_BYTES,
};
use crate::pickle::source::{ByteSource, Input, ReadSource};
use crate::rules::Rule;
use crate::vm::{analyze, Analysis};

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

/// A container-level problem, turned into a finding by the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// The rule it falls under.
    pub rule: Rule,
    /// The member concerned (None: the file itself).
    pub member: Option<String>,
    /// Byte offset (in the member's or file's own stream).
    pub offset: u64,
    /// What happened.
    pub message: String,
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

/// A reader that yields `head` first, then the rest of `inner`.
pub struct Peeked<R> {
    head: Vec<u8>,
    pos: usize,
    inner: R,
}

impl<R: Read> Peeked<R> {
    /// Reads up to [`SNIFF_BYTES`] from `inner` to look at.
    pub fn new(mut inner: R) -> io::Result<Peeked<R>> {
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        (&mut inner).take(SNIFF_BYTES as u64).read_to_end(&mut head)?;
        Ok(Peeked { head, pos: 0, inner })
    }
    /// The bytes looked at.
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

impl<R: Read> Read for Peeked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

impl<R: Input> Input for Peeked<R> {
    fn skip_forward(&mut self, n: u64) -> io::Result<u64> {
        let in_head = ((self.head.len() - self.pos) as u64).min(n);
        self.pos += in_head as usize;
        Ok(in_head + self.inner.skip_forward(n - in_head)?)
    }
    fn as_file(&mut self) -> Option<&mut std::fs::File> {
        // Only once the peeked head is used up is the file where we are.
        if self.pos < self.head.len() {
            return None;
        }
        self.inner.as_file()
    }
}

/// Output below which the ratio limit is not applied: small streams may
/// compress far better than models do (a pickle of zeros).
const RATIO_GRACE_BYTES: u64 = 64 << 20;

/// A decompressed stream with the bomb limits applied: at most
/// [`MAX_DECOMPRESSED_BYTES`], and at most [`MAX_COMPRESSION_RATIO`] output
/// bytes per compressed byte once past [`RATIO_GRACE_BYTES`].
struct Limited<R> {
    inner: R,
    out: u64,
    compressed: std::rc::Rc<std::cell::Cell<u64>>,
    max_out: u64,
    max_ratio: u64,
    grace: u64,
}

impl<R> Limited<R> {
    /// `compressed` counts the bytes the decoder has pulled (see [`CountIn`]).
    fn new(inner: R, compressed: std::rc::Rc<std::cell::Cell<u64>>) -> Limited<R> {
        Limited::with_bounds(inner, compressed, MAX_DECOMPRESSED_BYTES, MAX_COMPRESSION_RATIO, RATIO_GRACE_BYTES)
    }

    /// The same limits with other values (tests reach them cheaply).
    fn with_bounds(
        inner: R,
        compressed: std::rc::Rc<std::cell::Cell<u64>>,
        max_out: u64,
        max_ratio: u64,
        grace: u64,
    ) -> Limited<R> {
        Limited { inner, out: 0, compressed, max_out, max_ratio, grace }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        let compressed = self.compressed.get().max(1);
        if self.out > self.max_out {
            return Err(io::Error::other(LimitHit(format!(
                "more than MAX_DECOMPRESSED_BYTES ({}) of output",
                self.max_out
            ))));
        }
        if self.out > self.grace && self.out / compressed > self.max_ratio {
            return Err(io::Error::other(LimitHit(format!(
                "{} bytes out of {compressed} compressed bytes, more than MAX_COMPRESSION_RATIO ({}) to one",
                self.out, self.max_ratio
            ))));
        }
        Ok(n)
    }
}

impl<R: Read> Input for Limited<R> {}

/// Marker error: a decompression limit was reached, and which.
#[derive(Debug)]
struct LimitHit(String);

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decompression limit reached: {}", self.0)
    }
}

impl std::error::Error for LimitHit {}

/// Counts the compressed bytes a decoder pulls, for the ratio limit.
struct CountIn<R> {
    inner: R,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for CountIn<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Walks one file (or stream) layer by layer.
pub struct Walker {
    out: Walked,
    /// Members that are raw tensor storages of a PyTorch checkpoint (see
    /// [`Walker::torch_raw`]): read for their CRC, never sniffed.
    raw_records: std::collections::HashSet<String>,
    /// Extraction's sink for payloads and long values (see [`crate::vm::Sink`]).
    sink: Option<crate::vm::SharedSink>,
}

impl Default for Walker {
    fn default() -> Self {
        Walker::new()
    }
}

fn join(parent: &Option<String>, name: &str) -> Option<String> {
    Some(match parent {
        Some(p) => format!("{p}!{name}"),
        None => name.to_string(),
    })
}

impl Walker {
    /// A walker with nothing found yet.
    pub fn new() -> Walker {
        Walker { out: Walked::default(), raw_records: Default::default(), sink: None }
    }

    /// A walker whose pickle streams hand array payloads and long values to
    /// `sink` as they are read (extraction).
    pub fn with_sink(sink: crate::vm::SharedSink) -> Walker {
        Walker { sink: Some(sink), ..Walker::new() }
    }

    /// Analyses one pickle stream, through the sink when there is one.
    fn analyze_part<S: ByteSource>(&self, src: S) -> Analysis {
        match &self.sink {
            Some(sink) => crate::vm::analyze_into(src, self.out.parts.len(), sink.clone()),
            None => analyze(src),
        }
    }

    /// What was found.
    pub fn finish(self) -> Walked {
        self.out
    }

    fn note(&mut self, rule: Rule, member: &Option<String>, offset: u64, message: impl Into<String>) {
        self.out.notes.push(Note { rule, member: member.clone(), offset, message: message.into() });
    }

    /// Walks a seekable input (a file): zip archives need random access;
    /// everything else streams.
    ///
    /// Where the bytes admit another reading that some loader takes, that
    /// reading is scanned too (see `other_readings`).
    pub fn seekable<R: Read + Seek + Input>(&mut self, mut r: R, total: Option<u64>, member: Option<String>) {
        let mut head = [0u8; SNIFF_BYTES];
        let n = read_up_to(&mut r, &mut head).unwrap_or(0);
        let head = &head[..n];
        if r.seek(io::SeekFrom::Start(0)).is_err() {
            self.note(Rule::ContainerError, &member, 0, "cannot rewind the input");
            return;
        }
        let format = sniff(head);
        if format == Format::Zip {
            self.out.format.get_or_insert(Format::Zip);
            self.zip(ByRef(&mut r), member.clone(), 0);
        } else {
            self.stream(ByRef(&mut r), total, member.clone(), Vec::new(), 0);
        }
        self.other_readings(&mut r, format, head, member);
    }

    /// The readings of a file other than the one its first bytes select:
    ///
    /// - a pickle (or unrecognised bytes) with a zip end record: `pickle.load`
    ///   reads the pickle, zip readers that search for the end record
    ///   (Python's `zipfile`) read the archive behind it;
    /// - a container or compressed stream whose first byte is a pickle
    ///   opcode: joblib goes by the magic bytes, `pickle.load` runs the
    ///   opcodes. That reading is kept when `pickle.load` would import or
    ///   call something before it fails.
    ///
    /// Each reading found is a [`Rule::Polyglot`] note.
    fn other_readings<R: Read + Seek + Input>(
        &mut self,
        r: &mut R,
        format: Format,
        head: &[u8],
        member: Option<String>,
    ) {
        match format {
            Format::Pickle | Format::Unknown => {
                let Some(at) = zip_end_record(r) else { return };
                if r.seek(io::SeekFrom::Start(0)).is_err() {
                    return;
                }
                let Ok(archive) = ::zip::ZipArchive::new(ByRef(&mut *r)) else { return };
                // A zip held in a bytes value of the pickle is data, not a second reading;
                // one whose end record follows the pickle is.
                let pickle_end = self
                    .out
                    .parts
                    .iter()
                    .filter(|p| p.member == member && p.layers.is_empty())
                    .flat_map(|p| p.analysis.pickles.iter().map(|k| k.end))
                    .max()
                    .unwrap_or(0);
                drop(archive);
                if at < pickle_end {
                    return;
                }
                let msg = format!(
                    "the file is also a zip archive (end record at offset {at}): pickle.load reads the pickle, \
                     zip readers the archive; both were scanned"
                );
                self.note(Rule::Polyglot, &member, at, msg);
                self.zip(ByRef(&mut *r), member, 0);
            }
            _ => {
                let opens = head.first().and_then(|&b| crate::pickle::opcodes::Opcode::from_byte(b)).is_some();
                if !opens || r.seek(io::SeekFrom::Start(0)).is_err() {
                    return;
                }
                let analysis = analyze(ReadSource::new(ByRef(&mut *r), None));
                if let Some(at) = runs_before_failing(&analysis) {
                    let msg = format!(
                        "the file is a {} to readers that go by its magic bytes, and a pickle to pickle.load, \
                         which imports or calls at offset {at}; both readings were scanned",
                        format.name()
                    );
                    self.note(Rule::Polyglot, &member, at, msg);
                    self.out.parts.push(Part { member, layers: Vec::new(), analysis });
                }
            }
        }
    }

    /// A member of a streamed archive (tar): walked like a file, except that
    /// one whose bytes are no known format and whose name is not a pickle's
    /// (text, raw array data) is listed as skipped instead of being read as a
    /// pickle; archive loaders pick pickles by name.
    fn archive_member<'a>(
        &mut self,
        body: Box<dyn Input + 'a>,
        size: u64,
        raw_name: &str,
        name: Option<String>,
        layers: Vec<&'static str>,
        depth: usize,
    ) {
        match Peeked::new(body) {
            Ok(p) if sniff(p.head()) == Format::Unknown && !pickle_name(raw_name) => {
                self.out.skipped_members.push(name.unwrap_or_default());
            }
            Ok(p) => {
                let p: Box<dyn Input + 'a> = Box::new(p);
                self.stream(p, Some(size), name, layers, depth);
            }
            Err(e) => self.note(Rule::ContainerError, &name, 0, format!("read error: {e}")),
        }
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
        let p = match Peeked::new(r) {
            Ok(p) => p,
            Err(e) => {
                self.note(Rule::ContainerError, &member, 0, format!("read error: {e}"));
                return;
            }
        };
        let format = sniff(p.head());
        self.out.format.get_or_insert(format);
        if depth >= MAX_CONTAINER_DEPTH && format != Format::Pickle {
            self.note(
                Rule::LimitExceeded,
                &member,
                0,
                format!("{} nested deeper than MAX_CONTAINER_DEPTH ({MAX_CONTAINER_DEPTH})", format.name()),
            );
            return;
        }
        let mut inner_layers = layers.clone();
        inner_layers.push(format.name());
        match format {
            // A legacy (non-zip) PyTorch checkpoint: five pickles, then raw storages.
            Format::Pickle if torch::is_legacy(p.head()) => self.torch_legacy(p, total, member, layers),
            // Inside a ZF stream, content that is no pickle is the raw array
            // bytes of a joblib < 0.10 `.npy.z` companion (ZNDArrayWrapper):
            // data, read by the main file's wrapper, not a malformed pickle.
            Format::Unknown if layers.last() == Some(&Format::JoblibZf.name()) => {
                let name = member.clone().unwrap_or_else(|| "(file)".into());
                self.out.skipped_members.push(format!("{name} (joblib < 0.10 raw array data)"));
            }
            Format::Pickle | Format::Unknown => {
                let mut analysis = self.analyze_part(ReadSource::new(p, total));
                self.limit_note(&mut analysis, &member);
                self.out.parts.push(Part { member, layers, analysis });
            }
            Format::Zlib => {
                self.decoded(member, inner_layers, depth, |c| Box::new(flate2::read::ZlibDecoder::new(c)), p)
            }
            Format::Gzip => {
                self.decoded(member, inner_layers, depth, |c| Box::new(flate2::read::MultiGzDecoder::new(c)), p)
            }
            Format::Bz2 => {
                self.decoded(member, inner_layers, depth, |c| Box::new(bzip2::read::MultiBzDecoder::new(c)), p)
            }
            Format::Xz => self.decoded(
                member,
                inner_layers,
                depth,
                |c| Box::new(lzma_rust2::XzReader::new_mem_limit(c, true, MAX_LZMA_MEMORY_KIB)),
                p,
            ),
            Format::Lz4 => {
                self.decoded(member, inner_layers, depth, |c| Box::new(lz4_flex::frame::FrameDecoder::new(c)), p)
            }
            Format::Lzma => {
                let count = std::rc::Rc::new(std::cell::Cell::new(0));
                let counted = CountIn { inner: p, count: count.clone() };
                match lzma_rust2::LzmaReader::new_mem_limit(counted, MAX_LZMA_MEMORY_KIB, None) {
                    Ok(dec) => {
                        let dec: Box<dyn Read + '_> = Box::new(dec);
                        let limited = Limited::new(dec, count);
                        self.stream_decoded(limited, member, inner_layers, depth);
                    }
                    Err(e) => self.note(Rule::ContainerError, &member, 0, format!("lzma header: {e}")),
                }
            }
            Format::JoblibZf => self.joblib_zf(p, member, inner_layers, depth),
            Format::Tar => self.tar(p, member, inner_layers, depth),
            Format::Npy => self.npy(p, total, member, inner_layers),
            Format::Zip => {
                // A zip needs random access: hold it in memory if it is small enough.
                let mut buf = Vec::new();
                let limit = MAX_NESTED_ARCHIVE_BYTES as u64;
                match p.take(limit + 1).read_to_end(&mut buf) {
                    Ok(_) if buf.len() as u64 <= limit => self.zip(io::Cursor::new(buf), member, depth),
                    Ok(_) => self.note(
                        Rule::LimitExceeded,
                        &member,
                        0,
                        format!("a zip inside a stream larger than MAX_NESTED_ARCHIVE_BYTES ({limit}) is not scanned"),
                    ),
                    Err(e) => self.note(Rule::ContainerError, &member, 0, format!("read error: {e}")),
                }
            }
        }
    }

    /// A read error that ended a pickle's analysis is the container's
    /// problem (a decompression limit, a corrupt stream): it becomes a
    /// container note and leaves the analysis, so it is reported once.
    fn limit_note(&mut self, a: &mut Analysis, member: &Option<String>) {
        if let Some(e) = &a.error {
            if let crate::ErrorKind::Io(msg) = e.kind() {
                if msg.contains("decompression limit") {
                    self.note(Rule::DecompressionLimit, member, e.offset(), msg.clone());
                    a.error = None;
                } else if a.ops > 0 || a.pickles.len() > 1 {
                    self.note(Rule::ContainerError, member, e.offset(), format!("stream error: {msg}"));
                    a.error = None;
                }
            }
        }
    }

    fn decoded<'a, P: Input + 'a>(
        &mut self,
        member: Option<String>,
        layers: Vec<&'static str>,
        depth: usize,
        make: impl FnOnce(CountIn<P>) -> Box<dyn Read + 'a>,
        p: P,
    ) {
        let count = std::rc::Rc::new(std::cell::Cell::new(0));
        let dec = make(CountIn { inner: p, count: count.clone() });
        let limited = Limited::new(dec, count);
        self.stream_decoded(limited, member, layers, depth);
    }

    fn stream_decoded<R: Input>(&mut self, r: R, member: Option<String>, layers: Vec<&'static str>, depth: usize) {
        let before = self.out.parts.len();
        self.stream(r, None, member.clone(), layers, depth + 1);
        // A decoder error surfaces as the inner stream's I/O error.
        if let Some(part) = self.out.parts.get_mut(before) {
            if let Some(e) = &part.analysis.error {
                if let crate::ErrorKind::Io(msg) = e.kind() {
                    if !msg.contains("decompression limit") && part.analysis.ops == 0 {
                        let (at, msg) = (e.offset(), format!("cannot decompress: {msg}"));
                        part.analysis.error = None;
                        self.note(Rule::ContainerError, &member, at, msg);
                    }
                }
            }
        }
    }

    /// joblib < 0.10: `ZF` + `hex(len).ljust(19)` (+ one optional space) + zlib.
    fn joblib_zf<'a, R: Input + 'a>(
        &mut self,
        r: Peeked<R>,
        member: Option<String>,
        layers: Vec<&'static str>,
        depth: usize,
    ) {
        let Some(rest) = zf_body(r) else {
            self.note(Rule::ContainerError, &member, 0, "ZF header cut short");
            return;
        };
        let count = std::rc::Rc::new(std::cell::Cell::new(0));
        let dec = flate2::read::ZlibDecoder::new(CountIn { inner: rest, count: count.clone() });
        self.stream_decoded(Limited::new(dec, count), member, layers, depth);
    }

    fn npy<R: Input>(
        &mut self,
        mut r: Peeked<R>,
        total: Option<u64>,
        member: Option<String>,
        layers: Vec<&'static str>,
    ) {
        match npy::read_header(&mut r) {
            Ok(h) if h.object => {
                let start = h.data_offset;
                let rest = total.map(|t| t.saturating_sub(start));
                let analysis = self.analyze_part(ReadSource::with_base(r, start, rest));
                self.out.parts.push(Part { member, layers, analysis });
            }
            Ok(_) => {
                let name = member.clone().unwrap_or_else(|| "(file)".into());
                self.out.skipped_members.push(name);
            }
            Err(e) => self.note(Rule::ContainerError, &member, 0, format!("bad .npy header: {e}")),
        }
    }

    fn tar<R: Input>(&mut self, r: Peeked<R>, member: Option<String>, layers: Vec<&'static str>, depth: usize) {
        let mut entries = tar::Entries::new(r);
        let mut count = 0usize;
        loop {
            match entries.next_entry() {
                Ok(Some(entry)) => {
                    count += 1;
                    if count > MAX_ARCHIVE_MEMBERS {
                        let msg = format!("more than MAX_ARCHIVE_MEMBERS ({MAX_ARCHIVE_MEMBERS}) entries");
                        self.note(Rule::LimitExceeded, &member, entry.header_offset, msg);
                        return;
                    }
                    let name = join(&member, &entry.name);
                    if !entry.regular {
                        continue;
                    }
                    let size = entry.size;
                    // Boxed: a tar inside a tar must not make a new type each level.
                    let body: Box<dyn Input + '_> = Box::new(entries.body(size));
                    // A legacy tar PyTorch checkpoint mixes pickles and raw bytes in these two.
                    match torch::tar_section(&entry.name) {
                        Some(s) => self.torch_tar_section(body, size, name, layers.clone(), depth + 1, s),
                        None => self.archive_member(body, size, &entry.name, name, layers.clone(), depth + 1),
                    }
                    if let Err(e) = entries.finish_entry() {
                        self.note(Rule::ContainerError, &member, entry.header_offset, format!("tar: {e}"));
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    self.note(Rule::ContainerError, &member, entries.position(), format!("tar: {e}"));
                    return;
                }
            }
        }
    }
}

/// A reader borrowed for one layer of the walk, so the walker can come
/// back to the same input for another reading.
struct ByRef<'a, R: ?Sized>(&'a mut R);

impl<R: Read + ?Sized> Read for ByRef<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Seek + ?Sized> Seek for ByRef<'_, R> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl<R: Input + ?Sized> Input for ByRef<'_, R> {
    fn skip_forward(&mut self, n: u64) -> io::Result<u64> {
        self.0.skip_forward(n)
    }
    fn as_file(&mut self) -> Option<&mut std::fs::File> {
        self.0.as_file()
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

/// The zlib stream of a joblib < 0.10 ZF file (`read_zfile`): after `ZF`
/// and a 19-character hex length, and after one more space when there is
/// one (joblib 0.8.4 wrote it). `None` when the header is cut short.
fn zf_body<'a, R: Read + 'a>(mut r: R) -> Option<Box<dyn Read + 'a>> {
    let mut header = [0u8; 22];
    let n = read_up_to(&mut r, &mut header).unwrap_or(0);
    if n < 21 {
        return None;
    }
    Some(if n == 22 && header[21] != b' ' { Box::new(io::Cursor::new(vec![header[21]]).chain(r)) } else { Box::new(r) })
}

/// A member name that archive loaders would unpickle whatever its bytes.
fn pickle_name(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.ends_with(".pkl") || base.ends_with(".pickle")
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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

    fn limit_hit(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|i| i.is::<LimitHit>())
    }

    #[test]
    fn limited_applies_ratio_past_the_grace_and_the_size_cap() {
        use std::{cell::Cell, rc::Rc};
        // 10 compressed bytes: ratio 100 allows 1000 bytes, checked only past 500.
        let count = Rc::new(Cell::new(10));
        let mut l = Limited::with_bounds(io::repeat(0).take(5000), count.clone(), u64::MAX, 100, 500);
        let e = io::copy(&mut l, &mut io::sink()).unwrap_err();
        assert!(limit_hit(&e), "{e}");
        assert!(e.to_string().contains("MAX_COMPRESSION_RATIO"));
        // Under the grace, any ratio passes.
        let mut l = Limited::with_bounds(io::repeat(0).take(400), count.clone(), u64::MAX, 1, 500);
        assert_eq!(io::copy(&mut l, &mut io::sink()).unwrap(), 400);
        // The size cap holds whatever the ratio.
        let mut l = Limited::with_bounds(io::repeat(0).take(5000), count, 4096, u64::MAX, 0);
        let e = io::copy(&mut l, &mut io::sink()).unwrap_err();
        assert!(limit_hit(&e) && e.to_string().contains("MAX_DECOMPRESSED_BYTES"), "{e}");
    }

    #[test]
    fn zf_header_with_and_without_the_extra_space() {
        let body = |data: &[u8]| {
            let mut out = Vec::new();
            zf_body(data).map(|mut r| r.read_to_end(&mut out).map(|_| out))
        };
        let mut v09 = b"ZF0x28".to_vec();
        v09.resize(21, b' ');
        v09.extend_from_slice(b"\x78\x5e");
        assert_eq!(body(&v09).unwrap().unwrap(), b"\x78\x5e");
        let mut v084 = b"ZF0x28".to_vec();
        v084.resize(22, b' ');
        v084.extend_from_slice(b"\x78\x5e");
        assert_eq!(body(&v084).unwrap().unwrap(), b"\x78\x5e");
        assert!(body(b"ZF0x28").is_none());
    }

    #[test]
    fn a_pickle_reading_counts_until_cpython_would_raise() {
        let a = crate::vm::analyze_bytes(b"cos\nsystem\n(S'x'\ntR.", 0);
        assert_eq!(runs_before_failing(&a), Some(0));
        // STACK_GLOBAL on an empty stack (the .npy magic byte): CPython raises first.
        let a = crate::vm::analyze_bytes(b"\x93NUMPY\x01\x00cos\nsystem\n.", 0);
        assert_eq!(runs_before_failing(&a), None);
        // A persistent id: pickle.load has no persistent_load.
        let a = crate::vm::analyze_bytes(b"PK\x03\x04\ncos\nsystem\n.", 0);
        assert_eq!(runs_before_failing(&a), None);
        // A tar header whose first name starts with 'c': GLOBAL of names find_class cannot import.
        let mut tar = b"config/model.pkl".to_vec();
        tar.resize(100, 0);
        tar.extend_from_slice(b"0000644\0\n\nmore");
        let a = crate::vm::analyze_bytes(&tar, 0);
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
