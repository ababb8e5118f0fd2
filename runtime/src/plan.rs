//! OCI runtime [`Spec`] → [`Plan`]: everything the launch needs, validated up front, before any
//! process is created. Pure code, unit-tested without privilege.
//!
//! What we refuse, and why (fail closed — a Spec that asks for something we would silently not
//! do is an error, not a warning):
//! - no user, pid or mount namespace: the sandbox's guarantees rest on all three;
//! - any capability: payloads never hold one, in any set;
//! - `noNewPrivileges: false`: setuid binaries must never gain privilege inside;
//! - a time namespace: not supported yet;
//! - uid/gids not covered by the id mappings: setresuid/setgroups would fail half-way.

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use oci_spec::runtime::{
    LinuxIdMapping, LinuxNamespaceType, LinuxResources, LinuxSeccomp, PosixRlimitType, Spec,
};
use std::ffi::CString;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("spec has no {0} section")]
    Missing(&'static str),
    #[error("spec must create or join a {0} namespace")]
    NamespaceRequired(&'static str),
    #[error("{0} namespaces are not supported")]
    NamespaceUnsupported(String),
    #[error("namespace {0} listed twice")]
    NamespaceTwice(String),
    #[error("spec asks for capabilities ({0}); pilotbox payloads never hold any")]
    Capabilities(String),
    #[error("spec sets noNewPrivileges: false; pilotbox always sets no_new_privs")]
    NewPrivileges,
    #[error("process.args is empty")]
    NoArgs,
    #[error("{what} {value:?} is not valid: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("{what} {id} is not covered by the spec's {map} mappings")]
    Unmapped {
        what: &'static str,
        id: u32,
        map: &'static str,
    },
    #[error("a joined user namespace cannot take uid/gid mappings")]
    MappingsWithJoinedUserns,
    #[error("a new user namespace needs uidMappings and gidMappings")]
    NoMappings,
}

/// One line of a uid_map/gid_map: `container host size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// Bind mount from the host (`source` is a host path, resolved before the sandbox root is
    /// switched). `idmap`: (uid map, gid map) of an idmapped mount (OCI `uidMappings` /
    /// `gidMappings` on the mount): on-disk owner `container` appears as `host`.
    Bind {
        source: PathBuf,
        recursive: bool,
        idmap: Option<(Vec<IdMap>, Vec<IdMap>)>,
    },
    /// A fresh filesystem (proc, tmpfs, devpts, mqueue, sysfs, ...).
    Fs { fstype: String, source: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// Absolute path inside the sandbox.
    pub dest: PathBuf,
    pub kind: MountKind,
    /// Flags for the mount itself (without BIND/REC, which `kind` carries).
    pub flags: MsFlags,
    /// Propagation to apply afterwards (MS_PRIVATE, MS_SLAVE, ... possibly with MS_REC).
    pub propagation: Option<MsFlags>,
    /// Filesystem-specific options (`size=64m,mode=1777`).
    pub data: String,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub rlimits: Vec<(Resource, u64, u64)>,
    /// Namespaces to create, besides the user namespace (CLONE_NEW* flags).
    pub new_namespaces: CloneFlags,
    /// Create a new user namespace (else one is joined through `joins`).
    pub new_userns: bool,
    /// Namespaces to join by path, in the order setns must happen (user first).
    pub joins: Vec<(CloneFlags, PathBuf)>,
    pub uid_mappings: Vec<IdMap>,
    pub gid_mappings: Vec<IdMap>,
    pub root: PathBuf,
    pub root_readonly: bool,
    /// Propagation of the whole sandbox mount tree (default MS_SLAVE|MS_REC, as runc: host
    /// mounts — e.g. CVMFS automounts — still appear inside; nothing propagates out).
    pub root_propagation: MsFlags,
    pub mounts: Vec<MountPlan>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub hostname: Option<String>,
    pub cgroup_path: Option<String>,
    pub resources: Option<LinuxResources>,
    pub seccomp: Option<LinuxSeccomp>,
    /// Not from the Spec: the engine runs without privilege (`pilotbox-nosuid`), see
    /// [`crate::engine::RunOptions::unprivileged`]. Set by the engine, never by a Spec.
    pub unprivileged: bool,
    /// Symlinks created inside the sandbox after the mounts, as (target, link) — bubblewrap's
    /// `--symlink`. The OCI runtime spec has no such field, so they come from the annotation
    /// [`SYMLINKS_ANNOTATION`]. A link must lie on a writable mount of the sandbox (its tmpfs
    /// `/tmp`): with a read-only root, anything else fails as a request error.
    pub symlinks: Vec<(PathBuf, PathBuf)>,
    /// Relay the new network namespace's outbound traffic through `pasta` (annotation
    /// [`crate::network::ANNOTATION`] = `"isolated"`; see [`crate::network`]). Without it a new
    /// network namespace has loopback only, as the OCI runtime spec defines.
    pub outbound: bool,
}

/// Annotation carrying [`Plan::symlinks`]: a JSON array of `[target, link]` pairs.
pub const SYMLINKS_ANNOTATION: &str = "io.pilotbox.symlinks";

/// The symlinks of the annotation: `link` absolute without `..` (it is resolved with
/// [`crate::rootfs::secure_join`] anyway; refusing `..` keeps the request readable), `target`
/// non-empty. The target is never resolved by pilotbox: the payload follows it, inside.
fn symlinks(spec: &Spec) -> Result<Vec<(PathBuf, PathBuf)>, PlanError> {
    let Some(text) = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(SYMLINKS_ANNOTATION))
    else {
        return Ok(vec![]);
    };
    let bad = |why| PlanError::Invalid {
        what: "annotation io.pilotbox.symlinks",
        value: text.clone(),
        why,
    };
    let pairs: Vec<(PathBuf, PathBuf)> =
        serde_json::from_str(text).map_err(|_| bad("expected [[target, link], ...]"))?;
    for (target, link) in &pairs {
        abs("symlink", link)?;
        if link
            .components()
            .any(|c| c == std::path::Component::ParentDir)
            || link == Path::new("/")
        {
            return Err(bad("a link path must not contain '..' or be '/'"));
        }
        if target.as_os_str().is_empty() {
            return Err(bad("a symlink target must not be empty"));
        }
    }
    Ok(pairs)
}

/// The network annotation ([`crate::network::ANNOTATION`]): `"isolated"` asks for outbound
/// connectivity through pasta, `"none"` (or no annotation) for loopback only. Either needs a
/// *new* network namespace: relaying a joined (a pod's) or the host's namespace would be
/// meaningless, and silently ignoring the request is not an option (fail closed).
fn outbound(spec: &Spec, new_namespaces: CloneFlags) -> Result<bool, PlanError> {
    let Some(v) = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(crate::network::ANNOTATION))
    else {
        return Ok(false);
    };
    let bad = |why| PlanError::Invalid {
        what: "annotation io.pilotbox.network",
        value: v.clone(),
        why,
    };
    let relay = match v.as_str() {
        "isolated" => true,
        "none" => false,
        _ => return Err(bad("expected \"isolated\" or \"none\"")),
    };
    if !new_namespaces.contains(CloneFlags::CLONE_NEWNET) {
        return Err(bad(
            "needs a new network namespace (type network without a path)",
        ));
    }
    Ok(relay)
}

fn ns_flag(t: LinuxNamespaceType) -> Result<CloneFlags, PlanError> {
    Ok(match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        other => return Err(PlanError::NamespaceUnsupported(other.to_string())),
    })
}

fn abs(what: &'static str, p: &Path) -> Result<PathBuf, PlanError> {
    if !p.is_absolute() {
        return Err(PlanError::Invalid {
            what,
            value: p.display().to_string(),
            why: "must be absolute",
        });
    }
    Ok(p.to_path_buf())
}

fn cstring(what: &'static str, s: &str) -> Result<CString, PlanError> {
    CString::new(s).map_err(|_| PlanError::Invalid {
        what,
        value: s.into(),
        why: "contains NUL",
    })
}

fn id_maps(maps: &Option<Vec<LinuxIdMapping>>) -> Vec<IdMap> {
    maps.iter()
        .flatten()
        .map(|m| IdMap {
            container: m.container_id(),
            host: m.host_id(),
            size: m.size(),
        })
        .collect()
}

fn covered(maps: &[IdMap], id: u32) -> bool {
    maps.iter()
        .any(|m| id >= m.container && (id - m.container) < m.size)
}

fn rlimit(t: PosixRlimitType) -> Resource {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => Resource::RLIMIT_CPU,
        T::RlimitFsize => Resource::RLIMIT_FSIZE,
        T::RlimitData => Resource::RLIMIT_DATA,
        T::RlimitStack => Resource::RLIMIT_STACK,
        T::RlimitCore => Resource::RLIMIT_CORE,
        T::RlimitRss => Resource::RLIMIT_RSS,
        T::RlimitNproc => Resource::RLIMIT_NPROC,
        T::RlimitNofile => Resource::RLIMIT_NOFILE,
        T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        T::RlimitAs => Resource::RLIMIT_AS,
        T::RlimitLocks => Resource::RLIMIT_LOCKS,
        T::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        T::RlimitNice => Resource::RLIMIT_NICE,
        T::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        T::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// Parse OCI mount options the way runc does: known names become flags, the rest is fs data.
pub fn parse_mount_options(opts: &[String]) -> (MsFlags, Option<MsFlags>, bool, bool, String) {
    let (mut flags, mut prop, mut bind, mut rec) = (MsFlags::empty(), None, false, false);
    let mut data = Vec::new();
    for o in opts {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags &= !MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "dirsync" => flags |= MsFlags::MS_DIRSYNC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "suid" | "dev" | "exec" | "atime" | "diratime" | "norelatime" | "async" => {}
            "bind" => bind = true,
            "rbind" => (bind, rec) = (true, true),
            "private" => prop = Some(MsFlags::MS_PRIVATE),
            "rprivate" => prop = Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "slave" => prop = Some(MsFlags::MS_SLAVE),
            "rslave" => prop = Some(MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "shared" => prop = Some(MsFlags::MS_SHARED),
            "rshared" => prop = Some(MsFlags::MS_SHARED | MsFlags::MS_REC),
            "unbindable" => prop = Some(MsFlags::MS_UNBINDABLE),
            "runbindable" => prop = Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            other => data.push(other.to_string()),
        }
    }
    (flags, prop, bind, rec, data.join(","))
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Result<Plan, PlanError> {
        let process = spec
            .process()
            .as_ref()
            .ok_or(PlanError::Missing("process"))?;
        let linux = spec.linux().as_ref().ok_or(PlanError::Missing("linux"))?;
        let root = spec.root().as_ref().ok_or(PlanError::Missing("root"))?;

        if let Some(caps) = process.capabilities() {
            let mut asked: Vec<String> = [
                caps.bounding(),
                caps.effective(),
                caps.inheritable(),
                caps.permitted(),
                caps.ambient(),
            ]
            .into_iter()
            .flatten()
            .flatten()
            .map(|c| c.to_string())
            .collect();
            asked.sort();
            asked.dedup();
            if !asked.is_empty() {
                return Err(PlanError::Capabilities(asked.join(",")));
            }
        }
        if process.no_new_privileges() == Some(false) {
            return Err(PlanError::NewPrivileges);
        }
        let args: Vec<CString> = process
            .args()
            .iter()
            .flatten()
            .map(|a| cstring("argument", a))
            .collect::<Result<_, _>>()?;
        if args.is_empty() {
            return Err(PlanError::NoArgs);
        }
        let env = process
            .env()
            .iter()
            .flatten()
            .map(|e| {
                if !e.contains('=') {
                    return Err(PlanError::Invalid {
                        what: "env entry",
                        value: e.clone(),
                        why: "not KEY=VALUE",
                    });
                }
                cstring("env entry", e)
            })
            .collect::<Result<_, _>>()?;

        // Namespaces: the user namespace is special (created first, owns the others).
        let mut new_namespaces = CloneFlags::empty();
        let mut new_userns = false;
        let mut joins = Vec::new();
        let mut seen = CloneFlags::empty();
        for ns in linux.namespaces().iter().flatten() {
            let flag = ns_flag(ns.typ())?;
            if seen.contains(flag) {
                return Err(PlanError::NamespaceTwice(ns.typ().to_string()));
            }
            seen |= flag;
            match (ns.path(), flag == CloneFlags::CLONE_NEWUSER) {
                (Some(p), _) => joins.push((flag, abs("namespace path", p)?)),
                (None, true) => new_userns = true,
                (None, false) => new_namespaces |= flag,
            }
        }
        for (flag, name) in [
            (CloneFlags::CLONE_NEWUSER, "user"),
            (CloneFlags::CLONE_NEWPID, "pid"),
            (CloneFlags::CLONE_NEWNS, "mount"),
        ] {
            if !seen.contains(flag) {
                return Err(PlanError::NamespaceRequired(name));
            }
        }
        // A joined mount namespace is a template: the sandbox always gets its own copy, so the
        // rootfs setup (pivot_root, tmpfs, masks) never changes the namespace it joined (a pod's).
        if joins.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWNS) {
            new_namespaces |= CloneFlags::CLONE_NEWNS;
        }
        // setns into the user namespace first: the others are then joined with its privileges.
        joins.sort_by_key(|(f, _)| *f != CloneFlags::CLONE_NEWUSER);

        let uid_mappings = id_maps(linux.uid_mappings());
        let gid_mappings = id_maps(linux.gid_mappings());
        let user = process.user();
        let additional_gids = user.additional_gids().clone().unwrap_or_default();
        if new_userns {
            if uid_mappings.is_empty() || gid_mappings.is_empty() {
                return Err(PlanError::NoMappings);
            }
            if !covered(&uid_mappings, user.uid()) {
                return Err(PlanError::Unmapped {
                    what: "uid",
                    id: user.uid(),
                    map: "uid",
                });
            }
            for g in std::iter::once(user.gid()).chain(additional_gids.iter().copied()) {
                if !covered(&gid_mappings, g) {
                    return Err(PlanError::Unmapped {
                        what: "gid",
                        id: g,
                        map: "gid",
                    });
                }
            }
        } else if !uid_mappings.is_empty() || !gid_mappings.is_empty() {
            return Err(PlanError::MappingsWithJoinedUserns);
        }

        let mut mounts = Vec::new();
        for m in spec.mounts().iter().flatten() {
            let dest = abs("mount destination", m.destination())?;
            let opts = m.options().clone().unwrap_or_default();
            let (flags, propagation, bind_opt, rec, data) = parse_mount_options(&opts);
            let typ = m.typ().clone().unwrap_or_default();
            let kind = if bind_opt || typ == "bind" {
                let source = m.source().as_ref().ok_or(PlanError::Invalid {
                    what: "bind mount",
                    value: dest.display().to_string(),
                    why: "has no source",
                })?;
                let idmap = match (m.uid_mappings(), m.gid_mappings()) {
                    (None, None) => None,
                    (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => {
                        Some((id_maps(&Some(u.clone())), id_maps(&Some(g.clone()))))
                    }
                    _ => {
                        return Err(PlanError::Invalid {
                            what: "idmapped mount",
                            value: dest.display().to_string(),
                            why: "needs both uidMappings and gidMappings",
                        })
                    }
                };
                MountKind::Bind {
                    source: abs("bind source", source)?,
                    recursive: rec,
                    idmap,
                }
            } else {
                if typ.is_empty() {
                    return Err(PlanError::Invalid {
                        what: "mount",
                        value: dest.display().to_string(),
                        why: "has no type",
                    });
                }
                let source = m
                    .source()
                    .as_ref()
                    .map(|s| s.display().to_string())
                    .unwrap_or_else(|| typ.clone());
                MountKind::Fs {
                    fstype: typ,
                    source,
                }
            };
            mounts.push(MountPlan {
                dest,
                kind,
                flags,
                propagation,
                data,
            });
        }

        let rlimits = process
            .rlimits()
            .iter()
            .flatten()
            .map(|r| (rlimit(r.typ()), r.soft(), r.hard()))
            .collect();

        let root_propagation = match linux.rootfs_propagation().as_deref() {
            None | Some("") | Some("rslave") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
            Some(p) => {
                let (_, prop, ..) = parse_mount_options(&[p.to_string()]);
                prop.ok_or(PlanError::Invalid {
                    what: "rootfsPropagation",
                    value: p.into(),
                    why: "unknown",
                })?
            }
        };

        Ok(Plan {
            args,
            env,
            cwd: abs("process.cwd", process.cwd())?,
            uid: user.uid(),
            gid: user.gid(),
            additional_gids,
            umask: user.umask(),
            rlimits,
            new_namespaces,
            new_userns,
            joins,
            uid_mappings,
            gid_mappings,
            root: abs("root.path", root.path())?,
            root_readonly: root.readonly().unwrap_or(false),
            root_propagation,
            mounts,
            masked_paths: linux
                .masked_paths()
                .iter()
                .flatten()
                .map(|p| abs("masked path", Path::new(p)))
                .collect::<Result<_, _>>()?,
            readonly_paths: linux
                .readonly_paths()
                .iter()
                .flatten()
                .map(|p| abs("readonly path", Path::new(p)))
                .collect::<Result<_, _>>()?,
            hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
            cgroup_path: linux
                .cgroups_path()
                .as_ref()
                .map(|p| p.display().to_string()),
            resources: linux.resources().clone(),
            seccomp: linux.seccomp().clone(),
            symlinks: symlinks(spec)?,
            unprivileged: false,
            outbound: outbound(spec, new_namespaces)?,
        })
    }

    /// The uid_map / gid_map file contents.
    pub fn map_file(maps: &[IdMap]) -> String {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container, m.host, m.size))
            .collect()
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
