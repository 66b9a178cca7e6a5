//! `pkinspect extract`: the object graph a pickle builds, rebuilt without
//! running it, written as JSON plus one `.npy` file per array
//! (docs/extract.md is the format).
//!
//! The scan and the extraction are one pass over the file: the
//! [`crate::container::Walker`] runs the symbolic machine on every pickle
//! stream with a [`store::Store`] as its sink, which writes joblib array
//! payloads straight from the file (or decompressor) into `.npy` files and
//! keeps values too long to hold in memory in temporary files. Then
//! `Emitter` walks each stream's value graph from its root and turns it into
//! JSON, writing the arrays that live inside the pickle (`_reconstruct` +
//! `BUILD`, `_frombuffer`) and the tensors of PyTorch checkpoints.
//!
//! Nothing is evaluated: an object is a class path with its arguments and
//! state; a call to anything the scan policy does not know as a safe
//! constructor is a `call` node.

pub mod dtype;
pub mod store;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_json::{json, Map, Value as J};

use crate::container::{Walked, Walker};
use crate::policy::{Policy, Verdict};
use crate::vm::{Analysis, Blob, BlobView, CallKind, EventKind, Graph, Value, ValueId};
use dtype::{npy_header, Dtype, Reader};
use store::Store;

/// The `schema_version` of the document.
pub const SCHEMA_VERSION: u32 = 1;

/// Deepest nesting of values followed; deeper values become an error node.
pub const MAX_EXTRACT_DEPTH: usize = 200;

/// Largest array whose data must be reordered in memory (a protocol 5
/// `axis_order` array, a non-contiguous tensor view).
pub const MAX_GATHER_BYTES: u64 = 1 << 30;

/// How many times a non-contiguous tensor view may repeat its storage (with
/// stride 0) in the contiguous copy written for it (storages under 1 MiB
/// count as 1 MiB).
pub const MAX_VIEW_REPEAT: u64 = 16;

/// Most value nodes written for one file (the document stays proportional to
/// the pickle's graph, which the machine's limits already bound).
pub const MAX_EXTRACT_NODES: usize = 20_000_000;

/// One array written, for the document and the summary.
#[derive(Debug, Clone)]
pub struct ArrayRecord {
    /// Relative path of the `.npy` file.
    pub file: String,
    /// The attribute path.
    pub path: Vec<J>,
    /// The descriptor.
    pub dtype: J,
    /// The shape.
    pub shape: Vec<u64>,
    /// Fortran order.
    pub fortran: bool,
    /// Bytes of data.
    pub nbytes: u64,
    /// The archive member the array comes from (`None`: the file itself).
    pub member: Option<String>,
    /// Index of the pickle (in [`Extracted::doc`]'s `pickles`) whose graph holds it.
    pub pickle: Option<usize>,
}

/// What extracting one file produced.
pub struct Extracted {
    /// The JSON document.
    pub doc: J,
    /// Arrays written.
    pub arrays: Vec<ArrayRecord>,
    /// Errors for single values (also in the document).
    pub errors: Vec<J>,
    /// Severity of the scan's worst finding, if any.
    pub max_severity: Option<crate::rules::Severity>,
}

/// Extracts `path` into `out_dir` (`None`: a dry run writing nothing).
pub fn extract_file(path: &Path, out_dir: Option<&Path>, policy: &Policy) -> io::Result<Extracted> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let store = Rc::new(RefCell::new(Store::new(out_dir.map(Path::to_path_buf))?));
    let mut walker = Walker::with_sink(store.clone());
    walker.seekable(file.try_clone()?, Some(size), None);
    let walked = walker.finish();
    let mut ex = Extraction {
        store: store.clone(),
        file: path.to_path_buf(),
        arrays: Vec::new(),
        errors: Vec::new(),
        nodes: 0,
        zip: None,
    };
    let mut pickles = Vec::new();
    for (i, part) in walked.parts.iter().enumerate() {
        // One emitter per stream: its event index is built once, however many
        // pickles the stream holds.
        let mut em = Emitter::new(&mut ex, &part.analysis, i, part.member.clone(), policy);
        // A zip member is read from the file by name; anything else under a
        // layer (a decompressor) has offsets in a stream, not the file.
        em.layered = part.layers.iter().any(|l| *l != "zip");
        for (k, p) in part.analysis.pickles.iter().enumerate() {
            let Some(root) = p.root else { continue };
            em.pickle = pickles.len();
            let value = em.root(root);
            pickles.push(json!({"member": part.member, "index": k, "root": value}));
        }
        drop(em);
        if let Some(e) = &part.analysis.error {
            ex.error(part.member.clone(), e.offset(), e.kind().to_string());
        }
    }
    ex.npz_members(&walked, &mut file);
    store.borrow_mut().cleanup();
    let format = walked.format.map(|f| f.name()).unwrap_or("unknown");
    let report = crate::scan::FileReport::from_walked(
        path.display().to_string(),
        size,
        walked,
        policy,
        &crate::rules::Levels::default(),
    );
    let findings: Vec<J> = report
        .findings
        .iter()
        .map(|f| {
            json!({"rule": f.rule.code(), "severity": f.severity.as_str(), "offset": f.offset,
                   "member": f.member, "message": f.message})
        })
        .collect();
    let arrays: Vec<J> = ex
        .arrays
        .iter()
        .map(|a| {
            json!({"file": a.file, "member": a.member, "pickle": a.pickle, "path": a.path, "dtype": a.dtype,
                   "shape": a.shape, "order": if a.fortran { "F" } else { "C" }, "nbytes": a.nbytes})
        })
        .collect();
    let doc = json!({
        "schema_version": SCHEMA_VERSION,
        "pkinspect_version": env!("CARGO_PKG_VERSION"),
        "source": {"path": path.display().to_string(), "format": report.format, "outer": format},
        "pickles": pickles,
        "arrays": arrays,
        "findings": findings,
        "errors": ex.errors.clone(),
    });
    Ok(Extracted { doc, arrays: ex.arrays, errors: ex.errors, max_severity: report.max_severity() })
}

/// State shared by the emitters of one file.
struct Extraction {
    store: Rc<RefCell<Store>>,
    file: PathBuf,
    arrays: Vec<ArrayRecord>,
    errors: Vec<J>,
    nodes: usize,
    zip: Option<zip::ZipArchive<std::fs::File>>,
}

impl Extraction {
    fn error(&mut self, member: Option<String>, offset: u64, message: String) -> J {
        let e = json!({"offset": offset, "member": member, "message": message});
        self.errors.push(e.clone());
        let mut node = e;
        node["type"] = J::String("error".into());
        node
    }

    /// Plain (non-object) members of an `.npz`: already `.npy` files,
    /// copied as they are (object members are pickles, extracted above).
    fn npz_members(&mut self, walked: &Walked, file: &mut std::fs::File) {
        if walked.format == Some(crate::container::Format::Npy) && walked.parts.is_empty() {
            self.plain_npy(file);
            return;
        }
        if walked.format != Some(crate::container::Format::Zip) || walked.skipped_members.is_empty() {
            return;
        }
        if file.seek(io::SeekFrom::Start(0)).is_err() {
            return;
        }
        let Ok(mut archive) = zip::ZipArchive::new(file.try_clone().expect("clone file")) else { return };
        for name in &walked.skipped_members {
            // Members of nested archives are not copied (not an .npz).
            let Some(key) = name.strip_suffix(".npy").filter(|k| !k.contains('!')) else { continue };
            let r = archive.by_name(name).map_err(io::Error::other).and_then(|mut m| {
                let size = m.size();
                self.copy_npy(&mut m, size, key, vec![J::String(key.to_string())], Some(name.clone()))
            });
            match r {
                Ok(rec) => self.arrays.push(rec),
                Err(e) => {
                    self.error(Some(name.clone()), 0, format!("cannot copy .npy member: {e}"));
                }
            }
        }
    }

    /// A plain (numeric) `.npy` file: already the output format, copied as
    /// `arrays/root.npy` after its header is checked.
    fn plain_npy(&mut self, file: &mut std::fs::File) {
        let r = file
            .seek(io::SeekFrom::Start(0))
            .and_then(|_| file.metadata())
            .and_then(|m| self.copy_npy(file, m.len(), "root", Vec::new(), None));
        match r {
            Ok(rec) => self.arrays.push(rec),
            Err(e) => {
                self.error(None, 0, format!("cannot copy .npy file: {e}"));
            }
        }
    }

    /// Copies an `.npy` stream of `size` bytes as it is to `arrays/<name>.npy`,
    /// once its header has been read (a bad header writes nothing).
    fn copy_npy(
        &mut self,
        src: &mut dyn Read,
        size: u64,
        name: &str,
        path: Vec<J>,
        member: Option<String>,
    ) -> io::Result<ArrayRecord> {
        // The header is at most MAX_NPY_HEADER plus its 12-byte preamble.
        let mut head = Vec::new();
        src.take(crate::limits::MAX_NPY_HEADER as u64 + 12).read_to_end(&mut head)?;
        let h = crate::container::npy::read_header(&mut &head[..]).map_err(io::Error::other)?;
        let file = self.store.borrow_mut().write_new("arrays", name, "npy", |w| {
            w.write_all(&head)?;
            io::copy(src, w).map(|_| ())
        })?;
        Ok(ArrayRecord {
            file,
            path,
            dtype: dtype::py_literal_json(&h.descr).unwrap_or_else(|| J::String(h.descr.clone())),
            shape: h.shape.clone().unwrap_or_default(),
            fortran: h.fortran_order,
            nbytes: size.saturating_sub(h.data_offset),
            member,
            pickle: None,
        })
    }
}

/// Storage key → (offset, length) in a legacy PyTorch checkpoint.
type Slots = HashMap<String, (u64, u64)>;

/// A step of an attribute path.
type Seg = J;

/// Turns one stream's value graph into JSON.
struct Emitter<'x, 'a> {
    ex: &'x mut Extraction,
    a: &'a Analysis,
    part: usize,
    member: Option<String>,
    policy: &'a Policy,
    /// BUILD states per object, in order.
    states: HashMap<ValueId, Vec<ValueId>>,
    /// Method calls (`APPEND`/`SETITEMS`/`ADDITEMS` on objects) per object.
    methods: HashMap<ValueId, Vec<(CallKind, ValueId)>>,
    /// Offsets of the calls that made each value.
    offsets: HashMap<ValueId, u64>,
    /// joblib payloads by wrapper: nested pickle root for object arrays.
    nested: HashMap<ValueId, Option<ValueId>>,
    /// Incoming references of every reachable value (saturating).
    refs: HashMap<ValueId, u8>,
    /// Ids given to shared values.
    ids: HashMap<ValueId, u64>,
    depth: usize,
    /// Index of the pickle in the document.
    pickle: usize,
    /// The stream is inside a decompressed layer (not the file's own bytes).
    layered: bool,
    /// Storage slots of a legacy PyTorch checkpoint, once read.
    legacy: Option<Result<Slots, String>>,
}

/// The machine's analysis as a [`Graph`] with the emitter's BUILD states.
struct AGraph<'a> {
    a: &'a Analysis,
    states: &'a HashMap<ValueId, Vec<ValueId>>,
}

impl Graph for AGraph<'_> {
    fn analysis(&self) -> &Analysis {
        self.a
    }
    fn state(&self, id: ValueId) -> Option<ValueId> {
        self.states.get(&id).and_then(|s| s.last().copied())
    }
}

fn path_name(path: &[Seg]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|s| match s {
            J::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    parts.join(".")
}

impl<'x, 'a> Emitter<'x, 'a> {
    fn new(ex: &'x mut Extraction, a: &'a Analysis, part: usize, member: Option<String>, policy: &'a Policy) -> Self {
        let mut states: HashMap<ValueId, Vec<ValueId>> = HashMap::new();
        let mut methods: HashMap<ValueId, Vec<(CallKind, ValueId)>> = HashMap::new();
        let mut offsets = HashMap::new();
        let mut nested = HashMap::new();
        for e in &a.events {
            match &e.kind {
                EventKind::Build { target, state } => states.entry(*target).or_default().push(*state),
                EventKind::Call { kind, func, args, result, .. } => {
                    offsets.insert(*result, e.offset);
                    if matches!(kind, CallKind::Append | CallKind::SetItem | CallKind::Add) {
                        methods.entry(*func).or_default().push((*kind, *args));
                    }
                }
                EventKind::ArrayPayload { wrapper, nested: n, .. } => {
                    nested.insert(*wrapper, *n);
                }
                _ => {}
            }
        }
        Emitter {
            ex,
            a,
            part,
            member,
            policy,
            states,
            methods,
            offsets,
            nested,
            refs: HashMap::new(),
            ids: HashMap::new(),
            depth: 0,
            pickle: 0,
            layered: false,
            legacy: None,
        }
    }

    fn graph(&self) -> AGraph<'_> {
        AGraph { a: self.a, states: &self.states }
    }

    fn v(&self, id: ValueId) -> &'a Value {
        self.a.value(id)
    }

    fn error(&mut self, offset: u64, message: impl Into<String>) -> J {
        self.ex.error(self.member.clone(), offset, message.into())
    }

    fn offset_of(&self, id: ValueId) -> u64 {
        self.offsets.get(&id).copied().unwrap_or(0)
    }

    /// Every value a value leads to.
    fn children(&self, id: ValueId, out: &mut Vec<ValueId>) {
        match self.v(id) {
            Value::Tuple(_) | Value::List(_) | Value::Set(_) | Value::FrozenSet(_) => {
                out.extend_from_slice(self.a.items(id))
            }
            Value::Dict(p) => p.iter().for_each(|(k, v)| out.extend([*k, *v])),
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

    fn root(&mut self, root: ValueId) -> J {
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
        let mut path = Vec::new();
        self.value(root, &mut path)
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

    fn value(&mut self, id: ValueId, path: &mut Vec<Seg>) -> J {
        if let Some(n) = self.ids.get(&id) {
            return json!({"type": "ref", "id": n});
        }
        self.ex.nodes += 1;
        if self.ex.nodes > MAX_EXTRACT_NODES {
            return self.error(0, format!("more than MAX_EXTRACT_NODES ({MAX_EXTRACT_NODES}) values"));
        }
        if self.depth >= MAX_EXTRACT_DEPTH {
            return self.error(0, format!("values nested deeper than MAX_EXTRACT_DEPTH ({MAX_EXTRACT_DEPTH})"));
        }
        let shared = self.refs.get(&id).copied().unwrap_or(0) > 1 && !self.is_atom(id);
        let my_id = if shared {
            let n = self.ids.len() as u64 + 1;
            self.ids.insert(id, n);
            Some(n)
        } else {
            None
        };
        self.depth += 1;
        let j = self.inner(id, path);
        self.depth -= 1;
        match my_id {
            None => j,
            Some(n) => match j {
                J::Object(mut m) => {
                    m.insert("id".into(), json!(n));
                    J::Object(m)
                }
                J::Array(items) => json!({"type": "list", "id": n, "items": items}),
                other => json!({"type": "str", "id": n, "value": other}),
            },
        }
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

    /// A dict's pairs: a JSON object when every key is a distinct string.
    fn dict(&mut self, pairs: &[(ValueId, ValueId)], path: &mut Vec<Seg>) -> J {
        let keys: Option<Vec<String>> = pairs.iter().map(|(k, _)| self.a.full_str(*k).map(str::to_string)).collect();
        let distinct = keys.as_ref().is_some_and(|k| {
            let mut seen = std::collections::HashSet::new();
            k.iter().all(|s| seen.insert(s.as_str()))
        });
        if let (Some(keys), true) = (keys, distinct) {
            let mut m = Map::new();
            for (key, (_, v)) in keys.into_iter().zip(pairs) {
                path.push(J::String(key.clone()));
                let j = self.value(*v, path);
                path.pop();
                m.insert(key, j);
            }
            return json!({"type": "dict", "items": m});
        }
        let mut out = Vec::new();
        for (k, v) in pairs {
            let kj = self.value(*k, path);
            let seg = match self.v(*k) {
                Value::Int(i) => json!(i),
                _ => match self.a.full_str(*k) {
                    Some(s) => J::String(s.to_string()),
                    None => J::String(crate::view::render::Renderer::new(self.a, 200).expr(*k)),
                },
            };
            path.push(seg);
            let vj = self.value(*v, path);
            path.pop();
            out.push(json!([kj, vj]));
        }
        json!({"type": "dict", "pairs": out})
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
            Value::List(_) => J::Array(self.seq(self.a.items(id), path)),
            Value::Tuple(_) => json!({"type": "tuple", "items": self.seq(self.a.items(id), path)}),
            Value::Set(_) => json!({"type": "set", "items": self.seq(self.a.items(id), path)}),
            Value::FrozenSet(_) => json!({"type": "frozenset", "items": self.seq(self.a.items(id), path)}),
            Value::Dict(pairs) => self.dict(pairs, path),
            Value::Global(g) => json!({"type": "global", "module": &*g.module, "name": &*g.name}),
            Value::ComputedGlobal { module, name } => {
                let (m, n) = (self.value(*module, path), self.value(*name, path));
                json!({"type": "computed_global", "module": m, "name": n})
            }
            Value::Persistent { pid } => {
                let pid = self.value(*pid, path);
                json!({"type": "persistent", "pid": pid})
            }
            Value::Buffer { readonly } => json!({"type": "external_buffer", "readonly": readonly}),
            Value::Unknown(why) => json!({"type": "unknown", "why": why}),
            Value::Call(c) => self.call(id, c.kind, c.func, c.args, c.kwargs, path),
        }
    }

    /// A value whose bytes went to a temporary file during the scan.
    fn spilled(&mut self, offset: u64, len: u64, ty: &str, path: &mut [Seg]) -> J {
        let spill = self.ex.store.borrow().spills.get(&(self.part, offset)).cloned();
        match spill {
            Some(s) => {
                let file = match &s.tmp {
                    Some(tmp) => self.ex.store.borrow_mut().claim(tmp, "blobs", &path_name(path), "bin"),
                    None => Ok(String::new()),
                };
                match file {
                    Ok(f) => json!({"type": ty, "file": f, "nbytes": s.len}),
                    Err(e) => self.error(offset, format!("cannot write {ty} value: {e}")),
                }
            }
            None => self.error(offset, format!("{ty} value of {len} bytes was not kept")),
        }
    }

    fn global_name(&self, id: ValueId) -> Option<String> {
        Reader { g: &self.graph() }.global_of(id)
    }

    fn tuple_items(&self, id: ValueId) -> &'a [ValueId] {
        self.a.tuple(id).unwrap_or(&[])
    }

    fn call(
        &mut self,
        id: ValueId,
        kind: CallKind,
        func: ValueId,
        args: ValueId,
        kwargs: Option<ValueId>,
        path: &mut Vec<Seg>,
    ) -> J {
        let name = self.global_name(func);
        let at = self.offset_of(id);
        let array_call =
            matches!(kind, CallKind::Reduce | CallKind::NewObj | CallKind::NewObjEx | CallKind::Obj | CallKind::Inst);
        if array_call {
            match name.as_deref() {
                Some("numpy.core.multiarray._reconstruct" | "numpy._core.multiarray._reconstruct") => {
                    return self.reconstruct(id, args, at, path)
                }
                Some("numpy.core.numeric._frombuffer" | "numpy._core.numeric._frombuffer") => {
                    return self.frombuffer(args, at, path)
                }
                Some("numpy.core.multiarray.scalar" | "numpy._core.multiarray.scalar") => return self.scalar(args, at),
                Some("numpy.dtype") => {
                    return match (Reader { g: &self.graph() }).dtype(id) {
                        Ok(d) => json!({"type": "dtype", "descr": d.json_descr()}),
                        Err(e) => self.error(at, format!("dtype: {e}")),
                    }
                }
                Some("joblib.numpy_pickle.NumpyArrayWrapper") if self.nested.contains_key(&id) => {
                    return self.wrapper(id, at, path)
                }
                Some("_codecs.encode") => {
                    if let Some(b) = self.latin1_bytes(id) {
                        return json!({"type": "bytes", "hex": hex(&b)});
                    }
                }
                Some("builtins.set" | "builtins.frozenset" | "builtins.bytearray" | "builtins.bytes")
                    if kind == CallKind::Reduce =>
                {
                    if let Some(j) = self.builtin_value(name.as_deref().unwrap_or(""), args, path) {
                        return j;
                    }
                }
                Some(
                    "torch._utils._rebuild_tensor_v2"
                    | "torch._utils._rebuild_tensor"
                    | "torch._utils._rebuild_parameter"
                    | "torch._utils._rebuild_parameter_with_state",
                ) => return self.tensor(name.as_deref().unwrap_or(""), args, at, path),
                _ => {}
            }
        }
        let verdict = match self.v(func) {
            Value::Global(g) => self.policy.judge(&g.module, &g.name).verdict,
            _ => Verdict::Unknown,
        };
        let object = array_call && verdict == Verdict::Safe;
        let mut m = Map::new();
        if object {
            m.insert("type".into(), json!("object"));
            // copyreg._reconstructor(cls, base, state): an instance of cls.
            let cls = match name.as_deref() {
                Some("copyreg._reconstructor") => {
                    self.tuple_items(args).first().and_then(|c| self.global_name(*c)).or(name.clone())
                }
                _ => name.clone(),
            };
            m.insert("class".into(), json!(cls));
            if cls != name {
                m.insert("via".into(), json!(name));
            }
        } else {
            m.insert("type".into(), json!("call"));
            path.push(json!("__func__"));
            let f = self.value(func, path);
            path.pop();
            m.insert("func".into(), f);
        }
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
        if let Some(kw) = kwargs {
            path.push(json!("__kwargs__"));
            let k = self.value(kw, path);
            path.pop();
            m.insert("kwargs".into(), k);
        }
        if !object {
            m.insert("via".into(), json!(kind));
            m.insert("offset".into(), json!(at));
            m.insert("verdict".into(), json!(verdict));
        }
        self.state_and_items(id, &mut m, path);
        J::Object(m)
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
                Value::List(xs) => Some(json!({"type": ty, "items": self.seq(xs, path)})),
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
    fn latin1_bytes(&self, id: ValueId) -> Option<Vec<u8>> {
        let Value::Call(c) = self.v(id) else { return None };
        let items = self.tuple_items(c.args);
        match items {
            [t, e] => self.encoded_latin1(*t, *e),
            _ => None,
        }
    }

    /// `text.encode(enc)` when `enc` names latin-1 and `text` fits it.
    fn encoded_latin1(&self, text: ValueId, enc: ValueId) -> Option<Vec<u8>> {
        if !dtype::is_latin1_codec(self.a.full_str(enc)?) {
            return None;
        }
        dtype::latin1(self.a.full_str(text)?)
    }

    /// The bytes behind an array's data value: in memory, or a spilled file.
    fn data_of(&self, id: ValueId) -> Result<Data, String> {
        match self.v(id) {
            Value::Bytes(b) | Value::ByteArray(b) => match &**b {
                Blob::Full(b) => Ok(Data::Mem(b.to_vec())),
                Blob::Part(p) => self.spill(p.offset, p.len, false),
            },
            Value::Str(r) => match self.a.str(*r) {
                // Python 2 pickles: a latin-1 str.
                BlobView::Full(s) => {
                    dtype::latin1(s).map(Data::Mem).ok_or_else(|| "array data is text beyond latin-1".to_string())
                }
                BlobView::Part(_) => Err("array data is a long str, not bytes".into()),
            },
            Value::Call(c) if self.global_name(c.func).as_deref() == Some("_codecs.encode") => {
                if let Some(b) = self.latin1_bytes(id) {
                    return Ok(Data::Mem(b));
                }
                match self.tuple_items(c.args) {
                    [t, _] => match self.v(*t) {
                        Value::Str(r) => match self.a.str(*r) {
                            BlobView::Part(p) => self.spill(p.offset, p.len, true),
                            BlobView::Full(_) => Err("_codecs.encode data is not latin-1 text".into()),
                        },
                        _ => Err("_codecs.encode data is not latin-1 text".into()),
                    },
                    _ => Err("_codecs.encode takes two arguments".into()),
                }
            }
            // Protocol ≤ 2 writes empty bytes as `bytes()`.
            Value::Call(c)
                if self.global_name(c.func).as_deref() == Some("builtins.bytes")
                    && self.a.tuple(c.args).is_some_and(|t| t.is_empty()) =>
            {
                Ok(Data::Mem(Vec::new()))
            }
            Value::Buffer { .. } => Err("array data is an out-of-band buffer (not in the file)".into()),
            _ => Err("array data is not bytes".into()),
        }
    }

    fn spill(&self, offset: u64, len: u64, latin1: bool) -> Result<Data, String> {
        match self.ex.store.borrow().spills.get(&(self.part, offset)) {
            Some(s) => Ok(Data::Spill { spill: s.clone(), latin1 }),
            None => Err(format!("array data of {len} bytes was not kept")),
        }
    }

    /// Writes an `.npy` file for an array whose data is a value of the pickle.
    #[allow(clippy::too_many_arguments)]
    fn write_array(
        &mut self,
        class: &str,
        dtype: Dtype,
        shape: Vec<u64>,
        fortran: bool,
        data: Data,
        reorder: Option<Reorder>,
        at: u64,
        path: &mut [Seg],
    ) -> J {
        let Some(nbytes) = shape.iter().try_fold(dtype.itemsize(), |a, &d| a.checked_mul(d)) else {
            return self.error(at, "array size overflows");
        };
        let mismatch =
            |have: u64| format!("shape {shape:?} of {} needs {nbytes} bytes; the data has {have}", dtype.json_descr());
        if let Some(have) = data.len().filter(|h| *h != nbytes) {
            return self.error(at, mismatch(have));
        }
        let header = npy_header(&dtype, fortran, &shape);
        let name = path_name(path);
        let store = self.ex.store.clone();
        let opened = data.open(&store.borrow());
        let mut src = match opened {
            Ok(r) => r,
            Err(e) => return self.error(at, format!("cannot read array data: {e}")),
        };
        let result = store.borrow_mut().write_new("arrays", &name, "npy", |w| {
            w.write_all(&header)?;
            match reorder {
                Some(how) => {
                    let mut all = Vec::new();
                    (&mut src).take(nbytes + 1).read_to_end(&mut all)?;
                    if all.len() as u64 != nbytes {
                        return Err(io::Error::other(mismatch(all.len() as u64)));
                    }
                    match how {
                        Reorder::Permute(p) => {
                            w.write_all(&permute(&all, &shape_before(&shape, &p), dtype.itemsize() as usize, &p))
                        }
                        Reorder::Swap(unit) => {
                            if unit > 1 {
                                all.chunks_exact_mut(unit).for_each(|c| c.reverse());
                            }
                            w.write_all(&all)
                        }
                    }
                }
                None => {
                    // Latin-1 text's length is only known once decoded.
                    let n = io::copy(&mut (&mut src).take(nbytes + 1), w)?;
                    if n != nbytes {
                        return Err(io::Error::other(mismatch(n)));
                    }
                    Ok(())
                }
            }
        });
        match result {
            Ok(file) => self.array_node(class, &dtype, shape, fortran, nbytes, file, path),
            Err(e) => self.error(at, format!("cannot write array: {e}")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn array_node(
        &mut self,
        class: &str,
        dtype: &Dtype,
        shape: Vec<u64>,
        fortran: bool,
        nbytes: u64,
        file: String,
        path: &[Seg],
    ) -> J {
        let descr = dtype.json_descr();
        self.ex.arrays.push(ArrayRecord {
            file: file.clone(),
            path: path.to_vec(),
            dtype: descr.clone(),
            shape: shape.clone(),
            fortran,
            nbytes,
            member: self.member.clone(),
            pickle: Some(self.pickle),
        });
        json!({"type": "ndarray", "class": class, "dtype": descr, "shape": shape,
               "order": if fortran { "F" } else { "C" }, "file": file})
    }

    /// An object array: the pickled list, nested by shape (C order).
    fn object_array(&mut self, class: &str, shape: Vec<u64>, items: ValueId, at: u64, path: &mut Vec<Seg>) -> J {
        let Value::List(list) = self.v(items) else { return self.error(at, "object array data is not a list") };
        let count: Option<u64> = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        if count != Some(list.len() as u64) {
            return self.error(at, format!("object array of shape {shape:?} holds {} items", list.len()));
        }
        // An empty array still nests one list per index before its first 0
        // axis: (10**18, 0) would be 10**18 lists.
        let outer = shape.iter().take_while(|&&d| d != 0).try_fold(1u64, |a, &d| a.checked_mul(d));
        match outer.and_then(|n| usize::try_from(n).ok()).and_then(|n| n.checked_add(self.ex.nodes)) {
            Some(total) if total <= MAX_EXTRACT_NODES => self.ex.nodes = total,
            _ => {
                let msg = format!(
                    "object array of shape {shape:?}: more than MAX_EXTRACT_NODES ({MAX_EXTRACT_NODES}) values"
                );
                return self.error(at, msg);
            }
        }
        // Each item's path is its index in the array (`a[i, j]` → i, j).
        let mut flat = Vec::with_capacity(list.len());
        let mut idx = vec![0u64; shape.len()];
        for &it in list.iter() {
            let depth = path.len();
            path.extend(idx.iter().map(|i| json!(i)));
            flat.push(self.value(it, path));
            path.truncate(depth);
            for d in (0..shape.len()).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        let nested = nest(flat, &shape);
        json!({"type": "ndarray", "class": class, "dtype": "|O", "shape": shape, "items": nested})
    }

    /// `_reconstruct(cls, (0,), b'b')` + `BUILD((version, shape, dtype, is_fortran, data))`.
    fn reconstruct(&mut self, id: ValueId, args: ValueId, at: u64, path: &mut Vec<Seg>) -> J {
        let class = self.tuple_items(args).first().and_then(|c| self.global_name(*c)).unwrap_or("numpy.ndarray".into());
        let Some(state) = self.states.get(&id).and_then(|s| s.last().copied()) else {
            return self.error(at, "array has no BUILD state");
        };
        let items = self.tuple_items(state);
        let (shape, dt, fort, data) = match items {
            [_, s, d, f, x] | [s, d, f, x] => (*s, *d, *f, *x),
            _ => return self.error(at, "array state is not a 4- or 5-tuple"),
        };
        let g = self.graph();
        let r = Reader { g: &g };
        let shape = match r.shape(shape) {
            Ok(s) => s,
            Err(e) => return self.error(at, e),
        };
        let dtype = match r.dtype(dt) {
            Ok(d) => d,
            Err(e) => return self.error(at, format!("dtype: {e}")),
        };
        let fortran = r.int_of(fort).unwrap_or(0) != 0;
        if dtype.is_object() {
            return self.object_array(&class, shape, data, at, path);
        }
        let data = match self.data_of(data) {
            Ok(d) => d,
            Err(e) => return self.error(at, e),
        };
        // numpy's array_setstate byte-swaps a non-native array to native
        // order on load (`_frombuffer` and joblib keep the stored order):
        // written as `pickle.load` gives it on a little-endian machine.
        if let Dtype::Plain { descr, itemsize } = &dtype {
            if let Some(rest) = descr.strip_prefix('>') {
                let unit = match rest.as_bytes().first() {
                    Some(b'c') => itemsize / 2,
                    Some(b'U') => 4,
                    _ => *itemsize,
                };
                let native = Dtype::Plain { descr: format!("<{rest}"), itemsize: *itemsize };
                let bytes = shape.iter().try_fold(*itemsize, |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX);
                if bytes > MAX_GATHER_BYTES {
                    return self.error(at, format!("byte-swapping more than MAX_GATHER_BYTES ({MAX_GATHER_BYTES})"));
                }
                return self.write_array(
                    &class,
                    native,
                    shape,
                    fortran,
                    data,
                    Some(Reorder::Swap(unit as usize)),
                    at,
                    path,
                );
            }
        }
        self.write_array(&class, dtype, shape, fortran, data, None, at, path)
    }

    /// `_frombuffer(buf, dtype, shape, order[, axis_order])` (protocol 5).
    fn frombuffer(&mut self, args: ValueId, at: u64, path: &mut [Seg]) -> J {
        let items = self.tuple_items(args);
        let (buf, dt, shape, order, axes) = match items {
            [b, d, s, o] => (*b, *d, *s, *o, None),
            [b, d, s, o, a] => (*b, *d, *s, *o, Some(*a)),
            _ => return self.error(at, "_frombuffer takes 4 or 5 arguments"),
        };
        let g = self.graph();
        let r = Reader { g: &g };
        let dtype = match r.dtype(dt) {
            Ok(d) => d,
            Err(e) => return self.error(at, format!("dtype: {e}")),
        };
        let shape = match r.shape(shape) {
            Ok(s) => s,
            Err(e) => return self.error(at, e),
        };
        let order = r.str_of(order).unwrap_or_default();
        let axes = match axes.filter(|a| !matches!(self.v(*a), Value::None)) {
            Some(a) => match r.shape(a) {
                Ok(p) => Some(p.into_iter().map(|x| x as usize).collect::<Vec<usize>>()),
                Err(e) => return self.error(at, format!("axis_order: {e}")),
            },
            None => None,
        };
        if matches!(self.v(buf), Value::Buffer { .. }) {
            return json!({"type": "ndarray", "class": "numpy.ndarray", "dtype": dtype.json_descr(), "shape": shape,
                          "data": {"type": "external_buffer"}});
        }
        let data = match self.data_of(buf) {
            Ok(d) => d,
            Err(e) => return self.error(at, e),
        };
        match (order.as_str(), axes) {
            ("C", None) | ("K", None) => self.write_array("numpy.ndarray", dtype, shape, false, data, None, at, path),
            ("F", None) => self.write_array("numpy.ndarray", dtype, shape, true, data, None, at, path),
            ("K", Some(p)) => {
                // reshape(shape, 'C').transpose(p): shape[i] of the result is shape[p[i]].
                let mut seen = vec![false; shape.len()];
                if p.len() != shape.len() || p.iter().any(|&x| x >= seen.len() || std::mem::replace(&mut seen[x], true))
                {
                    return self.error(at, "axis_order is not a permutation of the axes");
                }
                let out: Vec<u64> = p.iter().map(|&i| shape[i]).collect();
                let identity = p.iter().enumerate().all(|(i, &x)| i == x);
                let reversed = p.iter().enumerate().all(|(i, &x)| x == p.len() - 1 - i);
                if identity {
                    self.write_array("numpy.ndarray", dtype, out, false, data, None, at, path)
                } else if reversed {
                    self.write_array("numpy.ndarray", dtype, out, true, data, None, at, path)
                } else {
                    let bytes = out.iter().try_fold(dtype.itemsize(), |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX);
                    if bytes > MAX_GATHER_BYTES {
                        return self.error(at, format!("reordering more than MAX_GATHER_BYTES ({MAX_GATHER_BYTES})"));
                    }
                    self.write_array("numpy.ndarray", dtype, out, false, data, Some(Reorder::Permute(p)), at, path)
                }
            }
            (o, _) => self.error(at, format!("_frombuffer order {o:?} is not C, F or K")),
        }
    }

    /// `scalar(dtype, raw_bytes)`.
    fn scalar(&mut self, args: ValueId, at: u64) -> J {
        let (dt, raw) = match self.tuple_items(args) {
            [d, r] => (*d, *r),
            [d] => {
                return json!({"type": "scalar", "dtype": Reader { g: &self.graph() }.dtype(*d).map(|d| d.json_descr()).unwrap_or(J::Null), "value": null})
            }
            _ => return self.error(at, "scalar takes 1 or 2 arguments"),
        };
        let dtype = match (Reader { g: &self.graph() }).dtype(dt) {
            Ok(d) => d,
            Err(e) => return self.error(at, format!("dtype: {e}")),
        };
        let bytes = match self.data_of(raw) {
            Ok(Data::Mem(b)) => b,
            Ok(_) => return self.error(at, "scalar data too long"),
            Err(e) => return self.error(at, e),
        };
        if bytes.len() as u64 != dtype.itemsize() {
            return self.error(
                at,
                format!("scalar of {} takes {} bytes, not {}", dtype.json_descr(), dtype.itemsize(), bytes.len()),
            );
        }
        json!({"type": "scalar", "dtype": dtype.json_descr(), "value": scalar_value(&dtype, &bytes)})
    }

    /// A joblib `NumpyArrayWrapper`: the payload written during the scan.
    fn wrapper(&mut self, id: ValueId, at: u64, path: &mut Vec<Seg>) -> J {
        if let Some(Some(root)) = self.nested.get(&id).copied() {
            // Object dtype: the nested pickle builds the array.
            return self.value(root, path);
        }
        let class = {
            let g = self.graph();
            let r = Reader { g: &g };
            g.state(id)
                .and_then(|s| match self.v(s) {
                    Value::Dict(p) => {
                        p.iter().find(|(k, _)| r.str_of(*k).as_deref() == Some("subclass")).map(|(_, v)| *v)
                    }
                    _ => None,
                })
                .and_then(|c| r.global_of(c))
                .unwrap_or_else(|| "numpy.ndarray".into())
        };
        let payload = self.ex.store.borrow().payloads.get(&(self.part, id)).cloned();
        match payload {
            Some(Ok(p)) => {
                // In a dry run nothing was written and `claim` only names it.
                let file = self.ex.store.borrow_mut().claim(&p.tmp, "arrays", &path_name(path), "npy");
                match file {
                    Ok(f) => self.array_node(&class, &p.dtype, p.shape, p.fortran, p.nbytes, f, path),
                    Err(e) => self.error(at, format!("cannot write array: {e}")),
                }
            }
            Some(Err(e)) => self.error(at, e),
            None => self.error(at, "joblib array payload was not read"),
        }
    }

    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.
    fn tensor(&mut self, func: &str, args: ValueId, at: u64, path: &mut Vec<Seg>) -> J {
        let items = self.tuple_items(args);
        if func.starts_with("torch._utils._rebuild_parameter") {
            // (data, requires_grad, backward_hooks[, state]): the tensor inside.
            let Some(&data) = items.first() else { return self.error(at, "_rebuild_parameter without data") };
            let mut t = self.value(data, path);
            if let (J::Object(m), Some(rg)) = (&mut t, items.get(1)) {
                if let Value::Bool(b) = self.v(*rg) {
                    m.insert("requires_grad".into(), json!(b));
                }
                m.insert("parameter".into(), json!(true));
            }
            return t;
        }
        let (storage, offset, size, stride) = match items {
            [s, o, z, t, ..] => (*s, *o, *z, *t),
            _ => return self.error(at, "tensor rebuild takes at least 4 arguments"),
        };
        let requires_grad = items.get(4).map(|v| matches!(self.v(*v), Value::Bool(true))).unwrap_or(false);
        let g = self.graph();
        let r = Reader { g: &g };
        let (Ok(size), Ok(stride)) = (r.shape(size), r.shape(stride)) else {
            return self.error(at, "tensor size or stride is not a tuple of integers");
        };
        let Some(offset) = r.int_of(offset).and_then(|o| u64::try_from(o).ok()) else {
            return self.error(at, "tensor storage offset is not a non-negative integer");
        };
        // persistent_load(('storage', StorageClass, key, location, numel)).
        let Value::Persistent { pid } = self.v(storage) else {
            return self.error(at, "tensor storage is not a persistent id");
        };
        let pid = self.tuple_items(*pid);
        let (cls, key, numel) = match pid {
            [_, c, k, _, n, ..] => (*c, *k, *n),
            _ => return self.error(at, "storage persistent id is not a 5-tuple"),
        };
        let Value::Global(cls) = self.v(cls) else { return self.error(at, "storage class is not a global") };
        let Some((descr, torch_dtype, elsize)) = torch_dtype(&cls.name) else {
            return self.error(at, format!("unknown storage class {}.{}", cls.module, cls.name));
        };
        let (Some(key), Some(numel)) = (r.str_of(key), r.int_of(numel).and_then(|n| u64::try_from(n).ok())) else {
            return self.error(at, "storage key or size is malformed");
        };
        if size.len() != stride.len() {
            return self.error(at, "tensor size and stride differ in length");
        }
        let count: Option<u64> = size.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let Some(count) = count else { return self.error(at, "tensor size overflows") };
        // The last element read must lie inside the storage.
        if count > 0 {
            let last = size
                .iter()
                .zip(&stride)
                .try_fold(offset, |a, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| a.checked_add(x)));
            if last.is_none_or(|l| l >= numel) {
                return self.error(at, format!("tensor reads past its storage of {numel} elements (offset {offset})"));
            }
        }
        let dtype = Dtype::Plain { descr: descr.into(), itemsize: elsize };
        let contiguous = {
            let mut expect = 1u64;
            let mut ok = true;
            for (&d, &s) in size.iter().zip(&stride).rev() {
                if d != 1 && s != expect {
                    ok = false;
                }
                expect = expect.saturating_mul(d);
            }
            ok
        };
        let Some(nbytes) = count.checked_mul(elsize) else { return self.error(at, "tensor size overflows") };
        // A view can repeat its storage (stride 0): bound what a small file
        // can make us write.
        let storage_bytes = numel.saturating_mul(elsize);
        if !contiguous && nbytes > MAX_GATHER_BYTES {
            return self.error(at, format!("reordering more than MAX_GATHER_BYTES ({MAX_GATHER_BYTES})"));
        }
        if !contiguous && nbytes > storage_bytes.max(1 << 20).saturating_mul(MAX_VIEW_REPEAT) {
            let msg = format!("tensor view of {nbytes} bytes repeats its {storage_bytes}-byte storage more than MAX_VIEW_REPEAT ({MAX_VIEW_REPEAT}) times");
            return self.error(at, msg);
        }
        let name = path_name(path);
        let store = self.ex.store.clone();
        let header = npy_header(&dtype, false, &size);
        let result = self.with_storage(&key, numel, elsize, |m| {
            store.borrow_mut().write_new("arrays", &name, "npy", |w| {
                w.write_all(&header)?;
                if contiguous {
                    io::copy(&mut m.take(offset * elsize), &mut io::sink())?;
                    let n = io::copy(&mut m.take(nbytes), w)?;
                    if n != nbytes {
                        return Err(io::Error::other("storage cut short"));
                    }
                    Ok(())
                } else {
                    if numel * elsize > MAX_GATHER_BYTES {
                        return Err(io::Error::other(format!(
                            "reordering more than MAX_GATHER_BYTES ({MAX_GATHER_BYTES})"
                        )));
                    }
                    let mut all = Vec::new();
                    m.take(numel * elsize).read_to_end(&mut all)?;
                    if (all.len() as u64) < numel * elsize {
                        return Err(io::Error::other("storage cut short"));
                    }
                    w.write_all(&gather(&all, elsize as usize, offset, &size, &stride))
                }
            })
        });
        match result {
            Ok(file) => {
                self.ex.arrays.push(ArrayRecord {
                    file: file.clone(),
                    path: path.to_vec(),
                    dtype: json!(descr),
                    shape: size.clone(),
                    fortran: false,
                    nbytes,
                    member: self.member.clone(),
                    pickle: Some(self.pickle),
                });
                json!({"type": "tensor", "dtype": descr, "torch_dtype": torch_dtype, "shape": size,
                       "file": file, "requires_grad": requires_grad})
            }
            Err(e) => self.error(at, format!("tensor: {e}")),
        }
    }
}

impl Emitter<'_, '_> {
    /// Runs `f` on a reader of storage `key`'s bytes: the `data/<key>` record
    /// of a zip checkpoint, or the key's slot in a legacy checkpoint's
    /// storage section (FORMATS.md §4.2: after the five pickles, per key an
    /// `int64` element count and the raw bytes).
    fn with_storage<T>(
        &mut self,
        key: &str,
        numel: u64,
        elsize: u64,
        f: impl FnOnce(&mut dyn Read) -> io::Result<T>,
    ) -> Result<T, String> {
        let need = numel.checked_mul(elsize).ok_or("storage size overflows")?;
        if self.member.is_none() && !self.layered && self.a.pickles.len() >= 5 {
            let slots = self.legacy_slots()?;
            let &(at, len) = slots.get(key).ok_or_else(|| format!("storage {key:?} is not in the storage section"))?;
            if len < need {
                return Err(format!("storage {key:?} holds {len} bytes, fewer than {numel} elements"));
            }
            let mut file = std::fs::File::open(&self.ex.file).map_err(|e| e.to_string())?;
            file.seek(io::SeekFrom::Start(at)).map_err(|e| e.to_string())?;
            let mut r = io::BufReader::new(file).take(len);
            return f(&mut r).map_err(|e| e.to_string());
        }
        let member = match self.member.as_deref().and_then(|m| m.rfind('/').map(|i| &m[..=i])) {
            Some(prefix) if !prefix.contains('!') && !self.layered => format!("{prefix}data/{key}"),
            _ => return Err("tensor data is read from zip and legacy checkpoints only, not nested ones".into()),
        };
        let mut zip = match self.ex.zip.take() {
            Some(z) => z,
            None => std::fs::File::open(&self.ex.file)
                .map_err(|e| e.to_string())
                .and_then(|f| zip::ZipArchive::new(f).map_err(|e| e.to_string()))
                .map_err(|e| format!("cannot open checkpoint: {e}"))?,
        };
        let result = (|| {
            let mut m = zip.by_name(&member).map_err(|e| format!("{member}: {e}"))?;
            if m.size() < need {
                return Err(format!("{member} holds {} bytes, fewer than {numel} elements", m.size()));
            }
            f(&mut m).map_err(|e| e.to_string())
        })();
        self.ex.zip = Some(zip);
        result
    }

    /// Where each storage's bytes are in a legacy checkpoint: key →
    /// (offset, length), read once from the file.
    fn legacy_slots(&mut self) -> Result<&Slots, String> {
        if self.legacy.is_none() {
            let slots = self.read_legacy_slots();
            self.legacy = Some(slots);
        }
        match self.legacy.as_ref().expect("just set") {
            Ok(m) => Ok(m),
            Err(e) => Err(e.clone()),
        }
    }

    fn read_legacy_slots(&self) -> Result<Slots, String> {
        let a = self.a;
        let g = AGraph { a, states: &self.states };
        let r = Reader { g: &g };
        // Element sizes by key, from the object pickle's persistent ids.
        let mut elsize: HashMap<String, u64> = HashMap::new();
        for e in a.events.iter().filter(|e| e.pickle == 3) {
            let EventKind::PersistentId { pid } = e.kind else { continue };
            if let Some([_, cls, key, ..]) = r.items(pid) {
                if let (Some(cls), Some(key)) = (r.global_of(*cls), r.str_of(*key)) {
                    let class = cls.rsplit('.').next().unwrap_or("");
                    if let Some((_, _, size)) = torch_dtype(class) {
                        elsize.entry(key).or_insert(size);
                    }
                }
            }
        }
        let keys_root = a.pickles[4].root.ok_or("no storage key list")?;
        let keys: Vec<String> = r
            .items(keys_root)
            .ok_or("the fifth pickle is not the storage key list")?
            .iter()
            .map(|k| r.str_of(*k).ok_or("a storage key is not a string"))
            .collect::<Result<_, _>>()?;
        if keys.len() > crate::limits::MAX_TORCH_STORAGES {
            return Err("more than MAX_TORCH_STORAGES storages".into());
        }
        let mut file = std::fs::File::open(&self.ex.file).map_err(|e| e.to_string())?;
        let total = file.metadata().map_err(|e| e.to_string())?.len();
        let mut pos = a.pickles[4].end;
        let mut out = HashMap::new();
        for key in keys {
            let size = *elsize.get(&key).ok_or_else(|| format!("storage {key:?} has no persistent id"))?;
            let mut n = [0u8; 8];
            file.seek(io::SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
            file.read_exact(&mut n).map_err(|_| format!("storage section ends at offset {pos}"))?;
            let numel = u64::try_from(i64::from_le_bytes(n)).map_err(|_| "negative storage size")?;
            let len = numel.checked_mul(size).ok_or("storage size overflows")?;
            let at = pos + 8;
            if at.checked_add(len).is_none_or(|end| end > total) {
                return Err(format!("storage {key:?} runs past the end of the file"));
            }
            out.entry(key).or_insert((at, len));
            pos = at + len;
        }
        Ok(out)
    }
}

/// numpy descriptor, torch dtype name and element size of a storage class.
fn torch_dtype(class: &str) -> Option<(&'static str, &'static str, u64)> {
    Some(match class {
        "FloatStorage" => ("<f4", "float32", 4),
        "DoubleStorage" => ("<f8", "float64", 8),
        "HalfStorage" => ("<f2", "float16", 2),
        "BFloat16Storage" => ("<u2", "bfloat16", 2),
        "LongStorage" => ("<i8", "int64", 8),
        "IntStorage" => ("<i4", "int32", 4),
        "ShortStorage" => ("<i2", "int16", 2),
        "CharStorage" => ("|i1", "int8", 1),
        "ByteStorage" => ("|u1", "uint8", 1),
        "BoolStorage" => ("|b1", "bool", 1),
        "ComplexFloatStorage" => ("<c8", "complex64", 8),
        "ComplexDoubleStorage" => ("<c16", "complex128", 16),
        _ => return None,
    })
}

/// Elements of a strided view, gathered in C order.
fn gather(storage: &[u8], elsize: usize, offset: u64, size: &[u64], stride: &[u64]) -> Vec<u8> {
    let count: u64 = size.iter().product();
    let mut out = Vec::with_capacity((count as usize) * elsize);
    let mut idx = vec![0u64; size.len()];
    for _ in 0..count {
        let e = offset + idx.iter().zip(stride).map(|(i, s)| i * s).sum::<u64>();
        let at = e as usize * elsize;
        out.extend_from_slice(&storage[at..at + elsize]);
        for d in (0..size.len()).rev() {
            idx[d] += 1;
            if idx[d] < size[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// The shape before `transpose(p)`: `before[p[i]] = after[i]`.
fn shape_before(after: &[u64], p: &[usize]) -> Vec<u64> {
    let mut before = vec![0u64; after.len()];
    for (i, &x) in p.iter().enumerate() {
        before[x] = after[i];
    }
    before
}

/// `src` (C order of `before`) transposed by `p`, in C order.
fn permute(src: &[u8], before: &[u64], elsize: usize, p: &[usize]) -> Vec<u8> {
    // Strides of `before` in elements, then the view's strides.
    let mut strides = vec![0u64; before.len()];
    let mut acc = 1u64;
    for d in (0..before.len()).rev() {
        strides[d] = acc;
        acc *= before[d];
    }
    let size: Vec<u64> = p.iter().map(|&x| before[x]).collect();
    let stride: Vec<u64> = p.iter().map(|&x| strides[x]).collect();
    gather(src, elsize, 0, &size, &stride)
}

/// How data is rearranged on the way to the `.npy` file (in memory).
enum Reorder {
    /// `transpose(p)` of C-ordered data, written in C order.
    Permute(Vec<usize>),
    /// Every unit of this many bytes reversed (big- to little-endian).
    Swap(usize),
}

/// Where an array's bytes are.
enum Data {
    Mem(Vec<u8>),
    Spill { spill: store::Spill, latin1: bool },
}

impl Data {
    /// Length in bytes, when known without reading (latin-1 text is not).
    fn len(&self) -> Option<u64> {
        match self {
            Data::Mem(b) => Some(b.len() as u64),
            Data::Spill { spill, latin1: false } => Some(spill.len),
            Data::Spill { .. } => None,
        }
    }

    /// The bytes, as a reader (latin-1 text decoded on the way).
    fn open(&self, store: &Store) -> io::Result<Box<dyn Read>> {
        match self {
            Data::Mem(b) => Ok(Box::new(io::Cursor::new(b.clone()))),
            Data::Spill { spill, latin1: false } => store.open_spill(spill),
            Data::Spill { spill, latin1: true } => {
                Ok(Box::new(Latin1 { inner: store.open_spill(spill)?, pending: None }))
            }
        }
    }
}

/// UTF-8 text of code points ≤ 0xFF read as one byte per code point (the
/// data of a protocol ≤ 2 numpy pickle: `_codecs.encode(text, 'latin1')`).
struct Latin1 {
    inner: Box<dyn Read>,
    pending: Option<u8>,
}

impl Read for Latin1 {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut buf = vec![0u8; out.len().min(1 << 16)];
        loop {
            let n = self.inner.read(&mut buf)?;
            if n == 0 {
                if self.pending.is_some() {
                    return Err(io::Error::other("array text ends inside a character"));
                }
                return Ok(0);
            }
            let mut k = 0;
            for &b in &buf[..n] {
                match self.pending.take() {
                    Some(lead) => {
                        if b & 0xC0 != 0x80 {
                            return Err(io::Error::other("array text is not UTF-8"));
                        }
                        out[k] = ((lead & 0x03) << 6) | (b & 0x3F);
                        k += 1;
                    }
                    None if b < 0x80 => {
                        out[k] = b;
                        k += 1;
                    }
                    None if b == 0xC2 || b == 0xC3 => self.pending = Some(b),
                    None => return Err(io::Error::other("array text holds a code point above 0xFF")),
                }
            }
            if k > 0 {
                return Ok(k);
            }
        }
    }
}

/// Nested lists by shape (C order).
fn nest(flat: Vec<J>, shape: &[u64]) -> J {
    if shape.len() <= 1 {
        return if shape.is_empty() { flat.into_iter().next().unwrap_or(J::Null) } else { J::Array(flat) };
    }
    let inner: u64 = shape[1..].iter().product();
    if inner == 0 {
        return J::Array((0..shape[0]).map(|_| nest(Vec::new(), &shape[1..])).collect());
    }
    let mut out = Vec::new();
    let mut it = flat.into_iter();
    for _ in 0..shape[0] {
        let chunk: Vec<J> = it.by_ref().take(inner as usize).collect();
        out.push(nest(chunk, &shape[1..]));
    }
    J::Array(out)
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

fn int_json(i: i64) -> J {
    if i.unsigned_abs() <= 1 << 53 {
        json!(i)
    } else {
        json!({"type": "int", "value": i.to_string()})
    }
}

fn float_json(f: f64) -> J {
    if f.is_nan() {
        json!({"type": "float", "value": "nan"})
    } else if f.is_infinite() {
        json!({"type": "float", "value": if f > 0.0 { "inf" } else { "-inf" }})
    } else {
        serde_json::Number::from_f64(f).map(J::Number).unwrap_or(J::Null)
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// A numpy scalar's value from its raw bytes.
fn scalar_value(dtype: &Dtype, b: &[u8]) -> J {
    let Dtype::Plain { descr, .. } = dtype else { return json!({"hex": hex(b)}) };
    let big = descr.starts_with('>');
    let mut le = b.to_vec();
    if big {
        le.reverse();
    }
    let kind = descr[1..].chars().next().unwrap_or('?');
    let n = le.len();
    let uint = || le.iter().rev().fold(0u128, |a, &x| (a << 8) | x as u128);
    match (kind, n) {
        ('b', 1) => json!(b[0] != 0),
        ('u', 1 | 2 | 4 | 8) => {
            let v = uint() as u64;
            if v <= 1 << 53 {
                json!(v)
            } else {
                json!({"type": "int", "value": v.to_string()})
            }
        }
        ('i', 1 | 2 | 4 | 8) => {
            let v = uint();
            let shift = 128 - 8 * n as u32;
            int_json(((v << shift) as i128 >> shift) as i64)
        }
        ('f', 2) => float_json(f16_to_f64(u16::from_le_bytes([le[0], le[1]]))),
        ('f', 4) => float_json(f32::from_le_bytes(le[..4].try_into().expect("4 bytes")) as f64),
        ('f', 8) => float_json(f64::from_le_bytes(le[..8].try_into().expect("8 bytes"))),
        ('c', 8 | 16) => {
            let half = n / 2;
            let (mut re, mut im) = (b[..half].to_vec(), b[half..].to_vec());
            if big {
                re.reverse();
                im.reverse();
            }
            let f = |x: &[u8]| {
                if x.len() == 4 {
                    f32::from_le_bytes(x.try_into().expect("4")) as f64
                } else {
                    f64::from_le_bytes(x.try_into().expect("8"))
                }
            };
            json!([float_json(f(&re)), float_json(f(&im))])
        }
        _ => json!({"hex": hex(b)}),
    }
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 => {
            if frac == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            }
        }
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Writes the document as pretty JSON.
pub fn write_doc(doc: &J, path: &Path) -> io::Result<()> {
    let f = std::fs::File::create(path)?;
    let mut w = io::BufWriter::new(f);
    serde_json::to_writer_pretty(&mut w, doc)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// The summary rows: the top-level object's attributes (name, type, dtype,
/// shape, size).
pub fn summary_rows(doc: &J) -> Vec<[String; 5]> {
    let mut rows = Vec::new();
    let Some(pickles) = doc["pickles"].as_array() else { return rows };
    for p in pickles {
        let root = &p["root"];
        let attrs = match root.get("type").and_then(J::as_str) {
            Some("object") | Some("call") => root.get("state").or(root.get("dictitems")),
            Some("dict") => Some(root),
            _ => None,
        };
        match attrs.and_then(|a| a.get("items")).and_then(J::as_object) {
            Some(m) => {
                for (k, v) in m {
                    rows.push(describe(k, v));
                }
            }
            None => {
                // An .npz member's pickle is named by its key.
                let name = p["member"].as_str().and_then(|m| m.strip_suffix(".npy")).unwrap_or("(root)");
                rows.push(describe(name, root))
            }
        }
    }
    // Arrays copied as they are (.npy files and .npz members) have no pickle.
    for a in doc["arrays"].as_array().into_iter().flatten().filter(|a| a["pickle"].is_null()) {
        let name = a["path"].get(0).and_then(J::as_str).unwrap_or("(root)").to_string();
        let node = json!({"type": "ndarray", "class": "numpy.ndarray", "dtype": a["dtype"], "shape": a["shape"]});
        rows.push(describe(&name, &node));
    }
    rows
}

fn describe(name: &str, v: &J) -> [String; 5] {
    let ty = match v {
        J::Null => "None".into(),
        J::Bool(_) => "bool".into(),
        J::Number(n) if n.is_f64() => "float".into(),
        J::Number(_) => "int".into(),
        J::String(_) => "str".into(),
        J::Array(_) => "list".into(),
        J::Object(m) => match m.get("type").and_then(J::as_str) {
            Some("object") => m.get("class").and_then(J::as_str).unwrap_or("object").to_string(),
            Some("call") => "call (not run)".into(),
            Some("ndarray") => m.get("class").and_then(J::as_str).unwrap_or("ndarray").to_string(),
            Some("tensor") => format!("tensor ({})", m.get("torch_dtype").and_then(J::as_str).unwrap_or("?")),
            Some("global") => format!(
                "global {}.{}",
                m.get("module").and_then(J::as_str).unwrap_or(""),
                m.get("name").and_then(J::as_str).unwrap_or("")
            ),
            Some(t) => t.to_string(),
            None => "?".into(),
        },
    };
    let dtype = match v.get("dtype") {
        Some(J::String(s)) => s.clone(),
        Some(d @ J::Array(_)) => format!("struct ({} fields)", d.as_array().map_or(0, |a| a.len())),
        _ => String::new(),
    };
    let shape = v
        .get("shape")
        .and_then(J::as_array)
        .map(|s| match &s[..] {
            [one] => format!("({one},)"),
            _ => format!("({})", s.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
        })
        .unwrap_or_default();
    let size = match v {
        J::Array(a) => a.len().to_string(),
        J::String(s) => s.chars().count().to_string(),
        J::Object(m) => {
            if let Some(s) = m.get("shape").and_then(J::as_array) {
                s.iter().filter_map(J::as_u64).product::<u64>().to_string()
            } else if let Some(i) = m.get("items") {
                i.as_array()
                    .map(|a| a.len())
                    .or(i.as_object().map(|o| o.len()))
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        }
        _ => String::new(),
    };
    [crate::py::repr::escape_for_terminal(name), ty, dtype, shape, size]
}
