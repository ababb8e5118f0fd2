//! An fd-relative, iterative walk of a directory tree that the *pilot* (or a payload) controls,
//! done by root: the work-dir hand-over ([`super::handover`]) and the set-id strip
//! ([`super::setid`]) are visitors of it.
//!
//! What it guarantees, and why:
//! - **Never follows a symlink**: entries are `fstatat(AT_SYMLINK_NOFOLLOW)`ed and directories
//!   opened `openat(O_NOFOLLOW | O_DIRECTORY)` relative to their parent's fd, then `fstat`ed
//!   again (the discipline of `rm -rf`'s fts in physical mode, and of runc/libpathrs): a
//!   directory swapped for a symlink between the two calls makes the open fail (ELOOP/ENOTDIR),
//!   it is counted as an error and never followed.
//! - **No depth limit, bounded fds.** The old recursive walk stopped at depth 64, which a payload
//!   could use to hide files below. Here the depth is only limited by memory (one small frame
//!   per level); at most [`FD_WINDOW`] directory fds are open at once: deeper, the fd of the
//!   shallowest open frame is closed, and when the walk climbs back to it, it is reopened as
//!   `openat(child, "..")` and its `(st_dev, st_ino)` compared with what was recorded when it
//!   was first opened. A mismatch means the tree was moved during the walk (only its owner can
//!   do that); the walk then starts again from the top (the visitors are idempotent), and after
//!   [`MAX_RESTARTS`] fails loudly ([`WalkError::Moved`]) — it never continues from a directory
//!   outside the tree. (Until the climb back, a subtree moved elsewhere is still walked through
//!   the fds we hold: those are the mover's own files, and nothing but what we would have done
//!   in the tree is done to them.)
//! - **Never crosses a mount point**: a directory with another `st_dev` than the top is skipped.
//!   A payload cannot mount anything visible outside its own mount namespace, so a mount under a
//!   work dir is the site's, not ours to walk (and `gc` must not wander into, say, an NFS home).
//! - Entries that vanish mid-walk (ENOENT) are skipped silently; other failures are counted.

use rustix::fs::{fstat, openat, statat, AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Directory fds kept open at once (plus one transient fd while a directory is read or ".."
/// reopened). Small enough for any fd limit, large enough that ordinary trees never reopen.
pub const FD_WINDOW: usize = 16;
/// How often a walk restarts after the tree moved under it before giving up.
pub const MAX_RESTARTS: usize = 3;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

/// What a walk does at each entry. Callbacks get the parent directory's fd and the entry's
/// name, to act fd-relatively (`*at(dir, name, ..., AT_SYMLINK_NOFOLLOW)` or an `O_PATH|
/// O_NOFOLLOW` open whose `fstat` is compared with `st`).
pub trait Visitor {
    /// A directory about to be walked (the top included), opened as described in the module
    /// docs; `st` is its `fstat`.
    fn directory(&mut self, _fd: BorrowedFd<'_>, _st: &Stat) {}
    /// A non-directory entry of `dir`; `st` is its `fstatat(AT_SYMLINK_NOFOLLOW)`.
    fn entry(&mut self, dir: BorrowedFd<'_>, name: &CStr, st: &Stat);
    /// Called just before a subdirectory is opened (tests race the walk here).
    fn before_open(&mut self, _dir: BorrowedFd<'_>, _name: &CStr) {}
}

/// Counts of one walk.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalkStats {
    pub dirs: u64,
    pub entries: u64,
    /// Entries that could not be examined or directories that could not be opened or read.
    pub errors: u64,
    /// Directories on another file system, not entered.
    pub mounts_skipped: u64,
    /// How often the walk started again because the tree moved.
    pub restarts: u64,
    /// The deepest level reached (the top is 0).
    pub max_depth: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("cannot walk the directory: {0}")]
    Top(Errno),
    #[error("the directory tree was moved during the walk ({MAX_RESTARTS} restarts); not continued outside it")]
    Moved,
}

struct Frame {
    fd: Option<OwnedFd>,
    dev: u64,
    ino: u64,
    /// Entries still to visit (popped from the end).
    names: Vec<CString>,
}

/// Walk everything below `top` (an fd on a directory), calling `v`. See the module docs.
pub fn walk(top: BorrowedFd<'_>, v: &mut impl Visitor) -> Result<WalkStats, WalkError> {
    let mut stats = WalkStats::default();
    loop {
        match walk_once(top, v, &mut stats) {
            Err(WalkError::Moved) if (stats.restarts as usize) < MAX_RESTARTS => {
                stats.restarts += 1;
                tracing::warn!("the directory tree moved during the walk; starting again");
            }
            r => return r.map(|()| stats),
        }
    }
}

fn names_of(fd: BorrowedFd<'_>) -> rustix::io::Result<Vec<CString>> {
    // Dir::read_from opens its own fd on "." (closed when `dir` is dropped).
    let mut dir = Dir::read_from(fd)?;
    let mut names = Vec::new();
    while let Some(e) = dir.read() {
        let e = e?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            names.push(n.to_owned());
        }
    }
    Ok(names)
}

fn walk_once(
    top: BorrowedFd<'_>,
    v: &mut impl Visitor,
    stats: &mut WalkStats,
) -> Result<(), WalkError> {
    let fd = openat(top, c".", DIR_FLAGS, Mode::empty()).map_err(WalkError::Top)?;
    let st = fstat(&fd).map_err(WalkError::Top)?;
    let dev = st.st_dev;
    v.directory(fd.as_fd(), &st);
    stats.dirs += 1;
    let names = names_of(fd.as_fd()).map_err(WalkError::Top)?;
    let mut stack = vec![Frame {
        fd: Some(fd),
        dev,
        ino: st.st_ino,
        names,
    }];
    // Frames below this index have their fd closed (see FD_WINDOW).
    let mut first_open = 0usize;
    loop {
        let Some(frame) = stack.last_mut() else {
            return Ok(());
        };
        let Some(name) = frame.names.pop() else {
            let done = stack.pop().expect("the stack is not empty");
            let Some(parent) = stack.last_mut() else {
                return Ok(());
            };
            if parent.fd.is_none() {
                // Climb back through "..", which must be the directory we left.
                let child = done.fd.as_ref().expect("the deepest frame is open");
                let fd =
                    openat(child, c"..", DIR_FLAGS, Mode::empty()).map_err(|_| WalkError::Moved)?;
                let st = fstat(&fd).map_err(|_| WalkError::Moved)?;
                if (st.st_dev, st.st_ino) != (parent.dev, parent.ino) {
                    return Err(WalkError::Moved);
                }
                parent.fd = Some(fd);
                first_open -= 1;
            }
            continue;
        };
        let dir = frame
            .fd
            .as_ref()
            .expect("the deepest frame is open")
            .as_fd();
        let st = match statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(_) => {
                stats.errors += 1;
                continue;
            }
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            stats.entries += 1;
            v.entry(dir, &name, &st);
            continue;
        }
        if st.st_dev != dev {
            stats.mounts_skipped += 1;
            continue;
        }
        v.before_open(dir, &name);
        let sub = match openat(dir, &name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => continue,
            Err(_) => {
                // ELOOP/ENOTDIR: swapped for a symlink or a file since the fstatat.
                stats.errors += 1;
                continue;
            }
        };
        let sst = match fstat(&sub) {
            Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::Directory => s,
            _ => {
                stats.errors += 1;
                continue;
            }
        };
        if sst.st_dev != dev {
            stats.mounts_skipped += 1;
            continue;
        }
        v.directory(sub.as_fd(), &sst);
        stats.dirs += 1;
        let names = match names_of(sub.as_fd()) {
            Ok(n) => n,
            Err(_) => {
                stats.errors += 1;
                continue;
            }
        };
        stack.push(Frame {
            fd: Some(sub),
            dev: sst.st_dev,
            ino: sst.st_ino,
            names,
        });
        stats.max_depth = stats.max_depth.max(stack.len() - 1);
        if stack.len() - first_open > FD_WINDOW {
            stack[first_open].fd = None;
            first_open += 1;
        }
    }
}

#[cfg(test)]
#[path = "walk_tests.rs"]
mod tests;
