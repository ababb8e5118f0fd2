//! Where a cgroup lives: which cgroup version the host runs, where the hierarchies are mounted,
//! and how a cgroup path string maps to one directory per hierarchy.
//!
//! Detection uses `cgroups-rs` (`is_cgroup2_unified_mode` = statfs(/sys/fs/cgroup) is
//! CGROUP2_SUPER_MAGIC; its v1 mount table only lists `cgroup` (v1) filesystems). That is exactly
//! right on a *hybrid* host like the testbed: `/sys/fs/cgroup` is a tmpfs, so we run v1, and the
//! controller-less cgroup2 mount at `/sys/fs/cgroup/unified` is never used for limits.

use std::path::{Path, PathBuf};

use cgroups_rs::fs::hierarchies::{is_cgroup2_unified_mode, UNIFIED_MOUNTPOINT, V1};
use cgroups_rs::fs::Controllers;

use super::error::{CgroupError, Result};

/// The cgroup interface the host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Version {
    /// Legacy or hybrid: one hierarchy per (group of) controller(s).
    V1,
    /// Unified hierarchy mounted at `/sys/fs/cgroup`.
    V2,
}

/// Detect the cgroup version at run time. v2 only if `/sys/fs/cgroup` itself is cgroup2 (a
/// hybrid host's `/sys/fs/cgroup/unified` has no controllers to limit anything with).
pub fn detect() -> Result<Version> {
    if is_cgroup2_unified_mode() {
        return Ok(Version::V2);
    }
    let v1 = V1::new();
    let missing: Vec<&str> = V1_REQUIRED
        .iter()
        .filter(|c| v1.get_mount_point(controller_id(c)).is_none())
        .copied()
        .collect();
    if missing.is_empty() {
        Ok(Version::V1)
    } else {
        Err(CgroupError::Unsupported(format!(
            "/sys/fs/cgroup is not cgroup2 and the v1 controllers {missing:?} are not mounted"
        )))
    }
}

/// The v1 controllers a payload cgroup is created in, in the order tasks are attached: blkio
/// before memory so writeback is charged consistently (same order as cgroups-rs and runc).
pub const V1_USED: [&str; 7] = [
    "blkio", "memory", "pids", "cpuset", "cpuacct", "cpu", "freezer",
];
/// Without these the engine cannot limit memory, stop fork bombs, or kill reliably.
pub const V1_REQUIRED: [&str; 3] = ["memory", "pids", "freezer"];

fn controller_id(name: &str) -> Controllers {
    match name {
        "blkio" => Controllers::BlkIo,
        "memory" => Controllers::Mem,
        "pids" => Controllers::Pids,
        "cpuset" => Controllers::CpuSet,
        "cpuacct" => Controllers::CpuAcct,
        "cpu" => Controllers::Cpu,
        _ => Controllers::Freezer,
    }
}

/// One mounted v1 hierarchy and the controllers of [`V1_USED`] it serves (co-mounted
/// controllers such as `cpu,cpuacct` share one mount point, hence one directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    pub mount: PathBuf,
    /// The mount's root inside the hierarchy (mountinfo field 4): `/` normally, a sub-path when
    /// a container runtime bind-mounted only its own subtree.
    pub root: PathBuf,
    pub controllers: Vec<&'static str>,
}

/// The mounted hierarchies for the controllers we use, de-duplicated by mount point.
pub fn v1_mounts() -> Vec<V1Mount> {
    let v1 = V1::new();
    let mut out: Vec<V1Mount> = Vec::new();
    for c in V1_USED {
        if let Some((mount, root)) = v1.get_mount_point(controller_id(c)) {
            match out.iter_mut().find(|m| m.mount == mount) {
                Some(m) => m.controllers.push(c),
                None => out.push(V1Mount {
                    mount,
                    root,
                    controllers: vec![c],
                }),
            }
        }
    }
    out
}

/// The mount point of the unified hierarchy on a pure v2 host.
pub fn v2_root() -> PathBuf {
    PathBuf::from(UNIFIED_MOUNTPOINT)
}

/// One directory of a cgroup: on v2 the only one; on v1 one per hierarchy.
#[derive(Debug, Clone)]
pub struct Dir {
    /// Mount point of the hierarchy.
    pub mount: PathBuf,
    /// The cgroup's path inside the hierarchy (absolute, e.g. `/pilotbox/p-42`).
    pub rel: String,
    /// v1: controllers served by this hierarchy; v2: empty.
    pub controllers: Vec<&'static str>,
}

impl Dir {
    /// The directory in the mounted filesystem.
    pub fn full(&self) -> PathBuf {
        join(&self.mount, &self.rel)
    }
    pub fn serves(&self, controller: &str) -> bool {
        self.controllers.contains(&controller)
    }
}

/// `mount` + absolute cgroup path.
pub fn join(mount: &Path, rel: &str) -> PathBuf {
    mount.join(rel.trim_start_matches('/'))
}

/// Validate an absolute cgroup path: starts with `/`, is not the root, and has no empty, `.` or
/// `..` component (so it can never name a directory outside its hierarchy).
pub fn validate(path: &str) -> Result<()> {
    let bad = |reason| {
        Err(CgroupError::InvalidPath {
            path: path.to_owned(),
            reason,
        })
    };
    if !path.starts_with('/') {
        return bad("not absolute (a relative path would land under the caller's cgroup)");
    }
    let comps: Vec<&str> = path[1..].split('/').collect();
    if comps.iter().all(|c| c.is_empty()) {
        return bad("is the root cgroup");
    }
    if comps
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return bad("has an empty, '.' or '..' component");
    }
    if path.contains('\0') || path.contains('\n') {
        return bad("has a NUL or newline");
    }
    Ok(())
}

/// Resolve a cgroup path string to its directories.
///
/// Two forms are accepted:
/// * `/a/b/p-42` — the same path in every hierarchy (v2: the only form);
/// * v1 only, as produced by [`super::place`] for `Nested` when the caller sits at different
///   paths in different hierarchies: `ctl=/path;ctl=/path;...`, e.g.
///   `memory=/slurm/job_7/p-42;pids=/p-42;cpu=/p-42;...`. Every used hierarchy must be named
///   (through any one of its controllers), and co-mounted controllers must agree.
pub fn resolve(version: Version, path: &str) -> Result<Vec<Dir>> {
    if path.starts_with('/') {
        validate(path)?;
        return Ok(match version {
            Version::V2 => vec![Dir {
                mount: v2_root(),
                rel: path.to_owned(),
                controllers: Vec::new(),
            }],
            Version::V1 => v1_mounts()
                .into_iter()
                .map(|m| Dir {
                    mount: m.mount,
                    rel: path.to_owned(),
                    controllers: m.controllers,
                })
                .collect(),
        });
    }
    if version == Version::V2 {
        return Err(CgroupError::InvalidPath {
            path: path.to_owned(),
            reason: "per-controller paths only exist on cgroup v1",
        });
    }
    let map = parse_per_controller(path)?;
    let mut dirs = Vec::new();
    for m in v1_mounts() {
        let mut rel: Option<&str> = None;
        for c in &m.controllers {
            if let Some((_, p)) = map.iter().find(|(k, _)| k == c) {
                if rel.is_some_and(|r| r != p) {
                    return Err(CgroupError::InvalidPath {
                        path: path.to_owned(),
                        reason: "co-mounted controllers are given different paths",
                    });
                }
                rel = Some(p);
            }
        }
        let Some(rel) = rel else {
            return Err(CgroupError::InvalidPath {
                path: path.to_owned(),
                reason: "does not name every mounted hierarchy",
            });
        };
        dirs.push(Dir {
            mount: m.mount,
            rel: rel.to_owned(),
            controllers: m.controllers,
        });
    }
    Ok(dirs)
}

/// Parse `ctl=/path;ctl=/path` (see [`resolve`]).
pub fn parse_per_controller(path: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in path.split(';') {
        let Some((c, p)) = part.split_once('=') else {
            return Err(CgroupError::InvalidPath {
                path: path.to_owned(),
                reason: "neither absolute nor `controller=/path;...`",
            });
        };
        if !V1_USED.contains(&c) {
            return Err(CgroupError::InvalidPath {
                path: path.to_owned(),
                reason: "names an unknown controller",
            });
        }
        validate(p)?;
        out.push((c.to_owned(), p.to_owned()));
    }
    Ok(out)
}

/// The inverse of [`parse_per_controller`]: a uniform path if all hierarchies agree.
pub fn format_per_controller(entries: &[(&str, String)]) -> String {
    if let Some((_, first)) = entries.first() {
        if entries.iter().all(|(_, p)| p == first) {
            return first.clone();
        }
    }
    entries
        .iter()
        .map(|(c, p)| format!("{c}={p}"))
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(validate("/pilotbox/p-1").is_ok());
        for bad in [
            "", "/", "//", "rel/p", "/a/../b", "/a/./b", "/a//b", "/a/", "/a\n",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn per_controller_round_trip() {
        let e = vec![("memory", "/m/p".to_string()), ("pids", "/p".to_string())];
        let s = format_per_controller(&e);
        assert_eq!(s, "memory=/m/p;pids=/p");
        let parsed = parse_per_controller(&s).unwrap();
        assert_eq!(parsed[0], ("memory".into(), "/m/p".into()));
        assert_eq!(parsed[1], ("pids".into(), "/p".into()));
        let same = vec![("memory", "/p".to_string()), ("pids", "/p".to_string())];
        assert_eq!(format_per_controller(&same), "/p");
        assert!(parse_per_controller("memory=/a;bogus=/b").is_err());
        assert!(parse_per_controller("memory=a").is_err());
        assert!(parse_per_controller("memory=/a/../b").is_err());
    }

    #[test]
    fn v2_rejects_per_controller_form() {
        assert!(resolve(Version::V2, "memory=/a").is_err());
        assert!(resolve(Version::V2, "/a/../b").is_err());
        let d = resolve(Version::V2, "/a/b").unwrap();
        assert_eq!(d[0].full(), PathBuf::from("/sys/fs/cgroup/a/b"));
    }
}
