//! What extraction writes besides the arrays it rebuilds: the document
//! itself, `.npy` files copied as they are (`.npy` inputs and `.npz`
//! members), the names files get from attribute paths, and the readers an
//! array's data bytes are written from.

use std::io::{self, Read, Write};
use std::path::Path;

use serde_json::{json, Value as J};

use super::store::{self, Store};
use super::{dtype, ArrayRecord, Extraction, Seg, ValueError, SCHEMA_VERSION};
use crate::limits::MAX_INDENT_LEVELS;

/// The document (docs/extract.md): the pickles' roots, the arrays written,
/// the scan's findings and the values that could not be extracted.
pub(super) fn document(
    path: &Path,
    report: &crate::scan::FileReport,
    outer: &str,
    pickles: Vec<J>,
    arrays: &[ArrayRecord],
    errors: &[ValueError],
) -> J {
    let findings: Vec<J> = report
        .findings
        .iter()
        .map(|f| {
            json!({"rule": f.rule.code(), "severity": f.severity.as_str(), "offset": f.offset,
                   "member": f.member, "message": f.message})
        })
        .collect();
    let arrays: Vec<J> = arrays
        .iter()
        .map(|a| {
            let mut e = json!({"file": a.file, "member": a.member, "pickle": a.pickle, "path": a.path, "dtype": a.dtype,
                   "shape": a.shape, "order": if a.fortran { "F" } else { "C" }, "nbytes": a.nbytes});
            if a.path_cut {
                e["path_cut"] = J::Bool(true);
            }
            e
        })
        .collect();
    super::json::node([
        ("schema_version", json!(SCHEMA_VERSION)),
        ("pkinspect_version", json!(env!("CARGO_PKG_VERSION"))),
        ("source", json!({"path": path.display().to_string(), "format": report.format, "outer": outer})),
        ("pickles", J::Array(pickles)),
        ("arrays", J::Array(arrays)),
        ("findings", J::Array(findings)),
        ("errors", J::Array(errors.iter().map(ValueError::to_json).collect())),
    ])
}

/// Writes the document as pretty JSON.
pub fn write_doc(doc: &J, path: &Path) -> io::Result<()> {
    let f = std::fs::File::create(path)?;
    let mut w = io::BufWriter::new(f);
    write_pretty(&mut w, doc)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// A JSON array or object being written: its remaining entries, and
/// whether one was written yet.
enum Open<'a> {
    Array(std::slice::Iter<'a, J>, bool),
    Object(serde_json::map::Iter<'a>, bool),
}

/// Writes `doc` as `serde_json::to_writer_pretty` does (two-space
/// indents, `[]`/`{}` when empty; indents stop growing past
/// [`MAX_INDENT_LEVELS`]), with an explicit stack: documents nest as deep
/// as the pickle's values, which `pickle.load` takes at any depth.
pub(super) fn write_pretty(w: &mut dyn Write, doc: &J) -> io::Result<()> {
    let mut stack: Vec<Open<'_>> = Vec::new();
    open(w, doc, &mut stack)?;
    loop {
        let depth = stack.len();
        let Some(top) = stack.last_mut() else { break };
        let (entry, started) = match top {
            Open::Array(it, started) => (it.next().map(|v| (None, v)), started),
            Open::Object(it, started) => (it.next().map(|(k, v)| (Some(k), v)), started),
        };
        let Some((key, v)) = entry else {
            let close: &[u8] = if matches!(stack.pop(), Some(Open::Array(..))) { b"]" } else { b"}" };
            new_line(w, depth - 1)?;
            w.write_all(close)?;
            continue;
        };
        if std::mem::replace(started, true) {
            w.write_all(b",")?;
        }
        new_line(w, depth)?;
        if let Some(k) = key {
            serde_json::to_writer(&mut *w, k)?;
            w.write_all(b": ")?;
        }
        open(w, v, &mut stack)?;
    }
    Ok(())
}

/// A new line indented `depth` levels, at most [`MAX_INDENT_LEVELS`]
/// (the document stays linear in the size of the graph at any depth).
fn new_line(w: &mut dyn Write, depth: usize) -> io::Result<()> {
    w.write_all(b"\n")?;
    for _ in 0..depth.min(MAX_INDENT_LEVELS) {
        w.write_all(b"  ")?;
    }
    Ok(())
}

/// Writes a value: a scalar whole, an empty container as `[]`/`{}`, else
/// its opening bracket, leaving its entries to the caller's stack.
fn open<'a>(w: &mut dyn Write, v: &'a J, stack: &mut Vec<Open<'a>>) -> io::Result<()> {
    match v {
        J::Array(a) if a.is_empty() => w.write_all(b"[]"),
        J::Object(m) if m.is_empty() => w.write_all(b"{}"),
        J::Array(a) => {
            stack.push(Open::Array(a.iter(), false));
            w.write_all(b"[")
        }
        J::Object(m) => {
            stack.push(Open::Object(m.iter(), false));
            w.write_all(b"{")
        }
        scalar => serde_json::to_writer(w, scalar).map_err(io::Error::from),
    }
}

/// Drops a document without recursion (a value's own drop recurses once
/// per level of nesting).
pub(super) fn drop_deep(doc: J) {
    let mut stack = vec![doc];
    while let Some(v) = stack.pop() {
        match v {
            J::Array(items) => stack.extend(items),
            J::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// The name an attribute path gives a file, before [`store::safe_name`]:
/// its steps joined with `.` (`estimators_.3.tree_.nodes`).
pub(crate) fn path_name(path: &[Seg]) -> String {
    let parts: Vec<String> = super::recorded_path(path)
        .iter()
        .map(|s| match s {
            J::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    parts.join(".")
}

impl Extraction {
    /// Copies an `.npy` stream of `size` bytes as it is to `arrays/<name>.npy`,
    /// once its header has been read (a bad header writes nothing).
    pub(super) fn copy_npy(
        &mut self,
        src: &mut dyn Read,
        size: u64,
        name: &str,
        path: Vec<J>,
        member: Option<String>,
    ) -> io::Result<ArrayRecord> {
        // The header is at most MAX_NPY_HEADER plus its 12-byte preamble.
        let mut head = Vec::new();
        src.take(crate::limits::MAX_NPY_HEADER as u64 + 12).read_to_end(&mut head)?;
        let h = crate::container::npy::read_header(&mut &head[..]).map_err(io::Error::other)?;
        let file = self.store.borrow_mut().write_new("arrays", name, "npy", |w| {
            w.write_all(&head)?;
            io::copy(src, w).map(|_| ())
        })?;
        Ok(ArrayRecord {
            file,
            path_cut: path.len() > crate::limits::MAX_PATH_STEPS,
            path: super::recorded_path(&path).to_vec(),
            dtype: dtype::py_literal_json(&h.descr).unwrap_or_else(|| J::String(h.descr.clone())),
            shape: h.shape.clone().unwrap_or_default(),
            fortran: h.fortran_order,
            nbytes: size.saturating_sub(h.data_offset),
            member,
            pickle: None,
        })
    }
}

/// Where an array's bytes are.
pub(super) enum Data {
    /// In memory (a value the machine kept).
    Mem(Vec<u8>),
    /// In a temporary file written during the scan; `latin1`: UTF-8 text
    /// whose code points are the bytes (see [`Latin1`]).
    Spill { spill: store::Spill, latin1: bool },
}

impl Data {
    /// Length in bytes, when known without reading (latin-1 text is not).
    pub(super) fn len(&self) -> Option<u64> {
        match self {
            Data::Mem(b) => Some(b.len() as u64),
            Data::Spill { spill, latin1: false } => Some(spill.len),
            Data::Spill { .. } => None,
        }
    }

    /// The bytes, as a reader (latin-1 text decoded on the way).
    pub(super) fn open(&self, store: &Store) -> io::Result<Box<dyn Read>> {
        match self {
            Data::Mem(b) => Ok(Box::new(io::Cursor::new(b.clone()))),
            Data::Spill { spill, latin1: false } => store.open_spill(spill),
            Data::Spill { spill, latin1: true } => {
                Ok(Box::new(Latin1 { inner: store.open_spill(spill)?, pending: None }))
            }
        }
    }
}

/// UTF-8 text of code points ≤ 0xFF read as one byte per code point (the
/// data of a protocol ≤ 2 numpy pickle: `_codecs.encode(text, 'latin1')`).
struct Latin1 {
    inner: Box<dyn Read>,
    pending: Option<u8>,
}

impl Read for Latin1 {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut buf = vec![0u8; out.len().min(1 << 16)];
        loop {
            let n = self.inner.read(&mut buf)?;
            if n == 0 {
                if self.pending.is_some() {
                    return Err(io::Error::other("array text ends inside a character"));
                }
                return Ok(0);
            }
            let mut k = 0;
            for &b in &buf[..n] {
                match self.pending.take() {
                    Some(lead) => {
                        if b & 0xC0 != 0x80 {
                            return Err(io::Error::other("array text is not UTF-8"));
                        }
                        out[k] = ((lead & 0x03) << 6) | (b & 0x3F);
                        k += 1;
                    }
                    None if b < 0x80 => {
                        out[k] = b;
                        k += 1;
                    }
                    None if b == 0xC2 || b == 0xC3 => self.pending = Some(b),
                    None => return Err(io::Error::other("array text holds a code point above 0xFF")),
                }
            }
            if k > 0 {
                return Ok(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The iterative writer gives serde_json's pretty output, byte for byte;
    /// and it writes (and drops) a document nested 100,000 deep.
    #[test]
    fn pretty_output_is_serde_jsons_at_any_depth() {
        let doc = json!({"a": [1, 2.5, "x\u{7}\"", null, true, [], {}], "b": {"c": {"d": []}, "e": -0.0},
                         "f": [[{"g": [1]}]], "": "é\u{1F600}"});
        let mut got = Vec::new();
        write_pretty(&mut got, &doc).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), serde_json::to_string_pretty(&doc).unwrap());
        let mut deep = J::Null;
        for _ in 0..100_000 {
            deep = J::Array(vec![deep]);
        }
        let mut out = Vec::new();
        write_pretty(&mut out, &deep).unwrap();
        assert_eq!(out.iter().filter(|&&c| c == b'[').count(), 100_000);
        // Linear: each level's lines are indented at most MAX_INDENT_LEVELS.
        assert!(out.len() < 100_000 * 2 * (2 * MAX_INDENT_LEVELS + 3), "{}", out.len());
        drop_deep(deep);
    }

    fn decode(text: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
        let mut r = Latin1 { inner: Box::new(io::Cursor::new(text.to_vec())), pending: None };
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn latin1_text_reads_back_as_the_bytes_it_encodes() {
        // Every byte value, as Python 2 numpy pickles carry it: the text
        // `bytes.decode('latin1')`, stored as UTF-8.
        let bytes: Vec<u8> = (0..=255u8).collect();
        let text: String = bytes.iter().map(|&b| b as char).collect();
        // Reads of one byte split every two-byte character.
        for chunk in [1, 2, 3, 4096] {
            assert_eq!(decode(text.as_bytes(), chunk).unwrap(), bytes, "chunk {chunk}");
        }
    }

    #[test]
    fn latin1_refuses_what_is_not_latin1_text() {
        let e = decode("\u{100}".as_bytes(), 8).unwrap_err();
        assert_eq!(e.to_string(), "array text holds a code point above 0xFF");
        assert_eq!(decode(b"a\xc3", 8).unwrap_err().to_string(), "array text ends inside a character");
        assert_eq!(decode(b"\xc3A", 8).unwrap_err().to_string(), "array text is not UTF-8");
    }

    #[test]
    fn path_names_join_steps_with_dots() {
        let path = [json!("estimators_"), json!(3), json!("tree_"), json!("nodes")];
        assert_eq!(path_name(&path), "estimators_.3.tree_.nodes");
        assert_eq!(path_name(&[]), "");
    }
}
