//! The verified identity handed from credential verification to authorization.
//!
//! Owned by the credentials module (it fills it in); authorization only reads it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Which proxy profile the chain used (all certificates of one chain must agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyType {
    /// RFC 3820 proxy (ProxyCertInfo 1.3.6.1.5.5.7.1.14).
    Rfc3820,
    /// Globus GT2 legacy proxy (`CN=proxy` / `CN=limited proxy`).
    Legacy,
    /// GT3 draft proxy (ProxyCertInfo 1.3.6.1.4.1.3536.1.222).
    Draft,
}

/// VOMS attributes as read from the AC nearest the leaf that carries one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voms {
    /// The VO name from the AC.
    pub vo: String,
    /// FQANs in AC order, long form (`/vo/Role=NULL/Capability=NULL`).
    ///
    /// Present even when `valid` is false: bans on FQANs must apply to claimed attributes too.
    /// Mapping must only use them when `valid` is true (see [`Identity::verified_fqans`]).
    pub fqans: Vec<String>,
    /// Generic attributes (name, value) in AC order.
    pub generic: Vec<(String, String)>,
    /// Whether the AC verified (signature, LSC, holder, time, targets).
    pub valid: bool,
    /// Why it did not verify, when `valid` is false.
    pub reason: Option<String>,
    /// End of the AC validity.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
}

/// A verified grid identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// End-entity subject DN, OpenSSL slash form (`/DC=org/DC=example/CN=Alice`).
    pub dn: String,
    /// End-entity issuer DN (the CA), OpenSSL slash form.
    pub issuer_dn: String,
    pub proxy_type: Option<ProxyType>,
    pub limited: bool,
    /// The earliest notAfter of the chain: the credential is unusable after it.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub voms: Option<Voms>,
}

impl Identity {
    /// When the credential stops being usable as mapped: the chain's notAfter, or the valid
    /// AC's if that comes first (the payload was mapped with the AC's FQANs, so it must not
    /// outlive them; RFC 5755 section 4.2.6 attribute certificate validity).
    pub fn usable_until(&self) -> OffsetDateTime {
        match &self.voms {
            Some(Voms {
                valid: true,
                not_after: Some(ac),
                ..
            }) if *ac < self.not_after => *ac,
            _ => self.not_after,
        }
    }

    /// FQANs usable for mapping: only those of a valid AC.
    pub fn verified_fqans(&self) -> &[String] {
        match &self.voms {
            Some(v) if v.valid => &v.fqans,
            _ => &[],
        }
    }

    /// FQANs the credential claims, verified or not: for bans.
    pub fn claimed_fqans(&self) -> &[String] {
        match &self.voms {
            Some(v) => &v.fqans,
            None => &[],
        }
    }

    /// The VO of a valid AC.
    pub fn verified_vo(&self) -> Option<&str> {
        match &self.voms {
            Some(v) if v.valid => Some(&v.vo),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(valid: bool) -> Identity {
        Identity {
            dn: "/DC=org/CN=Alice".into(),
            issuer_dn: "/DC=org/CN=CA".into(),
            proxy_type: Some(ProxyType::Rfc3820),
            limited: false,
            not_after: OffsetDateTime::UNIX_EPOCH,
            voms: Some(Voms {
                vo: "testvo".into(),
                fqans: vec!["/testvo/Role=NULL/Capability=NULL".into()],
                generic: vec![],
                valid,
                reason: (!valid).then(|| "expired".into()),
                not_after: None,
            }),
        }
    }

    #[test]
    fn usable_until_is_the_earlier_of_chain_and_valid_ac() {
        let mut i = ident(true);
        i.not_after = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(12);
        assert_eq!(i.usable_until(), i.not_after, "no AC end: the chain's");
        let ac = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(2);
        i.voms.as_mut().unwrap().not_after = Some(ac);
        assert_eq!(i.usable_until(), ac, "the AC ends first");
        i.voms.as_mut().unwrap().not_after = Some(i.not_after + time::Duration::hours(1));
        assert_eq!(i.usable_until(), i.not_after, "the chain ends first");
        let mut bad = ident(false);
        bad.not_after = i.not_after;
        bad.voms.as_mut().unwrap().not_after = Some(ac);
        assert_eq!(
            bad.usable_until(),
            bad.not_after,
            "an invalid AC does not count"
        );
    }

    #[test]
    fn invalid_ac_fqans_are_claimed_not_verified() {
        let i = ident(false);
        assert!(i.verified_fqans().is_empty());
        assert_eq!(i.claimed_fqans().len(), 1);
        assert_eq!(i.verified_vo(), None);
        let v = ident(true);
        assert_eq!(v.verified_fqans().len(), 1);
        assert_eq!(v.verified_vo(), Some("testvo"));
    }
}
