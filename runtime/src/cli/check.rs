//! `pilotbox check [--json] [--run-payload] [--workdir DIR]`: validate the installation before
//! accepting work. One line per check (`ok`/`FAIL`, what was found, how to fix it), or with
//! `--json` one object `{"ok": bool, "checks": [{"name", "ok", "detail", "fix"}]}`.
//! Exit 0 when every check passes, 123 (site error) otherwise.

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
    /// Also run a test payload in the sandbox as the first account of the first pool.
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
