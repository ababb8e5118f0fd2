//! Why a VOMS attribute certificate could not be parsed or did not verify.
//!
//! Each variant names the rule of RFC 5755 or of the VOMS AC profile that failed; the
//! `Display` text is what ends up in [`crate::Voms::reason`] and in `pilotbox verify --json`.

use thiserror::Error;

use crate::credentials::CredentialError;

/// A VOMS AC failure: either the bytes are not an AC we accept ([`VomsError::is_parse_error`])
/// or the AC is well formed but must not be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VomsError {
    // ---- structure (parse_ac): the AC content cannot be used at all ----
    /// The extension or AC is larger than we are willing to parse.
    #[error("AC data too large ({len} bytes, limit {limit})")]
    TooLarge { len: usize, limit: usize },
    /// A DER element is missing, has the wrong tag or a bad length.
    #[error("malformed AC: {what}: {why}")]
    Der { what: &'static str, why: String },
    /// The VOMS extension holds no AC.
    #[error("the VOMS extension holds no attribute certificate")]
    NoAc,
    /// RFC 5755 §4.2.1: only v2 (INTEGER 1) attribute certificates exist.
    #[error("unsupported AC version {0} (RFC 5755 requires v2)")]
    Version(String),
    /// RFC 5755 §4.2.2: the holder must be baseCertificateID or entityName (objectDigestInfo
    /// is not supported, as in VOMS).
    #[error("unsupported AC holder form: {0}")]
    HolderForm(&'static str),
    /// RFC 5755 §4.2.3: the issuer must be v2Form with exactly one directoryName.
    #[error("unsupported AC issuer form: {0}")]
    IssuerForm(&'static str),
    /// RFC 5755 §4.2.4: `AttributeCertificateInfo.signature` must equal `signatureAlgorithm`.
    #[error("AC signature algorithm differs between the signed part and the envelope")]
    AlgorithmMismatch,
    /// RFC 5755 §4.2.5: positive serial number of at most 20 octets.
    #[error("AC serial number invalid: {0}")]
    Serial(&'static str),
    /// An attribute type appears twice (RFC 5755 §4.2.7) or an extension twice (RFC 5280 §4.2).
    #[error("duplicate {what} {oid} in AC")]
    Duplicate { what: &'static str, oid: String },
    /// The VOMS FQAN attribute (1.3.6.1.4.1.8005.100.100.4) is absent.
    #[error("VOMS FQAN attribute (1.3.6.1.4.1.8005.100.100.4) missing from AC")]
    NoFqanAttribute,
    /// policyAuthority is not a single `vo://host:port` URI, or VO/host are unsafe names.
    #[error("bad VOMS policyAuthority: {0}")]
    PolicyAuthority(String),
    /// An FQAN is not `/vo[/group…][/Role=r][/Capability=c]`, or its root is not the VO.
    #[error("bad FQAN {fqan:?}: {why}")]
    Fqan { fqan: String, why: &'static str },
    /// The generic attributes extension (1.3.6.1.4.1.8005.100.100.11) is malformed.
    #[error("bad VOMS generic attributes: {0}")]
    GenericAttributes(String),
    /// The AA certificate extension (1.3.6.1.4.1.8005.100.100.10) is malformed.
    #[error("bad VOMS AA certificate list: {0}")]
    AaCertificates(String),
    /// The targetInformation extension (2.5.29.55) is malformed.
    #[error("bad AC targets extension: {0}")]
    Targets(String),

    // ---- verification: the AC is well formed but must not be trusted ----
    /// The AC signature, or the AA key that made it, refused by the chain's algorithm policy
    /// (`weak_algorithm`, `weak_key`, `unsupported_algorithm`), or a signature that does not
    /// verify (`bad_signature`): the same [`CredentialError`] and code the chain would give.
    #[error("AC signature refused: {}", .0.reason())]
    Signature(CredentialError),
    /// The holder of the AC is not the end-entity certificate of this proxy chain.
    #[error("AC holder ({ac_holder}) does not match the end-entity certificate ({cert})")]
    HolderMismatch { ac_holder: String, cert: String },
    #[error("AC not yet valid (notBefore {not_before})")]
    NotYetValid { not_before: String },
    #[error("AC not valid anymore (notAfter {not_after})")]
    Expired { not_after: String },
    /// RFC 5755 §4.3.2: a targeted AC is only valid at the targets it names.
    #[error("AC is targeted at {targets:?}, not at this host {host}")]
    TargetMismatch { host: String, targets: Vec<String> },
    #[error("AC is targeted at {0:?} but no host FQDN is configured to check it against")]
    TargetedNoHost(Vec<String>),
    /// RFC 5755 §4.3: an AC with a critical extension we do not understand is rejected.
    #[error("unknown critical AC extension {0}")]
    UnknownCriticalExtension(String),
    /// The AC carries no AA certificate and no certificate in the vomsdir signs it.
    #[error("no trusted VOMS server certificate for VO {vo} (host {host}) in {vomsdir}")]
    NoTrust {
        vo: String,
        host: String,
        vomsdir: String,
    },
    /// The embedded AA chain does not match any chain of the `.lsc` file.
    #[error("AA certificate {subject} (issuer {issuer}) does not match {lsc}")]
    LscMismatch {
        subject: String,
        issuer: String,
        lsc: String,
    },
    #[error("cannot read {path}: {why}")]
    Unreadable { path: String, why: String },
    /// The AC issuer name is not the subject of the AA certificate that signs it.
    #[error("AC issuer {ac_issuer} is not the AA certificate subject {aa_subject}")]
    IssuerNotAa {
        ac_issuer: String,
        aa_subject: String,
    },
    /// The AA chain was refused by the X.509 chain verifier (trust anchors, CRLs, validity).
    #[error("AA certificate chain rejected: {0}")]
    AaChain(String),
}

impl VomsError {
    /// True when the AC bytes themselves are unusable (no FQANs can be reported).
    pub fn is_parse_error(&self) -> bool {
        matches!(
            self,
            VomsError::TooLarge { .. }
                | VomsError::Der { .. }
                | VomsError::NoAc
                | VomsError::Version(_)
                | VomsError::HolderForm(_)
                | VomsError::IssuerForm(_)
                | VomsError::AlgorithmMismatch
                | VomsError::Serial(_)
                | VomsError::Duplicate { .. }
                | VomsError::NoFqanAttribute
                | VomsError::PolicyAuthority(_)
                | VomsError::Fqan { .. }
                | VomsError::GenericAttributes(_)
                | VomsError::AaCertificates(_)
                | VomsError::Targets(_)
        )
    }

    /// The [`CredentialError::code`] of an algorithm-policy or signature refusal, the same code
    /// the chain verifier gives for the same fault (None for the AC-specific rules).
    pub fn credential_code(&self) -> Option<&'static str> {
        match self {
            VomsError::Signature(e) => Some(e.code()),
            _ => None,
        }
    }
}
