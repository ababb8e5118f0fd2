//! One X.509 certificate, parsed once (x509-parser) into the owned facts the checks need, so the
//! chain logic does not juggle borrowed parser structures.

use super::error::CredentialError;
use super::proxy::{OID_PCI_DRAFT, OID_PCI_RFC3820};
use crate::dn::Dn;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

/// The VOMS attribute-certificate extension (a SEQUENCE OF AC lists).
pub const OID_VOMS_AC: &str = "1.3.6.1.4.1.8005.100.100.5";

/// Extensions a critical flag does not stop us on: we either process them or they only constrain
/// things this verifier does not use (certificate policies are not processed).
const UNDERSTOOD: &[&str] = &[
    "2.5.29.14",
    "2.5.29.15",
    "2.5.29.17",
    "2.5.29.18",
    "2.5.29.19",
    "2.5.29.31",
    "2.5.29.32",
    "2.5.29.35",
    "2.5.29.36",
    "2.5.29.37",
    "2.5.29.54",
    "1.3.6.1.5.5.7.1.1",
    "2.16.840.1.113730.1.1",
    OID_PCI_RFC3820,
    OID_PCI_DRAFT,
    OID_VOMS_AC,
];

/// keyUsage bits this verifier checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage {
    pub digital_signature: bool,
    pub key_cert_sign: bool,
    pub crl_sign: bool,
}

/// A parsed certificate.
#[derive(Debug, Clone)]
pub struct Cert {
    pub der: Vec<u8>,
    pub subject: Dn,
    pub issuer: Dn,
    pub subject_slash: String,
    pub issuer_slash: String,
    /// [`Dn::comparison_key`] of subject and issuer: what name chaining compares.
    pub subject_key: String,
    pub issuer_key: String,
    pub not_before: i64,
    pub not_after: i64,
    /// Serial number, big-endian without leading zeros.
    pub serial: Vec<u8>,
    /// (cA, pathLenConstraint) when basicConstraints is present.
    pub basic_constraints: Option<(bool, Option<u32>)>,
    pub key_usage: Option<KeyUsage>,
    pub has_alt_names: bool,
    pub pci_rfc: Option<Vec<u8>>,
    pub pci_rfc_critical: bool,
    pub pci_draft: Option<Vec<u8>>,
    pub voms_ac: Option<Vec<u8>>,
    pub unknown_critical: Option<String>,
    pub sig_alg: String,
    pub signature: Vec<u8>,
    pub tbs: Vec<u8>,
    pub spki: Vec<u8>,
    pub self_signed_name: bool,
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    b.iter().copied().skip_while(|x| *x == 0).collect()
}

impl Cert {
    /// Parses one DER certificate. `index` is its position in the file, for messages.
    pub fn from_der(der: &[u8], index: usize) -> Result<Cert, CredentialError> {
        let malformed = |detail: String| CredentialError::MalformedCertificate { index, detail };
        let (rest, x) = X509Certificate::from_der(der).map_err(|e| malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(malformed("trailing bytes after the certificate".into()));
        }
        Cert::from_x509(&x, &der[..der.len() - rest.len()]).map_err(malformed)
    }

    /// From an already parsed certificate (the VOMS seam hands us those).
    pub fn from_x509(x: &X509Certificate<'_>, der: &[u8]) -> Result<Cert, String> {
        let subject = Dn::from_x509(x.subject());
        let issuer = Dn::from_x509(x.issuer());
        let mut c = Cert {
            der: der.to_vec(),
            subject_slash: subject.to_slash(),
            issuer_slash: issuer.to_slash(),
            subject_key: subject.comparison_key(),
            issuer_key: issuer.comparison_key(),
            self_signed_name: subject.comparison_key() == issuer.comparison_key(),
            subject,
            issuer,
            not_before: x.validity().not_before.timestamp(),
            not_after: x.validity().not_after.timestamp(),
            serial: strip_zeros(x.raw_serial()),
            basic_constraints: None,
            key_usage: None,
            has_alt_names: false,
            pci_rfc: None,
            pci_rfc_critical: false,
            pci_draft: None,
            voms_ac: None,
            unknown_critical: None,
            sig_alg: x.signature_algorithm.algorithm.to_id_string(),
            signature: x.signature_value.data.to_vec(),
            tbs: x.tbs_certificate.as_ref().to_vec(),
            spki: x.public_key().raw.to_vec(),
        };
        let mut seen = std::collections::HashSet::new();
        for ext in x.extensions() {
            let oid = ext.oid.to_id_string();
            if !seen.insert(oid.clone()) {
                return Err(format!(
                    "extension {oid} appears twice (RFC 5280 section 4.2)"
                ));
            }
            match ext.parsed_extension() {
                ParsedExtension::ParseError { error }
                    if ext.critical
                        || matches!(
                            oid.as_str(),
                            "2.5.29.19" | "2.5.29.15" | "2.5.29.17" | "2.5.29.18"
                        ) =>
                {
                    return Err(format!("extension {oid} is malformed: {error}"));
                }
                ParsedExtension::BasicConstraints(bc) => {
                    c.basic_constraints = Some((bc.ca, bc.path_len_constraint))
                }
                ParsedExtension::KeyUsage(ku) => {
                    c.key_usage = Some(KeyUsage {
                        digital_signature: ku.digital_signature(),
                        key_cert_sign: ku.key_cert_sign(),
                        crl_sign: ku.crl_sign(),
                    })
                }
                ParsedExtension::SubjectAlternativeName(_)
                | ParsedExtension::IssuerAlternativeName(_) => c.has_alt_names = true,
                _ => {}
            }
            match oid.as_str() {
                OID_PCI_RFC3820 => {
                    c.pci_rfc = Some(ext.value.to_vec());
                    c.pci_rfc_critical = ext.critical;
                }
                OID_PCI_DRAFT => c.pci_draft = Some(ext.value.to_vec()),
                OID_VOMS_AC => c.voms_ac = Some(ext.value.to_vec()),
                _ => {}
            }
            if ext.critical && !UNDERSTOOD.contains(&oid.as_str()) && c.unknown_critical.is_none() {
                c.unknown_critical = Some(oid);
            }
        }
        Ok(c)
    }

    /// The subject public key, parsed from the stored DER.
    pub fn public_key(&self) -> Result<SubjectPublicKeyInfo<'_>, CredentialError> {
        SubjectPublicKeyInfo::from_der(&self.spki)
            .map(|(_, k)| k)
            .map_err(|e| CredentialError::MalformedCertificate {
                index: 0,
                detail: format!("public key of {}: {e}", self.subject_slash),
            })
    }

    /// basicConstraints cA is set.
    pub fn is_ca(&self) -> bool {
        self.basic_constraints.is_some_and(|bc| bc.0)
    }

    /// Carries a ProxyCertInfo extension (RFC or draft).
    pub fn has_pci(&self) -> bool {
        self.pci_rfc.is_some() || self.pci_draft.is_some()
    }

    /// Serial as upper-case hex (as CRL tools print it).
    pub fn serial_hex(&self) -> String {
        if self.serial.is_empty() {
            return "0".into();
        }
        self.serial.iter().map(|b| format!("{b:02X}")).collect()
    }
}
