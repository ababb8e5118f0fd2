//! Unit tests of the fd-relative walk (no root needed).

use super::*;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Records what the walk saw, and how many directory fds under `root` were open at once.
struct Seen {
    root: PathBuf,
    entries: BTreeSet<PathBuf>,
    dirs: BTreeSet<u64>,
    max_fds: usize,
    hook: Option<Box<dyn FnMut(&Path)>>,
}

impl Seen {
    fn new(root: &Path) -> Seen {
        Seen {
            root: root.to_path_buf(),
            entries: BTreeSet::new(),
            dirs: BTreeSet::new(),
            max_fds: 0,
            hook: None,
        }
    }
    /// fds of this process pointing into `root` (other tests' fds do not count).
    fn count_fds(&mut self) {
        let n = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.starts_with(&self.root)))
            .count();
        self.max_fds = self.max_fds.max(n);
    }
}

fn path_of(dir: BorrowedFd<'_>, name: &CStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .unwrap()
        .join(name.to_str().unwrap())
}

impl Visitor for Seen {
    fn directory(&mut self, _fd: BorrowedFd<'_>, st: &Stat) {
        self.dirs.insert(st.st_ino);
        self.count_fds();
    }
    fn entry(&mut self, dir: BorrowedFd<'_>, name: &CStr, _st: &Stat) {
        self.entries.insert(path_of(dir, name));
        self.count_fds();
    }
    fn before_open(&mut self, dir: BorrowedFd<'_>, name: &CStr) {
        if let Some(h) = &mut self.hook {
            h(&path_of(dir, name));
        }
    }
}

fn open_dir(p: &Path) -> OwnedFd {
    openat(rustix::fs::CWD, p, DIR_FLAGS, Mode::empty()).unwrap()
}

/// `root/d/d/.../d` (`depth` levels) with a file `f` at every level; returns the deepest dir.
fn deep(root: &Path, depth: usize) -> PathBuf {
    let mut p = root.to_path_buf();
    for _ in 0..depth {
        p.push("d");
    }
    std::fs::create_dir_all(&p).unwrap();
    let mut q = p.clone();
    loop {
        std::fs::write(q.join("f"), b"x").unwrap();
        if q == root {
            break;
        }
        q.pop();
    }
    p
}

#[test]
fn a_tree_deeper_than_the_old_limit_is_walked_entirely_with_bounded_fds() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("w");
    let depth = 1000;
    let bottom = deep(&root, depth);
    let mut v = Seen::new(&root);
    let stats = walk(open_dir(&root).as_fd(), &mut v).unwrap();
    assert_eq!(stats.max_depth, depth);
    assert_eq!(stats.dirs, depth as u64 + 1);
    assert_eq!(stats.entries, depth as u64 + 1);
    assert_eq!(stats.errors, 0);
    assert!(
        v.entries.contains(&bottom.join("f")),
        "the deepest file was seen"
    );
    assert!(v.entries.contains(&root.join("f")));
    // The window, the caller's top fd, one transient.
    assert!(
        v.max_fds <= FD_WINDOW + 2,
        "{} fds open at once (window {FD_WINDOW})",
        v.max_fds
    );
}

#[test]
fn symlinks_are_entries_never_followed() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("w");
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"x").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), root.join("flink")).unwrap();
    let mut v = Seen::new(&root);
    let stats = walk(open_dir(&root).as_fd(), &mut v).unwrap();
    assert_eq!(
        v.entries,
        [root.join("flink"), root.join("link")]
            .into_iter()
            .collect()
    );
    assert_eq!(stats.dirs, 1);
}

#[test]
fn a_directory_swapped_for_a_symlink_mid_walk_is_not_entered() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("w");
    let outside = t.path().join("outside");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/own"), b"x").unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"x").unwrap();
    let mut v = Seen::new(&root);
    let (r, o) = (root.clone(), outside.clone());
    // Between the walk's fstatat (a directory) and its openat: the race an attacker would run.
    v.hook = Some(Box::new(move |p| {
        if p.ends_with("sub") {
            std::fs::rename(r.join("sub"), r.join("sub.old")).unwrap();
            std::os::unix::fs::symlink(&o, r.join("sub")).unwrap();
        }
    }));
    let stats = walk(open_dir(&root).as_fd(), &mut v).unwrap();
    assert_eq!(stats.errors, 1, "the failed open is counted");
    assert!(
        v.entries.iter().all(|p| !p.starts_with(&outside)),
        "walked outside: {:?}",
        v.entries
    );
}

#[test]
fn a_tree_moved_mid_walk_is_not_followed_out_and_the_walk_restarts() {
    let t = tempfile::tempdir().unwrap();
    let top = t.path().join("top");
    let root = top.join("w");
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("victim"), b"x").unwrap();
    let depth = FD_WINDOW * 3;
    deep(&root, depth);
    let mut v = Seen::new(t.path());
    let (r, e) = (root.clone(), elsewhere.clone());
    let deepest = (0..depth).fold(root.clone(), |p, _| p.join("d"));
    // Just before the deepest directory is opened, move level 2 (its fd was closed long ago)
    // out of the tree: climbing back through ".." would now lead into `elsewhere`.
    v.hook = Some(Box::new(move |p| {
        if p == deepest {
            std::fs::rename(r.join("d/d"), e.join("moved")).unwrap();
        }
    }));
    let stats = walk(open_dir(&root).as_fd(), &mut v).unwrap();
    assert_eq!(stats.restarts, 1);
    assert!(
        !v.entries.contains(&elsewhere.join("victim")),
        "the walk continued outside the tree"
    );
    // After the restart, the remaining tree was walked.
    assert!(v.entries.contains(&root.join("d/f")));
    assert_eq!(std::fs::metadata(root.join("d")).unwrap().nlink(), 2);
}

#[test]
fn a_tree_that_keeps_moving_fails_loudly() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("w");
    let away = t.path().join("away");
    deep(&root, FD_WINDOW * 2);
    let mut v = Seen::new(t.path());
    let r = root.clone();
    let deepest = (0..FD_WINDOW * 2).fold(root.clone(), |p, _| p.join("d"));
    // Each walk: level 2 is put back when level 1 is about to be opened, and moved away (the
    // inode stays, its parent changes) when the walk reaches the bottom, so every climb back
    // sees a mismatch.
    std::fs::create_dir_all(&away).unwrap();
    v.hook = Some(Box::new(move |p| {
        if p == r.join("d") && away.join("d").exists() {
            std::fs::rename(away.join("d"), r.join("d/d")).unwrap();
        }
        if p == deepest {
            std::fs::rename(r.join("d/d"), away.join("d")).unwrap();
        }
    }));
    match walk(open_dir(&root).as_fd(), &mut v) {
        Err(WalkError::Moved) => {}
        other => panic!("expected Moved, got {other:?}"),
    }
}

#[test]
fn mount_points_are_not_crossed() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: mounting needs root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("w");
    let mnt = root.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::write(root.join("f"), b"x").unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &mnt,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=64k"),
    )
    .unwrap();
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _u = Unmount(&mnt);
    std::fs::write(mnt.join("inside"), b"x").unwrap();
    let mut v = Seen::new(&root);
    let stats = walk(open_dir(&root).as_fd(), &mut v).unwrap();
    assert_eq!(stats.mounts_skipped, 1);
    assert_eq!(v.entries, [root.join("f")].into_iter().collect());
}
