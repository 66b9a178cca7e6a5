//! The policies of one scan run: which [`Config`] applies to each scanned
//! path (one named file, none, or the one [`Finder`] finds walking up from
//! the path), with the command-line [`Flags`] merged into each, and the
//! [`Policy`] compiled from it once per policy file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Config, ConfigError, Finder, Flags};
use crate::policy::Policy;

/// Where the policy file of each scanned path comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ConfigSource {
    /// The file [`Finder`] finds walking up from each path (the default).
    #[default]
    Search,
    /// This file, for every path (`--config`).
    File(PathBuf),
    /// No file: the built-in policy and the flags only (`--no-config`).
    None,
}

/// The policies of one run, one per policy file in use, each with the
/// flags merged in.
pub struct Policies {
    builtin: Policy,
    flags: Config,
    /// [`ConfigSource::File`] (checked) or [`ConfigSource::None`]: the same config for every path.
    fixed: Option<Arc<Config>>,
    finder: Finder,
    resolved: Vec<(Policy, Config)>,
    by_source: HashMap<Option<PathBuf>, usize>,
}

impl Policies {
    /// Checks the flags and, for [`ConfigSource::File`], the file.
    ///
    /// # Errors
    /// The first problem in the flags or the file, with its location.
    pub fn new(source: &ConfigSource, flags: &Flags) -> Result<Policies, ConfigError> {
        let builtin = Policy::builtin();
        let flags = Config::from_flags(flags, &builtin)?;
        let fixed = match source {
            ConfigSource::File(path) => Some(Arc::new(Config::load_explicit(path, &builtin)?)),
            ConfigSource::None => Some(Arc::new(Config::default())),
            ConfigSource::Search => None,
        };
        let mut p = Policies {
            builtin,
            flags,
            fixed: None,
            finder: Finder::new(),
            resolved: Vec::new(),
            by_source: HashMap::new(),
        };
        if let Some(config) = fixed {
            p.index(&config)?;
            p.fixed = Some(config);
        }
        Ok(p)
    }

    /// The index of the policy for `path`, finding and checking its policy
    /// file the first time one is met.
    ///
    /// # Errors
    /// The policy file found for `path` has a problem, or contradicts the flags.
    pub fn for_file(&mut self, path: &Path) -> Result<usize, ConfigError> {
        let config = match &self.fixed {
            Some(c) => Arc::clone(c),
            None => match self.finder.find(path, &self.builtin)? {
                Some(c) => c,
                None => Arc::new(Config::default()),
            },
        };
        self.index(&config)
    }

    fn index(&mut self, config: &Config) -> Result<usize, ConfigError> {
        let key = config.source().map(Path::to_path_buf);
        if let Some(&i) = self.by_source.get(&key) {
            return Ok(i);
        }
        let merged = config.merged_with(&self.flags)?;
        let policy = self.builtin.clone().with_config(merged.additions());
        self.resolved.push((policy, merged));
        self.by_source.insert(key, self.resolved.len() - 1);
        Ok(self.resolved.len() - 1)
    }

    /// The policy and config at `index` (from [`Policies::for_file`]).
    ///
    /// # Panics
    /// `index` did not come from [`Policies::for_file`] of this value.
    pub fn get(&self, index: usize) -> (&Policy, &Config) {
        let (p, c) = &self.resolved[index];
        (p, c)
    }
}
