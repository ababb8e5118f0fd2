//! `check`: the installation checks a pilot (or an admin) runs before accepting work. Each
//! check has a stable `name`, pass/fail, what was found, and a fix hint a human can act on
//! (docs/design.md "Principles": fail with a reason a human can act on).
//!
//! | name        | passes when |
//! |-------------|-------------|
//! | `setuid`    | the running `pilotbox` binary is owned by root and has the setuid bit |
//! | `policy`    | the policy file loads: root-owned, not group/world-writable, nor its directories; valid schema |
//! | `trust_dir` | the CA directory holds at least one CA, and no CRL is past its nextUpdate |
//! | `voms_dir`  | the VOMS directory exists |
//! | `cgroup`    | a probe cgroup `check-<pid>-<starttime>` can be created (with memory and pids limits) and removed under the cgroup root (the root itself is never removed) |
//! | `userns`    | a process can create a user namespace (`unshare(CLONE_NEWUSER)` in a forked child) |
//! | `network`   | `[network] mode` is `host` or `none`, or (`isolated`, the default) pasta is installed where `pilotbox` looks for it, root-owned and not group/world-writable, (the detail says when DNS goes through pasta's forwarder: a host resolver on loopback) |
//! | `payload`   | (`--run-payload`, root only) a test payload runs in the sandbox as the first account of the first pool |
//! | `workdir`   | (`--workdir DIR`) DIR is a directory of the caller, and every directory above it grants search (`x`) to others, checked as the caller |
//!
//! Who may run it: root, and the pilots of the policy's `[pilots]` (others are refused, 120:
//! the check creates cgroups as root). `--run-payload` runs a payload as a pool account without
//! a credential, so it is root's alone.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::caller::{self, Caller};
use crate::cgroups::Cgroup;
use crate::sys::{self, Forked};

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it (null when ok).
    pub fix: Option<String>,
}

fn pass(name: &'static str, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        name,
        ok: true,
        detail: detail.into(),
        fix: None,
    }
}

fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> CheckResult {
    CheckResult {
        name,
        ok: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

pub struct CheckOptions {
    pub binary: PathBuf,
    /// The policy as loaded (Err: the load error, already a check failure).
    pub policy: Result<policy::config::PolicyFile, String>,
    pub policy_path: PathBuf,
    pub cgroup_root: String,
    pub run_payload: bool,
    pub workdir: Option<PathBuf>,
    pub caller: Caller,
}

pub fn run_all(o: &CheckOptions) -> Vec<CheckResult> {
    let trust = o
        .policy
        .as_ref()
        .map(|p| p.trust.clone())
        .unwrap_or_default();
    let mut out = vec![
        setuid(&o.binary),
        match &o.policy {
            Ok(_) => pass("policy", format!("{} loads", o.policy_path.display())),
            Err(e) => fail("policy", e.clone(), format!(
                "create or fix {} (root-owned, not group/world-writable, nor its directories; see docs/policy.md)",
                o.policy_path.display())),
        },
        trust_dir(&trust.ca_dir),
        voms_dir(&trust.voms_dir),
        cgroup(&o.cgroup_root),
        userns(),
    ];
    if let Ok(p) = &o.policy {
        out.push(network(p.network.mode));
    }
    if o.run_payload {
        out.push(match &o.policy {
            Ok(p) => payload(p, &o.cgroup_root),
            Err(_) => fail("payload", "no usable policy", "fix the policy check first"),
        });
    }
    if let Some(w) = &o.workdir {
        out.push(workdir(o.caller, w));
    }
    out
}

pub fn setuid(bin: &Path) -> CheckResult {
    let fix = format!("chown root:root {0} && chmod 4755 {0}", bin.display());
    match std::fs::metadata(bin) {
        Err(e) => fail("setuid", format!("{}: {e}", bin.display()), fix),
        Ok(m) if m.uid() != 0 => fail(
            "setuid",
            format!("{} is owned by uid {}", bin.display(), m.uid()),
            fix,
        ),
        Ok(m) if m.mode() & 0o4000 == 0 => fail(
            "setuid",
            format!(
                "{} has no setuid bit (mode {:04o})",
                bin.display(),
                m.mode() & 0o7777
            ),
            fix,
        ),
        Ok(m) if m.mode() & 0o022 != 0 => fail(
            "setuid",
            format!(
                "{} is group/world-writable (mode {:04o})",
                bin.display(),
                m.mode() & 0o7777
            ),
            fix,
        ),
        Ok(m) => pass(
            "setuid",
            format!(
                "{} root-owned, mode {:04o}",
                bin.display(),
                m.mode() & 0o7777
            ),
        ),
    }
}

pub fn trust_dir(dir: &Path) -> CheckResult {
    let td = match policy::credentials::trust_dir::TrustDir::load(dir) {
        Ok(t) => t,
        Err(e) => return fail("trust_dir", e.to_string(), format!(
            "install the IGTF CA bundle into {} (e.g. the ca-policy-egi-core package) and run fetch-crl", dir.display())),
    };
    if td.cas.is_empty() {
        return fail(
            "trust_dir",
            format!("{}: no CA certificates (<hash>.0)", dir.display()),
            format!("install the IGTF CA bundle into {}", dir.display()),
        );
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let crls = td.all_crls();
    let expired: Vec<&str> = crls
        .iter()
        .filter(|c| c.next_update.is_some_and(|n| n < now))
        .map(|c| c.file.as_str())
        .collect();
    if !expired.is_empty() {
        return fail(
            "trust_dir",
            format!("{}: expired CRLs: {}", dir.display(), expired.join(", ")),
            "run fetch-crl (and make sure its cron job/timer is enabled)",
        );
    }
    pass(
        "trust_dir",
        format!(
            "{}: {} CAs, {} CRLs, none expired",
            dir.display(),
            td.cas.len(),
            crls.len()
        ),
    )
}

pub fn voms_dir(dir: &Path) -> CheckResult {
    if dir.is_dir() {
        pass("voms_dir", format!("{} exists", dir.display()))
    } else {
        fail(
            "voms_dir",
            format!("{} is not a directory", dir.display()),
            format!(
                "create {} with one <vo>/<voms-host>.lsc per VOMS server",
                dir.display()
            ),
        )
    }
}

/// The name of this run's probe cgroup `<prefix>-<pid>-<starttime>`: unique on the node for
/// good ((pid, start time) names one process, [`super::procs`]), so a check never touches a
/// cgroup another check or a launch made, and `gc` can tell that the check that made it is gone
/// ([`probe_owner`]) and remove it at once.
fn probe_name(prefix: &str) -> String {
    let me = std::process::id() as i32;
    format!(
        "{prefix}-{me}-{}",
        super::procs::start_time(me).unwrap_or(0)
    )
}

/// The (pid, start time) of the check that made a probe cgroup named `name`, if it is one.
pub fn probe_owner(name: &str) -> Option<(i32, u64)> {
    let rest = name
        .strip_prefix("check-payload-")
        .or_else(|| name.strip_prefix("check-"))?;
    let (pid, start) = rest.split_once('-')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(pid) || !all_digits(start) {
        return None;
    }
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// Create and remove a probe cgroup under `root`. Only the probe is removed, never `root`,
/// even when this run created it: a launch may have placed its payload under `root` in the
/// meantime (a check that removed a root it believed its own killed 6 of 30 concurrent
/// launches, issue 11 item 5), and "still empty" cannot be made atomic with the removal — a
/// launch that found `root` and is about to `mkdir` in it fails when it vanishes. An empty
/// root left behind is harmless: it is where payload cgroups go anyway.
pub fn cgroup(root: &str) -> CheckResult {
    let probe = format!("{}/{}", root.trim_end_matches('/'), probe_name("check"));
    let res = crate::engine::resources(Some(64 << 20), Some(16), None);
    match Cgroup::create(&probe, res.as_ref()) {
        Ok(cg) => match cg.destroy() {
            Ok(()) => pass(
                "cgroup",
                format!("created and removed {probe} with memory and pids limits"),
            ),
            Err(e) => fail(
                "cgroup",
                format!("created {probe} but cannot remove it: {e}"),
                "remove it by hand and check the cgroup filesystem",
            ),
        },
        Err(e) => fail("cgroup", format!("cannot create {probe}: {e}"),
            format!("pilotbox needs to create cgroups under {root} as root, with the memory and pids controllers (cgroup v2: enabled in the parents' cgroup.subtree_control; v1: mounted)")),
    }
}

/// Fork a child that tries `unshare(CLONE_NEWUSER)`.
pub fn userns() -> CheckResult {
    let fix = "enable user namespaces: sysctl user.max_user_namespaces=15000 (EL7) / kernel.unprivileged_userns_clone=1 is not needed for root";
    if sys::thread_count().map(|n| n != 1).unwrap_or(true) {
        return fail(
            "userns",
            "cannot probe from a multi-threaded process",
            "run `pilotbox check` itself",
        );
    }
    match sys::fork() {
        Err(e) => fail("userns", format!("fork: {e}"), fix),
        Ok(Forked::Child) => {
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            sys::exit_now(if ok { 0 } else { 1 })
        }
        Ok(Forked::Parent(pid)) => {
            match nix::sys::wait::waitpid(pid, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => {
                    pass("userns", "unshare(CLONE_NEWUSER) works")
                }
                other => {
                    let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
                        .unwrap_or_default();
                    fail("userns", format!("unshare(CLONE_NEWUSER) failed ({other:?}); user.max_user_namespaces = {}", max.trim()), fix)
                }
            }
        }
    }
}

/// The helper `[network] mode = "isolated"` needs (see [`crate::network`]).
pub fn network(mode: policy::config::schema::NetworkMode) -> CheckResult {
    use policy::config::schema::NetworkMode;
    if mode != NetworkMode::Isolated {
        return pass(
            "network",
            format!("[network] mode = \"{}\": no helper needed", mode.name()),
        );
    }
    let pasta = match crate::network::find_pasta(true) {
        Ok(p) => p,
        Err(e) => return fail(
            "network",
            e,
            "install pasta (Debian/Ubuntu: apt-get install passt; EL: dnf install passt), or set [network] mode = \"host\" (no isolation) or \"none\" (no network) in the policy",
        ),
    };
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let dns = match crate::network::loopback_only_resolvers(&resolv) {
        Some(why) => format!(
            "; {why}: the sandbox gets nameserver {} (pasta forwards it to the host's resolver)",
            crate::network::DNS_FORWARD
        ),
        None => String::new(),
    };
    pass(
        "network",
        format!(
            "[network] mode = \"isolated\": pasta is {}{dns}",
            pasta.display()
        ),
    )
}

/// Run `/bin/sh -c 'test "$(id -u)" = UID'` in the sandbox as the first account of the first pool.
pub fn payload(p: &policy::config::PolicyFile, root: &str) -> CheckResult {
    let Some(pool) = p.pools.first() else {
        return fail(
            "payload",
            "the policy defines no [[pool]]",
            "add a pool of accounts (docs/policy.md)",
        );
    };
    let acct = match policy::authz::accounts::expand_pool(pool) {
        Ok(x) => x,
        Err(e) => {
            return fail(
                "payload",
                format!("pool {}: {e}", pool.name),
                "fix the pool definition",
            )
        }
    };
    let Some(a) = acct.accounts.first() else {
        return fail(
            "payload",
            format!("pool {} has no accounts", pool.name),
            "fix the pool definition",
        );
    };
    let gid = match &pool.gid {
        Some(g) => policy::authz::accounts::resolve_group(g).unwrap_or(a.uid),
        None => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(a.uid))
            .ok()
            .flatten()
            .map(|u| u.gid.as_raw())
            .unwrap_or(a.uid),
    };
    let script = format!("test \"$(id -u)\" = {}", a.uid);
    let mut spec = crate::spec_builder::PayloadSpec::new(
        vec!["/bin/sh".into(), "-c".into(), script],
        a.uid,
        gid,
    );
    spec.cgroup_path = Some(format!(
        "{}/{}",
        root.trim_end_matches('/'),
        probe_name("check-payload")
    ));
    spec.resources = crate::engine::resources(Some(256 << 20), Some(64), None);
    spec.seccomp = Some(crate::engine::default_seccomp());
    crate::network::apply_mode(&mut spec, p.network.mode);
    let result = spec.to_spec().map_err(|e| e.to_string()).and_then(|s| {
        crate::engine::run(
            &s,
            &crate::engine::RunOptions {
                seccomp_cache: crate::engine::default_seccomp_cache(),
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())
    });
    match result {
        Ok(r) if r.outcome.status.exit_code() == 0 => pass(
            "payload",
            format!("a sandboxed payload ran as {} (uid {})", a.name(), a.uid),
        ),
        Ok(r) => fail(
            "payload",
            format!(
                "the test payload as uid {} ended with status {}",
                a.uid,
                r.outcome.status.exit_code()
            ),
            "see `pilotbox-engine exec` and docs/engine.md",
        ),
        Err(e) => fail(
            "payload",
            e,
            "see docs/engine.md (namespaces, cgroups, seccomp must work)",
        ),
    }
}

/// As the caller: DIR is the caller's directory, and every ancestor grants search to others
/// (the payload's pool uid is neither their owner nor, normally, in their group).
pub fn workdir(caller: Caller, dir: &Path) -> CheckResult {
    let r = caller::as_caller(caller, || -> Result<String, (String, String)> {
        let abs = std::fs::canonicalize(dir).map_err(|e| {
            (
                format!("{}: {e}", dir.display()),
                "give an existing directory you own".to_string(),
            )
        })?;
        let md = std::fs::metadata(&abs).map_err(|e| (e.to_string(), String::new()))?;
        if !md.is_dir() || md.uid() != caller.uid {
            return Err((
                format!(
                    "{} is not a directory owned by uid {}",
                    abs.display(),
                    caller.uid
                ),
                "use a directory you created for the job".into(),
            ));
        }
        for a in abs.ancestors().skip(1) {
            let m = std::fs::metadata(a)
                .map_err(|e| (format!("{}: {e}", a.display()), String::new()))?;
            if m.permissions().mode() & 0o001 == 0 {
                return Err((
                    format!(
                        "{} (mode {:04o}) does not let others traverse it",
                        a.display(),
                        m.mode() & 0o7777
                    ),
                    format!("chmod o+x {} (or choose a work dir elsewhere)", a.display()),
                ));
            }
        }
        Ok(format!(
            "{}: every directory above it is traversable",
            abs.display()
        ))
    });
    match r {
        Ok(Ok(d)) => pass("workdir", d),
        Ok(Err((d, f))) => fail("workdir", d, f),
        Err(e) => fail("workdir", e.to_string(), "internal error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_carry_their_maker_and_nothing_else_parses_as_one() {
        let me = std::process::id() as i32;
        let start = crate::lifecycle::procs::start_time(me).unwrap();
        assert_eq!(probe_owner(&probe_name("check")), Some((me, start)));
        assert_eq!(probe_owner(&probe_name("check-payload")), Some((me, start)));
        for other in [
            "check",
            "check-1",
            "check-1-",
            "check-x-2",
            "pb-0123",
            "check-1-2-3",
            "pilotbox-check-1",
        ] {
            assert_eq!(probe_owner(other), None, "{other}");
        }
    }
}
