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

pub mod npy;
pub mod tar;
mod zip;

use std::io::{self, Read, Seek};

use crate::limits::{
    MAX_ARCHIVE_MEMBERS, MAX_COMPRESSION_RATIO, MAX_CONTAINER_DEPTH, MAX_DECOMPRESSED_BYTES, MAX_LZMA_MEMORY_KIB,
    MAX_NESTED_ARCHIVE_BYTES,
};
use crate::rules::Rule;
use crate::source::{Input, ReadSource};
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
    if starts(b"\x78") {
        return Format::Zlib;
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
}

/// A decompressed stream with the bomb limits applied: at most
/// [`MAX_DECOMPRESSED_BYTES`], and at most [`MAX_COMPRESSION_RATIO`] output
/// bytes per compressed byte once past 64 MiB.
struct Limited<R> {
    inner: R,
    out: u64,
    compressed: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        let ratio_hit = self.out > 64 << 20 && self.out / self.compressed.get().max(1) > MAX_COMPRESSION_RATIO;
        if self.out > MAX_DECOMPRESSED_BYTES || ratio_hit {
            return Err(io::Error::other(LimitHit));
        }
        Ok(n)
    }
}

impl<R: Read> Input for Limited<R> {}

/// Marker error: a decompression limit was reached.
#[derive(Debug)]
struct LimitHit;

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "decompression limit reached (MAX_DECOMPRESSED_BYTES {MAX_DECOMPRESSED_BYTES} or MAX_COMPRESSION_RATIO {MAX_COMPRESSION_RATIO})"
        )
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
        Walker { out: Walked::default() }
    }

    /// What was found.
    pub fn finish(self) -> Walked {
        self.out
    }

    fn note(&mut self, rule: Rule, member: &Option<String>, offset: u64, message: impl Into<String>) {
        self.out.notes.push(Note { rule, member: member.clone(), offset, message: message.into() });
    }

    /// Walks a seekable input (a file, or an archive member held in memory):
    /// zip archives need random access; everything else streams.
    pub fn seekable<R: Read + Seek + Input>(&mut self, mut r: R, total: Option<u64>, member: Option<String>) {
        let mut head = [0u8; 4];
        let n = read_up_to(&mut r, &mut head).unwrap_or(0);
        if r.seek(io::SeekFrom::Start(0)).is_err() {
            self.note(Rule::ContainerError, &member, 0, "cannot rewind the input");
            return;
        }
        if n == 4 && (head == *b"PK\x03\x04" || head == *b"PK\x05\x06") {
            self.out.format.get_or_insert(Format::Zip);
            self.zip(r, member, 0);
            return;
        }
        self.stream(r, total, member, Vec::new(), 0);
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
            Format::Pickle | Format::Unknown => {
                let analysis = analyze(ReadSource::new(p, total));
                self.limit_note(&analysis, &member);
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
                        let limited = Limited { inner: dec, out: 0, compressed: count };
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

    fn limit_note(&mut self, a: &Analysis, member: &Option<String>) {
        if let Some(e) = &a.error {
            if let crate::ErrorKind::Io(msg) = e.kind() {
                if msg.contains("decompression limit") {
                    self.note(Rule::DecompressionLimit, member, e.offset(), msg.clone());
                } else if a.ops > 0 || a.pickles.len() > 1 {
                    self.note(Rule::ContainerError, member, e.offset(), format!("stream error: {msg}"));
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
        let limited = Limited { inner: dec, out: 0, compressed: count };
        self.stream_decoded(limited, member, layers, depth);
    }

    fn stream_decoded<R: Input>(&mut self, r: R, member: Option<String>, layers: Vec<&'static str>, depth: usize) {
        let before = self.out.parts.len();
        self.stream(r, None, member.clone(), layers, depth + 1);
        // A decoder error surfaces as the inner stream's I/O error.
        if let Some(part) = self.out.parts.get(before) {
            if let Some(e) = &part.analysis.error {
                if let crate::ErrorKind::Io(msg) = e.kind() {
                    if !msg.contains("decompression limit") && part.analysis.ops == 0 {
                        let msg = format!("cannot decompress: {msg}");
                        self.note(Rule::ContainerError, &member, e.offset(), msg);
                    }
                }
            }
        }
    }

    /// joblib < 0.10: `ZF` + `hex(len).ljust(19)` (+ one optional space) + zlib.
    fn joblib_zf<'a, R: Input + 'a>(
        &mut self,
        mut r: Peeked<R>,
        member: Option<String>,
        layers: Vec<&'static str>,
        depth: usize,
    ) {
        let mut header = [0u8; 21];
        if read_up_to(&mut r, &mut header).unwrap_or(0) < 21 {
            self.note(Rule::ContainerError, &member, 0, "ZF header cut short");
            return;
        }
        // 2 + 19 bytes read; a 20th space (joblib 0.8.4) is skipped when present.
        let rest: Box<dyn Read + 'a> =
            if header[20] == b' ' { Box::new(r) } else { Box::new(io::Cursor::new(vec![header[20]]).chain(r)) };
        let count = std::rc::Rc::new(std::cell::Cell::new(0));
        let dec = flate2::read::ZlibDecoder::new(CountIn { inner: rest, count: count.clone() });
        self.stream_decoded(Limited { inner: dec, out: 0, compressed: count }, member, layers, depth);
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
                let analysis = analyze(OffsetSource::new(r, start, rest));
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
                    self.stream(body, Some(size), name, layers.clone(), depth + 1);
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

/// A source whose offsets start at `base` (the pickle after an `.npy` header).
struct OffsetSource;

impl OffsetSource {
    #[allow(clippy::new_ret_no_self)]
    fn new<R: Input>(r: R, base: u64, rest: Option<u64>) -> ReadSource<R> {
        ReadSource::with_base(r, base, rest)
    }
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
}
