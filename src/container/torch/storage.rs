//! Storage classes and persistent ids: what a storage class a persistent
//! id names is (its element size, from [`STORAGE_CLASSES`]), and a
//! persistent id read as `torch.load`'s `persistent_load` reads it.

use super::diag::TorchFault;
use super::dtypes::{self as d, TorchDtype};
use crate::view::render::{global_name, Renderer};
use crate::vm::{Analysis, BlobView, Value, ValueId};

/// How `torch.load` works out the element type of a storage class named in
/// a persistent id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageElem {
    /// A typed legacy class (`torch.FloatStorage`, `torch.cuda.HalfStorage`):
    /// `cls.dtype` is this torch dtype (of [`super::TORCH_DTYPES`]).
    Typed(&'static TorchDtype),
    /// `UntypedStorage`: bytes. `torch.save` names it for tensors whose dtype
    /// has no typed class (float8, uint16/32/64; `_rebuild_tensor_v3` takes
    /// the dtype as a separate argument), with the count in bytes. The zip
    /// loader reads it as `uint8`; the legacy loaders read `cls.dtype`, which
    /// it has not, and fail.
    Bytes,
    /// `torch.storage.TypedStorage`: the dtype belongs to instances, not to
    /// the class, so every loader's `cls.dtype` fails.
    NoDtype,
}

/// A storage class a persistent id may name: the module and name as
/// `find_class` receives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageClass {
    /// `torch`, `torch.cuda` or `torch.storage`.
    pub module: &'static str,
    /// `FloatStorage`, `UntypedStorage`, ...
    pub name: &'static str,
    /// What its elements are.
    pub elem: StorageElem,
}

/// Shorthand for a typed entry of [`STORAGE_CLASSES`].
const fn typed(module: &'static str, name: &'static str, dtype: &'static TorchDtype) -> StorageClass {
    StorageClass { module, name, elem: StorageElem::Typed(dtype) }
}

/// Every storage class torch 2.11's weights-only unpickler admits
/// (`torch._storage_classes`: the classes `TypedStorage._pickle_storage_type()`
/// names, their `torch.cuda` forms written by old checkpoints of CUDA
/// tensors, `torch.storage.TypedStorage` and `UntypedStorage`), plus
/// `torch.UntypedStorage`, the same class through the `torch` module, which
/// the full unpickler resolves. The one table of them: the persistent-id
/// checks and extraction's tensors both use it.
pub const STORAGE_CLASSES: &[StorageClass] = &[
    typed("torch", "DoubleStorage", &d::FLOAT64),
    typed("torch", "FloatStorage", &d::FLOAT32),
    typed("torch", "HalfStorage", &d::FLOAT16),
    typed("torch", "BFloat16Storage", &d::BFLOAT16),
    typed("torch", "LongStorage", &d::INT64),
    typed("torch", "IntStorage", &d::INT32),
    typed("torch", "ShortStorage", &d::INT16),
    typed("torch", "CharStorage", &d::INT8),
    typed("torch", "ByteStorage", &d::UINT8),
    typed("torch", "BoolStorage", &d::BOOL),
    typed("torch", "ComplexFloatStorage", &d::COMPLEX64),
    typed("torch", "ComplexDoubleStorage", &d::COMPLEX128),
    typed("torch", "QInt8Storage", &d::QINT8),
    typed("torch", "QUInt8Storage", &d::QUINT8),
    typed("torch", "QInt32Storage", &d::QINT32),
    typed("torch", "QUInt4x2Storage", &d::QUINT4X2),
    typed("torch", "QUInt2x4Storage", &d::QUINT2X4),
    typed("torch.cuda", "DoubleStorage", &d::FLOAT64),
    typed("torch.cuda", "FloatStorage", &d::FLOAT32),
    typed("torch.cuda", "HalfStorage", &d::FLOAT16),
    typed("torch.cuda", "BFloat16Storage", &d::BFLOAT16),
    typed("torch.cuda", "LongStorage", &d::INT64),
    typed("torch.cuda", "IntStorage", &d::INT32),
    typed("torch.cuda", "ShortStorage", &d::INT16),
    typed("torch.cuda", "CharStorage", &d::INT8),
    typed("torch.cuda", "ByteStorage", &d::UINT8),
    typed("torch.cuda", "BoolStorage", &d::BOOL),
    typed("torch.cuda", "ComplexFloatStorage", &d::COMPLEX64),
    typed("torch.cuda", "ComplexDoubleStorage", &d::COMPLEX128),
    StorageClass { module: "torch.storage", name: "UntypedStorage", elem: StorageElem::Bytes },
    StorageClass { module: "torch", name: "UntypedStorage", elem: StorageElem::Bytes },
    StorageClass { module: "torch.storage", name: "TypedStorage", elem: StorageElem::NoDtype },
];

/// The entry of [`STORAGE_CLASSES`] for a global, if it is a storage class.
pub fn storage_class(module: &str, name: &str) -> Option<&'static StorageClass> {
    STORAGE_CLASSES.iter().find(|c| c.module == module && c.name == name)
}

/// The value pickle `index` of an analysis evaluates to.
pub(super) fn root(a: &Analysis, index: usize) -> Option<ValueId> {
    a.pickles.get(index).and_then(|p| p.root)
}

/// What a persistent id's storage class is.
#[derive(Debug, Clone, PartialEq)]
pub enum Class {
    /// A storage class of [`STORAGE_CLASSES`].
    Known(&'static StorageClass),
    /// A `torch` global named `*Storage` that pkinspect does not know.
    UnknownStorage(String),
    /// Anything else, shown.
    NotStorage(String),
}

/// The storage class at `id`.
pub fn class_of(a: &Analysis, id: ValueId, r: &Renderer<'_>) -> Class {
    match a.value(id) {
        Value::Global(g) => match storage_class(&g.module, &g.name) {
            Some(c) => Class::Known(c),
            None if g.name.ends_with("Storage") && (&*g.module == "torch" || g.module.starts_with("torch.")) => {
                Class::UnknownStorage(global_name(&g.module, &g.name))
            }
            None => Class::NotStorage(global_name(&g.module, &g.name)),
        },
        _ => Class::NotStorage(r.expr(id)),
    }
}

impl Class {
    /// Bytes per counted element as `torch.save` writes the storage (an
    /// `UntypedStorage` is counted in bytes), or why the storage cannot be
    /// measured.
    pub fn size(&self) -> Result<u64, TorchFault> {
        match self {
            Class::Known(StorageClass { elem: StorageElem::Typed(dtype), .. }) => Ok(dtype.size),
            Class::Known(StorageClass { elem: StorageElem::Bytes, .. }) => Ok(1),
            Class::Known(c @ StorageClass { elem: StorageElem::NoDtype, .. }) => {
                Err(TorchFault::NoClassDtype { class: global_name(c.module, c.name) })
            }
            Class::UnknownStorage(name) => Err(TorchFault::UnknownStorageClass { class: name.clone() }),
            Class::NotStorage(shown) => Err(TorchFault::NotStorageClass { shown: shown.clone() }),
        }
    }

    /// Why a loader of this layout cannot use the class although its size
    /// is known: the legacy loaders read `cls.dtype`, which `UntypedStorage`
    /// has not.
    pub fn refused(&self, layout: Layout) -> Option<TorchFault> {
        match (self, layout) {
            (Class::Known(c @ StorageClass { elem: StorageElem::Bytes, .. }), Layout::Legacy) => {
                Some(TorchFault::UntypedInLegacy { class: global_name(c.module, c.name) })
            }
            _ => None,
        }
    }

    /// Every reason torch.load cannot use this class in this layout.
    pub fn problem(&self, layout: Layout) -> Option<TorchFault> {
        self.size().err().or_else(|| self.refused(layout))
    }
}

/// Which persistent-id layout a loader expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `('storage', cls, key, location, numel)`.
    Zip,
    /// `('storage', cls, key, location, numel, view_metadata)` or
    /// `('module', cls, source_file, source)`.
    Legacy,
}

/// A storage a persistent id names.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// The storage's key (record `data/<key>`, or its slot in a legacy section).
    pub key: String,
    /// Its class.
    pub class: Class,
    /// Its count, in the class's elements (bytes for `UntypedStorage`).
    pub numel: u64,
}

/// A persistent id, read as the torch loader reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Pid {
    /// A storage.
    Storage(StorageRef),
    /// A legacy `nn.Module` class with its source text.
    Module {
        /// The class, shown.
        class: String,
        /// The source file named, shown.
        file: String,
        /// Length of the source in bytes, and its first non-empty line.
        source: Option<(u64, String)>,
    },
    /// Not something `persistent_load` accepts: why.
    Bad(TorchFault),
}

/// Reads persistent id `pid` as a loader of `layout` does.
pub fn parse_pid(a: &Analysis, pid: ValueId, layout: Layout, r: &Renderer<'_>) -> Pid {
    let shown = || r.expr(pid);
    let Some(items) = a.tuple(pid) else {
        return Pid::Bad(TorchFault::PidNotTuple { shown: shown() });
    };
    let tag = items.first().and_then(|&t| {
        let v = a.value(t);
        match (a.full_str(t), v.full_bytes()) {
            (Some(s), _) => Some(s.to_string()),
            // _maybe_decode_ascii: a bytes tag is decoded.
            (_, Some(b)) if b.is_ascii() => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    });
    match (tag.as_deref(), layout) {
        (Some("storage"), _) => storage_pid(a, items, layout, r, shown),
        (Some("module"), Layout::Legacy) if items.len() == 4 => module_pid(a, items, r),
        (Some("module"), Layout::Legacy) => Pid::Bad(TorchFault::PidModuleItems { shown: shown(), items: items.len() }),
        (Some(other), Layout::Zip) if other != "storage" => {
            Pid::Bad(TorchFault::PidZipTag { shown: shown(), tag: other.to_string() })
        }
        _ => Pid::Bad(TorchFault::PidUnknownType { shown: shown() }),
    }
}

/// A `('storage', ...)` persistent id's items; `shown` renders the id.
fn storage_pid(a: &Analysis, items: &[ValueId], layout: Layout, r: &Renderer<'_>, shown: impl Fn() -> String) -> Pid {
    let want = if layout == Layout::Zip { 5 } else { 6 };
    if items.len() != want {
        return Pid::Bad(TorchFault::PidStorageItems { shown: shown(), items: items.len(), want });
    }
    let class = class_of(a, items[1], r);
    let Some(key) = a.full_str(items[2]) else {
        return Pid::Bad(TorchFault::PidKeyNotStr { shown: shown() });
    };
    // The count is an `int`; a bool is not taken.
    let Some(numel) = a.int(items[4]).and_then(|n| u64::try_from(n).ok()) else {
        return Pid::Bad(TorchFault::PidBadCount { shown: shown() });
    };
    if layout == Layout::Legacy {
        let view_ok = match (a.value(items[5]), a.tuple(items[5])) {
            (Value::None, _) => true,
            (_, Some(v)) => v.len() == 3 && a.int(v[1]).is_some() && a.int(v[2]).is_some(),
            _ => false,
        };
        if !view_ok {
            return Pid::Bad(TorchFault::PidBadView { shown: shown() });
        }
    }
    Pid::Storage(StorageRef { key: key.to_string(), class, numel })
}

/// A legacy `('module', cls, source_file, source)` persistent id's four items.
fn module_pid(a: &Analysis, items: &[ValueId], r: &Renderer<'_>) -> Pid {
    let class = match a.value(items[1]) {
        Value::Global(g) => global_name(&g.module, &g.name),
        _ => r.expr(items[1]),
    };
    let file = a.full_str(items[2]).map(|s| format!("{s:?}")).unwrap_or_else(|| r.expr(items[2]));
    let source = match a.value(items[3]) {
        Value::Str(s) => match a.str(*s) {
            BlobView::Full(s) => {
                let first = s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
                let first: String = first.chars().take(60).collect();
                Some((s.len() as u64, first))
            }
            BlobView::Part(p) => Some((p.len, String::new())),
        },
        _ => None,
    };
    Pid::Module { class, file, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::torch::SHOWN_CHARS;
    use crate::vm::{Analyzer, EventKind};

    /// The storage class of a global, as a persistent id's class.
    fn class(module: &str, name: &str) -> Class {
        let mut p = b"\x80\x02c".to_vec();
        p.extend_from_slice(format!("{module}\n{name}\n.").as_bytes());
        let a = Analyzer::new().run(&p);
        let r = Renderer::new(&a, SHOWN_CHARS);
        class_of(&a, root(&a, 0).expect("root"), &r)
    }

    #[test]
    fn element_sizes_follow_the_dtype() {
        assert_eq!(class("torch", "FloatStorage").size(), Ok(4));
        assert_eq!(class("torch", "BFloat16Storage").size(), Ok(2));
        assert_eq!(class("torch", "ComplexDoubleStorage").size(), Ok(16));
        assert_eq!(class("torch", "QInt32Storage").size(), Ok(4));
        assert_eq!(class("torch.cuda", "LongStorage").size(), Ok(8));
        assert_eq!(class("torch.cuda", "ComplexFloatStorage").size(), Ok(8));
        // Counted in bytes, and refused by the legacy loaders only.
        for module in ["torch", "torch.storage"] {
            let c = class(module, "UntypedStorage");
            assert_eq!(c.size(), Ok(1));
            assert_eq!(c.problem(Layout::Zip), None);
            assert!(c.problem(Layout::Legacy).is_some_and(|m| m.to_string().contains("has not")), "{c:?}");
        }
        let typed = class("torch.storage", "TypedStorage");
        assert!(typed.size().is_err_and(|m| m.to_string().contains("no class-level dtype")));
        // No such class in torch.cuda, nor a float8 storage class.
        assert!(matches!(class("torch.cuda", "QInt8Storage"), Class::UnknownStorage(_)));
        assert!(matches!(class("torch", "Float8Storage"), Class::UnknownStorage(_)));
        assert!(matches!(class("os", "FloatStorage"), Class::NotStorage(_)));
    }

    /// Every storage class of torch 2.11's weights-only allowlist
    /// (`fixtures/torch-real/torch_allowed_globals.json`) is in the table, and
    /// nothing else but the `torch.UntypedStorage` alias.
    #[test]
    fn storage_table_is_torchs_list() {
        let text = std::fs::read_to_string("fixtures/torch-real/torch_allowed_globals.json").expect("globals");
        let names: Vec<String> = serde_json::from_str(&text).expect("a JSON list");
        let mut want: Vec<String> = names.into_iter().filter(|n| n.ends_with("Storage")).collect();
        want.push("torch.UntypedStorage".into());
        want.sort();
        let mut got: Vec<String> = STORAGE_CLASSES.iter().map(|c| format!("{}.{}", c.module, c.name)).collect();
        got.sort();
        assert_eq!(got, want);
        // One entry per class, and every cuda class has the size of its cpu twin.
        for c in STORAGE_CLASSES {
            assert_eq!(storage_class(c.module, c.name), Some(c));
            if c.module == "torch.cuda" {
                assert_eq!(storage_class("torch", c.name).map(|t| t.elem), Some(c.elem));
            }
        }
    }

    fn pid_of(p: &[u8], layout: Layout) -> Pid {
        let a = Analyzer::new().run(p);
        let pid = a
            .events
            .iter()
            .find_map(|e| match e.kind {
                EventKind::PersistentId { pid } => Some(pid),
                _ => None,
            })
            .expect("a persistent id");
        let r = Renderer::new(&a, SHOWN_CHARS);
        parse_pid(&a, pid, layout, &r)
    }

    #[test]
    fn persistent_ids_are_read_as_torch_reads_them() {
        let zip =
            b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ.";
        assert_eq!(
            pid_of(zip, Layout::Zip),
            Pid::Storage(StorageRef { key: "0".into(), class: class("torch", "FloatStorage"), numel: 6 })
        );
        // The same 5-tuple is short for the legacy loader.
        assert!(matches!(pid_of(zip, Layout::Legacy), Pid::Bad(m) if m.to_string().contains("expects 6")));
        let legacy =
            b"\x80\x02(X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x007X\x03\x00\x00\x00cpuK\x03NtQ.";
        assert_eq!(
            pid_of(legacy, Layout::Legacy),
            Pid::Storage(StorageRef { key: "7".into(), class: class("torch", "HalfStorage"), numel: 3 })
        );
        // A storage class that is not a storage.
        let bad = b"\x80\x02(X\x07\x00\x00\x00storagecos\nsystem\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ.";
        match pid_of(bad, Layout::Zip) {
            Pid::Storage(s) => assert!(s.class.size().is_err_and(|m| m.to_string().contains("os.system"))),
            other => panic!("{other:?}"),
        }
        // Not a tuple; an unknown tag; a negative count.
        assert!(
            matches!(pid_of(b"\x80\x02X\x01\x00\x00\x000Q.", Layout::Zip), Pid::Bad(m) if m.to_string().contains("not a tuple"))
        );
        assert!(
            matches!(pid_of(b"\x80\x02X\x03\x00\x00\x00abc\x85Q.", Layout::Zip), Pid::Bad(m) if m.to_string().contains("'storage'"))
        );
        let neg = b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ\xff\xff\xff\xfftQ.";
        assert!(matches!(pid_of(neg, Layout::Zip), Pid::Bad(m) if m.to_string().contains("non-negative")));
        // A module id with its source.
        let module = b"\x80\x02(X\x06\x00\x00\x00modulectorch.nn.modules.linear\nLinear\nX\x09\x00\x00\x00linear.pyX\x13\x00\x00\x00\nprint('hi')\nx = 1\ntQ.";
        match pid_of(module, Layout::Legacy) {
            Pid::Module { class, source: Some((19, first)), .. } => {
                assert_eq!(class, "torch.nn.modules.linear.Linear");
                assert_eq!(first, "print('hi')");
            }
            other => panic!("{other:?}"),
        }
    }
}
