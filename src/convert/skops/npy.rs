//! The `.npy` side of a `.skops` file: dtypes read back from the extraction
//! document's descriptors (docs/extract.md "dtypes"), 0-d `.npy` files for
//! numpy scalars and empty arrays for `numpy.dtype` values (how skops
//! stores both, shared/FORMATS.md §5.1) and `.npz` files for scipy sparse
//! matrices.

use std::io::{self, Read, Write};

use serde_json::Value as J;

use crate::extract::dtype::{npy_header, Dtype, Field};
use crate::limits::{MAX_DTYPE_DEPTH, MAX_DTYPE_FIELDS};

/// The dtype a document descriptor names (`"<f8"`, `"|O"`, a list of
/// `[name, descr]` / `[name, descr, shape]` fields with padding explicit).
/// `None` when it is not one.
pub fn dtype_from_json(descr: &J) -> Option<Dtype> {
    dtype_at(descr, 0)
}

fn dtype_at(descr: &J, depth: usize) -> Option<Dtype> {
    if depth > MAX_DTYPE_DEPTH {
        return None;
    }
    match descr {
        J::String(s) if s == "|O" => Some(Dtype::Object),
        J::String(s) => Some(Dtype::Plain { itemsize: plain_itemsize(s)?, descr: s.clone() }),
        J::Array(items) if items.len() <= MAX_DTYPE_FIELDS => {
            let mut fields = Vec::with_capacity(items.len());
            let mut offset = 0u64;
            for f in items {
                let parts = f.as_array()?;
                let (name, title) = match parts.first()? {
                    J::String(n) => (n.clone(), None),
                    J::Array(tn) => (tn.get(1)?.as_str()?.to_string(), Some(tn.first()?.as_str()?.to_string())),
                    _ => return None,
                };
                let dtype = dtype_at(parts.get(1)?, depth + 1)?;
                let shape: Vec<u64> = match parts.get(2) {
                    Some(J::Array(s)) => s.iter().map(J::as_u64).collect::<Option<_>>()?,
                    Some(_) => return None,
                    None => Vec::new(),
                };
                let n = shape.iter().try_fold(dtype.itemsize(), |a, &d| a.checked_mul(d))?;
                fields.push(Field { name, title, dtype, shape, offset });
                offset = offset.checked_add(n)?;
            }
            Some(Dtype::Struct { fields, itemsize: offset })
        }
        _ => None,
    }
}

/// Bytes per item of a plain descriptor: `<f8` 8, `<U3` 12, `<M8[ns]` 8,
/// `|S0`/`|V0` 0.
fn plain_itemsize(descr: &str) -> Option<u64> {
    let rest = descr.strip_prefix(['<', '>', '|', '='])?;
    let rest = rest.split('[').next()?;
    let (kind, digits) = crate::py::numpy::split_code(rest);
    if kind.len() != 1 || !"biufcmMOSUV".contains(kind) {
        return None;
    }
    crate::py::numpy::itemsize(kind, digits, None).ok()
}

/// The numpy scalar type skops names for a scalar of this plain descriptor
/// (`__class__` of its `NdArrayNode`): `float64`, `int64`, `bool`, `str_`.
pub fn scalar_class(descr: &str) -> Option<&'static str> {
    let code = descr.get(1..)?;
    Some(match code {
        "b1" => "bool",
        "i1" => "int8",
        "i2" => "int16",
        "i4" => "int32",
        "i8" => "int64",
        "u1" => "uint8",
        "u2" => "uint16",
        "u4" => "uint32",
        "u8" => "uint64",
        "f2" => "float16",
        "f4" => "float32",
        "f8" => "float64",
        "c8" => "complex64",
        "c16" => "complex128",
        _ if code.starts_with('U') => "str_",
        _ if code.starts_with('S') => "bytes_",
        _ => return None,
    })
}

/// The bytes of a scalar of plain descriptor `descr` whose value the
/// document gives as `value` (a number, a bool, a large `int` object,
/// a non-finite `float` object, `[re, im]` or `{"hex": ...}`).
pub fn scalar_bytes(descr: &str, value: &J) -> Option<Vec<u8>> {
    let big = descr.starts_with('>');
    let code = descr.get(1..)?;
    let mut out = match (code, value) {
        (_, J::Object(o)) if o.contains_key("hex") => return hex_decode(o.get("hex")?.as_str()?),
        ("b1", J::Bool(b)) => vec![u8::from(*b)],
        ("f4", v) => (float_of(v)? as f32).to_le_bytes().to_vec(),
        ("f8", v) => float_of(v)?.to_le_bytes().to_vec(),
        ("c8", J::Array(p)) if p.len() == 2 => {
            [(float_of(&p[0])? as f32).to_le_bytes(), (float_of(&p[1])? as f32).to_le_bytes()].concat()
        }
        ("c16", J::Array(p)) if p.len() == 2 => {
            [float_of(&p[0])?.to_le_bytes(), float_of(&p[1])?.to_le_bytes()].concat()
        }
        (c, v) if c.starts_with('i') || c.starts_with('u') => {
            let n: usize = c[1..].parse().ok()?;
            let wide: i128 = match v {
                J::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))?,
                J::Object(o) => o.get("value")?.as_str()?.parse().ok()?,
                _ => return None,
            };
            if !matches!(n, 1 | 2 | 4 | 8) {
                return None;
            }
            wide.to_le_bytes()[..n].to_vec()
        }
        _ => return None,
    };
    if big {
        if code.starts_with('c') {
            let half = out.len() / 2;
            out[..half].reverse();
            out[half..].reverse();
        } else {
            out.reverse();
        }
    }
    Some(out)
}

/// A float as the document writes it: a number, or `{"type": "float",
/// "value": "nan"|"inf"|"-inf"}`.
pub fn float_of(v: &J) -> Option<f64> {
    match v {
        J::Number(n) => n.as_f64(),
        J::Object(o) => match o.get("value")?.as_str()? {
            "nan" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Lower- or upper-case hex to bytes.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// A whole `.npy` file: header for `dtype`/`shape` (C order) and `data`.
pub fn npy_bytes(dtype: &Dtype, shape: &[u64], data: &[u8]) -> Vec<u8> {
    let mut out = npy_header(dtype, false, shape);
    out.extend_from_slice(data);
    out
}

/// Writes an `.npz` archive (stored members, as scipy's `save_npz` with
/// `compressed=False`) of `(key, .npy bytes source)` members.
pub fn write_npz(out: impl Write + io::Seek, members: Vec<(String, Box<dyn Read + '_>)>) -> io::Result<()> {
    let mut zip = zip::ZipWriter::new(out);
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (key, mut src) in members {
        zip.start_file(format!("{key}.npy"), opts.large_file(true)).map_err(io::Error::other)?;
        io::copy(&mut src, &mut zip)?;
    }
    zip.finish().map_err(io::Error::other)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn descriptors_back_to_dtypes() {
        assert_eq!(dtype_from_json(&json!("<f8")).map(|d| d.itemsize()), Some(8));
        assert_eq!(dtype_from_json(&json!("<U3")).map(|d| d.itemsize()), Some(12));
        assert_eq!(dtype_from_json(&json!("<M8[ns]")).map(|d| d.itemsize()), Some(8));
        let tree = json!([["left_child", "<i8"], ["threshold", "<f8"], ["m", "|u1"], ["", "|V7"]]);
        let d = dtype_from_json(&tree).expect("struct");
        assert_eq!(d.itemsize(), 24);
        assert_eq!(d.py_descr(), "[('left_child', '<i8'), ('threshold', '<f8'), ('m', '|u1'), ('', '|V7')]");
        assert_eq!(dtype_from_json(&json!("<x8")), None);
        assert_eq!(dtype_from_json(&json!([["a"]])), None);
    }

    #[test]
    fn scalars_to_bytes() {
        assert_eq!(scalar_bytes("<i8", &json!(-2)), Some((-2i64).to_le_bytes().to_vec()));
        assert_eq!(scalar_bytes("<u8", &json!({"type": "int", "value": "18446744073709551615"})), Some(vec![0xff; 8]));
        assert_eq!(scalar_bytes(">i4", &json!(1)), Some(vec![0, 0, 0, 1]));
        assert_eq!(scalar_bytes("<f4", &json!(0.1f32 as f64)), Some(0.1f32.to_le_bytes().to_vec()));
        assert_eq!(scalar_bytes("|b1", &json!(true)), Some(vec![1]));
        assert_eq!(scalar_bytes("<U1", &json!({"hex": "68000000"})), Some(vec![0x68, 0, 0, 0]));
        assert_eq!(scalar_bytes("<i3", &json!(1)), None);
        assert_eq!(scalar_class("<f8"), Some("float64"));
        assert_eq!(scalar_class("|b1"), Some("bool"));
    }
}
