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

use std::collections::HashSet;

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

/// The compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    allow: HashSet<(String, String)>,
    deny_modules: HashSet<String>,
    deny_names: HashSet<(String, String)>,
    conditional: HashSet<(String, String)>,
}

fn parse_list(text: &str) -> impl Iterator<Item = (String, Option<String>)> + '_ {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| {
        let mut it = l.split_whitespace();
        let m = it.next().unwrap_or_default().to_string();
        (m, it.next().map(str::to_string))
    })
}

impl Policy {
    /// The built-in policy.
    pub fn builtin() -> Policy {
        let mut p = Policy {
            allow: HashSet::new(),
            deny_modules: HashSet::new(),
            deny_names: HashSet::new(),
            conditional: HashSet::new(),
        };
        for (m, n) in parse_list(include_str!("allowlist.txt")) {
            if let Some(n) = n {
                p.allow.insert((m, n));
            }
        }
        for (m, n) in parse_list(include_str!("denylist.txt")) {
            match n {
                Some(n) => p.deny_names.insert((m, n)),
                None => p.deny_modules.insert(m),
            };
        }
        for (m, n) in parse_list(include_str!("conditional.txt")) {
            if let Some(n) = n {
                p.conditional.insert((m, n));
            }
        }
        p
    }

    /// True when `module name` is exactly on the allowlist.
    pub fn is_allowed(&self, module: &str, name: &str) -> bool {
        self.allow.contains(&(module.to_string(), name.to_string()))
    }

    /// The denied module `module` falls under, if any (itself or a parent package).
    fn denied_module<'a>(&self, module: &'a str) -> Option<&'a str> {
        let mut cut = module.len();
        loop {
            let prefix = &module[..cut];
            if self.deny_modules.contains(prefix) {
                return Some(prefix);
            }
            match prefix.rfind('.') {
                Some(i) => cut = i,
                None => return None,
            }
        }
    }

    /// Classifies the global `module name` (as `find_class` would receive it).
    pub fn judge(&self, module: &str, name: &str) -> Judgement {
        let key = (module.to_string(), name.to_string());
        if self.deny_names.contains(&key) {
            return Judgement::new(Verdict::Dangerous, "denylisted global");
        }
        if let Some(m) = self.denied_module(module) {
            return Judgement::new(Verdict::Dangerous, format!("denylisted module {m}"));
        }
        if name.contains('.') {
            let parts: Vec<&str> = name.split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                if part.len() > 4 && part.starts_with("__") && part.ends_with("__") {
                    return Judgement::new(Verdict::Dangerous, format!("attribute path through {part}"));
                }
                // A module re-exported as an attribute (`random._os` is `os`).
                let bare = part.trim_start_matches('_');
                if i + 1 < parts.len() && (self.deny_modules.contains(*part) || self.deny_modules.contains(bare)) {
                    return Judgement::new(Verdict::Dangerous, format!("attribute path reaches module {bare}"));
                }
                // The path so far, read as the name of a denied global.
                let so_far = parts[..=i].join(".");
                if self.deny_names.contains(&(module.to_string(), so_far)) {
                    return Judgement::new(Verdict::Dangerous, "attribute path through a denylisted global");
                }
            }
            if self.allow.contains(&key) {
                return Judgement::new(Verdict::Safe, "allowlisted attribute path");
            }
            let last = parts.last().copied().unwrap_or_default();
            if DANGEROUS_ATTRS.contains(&last) {
                return Judgement::new(Verdict::Dangerous, format!("attribute path ends in {last}"));
            }
            return Judgement::new(Verdict::Unknown, "attribute path not on the allowlist");
        }
        if self.allow.contains(&key) {
            return Judgement::new(Verdict::Safe, "allowlisted");
        }
        if self.conditional.contains(&key) {
            return Judgement::new(Verdict::Conditional, "judged by its arguments");
        }
        Judgement::new(Verdict::Unknown, "not on the allowlist")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
