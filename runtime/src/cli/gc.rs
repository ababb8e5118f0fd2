//! `pilotbox gc [--json] [--id ID]...`: reclaim records, cgroups and work-dir hand-overs of
//! payloads whose supervisor is gone, write their `end` audit records, and end payloads that
//! outlived their wall-time limit or credential (see `lifecycle::gc`). A pilot reclaims its own
//! payloads; root reclaims all and also sweeps unclaimed empty cgroups, probe cgroups of dead
//! `check` runs and record-less state dirs. Root runs it from a timer
//! (packaging/systemd/pilotbox-gc.timer).
//!
//! Exit 0 when everything found was reclaimed, 123 when something could not be.

use super::lifecycle_args::{fail, installed_policy, root_only, StateArgs};
use crate::lifecycle::caller::Caller;
use crate::lifecycle::gc::{self, GcOptions};
use policy::Class;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print what was reclaimed as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// (root only) Cgroup root to sweep instead of the policy's [cgroup] root (repeatable).
    #[arg(long, hide = true)]
    pub cgroup_root: Vec<String>,
    /// (root only) Minimum age in seconds of an unclaimed cgroup or state dir before it is
    /// removed (default 600: younger ones may be a launch in progress).
    #[arg(long, hide = true)]
    pub min_age: Option<u64>,
    /// (root only) Seconds a payload may outlive its wall-time limit or credential before gc
    /// ends it (default 60).
    #[arg(long, hide = true)]
    pub limit_grace: Option<u64>,
    /// Only this payload (repeatable; default: all).
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

pub fn run(a: Args) -> i32 {
    let caller = Caller::current();
    let state_dir = match a.state.resolve("gc", caller) {
        Ok(d) => d,
        Err(c) => return c,
    };
    if let Err(c) = root_only(
        "gc",
        caller,
        "--cgroup-root/--min-age/--limit-grace",
        !a.cgroup_root.is_empty() || a.min_age.is_some() || a.limit_grace.is_some(),
    ) {
        return c;
    }
    let policy = installed_policy();
    let audit = crate::lifecycle::audit_for(policy.as_ref());
    let opts = GcOptions {
        state_dir,
        cgroup_roots: if a.cgroup_root.is_empty() {
            vec![gc::cgroup_root_of(policy.as_ref())]
        } else {
            a.cgroup_root
        },
        min_age: a
            .min_age
            .map(Duration::from_secs)
            .unwrap_or(gc::DEFAULT_MIN_AGE),
        limit_grace: a
            .limit_grace
            .map(Duration::from_secs)
            .unwrap_or(crate::lifecycle::reap::DEFAULT_LIMIT_GRACE),
        ids: a.ids,
    };
    let report = match gc::collect(&opts, &audit, caller) {
        Ok(r) => r,
        Err(e) => return fail("gc", &e),
    };
    print_report(&report, a.json, "pilotbox")
}

/// Print what `gc` did (shared with `pilotbox-nosuid gc`); the exit status: 0 when everything
/// found was reclaimed, 123 when something could not be.
pub fn print_report(report: &gc::GcReport, json: bool, name: &str) -> i32 {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).unwrap_or_else(|_| "{}".into())
        );
    } else {
        for id in &report.limits_enforced {
            println!("ended payload {id}: it outlived its wall-time limit or credential");
        }
        for id in &report.reclaimed {
            println!("reclaimed payload {id}");
        }
        for c in &report.cgroups_removed {
            println!("removed unclaimed cgroup {c}");
        }
        for d in &report.stale_dirs_removed {
            println!("removed stale state dir {}", d.display());
        }
        if report.files_restored > 0 {
            println!("gave {} files back to their pilots", report.files_restored);
        }
    }
    for e in &report.errors {
        eprintln!("{name} gc: {e}");
    }
    if report.errors.is_empty() {
        0
    } else {
        Class::SiteError.exit_code()
    }
}
