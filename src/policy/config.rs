//! Policy files: `pkinspect.toml`, or the `[tool.pkinspect]` table of a
//! `pyproject.toml`, and the `--allow`/`--deny` flags.
//!
//! A file is read in two steps, as cargo-deny reads its config: first it is
//! deserialised as written into [`PolicyFile`], every entry keeping its byte
//! span; then it is checked and turned into a [`Config`], and every problem
//! is a [`ConfigError`] that names the file, line and column of the entry
//! concerned. Nothing is ignored silently: an unknown key, an invalid name or
//! pattern, an unknown rule, a pattern that would reach the built-in
//! denylist, or an allow entry that a deny entry overrides is an error.
//!
//! A [`Config`] holds two things, applied in two places: [`Additions`] for
//! [`Policy::with_config`] (which names are safe or dangerous, decided in
//! [`Policy::judge`]), and rule [`Levels`] per scanned path for
//! [`crate::rules::check_with`] (what severity a finding gets, or whether it
//! is dropped). [`Finder`] finds the file that applies to a path by walking
//! up from it.
//!
//! ```toml
//! allow = ["mycompany.models.Thing", "mycompany.layers:Dense", "mycompany.nn.*"]
//! allow-denied = ["builtins:setattr"]
//! deny = ["numpy.dtype", "pandas.*"]
//!
//! [rules]
//! PK103 = "error"          # codes or slugs; info, warning, error or ignore
//! persistent-id = "ignore"
//!
//! [[ignore]]
//! paths = ["tests/data/**"]  # relative to the policy file's directory
//! rules = ["PK103", "PK104"] # or ["*"] for every rule
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::{Addition, Additions, GlobalPattern, PatternError, Policy};
use crate::rules::{Levels, Rule, Severity};

/// The policy file looked for first in each directory.
pub const CONFIG_FILE: &str = "pkinspect.toml";
/// The file looked for next; it counts only when it has `[tool.pkinspect]`.
pub const PYPROJECT_FILE: &str = "pyproject.toml";

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
struct PyProject {
    #[serde(default)]
    tool: Option<PyProjectTool>,
}

#[derive(Deserialize)]
struct PyProjectTool {
    #[serde(default)]
    pkinspect: Option<PolicyFile>,
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
    fn origin(&self) -> String {
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
    fn new(location: Location, kind: ConfigErrorKind) -> ConfigError {
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
struct Spans<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Spans<'_> {
    fn at(&self, span: Range<usize>) -> Location {
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

/// Which list an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Allow,
    AllowDenied,
    Deny,
}

/// One checked entry, with where it was written.
#[derive(Debug, Clone)]
struct Entry {
    kind: Kind,
    written: String,
    pattern: GlobalPattern,
    at: Location,
}

/// A compiled `[[ignore]]` entry.
#[derive(Debug, Clone)]
struct Ignore {
    globs: Vec<Glob>,
    /// `None` for every rule (`"*"`).
    rules: Option<Vec<Rule>>,
}

/// A checked policy: additions to the built-in policy, and rule levels.
#[derive(Debug, Clone, Default)]
pub struct Config {
    source: Option<PathBuf>,
    base: Option<PathBuf>,
    entries: Vec<Entry>,
    additions: Additions,
    levels: Levels,
    ignores: Vec<Ignore>,
}

/// The command-line entries: `--allow`, `--allow-denied`, `--deny`.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--allow NAME`, repeated.
    pub allow: Vec<String>,
    /// `--allow-denied NAME`, repeated.
    pub allow_denied: Vec<String>,
    /// `--deny NAME`, repeated.
    pub deny: Vec<String>,
}

impl Config {
    /// Reads and checks the policy file at `path`: the `[tool.pkinspect]`
    /// table when the file is named `pyproject.toml` (`Ok(None)` when it has
    /// none), the whole file otherwise. `path` is shown in errors and reasons
    /// as given; `[[ignore]]` globs are relative to its directory.
    ///
    /// # Errors
    /// A [`ConfigError`] for an unreadable file and for every problem that
    /// [`Config::parse`] reports.
    pub fn load(path: &Path, builtin: &Policy) -> Result<Option<Config>, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(Location::Path(path.to_path_buf()), ConfigErrorKind::Io(e.to_string())))?;
        let pyproject = path.file_name().is_some_and(|n| n == PYPROJECT_FILE);
        let mut config = match Config::parse(&text, path, pyproject, builtin)? {
            Some(c) => c,
            None => return Ok(None),
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        config.base = Some(std::fs::canonicalize(&dir).unwrap_or(dir));
        Ok(Some(config))
    }

    /// Like [`Config::load`], for a file named explicitly (`--config`): a
    /// `pyproject.toml` without `[tool.pkinspect]` is an error.
    ///
    /// # Errors
    /// As [`Config::load`], plus [`ConfigErrorKind::NoPolicyTable`].
    pub fn load_explicit(path: &Path, builtin: &Policy) -> Result<Config, ConfigError> {
        Config::load(path, builtin)?
            .ok_or_else(|| ConfigError::new(Location::Path(path.to_path_buf()), ConfigErrorKind::NoPolicyTable))
    }

    /// Parses and checks policy text. `path` names the file in errors and
    /// reasons; when `pyproject` is set the policy is the `[tool.pkinspect]`
    /// table, and `Ok(None)` means there is none. Globs of `[[ignore]]` match
    /// nothing until the config has a base directory ([`Config::load`] sets it).
    ///
    /// # Errors
    /// The first problem found, at the line and column of the entry concerned.
    pub fn parse(text: &str, path: &Path, pyproject: bool, builtin: &Policy) -> Result<Option<Config>, ConfigError> {
        let spans = Spans { path, text };
        let syntax = |e: toml::de::Error| {
            let at = match e.span() {
                Some(span) => spans.at(span),
                None => Location::Path(path.to_path_buf()),
            };
            ConfigError::new(at, ConfigErrorKind::Syntax(e.message().trim().to_string()))
        };
        let file = if pyproject {
            match toml::from_str::<PyProject>(text).map_err(syntax)?.tool.and_then(|t| t.pkinspect) {
                Some(f) => f,
                None => return Ok(None),
            }
        } else {
            toml::from_str::<PolicyFile>(text).map_err(syntax)?
        };
        let mut config = Config { source: Some(path.to_path_buf()), ..Config::default() };
        let lists = [(Kind::Allow, &file.allow), (Kind::AllowDenied, &file.allow_denied), (Kind::Deny, &file.deny)];
        for (kind, list) in lists {
            for item in list {
                config.entries.push(check_entry(kind, item.get_ref(), spans.at(item.span()), builtin)?);
            }
        }
        check_shadowing(&config.entries)?;
        config.levels = check_levels(&file.rules, &spans)?;
        for entry in &file.ignore {
            config.ignores.push(check_ignore(entry, &spans)?);
        }
        config.additions = additions(&config.entries);
        Ok(Some(config))
    }

    /// Checks command-line entries.
    ///
    /// # Errors
    /// As for file entries, located at the flag (`--allow os.*: ...`).
    pub fn from_flags(flags: &Flags, builtin: &Policy) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let lists = [
            (Kind::Allow, "--allow", &flags.allow),
            (Kind::AllowDenied, "--allow-denied", &flags.allow_denied),
            (Kind::Deny, "--deny", &flags.deny),
        ];
        for (kind, flag, list) in lists {
            for item in list {
                config.entries.push(check_entry(kind, item, Location::Flag(flag), builtin)?);
            }
        }
        check_shadowing(&config.entries)?;
        config.additions = additions(&config.entries);
        Ok(config)
    }

    /// This config with `other`'s entries added (flags on top of a file).
    /// Levels and ignores stay this config's.
    ///
    /// # Errors
    /// [`ConfigErrorKind::Shadowed`] when an allow entry of one is denied by the other.
    pub fn merged_with(&self, other: &Config) -> Result<Config, ConfigError> {
        let mut merged = self.clone();
        merged.entries.extend(other.entries.iter().cloned());
        check_shadowing(&merged.entries)?;
        merged.additions = additions(&merged.entries);
        Ok(merged)
    }

    /// The file this config was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// What it adds to the built-in policy; see [`Policy::with_config`].
    pub fn additions(&self) -> &Additions {
        &self.additions
    }

    /// The rule levels for a scanned file: `[rules]`, then every
    /// `[[ignore]]` entry whose globs match `path` relative to the policy
    /// file's directory. A path outside that directory matches no glob.
    pub fn levels_for(&self, path: &Path) -> Levels {
        let mut levels = self.levels.clone();
        if self.ignores.is_empty() {
            return levels;
        }
        let Some(rel) = self.relative(path) else {
            return levels;
        };
        let parts: Vec<String> = rel
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        for ignore in &self.ignores {
            if ignore.globs.iter().any(|g| g.matches(&parts)) {
                match &ignore.rules {
                    Some(rules) => rules.iter().for_each(|r| levels.set(*r, None)),
                    None => Rule::ALL.iter().for_each(|r| levels.set(*r, None)),
                }
            }
        }
        levels
    }

    /// `path` relative to the base directory, when it lies inside it.
    fn relative(&self, path: &Path) -> Option<PathBuf> {
        let base = self.base.as_deref()?;
        let abs = std::fs::canonicalize(path).or_else(|_| std::path::absolute(path)).ok()?;
        abs.strip_prefix(base).ok().map(Path::to_path_buf)
    }
}

/// Parses one entry of `allow`, `allow-denied` or `deny` and checks it
/// against the built-in policy.
fn check_entry(kind: Kind, written: &str, at: Location, builtin: &Policy) -> Result<Entry, ConfigError> {
    let err = |kind: ConfigErrorKind| ConfigError::new(at.clone(), kind);
    let pattern: GlobalPattern =
        written.parse().map_err(|error| err(ConfigErrorKind::BadName { entry: written.to_string(), error }))?;
    let entry = written.to_string();
    match (kind, &pattern) {
        (Kind::Allow, GlobalPattern::Module(package)) => {
            let denied = builtin.denylist_under(package);
            if !denied.is_empty() {
                return Err(err(ConfigErrorKind::PatternCoversDenied { pattern: entry, denied }));
            }
        }
        (Kind::Allow, _) => {
            let splits = pattern.splits();
            if splits.iter().any(|(m, n)| builtin.is_conditional(m, n)) {
                return Err(err(ConfigErrorKind::AllowsConditional { entry }));
            }
            // `mypkg.profile.Model` also reads as (mypkg, profile.Model), an
            // attribute path through the denied name `profile`: that reading
            // stays denied (judge consults the denylist first), the others
            // are allowed. Only an entry that would allow nothing is an error.
            let denials: Vec<String> = splits.iter().filter_map(|(m, n)| builtin.denylist_reason(m, n)).collect();
            if denials.len() == splits.len() {
                let reason = denials.into_iter().next().unwrap_or_default();
                return Err(err(ConfigErrorKind::AllowsDenied { entry, reason }));
            }
        }
        (Kind::AllowDenied, GlobalPattern::Module(_)) => {
            return Err(err(ConfigErrorKind::AllowDeniedPattern { entry }));
        }
        (Kind::AllowDenied, _) => {
            if !pattern.splits().iter().any(|(m, n)| builtin.denylist_reason(m, n).is_some()) {
                return Err(err(ConfigErrorKind::NotDenied { entry }));
            }
        }
        (Kind::Deny, _) => {}
    }
    Ok(Entry { kind, written: written.to_string(), pattern, at })
}

/// True when `deny` covers everything `allow` names, so `allow` does nothing.
fn shadows(deny: &GlobalPattern, allow: &GlobalPattern) -> bool {
    match allow {
        GlobalPattern::Module(p) => match deny {
            GlobalPattern::Module(q) | GlobalPattern::Joined(q) => super::in_package(p, q),
            GlobalPattern::Split { .. } => false,
        },
        exact => exact.splits().iter().any(|(m, n)| deny.covers(m, n)),
    }
}

/// An allow entry that a deny entry overrides is an error: it would do nothing.
fn check_shadowing(entries: &[Entry]) -> Result<(), ConfigError> {
    for allow in entries.iter().filter(|e| e.kind != Kind::Deny) {
        if let Some(deny) = entries.iter().find(|d| d.kind == Kind::Deny && shadows(&d.pattern, &allow.pattern)) {
            return Err(ConfigError::new(
                allow.at.clone(),
                ConfigErrorKind::Shadowed {
                    entry: allow.written.clone(),
                    by: deny.written.clone(),
                    by_at: deny.at.to_string(),
                },
            ));
        }
    }
    Ok(())
}

fn additions(entries: &[Entry]) -> Additions {
    let mut out = Additions::default();
    for e in entries {
        let a = Addition { pattern: e.pattern.clone(), origin: e.at.origin() };
        match e.kind {
            Kind::Allow => out.allow.push(a),
            Kind::AllowDenied => out.allow_denied.push(a),
            Kind::Deny => out.deny.push(a),
        }
    }
    out
}

fn rule_at(written: &Spanned<String>, spans: &Spans<'_>) -> Result<Rule, ConfigError> {
    Rule::from_code(written.get_ref()).ok_or_else(|| {
        ConfigError::new(spans.at(written.span()), ConfigErrorKind::UnknownRule(written.get_ref().clone()))
    })
}

/// Checks the `[rules]` table.
fn check_levels(rules: &BTreeMap<Spanned<String>, Spanned<String>>, spans: &Spans<'_>) -> Result<Levels, ConfigError> {
    let mut levels = Levels::default();
    let mut seen: HashMap<Rule, Location> = HashMap::new();
    // In file order, so "set twice" points at the second one.
    let mut items: Vec<_> = rules.iter().collect();
    items.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in items {
        let rule = rule_at(key, spans)?;
        let at = spans.at(key.span());
        if let Some(first) = seen.get(&rule) {
            return Err(ConfigError::new(
                at,
                ConfigErrorKind::DuplicateRule { rule: rule.code(), first: first.to_string() },
            ));
        }
        seen.insert(rule, at);
        let level = match value.get_ref().as_str() {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            "ignore" => None,
            other => {
                return Err(ConfigError::new(spans.at(value.span()), ConfigErrorKind::BadLevel(other.to_string())))
            }
        };
        levels.set(rule, level);
    }
    Ok(levels)
}

/// Checks one `[[ignore]]` entry.
fn check_ignore(entry: &Spanned<IgnoreEntry>, spans: &Spans<'_>) -> Result<Ignore, ConfigError> {
    let at = spans.at(entry.span());
    let e = entry.get_ref();
    if e.paths.is_empty() {
        return Err(ConfigError::new(at, ConfigErrorKind::EmptyList("paths")));
    }
    if e.rules.is_empty() {
        return Err(ConfigError::new(at, ConfigErrorKind::EmptyList("rules")));
    }
    let mut globs = Vec::new();
    for p in &e.paths {
        let glob = Glob::parse(p.get_ref()).map_err(|why| {
            ConfigError::new(spans.at(p.span()), ConfigErrorKind::BadGlob { glob: p.get_ref().clone(), why })
        })?;
        globs.push(glob);
    }
    let rules = if e.rules.iter().any(|r| r.get_ref() == "*") {
        None
    } else {
        Some(e.rules.iter().map(|r| rule_at(r, spans)).collect::<Result<Vec<_>, _>>()?)
    };
    Ok(Ignore { globs, rules })
}

/// One token of a glob path component.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A character matched as itself.
    Lit(char),
    /// `*`: any run of characters.
    Star,
    /// `?`: any one character.
    One,
    /// `[a-z_]` or `[!0-9]`.
    Class { negated: bool, ranges: Vec<(char, char)> },
}

/// One `/`-separated part of a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// `**`: any number of directories, including none.
    AnyDirs,
    /// Anything else.
    Name(Vec<Tok>),
}

/// A path glob of an `[[ignore]]` entry.
///
/// Matched against a path relative to the policy file's directory, one
/// `/`-separated part at a time: `*` and `?` never cross a `/`, `**` is any
/// number of directories, `[abc]`, `[a-z]`, `[!a]` are character classes. A
/// glob that matches a directory also matches everything under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    parts: Vec<Part>,
}

impl Glob {
    /// Parses a glob.
    ///
    /// # Errors
    /// Why the glob is invalid: empty, a `\\`, a `.` or `..` part, `**` mixed
    /// with other characters, or an unclosed or empty `[...]` class.
    pub fn parse(s: &str) -> Result<Glob, &'static str> {
        if s.contains('\\') {
            return Err("use `/` between directories; `\\` is not supported");
        }
        let trimmed = s.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
        if trimmed.is_empty() {
            return Err("empty glob");
        }
        let mut parts = Vec::new();
        for part in trimmed.split('/') {
            match part {
                "" => return Err("empty path part (`//`)"),
                "." | ".." => return Err("`.` and `..` parts are not allowed: globs are relative to the policy file"),
                "**" => parts.push(Part::AnyDirs),
                _ if part.contains("**") => return Err("`**` must be a whole path part, as in `a/**/b`"),
                _ => parts.push(Part::Name(parse_part(part)?)),
            }
        }
        Ok(Glob { parts })
    }

    /// True when the relative path `parts` (or a directory containing it) matches.
    pub fn matches(&self, path: &[&str]) -> bool {
        (1..=path.len()).any(|k| match_parts(&self.parts, &path[..k]))
    }
}

fn parse_part(part: &str) -> Result<Vec<Tok>, &'static str> {
    let mut toks = Vec::new();
    let mut chars = part.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::One),
            '[' => {
                let negated = matches!(chars.peek(), Some('!' | '^'));
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == ']' && !ranges.is_empty() {
                        closed = true;
                        break;
                    }
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        match chars.next() {
                            Some(']') | None => {
                                // `[a-]`: a literal dash at the end.
                                ranges.push((c, c));
                                ranges.push(('-', '-'));
                                closed = true;
                                break;
                            }
                            Some(hi) if hi >= c => ranges.push((c, hi)),
                            Some(_) => return Err("character range out of order, as in `[z-a]`"),
                        }
                    } else {
                        ranges.push((c, c));
                    }
                }
                if !closed {
                    return Err("unclosed `[`");
                }
                toks.push(Tok::Class { negated, ranges });
            }
            ']' => return Err("`]` without `[`"),
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

fn match_parts(pat: &[Part], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((Part::AnyDirs, rest)) => (0..=path.len()).any(|i| match_parts(rest, &path[i..])),
        Some((Part::Name(toks), rest)) => match path.split_first() {
            Some((first, more)) => {
                let chars: Vec<char> = first.chars().collect();
                match_toks(toks, &chars) && match_parts(rest, more)
            }
            None => false,
        },
    }
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    match toks.split_first() {
        None => s.is_empty(),
        Some((Tok::Star, rest)) => (0..=s.len()).any(|i| match_toks(rest, &s[i..])),
        Some((tok, rest)) => match s.split_first() {
            Some((c, more)) => {
                let ok = match tok {
                    Tok::Lit(l) => l == c,
                    Tok::One => true,
                    Tok::Class { negated, ranges } => ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated,
                    Tok::Star => false,
                };
                ok && match_toks(rest, more)
            }
            None => false,
        },
    }
}

/// Finds the policy file for each scanned path, walking up from it, and
/// remembers what it found for every directory it looked at.
#[derive(Debug, Default)]
pub struct Finder {
    cwd: Option<PathBuf>,
    cache: HashMap<PathBuf, Option<Arc<Config>>>,
}

impl Finder {
    /// A finder that shows paths under the current directory relative to it.
    pub fn new() -> Finder {
        Finder { cwd: std::env::current_dir().ok().and_then(|d| std::fs::canonicalize(d).ok()), cache: HashMap::new() }
    }

    /// The policy that applies to `path`: in its directory (the path itself
    /// when it is a directory) and then in each parent, the first
    /// `pkinspect.toml`, or `pyproject.toml` with a `[tool.pkinspect]` table.
    /// `Ok(None)` when there is none up to the root.
    ///
    /// # Errors
    /// The first policy file found has a problem; it is never skipped.
    pub fn find(&mut self, path: &Path, builtin: &Policy) -> Result<Option<Arc<Config>>, ConfigError> {
        let abs = std::fs::canonicalize(path).or_else(|_| std::path::absolute(path)).unwrap_or(path.to_path_buf());
        let start = if abs.is_dir() { abs.as_path() } else { abs.parent().unwrap_or(abs.as_path()) };
        let mut visited = Vec::new();
        let mut found = None;
        for dir in start.ancestors() {
            if let Some(hit) = self.cache.get(dir) {
                found = hit.clone();
                break;
            }
            visited.push(dir.to_path_buf());
            if let Some(config) = self.look_in(dir, builtin)? {
                found = Some(Arc::new(config));
                break;
            }
        }
        for dir in visited {
            self.cache.insert(dir, found.clone());
        }
        Ok(found)
    }

    fn look_in(&self, dir: &Path, builtin: &Policy) -> Result<Option<Config>, ConfigError> {
        for name in [CONFIG_FILE, PYPROJECT_FILE] {
            let file = dir.join(name);
            if file.is_file() {
                if let Some(config) = Config::load(&self.shown(&file), builtin)? {
                    return Ok(Some(config));
                }
            }
        }
        Ok(None)
    }

    /// `path` relative to the current directory when it lies under it.
    fn shown(&self, path: &Path) -> PathBuf {
        match &self.cwd {
            Some(cwd) => path.strip_prefix(cwd).map(Path::to_path_buf).unwrap_or_else(|_| path.to_path_buf()),
            None => path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Verdict;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Ok(Config::parse(text, Path::new("pkinspect.toml"), false, &Policy::builtin())?.expect("a policy"))
    }

    fn err(text: &str) -> (String, ConfigErrorKind) {
        let e = parse(text).expect_err("a config error");
        (e.location().to_string(), e.kind().clone())
    }

    fn judge(c: &Config, m: &str, n: &str) -> Verdict {
        Policy::builtin().with_config(c.additions()).judge(m, n).verdict
    }

    #[test]
    fn patterns_parse() {
        let p = |s: &str| s.parse::<GlobalPattern>();
        assert_eq!(p("a.b:C.d"), Ok(GlobalPattern::Split { module: "a.b".into(), name: "C.d".into() }));
        assert_eq!(p("a.b.C"), Ok(GlobalPattern::Joined("a.b.C".into())));
        assert_eq!(p("a.b.*"), Ok(GlobalPattern::Module("a.b".into())));
        assert_eq!(p("numpy"), Err(PatternError::NoModule));
        assert_eq!(p("*"), Err(PatternError::MisplacedStar));
        assert_eq!(p("a.*.b"), Err(PatternError::MisplacedStar));
        assert_eq!(p("a*"), Err(PatternError::MisplacedStar));
        assert_eq!(p("a..b"), Err(PatternError::EmptyPart));
        assert_eq!(p(":b"), Err(PatternError::EmptyPart));
        assert_eq!(p("a:b:c"), Err(PatternError::TwoColons));
        assert_eq!(p("a b.c"), Err(PatternError::BadChar(' ')));
        assert_eq!(p("a.1b"), Err(PatternError::LeadingDigit("1b".into())));
        assert_eq!(p(""), Err(PatternError::Empty));
        // Splits of a joined name: one per dot.
        assert_eq!(
            GlobalPattern::Joined("a.b.C".into()).splits(),
            vec![("a".into(), "b.C".into()), ("a.b".into(), "C".into())]
        );
    }

    #[test]
    fn allow_exact_and_patterns() {
        let c = parse("allow = [\"mycompany.models.Thing\", \"mycompany.layers:Dense\", \"mycompany.nn.*\"]\n")
            .expect("valid");
        assert_eq!(judge(&c, "mycompany.models", "Thing"), Verdict::Safe);
        // Joined: any split of the same dotted string.
        assert_eq!(judge(&c, "mycompany", "models.Thing"), Verdict::Safe);
        assert_eq!(judge(&c, "mycompany.layers", "Dense"), Verdict::Safe);
        // Split: exactly that split.
        assert_eq!(judge(&c, "mycompany", "layers.Dense"), Verdict::Unknown);
        assert_eq!(judge(&c, "mycompany.nn", "Linear"), Verdict::Safe);
        assert_eq!(judge(&c, "mycompany.nn.deep", "Block"), Verdict::Safe);
        assert_eq!(judge(&c, "mycompany.nnx", "Block"), Verdict::Unknown);
        // A pattern does not cover names that run things; dotted ones stay dangerous.
        assert_eq!(judge(&c, "mycompany.nn", "load"), Verdict::Unknown);
        assert_eq!(judge(&c, "mycompany.nn", "Block.system"), Verdict::Dangerous);
        assert_eq!(judge(&c, "mycompany.nn", "Block.__class__"), Verdict::Dangerous);
        // Reasons name the file and line.
        let j = Policy::builtin().with_config(c.additions()).judge("mycompany.nn", "Linear");
        assert_eq!(j.reason, "allowed by pkinspect.toml:1 (mycompany.nn.*)");
    }

    #[test]
    fn allow_never_reaches_the_denylist() {
        let (at, kind) = err("# comment\nallow = [\n  \"mycompany.*\",\n  \"os.*\",\n]\n");
        assert_eq!(at, "pkinspect.toml:4:3");
        match kind {
            ConfigErrorKind::PatternCoversDenied { pattern, denied } => {
                assert_eq!(pattern, "os.*");
                assert_eq!(denied, vec!["os".to_string()]);
            }
            k => panic!("{k:?}"),
        }
        // A pattern inside a denied module, and one holding denied names.
        assert!(matches!(err("allow = [\"os.path.*\"]").1, ConfigErrorKind::PatternCoversDenied { .. }));
        match err("allow = [\"builtins.*\"]").1 {
            ConfigErrorKind::PatternCoversDenied { denied, .. } => {
                assert!(denied.contains(&"builtins.eval".to_string()), "{denied:?}")
            }
            k => panic!("{k:?}"),
        }
        let (at, kind) = err("allow = [\"torch.*\"]");
        assert_eq!(at, "pkinspect.toml:1:10");
        let msg = kind.to_string();
        assert!(msg.contains("torch.load") && msg.contains("torch.hub"), "{msg}");
        // Exact denied names need allow-denied.
        assert!(matches!(err("allow = [\"os.system\"]").1, ConfigErrorKind::AllowsDenied { .. }));
        assert!(matches!(err("allow = [\"builtins:setattr\"]").1, ConfigErrorKind::AllowsDenied { .. }));
        assert!(matches!(err("allow = [\"os.path.join\"]").1, ConfigErrorKind::AllowsDenied { .. }));
        // A joined name with one denied reading: the other readings are allowed, the denied one is not.
        let c = parse("allow = [\"mypkg.profile.Model\", \"random._os.system\"]").expect("valid");
        assert_eq!(judge(&c, "mypkg.profile", "Model"), Verdict::Safe);
        assert_eq!(judge(&c, "mypkg", "profile.Model"), Verdict::Dangerous);
        assert_eq!(judge(&c, "random", "_os.system"), Verdict::Dangerous);
        assert!(matches!(err("allow = [\"builtins.getattr\"]").1, ConfigErrorKind::AllowsConditional { .. }));
        let c = parse("allow-denied = [\"builtins:setattr\"]").expect("explicit");
        assert_eq!(judge(&c, "builtins", "setattr"), Verdict::Safe);
        assert_eq!(judge(&c, "builtins", "eval"), Verdict::Dangerous);
        let reason = Policy::builtin().with_config(c.additions()).judge("builtins", "setattr").reason;
        assert_eq!(reason, "denylisted global, allowed by pkinspect.toml:1 (allow-denied)");
        assert!(matches!(err("allow-denied = [\"os.*\"]").1, ConfigErrorKind::AllowDeniedPattern { .. }));
        assert!(matches!(err("allow-denied = [\"mypkg.Thing\"]").1, ConfigErrorKind::NotDenied { .. }));
        // A pattern that matches nothing is fine.
        let c = parse("allow = [\"no_such_package.*\"]").expect("valid");
        assert_eq!(judge(&c, "os", "system"), Verdict::Dangerous);
    }

    #[test]
    fn deny_wins_and_covers_broadly() {
        let c = parse("allow = [\"mypkg.*\"]\ndeny = [\"mypkg.evil:run\", \"numpy.dtype\", \"pandas.*\"]").expect("ok");
        assert_eq!(judge(&c, "mypkg", "Thing"), Verdict::Safe);
        assert_eq!(judge(&c, "mypkg.evil", "run"), Verdict::Dangerous);
        assert_eq!(judge(&c, "mypkg.evil", "run.attr"), Verdict::Dangerous);
        assert_eq!(judge(&c, "numpy", "dtype"), Verdict::Dangerous);
        assert_eq!(judge(&c, "numpy", "ndarray"), Verdict::Safe);
        assert_eq!(judge(&c, "pandas.core.frame", "DataFrame"), Verdict::Dangerous);
        assert_eq!(judge(&c, "pandas", "core.frame.DataFrame"), Verdict::Dangerous);
        let j = Policy::builtin().with_config(c.additions()).judge("numpy", "dtype");
        assert_eq!(j.reason, "denied by pkinspect.toml:2 (numpy.dtype)");
        // An allow entry a deny entry overrides is an error, at the allow entry.
        let (at, kind) = err("deny = [\"mypkg.*\"]\nallow = [\"mypkg.models.Thing\"]\n");
        assert_eq!(at, "pkinspect.toml:2:10");
        assert_eq!(
            kind,
            ConfigErrorKind::Shadowed {
                entry: "mypkg.models.Thing".into(),
                by: "mypkg.*".into(),
                by_at: "pkinspect.toml:1:9".into()
            }
        );
        assert!(matches!(err("deny = [\"a.b\"]\nallow = [\"a.b.*\"]").1, ConfigErrorKind::Shadowed { .. }));
        assert!(matches!(err("deny = [\"a.b.C\"]\nallow = [\"a:b.C\"]").1, ConfigErrorKind::Shadowed { .. }));
        assert!(matches!(err("deny = [\"os.*\"]\nallow-denied = [\"os.system\"]").1, ConfigErrorKind::Shadowed { .. }));
        // Bad syntax in deny is an error too.
        assert!(matches!(err("deny = [\"a.*.b\"]").1, ConfigErrorKind::BadName { .. }));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let (at, kind) = err("allow = []\n\nbogus = 1\n");
        assert_eq!(at, "pkinspect.toml:3:1");
        assert!(matches!(&kind, ConfigErrorKind::Syntax(m) if m.contains("unknown field `bogus`")), "{kind:?}");
        let (at, _) = err("allow = [\"a.b\"\n");
        assert!(at.starts_with("pkinspect.toml:1:"), "{at}");
        let (at, kind) = err("allow = \"a.b\"\n");
        assert_eq!(at, "pkinspect.toml:1:9");
        assert!(matches!(kind, ConfigErrorKind::Syntax(_)));
        let (at, kind) = err("[[ignore]]\npaths = [\"a\"]\nrule = [\"PK103\"]\n");
        assert_eq!(at, "pkinspect.toml:3:1");
        assert!(matches!(&kind, ConfigErrorKind::Syntax(m) if m.contains("unknown field `rule`")), "{kind:?}");
    }

    #[test]
    fn rule_levels() {
        let c = parse("[rules]\nPK103 = \"error\"\nunknown-call = \"ignore\"\npk110 = \"warning\"\n").expect("ok");
        let l = c.levels_for(Path::new("x.pkl"));
        assert_eq!(l.severity(Rule::UnknownImport), Some(Severity::Error));
        assert_eq!(l.severity(Rule::UnknownCall), None);
        assert_eq!(l.severity(Rule::PersistentId), Some(Severity::Warning));
        assert_eq!(l.severity(Rule::DangerousCall), Some(Severity::Error));
        let (at, kind) = err("[rules]\nPK999 = \"error\"\n");
        assert_eq!((at.as_str(), kind), ("pkinspect.toml:2:1", ConfigErrorKind::UnknownRule("PK999".into())));
        let (at, kind) = err("[rules]\nPK103 = \"fatal\"\n");
        assert_eq!((at.as_str(), kind), ("pkinspect.toml:2:9", ConfigErrorKind::BadLevel("fatal".into())));
        let (at, kind) = err("[rules]\nunknown-import = \"error\"\nPK103 = \"info\"\n");
        assert_eq!(at, "pkinspect.toml:3:1");
        assert!(matches!(kind, ConfigErrorKind::DuplicateRule { rule: "PK103", .. }));
    }

    #[test]
    fn ignore_entries_are_checked() {
        let (at, kind) = err("[[ignore]]\npaths = []\nrules = [\"PK103\"]\n");
        assert_eq!((at.as_str(), kind), ("pkinspect.toml:1:1", ConfigErrorKind::EmptyList("paths")));
        let (at, kind) = err("[[ignore]]\npaths = [\"a/**\"]\nrules = [\"PK1\"]\n");
        assert_eq!((at.as_str(), kind), ("pkinspect.toml:3:10", ConfigErrorKind::UnknownRule("PK1".into())));
        let (at, kind) = err("[[ignore]]\npaths = [\"ok/**\", \"a/[b\"]\nrules = [\"*\"]\n");
        assert_eq!(at, "pkinspect.toml:2:19");
        assert!(matches!(kind, ConfigErrorKind::BadGlob { why: "unclosed `[`", .. }));
        for bad in ["", "a/../b", "a/b**", "a\\b", "a//b", "x]"] {
            assert!(Glob::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn globs_match_relative_paths() {
        let m = |g: &str, p: &str| Glob::parse(g).expect("glob").matches(&p.split('/').collect::<Vec<_>>());
        assert!(m("tests/data/**", "tests/data/a.pkl"));
        assert!(m("tests/data/**", "tests/data/x/y/a.pkl"));
        assert!(m("tests/data", "tests/data/x/a.pkl"));
        assert!(!m("tests/data/**", "tests/database/a.pkl"));
        assert!(m("*.pkl", "a.pkl"));
        assert!(!m("*.pkl", "sub/a.pkl"));
        assert!(m("**/*.pkl", "sub/deeper/a.pkl"));
        assert!(m("**/*.pkl", "a.pkl"));
        assert!(m("models/v?/*.p[kK]l", "models/v1/m.pKl"));
        assert!(!m("models/v[!0-9]/*", "models/v1/m.pkl"));
        assert!(m("./fixtures/hostile/", "fixtures/hostile/x.pkl"));
        assert!(m("a/**/b/*.pkl", "a/b/x.pkl"));
        assert!(m("a/**/b/*.pkl", "a/1/2/b/x.pkl"));
        assert!(!m("a/**/b/*.pkl", "a/1/2/c/x.pkl"));
    }

    #[test]
    fn ignores_apply_by_path_under_the_base() {
        let dir = std::env::temp_dir().join(format!("pkinspect-config-unit-{}", std::process::id()));
        let data = dir.join("tests/data");
        std::fs::create_dir_all(&data).expect("mkdir");
        let file = dir.join(CONFIG_FILE);
        std::fs::write(
            &file,
            "[rules]\nPK110 = \"error\"\n[[ignore]]\npaths = [\"tests/data/**\"]\nrules = [\"PK103\", \"*\"]\n",
        )
        .expect("write");
        let c = Config::load(&file, &Policy::builtin()).expect("ok").expect("some");
        let inside = c.levels_for(&data.join("a.pkl"));
        assert_eq!(inside.severity(Rule::UnknownImport), None);
        assert_eq!(inside.severity(Rule::PersistentId), None);
        let outside = c.levels_for(&dir.join("a.pkl"));
        assert_eq!(outside.severity(Rule::UnknownImport), Some(Severity::Warning));
        assert_eq!(outside.severity(Rule::PersistentId), Some(Severity::Error));
        // Walking up finds it from a nested directory.
        let mut finder = Finder::new();
        let found = finder.find(&data.join("a.pkl"), &Policy::builtin()).expect("ok").expect("found");
        assert!(found.source().is_some_and(|p| p.ends_with(CONFIG_FILE)));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn pyproject_table() {
        let text = "[project]\nname = \"x\"\n\n[tool.black]\nline-length = 88\n\n[tool.pkinspect]\nallow = [\"a.B\"]\nbogus = 1\n";
        let e = Config::parse(text, Path::new("pyproject.toml"), true, &Policy::builtin()).expect_err("bogus");
        assert_eq!(e.location().to_string(), "pyproject.toml:9:1");
        let none = Config::parse("[tool.black]\nx = 1\n", Path::new("pyproject.toml"), true, &Policy::builtin());
        assert!(matches!(none, Ok(None)));
        let text = "[tool.pkinspect]\nallow = [\"a.B\"]\n[tool.pkinspect.rules]\nPK103 = \"error\"\n";
        let c = Config::parse(text, Path::new("pyproject.toml"), true, &Policy::builtin()).expect("ok").expect("some");
        assert_eq!(c.additions().allow[0].origin, "pyproject.toml:2");
    }

    #[test]
    fn flags_are_checked_like_entries() {
        let b = Policy::builtin();
        let flags = |allow: &[&str], deny: &[&str]| Flags {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            allow_denied: Vec::new(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        };
        let e = Config::from_flags(&flags(&["os.*"], &[]), &b).expect_err("denied");
        assert!(e.to_string().starts_with("--allow: pattern `os.*` would allow"), "{e}");
        let e = Config::from_flags(&flags(&["a.b.*c"], &[]), &b).expect_err("syntax");
        assert_eq!(e.location(), &Location::Flag("--allow"));
        let f = Config::from_flags(&flags(&["mypkg.Thing"], &["numpy.dtype"]), &b).expect("ok");
        assert_eq!(f.additions().allow[0].origin, "--allow");
        // Flags on top of a file: a file denial shadows a flag allow.
        let file = parse("deny = [\"mypkg.*\"]").expect("ok");
        let e = file.merged_with(&f).expect_err("shadowed");
        assert!(matches!(e.kind(), ConfigErrorKind::Shadowed { .. }));
        let file = parse("allow = [\"other.Thing\"]").expect("ok");
        let merged = file.merged_with(&f).expect("ok");
        assert_eq!(merged.additions().allow.len(), 2);
        assert_eq!(merged.additions().deny.len(), 1);
    }
}
