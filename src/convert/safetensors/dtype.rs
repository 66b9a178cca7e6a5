//! numpy descriptors (as `extract` records them, docs/extract.md "dtypes")
//! mapped to safetensors dtypes, and what cannot be mapped, with why.
//!
//! safetensors has little-endian integers, floats, `BOOL`, `BF16`, the
//! float8 types and `C64` (complex64); no strings, objects, datetimes,
//! complex128 or long doubles. A big-endian array is swapped on the way
//! (per item; per half for complex numbers).

use serde_json::Value as J;

use crate::limits::{MAX_DTYPE_DEPTH, MAX_DTYPE_FIELDS};

/// A safetensors dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum St {
    /// bool, one byte.
    Bool,
    /// uint8.
    U8,
    /// int8.
    I8,
    /// int16.
    I16,
    /// uint16.
    U16,
    /// float16.
    F16,
    /// bfloat16.
    Bf16,
    /// int32.
    I32,
    /// uint32.
    U32,
    /// float32.
    F32,
    /// float64.
    F64,
    /// int64.
    I64,
    /// uint64.
    U64,
    /// float8 e4m3 (torch `float8_e4m3fn`).
    F8E4m3,
    /// float8 e5m2.
    F8E5m2,
    /// complex64.
    C64,
}

impl St {
    /// The name in the header.
    pub fn name(self) -> &'static str {
        match self {
            St::Bool => "BOOL",
            St::U8 => "U8",
            St::I8 => "I8",
            St::I16 => "I16",
            St::U16 => "U16",
            St::F16 => "F16",
            St::Bf16 => "BF16",
            St::I32 => "I32",
            St::U32 => "U32",
            St::F32 => "F32",
            St::F64 => "F64",
            St::I64 => "I64",
            St::U64 => "U64",
            St::F8E4m3 => "F8_E4M3",
            St::F8E5m2 => "F8_E5M2",
            St::C64 => "C64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            St::Bool | St::U8 | St::I8 | St::F8E4m3 | St::F8E5m2 => 1,
            St::I16 | St::U16 | St::F16 | St::Bf16 => 2,
            St::I32 | St::U32 | St::F32 => 4,
            St::F64 | St::I64 | St::U64 | St::C64 => 8,
        }
    }

    /// Bytes that reverse when swapping the byte order (0: nothing to swap).
    fn swap_unit(self) -> usize {
        match self {
            St::C64 => 4,
            s if s.size() > 1 => s.size() as usize,
            _ => 0,
        }
    }
}

/// A plain descriptor read: the safetensors dtype and the swap unit (0:
/// already little-endian), or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plain {
    /// The safetensors dtype.
    pub st: St,
    /// Bytes to reverse per unit (0: none).
    pub swap: usize,
}

/// Reads a plain descriptor (`"<f8"`, `">i4"`, `"|b1"`), with the
/// torch dtype a tensor records (`bfloat16` and the float8 types are
/// stored as raw unsigned integers). `Err`: why safetensors cannot hold it.
pub fn plain(descr: &str, torch_dtype: Option<&str>) -> Result<Plain, String> {
    let (order, kind, size) = parse(descr).ok_or_else(|| format!("unknown dtype {descr}"))?;
    let st = match (torch_dtype, kind, size) {
        (Some("bfloat16"), _, 2) => St::Bf16,
        (Some("float8_e4m3fn"), _, 1) => St::F8E4m3,
        (Some("float8_e5m2"), _, 1) => St::F8E5m2,
        (_, 'b', 1) => St::Bool,
        (_, 'u', 1) => St::U8,
        (_, 'i', 1) => St::I8,
        (_, 'i', 2) => St::I16,
        (_, 'u', 2) => St::U16,
        (_, 'f', 2) => St::F16,
        (_, 'i', 4) => St::I32,
        (_, 'u', 4) => St::U32,
        (_, 'f', 4) => St::F32,
        (_, 'i', 8) => St::I64,
        (_, 'u', 8) => St::U64,
        (_, 'f', 8) => St::F64,
        (_, 'c', 8) => St::C64,
        _ => return Err(why_not(kind, size)),
    };
    let swap = if order == '>' { st.swap_unit() } else { 0 };
    Ok(Plain { st, swap })
}

/// Why a type has no safetensors dtype.
fn why_not(kind: char, size: u64) -> String {
    match kind {
        'U' | 'S' => "strings: safetensors holds numbers only".into(),
        'M' | 'm' => "datetimes: safetensors has no datetime type".into(),
        'O' => "Python objects: safetensors holds numbers only".into(),
        'V' => "raw (void) bytes: safetensors holds numbers only".into(),
        'c' => format!("complex{}: safetensors has complex64 only", size * 8),
        'f' => format!("float{}: safetensors has no such float", size * 8),
        _ => format!("{kind}{size}: safetensors has no such type"),
    }
}

/// `(byte order, kind, itemsize)` of a plain descriptor; `"<U5"` has
/// itemsize 20, `"<M8[ns]"` 8.
pub fn parse(descr: &str) -> Option<(char, char, u64)> {
    let mut chars = descr.chars();
    let order = chars.next().filter(|c| matches!(c, '<' | '>' | '|' | '='))?;
    let kind = chars.next()?;
    let rest = chars.as_str();
    let digits: &str = rest.split('[').next().unwrap_or("");
    let n: u64 = if digits.is_empty() && kind == 'O' { 8 } else { digits.parse().ok()? };
    let size = if kind == 'U' { n.checked_mul(4)? } else { n };
    Some((order, kind, size))
}

/// A field of a structured descriptor, flattened: its name, plain
/// descriptor (or why it is not one), subarray shape and byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field's name (the name, not the title).
    pub name: String,
    /// Its plain descriptor, or `None` for a nested structured type.
    pub descr: Option<String>,
    /// Subarray shape.
    pub shape: Vec<u64>,
    /// Offset in the record.
    pub offset: u64,
    /// Bytes in the record (item size times the subarray's elements).
    pub size: u64,
}

/// The named fields of a structured descriptor (padding skipped) and the
/// record size, or `None` when it is not one `extract` writes.
pub fn fields(descr: &[J]) -> Option<(Vec<Field>, u64)> {
    if descr.len() > MAX_DTYPE_FIELDS {
        return None;
    }
    let mut out = Vec::new();
    let mut offset = 0u64;
    for entry in descr {
        let e = entry.as_array()?;
        let name = match e.first()? {
            J::String(s) => s.clone(),
            J::Array(t) => t.get(1)?.as_str()?.to_string(),
            _ => return None,
        };
        let shape: Vec<u64> = match e.get(2) {
            Some(J::Array(s)) => s.iter().map(J::as_u64).collect::<Option<_>>()?,
            None => Vec::new(),
            _ => return None,
        };
        let count = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
        let item = descr_size(e.get(1)?, 0)?;
        let size = item.checked_mul(count)?;
        if !name.is_empty() {
            let descr = e.get(1)?.as_str().map(str::to_string);
            out.push(Field { name, descr, shape, offset, size });
        }
        offset = offset.checked_add(size)?;
    }
    Some((out, offset))
}

/// Bytes per item of a descriptor (plain or structured).
fn descr_size(d: &J, depth: usize) -> Option<u64> {
    match d {
        J::String(s) => parse(s).map(|(_, _, n)| n),
        J::Array(entries) if depth < MAX_DTYPE_DEPTH => entries.iter().try_fold(0u64, |acc, e| {
            let e = e.as_array()?;
            let count = match e.get(2) {
                Some(J::Array(s)) => s.iter().try_fold(1u64, |a, d| a.checked_mul(d.as_u64()?))?,
                _ => 1,
            };
            acc.checked_add(descr_size(e.get(1)?, depth + 1)?.checked_mul(count)?)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numeric_descriptors_map_and_big_endian_swaps() {
        assert_eq!(plain("<f8", None), Ok(Plain { st: St::F64, swap: 0 }));
        assert_eq!(plain(">i4", None), Ok(Plain { st: St::I32, swap: 4 }));
        assert_eq!(plain("|b1", None), Ok(Plain { st: St::Bool, swap: 0 }));
        assert_eq!(plain(">c8", None), Ok(Plain { st: St::C64, swap: 4 }));
        assert_eq!(plain("<u2", Some("bfloat16")), Ok(Plain { st: St::Bf16, swap: 0 }));
        assert_eq!(plain("|u1", Some("float8_e5m2")), Ok(Plain { st: St::F8E5m2, swap: 0 }));
    }

    #[test]
    fn what_safetensors_cannot_hold_says_why() {
        assert!(plain("<U5", None).unwrap_err().contains("strings"));
        assert!(plain("<M8[ns]", None).unwrap_err().contains("datetime"));
        assert!(plain("<c16", None).unwrap_err().contains("complex128"));
        assert!(plain("<f16", None).unwrap_err().contains("float128"));
        assert!(plain("bogus", None).is_err());
        assert_eq!(parse("<U5"), Some(('<', 'U', 20)));
        assert_eq!(parse("<m8[s]"), Some(('<', 'm', 8)));
    }

    #[test]
    fn a_tree_nodes_descriptor_flattens_to_fields_at_their_offsets() {
        let d = json!([
            ["left_child", "<i8"],
            ["threshold", "<f8"],
            ["flag", "|u1"],
            ["", "|V7"],
            [["t", "sub"], "<i2", [2, 3]]
        ]);
        let (f, size) = fields(d.as_array().unwrap()).unwrap();
        let names: Vec<_> = f.iter().map(|x| (x.name.as_str(), x.offset, x.size)).collect();
        assert_eq!(names, [("left_child", 0, 8), ("threshold", 8, 8), ("flag", 16, 1), ("sub", 24, 12)]);
        assert_eq!(size, 36);
        assert_eq!(f[3].shape, [2, 3]);
    }
}
