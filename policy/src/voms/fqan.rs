//! FQANs and the VOMS policyAuthority (VOMS AC profile, OGF GFD.182 §3.4).
//!
//! An FQAN is `/vo[/group…][/Role=r][/Capability=c]`. VOMS servers usually store the long form
//! (`/vo/Role=NULL/Capability=NULL`), but older servers and `voms-proxy-fake -fqan /vo` store the
//! short form; we always report the long form so that authorization compares like with like.

use super::error::VomsError;

/// The policyAuthority of the FQAN attribute: `vo://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAuthority {
    pub vo: String,
    pub host: String,
    pub port: u16,
}

/// VO and host names become path components of `<vomsdir>/<vo>/<host>.lsc`: they must not be
/// able to climb out of the vomsdir or name hidden files.
pub(crate) fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Parses `vo://host:port` (VOMS writes exactly this; VOMS C++ splits it at `://`).
pub fn parse_policy_authority(uri: &str) -> Result<PolicyAuthority, VomsError> {
    let bad = |why: &str| VomsError::PolicyAuthority(format!("{uri:?}: {why}"));
    let (vo, hostport) = uri.split_once("://").ok_or_else(|| bad("no \"://\""))?;
    let (host, port) = hostport.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    if !is_safe_name(vo) {
        return Err(bad("VO name has characters outside [A-Za-z0-9._-]"));
    }
    if !is_safe_name(host) {
        return Err(bad("host name has characters outside [A-Za-z0-9._-]"));
    }
    Ok(PolicyAuthority {
        vo: vo.to_owned(),
        host: host.to_owned(),
        port,
    })
}

/// One FQAN component: visible ASCII only, no `/`, no `=` (which would confuse Role/Capability).
fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'=')
}

/// Checks an FQAN of VO `vo` and returns its long form.
///
/// Rules: it starts with `/vo` followed by the end or `/` (VOMS C++ `checkAttributes`); groups
/// are non-empty; at most one `Role=` and then at most one `Capability=`, in that order, last.
pub fn to_long_form(fqan: &str, vo: &str) -> Result<String, VomsError> {
    let bad = |why: &'static str| VomsError::Fqan {
        fqan: fqan.to_owned(),
        why,
    };
    let rest = fqan
        .strip_prefix('/')
        .ok_or_else(|| bad("does not start with /"))?;
    let mut parts = rest.split('/');
    if parts.next() != Some(vo) {
        return Err(bad("root group is not the VO of the policyAuthority"));
    }
    let mut groups = vec![vo];
    let mut role: Option<&str> = None;
    let mut capability: Option<&str> = None;
    for part in parts {
        if let Some(r) = part.strip_prefix("Role=") {
            if role.is_some() || capability.is_some() {
                return Err(bad("Role= repeated or after Capability="));
            }
            if !valid_component(r) {
                return Err(bad("empty or invalid Role value"));
            }
            role = Some(r);
        } else if let Some(c) = part.strip_prefix("Capability=") {
            if capability.is_some() {
                return Err(bad("Capability= repeated"));
            }
            if !valid_component(c) {
                return Err(bad("empty or invalid Capability value"));
            }
            capability = Some(c);
        } else {
            if role.is_some() || capability.is_some() {
                return Err(bad("group after Role= or Capability="));
            }
            if !valid_component(part) {
                return Err(bad("empty or invalid group name"));
            }
            groups.push(part);
        }
    }
    Ok(format!(
        "/{}/Role={}/Capability={}",
        groups.join("/"),
        role.unwrap_or("NULL"),
        capability.unwrap_or("NULL")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_expand_to_long_form() {
        let l = |f| to_long_form(f, "test.vo").unwrap();
        assert_eq!(l("/test.vo"), "/test.vo/Role=NULL/Capability=NULL");
        assert_eq!(
            l("/test.vo/exp1"),
            "/test.vo/exp1/Role=NULL/Capability=NULL"
        );
        assert_eq!(
            l("/test.vo/exp3/Role=PIPPO"),
            "/test.vo/exp3/Role=PIPPO/Capability=NULL"
        );
        assert_eq!(
            l("/test.vo/a/b/Role=NULL/Capability=NULL"),
            "/test.vo/a/b/Role=NULL/Capability=NULL"
        );
        assert_eq!(
            l("/test.vo/Capability=x"),
            "/test.vo/Role=NULL/Capability=x"
        );
    }

    #[test]
    fn malformed_fqans_are_rejected() {
        for f in [
            "test.vo/a",
            "/other/a",
            "/test.voextra",
            "/test.vo//a",
            "/test.vo/a/",
            "/test.vo/Role=r/g",
            "/test.vo/Role=r/Role=s",
            "/test.vo/Capability=c/Role=r",
            "/test.vo/Role=",
            "/test.vo/a b",
            "/test.vo/a=b",
        ] {
            assert!(to_long_form(f, "test.vo").is_err(), "{f} accepted");
        }
    }

    #[test]
    fn policy_authority_is_vo_host_port_and_path_safe() {
        let pa = parse_policy_authority("test.vo://voms.example:15000").unwrap();
        assert_eq!(
            pa,
            PolicyAuthority {
                vo: "test.vo".into(),
                host: "voms.example".into(),
                port: 15000
            }
        );
        for bad in [
            "test.vo:/voms.example:15000",
            "test.vo://voms.example",
            "..://voms.example:15000",
            "a/b://voms.example:15000",
            "vo://../../etc:15000",
            "vo://h:99999",
            "://h:1",
        ] {
            assert!(parse_policy_authority(bad).is_err(), "{bad} accepted");
        }
    }
}
