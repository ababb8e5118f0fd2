//! Arguments shared by the lifecycle subcommands, and how their errors are printed.
//!
//! `--state-dir` is hidden and honoured only for a root caller (real uid 0): `pilotbox` is setuid
//! root, and a pilot choosing where records are read from could point it at records it wrote
//! itself. Root can already do anything; tests and debugging use it to work on a scratch state
//! dir instead of the node's.

use crate::launcher::audit::Audit;
use crate::launcher::state::RUN_DIR;
use crate::lifecycle::caller::Caller;
use crate::lifecycle::LifecycleError;
use policy::Class;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// (root only) Read payload records from DIR instead of /var/lib/pilotbox/run.
    #[arg(long, hide = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateArgs {
    /// The state dir to use, refusing an override from a non-root caller (exit 122).
    pub fn resolve(&self, cmd: &str, caller: Caller) -> Result<PathBuf, i32> {
        root_only(cmd, caller, "--state-dir", self.state_dir.is_some())?;
        Ok(self
            .state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(RUN_DIR)))
    }
}

/// The installed policy, if it loads (lifecycle commands work without one: they act on
/// records, and fall back to the defaults for the audit log and the cgroup root).
pub fn installed_policy() -> Option<policy::config::schema::PolicyFile> {
    policy::config::load_system()
        .map_err(|e| tracing::debug!("no usable policy: {e}"))
        .ok()
}

/// The audit sink of the lifecycle commands: the installed policy's `[audit]`.
pub fn site_audit() -> Audit {
    crate::lifecycle::audit_for(installed_policy().as_ref())
}

/// Refuse a root-only option given by a non-root caller.
pub fn root_only(cmd: &str, caller: Caller, flag: &str, given: bool) -> Result<(), i32> {
    if given && !caller.is_root() {
        eprintln!("pilotbox {cmd}: {flag} is for root only");
        return Err(Class::PilotError.exit_code());
    }
    Ok(())
}

/// Print one line on stderr and return the exit code of the error's class.
pub fn fail(cmd: &str, e: &LifecycleError) -> i32 {
    eprintln!("pilotbox {cmd}: {e}");
    e.class().exit_code()
}
