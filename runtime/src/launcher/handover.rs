//! The work-dir hand-over when the kernel cannot idmap the mount: ownership of the pilot's files
//! in the work dir moves to the pool account for the run and back to the pilot at the end (or
//! in `gc`). Root does this in a tree the *pilot* controls, so every step is fd-relative and
//! never follows a symlink (`openat(O_NOFOLLOW|O_DIRECTORY)`, `fchownat(AT_SYMLINK_NOFOLLOW)`,
//! the same discipline as `rm -rf`'s fts in "physical" mode): swapping a directory for a
//! symlink mid-walk makes the walk skip it, never chown outside the tree.
//!
//! Only entries owned by the *from* uid change hands, so a hard link the pilot made to someone
//! else's file is left alone; on the way back, regular files with more than one link are also
//! left alone (the payload could have linked in a file of the same pool account from another
//! run). The kernel clears set-user/group-ID bits on chown.

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, Gid, Uid};
use std::os::fd::{AsFd, OwnedFd};

/// Who owns the files before and after.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub from_uid: u32,
    pub to_uid: u32,
    pub to_gid: u32,
    /// Skip regular files with `st_nlink > 1` (the way back).
    pub skip_multilinked: bool,
}

/// Depth bound (a pathological tree must not exhaust our fds).
const MAX_DEPTH: usize = 64;

/// Transfer ownership of `dir` (an fd opened on the work dir) and everything below it. Returns
/// how many entries changed owner; errors on single entries are counted in the second value.
pub fn transfer(dir: &OwnedFd, t: Transfer) -> (usize, usize) {
    let mut n = (0, 0);
    if let Ok(st) = fstat(dir) {
        if st.st_uid == t.from_uid {
            match fchown(
                dir.as_fd(),
                Some(Uid::from_raw(t.to_uid)),
                Some(Gid::from_raw(t.to_gid)),
            ) {
                Ok(()) => n.0 += 1,
                Err(_) => n.1 += 1,
            }
        }
    }
    walk(dir, t, 0, &mut n);
    n
}

fn walk(dir: &OwnedFd, t: Transfer, depth: usize, n: &mut (usize, usize)) {
    if depth > MAX_DEPTH {
        n.1 += 1;
        return;
    }
    // A second fd for the iteration: Dir takes ownership of the one it reads.
    let Ok(d) = Dir::openat(
        dir.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        n.1 += 1;
        return;
    };
    let mut names = Vec::new();
    for e in d.into_iter().flatten() {
        let name = e.file_name().to_owned();
        if name.as_bytes() == b"." || name.as_bytes() == b".." {
            continue;
        }
        names.push(name);
    }
    for name in names {
        let Ok(st) = fstatat(dir.as_fd(), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFDIR {
            // Open first, then chown the open directory: what we chown is what we descend into.
            if let Ok(sub) = nix::fcntl::openat(
                dir.as_fd(),
                name.as_c_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                if fstat(&sub).map(|s| s.st_uid == t.from_uid).unwrap_or(false) {
                    match fchown(
                        sub.as_fd(),
                        Some(Uid::from_raw(t.to_uid)),
                        Some(Gid::from_raw(t.to_gid)),
                    ) {
                        Ok(()) => n.0 += 1,
                        Err(_) => n.1 += 1,
                    }
                }
                walk(&sub, t, depth + 1, n);
            }
            continue;
        }
        if st.st_uid != t.from_uid
            || (t.skip_multilinked && kind == SFlag::S_IFREG && st.st_nlink > 1)
        {
            continue;
        }
        match fchownat(
            dir.as_fd(),
            name.as_c_str(),
            Some(Uid::from_raw(t.to_uid)),
            Some(Gid::from_raw(t.to_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(()) => n.0 += 1,
            Err(_) => n.1 += 1,
        }
    }
}
