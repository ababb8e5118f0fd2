//! [`Cgroup`]: one payload cgroup, present in every hierarchy it needs (v1) or the single
//! unified hierarchy (v2). Creation is transactional: anything made before a failure is removed.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::error::{CgroupError, Result};
use super::fsio;
use super::layout::{self, Dir, Version};
use super::parse;
use super::resources;

/// One payload cgroup. Obtained from [`Cgroup::create`] or [`Cgroup::open`]; removed with
/// [`Cgroup::destroy`] (dropping the handle leaves the cgroup in place on purpose: a lifecycle
/// command or `gc` may still own it).
#[derive(Debug)]
pub struct Cgroup {
    pub(super) version: Version,
    pub(super) path: String,
    pub(super) dirs: Vec<Dir>,
    dir_fd: Option<OwnedFd>,
}

/// Directories created so far by [`Cgroup::create`]; removed in reverse order on drop unless
/// [`Undo::disarm`] was called (that makes "nothing left behind on error" hold for `?` too).
#[derive(Default)]
struct Undo(Vec<PathBuf>);

impl Undo {
    fn disarm(&mut self) {
        self.0.clear();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            if let Err(e) = fsio::rmdir(d) {
                tracing::error!("cgroup rollback: {e}");
            }
        }
    }
}

impl Cgroup {
    /// Create the cgroup `path` and apply `resources`.
    ///
    /// `path` is absolute inside the hierarchy (`/pilotbox/p-42`) or, on v1, the per-controller
    /// form returned by [`super::place`]. Missing ancestors are created. On v2 the controllers
    /// the resources need (always memory and pids) are enabled in each ancestor's
    /// `cgroup.subtree_control` that lacks them; on v1 it is made only in the hierarchies of
    /// [`resources::v1_controllers`], and a new cpuset directory inherits its parent's
    /// `cpuset.cpus`/`cpuset.mems` (else no task could join it). The payload cgroup
    /// itself must not exist yet. On any error every directory this call made is removed.
    pub fn create(path: &str, resources: Option<&LinuxResources>) -> Result<Cgroup> {
        let version = layout::detect()?;
        let mut dirs = layout::resolve(version, path)?;
        if version == Version::V1 {
            let wanted = resources::v1_controllers(resources);
            dirs.retain(|d| d.controllers.iter().any(|c| wanted.contains(c)));
        }
        let mut undo = Undo::default();
        match version {
            Version::V2 => {
                let needed = resources::v2_controllers(resources);
                make_dirs(&dirs[0], &mut undo, |parent| {
                    enable_controllers(parent, &needed)
                })?;
            }
            Version::V1 => {
                for d in &dirs {
                    let cpuset = d.serves("cpuset");
                    make_dirs_v1(d, &mut undo, cpuset)?;
                }
            }
        }
        let mut cg = Cgroup {
            version,
            path: path.to_owned(),
            dirs,
            dir_fd: None,
        };
        if version == Version::V2 {
            cg.dir_fd = Some(open_dir(&cg.dirs[0].full())?);
        }
        if let Some(r) = resources {
            resources::apply(version, &cg.dirs, r)?;
        }
        undo.disarm();
        Ok(cg)
    }

    /// Open an existing cgroup (lifecycle commands, `gc`). On v1, hierarchies in which the
    /// directory is missing are skipped; `NotFound` if it exists in none.
    pub fn open(path: &str) -> Result<Cgroup> {
        let version = layout::detect()?;
        let dirs: Vec<Dir> = layout::resolve(version, path)?
            .into_iter()
            .filter(|d| d.full().is_dir())
            .collect();
        if dirs.is_empty() {
            return Err(CgroupError::NotFound(PathBuf::from(path)));
        }
        let dir_fd = match version {
            Version::V2 => Some(open_dir(&dirs[0].full())?),
            Version::V1 => None,
        };
        Ok(Cgroup {
            version,
            path: path.to_owned(),
            dirs,
            dir_fd,
        })
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The path as given to `create`/`open`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The cgroup's directories in the mounted filesystems (one on v2, one per hierarchy on v1).
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(Dir::full).collect()
    }

    /// The directory of the hierarchy serving `controller` (v2: the only directory).
    pub fn dir_of(&self, controller: &str) -> Option<PathBuf> {
        match self.version {
            Version::V2 => Some(self.dirs[0].full()),
            Version::V1 => self
                .dirs
                .iter()
                .find(|d| d.serves(controller))
                .map(Dir::full),
        }
    }

    /// v2: the cgroup directory opened `O_RDONLY|O_DIRECTORY|O_CLOEXEC`, for
    /// `clone3(CLONE_INTO_CGROUP)` (the child starts inside the cgroup, so it is limited and
    /// killable from its first instruction). `None` on v1.
    pub fn dir_fd(&self) -> Option<BorrowedFd<'_>> {
        self.dir_fd.as_ref().map(|f| f.as_fd())
    }

    /// Move the calling thread into the cgroup in every hierarchy, by writing `0` to each
    /// `tasks` file. For a single-threaded caller (stage 1 of a launch, forked from the
    /// single-threaded supervisor) that is the whole process, and all it forks later is born
    /// inside. Why not [`Cgroup::add_process`]: moving a *process* (`cgroup.procs`, or any pid)
    /// takes the global `cgroup_threadgroup_rwsem` for writing, and that per-cpu rwsem first
    /// waits for an RCU grace period — 10–20 ms per launch on the v1 bench host
    /// (docs/performance.md). Moving the current thread alone skips the lock (kernel/cgroup/
    /// cgroup.c, `cgroup_procs_write_start`: `threadgroup_locked = pid || threadgroup`).
    /// On v2, launches use `CLONE_INTO_CGROUP` and never migrate; called there anyway, this
    /// moves the whole calling process (`0` to `cgroup.procs`: v2 moves a single thread only
    /// within a threaded subtree), paying the grace period.
    pub fn join_current_thread(&self) -> Result<()> {
        let file = match self.version {
            Version::V1 => "tasks",
            Version::V2 => "cgroup.procs",
        };
        for d in &self.dirs {
            fsio::write(&d.full().join(file), "0")?;
        }
        Ok(())
    }

    /// Move process `pid` (all its threads) into the cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        if pid <= 0 {
            return Err(CgroupError::InvalidResource {
                what: "pid",
                reason: format!("{pid} is not a process id"),
            });
        }
        for d in &self.dirs {
            fsio::write(&d.full().join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Every process in the cgroup or any sub-cgroup, in any hierarchy (sorted, de-duplicated).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut all = Vec::new();
        for d in &self.dirs {
            for sub in fsio::subtree(&d.full())? {
                all.extend(fsio::procs(&sub)?);
            }
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Send `sig` to every process of the cgroup. Processes that exit meanwhile are ignored.
    pub fn signal(&self, sig: Signal) -> Result<()> {
        for pid in self.pids()? {
            signal_pid(pid, sig)?;
        }
        Ok(())
    }

    /// Kill what is left, then remove the cgroup's directories in every hierarchy, sub-cgroups
    /// first. Succeeds if they are already gone. Every hierarchy is attempted even after an
    /// error; the first error is returned.
    pub fn destroy(self) -> Result<()> {
        let mut first: Option<CgroupError> = None;
        if !self.pids()?.is_empty() {
            if let Err(e) = self.kill() {
                first = Some(e);
            }
        }
        if self.version == Version::V1 {
            // A frozen (v1) cgroup can be removed, but leave a clean state for a racing reader.
            if let Some(f) = self.dir_of("freezer") {
                let _ = fsio::write(&f.join("freezer.state"), "THAWED");
            }
        }
        drop(self.dir_fd);
        for d in &self.dirs {
            if let Err(e) = fsio::rmdir_tree(&d.full()) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// `kill(2)` one pid, treating "no such process" as success.
pub(super) fn signal_pid(pid: i32, sig: Signal) -> Result<()> {
    match kill(Pid::from_raw(pid), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(source) => Err(CgroupError::Signal {
            pid,
            signal: sig,
            source,
        }),
    }
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    // std opens with O_CLOEXEC; add O_DIRECTORY so a swapped-in non-directory is refused.
    let f: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|source| CgroupError::Io {
            op: "open",
            path: dir.to_owned(),
            source,
        })?;
    Ok(OwnedFd::from(f))
}

/// mkdir every missing component of `d`, calling `before_child(parent)` on each existing parent
/// first (v2: enable controllers). The last component must be new.
fn make_dirs(
    d: &Dir,
    undo: &mut Undo,
    mut before_child: impl FnMut(&Path) -> Result<()>,
) -> Result<()> {
    let comps: Vec<&str> = d.rel.split('/').filter(|c| !c.is_empty()).collect();
    let mut cur = d.mount.clone();
    for (i, c) in comps.iter().enumerate() {
        before_child(&cur)?;
        cur.push(c);
        if fsio::mkdir(&cur)? {
            undo.0.push(cur.clone());
        } else if i + 1 == comps.len() {
            return Err(CgroupError::Io {
                op: "create (it already exists)",
                path: cur,
                source: std::io::Error::from_raw_os_error(libc::EEXIST),
            });
        }
    }
    Ok(())
}

fn make_dirs_v1(d: &Dir, undo: &mut Undo, cpuset: bool) -> Result<()> {
    make_dirs(d, undo, |_| Ok(()))?;
    if cpuset {
        // Each new cpuset dir starts with empty cpus/mems unless cgroup.clone_children=1;
        // copy from the parent, top-down (cgroups-rs does the same in post_create). Every dir
        // on the path, not only those this call made: a concurrent launch may have just made a
        // shared ancestor and not filled it yet — a child of an empty cpuset takes no task
        // (ENOSPC). Writing the same value twice is harmless.
        let mut parent = d.mount.clone();
        for c in d.rel.split('/').filter(|c| !c.is_empty()) {
            let dir = parent.join(c);
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if fsio::read(&dir.join(f))?.trim().is_empty() {
                    let v = fsio::read(&parent.join(f))?;
                    fsio::write(&dir.join(f), v.trim())?;
                }
            }
            parent = dir;
        }
    }
    Ok(())
}

/// v2: make sure `dir` delegates `needed` controllers to its children (`cgroup.subtree_control`).
/// Only writes when something is missing, so an already-configured delegated parent is never
/// touched. A controller absent from `cgroup.controllers` was not given to this subtree by its
/// parent: a site error (delegation), reported with the file name.
pub(super) fn enable_controllers(dir: &Path, needed: &[&str]) -> Result<()> {
    let sc = dir.join("cgroup.subtree_control");
    let enabled = parse::controller_list(&fsio::read(&sc)?);
    let missing: Vec<&str> = needed
        .iter()
        .filter(|c| !enabled.iter().any(|e| e == *c))
        .copied()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let avail_file = dir.join("cgroup.controllers");
    let avail = parse::controller_list(&fsio::read(&avail_file)?);
    if let Some(c) = missing.iter().find(|c| !avail.iter().any(|a| a == *c)) {
        return Err(CgroupError::Unsupported(format!(
            "controller {c} is not available in {} (not delegated to this subtree)",
            avail_file.display()
        )));
    }
    let value = missing
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    fsio::write(&sc, &value)
}
