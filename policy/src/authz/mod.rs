//! Authorization and mapping: from a verified [`Identity`] and the pilot's request to a
//! [`Decision`] (account, uid, groups, limits, environment, reason trail) or a classified
//! [`Denial`].
//!
//! Order of [`decide`], failing closed at every step:
//! 1. a broken ban file bans everyone (site error, 123);
//! 2. bans on subject DN, issuing CA and *claimed* FQANs (denied, 120);
//! 3. the first matching mapping rule ([`rules`]); no rule → denied (120);
//! 4. a fixed account, or a pool account from the lease store (exhausted/busy → temporary, 121;
//!    broken store → site error, 123);
//! 5. primary group: rule `gid`, else pool `gid`, else the group-mapfile's primary group, else
//!    the account's passwd group; supplementary groups: pool, rule, then group-mapfile groups;
//! 6. limits = min(request, cap) ([`limits`]); environment filtered by `[env] allow`.
//!
//! The caller (the launcher) checks the pilot with [`check_pilot`] before anything else.

pub mod accounts;
pub mod bans;
pub mod limits;
pub mod rules;

use crate::class::{Class, Denial};
use crate::config::schema::{GroupSuffix, LeaseKeyKind, NameOrId};
use crate::identity::Identity;
use crate::lease::{Acquired, LeaseKey, LeaseStore, Pool, PoolAccount};
use crate::mapfile::dfpm;
use crate::mapfile::fqan::Fqan;
use accounts::{group_name, resolve_group, resolve_user};
pub use limits::{LimitRequest, Limits};
pub use rules::{Policy, Rule, Target};
use serde::Serialize;

/// What the pilot asks for besides the identity.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub limits: LimitRequest,
    pub env: Vec<(String, String)>,
}

/// A positive decision: who the payload runs as, with what, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub account: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary gids (without the primary gid, no duplicates).
    pub groups: Vec<u32>,
    /// The pool the account was leased from; `None` for a fixed mapping.
    pub pool: Option<String>,
    pub lease: Option<Acquired>,
    /// The rule that chose the account.
    pub rule: String,
    pub limits: Limits,
    /// Environment passed through to the payload.
    pub env: Vec<(String, String)>,
    /// Every step that led here, in order, in words.
    pub reasons: Vec<String>,
}

fn site(reason: impl Into<String>) -> Denial {
    Denial::new(Class::SiteError, reason)
}

/// Is the calling uid (with its gids) an allowed pilot? Unknown names in `[pilots]` are
/// skipped (and logged); an empty list allows nobody.
pub fn check_pilot(policy: &Policy, uid: u32, gids: &[u32]) -> Result<String, Denial> {
    for u in &policy.file.pilots.users {
        match resolve_user(u) {
            Ok((name, id, _)) if id == uid => {
                return Ok(format!("caller uid {uid} ({name}) is an allowed pilot"))
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("[pilots] users: {e}"),
        }
    }
    for g in &policy.file.pilots.groups {
        match resolve_group(g) {
            Ok(gid) if gids.contains(&gid) => {
                return Ok(format!("caller is in allowed pilot group {g}"))
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("[pilots] groups: {e}"),
        }
    }
    Err(Denial::new(
        Class::Denied,
        format!(
            "caller uid {uid} is not an allowed pilot ([pilots] in {})",
            policy.path.display()
        ),
    ))
}

/// The pool named by a rule: a `[[pool]]`, or (gridmapdir backend) the gridmapdir accounts
/// with that prefix, uids from NSS.
fn pool_for(policy: &Policy, name: &str) -> Result<Pool, Denial> {
    if let Some(p) = policy.pools.get(name) {
        return Ok(p.clone());
    }
    let dir = policy
        .file
        .lease
        .gridmapdir
        .as_ref()
        .filter(|_| policy.file.lease.backend == crate::config::schema::LeaseBackend::Gridmapdir)
        .ok_or_else(|| {
            site(format!(
                "mapping names pool {name}, but there is no [[pool]] named {name}"
            ))
        })?;
    let names =
        crate::lease::gridmapdir::pool_accounts(dir, name).map_err(|e| site(e.to_string()))?;
    let mut accounts = Vec::new();
    for n in names {
        match resolve_user(&NameOrId::Name(n.clone())) {
            Ok((name, uid, _)) if uid != 0 => accounts.push(PoolAccount::named(name, uid)),
            _ => tracing::warn!("gridmapdir account {n} has no passwd entry: skipped"),
        }
    }
    if accounts.is_empty() {
        return Err(site(format!(
            "pool {name}: no accounts in gridmapdir {} with a passwd entry",
            dir.display()
        )));
    }
    Ok(Pool {
        name: name.into(),
        accounts,
    })
}

/// Decide who `id` runs as. `in_use(uid)` must say whether a payload of that uid is running on
/// this node (leases of running accounts are never recycled); `now` is Unix seconds.
pub fn decide(
    policy: &Policy,
    id: &Identity,
    req: &Request,
    store: &dyn LeaseStore,
    in_use: &dyn Fn(u32) -> bool,
    now: u64,
) -> Result<Decision, Denial> {
    let mut reasons = Vec::new();
    let hits = policy.bans.check(id);
    if let Some(h) = hits.first() {
        let class = if matches!(h, bans::BanHit::BrokenBanFile(_)) {
            Class::SiteError
        } else {
            Class::Denied
        };
        return Err(Denial::new(class, h.to_string()));
    }
    reasons.push("not banned (DN, CA, claimed FQANs checked)".to_string());

    let fqans = id.verified_fqans();
    if let Some(v) = id.voms.as_ref().filter(|v| !v.valid) {
        reasons.push(format!(
            "VOMS AC not valid ({}): its FQANs are ignored for mapping",
            v.reason.as_deref().unwrap_or("no reason given")
        ));
    }
    let (rule, matched_fqan) = policy.select_rule(&id.dn, fqans).ok_or_else(|| {
        Denial::new(
            Class::Denied,
            format!(
                "no mapping rule matches DN {} with verified FQANs {:?}",
                id.dn, fqans
            ),
        )
    })?;
    reasons.push(match &matched_fqan {
        Some(f) => format!("FQAN {f} matches {}", rule.origin),
        None => format!("DN matches {}", rule.origin),
    });

    // Group-mapfile groups (Argus semantics: primary FQAN = first verified FQAN).
    let (gm_primary, gm_secondary) = match &policy.group_mapfile {
        Some(gm) => {
            let (p, s) = dfpm::groups(
                gm,
                &id.dn,
                fqans.first().map(String::as_str),
                fqans.get(1..).unwrap_or(&[]),
                false,
            );
            let resolve = |n: &String| {
                resolve_group(&NameOrId::Name(n.clone()))
                    .map_err(|e| site(format!("group-mapfile names group {n}: {e}")))
            };
            (
                p.as_ref().map(resolve).transpose()?,
                s.iter().map(resolve).collect::<Result<Vec<_>, _>>()?,
            )
        }
        None => (None, vec![]),
    };

    let rule_gid = rule
        .gid
        .as_ref()
        .map(resolve_group)
        .transpose()
        .map_err(|e| site(format!("{}: {e}", rule.origin)))?;
    let (account, uid, passwd_gid, pool, lease) = match &rule.target {
        Target::Account(a) => {
            let (name, uid, gid) =
                resolve_user(a).map_err(|e| site(format!("{}: {e}", rule.origin)))?;
            reasons.push(format!("fixed account {name} (uid {uid})"));
            (name, uid, gid, None, None)
        }
        Target::Pool(pname) => {
            let pool = pool_for(policy, pname)?;
            let pc = policy.pool_conf.get(pname);
            let pool_gid = pc
                .and_then(|c| c.gid.as_ref())
                .map(resolve_group)
                .transpose()
                .map_err(|e| site(e.to_string()))?;
            let pgid = rule_gid.or(pool_gid).or(gm_primary);
            let lc = &policy.file.lease;
            let primary_fqan = match lc.key {
                LeaseKeyKind::DnPrimaryFqan => fqans
                    .first()
                    .map(|f| Fqan::parse(f).map(|f| f.to_string()).unwrap_or(f.clone())),
                LeaseKeyKind::Dn => None,
            };
            let groups = match lc.gridmapdir_groups {
                GroupSuffix::None => vec![],
                GroupSuffix::Primary => pgid.map(group_name).into_iter().collect(),
                GroupSuffix::All => pgid
                    .into_iter()
                    .chain(gm_secondary.iter().copied())
                    .map(group_name)
                    .collect(),
            };
            let key = LeaseKey {
                dn: id.dn.clone(),
                primary_fqan,
                groups,
            };
            let (l, how) = store
                .acquire(&pool, &key, now, lc.idle.0, in_use)
                .map_err(Denial::from)?;
            reasons.push(match how {
                Acquired::NotTaken => format!(
                    "pool {pname}: no lease taken (read-only decision); its first account is {} (uid {})",
                    l.account, l.uid
                ),
                _ => format!(
                    "pool {pname}: {} lease on {} (uid {})",
                    match how {
                        Acquired::Existing => "existing",
                        Acquired::New => "new",
                        _ => "recycled idle",
                    },
                    l.account,
                    l.uid
                ),
            });
            let pw = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(l.uid))
                .ok()
                .flatten()
                .map(|u| u.gid.as_raw());
            (l.account, l.uid, pw, Some(pname.clone()), Some(how))
        }
    };
    if uid == 0 {
        return Err(site(format!("{} maps to uid 0: refused", rule.origin)));
    }
    let pool_gid = pool
        .as_ref()
        .and_then(|p| policy.pool_conf.get(p))
        .and_then(|c| c.gid.as_ref())
        .map(resolve_group)
        .transpose()
        .map_err(|e| site(e.to_string()))?;
    let (gid, gid_src) = match (rule_gid, pool_gid, gm_primary, passwd_gid) {
        (Some(g), ..) => (g, "rule gid"),
        (None, Some(g), ..) => (g, "pool gid"),
        (None, None, Some(g), _) => (g, "group-mapfile"),
        (None, None, None, Some(g)) => (g, "passwd entry"),
        _ => {
            return Err(site(format!(
                "{}: account {account} has no primary group (set gid)",
                rule.origin
            )))
        }
    };
    if gid == 0 {
        return Err(site(format!("{}: primary gid 0 refused", rule.origin)));
    }
    reasons.push(format!("primary gid {gid} from {gid_src}"));

    let mut groups: Vec<u32> = Vec::new();
    let pool_groups = pool
        .as_ref()
        .and_then(|p| policy.pool_conf.get(p))
        .map(|c| c.groups.clone())
        .unwrap_or_default();
    for g in pool_groups.iter().chain(rule.groups.iter()) {
        groups.push(resolve_group(g).map_err(|e| site(format!("{}: {e}", rule.origin)))?);
    }
    groups.extend(gm_primary.into_iter().chain(gm_secondary));
    let mut seen = std::collections::HashSet::from([gid]);
    groups.retain(|g| seen.insert(*g));
    if groups.contains(&0) {
        return Err(site(format!(
            "{}: supplementary gid 0 refused",
            rule.origin
        )));
    }

    let (limits, notes) =
        limits::compute(&policy.file.limits, id.verified_vo(), fqans, &req.limits);
    reasons.extend(notes);
    let mut env = Vec::new();
    let mut dropped: Vec<&str> = Vec::new();
    for (k, v) in &req.env {
        if policy.env_allowed(k) {
            env.push((k.clone(), v.clone()));
        } else {
            dropped.push(k);
        }
    }
    if !dropped.is_empty() {
        // One reason, not one per variable: a pilot's environment easily holds dozens.
        dropped.sort_unstable();
        reasons.push(format!(
            "{} caller environment variable(s) dropped, not in [env] allow: {}",
            dropped.len(),
            dropped.join(" ")
        ));
    }
    Ok(Decision {
        account,
        uid,
        gid,
        groups,
        pool,
        lease,
        rule: rule.origin.clone(),
        limits,
        env,
        reasons,
    })
}
