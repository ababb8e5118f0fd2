//! Proxy certificate profiles: RFC 3820, GT3 "draft" and Globus GT2 legacy.
//!
//! - RFC 3820: the ProxyCertInfo extension (1.3.6.1.5.5.7.1.14, critical) carries an optional
//!   pCPathLenConstraint and a ProxyPolicy whose policyLanguage says what the proxy inherits:
//!   id-ppl-inheritAll (1.3.6.1.5.5.7.21.1), id-ppl-anyLanguage (1.3.6.1.5.5.7.21.0), id-ppl-independent (1.3.6.1.5.5.7.21.2) or the Globus
//!   limited-proxy language (1.3.6.1.4.1.3536.1.1.1.9). The subject is the issuer's subject plus
//!   exactly one CN (section 3.4); no subjectAltName/issuerAltName (3.5, 3.6); cA is not set (3.7).
//! - GT3 draft: the same content under OID 1.3.6.1.4.1.3536.1.222 (the path length may also be a
//!   `[1] EXPLICIT INTEGER` after the policy, as the pre-RFC drafts wrote it).
//! - Legacy (GT2): no extension; the subject is the issuer's subject plus `CN=proxy`, or
//!   `CN=limited proxy` for a limited proxy.

use super::cert::Cert;
use super::error::CredentialError;
use crate::identity::ProxyType;
use x509_parser::der_parser::ber::{BerObject, BerObjectContent};
use x509_parser::der_parser::der::parse_der;

pub const OID_PCI_RFC3820: &str = "1.3.6.1.5.5.7.1.14";
pub const OID_PCI_DRAFT: &str = "1.3.6.1.4.1.3536.1.222";
pub const OID_PPL_ANY_LANGUAGE: &str = "1.3.6.1.5.5.7.21.0";
pub const OID_PPL_INHERIT_ALL: &str = "1.3.6.1.5.5.7.21.1";
pub const OID_PPL_INDEPENDENT: &str = "1.3.6.1.5.5.7.21.2";
pub const OID_PPL_LIMITED: &str = "1.3.6.1.4.1.3536.1.1.1.9";

/// What a proxy inherits from its issuer (RFC 3820 section 3.8.1 policy languages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyLanguage {
    InheritAll,
    /// id-ppl-anyLanguage: the policy is in some language the issuer chose. For identity
    /// purposes it is an ordinary (not limited) delegation, as canl-java and Globus treat it.
    AnyLanguage,
    Independent,
    Limited,
    /// A language this verifier does not interpret; the proxy is refused.
    Other(String),
}

/// A parsed ProxyCertInfo extension value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyCertInfo {
    /// pCPathLenConstraint: how many more proxies may follow this one (None: unlimited).
    pub path_len: Option<u32>,
    pub language: PolicyLanguage,
}

/// Parses the DER value of a ProxyCertInfo extension (either OID).
///
/// `ProxyCertInfo ::= SEQUENCE { pCPathLenConstraint INTEGER (0..MAX) OPTIONAL,
///   proxyPolicy ProxyPolicy }`, `ProxyPolicy ::= SEQUENCE { policyLanguage OBJECT IDENTIFIER,
///   policy OCTET STRING OPTIONAL }`. The draft order (policy first, then `[1] INTEGER`) is
/// accepted too.
pub fn parse_proxy_cert_info(der: &[u8]) -> Result<ProxyCertInfo, String> {
    let (rest, obj) = parse_der(der).map_err(|e| format!("ProxyCertInfo is not DER: {e}"))?;
    if !rest.is_empty() {
        return Err("ProxyCertInfo has trailing bytes".into());
    }
    let items = match obj.content {
        BerObjectContent::Sequence(items) => items,
        _ => return Err("ProxyCertInfo is not a SEQUENCE".into()),
    };
    let mut path_len = None;
    let mut language = None;
    for item in &items {
        match &item.content {
            BerObjectContent::Integer(_) if path_len.is_none() => {
                path_len = Some(path_len_value(item)?)
            }
            BerObjectContent::Sequence(p) if language.is_none() => {
                language = Some(policy_language(p)?)
            }
            BerObjectContent::Unknown(any)
                if item.header.is_contextspecific()
                    && item.header.tag().0 == 1
                    && path_len.is_none() =>
            {
                let (_, inner) =
                    parse_der(any.data).map_err(|_| "ProxyCertInfo [1] is not DER".to_string())?;
                path_len = Some(path_len_value(&inner)?);
            }
            _ => return Err("ProxyCertInfo has an unexpected or repeated field".into()),
        }
    }
    let language = language.ok_or("ProxyCertInfo has no proxyPolicy")?;
    Ok(ProxyCertInfo { path_len, language })
}

fn path_len_value(o: &BerObject<'_>) -> Result<u32, String> {
    let bytes = match &o.content {
        BerObjectContent::Integer(b) => *b,
        _ => return Err("pCPathLenConstraint is not an INTEGER".into()),
    };
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return Err("pCPathLenConstraint is negative".into());
    }
    let digits = bytes.iter().skip_while(|b| **b == 0).count();
    if digits > 4 {
        return Ok(u32::MAX); // larger than any chain we accept: effectively unlimited
    }
    Ok(bytes
        .iter()
        .fold(0u32, |acc, b| acc.wrapping_shl(8) | *b as u32))
}

fn policy_language(p: &[BerObject<'_>]) -> Result<PolicyLanguage, String> {
    let oid = p
        .first()
        .and_then(|o| o.as_oid().ok())
        .ok_or("ProxyPolicy has no policyLanguage")?
        .to_id_string();
    if p.len() > 2
        || p.get(1)
            .is_some_and(|o| !matches!(o.content, BerObjectContent::OctetString(_)))
    {
        return Err("ProxyPolicy has unexpected fields".into());
    }
    Ok(match oid.as_str() {
        OID_PPL_INHERIT_ALL => PolicyLanguage::InheritAll,
        OID_PPL_ANY_LANGUAGE => PolicyLanguage::AnyLanguage,
        OID_PPL_INDEPENDENT => PolicyLanguage::Independent,
        OID_PPL_LIMITED => PolicyLanguage::Limited,
        _ => PolicyLanguage::Other(oid),
    })
}

/// A certificate recognised as a proxy of its signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    pub kind: ProxyType,
    pub limited: bool,
    pub independent: bool,
    /// How many more proxies may follow (None: unlimited; legacy proxies carry none).
    pub path_len: Option<u32>,
}

fn bad(cert: &Cert, detail: impl Into<String>) -> CredentialError {
    CredentialError::BadProxy {
        subject: cert.subject_slash.clone(),
        detail: detail.into(),
    }
}

/// Decides whether `cert`, signed by the non-CA `signer`, is a proxy and of which profile.
///
/// Returns `Ok(None)` when it is not shaped like any proxy; errors when it claims to be one
/// (carries ProxyCertInfo) but breaks the profile.
pub fn classify(cert: &Cert, signer: &Cert) -> Result<Option<ProxyInfo>, CredentialError> {
    let (kind, pci) = match (&cert.pci_rfc, &cert.pci_draft) {
        (Some(_), Some(_)) => {
            return Err(bad(
                cert,
                "carries both the RFC 3820 and the draft ProxyCertInfo",
            ))
        }
        (Some(r), None) => {
            if !cert.pci_rfc_critical {
                return Err(bad(
                    cert,
                    "the RFC 3820 ProxyCertInfo extension is not critical (RFC 3820 section 3.8)",
                ));
            }
            (ProxyType::Rfc3820, Some(r))
        }
        (None, Some(d)) => (ProxyType::Draft, Some(d)),
        (None, None) => (ProxyType::Legacy, None),
    };
    let extra_cn = cert.subject.0.len() == signer.subject.0.len() + 1
        && cert.subject.0.last().is_some_and(|a| a.label == "CN")
        && crate::dn::Dn(cert.subject.0[..cert.subject.0.len() - 1].to_vec()).comparison_key()
            == signer.subject_key;
    let Some(pci) = pci else {
        // Legacy: only by name.
        let last = cert.subject.0.last().map(|a| a.value.as_slice());
        let limited = match last {
            Some(b"proxy") => false,
            Some(b"limited proxy") => true,
            _ => return Ok(None),
        };
        if !extra_cn {
            return Ok(None);
        }
        check_common(cert)?;
        return Ok(Some(ProxyInfo {
            kind,
            limited,
            independent: false,
            path_len: None,
        }));
    };
    let info = parse_proxy_cert_info(pci).map_err(|e| bad(cert, e))?;
    if !extra_cn {
        return Err(bad(
            cert,
            format!(
                "its subject must be its issuer's subject {} plus one CN (RFC 3820 section 3.4)",
                signer.subject_slash
            ),
        ));
    }
    check_common(cert)?;
    let (limited, independent) = match info.language {
        PolicyLanguage::InheritAll | PolicyLanguage::AnyLanguage => (false, false),
        PolicyLanguage::Independent => (false, true),
        PolicyLanguage::Limited => (true, false),
        PolicyLanguage::Other(oid) => {
            return Err(bad(
                cert,
                format!("proxy policy language {oid} is not supported"),
            ))
        }
    };
    Ok(Some(ProxyInfo {
        kind,
        limited,
        independent,
        path_len: info.path_len,
    }))
}

/// Rules every proxy profile shares: not a CA, no alternative names (RFC 3820 3.5–3.7).
fn check_common(cert: &Cert) -> Result<(), CredentialError> {
    if cert.basic_constraints.is_some_and(|bc| bc.0) {
        return Err(bad(
            cert,
            "a proxy must not be a CA (basicConstraints cA is set)",
        ));
    }
    if cert.has_alt_names {
        return Err(bad(
            cert,
            "a proxy must not carry subjectAltName or issuerAltName",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_and_draft_layouts() {
        // SEQUENCE { INTEGER 2, SEQUENCE { OID inheritAll } }
        let rfc = [
            0x30, 0x0f, 0x02, 0x01, 0x02, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05,
            0x07, 0x15, 0x01,
        ];
        assert_eq!(
            parse_proxy_cert_info(&rfc).unwrap(),
            ProxyCertInfo {
                path_len: Some(2),
                language: PolicyLanguage::InheritAll
            }
        );
        // SEQUENCE { SEQUENCE { OID independent }, [1] { INTEGER 42 } }
        let draft = [
            0x30, 0x11, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x15, 0x02,
            0xa1, 0x03, 0x02, 0x01, 0x2a,
        ];
        assert_eq!(
            parse_proxy_cert_info(&draft).unwrap(),
            ProxyCertInfo {
                path_len: Some(42),
                language: PolicyLanguage::Independent
            }
        );
        assert!(parse_proxy_cert_info(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        assert!(parse_proxy_cert_info(&[0x30, 0x80]).is_err());
        assert!(parse_proxy_cert_info(&[]).is_err());
    }
}
