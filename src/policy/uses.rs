//! What a file may do with an allowlisted global: its *uses*.
//!
//! An allowed name is safe only in the ways real files use it
//! (`docs/uses.md`): `numpy.memmap` is a harmless subtype handed to
//! `_reconstruct`, and a file overwrite when called with a path and mode
//! `'w+'`. Each entry of the built-in allowlist carries the [`Use`]s a file
//! may make of it, and for `call` optionally an argument [`Contract`]. The
//! judge (`crate::rules`) works out which use each event makes; this module
//! only says whether an entry permits it.
//!
//! The lists are generated (`scripts/gen_allowlist.py`) from two kinds of
//! evidence: how the real libraries' own pickles use each name, and the
//! gadget hunt (`scripts/gadget_hunt.py`), which takes away a use that shows
//! an effect and records it in `gadgets.txt`.

use std::fmt;

/// One way a pickle can use a global `X` (see `docs/uses.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Use {
    /// `X` held as a value (a dtype, a subtype for `_reconstruct`, a class in state).
    Ref,
    /// `X.__new__(X)` without arguments: an instance without `X`'s constructor.
    New,
    /// `X` called with arguments (or its `__new__` given arguments).
    Call,
    /// `BUILD` on an object made by `X`: its `__setstate__`, or `setattr`.
    Build,
    /// `APPEND`/`SETITEM`/`ADDITEMS` on an object made by `X`.
    Items,
    /// An object made by `X` is itself called: `X.__call__` runs.
    Invoke,
    /// `BUILD` on the class object `X` itself: `setattr` on the class.
    BuildClass,
}

impl Use {
    /// Every use, in bit order.
    pub const ALL: [Use; 7] = [Use::Ref, Use::New, Use::Call, Use::Build, Use::Items, Use::Invoke, Use::BuildClass];

    /// The name used in the allowlist and in findings.
    pub fn as_str(self) -> &'static str {
        match self {
            Use::Ref => "ref",
            Use::New => "new",
            Use::Call => "call",
            Use::Build => "build",
            Use::Items => "items",
            Use::Invoke => "invoke",
            Use::BuildClass => "build-class",
        }
    }

    /// The use named `s`.
    pub fn from_name(s: &str) -> Option<Use> {
        Use::ALL.into_iter().find(|u| u.as_str() == s)
    }

    /// What the loader does, in a few words, for a finding.
    pub fn describe(self) -> &'static str {
        match self {
            Use::Ref => "held as a value",
            Use::New => "instantiated without its constructor",
            Use::Call => "called with arguments",
            Use::Build => "given a BUILD state",
            Use::Items => "given items (APPEND/SETITEM/ADDITEMS on an instance)",
            Use::Invoke => "an instance of it called",
            Use::BuildClass => "attributes set on the class itself by BUILD",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Use {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Use`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct UseSet(u8);

impl UseSet {
    /// Every use but the two no entry permits (`invoke`, `build-class`):
    /// what a name the user allows may do.
    pub const TRUSTED: UseSet = UseSet(0b1_1111);

    /// True when `u` is in the set.
    pub fn contains(self, u: Use) -> bool {
        self.0 & u.bit() != 0
    }

    /// Adds `u`.
    pub fn insert(&mut self, u: Use) {
        self.0 |= u.bit();
    }

    /// The uses, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Use> {
        Use::ALL.into_iter().filter(move |u| self.contains(*u))
    }
}

/// One kind an argument may have in a [`Contract`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `str`.
    Str,
    /// A `bytes`.
    Bytes,
    /// An `int` (not a bool).
    Int,
    /// A `float`.
    Float,
    /// A `bool`.
    Bool,
    /// `None`.
    None,
    /// A tuple.
    Tuple,
    /// A list.
    List,
    /// A dict.
    Dict,
    /// A global (an imported name).
    Class,
    /// Anything that is not a global or a callable made from one.
    Data,
    /// Anything.
    Any,
    /// A `str` equal to this text.
    Lit(&'static str),
    /// A `str` that is exactly scipy's argument-parser source for some
    /// shape names (see [`is_scipy_argparser`]).
    Argparser,
}

impl Kind {
    fn parse(s: &'static str) -> Option<Kind> {
        if let Some(lit) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            return Some(Kind::Lit(lit));
        }
        Some(match s {
            "str" => Kind::Str,
            "bytes" => Kind::Bytes,
            "int" => Kind::Int,
            "float" => Kind::Float,
            "bool" => Kind::Bool,
            "none" => Kind::None,
            "tuple" => Kind::Tuple,
            "list" => Kind::List,
            "dict" => Kind::Dict,
            "class" => Kind::Class,
            "data" => Kind::Data,
            "any" => Kind::Any,
            "argparser" => Kind::Argparser,
            _ => return None,
        })
    }

    fn admits(self, a: &ArgKind<'_>) -> bool {
        match (self, a) {
            (Kind::Any, _) => true,
            (Kind::Data, ArgKind::Class | ArgKind::Callable) => false,
            (Kind::Data, _) => true,
            (Kind::Str, ArgKind::Str(_)) => true,
            (Kind::Lit(l), ArgKind::Str(Some(s))) => l == *s,
            (Kind::Argparser, ArgKind::Str(Some(s))) => is_scipy_argparser(s),
            (Kind::Bytes, ArgKind::Bytes) => true,
            (Kind::Int, ArgKind::Int) => true,
            (Kind::Float, ArgKind::Float) => true,
            (Kind::Bool, ArgKind::Bool) => true,
            (Kind::None, ArgKind::None) => true,
            (Kind::Tuple, ArgKind::Tuple) => true,
            (Kind::List, ArgKind::List) => true,
            (Kind::Dict, ArgKind::Dict) => true,
            (Kind::Class, ArgKind::Class) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Kind::Str => "str",
            Kind::Bytes => "bytes",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Bool => "bool",
            Kind::None => "none",
            Kind::Tuple => "tuple",
            Kind::List => "list",
            Kind::Dict => "dict",
            Kind::Class => "class",
            Kind::Data => "data",
            Kind::Any => "any",
            Kind::Argparser => "argparser",
            Kind::Lit(l) => return write!(f, "'{l}'"),
        };
        f.write_str(s)
    }
}

/// What the judge knows of one argument of a call, for a [`Contract`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind<'a> {
    /// A `str`, with its text when it was kept whole.
    Str(Option<&'a str>),
    /// A `bytes`.
    Bytes,
    /// An `int`.
    Int,
    /// A `float`.
    Float,
    /// A `bool`.
    Bool,
    /// `None`.
    None,
    /// A tuple.
    Tuple,
    /// A list.
    List,
    /// A dict.
    Dict,
    /// A global.
    Class,
    /// Something callable made from a global (`getattr(X, 'a')`, a partial).
    Callable,
    /// Anything else: a set, a call's result, a persistent object, an unknown.
    Other,
}

/// One parameter of a [`Contract`]: the kinds it admits.
/// Why the uses of an allowlist entry do not parse. The embedded lists are
/// generated, and a test parses every line, so a user never meets one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecError {
    /// A parameter after `**` in `call(...)`.
    KwargsNotLast {
        /// The contract, as written between the parentheses.
        spec: &'static str,
    },
    /// A parameter after `*` in `call(...)`.
    RestNotLast {
        /// The contract.
        spec: &'static str,
    },
    /// A required parameter after an optional one in `call(...)`.
    RequiredAfterOptional {
        /// The contract.
        spec: &'static str,
    },
    /// An unknown argument kind in `call(...)`.
    UnknownArgKind {
        /// The kind, as written.
        kind: &'static str,
        /// The contract.
        spec: &'static str,
    },
    /// An entry of `build(...)` that is not `key:kind`.
    NotKeyKind {
        /// The entry.
        entry: &'static str,
        /// The contract.
        spec: &'static str,
    },
    /// An unknown value kind in `build(...)`.
    UnknownStateKind {
        /// The kind, as written.
        kind: &'static str,
        /// The contract.
        spec: &'static str,
    },
    /// A use no entry may permit (`invoke`, `build-class`).
    Forbidden(Use),
    /// A token that is not a use.
    UnknownUse(&'static str),
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::KwargsNotLast { spec } => write!(f, "`**` must come last in `{spec}`"),
            SpecError::RestNotLast { spec } => write!(f, "`*` must come after every parameter in `{spec}`"),
            SpecError::RequiredAfterOptional { spec } => {
                write!(f, "a required parameter follows an optional one in `{spec}`")
            }
            SpecError::UnknownArgKind { kind, spec } => write!(f, "unknown argument kind `{kind}` in `{spec}`"),
            SpecError::NotKeyKind { entry, spec } => write!(f, "`{entry}` is not key:kind in `{spec}`"),
            SpecError::UnknownStateKind { kind, spec } => write!(f, "unknown kind `{kind}` in `{spec}`"),
            SpecError::Forbidden(u) => write!(f, "no entry may permit `{u}`"),
            SpecError::UnknownUse(t) => write!(f, "unknown use `{t}`"),
        }
    }
}

impl std::error::Error for SpecError {}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Param {
    kinds: Vec<Kind>,
    optional: bool,
}

/// The arguments a `call` use admits: `call(str,bool?,bool?)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    params: Vec<Param>,
    /// A final `*`: any further positional arguments of kind `data`.
    rest: bool,
    /// A final `**`: keywords admitted.
    kwargs: bool,
}

impl Contract {
    /// Parses the text between the parentheses of `call(...)`.
    ///
    /// # Errors
    /// A parameter out of place, or an unknown argument kind.
    pub fn parse(s: &'static str) -> Result<Contract, SpecError> {
        let mut c = Contract { params: Vec::new(), rest: false, kwargs: false };
        if s.is_empty() {
            return Ok(c);
        }
        for p in s.split(',') {
            if c.kwargs {
                return Err(SpecError::KwargsNotLast { spec: s });
            }
            match p {
                "**" => {
                    c.kwargs = true;
                    continue;
                }
                "*" => {
                    c.rest = true;
                    continue;
                }
                _ if c.rest => return Err(SpecError::RestNotLast { spec: s }),
                _ => {}
            }
            let (p, optional) = match p.strip_suffix('?') {
                Some(p) => (p, true),
                None => (p, false),
            };
            if !optional && c.params.last().is_some_and(|q| q.optional) {
                return Err(SpecError::RequiredAfterOptional { spec: s });
            }
            let kinds = p
                .split('|')
                .map(|k| Kind::parse(k).ok_or(SpecError::UnknownArgKind { kind: k, spec: s }))
                .collect::<Result<Vec<_>, _>>()?;
            c.params.push(Param { kinds, optional });
        }
        Ok(c)
    }

    /// `None` when the arguments fit; otherwise why not.
    pub fn check(&self, args: &[ArgKind<'_>], has_kwargs: bool) -> Option<String> {
        if has_kwargs && !self.kwargs {
            return Some("keyword arguments".into());
        }
        let required = self.params.iter().filter(|p| !p.optional).count();
        if args.len() < required {
            return Some(format!("{} argument(s), {required} needed", args.len()));
        }
        for (i, a) in args.iter().enumerate() {
            let ok = match self.params.get(i) {
                Some(p) => p.kinds.iter().any(|k| k.admits(a)),
                None if self.rest => Kind::Data.admits(a),
                None => return Some(format!("{} arguments, at most {}", args.len(), self.params.len())),
            };
            if !ok {
                return Some(format!("argument {} is {}, not {}", i + 1, arg_name(a), self.param_text(i)));
            }
        }
        None
    }

    /// The kinds parameter `i` admits (`data` past the last, under `*`).
    fn param_text(&self, i: usize) -> String {
        match self.params.get(i) {
            Some(p) => p.kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>().join("|"),
            None => Kind::Data.to_string(),
        }
    }
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = (0..self.params.len())
            .map(|i| format!("{}{}", self.param_text(i), if self.params[i].optional { "?" } else { "" }))
            .collect();
        if self.rest {
            parts.push("*".into());
        }
        if self.kwargs {
            parts.push("**".into());
        }
        write!(f, "call({})", parts.join(","))
    }
}

fn arg_name(a: &ArgKind<'_>) -> &'static str {
    match a {
        ArgKind::Str(_) => "a str",
        ArgKind::Bytes => "a bytes",
        ArgKind::Int => "an int",
        ArgKind::Float => "a float",
        ArgKind::Bool => "a bool",
        ArgKind::None => "None",
        ArgKind::Tuple => "a tuple",
        ArgKind::List => "a list",
        ArgKind::Dict => "a dict",
        ArgKind::Class => "a global",
        ArgKind::Callable => "a callable",
        ArgKind::Other => "another object",
    }
}

/// What a use is given, for the contracts of [`Uses`].
#[derive(Debug, Clone, Copy)]
pub enum Given<'a> {
    /// Nothing to check, or nothing the judge can read.
    Nothing,
    /// A call's positional arguments (`None`: not a tuple the judge can
    /// read) and whether it has keywords.
    Args(Option<&'a [ArgKind<'a>]>, bool),
    /// A `BUILD` state: its `str` keys and their values when it is a dict,
    /// `None` for any other state.
    State(Option<&'a [(&'a str, ArgKind<'a>)]>),
}

/// What a `BUILD` state must hold: `build(key:kind|kind,...)`. The state is
/// a dict and each listed key is present with a value of its kinds; other
/// keys are free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateContract {
    keys: Vec<(&'static str, Vec<Kind>)>,
}

impl StateContract {
    /// Parses the text between the parentheses of `build(...)`.
    ///
    /// # Errors
    /// An entry that is not `key:kind`, or an unknown kind.
    pub fn parse(s: &'static str) -> Result<StateContract, SpecError> {
        let keys = s
            .split(',')
            .map(|p| {
                let (key, kinds) = p.split_once(':').ok_or(SpecError::NotKeyKind { entry: p, spec: s })?;
                let kinds = kinds
                    .split('|')
                    .map(|k| Kind::parse(k).ok_or(SpecError::UnknownStateKind { kind: k, spec: s }))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((key, kinds))
            })
            .collect::<Result<Vec<_>, SpecError>>()?;
        Ok(StateContract { keys })
    }

    /// `None` when the state fits; otherwise why not.
    pub fn check(&self, state: Option<&[(&str, ArgKind<'_>)]>) -> Option<String> {
        let Some(pairs) = state else { return Some("a state that is not a dict".into()) };
        for (key, kinds) in &self.keys {
            // The last assignment wins, as in the dict.
            match pairs.iter().rev().find(|(k, _)| k == key) {
                None => return Some(format!("no `{key}` in the state")),
                Some((_, v)) if !kinds.iter().any(|k| k.admits(v)) => {
                    let want: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
                    return Some(format!("`{key}` is {}, not {}", arg_name(v), want.join("|")));
                }
                Some(_) => {}
            }
        }
        None
    }
}

impl fmt::Display for StateContract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .keys
            .iter()
            .map(|(k, kinds)| format!("{k}:{}", kinds.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("|")))
            .collect();
        write!(f, "build({})", parts.join(","))
    }
}

/// The source scipy's `rv_generic._construct_argparser` generates for a
/// distribution (`scipy/stats/_distn_infrastructure.py`,
/// `parse_arg_template`), which `__setstate__` hands to `exec`: with the
/// shape names of continuous or discrete distributions, and nothing else.
pub fn is_scipy_argparser(s: &str) -> bool {
    const LOCSCALE: [(&str, &str); 2] = [("loc=0, scale=1", "loc, scale"), ("loc=0", "loc, 1")];
    let Some(rest) = s.strip_prefix("\ndef _parse_args(self, ") else { return false };
    LOCSCALE.iter().any(|(lin, lout)| {
        let Some(end) = rest.find(&format!(" {lin}):\n")) else { return false };
        let shapes = &rest[..end];
        // `', '.join(names) + ', '`, or nothing; each name an identifier.
        let names_ok = shapes.is_empty()
            || shapes.strip_suffix(", ").is_some_and(|names| {
                names.split(", ").all(|n| {
                    let mut c = n.chars();
                    c.next().is_some_and(|f| f == '_' || f.is_ascii_alphabetic())
                        && c.all(|x| x == '_' || x.is_ascii_alphanumeric())
                })
            });
        names_ok && s == scipy_argparser(shapes, lin, lout)
    })
}

fn scipy_argparser(shapes: &str, lin: &str, lout: &str) -> String {
    format!(
        "\ndef _parse_args(self, {shapes} {lin}):\n    return ({shapes}), {lout}\n\n\
         def _parse_args_rvs(self, {shapes} {lin}, size=None):\n    return self._argcheck_rvs({shapes} {lout}, size=size)\n\n\
         def _parse_args_stats(self, {shapes} {lin}, moments='mv'):\n    return ({shapes}), {lout}, moments\n"
    )
}

/// The uses one allowlist entry permits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Uses {
    /// The permitted uses.
    pub set: UseSet,
    /// For `call`: the arguments it admits (`None`: any).
    pub contract: Option<Contract>,
    /// For `build`: what the state must hold (`None`: anything).
    pub state: Option<StateContract>,
}

impl Uses {
    /// Parses the use tokens of an allowlist line: `ref new call(str,int?) build`.
    ///
    /// # Errors
    /// A token that is not a use, a use no entry may permit, or a contract
    /// that does not parse.
    pub fn parse(tokens: impl Iterator<Item = &'static str>) -> Result<Uses, SpecError> {
        let mut u = Uses::default();
        for t in tokens {
            if let Some(inner) = t.strip_prefix("call(").and_then(|r| r.strip_suffix(')')) {
                u.set.insert(Use::Call);
                u.contract = Some(Contract::parse(inner)?);
                continue;
            }
            if let Some(inner) = t.strip_prefix("build(").and_then(|r| r.strip_suffix(')')) {
                u.set.insert(Use::Build);
                u.state = Some(StateContract::parse(inner)?);
                continue;
            }
            match Use::from_name(t) {
                Some(x @ (Use::Invoke | Use::BuildClass)) => return Err(SpecError::Forbidden(x)),
                Some(x) => u.set.insert(x),
                None => return Err(SpecError::UnknownUse(t)),
            }
        }
        Ok(u)
    }

    /// True when `u` is permitted whatever it is given: the judge need
    /// not read the arguments or the state.
    pub fn permits_any(&self, u: Use) -> bool {
        self.set.contains(u)
            && match u {
                Use::Call => self.contract.is_none(),
                Use::Build => self.state.is_none(),
                _ => true,
            }
    }

    /// `None` when `u`, given what it is given, is permitted; otherwise why not.
    pub fn check(&self, u: Use, given: Given<'_>) -> Option<String> {
        if !self.set.contains(u) {
            return Some(format!("real files never have it {}", u.describe()));
        }
        match (u, &self.contract, &self.state, given) {
            (Use::Call, Some(c), _, Given::Args(Some(a), kw)) => {
                c.check(a, kw).map(|why| format!("outside its contract {c}: {why}"))
            }
            (Use::Call, Some(c), _, _) => Some(format!("arguments that cannot be read against its contract {c}")),
            (Use::Build, _, Some(c), Given::State(st)) => {
                c.check(st).map(|why| format!("outside its contract {c}: {why}"))
            }
            (Use::Build, _, Some(c), _) => Some(format!("a state that cannot be read against its contract {c}")),
            _ => None,
        }
    }
}

impl fmt::Display for Uses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for u in self.set.iter() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            match (u, &self.contract, &self.state) {
                (Use::Call, Some(c), _) => write!(f, "{c}")?,
                (Use::Build, _, Some(c)) => write!(f, "{c}")?,
                _ => write!(f, "{u}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What scipy 1.17 generates for `loguniform` (shapes `a, b`), copied
    /// from a pickled `scipy.stats.loguniform(1e-3, 1).dist`.
    const LOGUNIFORM: &str = "\ndef _parse_args(self, a, b,  loc=0, scale=1):\n    return (a, b, ), loc, scale\n\ndef _parse_args_rvs(self, a, b,  loc=0, scale=1, size=None):\n    return self._argcheck_rvs(a, b,  loc, scale, size=size)\n\ndef _parse_args_stats(self, a, b,  loc=0, scale=1, moments='mv'):\n    return (a, b, ), loc, scale, moments\n";

    #[test]
    fn scipy_argparser_source_and_nothing_else() {
        assert!(is_scipy_argparser(LOGUNIFORM));
        assert!(is_scipy_argparser(&scipy_argparser("", "loc=0", "loc, 1")));
        assert!(is_scipy_argparser(&scipy_argparser("n, p, ", "loc=0", "loc, 1")));
        // Code smuggled in as a shape name, or anywhere else.
        let evil = scipy_argparser("a=__import__('os').system('echo'), ", "loc=0, scale=1", "loc, scale");
        assert!(!is_scipy_argparser(&evil));
        assert!(!is_scipy_argparser(&format!("{LOGUNIFORM}import os\n")));
        assert!(!is_scipy_argparser(&LOGUNIFORM.replace("moments='mv'", "moments=print('x')")));
        let st = StateContract::parse("_parse_arg_template:argparser").expect("contract");
        let good =
            [("name", ArgKind::Str(Some("loguniform"))), ("_parse_arg_template", ArgKind::Str(Some(LOGUNIFORM)))];
        assert_eq!(st.check(Some(&good)), None);
        let bad = [("_parse_arg_template", ArgKind::Str(Some("import os")))];
        assert!(st.check(Some(&bad)).is_some());
        assert!(st.check(Some(&[])).is_some());
        assert!(st.check(None).is_some());
        let u = uses("ref new build(_parse_arg_template:argparser)");
        assert_eq!(u.to_string(), "ref new build(_parse_arg_template:argparser)");
        assert!(!u.permits_any(Use::Build));
        assert_eq!(u.check(Use::Build, Given::State(Some(&good))), None);
    }

    fn uses(s: &'static str) -> Uses {
        Uses::parse(s.split_whitespace()).expect("uses")
    }

    #[test]
    fn parse_and_print() {
        let u = uses("ref call(str,bool?,bool?) build");
        assert_eq!(u.to_string(), "ref call(str,bool?,bool?) build");
        assert!(u.set.contains(Use::Ref) && u.set.contains(Use::Call) && !u.set.contains(Use::New));
        assert_eq!(uses("call('latin1'|str,*,**)").to_string(), "call('latin1'|str,*,**)");
        let bad = [
            ("cal", SpecError::UnknownUse("cal")),
            ("invoke", SpecError::Forbidden(Use::Invoke)),
            ("build-class", SpecError::Forbidden(Use::BuildClass)),
            ("call(str?,int)", SpecError::RequiredAfterOptional { spec: "str?,int" }),
            ("call(**,str)", SpecError::KwargsNotLast { spec: "**,str" }),
            ("call(*,str)", SpecError::RestNotLast { spec: "*,str" }),
            ("call(strr)", SpecError::UnknownArgKind { kind: "strr", spec: "strr" }),
            ("build(a)", SpecError::NotKeyKind { entry: "a", spec: "a" }),
            ("build(a:strr)", SpecError::UnknownStateKind { kind: "strr", spec: "a:strr" }),
        ];
        for (text, want) in bad {
            assert_eq!(Uses::parse(std::iter::once(text)), Err(want), "{text}");
        }
        assert_eq!(
            SpecError::RequiredAfterOptional { spec: "str?,int" }.to_string(),
            "a required parameter follows an optional one in `str?,int`"
        );
    }

    #[test]
    fn contracts() {
        let u = uses("call(str,'latin1')");
        let s = |t| ArgKind::Str(Some(t));
        let call = |u: &Uses, a: &[ArgKind<'_>], kw| u.check(Use::Call, Given::Args(Some(a), kw));
        assert_eq!(call(&u, &[s("x"), s("latin1")], false), None);
        let why = call(&u, &[s("x"), s("zlib")], false).expect("refused");
        assert!(why.contains("argument 2 is a str, not 'latin1'"), "{why}");
        assert!(call(&u, &[s("x")], false).is_some());
        assert!(call(&u, &[s("x"), s("latin1"), ArgKind::Int], false).is_some());
        assert!(call(&u, &[s("x"), s("latin1")], true).is_some());
        assert!(u.check(Use::Call, Given::Args(None, false)).is_some());
        assert!(u.check(Use::New, Given::Nothing).unwrap().contains("instantiated"));
        // `data` refuses globals and callables; `*` takes data only.
        let u = uses("call(data,*)");
        assert_eq!(call(&u, &[ArgKind::Other, ArgKind::Dict, ArgKind::Int], false), None);
        assert!(call(&u, &[ArgKind::Other, ArgKind::Class], false).is_some());
        assert!(call(&u, &[ArgKind::Callable], false).is_some());
        // A bool is not an int.
        assert!(call(&uses("call(int)"), &[ArgKind::Bool], false).is_some());
        // No contract: any arguments.
        assert_eq!(call(&uses("call"), &[ArgKind::Class], true), None);
        assert!(uses("call").permits_any(Use::Call) && !uses("call(int)").permits_any(Use::Call));
    }
}
