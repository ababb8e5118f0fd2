//! kill -9 during lease acquisition, at random points, repeated: the store stays consistent.
//!
//! Each round starts a few `churn` processes that acquire, recycle (idle time 0) and release
//! leases as fast as they can, SIGKILLs them after a random 15–165 ms, then checks the store:
//! SQLite `integrity_check` and uniqueness, gridmapdir link counts and orphan leases; and that a
//! fresh acquisition still succeeds (no lock left behind).

use policy::lease::gridmapdir::GridmapdirStore;
use policy::lease::sqlite::SqliteStore;
use policy::lease::{LeaseKey, LeaseStore, Pool, PoolAccount};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const PROBE: &str = env!("CARGO_BIN_EXE_pilotbox-lease-probe");
const ROUNDS: usize = 30;
const POOL: u32 = 10;

fn rng() -> impl FnMut() -> u64 {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn pool() -> Pool {
    Pool {
        name: "tst".into(),
        accounts: (1..=POOL)
            .map(|i| PoolAccount::named(format!("tst{i:02}"), 40000 + i))
            .collect(),
    }
}

/// Returns whether the killed processes had leased anything (so the round tested something).
fn verify(store: &dyn LeaseStore, round: usize) -> bool {
    let problems = store.check().unwrap();
    assert!(problems.is_empty(), "round {round}: {problems:?}");
    let leases = store.list().unwrap();
    let accounts: HashSet<_> = leases.iter().map(|l| &l.account).collect();
    let identities: HashSet<_> = leases.iter().map(|l| &l.identity).collect();
    assert_eq!(
        accounts.len(),
        leases.len(),
        "round {round}: an account leased twice: {leases:?}"
    );
    assert_eq!(
        identities.len(),
        leases.len(),
        "round {round}: an identity holds two leases: {leases:?}"
    );
    assert!(leases.len() <= POOL as usize);
    // The store still works, promptly: no lock survived the killed processes.
    let key = LeaseKey {
        dn: format!("/DC=org/CN=after{round}"),
        primary_fqan: None,
        groups: vec![],
    };
    let (l, _) = store
        .acquire(&pool(), &key, u64::MAX / 2, 0, &|_| false)
        .unwrap();
    store.release(&l.account).unwrap();
    leases.iter().any(|l| l.identity.contains("churn"))
}

fn crash_rounds(kind: &str, path: &Path, open: &dyn Fn() -> Box<dyn LeaseStore>) {
    let mut r = rng();
    let mut killed_busy = 0;
    let mut worked = 0;
    for round in 0..ROUNDS {
        let kids: Vec<_> = (0..3)
            .map(|_| {
                Command::new(PROBE)
                    .args(["churn", kind, path.to_str().unwrap(), &POOL.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(15 + r() % 150));
        for mut k in kids {
            if k.try_wait().unwrap().is_none() {
                killed_busy += 1;
            }
            k.kill().unwrap(); // SIGKILL
            k.wait().unwrap();
        }
        if verify(open().as_ref(), round) {
            worked += 1;
        }
    }
    assert!(
        worked >= ROUNDS / 2,
        "only {worked} rounds leased anything before the kill"
    );
    assert!(
        killed_busy > ROUNDS,
        "the probes must have been running when killed ({killed_busy})"
    );
}

#[test]
fn sqlite_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("leases.sqlite");
    SqliteStore::open(&db, 30).unwrap();
    crash_rounds("sqlite", &db, &|| {
        Box::new(SqliteStore::open(&db, 30).unwrap())
    });
}

#[test]
fn gridmapdir_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    for a in pool().accounts {
        std::fs::write(dir.path().join(a.name()), b"").unwrap();
    }
    let d = dir.path().to_path_buf();
    crash_rounds("gridmapdir", &d, &|| {
        Box::new(GridmapdirStore::open(&d, 30).unwrap())
    });
}
