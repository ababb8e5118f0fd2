//! What `gc` does for one record besides the cleanup itself (issue 11 items 2 and 3):
//!
//! * **Limits as a backstop.** The supervisor enforces the wall-time limit and the credential's
//!   end. A supervisor that cannot run (SIGSTOPped, or frozen in a cgroup) enforces nothing, so
//!   `gc` — run by root from a timer (packaging/systemd/pilotbox-gc.timer) — ends a payload that
//!   outlived `started + walltime_s` or `cred_not_after` (re-read under the record lock: `renew`
//!   moves it) by more than a grace period, even while its supervisor is alive: the supervisor
//!   is killed through a pidfd (never a recycled pid, pidfd_open(2)), then the run is reclaimed
//!   like any run whose supervisor is gone. Records without `walltime_s` (older versions, no
//!   limit) are checked for the credential only.
//! * **Accounting.** A run whose supervisor is gone never wrote its `end` record. `gc` reads
//!   the cgroup's usage before removing it and writes that record, with the same fields and
//!   APEL names as `pilotbox run`'s (`cli/run.rs`), outcome `supervisor_lost` (or the limit gc
//!   enforced).

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::LifecycleError;
use crate::cgroups::{Cgroup, Usage};
use crate::launcher::audit;
use crate::launcher::state::Record;

/// How long past a limit `gc` waits for the supervisor to enforce it itself: the supervisor's
/// own TERM-to-KILL grace is 10 s (`engine::RunOptions::grace`); a minute more covers a busy node.
pub const DEFAULT_LIMIT_GRACE: Duration = Duration::from_secs(60);

/// How long a killed supervisor may take to die.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Which limit `rec` outlived by more than `grace` at `now`, if any: `walltime_exceeded` or
/// `credential_expired`. Only a run with a cgroup can have a payload running (the launcher
/// records the cgroup before it starts one; `init_pid` comes later and could be held back by
/// stopping the supervisor): one still being prepared is left to its supervisor.
pub fn overdue(rec: &Record, now: OffsetDateTime, grace: Duration) -> Option<&'static str> {
    if rec.cgroup.is_none() {
        return None;
    }
    let grace = time::Duration::try_from(grace).unwrap_or(time::Duration::MAX);
    if let (Some(w), Some(start)) = (rec.walltime_s, rec.started_at()) {
        let limit = time::Duration::seconds(i64::try_from(w).unwrap_or(i64::MAX));
        if start
            .checked_add(limit)
            .and_then(|t| t.checked_add(grace))
            .is_some_and(|end| now > end)
        {
            return Some("walltime_exceeded");
        }
    }
    match rec.cred_not_after_at().and_then(|t| t.checked_add(grace)) {
        Some(end) if now > end => Some("credential_expired"),
        _ => None,
    }
}

/// SIGKILL the recorded supervisor (only if it still is that process) and wait until it is
/// gone. Its payload dies with it (the sandbox init's parent-death signal) or with the cgroup
/// kill that follows.
pub fn kill_supervisor(rec: &Record) -> Result<(), LifecycleError> {
    let site = |what: &'static str, e: Errno| LifecycleError::Site {
        what,
        reason: format!(
            "payload {} (supervisor pid {}): {e}",
            rec.id, rec.supervisor_pid
        ),
    };
    let pidfd = match crate::sys::pidfd_open(rec.supervisor_pid) {
        Ok(fd) => fd,
        Err(Errno::ESRCH) => return Ok(()),
        Err(e) => return Err(site("pidfd_open", e)),
    };
    // The pidfd names the process that had the pid when it was opened; if the recorded one
    // runs now, that was it (a later process reusing the pid has another start time).
    if !super::procs::is_same_process(rec.supervisor_pid, rec.supervisor_start) {
        return Ok(());
    }
    match crate::sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => return Err(site("pidfd_send_signal", e)),
    }
    match crate::sys::wait_pidfd_exit(pidfd.as_fd(), Instant::now() + KILL_WAIT) {
        Ok(true) => Ok(()),
        Ok(false) => Err(site("SIGKILL of the supervisor", Errno::ETIMEDOUT)),
        Err(e) => Err(site("poll pidfd", e)),
    }
}

/// The usage counters of the record's cgroup, read before `gc` removes it (None: no cgroup,
/// or it is gone already).
pub fn usage_of(rec: &Record) -> Option<Usage> {
    let path = rec.cgroup.as_deref().filter(|p| !p.is_empty())?;
    Cgroup::open(path).ok()?.usage().ok()
}

/// The `usage` object of an end record, as the engine reports it (`engine::RunResult::report`),
/// with the wall time from the record's `started` to now (the supervisor that would have
/// measured it is gone).
pub fn usage_json(rec: &Record, usage: Option<&Usage>, now: OffsetDateTime) -> Value {
    let wall = rec
        .started_at()
        .map(|s| (now - s).as_seconds_f64().max(0.0));
    match usage {
        Some(u) => json!({
            "wall_s": wall,
            "cpu_user_s": u.cpu_user_s,
            "cpu_sys_s": u.cpu_sys_s,
            "mem_peak_bytes": u.mem_peak_bytes,
            "oom_killed": u.oom_killed,
            "pids_peak": u.pids_peak,
        }),
        None => json!({"wall_s": wall}),
    }
}

/// The `end` audit record `gc` writes for a run whose supervisor did not: the fields of
/// `pilotbox run`'s end record (`cli/run.rs`) and the APEL ones ([`audit::apel_fields`]).
pub fn end_fields(
    rec: &Record,
    outcome: &str,
    usage: Value,
    caller_uid: u32,
    cleanup_problems: Option<String>,
) -> Value {
    let mut end = json!({
        "pilot_uid": rec.pilot_uid, "dn": rec.dn, "issuer": rec.issuer_dn, "vo": rec.vo,
        "fqans": rec.fqans, "id": rec.id, "account": rec.account, "uid": rec.uid,
        "cgroup": rec.cgroup, "outcome": outcome, "exit": null, "signal": null,
        "usage": usage, "workdir_handover": rec.workdir_handover,
        "cleanup_problems": cleanup_problems, "recorded_by": "gc", "caller_uid": caller_uid,
    });
    if let Value::Object(apel) = audit::apel_fields(&end["usage"], rec.cpus) {
        for (k, v) in apel {
            end[k] = v;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(walltime: Option<u64>, cred: &str) -> Record {
        let mut r: Record = serde_json::from_value(json!({"id": "p", "pilot_uid": 1,
            "pilot_gid": 1, "supervisor_pid": 1, "supervisor_start": 1, "init_pid": 1,
            "account": "a", "uid": 2, "gid": 2, "groups": [], "dn": "/CN=A", "issuer_dn": "/CN=CA",
            "vo": null, "fqans": [], "pool": null, "lease_key": null, "cgroup": "/pilotbox/p",
            "workdir": null, "workdir_handover": "none", "started": "2026-01-01T00:00:00Z",
            "cred_not_after": cred}))
        .unwrap();
        r.walltime_s = walltime;
        r
    }

    #[test]
    fn a_limit_counts_only_past_its_grace_and_old_records_only_for_the_credential() {
        let t = |s: &str| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
        };
        let g = Duration::from_secs(60);
        let r = rec(Some(3600), "2026-01-02T00:00:00Z");
        assert_eq!(overdue(&r, t("2026-01-01T01:00:59Z"), g), None);
        assert_eq!(
            overdue(&r, t("2026-01-01T01:01:01Z"), g),
            Some("walltime_exceeded")
        );
        // No walltime recorded (an older record): only the credential's end.
        let old = rec(None, "2026-01-02T00:00:00Z");
        assert_eq!(overdue(&old, t("2026-01-01T12:00:00Z"), g), None);
        assert_eq!(
            overdue(&old, t("2026-01-02T00:01:01Z"), g),
            Some("credential_expired")
        );
        let mut preparing = old.clone();
        preparing.cgroup = None;
        assert_eq!(overdue(&preparing, t("2026-01-02T00:01:01Z"), g), None);
        let end = end_fields(
            &r,
            "supervisor_lost",
            usage_json(
                &r,
                Some(&Usage {
                    cpu_user_s: 1.4,
                    cpu_sys_s: 0.2,
                    mem_peak_bytes: Some(4096 * 1024),
                    ..Usage::default()
                }),
                t("2026-01-01T00:00:30Z"),
            ),
            0,
            None,
        );
        assert_eq!(end["WallDuration"], 30);
        assert_eq!(end["CpuDuration"], 2);
        assert_eq!(end["MemoryReal"], 4096);
        assert_eq!(end["Processors"], 1);
        assert_eq!(end["event"], Value::Null, "the event name is the audit's");
    }
}
