//! The site policy file: where it lives, who may have written it, and its schema.
//!
//! The path is fixed when pilotbox is built (`PILOTBOX_POLICY` at build time, default
//! `/etc/pilotbox/policy.toml`); there is deliberately no runtime option, environment variable
//! or argument to choose another, because pilotbox runs setuid root for unprivileged callers
//! (docs/design.md "Files"). `pilotbox policy check FILE` may *check* another file, nothing more.

pub mod perms;
pub mod schema;
pub mod units;

use crate::class::{Class, Denial};
use std::path::{Path, PathBuf};

pub use perms::{check_trusted_file, PermError};
pub use schema::PolicyFile;

/// The only policy file pilotbox ever enforces.
pub const POLICY_PATH: &str = match option_env!("PILOTBOX_POLICY") {
    Some(p) => p,
    None => "/etc/pilotbox/policy.toml",
};

/// The owner every policy file and its directories must have.
pub const TRUSTED_UID: u32 = 0;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("refusing policy file: {0}")]
    Permissions(#[from] PermError),
    #[error("cannot read policy file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("policy file {path}: {reason}")]
    Syntax { path: PathBuf, reason: String },
    #[error("policy file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl ConfigError {
    /// Every configuration problem is the site's to fix: exit 123.
    pub fn to_denial(&self) -> Denial {
        Denial::new(Class::SiteError, self.to_string())
    }
}

impl From<ConfigError> for Denial {
    fn from(e: ConfigError) -> Denial {
        e.to_denial()
    }
}

/// Parse policy text (no permission check); `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<PolicyFile, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Check ownership and modes of `path` and its ancestors against `trusted_uid`, then read and
/// parse it. Tests pass their own uid; production passes [`TRUSTED_UID`].
pub fn load_file(path: &Path, trusted_uid: u32) -> Result<PolicyFile, ConfigError> {
    check_trusted_file(path, trusted_uid)?;
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.into(),
        reason: e.to_string(),
    })?;
    parse(&text, path)
}

/// Load the build-time policy path, owned by root.
pub fn load_system() -> Result<PolicyFile, ConfigError> {
    load_file(Path::new(POLICY_PATH), TRUSTED_UID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused() {
        let p = Path::new("t.toml");
        assert!(parse("[bans]\ndns = []\n", p).is_err());
        assert!(parse("[ban]\ndn = []\n", p).is_err());
        assert!(parse("[[map]]\nfqan = \"/x\"\npool = \"x\"\nextra = 1\n", p).is_err());
        assert!(parse("[limits.default]\nmemory = \"2Q\"\n", p).is_err());
        let ok = parse("[limits.default]\nmemory = \"2G\"\nwalltime = \"48h\"\n", p).unwrap();
        assert_eq!(ok.limits.default.memory, Some(units::Bytes(2 << 30)));
    }
}
