//! The seam between sandbox setup logic and the kernel (as youki's `Syscall` trait): rootfs and
//! identity code call these methods, [`Linux`] makes the real syscalls, and unit tests use
//! [`Recorder`] to check the exact sequence without root.

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

/// What is at a path, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    /// Device, socket, fifo: bind-mountable like a file.
    Other,
}

pub trait Syscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno>;
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno>;
    fn chdir(&self, path: &Path) -> Result<(), Errno>;
    /// mkdir; `EEXIST` for an existing directory is not an error.
    fn mkdir(&self, path: &Path, mode: u32) -> Result<(), Errno>;
    /// Create an empty regular file to bind a file onto; existing is fine.
    fn touch(&self, path: &Path) -> Result<(), Errno>;
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno>;
    /// lstat: `None` when nothing is there.
    fn kind(&self, path: &Path) -> Result<Option<Kind>, Errno>;
    /// Set `MOUNT_ATTR_*` flags on the mount at `path` (and below it when `recursive`).
    fn set_mount_attrs(&self, path: &Path, attrs: u64, recursive: bool) -> Result<(), Errno>;
    /// Attach a detached mount tree (an `open_tree` fd) at `target`.
    fn attach_tree(&self, tree: BorrowedFd<'_>, target: &Path) -> Result<(), Errno>;
    fn sethostname(&self, name: &str) -> Result<(), Errno>;
    fn setgroups(&self, gids: &[u32]) -> Result<(), Errno>;
    fn setresgid(&self, gid: u32) -> Result<(), Errno>;
    fn setresuid(&self, uid: u32) -> Result<(), Errno>;
}

/// The real thing.
pub struct Linux;

fn cpath(p: &Path) -> Result<std::ffi::CString, Errno> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

impl Syscall for Linux {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        nix::mount::mount(source, target, fstype, flags, data)
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno> {
        nix::mount::umount2(target, flags)
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        nix::unistd::pivot_root(new_root, put_old)
    }
    fn chdir(&self, path: &Path) -> Result<(), Errno> {
        nix::unistd::chdir(path)
    }
    fn mkdir(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        match nix::unistd::mkdir(path, nix::sys::stat::Mode::from_bits_truncate(mode)) {
            Err(Errno::EEXIST) if path.is_dir() => Ok(()),
            r => r,
        }
    }
    fn touch(&self, path: &Path) -> Result<(), Errno> {
        use nix::fcntl::{open, OFlag};
        use nix::sys::stat::Mode;
        let flags = OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        open(path, flags, Mode::from_bits_truncate(0o644)).map(drop)
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno> {
        nix::unistd::symlinkat(target, nix::fcntl::AT_FDCWD, link)
    }
    fn kind(&self, path: &Path) -> Result<Option<Kind>, Errno> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Ok(Some(Kind::Dir)),
            Ok(m) if m.is_file() => Ok(Some(Kind::File)),
            Ok(m) if m.file_type().is_symlink() => std::fs::read_link(path)
                .map(|t| Some(Kind::Symlink(t)))
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
            Ok(_) => Ok(Some(Kind::Other)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
        }
    }
    fn set_mount_attrs(&self, path: &Path, attrs: u64, recursive: bool) -> Result<(), Errno> {
        crate::sys::mount_setattr(&cpath(path)?, attrs, recursive)
    }
    fn attach_tree(&self, tree: BorrowedFd<'_>, target: &Path) -> Result<(), Errno> {
        crate::sys::move_mount_to(tree, &cpath(target)?)
    }
    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        nix::unistd::sethostname(name)
    }
    fn setgroups(&self, gids: &[u32]) -> Result<(), Errno> {
        let gids: Vec<_> = gids
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&gids)
    }
    fn setresgid(&self, gid: u32) -> Result<(), Errno> {
        let g = nix::unistd::Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g)
    }
    fn setresuid(&self, uid: u32) -> Result<(), Errno> {
        let u = nix::unistd::Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u)
    }
}

/// Records every call as a line of text and simulates a filesystem of known paths, for unit
/// tests of setup sequences. Paths not declared are absent; `mkdir`/`touch`/`symlink` add them.
#[derive(Default)]
pub struct Recorder {
    pub calls: RefCell<Vec<String>>,
    pub fs: RefCell<HashMap<PathBuf, Kind>>,
    /// Calls (by their recorded text prefix) that fail with the given errno.
    pub fail: RefCell<Vec<(String, Errno)>>,
}

impl Recorder {
    pub fn with(paths: &[(&str, Kind)]) -> Self {
        let r = Recorder::default();
        for (p, k) in paths {
            r.fs.borrow_mut().insert(PathBuf::from(p), k.clone());
        }
        r
    }
    fn record(&self, line: String) -> Result<(), Errno> {
        let failing = self
            .fail
            .borrow()
            .iter()
            .find(|(p, _)| line.starts_with(p.as_str()))
            .map(|x| x.1);
        self.calls.borrow_mut().push(line);
        match failing {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }
}

impl Syscall for Recorder {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        let src = source
            .map(|s| s.display().to_string())
            .unwrap_or_else(|| "-".into());
        self.record(format!(
            "mount {src} {} {} {flags:?} {}",
            target.display(),
            fstype.unwrap_or("-"),
            data.unwrap_or("-")
        ))
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno> {
        self.record(format!("umount2 {} {flags:?}", target.display()))
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        self.record(format!(
            "pivot_root {} {}",
            new_root.display(),
            put_old.display()
        ))
    }
    fn chdir(&self, path: &Path) -> Result<(), Errno> {
        self.record(format!("chdir {}", path.display()))
    }
    fn mkdir(&self, path: &Path, mode: u32) -> Result<(), Errno> {
        self.record(format!("mkdir {} {mode:o}", path.display()))?;
        self.fs.borrow_mut().insert(path.to_path_buf(), Kind::Dir);
        Ok(())
    }
    fn touch(&self, path: &Path) -> Result<(), Errno> {
        self.record(format!("touch {}", path.display()))?;
        self.fs.borrow_mut().insert(path.to_path_buf(), Kind::File);
        Ok(())
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno> {
        self.record(format!("symlink {} {}", target.display(), link.display()))?;
        self.fs
            .borrow_mut()
            .insert(link.to_path_buf(), Kind::Symlink(target.to_path_buf()));
        Ok(())
    }
    fn kind(&self, path: &Path) -> Result<Option<Kind>, Errno> {
        Ok(self.fs.borrow().get(path).cloned())
    }
    fn set_mount_attrs(&self, path: &Path, attrs: u64, recursive: bool) -> Result<(), Errno> {
        self.record(format!(
            "setattr {} {attrs:#x} recursive={recursive}",
            path.display()
        ))
    }
    fn attach_tree(&self, tree: BorrowedFd<'_>, target: &Path) -> Result<(), Errno> {
        use std::os::fd::AsRawFd;
        self.record(format!(
            "attach fd{} {}",
            tree.as_raw_fd(),
            target.display()
        ))
    }
    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        self.record(format!("sethostname {name}"))
    }
    fn setgroups(&self, gids: &[u32]) -> Result<(), Errno> {
        self.record(format!("setgroups {gids:?}"))
    }
    fn setresgid(&self, gid: u32) -> Result<(), Errno> {
        self.record(format!("setresgid {gid}"))
    }
    fn setresuid(&self, uid: u32) -> Result<(), Errno> {
        self.record(format!("setresuid {uid}"))
    }
}
