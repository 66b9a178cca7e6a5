//! Which use each call and `BUILD` makes of the globals it reaches.
//!
//! The machine records a `REDUCE` of `copyreg._reconstructor(numpy.memmap,
//! numpy.memmap, path)` as one call of `_reconstructor`; what the loader
//! really does is call `numpy.memmap.__new__(memmap, path)`. This module
//! knows the functions that call or construct one of their own arguments
//! (the *launderers* of `docs/uses.md`) and turns a call of one into the
//! uses it makes of its arguments, so the judge can hold each reached global
//! to its permitted [`Use`]s. It also says which global made an object (for
//! `build`, `items` and `invoke`) and what kind each argument is (for
//! argument contracts).
//!
//! These are facts about the named functions, written from their source
//! (CPython's `copyreg`, numpy's `random/_pickle.py`, `_reconstruct` and
//! `ma/core.py`, scikit-learn's `newObj`, Cython's `__pyx_unpickle_*`,
//! pandas' `_new_Index` family); `scripts/gadget_hunt.py` checks that every
//! allowlisted function that calls an argument is one of them.

use crate::policy::{ArgKind, Use};
use crate::vm::{Analysis, CallKind, Value, ValueId};

/// A function that calls or constructs one of its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Launder {
    /// `copyreg._reconstructor(cls, base, state)`: `base.__new__(cls,
    /// state)` and `base.__init__(obj, state)`, or `object.__new__(cls)`.
    Reconstructor,
    /// `copyreg.__newobj__(cls, *args)`: `cls.__new__(cls, *args)`.
    NewObj,
    /// `copyreg.__newobj_ex__(cls, args, kwargs)`.
    NewObjEx,
    /// numpy's `__bit_generator_ctor(bg)`: `bg()` when `bg` is a class.
    BitGeneratorCtor,
    /// numpy's `__generator_ctor(name, ctor)` and `__randomstate_ctor`:
    /// `ctor(name)`, the default `ctor` being `__bit_generator_ctor`.
    GeneratorCtor,
    /// scikit-learn's `newObj(cls)` and Cython's `__pyx_unpickle_*(cls,
    /// checksum, state)`: `cls.__new__(cls)`.
    NewOf,
    /// pandas' `_new_Index(cls, d)` family: `cls.__new__(cls, **d)`.
    NewIndex,
    /// numpy's `_reconstruct(subtype, shape, dtype)`: `ndarray.__new__(subtype, ...)`.
    Subtype,
    /// `numpy.ma.core._mareconstruct(subtype, baseclass, shape, basetype)`:
    /// `subtype.__new__(subtype, data, mask=..., dtype=...)`.
    MaReconstruct,
    /// `functools.partial(f, *args)`: a deferred call of `f`.
    Partial,
    /// `torch._tensor._rebuild_from_type_v2(func, new_type, args, state)`:
    /// `func(*args)`, made an instance of `new_type`, then `state` set as
    /// its attributes.
    RebuildFromType,
}

impl Launder {
    /// The launderer `module name` is, if any.
    pub(crate) fn of(module: &str, name: &str) -> Option<Launder> {
        let numpy = module == "numpy" || module.starts_with("numpy.");
        Some(match (module, name) {
            ("copyreg", "_reconstructor") => Launder::Reconstructor,
            ("copyreg", "__newobj__") => Launder::NewObj,
            ("copyreg", "__newobj_ex__") => Launder::NewObjEx,
            ("numpy.random._pickle", "__bit_generator_ctor") => Launder::BitGeneratorCtor,
            ("numpy.random._pickle", "__generator_ctor" | "__randomstate_ctor") => Launder::GeneratorCtor,
            ("functools" | "_functools", "partial") => Launder::Partial,
            ("numpy.ma.core", "_mareconstruct") => Launder::MaReconstruct,
            ("torch._tensor", "_rebuild_from_type_v2") => Launder::RebuildFromType,
            (_, "_reconstruct" | "core.multiarray._reconstruct") if numpy => Launder::Subtype,
            (m, "newObj") if m.starts_with("sklearn.") => Launder::NewOf,
            (m, n) if m.starts_with("pandas.") && n.starts_with("_new_") && n.ends_with("Index") => Launder::NewIndex,
            (_, n) if n.starts_with("__pyx_unpickle_") => Launder::NewOf,
            _ => return None,
        })
    }

    /// The argument whose class the result is an instance of.
    pub(crate) fn result_arg(self) -> Option<usize> {
        match self {
            Launder::Reconstructor
            | Launder::NewObj
            | Launder::NewObjEx
            | Launder::NewOf
            | Launder::NewIndex
            | Launder::Subtype
            | Launder::MaReconstruct => Some(0),
            Launder::RebuildFromType => Some(1),
            Launder::BitGeneratorCtor | Launder::GeneratorCtor | Launder::Partial => None,
        }
    }
}

/// One use a call makes of a value other than its callee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Derived {
    /// What is used (resolved by the judge).
    pub value: ValueId,
    /// How.
    pub use_: Use,
    /// The positional arguments it gets, for a `call`.
    pub args: Vec<ValueId>,
    /// Whether it gets keywords.
    pub kwargs: bool,
}

impl Derived {
    fn new(value: ValueId, use_: Use) -> Derived {
        Derived { value, use_, args: Vec::new(), kwargs: false }
    }

    fn call(value: ValueId, args: &[ValueId], kwargs: bool) -> Derived {
        Derived { value, use_: Use::Call, args: args.to_vec(), kwargs }
    }
}

/// The uses a call of `l` with positional `args` makes of its arguments.
/// `is` tells whether a value is the global `module name`.
pub(crate) fn derived(
    a: &Analysis,
    l: Launder,
    args: &[ValueId],
    is: &dyn Fn(ValueId, &str, &str) -> bool,
) -> Vec<Derived> {
    let mut out = Vec::new();
    match (l, args) {
        (Launder::Reconstructor, [cls, base, rest @ ..]) => {
            out.push(Derived::new(*cls, Use::New));
            if !is(*base, "builtins", "object") {
                out.push(Derived::call(*base, &rest[..rest.len().min(1)], false));
            }
        }
        (Launder::Reconstructor, [cls]) => out.push(Derived::new(*cls, Use::New)),
        (Launder::NewObj, [cls, rest @ ..]) => out.push(newobj(*cls, rest, false)),
        (Launder::NewObjEx, [cls, rest @ ..]) => {
            let pos = rest.first().map(|t| a.items(*t)).unwrap_or(&[]);
            let kw = rest.get(1).is_some_and(|k| !is_empty_dict(a, *k));
            out.push(newobj(*cls, pos, kw));
        }
        (Launder::BitGeneratorCtor, [bg, ..]) => bit_generator(a, *bg, &mut out),
        (Launder::GeneratorCtor, [name, ctor, ..]) if !is(*ctor, "numpy.random._pickle", "__bit_generator_ctor") => {
            out.push(Derived::call(*ctor, &[*name], false));
        }
        (Launder::GeneratorCtor, [name, ..]) => bit_generator(a, *name, &mut out),
        (Launder::NewOf, [cls, ..]) => out.push(Derived::new(*cls, Use::New)),
        (Launder::NewIndex, [cls, d, ..]) => out.push(Derived::call(*cls, &[], !is_empty_dict(a, *d))),
        (Launder::NewIndex, [cls]) => out.push(Derived::call(*cls, &[], false)),
        (Launder::Subtype, [sub, ..]) => out.push(Derived::new(*sub, Use::Ref)),
        (Launder::MaReconstruct, [sub, rest @ ..]) => {
            if let Some(base) = rest.first() {
                out.push(Derived::new(*base, Use::Ref));
            }
            // `subtype.__new__(subtype, data, mask=..., dtype=...)`; the
            // data is an array the function builds, not a value of the file.
            out.push(Derived::call(*sub, &[], true));
        }
        (Launder::Partial, [f, rest @ ..]) => out.push(Derived::call(*f, rest, false)),
        (Launder::RebuildFromType, [f, new_type, rest @ ..]) => {
            let pos = rest.first().map(|t| a.items(*t)).unwrap_or(&[]);
            out.push(Derived::call(*f, pos, false));
            out.push(Derived::new(*new_type, Use::Ref));
        }
        _ => {}
    }
    out
}

/// `cls.__new__(cls, *args)`: `new` without arguments, else `call`.
fn newobj(cls: ValueId, args: &[ValueId], kwargs: bool) -> Derived {
    if args.is_empty() && !kwargs {
        Derived::new(cls, Use::New)
    } else {
        Derived::call(cls, args, kwargs)
    }
}

/// `__bit_generator_ctor(bg)`: a class is called; a `str` is looked up in
/// numpy's own table; a `BitGenerator` instance (a call's result) is used
/// as it is by `__generator_ctor`, and anything else raises. A global, or a
/// callable made from one, is what may be called.
fn bit_generator(a: &Analysis, bg: ValueId, out: &mut Vec<Derived>) {
    if matches!(arg_kind(a, bg), ArgKind::Class | ArgKind::Callable) {
        out.push(Derived::call(bg, &[], false));
    }
}

fn is_empty_dict(a: &Analysis, id: ValueId) -> bool {
    matches!(a.value(id), Value::Dict(p) if p.is_empty()) || matches!(a.value(id), Value::None)
}

/// What made an object (see [`made_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Maker {
    /// A value of the file: a class, or the function whose result it is.
    Value(ValueId),
    /// A class a launderer picks by itself (`__generator_ctor` makes a
    /// `numpy.random._generator.Generator`).
    Name(&'static str, &'static str),
}

/// numpy's own table of bit generators by name (`numpy/random/_pickle.py`).
const BIT_GENERATORS: [(&str, &str, &str); 5] = [
    ("MT19937", "numpy.random._mt19937", "MT19937"),
    ("PCG64", "numpy.random._pcg64", "PCG64"),
    ("PCG64DXSM", "numpy.random._pcg64", "PCG64DXSM"),
    ("Philox", "numpy.random._philox", "Philox"),
    ("SFC64", "numpy.random._sfc64", "SFC64"),
];

/// What made `obj`: the class of `NEWOBJ cls` or `REDUCE cls`, the class
/// argument of a launderer (`_reconstructor(cls, ...)`), the class numpy's
/// random constructors build, or the function whose result it is. `None`
/// for anything that is not a call's result.
pub(crate) fn made_by(a: &Analysis, obj: ValueId) -> Option<Maker> {
    let Value::Call(c) = a.value(obj) else { return None };
    match c.kind {
        CallKind::NewObj | CallKind::NewObjEx | CallKind::Inst | CallKind::Obj => Some(Maker::Value(c.func)),
        CallKind::Reduce => {
            let args = a.tuple(c.args).unwrap_or(&[]);
            if let Value::Global(g) = a.value(c.func) {
                match Launder::of(&g.module, &g.name) {
                    Some(Launder::GeneratorCtor) if &*g.name == "__generator_ctor" => {
                        return Some(Maker::Name("numpy.random._generator", "Generator"))
                    }
                    Some(Launder::GeneratorCtor) => return Some(Maker::Name("numpy.random.mtrand", "RandomState")),
                    Some(Launder::BitGeneratorCtor) => {
                        let bg = args.first().copied();
                        let named = bg.and_then(|b| a.full_str(b)).unwrap_or(if bg.is_none() { "MT19937" } else { "" });
                        return match BIT_GENERATORS.iter().find(|(k, _, _)| *k == named) {
                            Some((_, m, n)) => Some(Maker::Name(m, n)),
                            None => bg.map(Maker::Value),
                        };
                    }
                    Some(l) => {
                        if let Some(i) = l.result_arg() {
                            return args.get(i).copied().map(Maker::Value);
                        }
                    }
                    None => {}
                }
            }
            Some(Maker::Value(c.func))
        }
        _ => None,
    }
}

/// What a contract sees of one argument.
pub(crate) fn arg_kind(a: &Analysis, id: ValueId) -> ArgKind<'_> {
    match a.value(id) {
        Value::Str(_) => ArgKind::Str(a.full_str(id)),
        Value::Bytes(_) => ArgKind::Bytes,
        Value::Int(_) | Value::BigInt(_) => ArgKind::Int,
        Value::Float(_) => ArgKind::Float,
        Value::Bool(_) => ArgKind::Bool,
        Value::None => ArgKind::None,
        Value::Tuple(_) => ArgKind::Tuple,
        Value::List(_) => ArgKind::List,
        Value::Dict(_) => ArgKind::Dict,
        Value::Global(_) | Value::ComputedGlobal { .. } => ArgKind::Class,
        Value::Call(c) if c.kind == CallKind::Reduce => match a.value(c.func) {
            Value::Global(g) if matches!((&*g.module, &*g.name), ("builtins", "getattr")) => ArgKind::Callable,
            Value::Global(g) if Launder::of(&g.module, &g.name) == Some(Launder::Partial) => ArgKind::Callable,
            _ => ArgKind::Other,
        },
        _ => ArgKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Analyzer;

    #[test]
    fn launderers_by_name() {
        assert_eq!(Launder::of("copyreg", "_reconstructor"), Some(Launder::Reconstructor));
        assert_eq!(Launder::of("numpy._core.multiarray", "_reconstruct"), Some(Launder::Subtype));
        assert_eq!(Launder::of("numpy", "core.multiarray._reconstruct"), Some(Launder::Subtype));
        assert_eq!(Launder::of("mypkg", "_reconstruct"), None);
        assert_eq!(Launder::of("sklearn.neighbors._kd_tree", "newObj"), Some(Launder::NewOf));
        assert_eq!(Launder::of("sklearn.tree._tree", "__pyx_unpickle_Tree"), Some(Launder::NewOf));
        assert_eq!(Launder::of("pandas.core.indexes.base", "_new_Index"), Some(Launder::NewIndex));
        assert_eq!(Launder::of("pandas.core.indexes.period", "_new_PeriodIndex"), Some(Launder::NewIndex));
        assert_eq!(Launder::of("numpy.random._pickle", "__randomstate_ctor"), Some(Launder::GeneratorCtor));
    }

    /// The uses of the arguments of the last call in `p`, as (global, use).
    fn uses_of(p: &[u8]) -> Vec<(String, Use)> {
        let a = Analyzer::new().run(p);
        let Some(root) = a.pickles.first().and_then(|p| p.root) else { return vec![] };
        let Value::Call(c) = a.value(root) else { return vec![] };
        let Value::Global(g) = a.value(c.func) else { return vec![] };
        let l = Launder::of(&g.module, &g.name).expect("a launderer");
        let is =
            |id: ValueId, m: &str, n: &str| matches!(a.value(id), Value::Global(g) if &*g.module == m && &*g.name == n);
        let args = a.tuple(c.args).unwrap_or(&[]).to_vec();
        derived(&a, l, &args, &is)
            .into_iter()
            .map(|d| match a.value(d.value) {
                Value::Global(g) => (format!("{}.{}", g.module, g.name), d.use_),
                _ => ("?".into(), d.use_),
            })
            .collect()
    }

    #[test]
    fn reconstructor() {
        // _reconstructor(numpy.memmap, builtins.object, None): new only.
        let p = b"ccopyreg\n_reconstructor\n(cnumpy\nmemmap\ncbuiltins\nobject\nNtR.";
        assert_eq!(uses_of(p), vec![("numpy.memmap".into(), Use::New)]);
        // _reconstructor(numpy.memmap, numpy.memmap, 'path'): a call of the base.
        let p = b"ccopyreg\n_reconstructor\n(cnumpy\nmemmap\ncnumpy\nmemmap\nS'/tmp/x'\ntR.";
        assert_eq!(uses_of(p), vec![("numpy.memmap".into(), Use::New), ("numpy.memmap".into(), Use::Call)]);
    }

    #[test]
    fn generator_ctor_calls_its_second_argument() {
        let p = b"cnumpy.random._pickle\n__generator_ctor\n(S'echo'\ncos\nsystem\ntR.";
        assert_eq!(uses_of(p), vec![("os.system".into(), Use::Call)]);
        // The default constructor with a class: the class is called.
        let p = b"cnumpy.random._pickle\n__generator_ctor\n(cnumpy\nmemmap\ntR.";
        assert_eq!(uses_of(p), vec![("numpy.memmap".into(), Use::Call)]);
        // A name: looked up in numpy's table.
        let p = b"cnumpy.random._pickle\n__generator_ctor\n(S'PCG64'\ntR.";
        assert_eq!(uses_of(p), vec![]);
        let p = b"cnumpy.random._pickle\n__generator_ctor\n(S'PCG64'\ncnumpy.random._pickle\n__bit_generator_ctor\ntR.";
        assert_eq!(uses_of(p), vec![]);
    }

    #[test]
    fn newobj_with_and_without_arguments() {
        let p = b"ccopyreg\n__newobj__\n(cnumpy\nmemmap\ntR.";
        assert_eq!(uses_of(p), vec![("numpy.memmap".into(), Use::New)]);
        let p = b"ccopyreg\n__newobj__\n(cnumpy\nmemmap\nS'/tmp/x'\ntR.";
        assert_eq!(uses_of(p), vec![("numpy.memmap".into(), Use::Call)]);
    }

    #[test]
    fn made_by_follows_factories() {
        let a = Analyzer::new().run(b"ccopyreg\n_reconstructor\n(cmypkg\nThing\ncbuiltins\nobject\nNtR.");
        let root = a.pickles[0].root.expect("root");
        let Some(Maker::Value(by)) = made_by(&a, root) else { panic!("made by a value") };
        assert!(matches!(a.value(by), Value::Global(g) if &*g.name == "Thing"));
        // numpy's random constructors pick their class themselves.
        let a = Analyzer::new().run(b"cnumpy.random._pickle\n__bit_generator_ctor\n(S'PCG64'\ntR.");
        let root = a.pickles[0].root.expect("root");
        assert_eq!(made_by(&a, root), Some(Maker::Name("numpy.random._pcg64", "PCG64")));
        let a = Analyzer::new().run(b"cnumpy.random._pickle\n__generator_ctor\n(S'PCG64'\ntR.");
        let root = a.pickles[0].root.expect("root");
        assert_eq!(made_by(&a, root), Some(Maker::Name("numpy.random._generator", "Generator")));
    }
}
