//! The safetensors layout (huggingface/safetensors, "Format"): an 8-byte
//! little-endian header length, the JSON header (`__metadata__`, then each
//! tensor's `dtype`, `shape` and `data_offsets` into the data section),
//! padded with spaces to a multiple of 8, then the tensors' bytes back to
//! back, little-endian, in C order.
//!
//! Tensors are ordered by element size, largest first (as the
//! `safetensors` crate orders them), so each starts at a multiple of its
//! element size. Their bytes come from the arena's regions: an array of
//! up to [`SMALL`] bytes is read whole by position and kept for its next
//! field; a larger plain little-endian C-order array is copied as it is
//! (by the kernel where it can), a big-endian one swapped and a structured
//! field gathered a chunk of records at a time; only a Fortran-order array
//! is transposed in memory, under [`MAX_GATHER_BYTES`].

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use std::os::unix::fs::FileExt;

use super::Tensor;
use crate::convert::json_text::JsonText;
use crate::convert::ConvertError;
use crate::extract::layout::Reorder;
use crate::limits::{MAX_GATHER_BYTES, MAX_SAFETENSORS_HEADER};

/// Bytes read at a time when swapping or gathering fields.
const CHUNK: u64 = 1 << 20;

/// An array of at most this many bytes is read whole, by position, and
/// kept for its next field; a larger one is copied by the kernel (as it
/// stands) or a chunk at a time.
const SMALL: u64 = 1 << 20;

/// Writes the header and every tensor to `out`; returns the bytes of
/// tensor data written. Sorts `tensors` into their order in the file.
pub(super) fn write(
    out: &mut File,
    tensors: &mut [Tensor],
    metadata: &[(String, String)],
) -> Result<u64, ConvertError> {
    tensors.sort_by_key(|t| std::cmp::Reverse(t.st.size()));
    let (header, total) = header(tensors, metadata)?;
    let mut w = BufWriter::with_capacity(1 << 20, out);
    let out_err = ConvertError::Output;
    w.write_all(&(header.len() as u64).to_le_bytes()).map_err(out_err)?;
    w.write_all(&header).map_err(out_err)?;
    // The tensors mostly share one source (the staging arena): one handle.
    let mut open: Option<(&std::path::Path, File)> = None;
    let mut last = LastRead::default();
    for t in tensors.iter() {
        let f = match open.take() {
            Some((p, f)) if p == t.src.as_path() => f,
            _ => {
                last = LastRead::default();
                File::open(&t.src).map_err(|e| staged_error(t, e))?
            }
        };
        let f = &mut open.insert((t.src.as_path(), f)).1;
        write_tensor(&mut w, t, f, &mut last)?;
    }
    w.flush().map_err(out_err)?;
    Ok(total)
}

/// The last small region read whole, kept for the next tensor: a
/// structured array's fields are tensors of their own, next to each other
/// in the file's order, and each reads the same records.
#[derive(Default)]
struct LastRead {
    /// The region `data` holds (`None` while it holds none).
    region: Option<(u64, u64)>,
    data: Vec<u8>,
}

impl LastRead {
    /// The bytes `[start, end)` of `f`, read unless they are the last read.
    fn get(&mut self, f: &File, (start, end): (u64, u64)) -> io::Result<&[u8]> {
        if self.region != Some((start, end)) {
            self.region = None;
            self.data.resize((end - start) as usize, 0);
            f.read_exact_at(&mut self.data, start)?;
            self.region = Some((start, end));
        }
        Ok(&self.data)
    }
}

/// The header's bytes (padded) and the data section's length, the
/// tensors back to back in their order.
fn header(tensors: &[Tensor], metadata: &[(String, String)]) -> Result<(Vec<u8>, u64), ConvertError> {
    let mut spans = Vec::with_capacity(tensors.len());
    let mut at = 0u64;
    for t in tensors {
        let end = t.nbytes().and_then(|n| at.checked_add(n)).ok_or_else(|| too_big(t))?;
        spans.push((at, end));
        at = end;
    }
    Ok((header_bytes(tensors, &spans, metadata)?, at))
}

/// The header for tensors at these data offsets, padded with spaces to a
/// multiple of 8. Tensor names are unique and never `__metadata__`
/// (`Plan::claim`).
fn header_bytes(
    tensors: &[Tensor],
    spans: &[(u64, u64)],
    metadata: &[(String, String)],
) -> Result<Vec<u8>, ConvertError> {
    let mut h = JsonText::default();
    h.raw("{\"__metadata__\":{");
    for (i, (k, v)) in metadata.iter().enumerate() {
        if i > 0 {
            h.raw(",");
        }
        h.string(k);
        h.raw(":");
        h.string(v);
    }
    h.raw("}");
    for (t, &(s, e)) in tensors.iter().zip(spans) {
        h.raw(",");
        h.string(&t.name);
        h.raw(":{\"dtype\":");
        h.string(t.st.name());
        h.raw(",\"shape\":[");
        for (i, &d) in t.shape.iter().enumerate() {
            if i > 0 {
                h.raw(",");
            }
            h.uint(d);
        }
        h.raw("],\"data_offsets\":[");
        h.uint(s);
        h.raw(",");
        h.uint(e);
        h.raw("]}");
    }
    h.raw("}");
    let mut bytes = h.into_bytes();
    let padded = bytes.len().next_multiple_of(8);
    bytes.resize(padded, b' ');
    if bytes.len() > MAX_SAFETENSORS_HEADER {
        return Err(ConvertError::Unsupported(format!(
            "the safetensors header would take {} bytes, over the {MAX_SAFETENSORS_HEADER} its loaders accept",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// True when a tensor's bytes are its staged bytes as they stand.
fn as_stored(t: &Tensor) -> bool {
    let count: u64 = t.array_shape.iter().product();
    let transpose = t.fortran && t.array_shape.len() > 1 && count > 1;
    !transpose && t.swap == 0 && t.field_size == t.record
}

/// When the arena in `file` (data from `reserved` on) is already the
/// data section, every region a tensor as stored, back to back and
/// aligned, and the header fits in the room before it: writes the length
/// and header there (padded with spaces) and returns the bytes of data.
/// `None`: it is not, and nothing was written.
pub(super) fn header_in_place(
    file: &mut File,
    reserved: u64,
    tensors: &mut [Tensor],
    metadata: &[(String, String)],
) -> Result<Option<u64>, ConvertError> {
    let end = file.metadata().map_err(ConvertError::Output)?.len();
    tensors.sort_by_key(|t| t.region.0);
    let mut spans = Vec::with_capacity(tensors.len());
    let mut at = reserved;
    for t in tensors.iter() {
        let (s, e) = t.region;
        let fits = as_stored(t) && s == at && Some(e - s) == t.nbytes() && (s - reserved) % t.st.size() == 0;
        if !fits {
            return Ok(None);
        }
        spans.push((s - reserved, e - reserved));
        at = e;
    }
    if at != end || reserved < 8 {
        return Ok(None);
    }
    let mut header = header_bytes(tensors, &spans, metadata)?;
    let room = (reserved - 8) as usize;
    if header.len() > room {
        return Ok(None);
    }
    header.resize(room, b' ');
    let out = ConvertError::Output;
    file.seek(SeekFrom::Start(0)).map_err(out)?;
    file.write_all(&(room as u64).to_le_bytes()).map_err(out)?;
    file.write_all(&header).map_err(out)?;
    Ok(Some(end - reserved))
}

fn too_big(t: &Tensor) -> ConvertError {
    ConvertError::Unsupported(format!("tensor {}: its size overflows", t.name))
}

/// Streams one tensor's bytes from its region of the arena into `w`.
fn write_tensor(
    w: &mut BufWriter<&mut File>,
    t: &Tensor,
    mut f: &mut File,
    last: &mut LastRead,
) -> Result<(), ConvertError> {
    let staged = |e: io::Error| staged_error(t, e);
    let (start, len) = t.region;
    let count = t.array_shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or_else(|| too_big(t))?;
    let in_bytes = count.checked_mul(t.record).ok_or_else(|| too_big(t))?;
    if start.checked_add(in_bytes) != Some(len) || t.field_offset + t.field_size > t.record {
        return Err(ConvertError::Unsupported(format!(
            "tensor {}: the staged array holds {} data bytes, its dtype and shape say {in_bytes}",
            t.name,
            len.saturating_sub(start)
        )));
    }
    let transpose = t.fortran && t.array_shape.len() > 1 && count > 1;
    if in_bytes <= SMALL && !transpose {
        // One positional read (kept for the array's next field), no seek.
        let data = last.get(f, (start, len)).map_err(staged)?;
        if as_stored(t) {
            return w.write_all(data).map_err(ConvertError::Output);
        }
        let mut buf = Vec::with_capacity((count * t.field_size) as usize);
        select(data, t, &mut buf);
        return w.write_all(&buf).map_err(ConvertError::Output);
    }
    f.seek(SeekFrom::Start(start)).map_err(staged)?;
    if as_stored(t) {
        // As it is: `io::copy` uses copy_file_range for a file to a file.
        let n = io::copy(&mut (&mut f).take(in_bytes), w).map_err(ConvertError::Output)?;
        return if n == in_bytes { Ok(()) } else { Err(staged(io::ErrorKind::UnexpectedEof.into())) };
    }
    if transpose {
        if in_bytes > MAX_GATHER_BYTES {
            return Err(ConvertError::Unsupported(format!(
                "tensor {}: a Fortran-order array of {in_bytes} bytes, over the {MAX_GATHER_BYTES} \
                 that can be transposed in memory",
                t.name
            )));
        }
        let mut data = Vec::new();
        (&mut f).take(in_bytes).read_to_end(&mut data).map_err(staged)?;
        let rev: Vec<usize> = (0..t.array_shape.len()).rev().collect();
        let data = Reorder::Permute(rev).apply(data, &t.array_shape, t.record as usize);
        let mut buf = Vec::new();
        select(&data, t, &mut buf);
        return w.write_all(&buf).map_err(ConvertError::Output);
    }
    let per = (CHUNK / t.record.max(1)).max(1);
    let mut chunk = Vec::new();
    let mut buf = Vec::new();
    let mut left = count;
    while left > 0 {
        let n = left.min(per);
        chunk.clear();
        (&mut f).take(n * t.record).read_to_end(&mut chunk).map_err(staged)?;
        if chunk.len() as u64 != n * t.record {
            return Err(staged(io::ErrorKind::UnexpectedEof.into()));
        }
        buf.clear();
        select(&chunk, t, &mut buf);
        w.write_all(&buf).map_err(ConvertError::Output)?;
        left -= n;
    }
    Ok(())
}

/// An error reading a tensor's source, naming it.
fn staged_error(t: &Tensor, e: io::Error) -> ConvertError {
    ConvertError::Output(io::Error::new(e.kind(), format!("{}: {e}", t.src.display())))
}

/// The tensor's bytes of whole records in `data`, little-endian, appended to `out`.
fn select(data: &[u8], t: &Tensor, out: &mut Vec<u8>) {
    let (off, size) = (t.field_offset as usize, t.field_size as usize);
    let at = out.len();
    if size == t.record as usize {
        out.extend_from_slice(data);
    } else {
        for rec in data.chunks_exact(t.record as usize) {
            out.extend_from_slice(&rec[off..off + size]);
        }
    }
    if t.swap > 1 {
        out[at..].chunks_exact_mut(t.swap).for_each(<[u8]>::reverse);
    }
}
