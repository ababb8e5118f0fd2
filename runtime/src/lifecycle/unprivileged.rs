//! Verify a proxy without privilege (DESIGN.md "Principles": parse untrusted input without
//! privilege; docs/launcher-design.md step 5). A forked child sets `no_new_privs`, drops every
//! group and switches to uid/gid 65534 (never the caller's uid: the caller could ptrace it),
//! becomes non-dumpable, verifies the bytes with [`policy::credentials::verify_proxy`] and writes
//! only the outcome, as JSON, to a pipe. The parent (root) waits with a timeout and kills a child
//! that overruns it. A bug in the ASN.1/X.509 parsers can then at worst compromise `nobody`.
//!
//! Merge note: `launcher::unprivileged` implements the same step for `run`; once merged, this
//! file should call it instead.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{Gid, Uid};
use policy::credentials::{verify_proxy, VerifyOptions};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::LifecycleError;
use crate::sys::{self, Forked};

/// The uid/gid the verifying child runs as (`nobody`/`nogroup` on Debian and EL).
pub const NOBODY: u32 = 65534;
/// Verification of one proxy takes milliseconds; anything near this is a hostile input.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(20);

/// What crosses back from the child: the identity fields renewal compares and records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedId {
    pub dn: String,
    pub issuer_dn: String,
    pub vo: Option<String>,
    /// Verified FQANs only (those of a valid AC), AC order.
    pub fqans: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

#[derive(Debug, Serialize, Deserialize)]
enum Outcome {
    Valid(VerifiedId),
    Rejected { reason: String, site: bool },
}

/// Verify `proxy` in an unprivileged child. `Ok(Ok(id))` valid, `Ok(Err(reason))` rejected
/// (proxy error, 120), `Err(_)` the verification could not be done (site error, 123).
pub fn verify(
    proxy: &[u8],
    opts: &VerifyOptions,
) -> Result<Result<VerifiedId, String>, LifecycleError> {
    let site = |reason: String| LifecycleError::Site {
        what: "unprivileged verification",
        reason,
    };
    // fork() copies only the calling thread: a lock held by another thread would stay locked
    // in the child, so refuse unless we are alone (the CLI never starts threads).
    if sys::thread_count().map_err(|e| site(e.to_string()))? != 1 {
        return Err(site(
            "the process is multi-threaded; cannot fork safely".into(),
        ));
    }
    let (rd, wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| site(format!("pipe: {e}")))?;
    match sys::fork().map_err(|e| site(format!("fork: {e}")))? {
        Forked::Child => {
            drop(rd);
            sys::exit_now(child(proxy, opts, wr));
        }
        Forked::Parent(pid) => {
            drop(wr);
            let result = read_with_timeout(rd, VERIFY_TIMEOUT);
            if result.is_err() {
                let _ = kill(pid, Signal::SIGKILL);
            }
            let status = waitpid(pid, None).map_err(|e| site(format!("waitpid: {e}")))?;
            let bytes = result.map_err(site)?;
            if !matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)) {
                return Err(site(format!("the verifying child failed: {status:?}")));
            }
            match serde_json::from_slice::<Outcome>(&bytes) {
                Ok(Outcome::Valid(id)) => Ok(Ok(id)),
                Ok(Outcome::Rejected {
                    reason,
                    site: false,
                }) => Ok(Err(reason)),
                Ok(Outcome::Rejected { reason, site: true }) => Err(LifecycleError::Site {
                    what: "credential verification",
                    reason,
                }),
                Err(e) => Err(site(format!("unreadable answer from the child: {e}"))),
            }
        }
    }
}

/// The child: drop privilege, verify, write the outcome. Returns the exit code.
fn child(proxy: &[u8], opts: &VerifyOptions, out: OwnedFd) -> i32 {
    if drop_privileges().is_err() {
        return 2;
    }
    let outcome = match verify_proxy(proxy, opts) {
        Ok(v) => {
            let id = &v.identity;
            Outcome::Valid(VerifiedId {
                dn: id.dn.clone(),
                issuer_dn: id.issuer_dn.clone(),
                vo: id.verified_vo().map(str::to_string),
                fqans: id.verified_fqans().to_vec(),
                not_after: id.not_after,
            })
        }
        Err(e) => Outcome::Rejected {
            reason: e.reason(),
            site: e.class() == policy::Class::SiteError,
        },
    };
    let Ok(bytes) = serde_json::to_vec(&outcome) else {
        return 3;
    };
    let mut f = std::fs::File::from(out);
    match std::io::Write::write_all(&mut f, &bytes) {
        Ok(()) => 0,
        Err(_) => 4,
    }
}

/// no_new_privs, no groups, gid then uid 65534 (all of real/effective/saved), non-dumpable.
/// As non-root (tests without privilege) there is nothing to drop.
fn drop_privileges() -> nix::Result<()> {
    nix::sys::prctl::set_no_new_privs()?;
    if nix::unistd::geteuid().is_root() {
        nix::unistd::setgroups(&[])?;
        let g = Gid::from_raw(NOBODY);
        nix::unistd::setresgid(g, g, g)?;
        let u = Uid::from_raw(NOBODY);
        nix::unistd::setresuid(u, u, u)?;
    }
    nix::sys::prctl::set_dumpable(false)
}

fn read_with_timeout(fd: OwnedFd, timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut f = std::fs::File::from(fd);
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer within {timeout:?}"));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        match f.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) if out.len() + n > 1 << 20 => return Err("answer too large".into()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}
