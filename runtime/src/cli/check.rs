//! `pilotbox check [--json] [--run-payload] [--workdir DIR]`: validate the installation before
//! accepting work. One line per check (`ok`/`FAIL`, what was found, how to fix it), or with
//! `--json` one object `{"ok": bool, "checks": [{"name", "ok", "detail", "fix"}]}`.
//! Exit 0 when every check passes, 123 (site error) otherwise.
//!
//! Root and the policy's pilots (`[pilots]`) only; anyone else is refused (120), as is
//! `--run-payload` from anyone but root: the checks create cgroups, and the payload check runs
//! a payload as a pool account, all as root.

use super::lifecycle_args::root_only;
use crate::lifecycle::caller::Caller;
use crate::lifecycle::check::{self, CheckOptions};
use crate::lifecycle::gc::cgroup_root_of;
use policy::Class;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// (root only) Also run a test payload in the sandbox as the first account of the first pool.
    #[arg(long)]
    pub run_payload: bool,
    /// Check that this work dir is usable (yours, and every directory above it traversable).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// (root only) Check this policy file instead of the installed one.
    #[arg(long, hide = true)]
    pub policy: Option<PathBuf>,
    /// (root only) Cgroup root to probe instead of the policy's [cgroup] root.
    #[arg(long, hide = true)]
    pub cgroup_root: Option<String>,
}

/// `sanitized`: see `cli::renew::run` (a relative `--workdir` is relative to the caller's cwd).
pub fn run(mut a: Args, sanitized: &crate::launcher::sanitize::Caller) -> i32 {
    a.workdir = a.workdir.map(|w| sanitized.absolute(&w));
    let caller = Caller::current();
    if let Err(c) = root_only(
        "check",
        caller,
        "--policy/--cgroup-root",
        a.policy.is_some() || a.cgroup_root.is_some(),
    ) {
        return c;
    }
    if let Err(c) = allowed(caller, a.run_payload) {
        return c;
    }
    let policy_path = a
        .policy
        .clone()
        .unwrap_or_else(|| PathBuf::from(policy::config::POLICY_PATH));
    let loaded = policy::config::load_file(&policy_path, policy::config::TRUSTED_UID)
        .map_err(|e| e.to_string());
    let cgroup_root = a
        .cgroup_root
        .unwrap_or_else(|| cgroup_root_of(loaded.as_ref().ok()));
    let opts = CheckOptions {
        binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
        policy: loaded,
        policy_path,
        cgroup_root,
        run_payload: a.run_payload,
        workdir: a.workdir,
        caller,
    };
    let results = check::run_all(&opts);
    let all_ok = results.iter().all(|r| r.ok);
    if a.json {
        println!("{}", serde_json::json!({"ok": all_ok, "checks": results}));
    } else {
        for r in &results {
            println!(
                "{:<4} {:<10} {}",
                if r.ok { "ok" } else { "FAIL" },
                r.name,
                r.detail
            );
            if let Some(f) = &r.fix {
                println!("     {:<10} fix: {f}", "");
            }
        }
    }
    if all_ok {
        0
    } else {
        Class::SiteError.exit_code()
    }
}

/// Root, or a pilot of the installed policy without `--run-payload`; else the exit status.
fn allowed(caller: Caller, run_payload: bool) -> Result<(), i32> {
    if caller.is_root() {
        return Ok(());
    }
    let refuse = |d: policy::Denial| {
        eprintln!("pilotbox check: {}", d.reason);
        d.class.exit_code()
    };
    if run_payload {
        return Err(refuse(policy::Denial::new(
            Class::Denied,
            "--run-payload is root's only (it runs a payload as a pool account, without a credential)",
        )));
    }
    let policy = policy::authz::Policy::load_system().map_err(|e| refuse(e.into()))?;
    let mut gids: Vec<u32> = nix::unistd::getgroups()
        .map(|g| g.iter().map(|g| g.as_raw()).collect())
        .unwrap_or_default();
    gids.push(caller.gid);
    policy::authz::check_pilot(&policy, caller.uid, &gids)
        .map(|_| ())
        .map_err(refuse)
}
