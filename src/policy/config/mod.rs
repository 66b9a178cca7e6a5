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
//! up from it, and [`Policies`] keeps the policies of one scan run.
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

mod file;
mod finder;
mod glob;
mod policies;
#[cfg(test)]
mod tests;

pub use file::{ConfigError, ConfigErrorKind, IgnoreEntry, Location, PolicyFile};
use file::{PyProject, Spans};
pub use finder::Finder;
pub use glob::Glob;
pub use policies::{ConfigSource, Policies};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::{Addition, Additions, GlobalPattern, Policy};
use crate::rules::{Levels, Rule, Severity};

/// The policy file looked for first in each directory.
pub const CONFIG_FILE: &str = "pkinspect.toml";
/// The file looked for next; it counts only when it has `[tool.pkinspect]`.
pub const PYPROJECT_FILE: &str = "pyproject.toml";

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
