//! The default lease store: one SQLite database (`/var/lib/pilotbox/leases.sqlite`).
//!
//! Why SQLite: every `pilotbox` call is its own short-lived process, so the store needs
//! cross-process mutual exclusion and atomic, durable updates that survive kill -9 and power
//! loss. Each acquisition is one `BEGIN IMMEDIATE` transaction (the write lock is taken before
//! reading, so two processes can never both see an account as free); WAL journaling lets
//! readers (`leases list`) run beside a writer, and the WAL stays between calls (no
//! checkpoint on close); `synchronous=FULL` makes a committed lease durable; a renewal writes
//! `last_used` only when it moved by [`touch_granularity`]; a crash before COMMIT leaves the previous state (SQLite atomic commit,
//! <https://sqlite.org/atomiccommit.html>). Uniqueness is enforced by the schema itself: one
//! row per account (PRIMARY KEY), one lease per identity and pool (UNIQUE), one per uid.

use super::{Acquired, Lease, LeaseError, LeaseKey, LeaseStore, Pool};
use crate::dn::normalize_dn;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How far `last_used` may lag behind a renewal: a hundredth of the idle time after which a
/// lease may be recycled, at most 60 s (30 days by default: one write per minute at most).
fn touch_granularity(idle_s: u64) -> u64 {
    (idle_s / 100).min(60)
}

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    busy_s: u64,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS leases (
    account   TEXT PRIMARY KEY,
    uid       INTEGER NOT NULL UNIQUE,
    pool      TEXT NOT NULL,
    identity  TEXT NOT NULL,
    created   INTEGER NOT NULL,
    last_used INTEGER NOT NULL,
    UNIQUE (pool, identity)
)";

/// A lock someone else holds (too long): temporary, never the site's fault (issue 11 item 2 —
/// a stopped or hung process inside its transaction must not turn other launches into 123s).
/// SQLITE_PROTOCOL is the same thing in WAL mode: a connection that keeps losing the race for
/// the WAL read/write locks gives up after "multiple seconds" (sqlite.org/rescode.html).
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy)
            | Some(ErrorCode::DatabaseLocked)
            | Some(ErrorCode::FileLockingProtocolFailed)
    )
}

/// The SQLite identity of a lease key: the normalised DN, plus the primary FQAN if given.
pub fn identity_of(key: &LeaseKey) -> String {
    let dn = normalize_dn(&key.dn).unwrap_or_else(|_| key.dn.clone());
    match &key.primary_fqan {
        Some(f) => format!("{dn} {f}"),
        None => dn,
    }
}

impl SqliteStore {
    /// Open (creating if needed) the store at `path`, waiting up to `busy_s` seconds for locks.
    pub fn open(path: &Path, busy_s: u64) -> Result<SqliteStore, LeaseError> {
        Self::open_connection(path, busy_s, Connection::open(path))
    }

    /// An empty store in memory: what a store that does not exist yet would answer (see
    /// [`super::open_store_without_creating`]). Nothing touches the disk.
    pub fn open_in_memory(busy_s: u64) -> Result<SqliteStore, LeaseError> {
        let path = Path::new(":memory:");
        Self::open_connection(path, busy_s, Connection::open_in_memory())
    }

    fn open_connection(
        path: &Path,
        busy_s: u64,
        opened: rusqlite::Result<Connection>,
    ) -> Result<SqliteStore, LeaseError> {
        let store_err = |e: rusqlite::Error| LeaseError::Store {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let conn = opened.map_err(store_err)?;
        // No checkpoint when the last connection closes: every `pilotbox run` is one short
        // connection, and checkpointing then deleting the WAL (and re-creating it and the
        // shared-memory index on the next open) cost two fsyncs and a dozen syscalls per
        // launch. The WAL is checkpointed by SQLite's auto-checkpoint (1000 pages) instead;
        // a committed transaction is as durable in the WAL as in the main file.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(store_err)?;
        conn.busy_timeout(Duration::from_secs(busy_s))
            .map_err(store_err)?;
        let s = SqliteStore {
            conn,
            path: path.into(),
            busy_s,
        };
        s.conn
            .execute_batch("PRAGMA synchronous=FULL;")
            .map_err(|e| s.err(e))?;
        let deadline = Instant::now() + Duration::from_secs(busy_s);
        let mut pause = Duration::from_millis(1);
        loop {
            match s.set_up() {
                Ok(()) => return Ok(s),
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(s.err(e)),
            }
        }
    }

    /// WAL journaling and the table: no-ops (a read) once done, but the first launches on a
    /// node do them concurrently on a new store. There SQLite answers `SQLITE_BUSY` at once,
    /// without calling the busy handler, where waiting could deadlock (sqlite3_busy_handler(3)):
    /// switching a new file to WAL upgrades a shared lock to an exclusive one while another
    /// opener holds its shared lock for the same switch; creating the table upgrades a read
    /// snapshot that another creator may have made stale (`SQLITE_BUSY_SNAPSHOT`). `open`
    /// retries those answers (the other opener finishes in milliseconds) up to the busy timeout.
    fn set_up(&self) -> rusqlite::Result<()> {
        self.conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))?;
        self.conn.execute_batch(SCHEMA)
    }

    fn decide_lease(
        &self,
        pool: &Pool,
        key: &LeaseKey,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
        commit: bool,
    ) -> Result<(Lease, Acquired), LeaseError> {
        let identity = identity_of(key);
        match self
            .acquire_inner(pool, &identity, now, idle_s, in_use, commit)
            .map_err(|e| self.err(e))?
        {
            Some(r) => Ok(r),
            None => Err(LeaseError::Exhausted {
                pool: pool.name.clone(),
                size: pool.accounts.len(),
                idle_s,
            }),
        }
    }

    /// Classify an SQLite error: lock timeouts are "busy" (temporary), the rest site errors.
    fn err(&self, e: rusqlite::Error) -> LeaseError {
        if is_busy(&e) {
            LeaseError::Busy {
                timeout_s: self.busy_s,
                detail: e.to_string(),
            }
        } else {
            LeaseError::Store {
                path: self.path.display().to_string(),
                detail: e.to_string(),
            }
        }
    }

    fn row(r: &rusqlite::Row) -> rusqlite::Result<Lease> {
        Ok(Lease {
            account: r.get(0)?,
            uid: r.get(1)?,
            pool: r.get(2)?,
            identity: r.get(3)?,
            created: r.get::<_, i64>(4)? as u64,
            last_used: r.get::<_, i64>(5)? as u64,
        })
    }

    /// The lease decision. `commit: false` runs the very same transaction and rolls it back
    /// (`peek`): the answer a launch would get now, with nothing written.
    fn acquire_inner(
        &self,
        pool: &Pool,
        identity: &str,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
        commit: bool,
    ) -> rusqlite::Result<Option<(Lease, Acquired)>> {
        let finish = |tx: rusqlite::Transaction| if commit { tx.commit() } else { tx.rollback() };
        // IMMEDIATE: take the write lock before reading anything (rolls back on drop).
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let cols = "account, uid, pool, identity, created, last_used";
        let existing: Option<Lease> = tx
            .query_row(
                &format!("SELECT {cols} FROM leases WHERE pool = ?1 AND identity = ?2"),
                params![pool.name, identity],
                Self::row,
            )
            .optional()?;
        // Names are looked up lazily (uid-range pools, `PoolAccount::by_uid`): every test
        // below compares the uid first, so a call resolves only the names it compares.
        if let Some(l) = existing {
            if pool
                .accounts
                .iter()
                .any(|a| a.uid == l.uid && a.name() == l.account)
            {
                // A renewal only moves `last_used`, which matters against `idle_s` alone: it
                // is written when it moved by a hundredth of that (at most a minute), so a
                // pilot launching one user's payloads back to back costs no write — and no
                // fsync — per launch (docs/performance.md).
                if now >= l.last_used.saturating_add(touch_granularity(idle_s)) {
                    tx.execute(
                        "UPDATE leases SET last_used = ?1 WHERE account = ?2",
                        params![now as i64, l.account],
                    )?;
                    finish(tx)?;
                    let l = Lease {
                        last_used: now,
                        ..l
                    };
                    return Ok(Some((l, Acquired::Existing)));
                }
                finish(tx)?;
                return Ok(Some((l, Acquired::Existing)));
            }
            // The admin removed or renumbered that account: the lease is void.
            tx.execute("DELETE FROM leases WHERE account = ?1", params![l.account])?;
        }
        let mut taken = std::collections::HashSet::new();
        {
            let mut st = tx.prepare("SELECT account, uid FROM leases")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))?;
            for r in rows {
                let (a, u) = r?;
                taken.insert(a);
                taken.insert(format!("#{u}"));
            }
        }
        // Free = neither its `#uid` nor its name is taken; the `#uid` test first, so only
        // accounts whose uid is free (normally just the one handed out) get a name look-up.
        if let Some(free) = pool
            .accounts
            .iter()
            .find(|a| !taken.contains(&format!("#{}", a.uid)) && !taken.contains(a.name()))
        {
            tx.execute(
                &format!("INSERT INTO leases ({cols}) VALUES (?1, ?2, ?3, ?4, ?5, ?5)"),
                params![free.name(), free.uid, pool.name, identity, now as i64],
            )?;
            finish(tx)?;
            let l = Lease {
                pool: pool.name.clone(),
                account: free.name().to_string(),
                uid: free.uid,
                identity: identity.into(),
                created: now,
                last_used: now,
            };
            return Ok(Some((l, Acquired::New)));
        }
        let cutoff = now.saturating_sub(idle_s) as i64;
        let idle: Vec<Lease> = {
            let mut st = tx.prepare(&format!(
                "SELECT {cols} FROM leases WHERE pool = ?1 AND last_used <= ?2 ORDER BY last_used, account"
            ))?;
            let rows = st.query_map(params![pool.name, cutoff], Self::row)?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for l in idle {
            // Is the leased account (by name) still in the pool? Normally it is the account
            // with the lease's uid, so try that one before resolving the others.
            let in_pool = pool
                .accounts
                .iter()
                .any(|a| a.uid == l.uid && a.name() == l.account)
                || pool.accounts.iter().any(|a| a.name() == l.account);
            if !in_pool || in_use(l.uid) {
                continue;
            }
            tx.execute(
                "UPDATE leases SET identity = ?1, created = ?2, last_used = ?2 WHERE account = ?3",
                params![identity, now as i64, l.account],
            )?;
            finish(tx)?;
            let l = Lease {
                identity: identity.into(),
                created: now,
                last_used: now,
                ..l
            };
            return Ok(Some((l, Acquired::Recycled)));
        }
        Ok(None)
    }
}

impl LeaseStore for SqliteStore {
    fn acquire(
        &self,
        pool: &Pool,
        key: &LeaseKey,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
    ) -> Result<(Lease, Acquired), LeaseError> {
        self.decide_lease(pool, key, now, idle_s, in_use, true)
    }

    fn peek(
        &self,
        pool: &Pool,
        key: &LeaseKey,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
    ) -> Result<Option<(Lease, Acquired)>, LeaseError> {
        self.decide_lease(pool, key, now, idle_s, in_use, false)
            .map(Some)
    }

    fn list(&self) -> Result<Vec<Lease>, LeaseError> {
        let mut st = self
            .conn
            .prepare("SELECT account, uid, pool, identity, created, last_used FROM leases ORDER BY pool, account")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([], Self::row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn release(&self, account: &str) -> Result<bool, LeaseError> {
        let n = self
            .conn
            .execute("DELETE FROM leases WHERE account = ?1", params![account])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    fn expire_idle(
        &self,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<Lease>, LeaseError> {
        let run = || -> rusqlite::Result<Vec<Lease>> {
            let tx =
                rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
            let cutoff = now.saturating_sub(idle_s) as i64;
            let idle: Vec<Lease> = {
                let mut st = tx.prepare(
                    "SELECT account, uid, pool, identity, created, last_used FROM leases WHERE last_used <= ?1",
                )?;
                let rows = st.query_map(params![cutoff], Self::row)?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut gone = Vec::new();
            for l in idle {
                if !in_use(l.uid) {
                    tx.execute("DELETE FROM leases WHERE account = ?1", params![l.account])?;
                    gone.push(l);
                }
            }
            tx.commit()?;
            Ok(gone)
        };
        run().map_err(|e| self.err(e))
    }

    fn check(&self) -> Result<Vec<String>, LeaseError> {
        let mut problems = Vec::new();
        let ic: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if ic != "ok" {
            problems.push(format!("integrity_check: {ic}"));
        }
        let dup: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM (SELECT pool, identity FROM leases GROUP BY pool, identity HAVING COUNT(*) > 1)",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if dup > 0 {
            problems.push(format!(
                "{dup} identities hold more than one lease in a pool"
            ));
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::PoolAccount;
    use std::cell::Cell;

    /// Lock contention in any of SQLite's forms is temporary (121); anything else the site's.
    #[test]
    fn lock_errors_are_temporary() {
        let s = SqliteStore::open_in_memory(1).unwrap();
        let sqlite = |code| {
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("x".into()))
        };
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_BUSY_SNAPSHOT,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_PROTOCOL,
        ] {
            let e = s.err(sqlite(code));
            assert_eq!(e.class(), crate::Class::Temporary, "{code}: {e}");
        }
        let e = s.err(sqlite(rusqlite::ffi::SQLITE_CORRUPT));
        assert_eq!(e.class(), crate::Class::SiteError, "{e}");
    }

    /// The first launches on a node open a new store at once. Switching it to WAL and creating
    /// the table make SQLite answer "database is locked" at once, busy timeout or not, to all
    /// but one of them (CI saw it, 1 run in 20); `open` must retry those answers.
    #[test]
    fn concurrent_first_opens_of_a_new_store_all_succeed() {
        for round in 0..30 {
            let d = tempfile::tempdir().unwrap();
            let path = d.path().join("l.sqlite");
            let start = std::sync::Arc::new(std::sync::Barrier::new(12));
            let openers: Vec<_> = (0..12)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        SqliteStore::open(&path, 30).map(|_| ())
                    })
                })
                .collect();
            for o in openers {
                if let Err(e) = o.join().unwrap() {
                    panic!("round {round}: {e}");
                }
            }
        }
    }

    thread_local!(static LOOKUPS: Cell<usize> = const { Cell::new(0) });

    /// Even uids have a passwd entry `u<uid>`, odd ones none (named `#uid`).
    fn counting(uid: u32) -> Option<String> {
        LOOKUPS.with(|n| n.set(n.get() + 1));
        uid.is_multiple_of(2).then(|| format!("u{uid}"))
    }

    /// As `counting` after an admin change: uid 30002 lost its entry and its name moved to
    /// uid 30004.
    fn renamed(uid: u32) -> Option<String> {
        LOOKUPS.with(|n| n.set(n.get() + 1));
        match uid {
            30002 => None,
            30004 => Some("u30002".into()),
            _ => counting(uid),
        }
    }

    fn lookups() -> usize {
        LOOKUPS.with(Cell::get)
    }

    /// A uid-range pool as a fresh launch compiles it: nothing looked up yet.
    fn lazy(n: u32, resolve: crate::lease::NameResolver) -> Pool {
        Pool {
            name: "p".into(),
            accounts: (30001..30001 + n)
                .map(|u| PoolAccount::by_uid(u, resolve))
                .collect(),
        }
    }

    /// The same pool as the former compile-time expansion built it: every name resolved.
    fn eager(n: u32, resolve: crate::lease::NameResolver) -> Pool {
        Pool {
            name: "p".into(),
            accounts: (30001..30001 + n)
                .map(|u| PoolAccount::named(resolve(u).unwrap_or(format!("#{u}")), u))
                .collect(),
        }
    }

    fn key(i: usize) -> LeaseKey {
        LeaseKey {
            dn: format!("/CN=user{i}"),
            primary_fqan: None,
            groups: vec![],
        }
    }

    #[test]
    fn acquire_looks_up_only_the_name_it_compares_or_hands_out() {
        let d = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&d.path().join("l.sqlite"), 10).unwrap();
        for i in 0..40 {
            // A new identity, i leases taken: the free search skips the taken uids unresolved.
            let before = lookups();
            let (l, how) = s
                .acquire(&lazy(500, counting), &key(i), 100, 3600, &|_| false)
                .unwrap();
            let n = lookups() - before;
            assert_eq!((how, l.uid), (Acquired::New, 30001 + i as u32));
            assert!(n <= i + 1, "{n} look-ups with {i} leases");
            assert_eq!(n, 1, "only the account handed out");
            // The same identity at its next launch: only its own account is compared.
            let before = lookups();
            let (again, how) = s
                .acquire(&lazy(500, counting), &key(i), 101, 3600, &|_| false)
                .unwrap();
            assert_eq!((how, again.account), (Acquired::Existing, l.account));
            assert_eq!(lookups() - before, 1);
        }
        // Exhausted pool of 40, recycling the oldest idle lease: still one name.
        let before = lookups();
        let (l, how) = s
            .acquire(&lazy(40, counting), &key(99), 10_000, 3600, &|_| false)
            .unwrap();
        assert_eq!((how, l.uid), (Acquired::Recycled, 30001));
        assert_eq!(lookups() - before, 1);
    }

    #[test]
    fn renewals_write_last_used_only_when_it_moved_enough_and_the_wal_stays() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("l.sqlite");
        let idle = 3600; // granularity 36 s
        let last_used = || {
            let s = SqliteStore::open(&path, 10).unwrap();
            s.list().unwrap()[0].last_used
        };
        let acquire = |now| {
            let s = SqliteStore::open(&path, 10).unwrap();
            s.acquire(&lazy(3, counting), &key(1), now, idle, &|_| false)
                .unwrap()
        };
        assert_eq!(acquire(1000).1, Acquired::New);
        // Closed without a checkpoint: the WAL (holding the commit) is still there.
        assert!(
            d.path().join("l.sqlite-wal").exists(),
            "WAL removed on close"
        );
        let (l, how) = acquire(1035);
        assert_eq!((how, l.last_used), (Acquired::Existing, 1000));
        assert_eq!(last_used(), 1000, "a renewal 35 s later wrote");
        let (l, _) = acquire(1036);
        assert_eq!(l.last_used, 1036);
        assert_eq!(last_used(), 1036, "a renewal 36 s later did not write");
        assert_eq!(touch_granularity(30 * 86400), 60);
        assert_eq!(touch_granularity(0), 0, "idle 0: every renewal writes");
    }

    #[test]
    fn leases_written_with_resolved_names_still_match() {
        let d = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&d.path().join("l.sqlite"), 10).unwrap();
        // Rows as the former eager expansion wrote them: passwd names and `#uid` names.
        let old: Vec<Lease> = (0..4)
            .map(|i| {
                s.acquire(&eager(10, counting), &key(i), 100, 3600, &|_| false)
                    .unwrap()
                    .0
            })
            .collect();
        let names: Vec<&str> = old.iter().map(|l| l.account.as_str()).collect();
        assert_eq!(names, ["#30001", "u30002", "#30003", "u30004"]);
        for (i, o) in old.iter().enumerate() {
            let (l, how) = s
                .acquire(&lazy(10, counting), &key(i), 200, 3600, &|_| false)
                .unwrap();
            assert_eq!(
                (how, &l.account, l.uid),
                (Acquired::Existing, &o.account, o.uid)
            );
        }
        let (l, how) = s
            .acquire(&lazy(10, counting), &key(4), 200, 3600, &|_| false)
            .unwrap();
        assert_eq!(
            (how, l.account.as_str(), l.uid),
            (Acquired::New, "#30005", 30005)
        );
    }

    /// One scripted history (new leases, renewals, exhaustion, recycling past a busy uid, an
    /// account renamed and its name moved to another uid by the admin) on two stores: one given
    /// eagerly resolved pools (the former behaviour), one lazy pools. Every answer and every
    /// row must agree.
    #[test]
    fn lazy_and_eager_pools_decide_identically() {
        let d = tempfile::tempdir().unwrap();
        let stores = [
            SqliteStore::open(&d.path().join("eager.sqlite"), 10).unwrap(),
            SqliteStore::open(&d.path().join("lazy.sqlite"), 10).unwrap(),
        ];
        #[rustfmt::skip]
        let script: &[(usize, u64, crate::lease::NameResolver, u32)] = &[
            // (identity, now, names, busy uid)
            (0, 100, counting, 0), (1, 100, counting, 0), (2, 110, counting, 0),
            (3, 120, counting, 0), (0, 140, counting, 0), (4, 150, counting, 0),
            (5, 160, counting, 0),        // exhausted: nothing idle yet
            (5, 5000, counting, 30002),   // recycles past the busy uid
            // The admin's change: uid 30002 loses its entry, its name moves to uid 30004.
            (6, 5001, renamed, 0),        // recycles the row u30002/30002 (matched by name)
            (3, 5002, renamed, 0),        // u30004 void; 30004's uid is free, its name taken
            (6, 5003, renamed, 0),        // u30002/30002 void: renews as #30002
            (7, 5004, renamed, 0),        // now u30002 is free at uid 30004
            (8, 9000, renamed, 30005), (9, 9000, renamed, 0),
        ];
        let mut lazy_answers = Vec::new();
        for (step, &(who, now, names, busy)) in script.iter().enumerate() {
            let answers: Vec<_> = [eager(5, names), lazy(5, names)]
                .iter()
                .zip(&stores)
                .map(|(pool, s)| s.acquire(pool, &key(who), now, 3600, &|u| u == busy))
                .collect();
            assert_eq!(answers[0], answers[1], "step {step}");
            assert_eq!(
                stores[0].list().unwrap(),
                stores[1].list().unwrap(),
                "step {step}"
            );
            lazy_answers.push(answers[1].clone().map(|(l, how)| (l.account, l.uid, how)));
        }
        // The script does reach the paths it names.
        let a = |n: &str, uid: u32, how: Acquired| Ok((n.to_string(), uid, how));
        assert!(matches!(lazy_answers[6], Err(LeaseError::Exhausted { .. })));
        assert_eq!(lazy_answers[7], a("#30003", 30003, Acquired::Recycled));
        assert_eq!(lazy_answers[8], a("u30002", 30002, Acquired::Recycled));
        assert_eq!(lazy_answers[9], a("#30001", 30001, Acquired::Recycled));
        assert_eq!(lazy_answers[10], a("#30002", 30002, Acquired::New));
        assert_eq!(lazy_answers[11], a("u30002", 30004, Acquired::New));
        assert_eq!(lazy_answers[12], a("#30003", 30003, Acquired::Recycled));
    }
}
