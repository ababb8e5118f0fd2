//! The `policy.toml` schema, exactly as a site admin writes it. Every table refuses unknown
//! keys (`deny_unknown_fields`): a typo such as `[bans]` or `dn = ` inside `[ban]` must stop
//! pilotbox, not silently disable a ban. `docs/policy.md` documents each key; a test parses the
//! annotated example there so the two cannot drift apart.

use super::units::{Bytes, Seconds};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// A user or group given by name (resolved through NSS when used) or by number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum NameOrId {
    Id(u32),
    Name(String),
}

impl fmt::Display for NameOrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameOrId::Id(i) => write!(f, "{i}"),
            NameOrId::Name(n) => f.write_str(n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub trust: Trust,
    #[serde(default)]
    pub pilots: Pilots,
    #[serde(default, rename = "pool")]
    pub pools: Vec<PoolConf>,
    #[serde(default, rename = "map")]
    pub maps: Vec<MapRule>,
    #[serde(default)]
    pub mapping: Mapping,
    #[serde(default)]
    pub ban: Ban,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub env: Env,
    #[serde(default)]
    pub lease: LeaseConf,
    #[serde(default)]
    pub cgroup: CgroupConf,
    #[serde(default)]
    pub audit: AuditConf,
    #[serde(default)]
    pub expiry: ExpiryConf,
    #[serde(default)]
    pub network: NetworkConf,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    #[serde(default = "default_ca_dir")]
    pub ca_dir: PathBuf,
    #[serde(default = "default_voms_dir")]
    pub voms_dir: PathBuf,
}

fn default_ca_dir() -> PathBuf {
    "/etc/grid-security/certificates".into()
}
fn default_voms_dir() -> PathBuf {
    "/etc/grid-security/vomsdir".into()
}

impl Default for Trust {
    fn default() -> Self {
        Trust {
            ca_dir: default_ca_dir(),
            voms_dir: default_voms_dir(),
        }
    }
}

/// Who may call pilotbox at all. Empty lists: nobody (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Pilots {
    #[serde(default)]
    pub users: Vec<NameOrId>,
    #[serde(default)]
    pub groups: Vec<NameOrId>,
}

/// A pool of accounts leased to grid identities.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConf {
    pub name: String,
    /// Numeric range `"30001-30050"` (accounts need not exist in NSS).
    pub uids: Option<String>,
    /// Name pattern `"testvo[001-050]"` resolved via NSS, or a list of names.
    pub accounts: Option<AccountsSpec>,
    /// Primary group of every account of the pool; default: each account's NSS group.
    pub gid: Option<NameOrId>,
    /// Supplementary groups of every account of the pool.
    #[serde(default)]
    pub groups: Vec<NameOrId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum AccountsSpec {
    Pattern(String),
    List(Vec<String>),
}

/// One mapping rule. Exactly one of `fqan`/`dn`, exactly one of `pool`/`account`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapRule {
    pub fqan: Option<String>,
    pub dn: Option<String>,
    pub pool: Option<String>,
    pub account: Option<NameOrId>,
    /// Override the primary group.
    pub gid: Option<NameOrId>,
    /// Extra supplementary groups.
    #[serde(default)]
    pub groups: Vec<NameOrId>,
    /// Free text shown in the reason trail.
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MappingOrder {
    /// VOMS FQAN rules first (each verified FQAN in AC order), then DN rules.
    #[default]
    FqanFirst,
    /// DN rules first, then FQAN rules.
    DnFirst,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(default)]
    pub order: MappingOrder,
    /// Globus/LCMAPS grid-mapfile whose lines are appended, in file order, after `[[map]]`.
    pub grid_mapfile: Option<PathBuf>,
    /// LCMAPS/Argus group-mapfile giving supplementary groups by FQAN (and DN).
    pub group_mapfile: Option<PathBuf>,
}

/// Bans. All lists are checked on every call, before mapping.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Ban {
    /// Subject DNs (slash or RFC 2253 form).
    #[serde(default)]
    pub dns: Vec<String>,
    /// FQAN patterns; applied to *claimed* FQANs, even if the AC is invalid or expired.
    #[serde(default)]
    pub fqans: Vec<String>,
    /// Issuing CA DNs: every certificate they issued is banned.
    #[serde(default)]
    pub cas: Vec<String>,
    /// Files with one DN or FQAN pattern per line; missing/unreadable bans everyone.
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

/// One set of limits; a missing key inherits.
#[derive(Debug, Clone, PartialEq, Deserialize, Default, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSet {
    pub memory: Option<Bytes>,
    pub pids: Option<u64>,
    pub cpus: Option<f64>,
    pub walltime: Option<Seconds>,
}

/// A per-VO or per-FQAN cap (exactly one of `vo`/`fqan`); the first matching cap applies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitCap {
    pub vo: Option<String>,
    pub fqan: Option<String>,
    // Not `#[serde(flatten)] LimitSet`: serde cannot combine flatten with deny_unknown_fields.
    pub memory: Option<Bytes>,
    pub pids: Option<u64>,
    pub cpus: Option<f64>,
    pub walltime: Option<Seconds>,
}

impl LimitCap {
    pub fn limits(&self) -> LimitSet {
        LimitSet {
            memory: self.memory,
            pids: self.pids,
            cpus: self.cpus,
            walltime: self.walltime,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Used when the pilot asks for nothing.
    #[serde(default)]
    pub default: LimitSet,
    /// Site-wide cap; missing keys fall back to `default` (nobody gets more than the default
    /// unless a cap says so).
    #[serde(default)]
    pub max: LimitSet,
    #[serde(default, rename = "cap")]
    pub caps: Vec<LimitCap>,
}

/// Environment variables a pilot may pass to the payload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Env {
    /// Exact names, or prefixes ending in `*` (`"PANDA_*"`).
    #[serde(default)]
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LeaseBackend {
    #[default]
    Sqlite,
    Gridmapdir,
}

/// What makes two calls "the same identity" for a sticky lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, Serialize)]
pub enum LeaseKeyKind {
    #[default]
    #[serde(rename = "dn+primary_fqan")]
    DnPrimaryFqan,
    #[serde(rename = "dn")]
    Dn,
}

/// Which group names a gridmapdir lease file name carries (LCMAPS `-pgroup`/`-sgroups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GroupSuffix {
    #[default]
    None,
    Primary,
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseConf {
    #[serde(default)]
    pub backend: LeaseBackend,
    #[serde(default = "default_store")]
    pub store: PathBuf,
    pub gridmapdir: Option<PathBuf>,
    #[serde(default)]
    pub key: LeaseKeyKind,
    /// A lease unused for this long may go to another identity (if no payload runs).
    #[serde(default = "default_idle")]
    pub idle: Seconds,
    #[serde(default)]
    pub gridmapdir_groups: GroupSuffix,
    /// How long to wait for the store lock before answering "temporary".
    #[serde(default = "default_busy")]
    pub busy_timeout: Seconds,
}

fn default_store() -> PathBuf {
    "/var/lib/pilotbox/leases.sqlite".into()
}
fn default_idle() -> Seconds {
    Seconds(30 * 86400)
}
fn default_busy() -> Seconds {
    Seconds(30)
}

impl Default for LeaseConf {
    fn default() -> Self {
        LeaseConf {
            backend: LeaseBackend::Sqlite,
            store: default_store(),
            gridmapdir: None,
            key: LeaseKeyKind::default(),
            idle: default_idle(),
            gridmapdir_groups: GroupSuffix::None,
            busy_timeout: default_busy(),
        }
    }
}

/// Where payload cgroups go (`runtime::cgroups::Placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CgroupPlacement {
    /// Under `root`, the same path in every hierarchy.
    #[default]
    Root,
    /// Under the pilot's own cgroup (its batch slot); `root` is the fallback.
    Nested,
}

/// `[cgroup]`: payload cgroup placement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupConf {
    #[serde(default)]
    pub placement: CgroupPlacement,
    /// Absolute cgroup path payloads go under (placement "root"), or the fallback ("nested").
    #[serde(default = "default_cgroup_root")]
    pub root: String,
}

fn default_cgroup_root() -> String {
    "/pilotbox".into()
}

impl Default for CgroupConf {
    fn default() -> Self {
        CgroupConf {
            placement: CgroupPlacement::Root,
            root: default_cgroup_root(),
        }
    }
}

/// `[audit]`: the JSON-lines audit log (root, 0600, append-only writes).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConf {
    #[serde(default = "default_audit_log")]
    pub log: PathBuf,
    /// Also send each record to syslog (`LOG_AUTHPRIV`).
    #[serde(default = "default_true")]
    pub syslog: bool,
    /// The local syslog datagram socket (syslog(3)'s `_PATH_LOG`). Sites whose logger listens
    /// elsewhere (e.g. journald's `/run/systemd/journal/dev-log` without the `/dev/log` link)
    /// name it here.
    #[serde(default = "default_syslog_socket", deserialize_with = "absolute_path")]
    pub syslog_socket: PathBuf,
}

fn default_syslog_socket() -> PathBuf {
    "/dev/log".into()
}

/// A path that must be absolute: pilotbox runs from the pilot's working directory, where a
/// relative path would name a file of the pilot's choosing.
fn absolute_path<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let p = PathBuf::deserialize(d)?;
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(serde::de::Error::custom(format!(
            "{}: must be an absolute path",
            p.display()
        )))
    }
}

fn default_audit_log() -> PathBuf {
    "/var/log/pilotbox/audit.jsonl".into()
}
fn default_true() -> bool {
    true
}

impl Default for AuditConf {
    fn default() -> Self {
        AuditConf {
            log: default_audit_log(),
            syslog: true,
            syslog_socket: default_syslog_socket(),
        }
    }
}

/// The signal that warns a payload its credential is about to expire. Only the signals the
/// sandbox's init forwards to the payload (SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2) can be
/// chosen: anything else would never reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExpirySignal {
    Sigterm,
    Sigint,
    Sighup,
    Sigusr1,
    #[default]
    Sigusr2,
}

impl ExpirySignal {
    /// The signal's name as written in the policy (`"SIGUSR2"`).
    pub fn name(self) -> &'static str {
        match self {
            ExpirySignal::Sigterm => "SIGTERM",
            ExpirySignal::Sigint => "SIGINT",
            ExpirySignal::Sighup => "SIGHUP",
            ExpirySignal::Sigusr1 => "SIGUSR1",
            ExpirySignal::Sigusr2 => "SIGUSR2",
        }
    }
}

/// `[expiry]`: a payload must not outlive the credential it was authorized with. `margin`
/// before the proxy's (or its AC's) notAfter the payload gets `signal` — time to finish or for
/// the pilot to `pilotbox renew`; at notAfter it is ended as at the wall-time limit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiryConf {
    #[serde(default = "default_expiry_margin")]
    pub margin: Seconds,
    #[serde(default)]
    pub signal: ExpirySignal,
}

fn default_expiry_margin() -> Seconds {
    Seconds(600)
}

impl Default for ExpiryConf {
    fn default() -> Self {
        ExpiryConf {
            margin: default_expiry_margin(),
            signal: ExpirySignal::default(),
        }
    }
}

/// `[network] mode`: what network the payload gets (docs/launcher-design.md, "Network").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own network namespace, outbound traffic relayed by `pasta`: the pilot's loopback
    /// services and abstract unix sockets are out of reach (they are per network namespace).
    #[default]
    Isolated,
    /// The host's network namespace (no isolation; the behaviour before `[network]` existed).
    Host,
    /// Its own network namespace with loopback only: no network at all.
    None,
}

impl NetworkMode {
    pub fn name(self) -> &'static str {
        match self {
            NetworkMode::Isolated => "isolated",
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
        }
    }
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConf {
    #[serde(default)]
    pub mode: NetworkMode,
}

#[cfg(test)]
mod launcher_tables {
    use super::*;

    #[test]
    fn network_table_defaults_to_isolated() {
        let p = std::path::Path::new("t.toml");
        let d = crate::config::parse("", p).unwrap();
        assert_eq!(d.network.mode, NetworkMode::Isolated);
        for (text, mode) in [
            ("isolated", NetworkMode::Isolated),
            ("host", NetworkMode::Host),
            ("none", NetworkMode::None),
        ] {
            let f = crate::config::parse(&format!("[network]\nmode = \"{text}\"\n"), p).unwrap();
            assert_eq!(f.network.mode, mode);
            assert_eq!(mode.name(), text);
        }
        for bad in ["mode = \"Host\"", "mode = \"slirp\"", "mode = 1", "mod = \"host\""] {
            assert!(crate::config::parse(&format!("[network]\n{bad}\n"), p).is_err(), "{bad}");
        }
    }

    #[test]
    fn cgroup_and_audit_tables() {
        let p = std::path::Path::new("t.toml");
        let d = crate::config::parse("", p).unwrap();
        assert_eq!(d.cgroup, CgroupConf::default());
        assert_eq!(d.cgroup.root, "/pilotbox");
        assert_eq!(d.audit.log, PathBuf::from("/var/log/pilotbox/audit.jsonl"));
        assert!(d.audit.syslog);
        let f = crate::config::parse(
            "[cgroup]\nplacement = \"nested\"\nroot = \"/site/pb\"\n[audit]\nlog = \"/x/a.jsonl\"\nsyslog = false\n",
            p,
        )
        .unwrap();
        assert_eq!(f.cgroup.placement, CgroupPlacement::Nested);
        assert_eq!(f.cgroup.root, "/site/pb");
        assert!(!f.audit.syslog);
        assert_eq!(f.audit.syslog_socket, std::path::Path::new("/dev/log"));
        let err = toml::from_str::<PolicyFile>("[audit]\nsyslog_socket = \"dev/log\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be an absolute path"), "{err}");
        assert!(crate::config::parse("[cgroup]\nplacment = \"root\"\n", p).is_err());
        assert!(crate::config::parse("[cgroup]\nplacement = \"pod\"\n", p).is_err());
    }

    #[test]
    fn expiry_table_defaults_and_allowed_signals() {
        let p = std::path::Path::new("t.toml");
        let d = crate::config::parse("", p).unwrap();
        assert_eq!(d.expiry.margin, Seconds(600), "default margin 10m");
        assert_eq!(d.expiry.signal, ExpirySignal::Sigusr2);
        let f =
            crate::config::parse("[expiry]\nmargin = \"30m\"\nsignal = \"SIGTERM\"\n", p).unwrap();
        assert_eq!(f.expiry.margin, Seconds(1800));
        assert_eq!(f.expiry.signal.name(), "SIGTERM");
        for sig in ["SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2"] {
            let f = crate::config::parse(&format!("[expiry]\nsignal = \"{sig}\"\n"), p).unwrap();
            assert_eq!(f.expiry.signal.name(), sig);
        }
        // Signals init does not forward, unknown names, bad durations, typos: refused.
        for bad in [
            "signal = \"SIGKILL\"",
            "signal = \"SIGSTOP\"",
            "signal = \"USR2\"",
            "signal = \"sigusr2\"",
            "margin = \"ten minutes\"",
            "margn = \"10m\"",
        ] {
            assert!(
                crate::config::parse(&format!("[expiry]\n{bad}\n"), p).is_err(),
                "{bad}"
            );
        }
    }
}
