//! One file that receives every array's data back to back, instead of one
//! `.npy` file per array: `convert` hands the [`super::store::Store`] its
//! output file, so a large array is written once, straight from the input
//! (or its decompressor) to where the output needs it (docs/convert.md,
//! "Speed and memory").
//!
//! An arena holds either the arrays' data alone (`safetensors`, which
//! writes its own header: `NpySkip` drops the `.npy` header from what a
//! writer produces) or whole `.npy` files (`skops`, whose archive members
//! are `.npy` files, header included). The store records, for each array
//! file name it hands out, the region of the arena that holds it;
//! [`RegionReader`] reads one back.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::limits::MAX_NPY_HEADER;

/// The arena: its file and the regions written so far.
#[derive(Debug)]
pub struct Arena {
    file: File,
    /// Whether a region holds the whole `.npy` file (header included) or
    /// only its data.
    headers: bool,
    /// The region being written: its temporary key and where it starts.
    open: Option<(PathBuf, u64)>,
    /// Closed regions by temporary key: `[start, end)`.
    written: HashMap<PathBuf, (u64, u64)>,
    /// Regions by the array file name extraction reports (`arrays/x.npy`).
    pub regions: HashMap<String, (u64, u64)>,
}

impl Arena {
    /// An arena appending the arrays' data, without `.npy` headers, to
    /// `file` (whose current length is where the first region starts).
    pub fn new(file: File) -> Arena {
        Arena { file, headers: false, open: None, written: HashMap::new(), regions: HashMap::new() }
    }

    /// An arena appending whole `.npy` files, header included, to `file`.
    pub fn with_headers(file: File) -> Arena {
        Arena { headers: true, ..Arena::new(file) }
    }

    /// Whether regions hold whole `.npy` files ([`Arena::with_headers`]).
    pub fn keeps_headers(&self) -> bool {
        self.headers
    }

    /// Starts a region for `key`; returns a handle on the file positioned
    /// at its start (the end of the file).
    pub(super) fn start(&mut self, key: PathBuf) -> io::Result<File> {
        self.close()?;
        let mut f = self.file.try_clone()?;
        let start = f.seek(SeekFrom::End(0))?;
        self.open = Some((key, start));
        Ok(f)
    }

    /// Ends the open region (at the end of the file).
    fn close(&mut self) -> io::Result<()> {
        if let Some((key, start)) = self.open.take() {
            let end = self.file.metadata()?.len();
            self.written.insert(key, (start, end));
        }
        Ok(())
    }

    /// Records that the region written for `key` holds the array file `rel`.
    pub(super) fn claim(&mut self, key: &std::path::Path, rel: &str) -> io::Result<()> {
        if self.open.as_ref().is_some_and(|(k, _)| k == key) {
            self.close()?;
        }
        if let Some(r) = self.written.remove(key) {
            self.regions.insert(rel.to_string(), r);
        }
        Ok(())
    }
}

/// A writer that drops the `.npy` preamble and header from the start of
/// what it is given and passes the data on.
pub(super) struct NpySkip<'w> {
    inner: &'w mut dyn Write,
    /// Bytes of the preamble seen so far (up to 12).
    head: Vec<u8>,
    /// Header bytes still to drop, once known.
    skip: Option<u64>,
}

impl<'w> NpySkip<'w> {
    pub(super) fn new(inner: &'w mut dyn Write) -> Self {
        NpySkip { inner, head: Vec::new(), skip: None }
    }

    /// The bytes of `buf` that are data, once the header is behind.
    fn data<'b>(&mut self, mut buf: &'b [u8]) -> io::Result<&'b [u8]> {
        while self.skip.is_none() && !buf.is_empty() {
            self.head.push(buf[0]);
            buf = &buf[1..];
            let need = if self.head.get(6) == Some(&1) { 10 } else { 12 };
            if self.head.len() == need {
                if &self.head[..6] != b"\x93NUMPY" {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "not a .npy stream"));
                }
                let len = if need == 10 {
                    u64::from(u16::from_le_bytes([self.head[8], self.head[9]]))
                } else {
                    u64::from(u32::from_le_bytes([self.head[8], self.head[9], self.head[10], self.head[11]]))
                };
                if len > MAX_NPY_HEADER as u64 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "a .npy header over the limit"));
                }
                self.skip = Some(len);
            }
        }
        if let Some(left) = self.skip.as_mut() {
            let n = (*left).min(buf.len() as u64) as usize;
            *left -= n as u64;
            buf = &buf[n..];
        }
        Ok(buf)
    }
}

impl Write for NpySkip<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let data = self.data(buf)?;
        self.inner.write_all(data)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the region `[pos, end)` of a file by position (`pread`), so any
/// number of readers share one handle without a shared cursor.
pub struct RegionReader<'f> {
    file: &'f File,
    pos: u64,
    end: u64,
}

impl<'f> RegionReader<'f> {
    /// A reader of `file`'s bytes `[start, end)`.
    pub fn new(file: &'f File, (start, end): (u64, u64)) -> RegionReader<'f> {
        RegionReader { file, pos: start, end: end.max(start) }
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }
}

impl Read for RegionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(usize::try_from(self.remaining()).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the arena ends before the region does"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::dtype::{npy_header, Dtype};

    #[test]
    fn the_npy_header_is_dropped_however_the_bytes_arrive() {
        let d = Dtype::Plain { descr: "<i2".into(), itemsize: 2 };
        let mut npy = npy_header(&d, false, &[3]);
        npy.extend_from_slice(&[1, 0, 2, 0, 3, 0]);
        for step in [1, 5, 64, 1000] {
            let mut out = Vec::new();
            let mut w = NpySkip::new(&mut out);
            for c in npy.chunks(step) {
                w.write_all(c).unwrap();
            }
            assert_eq!(out, [1, 0, 2, 0, 3, 0], "chunks of {step}");
        }
        let mut out = Vec::new();
        assert!(NpySkip::new(&mut out).write_all(b"not an npy file").is_err());
    }

    #[test]
    fn a_region_reads_its_bytes_and_no_more() {
        let dir = std::env::temp_dir().join(format!("pkinspect-region-{}", std::process::id()));
        std::fs::write(&dir, b"0123456789").unwrap();
        let f = File::open(&dir).unwrap();
        let mut s = String::new();
        RegionReader::new(&f, (2, 6)).read_to_string(&mut s).unwrap();
        assert_eq!(s, "2345");
        let mut both = (RegionReader::new(&f, (0, 3)), RegionReader::new(&f, (7, 10)));
        let (mut a, mut b) = (String::new(), String::new());
        both.1.read_to_string(&mut b).unwrap();
        both.0.read_to_string(&mut a).unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("012", "789"));
        let mut past = Vec::new();
        assert!(RegionReader::new(&f, (8, 20)).read_to_end(&mut past).is_err(), "a region past the end");
        let _ = std::fs::remove_file(&dir);
    }
}
