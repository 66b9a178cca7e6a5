//! PyTorch tensors (shared/FORMATS.md §4), as `torch._tensor.
//! _reduce_ex_internal` pickles them:
//!
//! - `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
//!   requires_grad, hooks[, metadata])` (and the older `_rebuild_tensor`),
//!   whose storage is a persistent id `('storage', torch.<T>Storage, key,
//!   location, numel)` naming the dtype through its class;
//! - `_rebuild_tensor_v3(storage, offset, size, stride, requires_grad,
//!   hooks, dtype[, metadata])`, for the dtypes with no typed storage class
//!   (float8, uint16/32/64, ...): a `torch.storage.UntypedStorage` counted in
//!   bytes, the dtype a `torch.<dtype>` global;
//! - `_rebuild_parameter[_with_state](data, requires_grad, hooks[, state])`;
//! - quantized, sparse and nested tensors, and a tensor with Python state
//!   or of a subclass ([`special`]).
//!
//! The persistent id is read by the scanner's own reader
//! ([`crate::container::parse_pid`]) against the one table of storage
//! classes, module and name both; dtypes come from the one table of torch
//! dtypes ([`crate::container::TORCH_DTYPES`]). The storage's bytes are the
//! `data/<key>` record of a zip checkpoint, or the key's slot in the storage
//! section of a legacy one ([`storage`]). A tensor is a view of its storage
//! (offset and strides in elements of its dtype); it is written as its
//! contiguous data, in C order.

mod special;
mod storage;
mod tar;
#[cfg(test)]
mod tests;

use std::io::{self, Read};

use serde_json::{json, Value as J};

use super::dtype::{npy_header, Dtype, Reader};
use super::emit::path_name;
use super::error::{StorageError, TensorError};
use super::layout::{gather, is_c_contiguous, last_element};
use super::{Emitter, Seg};
use crate::container::{parse_pid, torch_dtype, Pid, PidClass, PidLayout, StorageElem, TorchDtype, UINT8};
use crate::limits::{MAX_GATHER_BYTES, MAX_VIEW_REPEAT};
use crate::view::render::Renderer;
use crate::vm::{Value, ValueId};

pub(super) use storage::Slots;
pub(super) use tar::TarIndex;

/// The callables whose result is rebuilt here (the rest of the graph sees
/// a tensor node, or an error node).
pub(super) const REBUILDS: &[&str] = &[
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_nested_tensor",
    "torch._tensor._rebuild_from_type_v2",
];

/// Characters of a value shown in a persistent-id message.
const SHOWN_CHARS: usize = 120;

/// A tensor as `_rebuild_tensor_v2`/`_v3` receives it: a view of a storage.
#[derive(Debug, Clone, PartialEq)]
struct TensorSpec {
    /// The storage's key (its record `data/<key>`).
    key: String,
    /// Bytes of the storage (its count times its class's element size).
    storage_bytes: u64,
    /// The view's first element in the storage.
    offset: u64,
    size: Vec<u64>,
    /// Strides in elements.
    stride: Vec<u64>,
    /// The element type.
    dtype: &'static TorchDtype,
    requires_grad: bool,
}

/// How a view that lies inside its storage is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    /// Bytes of the contiguous copy.
    nbytes: u64,
    /// The view is its storage's bytes from `offset` on, in order: copied
    /// as it streams by, not gathered in memory.
    contiguous: bool,
}

impl TensorSpec {
    /// Elements of the dtype the storage holds.
    fn numel(&self) -> u64 {
        self.storage_bytes / self.dtype.size
    }

    /// Checks that the view lies inside its storage and that its copy stays
    /// under the limits (a view can repeat its storage with stride 0: bound
    /// what a small file can make us write).
    fn plan(&self) -> Result<Plan, TensorError> {
        let (size, stride, elsize) = (&self.size, &self.stride, self.dtype.size);
        if size.len() != stride.len() {
            return Err(TensorError::RankMismatch);
        }
        let count = size.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or(TensorError::SizeOverflows)?;
        // The last element read must lie inside the storage.
        let numel = self.numel();
        if count > 0 && last_element(self.offset, size, stride).is_none_or(|l| l >= numel) {
            return Err(TensorError::PastStorage { numel, offset: self.offset });
        }
        let contiguous = is_c_contiguous(size, stride);
        let nbytes = count.checked_mul(elsize).ok_or(TensorError::SizeOverflows)?;
        if !contiguous && nbytes > MAX_GATHER_BYTES {
            return Err(TensorError::ReorderTooBig);
        }
        if !contiguous && nbytes > self.storage_bytes.max(1 << 20).saturating_mul(MAX_VIEW_REPEAT) {
            return Err(TensorError::ViewRepeats { nbytes, storage_bytes: self.storage_bytes });
        }
        Ok(Plan { nbytes, contiguous })
    }
}

/// The storage a persistent id names, as read for a tensor.
struct StorageAt {
    key: String,
    /// Bytes of the storage.
    bytes: u64,
    /// The dtype its class names (`None` for `UntypedStorage`).
    dtype: Option<&'static TorchDtype>,
}

impl Emitter<'_, '_> {
    /// One of [`REBUILDS`]: a tensor node (or a sparse/nested one).
    pub(super) fn tensor(&mut self, func: &str, args: ValueId, path: &mut Vec<Seg>) -> Result<J, TensorError> {
        match func.rsplit('.').next().unwrap_or(func) {
            "_rebuild_parameter" | "_rebuild_parameter_with_state" => self.parameter(args, path),
            "_rebuild_qtensor" => self.qtensor(args, path),
            "_rebuild_sparse_tensor" => self.sparse(args, path),
            "_rebuild_nested_tensor" => self.nested(args, path),
            "_rebuild_from_type_v2" => self.with_type(args, path),
            v => {
                let t = self.tensor_spec(args, v == "_rebuild_tensor_v3")?;
                self.dense(&t, path)
            }
        }
    }

    /// Writes a strided tensor's data and returns its node.
    fn dense(&mut self, t: &TensorSpec, path: &[Seg]) -> Result<J, TensorError> {
        let plan = t.plan()?;
        let file = self.write_tensor(t, plan, path)?;
        self.record_array(file.clone(), path, json!(t.dtype.npy), t.size.clone(), false, plan.nbytes);
        Ok(json!({"type": "tensor", "dtype": t.dtype.npy, "torch_dtype": t.dtype.name, "shape": t.size,
                  "file": file, "requires_grad": t.requires_grad}))
    }

    /// `_rebuild_parameter(data, requires_grad, backward_hooks[, state])`:
    /// the tensor inside, marked as a parameter.
    fn parameter(&mut self, args: ValueId, path: &mut Vec<Seg>) -> Result<J, TensorError> {
        let items = self.tuple_items(args);
        let Some(&data) = items.first() else { return Err(TensorError::ParameterNoData) };
        let mut t = self.value(data, path);
        if let (J::Object(m), Some(rg)) = (&mut t, items.get(1)) {
            if let Value::Bool(b) = self.v(*rg) {
                m.insert("requires_grad".into(), json!(b));
            }
            m.insert("parameter".into(), json!(true));
        }
        Ok(t)
    }

    /// The rebuild's arguments read: the view, its storage from the
    /// persistent id, and its dtype (the storage class's, or for `_v3` the
    /// seventh argument).
    fn tensor_spec(&self, args: ValueId, v3: bool) -> Result<TensorSpec, TensorError> {
        let items = self.tuple_items(args);
        let (storage, offset, size, stride) = match items {
            [s, o, z, t, ..] => (*s, *o, *z, *t),
            _ => return Err(TensorError::Arity),
        };
        let requires_grad = items.get(4).map(|v| matches!(self.v(*v), Value::Bool(true))).unwrap_or(false);
        let (size, stride) = self.size_and_stride(size, stride)?;
        let Some(offset) = self.a.int_or_bool(offset).and_then(|o| u64::try_from(o).ok()) else {
            return Err(TensorError::Offset);
        };
        let at = self.storage_at(storage)?;
        let dtype = if v3 {
            let d = items.get(6).ok_or(TensorError::Arity)?;
            self.dtype_global(*d)?
        } else {
            // The zip loader reads an UntypedStorage of a `_v2` tensor as uint8.
            at.dtype.unwrap_or(&UINT8)
        };
        Ok(TensorSpec { key: at.key, storage_bytes: at.bytes, offset, size, stride, dtype, requires_grad })
    }

    /// A size (a tuple or a `torch.Size(tuple)`) and a stride.
    fn size_and_stride(&self, size: ValueId, stride: ValueId) -> Result<(Vec<u64>, Vec<u64>), TensorError> {
        let g = self.graph();
        let r = Reader { g: &g };
        match (self.size_of(size), r.shape(stride)) {
            (Ok(size), Ok(stride)) => Ok((size, stride)),
            _ => Err(TensorError::SizeOrStride),
        }
    }

    /// A size: a tuple, or a `torch.Size(tuple)`.
    fn size_of(&self, size: ValueId) -> Result<Vec<u64>, TensorError> {
        let g = self.graph();
        Reader { g: &g }.shape(self.torch_size(size)).map_err(|_| TensorError::SizeOrStride)
    }

    /// The tuple inside `torch.Size(tuple)`, or the value itself.
    fn torch_size(&self, id: ValueId) -> ValueId {
        if let Value::Call(c) = self.v(id) {
            if self.global_name(c.func).as_deref() == Some("torch.Size") {
                if let Some(&t) = self.tuple_items(c.args).first() {
                    return t;
                }
            }
        }
        id
    }

    /// A `torch.<dtype>` global of the dtype table.
    fn dtype_global(&self, id: ValueId) -> Result<&'static TorchDtype, TensorError> {
        match self.v(id) {
            Value::Global(g) => torch_dtype(&g.module, &g.name)
                .ok_or_else(|| TensorError::UnknownDtype(format!("{}.{}", g.module, g.name))),
            _ => Err(TensorError::UnknownDtype(Renderer::new(self.a, SHOWN_CHARS).expr(id))),
        }
    }

    /// The storage a persistent id names, read as the loader of this
    /// checkpoint's layout reads it.
    fn storage_at(&self, storage: ValueId) -> Result<StorageAt, TensorError> {
        let Value::Persistent { pid } = self.v(storage) else { return Err(TensorError::NotPersistent) };
        let layout = if self.in_legacy() { PidLayout::Legacy } else { PidLayout::Zip };
        let r = Renderer::new(self.a, SHOWN_CHARS);
        let s = match parse_pid(self.a, *pid, layout, &r) {
            Pid::Storage(s) => s,
            Pid::Bad(fault) => return Err(TensorError::BadPid(fault.to_string())),
            Pid::Module { class, .. } => return Err(TensorError::BadPid(format!("a module ({class}), not a storage"))),
        };
        let c = match &s.class {
            PidClass::Known(c) => c,
            PidClass::UnknownStorage(name) | PidClass::NotStorage(name) => {
                return Err(TensorError::UnknownClass(name.clone()))
            }
        };
        let unit = s.class.size().map_err(|f| TensorError::BadPid(f.to_string()))?;
        let dtype = match c.elem {
            StorageElem::Typed(d) => Some(d),
            _ => None,
        };
        let bytes = s.numel.checked_mul(unit).ok_or(TensorError::SizeOverflows)?;
        Ok(StorageAt { key: s.key, bytes, dtype })
    }

    /// A persistent id of a legacy tar checkpoint's `pickle` member: the
    /// tensor of that key in the `tensors` member, its data in `storages`.
    /// `None` for any other persistent id.
    pub(super) fn tar_tensor(&mut self, pid: ValueId, path: &[Seg]) -> Option<Result<J, TensorError>> {
        if self.member.as_deref() != Some("pickle") {
            return None;
        }
        let index = self.ex.tar.as_ref()?;
        let key = tar::key_text(self.a, pid)?;
        let Some(t) = index.tensors.get(&key) else {
            return Some(Err(TensorError::TarRecord(key)));
        };
        let Some(s) = index.storages.get(&t.storage) else {
            return Some(Err(TensorError::TarRecord(t.storage.clone())));
        };
        let spec = TensorSpec {
            key: t.storage.clone(),
            storage_bytes: s.len,
            offset: t.offset,
            size: t.size.clone(),
            stride: t.stride.clone(),
            dtype: s.dtype,
            requires_grad: false,
        };
        Some(self.dense(&spec, path))
    }

    /// Writes the view's contiguous data to `arrays/<path>.npy`: streamed
    /// when contiguous, gathered from the whole storage in memory otherwise.
    fn write_tensor(&mut self, t: &TensorSpec, plan: Plan, path: &[Seg]) -> Result<String, StorageError> {
        let name = path_name(path);
        let store = self.ex.store.clone();
        let elsize = t.dtype.size;
        let header = npy_header(&Dtype::Plain { descr: t.dtype.npy.into(), itemsize: elsize }, false, &t.size);
        let (offset, nbytes, storage_bytes) = (t.offset, plan.nbytes, t.storage_bytes);
        self.with_storage(&t.key, storage_bytes, |m| {
            store.borrow_mut().write_new("arrays", &name, "npy", |w| {
                w.write_all(&header)?;
                if plan.contiguous {
                    io::copy(&mut m.take(offset.saturating_mul(elsize)), &mut io::sink())?;
                    let n = io::copy(&mut m.take(nbytes), w)?;
                    if n != nbytes {
                        return Err(io::Error::other(StorageError::CutShort));
                    }
                    Ok(())
                } else {
                    if storage_bytes > MAX_GATHER_BYTES {
                        return Err(io::Error::other(StorageError::GatherTooBig));
                    }
                    let mut all = Vec::new();
                    m.take(storage_bytes).read_to_end(&mut all)?;
                    if (all.len() as u64) < storage_bytes {
                        return Err(io::Error::other(StorageError::CutShort));
                    }
                    w.write_all(&gather(&all, elsize as usize, offset, &t.size, &t.stride))
                }
            })
        })
    }
}
