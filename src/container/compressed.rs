//! Compressed layers: zlib, gzip, bz2, xz, lz4 and LZMA streams, and the
//! joblib < 0.10 `ZF` format, decompressed as a stream through [`Limited`]
//! (the bomb limits) and walked like any other layer.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use super::diag::Unreadable;
use super::format::Format;
use super::readers::{read_up_to, CountIn, LimitHit, Limited, Peeked};
use super::walk::{Layer, Walker};
use crate::limits::MAX_LZMA_MEMORY_KIB;
use crate::pickle::source::Input;

/// Walks the stream a compressor of `format` (zlib, gzip, bz2, xz, lz4 or
/// LZMA) wraps in layer `at`. Any other format is not a compressor's and is
/// left alone.
pub(super) fn walk<'a, R: Input + 'a>(w: &mut Walker, format: Format, p: Peeked<R>, at: &Layer) {
    let count = Rc::new(Cell::new(0));
    let counted = CountIn { inner: p, count: count.clone() };
    let dec: Box<dyn Read + 'a> = match format {
        Format::Zlib => Box::new(flate2::read::ZlibDecoder::new(counted)),
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(counted)),
        Format::Bz2 => Box::new(bzip2::read::MultiBzDecoder::new(counted)),
        Format::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(counted, true, MAX_LZMA_MEMORY_KIB)),
        Format::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(counted)),
        Format::Lzma => match lzma_rust2::LzmaReader::new_mem_limit(counted, MAX_LZMA_MEMORY_KIB, None) {
            Ok(dec) => Box::new(dec),
            Err(e) => return w.note(&at.member, 0, Unreadable::LzmaHeader { error: e.to_string() }),
        },
        _ => return,
    };
    decoded(w, Limited::new(dec, count), &at.decoded(format));
}

/// joblib < 0.10: `ZF` + `hex(len).ljust(19)` (+ one optional space) + zlib.
pub(super) fn joblib_zf<'a, R: Input + 'a>(w: &mut Walker, r: Peeked<R>, at: &Layer) {
    let Some(rest) = zf_body(r) else {
        w.note(&at.member, 0, Unreadable::ZfHeaderShort {});
        return;
    };
    let count = Rc::new(Cell::new(0));
    let dec = flate2::read::ZlibDecoder::new(CountIn { inner: rest, count: count.clone() });
    decoded(w, Limited::new(dec, count), &at.decoded(Format::JoblibZf));
}

/// Walks a decompressed stream, layer `inner`. A decoder that fails before
/// the first opcode surfaces as the inner stream's I/O error: that is the
/// layer's problem, reported as such rather than as a broken pickle.
fn decoded<R: Input>(w: &mut Walker, r: R, inner: &Layer) {
    let before = w.out.parts.len();
    w.walk(r, None, inner);
    let Some(part) = w.out.parts.get_mut(before) else { return };
    let Some(e) = &part.analysis.error else { return };
    if let crate::ErrorKind::Io(msg) = e.kind() {
        if !LimitHit::in_message(msg) && part.analysis.ops == 0 {
            let (at, error) = (e.offset(), msg.clone());
            part.analysis.error = None;
            w.note(&inner.member, at, Unreadable::CannotDecompress { error });
        }
    }
}

/// The zlib stream of a joblib < 0.10 ZF file (`read_zfile`): after `ZF`
/// and a 19-character hex length, and after one more space when there is
/// one (joblib 0.8.4 wrote it). `None` when the header is cut short.
pub(super) fn zf_body<'a, R: Read + 'a>(mut r: R) -> Option<Box<dyn Read + 'a>> {
    let mut header = [0u8; 22];
    let n = read_up_to(&mut r, &mut header).unwrap_or(0);
    if n < 21 {
        return None;
    }
    Some(if n == 22 && header[21] != b' ' { Box::new(io::Cursor::new(vec![header[21]]).chain(r)) } else { Box::new(r) })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
