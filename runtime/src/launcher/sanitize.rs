//! Step 1 of the launch (docs/launcher-design.md): make the process state the caller handed us
//! harmless before anything else runs. A setuid program inherits everything from an untrusted
//! caller — environment, open fds, signal dispositions and mask, umask, rlimits, cwd — and
//! every one of them has been used to attack setuid programs (LD_* and IFS tricks, fd 0-2
//! games, SIG_IGN'd SIGPIPE/SIGTERM, RLIMIT_FSIZE truncating a log, a core dump of a root
//! process). The kernel's secure-execution mode (`AT_SECURE`, ld.so(8)) already makes the
//! dynamic loader ignore LD_PRELOAD/LD_LIBRARY_PATH/MALLOC_*; this module covers the rest, as
//! sudo and gLExec did:
//!
//! - remember the caller's real uid/gid/groups, pid, cwd and environment, then clear the
//!   environment (callers get values only through [`Caller::env`]);
//! - reset every signal disposition to default and unblock all signals;
//! - close every fd ≥ 3;
//! - `umask 077`; `PR_SET_DUMPABLE 0`; `RLIMIT_CORE 0`; the resources a caller could lower to
//!   make a write, an allocation or our CPU time fail half-way (NOFILE, FSIZE, AS, DATA, STACK,
//!   CPU) raised — see [`raise_limits`]; SIGXFSZ ignored, so that a file-size limit turns a
//!   write into `EFBIG` instead of killing us in the middle of an audit line (setrlimit(2));
//! - effective gid 0 and no supplementary groups when setuid root (files we create are
//!   root's, not group-owned by the pilot);
//! - `chdir("/")`.

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{getgroups, getresgid, getresuid, setegid, setgroups, Gid};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

#[derive(Debug, thiserror::Error)]
pub enum SanitizeError {
    #[error("cannot sanitize the process: {step}: {errno}")]
    Sys {
        step: &'static str,
        errno: nix::errno::Errno,
    },
    /// A limit pilotbox needs that the caller lowered and we may not raise: the caller's to fix.
    #[error("{resource} hard limit {hard} set by the caller, and pilotbox may not raise it (no CAP_SYS_RESOURCE): {why}; run it with `ulimit -H{flag} unlimited`")]
    Limit {
        resource: &'static str,
        flag: char,
        hard: u64,
        why: &'static str,
    },
}

impl SanitizeError {
    /// 122 for a limit the caller set, 123 when the kernel refused a step.
    pub fn class(&self) -> policy::Class {
        match self {
            SanitizeError::Limit { .. } => policy::Class::PilotError,
            SanitizeError::Sys { .. } => policy::Class::SiteError,
        }
    }
}

fn sys(step: &'static str) -> impl Fn(nix::errno::Errno) -> SanitizeError {
    move |errno| SanitizeError::Sys { step, errno }
}

/// Who called us, as the kernel says (real ids), and what they handed us.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups of the caller (setuid does not change them).
    pub groups: Vec<u32>,
    pub euid: u32,
    pub pid: i32,
    /// The caller's working directory (relative paths on the command line are relative to it).
    pub cwd: Option<PathBuf>,
    /// The caller's environment, removed from the process. Only names the policy allows, or
    /// `X509_USER_PROXY`, are ever looked at.
    pub env: Vec<(OsString, OsString)>,
    /// The caller's resource limits (soft, hard) for the resources raised for pilotbox itself:
    /// the payload gets them back (a batch system's limits must reach the job).
    pub rlimits: Vec<(Resource, u64, u64)>,
    /// In the root worker of a setuid call (`split`): the read end of the front's signal relay.
    /// `None` when there is no front (root caller, `pilotbox-nosuid`).
    pub relay: Option<Arc<OwnedFd>>,
}

/// The caller's real uid and gid as sanitize found them. After `split` the worker's real ids
/// are 0 (so that the pilot cannot signal it): code that asks "who called" without a [`Caller`]
/// at hand (`lifecycle::caller::Caller::current`, root-only checks) must ask this, never
/// getuid(2).
static CALLER_IDS: OnceLock<(u32, u32)> = OnceLock::new();

/// The real (uid, gid) of the caller, if [`sanitize`] ran in this process.
pub fn caller_ids() -> Option<(u32, u32)> {
    CALLER_IDS.get().copied()
}

impl Caller {
    /// The caller's value of `name`, if it was valid UTF-8.
    pub fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.to_str())
            .map(String::from)
    }

    /// `path` made absolute against the caller's cwd (it is opened as the caller anyway).
    pub fn absolute(&self, path: &std::path::Path) -> PathBuf {
        match (&self.cwd, path.is_absolute()) {
            (Some(cwd), false) => cwd.join(path),
            _ => path.to_path_buf(),
        }
    }

    /// The caller's UTF-8 environment pairs, for the policy's `[env] allow` filter.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v.to_str()?.to_string())))
            .collect()
    }
}

/// Resources raised for pilotbox itself, and to what: unlimited, except the number of open
/// files (`RLIM_INFINITY` is above `fs.nr_open`, which setrlimit refuses), for which a floor
/// well above what a launch opens (~30 fds) is enough. NPROC is not here: the root worker's
/// real uid is 0, which `copy_process` exempts from RLIMIT_NPROC (INIT_USER), and the payload's
/// processes count against the pool account, not us. CORE is set to 0 separately.
const RAISED: [(Resource, u64); 6] = [
    (Resource::RLIMIT_NOFILE, 4096),
    (Resource::RLIMIT_FSIZE, RLIM_INFINITY),
    (Resource::RLIMIT_AS, RLIM_INFINITY),
    (Resource::RLIMIT_DATA, RLIM_INFINITY),
    (Resource::RLIMIT_STACK, RLIM_INFINITY),
    (Resource::RLIMIT_CPU, RLIM_INFINITY),
];

/// Raise the [`RAISED`] limits; the caller's original values, for the payload.
///
/// Privileged, soft *and hard* limits go to the target: a caller (`prlimit --fsize=N:N`, a
/// batch system's `ulimit -H`) can lower its hard limits, and raising a hard limit needs
/// CAP_SYS_RESOURCE (setrlimit(2)) — which a setuid-root process has, but not every root: on a
/// host whose bounding set lacks it (some containers, this project's dev host) the soft limit
/// is raised to the hard one only. Then a limit pilotbox cannot live with is refused before
/// anything is written: a finite RLIMIT_FSIZE (the audit log, state records and the lease store
/// grow past any bound; a write cut at the limit leaves half a JSON line). Unprivileged
/// (`pilotbox-nosuid`), soft limits are raised to the hard ones, as before.
fn raise_limits(privileged: bool) -> Result<Vec<(Resource, u64, u64)>, SanitizeError> {
    let mut original = Vec::with_capacity(RAISED.len());
    for (r, target) in RAISED {
        let (soft, hard) = getrlimit(r).map_err(sys("getrlimit"))?;
        original.push((r, soft, hard));
        let raised = privileged
            && hard != RLIM_INFINITY
            && hard < target
            && setrlimit(r, target, target).is_ok();
        if !raised && soft < hard {
            setrlimit(r, hard, hard).map_err(sys("setrlimit"))?;
        }
    }
    if privileged {
        let (soft, hard) = getrlimit(Resource::RLIMIT_FSIZE).map_err(sys("getrlimit"))?;
        if soft != RLIM_INFINITY {
            return Err(SanitizeError::Limit {
                resource: "RLIMIT_FSIZE",
                flag: 'f',
                hard,
                why: "pilotbox appends to its audit log and writes state records and the lease store, which a file-size limit would cut half-way",
            });
        }
    }
    Ok(original)
}

/// Sanitize the process. Must run first in `main`, while the process is single-threaded
/// (clearing the environment is only sound then).
pub fn sanitize() -> Result<Caller, SanitizeError> {
    let uids = getresuid().map_err(sys("getresuid"))?;
    let gids = getresgid().map_err(sys("getresgid"))?;
    let groups = getgroups()
        .map_err(sys("getgroups"))?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    let cwd = std::env::current_dir().ok();

    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (k, _) in &env {
        // Single-threaded here (first thing in main): no other thread can read the environment.
        std::env::remove_var(k);
    }

    crate::sys::reset_signal_dispositions();
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(sys("sigprocmask"))?;
    close_fds_from(3).map_err(sys("close_range"))?;
    umask(Mode::from_bits_truncate(0o077));
    nix::sys::prctl::set_dumpable(false).map_err(sys("PR_SET_DUMPABLE"))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(sys("RLIMIT_CORE"))?;
    // Before anything could write a file: with SIGXFSZ at its default a write past
    // RLIMIT_FSIZE kills the process (setrlimit(2)); ignored, the write fails with EFBIG and
    // the error is reported. The payload gets SIG_DFL back (`init` resets every disposition
    // before execve; an ignored signal would otherwise stay ignored across it, signal(7)).
    crate::sys::ignore_signals(&[Signal::SIGXFSZ]);
    let rlimits = raise_limits(uids.effective.is_root())?;
    if uids.effective.is_root() {
        // setuid root changes the effective uid only: the caller's gid and groups stay, and
        // every file we create (state records, the lease store and its WAL, which SQLite
        // chowns to the store's owner) would be group-owned by the pilot. Effective gid 0 and
        // no supplementary groups; the real ids keep saying who called (`Caller`), and
        // `credfile` switches to the caller's ids explicitly whenever it acts as the caller.
        setgroups(&[]).map_err(sys("setgroups"))?;
        setegid(Gid::from_raw(0)).map_err(sys("setegid"))?;
    }
    std::env::set_current_dir("/").map_err(|_| SanitizeError::Sys {
        step: "chdir /",
        errno: nix::errno::Errno::last(),
    })?;
    let _ = CALLER_IDS.set((uids.real.as_raw(), gids.real.as_raw()));
    Ok(Caller {
        uid: uids.real.as_raw(),
        gid: gids.real.as_raw(),
        groups,
        euid: uids.effective.as_raw(),
        pid: std::process::id() as i32,
        cwd,
        env,
        rlimits,
        relay: None,
    })
}

/// `close_range(first, ~0, 0)` (Linux 5.9): close every inherited fd from `first` on.
fn close_fds_from(first: u32) -> Result<(), nix::errno::Errno> {
    // SAFETY: close_range takes plain integers. Closing fds ≥ 3 at the start of main cannot
    // invalidate any Rust object: none has been created that owns one (std opens none before
    // main on Linux).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if ret == -1 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(())
    }
}
