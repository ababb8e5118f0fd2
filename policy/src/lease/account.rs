//! One account of a pool, with its name looked up only when something needs it.
//!
//! Why lazy: the setuid launcher compiles the policy on every `pilotbox run`. A `uids =
//! "A-B"` pool used to cost one NSS `getpwuid_r` per uid per launch (an open and parse of
//! `/etc/passwd` each with `files`, a round trip each with LDAP/SSSD, and a miss for every uid
//! without an entry) although a launch needs at most a handful of names: the SQLite store
//! compares uids first and resolves a name only for the account it is about to compare or
//! hand out. So a uid-range account carries its uid and a resolver, and [`PoolAccount::name`]
//! runs the resolver once, on first use, caching the answer.
//!
//! Accounts given by name (`accounts = [...]`, `"name[001-050]"`, gridmapdir pools) are
//! looked up by name at compile time anyway (their uid is needed), so they are built resolved
//! ([`PoolAccount::named`]).
//!
//! The name is exactly what compile-time expansion produced before: the passwd name of the
//! uid, or `#uid` when NSS has no entry (or fails), so lease rows and gridmapdir links written
//! by earlier versions keep matching.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use std::sync::OnceLock;

/// Looks a pool uid's account name up; `None` means "no entry" and names the account `#uid`.
pub type NameResolver = fn(u32) -> Option<String>;

/// One account of a pool: a uid and its (possibly not yet looked up) name.
///
/// `OnceLock` rather than `OnceCell` so a compiled [`crate::authz::Policy`] stays `Sync`.
#[derive(Clone)]
pub struct PoolAccount {
    pub uid: u32,
    name: OnceLock<String>,
    /// `None` for accounts built with their name.
    resolve: Option<NameResolver>,
}

impl PoolAccount {
    /// An account whose name is already known (looked up by name, or a test fixture).
    pub fn named(name: impl Into<String>, uid: u32) -> PoolAccount {
        PoolAccount {
            uid,
            name: OnceLock::from(name.into()),
            resolve: None,
        }
    }

    /// An account of a uid range: `resolve(uid)` runs on the first [`PoolAccount::name`] call.
    pub fn by_uid(uid: u32, resolve: NameResolver) -> PoolAccount {
        PoolAccount {
            uid,
            name: OnceLock::new(),
            resolve: Some(resolve),
        }
    }

    /// The account name: the passwd name, or `#uid` if the uid has no entry. Looks it up on
    /// the first call for a uid-range account.
    pub fn name(&self) -> &str {
        self.name.get_or_init(|| {
            self.resolve
                .and_then(|r| r(self.uid))
                .unwrap_or_else(|| format!("#{}", self.uid))
        })
    }

    /// The name if it is known already, without looking it up.
    pub fn resolved_name(&self) -> Option<&str> {
        self.name.get().map(String::as_str)
    }
}

/// Shows the name only if it is resolved: formatting must not cause an NSS look-up.
impl std::fmt::Debug for PoolAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolAccount")
            .field("name", &self.resolved_name().unwrap_or("(not looked up)"))
            .field("uid", &self.uid)
            .finish()
    }
}

/// Same uid and same name (resolving both): whether a name is cached yet does not matter.
impl PartialEq for PoolAccount {
    fn eq(&self, other: &PoolAccount) -> bool {
        self.uid == other.uid && self.name() == other.name()
    }
}

impl Eq for PoolAccount {}

/// `{"name": ..., "uid": ...}`, as the former derived form.
impl Serialize for PoolAccount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("PoolAccount", 2)?;
        st.serialize_field("name", self.name())?;
        st.serialize_field("uid", &self.uid)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local!(static CALLS: Cell<usize> = const { Cell::new(0) });

    /// Even uids have an entry `u<uid>`, odd ones none.
    fn counting(uid: u32) -> Option<String> {
        CALLS.with(|c| c.set(c.get() + 1));
        uid.is_multiple_of(2).then(|| format!("u{uid}"))
    }

    #[test]
    fn resolves_once_on_first_use_with_the_former_names() {
        CALLS.with(|c| c.set(0));
        let even = PoolAccount::by_uid(30002, counting);
        let odd = PoolAccount::by_uid(30003, counting);
        let copy = even.clone();
        assert_eq!(even.resolved_name(), None);
        assert_eq!(
            format!("{even:?}"),
            "PoolAccount { name: \"(not looked up)\", uid: 30002 }"
        );
        assert_eq!(CALLS.with(Cell::get), 0, "clone and Debug look nothing up");
        assert_eq!(even.name(), "u30002");
        assert_eq!(even.name(), "u30002");
        assert_eq!(odd.name(), "#30003", "no entry: #uid, as before");
        assert_eq!(CALLS.with(Cell::get), 2, "one look-up per account");
        assert_eq!(even.resolved_name(), Some("u30002"));
        assert_eq!(
            copy.resolved_name(),
            None,
            "a clone made before keeps its own cache"
        );
        assert_eq!(even, PoolAccount::named("u30002", 30002));
        assert_ne!(even, PoolAccount::named("x", 30002));
        assert_ne!(odd, PoolAccount::named("#30003", 30005));
        assert_eq!(
            serde_json::to_string(&odd).unwrap(),
            r##"{"name":"#30003","uid":30003}"##
        );
    }
}
