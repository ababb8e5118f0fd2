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

use std::path::PathBuf;

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
            prepare_v2_parent(&caller)?;
            Ok(child(&caller, id))
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
fn strip_mount_root(p: &str, root: &std::path::Path) -> String {
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

/// Make the caller's v2 cgroup able to hold the payload as a child (see module docs).
pub fn prepare_v2_parent(caller: &str) -> Result<()> {
    let dir = layout::join(&layout::v2_root(), caller);
    if !dir.is_dir() {
        return Err(CgroupError::Placement(format!(
            "the caller's cgroup {} is not visible here (another cgroup namespace?)",
            dir.display()
        )));
    }
    let avail = parse::controller_list(&fsio::read(&dir.join("cgroup.controllers"))?);
    if let Some(c) = V2_REQUIRED.iter().find(|c| !avail.iter().any(|a| a == *c)) {
        return Err(CgroupError::Placement(format!(
            "controller {c} is not delegated to the caller's cgroup {} (see its cgroup.controllers)",
            dir.display()
        )));
    }
    let wanted: Vec<&str> = V2_WANTED
        .iter()
        .filter(|c| avail.iter().any(|a| a == *c))
        .copied()
        .collect();
    let enabled = parse::controller_list(&fsio::read(&dir.join("cgroup.subtree_control"))?);
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
fn move_to_leaf(dir: &std::path::Path) -> Result<()> {
    let leaf = dir.join(PILOT_LEAF);
    fsio::mkdir(&leaf)?;
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
