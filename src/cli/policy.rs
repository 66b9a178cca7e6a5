//! Which policy applies to each scanned file: the file named by `--config`,
//! none with `--no-config`, or else the policy file found by walking up from
//! the file; `--allow`, `--allow-denied` and `--deny` are added on top.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use pkinspect::policy::config::{Config, ConfigError, Finder, Flags};
use pkinspect::policy::Policy;

/// Policy options of `pkinspect scan`.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Policy")]
pub struct PolicyArgs {
    /// Use this policy file for every path (a pkinspect.toml, or a pyproject.toml with [tool.pkinspect]) instead
    /// of looking for one.
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    config: Option<PathBuf>,
    /// Use no policy file: only the built-in policy and the flags below.
    #[arg(long)]
    no_config: bool,
    /// Judge a global safe: module.Name, module:Name, or module.* for a module and its submodules (repeatable).
    /// Never reaches the built-in denylist.
    #[arg(long, value_name = "NAME")]
    allow: Vec<String>,
    /// Judge an exact global safe although the built-in denylist has it (repeatable).
    #[arg(long, value_name = "NAME")]
    allow_denied: Vec<String>,
    /// Judge a global, or module.*, dangerous (repeatable).
    #[arg(long, value_name = "NAME")]
    deny: Vec<String>,
}

/// The policies of one run, one per policy file in use.
pub struct Policies {
    builtin: Policy,
    flags: Config,
    /// `--config` (checked) or `--no-config`: the same config for every file.
    fixed: Option<Arc<Config>>,
    finder: Finder,
    resolved: Vec<(Policy, Config)>,
    by_source: HashMap<Option<PathBuf>, usize>,
}

impl Policies {
    /// Checks the flags and the `--config` file, if any.
    ///
    /// # Errors
    /// The first problem in the flags or the file, with its location.
    pub fn new(args: &PolicyArgs) -> Result<Policies, ConfigError> {
        let builtin = Policy::builtin();
        let flags =
            Flags { allow: args.allow.clone(), allow_denied: args.allow_denied.clone(), deny: args.deny.clone() };
        let flags = Config::from_flags(&flags, &builtin)?;
        let fixed = match (&args.config, args.no_config) {
            (Some(path), _) => Some(Arc::new(Config::load_explicit(path, &builtin)?)),
            (None, true) => Some(Arc::new(Config::default())),
            (None, false) => None,
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
    pub fn get(&self, index: usize) -> (&Policy, &Config) {
        let (p, c) = &self.resolved[index];
        (p, c)
    }
}
