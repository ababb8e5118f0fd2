//! The Spec pilotbox gives a payload: the launcher (and the demo, tests, node shim) describe the
//! payload in a few fields, and this module writes the OCI Spec the engine runs.
//!
//! Defaults, and why:
//! - the host root, read-only, with the payload uid mapped 1:1 to the pool uid (the host and the
//!   site's accounting see the real pool uid; root stays unmapped, so setuid-root binaries and
//!   root-owned files give nothing);
//! - fresh `/proc` (only the sandbox's processes), a minimal `/dev` (null, zero, full, random,
//!   urandom, tty bound from the host; private devpts, shm, mqueue), private `/tmp` and `/var/tmp`
//!   (host ones are world-writable: a channel between payloads and to the pilot);
//! - rslave propagation, so CVMFS repositories automounted on the host after the launch still
//!   appear inside, while nothing mounted inside reaches the host;
//! - new pid, mount, ipc, uts and cgroup namespaces; a network namespace only on request.

use oci_spec::runtime::{LinuxResources, LinuxSeccomp, Spec};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Bind {
    pub source: PathBuf,
    pub dest: PathBuf,
    pub readonly: bool,
    /// Make it an idmapped mount (see [`Idmap`]).
    pub idmap: Option<Idmap>,
}

/// An idmapped bind: files owned on disk by `disk_uid`/`disk_gid` (the pilot) appear owned by
/// `uid`/`gid` (the pool account) inside, and what the payload creates is stored on disk as the
/// pilot's. The work-dir hand-over without chown (needs filesystem support:
/// [`crate::engine::idmap_supported`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idmap {
    pub disk_uid: u32,
    pub disk_gid: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone)]
pub struct PayloadSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub root: PathBuf,
    pub root_readonly: bool,
    pub binds: Vec<Bind>,
    /// Paths hidden from the payload (the pilot's home, its proxy, the launcher's state).
    pub hide: Vec<PathBuf>,
    /// Symlinks made inside the sandbox, (target, link); the link on a tmpfs such as `/tmp`.
    pub symlinks: Vec<(PathBuf, PathBuf)>,
    pub hostname: Option<String>,
    /// A new, empty network namespace (loopback only).
    pub isolate_network: bool,
    /// With `isolate_network`: outbound connectivity through `pasta` (policy `[network] mode =
    /// "isolated"`), carried by the annotation [`crate::network::ANNOTATION`].
    pub outbound: bool,
    pub cgroup_path: Option<String>,
    pub resources: Option<LinuxResources>,
    pub seccomp: Option<LinuxSeccomp>,
    /// Namespaces to join instead of creating: (OCI type name, path).
    pub join: Vec<(String, PathBuf)>,
    pub rlimits: Vec<(String, u64, u64)>,
}

impl PayloadSpec {
    /// A payload running `args` as uid/gid on the host root, cwd `/tmp`.
    pub fn new(args: Vec<String>, uid: u32, gid: u32) -> Self {
        PayloadSpec {
            args,
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
            cwd: "/tmp".into(),
            uid,
            gid,
            groups: vec![],
            root: "/".into(),
            root_readonly: true,
            binds: vec![],
            hide: vec![],
            symlinks: vec![],
            hostname: Some("pilotbox".into()),
            isolate_network: false,
            outbound: false,
            cgroup_path: None,
            resources: None,
            seccomp: None,
            join: vec![],
            rlimits: vec![],
        }
    }

    fn mounts(&self) -> Vec<Value> {
        let mut m = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        ];
        for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
            let p = format!("/dev/{dev}");
            m.push(json!({"destination": p, "type": "bind", "source": p, "options": ["bind", "nosuid", "noexec"]}));
        }
        m.extend([
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777"]}),
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}),
            json!({"destination": "/var/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}),
        ]);
        for b in &self.binds {
            let mut opts = vec!["rbind", "nosuid", "nodev"];
            if b.readonly {
                opts.push("ro");
            }
            let mut mount =
                json!({"destination": b.dest, "type": "bind", "source": b.source, "options": opts});
            if let Some(i) = b.idmap {
                mount["uidMappings"] =
                    json!([{"containerID": i.disk_uid, "hostID": i.uid, "size": 1}]);
                mount["gidMappings"] =
                    json!([{"containerID": i.disk_gid, "hostID": i.gid, "size": 1}]);
            }
            m.push(mount);
        }
        m
    }

    fn namespaces(&self) -> Vec<Value> {
        let mut types = vec!["user", "pid", "mount", "ipc", "uts", "cgroup"];
        if self.isolate_network {
            types.push("network");
        }
        let mut out: Vec<Value> = Vec::new();
        for t in types {
            match self.join.iter().find(|(j, _)| j == t) {
                Some((_, p)) => out.push(json!({"type": t, "path": p})),
                None => out.push(json!({"type": t})),
            }
        }
        // Joined types not in the default list (e.g. a pod's network namespace).
        for (t, p) in &self.join {
            if !out.iter().any(|v| v["type"] == json!(t)) {
                out.push(json!({"type": t, "path": p}));
            }
        }
        out
    }

    /// The OCI Spec. Fails only if a field cannot be represented (the engine's [`Plan`] then
    /// validates the semantics).
    ///
    /// [`Plan`]: crate::plan::Plan
    pub fn to_spec(&self) -> Result<Spec, serde_json::Error> {
        let mut gids: Vec<u32> = std::iter::once(self.gid)
            .chain(self.groups.iter().copied())
            .collect();
        gids.sort_unstable();
        gids.dedup();
        let joins_user = self.join.iter().any(|(t, _)| t == "user");
        let (uid_maps, gid_maps) = if joins_user {
            (json!(null), json!(null))
        } else {
            (
                json!([{"containerID": self.uid, "hostID": self.uid, "size": 1}]),
                Value::Array(
                    gids.iter()
                        .map(|g| json!({"containerID": g, "hostID": g, "size": 1}))
                        .collect(),
                ),
            )
        };
        let mut linux = json!({
            "namespaces": self.namespaces(),
            "maskedPaths": self.hide,
            "rootfsPropagation": "rslave",
        });
        if !joins_user {
            linux["uidMappings"] = uid_maps;
            linux["gidMappings"] = gid_maps;
        }
        if let Some(p) = &self.cgroup_path {
            linux["cgroupsPath"] = json!(p);
        }
        if let Some(r) = &self.resources {
            linux["resources"] = serde_json::to_value(r)?;
        }
        if let Some(s) = &self.seccomp {
            linux["seccomp"] = serde_json::to_value(s)?;
        }
        let rlimits: Vec<Value> = self
            .rlimits
            .iter()
            .map(|(t, s, h)| json!({"type": t, "soft": s, "hard": h}))
            .collect();
        let mut annotations = serde_json::Map::new();
        if !self.symlinks.is_empty() {
            annotations.insert(
                crate::plan::SYMLINKS_ANNOTATION.into(),
                json!(serde_json::to_string(&self.symlinks)?),
            );
        }
        if self.isolate_network {
            let mode = if self.outbound { "isolated" } else { "none" };
            annotations.insert(crate::network::ANNOTATION.into(), json!(mode));
        }
        let spec = json!({
            "ociVersion": "1.2.0",
            "annotations": annotations,
            "root": {"path": self.root, "readonly": self.root_readonly},
            "hostname": self.hostname,
            "process": {
                "args": self.args,
                "env": self.env,
                "cwd": self.cwd,
                "user": {"uid": self.uid, "gid": self.gid, "additionalGids": self.groups},
                "noNewPrivileges": true,
                "rlimits": rlimits,
            },
            "mounts": self.mounts(),
            "linux": linux,
        });
        serde_json::from_value(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{MountKind, Plan};
    use nix::sched::CloneFlags;

    #[test]
    fn default_payload_spec_is_a_valid_plan() {
        let mut p = PayloadSpec::new(vec!["id".into()], 30001, 30000);
        p.groups = vec![30000, 30500];
        p.binds.push(Bind {
            source: "/srv/work".into(),
            dest: "/srv/work".into(),
            readonly: false,
            idmap: None,
        });
        p.hide.push("/home/pilot".into());
        let plan = Plan::from_spec(&p.to_spec().unwrap()).unwrap();
        assert_eq!((plan.uid, plan.gid), (30001, 30000));
        assert_eq!(plan.uid_mappings.len(), 1);
        assert_eq!(
            plan.uid_mappings[0].host, 30001,
            "payload uid maps 1:1 to the pool uid"
        );
        assert_eq!(
            plan.gid_mappings.len(),
            2,
            "primary and supplementary gids mapped, deduplicated"
        );
        assert!(plan.new_userns);
        let want = CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWCGROUP;
        assert_eq!(plan.new_namespaces, want);
        assert!(plan.root_readonly);
        assert!(plan.mounts.iter().any(|m| m.dest.as_os_str() == "/srv/work"
            && matches!(
                &m.kind,
                MountKind::Bind {
                    recursive: true,
                    ..
                }
            )));
        assert_eq!(
            plan.masked_paths,
            vec![std::path::PathBuf::from("/home/pilot")]
        );
    }

    #[test]
    fn network_modes_become_a_namespace_and_an_annotation() {
        let mut p = PayloadSpec::new(vec!["true".into()], 1000, 1000);
        let host = Plan::from_spec(&p.to_spec().unwrap()).unwrap();
        assert!(!host.new_namespaces.contains(CloneFlags::CLONE_NEWNET) && !host.outbound);
        p.isolate_network = true;
        let none = Plan::from_spec(&p.to_spec().unwrap()).unwrap();
        assert!(none.new_namespaces.contains(CloneFlags::CLONE_NEWNET) && !none.outbound);
        p.outbound = true;
        let isolated = Plan::from_spec(&p.to_spec().unwrap()).unwrap();
        assert!(isolated.new_namespaces.contains(CloneFlags::CLONE_NEWNET) && isolated.outbound);
        // A relay for a namespace we do not create (the host's, a pod's) is refused, not ignored.
        p.join.push(("network".into(), "/proc/1/ns/net".into()));
        let err = Plan::from_spec(&p.to_spec().unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("needs a new network namespace"),
            "{err}"
        );
        let mut spec = PayloadSpec::new(vec!["true".into()], 1000, 1000);
        spec.isolate_network = true;
        let mut s = spec.to_spec().unwrap();
        let mut a = s.annotations().clone().unwrap_or_default();
        a.insert(crate::network::ANNOTATION.into(), "slirp".into());
        s.set_annotations(Some(a));
        assert!(Plan::from_spec(&s).is_err());
    }

    #[test]
    fn joined_namespaces_replace_new_ones() {
        let mut p = PayloadSpec::new(vec!["true".into()], 1000, 1000);
        p.join.push(("network".into(), "/proc/1/ns/net".into()));
        p.join.push(("mount".into(), "/proc/1/ns/mnt".into()));
        let plan = Plan::from_spec(&p.to_spec().unwrap()).unwrap();
        assert!(
            plan.new_namespaces.contains(CloneFlags::CLONE_NEWNS),
            "a joined mount ns is copied, never modified"
        );
        assert!(!plan.new_namespaces.contains(CloneFlags::CLONE_NEWNET));
        assert_eq!(plan.joins.len(), 2);
    }
}
