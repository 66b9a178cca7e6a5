//! joblib < 0.10 arrays, kept in companion files next to the pickle
//! (shared/FORMATS.md §1.3, `container::legacy`):
//!
//! - `NDArrayWrapper`, state `{subclass, allow_mmap, filename}`: joblib
//!   `numpy.load`s `<dir>/<filename>`, an `.npy` file. A numeric one is
//!   copied as it is; an object one holds a pickle, which the scan read as
//!   a stream of its own (member `filename`) and which is written here, in
//!   place of the wrapper.
//! - `ZNDArrayWrapper`, state `{state: (1, shape, dtype, is_fortran),
//!   init_args: (cls, (0,), b'b'), filename}`: the companion is a ZF-framed
//!   zlib stream of the raw bytes, set with `ndarray.__setstate__(state +
//!   (data,))`; written as an `.npy` file with the state's layout.
//!
//! Companions are opened only in the folder of the extracted file and only
//! for its own pickle (not for one inside an archive or another companion),
//! through [`crate::container::legacy::open`], as the scan does.

use std::io::{self, Read};
use std::path::Path;

use serde_json::{json, Value as J};

use super::dtype::{npy_header, Reader};
use super::emit::path_name;
use super::error::ArrayError;
use super::numpy::{native_order, Spec};
use super::{Emitter, Seg};
use crate::container::legacy;
use crate::vm::{Graph, Value, ValueId};

/// The keys of a legacy wrapper's state dict.
struct WrapperState {
    filename: String,
    subclass: Option<ValueId>,
    state: Option<ValueId>,
    init_args: Option<ValueId>,
}

impl Emitter<'_, '_> {
    /// A joblib < 0.10 `NDArrayWrapper` (`compressed` false) or
    /// `ZNDArrayWrapper`: the array its companion file holds, with
    /// `"companion": filename` added to the node.
    pub(super) fn legacy_wrapper(
        &mut self,
        id: ValueId,
        compressed: bool,
        path: &mut Vec<Seg>,
    ) -> Result<J, ArrayError> {
        let st = self.wrapper_state(id)?;
        if let Some(why) = legacy::unsafe_reason(&st.filename) {
            return Err(ArrayError::CompanionUnsafe { filename: st.filename, why });
        }
        if self.member.is_some() {
            return Err(ArrayError::CompanionNotBeside(st.filename));
        }
        let mut node = if compressed { self.znd(&st, path)? } else { self.nd(&st, path)? };
        if let J::Object(m) = &mut node {
            m.insert("companion".into(), J::String(st.filename));
        }
        Ok(node)
    }

    fn wrapper_state(&self, id: ValueId) -> Result<WrapperState, ArrayError> {
        let state = self.graph().state(id).ok_or(ArrayError::NoState)?;
        let Value::Dict(r) = self.v(state) else { return Err(ArrayError::CompanionStateNotDict) };
        let get = |key: &str| self.a.dict(*r).iter().rev().find(|(k, _)| self.a.full_str(*k) == Some(key)).map(|p| p.1);
        let filename = get("filename").and_then(|f| self.a.full_str(f)).ok_or(ArrayError::CompanionNoFilename)?;
        Ok(WrapperState {
            filename: filename.to_string(),
            subclass: get("subclass"),
            state: get("state"),
            init_args: get("init_args"),
        })
    }

    /// The folder joblib looks companions up in: the extracted file's.
    fn companion_dir(&self) -> &Path {
        match self.ex.file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        }
    }

    /// `NDArrayWrapper`: an object companion's pickle (read by the scan) in
    /// place, else the `.npy` file copied.
    fn nd(&mut self, st: &WrapperState, path: &mut Vec<Seg>) -> Result<J, ArrayError> {
        let parts = self.parts;
        if let Some(k) = parts.iter().position(|p| p.member.as_deref() == Some(st.filename.as_str())) {
            let part = &parts[k];
            let root = part.analysis.pickles.first().and_then(|p| p.root).ok_or(ArrayError::CompanionNoPickle)?;
            let mut sub = super::Emitter::new(&mut *self.ex, &part.analysis, k, part.member.clone(), self.policy);
            sub.parts = parts;
            sub.pickle = self.pickle;
            sub.depth = self.depth;
            sub.layered = part.layers.iter().any(|l| *l != "zip");
            return Ok(sub.root_at(root, path));
        }
        let (mut file, size) =
            legacy::open(self.companion_dir(), &st.filename).map_err(|e| ArrayError::Companion(e.to_string()))?;
        let mut rec = self
            .ex
            .copy_npy(&mut file, size, &path_name(path), path.to_vec(), None)
            .map_err(ArrayError::CompanionNpy)?;
        rec.pickle = Some(self.pickle);
        let class = st.subclass.and_then(|c| self.global_name(c)).unwrap_or_else(|| "numpy.ndarray".into());
        let node = json!({"type": "ndarray", "class": class, "dtype": rec.dtype, "shape": rec.shape,
                          "order": if rec.fortran { "F" } else { "C" }, "file": rec.file});
        self.ex.arrays.push(rec);
        Ok(node)
    }

    /// `ZNDArrayWrapper`: the decompressed companion written with the
    /// state's dtype, shape and order (a big-endian plain dtype in native
    /// order, as `ndarray.__setstate__` gives it).
    fn znd(&mut self, st: &WrapperState, path: &mut [Seg]) -> Result<J, ArrayError> {
        let items = st.state.map(|s| self.tuple_items(s)).unwrap_or(&[]);
        let [_, shape, dt, fort] = *items else { return Err(ArrayError::StateNotTuple) };
        let class = st
            .init_args
            .and_then(|a| self.tuple_items(a).first().copied())
            .and_then(|c| self.global_name(c))
            .unwrap_or_else(|| "numpy.ndarray".into());
        let (shape, dtype) = {
            let g = self.graph();
            let r = Reader { g: &g };
            (r.shape(shape)?, r.dtype(dt)?)
        };
        if dtype.is_object() {
            return Err(ArrayError::CompanionObjectRaw);
        }
        let fortran = self.a.int_or_bool(fort).unwrap_or(0) != 0;
        let (dtype, swap) = match native_order(&dtype, &shape)? {
            Some((native, unit)) => (native, Some(unit)),
            None => (dtype, None),
        };
        let itemsize = dtype.itemsize();
        let nbytes = shape.iter().try_fold(itemsize, |a, &d| a.checked_mul(d)).ok_or(ArrayError::SizeOverflows)?;
        let (file, _) =
            legacy::open(self.companion_dir(), &st.filename).map_err(|e| ArrayError::Companion(e.to_string()))?;
        let (mut data, _) = legacy::zf_data(file).ok_or(ArrayError::CompanionZf)?;
        let header = npy_header(&dtype, fortran, &shape);
        let mismatch = |have: u64| io::Error::other(format!("shape needs {nbytes} bytes; the companion has {have}"));
        let written = self.ex.store.borrow_mut().write_new("arrays", &path_name(path), "npy", |w| {
            w.write_all(&header)?;
            let mut src = (&mut data).take(nbytes + 1);
            match swap {
                Some(unit) => {
                    let mut all = Vec::new();
                    src.read_to_end(&mut all)?;
                    if all.len() as u64 != nbytes {
                        return Err(mismatch(all.len() as u64));
                    }
                    let swapped = super::layout::Reorder::Swap(unit).apply(all, &shape, itemsize as usize);
                    w.write_all(&swapped)
                }
                None => match io::copy(&mut src, w)? {
                    n if n == nbytes => Ok(()),
                    n => Err(mismatch(n)),
                },
            }
        });
        let file = written.map_err(ArrayError::Write)?;
        Ok(self.array_node(&class, Spec { dtype, shape, fortran }, nbytes, file, path))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::extract::error::{ArrayError, ExtractError};
    use crate::extract::testkit::{extract, extract_bytes, fixture, npy};

    fn i8s(v: &[i64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
    fn f8s(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// fixtures/joblib-legacy (joblib's own test data): every file holds
    /// `[arange(5, '<i8'), arange(5, '<f8'), array([1, 'abc', {'a': 1, 'b':
    /// 2}], object), bytes(range(256)), matrix([0, 1, 2]), "C'est l'été !"]`
    /// (joblib/test/test_numpy_pickle.py); joblib 0.9 keeps the arrays in
    /// companion files, `.npy` (NDArrayWrapper) or ZF `.npy.z`
    /// (ZNDArrayWrapper), Python 2 files included.
    #[test]
    fn companions_give_the_arrays_joblib_wrote() {
        for file in [
            "joblib_0.9.2_pickle_py35_np19.pkl",
            "joblib_0.9.2_pickle_py27_np17.pkl",
            "joblib_0.9.4.dev0_compressed_cache_size_pickle_py35_np19.gz",
        ] {
            let (ex, out) = extract(&fixture(&format!("joblib-legacy/{file}")), "legacy");
            assert!(ex.errors.is_empty(), "{file}: {:?}", ex.errors);
            assert_eq!(
                ex.doc["pickles"].as_array().map(Vec::len),
                Some(1),
                "{file}: companions are not pickles of their own"
            );
            let root = &ex.doc["pickles"][0]["root"];
            assert_eq!(root[0]["companion"], format!("{file}_01.npy{}", if file.ends_with(".gz") { ".z" } else { "" }));
            let (h, d) = npy(&out, root[0]["file"].as_str().expect("file"));
            assert!(h.starts_with("{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }"), "{h}");
            assert_eq!(d, i8s(&[0, 1, 2, 3, 4]), "{file}");
            assert_eq!(npy(&out, root[1]["file"].as_str().expect("file")).1, f8s(&[0.0, 1.0, 2.0, 3.0, 4.0]));
            assert_eq!((&root[2]["items"][0], &root[2]["items"][1]), (&json!(1), &json!("abc")), "{file}");
            assert!(root[4]["class"].as_str().is_some_and(|c| c.ends_with("matrix")), "{}", root[4]["class"]);
            assert_eq!(npy(&out, root[4]["file"].as_str().expect("file")).1, i8s(&[0, 1, 2]));
        }
    }

    /// `[NDArrayWrapper]` with state `{'filename': name}`, protocol 2.
    fn wrapper(name: &str) -> Vec<u8> {
        let mut p = b"\x80\x02(cjoblib.numpy_pickle\nNDArrayWrapper\n)\x81}(".to_vec();
        for s in ["filename", name] {
            p.push(b'X');
            p.extend((s.len() as u32).to_le_bytes());
            p.extend(s.as_bytes());
        }
        p.extend(b"ubl.");
        p
    }

    #[test]
    fn unsafe_or_missing_companions_are_errors() {
        let (ex, _out) = extract_bytes(&wrapper("../x.npy"), "legacy-unsafe");
        assert!(
            matches!(&ex.errors[..], [e] if matches!(&e.error, ExtractError::Array(ArrayError::CompanionUnsafe { filename, .. }) if filename == "../x.npy")),
            "{:?}",
            ex.errors
        );
        let (ex, _out) = extract_bytes(&wrapper("input.pkl_01.npy"), "legacy-missing");
        assert!(
            matches!(&ex.errors[..], [e] if matches!(&e.error, ExtractError::Array(ArrayError::Companion(_)))),
            "{:?}",
            ex.errors
        );
        assert_eq!(ex.doc["pickles"][0]["root"][0]["type"], "error");
    }
}
