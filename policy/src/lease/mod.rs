//! Pool-account leases: which grid identity currently owns which pool account.
//!
//! Rules every backend follows (issue 5, "Pool-account leases"):
//! - **sticky**: the same identity key gets the same account on every call (and the call
//!   refreshes the lease's last use);
//! - a new identity gets a free account (lowest in pool order);
//! - a lease is recycled to another identity only when it has been idle for the configured
//!   time **and** the caller's `in_use(uid)` says no payload of that account is running (the
//!   launcher answers from its running-payload records);
//! - pool exhausted → [`LeaseError::Exhausted`], a *temporary* denial (121);
//! - safe under many concurrent `pilotbox` processes and crash-safe (kill -9 anywhere): SQLite
//!   transactions in WAL mode, or single `link(2)`/`unlink(2)` steps under `flock(2)` for the
//!   gridmapdir.

mod account;
pub mod gridmapdir;
pub mod preview;
pub mod sqlite;

pub use account::{NameResolver, PoolAccount};

use crate::class::{Class, Denial};
use serde::Serialize;

/// A pool as the lease store sees it: a name and its accounts in allocation order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub accounts: Vec<PoolAccount>,
}

/// Who is asking for a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseKey {
    /// Subject DN, OpenSSL slash form (the gridmapdir encodes it; SQLite normalises it).
    pub dn: String,
    /// Part of the SQLite identity when the site's key is `dn+primary_fqan`.
    pub primary_fqan: Option<String>,
    /// Group names for the gridmapdir `:pgroup:sgroups` file-name suffix (may be empty).
    pub groups: Vec<String>,
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub pool: String,
    pub account: String,
    pub uid: u32,
    /// The backend's identity key (SQLite: normalised DN + primary FQAN; gridmapdir: file name).
    pub identity: String,
    /// Unix seconds.
    pub created: u64,
    pub last_used: u64,
}

/// How a lease was obtained, for the reason trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Acquired {
    Existing,
    New,
    /// Taken over from an identity idle for longer than the idle time.
    Recycled,
    /// No lease taken: a read-only decision ([`preview::PreviewStore`], `pilotbox-nosuid`).
    NotTaken,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("pool {pool} exhausted: all {size} accounts leased and none idle for {idle_s}s without a running payload")]
    Exhausted {
        pool: String,
        size: usize,
        idle_s: u64,
    },
    /// The lock was not obtained within the busy timeout (or SQLite refused to wait because
    /// waiting could deadlock, and retrying did not get it either).
    #[error("lease store busy (lock not obtained, busy_timeout {timeout_s}s): {detail}")]
    Busy { timeout_s: u64, detail: String },
    #[error("lease store {path}: {detail}")]
    Store { path: String, detail: String },
}

impl LeaseError {
    /// Exhausted and busy are worth retrying (121); a broken store is the site's (123).
    pub fn class(&self) -> Class {
        match self {
            LeaseError::Exhausted { .. } | LeaseError::Busy { .. } => Class::Temporary,
            LeaseError::Store { .. } => Class::SiteError,
        }
    }
}

impl From<LeaseError> for Denial {
    fn from(e: LeaseError) -> Denial {
        Denial::new(e.class(), e.to_string())
    }
}

/// A lease store backend.
pub trait LeaseStore {
    /// Return the identity's lease in `pool`, creating or recycling one if needed.
    fn acquire(
        &self,
        pool: &Pool,
        key: &LeaseKey,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
    ) -> Result<(Lease, Acquired), LeaseError>;

    /// What [`acquire`](Self::acquire) would answer now, without writing anything (`pilotbox
    /// map`); `Ok(None)` when this store cannot tell without writing (the caller then shows
    /// a preview, see [`PeekStore`]).
    fn peek(
        &self,
        _pool: &Pool,
        _key: &LeaseKey,
        _now: u64,
        _idle_s: u64,
        _in_use: &dyn Fn(u32) -> bool,
    ) -> Result<Option<(Lease, Acquired)>, LeaseError> {
        Ok(None)
    }

    /// All leases, for `pilotbox leases list`.
    fn list(&self) -> Result<Vec<Lease>, LeaseError>;

    /// Drop the lease on `account` (admin action); false if there was none.
    fn release(&self, account: &str) -> Result<bool, LeaseError>;

    /// Drop every lease idle for at least `idle_s` whose uid is not in use; returns them.
    fn expire_idle(
        &self,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<Lease>, LeaseError>;

    /// Structural self-check; returns the problems found (empty = consistent).
    fn check(&self) -> Result<Vec<String>, LeaseError>;
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Every file that records who is mapped on this node under `[lease]`: the SQLite store with
/// the WAL and shared-memory index it keeps between calls (`sqlite.rs`: no checkpoint on
/// close), and a gridmapdir, whose link names are DNs. The launcher hides them all from the
/// payload, whatever their permissions.
pub fn private_paths(conf: &crate::config::schema::LeaseConf) -> Vec<std::path::PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut p = conf.store.clone().into_os_string();
            p.push(suffix);
            std::path::PathBuf::from(p)
        })
        .chain(conf.gridmapdir.clone())
        .collect()
}

/// Open the store `[lease]` configures for a command that must not create one (`pilotbox map`,
/// `pilotbox leases`): an SQLite store that does not exist yet answers as the empty store a
/// first launch would create — from an in-memory database with the same schema and the same
/// decision code — and nothing appears on disk. A gridmapdir is the admin's directory and is
/// opened as [`open_store`] does.
pub fn open_store_without_creating(
    conf: &crate::config::schema::LeaseConf,
) -> Result<Box<dyn LeaseStore>, LeaseError> {
    use crate::config::schema::LeaseBackend;
    match conf.backend {
        LeaseBackend::Sqlite if !conf.store.exists() => Ok(Box::new(
            sqlite::SqliteStore::open_in_memory(conf.busy_timeout.0)?,
        )),
        _ => open_store(conf),
    }
}

/// Open the store `[lease]` configures (an SQLite store is created if missing).
pub fn open_store(
    conf: &crate::config::schema::LeaseConf,
) -> Result<Box<dyn LeaseStore>, LeaseError> {
    use crate::config::schema::LeaseBackend;
    Ok(match conf.backend {
        LeaseBackend::Sqlite => {
            Box::new(sqlite::SqliteStore::open(&conf.store, conf.busy_timeout.0)?)
        }
        LeaseBackend::Gridmapdir => {
            let dir = conf
                .gridmapdir
                .as_deref()
                .ok_or_else(|| LeaseError::Store {
                    path: "[lease] gridmapdir".into(),
                    detail: "backend = \"gridmapdir\" needs gridmapdir = \"/path\"".into(),
                })?;
            Box::new(gridmapdir::GridmapdirStore::open(dir, conf.busy_timeout.0)?)
        }
    })
}
