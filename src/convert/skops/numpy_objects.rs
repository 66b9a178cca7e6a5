//! numpy and scipy objects that skops stores with loaders of their own
//! (shared/FORMATS.md §5.1): `RandomState` (`RandomStateNode`, its
//! `get_state(legacy=False)` dict, which is exactly the pickled BUILD
//! state), `Generator` (`RandomGeneratorNode`: the bit generator's state
//! dict and its `SeedSequence`'s state), masked arrays (`MaskedArrayNode`:
//! data and mask as `.npy`) and scipy sparse matrices and arrays
//! (`SparseMatrixNode`: an `.npz` as `scipy.sparse.save_npz` writes it).

use std::io::Read;

use serde_json::{json, Map, Value as J};

use super::error::SkopsError;
use super::npy::{dtype_from_json, hex_decode, write_npz};
use super::objects::{global_path, split_class, Obj};
use super::schema::{items_of, Mapper, Source};
use super::trusted::bit_generator_trusted;
use crate::extract::arena::RegionReader;
use crate::extract::dtype::{npy_header, Dtype};

/// The field names of `SeedSequence`'s Cython state tuple, in order
/// (`__pyx_unpickle_SeedSequence`'s BUILD: attributes sorted by name).
const SEED_SEQUENCE_FIELDS: [&str; 5] = ["entropy", "n_children_spawned", "pool", "pool_size", "spawn_key"];

/// The sparse formats `scipy.sparse.load_npz` rebuilds.
const SPARSE_FORMATS: &[&str] = &["csr", "csc", "bsr", "coo"];

fn kind(v: &J) -> Option<&str> {
    v.get("type").and_then(J::as_str)
}

/// A document dict's `items`, by key.
fn item<'d>(d: &'d J, key: &str) -> Option<&'d J> {
    d.get("items")?.get(key)
}

impl<'d> Mapper<'d> {
    /// The bit generator an RNG constructor's first argument names: a
    /// `__bit_generator_ctor(cls)` object (numpy ≥ 1.25) or a name string.
    fn bit_generator_of(&self, arg: Option<&'d J>) -> Option<(String, Option<&'d J>)> {
        let arg = arg?;
        if let Some(s) = arg.as_str() {
            return Some((s.to_string(), None));
        }
        let cls = arg.get("args")?.get(0)?;
        let name =
            global_path(cls).map(|p| split_class(&p).1.to_string()).or_else(|| cls.as_str().map(String::from))?;
        Some((name, arg.get("state")))
    }

    /// `RandomState`: `RandomState()` then `set_state(state)`; only over
    /// MT19937, the bit generator `RandomState()` makes.
    pub fn random_state(&mut self, ob: &Obj<'d>) -> Result<(), SkopsError> {
        let (name, _) = self
            .bit_generator_of(ob.args.first())
            .ok_or_else(|| self.unsupported("a RandomState without its bit generator"))?;
        if name != "MT19937" {
            return Err(
                self.unsupported(format!("a RandomState over {name}; skops rebuilds RandomState over MT19937 only"))
            );
        }
        let state = ob
            .state
            .filter(|s| kind(s) == Some("dict"))
            .ok_or_else(|| self.unsupported("a RandomState without its state"))?;
        self.open("RandomState", "numpy.random.mtrand", "RandomStateNode");
        self.key("content");
        self.state_node(state)
    }

    /// `Generator`: its bit generator's state dict and its `SeedSequence`.
    pub fn generator(&mut self, ob: &Obj<'d>) -> Result<(), SkopsError> {
        let (name, state) = self
            .bit_generator_of(ob.args.first())
            .ok_or_else(|| self.unsupported("a Generator without its bit generator"))?;
        // The bit generator's BUILD: (state dict, SeedSequence) or the dict alone.
        let (dict, seed) = match state {
            Some(s) if kind(s) == Some("tuple") => match items_of(s.as_object().expect("tuple")) {
                [d, q] => (Some(d), Some(q)),
                [d] => (Some(d), None),
                _ => (None, None),
            },
            Some(s) => (Some(s), None),
            None => (None, None),
        };
        let dict = dict
            .filter(|d| kind(d) == Some("dict"))
            .ok_or_else(|| self.unsupported("a Generator without its state"))?;
        let named = item(dict, "bit_generator").and_then(J::as_str);
        if named != Some(name.as_str()) {
            return Err(self.unsupported(format!("a Generator whose state names {named:?}, not {name}")));
        }
        if !bit_generator_trusted(&name) {
            self.untrusted.insert(format!("numpy.random.{name}"));
        }
        self.open("Generator", "numpy.random._generator", "RandomGeneratorNode");
        self.key("content");
        self.out.raw("{\"bit_generator\":");
        self.child("bit_generator", dict)?;
        self.out.raw(",\"seed_seq\":");
        self.path.push("seed_seq".into());
        let ss = self.seed_sequence(seed);
        self.path.pop();
        ss?;
        self.out.raw("}");
        Ok(())
    }

    /// `SeedSequence.state` (`entropy`, `spawn_key`, `pool_size`,
    /// `n_children_spawned`) from its pickled Cython state; `{}` when the
    /// file has none (numpy then draws fresh entropy, which only a
    /// `spawn` would show: the bit generator's state is set after).
    fn seed_sequence(&mut self, seed: Option<&'d J>) -> Result<(), SkopsError> {
        let fields = seed.and_then(|s| s.get("state")).and_then(J::as_object).map(items_of).unwrap_or(&[]);
        let mut entries = Vec::new();
        if fields.len() == SEED_SEQUENCE_FIELDS.len() {
            for (name, v) in SEED_SEQUENCE_FIELDS.iter().zip(fields) {
                if *name != "pool" {
                    entries.push((name.to_string(), "str", v));
                }
            }
        } else if seed.is_some() {
            return Err(self.unsupported("a SeedSequence whose state is not the 5 fields numpy pickles"));
        }
        self.closed(|m| m.dict_entries(entries, "dict", "builtins"))
    }

    /// A masked array (`_mareconstruct` + BUILD `(1, shape, dtype,
    /// is_fortran, data, mask, fill_value)`): `MaskedArray(data, mask)`.
    /// The fill value is not kept (skops does not store it).
    pub fn masked(&mut self, ob: &Obj<'d>) -> Result<(), SkopsError> {
        let class = ob.args.first().and_then(global_path).unwrap_or_default();
        if !matches!(class.as_str(), "numpy.ma.MaskedArray" | "numpy.ma.core.MaskedArray") {
            return Err(self.unsupported(format!("a masked array of class {class}")));
        }
        let st = ob.state.and_then(J::as_object).map(items_of).unwrap_or(&[]);
        let [_, shape, dtype, fortran, data, mask, ..] = st else {
            return Err(self.unsupported("a masked array whose state is not numpy's 7-tuple"));
        };
        let shape: Vec<u64> = shape.as_object().map(items_of).unwrap_or(&[]).iter().filter_map(J::as_u64).collect();
        let fortran = fortran.as_bool().unwrap_or(false);
        let descr = dtype.get("descr").unwrap_or(&J::Null);
        let dt = dtype_from_json(descr).ok_or_else(|| self.unsupported(format!("a masked array of dtype {descr}")))?;
        if matches!(dt, Dtype::Struct { .. }) {
            return Err(self.unsupported("a structured masked array"));
        }
        self.open("MaskedArray", "numpy.ma", "MaskedArrayNode");
        self.key("content");
        self.out.raw("{\"data\":");
        self.path.push("data".into());
        let data_node = match (&dt, data) {
            (Dtype::Object, J::Array(items)) if shape.len() == 1 => self.closed(|m| {
                m.open("ndarray", "numpy", "NdArrayNode");
                let dims: Vec<J> = shape.iter().map(|&d| json!(d)).collect();
                m.object_array(items, &dims)
            }),
            (Dtype::Plain { .. }, d) => self.raw_array(&dt, &shape, fortran, d),
            _ => Err(self.unsupported("a masked array whose data is not bytes (or a 1-d object list)")),
        };
        self.path.pop();
        data_node?;
        self.out.raw(",\"mask\":");
        self.path.push("mask".into());
        let bool_dt = Dtype::Plain { descr: "|b1".into(), itemsize: 1 };
        let mask_node = self.raw_array(&bool_dt, &shape, fortran, mask);
        self.path.pop();
        mask_node?;
        self.out.raw("}");
        Ok(())
    }

    /// A masked array as extraction writes it (`{"type": "masked_array",
    /// "class", "data", "mask", "fill_value", ...}`, data and mask being
    /// array nodes): `MaskedArray(data, mask)`. The fill value is not kept
    /// (skops does not store it).
    pub fn masked_node(&mut self, o: &'d Map<String, J>) -> Result<(), SkopsError> {
        let class = o.get("class").and_then(J::as_str).unwrap_or("");
        if !matches!(class, "numpy.ma.MaskedArray" | "numpy.ma.core.MaskedArray") {
            return Err(self.unsupported(format!("a masked array of class {class}")));
        }
        let (Some(data), Some(mask)) = (o.get("data"), o.get("mask")) else {
            return Err(self.unsupported("a masked array without its data and mask"));
        };
        self.open("MaskedArray", "numpy.ma", "MaskedArrayNode");
        self.key("content");
        self.out.raw("{\"data\":");
        self.child("data", data)?;
        self.out.raw(",\"mask\":");
        self.child("mask", mask)?;
        self.out.raw("}");
        Ok(())
    }

    /// An `NdArrayNode` (closed) for raw bytes (a document `bytes` value)
    /// of `dtype`/`shape`.
    fn raw_array(&mut self, dtype: &Dtype, shape: &[u64], fortran: bool, data: &J) -> Result<(), SkopsError> {
        let bytes = match (kind(data), data.get("hex").and_then(J::as_str), data.get("file").and_then(J::as_str)) {
            (Some("bytes" | "bytearray"), Some(h), _) => hex_decode(h),
            (Some("bytes" | "bytearray"), None, Some(f)) => Some(std::fs::read(self.dir.join(f))?),
            _ => None,
        };
        let bytes = bytes.ok_or_else(|| self.unsupported("array data that is not bytes"))?;
        let want = shape.iter().try_fold(dtype.itemsize(), |a, &d| a.checked_mul(d));
        if want != Some(bytes.len() as u64) {
            return Err(self.unsupported(format!("array data of {} bytes for shape {shape:?}", bytes.len())));
        }
        let mut file = npy_header(dtype, fortran, shape);
        file.extend_from_slice(&bytes);
        self.closed(|m| {
            m.npy_node("ndarray", "numpy", Source::Bytes(file));
            Ok(())
        })
    }

    /// True for a scipy sparse matrix or array pickled as NEWOBJ + BUILD
    /// of its attributes.
    pub fn is_sparse(&self, ob: &Obj<'d>) -> bool {
        let (_, name) = split_class(ob.class);
        let format = name.split('_').next().unwrap_or("");
        (name.ends_with("_matrix") || name.ends_with("_array"))
            && SPARSE_FORMATS.contains(&format)
            && ob.state.is_some_and(|s| item(s, "data").is_some())
    }

    /// A sparse matrix: an `.npz` member with the arrays `save_npz` writes.
    pub fn sparse(&mut self, ob: &Obj<'d>) -> Result<(), SkopsError> {
        let (module, name) = split_class(ob.class);
        let format = name.split('_').next().unwrap_or("");
        let state = ob.state.expect("checked by is_sparse");
        let shape: Vec<i64> = item(state, "_shape")
            .and_then(J::as_object)
            .map(items_of)
            .unwrap_or(&[])
            .iter()
            .filter_map(J::as_i64)
            .collect();
        if shape.len() != 2 {
            return Err(self.unsupported(format!("a sparse {name} of shape {shape:?}")));
        }
        let mut arrays: Vec<(&str, &'d J)> = Vec::new();
        if format == "coo" {
            let coords = item(state, "coords").and_then(J::as_object).map(items_of).unwrap_or(&[]);
            match (coords, item(state, "row"), item(state, "col")) {
                ([r, c], _, _) | ([], Some(r), Some(c)) => arrays.extend([("row", r), ("col", c)]),
                _ => return Err(self.unsupported("a coo matrix without its coordinates")),
            }
        } else {
            for key in ["indices", "indptr"] {
                arrays
                    .push((key, item(state, key).ok_or_else(|| self.unsupported(format!("a {name} without {key}")))?));
            }
        }
        arrays.push(("data", item(state, "data").expect("checked by is_sparse")));
        let mut members: Vec<(String, Box<dyn Read>)> = Vec::new();
        for (key, v) in arrays {
            let file = v
                .get("file")
                .and_then(J::as_str)
                .ok_or_else(|| self.unsupported(format!("sparse {key} that is not a numeric array")))?;
            let region = self.array_region(file)?;
            members.push((key.to_string(), Box::new(RegionReader::new(self.arrays.file, region))));
        }
        let s3 = Dtype::Plain { descr: "|S3".into(), itemsize: 3 };
        let fmt = [npy_header(&s3, false, &[]), format.as_bytes().to_vec()].concat();
        members.push(("format".into(), Box::new(std::io::Cursor::new(fmt))));
        let i8 = Dtype::Plain { descr: "<i8".into(), itemsize: 8 };
        let sh =
            [npy_header(&i8, false, &[2]), shape[0].to_le_bytes().to_vec(), shape[1].to_le_bytes().to_vec()].concat();
        members.push(("shape".into(), Box::new(std::io::Cursor::new(sh))));
        if name.ends_with("_array") {
            let b1 = Dtype::Plain { descr: "|b1".into(), itemsize: 1 };
            members.push((
                "_is_array".into(),
                Box::new(std::io::Cursor::new([npy_header(&b1, false, &[]), vec![1]].concat())),
            ));
        }
        let member = self.member_name("npz");
        let tmp = self.dir.join(format!("sparse-{member}"));
        write_npz(std::fs::File::create(&tmp)?, members)?;
        self.members.push((member.clone(), Source::File(tmp)));
        self.open(name, module, "SparseMatrixNode");
        self.key("type");
        self.out.raw("\"scipy\"");
        self.key("file");
        self.out.string(&member);
        Ok(())
    }
}
