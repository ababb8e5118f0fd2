//! Parsing of VOMS attribute certificates from untrusted bytes (RFC 5755 §4, VOMS AC profile).
//!
//! ```text
//! AttributeCertificate ::= SEQUENCE { acinfo AttributeCertificateInfo,
//!     signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
//! AttributeCertificateInfo ::= SEQUENCE { version AttCertVersion (v2),
//!     holder Holder, issuer AttCertIssuer, signature AlgorithmIdentifier,
//!     serialNumber CertificateSerialNumber, attrCertValidityPeriod AttCertValidityPeriod,
//!     attributes SEQUENCE OF Attribute, issuerUniqueID UniqueIdentifier OPTIONAL,
//!     extensions Extensions OPTIONAL }
//! ```
//! No I/O and no trust decisions here: [`super::verify`] does those. Everything is bounded by
//! the input length ([`MAX_AC_EXTENSION_LEN`]).

use asn1_rs::{BitString, Class, FromDer, Oid};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::x509::{AlgorithmIdentifier, X509Name};

use super::der::{der_err, tag, Tlv};
use super::error::VomsError;
use super::fqan::{parse_policy_authority, to_long_form, PolicyAuthority};
use super::oids;

/// Largest VOMS extension value we parse. Real ones are 2–8 KiB (an AC plus one AA certificate).
pub const MAX_AC_EXTENSION_LEN: usize = 256 * 1024;

/// RFC 5755 §4.2.2 Holder, restricted to what VOMS issues.
#[derive(Debug, Clone, PartialEq)]
pub enum AcHolder<'a> {
    /// `baseCertificateID`: the issuer name and serial of the holder's certificate. VOMS writes
    /// the holder certificate's *subject* in the issuer field; see [`super::verify`].
    BaseCertificateId {
        issuer: X509Name<'a>,
        serial: &'a [u8],
    },
    /// `entityName`: the holder certificate's subject.
    EntityName(X509Name<'a>),
}

/// A VOMS generic attribute (extension 1.3.6.1.4.1.8005.100.100.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericAttribute {
    pub name: String,
    pub value: String,
    pub qualifier: String,
}

/// An AC extension as found (RFC 5280 §4.1 `Extension`).
#[derive(Debug, Clone, PartialEq)]
pub struct AcExtension<'a> {
    pub oid: Oid<'a>,
    pub critical: bool,
    pub value: &'a [u8],
}

/// A structurally valid VOMS AC. Nothing in it is trusted yet.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedAc<'a> {
    /// The whole AttributeCertificate encoding.
    pub raw: &'a [u8],
    /// The DER of `AttributeCertificateInfo`: what the signature covers.
    pub signed_part: &'a [u8],
    pub holder: AcHolder<'a>,
    /// The single directoryName of the v2Form issuer.
    pub issuer: X509Name<'a>,
    pub signature_algorithm: AlgorithmIdentifier<'a>,
    pub signature_value: BitString<'a>,
    /// Serial number content octets (big-endian, DER-minimal).
    pub serial: &'a [u8],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub policy_authority: PolicyAuthority,
    /// FQANs in AC order, long form.
    pub fqans: Vec<String>,
    /// Generic attributes in AC order.
    pub generic: Vec<GenericAttribute>,
    /// The AA certificate chain embedded by the VOMS server (leaf first), possibly empty.
    pub aa_certs: Vec<X509Certificate<'a>>,
    /// Target names of the targetInformation extension, `None` when the AC is not targeted.
    pub targets: Option<Vec<String>>,
    /// All extensions, in order.
    pub extensions: Vec<AcExtension<'a>>,
}

/// Splits the value of the proxy extension 1.3.6.1.4.1.8005.100.100.5 into its ACs.
///
/// VOMS encodes it as `SEQUENCE OF SEQUENCE OF AttributeCertificate` (`AC_SEQ` inside a
/// sequence): one inner sequence per VOMS server contacted. Returns the AC encodings in order.
pub fn split_ac_extension(ext_value: &[u8]) -> Result<Vec<&[u8]>, VomsError> {
    if ext_value.len() > MAX_AC_EXTENSION_LEN {
        return Err(VomsError::TooLarge {
            len: ext_value.len(),
            limit: MAX_AC_EXTENSION_LEN,
        });
    }
    let outer =
        Tlv::parse_exact(ext_value, "VOMS extension")?.expect(tag::SEQUENCE, "VOMS extension")?;
    let mut acs = Vec::new();
    let mut seqs = outer.children();
    while let Some(inner) = seqs.next_opt("VOMS AC sequence")? {
        let inner = inner.expect(tag::SEQUENCE, "VOMS AC sequence")?;
        let mut it = inner.children();
        while let Some(ac) = it.next_opt("AttributeCertificate")? {
            acs.push(ac.expect(tag::SEQUENCE, "AttributeCertificate")?.raw);
        }
    }
    if acs.is_empty() {
        return Err(VomsError::NoAc);
    }
    Ok(acs)
}

/// Parses one DER `AttributeCertificate` (RFC 5755 §4.1) of the VOMS profile.
pub fn parse_ac(der: &[u8]) -> Result<ParsedAc<'_>, VomsError> {
    if der.len() > MAX_AC_EXTENSION_LEN {
        return Err(VomsError::TooLarge {
            len: der.len(),
            limit: MAX_AC_EXTENSION_LEN,
        });
    }
    let ac = Tlv::parse_exact(der, "AttributeCertificate")?
        .expect(tag::SEQUENCE, "AttributeCertificate")?;
    let mut top = ac.children();
    let acinfo = top.next("acinfo")?.expect(tag::SEQUENCE, "acinfo")?;
    let outer_alg = top
        .next("signatureAlgorithm")?
        .expect(tag::SEQUENCE, "signatureAlgorithm")?;
    let sig = top
        .next("signatureValue")?
        .expect(tag::BIT_STRING, "signatureValue")?;
    top.finish("AttributeCertificate")?;
    let (_, signature_value) =
        BitString::from_der(sig.raw).map_err(|e| der_err("signatureValue", e.to_string()))?;
    // Signatures are whole octets (RFC 5280 §4.1.1.3 by reference): no unused bits.
    if signature_value.unused_bits != 0 {
        return Err(der_err("signatureValue", "unused bits in a signature"));
    }

    let mut f = acinfo.children();
    // §4.2.1 version: v2(1) is the only value.
    let version = f.next("version")?.integer("version")?;
    if version != [1] {
        return Err(VomsError::Version(hex(version)));
    }
    let holder = parse_holder(f.next("holder")?)?;
    let issuer = parse_issuer(f.next("issuer")?)?;
    // §4.2.4: the inner algorithm must be the outer one, byte for byte.
    let inner_alg = f.next("signature")?.expect(tag::SEQUENCE, "signature")?;
    if inner_alg.raw != outer_alg.raw {
        return Err(VomsError::AlgorithmMismatch);
    }
    let (_, signature_algorithm) = AlgorithmIdentifier::from_der(outer_alg.raw)
        .map_err(|e| der_err("signatureAlgorithm", e.to_string()))?;
    let serial = parse_serial(f.next("serialNumber")?)?;
    let (not_before, not_after) = parse_validity(f.next("attrCertValidityPeriod")?)?;
    let attributes = f.next("attributes")?.expect(tag::SEQUENCE, "attributes")?;
    let policy_and_fqans = parse_attributes(attributes)?;
    // issuerUniqueID (BIT STRING) is tolerated and ignored, as VOMS does.
    f.next_if(Class::Universal, tag::BIT_STRING, "issuerUniqueID")?;
    let extensions = match f.next_opt("extensions")? {
        Some(e) => parse_extensions(e.expect(tag::SEQUENCE, "extensions")?)?,
        None => Vec::new(),
    };
    f.finish("acinfo")?;

    let (policy_authority, fqans) = policy_and_fqans;
    let mut generic = Vec::new();
    let mut aa_certs = Vec::new();
    let mut targets = None;
    for ext in &extensions {
        if ext.oid == oids::VOMS_GENERIC_ATTRIBUTES {
            generic = parse_generic_attributes(ext.value)?;
        } else if ext.oid == oids::VOMS_AA_CERTS {
            aa_certs = parse_aa_certs(ext.value)?;
        } else if ext.oid == oids::TARGET_INFORMATION {
            targets = Some(parse_targets(ext.value)?);
        }
    }

    Ok(ParsedAc {
        raw: ac.raw,
        signed_part: acinfo.raw,
        holder,
        issuer,
        signature_algorithm,
        signature_value,
        serial,
        not_before,
        not_after,
        policy_authority,
        fqans,
        generic,
        aa_certs,
        targets,
        extensions,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// `GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName`, as content bytes.
fn general_names<'a>(
    content: &'a [u8],
    what: &'static str,
) -> Result<Vec<GeneralName<'a>>, VomsError> {
    let mut rest = content;
    let mut names = Vec::new();
    while !rest.is_empty() {
        let (r, gn) = <GeneralName as FromDer<X509Error>>::from_der(rest)
            .map_err(|e| der_err(what, e.to_string()))?;
        names.push(gn);
        rest = r;
    }
    if names.is_empty() {
        return Err(der_err(what, "empty GeneralNames"));
    }
    Ok(names)
}

/// The one directoryName a VOMS holder/issuer GeneralNames must contain.
fn single_directory_name<'a>(
    content: &'a [u8],
    what: &'static str,
) -> Result<Option<X509Name<'a>>, VomsError> {
    let mut names = general_names(content, what)?;
    if names.len() != 1 {
        return Ok(None);
    }
    match names.pop() {
        Some(GeneralName::DirectoryName(n)) => Ok(Some(n)),
        _ => Ok(None),
    }
}

/// §4.2.2 `Holder ::= SEQUENCE { baseCertificateID [0] IssuerSerial OPTIONAL,
/// entityName [1] GeneralNames OPTIONAL, objectDigestInfo [2] ObjectDigestInfo OPTIONAL }`.
fn parse_holder(t: Tlv<'_>) -> Result<AcHolder<'_>, VomsError> {
    let t = t.expect(tag::SEQUENCE, "holder")?;
    let mut it = t.children();
    let first = it.next("holder")?;
    let holder = if first.is_context(0) && first.constructed {
        // IssuerSerial ::= SEQUENCE { issuer GeneralNames, serial INTEGER, issuerUID OPTIONAL }
        let mut is = first.children();
        let names = is
            .next("holder issuer")?
            .expect(tag::SEQUENCE, "holder issuer")?;
        let issuer = single_directory_name(names.content, "holder issuer")?.ok_or(
            VomsError::HolderForm("baseCertificateID issuer is not one directoryName"),
        )?;
        let serial = is.next("holder serial")?.integer("holder serial")?;
        if is.next_opt("holder issuerUID")?.is_some() {
            return Err(VomsError::HolderForm("issuerUID is not supported"));
        }
        AcHolder::BaseCertificateId { issuer, serial }
    } else if first.is_context(1) && first.constructed {
        let name = single_directory_name(first.content, "holder entityName")?
            .ok_or(VomsError::HolderForm("entityName is not one directoryName"))?;
        AcHolder::EntityName(name)
    } else {
        return Err(VomsError::HolderForm(
            "neither baseCertificateID nor entityName",
        ));
    };
    if it.next_opt("holder")?.is_some() {
        return Err(VomsError::HolderForm(
            "more than one holder form (or objectDigestInfo)",
        ));
    }
    Ok(holder)
}

/// §4.2.3: `AttCertIssuer ::= CHOICE { v1Form GeneralNames, v2Form [0] V2Form }`; ACs MUST use
/// v2Form with exactly one directoryName and neither baseCertificateID nor objectDigestInfo.
fn parse_issuer(t: Tlv<'_>) -> Result<X509Name<'_>, VomsError> {
    if !(t.is_context(0) && t.constructed) {
        return Err(VomsError::IssuerForm("v1Form is not allowed"));
    }
    let mut it = t.children();
    let names = it.next("issuerName")?;
    if !names.is_universal(tag::SEQUENCE) {
        return Err(VomsError::IssuerForm("issuerName missing"));
    }
    if it.next_opt("v2Form")?.is_some() {
        return Err(VomsError::IssuerForm(
            "baseCertificateID/objectDigestInfo present",
        ));
    }
    single_directory_name(names.content, "issuerName")?
        .ok_or(VomsError::IssuerForm("issuerName is not one directoryName"))
}

/// §4.2.5: a positive integer of at most 20 octets.
fn parse_serial(t: Tlv<'_>) -> Result<&[u8], VomsError> {
    let s = t.integer("serialNumber")?;
    if s[0] & 0x80 != 0 {
        return Err(VomsError::Serial("negative"));
    }
    let significant = if s[0] == 0 { &s[1..] } else { s };
    if significant.len() > 20 {
        return Err(VomsError::Serial("longer than 20 octets"));
    }
    Ok(s)
}

/// §4.2.6: `AttCertValidityPeriod ::= SEQUENCE { notBeforeTime, notAfterTime GeneralizedTime }`.
fn parse_validity(t: Tlv<'_>) -> Result<(OffsetDateTime, OffsetDateTime), VomsError> {
    let t = t.expect(tag::SEQUENCE, "attrCertValidityPeriod")?;
    let mut it = t.children();
    let nb = generalized_time(it.next("notBeforeTime")?, "notBeforeTime")?;
    let na = generalized_time(it.next("notAfterTime")?, "notAfterTime")?;
    it.finish("attrCertValidityPeriod")?;
    Ok((nb, na))
}

fn generalized_time(t: Tlv<'_>, what: &'static str) -> Result<OffsetDateTime, VomsError> {
    if !t.is_universal(tag::GENERALIZED_TIME) {
        return Err(der_err(what, "not a GeneralizedTime (RFC 5755 §4.2.6)"));
    }
    let (_, gt) =
        asn1_rs::GeneralizedTime::from_der(t.raw).map_err(|e| der_err(what, e.to_string()))?;
    gt.utc_datetime().map_err(|e| der_err(what, e.to_string()))
}

/// §4.2.7 attributes: the VOMS FQAN attribute must be present exactly once; other attribute
/// types are ignored (VOMS issues none), duplicates of any type are rejected.
fn parse_attributes(t: Tlv<'_>) -> Result<(PolicyAuthority, Vec<String>), VomsError> {
    let mut seen: Vec<Oid<'_>> = Vec::new();
    let mut found = None;
    let mut it = t.children();
    while let Some(attr) = it.next_opt("Attribute")? {
        let mut a = attr.expect(tag::SEQUENCE, "Attribute")?.children();
        let oid = a.next("Attribute type")?.oid("Attribute type")?;
        let values = a
            .next("Attribute values")?
            .expect(tag::SET, "Attribute values")?;
        a.finish("Attribute")?;
        if seen.contains(&oid) {
            return Err(VomsError::Duplicate {
                what: "attribute",
                oid: oid.to_id_string(),
            });
        }
        if oid == oids::VOMS_FQANS {
            found = Some(parse_ietf_attr(values)?);
        }
        seen.push(oid);
    }
    found.ok_or(VomsError::NoFqanAttribute)
}

/// RFC 5755 §4.4.5 `IetfAttrSyntax ::= SEQUENCE { policyAuthority [0] GeneralNames OPTIONAL,
/// values SEQUENCE OF CHOICE { octets OCTET STRING, oid OBJECT IDENTIFIER, string UTF8String } }`.
/// VOMS requires one IetfAttrSyntax, one URI policyAuthority and OCTET STRING values.
fn parse_ietf_attr(set: Tlv<'_>) -> Result<(PolicyAuthority, Vec<String>), VomsError> {
    let mut values = set.children();
    let syntax = values
        .next("IetfAttrSyntax")?
        .expect(tag::SEQUENCE, "IetfAttrSyntax")?;
    if !values.is_empty() {
        return Err(VomsError::PolicyAuthority(
            "more than one IetfAttrSyntax value".into(),
        ));
    }
    let mut it = syntax.children();
    let pa = it
        .next_if(Class::ContextSpecific, 0, "policyAuthority")?
        .ok_or_else(|| VomsError::PolicyAuthority("missing".into()))?;
    let names = general_names(pa.content, "policyAuthority")?;
    let uri = match names.as_slice() {
        [GeneralName::URI(u)] => *u,
        _ => return Err(VomsError::PolicyAuthority("not exactly one URI".into())),
    };
    let authority = parse_policy_authority(uri)?;
    let list = it
        .next("IetfAttrSyntax values")?
        .expect(tag::SEQUENCE, "IetfAttrSyntax values")?;
    it.finish("IetfAttrSyntax")?;
    let mut fqans = Vec::new();
    let mut items = list.children();
    while let Some(v) = items.next_opt("FQAN")? {
        let fqan = v.octets_utf8("FQAN")?;
        fqans.push(to_long_form(fqan, &authority.vo)?);
    }
    Ok((authority, fqans))
}

/// RFC 5280 §4.1 `Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
/// extnValue OCTET STRING }`; each extension at most once (§4.2).
fn parse_extensions(t: Tlv<'_>) -> Result<Vec<AcExtension<'_>>, VomsError> {
    let mut out: Vec<AcExtension<'_>> = Vec::new();
    let mut it = t.children();
    while let Some(e) = it.next_opt("Extension")? {
        let mut f = e.expect(tag::SEQUENCE, "Extension")?.children();
        let oid = f.next("extnID")?.oid("extnID")?;
        let critical = match f.next_if(Class::Universal, tag::BOOLEAN, "critical")? {
            Some(b) => b.boolean("critical")?,
            None => false,
        };
        let value = f.next("extnValue")?.octets("extnValue")?;
        f.finish("Extension")?;
        if out.iter().any(|x| x.oid == oid) {
            return Err(VomsError::Duplicate {
                what: "extension",
                oid: oid.to_id_string(),
            });
        }
        out.push(AcExtension {
            oid,
            critical,
            value,
        });
    }
    Ok(out)
}

/// VOMS `AC_FULL_ATTRIBUTES ::= SEQUENCE { providers SEQUENCE OF AC_ATT_HOLDER }`,
/// `AC_ATT_HOLDER ::= SEQUENCE { grantor GeneralNames, attributes SEQUENCE OF AC_ATTRIBUTE }`,
/// `AC_ATTRIBUTE ::= SEQUENCE { name, value, qualifier OCTET STRING }`.
fn parse_generic_attributes(value: &[u8]) -> Result<Vec<GenericAttribute>, VomsError> {
    let wrap = |e: VomsError| VomsError::GenericAttributes(e.to_string());
    let full = Tlv::parse_exact(value, "generic attributes")
        .and_then(|t| t.expect(tag::SEQUENCE, "generic attributes"))
        .map_err(wrap)?;
    let mut out = Vec::new();
    let mut f = full.children();
    let providers = f
        .next("providers")
        .and_then(|t| t.expect(tag::SEQUENCE, "providers"))
        .map_err(wrap)?;
    f.finish("generic attributes").map_err(wrap)?;
    let mut ps = providers.children();
    while let Some(holder) = ps.next_opt("AC_ATT_HOLDER").map_err(wrap)? {
        let mut h = holder
            .expect(tag::SEQUENCE, "AC_ATT_HOLDER")
            .map_err(wrap)?
            .children();
        h.next("grantor")
            .and_then(|t| t.expect(tag::SEQUENCE, "grantor"))
            .map_err(wrap)?;
        let attrs = h
            .next("attributes")
            .and_then(|t| t.expect(tag::SEQUENCE, "attributes"))
            .map_err(wrap)?;
        h.finish("AC_ATT_HOLDER").map_err(wrap)?;
        let mut it = attrs.children();
        while let Some(a) = it.next_opt("AC_ATTRIBUTE").map_err(wrap)? {
            out.push(parse_generic_attribute(a).map_err(wrap)?);
        }
    }
    Ok(out)
}

fn parse_generic_attribute(a: Tlv<'_>) -> Result<GenericAttribute, VomsError> {
    let mut f = a.expect(tag::SEQUENCE, "AC_ATTRIBUTE")?.children();
    let name = f.next("name")?.octets_utf8("name")?.to_owned();
    let value = f.next("value")?.octets_utf8("value")?.to_owned();
    let qualifier = f.next("qualifier")?.octets_utf8("qualifier")?.to_owned();
    f.finish("AC_ATTRIBUTE")?;
    Ok(GenericAttribute {
        name,
        value,
        qualifier,
    })
}

/// VOMS `AC_CERTS ::= SEQUENCE { stackcert SEQUENCE OF Certificate }` (leaf first).
fn parse_aa_certs(value: &[u8]) -> Result<Vec<X509Certificate<'_>>, VomsError> {
    let wrap = |e: VomsError| VomsError::AaCertificates(e.to_string());
    let outer = Tlv::parse_exact(value, "AC_CERTS")
        .and_then(|t| t.expect(tag::SEQUENCE, "AC_CERTS"))
        .map_err(wrap)?;
    let mut o = outer.children();
    let stack = o
        .next("stackcert")
        .and_then(|t| t.expect(tag::SEQUENCE, "stackcert"))
        .map_err(wrap)?;
    o.finish("AC_CERTS").map_err(wrap)?;
    let mut certs = Vec::new();
    let mut it = stack.children();
    while let Some(c) = it.next_opt("Certificate").map_err(wrap)? {
        let (_, cert) = X509Certificate::from_der(c.raw)
            .map_err(|e| VomsError::AaCertificates(format!("certificate {}: {e}", certs.len())))?;
        certs.push(cert);
    }
    Ok(certs)
}

/// RFC 5755 §4.3.2 `Targets ::= SEQUENCE OF Target`, the extension value being a
/// `SEQUENCE OF Targets`. RFC `Target` is a CHOICE (`targetName [0] GeneralName`, …); VOMS
/// encodes it as a SEQUENCE of explicitly tagged optionals. Both are accepted. Only names
/// (URI or dNSName) are kept: target groups and certificates never match a host name.
fn parse_targets(value: &[u8]) -> Result<Vec<String>, VomsError> {
    let wrap = |e: VomsError| VomsError::Targets(e.to_string());
    let outer = Tlv::parse_exact(value, "SeqOfTargets")
        .and_then(|t| t.expect(tag::SEQUENCE, "SeqOfTargets"))
        .map_err(wrap)?;
    let mut names = Vec::new();
    let mut seqs = outer.children();
    while let Some(targets) = seqs.next_opt("Targets").map_err(wrap)? {
        let targets = targets.expect(tag::SEQUENCE, "Targets").map_err(wrap)?;
        let mut it = targets.children();
        while let Some(t) = it.next_opt("Target").map_err(wrap)? {
            let candidates: Vec<Tlv<'_>> = if t.is_universal(tag::SEQUENCE) && t.constructed {
                let mut v = Vec::new();
                let mut inner = t.children();
                while let Some(x) = inner.next_opt("Target").map_err(wrap)? {
                    v.push(x);
                }
                v
            } else {
                vec![t]
            };
            for c in candidates {
                if c.is_context(0) && c.constructed {
                    // targetName [0] EXPLICIT GeneralName
                    let gn = general_names(c.content, "targetName").map_err(wrap)?;
                    for n in gn {
                        match n {
                            GeneralName::URI(s) | GeneralName::DNSName(s) => {
                                names.push(s.to_owned())
                            }
                            _ => names.push(String::from("<non-DNS target name>")),
                        }
                    }
                } else if !(c.class == Class::ContextSpecific && (c.tag == 1 || c.tag == 2)) {
                    return Err(VomsError::Targets(format!(
                        "unexpected element tag {}",
                        c.tag
                    )));
                }
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncations_never_panic() {
        let samples: [&[u8]; 6] = [
            b"",
            b"\x30",
            b"\x30\x80",
            b"\x30\x03\x30\x01\x30",
            b"\x04\x00",
            b"\x30\x00",
        ];
        for s in samples {
            assert!(split_ac_extension(s).is_err());
            assert!(parse_ac(s).is_err());
        }
    }

    #[test]
    fn empty_extension_has_no_ac() {
        assert_eq!(
            split_ac_extension(b"\x30\x02\x30\x00"),
            Err(VomsError::NoAc)
        );
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let big = vec![0u8; MAX_AC_EXTENSION_LEN + 1];
        assert!(matches!(
            split_ac_extension(&big),
            Err(VomsError::TooLarge { .. })
        ));
        assert!(matches!(parse_ac(&big), Err(VomsError::TooLarge { .. })));
    }
}
