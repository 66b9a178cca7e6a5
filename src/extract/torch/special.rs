//! The tensors `torch._tensor._reduce_ex_internal` pickles by parts rather
//! than as one view of one storage:
//!
//! - `_rebuild_qtensor(storage, offset, size, stride, quantizer_params,
//!   requires_grad, hooks)`: a quantized tensor, written as its integer
//!   representation (the storage's `qint8`/`quint8`/`qint32` values) with
//!   `quantizer_params` `(torch.per_tensor_affine, scale, zero_point)` or
//!   `(torch.per_channel_affine, scales, zero_points, axis)` (scales and
//!   zero points are tensors of their own) in a `quantization` object;
//! - `_rebuild_sparse_tensor(layout, data)` (the layout pickled as
//!   `torch.serialization._get_layout('torch.sparse_coo')`): `sparse_coo` with
//!   `(indices, values, size, is_coalesced)`, or a compressed layout
//!   (`sparse_csr`/`csc`/`bsr`/`bsc`) with `(compressed_indices,
//!   plain_indices, values, size)`: a `sparse_tensor` node whose parts are
//!   tensors;
//! - `_rebuild_nested_tensor(buffer, sizes, strides, storage_offsets)`: a
//!   `nested_tensor` node with the flat buffer and the three metadata
//!   tensors.
//!
//! - `torch._tensor._rebuild_from_type_v2(func, new_type, args, state)`:
//!   a tensor with Python attributes (`state`) or of a `Tensor` subclass
//!   (`new_type`), `func(*args)` being one of the rebuilds above: its node
//!   with `"class"` and `"state"` added.
//!
//! Each part is a value of the graph like any other (a tensor node, shared
//! when the pickle shares it); its path step is its key in the node.

use serde_json::{json, Map, Value as J};

use super::super::error::TensorError;
use super::super::{Emitter, Seg};
use crate::vm::{Value, ValueId};

/// The part names of a compressed sparse layout's data tuple.
fn compressed_parts(layout: &str) -> Option<&'static [&'static str]> {
    Some(match layout {
        "sparse_csr" | "sparse_bsr" => &["crow_indices", "col_indices", "values"],
        "sparse_csc" | "sparse_bsc" => &["ccol_indices", "row_indices", "values"],
        _ => return None,
    })
}

impl Emitter<'_, '_> {
    /// The node of one part, with `name` as its path step.
    fn part(&mut self, id: ValueId, name: &str, path: &mut Vec<Seg>) -> J {
        path.push(json!(name));
        let j = self.value(id, path);
        path.pop();
        j
    }

    /// The name of a `torch.<name>` global (a qscheme).
    fn torch_global(&self, id: ValueId) -> Option<&str> {
        match self.v(id) {
            Value::Global(g) if &*g.module == "torch" => Some(&g.name),
            _ => None,
        }
    }

    /// A layout as `torch.save` pickles it: `torch.serialization._get_layout(
    /// 'torch.sparse_coo')` (torch registers that reduction with `copyreg`);
    /// the name without `torch.`.
    fn layout(&self, id: ValueId) -> Option<String> {
        let Value::Call(c) = self.v(id) else { return None };
        if self.global_name(c.func).as_deref() != Some("torch.serialization._get_layout") {
            return None;
        }
        let name = self.tuple_items(c.args).first().and_then(|n| self.a.full_str(*n))?;
        name.strip_prefix("torch.").map(str::to_string)
    }

    /// `_rebuild_qtensor`: the integer representation, plus its quantizer.
    pub(super) fn qtensor(&mut self, args: ValueId, path: &mut Vec<Seg>) -> Result<J, TensorError> {
        let items = self.tuple_items(args);
        let params = *items.get(4).ok_or(TensorError::Arity)?;
        let mut t = self.tensor_spec(args, false)?;
        t.requires_grad = items.get(5).is_some_and(|v| matches!(self.v(*v), Value::Bool(true)));
        if !t.dtype.quantized || t.dtype.raw {
            // quint4x2/quint2x4 pack several values per byte: their size is not the storage's.
            return Err(TensorError::Quantizer(format!("dtype {} is not extracted", t.dtype.name)));
        }
        let quantization = self.quantizer(params, path)?;
        let mut node = self.dense(&t, path)?;
        if let J::Object(m) = &mut node {
            m.insert("quantization".into(), quantization);
        }
        Ok(node)
    }

    /// `(scheme, scale, zero_point)` or `(scheme, scales, zero_points, axis)`.
    fn quantizer(&mut self, params: ValueId, path: &mut Vec<Seg>) -> Result<J, TensorError> {
        let items = self.tuple_items(params);
        let scheme = items.first().and_then(|s| self.torch_global(*s)).map(str::to_string);
        let mut m = Map::new();
        match (scheme.as_deref(), items) {
            (Some(s @ "per_tensor_affine"), [_, scale, zero_point]) => {
                m.insert("scheme".into(), json!(s));
                m.insert("scale".into(), self.part(*scale, "scale", path));
                m.insert("zero_point".into(), self.part(*zero_point, "zero_point", path));
            }
            (Some(s @ ("per_channel_affine" | "per_channel_affine_float_qparams")), [_, scales, zero_points, axis]) => {
                m.insert("scheme".into(), json!(s));
                m.insert("scales".into(), self.part(*scales, "scales", path));
                m.insert("zero_points".into(), self.part(*zero_points, "zero_points", path));
                m.insert("axis".into(), self.part(*axis, "axis", path));
            }
            (Some(s), _) => return Err(TensorError::Quantizer(format!("scheme torch.{s} with {} items", items.len()))),
            (None, _) => return Err(TensorError::Quantizer("no torch.<qscheme> global".into())),
        }
        Ok(J::Object(m))
    }

    /// `_rebuild_sparse_tensor(layout, data)`.
    pub(super) fn sparse(&mut self, args: ValueId, path: &mut Vec<Seg>) -> Result<J, TensorError> {
        let (layout, data) = match self.tuple_items(args) {
            [l, d, ..] => (*l, *d),
            _ => return Err(TensorError::Arity),
        };
        let layout = self.layout(layout);
        let layout =
            layout.ok_or_else(|| TensorError::Sparse("the layout is not _get_layout('torch.<layout>')".into()))?;
        let items = self.tuple_items(data);
        let mut m = Map::new();
        m.insert("type".into(), json!("sparse_tensor"));
        m.insert("layout".into(), json!(layout));
        let (names, size): (&[&str], _) = match (layout.as_str(), items) {
            // torch < 1.13 wrote (indices, values, size), without the flag.
            ("sparse_coo", [_, _, size, rest @ ..]) if rest.len() <= 1 => {
                if let Some(c) = rest.first() {
                    m.insert("coalesced".into(), json!(matches!(self.v(*c), Value::Bool(true))));
                }
                (&["indices", "values"], *size)
            }
            (l, [_, _, _, size]) => match compressed_parts(l) {
                Some(names) => (names, *size),
                None => return Err(TensorError::Sparse(format!("layout torch.{l} with {} parts", items.len()))),
            },
            (l, _) => return Err(TensorError::Sparse(format!("layout torch.{l} with {} parts", items.len()))),
        };
        let shape = self.size_of(size)?;
        m.insert("shape".into(), json!(shape));
        for (name, id) in names.iter().zip(items) {
            let node = self.part(*id, name, path);
            m.insert((*name).into(), node);
        }
        Ok(J::Object(m))
    }

    /// `_rebuild_nested_tensor(buffer, sizes, strides, storage_offsets)`.
    pub(super) fn nested(&mut self, args: ValueId, path: &mut Vec<Seg>) -> Result<J, TensorError> {
        let items = self.tuple_items(args);
        let [values, sizes, strides, offsets] = items else {
            return Err(TensorError::Nested(format!("{} arguments, not 4", items.len())));
        };
        let mut m = Map::new();
        m.insert("type".into(), json!("nested_tensor"));
        for (name, id) in
            [("values", values), ("nested_sizes", sizes), ("nested_strides", strides), ("storage_offsets", offsets)]
        {
            let node = self.part(*id, name, path);
            m.insert(name.into(), node);
        }
        Ok(J::Object(m))
    }

    /// `_rebuild_from_type_v2(func, new_type, args, state)`.
    pub(super) fn with_type(&mut self, args: ValueId, path: &mut Vec<Seg>) -> Result<J, TensorError> {
        let [func, new_type, inner, state] = self.tuple_items(args) else { return Err(TensorError::Arity) };
        let func = self.global_name(*func).filter(|f| super::REBUILDS.contains(&f.as_str()));
        let Some(func) = func.filter(|f| f != "torch._tensor._rebuild_from_type_v2") else {
            return Err(TensorError::Subclass("the rebuild function is not a tensor rebuild".into()));
        };
        let mut node = self.tensor(&func, *inner, path)?;
        if let J::Object(m) = &mut node {
            let class = self.global_name(*new_type);
            m.insert("class".into(), json!(class));
            let state = self.part(*state, "__state__", path);
            m.insert("state".into(), state);
        }
        Ok(node)
    }
}
