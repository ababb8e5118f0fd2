//! `pilotbox ps [--json]` and `pilotbox status ID [--json]`: the caller's running payloads (root
//! sees all) with their state, account and cgroup; `status` adds usage so far.

use super::lifecycle_args::{fail, StateArgs};
use crate::lifecycle::caller::Caller;
use crate::lifecycle::control::{self, Status};

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Print a JSON array (one object per payload, the fields of `status --json`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The payload id (`pilotbox run --id`, or as listed by `pilotbox ps`).
    pub id: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn run_ps(a: PsArgs) -> i32 {
    let caller = Caller::current();
    let dir = match a.state.resolve("ps", caller) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let list = match control::list(&dir, caller) {
        Ok(l) => l,
        Err(e) => return fail("ps", &e),
    };
    print_list(&list, a.json);
    0
}

/// `ps` output (shared with `pilotbox-nosuid ps`): a table, or a JSON array of `status` objects.
pub fn print_list(list: &[Status], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
        );
        return;
    }
    println!(
        "{:<24} {:<8} {:<12} {:>6} {:>6} {:<20} CGROUP",
        "ID", "STATE", "ACCOUNT", "UID", "PILOT", "STARTED"
    );
    for s in list {
        println!(
            "{:<24} {:<8} {:<12} {:>6} {:>6} {:<20} {}",
            s.id,
            state_name(&s.state),
            s.account,
            s.uid,
            s.pilot_uid,
            rfc3339(s.started),
            s.cgroup
        );
    }
}

fn state_name(s: &control::RunState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn run_status(a: StatusArgs) -> i32 {
    let caller = Caller::current();
    let dir = match a.state.resolve("status", caller) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let s = match control::status(&dir, caller, &a.id) {
        Ok(s) => s,
        Err(e) => return fail("status", &e),
    };
    print_one(&s, a.json);
    0
}

/// `status` output (shared with `pilotbox-nosuid status`): text, or one JSON object.
pub fn print_one(s: &Status, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(s).unwrap_or_else(|_| "{}".into())
        );
    } else {
        print_status(s);
    }
}

fn print_status(s: &Status) {
    println!("id:          {}", s.id);
    println!("state:       {}", state_name(&s.state));
    println!("account:     {} (uid {}, gid {})", s.account, s.uid, s.gid);
    if let Some(w) = &s.would_map_account {
        println!("would map:   {w} (no identity switch: runs as the pilot)");
    }
    println!("user:        {}", s.dn);
    if let Some(vo) = &s.vo {
        println!(
            "vo:          {vo} {}",
            s.fqans.first().map(String::as_str).unwrap_or("")
        );
    }
    println!("pilot uid:   {}", s.pilot_uid);
    println!("cgroup:      {}", s.cgroup);
    println!("processes:   {}", s.pids.len());
    println!("started:     {} ({} s ago)", rfc3339(s.started), s.wall_s);
    println!(
        "proxy until: {}",
        s.cred_not_after.map(rfc3339).unwrap_or_else(|| "-".into())
    );
    if let Some(u) = &s.usage {
        println!(
            "cpu:         {:.2} s user, {:.2} s system",
            u.cpu_user_s, u.cpu_sys_s
        );
        if let Some(m) = u.mem_peak_bytes {
            println!("memory peak: {m} bytes");
        }
        if u.oom_killed {
            println!("oom kills:   {}", u.oom_kills);
        }
    }
}
