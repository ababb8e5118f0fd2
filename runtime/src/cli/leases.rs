//! `pilotbox leases list [--json]` and `pilotbox leases expire [--idle DURATION] [--account NAME]
//! [--dry-run]`: the admin's view of pool-account leases.
//!
//! Root only (real uid 0): the lease table maps people's DNs to accounts. A lease is expired
//! only when no process of its uid runs on this node (`/proc` scan), the same guarantee lease
//! recycling gives.

use clap::{Args as ClapArgs, Subcommand};
use policy::authz::Policy;
use policy::class::Class;
use policy::lease::{open_store_without_creating, unix_now, Lease};
use std::os::unix::fs::MetadataExt;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List every lease: pool, account, uid, identity, last use.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Drop leases idle for longer than DURATION (default: the policy's [lease] idle), or the
    /// lease of one account; never one whose uid has a running process.
    Expire {
        #[arg(long, value_name = "DURATION")]
        idle: Option<String>,
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        #[arg(long)]
        dry_run: bool,
    },
}

/// Whether any process on this node runs with `uid` (real, effective, saved or fs uid).
/// `/proc/<pid>` is owned by the process's effective uid; the status file lists all four.
pub fn uid_has_processes(uid: u32) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return true;
    }; // cannot tell: assume busy
    for e in rd.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if e.metadata().map(|m| m.uid() == uid).unwrap_or(false) {
            return true;
        }
        if let Ok(status) = std::fs::read_to_string(e.path().join("status")) {
            if let Some(l) = status.lines().find(|l| l.starts_with("Uid:")) {
                if l.split_whitespace().skip(1).any(|u| u.parse() == Ok(uid)) {
                    return true;
                }
            }
        }
    }
    false
}

fn fmt_time(t: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t as i64)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

fn print(leases: &[Lease], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(leases).unwrap_or_default()
        );
        return;
    }
    println!(
        "{:<10} {:<12} {:>7}  {:<20}  identity",
        "pool", "account", "uid", "last used"
    );
    for l in leases {
        println!(
            "{:<10} {:<12} {:>7}  {:<20}  {}",
            l.pool,
            l.account,
            l.uid,
            fmt_time(l.last_used),
            l.identity
        );
    }
}

pub fn run(args: Args) -> i32 {
    // The caller's real uid from sanitize: the setuid worker's own is 0 (launcher::split).
    if crate::launcher::split::caller_ids().0 != 0 {
        eprintln!("pilotbox leases: root only (the lease table maps DNs to accounts)");
        return Class::PilotError.exit_code();
    }
    let policy = match Policy::load_system() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pilotbox: {e}");
            return Class::SiteError.exit_code();
        }
    };
    run_with_policy(&policy, args)
}

/// The command against an already loaded policy (tests load their own).
pub fn run_with_policy(policy: &Policy, args: Args) -> i32 {
    let store = match open_store_without_creating(&policy.file.lease) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pilotbox: {e}");
            return e.class().exit_code();
        }
    };
    let r = match args.cmd {
        Cmd::List { json } => store.list().map(|l| print(&l, json)),
        Cmd::Expire {
            idle,
            account: Some(a),
            dry_run,
        } => {
            let _ = idle;
            match store.list() {
                Ok(ls) => match ls.into_iter().find(|l| l.account == a) {
                    None => {
                        eprintln!("no lease on account {a}");
                        return 1;
                    }
                    Some(l) if uid_has_processes(l.uid) => {
                        eprintln!(
                            "account {a} (uid {}) has running processes: lease kept",
                            l.uid
                        );
                        return Class::Temporary.exit_code();
                    }
                    Some(l) if dry_run => {
                        print(&[l], false);
                        Ok(())
                    }
                    Some(_) => store.release(&a).map(|_| println!("released lease on {a}")),
                },
                Err(e) => Err(e),
            }
        }
        Cmd::Expire {
            idle,
            account: None,
            dry_run,
        } => {
            let idle_s = match idle.as_deref().map(policy::config::units::parse_duration) {
                None => policy.file.lease.idle.0,
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    eprintln!("pilotbox leases expire: {e}");
                    return Class::PilotError.exit_code();
                }
            };
            let now = unix_now();
            if dry_run {
                store.list().map(|ls| {
                    let idle: Vec<Lease> = ls
                        .into_iter()
                        .filter(|l| {
                            l.last_used <= now.saturating_sub(idle_s) && !uid_has_processes(l.uid)
                        })
                        .collect();
                    print(&idle, false)
                })
            } else {
                store
                    .expire_idle(now, idle_s, &uid_has_processes)
                    .map(|gone| {
                        println!("expired {} lease(s)", gone.len());
                        print(&gone, false)
                    })
            }
        }
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pilotbox: {e}");
            e.class().exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::lease::{LeaseKey, Pool, PoolAccount};
    use std::path::Path;

    #[test]
    fn process_scan_sees_root_and_not_an_unused_uid() {
        assert!(uid_has_processes(0));
        assert!(!uid_has_processes(39_999));
    }

    #[test]
    fn expire_drops_idle_leases_of_idle_uids_only() {
        let d = tempfile::tempdir().unwrap();
        let text = format!(
            "[lease]\nstore = \"{}\"\nidle = \"1h\"\n",
            d.path().join("l.sqlite").display()
        );
        let p = Policy::compile(
            policy::config::parse(&text, Path::new("t")).unwrap(),
            Path::new("t"),
        )
        .unwrap();
        let store = policy::lease::open_store(&p.file.lease).unwrap();
        // uid 0 always has processes here: its lease must survive; uid 39998 has none.
        let pool = Pool {
            name: "t".into(),
            accounts: vec![
                PoolAccount::named("busy", 0),
                PoolAccount::named("idle", 39_998),
            ],
        };
        for dn in ["/CN=a", "/CN=b"] {
            let k = LeaseKey {
                dn: dn.into(),
                primary_fqan: None,
                groups: vec![],
            };
            store.acquire(&pool, &k, 1000, 3600, &|_| false).unwrap();
        }
        let expire = |account: Option<&str>| Args {
            cmd: Cmd::Expire {
                idle: Some("10m".into()),
                account: account.map(String::from),
                dry_run: false,
            },
        };
        assert_eq!(run_with_policy(&p, expire(None)), 0);
        let left: Vec<String> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|l| l.account)
            .collect();
        assert_eq!(left, vec!["busy".to_string()]);
        assert_eq!(
            run_with_policy(&p, expire(Some("busy"))),
            121,
            "running processes: kept"
        );
        assert_eq!(run_with_policy(&p, expire(Some("nobody"))), 1);
        assert_eq!(
            run_with_policy(
                &p,
                Args {
                    cmd: Cmd::List { json: true }
                }
            ),
            0
        );
    }
}
