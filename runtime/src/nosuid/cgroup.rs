//! Per-payload cgroup limits without privilege: only inside a cgroup-v2 subtree delegated to the
//! caller (kernel `cgroup-v2.rst` "Delegation": the delegatee owns the directory and its
//! `cgroup.procs`, `cgroup.subtree_control` and `cgroup.threads`), e.g. a pilot started by
//! `systemd-run --user -p Delegate=yes`, HTCondor with `CGROUP_DELEGATE`-style setups, or a
//! container runtime that delegates the container's cgroup. Detected, never assumed:
//!
//! - the host must run the unified hierarchy (on v1 and hybrid hosts a non-root user owns no
//!   cgroup; the batch system's limits on the pilot's own cgroup still apply to the payload);
//! - the caller's own v2 cgroup (`/proc/self/cgroup`, `0::` line) must be writable by the caller
//!   (the directory, `cgroup.procs`, `cgroup.subtree_control`);
//! - then the engine's own nested placement ([`crate::cgroups::place`]) does the rest, including
//!   the no-internal-process dance (the pilot's processes move to `<cgroup>/pilot`), and refuses
//!   when memory or pids are not delegated.
//!
//! How a missing delegation is handled (docs/admin-guide.md): the payload runs without
//! per-payload limits inside the pilot's cgroup, and the report says so (`limits_enforced`
//! false, `cgroup` null); but a limit the *pilot* asked for on the command line (`--memory`,
//! `--cpus`, `--pids`) that cannot be enforced is refused as a site error (123), never dropped
//! silently. The wall-time limit needs no cgroup and is always enforced.

use crate::cgroups::{self, Placement, Version};
use nix::unistd::{access, AccessFlags};
use std::path::Path;

/// Where the payload's cgroup goes, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// A cgroup path for [`crate::cgroups::Cgroup::create`] under the caller's delegated cgroup.
    Delegated(String),
    /// No cgroup of our own: the reason, for the report and stderr.
    Unavailable(String),
}

/// Whether the caller may manage the v2 cgroup directory `dir` (see module docs).
pub fn writable_by_caller(dir: &Path) -> Result<(), String> {
    for p in [
        dir.to_path_buf(),
        dir.join("cgroup.procs"),
        dir.join("cgroup.subtree_control"),
    ] {
        access(&p, AccessFlags::W_OK)
            .map_err(|e| format!("{} is not writable by the caller ({e})", p.display()))?;
    }
    Ok(())
}

/// Decide the payload cgroup of payload `id` for this process.
pub fn choose(id: &str) -> Choice {
    let no = |r: String| Choice::Unavailable(r);
    match cgroups::detect() {
        Ok(Version::V2) => {}
        Ok(Version::V1) => {
            return no(
                "cgroup v1/hybrid host: an unprivileged caller has no cgroup to delegate".into(),
            )
        }
        Err(e) => return no(format!("no usable cgroup hierarchy: {e}")),
    }
    let own = match std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| e.to_string())
        .and_then(|t| cgroups::parse::proc_cgroup(&t))
    {
        Ok(pc) => match pc.unified {
            Some(p) => p,
            None => return no("/proc/self/cgroup has no cgroup-v2 line".into()),
        },
        Err(e) => return no(format!("/proc/self/cgroup: {e}")),
    };
    let dir = cgroups::join(&cgroups::v2_root(), &own);
    if let Err(why) = writable_by_caller(&dir) {
        return no(format!(
            "the caller's cgroup {own} is not delegated to it: {why}"
        ));
    }
    match cgroups::place(
        &Placement::Nested { fallback: None },
        std::process::id() as i32,
        id,
    ) {
        Ok(path) => Choice::Delegated(path),
        Err(e) => no(format!(
            "delegated cgroup {own} cannot hold the payload: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_the_caller_cannot_write_is_not_delegated() {
        let t = tempfile::tempdir().unwrap();
        // A plain directory without the cgroup files: not delegated, whoever we are.
        let e = writable_by_caller(t.path()).unwrap_err();
        assert!(e.contains("cgroup.procs"), "{e}");
        for f in ["cgroup.procs", "cgroup.subtree_control"] {
            std::fs::write(t.path().join(f), "").unwrap();
        }
        writable_by_caller(t.path()).unwrap();
    }
}
