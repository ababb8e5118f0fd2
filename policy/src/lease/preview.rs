//! A lease store that never leases: the read-only decision of `pilotbox-nosuid`, which runs the
//! payload under the caller's own uid and so must not take (or even look for) a pool account.
//!
//! [`PreviewStore::acquire`] answers with the pool's first account, marked
//! [`Acquired::NotTaken`]: on a node where no setuid `pilotbox` runs (the only kind of node a
//! nosuid site has) that is exactly the account a fresh lease store would hand out, and in any
//! case it names the pool and an account of it for the audit trail. Nothing is opened, read or
//! written: a real store is root-owned and private (it maps DNs to accounts), and an unprivileged
//! caller must not be able to create, lock or refresh one. `list` is empty; `release` and
//! `expire_idle` refuse.

use super::{Acquired, Lease, LeaseError, LeaseKey, LeaseStore, Pool};

/// See the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct PreviewStore;

fn read_only(what: &str) -> LeaseError {
    LeaseError::Store {
        path: "(read-only decision)".into(),
        detail: format!("{what}: no lease store is used"),
    }
}

impl LeaseStore for PreviewStore {
    fn acquire(
        &self,
        pool: &Pool,
        key: &LeaseKey,
        now: u64,
        _idle_s: u64,
        _in_use: &dyn Fn(u32) -> bool,
    ) -> Result<(Lease, Acquired), LeaseError> {
        let first = pool.accounts.first().ok_or_else(|| LeaseError::Store {
            path: "(read-only decision)".into(),
            detail: format!("pool {} has no accounts", pool.name),
        })?;
        Ok((
            Lease {
                pool: pool.name.clone(),
                account: first.name().to_string(),
                uid: first.uid,
                identity: key.dn.clone(),
                created: now,
                last_used: now,
            },
            Acquired::NotTaken,
        ))
    }

    fn list(&self) -> Result<Vec<Lease>, LeaseError> {
        Ok(vec![])
    }

    fn release(&self, _account: &str) -> Result<bool, LeaseError> {
        Err(read_only("release"))
    }

    fn expire_idle(
        &self,
        _now: u64,
        _idle_s: u64,
        _in_use: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<Lease>, LeaseError> {
        Err(read_only("expire"))
    }

    fn check(&self) -> Result<Vec<String>, LeaseError> {
        Ok(vec![])
    }
}

/// A real store asked without writing: `acquire` answers with [`LeaseStore::peek`] — what a
/// launch would get now, existing, new or recycled — and falls back to the [`PreviewStore`]
/// answer (`NotTaken`) where the store cannot tell without writing (the gridmapdir, whose
/// decision is a hard link). `pilotbox map` decides through this, so a site admin testing a
/// DN takes no lease and refreshes none.
pub struct PeekStore<'a>(pub &'a dyn LeaseStore);

impl LeaseStore for PeekStore<'_> {
    fn acquire(
        &self,
        pool: &Pool,
        key: &LeaseKey,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
    ) -> Result<(Lease, Acquired), LeaseError> {
        match self.0.peek(pool, key, now, idle_s, in_use)? {
            Some(answer) => Ok(answer),
            None => PreviewStore.acquire(pool, key, now, idle_s, in_use),
        }
    }

    fn list(&self) -> Result<Vec<Lease>, LeaseError> {
        self.0.list()
    }

    /// Refused, as by [`PreviewStore`]: this store only reads.
    fn release(&self, account: &str) -> Result<bool, LeaseError> {
        PreviewStore.release(account)
    }

    /// Refused, as by [`PreviewStore`].
    fn expire_idle(
        &self,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<Lease>, LeaseError> {
        PreviewStore.expire_idle(now, idle_s, in_use)
    }

    fn check(&self) -> Result<Vec<String>, LeaseError> {
        self.0.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::PoolAccount;

    fn pool(n: u32) -> Pool {
        Pool {
            name: "testvo".into(),
            accounts: (0..n)
                .map(|i| PoolAccount::named(format!("testvo{i:03}"), 30001 + i))
                .collect(),
        }
    }

    /// `pilotbox map` on a node where nothing has launched yet: the answer of a fresh store (a
    /// new lease, not the preview's "not taken"), and no store file (nor WAL) left behind.
    #[test]
    fn peeking_a_store_that_does_not_exist_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let conf: crate::config::schema::LeaseConf =
            toml::from_str(&format!("store = \"{}\"", path.display())).unwrap();
        let store = crate::lease::open_store_without_creating(&conf).unwrap();
        let key = LeaseKey {
            dn: "/CN=Alice".into(),
            primary_fqan: None,
            groups: vec![],
        };
        let (l, how) = PeekStore(store.as_ref())
            .acquire(&pool(3), &key, 10, 0, &|_| false)
            .unwrap();
        assert_eq!((l.account.as_str(), how), ("testvo000", Acquired::New));
        assert!(store.list().unwrap().is_empty());
        drop(store);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "files created: {left:?}");
        // Once the store exists it is the real one that answers.
        crate::lease::open_store(&conf)
            .unwrap()
            .acquire(&pool(3), &key, 10, 0, &|_| false)
            .unwrap();
        let again = crate::lease::open_store_without_creating(&conf).unwrap();
        assert_eq!(again.list().unwrap().len(), 1);
    }

    #[test]
    fn peeking_a_real_store_answers_as_a_launch_would_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let real =
            crate::lease::sqlite::SqliteStore::open(&dir.path().join("l.sqlite"), 5).unwrap();
        let key = |dn: &str| LeaseKey {
            dn: dn.into(),
            primary_fqan: None,
            groups: vec![],
        };
        let p = pool(3);
        let peek = PeekStore(&real);
        // Nothing leased yet: Alice would get the first account, as new — and still would.
        for _ in 0..2 {
            let (l, how) = peek
                .acquire(&p, &key("/CN=Alice"), 10, 0, &|_| false)
                .unwrap();
            assert_eq!((l.account.as_str(), how), ("testvo000", Acquired::New));
        }
        assert!(real.list().unwrap().is_empty(), "peek wrote a lease");
        // Bob really leases testvo000; a peek for Alice now names the next free account,
        // one for Bob his existing lease — without refreshing it.
        real.acquire(&p, &key("/CN=Bob"), 10, 1000, &|_| false)
            .unwrap();
        let (l, how) = peek
            .acquire(&p, &key("/CN=Alice"), 20, 1000, &|_| false)
            .unwrap();
        assert_eq!((l.account.as_str(), how), ("testvo001", Acquired::New));
        let (l, how) = peek
            .acquire(&p, &key("/CN=Bob"), 30, 1000, &|_| false)
            .unwrap();
        assert_eq!((l.account.as_str(), how), ("testvo000", Acquired::Existing));
        let leases = real.list().unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].last_used, 10, "the peek refreshed Bob's lease");
        assert!(peek.release("testvo000").is_err());
        assert_eq!(real.list().unwrap().len(), 1);
    }

    #[test]
    fn answers_the_first_account_not_taken_and_stays_empty() {
        let key = LeaseKey {
            dn: "/CN=Alice".into(),
            primary_fqan: None,
            groups: vec![],
        };
        let s = PreviewStore;
        // Every account "in use": the answer is still the first one, nothing is recycled.
        for _ in 0..2 {
            let (l, how) = s.acquire(&pool(3), &key, 7, 0, &|_| true).unwrap();
            assert_eq!(
                (l.account.as_str(), l.uid, how),
                ("testvo000", 30001, Acquired::NotTaken)
            );
        }
        assert!(s.list().unwrap().is_empty(), "no lease was recorded");
        assert!(s.release("testvo000").is_err());
        assert!(s.expire_idle(7, 0, &|_| false).is_err());
        let e = s.acquire(&pool(0), &key, 7, 0, &|_| false).unwrap_err();
        assert_eq!(
            e.class(),
            crate::Class::SiteError,
            "an empty pool is the site's error"
        );
    }
}
