//! Pid 1 of the sandbox and the payload's last steps before execve.
//!
//! The payload is never pid 1 (docs/design.md): a pid-namespace init gets no default signal actions
//! (the kernel drops signals it has no handler for), so a payload written for a normal process
//! would ignore SIGTERM, and orphans would pile up as zombies. Like tini, this init forks the
//! payload, reaps every child, forwards the supervisor's signals to the payload, and reports the
//! payload's status over the channel. When it exits, the kernel kills whatever is left in the
//! namespace.

use crate::channel::{Channel, Msg};
use crate::launch::{supervised_signals, FilterLoader, FORWARDED};
use crate::plan::Plan;
use crate::sys::{self, Forked};
use crate::syscall::Linux;
use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execve, Pid};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Init: fork the payload, then loop on signals until it is gone.
pub fn run(plan: &Plan, seccomp: Option<&dyn FilterLoader>, chan: &Channel) -> ! {
    let payload = match sys::fork() {
        Err(e) => {
            let _ = chan.send(&Msg::ExecFailed(e as i32, format!("fork payload: {e}")));
            sys::exit_now(1)
        }
        Ok(Forked::Child) => payload(plan, seccomp, chan),
        Ok(Forked::Parent(pid)) => pid,
    };
    // Only now (the payload needed our CAP_SETUID/SETGID/SETPCAP to switch identity): keep
    // nothing but CAP_KILL, to forward signals to a payload running under another uid.
    // Defence in depth: init already runs under an unmapped uid the payload cannot ptrace;
    // non-dumpable also keeps its memory (a copy of the supervisor's) out of reach.
    let _ = nix::sys::prctl::set_dumpable(false);
    if let Err(e) = crate::identity::become_init() {
        let _ = kill(payload, Signal::SIGKILL);
        let _ = chan.send(&Msg::ExecFailed(libc::EPERM, format!("init: {e}")));
        sys::exit_now(1);
    }
    // Signals stay blocked (inherited from the supervisor) and are taken synchronously here.
    let set = supervised_signals();
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(status) = reap(payload) {
                    let _ = chan.send(&status);
                    sys::exit_now(0);
                }
            }
            Ok(sig) if FORWARDED.contains(&sig) => {
                let _ = kill(payload, sig);
            }
            _ => {}
        }
    }
}

/// Reap every exited child; the payload's status once it is among them.
fn reap(payload: Pid) -> Option<Msg> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == payload => result = Some(Msg::Exited(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == payload => {
                result = Some(Msg::Signaled(sig as i32))
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return result,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return result,
        }
    }
}

/// The payload child: become the payload user, lock everything down, execve. Never returns;
/// on failure it reports why on the channel (closed by execve on success) and exits 127.
fn payload(plan: &Plan, seccomp: Option<&dyn FilterLoader>, chan: &Channel) -> ! {
    let fail = |errno: i32, what: String| -> ! {
        let _ = chan.send(&Msg::ExecFailed(errno, what));
        sys::exit_now(127)
    };
    // A new session: the payload loses the pilot's controlling terminal, so it cannot inject
    // keystrokes into it (TIOCSTI) or get its job-control signals.
    let _ = nix::unistd::setsid();
    sys::reset_signal_dispositions();
    if let Err(e) = SigSet::empty().thread_set_mask() {
        fail(e as i32, format!("reset signal mask: {e}"));
    }
    let _ = nix::sys::prctl::set_name(c"payload");
    // Unprivileged, setgroups is denied in our user namespace (see `launch`): the payload keeps
    // the caller's supplementary groups, as any process of the caller would.
    let groups = (!plan.unprivileged).then_some(plan.additional_gids.as_slice());
    if let Err(e) = crate::identity::become_payload(&Linux, plan.uid, plan.gid, groups) {
        fail(libc::EPERM, e.to_string());
    }
    for (res, soft, hard) in &plan.rlimits {
        if let Err(e) = nix::sys::resource::setrlimit(*res, *soft, *hard) {
            fail(e as i32, format!("setrlimit {res:?}: {e}"));
        }
    }
    if let Some(m) = plan.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
    }
    // As the payload user: a cwd it cannot enter is the request's fault, reported as such.
    if let Err(e) = nix::unistd::chdir(&plan.cwd) {
        fail(e as i32, format!("cwd {}: {e}", plan.cwd.display()));
    }
    let program = match resolve(plan) {
        Ok(p) => p,
        Err(e) => fail(e as i32, format!("{}: {e}", plan.args[0].to_string_lossy())),
    };
    if let Err(e) = nix::sys::prctl::set_no_new_privs() {
        fail(e as i32, format!("no_new_privs: {e}"));
    }
    if let Err(e) = sys::cloexec_from(3) {
        fail(e as i32, format!("close_range: {e}"));
    }
    // Last: the filter must allow everything up to and including execve.
    if let Some(f) = seccomp {
        if let Err(e) = f.load() {
            fail(libc::EPERM, format!("seccomp: {e}"));
        }
    }
    let e = execve(&program, &plan.args, &plan.env).unwrap_err();
    fail(
        e as i32,
        format!("execve {}: {e}", program.to_string_lossy()),
    )
}

/// argv[0] as execvp would find it, with the *payload's* PATH (never the caller's).
fn resolve(plan: &Plan) -> Result<CString, Errno> {
    let arg0 = plan.args[0].as_bytes();
    if arg0.contains(&b'/') {
        return Ok(plan.args[0].clone());
    }
    let path = plan
        .env
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .unwrap_or(b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut err = Errno::ENOENT;
    for dir in path.split(|b| *b == b':').filter(|d| !d.is_empty()) {
        let mut cand = dir.to_vec();
        cand.push(b'/');
        cand.extend_from_slice(arg0);
        let p = Path::new(std::ffi::OsStr::from_bytes(&cand));
        match nix::unistd::access(p, nix::unistd::AccessFlags::X_OK) {
            Ok(()) if !p.is_dir() => return CString::new(cand).map_err(|_| Errno::EINVAL),
            Ok(()) => {}
            Err(Errno::EACCES) => err = Errno::EACCES,
            Err(_) => {}
        }
    }
    Err(err)
}
