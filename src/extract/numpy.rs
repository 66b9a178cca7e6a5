//! numpy arrays rebuilt from their pickled form (shared/FORMATS.md §2):
//! `_reconstruct(cls, (0,), b'b')` + `BUILD((version, shape, dtype,
//! is_fortran, data))` for protocols ≤ 4 (and the subclasses pickled the
//! same way: `numpy.matrix`, `numpy.recarray`, `numpy.memmap`, masked
//! arrays' data), `_frombuffer(buf, dtype, shape, order[, axis_order])` for
//! protocol 5, joblib's `NumpyArrayWrapper`, object arrays (their items are
//! pickled values), scalars (`scalar(dtype, raw_bytes)`) and `numpy.dtype`
//! values. Numeric data is written to an `.npy` file named after the
//! attribute path; the node in the document names it.

use std::io::{self, Read};

use serde_json::{json, Value as J};

use super::dtype::{npy_header, Dtype, Reader};
use super::emit::{path_name, Data};
use super::error::ArrayError;
use super::json::{float_json, hex, int_json};
use super::layout::Reorder;
use super::{Emitter, Seg};
use crate::limits::{MAX_EXTRACT_NODES, MAX_GATHER_BYTES};
use crate::vm::{Blob, BlobView, Graph, Value, ValueId};

/// The layout of an array written to an `.npy` file.
pub(super) struct Spec {
    pub(super) dtype: Dtype,
    pub(super) shape: Vec<u64>,
    pub(super) fortran: bool,
}

impl Emitter<'_, '_> {
    /// A `numpy.dtype` value: `{"type": "dtype", "descr": ...}`.
    pub(super) fn dtype_value(&self, id: ValueId) -> Result<J, ArrayError> {
        let d = Reader { g: &self.graph() }.dtype(id)?;
        Ok(json!({"type": "dtype", "descr": d.json_descr()}))
    }

    /// `_reconstruct(cls, (0,), b'b')` + `BUILD((version, shape, dtype, is_fortran, data))`.
    pub(super) fn reconstruct(&mut self, id: ValueId, args: ValueId, path: &mut Vec<Seg>) -> Result<J, ArrayError> {
        let class = self.tuple_items(args).first().and_then(|c| self.global_name(*c)).unwrap_or("numpy.ndarray".into());
        let state = self.states.get(&id).and_then(|s| s.last().copied()).ok_or(ArrayError::NoState)?;
        let (shape, dt, fort, data) = match self.tuple_items(state) {
            [_, s, d, f, x] | [s, d, f, x] => (*s, *d, *f, *x),
            _ => return Err(ArrayError::StateNotTuple),
        };
        let g = self.graph();
        let r = Reader { g: &g };
        let shape = r.shape(shape)?;
        let dtype = r.dtype(dt)?;
        let fortran = self.a.int_or_bool(fort).unwrap_or(0) != 0;
        self.set_state(&class, Spec { dtype, shape, fortran }, data, path)
    }

    /// What numpy's `ndarray.__setstate__((shape, dtype, is_fortran,
    /// data))` makes: an object array of the pickled list, or the data
    /// written as an `.npy` file (a big-endian plain array in native order).
    pub(super) fn set_state(
        &mut self,
        class: &str,
        spec: Spec,
        data: ValueId,
        path: &mut Vec<Seg>,
    ) -> Result<J, ArrayError> {
        let Spec { dtype, shape, fortran } = spec;
        if dtype.is_object() {
            return self.object_array(class, shape, data, path);
        }
        let data = self.data_of(data)?;
        // numpy's array_setstate byte-swaps a non-native array to native
        // order on load (`_frombuffer` and joblib keep the stored order):
        // written as `pickle.load` gives it on a little-endian machine.
        match native_order(&dtype, &shape)? {
            Some((native, unit)) => {
                let spec = Spec { dtype: native, shape, fortran };
                self.write_array(class, spec, data, Some(Reorder::Swap(unit)), path)
            }
            None => self.write_array(class, Spec { dtype, shape, fortran }, data, None, path),
        }
    }

    /// `_frombuffer(buf, dtype, shape, order[, axis_order])` (protocol 5).
    pub(super) fn frombuffer(&mut self, args: ValueId, path: &mut [Seg]) -> Result<J, ArrayError> {
        let (buf, dt, shape, order, axes) = match self.tuple_items(args) {
            [b, d, s, o] => (*b, *d, *s, *o, None),
            [b, d, s, o, a] => (*b, *d, *s, *o, Some(*a)),
            _ => return Err(ArrayError::FrombufferArity),
        };
        let g = self.graph();
        let r = Reader { g: &g };
        let dtype = r.dtype(dt)?;
        let shape = r.shape(shape)?;
        let order = self.a.str_or_latin1(order).unwrap_or_default();
        let axes = match axes.filter(|a| !matches!(self.v(*a), Value::None)) {
            Some(a) => Some(r.shape(a).map_err(ArrayError::AxisOrder)?.into_iter().map(|x| x as usize).collect()),
            None => None,
        };
        if matches!(self.v(buf), Value::Buffer { .. }) {
            return Ok(
                json!({"type": "ndarray", "class": "numpy.ndarray", "dtype": dtype.json_descr(), "shape": shape,
                             "data": {"type": "external_buffer"}}),
            );
        }
        let data = self.data_of(buf)?;
        let (shape, fortran, reorder) = buffer_layout(&order, axes, shape, dtype.itemsize())?;
        self.write_array("numpy.ndarray", Spec { dtype, shape, fortran }, data, reorder, path)
    }

    /// `scalar(dtype, raw_bytes)`.
    pub(super) fn scalar(&mut self, args: ValueId) -> Result<J, ArrayError> {
        let (dt, raw) = match self.tuple_items(args) {
            [d, r] => (*d, *r),
            [d] => {
                return Ok(
                    json!({"type": "scalar", "dtype": Reader { g: &self.graph() }.dtype(*d).map(|d| d.json_descr()).unwrap_or(J::Null), "value": null}),
                )
            }
            _ => return Err(ArrayError::ScalarArity),
        };
        let dtype = (Reader { g: &self.graph() }).dtype(dt)?;
        let bytes = match self.data_of(raw)? {
            Data::Mem(b) => b,
            Data::Spill { .. } => return Err(ArrayError::ScalarTooLong),
        };
        if bytes.len() as u64 != dtype.itemsize() {
            return Err(ArrayError::ScalarSize { dtype, len: bytes.len() });
        }
        Ok(json!({"type": "scalar", "dtype": dtype.json_descr(), "value": scalar_value(&dtype, &bytes)}))
    }

    /// A joblib `NumpyArrayWrapper`: the payload written during the scan.
    pub(super) fn wrapper(&mut self, id: ValueId, path: &mut Vec<Seg>) -> Result<J, ArrayError> {
        if let Some(Some(root)) = self.nested.get(&id).copied() {
            // Object dtype: the nested pickle builds the array.
            return Ok(self.value(root, path));
        }
        let class = {
            let g = self.graph();
            let r = Reader { g: &g };
            g.state(id)
                .and_then(|s| match self.v(s) {
                    Value::Dict(r) => self
                        .a
                        .dict(*r)
                        .iter()
                        .find(|(k, _)| self.a.str_or_latin1(*k).as_deref() == Some("subclass"))
                        .map(|(_, v)| *v),
                    _ => None,
                })
                .and_then(|c| r.global_of(c))
                .unwrap_or_else(|| "numpy.ndarray".into())
        };
        let payload = self.ex.store.borrow().payloads.get(&(self.part, id)).cloned();
        let p = match payload {
            Some(Ok(p)) => p,
            Some(Err(e)) => return Err(ArrayError::Payload(e)),
            None => return Err(ArrayError::PayloadNotRead),
        };
        // In a dry run nothing was written and `claim` only names it.
        let file = self.ex.store.borrow_mut().claim(&p.tmp, "arrays", &path_name(path), "npy");
        let file = file.map_err(ArrayError::Write)?;
        let spec = Spec { dtype: p.dtype, shape: p.shape, fortran: p.fortran };
        Ok(self.array_node(&class, spec, p.nbytes, file, path))
    }

    /// The bytes behind an array's data value: in memory, or a spilled file.
    pub(super) fn data_of(&self, id: ValueId) -> Result<Data, ArrayError> {
        match self.v(id) {
            Value::Bytes(b) | Value::ByteArray(b) => match &**b {
                Blob::Full(b) => Ok(Data::Mem(b.to_vec())),
                Blob::Part(p) => self.spill(p.offset, p.len, false),
            },
            Value::Str(r) => match self.a.str(*r) {
                // Python 2 pickles: a latin-1 str.
                BlobView::Full(s) => crate::py::latin1::encode(s).map(Data::Mem).ok_or(ArrayError::TextBeyondLatin1),
                BlobView::Part(_) => Err(ArrayError::LongStr),
            },
            Value::Call(c) if self.global_name(c.func).as_deref() == Some("_codecs.encode") => {
                if let Some(b) = self.latin1_bytes(id) {
                    return Ok(Data::Mem(b));
                }
                match self.tuple_items(c.args) {
                    [t, _] => match self.v(*t) {
                        Value::Str(r) => match self.a.str(*r) {
                            BlobView::Part(p) => self.spill(p.offset, p.len, true),
                            BlobView::Full(_) => Err(ArrayError::CodecsNotLatin1),
                        },
                        _ => Err(ArrayError::CodecsNotLatin1),
                    },
                    _ => Err(ArrayError::CodecsArity),
                }
            }
            // Protocol ≤ 2 writes empty bytes as `bytes()`.
            Value::Call(c)
                if self.global_name(c.func).as_deref() == Some("builtins.bytes")
                    && self.a.tuple(c.args).is_some_and(|t| t.is_empty()) =>
            {
                Ok(Data::Mem(Vec::new()))
            }
            Value::Buffer { .. } => Err(ArrayError::OutOfBand),
            _ => Err(ArrayError::NotBytes),
        }
    }

    fn spill(&self, offset: u64, len: u64, latin1: bool) -> Result<Data, ArrayError> {
        match self.ex.store.borrow().spills.get(&(self.part, offset)) {
            Some(s) => Ok(Data::Spill { spill: s.clone(), latin1 }),
            None => Err(ArrayError::NotKept(len)),
        }
    }

    /// Writes an `.npy` file for an array whose data is a value of the pickle.
    pub(super) fn write_array(
        &mut self,
        class: &str,
        spec: Spec,
        data: Data,
        reorder: Option<Reorder>,
        path: &[Seg],
    ) -> Result<J, ArrayError> {
        let Spec { dtype, shape, fortran } = &spec;
        let nbytes =
            shape.iter().try_fold(dtype.itemsize(), |a, &d| a.checked_mul(d)).ok_or(ArrayError::SizeOverflows)?;
        let mismatch =
            |have: u64| ArrayError::SizeMismatch { shape: shape.clone(), dtype: dtype.clone(), nbytes, have };
        if let Some(have) = data.len().filter(|h| *h != nbytes) {
            return Err(mismatch(have));
        }
        let header = npy_header(dtype, *fortran, shape);
        let store = self.ex.store.clone();
        let mut src = data.open(&store.borrow()).map_err(ArrayError::ReadData)?;
        let written = store.borrow_mut().write_new("arrays", &path_name(path), "npy", |w| {
            w.write_all(&header)?;
            match &reorder {
                Some(how) => {
                    let mut all = Vec::new();
                    (&mut src).take(nbytes + 1).read_to_end(&mut all)?;
                    if all.len() as u64 != nbytes {
                        return Err(io::Error::other(mismatch(all.len() as u64)));
                    }
                    w.write_all(&how.apply(all, shape, dtype.itemsize() as usize))
                }
                None => {
                    // Latin-1 text's length is only known once decoded.
                    let n = io::copy(&mut (&mut src).take(nbytes + 1), w)?;
                    if n != nbytes {
                        return Err(io::Error::other(mismatch(n)));
                    }
                    Ok(())
                }
            }
        });
        let file = written.map_err(ArrayError::Write)?;
        Ok(self.array_node(class, spec, nbytes, file, path))
    }

    /// Records an array written to `file` and returns its `ndarray` node.
    pub(super) fn array_node(&mut self, class: &str, spec: Spec, nbytes: u64, file: String, path: &[Seg]) -> J {
        let Spec { dtype, shape, fortran } = spec;
        let descr = dtype.json_descr();
        self.record_array(file.clone(), path, descr.clone(), shape.clone(), fortran, nbytes);
        json!({"type": "ndarray", "class": class, "dtype": descr, "shape": shape,
               "order": if fortran { "F" } else { "C" }, "file": file})
    }

    /// An object array: the pickled list, nested by shape (C order).
    fn object_array(
        &mut self,
        class: &str,
        shape: Vec<u64>,
        items: ValueId,
        path: &mut Vec<Seg>,
    ) -> Result<J, ArrayError> {
        let Value::List(list) = self.v(items) else { return Err(ArrayError::ObjectNotList) };
        let count: Option<u64> = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        if count != Some(list.len() as u64) {
            return Err(ArrayError::ObjectCount { shape, items: list.len() });
        }
        // An empty array still nests one list per index before its first 0
        // axis: (10**18, 0) would be 10**18 lists.
        let outer = shape.iter().take_while(|&&d| d != 0).try_fold(1u64, |a, &d| a.checked_mul(d));
        match outer.and_then(|n| usize::try_from(n).ok()).and_then(|n| n.checked_add(self.ex.nodes)) {
            Some(total) if total <= MAX_EXTRACT_NODES => self.ex.nodes = total,
            _ => return Err(ArrayError::ObjectTooMany { shape }),
        }
        // Each item's path is its index in the array (`a[i, j]` → i, j).
        let mut flat = Vec::with_capacity(list.len());
        let mut idx = vec![0u64; shape.len()];
        for &it in list.iter() {
            let depth = path.len();
            path.extend(idx.iter().map(|i| json!(i)));
            flat.push(self.value(it, path));
            path.truncate(depth);
            for d in (0..shape.len()).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        let nested = nest(flat, &shape);
        Ok(super::json::node([
            ("type", json!("ndarray")),
            ("class", json!(class)),
            ("dtype", json!("|O")),
            ("shape", json!(shape)),
            ("items", nested),
        ]))
    }
}

/// For a big-endian plain dtype, the little-endian one `_reconstruct`
/// arrays load as and the byte unit to swap (half an item for complex
/// numbers, 4 bytes for `U`); `None` for any other dtype.
pub(super) fn native_order(dtype: &Dtype, shape: &[u64]) -> Result<Option<(Dtype, usize)>, ArrayError> {
    let Dtype::Plain { descr, itemsize } = dtype else { return Ok(None) };
    let Some(rest) = descr.strip_prefix('>') else { return Ok(None) };
    let unit = match rest.as_bytes().first() {
        Some(b'c') => itemsize / 2,
        Some(b'U') => 4,
        _ => *itemsize,
    };
    let native = Dtype::Plain { descr: format!("<{rest}"), itemsize: *itemsize };
    let bytes = shape.iter().try_fold(*itemsize, |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX);
    if bytes > MAX_GATHER_BYTES {
        return Err(ArrayError::SwapTooBig);
    }
    Ok(Some((native, unit as usize)))
}

/// The shape, Fortran flag and reordering a `_frombuffer` array is written
/// with. Its data is C-ordered (`order` `C` or `K`) or Fortran-ordered
/// (`F`); with an `axis_order` `p` it is `reshape(shape, 'C').transpose(p)`,
/// which is C data again for the identity, Fortran data for the reversal,
/// and is reordered in memory otherwise.
fn buffer_layout(
    order: &str,
    axes: Option<Vec<usize>>,
    shape: Vec<u64>,
    itemsize: u64,
) -> Result<(Vec<u64>, bool, Option<Reorder>), ArrayError> {
    match (order, axes) {
        ("C", None) | ("K", None) => Ok((shape, false, None)),
        ("F", None) => Ok((shape, true, None)),
        ("K", Some(p)) => {
            // reshape(shape, 'C').transpose(p): shape[i] of the result is shape[p[i]].
            let mut seen = vec![false; shape.len()];
            if p.len() != shape.len() || p.iter().any(|&x| x >= seen.len() || std::mem::replace(&mut seen[x], true)) {
                return Err(ArrayError::AxisNotPermutation);
            }
            let out: Vec<u64> = p.iter().map(|&i| shape[i]).collect();
            let identity = p.iter().enumerate().all(|(i, &x)| i == x);
            let reversed = p.iter().enumerate().all(|(i, &x)| x == p.len() - 1 - i);
            if identity {
                Ok((out, false, None))
            } else if reversed {
                Ok((out, true, None))
            } else {
                let bytes = out.iter().try_fold(itemsize, |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX);
                if bytes > MAX_GATHER_BYTES {
                    return Err(ArrayError::ReorderTooBig);
                }
                Ok((out, false, Some(Reorder::Permute(p))))
            }
        }
        (o, _) => Err(ArrayError::FrombufferOrder(o.to_string())),
    }
}

/// Nested lists by shape (C order).
fn nest(flat: Vec<J>, shape: &[u64]) -> J {
    if shape.len() <= 1 {
        return if shape.is_empty() { flat.into_iter().next().unwrap_or(J::Null) } else { J::Array(flat) };
    }
    let inner: u64 = shape[1..].iter().product();
    if inner == 0 {
        return J::Array((0..shape[0]).map(|_| nest(Vec::new(), &shape[1..])).collect());
    }
    let mut out = Vec::new();
    let mut it = flat.into_iter();
    for _ in 0..shape[0] {
        let chunk: Vec<J> = it.by_ref().take(inner as usize).collect();
        out.push(nest(chunk, &shape[1..]));
    }
    J::Array(out)
}

/// A numpy scalar's value from its raw bytes.
fn scalar_value(dtype: &Dtype, b: &[u8]) -> J {
    let Dtype::Plain { descr, .. } = dtype else { return json!({"hex": hex(b)}) };
    let big = descr.starts_with('>');
    let mut le = b.to_vec();
    if big {
        le.reverse();
    }
    let kind = descr[1..].chars().next().unwrap_or('?');
    let n = le.len();
    let uint = || le.iter().rev().fold(0u128, |a, &x| (a << 8) | x as u128);
    match (kind, n) {
        ('b', 1) => json!(b[0] != 0),
        ('u', 1 | 2 | 4 | 8) => {
            let v = uint() as u64;
            if v <= 1 << 53 {
                json!(v)
            } else {
                json!({"type": "int", "value": v.to_string()})
            }
        }
        ('i', 1 | 2 | 4 | 8) => {
            let v = uint();
            let shift = 128 - 8 * n as u32;
            int_json(((v << shift) as i128 >> shift) as i64)
        }
        ('f', 2) => float_json(f16_to_f64(u16::from_le_bytes([le[0], le[1]]))),
        ('f', 4) => float_json(f32::from_le_bytes(le[..4].try_into().expect("4 bytes")) as f64),
        ('f', 8) => float_json(f64::from_le_bytes(le[..8].try_into().expect("8 bytes"))),
        ('c', 8 | 16) => {
            let half = n / 2;
            let (mut re, mut im) = (b[..half].to_vec(), b[half..].to_vec());
            if big {
                re.reverse();
                im.reverse();
            }
            let f = |x: &[u8]| {
                if x.len() == 4 {
                    f32::from_le_bytes(x.try_into().expect("4")) as f64
                } else {
                    f64::from_le_bytes(x.try_into().expect("8"))
                }
            };
            json!([float_json(f(&re)), float_json(f(&im))])
        }
        _ => json!({"hex": hex(b)}),
    }
}

/// An IEEE 754 half-precision float's value.
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 => {
            if frac == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            }
        }
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::extract::error::{DtypeError, ExtractError, PayloadError};
    use crate::extract::testkit::{extract, fixture, npy, Scratch};

    fn i16s(v: &[i16]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
    fn i32s(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
    fn f64s(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// The `.npy` data of the array node `node`, after checking that its
    /// header says `descr`, `fortran` and `shape` as numpy would.
    fn data_of(out: &Scratch, node: &J, descr: &str, fortran: bool, shape: &str) -> Vec<u8> {
        let (header, data) = npy(out, node["file"].as_str().expect("a file"));
        let want = format!(
            "{{'descr': {descr}, 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        assert!(header.starts_with(&want), "{header} is not {want}");
        data
    }

    /// fixtures/extract/numpy_dict.*.pkl (scripts/fixtures_extract.py): one
    /// dict of arrays written by numpy itself, through `_codecs.encode`
    /// latin-1 text (protocol 2), `_reconstruct` + BUILD bytes (4) and
    /// `_frombuffer` (5). The expected bytes are numpy's documented layout
    /// of the values the generator stored.
    #[test]
    fn every_protocol_gives_numpys_layout() {
        for proto in ["p2", "p4", "p5"] {
            let (ex, out) = extract(&fixture(&format!("extract/numpy_dict.{proto}.pkl")), &format!("dict-{proto}"));
            assert!(ex.errors.is_empty(), "{proto}: {:?}", ex.errors);
            let items = &ex.doc["pickles"][0]["root"]["items"];
            let int16 = data_of(&out, &items["int16"], "'<i2'", false, "(4,)");
            assert_eq!(int16, i16s(&[-32768, 0, 1, 32767]), "{proto}");
            // arange(12).reshape(3, 4) in Fortran order: column by column.
            let f = data_of(&out, &items["fortran_2d"], "'<i2'", true, "(3, 4)");
            assert_eq!(f, i16s(&[0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]), "{proto}");
            assert_eq!(items["fortran_2d"]["order"], "F");
            // arange(24).reshape(2, 3, 4).transpose(1, 0, 2): [i, j, k] = 4i + 12j + k, in C order.
            let t = data_of(&out, &items["transposed_3d"], "'<i4'", false, "(3, 2, 4)");
            let want: Vec<i32> =
                (0..3).flat_map(|i| (0..2).flat_map(move |j| (0..4).map(move |k| 4 * i + 12 * j + k))).collect();
            assert_eq!(t, i32s(&want), "{proto}");
            assert_eq!(data_of(&out, &items["strided"], "'<f8'", false, "(4,)"), f64s(&[0.0, 3.0, 6.0, 9.0]));
            assert_eq!(data_of(&out, &items["zero_d"], "'<f8'", false, "()"), f64s(&[42.5]));
            assert_eq!(data_of(&out, &items["empty_0x3"], "'<i4'", false, "(0, 3)"), Vec::<u8>::new());
            let c = data_of(&out, &items["complex64"], "'<c8'", false, "(2,)");
            assert_eq!(c, f32s(&[1.0, 2.0, -0.0, -0.5]));
            // float16 0.5, -1.5, inf, 65504.
            let h = data_of(&out, &items["float16"], "'<f2'", false, "(4,)");
            assert_eq!(h, [0x3800u16, 0xBE00, 0x7C00, 0x7BFF].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
            // '<U3': UTF-32LE code points, NUL-padded.
            let u = data_of(&out, &items["str_U3"], "'<U3'", false, "(3,)");
            let want: Vec<u8> = ["x\0\0", "hé\0", "中文!"]
                .iter()
                .flat_map(|s| s.chars())
                .flat_map(|c| (c as u32).to_le_bytes())
                .collect();
            assert_eq!(u, want);
            big_endian(&out, items, proto == "p5");
            subclasses(&out, items);
            object_arrays_and_sharing(&out, items);
        }
    }

    /// `_reconstruct` arrays load in native order (numpy swaps them);
    /// `_frombuffer` keeps the stored `>`.
    fn big_endian(out: &Scratch, items: &J, frombuffer: bool) {
        let (i4, f8) = if frombuffer { ("'>i4'", "'>f8'") } else { ("'<i4'", "'<f8'") };
        let data = data_of(out, &items["be_i4"], i4, false, "(3,)");
        let want = [1i32, -2, 16909060];
        let got: Vec<i32> = data
            .chunks(4)
            .map(|c| {
                let b: [u8; 4] = c.try_into().unwrap();
                if frombuffer {
                    i32::from_be_bytes(b)
                } else {
                    i32::from_le_bytes(b)
                }
            })
            .collect();
        assert_eq!(got, want);
        let data = data_of(out, &items["be_f8"], f8, false, "(2, 2)");
        let got: Vec<f64> = data
            .chunks(8)
            .map(|c| {
                let b: [u8; 8] = c.try_into().unwrap();
                if frombuffer {
                    f64::from_be_bytes(b)
                } else {
                    f64::from_le_bytes(b)
                }
            })
            .collect();
        assert_eq!(got.len(), 4);
        assert_eq!((got[0], got[1], got[3]), (1.5, -2.0, 0.0));
        assert!((got[2] - std::f64::consts::PI).abs() < 1e-8);
    }

    /// `numpy.matrix` and `numpy.recarray` are `_reconstruct`ed with their
    /// own class; a recarray's dtype is made from `numpy.record`.
    fn subclasses(out: &Scratch, items: &J) {
        assert_eq!(items["matrix"]["class"], "numpy.matrix");
        assert_eq!(data_of(out, &items["matrix"], "'<f8'", false, "(2, 2)"), f64s(&[1.0, 2.0, 3.0, 4.0]));
        let rec = &items["recarray"];
        assert_eq!(rec["class"], "numpy.rec.recarray");
        assert_eq!(rec["dtype"], json!([["id", "<i8"], ["w", "<f8"], ["tag", "|S2"]]));
        let data = data_of(out, rec, "[('id', '<i8'), ('w', '<f8'), ('tag', '|S2')]", false, "(2,)");
        let mut want = Vec::new();
        for (id, w, tag) in [(1i64, 2.5f64, b"r1"), (2, -0.5, b"r2")] {
            want.extend(id.to_le_bytes());
            want.extend(w.to_le_bytes());
            want.extend(tag);
        }
        assert_eq!(data, want);
        // Titles and padding as numpy's descr writes them (offsets 0 and 8, itemsize 32).
        let s = &items["struct_titled_padded"]["dtype"];
        assert_eq!(s, &json!([[["T", "a"], "<i4"], ["", "|V4"], ["b", "<f8", [2]], ["", "|V8"]]));
    }

    /// Object arrays are nested lists of values; the arrays inside are named
    /// by their index; a value met twice is written once.
    fn object_arrays_and_sharing(out: &Scratch, items: &J) {
        let o = &items["object_1d"];
        assert_eq!((o["dtype"].as_str(), &o["shape"]), (Some("|O"), &json!([5])));
        assert_eq!(o["items"].as_array().expect("items")[0..3], [json!(1), json!("abc"), J::Null]);
        assert_eq!(o["items"][3]["file"], "arrays/object_1d.3.npy");
        let inner = data_of(out, &o["items"][3], "'<i8'", false, "(3,)");
        assert_eq!(inner, [0i64, 1, 2].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
        let k = &o["items"][4]["items"]["k"];
        assert_eq!(data_of(out, k, "'<f4'", false, "(2,)"), f32s(&[1.5, 2.5]));
        let o2 = &items["object_2d"];
        assert_eq!(o2["items"][0][0], 1.5);
        assert_eq!(o2["items"][1][0], json!([3]));
        assert_eq!(o2["items"][1][1], json!({"type": "scalar", "dtype": "<f8", "value": 4.0}));
        let id = items["float64"]["id"].as_u64().expect("float64 is shared");
        assert_eq!(items["shared_a"], json!({"type": "ref", "id": id}));
    }

    #[test]
    fn scalars_decode_by_dtype() {
        // [int64(5), uint8(255), float64(2.5), float32(1.25), float16(-0.5),
        //  True, complex128(1-1j), str_('hi'), bytes_(b'by'),
        //  datetime64('2024-01-01'), timedelta64(3, 'h')]
        for proto in ["p2", "p4", "p5"] {
            let (ex, _out) = extract(&fixture(&format!("benign/numpy_scalars_{proto}.pkl")), &format!("sc-{proto}"));
            let values: Vec<(&J, &J)> = ex.doc["pickles"][0]["root"]
                .as_array()
                .expect("a list")
                .iter()
                .map(|s| (&s["dtype"], &s["value"]))
                .collect();
            let want = [
                (json!("<i8"), json!(5)),
                (json!("|u1"), json!(255)),
                (json!("<f8"), json!(2.5)),
                (json!("<f4"), json!(1.25)),
                (json!("<f2"), json!(-0.5)),
                (json!("|b1"), json!(true)),
                (json!("<c16"), json!([1.0, -1.0])),
                (json!("<U2"), json!({"hex": "6800000069000000"})),
                (json!("|S2"), json!({"hex": "6279"})),
                // 2024-01-01 is day 19723 (0x4d0b) of the epoch.
                (json!("<M8[D]"), json!({"hex": "0b4d000000000000"})),
                (json!("<m8[h]"), json!({"hex": "0300000000000000"})),
            ];
            let want: Vec<(&J, &J)> = want.iter().map(|(d, v)| (d, v)).collect();
            assert_eq!(values, want, "{proto}");
        }
    }

    fn only_error(file: &str) -> ExtractError {
        let (ex, out) = extract(&fixture(&format!("extract_bad/{file}")), file);
        let mut errors = ex.errors;
        assert_eq!(errors.len(), 1, "{file}: {errors:?}");
        drop(out);
        errors.pop().expect("one").error
    }

    #[test]
    fn a_bad_array_is_its_own_kind_of_error() {
        // scripts/fixtures_extract_bad.py: 'f8' (4, 5) over the 24 bytes of a good array.
        match only_error("shape_mismatch.pkl") {
            ExtractError::Array(ArrayError::SizeMismatch { shape, nbytes: 160, have: 24, .. }) => {
                assert_eq!(shape, [4, 5])
            }
            e => panic!("{e:?}"),
        }
        match only_error("impossible_dtype.pkl") {
            ExtractError::Array(ArrayError::Dtype(DtypeError::Impossible(code))) => assert_eq!(code, "f3"),
            e => panic!("{e:?}"),
        }
        match only_error("empty_object_huge.pkl") {
            ExtractError::Array(ArrayError::ObjectTooMany { shape }) => assert_eq!(shape, [1_000_000_000_000, 0]),
            e => panic!("{e:?}"),
        }
        // joblib's own reader takes the wrapper; the payload is skipped.
        match only_error("wrapper_bad_dtype.joblib") {
            ExtractError::Array(ArrayError::Payload(PayloadError::Dtype(DtypeError::Impossible(code)))) => {
                assert_eq!(code, "f3")
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn big_endian_items_swap_by_their_unit() {
        let plain = |descr: &str, itemsize| Dtype::Plain { descr: descr.into(), itemsize };
        assert_eq!(native_order(&plain(">i4", 4), &[3]).unwrap(), Some((plain("<i4", 4), 4)));
        // Complex: each half; 'U': each code point.
        assert_eq!(native_order(&plain(">c16", 16), &[3]).unwrap(), Some((plain("<c16", 16), 8)));
        assert_eq!(native_order(&plain(">U3", 12), &[3]).unwrap(), Some((plain("<U3", 12), 4)));
        assert_eq!(native_order(&plain("<f8", 8), &[3]).unwrap(), None);
        assert_eq!(native_order(&plain("|b1", 1), &[3]).unwrap(), None);
        assert!(matches!(native_order(&plain(">f8", 8), &[1 << 27, 2]), Err(ArrayError::SwapTooBig)));
        assert!(matches!(native_order(&plain(">f8", 8), &[u64::MAX, 2]), Err(ArrayError::SwapTooBig)));
    }

    #[test]
    fn axis_order_chooses_c_fortran_or_a_permutation() {
        assert_eq!(buffer_layout("C", None, vec![2, 3], 8).unwrap(), (vec![2, 3], false, None));
        assert_eq!(buffer_layout("K", None, vec![2, 3], 8).unwrap(), (vec![2, 3], false, None));
        assert_eq!(buffer_layout("F", None, vec![2, 3], 8).unwrap(), (vec![2, 3], true, None));
        // shape is the C-ordered data's; the array is its transpose by p.
        assert_eq!(buffer_layout("K", Some(vec![0, 1]), vec![2, 3], 8).unwrap(), (vec![2, 3], false, None));
        assert_eq!(buffer_layout("K", Some(vec![1, 0]), vec![2, 3], 8).unwrap(), (vec![3, 2], true, None));
        let (shape, fortran, reorder) = buffer_layout("K", Some(vec![1, 0, 2]), vec![2, 3, 4], 4).unwrap();
        assert_eq!((shape, fortran, reorder), (vec![3, 2, 4], false, Some(Reorder::Permute(vec![1, 0, 2]))));
        for bad in [vec![0, 0], vec![0, 2], vec![0]] {
            let e = buffer_layout("K", Some(bad.clone()), vec![2, 3], 8).unwrap_err();
            assert!(matches!(e, ArrayError::AxisNotPermutation), "{bad:?}: {e:?}");
        }
        assert!(matches!(buffer_layout("X", None, vec![2], 8), Err(ArrayError::FrombufferOrder(o)) if o == "X"));
        assert!(
            matches!(buffer_layout("C", Some(vec![0]), vec![2], 8), Err(ArrayError::FrombufferOrder(o)) if o == "C")
        );
        let e = buffer_layout("K", Some(vec![1, 0, 2]), vec![1 << 20, 1 << 10, 2], 1).unwrap_err();
        assert!(matches!(e, ArrayError::ReorderTooBig));
    }

    #[test]
    fn object_items_nest_by_shape_in_c_order() {
        let flat = |n: i64| (0..n).map(|i| json!(i)).collect::<Vec<_>>();
        assert_eq!(nest(flat(6), &[2, 3]), json!([[0, 1, 2], [3, 4, 5]]));
        assert_eq!(nest(flat(6), &[3, 1, 2]), json!([[[0, 1]], [[2, 3]], [[4, 5]]]));
        assert_eq!(nest(flat(1), &[]), json!(0));
        // An empty array still nests a list per index before its 0 axis.
        assert_eq!(nest(Vec::new(), &[2, 0, 3]), json!([[], []]));
    }

    #[test]
    fn scalar_bytes_decode_by_kind_and_order() {
        let plain = |descr: &str| Dtype::Plain { descr: descr.into(), itemsize: 0 };
        assert_eq!(scalar_value(&plain(">i2"), &[0xff, 0xfe]), json!(-2));
        assert_eq!(
            scalar_value(&plain("<i8"), &i64::MIN.to_le_bytes()),
            json!({"type": "int", "value": i64::MIN.to_string()})
        );
        assert_eq!(
            scalar_value(&plain("<u8"), &u64::MAX.to_le_bytes()),
            json!({"type": "int", "value": u64::MAX.to_string()})
        );
        assert_eq!(scalar_value(&plain("<u2"), &[0x34, 0x12]), json!(0x1234));
        assert_eq!(scalar_value(&plain(">f4"), &1.25f32.to_be_bytes()), json!(1.25));
        assert_eq!(scalar_value(&plain("<f8"), &f64::NAN.to_le_bytes()), json!({"type": "float", "value": "nan"}));
        assert_eq!(scalar_value(&plain(">c8"), &[0x3f, 0x80, 0, 0, 0xc0, 0, 0, 0]), json!([1.0, -2.0]));
        assert_eq!(scalar_value(&plain("|b1"), &[2]), json!(true));
        assert_eq!(scalar_value(&plain("|S2"), b"by"), json!({"hex": "6279"}));
        // IEEE half precision: 1.0, the smallest subnormal, -inf, a NaN, 65504.
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(f16_to_f64(0xfc00), f64::NEG_INFINITY);
        assert!(f16_to_f64(0x7e00).is_nan());
        assert_eq!(f16_to_f64(0x7bff), 65504.0);
    }
}
