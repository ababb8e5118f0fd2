//! Who is calling, may they act on this payload, and reading their files with *their* rights.
//!
//! `pilotbox` runs setuid root: the real uid is the pilot, the effective uid is 0. The real uid
//! is what the kernel says the caller is; nothing from the environment or arguments is.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::unistd::{getegid, geteuid, setegid, seteuid, Gid, Uid};

use super::LifecycleError;
use crate::launcher::state::Record;

/// The calling user (real ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

impl Caller {
    /// The caller as `sanitize` recorded it: in the root worker of a setuid call the real ids
    /// are 0 (`launcher::split`), so getuid(2) would make every pilot root here.
    pub fn current() -> Caller {
        let (uid, gid) = crate::launcher::split::caller_ids();
        Caller { uid, gid }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// May this caller control `rec`? The pilot uid that launched it, and root
    /// (docs/launcher-design.md "Lifecycle commands").
    pub fn may_control(&self, rec: &Record) -> bool {
        self.is_root() || self.uid == rec.pilot_uid
    }

    pub fn authorize(&self, rec: &Record) -> Result<(), LifecycleError> {
        if self.may_control(rec) {
            Ok(())
        } else {
            Err(LifecycleError::NotYours {
                id: rec.id.clone(),
                owner: rec.pilot_uid,
            })
        }
    }
}

/// Run `f` with the effective uid/gid of `caller` (when we are privileged and the caller is
/// not root), so that the kernel checks the caller's permissions on every path `f` resolves:
/// a pilot can never make pilotbox open what it could not open itself (docs/design.md, launch step 4).
/// Supplementary groups are the caller's already (setuid exec keeps them).
pub fn as_caller<T>(caller: Caller, f: impl FnOnce() -> T) -> Result<T, LifecycleError> {
    if !geteuid().is_root() || caller.is_root() {
        return Ok(f());
    }
    let site = |what: &'static str| {
        move |e: nix::errno::Errno| LifecycleError::Site {
            what,
            reason: e.desc().to_string(),
        }
    };
    let (euid, egid) = (geteuid(), getegid());
    setegid(Gid::from_raw(caller.gid)).map_err(site("setegid to the caller"))?;
    if let Err(e) = seteuid(Uid::from_raw(caller.uid)) {
        let _ = setegid(egid);
        return Err(site("seteuid to the caller")(e));
    }
    let out = f();
    // Restoring can only fail if the kernel refuses a saved-set-uid switch; then we stay
    // unprivileged and fail closed.
    seteuid(euid).map_err(site("seteuid back"))?;
    setegid(egid).map_err(site("setegid back"))?;
    Ok(out)
}

/// Read a credential file the caller gave us, as gLExec did: opened as the caller, not a
/// symlink, a regular file owned by the caller and neither readable nor writable by group or
/// others (a proxy is a private key); at most `max` bytes.
pub fn read_private_file(
    caller: Caller,
    path: &Path,
    max: usize,
) -> Result<Vec<u8>, LifecycleError> {
    let bad = |reason: String| LifecycleError::ProxyFile {
        path: path.to_owned(),
        reason,
    };
    let file = as_caller(caller, || {
        std::fs::OpenOptions::new()
            .read(true)
            // No symlinks; never block on a FIFO.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
    })?
    .map_err(|e| bad(format!("cannot open it as uid {}: {e}", caller.uid)))?;
    let md = file
        .metadata()
        .map_err(|e| bad(format!("cannot stat it: {e}")))?;
    if !md.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if md.uid() != caller.uid {
        return Err(bad(format!(
            "owned by uid {}, must be owned by the caller (uid {})",
            md.uid(),
            caller.uid
        )));
    }
    if md.mode() & 0o077 != 0 {
        return Err(bad(format!(
            "mode {:04o} lets group or others access it (fix: chmod 600 {})",
            md.mode() & 0o7777,
            path.display()
        )));
    }
    let mut buf = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    if buf.len() > max {
        return Err(bad(format!("larger than {max} bytes")));
    }
    Ok(buf)
}
