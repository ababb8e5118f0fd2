//! The engine in one call: [`run`] takes an OCI Spec and returns when the payload is gone, with
//! its outcome and usage, having removed everything it created (cgroup included) on every path.
//! The `pilotbox` launcher and the node shim both call this.

use crate::cgroups::{Cgroup, CgroupError, Usage};
use crate::launch::{self, FilterLoader, LaunchError, LaunchOptions, PayloadCgroup};
use crate::plan::{Plan, PlanError};
use crate::seccomp::{self, CompiledFilter, SeccompError};
use crate::supervisor::{self, Outcome, SuperviseError, SuperviseOptions};
use oci_spec::runtime::{LinuxResources, LinuxSeccomp, Spec};
use policy::Class;
use serde_json::{json, Value};
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub struct RunOptions<'a> {
    pub walltime: Option<Duration>,
    pub grace: Duration,
    pub setup_timeout: Duration,
    /// Where compiled seccomp filters are cached (root-owned, 0700). `None`: compile each time.
    pub seccomp_cache: Option<PathBuf>,
    /// Called once the payload is running (the launcher writes its state record here).
    pub on_started: Option<&'a dyn Fn(&Started)>,
    /// Act before the payload's credential expires (see [`CredExpiry`]).
    pub cred_expiry: Option<CredExpiry<'a>>,
    /// Run without any privilege (`pilotbox-nosuid`): the caller is an ordinary user, so the
    /// user namespace is created first and everything else happens inside it (see
    /// [`crate::launch`]): the Spec must map exactly the caller's uid and gid 1:1 (the only map
    /// an unprivileged process may write, `user_namespaces(7)`), join no namespace and ask for
    /// no idmapped mount; supplementary groups cannot be changed (`setgroups` is denied).
    pub unprivileged: bool,
    /// The front's signal relay, in the root worker of a setuid call (see
    /// [`SuperviseOptions::relay`]).
    pub relay: Option<BorrowedFd<'a>>,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            walltime: None,
            grace: Duration::from_secs(10),
            setup_timeout: Duration::from_secs(30),
            seccomp_cache: None,
            on_started: None,
            cred_expiry: None,
            unprivileged: false,
            relay: None,
        }
    }
}

/// What the launcher learns once the payload runs.
#[derive(Debug, Clone)]
pub struct Started {
    /// Pid 1 of the sandbox, in the caller's pid namespace.
    pub init_pid: i32,
    pub cgroup: Option<String>,
    pub started: SystemTime,
}

pub use crate::supervisor::CredExpiry;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid spec: {0}")]
    Plan(#[from] PlanError),
    #[error("cgroup: {0}")]
    Cgroup(#[from] CgroupError),
    #[error("seccomp: {0}")]
    Seccomp(#[from] SeccompError),
    #[error("launch: {0}")]
    Launch(#[from] LaunchError),
    #[error("supervision: {0}")]
    Supervise(#[from] SuperviseError),
}

impl EngineError {
    /// The exit class docs/design.md assigns: the request's fault or the site's.
    pub fn class(&self) -> Class {
        match self {
            EngineError::Plan(_) => Class::PilotError,
            EngineError::Launch(e) if e.is_request_error() => Class::PilotError,
            EngineError::Cgroup(e) if !e.is_site_error() => Class::Temporary,
            _ => Class::SiteError,
        }
    }
    pub fn class_code(&self) -> i32 {
        self.class().exit_code()
    }
}

pub struct RunResult {
    pub outcome: Outcome,
    pub usage: Option<Usage>,
    pub cgroup: Option<String>,
    /// Removing the cgroup failed (it is left for `gc`); the payload's outcome still stands.
    pub cleanup_error: Option<String>,
}

fn rfc3339(t: SystemTime) -> Value {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    time::OffsetDateTime::from_unix_timestamp_nanos(d.as_nanos() as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(Value::String)
        .unwrap_or(Value::Null)
}

impl RunResult {
    /// The engine's part of the `--report` JSON of docs/design.md (the launcher adds id and user).
    pub fn report(&self) -> Value {
        use crate::supervisor::Status;
        let o = &self.outcome;
        let (outcome, signal) = match o.status {
            _ if o.exec_error.is_some() => ("pilot_error", Value::Null),
            Status::Exited(_) => ("exited", Value::Null),
            Status::Signaled(s) => ("signaled", json!(s)),
        };
        let reason = match (&o.exec_error, o.walltime_exceeded) {
            (Some((_, why)), _) => json!(why),
            (None, true) => json!("wall-time limit exceeded"),
            _ if o.caller_gone => json!("the caller's pilotbox process went away"),
            _ if o.cred_expired => json!("credential expired"),
            _ if self.usage.as_ref().is_some_and(|u| u.oom_killed) => json!("out of memory"),
            _ => Value::Null,
        };
        let usage = self.usage.as_ref().map(|u| {
            json!({
                "wall_s": o.wall.as_secs_f64(),
                "cpu_user_s": u.cpu_user_s,
                "cpu_sys_s": u.cpu_sys_s,
                "mem_peak_bytes": u.mem_peak_bytes,
                "oom_killed": u.oom_killed,
                "pids_peak": u.pids_peak,
            })
        });
        json!({
            "outcome": outcome,
            "reason": reason,
            "exit_code": o.status.exit_code(),
            "signal": signal,
            "cgroup": self.cgroup,
            "started": rfc3339(o.started),
            "ended": rfc3339(o.ended),
            "usage": usage.unwrap_or_else(|| json!({"wall_s": o.wall.as_secs_f64()})),
        })
    }
}

impl PayloadCgroup for Cgroup {
    fn clone_into(&self) -> Option<BorrowedFd<'_>> {
        self.dir_fd()
    }
    fn join_self(&self) -> Result<(), String> {
        Cgroup::join_current_thread(self).map_err(|e| e.to_string())
    }
}

impl FilterLoader for CompiledFilter {
    fn load(&self) -> Result<(), String> {
        CompiledFilter::load(self).map_err(|e| e.to_string())
    }
}

/// Run `spec` to completion.
pub fn run(spec: &Spec, opts: &RunOptions) -> Result<RunResult, EngineError> {
    let mut plan = Plan::from_spec(spec)?;
    if opts.unprivileged {
        check_unprivileged(&plan)?;
        plan.unprivileged = true;
    }
    let filter = match &plan.seccomp {
        Some(profile) => Some(seccomp::compile_cached(
            profile,
            opts.seccomp_cache.as_deref(),
        )?),
        None => None,
    };
    let cgroup = match &plan.cgroup_path {
        Some(p) => Some(Cgroup::create(p, plan.resources.as_ref())?),
        None => None,
    };
    // From here on the cgroup exists: every path below ends by destroying it.
    // pasta, when the plan asks for it: started by `launch` before the payload, stopped (killed
    // and reaped) right after supervision, on every path.
    let relay = crate::network::Relay::new(!opts.unprivileged);
    let supervised = (|| -> Result<Outcome, EngineError> {
        let lopts = LaunchOptions {
            cgroup: cgroup.as_ref().map(|c| c as &dyn PayloadCgroup),
            seccomp: filter.as_ref().map(|f| f as &dyn FilterLoader),
            network: Some(&relay),
            setup_timeout: opts.setup_timeout,
        };
        let running = launch::launch(&plan, &lopts)?;
        if let Some(hook) = opts.on_started {
            hook(&Started {
                init_pid: running.init.as_raw(),
                cgroup: cgroup.as_ref().map(|c| c.path().to_string()),
                started: running.started,
            });
        }
        // From here on this process only supervises: give back the resident launch code
        // (best effort; batch systems charge the pilot the RSS of every supervisor).
        let _ = crate::sys::release_clean_code_pages();
        let kill = || {
            cgroup
                .as_ref()
                .map_or(Ok(()), |c| c.kill().map_err(|e| e.to_string()))
        };
        let sopts = SuperviseOptions {
            walltime: opts.walltime,
            grace: opts.grace,
            kill_all: Some(&kill),
            cred_expiry: opts.cred_expiry.as_ref(),
            relay: opts.relay,
        };
        Ok(supervisor::supervise(running, &sopts)?)
    })();
    relay.stop();
    launch::unblock_signals();
    let usage = cgroup.as_ref().and_then(|c| c.usage().ok());
    let path = cgroup.as_ref().map(|c| c.path().to_string());
    let cleanup_error = cgroup
        .and_then(|c| c.destroy().err())
        .map(|e| e.to_string());
    let outcome = supervised?;
    Ok(RunResult {
        outcome,
        usage,
        cgroup: path,
        cleanup_error,
    })
}

/// What an unprivileged engine cannot do, refused up front instead of failing half-way: joining
/// namespaces (needs privilege over them), idmapped mounts (CAP_SYS_ADMIN in the initial user
/// namespace), and any id map but the caller's own uid/gid 1:1 (`user_namespaces(7)`, "Defining
/// user and group ID mappings": one line mapping the writer's effective id).
fn check_unprivileged(plan: &Plan) -> Result<(), PlanError> {
    let refuse = |value: String, why: &'static str| PlanError::Invalid {
        what: "unprivileged run",
        value,
        why,
    };
    if let Some((_, p)) = plan.joins.first() {
        return Err(refuse(p.display().to_string(), "cannot join a namespace"));
    }
    let idmapped = plan
        .mounts
        .iter()
        .find(|m| matches!(&m.kind, crate::plan::MountKind::Bind { idmap: Some(_), .. }));
    if let Some(m) = idmapped {
        return Err(refuse(
            m.dest.display().to_string(),
            "cannot make an idmapped mount",
        ));
    }
    let (euid, egid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let own = |maps: &[crate::plan::IdMap], id: u32| matches!(maps, [m] if m.container == id && m.host == id && m.size == 1);
    if !own(&plan.uid_mappings, euid) || plan.uid != euid {
        return Err(refuse(
            format!("uid {}", plan.uid),
            "must be the caller's own uid, mapped 1:1",
        ));
    }
    if !own(&plan.gid_mappings, egid) || plan.gid != egid {
        return Err(refuse(
            format!("gid {}", plan.gid),
            "must be the caller's own gid, mapped 1:1",
        ));
    }
    Ok(())
}

/// OCI resources from the launcher's limits: memory in bytes (swap capped to the same total, so
/// no extra swap), pids, CPUs as a CFS quota over a 100 ms period.
pub fn resources(
    memory: Option<i64>,
    pids: Option<i64>,
    cpus: Option<f64>,
) -> Option<LinuxResources> {
    if memory.is_none() && pids.is_none() && cpus.is_none() {
        return None;
    }
    let mut r = json!({});
    if let Some(m) = memory {
        r["memory"] = json!({"limit": m, "swap": m});
    }
    if let Some(p) = pids {
        r["pids"] = json!({"limit": p});
    }
    if let Some(c) = cpus {
        r["cpu"] = json!({"quota": (c * 100_000.0).round() as i64, "period": 100_000u64});
    }
    serde_json::from_value(r).ok()
}

/// Whether the filesystem at `path` supports idmapped mounts (ext4, xfs, btrfs; tmpfs from
/// linux 6.3; ...): tries exactly what the engine would do, on a detached clone that is then
/// dropped. Root only.
pub fn idmap_supported(path: &std::path::Path) -> bool {
    use std::os::fd::AsFd;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let Ok(tree) = crate::sys::open_tree_clone(&c, false) else {
        return false;
    };
    let Ok(ns) = crate::sys::userns_fd("0 0 1\n", "0 0 1\n") else {
        return false;
    };
    crate::sys::mount_setattr_idmap(tree.as_fd(), ns.as_fd(), false).is_ok()
}

/// Where compiled seccomp filters are cached: `/var/lib/pilotbox/seccomp`, created root-only
/// (0700) if missing. `None` when it cannot be created: each launch then compiles (slower, same
/// filter).
pub fn default_seccomp_cache() -> Option<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = PathBuf::from("/var/lib/pilotbox/seccomp");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .ok()?;
    Some(dir)
}

/// pilotbox's default seccomp profile (nested user namespaces allowed, for apptainer).
pub fn default_seccomp() -> LinuxSeccomp {
    seccomp::default_profile(&seccomp::ProfileOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_from_limits() {
        let r = resources(Some(1 << 30), Some(100), Some(1.5)).unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(1 << 30));
        assert_eq!(
            m.swap(),
            Some(1 << 30),
            "memory+swap total equals memory: no swap"
        );
        assert_eq!(r.pids().as_ref().unwrap().limit(), 100);
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(150_000));
        assert!(resources(None, None, None).is_none());
    }
}
