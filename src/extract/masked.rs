//! numpy masked arrays (`numpy.ma.MaskedArray`, shared/FORMATS.md §2.2):
//! `_mareconstruct(cls, baseclass, (0,), 'b')` + `BUILD((version, shape,
//! dtype, is_fortran, data, mask, fill_value))`, as `MaskedArray.__reduce__`
//! writes them (every fitted `GridSearchCV`'s `cv_results_` holds some).
//!
//! `MaskedArray.__setstate__` sets the data as `ndarray.__setstate__` does
//! and the mask from the full boolean mask's bytes (`getmaskarray(a)`, in
//! the data's order) with `make_mask_descr(dtype)`: `bool` for a plain or
//! object dtype, the same fields as booleans for a structured one. Both are
//! written as arrays (`<path>.data.npy`, `<path>.mask.npy`; object data as
//! items); the fill value is an ordinary value of the document.

use serde_json::{json, Value as J};

use super::dtype::{Dtype, Field, Reader};
use super::error::ArrayError;
use super::numpy::Spec;
use super::{Emitter, Seg};
use crate::vm::ValueId;

impl Emitter<'_, '_> {
    /// A masked array: `{"type": "masked_array", "class", "dtype", "shape",
    /// "order", "data", "mask", "fill_value"}`, data and mask being array
    /// nodes at the path steps `"data"` and `"mask"` (the attributes
    /// `a.data` and `a.mask` of the loaded array).
    pub(super) fn masked(&mut self, id: ValueId, args: ValueId, path: &mut Vec<Seg>) -> Result<J, ArrayError> {
        let class = self
            .tuple_items(args)
            .first()
            .and_then(|c| self.global_name(*c))
            .unwrap_or_else(|| "numpy.ma.core.MaskedArray".into());
        let state = self.states.get(&id).and_then(|s| s.last().copied()).ok_or(ArrayError::NoState)?;
        let [_, shape, dt, fort, data, mask, fill] = *self.tuple_items(state) else {
            return Err(ArrayError::MaskedStateNotTuple);
        };
        let (shape, dtype) = {
            let g = self.graph();
            let r = Reader { g: &g };
            (r.shape(shape)?, r.dtype(dt)?)
        };
        let fortran = self.a.int_or_bool(fort).unwrap_or(0) != 0;
        let descr = dtype.json_descr();
        let mask_dtype = mask_dtype(&dtype);
        path.push(json!("data"));
        let data = self.set_state("numpy.ndarray", Spec { dtype, shape: shape.clone(), fortran }, data, path);
        path.pop();
        let data = data?;
        path.push(json!("mask"));
        let mask = self.data_of(mask).and_then(|m| {
            let spec = Spec { dtype: mask_dtype, shape: shape.clone(), fortran };
            self.write_array("numpy.ndarray", spec, m, None, path)
        });
        path.pop();
        let mask = mask?;
        path.push(json!("fill_value"));
        let fill = self.value(fill, path);
        path.pop();
        Ok(super::json::node([
            ("type", json!("masked_array")),
            ("class", json!(class)),
            ("dtype", descr),
            ("shape", json!(shape)),
            ("order", json!(if fortran { "F" } else { "C" })),
            ("data", data),
            ("mask", mask),
            ("fill_value", fill),
        ]))
    }
}

/// numpy's `make_mask_descr`: `|b1` for a plain or object dtype; for a
/// structured one the same named (and titled) fields, each a boolean of the
/// field's shape (recursively), packed without padding.
pub(super) fn mask_dtype(dtype: &Dtype) -> Dtype {
    match dtype {
        Dtype::Plain { .. } | Dtype::Object => Dtype::Plain { descr: "|b1".into(), itemsize: 1 },
        Dtype::Struct { fields, .. } => {
            let mut out = Vec::new();
            let mut offset = 0u64;
            for f in fields.iter().filter(|f| !f.name.is_empty()) {
                let inner = mask_dtype(&f.dtype);
                let count = f.shape.iter().fold(1u64, |a, &d| a.saturating_mul(d));
                let size = inner.itemsize().saturating_mul(count);
                out.push(Field {
                    name: f.name.clone(),
                    title: f.title.clone(),
                    dtype: inner,
                    shape: f.shape.clone(),
                    offset,
                });
                offset = offset.saturating_add(size);
            }
            Dtype::Struct { fields: out, itemsize: offset }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::extract::testkit::{extract, fixture, npy};

    /// fixtures/real/numpy_masked_*.{pkl,joblib} (scripts/fixtures_real.py,
    /// numpy 2.4.6): the data and the full mask, in every protocol.
    #[test]
    fn masked_arrays_give_data_and_full_mask() {
        for suffix in ["_p2.pkl", "_p4.pkl", "_p5.pkl", ".joblib", "_z3.joblib"] {
            // np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False], fill_value=-1.0)
            let (ex, out) = extract(&fixture(&format!("real/numpy_masked_float{suffix}")), "ma-float");
            assert!(ex.errors.is_empty(), "{suffix}: {:?}", ex.errors);
            let root = &ex.doc["pickles"][0]["root"];
            assert_eq!((&root["type"], &root["class"]), (&json!("masked_array"), &json!("numpy.ma.MaskedArray")));
            // numpy pickles the fill value as a 0-d array.
            let fill = &root["fill_value"];
            assert_eq!((&fill["type"], &fill["shape"]), (&json!("ndarray"), &json!([])), "{suffix}");
            assert_eq!(npy(&out, fill["file"].as_str().expect("fill file")).1, (-1.0f64).to_le_bytes());
            let (h, data) = npy(&out, root["data"]["file"].as_str().expect("data file"));
            assert!(h.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"), "{h}");
            assert_eq!(data, [1.0f64, 2.0, 3.0].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
            assert_eq!(root["data"]["file"], "arrays/data.npy");
            let (h, mask) = npy(&out, root["mask"]["file"].as_str().expect("mask file"));
            assert!(h.starts_with("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }"), "{h}");
            assert_eq!(mask, [0, 1, 0]);
            // np.ma.array([1, 2, 3]): nomask pickles as a full False mask.
            let (ex, out) = extract(&fixture(&format!("real/numpy_masked_nomask{suffix}")), "ma-nomask");
            let root = &ex.doc["pickles"][0]["root"];
            assert_eq!(npy(&out, root["mask"]["file"].as_str().expect("mask")).1, [0, 0, 0]);
            assert_eq!(root["fill_value"], json!(null));
            // An object array's data are items; its mask is still an array.
            let (ex, out) = extract(&fixture(&format!("real/numpy_masked_object{suffix}")), "ma-object");
            let root = &ex.doc["pickles"][0]["root"];
            assert_eq!(root["data"]["items"], json!(["a", 1, null]), "{suffix}");
            assert_eq!(npy(&out, root["mask"]["file"].as_str().expect("mask")).1, [1, 0, 0]);
            // Structured: the mask has the same fields, as booleans.
            let (ex, out) = extract(&fixture(&format!("real/numpy_masked_structured{suffix}")), "ma-struct");
            let root = &ex.doc["pickles"][0]["root"];
            assert_eq!(root["mask"]["dtype"], json!([["a", "|b1"], ["b", "|b1"]]));
            assert_eq!(npy(&out, root["mask"]["file"].as_str().expect("mask")).1, [0, 1, 0, 0]);
        }
    }

    #[test]
    fn mask_dtype_keeps_fields_titles_and_shapes() {
        let f8 = Dtype::Plain { descr: "<f8".into(), itemsize: 8 };
        let field = |name: &str, title: Option<&str>, dtype: Dtype, shape: Vec<u64>, offset| Field {
            name: name.into(),
            title: title.map(Into::into),
            dtype,
            shape,
            offset,
        };
        let s = Dtype::Struct {
            fields: vec![
                field("a", Some("T"), f8.clone(), vec![], 0),
                field("", None, Dtype::Plain { descr: "|V4".into(), itemsize: 4 }, vec![], 8),
                field("b", None, f8, vec![2, 3], 12),
            ],
            itemsize: 60,
        };
        let m = mask_dtype(&s);
        assert_eq!(m.json_descr(), json!([[["T", "a"], "|b1"], ["b", "|b1", [2, 3]]]));
        assert_eq!(m.itemsize(), 7);
        assert_eq!(mask_dtype(&Dtype::Object).json_descr(), json!("|b1"));
    }
}
