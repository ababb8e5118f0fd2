//! Reading and verifying the caller's proxy without privilege and without trusting the parser.
//!
//! `pilotbox-nosuid` *is* the caller, so it opens the proxy itself; the file must still pass
//! gLExec's rule (regular file, owned by the caller, mode 0600 or stricter), exactly as for
//! `pilotbox run`, so pilots behave the same with either binary.
//!
//! The setuid launcher parses the untrusted bytes as `nobody`; an unprivileged process cannot
//! change uid, and a parser exploited as the pilot's uid could ptrace or signal the pilot or
//! rewrite its files. So the verifier child (the same fork/pipe/timeout as
//! [`crate::launcher::unprivileged`]) confines itself with no_new_privs, non-dumpable and a
//! seccomp filter that denies (EPERM) everything reaching outside: other processes (ptrace,
//! process_vm_*, kill, pidfd_*), new programs and processes (execve, clone, fork), the network
//! (socket, connect), and any file change (open/openat with a write/create/truncate flag,
//! openat2, unlink, rename, link, mkdir, chmod, chown, truncate, ...). Reads of the trust
//! directories stay allowed.

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use policy::credentials::VerifyOptions;
use policy::{Class, Denial, Identity};
use std::path::Path;

/// Denied outright in the verifier child (unknown names on this architecture are skipped).
const DENIED: &[&str] = &[
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kill",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "execve",
    "execveat",
    "fork",
    "vfork",
    "clone",
    "clone3",
    "socket",
    "socketpair",
    "connect",
    "openat2",
    "creat",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "rmdir",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "truncate",
    "ftruncate",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "io_uring_setup",
    "userfaultfd",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "mount",
    "umount2",
    "unshare",
    "setns",
];

/// open(2)/openat(2) flags that create, change or truncate a file.
const WRITE_FLAGS: [i32; 5] = [
    libc::O_WRONLY,
    libc::O_RDWR,
    libc::O_CREAT,
    libc::O_TRUNC,
    libc::O_APPEND,
];

fn confine_filter() -> Result<ScmpFilterContext, String> {
    let e = |x: libseccomp::error::SeccompError| x.to_string();
    let mut f = ScmpFilterContext::new(ScmpAction::Allow).map_err(e)?;
    let deny = ScmpAction::Errno(libc::EPERM);
    for name in DENIED {
        if let Ok(sc) = ScmpSyscall::from_name(name) {
            f.add_rule(deny, sc).map_err(e)?;
        }
    }
    // One rule per flag: denied when (flags & F) == F. The flags are arg 1 of open, 2 of openat.
    for (name, arg) in [("open", 1), ("openat", 2)] {
        let sc = ScmpSyscall::from_name(name).map_err(e)?;
        for flag in WRITE_FLAGS {
            let cmp =
                ScmpArgCompare::new(arg, ScmpCompareOp::MaskedEqual(flag as u64), flag as u64);
            f.add_rule_conditional(deny, sc, &[cmp]).map_err(e)?;
        }
    }
    Ok(f)
}

/// The child's confinement (runs in the forked verifier before any parsing).
fn confine() -> Result<(), String> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("PR_SET_DUMPABLE: {e}"))?;
    confine_filter()?
        .load()
        .map_err(|e| format!("seccomp: {e}"))
}

/// Verify `bytes` in a confined child: the identity, or a classified denial.
pub fn verify(bytes: &[u8], opts: &VerifyOptions) -> Result<Identity, Denial> {
    crate::launcher::unprivileged::verify_confined(bytes, opts, confine)
}

/// The caller's proxy file, under gLExec's rule (pilot error 122 otherwise).
pub fn read_proxy(uid: u32, path: &Path) -> Result<Vec<u8>, Denial> {
    let pilot = |r: String| Denial::new(Class::PilotError, r);
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY
        | OFlag::O_NONBLOCK;
    let fd = open(path, flags, Mode::empty())
        .map_err(|e| pilot(format!("cannot open proxy file {}: {e}", path.display())))?;
    crate::launcher::credfile::check_and_read_proxy(fd, path, uid).map_err(|e| pilot(e.to_string()))
}

/// The work directory: a directory owned by the caller (as `pilotbox run` requires), kept open
/// so the sandbox binds exactly this directory (`/proc/self/fd/N`), whatever the path does later.
pub fn open_workdir(uid: u32, path: &Path) -> Result<std::os::fd::OwnedFd, Denial> {
    let pilot = |r: String| Denial::new(Class::PilotError, r);
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = open(path, flags, Mode::empty()).map_err(|e| {
        pilot(format!(
            "cannot open work directory {}: {e}",
            path.display()
        ))
    })?;
    crate::launcher::credfile::check_workdir(fd, path, uid).map_err(|e| pilot(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confinement_filter_compiles() {
        // Loading it would confine the test process; building it checks every rule.
        confine_filter().unwrap();
    }

    /// In a confined child: reading still works; creating, opening for writing, and signalling
    /// do not. (glibc's fork keeps malloc usable in the child of a threaded test harness.)
    #[test]
    fn a_confined_child_can_read_but_not_write_or_signal() {
        let t = tempfile::tempdir().unwrap();
        let existing = t.path().join("existing");
        std::fs::write(&existing, "x").unwrap();
        let created = t.path().join("created");
        match crate::sys::fork().unwrap() {
            crate::sys::Forked::Child => {
                let code = (|| {
                    confine().ok()?;
                    std::fs::read(&existing).ok()?;
                    let denied = |r: std::io::Result<std::fs::File>| {
                        matches!(r, Err(e) if e.raw_os_error() == Some(libc::EPERM))
                    };
                    if !denied(std::fs::File::create(&created))
                        || !denied(std::fs::OpenOptions::new().append(true).open(&existing))
                        || nix::sys::signal::kill(nix::unistd::getppid(), None).is_ok()
                    {
                        return Some(2);
                    }
                    Some(0)
                })()
                .unwrap_or(1);
                crate::sys::exit_now(code)
            }
            crate::sys::Forked::Parent(pid) => {
                let st = nix::sys::wait::waitpid(pid, None).unwrap();
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(pid, 0));
                assert!(!created.exists());
            }
        }
    }
}
