//! `gc`: reclaim what payloads whose supervisor is gone left behind (docs/design.md "Principles":
//! every cgroup a payload took is released or reclaimable by `gc`).
//!
//! A record is reclaimed when its supervisor is provably gone: no process with the recorded
//! pid, or one with another start time (a recycled pid; see [`super::procs`]) — or when its
//! payload outlived its wall-time limit or credential by more than a grace period, whatever its
//! supervisor does (then the supervisor is killed first, [`super::reap`]). Reclaiming: read the
//! cgroup's usage, kill and remove the cgroup, write the `end` audit record the supervisor did
//! not write (with the accounting fields), give a work dir that was handed over by `chown` back
//! to the pilot, remove the state dir. Each record is handled under its lock
//! ([`crate::launcher::state::Store::lock`]) and re-read under it. The pool lease needs nothing
//! here: leases are recycled only when no process of the uid is left, which the cgroup kill
//! guarantees.
//!
//! As root, `gc` also removes, under the configured cgroup root(s), empty payload cgroups that
//! no record claims (a launcher killed between creating the cgroup and writing its record), and
//! state dirs without a record — both only when older than `min_age`, so a launch in progress is
//! never touched — and the probe cgroups of `pilotbox check` runs that are gone
//! (`check-<pid>-<starttime>`, [`super::check`]), whatever their age.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
use nix::sys::stat::Mode;
use serde::Serialize;
use serde_json::json;

use super::caller::Caller;
use super::{audit_record, reap, store, LifecycleError};
use crate::cgroups::{Cgroup, CgroupError};
use crate::launcher::audit::{self, Audit};
use crate::launcher::handover::Transfer;
use crate::launcher::setid;
use crate::launcher::state::{Handover, Record};

/// The default `[cgroup] root` of the launcher (docs/launcher-design.md step 8), used when no
/// policy can be loaded.
pub const DEFAULT_CGROUP_ROOT: &str = "/pilotbox";

/// The cgroup root payloads are placed under: the policy's `[cgroup] root` when a policy is
/// loadable, else [`DEFAULT_CGROUP_ROOT`].
pub fn cgroup_root_of(policy: Option<&policy::config::schema::PolicyFile>) -> String {
    policy.map_or_else(|| DEFAULT_CGROUP_ROOT.into(), |p| p.cgroup.root.clone())
}
/// How long `gc` waits for a record's lock before it reports it and moves on.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Unclaimed cgroups and record-less state dirs younger than this may be a launch in progress.
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct GcOptions {
    pub state_dir: PathBuf,
    /// Cgroup roots to sweep for unclaimed payload cgroups (root callers only).
    pub cgroup_roots: Vec<String>,
    pub min_age: Duration,
    /// How far past its wall-time limit or credential end a payload may run before `gc` ends
    /// it ([`reap::DEFAULT_LIMIT_GRACE`]).
    pub limit_grace: Duration,
    /// Only these payloads (and their state dirs); empty: all.
    pub ids: Vec<String>,
}

/// What `gc` did; printed as JSON by `pilotbox gc --json`.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    /// Ids of records whose supervisor was gone (or killed, see `limits_enforced`) and that
    /// were reclaimed.
    pub reclaimed: Vec<String>,
    /// Ids of payloads ended by `gc` because they outlived a limit while their supervisor
    /// was alive (but not enforcing it).
    pub limits_enforced: Vec<String>,
    /// Unclaimed empty cgroups removed.
    pub cgroups_removed: Vec<String>,
    /// State dirs without a record removed.
    pub stale_dirs_removed: Vec<PathBuf>,
    /// Files given back to the pilot after an ownership hand-over.
    pub files_restored: u64,
    /// Files of reclaimed work dirs whose set-id bits or capabilities were removed.
    pub setid_stripped: u64,
    /// What could not be done (the rest still was).
    pub errors: Vec<String>,
}

pub fn collect(
    opts: &GcOptions,
    audit: &Audit,
    caller: Caller,
) -> Result<GcReport, LifecycleError> {
    let st = store(&opts.state_dir);
    let (recs, bare) = st.read_all()?;
    let wanted = |id: &str| opts.ids.is_empty() || opts.ids.iter().any(|i| i == id);
    let bare: Vec<PathBuf> = bare
        .into_iter()
        .filter(|(id, _)| wanted(id))
        .map(|(id, _)| st.root.join(id))
        .collect();
    let mut report = GcReport::default();
    for listed in recs
        .iter()
        .filter(|r| caller.may_control(r) && wanted(&r.id))
    {
        // Under the record's lock, on the record as it is now: a `renew` may have moved
        // `cred_not_after` since the listing, a launcher may have finished.
        // A holder that does not let go within LOCK_WAIT (a `renew` the pilot stopped while
        // it held the lock) must neither stall `gc` nor shield its payload from it: then `gc`
        // goes on without the lock (a late writer then fails on the removed record, audited).
        let _lock = match st.lock_within(&listed.id, Some(LOCK_WAIT)) {
            Ok(l) => Some(l),
            Err(crate::launcher::state::StateError::NotFound(_)) => continue,
            Err(e) => {
                tracing::warn!("{}: {e}; going on without the lock", listed.id);
                None
            }
        };
        let Ok(rec) = st.read(&listed.id) else {
            continue;
        };
        let outcome = if rec.supervisor_alive() {
            let Some(limit) =
                reap::overdue(&rec, time::OffsetDateTime::now_utc(), opts.limit_grace)
            else {
                continue;
            };
            if let Err(e) = reap::kill_supervisor(&rec) {
                // A supervisor that cannot be killed (frozen in a v1 freezer: SIGKILL waits for
                // the thaw) must not keep the payload alive: the limit is enforced on the
                // cgroup; the record stays for a later `gc`.
                let payload = reclaim_cgroup(&rec).err().map(|e| e.to_string());
                audit_record(
                    audit,
                    "gc_limit",
                    json!({"id": rec.id, "caller_uid": caller.uid,
                    "pilot_uid": rec.pilot_uid, "limit": limit, "supervisor_pid": rec.supervisor_pid,
                    "supervisor_killed": false, "payload_kill_error": payload}),
                );
                report.limits_enforced.push(rec.id.clone());
                report.errors.push(format!("{}: {e}", rec.id));
                continue;
            }
            audit_record(
                audit,
                "gc_limit",
                json!({"id": rec.id, "caller_uid": caller.uid,
                "pilot_uid": rec.pilot_uid, "limit": limit, "supervisor_pid": rec.supervisor_pid,
                "supervisor_killed": true, "walltime_s": rec.walltime_s, "started": rec.started,
                "cred_not_after": rec.cred_not_after}),
            );
            report.limits_enforced.push(rec.id.clone());
            limit
        } else {
            "supervisor_lost"
        };
        match reclaim(&st, rec.clone(), outcome, audit, caller, &mut report) {
            Ok(()) => {
                report.reclaimed.push(rec.id.clone());
                audit_record(audit, "gc", gc_fields(&rec, caller.uid));
            }
            Err(e) => report.errors.push(format!("{}: {e}", rec.id)),
        }
    }
    if !caller.is_root() {
        return Ok(report);
    }
    for dir in bare {
        if older_than(&dir, opts.min_age) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => report.stale_dirs_removed.push(dir),
                Err(e) => report.errors.push(format!("{}: {e}", dir.display())),
            }
        }
    }
    for root in &opts.cgroup_roots {
        sweep_cgroups(root, &recs, opts.min_age, audit, &mut report);
    }
    Ok(report)
}

/// Reclaim one run whose supervisor is gone (the caller holds the record's lock). The `end`
/// record is written once the cgroup is gone (its usage read first) and marked in the record,
/// so a retry after a later step failed does not write a second one.
fn reclaim(
    st: &crate::launcher::state::Store,
    mut rec: Record,
    outcome: &str,
    audit: &Audit,
    caller: Caller,
    report: &mut GcReport,
) -> Result<(), LifecycleError> {
    let usage = reap::usage_of(&rec);
    let now = time::OffsetDateTime::now_utc();
    let killed = reclaim_cgroup(&rec);
    // Only a run that got as far as its cgroup (the launcher records it before the `start`
    // audit record) has a payload to account for; one killed during its setup (e.g. during the
    // work-dir hand-over) never started one.
    if rec.end_audited.is_none() && rec.cgroup.is_some() {
        let problems = killed.as_ref().err().map(|e| e.to_string());
        let usage = reap::usage_json(&rec, usage.as_ref(), now);
        audit_record(
            audit,
            "end",
            reap::end_fields(&rec, outcome, usage, caller.uid, problems),
        );
        rec.end_audited = Some(audit::now_rfc3339());
        st.write(&rec)?;
    }
    killed?;
    if let Some(w) = &rec.workdir {
        // Only a chown hand-over needs the record kept for another try: otherwise the files
        // are the pilot's already, and a work dir that is gone or changed hands is reported.
        match clean_workdir(w, &rec) {
            Ok(c) => {
                report.files_restored += c.handback.chowned + c.handback.replaced;
                report.setid_stripped += c.setid_stripped + c.caps_removed;
            }
            Err(e) if rec.workdir_handover == Handover::Chown => return Err(e),
            Err(e) => report.errors.push(format!("{}: {e}", rec.id)),
        }
    }
    Ok(st.remove(&rec.id)?)
}

/// Kill what is left in the record's cgroup and remove it (nothing to do when it has none or
/// it is already gone). Shared with `pilotbox-nosuid gc`.
pub(crate) fn reclaim_cgroup(rec: &Record) -> Result<(), LifecycleError> {
    let path = rec.cgroup.as_deref().unwrap_or("");
    match Cgroup::open(path) {
        _ if path.is_empty() => Ok(()),
        Ok(cg) => cg.destroy().map_err(|source| LifecycleError::Cgroup {
            id: rec.id.clone(),
            source,
        }),
        Err(CgroupError::NotFound(_)) => Ok(()),
        Err(source) => Err(LifecycleError::Cgroup {
            id: rec.id.clone(),
            source,
        }),
    }
}

/// After a run whose supervisor died: strip set-id bits and file capabilities from the work
/// dir ([`setid::after_run`], issue 11) and, after a chown hand-over, give the files the pool
/// uid owns back to the pilot (`pilot_uid`, and the record's `pilot_gid`) in the same
/// fd-relative walk (never following a symlink, no depth limit; multi-linked entries of the
/// pool uid are replaced by pilot-owned copies, see [`crate::launcher::handover`]).
///
/// The work dir itself is opened with `openat2(RESOLVE_NO_SYMLINKS)` (openat2(2)): a path that
/// now goes through a symlink anywhere — the pilot controls the tree — is refused, not followed.
/// On kernels without openat2 (< 5.6) the path must canonicalize to itself and the last
/// component is opened `O_NOFOLLOW`. A work dir the pilot does not own is left alone, except
/// after a chown hand-over, where it may also be the pool uid's. Owned by the pilot is also what
/// a launcher killed during the forward hand-over leaves (it wrote the record first, then
/// chowns the top directory, then the tree below: `launcher::prepare`); giving the pool uid's
/// files in the pilot's own directory back to the pilot is then exactly the undo.
fn clean_workdir(workdir: &Path, rec: &Record) -> Result<setid::Cleanup, LifecycleError> {
    let refuse = |reason: String| LifecycleError::Site {
        what: "work dir clean-up",
        reason: format!("{}: {reason}", workdir.display()),
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd = match openat2(AT_FDCWD, workdir, how) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(setid::Cleanup::default()),
        Err(Errno::ENOSYS) => {
            match std::fs::canonicalize(workdir) {
                Ok(real) if real == workdir => {}
                Ok(real) => {
                    return Err(refuse(format!(
                        "now resolves to {} (not touched)",
                        real.display()
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(setid::Cleanup::default())
                }
                Err(e) => return Err(refuse(e.to_string())),
            }
            nix::fcntl::open(workdir, flags, Mode::empty()).map_err(|e| refuse(e.to_string()))?
        }
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            return Err(refuse(
                "the path now goes through a symlink or is not a directory (not touched)".into(),
            ))
        }
        Err(e) => return Err(refuse(e.to_string())),
    };
    let owner = nix::sys::stat::fstat(&fd)
        .map_err(|e| refuse(e.to_string()))?
        .st_uid;
    let chowned = rec.workdir_handover == Handover::Chown;
    if owner != rec.pilot_uid && !(chowned && owner == rec.uid) {
        return Err(refuse(format!(
            "owned by uid {owner}, neither the pilot {} nor (after a chown hand-over) the pool uid {}",
            rec.pilot_uid, rec.uid
        )));
    }
    let what = setid::AfterRun {
        owners: vec![rec.pilot_uid, rec.uid],
        back: chowned.then_some(Transfer {
            from_uid: rec.uid,
            to_uid: rec.pilot_uid,
            to_gid: rec.pilot_gid,
            skip_multilinked: true,
        }),
        // Without privilege (a pilot's own `gc`) removing capabilities fails: counted, not fatal.
        caps: nix::unistd::geteuid().is_root(),
    };
    let c = setid::after_run(&fd, &what).map_err(|e| refuse(e.to_string()))?;
    if c.errors > 0 {
        tracing::warn!(
            "{}: {} entries not given back to uid {} or not checked for set-id bits",
            workdir.display(),
            c.errors,
            rec.pilot_uid
        );
    }
    Ok(c)
}

/// The `gc` audit record of a reclaimed run (both binaries).
pub(crate) fn gc_fields(rec: &Record, caller_uid: u32) -> serde_json::Value {
    json!({"id": rec.id, "caller_uid": caller_uid, "pilot_uid": rec.pilot_uid,
           "account": rec.account, "uid": rec.uid, "cgroup": rec.cgroup})
}

/// Whether `p` was last modified at least `age` ago (false when it cannot be told).
pub(crate) fn older_than(p: &Path, age: Duration) -> bool {
    std::fs::symlink_metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|d| d >= age)
}

/// Is `path` (a cgroup under a root) claimed by a record? Records may use the v1
/// per-controller form `ctl=/path;ctl=/path`.
fn claimed(path: &str, recs: &[Record]) -> bool {
    let within = |p: &str| p == path || p.starts_with(&format!("{path}/"));
    recs.iter().any(|r| {
        r.cgroup
            .as_deref()
            .unwrap_or("")
            .split(';')
            .map(|part| part.split_once('=').map_or(part, |(_, p)| p))
            .any(within)
    })
}

fn sweep_cgroups(
    root: &str,
    recs: &[Record],
    min_age: Duration,
    audit: &Audit,
    report: &mut GcReport,
) {
    let Ok(root_cg) = Cgroup::open(root) else {
        return;
    };
    let mut names: Vec<String> = Vec::new();
    for d in root_cg.dirs() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    names.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    for name in names {
        let path = format!("{}/{name}", root.trim_end_matches('/'));
        if claimed(&path, recs) {
            continue;
        }
        let Ok(cg) = Cgroup::open(&path) else {
            continue;
        };
        // A probe of a `pilotbox check` that is gone (SIGKILLed mid-probe): its name says
        // which process made it, so it goes at once, processes and all.
        let dead_probe = super::check::probe_owner(&name)
            .is_some_and(|(pid, start)| !super::procs::is_same_process(pid, start));
        let young = cg.dirs().iter().any(|d| !older_than(d, min_age));
        if !dead_probe && (young || !cg.pids().map(|p| p.is_empty()).unwrap_or(false)) {
            continue;
        }
        match cg.destroy() {
            Ok(()) => {
                audit_record(audit, "gc_cgroup", json!({"cgroup": path}));
                report.cgroups_removed.push(path);
            }
            Err(e) => report.errors.push(format!("{path}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_cover_sub_cgroups_and_v1_per_controller_paths() {
        let mut r: Record =
            serde_json::from_value(json!({"id": "p", "pilot_uid": 1, "pilot_gid": 1,
            "supervisor_pid": 1, "supervisor_start": 1, "init_pid": 1, "account": "a", "uid": 2,
            "gid": 2, "groups": [], "dn": "/CN=A", "issuer_dn": "/CN=CA", "vo": null, "fqans": [],
            "pool": null, "lease_key": null, "cgroup": "/pilotbox/p-1", "workdir": null,
            "workdir_handover": "none", "started": "2026-01-01T00:00:00Z", "cred_not_after": null}))
            .unwrap();
        let recs = vec![r.clone()];
        assert!(claimed("/pilotbox/p-1", &recs));
        assert!(!claimed("/pilotbox/p-10", &recs));
        r.cgroup = Some("/pilotbox/p-2/payload".into());
        assert!(claimed("/pilotbox/p-2", &[r.clone()]));
        r.cgroup = Some("memory=/slurm/x/p-3;pids=/pilotbox/p-3".into());
        assert!(claimed("/pilotbox/p-3", &[r]));
    }
}
