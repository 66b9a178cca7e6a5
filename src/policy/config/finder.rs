//! Which policy file applies to a scanned path: the first one found walking
//! up from it, remembered per directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Config, ConfigError, CONFIG_FILE, PYPROJECT_FILE};
use crate::policy::Policy;

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
