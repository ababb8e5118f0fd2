//! Acting on one payload through its cgroup: status, kill, suspend (freeze), resume (thaw).
//!
//! Every action first reads the record and authorizes the caller against it. The cgroup is the
//! unit of control (not a pid): `kill` with SIGKILL uses [`Cgroup::kill`] (v2 `cgroup.kill`, v1
//! freeze–kill–thaw loop, both race-free against fork); any other signal goes to every process
//! of the cgroup, so the sandbox's init — which forwards SIGTERM, SIGINT, SIGHUP, SIGUSR1/2 to
//! the payload — and the payload both get it, and a payload that dies of it is reported by the
//! supervisor as `signaled N` (docs/design.md "Details").

use std::path::Path;

use nix::sys::signal::Signal;
use serde::Serialize;
use serde_json::json;

use super::caller::Caller;
use super::{audit_record, store, LifecycleError};
use crate::cgroups::{Cgroup, CgroupError, Usage};
use crate::launcher::audit::Audit;
use crate::launcher::state::Record;

/// What a payload is doing, as `ps` and `status` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Supervisor alive, cgroup not frozen.
    Running,
    /// Supervisor alive, cgroup frozen (`pilotbox suspend`).
    Frozen,
    /// Supervisor alive, cgroup already gone: the run is finishing.
    Ending,
    /// The supervisor is gone (its pid is dead or belongs to another process): `gc` reclaims it.
    Orphaned,
}

/// `status ID` (and one row of `ps`).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub id: String,
    pub state: RunState,
    pub pilot_uid: u32,
    pub account: String,
    pub uid: u32,
    pub gid: u32,
    pub dn: String,
    pub vo: Option<String>,
    pub fqans: Vec<String>,
    pub cgroup: String,
    pub supervisor_pid: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub started: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub cred_not_after: Option<time::OffsetDateTime>,
    /// Host pids in the payload cgroup right now (init included).
    pub pids: Vec<i32>,
    /// Usage so far (hierarchical cgroup counters); null when the cgroup is gone.
    pub usage: Option<Usage>,
    /// Seconds since `started`.
    pub wall_s: i64,
    /// `pilotbox-nosuid` only (absent for `pilotbox`): the account the policy would have
    /// mapped to; `account`/`uid` are the caller's own there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_map_account: Option<String>,
}

/// Status of a record (no authorization: callers filter).
pub fn status_of(rec: &Record) -> Status {
    let alive = rec.supervisor_alive();
    let cg = rec.cgroup.as_deref().and_then(|c| Cgroup::open(c).ok());
    let started = rec.started_at().unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let frozen = cg
        .as_ref()
        .and_then(|c| c.is_frozen().ok())
        .unwrap_or(false);
    // A `pilotbox-nosuid` run without a delegated cgroup records none: its processes are
    // those of its pid namespace, the tree under init (checked by pid and start time).
    let no_cgroup = rec.cgroup.is_none();
    let state = match (alive, &cg) {
        (false, _) => RunState::Orphaned,
        (true, None) if no_cgroup => RunState::Running,
        (true, None) => RunState::Ending,
        (true, Some(_)) if frozen => RunState::Frozen,
        (true, Some(_)) => RunState::Running,
    };
    let pids = match &cg {
        Some(c) => c.pids().unwrap_or_default(),
        None if no_cgroup && alive && init_is_recorded(rec) => super::procs::tree(rec.init_pid),
        None => vec![],
    };
    Status {
        id: rec.id.clone(),
        state,
        pilot_uid: rec.pilot_uid,
        account: rec.account.clone(),
        uid: rec.uid,
        gid: rec.gid,
        dn: rec.dn.clone(),
        vo: rec.vo.clone(),
        fqans: rec.fqans.clone(),
        cgroup: rec.cgroup.clone().unwrap_or_default(),
        supervisor_pid: rec.supervisor_pid,
        started,
        cred_not_after: rec.cred_not_after_at(),
        pids,
        usage: cg.as_ref().and_then(|c| c.usage().ok()),
        wall_s: (time::OffsetDateTime::now_utc() - started).whole_seconds(),
        would_map_account: rec.nosuid.as_ref().map(|n| n.would_map_account.clone()),
    }
}

/// Whether `init_pid` is still the init the record names (`pilotbox-nosuid` records carry its
/// start time; see [`crate::launcher::state::NosuidRun`]).
pub(crate) fn init_is_recorded(rec: &Record) -> bool {
    rec.nosuid
        .as_ref()
        .and_then(|n| n.init_start)
        .is_some_and(|start| super::procs::is_same_process(rec.init_pid, start))
}

/// Every payload the caller may see (root: all), sorted by id.
pub fn list(state_dir: &Path, caller: Caller) -> Result<Vec<Status>, LifecycleError> {
    let (recs, _) = store(state_dir).read_all()?;
    Ok(recs
        .iter()
        .filter(|r| caller.may_control(r))
        .map(status_of)
        .collect())
}

/// Read and authorize the record of `id`.
pub fn load(state_dir: &Path, caller: Caller, id: &str) -> Result<Record, LifecycleError> {
    let rec = store(state_dir).read(id)?;
    caller.authorize(&rec)?;
    Ok(rec)
}

pub fn status(state_dir: &Path, caller: Caller, id: &str) -> Result<Status, LifecycleError> {
    Ok(status_of(&load(state_dir, caller, id)?))
}

/// The payload's cgroup, or [`LifecycleError::Ended`] when it has none (any more).
pub(crate) fn open_cgroup(rec: &Record) -> Result<Cgroup, LifecycleError> {
    let Some(path) = rec.cgroup.as_deref().filter(|c| !c.is_empty()) else {
        return Err(LifecycleError::Ended {
            id: rec.id.clone(),
            cgroup: "(none recorded)".into(),
        });
    };
    Cgroup::open(path).map_err(|e| match e {
        CgroupError::NotFound(_) => LifecycleError::Ended {
            id: rec.id.clone(),
            cgroup: path.to_owned(),
        },
        source => LifecycleError::Cgroup {
            id: rec.id.clone(),
            source,
        },
    })
}

fn cg_err(rec: &Record) -> impl Fn(CgroupError) -> LifecycleError + '_ {
    move |source| LifecycleError::Cgroup {
        id: rec.id.clone(),
        source,
    }
}

/// The audit fields of a lifecycle action on `rec` (both binaries), with `extra` merged in.
pub(crate) fn action_fields(
    rec: &Record,
    caller: Caller,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut v = json!({
        "id": rec.id, "caller_uid": caller.uid, "pilot_uid": rec.pilot_uid,
        "account": rec.account, "uid": rec.uid, "dn": rec.dn, "cgroup": rec.cgroup,
    });
    if let (Some(m), serde_json::Value::Object(x)) = (v.as_object_mut(), extra) {
        m.extend(x);
    }
    v
}

fn audit_action(
    audit: &Audit,
    event: &str,
    rec: &Record,
    caller: Caller,
    extra: serde_json::Value,
) {
    audit_record(audit, event, action_fields(rec, caller, extra));
}

/// Send `sig` to the payload through its cgroup: SIGKILL kills the whole cgroup and returns
/// once it is empty; any other signal goes to every process in it.
pub(crate) fn signal_cgroup(rec: &Record, sig: Signal) -> Result<(), LifecycleError> {
    let cg = open_cgroup(rec)?;
    if sig == Signal::SIGKILL {
        cg.kill().map_err(cg_err(rec))
    } else {
        cg.signal(sig).map_err(cg_err(rec))
    }
}

/// Freeze (`true`) or thaw the payload's cgroup; freezing returns once the kernel reports it
/// frozen.
pub(crate) fn set_frozen(rec: &Record, frozen: bool) -> Result<(), LifecycleError> {
    let cg = open_cgroup(rec)?;
    if frozen {
        cg.freeze().map_err(cg_err(rec))
    } else {
        cg.thaw().map_err(cg_err(rec))
    }
}

/// `kill ID [--signal SIG]`. SIGKILL returns once the cgroup is empty.
pub fn kill(
    state_dir: &Path,
    audit: &Audit,
    caller: Caller,
    id: &str,
    sig: Signal,
) -> Result<(), LifecycleError> {
    let rec = load(state_dir, caller, id)?;
    signal_cgroup(&rec, sig)?;
    audit_action(audit, "kill", &rec, caller, json!({"signal": sig as i32}));
    Ok(())
}

/// `suspend ID`: freeze the whole cgroup; returns once the kernel reports it frozen.
pub fn suspend(
    state_dir: &Path,
    audit: &Audit,
    caller: Caller,
    id: &str,
) -> Result<(), LifecycleError> {
    let rec = load(state_dir, caller, id)?;
    set_frozen(&rec, true)?;
    audit_action(audit, "suspend", &rec, caller, json!({}));
    Ok(())
}

/// `resume ID`: thaw the cgroup.
pub fn resume(
    state_dir: &Path,
    audit: &Audit,
    caller: Caller,
    id: &str,
) -> Result<(), LifecycleError> {
    let rec = load(state_dir, caller, id)?;
    set_frozen(&rec, false)?;
    audit_action(audit, "resume", &rec, caller, json!({}));
    Ok(())
}

/// Parse `--signal`: a name with or without `SIG` (`TERM`, `SIGUSR1`, case-insensitive) or a
/// number.
pub fn parse_signal(s: &str) -> Result<Signal, String> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("{n} is not a signal number"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| format!("unknown signal {s:?} (e.g. TERM, KILL, USR1, 15)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("TERM"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("sigusr1"), Ok(Signal::SIGUSR1));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("999").is_err());
    }
}
