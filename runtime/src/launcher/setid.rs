//! Strip set-user-ID, set-group-ID and file capabilities from what a payload left in its work
//! dir (issue 11 item 1).
//!
//! The work dir is the pilot's directory on the host. The sandbox's `nosuid` mounts and
//! `no_new_privs` protect only the inside: a set-uid file the payload leaves there is owned on
//! disk by the *pilot* (idmapped mount) or by the pool uid (chown hand-over), and any other local
//! process — another VO's pilot, a batch job — that runs it becomes that uid, reads the pilot's
//! proxies and controls its payloads. The seccomp profile refuses set-id modes at the source
//! (`seccomp::profile`, `setid_mode_rules`); this walk is the second wall, for what seccomp
//! cannot see: a `security.capability` xattr (its name is in memory), set-id files already in
//! the work dir, a payload run with a site profile that lacks the rules.
//!
//! After every run ([`super::prepare::Prepared::finish`], `pilotbox-nosuid`) and in `gc`, the
//! whole work dir is walked with [`super::walk`] (fd-relative, never following symlinks, no depth
//! limit, bounded fds, not crossing mounts). For every regular file owned by the pilot or the
//! pool uid (the only owners a payload can give a file; a hard link to anyone else's file is
//! left alone) that has `S_ISUID`/`S_ISGID` or a `security.capability` xattr, the file is pinned
//! with `openat(O_PATH|O_NOFOLLOW)`, its `fstat` compared with what the walk saw (same device,
//! inode, still a regular file), and then changed through `/proc/self/fd/N`, which resolves to
//! exactly the pinned inode (the technique of runc and libpathrs for fd-relative operations that
//! have no `f*at` form: `fchmod` and `fremovexattr` refuse O_PATH fds, and opening for reading
//! could block or trigger side effects). Set-gid *directories* are left alone: the bit only
//! makes new entries inherit the group, it grants nothing on execution.
//!
//! With a chown hand-over the same walk also gives the pool uid's entries back to the pilot
//! ([`super::handover::Transfer`]), so the tree is walked once.

use super::handover::{Moved, Transfer};
use super::walk::{self, Visitor, WalkError};
use rustix::fs::{fstat, openat, statat, AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use std::ffi::{CStr, OsStr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The xattr holding file capabilities (include/uapi/linux/xattr.h, `XATTR_NAME_CAPS`).
pub const CAPS_XATTR: &CStr = c"security.capability";

/// What [`after_run`] did (the `workdir_cleanup` of the end audit record).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Cleanup {
    /// Regular files whose set-user/group-ID bits were removed.
    pub setid_stripped: u64,
    /// Regular files whose `security.capability` xattr was removed.
    pub caps_removed: u64,
    /// The hand-over back to the pilot (all zero without a chown hand-over).
    pub handback: Moved,
    /// Entries that could not be examined or fixed (the walk's own errors included).
    pub errors: u64,
    /// Directories on another file system, not entered.
    pub mounts_skipped: u64,
}

/// What to do in the work dir after a run.
#[derive(Debug, Clone)]
pub struct AfterRun {
    /// Owners whose regular files are stripped: the pilot and the pool uid.
    pub owners: Vec<u32>,
    /// Give the pool uid's entries back to the pilot (chown hand-over).
    pub back: Option<Transfer>,
    /// Also remove `security.capability` (needs CAP_SETFCAP: not for `pilotbox-nosuid`, where
    /// a payload can only write namespaced v3 capabilities rooted at the pilot's own uid, which
    /// no process outside a user namespace owned by the pilot honours).
    pub caps: bool,
}

struct Walker<'a> {
    what: &'a AfterRun,
    c: Cleanup,
}

impl Visitor for Walker<'_> {
    fn directory(&mut self, fd: BorrowedFd<'_>, st: &Stat) {
        if let Some(t) = &self.what.back {
            t.directory(fd, st, &mut self.c.handback);
        }
    }

    fn entry(&mut self, dir: BorrowedFd<'_>, name: &CStr, st: &Stat) {
        let mut st = *st;
        if let Some(t) = &self.what.back {
            if st.st_uid == t.from_uid {
                t.entry(dir, name, &st, &mut self.c.handback);
                // Chowned (the kernel cleared set-id bits and capabilities) or replaced by a
                // copy: look again at what the name is now.
                match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(s) => st = s,
                    Err(_) => return,
                }
            }
        }
        strip(dir, name, &st, self.what, &mut self.c);
    }
}

/// The strip (and, with `what.back`, the hand-over back) of the work dir `top`. See the module
/// docs. Per-entry failures are counted in [`Cleanup::errors`].
pub fn after_run(top: &OwnedFd, what: &AfterRun) -> Result<Cleanup, WalkError> {
    let mut w = Walker {
        what,
        c: Cleanup::default(),
    };
    let stats = walk::walk(rustix::fd::AsFd::as_fd(top), &mut w)?;
    w.c.errors += stats.errors + w.c.handback.errors;
    w.c.mounts_skipped = stats.mounts_skipped;
    if w.c.setid_stripped + w.c.caps_removed > 0 {
        tracing::warn!(
            "work dir: removed set-id bits from {} and capabilities from {} files the payload left",
            w.c.setid_stripped,
            w.c.caps_removed
        );
    }
    Ok(w.c)
}

/// `/proc/self/fd/<dir>/<name>`: `name` looked up in the directory `dir` pins.
fn in_dir(dir: BorrowedFd<'_>, name: &CStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(OsStr::from_bytes(name.to_bytes()));
    p
}

fn strip(dir: BorrowedFd<'_>, name: &CStr, st: &Stat, what: &AfterRun, c: &mut Cleanup) {
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || !what.owners.contains(&st.st_uid)
    {
        return;
    }
    let setid = st.st_mode & 0o6000 != 0;
    // lgetxattr: the last component (the entry) is not followed.
    let caps = what.caps
        && match rustix::fs::lgetxattr(in_dir(dir, name), CAPS_XATTR, &mut [0u8; 0][..]) {
            Ok(_) | Err(Errno::RANGE) => true,
            Err(Errno::NODATA | Errno::OPNOTSUPP | Errno::NOENT) => false,
            Err(_) => {
                c.errors += 1;
                false
            }
        };
    if !setid && !caps {
        return;
    }
    let pinned = match openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return,
        Err(_) => {
            c.errors += 1;
            return;
        }
    };
    let now = match fstat(&pinned) {
        Ok(s)
            if (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino)
                && FileType::from_raw_mode(s.st_mode) == FileType::RegularFile =>
        {
            s
        }
        _ => {
            c.errors += 1;
            return;
        }
    };
    let proc = PathBuf::from(format!("/proc/self/fd/{}", pinned.as_raw_fd()));
    if now.st_mode & 0o6000 != 0 {
        match rustix::fs::chmod(&proc, Mode::from_raw_mode(now.st_mode & 0o1777)) {
            Ok(()) => c.setid_stripped += 1,
            Err(_) => c.errors += 1,
        }
    }
    if caps {
        match rustix::fs::removexattr(&proc, CAPS_XATTR) {
            Ok(()) => c.caps_removed += 1,
            Err(Errno::NODATA) => {}
            Err(_) => c.errors += 1,
        }
    }
}

#[cfg(test)]
#[path = "setid_tests.rs"]
mod tests;
