//! Which globals are known-safe, known-dangerous, or unknown.
//!
//! The built-in policy is three embedded lists: `allowlist.txt` (exact
//! globals legitimate numpy, scikit-learn, scipy, pandas, PyTorch and
//! standard-library pickles need, generated from those libraries by
//! `scripts/gen_allowlist.py`), `denylist.txt` (modules and names that run
//! code, touch files, processes or the network, or deserialise again) and
//! `conditional.txt` (higher-order builtins judged by their arguments).
//! Everything else is unknown: an allowlist decides what is safe, a denylist
//! only decides how loud an unknown is.
//!
//! Names are judged after CPython's Python 2 mapping (done by the machine).
//! A dotted name is an attribute path: it is safe only when the whole path is
//! allowlisted, and dangerous when any step reaches a denied module, an
//! introspection dunder, or ends in a name that runs things.
//!
//! A policy file or flags extend the built-in lists with [`Additions`]
//! (checked by [`config`], applied with [`Policy::with_config`]). The order
//! in [`Policy::judge`] is what keeps them safe: an added denial wins over
//! everything; `allow-denied` is the only way past the built-in denylist, and
//! only for exact names; an added allow is consulted only after the built-in
//! denylist has had its say, so no allow entry can make a denied name safe.

pub mod config;
pub mod uses;

use std::fmt;

pub use uses::{ArgKind, Contract, Given, SpecError, Use, UseSet, Uses};

/// How a global is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// On the allowlist.
    Safe,
    /// Judged by how it is called (`builtins.getattr`, `functools.partial`).
    Conditional,
    /// On neither list.
    Unknown,
    /// On the denylist, or reaches something on it.
    Dangerous,
}

/// A verdict and the reason for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in a few words.
    pub reason: String,
}

impl Judgement {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Judgement {
        Judgement { verdict, reason: reason.into() }
    }
}

/// Attribute names that run or load things, for judging attribute paths.
const DANGEROUS_ATTRS: &[&str] = &[
    "system",
    "popen",
    "popen2",
    "popen3",
    "spawn",
    "spawnl",
    "spawnv",
    "spawnve",
    "spawnlp",
    "execv",
    "execve",
    "execl",
    "execlp",
    "execvp",
    "fork",
    "forkpty",
    "kill",
    "remove",
    "unlink",
    "rmdir",
    "rmtree",
    "eval",
    "exec",
    "compile",
    "__import__",
    "import_module",
    "getattr",
    "setattr",
    "open",
    "load",
    "loads",
    "call",
    "check_call",
    "check_output",
    "run",
    "Popen",
    "getoutput",
    "getstatusoutput",
    "urlopen",
    "urlretrieve",
    "connect",
    "create_connection",
    "write_text",
    "write_bytes",
    "system_profile",
];

/// What [`Policy::judge_use`] says of one use of a global.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseVerdict {
    /// A use real files make of it (or a name the policy file trusts).
    Permitted,
    /// Beyond its permitted uses, and the gadget hunt showed this use to
    /// have an effect.
    Gadget {
        /// What the hunt saw (`file-write: ...`).
        effect: &'static str,
        /// Why the use is not permitted.
        why: String,
    },
    /// Beyond its permitted uses; no effect known.
    Unlisted {
        /// Why the use is not permitted.
        why: String,
    },
}

/// A global, or a group of globals, named by a policy file or a flag.
///
/// Three spellings: `module:name` is [`GlobalPattern::Split`], `a.b.Name` is
/// [`GlobalPattern::Joined`] (any module and name that join to that dotted
/// string, since `find_class('a.b', 'Name')` and `find_class('a', 'b.Name')`
/// reach the same object), and `module.*` is [`GlobalPattern::Module`] (the
/// module and its submodules). Names are compared after CPython's Python 2
/// mapping, as [`Policy::judge`] receives them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GlobalPattern {
    /// `module:name`: exactly this module and (possibly dotted) name.
    Split {
        /// The module.
        module: String,
        /// The name, possibly an attribute path.
        name: String,
    },
    /// `a.b.Name`: every module and name whose `module.name` is this string.
    Joined(String),
    /// `module.*`: every name in this module and in its submodules.
    Module(String),
}

/// Why a string is not a valid [`GlobalPattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternError {
    /// The string is empty.
    Empty,
    /// A `*` anywhere but in a final `.*`.
    MisplacedStar,
    /// An empty part: `a..b`, `.a`, `a.`, `:name`.
    EmptyPart,
    /// A character that cannot appear in a Python name.
    BadChar(char),
    /// A part that starts with a digit.
    LeadingDigit(String),
    /// A single name with no module, such as `numpy`.
    NoModule,
    /// More than one `:`.
    TwoColons,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::Empty => write!(f, "empty name"),
            PatternError::MisplacedStar => {
                write!(f, "`*` may only end a module pattern, as in `mypkg.*` (the module and its submodules)")
            }
            PatternError::EmptyPart => write!(f, "empty part (two dots in a row, or a dot or colon at an end)"),
            PatternError::BadChar(c) => write!(f, "character {c:?} cannot appear in a Python name"),
            PatternError::LeadingDigit(p) => write!(f, "`{p}` starts with a digit"),
            PatternError::NoModule => {
                write!(f, "no module: write `module.Name`, `module:Name`, or `module.*` for a whole module")
            }
            PatternError::TwoColons => write!(f, "more than one `:`"),
        }
    }
}

impl std::error::Error for PatternError {}

/// Checks a dotted Python name such as `a.b_c.D`.
fn check_dotted(s: &str) -> Result<(), PatternError> {
    for part in s.split('.') {
        let Some(first) = part.chars().next() else {
            return Err(PatternError::EmptyPart);
        };
        if part.contains('*') {
            return Err(PatternError::MisplacedStar);
        }
        if let Some(c) = part.chars().find(|&c| c != '_' && !c.is_alphanumeric()) {
            return Err(PatternError::BadChar(c));
        }
        if first.is_numeric() {
            return Err(PatternError::LeadingDigit(part.to_string()));
        }
    }
    Ok(())
}

/// True when `module` is `package` or one of its submodules.
fn in_package(module: &str, package: &str) -> bool {
    module.strip_prefix(package).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

impl std::str::FromStr for GlobalPattern {
    type Err = PatternError;

    /// Parses `module:name`, `a.b.Name` or `module.*`.
    fn from_str(s: &str) -> Result<GlobalPattern, PatternError> {
        if s.is_empty() {
            return Err(PatternError::Empty);
        }
        if let Some((module, name)) = s.split_once(':') {
            if name.contains(':') {
                return Err(PatternError::TwoColons);
            }
            check_dotted(module)?;
            check_dotted(name)?;
            return Ok(GlobalPattern::Split { module: module.to_string(), name: name.to_string() });
        }
        if let Some(module) = s.strip_suffix(".*") {
            check_dotted(module)?;
            return Ok(GlobalPattern::Module(module.to_string()));
        }
        check_dotted(s)?;
        if !s.contains('.') {
            return Err(PatternError::NoModule);
        }
        Ok(GlobalPattern::Joined(s.to_string()))
    }
}

impl fmt::Display for GlobalPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobalPattern::Split { module, name } => write!(f, "{module}:{name}"),
            GlobalPattern::Joined(j) => write!(f, "{j}"),
            GlobalPattern::Module(m) => write!(f, "{m}.*"),
        }
    }
}

impl GlobalPattern {
    /// True for an exact name, false for a `module.*` pattern.
    pub fn is_exact(&self) -> bool {
        !matches!(self, GlobalPattern::Module(_))
    }

    /// True when `module name` is this exact global or, for a `module.*`
    /// pattern, when `module` is that module or a submodule. This is how an
    /// allow entry matches: narrowly.
    pub fn names(&self, module: &str, name: &str) -> bool {
        match self {
            GlobalPattern::Split { module: m, name: n } => m == module && n == name,
            GlobalPattern::Joined(j) => j.strip_prefix(module).and_then(|r| r.strip_prefix('.')) == Some(name),
            GlobalPattern::Module(p) => in_package(module, p),
        }
    }

    /// True when `module name` is this global, an attribute reached through
    /// it (`a.B.attr` for `a.B`), or lies anywhere under a `module.*`
    /// pattern, including through an attribute path (`find_class('a',
    /// 'b.C')` for `a.b.*`). This is how a deny entry matches: broadly.
    pub fn covers(&self, module: &str, name: &str) -> bool {
        match self {
            GlobalPattern::Split { module: m, name: n } => {
                m == module && name.strip_prefix(n.as_str()).is_some_and(|r| r.is_empty() || r.starts_with('.'))
            }
            GlobalPattern::Joined(j) => in_package(&format!("{module}.{name}"), j),
            GlobalPattern::Module(p) => {
                let full = format!("{module}.{name}");
                full.strip_prefix(p.as_str()).is_some_and(|r| r.starts_with('.'))
            }
        }
    }

    /// Every (module, name) an exact pattern can stand for: one for
    /// `module:name`, one per dot for `a.b.Name`; none for `module.*`.
    pub fn splits(&self) -> Vec<(String, String)> {
        match self {
            GlobalPattern::Split { module, name } => vec![(module.clone(), name.clone())],
            GlobalPattern::Joined(j) => {
                j.match_indices('.').map(|(i, _)| (j[..i].to_string(), j[i + 1..].to_string())).collect()
            }
            GlobalPattern::Module(_) => Vec::new(),
        }
    }
}

/// One entry added to the built-in policy, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addition {
    /// The global or globals.
    pub pattern: GlobalPattern,
    /// Where it was written, for verdict reasons: `pkinspect.toml:4`, `--allow`.
    pub origin: String,
}

/// What a policy file and the command line add to the built-in policy.
///
/// Built and checked by [`config`]; applied with [`Policy::with_config`].
/// Whatever these hold, [`Policy::judge`] never lets an `allow` entry make
/// a name on the built-in denylist safe; only `allow_denied` can, one exact
/// name at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Additions {
    /// Globals judged safe: exact names and `module.*` patterns.
    pub allow: Vec<Addition>,
    /// Exact globals on the built-in denylist that are judged safe anyway.
    pub allow_denied: Vec<Addition>,
    /// Globals judged dangerous. A denial wins over every allow.
    pub deny: Vec<Addition>,
}

impl Additions {
    /// True when nothing is added.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.allow_denied.is_empty() && self.deny.is_empty()
    }

    /// Appends everything in `other`.
    pub fn extend(&mut self, other: Additions) {
        self.allow.extend(other.allow);
        self.allow_denied.extend(other.allow_denied);
        self.deny.extend(other.deny);
    }
}

/// The built-in lists, parsed once per process from the embedded text
/// without copying a name: sorted slices of `&'static str`, searched by
/// bisection. Every [`Policy`] shares them, so building or cloning one
/// costs only its [`Additions`].
#[derive(Debug)]
struct Lists {
    allow: Vec<(&'static str, &'static str)>,
    /// The uses of each `allow` entry, at the same index.
    uses: Vec<Uses>,
    /// Uses the gadget hunt showed to have effects, with the effect, sorted.
    gadgets: Vec<((&'static str, &'static str, Use), &'static str)>,
    deny_modules: Vec<&'static str>,
    deny_names: Vec<(&'static str, &'static str)>,
    conditional: Vec<(&'static str, &'static str)>,
}

impl Lists {
    fn get() -> &'static Lists {
        static LISTS: std::sync::OnceLock<Lists> = std::sync::OnceLock::new();
        LISTS.get_or_init(|| {
            let mut l = Lists {
                allow: Vec::new(),
                uses: Vec::new(),
                gadgets: parse_gadgets(include_str!("gadgets.txt")).collect(),
                deny_modules: Vec::new(),
                deny_names: Vec::new(),
                conditional: Vec::new(),
            };
            // A line that does not parse is left out (judged unknown); a
            // test checks that every line of the embedded list parses.
            let mut allow: Vec<_> = parse_allowlist(include_str!("allowlist.txt")).filter_map(Result::ok).collect();
            allow.sort_unstable_by_key(|e| e.0);
            allow.dedup_by_key(|e| e.0);
            (l.allow, l.uses) = allow.into_iter().unzip();
            l.gadgets.sort_unstable_by_key(|g| g.0);
            for (m, n) in parse_list(include_str!("denylist.txt")) {
                match n {
                    Some(n) => l.deny_names.push((m, n)),
                    None => l.deny_modules.push(m),
                }
            }
            l.conditional.extend(parse_list(include_str!("conditional.txt")).filter_map(|(m, n)| Some((m, n?))));
            for v in [&mut l.deny_names, &mut l.conditional] {
                v.sort_unstable();
                v.dedup();
            }
            l.deny_modules.sort_unstable();
            l.deny_modules.dedup();
            l
        })
    }
}

/// True when the sorted `list` holds `module name`.
fn listed(list: &[(&str, &str)], module: &str, name: &str) -> bool {
    list.binary_search(&(module, name)).is_ok()
}

/// The compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    lists: &'static Lists,
    extra: Additions,
}

/// A line of the embedded allowlist that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowlistError {
    /// A line with a module and no name.
    NoName {
        /// The line.
        line: &'static str,
    },
    /// The uses after the name.
    Uses {
        /// The line.
        line: &'static str,
        /// Why they do not parse.
        error: SpecError,
    },
}

impl fmt::Display for AllowlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowlistError::NoName { line } => write!(f, "{line}: no name"),
            AllowlistError::Uses { line, error } => write!(f, "{line}: {error}"),
        }
    }
}

/// The entries of the allowlist: `module name use use ...`, each with its
/// uses, or why the line does not parse.
fn parse_allowlist(
    text: &'static str,
) -> impl Iterator<Item = Result<((&'static str, &'static str), Uses), AllowlistError>> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(|line| {
        let mut it = line.split_whitespace();
        match (it.next(), it.next()) {
            (Some(m), Some(n)) => {
                Uses::parse(it).map(|u| ((m, n), u)).map_err(|error| AllowlistError::Uses { line, error })
            }
            _ => Err(AllowlistError::NoName { line }),
        }
    })
}

/// The entries of `gadgets.txt`: `module name use effect...`.
fn parse_gadgets(text: &'static str) -> impl Iterator<Item = ((&'static str, &'static str, Use), &'static str)> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).filter_map(|l| {
        let mut it = l.splitn(4, char::is_whitespace);
        let (m, n, u) = (it.next()?, it.next()?, Use::from_name(it.next()?)?);
        Some(((m, n, u), it.next().unwrap_or("").trim()))
    })
}

fn parse_list(text: &'static str) -> impl Iterator<Item = (&'static str, Option<&'static str>)> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| {
        let mut it = l.split_whitespace();
        (it.next().unwrap_or_default(), it.next())
    })
}

impl Policy {
    /// The built-in policy.
    pub fn builtin() -> Policy {
        Policy { lists: Lists::get(), extra: Additions::default() }
    }

    /// The policy with `additions` from a policy file or flags applied on
    /// top (appended to any applied before). Check them first with
    /// [`config`]: this only records them, and [`Policy::judge`] decides.
    pub fn with_config(mut self, additions: &Additions) -> Policy {
        self.extra.extend(additions.clone());
        self
    }

    /// The additions applied with [`Policy::with_config`].
    pub fn additions(&self) -> &Additions {
        &self.extra
    }

    /// True when `module name` is exactly on the allowlist.
    pub fn is_allowed(&self, module: &str, name: &str) -> bool {
        listed(&self.lists.allow, module, name)
    }

    /// The uses the built-in allowlist permits `module name`, when it lists it.
    pub fn builtin_uses(&self, module: &str, name: &str) -> Option<&'static Uses> {
        let l = self.lists;
        l.allow.binary_search(&(module, name)).ok().map(|i| &l.uses[i])
    }

    /// Judges one use of `module name` (see [`uses`]). Only names on the
    /// built-in allowlist have their uses judged: a name a policy file
    /// allows is trusted in every use but `invoke` and `build-class`, and
    /// any other name is judged by [`Policy::judge`] alone (`Permitted`
    /// here). `given` is what the use is given (a call's arguments, a
    /// BUILD's state), for the entry's contracts.
    pub fn judge_use(&self, module: &str, name: &str, u: Use, given: Given<'_>) -> UseVerdict {
        let why = match self.builtin_uses(module, name) {
            Some(uses) => match uses.check(u, given) {
                None => return UseVerdict::Permitted,
                Some(why) => why,
            },
            None if UseSet::TRUSTED.contains(u) => return UseVerdict::Permitted,
            None => format!("no entry permits {}", u.describe()),
        };
        let l = self.lists;
        match l.gadgets.binary_search_by(|g| g.0.cmp(&(module, name, u))) {
            Ok(i) => UseVerdict::Gadget { effect: l.gadgets[i].1, why },
            Err(_) => UseVerdict::Unlisted { why },
        }
    }

    /// True when `module name` is judged by its arguments (`builtins.getattr`).
    pub fn is_conditional(&self, module: &str, name: &str) -> bool {
        listed(&self.lists.conditional, module, name)
    }

    /// Why the built-in denylist makes `module name` dangerous, or `None`.
    /// Additions are not consulted: this is the list that `allow` entries
    /// can never override.
    pub fn denylist_reason(&self, module: &str, name: &str) -> Option<String> {
        if listed(&self.lists.deny_names, module, name) {
            return Some("denylisted global".into());
        }
        if let Some(m) = self.denied_module(module) {
            return Some(format!("denylisted module {m}"));
        }
        if name.contains('.') {
            // Linear in the name: a file's names run to 64 KiB, so the path
            // so far is a slice of `name`, never a string joined per part.
            let deny = &self.lists.deny_names;
            let lo = deny.partition_point(|(m, _)| *m < module);
            let hi = deny.partition_point(|(m, _)| *m <= module);
            let denied_here = &deny[lo..hi];
            let mut end = 0;
            let mut parts = name.split('.').peekable();
            while let Some(part) = parts.next() {
                end += part.len();
                if part.len() > 4 && part.starts_with("__") && part.ends_with("__") {
                    return Some(format!("attribute path through {part}"));
                }
                // A module re-exported as an attribute (`random._os` is `os`).
                let bare = part.trim_start_matches('_');
                if parts.peek().is_some() && (self.denied_module_exact(part) || self.denied_module_exact(bare)) {
                    return Some(format!("attribute path reaches module {bare}"));
                }
                // The path so far, read as the name of a denied global.
                if denied_here.binary_search_by(|(_, n)| (*n).cmp(&name[..end])).is_ok() {
                    return Some("attribute path through a denylisted global".into());
                }
                end += 1;
            }
        }
        None
    }

    /// The built-in denylist entries that the pattern `package.*` would
    /// reach: denied modules inside it (or containing it) and denied names
    /// in it, as `module` or `module.name`, sorted.
    pub fn denylist_under(&self, package: &str) -> Vec<String> {
        let l = self.lists;
        let mut out: Vec<String> = l
            .deny_modules
            .iter()
            .filter(|d| in_package(d, package) || in_package(package, d))
            .map(|d| d.to_string())
            .chain(l.deny_names.iter().filter(|(m, _)| in_package(m, package)).map(|(m, n)| format!("{m}.{n}")))
            .collect();
        out.sort();
        // `torch.hub` is both a denied module and a denied name.
        out.dedup();
        out
    }

    /// The addition that allows `module name`, exact entries first.
    fn added_allow(&self, module: &str, name: &str) -> Option<&Addition> {
        let allow = &self.extra.allow;
        allow
            .iter()
            .find(|a| a.pattern.is_exact() && a.pattern.names(module, name))
            .or_else(|| allow.iter().find(|a| !a.pattern.is_exact() && a.pattern.names(module, name)))
    }

    /// True when `module` itself is a denied module.
    fn denied_module_exact(&self, module: &str) -> bool {
        self.lists.deny_modules.binary_search(&module).is_ok()
    }

    /// The denied module `module` falls under, if any (itself or a parent package).
    fn denied_module<'a>(&self, module: &'a str) -> Option<&'a str> {
        let mut cut = module.len();
        loop {
            let prefix = &module[..cut];
            if self.denied_module_exact(prefix) {
                return Some(prefix);
            }
            match prefix.rfind('.') {
                Some(i) => cut = i,
                None => return None,
            }
        }
    }

    /// Classifies the global `module name` (as `find_class` would receive it).
    ///
    /// In order: an added `deny` entry; an `allow-denied` entry; the built-in
    /// denylist and attribute-path checks; the allowlist and added `allow`
    /// entries. A `module.*` allow entry does not cover a name that runs
    /// things (`system`, `load`, `eval`, ...): those need an exact entry.
    pub fn judge(&self, module: &str, name: &str) -> Judgement {
        if let Some(a) = self.extra.deny.iter().find(|a| a.pattern.covers(module, name)) {
            return Judgement::new(Verdict::Dangerous, format!("denied by {} ({})", a.origin, a.pattern));
        }
        let denial = self.denylist_reason(module, name);
        if let Some(reason) = &denial {
            if let Some(a) = self.extra.allow_denied.iter().find(|a| a.pattern.names(module, name)) {
                return Judgement::new(Verdict::Safe, format!("{reason}, allowed by {} (allow-denied)", a.origin));
            }
            return Judgement::new(Verdict::Dangerous, reason.clone());
        }
        let added = self.added_allow(module, name);
        let last = name.rsplit('.').next().unwrap_or(name);
        // A pattern never covers a name that runs things; an exact entry does.
        let added = added.filter(|a| a.pattern.is_exact() || !DANGEROUS_ATTRS.contains(&last));
        if name.contains('.') {
            if listed(&self.lists.allow, module, name) {
                return Judgement::new(Verdict::Safe, "allowlisted attribute path");
            }
            if let Some(a) = added {
                return Judgement::new(Verdict::Safe, format!("allowed by {} ({})", a.origin, a.pattern));
            }
            if DANGEROUS_ATTRS.contains(&last) {
                return Judgement::new(Verdict::Dangerous, format!("attribute path ends in {last}"));
            }
            return Judgement::new(Verdict::Unknown, "attribute path not on the allowlist");
        }
        if listed(&self.lists.allow, module, name) {
            return Judgement::new(Verdict::Safe, "allowlisted");
        }
        if listed(&self.lists.conditional, module, name) {
            return Judgement::new(Verdict::Conditional, "judged by its arguments");
        }
        if let Some(a) = added {
            return Judgement::new(Verdict::Safe, format!("allowed by {} ({})", a.origin, a.pattern));
        }
        if module.strip_prefix("__torch__").is_some_and(|r| r.is_empty() || r.starts_with('.')) {
            return Judgement::new(
                Verdict::Unknown,
                "TorchScript class, rebuilt by torch.jit.load from the archive's code",
            );
        }
        if let Some(a) = self.added_allow(module, name) {
            return Judgement::new(
                Verdict::Unknown,
                format!("not on the allowlist: {} does not cover names like {name}; allow it exactly", a.pattern),
            );
        }
        Judgement::new(Verdict::Unknown, "not on the allowlist")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allowlist_line_parses() {
        let bad: Vec<String> =
            parse_allowlist(include_str!("allowlist.txt")).filter_map(Result::err).map(|e| e.to_string()).collect();
        assert!(bad.is_empty(), "{bad:#?}");
        assert_eq!(
            parse_allowlist("numpy\nos system invoke").map(|r| r.map(|_| ())).collect::<Vec<_>>(),
            [
                Err(AllowlistError::NoName { line: "numpy" }),
                Err(AllowlistError::Uses { line: "os system invoke", error: SpecError::Forbidden(Use::Invoke) }),
            ]
        );
        assert_eq!(AllowlistError::NoName { line: "numpy" }.to_string(), "numpy: no name");
    }

    #[test]
    fn verdicts() {
        let p = Policy::builtin();
        let v = |m: &str, n: &str| p.judge(m, n).verdict;
        assert_eq!(v("os", "system"), Verdict::Dangerous);
        assert_eq!(v("posix", "system"), Verdict::Dangerous);
        assert_eq!(v("subprocess", "Popen"), Verdict::Dangerous);
        assert_eq!(v("os.path", "join"), Verdict::Dangerous);
        assert_eq!(v("builtins", "eval"), Verdict::Dangerous);
        assert_eq!(v("builtins", "getattr"), Verdict::Conditional);
        assert_eq!(v("random", "_os.system"), Verdict::Dangerous);
        assert_eq!(v("collections", "OrderedDict.__class__.__base__"), Verdict::Dangerous);
        assert_eq!(v("numpy._core.multiarray", "_reconstruct"), Verdict::Safe);
        assert_eq!(v("sklearn.linear_model._logistic", "LogisticRegression"), Verdict::Safe);
        assert_eq!(v("zoneinfo", "ZoneInfo._unpickle"), Verdict::Safe);
        assert_eq!(v("mypkg", "Thing"), Verdict::Unknown);
        assert_eq!(v("mypkg", "Thing.helper"), Verdict::Unknown);
        assert_eq!(v("mypkg", "Thing.system"), Verdict::Dangerous);
        assert_eq!(v("torch._utils", "_rebuild_tensor_v2"), Verdict::Safe);
        assert_eq!(v("pickle", "loads"), Verdict::Dangerous);
        // Attribute paths, step by step.
        let why = |m: &str, n: &str| p.denylist_reason(m, n);
        assert_eq!(why("builtins", "exec.x").as_deref(), Some("attribute path through a denylisted global"));
        assert_eq!(why("mypkg", "a.b._os.path").as_deref(), Some("attribute path reaches module os"));
        assert_eq!(why("mypkg", "a.__dict__.b").as_deref(), Some("attribute path through __dict__"));
        assert_eq!(why("mypkg", "a.exec.b"), None);
        assert_eq!(why("builtins", "execx.y"), None);
        // A long path is judged in one pass (it used to join the path so far per part).
        let long = vec!["a"; 30_000].join(".");
        assert_eq!(why("mypkg", &long), None);
        assert_eq!(
            why("builtins", &format!("exec.{long}")).as_deref(),
            Some("attribute path through a denylisted global")
        );
    }

    fn add(pattern: &str) -> Addition {
        Addition { pattern: pattern.parse().expect("pattern"), origin: "test".into() }
    }

    #[test]
    fn additions_never_override_the_denylist_except_allow_denied() {
        // Built directly, without the checks of `config`: judge alone keeps the denylist.
        let extra = Additions {
            allow: vec![add("os.*"), add("builtins.*"), add("os.system"), add("mypkg.*")],
            allow_denied: vec![add("builtins:setattr"), add("subprocess.Popen")],
            deny: vec![add("subprocess.Popen"), add("mypkg.bad.*")],
        };
        let p = Policy::builtin().with_config(&extra);
        let v = |m: &str, n: &str| p.judge(m, n).verdict;
        assert_eq!(v("os", "system"), Verdict::Dangerous);
        assert_eq!(v("os.path", "join"), Verdict::Dangerous);
        assert_eq!(v("builtins", "eval"), Verdict::Dangerous);
        // Conditional globals stay conditional under a pattern.
        assert_eq!(v("builtins", "getattr"), Verdict::Conditional);
        // allow-denied lets one exact name through; an added deny still wins.
        assert_eq!(v("builtins", "setattr"), Verdict::Safe);
        assert_eq!(v("subprocess", "Popen"), Verdict::Dangerous);
        assert_eq!(v("mypkg", "Model"), Verdict::Safe);
        assert_eq!(v("mypkg.bad", "Model"), Verdict::Dangerous);
        assert_eq!(v("mypkg", "bad.Model"), Verdict::Dangerous);
        // Built-in allowlist is unaffected.
        assert_eq!(v("numpy._core.multiarray", "_reconstruct"), Verdict::Safe);
    }

    #[test]
    fn denylist_under_a_pattern() {
        let p = Policy::builtin();
        assert_eq!(p.denylist_under("os"), vec!["os".to_string()]);
        assert_eq!(p.denylist_under("os.path"), vec!["os".to_string()]);
        assert!(p.denylist_under("numpy.core").contains(&"numpy.core.multiarray.fromfile".to_string()));
        let torch = p.denylist_under("torch");
        assert_eq!(torch.iter().filter(|e| *e == "torch.hub").count(), 1, "{torch:?}");
        assert!(p.denylist_under("sklearn").is_empty());
        assert!(p.denylist_under("mypkg").is_empty());
        // `osx` is not under `os`.
        assert!(p.denylist_under("osx").is_empty());
    }

    #[test]
    fn pattern_matching() {
        let g = |s: &str| s.parse::<GlobalPattern>().expect("pattern");
        assert!(g("a.b.C").names("a.b", "C") && g("a.b.C").names("a", "b.C"));
        assert!(!g("a.b.C").names("a.b", "C.d") && g("a.b.C").covers("a.b", "C.d"));
        assert!(!g("a.b.C").covers("a.b", "Cd"));
        assert!(g("a:b.C").names("a", "b.C") && !g("a:b.C").names("a.b", "C"));
        assert!(g("a.*").names("a", "X") && g("a.*").names("a.b.c", "X") && !g("a.*").names("ab", "X"));
        assert!(!g("a.b.*").names("a", "b.X") && g("a.b.*").covers("a", "b.X"));
        assert_eq!(g("a.b.*").to_string(), "a.b.*");
        assert_eq!(g("a.b:C").to_string(), "a.b:C");
    }
}
