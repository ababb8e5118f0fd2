//! The compiled policy: mapping rules, pools, bans, all checked once at load time.
//!
//! Rule order: `[[map]]` entries in file order, then the imported grid-mapfile's lines in file
//! order. Which *kind* of rule is tried first is `[mapping] order`: `fqan-first` (default)
//! tries FQAN rules for each verified FQAN in AC order (the primary FQAN first), then DN rules;
//! `dn-first` the reverse. Within a kind, the first matching rule wins.

use super::accounts::{expand_pool, AccountError};
use super::bans::Bans;
use crate::config::schema::{LeaseBackend, MappingOrder, NameOrId, PolicyFile};
use crate::config::ConfigError;
use crate::lease::Pool;
use crate::mapfile::fqan::FqanPattern;
use crate::mapfile::{MapKey, MapTarget, Mapfile};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pool(String),
    Account(NameOrId),
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// Where the rule comes from: `policy.toml [[map]] #2` or `grid-mapfile:12`.
    pub origin: String,
    pub key: MapKey,
    pub target: Target,
    pub gid: Option<NameOrId>,
    pub groups: Vec<NameOrId>,
}

/// A loaded, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub path: PathBuf,
    pub file: PolicyFile,
    pub rules: Vec<Rule>,
    pub pools: HashMap<String, Pool>,
    pub pool_conf: HashMap<String, crate::config::schema::PoolConf>,
    pub bans: Bans,
    pub group_mapfile: Option<Mapfile>,
}

fn invalid(path: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.into(),
        reason: reason.into(),
    }
}

impl Policy {
    /// Validate and compile a parsed policy. `path` names the file in messages and is the base
    /// for nothing else (every path in the policy must be absolute).
    pub fn compile(file: PolicyFile, path: &Path) -> Result<Policy, ConfigError> {
        let acct = |e: AccountError| invalid(path, e.to_string());
        let mut pools = HashMap::new();
        let mut pool_conf = HashMap::new();
        let mut owner: HashMap<u32, String> = HashMap::new();
        for p in &file.pools {
            // Uids only: a uid-range pool's names are looked up when a lease needs one.
            let pool = expand_pool(p).map_err(acct)?;
            for a in &pool.accounts {
                if let Some(other) = owner.insert(a.uid, p.name.clone()) {
                    return Err(invalid(
                        path,
                        format!(
                            "uid {} ({}) is in pools {other} and {}",
                            a.uid,
                            a.name(),
                            p.name
                        ),
                    ));
                }
            }
            if pools.insert(p.name.clone(), pool).is_some() {
                return Err(invalid(
                    path,
                    format!("two [[pool]] entries are named {}", p.name),
                ));
            }
            pool_conf.insert(p.name.clone(), p.clone());
        }
        let gridmapdir = file.lease.backend == LeaseBackend::Gridmapdir;
        if gridmapdir && file.lease.gridmapdir.is_none() {
            return Err(invalid(
                path,
                "[lease] backend = \"gridmapdir\" needs gridmapdir = \"/path\"",
            ));
        }
        if gridmapdir {
            if let Some(p) = file.pools.iter().find(|p| p.accounts.is_none()) {
                return Err(invalid(
                    path,
                    format!("[[pool]] {}: the gridmapdir backend needs named accounts (accounts = ...), not uids", p.name),
                ));
            }
        }
        let mut rules = Vec::new();
        for (i, m) in file.maps.iter().enumerate() {
            let origin = format!("policy.toml [[map]] #{}", i + 1);
            let key = match (&m.fqan, &m.dn) {
                (Some(f), None) => MapKey::Fqan(
                    FqanPattern::parse(f).map_err(|e| invalid(path, format!("{origin}: {e}")))?,
                ),
                (None, Some(d)) => {
                    let dn = crate::dn::Dn::parse(d)
                        .map_err(|e| invalid(path, format!("{origin}: {e}")))?;
                    MapKey::Dn {
                        text: d.clone(),
                        normalized: dn.comparison_key(),
                    }
                }
                _ => {
                    return Err(invalid(
                        path,
                        format!("{origin}: give exactly one of fqan or dn"),
                    ))
                }
            };
            let target = match (&m.pool, &m.account) {
                (Some(p), None) => {
                    if !pools.contains_key(p) && !gridmapdir {
                        return Err(invalid(path, format!("{origin}: no [[pool]] named {p}")));
                    }
                    Target::Pool(p.clone())
                }
                (None, Some(a)) => Target::Account(a.clone()),
                _ => {
                    return Err(invalid(
                        path,
                        format!("{origin}: give exactly one of pool or account"),
                    ))
                }
            };
            rules.push(Rule {
                origin,
                key,
                target,
                gid: m.gid.clone(),
                groups: m.groups.clone(),
            });
        }
        if let Some(gm) = &file.mapping.grid_mapfile {
            let mf = Mapfile::load(gm)
                .map_err(|e| invalid(path, format!("[mapping] grid_mapfile: {e}")))?;
            for e in mf.entries {
                let target = match e.target {
                    MapTarget::Name(n) => Target::Account(NameOrId::Name(n)),
                    MapTarget::Pool(p) => Target::Pool(p),
                };
                let origin = format!("{}:{}", gm.display(), e.line);
                rules.push(Rule {
                    origin,
                    key: e.key,
                    target,
                    gid: None,
                    groups: vec![],
                });
            }
        }
        // A fixed account inside a pool would share its uid with whoever leases it next.
        for r in &rules {
            if let Target::Account(a) = &r.target {
                if let Ok((name, uid, _)) = super::accounts::resolve_user(a) {
                    if let Some(pool) = owner.get(&uid) {
                        return Err(invalid(
                            path,
                            format!(
                                "{}: fixed account {name} (uid {uid}) is also in pool {pool}",
                                r.origin
                            ),
                        ));
                    }
                }
            }
        }
        let group_mapfile = match &file.mapping.group_mapfile {
            Some(p) => Some(
                Mapfile::load(p)
                    .map_err(|e| invalid(path, format!("[mapping] group_mapfile: {e}")))?,
            ),
            None => None,
        };
        for pat in file.env.allow.iter() {
            let name = pat.strip_suffix('*').unwrap_or(pat);
            if name.is_empty() || name.contains('*') || name.contains('=') {
                return Err(invalid(
                    path,
                    format!("[env] allow: bad entry {pat:?} (a name, or a prefix ending in *)"),
                ));
            }
        }
        for c in &file.limits.caps {
            match (&c.vo, &c.fqan) {
                (Some(_), None) => {}
                (None, Some(f)) => {
                    FqanPattern::parse(f)
                        .map_err(|e| invalid(path, format!("[[limits.cap]]: {e}")))?;
                }
                _ => {
                    return Err(invalid(
                        path,
                        "[[limits.cap]]: give exactly one of vo or fqan",
                    ))
                }
            }
        }
        let bans = Bans::compile(&file.ban, path)?;
        Ok(Policy {
            path: path.into(),
            file,
            rules,
            pools,
            pool_conf,
            bans,
            group_mapfile,
        })
    }

    /// Load the file at `path` (checking its permissions against `trusted_uid`) and compile it.
    pub fn load(path: &Path, trusted_uid: u32) -> Result<Policy, ConfigError> {
        Policy::compile(crate::config::load_file(path, trusted_uid)?, path)
    }

    /// The enforced policy: the build-time path, owned by root.
    pub fn load_system() -> Result<Policy, ConfigError> {
        Policy::load(
            Path::new(crate::config::POLICY_PATH),
            crate::config::TRUSTED_UID,
        )
    }

    /// Whether `name` may be passed to the payload's environment.
    pub fn env_allowed(&self, name: &str) -> bool {
        self.file
            .env
            .allow
            .iter()
            .any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == p,
            })
    }

    /// The first rule matching, in the configured order, with the FQAN that matched.
    pub fn select_rule<'a>(
        &'a self,
        dn: &str,
        fqans: &[String],
    ) -> Option<(&'a Rule, Option<String>)> {
        let norm = crate::dn::normalize_dn(dn).ok();
        let by_fqan = || {
            fqans.iter().find_map(|f| {
                self.rules
                    .iter()
                    .find(|r| matches!(&r.key, MapKey::Fqan(p) if p.matches_str(f)))
                    .map(|r| (r, Some(f.clone())))
            })
        };
        let by_dn = || {
            self.rules
                .iter()
                .find(|r| matches!(&r.key, MapKey::Dn { normalized, .. } if Some(normalized) == norm.as_ref()))
                .map(|r| (r, None))
        };
        match self.file.mapping.order {
            MappingOrder::FqanFirst => by_fqan().or_else(by_dn),
            MappingOrder::DnFirst => by_dn().or_else(by_fqan),
        }
    }

    /// Rules that can never match because an earlier rule of the same kind covers them
    /// (for `pilotbox policy check`).
    pub fn unreachable_rules(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            for earlier in &self.rules[..i] {
                let covered = match (&r.key, &earlier.key) {
                    (MapKey::Fqan(a), MapKey::Fqan(b)) => a.is_covered_by(b),
                    (MapKey::Dn { normalized: a, .. }, MapKey::Dn { normalized: b, .. }) => a == b,
                    _ => false,
                };
                if covered {
                    out.push(format!(
                        "{} can never match: {} comes first and covers it",
                        r.origin, earlier.origin
                    ));
                    break;
                }
            }
        }
        out
    }
}
