//! The work-dir hand-over when the kernel cannot idmap the mount: ownership of the pilot's files
//! in the work dir moves to the pool account for the run and back to the pilot at the end (or
//! in `gc`). Root does this in a tree the *pilot* controls, with the fd-relative walk of
//! [`super::walk`] (never follows a symlink, no depth limit, bounded fds): swapping a directory
//! for a symlink mid-walk makes the walk skip it, never chown outside the tree.
//!
//! Only entries owned by the *from* uid change hands, so a hard link the pilot made to someone
//! else's file is left alone. On the way back, an entry of the pool uid with more than one link
//! is not chowned: its other link may be another run's file of the same pool account (the
//! payload can link any file of its uid). Instead the work-dir *name* is replaced by a copy the
//! pilot owns ([`replace_by_copy`]: an `O_EXCL` temporary in the same directory, `fchown`,
//! `renameat` over the name), so nothing in the work dir stays the pool uid's — the old walk
//! skipped such files and left them to the pool account (issue 11). The kernel clears
//! set-user/group-ID bits and `security.capability` on chown (`notify_change` ATTR_KILL_S*ID,
//! `cap_inode_killpriv`); [`super::setid`] strips what remains.

use super::walk::{self, Visitor, WalkError};
use rustix::fs::{
    fchmod, fchown, fstat, futimens, mknodat, openat, readlinkat, renameat, symlinkat, unlinkat,
    AtFlags, FileType, Gid, Mode, OFlags, Stat, Timespec, Timestamps, Uid,
};
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

/// Who owns the files before and after.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub from_uid: u32,
    pub to_uid: u32,
    pub to_gid: u32,
    /// The way back: entries of `from_uid` with `st_nlink > 1` are replaced by copies owned by
    /// `to_uid` instead of being chowned (see the module docs).
    pub skip_multilinked: bool,
}

/// What a hand-over walk did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Moved {
    /// Entries that changed owner.
    pub chowned: u64,
    /// Multi-linked entries of the pool uid whose work-dir name now is a pilot-owned copy.
    pub replaced: u64,
    /// Entries that could not be handed over or examined.
    pub errors: u64,
}

impl Transfer {
    fn owner(&self) -> (Option<Uid>, Option<Gid>) {
        (
            Some(Uid::from_raw(self.to_uid)),
            Some(Gid::from_raw(self.to_gid)),
        )
    }

    /// The per-entry part of the hand-over (also used by the combined walk of
    /// [`super::setid::after_run`]).
    pub(crate) fn entry(&self, dir: BorrowedFd<'_>, name: &CStr, st: &Stat, m: &mut Moved) {
        if st.st_uid != self.from_uid {
            return;
        }
        let (u, g) = self.owner();
        if self.skip_multilinked && st.st_nlink > 1 {
            match replace_by_copy(dir, name, st, self) {
                Ok(()) => m.replaced += 1,
                Err(e) => {
                    tracing::warn!("work dir: replacing multi-linked {name:?}: {e}");
                    m.errors += 1
                }
            }
            return;
        }
        match rustix::fs::chownat(dir, name, u, g, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(()) => m.chowned += 1,
            Err(rustix::io::Errno::NOENT) => {}
            Err(_) => m.errors += 1,
        }
    }

    pub(crate) fn directory(&self, fd: BorrowedFd<'_>, st: &Stat, m: &mut Moved) {
        if st.st_uid == self.from_uid {
            let (u, g) = self.owner();
            match fchown(fd, u, g) {
                Ok(()) => m.chowned += 1,
                Err(_) => m.errors += 1,
            }
        }
    }
}

struct Handover {
    t: Transfer,
    m: Moved,
}

impl Visitor for Handover {
    fn directory(&mut self, fd: BorrowedFd<'_>, st: &Stat) {
        self.t.directory(fd, st, &mut self.m);
    }
    fn entry(&mut self, dir: BorrowedFd<'_>, name: &CStr, st: &Stat) {
        self.t.entry(dir, name, st, &mut self.m);
    }
}

/// Transfer ownership of `dir` (an fd opened on the work dir) and everything below it. Errors
/// on single entries are counted; a walk that could not run at all (or whose tree kept moving)
/// is an error.
pub fn transfer(dir: &OwnedFd, t: Transfer) -> Result<Moved, WalkError> {
    let mut h = Handover {
        t,
        m: Moved::default(),
    };
    let stats = walk::walk(dir.as_fd(), &mut h)?;
    h.m.errors += stats.errors;
    Ok(h.m)
}

/// A name for a temporary in the work dir: unpredictable enough, and created `O_EXCL` anyway.
fn temp_name() -> CString {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    CString::new(format!(".pilotbox-handback-{}-{n}", std::process::id()))
        .expect("no NUL in a formatted name")
}

/// Whether `fs.protected_hardlinks` is on (the default of every current distribution): then
/// nobody can link a pool-uid file they cannot read and write into the work dir, so a copy of a
/// multi-linked entry tells the pilot nothing the payload (the pool uid, which can read the file
/// and copy it into the work dir itself) could not. Without it the pilot could link another
/// run's private file of the same pool account into its work dir and get a readable copy back:
/// then such an entry is only unlinked from the work dir.
fn hardlinks_protected() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/fs/protected_hardlinks").is_ok_and(|v| v.trim() == "1")
    })
}

/// Replace the entry `name` of `dir` (owned by the pool uid, `st_nlink > 1`) by a fresh one
/// owned by the pilot with the same content: regular files are copied (without set-id bits;
/// only unlinked when hard links are not protected, see [`hardlinks_protected`]),
/// symlinks and FIFOs recreated; sockets and device nodes, which have no content and nothing a
/// pilot could use after the run, are only unlinked from the work dir (the other link keeps
/// the inode). Everything is relative to `dir`; the source is opened `O_NOFOLLOW|O_NONBLOCK`
/// and must still be the inode `st` describes.
fn replace_by_copy(
    dir: BorrowedFd<'_>,
    name: &CStr,
    st: &Stat,
    t: &Transfer,
) -> rustix::io::Result<()> {
    let (u, g) = t.owner();
    let tmp = temp_name();
    let perm = Mode::from_raw_mode(st.st_mode & 0o777);
    let made = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile if !hardlinks_protected() => {
            return unlinkat(dir, name, AtFlags::empty())
        }
        FileType::RegularFile => {
            let src = openat(
                dir,
                name,
                OFlags::RDONLY
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let s = fstat(&src)?;
            if (s.st_dev, s.st_ino) != (st.st_dev, st.st_ino) {
                return Err(rustix::io::Errno::STALE);
            }
            let dst = openat(
                dir,
                &tmp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let copy = (|| {
                let (mut from, mut to) = (std::fs::File::from(src), std::fs::File::from(dst));
                // std uses copy_file_range (reflinks where the file system can) and falls back.
                std::io::copy(&mut from, &mut to).map_err(|e| {
                    rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO)
                })?;
                fchown(&to, u, g)?;
                fchmod(&to, perm)?;
                let ts = |sec, nsec| Timespec {
                    tv_sec: sec,
                    tv_nsec: nsec,
                };
                futimens(
                    &to,
                    &Timestamps {
                        last_access: ts(s.st_atime as _, s.st_atime_nsec as _),
                        last_modification: ts(s.st_mtime as _, s.st_mtime_nsec as _),
                    },
                )
            })();
            copy
        }
        FileType::Symlink => readlinkat(dir, name, Vec::new()).and_then(|target| {
            symlinkat(&target, dir, &tmp)?;
            rustix::fs::chownat(dir, &tmp, u, g, AtFlags::SYMLINK_NOFOLLOW)
        }),
        FileType::Fifo => mknodat(dir, &tmp, FileType::Fifo, perm, 0)
            .and_then(|()| rustix::fs::chownat(dir, &tmp, u, g, AtFlags::SYMLINK_NOFOLLOW)),
        _ => return unlinkat(dir, name, AtFlags::empty()),
    };
    let done = made.and_then(|()| renameat(dir, &tmp, dir, name));
    if done.is_err() {
        let _ = unlinkat(dir, &tmp, AtFlags::empty());
    }
    done
}
