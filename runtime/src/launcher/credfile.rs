//! Step 3 (and the work dir, the report file): open files **as the caller**. The effective
//! uid/gid and supplementary groups are switched to the caller's around the `open`, so the
//! kernel applies the caller's own permissions: a pilot can never make pilotbox read or write
//! a file it could not itself (the confused-deputy hole gLExec closed the same way).
//!
//! The proxy file must then pass gLExec's checks on the open file (`fstat`, no race with the
//! path): a regular file owned by the caller, not readable or writable by group or others.
//! Symbolic links are refused (`O_NOFOLLOW`) and the read is bounded.

use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use nix::unistd::{getegid, geteuid, getgroups, setegid, seteuid, setgroups, Gid, Uid};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::sanitize::Caller;

#[derive(Debug, thiserror::Error)]
pub enum CredFileError {
    #[error("cannot switch to the caller's identity to open {path}: {errno}")]
    Switch {
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("cannot open {what} {path}: {errno}")]
    Open {
        what: &'static str,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("{what} {path}: {reason}")]
    Refused {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("cannot read proxy file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
}

/// Runs `f` with the effective ids and groups of the caller, then restores root's.
pub fn as_caller<T>(
    caller: &Caller,
    path: &Path,
    f: impl FnOnce() -> T,
) -> Result<T, CredFileError> {
    let err = |errno| CredFileError::Switch {
        path: path.into(),
        errno,
    };
    let (euid, egid) = (geteuid(), getegid());
    let saved_groups = getgroups().map_err(err)?;
    let groups: Vec<Gid> = caller.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    // Order matters: groups and gid first, while we still have CAP_SETGID; uid last.
    setgroups(&groups).map_err(err)?;
    setegid(Gid::from_raw(caller.gid)).map_err(err)?;
    if let Err(e) = seteuid(Uid::from_raw(caller.uid)) {
        let _ = setegid(egid);
        let _ = setgroups(&saved_groups);
        return Err(err(e));
    }
    let out = f();
    // Restoring root cannot fail while the saved uid is 0; if it did, continuing with the
    // caller's ids would be wrong in a way we cannot report sensibly: stop.
    if seteuid(euid).is_err() || setegid(egid).is_err() || setgroups(&saved_groups).is_err() {
        eprintln!(
            "pilotbox: cannot restore privileges after opening {}",
            path.display()
        );
        std::process::exit(policy::Class::SiteError.exit_code());
    }
    Ok(out)
}

/// Open `path` for reading as the caller, without following a final symlink.
pub fn open_as_caller(
    caller: &Caller,
    path: &Path,
    what: &'static str,
    directory: bool,
) -> Result<OwnedFd, CredFileError> {
    let mut flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY
        | OFlag::O_NONBLOCK;
    if directory {
        flags |= OFlag::O_DIRECTORY;
    }
    as_caller(caller, path, || open(path, flags, Mode::empty()))?.map_err(|errno| {
        CredFileError::Open {
            what,
            path: path.into(),
            errno,
        }
    })
}

/// The caller's proxy: opened as the caller, checked as gLExec did, read (bounded).
pub fn read_proxy(caller: &Caller, path: &Path) -> Result<Vec<u8>, CredFileError> {
    let fd = open_as_caller(caller, path, "proxy file", false)?;
    check_and_read_proxy(fd, path, caller.uid)
}

/// gLExec's checks on an opened proxy file (regular, owned by `owner`, private), then a bounded
/// read. `pilotbox-nosuid`, which is the caller, opens the file itself and calls this.
pub fn check_and_read_proxy(
    fd: OwnedFd,
    path: &Path,
    owner: u32,
) -> Result<Vec<u8>, CredFileError> {
    let refuse = |reason: String| CredFileError::Refused {
        what: "proxy file",
        path: path.into(),
        reason,
    };
    let st = fstat(&fd).map_err(|e| refuse(format!("fstat: {e}")))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(refuse("not a regular file".into()));
    }
    if st.st_uid != owner {
        return Err(refuse(format!(
            "owned by uid {}, not by the caller (uid {owner})",
            st.st_uid
        )));
    }
    if st.st_mode & 0o077 != 0 {
        return Err(refuse(format!(
            "mode {:04o} gives access to group or others (chmod 600 {})",
            st.st_mode & 0o7777,
            path.display()
        )));
    }
    let limit = policy::credentials::pem::MAX_PROXY_FILE as u64;
    let mut buf = Vec::new();
    std::fs::File::from(fd)
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| CredFileError::Read {
            path: path.into(),
            reason: e.to_string(),
        })?;
    if buf.len() as u64 > limit {
        return Err(refuse(format!("larger than {limit} bytes")));
    }
    Ok(buf)
}

/// The caller's work directory: opened as the caller (so it must be reachable by the caller),
/// a directory owned by the caller.
pub fn open_workdir(caller: &Caller, path: &Path) -> Result<OwnedFd, CredFileError> {
    let fd = open_as_caller(caller, path, "work directory", true)?;
    check_workdir(fd, path, caller.uid)
}

/// The work-directory rule on an opened directory: owned by `owner` (the caller).
/// `pilotbox-nosuid`, which is the caller, opens the directory itself and calls this.
pub fn check_workdir(fd: OwnedFd, path: &Path, owner: u32) -> Result<OwnedFd, CredFileError> {
    let refuse = |reason: String| CredFileError::Refused {
        what: "work directory",
        path: path.into(),
        reason,
    };
    let st = fstat(&fd).map_err(|e| refuse(format!("fstat: {e}")))?;
    if st.st_uid != owner {
        return Err(refuse(format!(
            "owned by uid {}, not by the caller (uid {owner})",
            st.st_uid
        )));
    }
    Ok(fd)
}

/// Create (or truncate) `path` for writing as the caller (the `--report` file). The file is
/// the pilot's (created with its uid); our umask 077 makes a new one 0600.
pub fn create_as_caller(caller: &Caller, path: &Path) -> Result<std::fs::File, CredFileError> {
    let flags = OFlag::O_WRONLY
        | OFlag::O_CREAT
        | OFlag::O_TRUNC
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY
        | OFlag::O_NONBLOCK;
    let fd = as_caller(caller, path, || {
        open(path, flags, Mode::from_bits_truncate(0o644))
    })?
    .map_err(|errno| CredFileError::Open {
        what: "report file",
        path: path.into(),
        errno,
    })?;
    Ok(std::fs::File::from(fd))
}
