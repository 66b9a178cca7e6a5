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
use crate::convert::check::Arrays;
use crate::convert::json_text::JsonText;
use crate::extract::kind_of;
use crate::limits::MAX_EXTRACT_DEPTH;

/// Where a member of the `.skops` archive comes from.
pub enum Source {
    /// A file of the extraction folder, copied as it is.
    File(PathBuf),
    /// A region `[start, end)` of the arena (a whole `.npy` file), copied
    /// as it is.
    Region(u64, u64),
    /// Bytes made here (scalars, dtypes, bytes values).
    Bytes(Vec<u8>),
}

/// Module roots whose classes and functions a `.skops` file may name.
const LIBRARY_ROOTS: &[&str] = &["sklearn", "numpy", "scipy"];

/// Writes the schema as JSON text and lists the archive members.
///
/// A node is written in two steps: a function that maps a value *opens*
/// its node (`{"__class__": ..., "__module__": ..., "__loader__": ...`
/// and its other keys, [`Mapper::open`]), and whoever reserved the node's
/// id *closes* it (`"__id__": id}`, [`Mapper::close`]). Ids are reserved
/// before a node's children are mapped, in the order skops' loaders
/// visit them; the order of keys in the text does not matter to skops.
pub struct Mapper<'d> {
    /// The extraction folder (paths in the document are relative to it).
    pub dir: PathBuf,
    /// The arrays: `.npy` files in the arena.
    pub arrays: Arrays<'d>,
    /// The schema text written so far.
    pub out: JsonText,
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
    /// Set by [`Mapper::node`] for a shared value: the next [`Mapper::open`]
    /// is its node's, whose class and module go on `heads`.
    want_head: bool,
    /// Class and module of the shared values being mapped, innermost last.
    heads: Vec<(String, String)>,
    next_id: u64,
    /// Attribute path of the value being mapped.
    pub path: Vec<String>,
}

impl<'d> Mapper<'d> {
    /// A mapper for the document whose root is `root`.
    pub fn new(dir: PathBuf, arrays: Arrays<'d>, root: &'d J) -> Mapper<'d> {
        let mut index = HashMap::new();
        collect_shared(root, &mut index, 0);
        Mapper {
            dir,
            arrays,
            out: JsonText::default(),
            members: Vec::new(),
            untrusted: BTreeSet::new(),
            index,
            written: HashMap::new(),
            open: HashSet::new(),
            want_head: false,
            heads: Vec::new(),
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

    /// Opens a node: class, module and loader; records the type as
    /// untrusted when its loader does not trust it by default.
    pub fn open(&mut self, class: &str, module: &str, loader: &str) {
        if !trusted_by_default(loader, module, class) {
            self.untrusted.insert(format!("{module}.{class}"));
        }
        if std::mem::take(&mut self.want_head) {
            self.heads.push((class.to_string(), module.to_string()));
        }
        self.out.raw("{\"__class__\":");
        self.out.string(class);
        self.out.raw(",\"__module__\":");
        self.out.string(module);
        self.out.raw(",\"__loader__\":");
        self.out.string(loader);
    }

    /// Starts the key `key` (a name that needs no escaping) of the open node.
    pub fn key(&mut self, key: &str) {
        self.out.raw(",\"");
        self.out.raw(key);
        self.out.raw("\":");
    }

    /// Closes the open node with its id.
    pub fn close(&mut self, id: u64) {
        self.out.raw(",\"__id__\":");
        self.out.uint(id);
        self.out.raw("}");
    }

    /// Reserves an id, lets `open` write the node (open), and closes it.
    pub fn closed(&mut self, open: impl FnOnce(&mut Self) -> Result<(), SkopsError>) -> Result<(), SkopsError> {
        let id = self.fresh_id();
        open(self)?;
        self.close(id);
        Ok(())
    }

    pub fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Maps a child value reached through `step`.
    pub fn child(&mut self, step: impl Into<String>, v: &'d J) -> Result<(), SkopsError> {
        self.path.push(step.into());
        let r = self.node(v);
        self.path.pop();
        r
    }

    /// Writes the node of one value of the document (closed).
    pub fn node(&mut self, v: &'d J) -> Result<(), SkopsError> {
        if self.path.len() > MAX_EXTRACT_DEPTH {
            return Err(SkopsError::TooDeep(self.path_text()));
        }
        let shared = v.get("id").and_then(J::as_u64).or_else(|| ref_id(v));
        if let Some(d) = shared {
            if let Some((id, class, module)) = self.written.get(&d) {
                let id = *id;
                self.out.raw("{\"__class__\":");
                self.out.string(class);
                self.out.raw(",\"__module__\":");
                self.out.string(module);
                self.out.raw(",\"__loader__\":\"CachedNode\"");
                self.close(id);
                return Ok(());
            }
        }
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
        let heads = self.heads.len();
        self.want_head = shared.is_some();
        self.body(v)?;
        self.want_head = false;
        if let Some(d) = shared {
            self.open.remove(&d);
            let (class, module) = if self.heads.len() > heads { self.heads.pop() } else { None }.unwrap_or_default();
            self.written.insert(d, (id, class, module));
        }
        self.close(id);
        Ok(())
    }

    /// Opens the node of a value.
    fn body(&mut self, v: &'d J) -> Result<(), SkopsError> {
        match v {
            J::Null | J::Bool(_) | J::Number(_) | J::String(_) => self.json_node(&v.to_string()),
            J::Array(items) => self.seq("list", "ListNode", items)?,
            J::Object(o) => match o.get("type").and_then(J::as_str).unwrap_or("") {
                "int" => self.json_node(o.get("value").and_then(J::as_str).unwrap_or("0")),
                "float" => {
                    let text = match o.get("value").and_then(J::as_str) {
                        Some("nan") => "NaN",
                        Some("inf") => "Infinity",
                        Some("-inf") => "-Infinity",
                        _ => return Err(self.unsupported("a float the document does not spell")),
                    };
                    self.json_node(text);
                }
                "str" => self.long_str(o)?,
                "list" => self.seq("list", "ListNode", items_of(o))?,
                "tuple" => self.seq("tuple", "TupleNode", items_of(o))?,
                "set" => self.seq("set", "SetNode", items_of(o))?,
                "frozenset" => self.seq("frozenset", "SetNode", items_of(o))?,
                "bytes" | "bytearray" => self.bytes(o)?,
                "dict" => self.dict(o, "dict", "builtins")?,
                "global" => self.global(o)?,
                "ndarray" => self.ndarray(o)?,
                "masked_array" => self.masked_node(o)?,
                "scalar" => self.scalar(o)?,
                "dtype" => self.dtype(o)?,
                "object" => self.object(o)?,
                "call" => self.call(o)?,
                other => return Err(self.unsupported(describe_other(other, o))),
            },
        }
        Ok(())
    }

    /// Opens a `JsonNode` holding `content`, a JSON text.
    pub fn json_node(&mut self, content: &str) {
        self.open("str", "builtins", "JsonNode");
        self.key("content");
        self.out.string(content);
        self.out.raw(",\"is_json\":true");
    }

    fn long_str(&mut self, o: &'d Map<String, J>) -> Result<(), SkopsError> {
        if let Some(s) = o.get("value") {
            self.json_node(&s.to_string());
            return Ok(());
        }
        let file = o.get("file").and_then(J::as_str).ok_or_else(|| self.unsupported("a string with no value"))?;
        let bytes = std::fs::read(self.dir.join(file))?;
        let s = String::from_utf8_lossy(&bytes);
        self.json_node(&J::String(s.into_owned()).to_string());
        Ok(())
    }

    /// Opens a list, tuple or set node of `items`.
    pub fn seq(&mut self, class: &str, loader: &str, items: &'d [J]) -> Result<(), SkopsError> {
        self.open(class, "builtins", loader);
        self.key("content");
        self.out.raw("[");
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                self.out.raw(",");
            }
            self.child(i.to_string(), x)?;
        }
        self.out.raw("]");
        Ok(())
    }

    /// Opens a `bytes`/`bytearray` value: a `.bin` member.
    fn bytes(&mut self, o: &'d Map<String, J>) -> Result<(), SkopsError> {
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
        self.open(class, "builtins", loader);
        self.key("file");
        self.out.string(&name);
        Ok(())
    }

    /// The arena region (`[start, end)`) that holds the array file `file`
    /// (`arrays/x.npy`), a whole `.npy` file.
    pub fn array_region(&self, file: &str) -> Result<(u64, u64), SkopsError> {
        self.arrays
            .regions
            .get(file)
            .copied()
            .ok_or_else(|| self.unsupported(format!("an array whose data was not written ({file})")))
    }

    /// Opens an `NdArrayNode` of class `module.class` whose data is a new
    /// `.npy` member of the archive, copied from `src`.
    pub fn npy_node(&mut self, class: &str, module: &str, src: Source) {
        let member = self.member_name("npy");
        self.open(class, module, "NdArrayNode");
        self.key("type");
        self.out.raw("\"numpy\"");
        self.key("file");
        self.out.string(&member);
        self.members.push((member, src));
    }

    /// A new archive member name with extension `ext`.
    pub fn member_name(&self, ext: &str) -> String {
        format!("{}.{ext}", self.members.len())
    }

    /// Opens a dict node (`DictNode`) of a document dict (`items` or `pairs`).
    pub fn dict(&mut self, o: &'d Map<String, J>, class: &str, module: &str) -> Result<(), SkopsError> {
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

    /// Opens a dict node of `(key text, key type, value)` entries: str
    /// keys, or int keys (numpy integer scalars become Python ints, as
    /// skops does); `class`/`module` name the mapping type (`dict`,
    /// `collections.OrderedDict`).
    pub fn dict_entries(
        &mut self,
        entries: Vec<(String, &'static str, &'d J)>,
        class: &str,
        module: &str,
    ) -> Result<(), SkopsError> {
        let mut seen = HashSet::with_capacity(entries.len());
        if let Some((k, _, _)) = entries.iter().find(|(k, _, _)| !seen.insert(k.as_str())) {
            return Err(self.unsupported(format!("dict key {k} appears twice once written as text")));
        }
        self.open(class, module, "DictNode");
        // skops reads key_types before content.
        self.key("key_types");
        self.closed(|m| {
            m.open("list", "builtins", "ListNode");
            m.key("content");
            m.out.raw("[");
            for (i, (_, t, _)) in entries.iter().enumerate() {
                if i > 0 {
                    m.out.raw(",");
                }
                m.closed(|m| {
                    m.open(t, "builtins", "TypeNode");
                    Ok(())
                })?;
            }
            m.out.raw("]");
            Ok(())
        })?;
        self.key("content");
        self.out.raw("{");
        for (i, (k, _, v)) in entries.into_iter().enumerate() {
            if i > 0 {
                self.out.raw(",");
            }
            self.out.string(&k);
            self.out.raw(":");
            self.child(k, v)?;
        }
        self.out.raw("}");
        Ok(())
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

    /// Opens a class or function as a value: `FunctionNode` for the
    /// numpy/scipy functions skops knows, `TypeNode` otherwise; only from
    /// the libraries' own modules and builtins.
    fn global(&mut self, o: &'d Map<String, J>) -> Result<(), SkopsError> {
        let module = o.get("module").and_then(J::as_str).unwrap_or("");
        let name = o.get("name").and_then(J::as_str).unwrap_or("");
        let root = module.split('.').next().unwrap_or("");
        if name.is_empty() || name.contains('.') || !(LIBRARY_ROOTS.contains(&root) || module == "builtins") {
            return Err(self.unsupported(format!(
                "{module}.{name}, a function or class outside scikit-learn, numpy, scipy and builtins \
                 (a custom or lambda function cannot be stored)"
            )));
        }
        let loader = if trusted_by_default("FunctionNode", module, name) { "FunctionNode" } else { "TypeNode" };
        self.open(name, module, loader);
        Ok(())
    }

    /// Opens an ndarray: its extracted `.npy` file, or (object dtype) its items.
    fn ndarray(&mut self, o: &'d Map<String, J>) -> Result<(), SkopsError> {
        let class = o.get("class").and_then(J::as_str).unwrap_or("numpy.ndarray");
        let (module, name) = match class {
            "numpy.ndarray" | "numpy.memmap" | "numpy.core.memmap.memmap" | "numpy._core.memmap.memmap" => {
                ("numpy", "ndarray")
            }
            "numpy.matrix" | "numpy.matrixlib.defmatrix.matrix" => ("numpy", "matrix"),
            other => return Err(self.unsupported(format!("an array of class {other}"))),
        };
        if let Some(file) = o.get("file").and_then(J::as_str) {
            let (start, end) = self.array_region(file)?;
            self.npy_node(name, module, Source::Region(start, end));
            return Ok(());
        }
        let items = o.get("items").and_then(J::as_array).ok_or_else(|| self.unsupported("an array with no data"))?;
        let shape: Vec<J> = o.get("shape").and_then(J::as_array).cloned().unwrap_or_default();
        self.open(name, module, "NdArrayNode");
        self.object_array(items, &shape)
    }

    /// Completes an open object array's node with its items (`tolist()`'s
    /// items: nested lists for more than one axis) and shape.
    pub fn object_array(&mut self, items: &'d [J], shape: &[J]) -> Result<(), SkopsError> {
        if shape.is_empty() {
            return Err(self.unsupported("a 0-d object array"));
        }
        self.key("type");
        self.out.raw("\"json\"");
        self.key("content");
        self.items(items)?;
        self.key("shape");
        self.closed(|m| {
            m.open("tuple", "builtins", "TupleNode");
            m.key("content");
            m.out.raw("[");
            for (i, d) in shape.iter().enumerate() {
                if i > 0 {
                    m.out.raw(",");
                }
                m.closed(|m| {
                    m.json_node(&d.to_string());
                    Ok(())
                })?;
            }
            m.out.raw("]");
            Ok(())
        })
    }

    /// The items of an object array or of one of its rows, as a JSON list:
    /// a nested list is a row (`tolist()` nesting).
    fn items(&mut self, items: &'d [J]) -> Result<(), SkopsError> {
        self.out.raw("[");
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                self.out.raw(",");
            }
            self.path.push(i.to_string());
            let r = if x.is_array() { self.nested_list(x) } else { self.node(x) };
            self.path.pop();
            r?;
        }
        self.out.raw("]");
        Ok(())
    }

    /// A row of a multi-dimensional object array (closed).
    fn nested_list(&mut self, x: &'d J) -> Result<(), SkopsError> {
        if self.path.len() > MAX_EXTRACT_DEPTH {
            return Err(SkopsError::TooDeep(self.path_text()));
        }
        let items = x.as_array().map(Vec::as_slice).unwrap_or(&[]);
        self.closed(|m| {
            m.open("list", "builtins", "ListNode");
            m.key("content");
            m.items(items)
        })
    }

    /// Opens a numpy scalar: a 0-d `.npy` member, class the scalar type.
    fn scalar(&mut self, o: &'d Map<String, J>) -> Result<(), SkopsError> {
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
        self.npy_node(class, "numpy", Source::Bytes(npy_bytes(&dtype, &[], &bytes)));
        Ok(())
    }

    /// Opens a `numpy.dtype`: an empty array of it (skops' `DTypeNode`).
    fn dtype(&mut self, o: &'d Map<String, J>) -> Result<(), SkopsError> {
        let descr = o.get("descr").unwrap_or(&J::Null);
        let dtype = dtype_from_json(descr).ok_or_else(|| self.unsupported(format!("dtype {descr}")))?;
        if dtype.is_object() && !matches!(dtype, crate::extract::dtype::Dtype::Object) {
            return Err(self.unsupported("a structured dtype with object fields"));
        }
        self.open("dtype", "numpy", "DTypeNode");
        self.key("content");
        self.closed(|m| {
            m.npy_node("ndarray", "numpy", Source::Bytes(npy_bytes(&dtype, &[0], &[])));
            Ok(())
        })
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
