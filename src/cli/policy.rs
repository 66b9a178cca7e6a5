//! The policy options of `scan` and `extract`: which policy applies to each file
//! (the file named by `--config`, none with `--no-config`, or else the
//! policy file found by walking up from the file), and `--allow`,
//! `--allow-denied` and `--deny` on top. The library's [`Policies`] does
//! the looking up.

use std::path::PathBuf;

use clap::Args;

use pkinspect::policy::config::{ConfigError, ConfigSource, Flags, Policies};

/// Policy options of `pkinspect scan` and `pkinspect extract`.
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

impl PolicyArgs {
    /// The policies these options make.
    ///
    /// # Errors
    /// The first problem in the flags or the `--config` file, with its location.
    pub fn policies(&self) -> Result<Policies, ConfigError> {
        let source = match (&self.config, self.no_config) {
            (Some(path), _) => ConfigSource::File(path.clone()),
            (None, true) => ConfigSource::None,
            (None, false) => ConfigSource::Search,
        };
        let flags =
            Flags { allow: self.allow.clone(), allow_denied: self.allow_denied.clone(), deny: self.deny.clone() };
        Policies::new(&source, &flags)
    }
}
