//! Step 1b of every setuid call (docs/launcher-design.md "Two processes"): split into a *front*
//! that the caller keeps and a *worker* the caller cannot touch.
//!
//! Why. A setuid program keeps its caller as real uid, and kill(2) lets a sender signal any
//! process whose real or saved uid equals the sender's real or effective uid
//! (`kill_ok_by_cred`, kernel/signal.c). So the pilot could SIGSTOP its own `pilotbox run`: the
//! wall-time limit and the credential expiry were then not enforced for as long as it liked,
//! and a launch stopped inside the lease transaction held the node-wide SQLite write lock.
//! Nothing a process does to itself blocks SIGSTOP; only the credentials decide.
//!
//! How. Right after `sanitize`, before any policy is read, `fork`:
//! - the **worker** (child) sets all its uids and gids to 0 (`setresuid(0,0,0)`): no process of
//!   the pilot matches its real or saved uid, so none can signal it (SIGSTOP included), ptrace
//!   it (`ptrace_may_access` wants the caller's uid as real, effective and saved uid) or aim
//!   SIGIO/SIGURG at it through F_SETOWN (`sigio_perm` applies the same uid rule). Two kernel
//!   exceptions remain, both handled: SIGCONT within the same session (harmless: it only
//!   undoes a stop nobody else can cause), and the tty's job-control signals, which the kernel
//!   sends to the foreground process group without a permission check — the worker ignores
//!   SIGTSTP/SIGTTIN/SIGTTOU (SIGINT/SIGQUIT/SIGHUP from the tty are handled like before).
//!   Everything that acts *as the caller* switches to the caller's ids explicitly
//!   (`credfile::as_caller`, `lifecycle::caller::as_caller`), and "who called" comes from
//!   [`Caller`] / [`sanitize::caller_ids`], never from getuid(2), which now says 0.
//! - the **front** (parent) keeps the pid the pilot or its batch system started, waits on and
//!   signals. It drops to the caller's ids entirely (real, effective, saved; the caller's
//!   groups), stays non-dumpable (its memory holds the caller's environment only, but it was a
//!   setuid process: no core file of it, as before), relays the signals the supervisor forwards
//!   ([`FORWARDED`]) to the worker as one byte each over a pipe, and exits with the worker's
//!   status. A worker killed by a signal (only root, the OOM killer or the tty can) is a site
//!   error: 123, or gLExec's 202, with one line on stderr — except for a forwarded signal
//!   (the tty's SIGINT before the worker blocked it), which the front dies of too, as before.
//!
//! Double delivery. A signal sent to the whole process group or to every process of the pilot's
//! cgroup (Slurm's proctrack/cgroup) reaches the worker only if the sender is root; the tty's
//! SIGINT/SIGHUP reach both processes when they are in the foreground group. The rule that
//! delivers each signal to the payload exactly once: the front relays only signals sent by a
//! process (`si_code` ≤ 0: SI_USER, SI_QUEUE, SI_TKILL), the worker forwards directly only those
//! the kernel generated (`si_code` > 0, SI_KERNEL for the tty) — see `supervisor::supervise`.
//!
//! The caller gone. EOF on the relay means the front — the caller's own process — died
//! (SIGKILL by the pilot or the batch system, which can always kill it): the worker kills the
//! payload's cgroup, as at the wall-time limit, and finishes normally (usage, `end` audit
//! record, cleanup), where before the SIGKILL took the supervisor and its accounting with it.
//!
//! No split for a root caller (it can signal anything anyway, and nothing in pilotbox needs
//! protecting from root) or without setuid (`pilotbox-nosuid`: it holds no privilege and no
//! node-wide lock, and enforcement it runs as the pilot is the pilot's to break).

use super::sanitize::{self, Caller};
use crate::launch::FORWARDED;
use crate::sys::{self, Forked};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Pid, Uid};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

/// Whether this call needs the split: setuid root, called by someone else.
pub fn needed(caller: &Caller) -> bool {
    caller.euid == 0 && caller.uid != 0
}

/// Split (see the module docs). Returns in the worker only, with `caller.relay` set; the front
/// never returns. `site_error` is what the front exits with for a worker killed by a signal.
pub fn split(caller: &mut Caller, site_error: i32) -> Result<(), Errno> {
    let mut relayed = SigSet::empty();
    for s in FORWARDED {
        relayed.add(s);
    }
    // The front's signalfd set, blocked before the fork so that nothing sent to the front's pid
    // in between is lost or acts by default; SIGPIPE blocked too (a worker gone makes a relay
    // write fail with EPIPE instead of killing the front).
    let mut blocked = relayed;
    blocked.add(Signal::SIGCHLD);
    blocked.add(Signal::SIGPIPE);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None)?;
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    match sys::fork()? {
        Forked::Child => {
            drop(write);
            become_worker()?;
            caller.relay = Some(Arc::new(read));
            Ok(())
        }
        Forked::Parent(worker) => {
            drop(read);
            front(caller, worker, write, blocked, site_error)
        }
    }
}

fn become_worker() -> Result<(), Errno> {
    let (root_g, root_u) = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(root_g, root_g, root_g)?;
    setresuid(root_u, root_u, root_u)?;
    // Unchanged effective ids keep the process non-dumpable; said again, as it is what keeps
    // /proc/<pid>/mem and ptrace away from anyone but root.
    nix::sys::prctl::set_dumpable(false)?;
    sys::ignore_signals(&[Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU]);
    // The mask `sanitize` left (empty): `run` blocks what it supervises itself.
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

/// The front: drop to the caller, relay signals, exit with the worker's status.
fn front(caller: &Caller, worker: Pid, relay: OwnedFd, set: SigSet, site_error: i32) -> ! {
    let die = |what: &str, e: Errno| -> ! {
        // Still root if dropping failed: the worker must not run on without a front.
        let _ = kill(worker, Signal::SIGKILL);
        let _ = waitpid(worker, None);
        eprintln!("pilotbox: {what}: {e}");
        std::process::exit(site_error)
    };
    let groups: Vec<Gid> = caller.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let (g, u) = (Gid::from_raw(caller.gid), Uid::from_raw(caller.uid));
    if let Err(e) = setgroups(&groups)
        .and_then(|_| setresgid(g, g, g))
        .and_then(|_| setresuid(u, u, u))
        .and_then(|_| nix::sys::prctl::set_dumpable(false))
    {
        die("front: dropping privileges", e);
    }
    // A pilot flooding signals while the worker is still setting up fills the pipe: then the
    // extra bytes are dropped (EAGAIN) rather than blocking the front.
    if let Err(e) = fcntl(&relay, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)) {
        die("front: relay pipe", e);
    }
    let sfd = match SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC) {
        Ok(s) => s,
        Err(e) => die("front: signalfd", e),
    };
    // The front waits as long as the payload runs, and batch systems charge the job the RSS of
    // every process: give back the code pages the start touched, as the supervisor does — but
    // only once the run has lasted a second: walking /proc/self/smaps costs CPU the worker
    // needs while it launches, and a short run is over before it would matter.
    let mut release_at = Some(std::time::Instant::now() + std::time::Duration::from_secs(1));
    loop {
        match waitpid(worker, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => std::process::exit(code),
            Ok(WaitStatus::Signaled(_, sig, _)) if FORWARDED.contains(&sig) => {
                // Only the tty (SIGINT/SIGHUP to the foreground group) or root can have sent
                // it, before the worker blocked it (a short subcommand, early setup): die of
                // it too, as the single process did, so that a shell sees an interrupted job
                // (128+N), not a site error. Disposition SIG_DFL since sanitize.
                let _ = kill(nix::unistd::getpid(), sig);
                let mut one = SigSet::empty();
                one.add(sig);
                let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&one), None);
                std::process::exit(site_error)
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                eprintln!(
                    "pilotbox: site_error: the supervisor (pid {worker}) was killed by {sig}"
                );
                std::process::exit(site_error)
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                eprintln!("pilotbox: site_error: waiting for the supervisor: {e}");
                std::process::exit(site_error)
            }
        }
        if let Some(at) = release_at {
            let left = at.saturating_duration_since(std::time::Instant::now());
            let ms = PollTimeout::try_from(left.as_millis() as i32).unwrap_or(PollTimeout::ZERO);
            let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            if matches!(poll(&mut fds, ms), Ok(0)) {
                let _ = sys::release_clean_code_pages();
                release_at = None;
                continue;
            }
        }
        // Blocks until a signal, SIGCHLD included (a SIGCHLD from before the signalfd existed
        // is pending, blocked, and read here).
        let Ok(Some(info)) = sfd.read_signal() else {
            continue;
        };
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if FORWARDED.contains(&sig) && info.ssi_code <= 0 {
            // EAGAIN (full) or EPIPE (worker gone: the next waitpid says how): nothing to do.
            let _ = nix::unistd::write(&relay, &[sig as u8]);
        }
    }
}

/// The caller's real uid and gid: what sanitize saw (the worker's own real ids are 0).
pub fn caller_ids() -> (u32, u32) {
    sanitize::caller_ids().unwrap_or_else(|| {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    })
}
