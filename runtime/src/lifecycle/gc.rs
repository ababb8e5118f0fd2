//! `gc`: reclaim what payloads whose supervisor is gone left behind (DESIGN.md "Principles":
//! every cgroup a payload took is released or reclaimable by `gc`).
//!
//! A record is reclaimed only when its supervisor is provably gone: no process with the
//! recorded pid, or one with another start time (a recycled pid; see [`super::procs`]). Then:
//! kill and remove its cgroup, give a work dir that was handed over by `chown` back to the
//! pilot, remove the state dir. The pool lease needs nothing here: leases are recycled only when
//! no process of the uid is left, which the cgroup kill guarantees.
//!
//! As root, `gc` also removes, under the configured cgroup root(s), empty payload cgroups that
//! no record claims (a launcher killed between creating the cgroup and writing its record), and
//! state dirs without a record — both only when older than `min_age`, so a launch in progress is
//! never touched.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::json;

use super::caller::Caller;
use super::procs;
use super::record::{self, StateRecord};
use super::{audit, LifecycleError};
use crate::cgroups::{Cgroup, CgroupError};

/// The default `[cgroup] root` of the launcher (docs/launcher-design.md step 8).
pub const DEFAULT_CGROUP_ROOT: &str = "/pilotbox";
/// Unclaimed cgroups and record-less state dirs younger than this may be a launch in progress.
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct GcOptions {
    pub state_dir: PathBuf,
    /// Cgroup roots to sweep for unclaimed payload cgroups (root callers only).
    pub cgroup_roots: Vec<String>,
    pub min_age: Duration,
}

/// What `gc` did; printed as JSON by `pilotbox gc --json`.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    /// Ids of records whose supervisor was gone and that were reclaimed.
    pub reclaimed: Vec<String>,
    /// Unclaimed empty cgroups removed.
    pub cgroups_removed: Vec<String>,
    /// State dirs without a record removed.
    pub stale_dirs_removed: Vec<PathBuf>,
    /// Files given back to the pilot after an ownership hand-over.
    pub files_restored: u64,
    /// What could not be done (the rest still was).
    pub errors: Vec<String>,
}

pub fn collect(opts: &GcOptions, caller: Caller) -> Result<GcReport, LifecycleError> {
    let (recs, bare) = record::read_all(&opts.state_dir)?;
    let mut report = GcReport::default();
    for rec in recs.iter().filter(|r| caller.may_control(r)) {
        if procs::is_same_process(rec.supervisor_pid, rec.supervisor_start) {
            continue;
        }
        match reclaim(&opts.state_dir, rec, &mut report) {
            Ok(()) => {
                report.reclaimed.push(rec.id.clone());
                let _ = audit::record(
                    "gc",
                    json!({"id": rec.id, "caller_uid": caller.uid, "pilot_uid": rec.pilot_uid,
                           "account": rec.account, "uid": rec.uid, "cgroup": rec.cgroup}),
                );
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
        sweep_cgroups(root, &recs, opts.min_age, &mut report);
    }
    Ok(report)
}

fn reclaim(
    state_dir: &Path,
    rec: &StateRecord,
    report: &mut GcReport,
) -> Result<(), LifecycleError> {
    match Cgroup::open(&rec.cgroup) {
        _ if rec.cgroup.is_empty() => {}
        Ok(cg) => cg.destroy().map_err(|source| LifecycleError::Cgroup {
            id: rec.id.clone(),
            source,
        })?,
        Err(CgroupError::NotFound(_)) => {}
        Err(source) => {
            return Err(LifecycleError::Cgroup {
                id: rec.id.clone(),
                source,
            })
        }
    }
    if rec.workdir_handover.as_deref() == Some("chown") {
        if let Some(w) = &rec.workdir {
            report.files_restored += undo_chown(w, rec)?;
        }
    }
    record::remove(state_dir, &rec.id)
}

/// Give everything under `workdir` that the pool uid owns back to the pilot (and the pool gid
/// back to the pilot's primary group). Refuses a work dir whose path now resolves elsewhere
/// (a swapped-in symlink) or that the pool uid no longer owns; never follows symlinks and never
/// leaves the work dir's filesystem. Residual risk: a pilot racing `gc` by renaming a directory
/// of its own path between the check and the walk (the walk is path-based).
fn undo_chown(workdir: &Path, rec: &StateRecord) -> Result<u64, LifecycleError> {
    let refuse = |reason: String| LifecycleError::Site {
        what: "work dir hand-over undo",
        reason: format!("{}: {reason}", workdir.display()),
    };
    let real = match std::fs::canonicalize(workdir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(refuse(e.to_string())),
    };
    if real != workdir {
        return Err(refuse(format!(
            "now resolves to {} (not touched)",
            real.display()
        )));
    }
    let md = std::fs::symlink_metadata(workdir).map_err(|e| refuse(e.to_string()))?;
    if md.uid() != rec.uid {
        return Err(refuse(format!(
            "owned by uid {}, not the pool uid {}",
            md.uid(),
            rec.uid
        )));
    }
    let pilot_gid = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(rec.pilot_uid))
        .ok()
        .flatten()
        .map(|u| u.gid.as_raw())
        .unwrap_or(rec.pilot_uid);
    let mut n = 0;
    let mut stack = vec![workdir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.dev() != md_dev(workdir) {
            continue;
        }
        if md.uid() == rec.uid {
            let gid = (md.gid() == rec.gid).then_some(pilot_gid);
            std::os::unix::fs::lchown(&p, Some(rec.pilot_uid), gid)
                .map_err(|e| refuse(e.to_string()))?;
            n += 1;
        }
        if md.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    Ok(n)
}

fn md_dev(p: &Path) -> u64 {
    std::fs::symlink_metadata(p).map(|m| m.dev()).unwrap_or(0)
}

fn older_than(p: &Path, age: Duration) -> bool {
    std::fs::symlink_metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|d| d >= age)
}

/// Is `path` (a cgroup under a root) claimed by a record? Records may use the v1
/// per-controller form `ctl=/path;ctl=/path`.
fn claimed(path: &str, recs: &[StateRecord]) -> bool {
    let within = |p: &str| p == path || p.starts_with(&format!("{path}/"));
    recs.iter().any(|r| {
        r.cgroup
            .split(';')
            .map(|part| part.split_once('=').map_or(part, |(_, p)| p))
            .any(within)
    })
}

fn sweep_cgroups(root: &str, recs: &[StateRecord], min_age: Duration, report: &mut GcReport) {
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
        let young = cg.dirs().iter().any(|d| !older_than(d, min_age));
        if young || !cg.pids().map(|p| p.is_empty()).unwrap_or(false) {
            continue;
        }
        match cg.destroy() {
            Ok(()) => {
                let _ = audit::record("gc_cgroup", json!({"cgroup": path}));
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
        let mut r: StateRecord = serde_json::from_value(json!({"id": "p", "pilot_uid": 1,
            "supervisor_pid": 1, "supervisor_start": 1, "init_pid": 1, "account": "a", "uid": 2,
            "gid": 2, "dn": "/CN=A", "issuer_dn": "/CN=CA", "cgroup": "/pilotbox/p-1",
            "started": "2026-01-01T00:00:00Z", "cred_not_after": "2026-01-02T00:00:00Z"}))
        .unwrap();
        let recs = vec![r.clone()];
        assert!(claimed("/pilotbox/p-1", &recs));
        assert!(!claimed("/pilotbox/p-10", &recs));
        r.cgroup = "/pilotbox/p-2/payload".into();
        assert!(claimed("/pilotbox/p-2", &[r.clone()]));
        r.cgroup = "memory=/slurm/x/p-3;pids=/pilotbox/p-3".into();
        assert!(claimed("/pilotbox/p-3", &[r]));
    }
}
