//! Outcome classes of a refusal, shared by every crate and every CLI entry point.
//!
//! docs/design.md fixes the numbers: a pilot decides whether to retry from the class alone.

use serde::Serialize;
use std::fmt;

/// Why pilotbox refused before a payload started. The discriminant is the exit status of
/// `pilotbox run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Permanent for this user on this site: banned, unknown VO, invalid credential.
    Denied = 120,
    /// Retry later: lease store busy, pool exhausted, resources exhausted.
    Temporary = 121,
    /// The caller asked for something wrong: bad arguments, unreadable work dir, bad proxy perms.
    PilotError = 122,
    /// The installation is misconfigured: policy perms, missing CA dir, no cgroup access.
    SiteError = 123,
}

impl Class {
    /// The exit status of `pilotbox run` for this class.
    pub fn exit_code(self) -> i32 {
        self as i32
    }

    /// The `outcome` string of the `--report` JSON.
    pub fn outcome(self) -> &'static str {
        match self {
            Class::Denied => "denied",
            Class::Temporary => "temporary",
            Class::PilotError => "pilot_error",
            Class::SiteError => "site_error",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.outcome())
    }
}

/// A classified refusal with a reason a human can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub class: Class,
    pub reason: String,
}

impl Denial {
    pub fn new(class: Class, reason: impl Into<String>) -> Self {
        Denial {
            class,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.reason)
    }
}

impl std::error::Error for Denial {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_design() {
        assert_eq!(Class::Denied.exit_code(), 120);
        assert_eq!(Class::Temporary.exit_code(), 121);
        assert_eq!(Class::PilotError.exit_code(), 122);
        assert_eq!(Class::SiteError.exit_code(), 123);
        assert_eq!(Class::PilotError.outcome(), "pilot_error");
    }
}
