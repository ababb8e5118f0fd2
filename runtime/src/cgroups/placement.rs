//! Where a payload's cgroup goes: under a configured root, or nested under the calling pilot's
//! own cgroup (an HTCondor slot, a Slurm step, a Kubernetes pod), so the batch system's limits
//! and accounting cover the payload too.
//!
//! v2 rules honoured (kernel `cgroup-v2.rst`, "No Internal Process Constraint" and
//! "Delegation"): a non-root cgroup can only distribute domain controllers to children when it
//! has no processes of its own, and a delegatee may only write inside its delegated cgroup. So
//! for a caller cgroup `C` holding the pilot's processes we move those into a leaf `C/pilot`,
//! then enable the controllers in `C/cgroup.subtree_control` and put the payload at `C/<id>` —
//! every write stays inside `C` (the same dance systemd-run --scope / runc do for delegated
//! units). Controllers that `C`'s parent did not give to `C` cannot be enabled without writing
//! outside the delegation: then we fall back to the configured root, or fail with a site error.
//!
//! After that first placement the pilot's own cgroup *is* `C/pilot`, so a second placement for
//! the same pilot must go beside the first payload at `C/<id2>`, not nest ever deeper
//! (`C/pilot/<id2>`, `C/pilot/pilot/...`). Stepping up is the one write outside the caller's
//! current cgroup, so it is taken only when every fact proves `C` is the cgroup a previous
//! placement treated as the caller's own (see [`LeafFacts`]): exactly one level, the leaf is
//! named [`PILOT_LEAF`] and carries the `trusted.` xattr [`LEAF_MARKER`] we set when moving the
//! processes (only CAP_SYS_ADMIN in the initial user namespace may set `trusted.*` xattrs,
//! `xattr(7)`, so neither an unprivileged pilot nor a batch system's own `pilot` cgroup can carry
//! it; systemd marks its cgroups with `trusted.invocation_id` the same way), `C` is not the root,
//! holds no process of its own and already enables the controllers in `cgroup.subtree_control`.
//! Otherwise the leaf is treated like any caller cgroup (the old, always-safe behaviour).

use std::path::{Path, PathBuf};

use super::cgroup::enable_controllers;
use super::error::{CgroupError, Result};
use super::fsio;
use super::layout::{self, Version};
use super::parse;

/// The placement policy, from the site configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Under this absolute cgroup path (e.g. `/pilotbox`), the same in every hierarchy.
    Under(String),
    /// Under the caller's own cgroup; if that is impossible, under `fallback` (or fail).
    Nested { fallback: Option<String> },
}

/// Name of the leaf a v2 caller's own processes are moved into.
pub const PILOT_LEAF: &str = "pilot";
/// `trusted.` xattr set on a [`PILOT_LEAF`] that placement moved a caller's processes into.
pub const LEAF_MARKER: &str = "trusted.pilotbox.pilot_leaf";
/// v2 controllers enabled for the payload's parent when available (memory and pids required).
const V2_WANTED: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];
const V2_REQUIRED: [&str; 2] = ["memory", "pids"];

/// Decide the cgroup path of payload `id` for the process `caller_pid` (see module docs).
/// The result is accepted by [`super::Cgroup::create`]; on v1 it may be the per-controller form
/// (`memory=/a/id;pids=/id;...`) when the caller sits at different paths per hierarchy.
pub fn place(placement: &Placement, caller_pid: i32, id: &str) -> Result<String> {
    validate_id(id)?;
    match placement {
        Placement::Under(root) => under(root, id),
        Placement::Nested { fallback } => match nested(caller_pid, id) {
            Ok(p) => Ok(p),
            Err(e) => match fallback {
                Some(root) => {
                    tracing::warn!("nested cgroup placement impossible ({e}); using {root}");
                    under(root, id)
                }
                None => Err(match e {
                    CgroupError::Placement(_) => e,
                    other => CgroupError::Placement(format!(
                        "nested placement failed and no fallback root is configured: {other}"
                    )),
                }),
            },
        },
    }
}

/// A payload id becomes one path component: a conservative character set, not `.`/`..`, and not
/// the pilot leaf's name.
fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id != PILOT_LEAF
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidPath {
            path: id.to_owned(),
            reason: "payload id must be 1-128 of [A-Za-z0-9._-], not '.', '..' or 'pilot'",
        })
    }
}

fn child(parent: &str, id: &str) -> String {
    format!("{}/{id}", parent.trim_end_matches('/'))
}

fn under(root: &str, id: &str) -> Result<String> {
    if root != "/" {
        layout::validate(root)?;
    }
    Ok(child(root, id))
}

fn nested(caller_pid: i32, id: &str) -> Result<String> {
    let version = layout::detect()?;
    let file = PathBuf::from(format!("/proc/{caller_pid}/cgroup"));
    let text = fsio::read(&file)?;
    let pc = parse::proc_cgroup(&text).map_err(|reason| CgroupError::Parse {
        path: file.clone(),
        reason,
    })?;
    match version {
        Version::V2 => {
            let caller = pc.unified.ok_or_else(|| {
                CgroupError::Placement(format!("{} has no cgroup-v2 line", file.display()))
            })?;
            Ok(child(&v2_payload_parent(&caller)?, id))
        }
        Version::V1 => {
            let mut entries = Vec::new();
            for m in layout::v1_mounts() {
                let c = m.controllers[0];
                let p = pc.v1_path(c).ok_or_else(|| {
                    CgroupError::Placement(format!("{} lists no {c} hierarchy", file.display()))
                })?;
                entries.push((c, child(&strip_mount_root(p, &m.root), id)));
            }
            Ok(layout::format_per_controller(&entries))
        }
    }
}

/// `/proc/PID/cgroup` paths are relative to the hierarchy's root; our paths are relative to the
/// mount point. They differ when only a subtree is mounted (mountinfo root ≠ `/`).
fn strip_mount_root(p: &str, root: &Path) -> String {
    let root = root.to_string_lossy();
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return p.to_owned();
    }
    match p.strip_prefix(root) {
        Some("") => "/".to_owned(),
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        _ => p.to_owned(),
    }
}

/// The v2 cgroup the payload goes under for a caller in `caller` (see module docs): the parent
/// of our own marked leaf when [`LeafFacts::parent_is_callers`], else `caller` itself, prepared.
fn v2_payload_parent(caller: &str) -> Result<String> {
    if let Some(parent) = leaf_parent(caller) {
        let facts = LeafFacts::read(caller, parent)?;
        if facts.parent_is_callers() {
            return Ok(parent.to_owned());
        }
        tracing::debug!("caller cgroup {caller} is a {PILOT_LEAF} leaf but {facts:?}: nesting");
    }
    prepare_v2_parent(caller)?;
    Ok(caller.to_owned())
}

/// The cgroup one level above a caller cgroup named [`PILOT_LEAF`]: `/a/slot` for
/// `/a/slot/pilot`. `None` for any other name, and for `/pilot` (the root is never a payload
/// parent: placement never makes a leaf there, see [`prepare_v2_parent`]). Pure string logic;
/// `caller` comes from `/proc/PID/cgroup`, already validated as absolute by [`parse`].
fn leaf_parent(caller: &str) -> Option<&str> {
    let (parent, name) = caller.rsplit_once('/')?;
    if name != PILOT_LEAF || parent.is_empty() || !parent.starts_with('/') {
        return None;
    }
    layout::validate(parent).ok()?;
    Some(parent)
}

/// What cgroupfs says about a caller's [`PILOT_LEAF`] cgroup and its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LeafFacts {
    /// The leaf carries [`LEAF_MARKER`]: our placement made it the pilot's leaf.
    leaf_marked: bool,
    /// The parent's `cgroup.procs` is empty (no-internal-process rule in force).
    parent_has_no_procs: bool,
    /// The parent's `cgroup.subtree_control` already has every wanted controller it can have,
    /// including all of [`V2_REQUIRED`] (so placing there writes nothing above the leaf).
    parent_enables_controllers: bool,
}

impl LeafFacts {
    /// Step up only when every fact holds.
    fn parent_is_callers(&self) -> bool {
        self.leaf_marked && self.parent_has_no_procs && self.parent_enables_controllers
    }

    fn read(leaf: &str, parent: &str) -> Result<LeafFacts> {
        let root = layout::v2_root();
        let (leaf_dir, parent_dir) = (layout::join(&root, leaf), layout::join(&root, parent));
        let parent_enables_controllers = match controllers_state(&parent_dir)? {
            ControllerState::Missing(_) => false,
            ControllerState::Wanted(wanted, enabled) => {
                wanted.iter().all(|w| enabled.iter().any(|e| e == w))
            }
        };
        Ok(LeafFacts {
            leaf_marked: has_leaf_marker(&leaf_dir),
            parent_has_no_procs: fsio::procs(&parent_dir)?.is_empty(),
            parent_enables_controllers,
        })
    }
}

/// `trusted.*` xattrs need CAP_SYS_ADMIN in the initial user namespace to write (`xattr(7)`);
/// cgroupfs (kernfs) stores them in memory with the cgroup.
fn has_leaf_marker(dir: &Path) -> bool {
    let mut buf = [0u8; 8];
    matches!(rustix::fs::getxattr(dir, LEAF_MARKER, &mut buf[..]), Ok(n) if &buf[..n] == b"1")
}

/// A v2 cgroup's controllers: [`V2_REQUIRED`] one not available, or (wanted ∩ available,
/// enabled in `cgroup.subtree_control`).
enum ControllerState {
    Missing(&'static str),
    Wanted(Vec<&'static str>, Vec<String>),
}

fn controllers_state(dir: &Path) -> Result<ControllerState> {
    let avail = parse::controller_list(&fsio::read(&dir.join("cgroup.controllers"))?);
    if let Some(c) = V2_REQUIRED.iter().find(|c| !avail.iter().any(|a| a == *c)) {
        return Ok(ControllerState::Missing(c));
    }
    let wanted = V2_WANTED
        .iter()
        .filter(|c| avail.iter().any(|a| a == *c))
        .copied()
        .collect();
    let enabled = parse::controller_list(&fsio::read(&dir.join("cgroup.subtree_control"))?);
    Ok(ControllerState::Wanted(wanted, enabled))
}

/// Make the caller's v2 cgroup able to hold the payload as a child (see module docs).
pub fn prepare_v2_parent(caller: &str) -> Result<()> {
    let dir = layout::join(&layout::v2_root(), caller);
    if !dir.is_dir() {
        return Err(CgroupError::Placement(format!(
            "the caller's cgroup {} is not visible here (another cgroup namespace?)",
            dir.display()
        )));
    }
    let (wanted, enabled) = match controllers_state(&dir)? {
        ControllerState::Missing(c) => {
            return Err(CgroupError::Placement(format!(
                "controller {c} is not delegated to the caller's cgroup {} (see its cgroup.controllers)",
                dir.display()
            )))
        }
        ControllerState::Wanted(w, e) => (w, e),
    };
    if wanted.iter().all(|w| enabled.iter().any(|e| e == w)) {
        return Ok(());
    }
    if caller != "/" && !fsio::procs(&dir)?.is_empty() {
        move_to_leaf(&dir)?;
    }
    enable_controllers(&dir, &wanted)
}

/// Move every process of `dir` into `dir/pilot`, repeating while new ones appear (a pilot may
/// fork meanwhile). Bounded: 50 rounds.
/// The leaf is marked with [`LEAF_MARKER`] first, so a later placement for the same pilot can
/// recognise it; without the privilege to set it (a pilotbox run inside a container), a later
/// placement simply nests one level deeper.
fn move_to_leaf(dir: &Path) -> Result<()> {
    let leaf = dir.join(PILOT_LEAF);
    fsio::mkdir(&leaf)?;
    if let Err(e) = rustix::fs::setxattr(&leaf, LEAF_MARKER, b"1", rustix::fs::XattrFlags::empty())
    {
        tracing::warn!("cannot mark {} with {LEAF_MARKER}: {e}", leaf.display());
    }
    let procs_file = leaf.join("cgroup.procs");
    for _ in 0..50 {
        let procs = fsio::procs(dir)?;
        if procs.is_empty() {
            return Ok(());
        }
        for p in procs {
            match fsio::write(&procs_file, &p.to_string()) {
                Ok(()) => {}
                // exited meanwhile
                Err(CgroupError::Write { ref source, .. })
                    if source.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Err(CgroupError::Placement(format!(
        "processes keep appearing in {}; cannot empty it into {PILOT_LEAF}/",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_root_is_stripped() {
        use std::path::Path;
        assert_eq!(
            strip_mount_root("/slurm/job_1", Path::new("/")),
            "/slurm/job_1"
        );
        assert_eq!(
            strip_mount_root("/docker/abc/x", Path::new("/docker/abc")),
            "/x"
        );
        assert_eq!(
            strip_mount_root("/docker/abc", Path::new("/docker/abc")),
            "/"
        );
        assert_eq!(
            strip_mount_root("/docker/abcd", Path::new("/docker/abc")),
            "/docker/abcd"
        );
    }

    #[test]
    fn only_our_leaf_name_steps_up_exactly_one_level() {
        assert_eq!(leaf_parent("/a/slot/pilot"), Some("/a/slot"));
        assert_eq!(leaf_parent("/slot/pilot"), Some("/slot"));
        for no in [
            "/pilot",         // the root is never a payload parent
            "/",              // the root itself
            "/a/slot",        // not the leaf
            "/a/slot/pilot2", // a different name
            "/a/slot/xpilot",
            "/a/pilot/x",     // the leaf name higher up does not count
            "/a/slot/pilot/", // not a clean path
            "pilot",          // relative
            "/a/../pilot",    // cgroup-namespace-relative path leaving the namespace
            "/../pilot",
            "/a//pilot",
        ] {
            assert_eq!(leaf_parent(no), None, "{no:?} stepped up");
        }
        // Stepping up twice would need `/a/pilot/pilot`: only one level is ever taken.
        assert_eq!(leaf_parent("/a/pilot/pilot"), Some("/a/pilot"));
    }

    #[test]
    fn stepping_up_needs_every_fact() {
        let all = LeafFacts {
            leaf_marked: true,
            parent_has_no_procs: true,
            parent_enables_controllers: true,
        };
        assert!(all.parent_is_callers());
        for missing in 0..3 {
            let f = LeafFacts {
                leaf_marked: missing != 0,
                parent_has_no_procs: missing != 1,
                parent_enables_controllers: missing != 2,
            };
            assert!(!f.parent_is_callers(), "{f:?} accepted");
        }
    }

    #[test]
    fn under_root_paths() {
        assert_eq!(
            place(&Placement::Under("/pilotbox".into()), 1, "p-1").unwrap(),
            "/pilotbox/p-1"
        );
        assert_eq!(
            place(&Placement::Under("/".into()), 1, "p-1").unwrap(),
            "/p-1"
        );
        assert!(place(&Placement::Under("pilotbox".into()), 1, "p-1").is_err());
        assert!(place(&Placement::Under("/a/../b".into()), 1, "p-1").is_err());
    }

    #[test]
    fn ids_are_single_safe_components() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "pilot",
            "a b",
            "a\n",
            &"x".repeat(129),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["p-42", "job.7_a", "A"] {
            assert!(validate_id(good).is_ok());
        }
    }

    #[test]
    fn nested_without_fallback_is_a_site_error() {
        // pid 0 has no /proc entry: nested fails, no fallback -> Placement (site error).
        let e = place(&Placement::Nested { fallback: None }, 0, "p-1").unwrap_err();
        assert!(e.is_site_error(), "{e}");
        let p = place(
            &Placement::Nested {
                fallback: Some("/fb".into()),
            },
            0,
            "p-1",
        )
        .unwrap();
        assert_eq!(p, "/fb/p-1");
    }
}
