//! The pilot's control over running payloads (docs/design.md "Contracts", docs/launcher-design.md
//! "Lifecycle commands"): list, status, kill, suspend/resume, renew the credential, `gc`, and the
//! installation self-check. The pilot never needs the user's credential for any of these.
//!
//! The per-payload state record, the audit sink, the unprivileged proxy verifier and the work-dir
//! hand-over are the launcher's ([`crate::launcher::state`], [`crate::launcher::audit`] with the
//! policy's `[audit]`, [`crate::launcher::unprivileged`], [`crate::launcher::handover`]).
//!
//! * [`procs`] — (pid, start time) identity of processes, so a recycled pid is never signalled.
//! * [`caller`] — who is asking (real uid), authorization (the record's pilot uid or root), and
//!   reading a caller-supplied file *as the caller*.
//! * [`control`] — status, kill, freeze, thaw on the payload's cgroup.
//! * [`renew`] — credential renewal, verified without privilege
//!   ([`crate::launcher::unprivileged`]).
//! * [`gc`] — reclaim what dead supervisors left behind; [`reap`] — its limit backstop and the
//!   `end` record of a lost supervisor.
//! * [`check`] — installation checks with fix hints.

#![forbid(unsafe_code)]

pub mod caller;
pub mod check;
pub mod control;
pub mod gc;
pub mod procs;
pub mod reap;
pub mod renew;

use std::path::PathBuf;

use crate::cgroups::CgroupError;
use crate::launcher::audit::Audit;
use crate::launcher::state::{StateError, Store};
use policy::config::schema::{AuditConf, PolicyFile};
use policy::Class;

/// Everything a lifecycle command can fail with. Each variant names what failed and why;
/// [`LifecycleError::class`] gives the docs/design.md exit class.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(
        "bad payload id {0:?}: expected 1-128 characters of [A-Za-z0-9_.-], not starting with '.', not 'pilot'"
    )]
    BadId(String),
    #[error("no payload {0:?} on this node (see `pilotbox ps`)")]
    NoSuchPayload(String),
    #[error("payload {id} was launched by uid {owner}: only that uid and root may control it")]
    NotYours { id: String, owner: u32 },
    #[error("payload {id} has ended (its cgroup {cgroup} is gone)")]
    Ended { id: String, cgroup: String },
    #[error("payload {id} has ended (the init of its sandbox is gone)")]
    InitGone { id: String },
    #[error("state record {path}: {reason}")]
    Record { path: PathBuf, reason: String },
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("payload {id}: {source}")]
    Cgroup {
        id: String,
        #[source]
        source: CgroupError,
    },
    #[error("proxy file {path}: {reason}")]
    ProxyFile { path: PathBuf, reason: String },
    #[error("proxy rejected: {0}")]
    ProxyRejected(String),
    #[error("renewal refused for payload {id}: {reason}")]
    IdentityChanged { id: String, reason: String },
    /// The policy no longer allows it: the caller is no longer a pilot, or the identity is
    /// banned now.
    #[error("renewal refused for payload {id}: {reason}")]
    PolicyRefused { id: String, reason: String },
    #[error("{what}: {reason}")]
    Site { what: &'static str, reason: String },
}

impl LifecycleError {
    /// The docs/design.md class: bad ids, unknown or ended payloads and unusable proxy files are the
    /// pilot's error (122); another pilot's payload, a rejected proxy or a changed identity are
    /// denials (120); anything about the installation is the site's (123).
    pub fn class(&self) -> Class {
        match self {
            LifecycleError::BadId(_)
            | LifecycleError::NoSuchPayload(_)
            | LifecycleError::Ended { .. }
            | LifecycleError::InitGone { .. }
            | LifecycleError::ProxyFile { .. } => Class::PilotError,
            LifecycleError::NotYours { .. }
            | LifecycleError::ProxyRejected(_)
            | LifecycleError::IdentityChanged { .. }
            | LifecycleError::PolicyRefused { .. } => Class::Denied,
            LifecycleError::Record { .. }
            | LifecycleError::Io { .. }
            | LifecycleError::Cgroup { .. }
            | LifecycleError::Site { .. } => Class::SiteError,
        }
    }
}

/// The audit log of a lifecycle action: the policy's `[audit]` (log path, syslog), the same
/// sink `pilotbox run` writes its decision/start/end records to. With no loadable policy the
/// defaults (`/var/log/pilotbox/audit.jsonl`, syslog) are used, so an action is never left
/// unaudited because the policy is broken.
pub fn audit_for(policy: Option<&PolicyFile>) -> Audit {
    match policy {
        Some(p) => Audit::new(&p.audit),
        None => Audit::new(&AuditConf::default()),
    }
}

/// Append one audit line; a failure is reported on stderr but does not undo the action
/// (the action has already happened; the caller's exit status reflects the action).
pub(crate) fn audit_record(audit: &Audit, event: &str, fields: serde_json::Value) {
    if let Err(e) = audit.record(event, fields) {
        eprintln!("pilotbox: {e}");
    }
}

/// The record store under `state_dir`.
pub(crate) fn store(state_dir: &std::path::Path) -> Store {
    Store::new(state_dir)
}

/// The state store's errors in lifecycle terms: an unknown id is the pilot's error, an
/// unreadable or malformed record the site's.
impl From<StateError> for LifecycleError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::BadId(id) => LifecycleError::BadId(id),
            StateError::NotFound(id) => LifecycleError::NoSuchPayload(id),
            StateError::Io { path, reason } | StateError::Malformed { path, reason } => {
                LifecycleError::Record { path, reason }
            }
        }
    }
}
