//! Step 5: verify the caller's proxy **without privilege**. The bytes came from the caller, and
//! X.509/ASN.1/VOMS parsing is the biggest attack surface we have, so it runs in a forked
//! child that first gives up everything: all groups, uid/gid `nobody` (65534 — never the
//! caller's uid, or the caller could ptrace the child and forge the result), `no_new_privs`,
//! not dumpable. Only the verdict (the [`Identity`] as JSON, or a classified rejection) crosses
//! back over a pipe; the parent waits with a timeout and kills a child that hangs.
//!
//! The trust and VOMS directories must be readable by `nobody` (they are world-readable on
//! every grid node: `/etc/grid-security/certificates` is 0755).

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use policy::credentials::{verify_proxy, VerifyOptions};
use policy::{Class, Denial, Identity};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// The unprivileged identity the verifier runs as.
pub const NOBODY: u32 = 65534;

/// Longest a verification may take (a CRL directory on a hung NFS server must not hang us).
pub const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
enum Verdict {
    Valid(Identity),
    Rejected { class: i32, reason: String },
}

fn class_of(code: i32) -> Class {
    match code {
        120 => Class::Denied,
        121 => Class::Temporary,
        122 => Class::PilotError,
        _ => Class::SiteError,
    }
}

/// The setuid launcher's confinement: all groups dropped, uid/gid `nobody` (all three ids),
/// no_new_privs, not dumpable — checked: a saved uid of 0 would let the parser regain root.
fn drop_to_nobody() -> Result<(), String> {
    let nobody_g = Gid::from_raw(NOBODY);
    let nobody_u = Uid::from_raw(NOBODY);
    setgroups(&[])
        .and_then(|_| setresgid(nobody_g, nobody_g, nobody_g))
        .and_then(|_| setresuid(nobody_u, nobody_u, nobody_u))
        .and_then(|_| nix::sys::prctl::set_no_new_privs())
        .and_then(|_| nix::sys::prctl::set_dumpable(false))
        .map_err(|e| e.to_string())?;
    match nix::unistd::getresuid().map(|r| r.saved.as_raw()) {
        Ok(NOBODY) => Ok(()),
        _ => Err("saved uid is not nobody".into()),
    }
}

/// In the child: confine, verify, write the verdict. Never returns.
fn child(
    bytes: &[u8],
    opts: &VerifyOptions,
    mut out: std::fs::File,
    confine: fn() -> Result<(), String>,
) -> ! {
    let verdict = match confine() {
        Ok(()) => match verify_proxy(bytes, opts) {
            Ok(v) => Verdict::Valid(v.identity),
            Err(e) => Verdict::Rejected {
                class: e.class().exit_code(),
                reason: format!("credential rejected: {}", e.reason()),
            },
        },
        Err(e) => Verdict::Rejected {
            class: 123,
            reason: format!("cannot drop privileges for credential verification: {e}"),
        },
    };
    let ok = serde_json::to_vec(&verdict)
        .ok()
        .map(|b| out.write_all(&b).is_ok())
        .unwrap_or(false);
    crate::sys::exit_now(if ok { 0 } else { 1 })
}

/// Verify `bytes` in an unprivileged child; the identity, or a classified denial.
pub fn verify(bytes: &[u8], opts: &VerifyOptions) -> Result<Identity, Denial> {
    verify_confined(bytes, opts, drop_to_nobody)
}

/// [`verify`] with another confinement of the child (`pilotbox-nosuid` cannot change uid and
/// confines the parser with a seccomp filter instead: `crate::nosuid::verify`). `confine` runs
/// first in the child; if it fails, nothing is parsed.
pub fn verify_confined(
    bytes: &[u8],
    opts: &VerifyOptions,
    confine: fn() -> Result<(), String>,
) -> Result<Identity, Denial> {
    let site = |r: String| Denial::new(Class::SiteError, r);
    let (rd, wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| site(format!("pipe: {e}")))?;
    let child_pid = match crate::sys::fork().map_err(|e| site(format!("fork: {e}")))? {
        crate::sys::Forked::Child => {
            drop(rd);
            child(bytes, opts, std::fs::File::from(wr), confine)
        }
        crate::sys::Forked::Parent(pid) => pid,
    };
    drop(wr);
    let mut reader = std::fs::File::from(rd);
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let timed_out = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break true;
        }
        let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
        let ms =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(site(format!("poll: {e}"))),
            Ok(_) => {}
        }
        match reader.read(&mut chunk) {
            Ok(0) => break false,
            Ok(n) if buf.len() + n <= 4 << 20 => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => break true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(site(format!("read verdict: {e}"))),
        }
    };
    if timed_out {
        let _ = kill(child_pid, Signal::SIGKILL);
    }
    let _ = waitpid(child_pid, None);
    if timed_out {
        return Err(Denial::new(
            Class::Temporary,
            format!(
                "credential verification took longer than {}s",
                TIMEOUT.as_secs()
            ),
        ));
    }
    match serde_json::from_slice::<Verdict>(&buf) {
        Ok(Verdict::Valid(id)) => Ok(id),
        Ok(Verdict::Rejected { class, reason }) => Err(Denial::new(class_of(class), reason)),
        Err(_) => Err(site(
            "the credential verifier died without a verdict".into(),
        )),
    }
}
