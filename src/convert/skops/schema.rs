//! The extraction document's values as skops schema nodes
//! (shared/FORMATS.md §5.1): the generic part (JSON values, containers,
//! arrays, scalars, dtypes, globals, shared values). Objects are in
//! `objects`.
//!
//! Every node gets a fresh `__id__` (from 1: skops ignores an id of 0). A
//! value the document shares (`"id"`, then `{"type": "ref"}`) is written in
//! full where skops first meets it and as a `CachedNode` with the same
//! `__id__` afterwards, so the loaded object graph shares it as the
//! pickle's did. The mapper visits children in the order skops' loaders
//! do, which is what makes "first met" the same for both.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use serde_json::{json, Map, Value as J};

use super::error::SkopsError;
use super::npy::{dtype_from_json, npy_bytes, scalar_bytes, scalar_class};
use super::trusted::trusted_by_default;
use crate::extract::kind_of;
use crate::limits::MAX_EXTRACT_DEPTH;

/// Where a member of the `.skops` archive comes from.
pub enum Source {
    /// A file of the extraction folder, copied as it is.
    File(PathBuf),
    /// Bytes made here (scalars, dtypes, bytes values).
    Bytes(Vec<u8>),
}

/// Module roots whose classes and functions a `.skops` file may name.
const LIBRARY_ROOTS: &[&str] = &["sklearn", "numpy", "scipy"];

/// Builds the schema tree and the list of archive members.
pub struct Mapper<'d> {
    /// The extraction folder (paths in the document are relative to it).
    pub dir: PathBuf,
    /// Archive members other than `schema.json`, in order.
    pub members: Vec<(String, Source)>,
    /// Types `get_untrusted_types` will list.
    pub untrusted: BTreeSet<String>,
    /// Full values of the document's shared values, by document id.
    index: HashMap<u64, &'d J>,
    /// Node written for a shared document value: (`__id__`, class, module).
    written: HashMap<u64, (u64, String, String)>,
    /// Shared document values being mapped (a reference to one is a cycle).
    open: HashSet<u64>,
    next_id: u64,
    /// Attribute path of the value being mapped.
    pub path: Vec<String>,
}

impl<'d> Mapper<'d> {
    /// A mapper for the document whose root is `root`.
    pub fn new(dir: PathBuf, root: &'d J) -> Mapper<'d> {
        let mut index = HashMap::new();
        collect_shared(root, &mut index, 0);
        Mapper {
            dir,
            members: Vec::new(),
            untrusted: BTreeSet::new(),
            index,
            written: HashMap::new(),
            open: HashSet::new(),
            next_id: 1,
            path: Vec::new(),
        }
    }

    /// The attribute path as text (`<root>` for the root).
    pub fn path_text(&self) -> String {
        /// Steps shown at each end of a longer path (a message stays short
        /// for a value nested thousands deep).
        const SHOWN: usize = 16;
        match self.path.len() {
            0 => "<root>".into(),
            n if n <= 2 * SHOWN => self.path.join("."),
            n => format!(
                "{}.<{} more steps>.{}",
                self.path[..SHOWN].join("."),
                n - 2 * SHOWN,
                self.path[n - SHOWN..].join(".")
            ),
        }
    }

    /// An "cannot express" error at the current path.
    pub fn unsupported(&self, what: impl Into<String>) -> SkopsError {
        SkopsError::Unsupported { path: self.path_text(), what: what.into() }
    }

    /// A node header: class, module, loader and a fresh id; records the
    /// type as untrusted when its loader does not trust it by default.
    pub fn head(&mut self, class: &str, module: &str, loader: &str) -> Map<String, J> {
        let name = format!("{module}.{class}");
        if !trusted_by_default(loader, &name) {
            self.untrusted.insert(name);
        }
        let mut m = Map::new();
        m.insert("__class__".into(), json!(class));
        m.insert("__module__".into(), json!(module));
        m.insert("__loader__".into(), json!(loader));
        m
    }

    /// Gives a finished node its `__id__`, remembering it for the shared
    /// document value `doc_id` (if any).
    pub fn finish(&mut self, mut m: Map<String, J>, id: u64, doc_id: Option<u64>) -> J {
        if let Some(d) = doc_id {
            let class = m.get("__class__").and_then(J::as_str).unwrap_or("").to_string();
            let module = m.get("__module__").and_then(J::as_str).unwrap_or("").to_string();
            self.written.insert(d, (id, class, module));
        }
        m.insert("__id__".into(), json!(id));
        J::Object(m)
    }

    pub fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Maps a child value reached through `step`.
    pub fn child(&mut self, step: impl Into<String>, v: &'d J) -> Result<J, SkopsError> {
        self.path.push(step.into());
        let r = self.node(v);
        self.path.pop();
        r
    }

    /// Maps one value of the document to its node.
    pub fn node(&mut self, v: &'d J) -> Result<J, SkopsError> {
        if self.path.len() > MAX_EXTRACT_DEPTH {
            return Err(SkopsError::TooDeep(self.path_text()));
        }
        let doc_id = v.get("id").and_then(J::as_u64);
        if let Some(d) = doc_id.or_else(|| ref_id(v)) {
            if let Some((id, class, module)) = self.written.get(&d) {
                return Ok(json!({"__class__": class, "__module__": module, "__loader__": "CachedNode", "__id__": id}));
            }
        }
        let shared = doc_id.or_else(|| ref_id(v));
        // A reference met before the full value: map the full value here.
        let v = match ref_id(v) {
            Some(d) => {
                *self.index.get(&d).ok_or_else(|| self.unsupported(format!("a reference to unknown value {d}")))?
            }
            None => v,
        };
        if let Some(d) = shared {
            if !self.open.insert(d) {
                return Err(self.unsupported("a value that contains itself (skops cannot load reference cycles)"));
            }
        }
        // Reserve the id first: skops memoizes a node before its children.
        let id = self.fresh_id();
        let m = self.body(v);
        if let Some(d) = shared {
            self.open.remove(&d);
        }
        Ok(self.finish(m?, id, shared))
    }

    /// The node of a value, without its id.
    fn body(&mut self, v: &'d J) -> Result<Map<String, J>, SkopsError> {
        match v {
            J::Null | J::Bool(_) | J::Number(_) | J::String(_) => Ok(self.json_node(v.to_string())),
            J::Array(items) => self.seq("list", "ListNode", items),
            J::Object(o) => match o.get("type").and_then(J::as_str).unwrap_or("") {
                "int" => Ok(self.json_node(o.get("value").and_then(J::as_str).unwrap_or("0").to_string())),
                "float" => {
                    let text = match o.get("value").and_then(J::as_str) {
                        Some("nan") => "NaN",
                        Some("inf") => "Infinity",
                        Some("-inf") => "-Infinity",
                        _ => return Err(self.unsupported("a float the document does not spell")),
                    };
                    Ok(self.json_node(text.into()))
                }
                "str" => self.long_str(o),
                "list" => self.seq("list", "ListNode", items_of(o)),
                "tuple" => self.seq("tuple", "TupleNode", items_of(o)),
                "set" => self.seq("set", "SetNode", items_of(o)),
                "frozenset" => self.seq("frozenset", "SetNode", items_of(o)),
                "bytes" | "bytearray" => self.bytes(o),
                "dict" => self.dict(o, "dict", "builtins"),
                "global" => self.global(o),
                "ndarray" => self.ndarray(o),
                "masked_array" => self.masked_node(o),
                "scalar" => self.scalar(o),
                "dtype" => self.dtype(o),
                "object" => self.object(o),
                "call" => self.call(o),
                other => Err(self.unsupported(describe_other(other, o))),
            },
        }
    }

    /// A `JsonNode` holding `content`, a JSON text.
    pub fn json_node(&mut self, content: String) -> Map<String, J> {
        let mut m = self.head("str", "builtins", "JsonNode");
        m.insert("content".into(), J::String(content));
        m.insert("is_json".into(), J::Bool(true));
        m
    }

    fn long_str(&mut self, o: &'d Map<String, J>) -> Result<Map<String, J>, SkopsError> {
        if let Some(s) = o.get("value") {
            return Ok(self.json_node(s.to_string()));
        }
        let file = o.get("file").and_then(J::as_str).ok_or_else(|| self.unsupported("a string with no value"))?;
        let bytes = std::fs::read(self.dir.join(file))?;
        let s = String::from_utf8_lossy(&bytes);
        Ok(self.json_node(J::String(s.into_owned()).to_string()))
    }

    /// A list, tuple or set node of `items`.
    pub fn seq(&mut self, class: &str, loader: &str, items: &'d [J]) -> Result<Map<String, J>, SkopsError> {
        let mut m = self.head(class, "builtins", loader);
        let mut content = Vec::with_capacity(items.len());
        for (i, x) in items.iter().enumerate() {
            content.push(self.child(i.to_string(), x)?);
        }
        m.insert("content".into(), J::Array(content));
        Ok(m)
    }

    /// A `bytes`/`bytearray` value: a `.bin` member.
    fn bytes(&mut self, o: &'d Map<String, J>) -> Result<Map<String, J>, SkopsError> {
        let (class, loader) = match o.get("type").and_then(J::as_str) {
            Some("bytearray") => ("bytearray", "BytearrayNode"),
            _ => ("bytes", "BytesNode"),
        };
        let src = if let Some(h) = o.get("hex").and_then(J::as_str) {
            Source::Bytes(super::npy::hex_decode(h).ok_or_else(|| self.unsupported("bytes with bad hex"))?)
        } else if let Some(f) = o.get("file").and_then(J::as_str) {
            Source::File(self.dir.join(f))
        } else {
            return Err(self.unsupported("bytes with no data"));
        };
        let name = self.member_name("bin");
        self.members.push((name.clone(), src));
        let mut m = self.head(class, "builtins", loader);
        m.insert("file".into(), json!(name));
        Ok(m)
    }

    /// A new archive member name with extension `ext`.
    pub fn member_name(&self, ext: &str) -> String {
        format!("{}.{ext}", self.members.len())
    }

    /// A dict node (`DictNode`) of a document dict (`items` or `pairs`).
    pub fn dict(&mut self, o: &'d Map<String, J>, class: &str, module: &str) -> Result<Map<String, J>, SkopsError> {
        let mut entries = Vec::new();
        if let Some(J::Object(items)) = o.get("items") {
            for (k, v) in items {
                entries.push((k.clone(), "str", v));
            }
        } else if let Some(J::Array(pairs)) = o.get("pairs") {
            entries = self.pairs(pairs)?;
        }
        self.dict_entries(entries, class, module)
    }

    /// `[key, value]` pairs with their keys as skops writes them.
    pub fn pairs(&self, pairs: &'d [J]) -> Result<Vec<(String, &'static str, &'d J)>, SkopsError> {
        let mut out = Vec::with_capacity(pairs.len());
        for p in pairs {
            let (Some(k), Some(v)) = (p.get(0), p.get(1)) else { return Err(self.unsupported("a malformed dict")) };
            let (text, t) = self.dict_key(k)?;
            out.push((text, t, v));
        }
        Ok(out)
    }

    /// A dict node of `(key text, key type, value)` entries: str keys, or
    /// int keys (numpy integer scalars become Python ints, as skops does);
    /// `class`/`module` name the mapping type (`dict`,
    /// `collections.OrderedDict`).
    pub fn dict_entries(
        &mut self,
        entries: Vec<(String, &'static str, &'d J)>,
        class: &str,
        module: &str,
    ) -> Result<Map<String, J>, SkopsError> {
        let mut m = self.head(class, module, "DictNode");
        // skops reads key_types before content.
        let kt_id = self.fresh_id();
        let mut kt = self.head("list", "builtins", "ListNode");
        let types: Vec<J> = entries
            .iter()
            .map(|(_, t, _)| {
                let mut n = self.head(t, "builtins", "TypeNode");
                n.insert("__id__".into(), json!(self.fresh_id()));
                J::Object(n)
            })
            .collect();
        kt.insert("content".into(), J::Array(types));
        let kt = self.finish(kt, kt_id, None);
        let mut content = Map::new();
        for (k, _, v) in entries {
            if content.contains_key(&k) {
                return Err(self.unsupported(format!("dict key {k} appears twice once written as text")));
            }
            let node = self.child(k.clone(), v)?;
            content.insert(k, node);
        }
        m.insert("content".into(), J::Object(content));
        m.insert("key_types".into(), kt);
        Ok(m)
    }

    fn dict_key(&self, k: &J) -> Result<(String, &'static str), SkopsError> {
        match k {
            J::String(s) => Ok((s.clone(), "str")),
            J::Number(n) if n.is_i64() || n.is_u64() => Ok((n.to_string(), "int")),
            J::Object(o) if o.get("type").and_then(J::as_str) == Some("int") => {
                Ok((o.get("value").and_then(J::as_str).unwrap_or("0").to_string(), "int"))
            }
            J::Object(o)
                if o.get("type").and_then(J::as_str) == Some("scalar")
                    && o.get("value").is_some_and(|v| v.is_i64() || v.is_u64()) =>
            {
                Ok((o["value"].to_string(), "int"))
            }
            other => Err(self.unsupported(format!(
                "a dict key that is not a str or an int ({}); skops stores keys as text",
                kind_of(other)
            ))),
        }
    }

    /// A class or function as a value: `FunctionNode` for the numpy/scipy
    /// functions skops knows, `TypeNode` otherwise; only from the
    /// libraries' own modules and builtins.
    fn global(&mut self, o: &'d Map<String, J>) -> Result<Map<String, J>, SkopsError> {
        let module = o.get("module").and_then(J::as_str).unwrap_or("");
        let name = o.get("name").and_then(J::as_str).unwrap_or("");
        let root = module.split('.').next().unwrap_or("");
        if name.is_empty() || name.contains('.') || !(LIBRARY_ROOTS.contains(&root) || module == "builtins") {
            return Err(self.unsupported(format!(
                "{module}.{name}, a function or class outside scikit-learn, numpy, scipy and builtins \
                 (a custom or lambda function cannot be stored)"
            )));
        }
        let full = format!("{module}.{name}");
        let loader = if trusted_by_default("FunctionNode", &full) { "FunctionNode" } else { "TypeNode" };
        Ok(self.head(name, module, loader))
    }

    /// An ndarray: its extracted `.npy` file, or (object dtype) its items.
    fn ndarray(&mut self, o: &'d Map<String, J>) -> Result<Map<String, J>, SkopsError> {
        let class = o.get("class").and_then(J::as_str).unwrap_or("numpy.ndarray");
        let (module, name) = match class {
            "numpy.ndarray" | "numpy.memmap" | "numpy.core.memmap.memmap" | "numpy._core.memmap.memmap" => {
                ("numpy", "ndarray")
            }
            "numpy.matrix" | "numpy.matrixlib.defmatrix.matrix" => ("numpy", "matrix"),
            other => return Err(self.unsupported(format!("an array of class {other}"))),
        };
        let mut m = self.head(name, module, "NdArrayNode");
        if let Some(file) = o.get("file").and_then(J::as_str) {
            let member = self.member_name("npy");
            self.members.push((member.clone(), Source::File(self.dir.join(file))));
            m.insert("type".into(), json!("numpy"));
            m.insert("file".into(), json!(member));
            return Ok(m);
        }
        let items = o.get("items").and_then(J::as_array).ok_or_else(|| self.unsupported("an array with no data"))?;
        let shape: Vec<J> = o.get("shape").and_then(J::as_array).cloned().unwrap_or_default();
        self.object_array(m, items, &shape)
    }

    /// An object array's node `m` completed with its items (`tolist()`'s
    /// items: nested lists for more than one axis) and shape.
    pub fn object_array(
        &mut self,
        mut m: Map<String, J>,
        items: &'d [J],
        shape: &[J],
    ) -> Result<Map<String, J>, SkopsError> {
        if shape.is_empty() {
            return Err(self.unsupported("a 0-d object array"));
        }
        let mut content = Vec::with_capacity(items.len());
        for (i, x) in items.iter().enumerate() {
            self.path.push(i.to_string());
            let r = if x.is_array() { self.nested_list(x) } else { self.node(x) };
            self.path.pop();
            content.push(r?);
        }
        m.insert("type".into(), json!("json"));
        m.insert("content".into(), J::Array(content));
        let sid = self.fresh_id();
        let mut sh = self.head("tuple", "builtins", "TupleNode");
        let dims: Vec<J> = shape
            .iter()
            .map(|d| {
                let mut n = self.json_node(d.to_string());
                n.insert("__id__".into(), json!(self.fresh_id()));
                J::Object(n)
            })
            .collect();
        sh.insert("content".into(), J::Array(dims));
        m.insert("shape".into(), self.finish(sh, sid, None));
        Ok(m)
    }

    /// A row of a multi-dimensional object array (`tolist()` nesting).
    fn nested_list(&mut self, x: &'d J) -> Result<J, SkopsError> {
        if self.path.len() > MAX_EXTRACT_DEPTH {
            return Err(SkopsError::TooDeep(self.path_text()));
        }
        let id = self.fresh_id();
        let items = x.as_array().map(Vec::as_slice).unwrap_or(&[]);
        let mut m = self.head("list", "builtins", "ListNode");
        let mut content = Vec::with_capacity(items.len());
        for (i, y) in items.iter().enumerate() {
            self.path.push(i.to_string());
            let r = if y.is_array() { self.nested_list(y) } else { self.node(y) };
            self.path.pop();
            content.push(r?);
        }
        m.insert("content".into(), J::Array(content));
        Ok(self.finish(m, id, None))
    }

    /// A numpy scalar: a 0-d `.npy` member, class the scalar type.
    fn scalar(&mut self, o: &'d Map<String, J>) -> Result<Map<String, J>, SkopsError> {
        let descr = o.get("dtype").and_then(J::as_str).unwrap_or("");
        let value = o.get("value").unwrap_or(&J::Null);
        let (Some(class), Some(dtype), Some(bytes)) =
            (scalar_class(descr), dtype_from_json(&json!(descr)), scalar_bytes(descr, value))
        else {
            return Err(self.unsupported(format!("a numpy scalar of dtype {descr}")));
        };
        if bytes.len() as u64 != dtype.itemsize() {
            return Err(self.unsupported(format!("a numpy scalar of dtype {descr} with {} bytes", bytes.len())));
        }
        let member = self.member_name("npy");
        self.members.push((member.clone(), Source::Bytes(npy_bytes(&dtype, &[], &bytes))));
        let mut m = self.head(class, "numpy", "NdArrayNode");
        m.insert("type".into(), json!("numpy"));
        m.insert("file".into(), json!(member));
        Ok(m)
    }

    /// A `numpy.dtype`: an empty array of it (skops' `DTypeNode`).
    fn dtype(&mut self, o: &'d Map<String, J>) -> Result<Map<String, J>, SkopsError> {
        let descr = o.get("descr").unwrap_or(&J::Null);
        let dtype = dtype_from_json(descr).ok_or_else(|| self.unsupported(format!("dtype {descr}")))?;
        if dtype.is_object() && !matches!(dtype, crate::extract::dtype::Dtype::Object) {
            return Err(self.unsupported("a structured dtype with object fields"));
        }
        let member = self.member_name("npy");
        self.members.push((member.clone(), Source::Bytes(npy_bytes(&dtype, &[0], &[]))));
        let mut m = self.head("dtype", "numpy", "DTypeNode");
        let cid = self.fresh_id();
        let mut c = self.head("ndarray", "numpy", "NdArrayNode");
        c.insert("type".into(), json!("numpy"));
        c.insert("file".into(), json!(member));
        m.insert("content".into(), self.finish(c, cid, None));
        Ok(m)
    }
}

/// The `items` of a document container (`[]` when absent).
pub fn items_of(o: &Map<String, J>) -> &[J] {
    o.get("items").and_then(J::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The document id a `{"type": "ref"}` points to.
fn ref_id(v: &J) -> Option<u64> {
    (v.get("type").and_then(J::as_str) == Some("ref")).then(|| v.get("id").and_then(J::as_u64)).flatten()
}

/// Indexes every shared value (one with an `"id"`) of the document.
fn collect_shared<'d>(v: &'d J, index: &mut HashMap<u64, &'d J>, depth: usize) {
    if depth > MAX_EXTRACT_DEPTH + 8 {
        return;
    }
    match v {
        J::Array(items) => items.iter().for_each(|x| collect_shared(x, index, depth + 1)),
        J::Object(o) => {
            if o.get("type").and_then(J::as_str) != Some("ref") {
                if let Some(id) = o.get("id").and_then(J::as_u64) {
                    index.entry(id).or_insert(v);
                }
            }
            o.values().for_each(|x| collect_shared(x, index, depth + 1));
        }
        _ => {}
    }
}

fn describe_other(kind: &str, o: &Map<String, J>) -> String {
    match kind {
        "tensor" => "a PyTorch tensor".into(),
        "persistent" => "a persistent id (an object stored outside the pickle)".into(),
        "external_buffer" => "an out-of-band buffer (not in the file)".into(),
        "unknown" => {
            format!("a value the pickle does not define ({})", o.get("why").and_then(J::as_str).unwrap_or("?"))
        }
        "error" => {
            format!("a value that could not be extracted: {}", o.get("message").and_then(J::as_str).unwrap_or("?"))
        }
        other => format!("a value of kind {other}"),
    }
}
