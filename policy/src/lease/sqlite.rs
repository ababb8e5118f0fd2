//! The default lease store: one SQLite database (`/var/lib/pilotbox/leases.sqlite`).
//!
//! Why SQLite: every `pilotbox` call is its own short-lived process, so the store needs
//! cross-process mutual exclusion and atomic, durable updates that survive kill -9 and power
//! loss. Each acquisition is one `BEGIN IMMEDIATE` transaction (the write lock is taken before
//! reading, so two processes can never both see an account as free); WAL journaling lets
//! readers (`leases list`) run beside a writer; `synchronous=FULL` makes a committed lease
//! durable; a crash before COMMIT leaves the previous state (SQLite atomic commit,
//! <https://sqlite.org/atomiccommit.html>). Uniqueness is enforced by the schema itself: one
//! row per account (PRIMARY KEY), one lease per identity and pool (UNIQUE), one per uid.

use super::{Acquired, Lease, LeaseError, LeaseKey, LeaseStore, Pool};
use crate::dn::normalize_dn;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
        let store_err = |e: rusqlite::Error| LeaseError::Store {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let conn = Connection::open(path).map_err(store_err)?;
        conn.busy_timeout(Duration::from_secs(busy_s))
            .map_err(store_err)?;
        let s = SqliteStore {
            conn,
            path: path.into(),
            busy_s,
        };
        s.conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            .map_err(|e| s.err(e))?;
        s.conn
            .execute_batch("PRAGMA synchronous=FULL;")
            .map_err(|e| s.err(e))?;
        s.conn.execute_batch(SCHEMA).map_err(|e| s.err(e))?;
        Ok(s)
    }

    /// Classify an SQLite error: lock timeouts are "busy" (temporary), the rest site errors.
    fn err(&self, e: rusqlite::Error) -> LeaseError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => LeaseError::Busy {
                waited_s: self.busy_s,
                detail: e.to_string(),
            },
            _ => LeaseError::Store {
                path: self.path.display().to_string(),
                detail: e.to_string(),
            },
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

    fn acquire_inner(
        &self,
        pool: &Pool,
        identity: &str,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
    ) -> rusqlite::Result<Option<(Lease, Acquired)>> {
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
        if let Some(l) = existing {
            if pool
                .accounts
                .iter()
                .any(|a| a.name == l.account && a.uid == l.uid)
            {
                tx.execute(
                    "UPDATE leases SET last_used = ?1 WHERE account = ?2",
                    params![now as i64, l.account],
                )?;
                tx.commit()?;
                return Ok(Some((
                    Lease {
                        last_used: now,
                        ..l
                    },
                    Acquired::Existing,
                )));
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
        if let Some(free) = pool
            .accounts
            .iter()
            .find(|a| !taken.contains(&a.name) && !taken.contains(&format!("#{}", a.uid)))
        {
            tx.execute(
                &format!("INSERT INTO leases ({cols}) VALUES (?1, ?2, ?3, ?4, ?5, ?5)"),
                params![free.name, free.uid, pool.name, identity, now as i64],
            )?;
            tx.commit()?;
            let l = Lease {
                pool: pool.name.clone(),
                account: free.name.clone(),
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
            if !pool.accounts.iter().any(|a| a.name == l.account) || in_use(l.uid) {
                continue;
            }
            tx.execute(
                "UPDATE leases SET identity = ?1, created = ?2, last_used = ?2 WHERE account = ?3",
                params![identity, now as i64, l.account],
            )?;
            tx.commit()?;
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
        let identity = identity_of(key);
        match self
            .acquire_inner(pool, &identity, now, idle_s, in_use)
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
