//! numpy dtypes rebuilt from their pickled form (shared/FORMATS.md §2.3),
//! and `.npy` headers written for them (§2.5).
//!
//! A pickled dtype is `REDUCE(numpy.dtype, (code, False, True))` followed by
//! `BUILD(state)`, the state being `(version, byteorder, subarray, names,
//! fields, elsize, alignment, flags[, metadata])`. The `.npy` descriptor
//! numpy writes (`dtype.descr` for structured types, `dtype.str` otherwise)
//! follows from it; nothing is guessed from a dtype's name alone when the
//! state says otherwise.

use super::error::{DtypeError, ShapeError};
use crate::limits::{MAX_DTYPE_DEPTH, MAX_DTYPE_FIELDS};
use crate::py::latin1;
use crate::py::numpy::{self, ItemsizeError};
use crate::py::repr::repr_str;
use crate::vm::{Analysis, Graph, Value, ValueId};

/// A numpy dtype, as the `.npy` format describes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Dtype {
    /// A plain type: its `dtype.str` (`"<f8"`, `"|b1"`, `"<M8[ns]"`, `"<U3"`).
    Plain {
        /// The descriptor string.
        descr: String,
        /// Bytes per item.
        itemsize: u64,
    },
    /// Python objects (`"|O"`).
    Object,
    /// A structured type: fields by offset, padding made explicit.
    Struct {
        /// Fields in offset order.
        fields: Vec<Field>,
        /// Bytes per item.
        itemsize: u64,
    },
}

/// A field of a structured dtype.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The name (empty for padding).
    pub name: String,
    /// The title, if any.
    pub title: Option<String>,
    /// The element type.
    pub dtype: Dtype,
    /// Subarray shape (empty for a scalar field).
    pub shape: Vec<u64>,
    /// Offset in the item.
    pub offset: u64,
}

impl Dtype {
    /// Bytes per item.
    pub fn itemsize(&self) -> u64 {
        match self {
            Dtype::Plain { itemsize, .. } | Dtype::Struct { itemsize, .. } => *itemsize,
            Dtype::Object => 8,
        }
    }

    /// True for object arrays (data pickled as a list).
    pub fn is_object(&self) -> bool {
        match self {
            Dtype::Object => true,
            Dtype::Plain { .. } => false,
            Dtype::Struct { fields, .. } => fields.iter().any(|f| f.dtype.is_object()),
        }
    }

    /// The descriptor as a Python literal, as `numpy.lib.format` writes it in
    /// a header (`'<f8'`, `[('a', '<i4'), ('', '|V4')]`).
    pub fn py_descr(&self) -> String {
        match self {
            Dtype::Plain { descr, .. } => repr_str(descr),
            Dtype::Object => "'|O'".to_string(),
            Dtype::Struct { fields, .. } => {
                let items: Vec<String> = fields
                    .iter()
                    .map(|f| {
                        let name = match &f.title {
                            Some(t) => format!("({}, {})", repr_str(t), repr_str(&f.name)),
                            None => repr_str(&f.name),
                        };
                        if f.shape.is_empty() {
                            format!("({name}, {})", f.dtype.py_descr())
                        } else {
                            format!("({name}, {}, {})", f.dtype.py_descr(), py_shape(&f.shape))
                        }
                    })
                    .collect();
                format!("[{}]", items.join(", "))
            }
        }
    }

    /// The descriptor as JSON (docs/extract.md).
    pub fn json_descr(&self) -> serde_json::Value {
        use serde_json::{json, Value as J};
        match self {
            Dtype::Plain { descr, .. } => J::String(descr.clone()),
            Dtype::Object => J::String("|O".into()),
            Dtype::Struct { fields, .. } => J::Array(
                fields
                    .iter()
                    .map(|f| {
                        let name = match &f.title {
                            Some(t) => json!([t, f.name]),
                            None => J::String(f.name.clone()),
                        };
                        if f.shape.is_empty() {
                            json!([name, f.dtype.json_descr()])
                        } else {
                            json!([name, f.dtype.json_descr(), f.shape])
                        }
                    })
                    .collect(),
            ),
        }
    }
}

/// A `.npy` header's `descr` (a Python literal of strings, integers,
/// tuples and lists) as JSON: tuples and lists become arrays. `None` when
/// it is anything else.
pub fn py_literal_json(text: &str) -> Option<serde_json::Value> {
    fn value(s: &[u8], i: &mut usize, depth: usize) -> Option<serde_json::Value> {
        use serde_json::Value as J;
        if depth > MAX_DTYPE_DEPTH * 3 {
            return None;
        }
        skip_ws(s, i);
        match *s.get(*i)? {
            q @ (b'\'' | b'"') => {
                *i += 1;
                let mut out = Vec::new();
                loop {
                    let c = *s.get(*i)?;
                    *i += 1;
                    match c {
                        b'\\' => {
                            let e = *s.get(*i)?;
                            *i += 1;
                            out.push(match e {
                                b'n' => b'\n',
                                b't' => b'\t',
                                other => other,
                            });
                        }
                        c if c == q => break,
                        c => out.push(c),
                    }
                }
                Some(J::String(String::from_utf8_lossy(&out).into_owned()))
            }
            open @ (b'(' | b'[') => {
                let close = if open == b'(' { b')' } else { b']' };
                *i += 1;
                let mut items = Vec::new();
                loop {
                    skip_ws(s, i);
                    if *s.get(*i)? == close {
                        *i += 1;
                        return Some(J::Array(items));
                    }
                    items.push(value(s, i, depth + 1)?);
                    skip_ws(s, i);
                    match *s.get(*i)? {
                        b',' => *i += 1,
                        c if c == close => {}
                        _ => return None,
                    }
                }
            }
            b'0'..=b'9' | b'-' => {
                let start = *i;
                *i += 1;
                while s.get(*i).is_some_and(|c| c.is_ascii_digit()) {
                    *i += 1;
                }
                std::str::from_utf8(&s[start..*i]).ok()?.parse::<i64>().ok().map(J::from)
            }
            _ => None,
        }
    }
    fn skip_ws(s: &[u8], i: &mut usize) {
        while s.get(*i).is_some_and(|c| c.is_ascii_whitespace()) {
            *i += 1;
        }
    }
    let mut i = 0;
    let v = value(text.as_bytes(), &mut i, 0)?;
    skip_ws(text.as_bytes(), &mut i);
    (i == text.len()).then_some(v)
}

/// A shape as a Python tuple literal: `()`, `(3,)`, `(2, 3)`.
pub fn py_shape(shape: &[u64]) -> String {
    match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// The `.npy` header (magic, version, length, dict, padding) numpy's
/// `np.save` writes for this dtype, order and shape: version 1 when the
/// header fits 16 bits and latin-1, else 2, else 3 (UTF-8).
pub fn npy_header(dtype: &Dtype, fortran: bool, shape: &[u64]) -> Vec<u8> {
    let mut dict = format!(
        "{{'descr': {}, 'fortran_order': {}, 'shape': {}, }}",
        dtype.py_descr(),
        if fortran { "True" } else { "False" },
        py_shape(shape)
    );
    // Room for the growth axis to grow (numpy's GROWTH_AXIS_MAX_DIGITS = 21).
    if let Some(axis) = if fortran { shape.last() } else { shape.first() } {
        let digits = axis.to_string().len();
        dict.push_str(&" ".repeat(21usize.saturating_sub(digits)));
    }
    let (version, body, len_bytes) = match latin1::encode(&dict) {
        Some(b) if padded_len(b.len(), 2) < 65536 => (1u8, b, 2),
        Some(b) => (2, b, 4),
        None => (3, dict.into_bytes(), 4),
    };
    let total = padded_len(body.len(), len_bytes);
    let mut out = Vec::with_capacity(8 + len_bytes + total);
    out.extend_from_slice(b"\x93NUMPY");
    out.push(version);
    out.push(0);
    if len_bytes == 2 {
        out.extend_from_slice(&(total as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(total as u32).to_le_bytes());
    }
    out.extend_from_slice(&body);
    out.resize(8 + len_bytes + total - 1, b' ');
    out.push(b'\n');
    out
}

/// Header length after padding, so that magic + length + header is a
/// multiple of 64 (`numpy.lib.format.ARRAY_ALIGN`).
fn padded_len(body: usize, len_bytes: usize) -> usize {
    let hlen = body + 1;
    let pad = 64 - (8 + len_bytes + hlen) % 64;
    hlen + if pad == 64 { 0 } else { pad }
}

/// Reads pickled values for dtype decoding.
pub struct Reader<'g, G: Graph + ?Sized> {
    /// The graph.
    pub g: &'g G,
}

impl<'g, G: Graph + ?Sized> Reader<'g, G> {
    /// The values.
    fn a(&self) -> &'g Analysis {
        self.g.analysis()
    }

    /// A shape: a tuple (or list) of non-negative integers, or one integer.
    pub fn shape(&self, id: ValueId) -> Result<Vec<u64>, ShapeError> {
        if let Some(n) = self.a().int_or_bool(id) {
            return Ok(vec![u64::try_from(n).map_err(|_| ShapeError::Negative(n))?]);
        }
        let dims = self.a().tuple_or_list(id).ok_or(ShapeError::NotATuple)?;
        if dims.len() > 64 {
            return Err(ShapeError::TooManyDims(dims.len()));
        }
        dims.iter()
            .map(|d| {
                let n = self.a().int_or_bool(*d).ok_or(ShapeError::NotAnInteger)?;
                u64::try_from(n).map_err(|_| ShapeError::Negative(n))
            })
            .collect()
    }

    /// The global a value is, as `module.name`.
    pub fn global_of(&self, id: ValueId) -> Option<String> {
        match self.g.value(id) {
            Value::Global(g) => Some(format!("{}.{}", g.module, g.name)),
            _ => None,
        }
    }

    /// A `numpy.dtype` value: `REDUCE(numpy.dtype, (code, ...))` + BUILD.
    pub fn dtype(&self, id: ValueId) -> Result<Dtype, DtypeError> {
        self.dtype_at(id, 0)
    }

    fn dtype_at(&self, id: ValueId, depth: usize) -> Result<Dtype, DtypeError> {
        if depth > MAX_DTYPE_DEPTH {
            return Err(DtypeError::TooDeep);
        }
        let Value::Call(c) = self.g.value(id) else { return Err(DtypeError::NotConstructed) };
        if self.global_of(c.func).as_deref() != Some("numpy.dtype") {
            return Err(DtypeError::NotNumpyDtype);
        }
        let a = self.a().tuple_or_list(c.args).ok_or(DtypeError::ArgsNotTuple)?;
        let first = *a.first().ok_or(DtypeError::NoArgs)?;
        let state: Vec<ValueId> =
            self.g.state(id).and_then(|s| self.a().tuple_or_list(s)).map(|s| s.to_vec()).unwrap_or_default();
        // numpy.record / numpy.void type objects stand for 'V' (recarray dtypes).
        let code = match self.a().str_or_latin1(first) {
            Some(c) => c.into_owned(),
            None => match self.global_of(first).as_deref() {
                Some("numpy.record" | "numpy.void") => "V".to_string(),
                _ => return Err(DtypeError::CodeNotStr),
            },
        };
        let (kind, digits) = numpy::split_code(&code);
        let get = |i: usize| state.get(i).copied();
        let order = get(1).and_then(|v| self.a().str_or_latin1(v));
        let elsize = get(5).and_then(|v| self.a().int_or_bool(v)).filter(|n| *n >= 0);
        let flags = get(7).and_then(|v| self.a().int_or_bool(v)).unwrap_or(0);
        // A structured type's object fields make it hold objects; it is
        // still a structure.
        if kind != "V" && numpy::has_object(kind, flags) {
            return Ok(Dtype::Object);
        }
        // Subarray: (base dtype, shape) — only meaningful as a field's type.
        if let Some(sub) = get(2).filter(|v| !matches!(self.g.value(*v), Value::None)) {
            let pair = self.a().tuple_or_list(sub).filter(|p| p.len() == 2).ok_or(DtypeError::SubarrayNotPair)?;
            let base = self.dtype_at(pair[0], depth + 1)?;
            let shape = self.shape(pair[1])?;
            return Ok(subarray(base, shape));
        }
        // Structured: names + fields.
        let names = get(3).filter(|v| !matches!(self.g.value(*v), Value::None));
        if let Some(names) = names {
            let fields = get(4).ok_or(DtypeError::NoFields)?;
            let itemsize = elsize.ok_or(DtypeError::NoSize)? as u64;
            return self.structured(names, fields, itemsize, depth);
        }
        let size = numpy::itemsize(kind, digits, elsize).map_err(|e| match e {
            ItemsizeError::NoSize => DtypeError::CodeHasNoSize(code.clone()),
            ItemsizeError::Overflows => DtypeError::Impossible(code.clone()),
        })?;
        plain(kind, size, order.as_deref(), get(8).map(|m| self.datetime_unit(m)).unwrap_or_default(), &code)
    }

    fn structured(&self, names: ValueId, fields: ValueId, itemsize: u64, depth: usize) -> Result<Dtype, DtypeError> {
        let names = self.a().tuple_or_list(names).ok_or(DtypeError::NamesNotTuple)?;
        if names.len() > MAX_DTYPE_FIELDS {
            return Err(DtypeError::TooManyFields);
        }
        let Value::Dict(r) = self.g.value(fields) else { return Err(DtypeError::FieldsNotDict) };
        let pairs: &[(ValueId, ValueId)] = self.a().dict(*r);
        let mut out = Vec::new();
        for &n in names {
            let name = self.a().str_or_latin1(n).ok_or(DtypeError::FieldNameNotStr)?.into_owned();
            let info = pairs
                .iter()
                .find(|(k, _)| self.a().str_or_latin1(*k).as_deref() == Some(name.as_str()))
                .map(|(_, v)| *v)
                .ok_or_else(|| DtypeError::FieldNotDescribed(name.clone()))?;
            let info = self.a().tuple_or_list(info).ok_or(DtypeError::FieldDescrNotTuple)?;
            let (dt, off) = match info {
                [dt, off] | [dt, off, _] => (*dt, *off),
                _ => return Err(DtypeError::FieldDescrLength),
            };
            let title = match info {
                [_, _, t] if !matches!(self.g.value(*t), Value::None) => {
                    Some(self.a().str_or_latin1(*t).ok_or(DtypeError::FieldTitleNotStr)?.into_owned())
                }
                _ => None,
            };
            let offset = u64::try_from(self.a().int_or_bool(off).ok_or(DtypeError::FieldOffsetNotInt)?)
                .map_err(|_| DtypeError::FieldOffsetNegative)?;
            let (dtype, shape) = match self.dtype_at(dt, depth + 1)? {
                Dtype::Struct { fields, itemsize } if is_subarray_marker(&fields) => {
                    let f = fields.into_iter().next().expect("marker has one field");
                    let _ = itemsize;
                    (f.dtype, f.shape)
                }
                d => (d, Vec::new()),
            };
            out.push(Field { name, title, dtype, shape, offset });
        }
        out.sort_by_key(|f| f.offset);
        // Make gaps and trailing padding explicit, as numpy's descr does.
        let mut filled = Vec::with_capacity(out.len());
        let mut end = 0u64;
        for f in out {
            if f.offset < end {
                return Err(DtypeError::FieldOverlaps(f.name));
            }
            if f.offset > end {
                filled.push(pad(end, f.offset - end));
            }
            let count: u64 =
                f.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or(DtypeError::FieldSizeOverflows)?;
            end = f
                .dtype
                .itemsize()
                .checked_mul(count)
                .and_then(|s| s.checked_add(f.offset))
                .ok_or(DtypeError::FieldSizeOverflows)?;
            filled.push(f);
        }
        if end > itemsize {
            return Err(DtypeError::FieldsPastItemsize { end, itemsize });
        }
        if end < itemsize {
            filled.push(pad(end, itemsize - end));
        }
        Ok(Dtype::Struct { fields: filled, itemsize })
    }

    /// The `[unit]` suffix of a datetime64/timedelta64 dtype, from the
    /// state's 9th item: `(metadata, (unit, num, den, events))`.
    fn datetime_unit(&self, meta: ValueId) -> String {
        let Some(pair) = self.a().tuple_or_list(meta).filter(|p| p.len() == 2) else { return String::new() };
        let Some(info) = self.a().tuple_or_list(pair[1]).filter(|i| i.len() >= 2) else { return String::new() };
        let (Some(unit), Some(num)) = (self.a().str_or_latin1(info[0]), self.a().int_or_bool(info[1])) else {
            return String::new();
        };
        if unit == "generic" {
            return String::new();
        }
        if num == 1 {
            format!("[{unit}]")
        } else {
            format!("[{num}{unit}]")
        }
    }
}

/// A subarray type, carried as a one-field marker until the enclosing
/// structured type unwraps it (a subarray dtype only exists as a field).
fn subarray(base: Dtype, shape: Vec<u64>) -> Dtype {
    let count: u64 = shape.iter().product();
    let itemsize = base.itemsize().saturating_mul(count);
    Dtype::Struct {
        fields: vec![Field { name: SUBARRAY_MARKER.into(), title: None, dtype: base, shape, offset: 0 }],
        itemsize,
    }
}

const SUBARRAY_MARKER: &str = "\u{0}subarray";

fn is_subarray_marker(fields: &[Field]) -> bool {
    fields.len() == 1 && fields[0].name == SUBARRAY_MARKER
}

fn pad(offset: u64, len: u64) -> Field {
    Field {
        name: String::new(),
        title: None,
        dtype: Dtype::Plain { descr: format!("|V{len}"), itemsize: len },
        shape: vec![],
        offset,
    }
}

/// A plain dtype from its kind and size, checked against what numpy can
/// hold.
fn plain(kind: &str, size: u64, order: Option<&str>, unit: String, code: &str) -> Result<Dtype, DtypeError> {
    if !numpy::size_fits(kind, size) {
        return Err(DtypeError::Impossible(code.to_string()));
    }
    let count = if kind == "U" { size / 4 } else { size };
    // Byte order as stored; types without one ('|') for single bytes and raw data.
    let order = match order {
        Some(o @ ("<" | ">" | "|")) => o,
        Some("=") | None => "<",
        Some(o) => return Err(DtypeError::ByteOrder(o.to_string())),
    };
    let order = if matches!(kind, "b" | "S" | "V") || (size == 1 && kind != "U") { "|" } else { order };
    let order = if order == "|" && !(matches!(kind, "b" | "S" | "V") || size == 1) { "<" } else { order };
    Ok(Dtype::Plain { descr: format!("{order}{kind}{count}{unit}"), itemsize: size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_numpy_for_arange3() {
        // np.save of np.arange(3, dtype='<i8'): FORMATS.md §2.5.
        let d = Dtype::Plain { descr: "<i8".into(), itemsize: 8 };
        let h = npy_header(&d, false, &[3]);
        assert_eq!(h.len(), 128);
        assert_eq!(&h[..10], b"\x93NUMPY\x01\x00\x76\x00");
        assert!(h[10..].starts_with(b"{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }"));
        assert_eq!(h[127], b'\n');
    }

    #[test]
    fn impossible_dtypes_are_refused() {
        for (kind, size, code) in [("f", 3, "f3"), ("i", 16, "i16"), ("q", 8, "q8"), ("U", 6, "U6")] {
            assert_eq!(plain(kind, size, Some("<"), String::new(), code), Err(DtypeError::Impossible(code.into())));
        }
        assert_eq!(plain("i", 4, Some("!"), String::new(), "i4"), Err(DtypeError::ByteOrder("!".into())));
        // Single bytes and raw data have no byte order; '=' is written '<'.
        assert_eq!(plain("u", 1, Some(">"), String::new(), "u1").unwrap().py_descr(), "'|u1'");
        assert_eq!(plain("f", 8, Some("="), String::new(), "f8").unwrap().py_descr(), "'<f8'");
        assert_eq!(plain("U", 12, Some(">"), String::new(), "U3").unwrap().py_descr(), "'>U3'");
    }
}
