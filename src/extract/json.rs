//! The object graph as a JSON document (docs/extract.md, "Values"): every
//! value from a pickle's root, shared values written once with an id and
//! referred to after, objects as class paths with their arguments and state,
//! calls shown as calls. Arrays and tensors are handed to `numpy` and
//! `torch`, which write their data and return their nodes.

use serde_json::{json, Map, Value as J};

use super::error::ExtractError;
use super::{emit, Emitter, Seg};
use crate::limits::{MAX_EXTRACT_DEPTH, MAX_EXTRACT_NODES};
use crate::policy::Verdict;
use crate::py::latin1;
use crate::vm::{Blob, BlobView, CallKind, Value, ValueId};

/// A call the machine recorded, with what the node for it needs.
struct CallSite {
    /// The value the call made.
    id: ValueId,
    kind: CallKind,
    func: ValueId,
    args: ValueId,
    kwargs: Option<ValueId>,
    /// The callable as `module.name`, when it is a global.
    name: Option<String>,
    /// Offset of the opcode that made the call.
    at: u64,
}

impl CallSite {
    /// `REDUCE`, `NEWOBJ[_EX]`, `OBJ` or `INST`: a call that constructs a
    /// value (not a method call on an object).
    fn constructs(&self) -> bool {
        matches!(self.kind, CallKind::Reduce | CallKind::NewObj | CallKind::NewObjEx | CallKind::Obj | CallKind::Inst)
    }
}

impl Emitter<'_, '_> {
    /// Every value a value leads to.
    fn children(&self, id: ValueId, out: &mut Vec<ValueId>) {
        match self.v(id) {
            Value::Tuple(_) | Value::List(_) | Value::Set(_) | Value::FrozenSet(_) => {
                out.extend_from_slice(self.a.items(id))
            }
            Value::Dict(r) => self.a.dict(*r).iter().for_each(|(k, v)| out.extend([*k, *v])),
            Value::ComputedGlobal { module, name } => out.extend([*module, *name]),
            Value::Call(c) => {
                out.extend([c.func, c.args]);
                out.extend(c.kwargs.iter().copied());
            }
            Value::Persistent { pid } => out.push(*pid),
            _ => {}
        }
        if let Some(s) = self.states.get(&id) {
            out.extend_from_slice(s);
        }
        if let Some(m) = self.methods.get(&id) {
            out.extend(m.iter().map(|(_, a)| *a));
        }
        if let Some(Some(n)) = self.nested.get(&id) {
            out.push(*n);
        }
    }

    /// A pickle's root value as JSON.
    pub(super) fn root(&mut self, root: ValueId) -> J {
        let mut path = Vec::new();
        self.root_at(root, &mut path)
    }

    /// The value `root` of a pickle as JSON, at `path` (empty for a
    /// document's pickle; a joblib < 0.10 object companion is written in
    /// place of the wrapper that names it).
    pub(super) fn root_at(&mut self, root: ValueId, path: &mut Vec<Seg>) -> J {
        // Count references with an explicit stack (no recursion on input).
        // Each pickle has its own memo, so its own values; ids stay unique
        // across the document.
        self.refs.clear();
        let mut stack = vec![root];
        let mut kids = Vec::new();
        while let Some(v) = stack.pop() {
            let c = self.refs.entry(v).or_insert(0);
            *c = c.saturating_add(1);
            if *c > 1 {
                continue;
            }
            kids.clear();
            self.children(v, &mut kids);
            stack.extend_from_slice(&kids);
        }
        self.value(root, path)
    }

    /// Values copied wherever they appear instead of being shared by id.
    fn is_atom(&self, id: ValueId) -> bool {
        match self.v(id) {
            Value::None | Value::Bool(_) | Value::Int(_) | Value::BigInt(_) | Value::Float(_) => true,
            Value::Global(_) | Value::Unknown(_) | Value::Buffer { .. } => true,
            Value::Str(r) => self.a.str(*r).full().is_some_and(|s| s.len() <= 64),
            Value::Bytes(b) => b.full().is_some_and(|b| b.len() <= 64),
            _ => false,
        }
    }

    /// A value at `path`: written in full the first time, as a `ref`
    /// after when it is shared. Containers are written without recursion
    /// (`containers`); objects, calls and arrays recurse, at most
    /// `MAX_EXTRACT_DEPTH` deep.
    pub(super) fn value(&mut self, id: ValueId, path: &mut Vec<Seg>) -> J {
        if self.is_container(id) {
            return self.containers(id, path);
        }
        if self.depth >= MAX_EXTRACT_DEPTH && !self.ids.contains_key(&id) {
            return self.error(0, ExtractError::TooDeep);
        }
        let my_id = match self.begin(id) {
            Ok(n) => n,
            Err(j) => return j,
        };
        self.depth += 1;
        let j = self.inner(id, path);
        self.depth -= 1;
        with_id(j, my_id)
    }

    /// Counts a value about to be written and gives it an id when it is
    /// shared; `Err` with its node when it is a `ref` (written before) or
    /// past `MAX_EXTRACT_NODES`.
    pub(super) fn begin(&mut self, id: ValueId) -> Result<Option<u64>, J> {
        if let Some(n) = self.ids.get(&id) {
            return Err(json!({"type": "ref", "id": n}));
        }
        self.ex.nodes += 1;
        if self.ex.nodes > MAX_EXTRACT_NODES {
            return Err(self.error(0, ExtractError::TooManyNodes));
        }
        if self.refs.get(&id).copied().unwrap_or(0) > 1 && !self.is_atom(id) {
            // Ids are unique over the document (a companion's pickle is
            // written inside another pickle's graph).
            self.ex.next_id += 1;
            self.ids.insert(id, self.ex.next_id);
            return Ok(Some(self.ex.next_id));
        }
        Ok(None)
    }

    fn seq(&mut self, items: &[ValueId], path: &mut Vec<Seg>) -> Vec<J> {
        let mut out = Vec::with_capacity(items.len());
        for (i, &it) in items.iter().enumerate() {
            path.push(json!(i));
            out.push(self.value(it, path));
            path.pop();
        }
        out
    }

    /// A dict's pairs (items `SETITEMS` gave an object): a JSON object
    /// when every key is a distinct string.
    fn dict(&mut self, pairs: &[(ValueId, ValueId)], path: &mut Vec<Seg>) -> J {
        if let Some(keys) = self.str_keys(pairs) {
            let mut m = Map::new();
            for (key, (_, v)) in keys.into_iter().zip(pairs) {
                path.push(J::String(key.clone()));
                let j = self.value(*v, path);
                path.pop();
                m.insert(key, j);
            }
            return node([("type", json!("dict")), ("items", J::Object(m))]);
        }
        let mut out = Vec::new();
        for (k, v) in pairs {
            let kj = self.value(*k, path);
            path.push(self.key_step(*k));
            let vj = self.value(*v, path);
            path.pop();
            out.push(J::Array(vec![kj, vj]));
        }
        node([("type", json!("dict")), ("pairs", J::Array(out))])
    }

    fn inner(&mut self, id: ValueId, path: &mut Vec<Seg>) -> J {
        match self.v(id) {
            Value::None => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => int_json(*i),
            Value::BigInt(b) => big_int_json(b),
            Value::Float(f) => float_json(*f),
            Value::Str(r) => match self.a.str(*r) {
                BlobView::Full(s) => J::String(s.to_string()),
                BlobView::Part(p) => self.spilled(p.offset, p.len, "str", path),
            },
            Value::Bytes(b) | Value::ByteArray(b) => {
                let ty = if matches!(self.v(id), Value::Bytes(_)) { "bytes" } else { "bytearray" };
                match &**b {
                    Blob::Full(d) => json!({"type": ty, "hex": hex(d)}),
                    Blob::Part(p) => self.spilled(p.offset, p.len, ty, path),
                }
            }
            // value() hands containers to `containers` before this.
            Value::List(_) | Value::Tuple(_) | Value::Set(_) | Value::FrozenSet(_) | Value::Dict(_) => {
                self.containers(id, path)
            }
            Value::Global(g) => json!({"type": "global", "module": &*g.module, "name": &*g.name}),
            Value::ComputedGlobal { module, name } => {
                let (m, n) = (self.value(*module, path), self.value(*name, path));
                node([("type", json!("computed_global")), ("module", m), ("name", n)])
            }
            Value::Persistent { pid } => {
                if let Some(t) = self.tar_tensor(*pid, path) {
                    return t.unwrap_or_else(|e| self.error(self.offset_of(id), e));
                }
                let pid = self.value(*pid, path);
                node([("type", json!("persistent")), ("pid", pid)])
            }
            Value::Buffer { readonly } => json!({"type": "external_buffer", "readonly": readonly}),
            Value::Unknown(why) => json!({"type": "unknown", "why": why}),
            Value::Call(c) => {
                let site = CallSite {
                    id,
                    kind: c.kind,
                    func: c.func,
                    args: c.args,
                    kwargs: c.kwargs,
                    name: self.global_name(c.func),
                    at: self.offset_of(id),
                };
                self.call(&site, path)
            }
        }
    }

    /// A value whose bytes went to a temporary file during the scan.
    fn spilled(&mut self, offset: u64, len: u64, ty: &'static str, path: &mut [Seg]) -> J {
        let spill = self.ex.store.borrow().spills.get(&(self.part, offset)).cloned();
        match spill {
            Some(s) => {
                let file = match &s.tmp {
                    Some(tmp) => self.ex.store.borrow_mut().claim(tmp, "blobs", &emit::path_name(path), "bin"),
                    None => Ok(String::new()),
                };
                match file {
                    Ok(f) => json!({"type": ty, "file": f, "nbytes": s.len}),
                    Err(error) => self.error(offset, ExtractError::BlobWrite { ty, error }),
                }
            }
            None => self.error(offset, ExtractError::BlobNotKept { ty, len }),
        }
    }

    /// A call: a value extraction rebuilds (an array, a tensor, a built-in
    /// container), else an `object` or a `call` node.
    fn call(&mut self, site: &CallSite, path: &mut Vec<Seg>) -> J {
        if site.constructs() {
            if let Some(j) = self.known_call(site, path) {
                return j;
            }
        }
        self.object_or_call(site, path)
    }

    /// The calls whose result extraction rebuilds: numpy arrays, scalars
    /// and dtypes, joblib wrappers, latin-1 bytes, built-in containers and
    /// PyTorch tensors. `None` for any other call (or when the arguments
    /// are not the expected ones, for bytes and containers).
    fn known_call(&mut self, site: &CallSite, path: &mut Vec<Seg>) -> Option<J> {
        let (id, args, at) = (site.id, site.args, site.at);
        let name = site.name.as_deref()?;
        let result: Result<J, ExtractError> = match name {
            "numpy.core.multiarray._reconstruct" | "numpy._core.multiarray._reconstruct" => {
                self.reconstruct(id, args, path).map_err(Into::into)
            }
            "numpy.core.numeric._frombuffer" | "numpy._core.numeric._frombuffer" => {
                self.frombuffer(args, path).map_err(Into::into)
            }
            "numpy.core.multiarray.scalar" | "numpy._core.multiarray.scalar" => self.scalar(args).map_err(Into::into),
            "numpy.dtype" => self.dtype_value(id).map_err(Into::into),
            "numpy.ma.core._mareconstruct" => self.masked(id, args, path).map_err(Into::into),
            "joblib.numpy_pickle.NumpyArrayWrapper" if self.nested.contains_key(&id) => {
                self.wrapper(id, path).map_err(Into::into)
            }
            "joblib.numpy_pickle.NDArrayWrapper" => self.legacy_wrapper(id, false, path).map_err(Into::into),
            "joblib.numpy_pickle.ZNDArrayWrapper" => self.legacy_wrapper(id, true, path).map_err(Into::into),
            "_codecs.encode" => return self.latin1_bytes(id).map(|b| json!({"type": "bytes", "hex": hex(&b)})),
            "builtins.set" | "builtins.frozenset" | "builtins.bytearray" | "builtins.bytes"
                if site.kind == CallKind::Reduce =>
            {
                return self.builtin_value(name, args, path)
            }
            _ if super::torch::REBUILDS.contains(&name) => self.tensor(name, args, path).map_err(Into::into),
            _ => return None,
        };
        Some(result.unwrap_or_else(|e| self.error(at, e)))
    }

    /// An `object` node when the policy knows the callable as a safe
    /// constructor, a `call` node (never evaluated) otherwise.
    fn object_or_call(&mut self, site: &CallSite, path: &mut Vec<Seg>) -> J {
        let verdict = match self.v(site.func) {
            Value::Global(g) => self.policy.judge(&g.module, &g.name).verdict,
            _ => Verdict::Unknown,
        };
        let object = site.constructs() && verdict == Verdict::Safe;
        let mut m = Map::new();
        if object {
            m.insert("type".into(), json!("object"));
            let cls = self.class_made(site);
            m.insert("class".into(), json!(cls));
            if cls != site.name {
                m.insert("via".into(), json!(site.name));
            }
        } else {
            m.insert("type".into(), json!("call"));
            path.push(json!("__func__"));
            let f = self.value(site.func, path);
            path.pop();
            m.insert("func".into(), f);
        }
        self.call_arguments(site, &mut m, path);
        if !object {
            m.insert("via".into(), json!(site.kind));
            m.insert("offset".into(), json!(site.at));
            m.insert("verdict".into(), json!(verdict));
        }
        self.state_and_items(site.id, &mut m, path);
        J::Object(m)
    }

    /// The class of the object a safe constructor makes: the callable
    /// itself, or `cls` for `copyreg._reconstructor(cls, base, state)`.
    fn class_made(&self, site: &CallSite) -> Option<String> {
        match site.name.as_deref() {
            Some("copyreg._reconstructor") => {
                self.tuple_items(site.args).first().and_then(|c| self.global_name(*c)).or(site.name.clone())
            }
            _ => site.name.clone(),
        }
    }

    /// A call's `args` (omitted when an empty tuple) and `kwargs`.
    fn call_arguments(&mut self, site: &CallSite, m: &mut Map<String, J>, path: &mut Vec<Seg>) {
        let args = site.args;
        let items = self.tuple_items(args);
        if !items.is_empty() || !matches!(self.v(args), Value::Tuple(_)) {
            path.push(json!("__args__"));
            let a = match self.v(args) {
                Value::Tuple(_) => J::Array(self.seq(self.a.items(args), path)),
                _ => self.value(args, path),
            };
            path.pop();
            m.insert("args".into(), a);
        }
        if let Some(kw) = site.kwargs {
            path.push(json!("__kwargs__"));
            let k = self.value(kw, path);
            path.pop();
            m.insert("kwargs".into(), k);
        }
    }

    /// BUILD states and APPEND/SETITEMS/ADDITEMS applied to an object.
    fn state_and_items(&mut self, id: ValueId, m: &mut Map<String, J>, path: &mut Vec<Seg>) {
        let states = self.states.get(&id).cloned().unwrap_or_default();
        let mut out = Vec::new();
        for s in &states {
            // A dict state (or (dict, slots)) names attributes directly.
            let direct = match self.v(*s) {
                Value::Dict(_) => true,
                Value::Tuple(t) => {
                    t.len() == 2 && self.a.items(*s).iter().all(|x| matches!(self.v(*x), Value::Dict(_) | Value::None))
                }
                _ => false,
            };
            if direct {
                out.push(self.value(*s, path));
            } else {
                path.push(json!("__state__"));
                out.push(self.value(*s, path));
                path.pop();
            }
        }
        match out.len() {
            0 => {}
            1 => {
                m.insert("state".into(), out.pop().expect("one state"));
            }
            _ => {
                m.insert("states".into(), J::Array(out));
            }
        }
        let calls = self.methods.get(&id).cloned().unwrap_or_default();
        let mut list = Vec::new();
        let mut pairs = Vec::new();
        let mut added = Vec::new();
        for (kind, args) in calls {
            let items = self.tuple_items(args);
            match (kind, items) {
                (CallKind::SetItem, [k, v]) => pairs.push((*k, *v)),
                (CallKind::Append, [x]) => list.push(*x),
                (CallKind::Add, [x]) => added.push(*x),
                _ => {}
            }
        }
        if !pairs.is_empty() {
            let d = self.dict(&pairs, path);
            m.insert("dictitems".into(), d);
        }
        if !list.is_empty() {
            path.push(json!("__items__"));
            let l = self.seq(&list, path);
            path.pop();
            m.insert("listitems".into(), J::Array(l));
        }
        if !added.is_empty() {
            path.push(json!("__items__"));
            let l = self.seq(&added, path);
            path.pop();
            m.insert("setitems".into(), J::Array(l));
        }
    }

    /// Built-in containers that protocols ≤ 3 pickle as calls: `set(list)`,
    /// `frozenset(list)`, `bytearray(bytes)`, `bytearray(text, 'latin-1')`,
    /// `bytes()`. `None` when the arguments are anything else.
    fn builtin_value(&mut self, name: &str, args: ValueId, path: &mut Vec<Seg>) -> Option<J> {
        let items = self.tuple_items(args);
        if !matches!(self.v(args), Value::Tuple(_)) {
            return None;
        }
        let ty = name.trim_start_matches("builtins.");
        match (ty, items) {
            ("set" | "frozenset", []) => Some(json!({"type": ty, "items": []})),
            ("set" | "frozenset", [l]) => match self.v(*l) {
                Value::List(xs) => Some(node([("type", json!(ty)), ("items", J::Array(self.seq(xs, path)))])),
                _ => None,
            },
            ("bytes" | "bytearray", []) => Some(json!({"type": ty, "hex": ""})),
            ("bytearray", [b]) => match self.v(*b).full_bytes() {
                Some(d) => Some(json!({"type": ty, "hex": hex(d)})),
                // Protocol ≤ 2: bytearray(_codecs.encode(text, 'latin1')).
                None => self.latin1_bytes(*b).map(|d| json!({"type": ty, "hex": hex(&d)})),
            },
            ("bytearray" | "bytes", [t, e]) => self.encoded_latin1(*t, *e).map(|b| json!({"type": ty, "hex": hex(&b)})),
            _ => None,
        }
    }

    /// `_codecs.encode(text, 'latin1')` as bytes (protocol ≤ 2 numpy data).
    pub(super) fn latin1_bytes(&self, id: ValueId) -> Option<Vec<u8>> {
        let Value::Call(c) = self.v(id) else { return None };
        let items = self.tuple_items(c.args);
        match items {
            [t, e] => self.encoded_latin1(*t, *e),
            _ => None,
        }
    }

    /// `text.encode(enc)` when `enc` names latin-1 and `text` fits it.
    fn encoded_latin1(&self, text: ValueId, enc: ValueId) -> Option<Vec<u8>> {
        if !latin1::is_codec(self.a.full_str(enc)?) {
            return None;
        }
        latin1::encode(self.a.full_str(text)?)
    }
}

/// A JSON object of `pairs`, moved in (serde_json's `json!` copies a
/// `Value` it is given, recursively: a deep value would overflow the stack
/// and a nested one be copied once per level).
pub(super) fn node<const N: usize>(pairs: [(&str, J); N]) -> J {
    J::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A node with its `"id"` when it is shared: added to an object node; a
/// list (a JSON array, with no room for a key) becomes a `list` node and a
/// string a `str` node.
pub(super) fn with_id(j: J, id: Option<u64>) -> J {
    let Some(n) = id else { return j };
    match j {
        J::Object(mut m) => {
            m.insert("id".into(), json!(n));
            J::Object(m)
        }
        J::Array(items) => node([("type", json!("list")), ("id", json!(n)), ("items", J::Array(items))]),
        other => node([("type", json!("str")), ("id", json!(n)), ("value", other)]),
    }
}

/// Integers past Python's default 4300-digit `str()` limit are written in
/// hex (decimal conversion is quadratic).
fn big_int_json(i: &crate::py::num::PyInt) -> J {
    match i {
        crate::py::num::PyInt::Small(v) => int_json(*v),
        crate::py::num::PyInt::Big { limbs, negative } if limbs.len() > 440 => {
            let mut s = String::from(if *negative { "-0x" } else { "0x" });
            for (k, l) in limbs.iter().rev().enumerate() {
                if k == 0 {
                    s.push_str(&format!("{l:x}"));
                } else {
                    s.push_str(&format!("{l:08x}"));
                }
            }
            json!({"type": "int", "hex": s})
        }
        other => json!({"type": "int", "value": other.to_decimal()}),
    }
}

/// An integer: a JSON number up to 2^53 in magnitude, an `int` node past it.
pub(super) fn int_json(i: i64) -> J {
    if i.unsigned_abs() <= 1 << 53 {
        json!(i)
    } else {
        json!({"type": "int", "value": i.to_string()})
    }
}

/// A float: a JSON number when finite, a `float` node for nan and infinities.
pub(super) fn float_json(f: f64) -> J {
    if f.is_nan() {
        json!({"type": "float", "value": "nan"})
    } else if f.is_infinite() {
        json!({"type": "float", "value": if f > 0.0 { "inf" } else { "-inf" }})
    } else {
        serde_json::Number::from_f64(f).map(J::Number).unwrap_or(J::Null)
    }
}

/// Lower-case hex of bytes.
pub(super) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}
