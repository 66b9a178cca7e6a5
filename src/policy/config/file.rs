//! A policy file as written ([`PolicyFile`], every entry keeping its byte
//! span), where an entry was written ([`Location`]), and what can be wrong
//! with one ([`ConfigError`]).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::policy::PatternError;

/// How many denied entries a pattern error lists before "and N more".
const MAX_LISTED: usize = 8;

/// A policy file as written, before any check. Every entry keeps its span.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicyFile {
    /// Globals to judge safe: `a.b.Name`, `a.b:Name` or `a.b.*`.
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Exact globals on the built-in denylist to judge safe anyway.
    #[serde(default)]
    pub allow_denied: Vec<Spanned<String>>,
    /// Globals to judge dangerous: exact names or `a.b.*`.
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
    /// Rule code or slug to `info`, `warning`, `error` or `ignore`.
    #[serde(default)]
    pub rules: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Rules to ignore for paths matching globs.
    #[serde(default)]
    pub ignore: Vec<Spanned<IgnoreEntry>>,
}

/// One `[[ignore]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreEntry {
    /// Path globs, relative to the policy file's directory.
    pub paths: Vec<Spanned<String>>,
    /// Rule codes or slugs, or `"*"` for every rule.
    pub rules: Vec<Spanned<String>>,
}

/// The part of a `pyproject.toml` pkinspect reads; everything else is skipped.
#[derive(Deserialize)]
pub(super) struct PyProject {
    #[serde(default)]
    pub(super) tool: Option<PyProjectTool>,
}

#[derive(Deserialize)]
pub(super) struct PyProjectTool {
    #[serde(default)]
    pub(super) pkinspect: Option<PolicyFile>,
}

/// Where a configuration error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A position in a file; line and column count from 1 (columns in characters).
    File {
        /// The file, as it was named.
        path: PathBuf,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
    },
    /// A whole file (it could not be read).
    Path(PathBuf),
    /// A command-line flag, such as `--allow`.
    Flag(&'static str),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path, line, column } => write!(f, "{}:{line}:{column}", path.display()),
            Location::Path(path) => write!(f, "{}", path.display()),
            Location::Flag(flag) => write!(f, "{flag}"),
        }
    }
}

impl Location {
    /// Short form for verdict reasons: `path:line`, or the flag.
    pub(super) fn origin(&self) -> String {
        match self {
            Location::File { path, line, .. } => format!("{}:{line}", path.display()),
            other => other.to_string(),
        }
    }
}

/// What is wrong with a policy file or flag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Io(String),
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    Syntax(String),
    /// A global name or pattern whose syntax is invalid.
    BadName {
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        error: PatternError,
    },
    /// An `allow` pattern reaches entries of the built-in denylist.
    PatternCoversDenied {
        /// The pattern as written.
        pattern: String,
        /// The denied entries it reaches, sorted.
        denied: Vec<String>,
    },
    /// An exact `allow` entry is on the built-in denylist.
    AllowsDenied {
        /// The entry as written.
        entry: String,
        /// Why the denylist denies it.
        reason: String,
    },
    /// An `allow-denied` entry is a `module.*` pattern.
    AllowDeniedPattern {
        /// The entry as written.
        entry: String,
    },
    /// An `allow-denied` entry that the built-in denylist does not deny.
    NotDenied {
        /// The entry as written.
        entry: String,
    },
    /// An `allow` entry names a global judged by its arguments (`builtins.getattr`).
    AllowsConditional {
        /// The entry as written.
        entry: String,
    },
    /// An allow entry that a deny entry overrides, so it would do nothing.
    Shadowed {
        /// The allow entry as written.
        entry: String,
        /// The deny entry.
        by: String,
        /// Where the deny entry is.
        by_at: String,
    },
    /// A rule code or slug that does not exist.
    UnknownRule(String),
    /// The same rule set twice in `[rules]` (by code and by slug, say).
    DuplicateRule {
        /// The rule's code.
        rule: &'static str,
        /// Where it was set first.
        first: String,
    },
    /// A level other than `info`, `warning`, `error` or `ignore`.
    BadLevel(String),
    /// An `[[ignore]]` path glob whose syntax is invalid.
    BadGlob {
        /// The glob as written.
        glob: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A list that needs at least one entry is empty.
    EmptyList(&'static str),
    /// A `pyproject.toml` named by `--config` has no `[tool.pkinspect]` table.
    NoPolicyTable,
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigErrorKind::Io(e) => write!(f, "cannot read the policy file: {e}"),
            ConfigErrorKind::Syntax(m) => write!(f, "{m}"),
            ConfigErrorKind::BadName { entry, error } => write!(f, "invalid global `{entry}`: {error}"),
            ConfigErrorKind::PatternCoversDenied { pattern, denied } => {
                let shown: Vec<&str> = denied.iter().take(MAX_LISTED).map(String::as_str).collect();
                write!(f, "pattern `{pattern}` would allow globals on the built-in denylist: {}", shown.join(", "))?;
                if denied.len() > MAX_LISTED {
                    write!(f, " and {} more", denied.len() - MAX_LISTED)?;
                }
                write!(f, "; list the names you need exactly instead (a denied one in `allow-denied`)")
            }
            ConfigErrorKind::AllowsDenied { entry, reason } => write!(
                f,
                "`{entry}` is on the built-in denylist ({reason}); to allow it anyway, \
                 list it in `allow-denied` (or pass --allow-denied)"
            ),
            ConfigErrorKind::AllowDeniedPattern { entry } => {
                write!(f, "`allow-denied` takes exact names only, not the pattern `{entry}`")
            }
            ConfigErrorKind::NotDenied { entry } => {
                write!(f, "`{entry}` is not on the built-in denylist; list it in `allow` instead")
            }
            ConfigErrorKind::AllowsConditional { entry } => write!(
                f,
                "`{entry}` is judged by its arguments (getattr(X, 'a') is judged as X.a); it cannot be allowed as a whole"
            ),
            ConfigErrorKind::Shadowed { entry, by, by_at } => write!(
                f,
                "`{entry}` is allowed, but `{by}` ({by_at}) denies it and a denial always wins; remove one of them"
            ),
            ConfigErrorKind::UnknownRule(r) => {
                write!(f, "unknown rule `{r}`: expected a code such as PK103 or a slug (see `pkinspect rules`)")
            }
            ConfigErrorKind::DuplicateRule { rule, first } => write!(f, "rule {rule} is set twice (first at {first})"),
            ConfigErrorKind::BadLevel(l) => {
                write!(f, "invalid level `{l}`: expected \"info\", \"warning\", \"error\" or \"ignore\"")
            }
            ConfigErrorKind::BadGlob { glob, why } => write!(f, "invalid path glob `{glob}`: {why}"),
            ConfigErrorKind::EmptyList(key) => write!(f, "`{key}` needs at least one entry"),
            ConfigErrorKind::NoPolicyTable => write!(f, "no [tool.pkinspect] table in this file"),
        }
    }
}

/// A configuration error: what is wrong and where. One pointer wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    inner: Box<(Location, ConfigErrorKind)>,
}

impl ConfigError {
    pub(super) fn new(location: Location, kind: ConfigErrorKind) -> ConfigError {
        ConfigError { inner: Box::new((location, kind)) }
    }
    /// Where the problem is.
    pub fn location(&self) -> &Location {
        &self.inner.0
    }
    /// What the problem is.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.inner.1
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.0, self.inner.1)
    }
}

impl std::error::Error for ConfigError {}

/// Turns byte spans of one file's text into [`Location`]s.
pub(super) struct Spans<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Spans<'_> {
    pub(super) fn at(&self, span: Range<usize>) -> Location {
        let start = span.start.min(self.text.len());
        // Spans from the parser fall on character boundaries; stay safe if not.
        let before = self.text.get(..start).unwrap_or(self.text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location::File {
            path: self.path.to_path_buf(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}
