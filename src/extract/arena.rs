//! One file that receives every array's data back to back, instead of one
//! `.npy` file per array: `convert` hands the [`super::store::Store`] its
//! output file, so a large array is written once, straight from the input
//! (or its decompressor) to where the output needs it (docs/convert.md,
//! "Speed and memory").
//!
//! In this mode a `.npy` header is never written: `NpySkip` drops it
//! from what a writer produces, and the store records, for each array file
//! name it hands out, the region of the arena that holds its data.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::limits::MAX_NPY_HEADER;

/// The arena: its file and the regions written so far.
#[derive(Debug)]
pub struct Arena {
    file: File,
    /// The region being written: its temporary key and where it starts.
    open: Option<(PathBuf, u64)>,
    /// Closed regions by temporary key: `[start, end)`.
    written: HashMap<PathBuf, (u64, u64)>,
    /// Regions by the array file name extraction reports (`arrays/x.npy`).
    pub regions: HashMap<String, (u64, u64)>,
}

impl Arena {
    /// An arena appending to `file` (whose current length is where the
    /// first region starts).
    pub fn new(file: File) -> Arena {
        Arena { file, open: None, written: HashMap::new(), regions: HashMap::new() }
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
}
