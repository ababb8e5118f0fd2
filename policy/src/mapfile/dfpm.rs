//! Argus "DFPM" (DN/FQAN to POSIX mapping) semantics over a grid-mapfile and a group-mapfile.
//!
//! This is what `argus-pep-server`'s `AccountMapper` does, so sites moving from Argus or
//! LCMAPS get the same login and groups from the same files. The rules, derived so that every
//! asserted Argus test in the conformance corpus holds:
//!
//! - **Login** (grid-mapfile): the first DN entry matching the subject, or the first entry
//!   matching the *primary* FQAN, whichever kind `prefer_dn_for_login_name` prefers, falling
//!   back to the other. Nothing matches → no mapping.
//! - **Groups** (group-mapfile): DN groups = every DN entry matching the subject (file order);
//!   primary-FQAN group = the first entry matching the primary FQAN; secondary-FQAN groups =
//!   every entry, in file order, matching any secondary FQAN that differs from the primary.
//!   Concatenated as DN + primary + secondary when `prefer_dn_for_primary_group_name`, else
//!   primary + secondary + DN. The first is the primary group, the rest (duplicates kept, as
//!   Argus keeps them) the secondary groups.

use super::{MapKey, MapTarget, Mapfile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DfpmOptions {
    pub prefer_dn_for_login_name: bool,
    pub prefer_dn_for_primary_group_name: bool,
    pub no_primary_group_name_is_error: bool,
}

impl Default for DfpmOptions {
    /// Argus' defaults.
    fn default() -> Self {
        DfpmOptions {
            prefer_dn_for_login_name: true,
            prefer_dn_for_primary_group_name: true,
            no_primary_group_name_is_error: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfpmMapping {
    pub login: MapTarget,
    /// Which grid-mapfile line chose the login.
    pub login_line: usize,
    pub primary_group: Option<String>,
    pub secondary_groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DfpmError {
    #[error("no subject DN: cannot map")]
    NoSubject,
    #[error("neither the DN nor the primary FQAN matches any grid-mapfile entry")]
    NoAccount,
    #[error("no group-mapfile entry gives a primary group and a primary group is required")]
    NoPrimaryGroup,
}

fn name_of(t: &MapTarget) -> String {
    match t {
        MapTarget::Name(n) | MapTarget::Pool(n) => n.clone(),
    }
}

/// The login target (account name or pool prefix) chosen by the grid-mapfile.
pub fn login(
    grid: &Mapfile,
    dn: &str,
    primary_fqan: Option<&str>,
    prefer_dn: bool,
) -> Option<(MapTarget, usize)> {
    let by_dn = || grid.match_dn(dn);
    let by_fqan = || primary_fqan.and_then(|f| grid.all_fqan(f).into_iter().next());
    let e = if prefer_dn {
        by_dn().or_else(by_fqan)
    } else {
        by_fqan().or_else(by_dn)
    };
    e.map(|e| (e.target.clone(), e.line))
}

/// Group names from the group-mapfile: (primary, secondary).
pub fn groups(
    group: &Mapfile,
    dn: &str,
    primary_fqan: Option<&str>,
    secondary_fqans: &[String],
    prefer_dn_for_primary: bool,
) -> (Option<String>, Vec<String>) {
    let dn_groups: Vec<String> = group
        .all_dn(dn)
        .into_iter()
        .map(|e| name_of(&e.target))
        .collect();
    let primary: Vec<String> = primary_fqan
        .and_then(|f| group.all_fqan(f).into_iter().next())
        .map(|e| vec![name_of(&e.target)])
        .unwrap_or_default();
    let secondaries: Vec<&String> = secondary_fqans
        .iter()
        .filter(|s| Some(s.as_str()) != primary_fqan)
        .collect();
    let secondary: Vec<String> = group
        .entries
        .iter()
        .filter(|e| match &e.key {
            MapKey::Fqan(p) => secondaries.iter().any(|s| p.matches_str(s)),
            MapKey::Dn { .. } => false,
        })
        .map(|e| name_of(&e.target))
        .collect();
    let all: Vec<String> = if prefer_dn_for_primary {
        dn_groups
            .into_iter()
            .chain(primary)
            .chain(secondary)
            .collect()
    } else {
        primary
            .into_iter()
            .chain(secondary)
            .chain(dn_groups)
            .collect()
    };
    let mut it = all.into_iter();
    (it.next(), it.collect())
}

/// The full Argus mapping: login target and groups.
pub fn map(
    grid: &Mapfile,
    group: &Mapfile,
    dn: Option<&str>,
    primary_fqan: Option<&str>,
    secondary_fqans: &[String],
    opts: DfpmOptions,
) -> Result<DfpmMapping, DfpmError> {
    let dn = dn.ok_or(DfpmError::NoSubject)?;
    let (login, login_line) =
        login(grid, dn, primary_fqan, opts.prefer_dn_for_login_name).ok_or(DfpmError::NoAccount)?;
    let (primary_group, secondary_groups) = groups(
        group,
        dn,
        primary_fqan,
        secondary_fqans,
        opts.prefer_dn_for_primary_group_name,
    );
    if primary_group.is_none() && opts.no_primary_group_name_is_error {
        return Err(DfpmError::NoPrimaryGroup);
    }
    Ok(DfpmMapping {
        login,
        login_line,
        primary_group,
        secondary_groups,
    })
}
