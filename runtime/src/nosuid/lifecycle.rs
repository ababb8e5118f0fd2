//! `pilotbox-nosuid ps | status | kill | suspend | resume | renew | gc`: the lifecycle commands
//! of `pilotbox` (same output formats, exit classes and audit records, `crate::lifecycle`) on
//! the caller's own records ([`super::state`]).
//!
//! What differs, because there is no privilege and maybe no cgroup of the payload's own:
//!
//! - **kill** with a (delegated) cgroup is `pilotbox`'s whole-cgroup kill. Without one, SIGKILL
//!   goes to the sandbox's pid-namespace init, through a pidfd opened on the recorded pid and
//!   checked against the recorded start time (so a recycled pid is never signalled): when the
//!   init of a pid namespace dies, the kernel SIGKILLs every other process of the namespace and
//!   waits until they are all reaped before init itself is done (`zap_pid_ns_processes()`,
//!   kernel/pid_namespace.c; `pid_namespaces(7)`), so the kill is as complete as the cgroup's.
//!   The pidfd becomes readable only after that (exit_notify notifies pidfd pollers after
//!   `forget_original_parent()`), which is what `kill` waits for. Other signals go to init,
//!   which forwards TERM, INT, HUP, USR1 and USR2 to the payload; any other is refused.
//! - **suspend / resume** need the cgroup freezer: without a delegated cgroup they are refused
//!   (123). Stopping the processes one by one with SIGSTOP would race with fork.
//! - **renew** reads and verifies the proxy as `run` does ([`super::verify`]) and replaces the
//!   copy in the run's `/tmp/pilotbox-nosuid.<random>/`, which the sandbox binds as a directory
//!   (`/tmp/pilotbox-cred`), so the rename is what the payload sees.
//! - **gc** reclaims only the caller's own records, their cgroups and proxy directories.
//!
//! Audit records go to syslog ([`super::audit`]), like `run`'s.

use super::audit::Audit;
use super::state::{self, cred_dir_of};
use super::NAME;
use crate::cli::{gc::print_report, ps};
use crate::launch::FORWARDED;
use crate::launcher::sanitize::Caller as Sanitized;
use crate::launcher::state::{Record, Store};
use crate::lifecycle::caller::Caller;
use crate::lifecycle::control::{self, action_fields, init_is_recorded, parse_signal};
use crate::lifecycle::gc::{gc_fields, older_than, reclaim_cgroup, GcReport, DEFAULT_MIN_AGE};
use crate::lifecycle::{renew, LifecycleError};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use serde_json::json;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long `kill` waits for the sandbox to be gone (as the cgroup kill bounds its wait).
const KILL_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Print a JSON array (one object per payload, the fields of `status --json`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The payload id (`run --id`, or as listed by `ps`).
    pub id: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    pub id: String,
    /// Signal name or number (TERM, SIGUSR1, 15 ...). KILL (default) ends the whole payload and
    /// returns once it is gone; TERM, INT, HUP, USR1, USR2 reach the payload (without a cgroup
    /// of its own, only these).
    #[arg(long, short = 's', default_value = "KILL", value_parser = parse_signal)]
    pub signal: Signal,
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    pub id: String,
}

#[derive(Debug, clap::Args)]
pub struct RenewArgs {
    pub id: String,
    /// The new proxy (owned by you, mode 0600), e.g. from voms-proxy-init.
    #[arg(long)]
    pub proxy: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Print what was reclaimed as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn fail(cmd: &str, e: &LifecycleError) -> i32 {
    eprintln!("{NAME} {cmd}: {e}");
    e.class().exit_code()
}

fn caller_of(c: &Sanitized) -> Caller {
    Caller {
        uid: c.uid,
        gid: c.gid,
    }
}

/// The audit sink: the installed policy's `[audit]` (syslog), its defaults without a policy.
fn audit() -> Audit {
    match policy::config::load_system() {
        Ok(p) => Audit::new(&p.audit),
        Err(_) => Audit::new(&Default::default()),
    }
}

fn with_record<T>(
    c: &Sanitized,
    id: &str,
    f: impl FnOnce(&Record) -> Result<T, LifecycleError>,
) -> Result<T, LifecycleError> {
    let store = state::existing(c.uid)?;
    f(&state::load(store.as_ref(), c.uid, id)?)
}

pub fn ps(a: PsArgs, c: &Sanitized) -> i32 {
    let list = (|| -> Result<_, LifecycleError> {
        let Some(store) = state::existing(c.uid)? else {
            return Ok(vec![]);
        };
        let (recs, _) = store.read_all()?;
        Ok(recs
            .iter()
            .filter(|r| r.pilot_uid == c.uid)
            .map(control::status_of)
            .collect::<Vec<_>>())
    })();
    match list {
        Ok(l) => {
            ps::print_list(&l, a.json);
            0
        }
        Err(e) => fail("ps", &e),
    }
}

pub fn status(a: StatusArgs, c: &Sanitized) -> i32 {
    match with_record(c, &a.id, |r| Ok(control::status_of(r))) {
        Ok(s) => {
            ps::print_one(&s, a.json);
            0
        }
        Err(e) => fail("status", &e),
    }
}

pub fn kill(a: KillArgs, c: &Sanitized) -> i32 {
    let done = with_record(c, &a.id, |rec| {
        if rec.cgroup.is_some() {
            control::signal_cgroup(rec, a.signal)?;
        } else {
            signal_init(rec, a.signal)?;
        }
        audit().record(
            "kill",
            action_fields(rec, caller_of(c), json!({"signal": a.signal as i32})),
        );
        Ok(())
    });
    match done {
        Ok(()) => 0,
        Err(e) => fail("kill", &e),
    }
}

/// Signal the sandbox's init (no cgroup of the payload's own); see the module docs.
fn signal_init(rec: &Record, sig: Signal) -> Result<(), LifecycleError> {
    if sig != Signal::SIGKILL && !FORWARDED.contains(&sig) {
        return Err(LifecycleError::Site {
            what: "no cgroup",
            reason: format!(
                "payload {} has no cgroup of its own, so {sig} cannot reach every process of it; \
                 without a delegated cgroup only KILL, TERM, INT, HUP, USR1 and USR2 can be sent",
                rec.id
            ),
        });
    }
    let gone = || LifecycleError::InitGone { id: rec.id.clone() };
    let start = rec.nosuid.as_ref().and_then(|n| n.init_start);
    let Some(start) = start.filter(|_| rec.init_pid > 0) else {
        return Err(gone());
    };
    let pidfd = match crate::sys::pidfd_open(rec.init_pid) {
        Ok(fd) => fd,
        Err(Errno::ESRCH) => return Err(gone()),
        Err(e) => return Err(site("pidfd_open", rec, e)),
    };
    // The pidfd names whatever process had the pid when it was opened. If the recorded init is
    // running now, that was it: a process reusing the pid after it died would have started
    // later, so it could not show the recorded start time.
    if !crate::lifecycle::procs::is_same_process(rec.init_pid, start) {
        return Err(gone());
    }
    match crate::sys::pidfd_send_signal(pidfd.as_fd(), sig) {
        Ok(()) => {}
        Err(Errno::ESRCH) => return Err(gone()),
        Err(e) => return Err(site("pidfd_send_signal", rec, e)),
    }
    if sig != Signal::SIGKILL {
        return Ok(());
    }
    match crate::sys::wait_pidfd_exit(pidfd.as_fd(), Instant::now() + KILL_WAIT) {
        Ok(true) => Ok(()),
        Ok(false) => Err(LifecycleError::Site {
            what: "SIGKILL",
            reason: format!(
                "payload {}: its init (pid {}) still runs {} s after SIGKILL",
                rec.id,
                rec.init_pid,
                KILL_WAIT.as_secs()
            ),
        }),
        Err(e) => Err(site("poll pidfd", rec, e)),
    }
}

fn site(what: &'static str, rec: &Record, e: Errno) -> LifecycleError {
    LifecycleError::Site {
        what,
        reason: format!("payload {} (init pid {}): {e}", rec.id, rec.init_pid),
    }
}

/// `suspend` (`frozen`) / `resume`: the cgroup freezer, or a refusal without a cgroup.
pub fn freeze(a: IdArgs, c: &Sanitized, frozen: bool) -> i32 {
    let cmd = if frozen { "suspend" } else { "resume" };
    let done = with_record(c, &a.id, |rec| {
        if rec.cgroup.is_none() {
            return Err(LifecycleError::Site {
                what: "no cgroup",
                reason: format!(
                    "payload {} has no cgroup of its own: freezing needs a delegated cgroup-v2 \
                     subtree (start the pilot with systemd `Delegate=yes`, e.g. `systemd-run \
                     --user -p Delegate=yes`; docs/admin-guide.md)",
                    rec.id
                ),
            });
        }
        control::set_frozen(rec, frozen)?;
        audit().record(cmd, action_fields(rec, caller_of(c), json!({})));
        Ok(())
    });
    match done {
        Ok(()) => 0,
        Err(e) => fail(cmd, &e),
    }
}

pub fn renew(a: RenewArgs, c: &Sanitized) -> i32 {
    let path = c.absolute(&a.proxy);
    let policy = match policy::config::load_system() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{NAME} renew: {e}");
            return policy::Class::SiteError.exit_code();
        }
    };
    let audit = Audit::new(&policy.audit);
    let store = match state::existing(c.uid) {
        Ok(s) => s,
        Err(e) => return fail("renew", &e),
    };
    let mut rec = match state::load(store.as_ref(), c.uid, &a.id) {
        Ok(r) => r,
        Err(e) => return fail("renew", &e),
    };
    // The same file rule and confined verifier as `run`.
    let bytes = match super::verify::read_proxy(c.uid, &path) {
        Ok(b) => b,
        Err(d) => {
            eprintln!("{NAME} renew: {d}");
            return d.class.exit_code();
        }
    };
    let opts = crate::launcher::verify_options(policy.trust.ca_dir, policy.trust.voms_dir);
    let caller = caller_of(c);
    let new = match renew::vet(&rec, super::verify::verify(&bytes, &opts)) {
        Ok(n) => n,
        Err(r) => {
            if let Some(reason) = &r.audit_reason {
                audit.record("renew_refused", renew::refused_fields(&rec, caller, reason));
            }
            return fail("renew", &r.err);
        }
    };
    // Under the record's lock, on the record as it is now (parallel renewals, the launcher's
    // on-started update): nobody's change is lost.
    let _lock = store.as_ref().map(|s| s.lock(&rec.id));
    if let Some(Ok(now)) = store.as_ref().map(|s| s.read(&rec.id)) {
        rec = now;
    }
    let replaced =
        cred_dir_of(&rec, c.uid).and_then(|dir| renew::replace_in_dir(&dir, c.uid, c.gid, &bytes));
    if let Err(e) = replaced {
        return fail("renew", &e);
    }
    let old = rec.cred_not_after.clone();
    let until = new.usable_until();
    rec.set_cred_not_after(until);
    // `store` is Some: the record was read from it.
    if let Some(Err(e)) = store.as_ref().map(|s| s.update(&rec)) {
        return fail("renew", &e.into());
    }
    audit.record("renew", renew::renewed_fields(&rec, caller, old));
    println!(
        "renewed {}: proxy valid until {}",
        a.id,
        until
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    );
    0
}

pub fn gc(a: GcArgs, c: &Sanitized) -> i32 {
    let store = match state::existing(c.uid) {
        Ok(Some(s)) => s,
        Ok(None) => return print_report(&GcReport::default(), a.json, NAME),
        Err(e) => return fail("gc", &e),
    };
    match collect(&store, c, &audit()) {
        Ok(r) => print_report(&r, a.json, NAME),
        Err(e) => fail("gc", &e),
    }
}

/// Reclaim the caller's records whose supervisor is gone (and record-less directories older
/// than [`DEFAULT_MIN_AGE`]: a run that died before writing its record).
fn collect(store: &Store, c: &Sanitized, audit: &Audit) -> Result<GcReport, LifecycleError> {
    let (recs, bare) = store.read_all()?;
    let mut report = GcReport::default();
    for rec in recs.iter().filter(|r| r.pilot_uid == c.uid) {
        if rec.supervisor_alive() {
            continue;
        }
        match reclaim(store, rec, c.uid) {
            Ok(()) => {
                report.reclaimed.push(rec.id.clone());
                audit.record("gc", gc_fields(rec, c.uid));
            }
            Err(e) => report.errors.push(format!("{}: {e}", rec.id)),
        }
    }
    for (id, _) in bare {
        let dir = store.root.join(&id);
        if older_than(&dir, DEFAULT_MIN_AGE) {
            match store.remove(&id) {
                Ok(()) => report.stale_dirs_removed.push(dir),
                Err(e) => report.errors.push(e.to_string()),
            }
        }
    }
    Ok(report)
}

fn reclaim(store: &Store, rec: &Record, uid: u32) -> Result<(), LifecycleError> {
    reclaim_cgroup(rec)?;
    // The supervisor's death took the sandbox with it (init's parent-death signal); should the
    // recorded init still run, it is ended the same way `kill` does.
    if rec.cgroup.is_none() && init_is_recorded(rec) {
        signal_init(rec, Signal::SIGKILL)?;
    }
    if rec.nosuid.is_some() {
        match cred_dir_of(rec, uid) {
            Ok(dir) => std::fs::remove_dir_all(&dir).map_err(|source| LifecycleError::Io {
                op: "remove",
                path: dir,
                source,
            })?,
            // Already gone: nothing to remove.
            Err(_) if !rec.nosuid.as_ref().is_some_and(|n| n.cred_dir.exists()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(store.remove(&rec.id)?)
}
