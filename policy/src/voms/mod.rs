//! VOMS attribute certificates: parse (RFC 5755 + the VOMS AC profile, OGF GFD.182) and verify.
//!
//! A VOMS proxy carries, in its proxy-certificate extension 1.3.6.1.4.1.8005.100.100.5, the
//! attribute certificate (AC) a VOMS server (the attribute authority, AA) issued for the user's
//! end-entity certificate. [`verify_ac`] turns that extension into a [`Voms`]: the VO, FQANs
//! (AC order, long form), generic attributes, and whether the AC is trustworthy — with the
//! reason when it is not. A rejected AC still reports the FQANs it claims (bans must see them;
//! mapping uses only those of a valid AC, see [`crate::Identity::verified_fqans`]); an
//! unparseable one reports none.
//!
//! - [`parse`]: untrusted bytes → [`ParsedAc`], no I/O, never panics (the fuzzing entry point).
//! - [`verify`]: the chain's algorithm policy, holder binding, validity, targets, critical extensions.
//! - [`trust`]: the vomsdir (`<vo>/<host>.lsc` or AA certificates) and the AC signature.
//!
//! Only the first AC of the extension is used (the VOMS server contacted first); VOMS proxies
//! with ACs from several VOs are rare, and [`split_ac_extension`] exposes the others.

use std::path::Path;

use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;

use crate::credentials::algorithms::AlgorithmPolicy;
use crate::identity::Voms;

mod der;
pub mod error;
pub mod fqan;
pub mod parse;
pub mod trust;
pub mod verify;

pub use error::VomsError;
pub use fqan::PolicyAuthority;
pub use parse::{parse_ac, split_ac_extension, AcExtension, AcHolder, GenericAttribute, ParsedAc};

/// Object identifiers of the VOMS AC profile and of RFC 5755.
pub mod oids {
    use asn1_rs::{oid, Oid};

    /// Proxy certificate extension holding the ACs (`SEQUENCE OF SEQUENCE OF AC`).
    pub const VOMS_AC_EXTENSION: Oid<'static> = oid!(1.3.6 .1 .4 .1 .8005 .100 .100 .5);
    /// AC attribute with the FQANs (IetfAttrSyntax, policyAuthority `vo://host:port`).
    pub const VOMS_FQANS: Oid<'static> = oid!(1.3.6 .1 .4 .1 .8005 .100 .100 .4);
    /// AC extension with the AA certificate chain.
    pub const VOMS_AA_CERTS: Oid<'static> = oid!(1.3.6 .1 .4 .1 .8005 .100 .100 .10);
    /// AC extension with the generic attributes.
    pub const VOMS_GENERIC_ATTRIBUTES: Oid<'static> = oid!(1.3.6 .1 .4 .1 .8005 .100 .100 .11);
    /// id-ce-targetInformation (RFC 5755 §4.3.2).
    pub const TARGET_INFORMATION: Oid<'static> = oid!(2.5.29 .55);
    /// id-ce-noRevAvail (RFC 5755 §4.3.6).
    pub const NO_REV_AVAIL: Oid<'static> = oid!(2.5.29 .56);
    /// id-ce-authorityKeyIdentifier (RFC 5280 §4.2.1.1, RFC 5755 §4.3.3).
    pub const AUTHORITY_KEY_IDENTIFIER: Oid<'static> = oid!(2.5.29 .35);
}

/// What AC verification needs from its caller (the proxy chain verifier).
pub struct VomsContext<'a> {
    /// The vomsdir: `<vomsdir>/<vo>/<host>.lsc`, or AA certificates in `<vomsdir>/<vo>/` or
    /// `<vomsdir>/`.
    pub vomsdir: &'a Path,
    /// Verification time (injectable for tests and `pilotbox verify --at`).
    pub now: OffsetDateTime,
    /// This host's FQDN: a targeted AC must name it. `None` rejects every targeted AC.
    pub host_fqdn: Option<&'a str>,
    /// Tolerance on the AC validity period (VOMS uses 5 minutes).
    pub clock_skew: Duration,
    /// Checks a VOMS server (AA) certificate chain (leaf first) against the trust anchors:
    /// signatures, validity, CRLs. Provided by the chain verifier.
    pub verify_aa_chain: &'a dyn Fn(&[X509Certificate<'_>]) -> Result<(), String>,
    /// The chain verifier's algorithm policy, applied unchanged to the AC signature and the AA
    /// key (allowed signature algorithms, minimum RSA size); `verify_aa_chain` applies it to the
    /// AA's certificate chain.
    pub algorithms: AlgorithmPolicy,
}

/// The DER value (inside the OCTET STRING) of the VOMS AC extension of `cert`, if present.
pub fn find_ac_extension<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find(|e| e.oid == oids::VOMS_AC_EXTENSION)
        .map(|e| e.value)
}

/// The AC of a chain (leaf first): the VOMS extension of the certificate nearest the leaf
/// that carries one, with its position (docs/design.md: a plain proxy delegated from a VOMS proxy
/// keeps its VO and FQANs; VOMS C++ searches the whole chain the same way).
pub fn find_ac_in_chain<'a>(chain: &'a [X509Certificate<'_>]) -> Option<(usize, &'a [u8])> {
    chain
        .iter()
        .enumerate()
        .find_map(|(i, c)| find_ac_extension(c).map(|e| (i, e)))
}

/// Runs every trust check on an already parsed AC: algorithm, issuer trust and signature,
/// holder, validity, extensions (in that order; the first failure is the reason).
pub fn verify_parsed(
    ac: &ParsedAc<'_>,
    holder: &X509Certificate<'_>,
    ctx: &VomsContext<'_>,
) -> Result<(), VomsError> {
    verify::check(ac, holder, ctx)
}

/// Parses and verifies the AC in `ac_ext_value_der` (the value of extension
/// 1.3.6.1.4.1.8005.100.100.5) for `holder`, the end-entity (user) certificate of the chain.
///
/// Never fails: a bad AC gives `valid: false` and the reason (FQANs kept when the AC could be
/// parsed, empty when not).
pub fn verify_ac(
    ac_ext_value_der: &[u8],
    holder: &X509Certificate<'_>,
    ctx: &VomsContext<'_>,
) -> Voms {
    let unparseable = |e: VomsError| Voms {
        vo: String::new(),
        fqans: Vec::new(),
        generic: Vec::new(),
        valid: false,
        reason: Some(e.to_string()),
        not_after: None,
    };
    let first = match split_ac_extension(ac_ext_value_der) {
        Ok(acs) => acs[0],
        Err(e) => return unparseable(e),
    };
    let ac = match parse_ac(first) {
        Ok(ac) => ac,
        Err(e) => return unparseable(e),
    };
    let outcome = verify_parsed(&ac, holder, ctx);
    Voms {
        vo: ac.policy_authority.vo.clone(),
        fqans: ac.fqans.clone(),
        generic: ac
            .generic
            .iter()
            .map(|g| (g.name.clone(), g.value.clone()))
            .collect(),
        valid: outcome.is_ok(),
        reason: outcome.err().map(|e| e.to_string()),
        not_after: Some(ac.not_after),
    }
}
