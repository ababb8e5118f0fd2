//! The trust checks on a parsed AC: algorithm policy (the chain's own [`AlgorithmPolicy`]), issuer trust and signature, holder,
//! validity period, targets and critical extensions (RFC 5755 §5 "Attribute Certificate
//! Validation", VOMS C++ `validate`).

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::AlgorithmIdentifier;

use super::error::VomsError;
use super::oids;
use super::parse::{AcHolder, ParsedAc};
use super::{trust, VomsContext};
use crate::credentials::algorithms::AlgorithmPolicy;
use crate::dn::{openssl_slash, same_name};

/// What the AC signature is called in messages.
const AC_SIGNATURE: &str = "the attribute certificate";

/// The AC signature algorithm against the chain's [`AlgorithmPolicy`] (same rules, same codes:
/// `weak_algorithm`, `unsupported_algorithm`), before the AA is even looked up.
pub(crate) fn check_algorithm(
    alg: &AlgorithmIdentifier<'_>,
    policy: &AlgorithmPolicy,
) -> Result<(), VomsError> {
    policy
        .check_algorithm(AC_SIGNATURE, &alg.algorithm.to_id_string())
        .map_err(VomsError::Signature)
}

/// Verifies the AC signature over `AttributeCertificateInfo` with `signer`'s public key, by the
/// chain's [`AlgorithmPolicy`]: the AA key must meet the same minimum size as any certificate
/// key (`weak_key`), and only a signature that does not verify is `bad_signature`.
pub(crate) fn verify_signature(
    ac: &ParsedAc<'_>,
    signer: &X509Certificate<'_>,
    policy: &AlgorithmPolicy,
) -> Result<(), VomsError> {
    let aa = openssl_slash(signer.subject());
    policy
        .check_key(&aa, signer.public_key())
        .and_then(|()| {
            policy.verify(
                AC_SIGNATURE,
                &aa,
                &ac.signature_algorithm.algorithm.to_id_string(),
                signer.public_key(),
                ac.signed_part,
                &ac.signature_value.data,
            )
        })
        .map_err(VomsError::Signature)
}

fn trim_serial(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == 0).count();
    &s[n.min(s.len().saturating_sub(1))..]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// RFC 5755 §4.2.2 / §5: the AC must be bound to the end-entity certificate.
///
/// `baseCertificateID`: serial equal, and issuer equal to the certificate's issuer (RFC 5755)
/// **or to its subject**: VOMS servers and `voms-proxy-fake` write the holder's subject there,
/// and VOMS C++ accepts both (`validate`: `X509_NAME_cmp` against subject, then issuer).
/// `entityName`: the certificate's subject.
pub(crate) fn check_holder(ac: &ParsedAc<'_>, cert: &X509Certificate<'_>) -> Result<(), VomsError> {
    let ok = match &ac.holder {
        AcHolder::BaseCertificateId { issuer, serial } => {
            trim_serial(serial) == trim_serial(cert.raw_serial())
                && (same_name(issuer, cert.issuer()) || same_name(issuer, cert.subject()))
        }
        AcHolder::EntityName(name) => same_name(name, cert.subject()),
    };
    if ok {
        return Ok(());
    }
    let ac_holder = match &ac.holder {
        AcHolder::BaseCertificateId { issuer, serial } => {
            format!(
                "issuer {} serial {}",
                openssl_slash(issuer),
                hex(trim_serial(serial))
            )
        }
        AcHolder::EntityName(n) => format!("entityName {}", openssl_slash(n)),
    };
    Err(VomsError::HolderMismatch {
        ac_holder,
        cert: format!(
            "subject {} issuer {} serial {}",
            openssl_slash(cert.subject()),
            openssl_slash(cert.issuer()),
            hex(trim_serial(cert.raw_serial()))
        ),
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// RFC 5755 §5 item 4: the evaluation time within the validity period, with `skew` of
/// tolerance on both ends (VOMS C++ allows 5 minutes).
pub(crate) fn check_time(
    ac: &ParsedAc<'_>,
    now: OffsetDateTime,
    skew: Duration,
) -> Result<(), VomsError> {
    if now < ac.not_before - skew {
        return Err(VomsError::NotYetValid {
            not_before: rfc3339(ac.not_before),
        });
    }
    if now > ac.not_after + skew {
        return Err(VomsError::Expired {
            not_after: rfc3339(ac.not_after),
        });
    }
    Ok(())
}

/// Extensions this module understands (and so may accept when critical).
fn understood(ext_oid: &asn1_rs::Oid<'_>) -> bool {
    [
        oids::TARGET_INFORMATION,
        oids::NO_REV_AVAIL,
        oids::AUTHORITY_KEY_IDENTIFIER,
        oids::VOMS_AA_CERTS,
        oids::VOMS_GENERIC_ATTRIBUTES,
    ]
    .iter()
    .any(|o| o == ext_oid)
}

/// RFC 5755 §4.3 (unknown critical extension → reject) and §4.3.2 (targets).
pub(crate) fn check_extensions(
    ac: &ParsedAc<'_>,
    host_fqdn: Option<&str>,
) -> Result<(), VomsError> {
    if let Some(e) = ac
        .extensions
        .iter()
        .find(|e| e.critical && !understood(&e.oid))
    {
        return Err(VomsError::UnknownCriticalExtension(e.oid.to_id_string()));
    }
    if let Some(targets) = &ac.targets {
        let host = host_fqdn.ok_or_else(|| VomsError::TargetedNoHost(targets.clone()))?;
        let host_norm = host.trim_end_matches('.');
        if !targets
            .iter()
            .any(|t| t.trim_end_matches('.').eq_ignore_ascii_case(host_norm))
        {
            return Err(VomsError::TargetMismatch {
                host: host.to_owned(),
                targets: targets.clone(),
            });
        }
    }
    Ok(())
}

/// All checks, in the order that gives the most useful reason: algorithm, issuer trust and
/// signature (is it authentic at all?), then holder, time, extensions.
pub(crate) fn check(
    ac: &ParsedAc<'_>,
    holder: &X509Certificate<'_>,
    ctx: &VomsContext<'_>,
) -> Result<(), VomsError> {
    check_algorithm(&ac.signature_algorithm, &ctx.algorithms)?;
    trust::establish(ac, ctx)?;
    check_holder(ac, holder)?;
    check_time(ac, ctx.now, ctx.clock_skew)?;
    check_extensions(ac, ctx.host_fqdn)
}
