//! Objects of the extraction document as skops nodes: estimators and other
//! library objects (`ObjectNode`), `Tree` (`TreeNode`), the Cython losses
//! (`LossNode`), objects made through a factory function (`newObj`,
//! `__pyx_unpickle_*`), slices, `OrderedDict`s, and the numpy/scipy objects
//! of `numpy_objects`. What skops cannot express is an error naming the
//! attribute path: a call to anything but a known constructor, a class
//! outside scikit-learn, numpy and scipy (a custom class), constructor
//! arguments an `ObjectNode` cannot pass.

use serde_json::{json, Map, Value as J};

use super::error::SkopsError;
use super::schema::{items_of, Mapper};
use super::trusted::trusted_path;
use crate::extract::kind_of;

/// Module roots whose classes may be stored as objects.
const OBJECT_ROOTS: &[&str] = &["sklearn", "numpy", "scipy"];

/// The parts of a document `object` node.
pub struct Obj<'d> {
    /// The class path (`sklearn.tree._tree.Tree`).
    pub class: &'d str,
    /// Constructor arguments.
    pub args: &'d [J],
    /// The BUILD state, if one.
    pub state: Option<&'d J>,
    /// The whole node.
    pub raw: &'d Map<String, J>,
}

impl<'d> Obj<'d> {
    fn of(o: &'d Map<String, J>) -> Obj<'d> {
        Obj {
            class: o.get("class").and_then(J::as_str).unwrap_or(""),
            args: o.get("args").and_then(J::as_array).map(Vec::as_slice).unwrap_or(&[]),
            state: o.get("state"),
            raw: o,
        }
    }
}

/// `module.Class` split at the last dot.
pub fn split_class(path: &str) -> (&str, &str) {
    path.rsplit_once('.').unwrap_or(("", path))
}

/// The class path of a `global` value.
pub fn global_path(v: &J) -> Option<String> {
    (v.get("type")?.as_str()? == "global")
        .then(|| Some(format!("{}.{}", v.get("module")?.as_str()?, v.get("name")?.as_str()?)))
        .flatten()
}

impl<'d> Mapper<'d> {
    /// Opens the node of an `object` of the document.
    pub fn object(&mut self, o: &'d Map<String, J>) -> Result<(), SkopsError> {
        let ob = Obj::of(o);
        if o.contains_key("states") {
            return Err(self.unsupported(format!("{}, given several BUILD states", ob.class)));
        }
        match ob.class {
            "collections.OrderedDict" | "sklearn.utils._bunch.Bunch" if ob.args.is_empty() => self.dict_object(&ob),
            "builtins.slice" => self.slice(ob.args),
            "numpy.random._pickle.__randomstate_ctor" => self.random_state(&ob),
            "numpy.random._pickle.__generator_ctor" => self.generator(&ob),
            "numpy.ma.core._mareconstruct" => self.masked(&ob),
            "sklearn.tree._tree.Tree" => self.reduce_node(ob.class, ob.args, ob.state, "TreeNode"),
            c if c.starts_with("scipy.sparse.") && self.is_sparse(&ob) => self.sparse(&ob),
            c if c.ends_with(".newObj") || c.contains(".__pyx_unpickle_") => self.factory(&ob),
            c if trusted_path("LossNode", c) => self.reduce_node(c, ob.args, ob.state, "LossNode"),
            _ => self.plain_object(&ob),
        }
    }

    /// Opens the node of a `call`: a slice or a loss made by calling its
    /// class; any other call cannot be stored.
    pub fn call(&mut self, o: &'d Map<String, J>) -> Result<(), SkopsError> {
        let func = o.get("func").and_then(global_path).unwrap_or_default();
        let args = o.get("args").and_then(J::as_array).map(Vec::as_slice).unwrap_or(&[]);
        if func == "builtins.slice" {
            return self.slice(args);
        }
        if trusted_path("LossNode", &func) {
            return self.reduce_node(&func, args, o.get("state"), "LossNode");
        }
        let at = o.get("offset").and_then(J::as_u64).map(|n| format!(" at offset {n}")).unwrap_or_default();
        let via = o.get("via").and_then(J::as_str).unwrap_or("reduce");
        let root = func.split('.').next().unwrap_or("");
        let why = if func.is_empty() || OBJECT_ROOTS.contains(&root) {
            "which skops cannot store (it stores data and the libraries' known classes)"
        } else {
            "a class or function outside scikit-learn, numpy and scipy (a custom class cannot be stored)"
        };
        let func = if func.is_empty() { kind_of(o.get("func").unwrap_or(&J::Null)) } else { func };
        Err(self.unsupported(format!("a call to {func} ({via}){at}: {why}")))
    }

    /// A dict subclass whose items `SETITEMS` gave it (`OrderedDict`,
    /// scikit-learn's `Bunch`): a `DictNode` of that class, as skops writes
    /// one. Its instance state must be what the class's constructor makes
    /// (`Bunch`: an empty `_deprecated_key_to_warnings`).
    fn dict_object(&mut self, ob: &Obj<'d>) -> Result<(), SkopsError> {
        let default_state = match ob.state {
            None | Some(J::Null) => true,
            Some(s) => s.get("items").and_then(J::as_object).is_some_and(|m| {
                m.iter().all(|(k, v)| {
                    k == "_deprecated_key_to_warnings"
                        && v.get("items").and_then(J::as_object).is_some_and(|x| x.is_empty())
                })
            }),
        };
        if !default_state || ob.class == "collections.OrderedDict" && ob.state.is_some_and(|s| !s.is_null()) {
            return Err(self.unsupported(format!("a {} with attributes of its own", ob.class)));
        }
        let entries = match ob.raw.get("dictitems") {
            None => Vec::new(),
            Some(J::Array(pairs)) => self.pairs(pairs)?,
            Some(d) => match (d.get("items").and_then(J::as_object), d.get("pairs").and_then(J::as_array)) {
                (Some(items), _) => items.iter().map(|(k, v)| (k.clone(), "str", v)).collect(),
                (None, Some(pairs)) => self.pairs(pairs)?,
                _ => return Err(self.unsupported(format!("a {} with malformed items", ob.class))),
            },
        };
        let (module, name) = split_class(ob.class);
        self.dict_entries(entries, name, module)
    }

    /// `slice(start, stop, step)`: skops keeps the three values as they are.
    fn slice(&mut self, args: &'d [J]) -> Result<(), SkopsError> {
        let ok = args.len() <= 3 && args.iter().all(|a| a.is_null() || a.is_i64());
        if !ok {
            return Err(self.unsupported("a slice whose bounds are not ints"));
        }
        let (start, stop, step) = match args {
            [stop] => (&J::Null, stop, &J::Null),
            [a, b] => (a, b, &J::Null),
            [a, b, c] => (a, b, c),
            _ => (&J::Null, &J::Null, &J::Null),
        };
        self.open("slice", "builtins", "SliceNode");
        self.key("content");
        self.out.value(&json!({"start": start, "stop": stop, "step": step}))?;
        Ok(())
    }

    /// An object whose state skops sets with `__setstate__` or
    /// `__dict__.update` after `cls.__new__(cls)`.
    fn plain_object(&mut self, ob: &Obj<'d>) -> Result<(), SkopsError> {
        let via_reconstructor = ob.raw.get("via").and_then(J::as_str) == Some("copyreg._reconstructor");
        if !ob.args.is_empty() && !via_reconstructor {
            return Err(self.unsupported(format!(
                "{} made with constructor arguments, which a skops ObjectNode cannot pass",
                ob.class
            )));
        }
        for items in ["listitems", "setitems", "dictitems"] {
            let given = match ob.raw.get(items) {
                Some(J::Array(a)) => !a.is_empty(),
                Some(J::Object(o)) => ["items", "pairs"].iter().any(|k| match o.get(*k) {
                    Some(J::Array(a)) => !a.is_empty(),
                    Some(J::Object(m)) => !m.is_empty(),
                    _ => false,
                }),
                _ => false,
            };
            if given {
                return Err(self.unsupported(format!("{}, given {items} after it was made", ob.class)));
            }
        }
        self.object_node(ob.class, ob.state)
    }

    /// Opens an `ObjectNode` of class `class` with `state` (a dict, a tuple
    /// for `__setstate__`, or `(dict, None)`).
    fn object_node(&mut self, class: &str, state: Option<&'d J>) -> Result<(), SkopsError> {
        let root = class.split('.').next().unwrap_or("");
        if !OBJECT_ROOTS.contains(&root) {
            return Err(self.unsupported(format!(
                "an object of class {class}, outside scikit-learn, numpy and scipy (a custom class cannot be stored)"
            )));
        }
        let state = match state {
            // (dict, None): the slot state of a class with `__slots__` and a `__dict__`.
            Some(s) if s.get("type").and_then(J::as_str) == Some("tuple") => {
                match items_of(s.as_object().expect("tuple")) {
                    [d, J::Null] if d.get("type").and_then(J::as_str) == Some("dict") => Some(d),
                    [_, slots] if slots.get("type").and_then(J::as_str) == Some("dict") => {
                        return Err(self.unsupported(format!("{class} with __slots__ state")))
                    }
                    _ => Some(s),
                }
            }
            other => other,
        };
        let (module, name) = split_class(class);
        self.open(name, module, "ObjectNode");
        if let Some(s) = state {
            self.key("content");
            self.state_node(s)?;
        }
        Ok(())
    }

    /// An object made by a factory function that takes its class first:
    /// `newObj(cls)` (KDTree, BallTree, DistanceMetric) or
    /// `__pyx_unpickle_X(cls, checksum, state)` (Cython classes).
    fn factory(&mut self, ob: &Obj<'d>) -> Result<(), SkopsError> {
        let class = ob
            .args
            .first()
            .and_then(global_path)
            .ok_or_else(|| self.unsupported(format!("{} without its class", ob.class)))?;
        let pyx = ob.class.contains(".__pyx_unpickle_");
        // __pyx_unpickle_X(cls, checksum, state): the state is the third argument or the BUILD's.
        let state = if pyx { ob.state.or(ob.args.get(2).filter(|s| !s.is_null())) } else { ob.state };
        if trusted_path("LossNode", &class) {
            let (module, name) = split_class(&class);
            self.open(name, module, "LossNode");
            return self.loss_content(&[], state);
        }
        self.object_node(&class, state)
    }

    /// `Tree(*args)` then `__setstate__(state)` (`TreeNode`), or a Cython
    /// loss `Cls(*args)` (`LossNode`).
    fn reduce_node(
        &mut self,
        class: &str,
        args: &'d [J],
        state: Option<&'d J>,
        loader: &str,
    ) -> Result<(), SkopsError> {
        let (module, name) = split_class(class);
        self.open(name, module, loader);
        self.loss_content(args, state)
    }

    /// Writes an object's state (closed): a dict's keys are the attribute
    /// names (no step of its own in the path, as in the extraction
    /// document), any other state is `__state__`.
    pub fn state_node(&mut self, s: &'d J) -> Result<(), SkopsError> {
        if s.get("type").and_then(J::as_str) == Some("dict") {
            self.node(s)
        } else {
            self.child("__state__", s)
        }
    }

    /// `content` (the state; `{}` when none) and `__reduce__.args` of an
    /// open `ReduceNode`, in the order skops reads them: content first.
    fn loss_content(&mut self, args: &'d [J], state: Option<&'d J>) -> Result<(), SkopsError> {
        self.key("content");
        match state {
            Some(s) => self.state_node(s)?,
            None => self.closed(|m| m.dict_entries(Vec::new(), "dict", "builtins"))?,
        }
        self.key("__reduce__");
        self.out.raw("{\"args\":");
        self.path.push("__args__".into());
        let t = self.closed(|m| m.seq("tuple", "TupleNode", args));
        self.path.pop();
        t?;
        self.out.raw("}");
        Ok(())
    }
}

/// The class of a document value for the report: an object's class, an
/// array's, or the value's kind.
pub fn class_of(v: &J) -> String {
    match v.get("type").and_then(J::as_str) {
        Some("object" | "ndarray") => v.get("class").and_then(J::as_str).unwrap_or("?").to_string(),
        _ => kind_of(v),
    }
}
