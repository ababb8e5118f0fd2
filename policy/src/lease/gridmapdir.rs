//! A lease store on an LCMAPS/Argus `gridmapdir`, so a site can switch to pilotbox without
//! remapping its users.
//!
//! The gridmapdir convention (LCMAPS `lcmaps_gridmapdir.c`, Argus `GridMapDirPoolAccountManager`):
//! - each pool account is an empty file named after it: `<prefix><digits>`, the name matching
//!   `^[a-zA-Z][a-zA-Z0-9._-]*?[0-9]+$`, so pool `dteam` holds `dteam01`.. but not `dteamprod01`;
//! - a lease is a **hard link** to the account file, named after the subject: the OpenSSL
//!   one-line DN with every byte outside `[0-9A-Za-z]` written `%XX`, the whole name
//!   lower-cased, optionally followed by `:pgroup[:sgroup...]` (group names keep their case);
//! - an account is free when its link count is 1; the lease's mtime is its last use.
//!
//! Concurrency: LCMAPS and Argus take no lock and rely on `link(2)` being atomic. pilotbox
//! additionally serialises its own processes with `flock(2)` on `.pilotbox.lock` in the
//! directory (ignored by LCMAPS: the name is neither an account nor a lease), and re-checks the
//! link count after linking so a foreign writer racing for the same account is detected and
//! backed off. Every state change is one `link` or `unlink`, so kill -9 at any point leaves a
//! valid gridmapdir.

use super::{Acquired, Lease, LeaseError, LeaseKey, LeaseStore, Pool};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// LCMAPS/Argus lease-name encoding of a DN: `%XX` for every byte outside `[0-9A-Za-z]`, then
/// lower-cased (savannah bugs 83317/83419: only the DN part is lower-cased).
pub fn encode_dn(dn: &str) -> String {
    let mut s = String::with_capacity(dn.len() * 2);
    for &b in dn.as_bytes() {
        if b.is_ascii_alphanumeric() {
            s.push(b.to_ascii_lowercase() as char);
        } else {
            s.push_str(&format!("%{b:02x}"));
        }
    }
    s
}

/// The lease file name: encoded DN, then `:group` for each group name (case kept).
pub fn lease_name(dn: &str, groups: &[String]) -> String {
    let mut n = encode_dn(dn);
    for g in groups {
        n.push(':');
        n.push_str(g);
    }
    n
}

/// The pool prefix of a gridmapdir account name, if it is one (`dteam01` → `dteam`).
pub fn pool_prefix(name: &str) -> Option<&str> {
    let first = name.chars().next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let prefix = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if prefix.len() == name.len()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return None;
    }
    Some(prefix)
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> LeaseError {
    LeaseError::Store {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Names in `dir` that are pool accounts of `prefix`, sorted.
pub fn pool_accounts(dir: &Path, prefix: &str) -> Result<Vec<String>, LeaseError> {
    let mut v: Vec<String> = names(dir)?
        .into_iter()
        .filter(|n| pool_prefix(n) == Some(prefix))
        .collect();
    v.sort();
    Ok(v)
}

/// Every pool prefix present in `dir`, sorted.
pub fn pool_prefixes(dir: &Path) -> Result<Vec<String>, LeaseError> {
    let mut v: Vec<String> = names(dir)?
        .iter()
        .filter_map(|n| pool_prefix(n).map(String::from))
        .collect();
    v.sort();
    v.dedup();
    Ok(v)
}

fn names(dir: &Path) -> Result<Vec<String>, LeaseError> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let e = e.map_err(|e| io_err(dir, e))?;
        if let Ok(n) = e.file_name().into_string() {
            v.push(n);
        }
    }
    Ok(v)
}

fn is_lease_name(n: &str) -> bool {
    n.starts_with('%')
}

pub struct GridmapdirStore {
    dir: PathBuf,
    busy_s: u64,
}

impl GridmapdirStore {
    pub fn open(dir: &Path, busy_s: u64) -> Result<GridmapdirStore, LeaseError> {
        let md = fs::metadata(dir).map_err(|e| io_err(dir, e))?;
        if !md.is_dir() {
            return Err(io_err(dir, "not a directory"));
        }
        Ok(GridmapdirStore {
            dir: dir.into(),
            busy_s,
        })
    }

    fn lock(&self) -> Result<Flock<File>, LeaseError> {
        let p = self.dir.join(".pilotbox.lock");
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| io_err(&p, e))?;
        let deadline = Instant::now() + Duration::from_secs(self.busy_s);
        loop {
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Ok(l),
                Err((back, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                    f = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(LeaseError::Busy {
                        timeout_s: self.busy_s,
                        detail: format!("flock {}", p.display()),
                    })
                }
                Err((_, e)) => return Err(io_err(&p, e)),
            }
        }
    }

    fn touch(&self, path: &Path, now: u64) -> Result<(), LeaseError> {
        let f = File::open(path).map_err(|e| io_err(path, e))?;
        f.set_modified(UNIX_EPOCH + Duration::from_secs(now))
            .map_err(|e| io_err(path, e))
    }

    fn mtime(md: &fs::Metadata) -> u64 {
        md.modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// Link `account` to `lease`; false (and undone) if a foreign writer took it meanwhile.
    fn try_link(&self, account: &Path, lease: &Path) -> Result<bool, LeaseError> {
        match fs::hard_link(account, lease) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io_err(lease, e)),
        }
        let n = fs::metadata(account)
            .map_err(|e| io_err(account, e))?
            .nlink();
        if n != 2 {
            fs::remove_file(lease).map_err(|e| io_err(lease, e))?;
            return Ok(false);
        }
        Ok(true)
    }

    /// (lease name, inode, mtime) for every lease file.
    fn leases(&self) -> Result<Vec<(String, u64, u64, u64)>, LeaseError> {
        let mut v = Vec::new();
        for n in names(&self.dir)?.into_iter().filter(|n| is_lease_name(n)) {
            let p = self.dir.join(&n);
            if let Ok(md) = fs::symlink_metadata(&p) {
                v.push((n, md.ino(), Self::mtime(&md), md.nlink()));
            }
        }
        Ok(v)
    }

    /// All account files by inode.
    fn accounts_by_ino(&self) -> Result<std::collections::HashMap<u64, String>, LeaseError> {
        let mut m = std::collections::HashMap::new();
        for n in names(&self.dir)?
            .into_iter()
            .filter(|n| pool_prefix(n).is_some())
        {
            if let Ok(md) = fs::symlink_metadata(self.dir.join(&n)) {
                m.insert(md.ino(), n);
            }
        }
        Ok(m)
    }

    fn lease_of(&self, name: &str, account: &str, mtime: u64) -> Lease {
        let uid = nix::unistd::User::from_name(account)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
            .unwrap_or(u32::MAX);
        Lease {
            pool: pool_prefix(account).unwrap_or("").to_string(),
            account: account.into(),
            uid,
            identity: name.into(),
            created: mtime,
            last_used: mtime,
        }
    }
}

impl LeaseStore for GridmapdirStore {
    fn acquire(
        &self,
        pool: &Pool,
        key: &LeaseKey,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
    ) -> Result<(Lease, Acquired), LeaseError> {
        let _lock = self.lock()?;
        let name = lease_name(&key.dn, &key.groups);
        let lease_path = self.dir.join(&name);
        let mk = |a: &super::PoolAccount| Lease {
            pool: pool.name.clone(),
            account: a.name().to_string(),
            uid: a.uid,
            identity: name.clone(),
            created: now,
            last_used: now,
        };
        if let Ok(md) = fs::symlink_metadata(&lease_path) {
            let ino = md.ino();
            for a in &pool.accounts {
                if fs::symlink_metadata(self.dir.join(a.name()))
                    .map(|m| m.ino() == ino)
                    .unwrap_or(false)
                {
                    self.touch(&lease_path, now)?;
                    return Ok((mk(a), Acquired::Existing));
                }
            }
            if md.nlink() == 1 {
                // Orphan: the admin deleted the account file. The lease is void.
                fs::remove_file(&lease_path).map_err(|e| io_err(&lease_path, e))?;
            } else {
                let other = self
                    .accounts_by_ino()?
                    .get(&ino)
                    .cloned()
                    .unwrap_or_else(|| "?".into());
                return Err(io_err(
                    &lease_path,
                    format!("leased to account {other}, which is not in pool {}; release it or set lease.gridmapdir_groups", pool.name),
                ));
            }
        }
        for a in &pool.accounts {
            let ap = self.dir.join(a.name());
            let Ok(md) = fs::symlink_metadata(&ap) else {
                continue;
            };
            if md.is_file() && md.nlink() == 1 && self.try_link(&ap, &lease_path)? {
                self.touch(&lease_path, now)?;
                return Ok((mk(a), Acquired::New));
            }
        }
        // Recycle the least recently used idle lease of this pool whose account is not busy.
        let cutoff = now.saturating_sub(idle_s);
        let mut leases = self.leases()?;
        leases.sort_by_key(|l| (l.2, l.0.clone()));
        for (old, ino, mtime, _) in leases {
            if mtime > cutoff {
                continue;
            }
            let Some(a) = pool.accounts.iter().find(|a| {
                fs::symlink_metadata(self.dir.join(a.name()))
                    .map(|m| m.ino() == ino)
                    .unwrap_or(false)
            }) else {
                continue;
            };
            if in_use(a.uid) {
                continue;
            }
            let op = self.dir.join(&old);
            fs::remove_file(&op).map_err(|e| io_err(&op, e))?;
            if self.try_link(&self.dir.join(a.name()), &lease_path)? {
                self.touch(&lease_path, now)?;
                return Ok((mk(a), Acquired::Recycled));
            }
        }
        Err(LeaseError::Exhausted {
            pool: pool.name.clone(),
            size: pool.accounts.len(),
            idle_s,
        })
    }

    fn list(&self) -> Result<Vec<Lease>, LeaseError> {
        let accts = self.accounts_by_ino()?;
        let mut v: Vec<Lease> = self
            .leases()?
            .into_iter()
            .filter_map(|(n, ino, mtime, _)| accts.get(&ino).map(|a| self.lease_of(&n, a, mtime)))
            .collect();
        v.sort_by(|a, b| a.account.cmp(&b.account));
        Ok(v)
    }

    fn release(&self, account: &str) -> Result<bool, LeaseError> {
        let _lock = self.lock()?;
        let ap = self.dir.join(account);
        let Ok(md) = fs::symlink_metadata(&ap) else {
            return Ok(false);
        };
        let mut any = false;
        for (n, ino, _, _) in self.leases()? {
            if ino == md.ino() {
                let p = self.dir.join(n);
                fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
                any = true;
            }
        }
        Ok(any)
    }

    fn expire_idle(
        &self,
        now: u64,
        idle_s: u64,
        in_use: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<Lease>, LeaseError> {
        let _lock = self.lock()?;
        let accts = self.accounts_by_ino()?;
        let mut gone = Vec::new();
        for (n, ino, mtime, _) in self.leases()? {
            if mtime > now.saturating_sub(idle_s) {
                continue;
            }
            let l = match accts.get(&ino) {
                Some(a) => self.lease_of(&n, a, mtime),
                None => continue,
            };
            if !in_use(l.uid) {
                let p = self.dir.join(&n);
                fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
                gone.push(l);
            }
        }
        Ok(gone)
    }

    fn check(&self) -> Result<Vec<String>, LeaseError> {
        let mut problems = Vec::new();
        let accts = self.accounts_by_ino()?;
        for (ino, a) in &accts {
            let n = fs::symlink_metadata(self.dir.join(a))
                .map(|m| m.nlink())
                .unwrap_or(0);
            if n > 2 {
                problems.push(format!(
                    "account {a} (inode {ino}) has {n} links: leased to several subjects"
                ));
            }
        }
        for (n, ino, _, nlink) in self.leases()? {
            if nlink == 1 || !accts.contains_key(&ino) {
                problems.push(format!("lease {n} points to no pool account"));
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_account_names() {
        assert_eq!(pool_prefix("dteam01"), Some("dteam"));
        assert_eq!(pool_prefix("lte-dteam01"), Some("lte-dteam"));
        assert_eq!(pool_prefix("Z.01"), Some("Z."));
        for n in [
            "dteam",
            "001",
            "_01",
            ".invalid01",
            "-x01",
            "0a01",
            "%2fcn%3dx",
            ".pilotbox.lock",
        ] {
            assert_eq!(pool_prefix(n), None, "{n}");
        }
    }
}
