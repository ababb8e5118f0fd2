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
//! - `umask 077`; `PR_SET_DUMPABLE 0`; `RLIMIT_CORE 0`; soft limits raised to the hard limits
//!   for the resources a caller could lower to make a write, an allocation or our CPU time
//!   fail half-way (NOFILE, FSIZE, AS, DATA, STACK, CPU);
//! - effective gid 0 and no supplementary groups when setuid root (files we create are
//!   root's, not group-owned by the pilot);
//! - `chdir("/")`.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{getgroups, getresgid, getresuid, setegid, setgroups, Gid};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SanitizeError {
    #[error("{step}: {errno}")]
    Sys {
        step: &'static str,
        errno: nix::errno::Errno,
    },
}

fn sys(step: &'static str) -> impl Fn(nix::errno::Errno) -> SanitizeError {
    move |errno| SanitizeError::Sys { step, errno }
}

/// Who called us, as the kernel says (real ids), and what they handed us.
#[derive(Debug, Clone)]
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

/// Resources whose soft limit is raised to the hard limit (see module docs).
const RAISED: [Resource; 6] = [
    Resource::RLIMIT_NOFILE,
    Resource::RLIMIT_FSIZE,
    Resource::RLIMIT_AS,
    Resource::RLIMIT_DATA,
    Resource::RLIMIT_STACK,
    Resource::RLIMIT_CPU,
];

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
    for r in RAISED {
        let (soft, hard) = getrlimit(r).map_err(sys("getrlimit"))?;
        if soft < hard {
            setrlimit(r, hard, hard).map_err(sys("setrlimit"))?;
        }
    }
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
    Ok(Caller {
        uid: uids.real.as_raw(),
        gid: gids.real.as_raw(),
        groups,
        euid: uids.effective.as_raw(),
        pid: std::process::id() as i32,
        cwd,
        env,
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
