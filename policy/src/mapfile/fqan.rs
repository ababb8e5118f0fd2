//! VOMS FQANs and the FQAN patterns of group-mapfiles, grid-mapfiles and `policy.toml`.
//!
//! An FQAN is `/vo[/group...][/Role=r][/Capability=c]` (VOMS AC spec, GFD.182 section 3.4).
//! `Role=NULL` and `Capability=NULL` mean "none" and are dropped; Capability is deprecated and
//! ignored for matching.
//!
//! Pattern semantics follow Argus (not LCMAPS `fnmatch`), because they are structural and
//! therefore fail closed:
//! - a trailing `/*` group component matches any, possibly empty, sub-group path:
//!   `/cms/*` matches `/cms` and `/cms/higgs/top`;
//! - `Role=*` matches any role, including none; a pattern without a `Role=` component matches
//!   only FQANs without a role (`/atlas/*` does **not** match `/atlas/Role=production`; write
//!   `/atlas/*/Role=*` for that). LCMAPS' `fnmatch` would let `/atlas/*` match roles too: that
//!   surprise is exactly what a site does not want when a role maps to a privileged pool.
//! - group names compare exactly (VOMS group names are case-sensitive).

use std::fmt;

/// A parsed FQAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fqan {
    /// `["vo", "group", "subgroup"]`.
    pub groups: Vec<String>,
    /// The role, `None` for `Role=NULL` or absent.
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FqanError {
    #[error("FQAN {0:?} must start with '/' followed by a VO name")]
    NoVo(String),
    #[error("FQAN {0:?}: empty group component")]
    EmptyComponent(String),
    #[error("FQAN {0:?}: '{1}' may only appear as the last group component")]
    MisplacedWildcard(String, String),
    #[error("FQAN {0:?}: unknown qualifier {1:?} (only Role= and Capability= exist)")]
    UnknownQualifier(String, String),
}

/// Split an FQAN-like string into group components and qualifiers.
fn split(s: &str) -> Result<(Vec<String>, Option<String>), FqanError> {
    let body = s
        .trim()
        .strip_prefix('/')
        .ok_or_else(|| FqanError::NoVo(s.into()))?;
    let mut groups = Vec::new();
    let mut role = None;
    for comp in body.split('/') {
        if let Some((k, v)) = comp.split_once('=') {
            match k {
                "Role" => role = Some(v.to_string()),
                "Capability" => {}
                _ => return Err(FqanError::UnknownQualifier(s.into(), comp.into())),
            }
        } else if role.is_some() {
            return Err(FqanError::UnknownQualifier(s.into(), comp.into()));
        } else if comp.is_empty() {
            return Err(FqanError::EmptyComponent(s.into()));
        } else {
            groups.push(comp.to_string());
        }
    }
    if groups.is_empty() {
        return Err(FqanError::NoVo(s.into()));
    }
    Ok((groups, role))
}

impl Fqan {
    pub fn parse(s: &str) -> Result<Fqan, FqanError> {
        let (groups, role) = split(s)?;
        if groups.iter().any(|g| g == "*") {
            return Err(FqanError::MisplacedWildcard(s.into(), "*".into()));
        }
        let role = role.filter(|r| r != "NULL");
        Ok(Fqan { groups, role })
    }

    /// The VO (first group component).
    pub fn vo(&self) -> &str {
        &self.groups[0]
    }
}

impl fmt::Display for Fqan {
    /// Short form: `/vo/group[/Role=r]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for g in &self.groups {
            write!(f, "/{g}")?;
        }
        if let Some(r) = &self.role {
            write!(f, "/Role={r}")?;
        }
        Ok(())
    }
}

/// What a pattern demands of the role.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RolePattern {
    /// No `Role=` in the pattern (or `Role=NULL`): the FQAN must have no role.
    None,
    /// `Role=*`.
    Any,
    Exact(String),
}

/// An FQAN pattern (see the module documentation for the matching rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FqanPattern {
    text: String,
    groups: Vec<String>,
    any_subgroup: bool,
    role: RolePattern,
}

impl FqanPattern {
    pub fn parse(s: &str) -> Result<FqanPattern, FqanError> {
        let (mut groups, role) = split(s)?;
        let any_subgroup = groups.last().map(String::as_str) == Some("*");
        if any_subgroup {
            groups.pop();
        }
        if groups.is_empty() {
            return Err(FqanError::NoVo(s.into()));
        }
        if groups.iter().any(|g| g.contains('*')) {
            return Err(FqanError::MisplacedWildcard(s.into(), "*".into()));
        }
        let role = match role.as_deref() {
            None | Some("NULL") => RolePattern::None,
            Some("*") => RolePattern::Any,
            Some(r) => RolePattern::Exact(r.to_string()),
        };
        Ok(FqanPattern {
            text: s.trim().to_string(),
            groups,
            any_subgroup,
            role,
        })
    }

    /// The VO this pattern is about.
    pub fn vo(&self) -> &str {
        &self.groups[0]
    }

    pub fn matches(&self, f: &Fqan) -> bool {
        let groups_ok = if self.any_subgroup {
            f.groups.len() >= self.groups.len() && f.groups[..self.groups.len()] == self.groups[..]
        } else {
            f.groups == self.groups
        };
        groups_ok
            && match &self.role {
                RolePattern::None => f.role.is_none(),
                RolePattern::Any => true,
                RolePattern::Exact(r) => f.role.as_deref() == Some(r.as_str()),
            }
    }

    /// Match a textual FQAN; unparseable FQANs match nothing.
    pub fn matches_str(&self, fqan: &str) -> bool {
        Fqan::parse(fqan).map(|f| self.matches(&f)).unwrap_or(false)
    }

    /// Whether every FQAN this pattern matches is also matched by `other` (used by
    /// `policy check` to report rules that can never fire).
    pub fn is_covered_by(&self, other: &FqanPattern) -> bool {
        let groups_ok = if other.any_subgroup {
            self.groups.len() >= other.groups.len()
                && self.groups[..other.groups.len()] == other.groups[..]
        } else {
            !self.any_subgroup && self.groups == other.groups
        };
        groups_ok
            && match (&self.role, &other.role) {
                (_, RolePattern::Any) => true,
                (RolePattern::None, RolePattern::None) => true,
                (RolePattern::Exact(a), RolePattern::Exact(b)) => a == b,
                _ => false,
            }
    }
}

impl fmt::Display for FqanPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, f: &str) -> bool {
        FqanPattern::parse(p).unwrap().matches_str(f)
    }

    #[test]
    fn long_and_short_forms_are_the_same_fqan() {
        assert_eq!(
            Fqan::parse("/testvo/Role=NULL/Capability=NULL").unwrap(),
            Fqan::parse("/testvo").unwrap()
        );
    }

    #[test]
    fn argus_pattern_semantics() {
        assert!(m("/atlas", "/atlas/Role=NULL/Capability=NULL"));
        assert!(!m("/atlas", "/atlas/prod"));
        assert!(!m("/atlas", "/atlas/Role=pilot"));
        assert!(m("/cms/*", "/cms"));
        assert!(m("/cms/*", "/cms/higgs/top"));
        assert!(!m("/cms/*", "/cms/Role=pilot"));
        assert!(!m("/cms/*", "/cmsx"));
        assert!(m("/dteam/*/Role=*", "/dteam/Role=prod"));
        assert!(m("/dteam/*/Role=*", "/dteam"));
        assert!(m("/cms/Role=pilot", "/cms/Role=pilot/Capability=NULL"));
        assert!(!m("/cms/Role=pilot", "/cms/sub/Role=pilot"));
        assert!(!m("/cms/Role=pilot", "/CMS/Role=pilot"));
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in [
            "",
            "cms",
            "/",
            "/cms//x",
            "/c*s",
            "/*/x",
            "/cms/Foo=1",
            "/cms/Role=x/y",
        ] {
            assert!(FqanPattern::parse(bad).is_err(), "{bad:?}");
        }
        assert!(!FqanPattern::parse("/cms/*").unwrap().matches_str("garbage"));
    }

    #[test]
    fn coverage_for_unreachable_rule_detection() {
        let p = |s| FqanPattern::parse(s).unwrap();
        assert!(p("/cms/Role=pilot").is_covered_by(&p("/cms/*/Role=*")));
        assert!(p("/cms/x").is_covered_by(&p("/cms/*")));
        assert!(!p("/cms/*").is_covered_by(&p("/cms")));
        assert!(!p("/cms/Role=pilot").is_covered_by(&p("/cms/*")));
    }
}
