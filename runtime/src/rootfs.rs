//! Build the sandbox's mount tree, inside the new mount namespace (stage 2, still privileged in
//! its own user namespace only).
//!
//! The sequence follows bubblewrap's (`setup_newroot`): first cut propagation so nothing we do
//! reaches the host; then pivot into a small staging tmpfs with the host tree parked at
//! `/oldroot`; build the sandbox root at `/newroot`; detach the host tree, and a second
//! `pivot_root(".", ".")` (as runc does, no put_old directory needed) makes `/newroot` the root.
//!
//! The root filesystem and every bind source arrive as [`Sources`]: detached mount trees that
//! stage 1 cloned with `open_tree` while it was still host root in the host (or joined) mount
//! namespace. Our user namespace could not reach a pilot's 0700 directory by path (its owner is
//! unmapped here, so no capability overrides its permissions), and resolving sources in the
//! host tree avoids any confusion between host and staging paths.
//!
//! Destinations inside the new root are resolved with [`secure_join`]: a symlink in a root
//! filesystem (e.g. an image's `/tmp -> /etc`) can never send a mount outside `/newroot`.

use crate::plan::{MountKind, MountPlan, Plan};
use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use crate::syscall::{Kind, Syscall};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Detached mount trees prepared by stage 1 (see the module docs).
pub struct Sources {
    pub root: OwnedFd,
    /// One entry per `plan.mounts` element: `Some((tree, is_dir))` for bind mounts.
    pub binds: Vec<Option<(OwnedFd, bool)>>,
}

fn clone_tree(p: &Path, recursive: bool) -> Result<OwnedFd, RootfsError> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| RootfsError {
        step: "bind source",
        path: p.display().to_string(),
        errno: Errno::EINVAL,
    })?;
    crate::sys::open_tree_clone(&c, recursive).ctx("bind source", p)
}

impl Sources {
    /// Clone the root and every bind source. Runs in stage 1, before the user namespace is
    /// entered. An error names the source: a missing one is the request's fault.
    pub fn open(plan: &Plan) -> Result<Sources, RootfsError> {
        let binds = Self::open_binds(plan)?;
        Ok(Sources {
            root: Self::open_root(plan)?,
            binds,
        })
    }

    /// Clone the root (recursively).
    pub fn open_root(plan: &Plan) -> Result<OwnedFd, RootfsError> {
        clone_tree(&plan.root, true)
    }

    /// Clone every bind source: one entry per `plan.mounts` element. A source may be a
    /// `/proc/self/fd/N` of a directory opened in the caller's mount namespace (the launcher's
    /// race-free work dir): the kernel clones only mounts of the current namespace, so this
    /// runs before any unshare of it.
    pub fn open_binds(plan: &Plan) -> Result<Vec<Option<(OwnedFd, bool)>>, RootfsError> {
        let mut binds = Vec::with_capacity(plan.mounts.len());
        for m in &plan.mounts {
            binds.push(match &m.kind {
                MountKind::Bind {
                    source,
                    recursive,
                    idmap,
                } => {
                    let tree = clone_tree(source, *recursive)?;
                    if let Some((uids, gids)) = idmap {
                        // Only possible on a detached tree, hence here and not in stage 2.
                        let ns =
                            crate::sys::userns_fd(&Plan::map_file(uids), &Plan::map_file(gids))
                                .ctx("user namespace for idmapped mount", source)?;
                        crate::sys::mount_setattr_idmap(tree.as_fd(), ns.as_fd(), *recursive)
                            .ctx("idmap bind source", source)?;
                    }
                    Some((tree, source.is_dir()))
                }
                MountKind::Fs { .. } => None,
            });
        }
        Ok(binds)
    }
}

/// MS_* flags → MOUNT_ATTR_* for `mount_setattr`.
fn attrs_of(flags: MsFlags) -> u64 {
    let mut a = 0;
    for (f, attr) in [
        (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
    ] {
        if flags.contains(f) {
            a |= attr;
        }
    }
    a
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{step} {path}: {errno}{}", erofs_hint(*errno))]
pub struct RootfsError {
    pub step: &'static str,
    pub path: String,
    pub errno: Errno,
}

fn erofs_hint(e: Errno) -> &'static str {
    if e == Errno::EROFS {
        " (mount points must already exist in a read-only root filesystem, or lie below a tmpfs such as /tmp)"
    } else {
        ""
    }
}

impl RootfsError {
    /// The request, not the machine, is at fault: a bind source that does not exist, or a mount
    /// point that would have to be created in a read-only root.
    pub fn is_request_error(&self) -> bool {
        (self.step == "bind source" && self.errno == Errno::ENOENT)
            || (self.step == "create symlink" && self.errno == Errno::EEXIST)
            || self.errno == Errno::EROFS
    }
}

trait Ctx<T> {
    fn ctx(self, step: &'static str, path: &Path) -> Result<T, RootfsError>;
}
impl<T> Ctx<T> for Result<T, Errno> {
    fn ctx(self, step: &'static str, path: &Path) -> Result<T, RootfsError> {
        self.map_err(|errno| RootfsError {
            step,
            path: path.display().to_string(),
            errno,
        })
    }
}

/// Where the staging tmpfs goes in our private mount namespace (host `/tmp` is untouched).
const STAGING: &str = "/tmp";
const NEWROOT: &str = "/newroot";
const OLDROOT: &str = "/oldroot";

/// Resolve `unsafe_path` (absolute, as seen inside the sandbox) under `root`, following
/// symlinks as if `root` were `/`: `..` stops at `root`, absolute link targets restart at
/// `root`. The result always lies under `root` (the filepath-securejoin rule runc relies on).
pub fn secure_join(
    sys: &dyn Syscall,
    root: &Path,
    unsafe_path: &Path,
) -> Result<PathBuf, RootfsError> {
    let mut pending: Vec<PathBuf> = vec![unsafe_path.to_path_buf()];
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(p) = pending.pop() {
        let comps: Vec<Component> = p.components().collect();
        for (i, c) in comps.iter().enumerate() {
            match c {
                Component::RootDir => resolved.clear(),
                Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(name) => {
                    let mut here = root.to_path_buf();
                    here.extend(&resolved);
                    here.push(name);
                    match sys.kind(&here).ctx("lstat", &here)? {
                        Some(Kind::Symlink(target)) => {
                            links += 1;
                            if links > 40 {
                                return Err(RootfsError {
                                    step: "resolve",
                                    path: unsafe_path.display().to_string(),
                                    errno: Errno::ELOOP,
                                });
                            }
                            // Continue with the link target, then the rest of this path.
                            let rest: PathBuf = comps[i + 1..].iter().collect();
                            pending.push(rest);
                            pending.push(target);
                            break;
                        }
                        _ => resolved.push(name.to_os_string()),
                    }
                }
            }
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// Create the mount point `dest` (already resolved under NEWROOT): a directory, or an empty
/// file when a file (or device) is bound onto it. Parents are created as directories.
fn make_mountpoint(sys: &dyn Syscall, dest: &Path, as_file: bool) -> Result<(), RootfsError> {
    if sys.kind(dest).ctx("lstat", dest)?.is_some() {
        return Ok(());
    }
    make_parents(sys, dest)?;
    if as_file {
        sys.touch(dest).ctx("create mount point", dest)
    } else {
        sys.mkdir(dest, 0o755).ctx("mkdir", dest)
    }
}

/// Create the missing parent directories of `path` (already resolved under NEWROOT).
fn make_parents(sys: &dyn Syscall, path: &Path) -> Result<(), RootfsError> {
    let mut cur = PathBuf::from("/");
    let parent = path.parent().unwrap_or(Path::new("/"));
    for c in parent.components().skip(1) {
        cur.push(c);
        if sys.kind(&cur).ctx("lstat", &cur)?.is_none() {
            sys.mkdir(&cur, 0o755).ctx("mkdir", &cur)?;
        }
    }
    Ok(())
}

/// One of [`Plan::symlinks`] (bubblewrap's `--symlink`): `link` resolved inside the new root,
/// missing parents created, an existing path refused (EEXIST) rather than replaced — the
/// request names a path the sandbox already has. Errors name the link as the payload sees it.
fn make_symlink(sys: &dyn Syscall, target: &Path, link: &Path) -> Result<(), RootfsError> {
    let dest = secure_join(sys, Path::new(NEWROOT), link)?;
    if sys.kind(&dest).ctx("lstat", link)?.is_some() {
        return Err(RootfsError {
            step: "create symlink",
            path: link.display().to_string(),
            errno: Errno::EEXIST,
        });
    }
    make_parents(sys, &dest).map_err(|e| RootfsError {
        path: link.display().to_string(),
        ..e
    })?;
    sys.symlink(target, &dest).ctx("create symlink", link)
}

fn mount_one(
    sys: &dyn Syscall,
    m: &MountPlan,
    tree: Option<&(OwnedFd, bool)>,
) -> Result<(), RootfsError> {
    // Errors name the destination as the payload would see it, not our staging path.
    mount_one_inner(sys, m, tree).map_err(|e| RootfsError {
        path: m.dest.display().to_string(),
        ..e
    })
}

fn mount_one_inner(
    sys: &dyn Syscall,
    m: &MountPlan,
    tree: Option<&(OwnedFd, bool)>,
) -> Result<(), RootfsError> {
    let dest = secure_join(sys, Path::new(NEWROOT), &m.dest)?;
    match (&m.kind, tree) {
        (MountKind::Bind { recursive, .. }, Some((tree, is_dir))) => {
            make_mountpoint(sys, &dest, !is_dir)?;
            sys.attach_tree(tree.as_fd(), &dest)
                .ctx("bind mount", &m.dest)?;
            let attrs = attrs_of(m.flags);
            if attrs != 0 {
                // Recursively for rbind: a read-only tree must not keep writable submounts.
                sys.set_mount_attrs(&dest, attrs, *recursive)
                    .ctx("set bind mount flags", &m.dest)?;
            }
        }
        (MountKind::Bind { .. }, None) => {
            return Err(RootfsError {
                step: "bind source not prepared",
                path: m.dest.display().to_string(),
                errno: Errno::EINVAL,
            })
        }
        (MountKind::Fs { fstype, source }, _) => {
            make_mountpoint(sys, &dest, false)?;
            let data = (!m.data.is_empty()).then_some(m.data.as_str());
            sys.mount(Some(Path::new(source)), &dest, Some(fstype), m.flags, data)
                .ctx("mount", &m.dest)?;
        }
    }
    if let Some(p) = m.propagation {
        sys.mount(None, &dest, None, p, None)
            .ctx("set propagation", &m.dest)?;
    }
    Ok(())
}

/// `/dev` as a fresh tmpfs needs the standard links that device-less tmpfs lacks (the same
/// set runc creates in `setupDevSymlinks`).
fn dev_symlinks(sys: &dyn Syscall, plan: &Plan) -> Result<(), RootfsError> {
    let dev_is_tmpfs = plan.mounts.iter().any(|m| {
        m.dest == Path::new("/dev")
            && matches!(&m.kind, MountKind::Fs { fstype, .. } if fstype == "tmpfs")
    });
    if !dev_is_tmpfs {
        return Ok(());
    }
    let has_pts = plan.mounts.iter().any(|m| m.dest == Path::new("/dev/pts"));
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if has_pts {
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        let link = Path::new(NEWROOT).join("dev").join(name);
        if sys.kind(&link).ctx("lstat", &link)?.is_none() {
            sys.symlink(Path::new(target), &link)
                .ctx("symlink", &link)?;
        }
    }
    Ok(())
}

/// Hide `path`: an empty read-only tmpfs over a directory, /dev/null over anything else (as
/// runc's maskedPaths). Missing paths are fine: there is nothing to hide.
///
/// A path we may not look up (EACCES: e.g. a proxy in the pilot's 0700 directory) is hidden
/// already: stage 2 builds the tree with the payload's fsuid, fsgid and groups, and its
/// capabilities in the sandbox's user namespace cover only inodes that namespace maps — never
/// the pilot's or root's — so the payload meets the same EACCES.
fn mask(sys: &dyn Syscall, path: &Path) -> Result<(), RootfsError> {
    let kind = secure_join(sys, Path::new(NEWROOT), path)
        .and_then(|dest| Ok((sys.kind(&dest).ctx("lstat", path)?, dest)));
    let (kind, dest) = match kind {
        Err(e) if e.errno == Errno::EACCES => return Ok(()),
        r => r?,
    };
    match kind {
        None => Ok(()),
        Some(Kind::Dir) => sys
            .mount(
                Some(Path::new("tmpfs")),
                &dest,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0,mode=000"),
            )
            .ctx("mask", path),
        Some(_) => sys
            .mount(
                Some(Path::new("/oldroot/dev/null")),
                &dest,
                None,
                MsFlags::MS_BIND,
                None,
            )
            .ctx("mask", path),
    }
}

/// Build the sandbox root and switch to it. Runs in stage 2, in the new mount namespace.
pub fn setup(sys: &dyn Syscall, plan: &Plan, sources: &Sources) -> Result<(), RootfsError> {
    let root = Path::new("/");
    let (staging, newroot, oldroot) = (Path::new(STAGING), Path::new(NEWROOT), Path::new(OLDROOT));

    // 1. Nothing mounted from here on may propagate back to the host.
    sys.mount(None, root, None, plan.root_propagation, None)
        .ctx("set root propagation", root)?;

    // 2. Staging tmpfs as root, host tree parked at /oldroot.
    sys.mount(
        Some(Path::new("tmpfs")),
        staging,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .ctx("mount staging tmpfs", staging)?;
    sys.chdir(staging).ctx("chdir", staging)?;
    for d in ["newroot", "oldroot"] {
        let p = staging.join(d);
        sys.mkdir(&p, 0o755).ctx("mkdir", &p)?;
    }
    sys.pivot_root(staging, &staging.join("oldroot"))
        .ctx("pivot_root to staging", staging)?;
    sys.chdir(root).ctx("chdir", root)?;

    // 3. The sandbox root: the cloned root tree (the host's `/` by default).
    sys.attach_tree(sources.root.as_fd(), newroot)
        .ctx("attach root filesystem", &plan.root)?;
    if plan.root_readonly {
        // Before the spec's mounts, so /tmp, /dev, the work dir etc. keep their own flags.
        sys.set_mount_attrs(newroot, MOUNT_ATTR_RDONLY, true)
            .ctx("make root read-only", &plan.root)?;
    }

    // 4. The spec's mounts, in order, then hiding and read-only paths.
    for (m, tree) in plan.mounts.iter().zip(&sources.binds) {
        mount_one(sys, m, tree.as_ref())?;
    }
    dev_symlinks(sys, plan)?;
    for (target, link) in &plan.symlinks {
        make_symlink(sys, target, link)?;
    }
    for p in &plan.masked_paths {
        mask(sys, p)?;
    }
    for p in &plan.readonly_paths {
        let dest = secure_join(sys, newroot, p)?;
        if sys.kind(&dest).ctx("lstat", p)?.is_some() {
            sys.mount(
                Some(&dest),
                &dest,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .ctx("bind read-only path", p)?;
            sys.set_mount_attrs(&dest, MOUNT_ATTR_RDONLY, true)
                .ctx("make read-only", p)?;
        }
    }

    // 5. Forget the host tree, then make /newroot the root.
    sys.umount2(oldroot, MntFlags::MNT_DETACH)
        .ctx("detach host tree", oldroot)?;
    sys.chdir(newroot).ctx("chdir", newroot)?;
    sys.pivot_root(Path::new("."), Path::new("."))
        .ctx("pivot_root", newroot)?;
    sys.umount2(Path::new("."), MntFlags::MNT_DETACH)
        .ctx("detach staging root", staging)?;
    sys.chdir(root).ctx("chdir", root)?;
    Ok(())
}

#[cfg(test)]
#[path = "rootfs_tests.rs"]
mod tests;
