//! The supervisor loop: the launching process, outside the sandbox, until the payload is gone.
//!
//! Single-threaded and event-driven (one `poll` over a signalfd, the channel and, in the root
//! worker of a setuid call, the front's signal relay): forwards the pilot's signals to init
//! (which hands them to the payload), enforces the wall-time limit (SIGTERM, a grace period,
//! then kill the whole cgroup and pid namespace), ends the payload the same way, at once, when
//! the caller's process is gone (EOF on the relay), and turns what it learns into an
//! [`Outcome`]. Usage accounting and cgroup removal are the caller's, because it
//! owns the cgroup.

use crate::channel::Msg;
use crate::launch::{supervised_signals, Running, FORWARDED};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use serde::Serialize;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Exited(i32),
    Signaled(i32),
}

impl Status {
    /// The shell convention docs/design.md fixes: the code, or 128+N for signal N.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Exited(c) => c,
            Status::Signaled(s) => 128 + s,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    /// The payload never started: execve (or a step right before it) failed, with errno.
    pub exec_error: Option<(i32, String)>,
    pub walltime_exceeded: bool,
    /// Ended because the caller's process (the front of a setuid call) went away.
    pub caller_gone: bool,
    /// Ended because its credential expired (and was not renewed).
    pub cred_expired: bool,
    pub started: SystemTime,
    pub ended: SystemTime,
    pub wall: Duration,
}

pub struct SuperviseOptions<'a> {
    pub walltime: Option<Duration>,
    /// Between SIGTERM and the hard kill when the wall time (or the credential) is up.
    pub grace: Duration,
    /// Kills every process of the payload's cgroup (v2 cgroup.kill / v1 freeze-kill loop).
    pub kill_all: Option<&'a dyn Fn() -> Result<(), String>>,
    pub cred_expiry: Option<&'a CredExpiry<'a>>,
    /// The front's signal relay (`launcher::split`): one byte per signal to forward; EOF when
    /// the caller's process is gone. With a relay, signals sent to this process by another
    /// process are not forwarded (the front relays them: a process-group or cgroup-wide signal
    /// would otherwise reach the payload twice); those the kernel generates (the tty's SIGINT,
    /// SIGHUP: `si_code` SI_KERNEL, which the front does not relay) still are.
    pub relay: Option<BorrowedFd<'a>>,
}

/// The pilot must never "lose control" of a payload whose proxy expires: `margin` before
/// `not_after` the payload gets `signal` (a warning: time to stop or ask for a renewal), and at
/// `not_after` it is ended like at the wall-time limit. Before acting, `refresh` re-reads the
/// expiry: a `pilotbox renew` may have extended it, and then nothing happens.
pub struct CredExpiry<'a> {
    pub not_after: SystemTime,
    pub margin: Duration,
    /// One of [`FORWARDED`] (init forwards only those; anything else is sent as SIGUSR2).
    pub signal: Signal,
    pub refresh: &'a dyn Fn() -> Option<SystemTime>,
}

/// Credential-expiry state inside the supervisor loop.
struct Expiry<'a> {
    conf: &'a CredExpiry<'a>,
    not_after: SystemTime,
    warned: bool,
    expired: bool,
}

impl Expiry<'_> {
    /// Adopt a later expiry if `refresh` reports one; true if it was extended.
    fn refresh(&mut self) -> bool {
        match (self.conf.refresh)() {
            Some(n) if n > self.not_after => {
                self.not_after = n;
                self.warned = SystemTime::now() + self.conf.margin >= n && self.warned;
                true
            }
            _ => false,
        }
    }
    fn warn_at(&self) -> SystemTime {
        self.not_after
            .checked_sub(self.conf.margin)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }
    /// The next moment the supervisor must look at the credential.
    fn next(&self) -> Option<Instant> {
        let at = if !self.warned {
            self.warn_at()
        } else if !self.expired {
            self.not_after
        } else {
            return None;
        };
        let now = SystemTime::now();
        Some(Instant::now() + at.duration_since(now).unwrap_or_default())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("{step}: {errno}")]
    Sys { step: &'static str, errno: Errno },
}

/// Supervise until the sandbox's init is gone.
pub fn supervise(run: Running, opts: &SuperviseOptions) -> Result<Outcome, SuperviseError> {
    let sfd = SignalFd::with_flags(
        &supervised_signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|errno| SuperviseError::Sys {
        step: "signalfd",
        errno,
    })?;
    let mut payload_status: Option<Status> = None;
    let mut exec_error = None;
    let mut chan_open = true;
    let mut relay = opts.relay;
    let mut caller_gone = false;
    let mut walltime_exceeded = false;
    let mut hard_kill_at: Option<Instant> = None;
    let mut killed_hard = false;
    let mut expiry = opts.cred_expiry.map(|conf| Expiry {
        conf,
        not_after: conf.not_after,
        warned: false,
        expired: false,
    });

    let init_status = loop {
        // Init may already be gone (its SIGCHLD can predate the signalfd).
        match waitpid(run.init, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(s) => break s,
            Err(errno) => {
                return Err(SuperviseError::Sys {
                    step: "waitpid init",
                    errno,
                })
            }
        }
        let now = Instant::now();
        if let Some(limit) = opts.walltime {
            if !walltime_exceeded && now >= run.started_at + limit {
                walltime_exceeded = true;
                let _ = kill(run.init, Signal::SIGTERM);
                hard_kill_at = Some(now + opts.grace);
            }
        }
        if let Some(e) = expiry.as_mut() {
            let sys_now = SystemTime::now();
            if !e.warned && sys_now >= e.warn_at() && !e.refresh() {
                e.warned = true;
                let sig = if FORWARDED.contains(&e.conf.signal) {
                    e.conf.signal
                } else {
                    Signal::SIGUSR2
                };
                let _ = kill(run.init, sig);
            }
            if e.warned && !e.expired && sys_now >= e.not_after && !e.refresh() {
                e.expired = true;
                if hard_kill_at.is_none() {
                    let _ = kill(run.init, Signal::SIGTERM);
                    hard_kill_at = Some(now + opts.grace);
                }
            }
        }
        if let Some(at) = hard_kill_at {
            if !killed_hard && now >= at {
                killed_hard = true;
                if let Some(k) = opts.kill_all {
                    let _ = k();
                }
                // Pid 1 dying takes the whole pid namespace with it, cgroup or not.
                let _ = kill(run.init, Signal::SIGKILL);
            }
        }
        if caller_gone && !killed_hard && hard_kill_at.is_none_or(|t| t > now) {
            // No grace: nobody is left to report to, and the batch system that killed the front
            // expects the job gone. The whole cgroup, as at the end of a wall-time grace.
            hard_kill_at = Some(now);
            continue;
        }
        let next_deadline = [
            opts.walltime
                .filter(|_| !walltime_exceeded)
                .map(|w| run.started_at + w),
            hard_kill_at.filter(|_| !killed_hard),
            expiry.as_ref().and_then(Expiry::next),
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = match next_deadline {
            Some(d) => {
                let ms = d
                    .saturating_duration_since(now)
                    .as_millis()
                    .clamp(1, i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if chan_open {
            fds.push(PollFd::new(run.chan.0.as_fd(), PollFlags::POLLIN));
        }
        if let Some(r) = relay {
            fds.push(PollFd::new(r, PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => {
                return Err(SuperviseError::Sys {
                    step: "poll",
                    errno,
                })
            }
        }
        let chan_ready = chan_open && fds[1].any().unwrap_or(false);
        let relay_ready = relay.is_some() && fds.last().and_then(|f| f.any()).unwrap_or(false);
        while let Ok(Some(info)) = sfd.read_signal() {
            if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                // si_code > 0: generated by the kernel (SI_KERNEL), never relayed by the front.
                if FORWARDED.contains(&sig) && (relay.is_none() || info.ssi_code > 0) {
                    let _ = kill(run.init, sig);
                }
            }
        }
        if let (true, Some(r)) = (relay_ready, relay) {
            match read_relay(r) {
                Some(sigs) => {
                    for sig in sigs {
                        let _ = kill(run.init, sig);
                    }
                }
                None => {
                    relay = None;
                    caller_gone = true;
                }
            }
        }
        if chan_ready {
            match run.chan.recv() {
                Ok(Some(m)) => absorb(m, &mut payload_status, &mut exec_error),
                Ok(None) | Err(_) => chan_open = false,
            }
        }
    };
    // Drain what init (or the payload child) said before dying.
    while chan_open {
        let mut fds = [PollFd::new(run.chan.0.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::from(100u8)), Ok(n) if n > 0) {
            break;
        }
        match run.chan.recv() {
            Ok(Some(m)) => absorb(m, &mut payload_status, &mut exec_error),
            _ => chan_open = false,
        }
    }
    let ended = SystemTime::now();
    let status = payload_status.unwrap_or(match init_status {
        // Init was killed (cgroup kill, OOM, hard wall-time kill): so was the payload.
        WaitStatus::Signaled(_, sig, _) => Status::Signaled(sig as i32),
        WaitStatus::Exited(_, code) => Status::Exited(if code == 0 { 255 } else { code }),
        _ => Status::Signaled(Signal::SIGKILL as i32),
    });
    Ok(Outcome {
        status,
        exec_error,
        walltime_exceeded,
        caller_gone,
        cred_expired: expiry.is_some_and(|e| e.expired),
        started: run.started,
        ended,
        wall: run.started_at.elapsed(),
    })
}

/// What the supervisor reads from the relay (`launcher::split` writes one byte, the signal
/// number, per signal): the signals to forward, in order; `None` at EOF (the front is gone).
/// Bytes that are not a `FORWARDED` signal are dropped: the front is the caller's process, and
/// what it writes is the caller's to choose.
fn read_relay(fd: BorrowedFd) -> Option<Vec<Signal>> {
    let mut buf = [0u8; 64];
    match nix::unistd::read(fd, &mut buf) {
        Ok(0) => None,
        Ok(n) => Some(
            buf[..n]
                .iter()
                .filter_map(|b| Signal::try_from(*b as i32).ok())
                .filter(|s| FORWARDED.contains(s))
                .collect(),
        ),
        Err(Errno::EAGAIN | Errno::EINTR) => Some(vec![]),
        Err(_) => None,
    }
}

fn absorb(m: Msg, status: &mut Option<Status>, exec_error: &mut Option<(i32, String)>) {
    match m {
        Msg::Exited(c) => *status = Some(Status::Exited(c)),
        Msg::Signaled(s) => *status = Some(Status::Signaled(s)),
        Msg::ExecFailed(e, why) => *exec_error = Some((e, why)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay carries only what the supervisor forwards anyway: other bytes (SIGKILL, SIGSTOP,
    /// SIGCHLD, junk) from the caller's process are dropped; EOF says the caller is gone.
    #[test]
    fn the_relay_passes_forwarded_signals_only() {
        let (r, w) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&w, &[15, 9, 19, 17, 0, 200, 10, 1]).unwrap();
        let got = read_relay(r.as_fd()).unwrap();
        assert_eq!(got, [Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGHUP]);
        drop(w);
        assert_eq!(read_relay(r.as_fd()), None);
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(Status::Exited(3).exit_code(), 3);
        assert_eq!(Status::Signaled(9).exit_code(), 137);
        assert_eq!(Status::Signaled(15).exit_code(), 143);
    }
}
