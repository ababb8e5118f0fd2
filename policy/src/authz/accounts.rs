//! Accounts and groups: pool expansion (`uids = "30001-30050"`, `accounts = "testvo[001-050]"`)
//! and NSS look-ups (`getpwnam_r`/`getgrnam_r` through `nix`, so LDAP/SSSD accounts work).

use crate::config::schema::{AccountsSpec, NameOrId, PoolConf};
use crate::lease::{Pool, PoolAccount};
use nix::unistd::{Gid, Group, Uid, User};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("pool {pool}: bad uid range {spec:?} (expected \"FIRST-LAST\", FIRST <= LAST, at most 100000 uids, none 0)")]
    BadRange { pool: String, spec: String },
    #[error("pool {pool}: bad account pattern {spec:?} (expected \"name[001-050]\")")]
    BadPattern { pool: String, spec: String },
    #[error("pool {pool}: give exactly one of uids or accounts")]
    OneOf { pool: String },
    #[error("pool {0} has no accounts")]
    Empty(String),
    #[error("user {0:?} not found in the passwd database (NSS)")]
    NoUser(String),
    #[error("group {0:?} not found in the group database (NSS)")]
    NoGroup(String),
    #[error("NSS lookup of {0:?} failed: {1}")]
    Nss(String, String),
    #[error("refusing to map to uid 0 or gid 0 ({0})")]
    Root(String),
}

/// `"30001-30050"` → 30001..=30050.
pub fn expand_uid_range(pool: &str, spec: &str) -> Result<Vec<u32>, AccountError> {
    let bad = || AccountError::BadRange {
        pool: pool.into(),
        spec: spec.into(),
    };
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b): (u32, u32) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || a > b || b - a >= 100_000 {
        return Err(bad());
    }
    Ok((a..=b).collect())
}

/// `"testvo[001-050]"` → testvo001..testvo050 (width taken from the first bound).
pub fn expand_account_pattern(pool: &str, spec: &str) -> Result<Vec<String>, AccountError> {
    let bad = || AccountError::BadPattern {
        pool: pool.into(),
        spec: spec.into(),
    };
    let (prefix, rest) = spec.split_once('[').ok_or_else(bad)?;
    let (range, suffix) = rest.split_once(']').ok_or_else(bad)?;
    let (a, b) = range.split_once('-').ok_or_else(bad)?;
    let width = a.len();
    let (na, nb): (u32, u32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if prefix.is_empty() || na > nb || nb - na >= 100_000 {
        return Err(bad());
    }
    Ok((na..=nb)
        .map(|n| format!("{prefix}{n:0width$}{suffix}"))
        .collect())
}

/// Look a user up by name or uid: (name, uid, primary gid). A numeric uid with no passwd
/// entry resolves to `("#uid", uid, None)`.
pub fn resolve_user(u: &NameOrId) -> Result<(String, u32, Option<u32>), AccountError> {
    match u {
        NameOrId::Name(n) => match User::from_name(n) {
            Ok(Some(p)) => Ok((p.name, p.uid.as_raw(), Some(p.gid.as_raw()))),
            Ok(None) => Err(AccountError::NoUser(n.clone())),
            Err(e) => Err(AccountError::Nss(n.clone(), e.to_string())),
        },
        NameOrId::Id(i) => match User::from_uid(Uid::from_raw(*i)) {
            Ok(Some(p)) => Ok((p.name, *i, Some(p.gid.as_raw()))),
            Ok(None) => Ok((format!("#{i}"), *i, None)),
            Err(e) => Err(AccountError::Nss(i.to_string(), e.to_string())),
        },
    }
}

pub fn resolve_group(g: &NameOrId) -> Result<u32, AccountError> {
    match g {
        NameOrId::Id(i) => Ok(*i),
        NameOrId::Name(n) => match Group::from_name(n) {
            Ok(Some(gr)) => Ok(gr.gid.as_raw()),
            Ok(None) => Err(AccountError::NoGroup(n.clone())),
            Err(e) => Err(AccountError::Nss(n.clone(), e.to_string())),
        },
    }
}

/// A group's name for display and gridmapdir suffixes (the number if NSS has no name).
pub fn group_name(gid: u32) -> String {
    match Group::from_gid(Gid::from_raw(gid)) {
        Ok(Some(g)) => g.name,
        _ => gid.to_string(),
    }
}

thread_local! {
    /// NSS look-ups made by [`nss_account_name`] on this thread (per thread: tests run in
    /// parallel threads and must see only their own).
    static NAME_LOOKUPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The [`crate::lease::NameResolver`] of `uids = "A-B"` pools: the passwd name of `uid`
/// (`getpwuid_r`), `None` if NSS has no entry or fails (the account is then named `#uid`,
/// as compile-time expansion always named it).
pub fn nss_account_name(uid: u32) -> Option<String> {
    NAME_LOOKUPS.with(|n| n.set(n.get() + 1));
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => Some(u.name),
        _ => None,
    }
}

/// How many pool-account names this thread has looked up through NSS so far: lets tests
/// (and profiling) check that a launch resolves only the names it uses.
pub fn nss_account_name_lookups() -> usize {
    NAME_LOOKUPS.with(std::cell::Cell::get)
}

/// Expand a `[[pool]]` into its accounts. Named accounts are resolved through NSS now (their
/// uid is needed); uid-range accounts get their names on first use ([`PoolAccount::by_uid`]
/// with [`nss_account_name`]), so compiling a policy looks no pool uid up.
pub fn expand_pool(p: &PoolConf) -> Result<Pool, AccountError> {
    let accounts = match (&p.uids, &p.accounts) {
        (Some(r), None) => expand_uid_range(&p.name, r)?
            .into_iter()
            .map(|uid| PoolAccount::by_uid(uid, nss_account_name))
            .collect(),
        (None, Some(spec)) => {
            let names = match spec {
                AccountsSpec::Pattern(s) => expand_account_pattern(&p.name, s)?,
                AccountsSpec::List(l) => l.clone(),
            };
            names
                .into_iter()
                .map(|n| {
                    let (name, uid, _) = resolve_user(&NameOrId::Name(n))?;
                    Ok(PoolAccount::named(name, uid))
                })
                .collect::<Result<Vec<_>, AccountError>>()?
        }
        _ => {
            return Err(AccountError::OneOf {
                pool: p.name.clone(),
            })
        }
    };
    if accounts.is_empty() {
        return Err(AccountError::Empty(p.name.clone()));
    }
    if let Some(a) = accounts.iter().find(|a| a.uid == 0) {
        return Err(AccountError::Root(format!(
            "pool {} account {}",
            p.name,
            a.name()
        )));
    }
    Ok(Pool {
        name: p.name.clone(),
        accounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_patterns() {
        assert_eq!(
            expand_uid_range("p", "30001-30003").unwrap(),
            vec![30001, 30002, 30003]
        );
        assert!(expand_uid_range("p", "0-3").is_err());
        assert!(expand_uid_range("p", "5-3").is_err());
        assert!(expand_uid_range("p", "x").is_err());
        assert_eq!(
            expand_account_pattern("p", "testvo[001-003]").unwrap(),
            ["testvo001", "testvo002", "testvo003"]
        );
        assert_eq!(
            expand_account_pattern("p", "a[8-10]").unwrap(),
            ["a8", "a9", "a10"]
        );
        assert!(expand_account_pattern("p", "[1-2]").is_err());
        assert!(expand_account_pattern("p", "a[2-1]").is_err());
    }

    #[test]
    fn nss_lookups() {
        assert_eq!(resolve_user(&NameOrId::Name("root".into())).unwrap().1, 0);
        assert!(matches!(
            resolve_user(&NameOrId::Name("no-such-user-xyz".into())),
            Err(AccountError::NoUser(_))
        ));
        assert_eq!(resolve_user(&NameOrId::Id(39999)).unwrap().0, "#39999");
        assert_eq!(resolve_group(&NameOrId::Name("root".into())).unwrap(), 0);
    }

    fn compile(text: &str) -> Result<crate::authz::Policy, crate::config::ConfigError> {
        let path = std::path::Path::new("t.toml");
        crate::authz::Policy::compile(crate::config::parse(text, path).unwrap(), path)
    }

    #[test]
    fn compiling_a_large_uid_pool_looks_no_name_up() {
        // 50,000 uids without passwd entries: eager expansion made 50,000 NSS misses here.
        let before = nss_account_name_lookups();
        let p = compile(
            "[[pool]]\nname = \"big\"\nuids = \"200001-250000\"\ngid = 30000\n\
             [[pool]]\nname = \"small\"\nuids = \"250001-250060\"\ngid = 30000\n\
             [[map]]\nfqan = \"/big/*\"\npool = \"big\"\n\
             [[map]]\ndn = \"/CN=Fixed\"\naccount = 31000\ngid = 31000\n",
        )
        .unwrap();
        assert_eq!(nss_account_name_lookups() - before, 0);
        let big = &p.pools["big"].accounts;
        assert_eq!(
            (big.len(), big[0].uid, big[49_999].uid),
            (50_000, 200_001, 250_000)
        );
        assert!(big.iter().all(|a| a.resolved_name().is_none()));
        assert_eq!(big[7].name(), "#200008");
        assert_eq!(nss_account_name_lookups() - before, 1);
    }

    #[test]
    fn uid_pool_names_are_the_passwd_names_as_before() {
        // 65534 is `nobody` (Debian base-passwd); its neighbours have no entry.
        let p = compile("[[pool]]\nname = \"p\"\nuids = \"65533-65535\"\ngid = 30000\n").unwrap();
        let eager: Vec<String> = (65533..=65535)
            .map(|uid| match User::from_uid(Uid::from_raw(uid)) {
                Ok(Some(u)) => u.name,
                _ => format!("#{uid}"),
            })
            .collect();
        let lazy: Vec<&str> = p.pools["p"].accounts.iter().map(|a| a.name()).collect();
        assert_eq!(lazy, eager);
        assert_eq!(lazy, ["#65533", "nobody", "#65535"]);
        // An overlap error still names the account (resolving that one only).
        let e = compile(
            "[[pool]]\nname = \"a\"\nuids = \"65530-65534\"\n\
             [[pool]]\nname = \"b\"\nuids = \"65534-65540\"\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("uid 65534 (nobody) is in pools a and b"),
            "{e}"
        );
    }
}
