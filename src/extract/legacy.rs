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
    pub(super) fn legacy_wrapper(&mut self, id: ValueId, compressed: bool, path: &mut Vec<Seg>) -> Result<J, ArrayError> {
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
