//! Test helper, not installed for use: one mapping per process, so the lease tests can run
//! hundreds of real concurrent processes and kill -9 them mid-transaction.
//!
//! ```text
//! pilotbox-lease-probe decide POLICY DN [FQAN...]
//!     Load POLICY (trusted owner: the caller's own uid), decide for DN/FQANs (a valid AC),
//!     print {"account","uid","gid"} and exit 0, or print the denial and exit with its class.
//! pilotbox-lease-probe churn sqlite|gridmapdir PATH POOL_SIZE
//!     Acquire and release leases for random identities in a pool of POOL_SIZE accounts
//!     (tst01.., uids 40001..) with idle time 0, forever: a target for kill -9.
//! ```

use policy::authz::{decide, Policy, Request};
use policy::identity::{Identity, Voms};
use policy::lease::gridmapdir::GridmapdirStore;
use policy::lease::sqlite::SqliteStore;
use policy::lease::{unix_now, LeaseKey, LeaseStore, Pool, PoolAccount};
use std::path::Path;
use std::process::exit;

fn run_decide(args: &[String]) -> i32 {
    let (Some(path), Some(dn)) = (args.first(), args.get(1)) else {
        eprintln!("usage: decide POLICY DN [FQAN...]");
        return 2;
    };
    let uid = nix::unistd::getuid().as_raw();
    let policy = match Policy::load(Path::new(path), uid) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return e.to_denial().class.exit_code();
        }
    };
    let fqans: Vec<String> = args[2..].to_vec();
    let id = Identity {
        dn: dn.clone(),
        issuer_dn: "/DC=org/DC=example/CN=Test CA".into(),
        proxy_type: None,
        limited: false,
        not_after: time::OffsetDateTime::now_utc(),
        voms: (!fqans.is_empty()).then(|| Voms {
            vo: fqans[0].split('/').nth(1).unwrap_or("").into(),
            fqans,
            generic: vec![],
            valid: true,
            reason: None,
            not_after: None,
        }),
    };
    let store = match policy::lease::open_store(&policy.file.lease) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return e.class().exit_code();
        }
    };
    match decide(
        &policy,
        &id,
        &Request::default(),
        store.as_ref(),
        &|_| false,
        unix_now(),
    ) {
        Ok(d) => {
            println!(
                "{{\"account\":\"{}\",\"uid\":{},\"gid\":{}}}",
                d.account, d.uid, d.gid
            );
            0
        }
        Err(d) => {
            eprintln!("{d}");
            d.class.exit_code()
        }
    }
}

fn run_churn(args: &[String]) -> i32 {
    let (Some(kind), Some(path), Some(size)) = (
        args.first(),
        args.get(1),
        args.get(2).and_then(|s| s.parse::<u32>().ok()),
    ) else {
        eprintln!("usage: churn sqlite|gridmapdir PATH POOL_SIZE");
        return 2;
    };
    let store: Box<dyn LeaseStore> = match kind.as_str() {
        "sqlite" => Box::new(SqliteStore::open(Path::new(path), 30).expect("open sqlite")),
        _ => Box::new(GridmapdirStore::open(Path::new(path), 30).expect("open gridmapdir")),
    };
    let pool = Pool {
        name: "tst".into(),
        accounts: (1..=size)
            .map(|i| PoolAccount::named(format!("tst{i:02}"), 40000 + i))
            .collect(),
    };
    // xorshift seeded by pid and time: every process churns differently.
    let mut x = (std::process::id() as u64) << 32 ^ unix_now() ^ 0x9e37_79b9_7f4a_7c15;
    let mut now = unix_now();
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now += 1;
        let key = LeaseKey {
            dn: format!("/DC=org/CN=churn{}", x % (size as u64 * 2)),
            primary_fqan: None,
            groups: vec![],
        };
        match store.acquire(&pool, &key, now, 0, &|_| false) {
            Ok((l, _)) if x % 5 == 1 => {
                let _ = store.release(&l.account);
            }
            Ok(_) => {}
            Err(e) => eprintln!("{e}"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("decide") => run_decide(&args[1..]),
        Some("churn") => run_churn(&args[1..]),
        _ => {
            eprintln!("usage: pilotbox-lease-probe decide|churn ...");
            2
        }
    };
    exit(code)
}
