//! Every way a credential can be refused, with a stable machine code and a human message.

use crate::class::Class;

/// Why a proxy credential was refused.
///
/// [`CredentialError::code`] is the stable machine reason (it is the prefix of the `reason` JSON
/// field of `pilotbox verify` and never changes meaning); the `Display` text says what failed and
/// why, naming the certificate by its OpenSSL slash DN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the {what} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("malformed PEM: {0}")]
    Pem(String),
    #[error("no certificate found in the proxy file")]
    NoCertificate,
    #[error("the chain has {count} certificates, more than the limit of {limit}")]
    ChainTooLong { count: usize, limit: usize },
    #[error("certificate #{index} in the file is not a valid X.509 certificate: {detail}")]
    MalformedCertificate { index: usize, detail: String },
    #[error("private key: {0}")]
    MalformedKey(String),
    #[error("no private key in the proxy file")]
    NoKey,
    #[error("the private key in the file does not belong to the certificate {subject}")]
    KeyMismatch { subject: String },
    #[error("issuer {issuer} of {subject} is not in the trust directory")]
    Untrusted { subject: String, issuer: String },
    #[error("the signature of {subject} does not verify with the key of {issuer}")]
    BadSignature { subject: String, issuer: String },
    #[error("{subject} is signed with {algorithm}, which the algorithm policy rejects")]
    WeakAlgorithm { subject: String, algorithm: String },
    #[error("{subject} has a {bits}-bit RSA key, below the policy minimum of {min} bits")]
    WeakKey {
        subject: String,
        bits: usize,
        min: usize,
    },
    #[error("{subject}: unsupported {what}")]
    UnsupportedAlgorithm { subject: String, what: String },
    #[error("{subject} expired (notAfter {not_after})")]
    Expired { subject: String, not_after: String },
    #[error("{subject} is not yet valid (notBefore {not_before})")]
    NotYetValid { subject: String, not_before: String },
    #[error("{subject} issued {child} but is not a CA (basicConstraints cA is not set)")]
    NotACa { subject: String, child: String },
    #[error("CA {subject} has pathLenConstraint {path_len} but {below} CA certificates follow it")]
    CaPathLen {
        subject: String,
        path_len: u32,
        below: u32,
    },
    #[error("{subject} signs {child} but its keyUsage lacks {needed}")]
    KeyUsage {
        subject: String,
        child: String,
        needed: &'static str,
    },
    #[error("{subject} has critical extension {oid}, which this verifier does not process")]
    UnsupportedCriticalExtension { subject: String, oid: String },
    #[error("{subject} is not a well-formed proxy: {detail}")]
    BadProxy { subject: String, detail: String },
    #[error("proxy {subject} allows {allowed} more proxies, {below} follow")]
    ProxyPathLen {
        subject: String,
        allowed: u32,
        below: u32,
    },
    #[error("{subject} is a limited proxy and limited proxies are not accepted here")]
    LimitedProxy { subject: String },
    #[error("non-limited proxy {subject} was issued by limited proxy {limited}")]
    FullAfterLimited { subject: String, limited: String },
    #[error("inconsistent proxy types in chain: {detail}")]
    MixedProxyTypes { detail: String },
    #[error("{subject} is a proxy, and only end-entity certificates are accepted here")]
    ProxyNotAllowed { subject: String },
    #[error("{subject} (serial {serial}) is on the CRL of {ca}")]
    Revoked {
        subject: String,
        serial: String,
        ca: String,
    },
    #[error("the CRL of {ca} expired (nextUpdate {next_update})")]
    CrlExpired { ca: String, next_update: String },
    #[error("CRL required but none present for {ca}")]
    CrlMissing { ca: String },
    #[error("the CRL of {ca} is unusable: {detail}")]
    CrlInvalid { ca: String, detail: String },
    #[error("subject {subject} not permitted for issuer {issuer} by {policy}")]
    Namespace {
        subject: String,
        issuer: String,
        policy: String,
    },
    #[error("trust directory {path}: {detail}")]
    TrustDir { path: String, detail: String },
}

impl CredentialError {
    /// The stable machine reason: lower-case snake case, never reworded.
    pub fn code(&self) -> &'static str {
        use CredentialError::*;
        match self {
            TooLarge { .. } => "too_large",
            Pem(_) => "malformed_pem",
            NoCertificate => "no_certificate",
            ChainTooLong { .. } => "chain_too_long",
            MalformedCertificate { .. } => "malformed_certificate",
            MalformedKey(_) => "malformed_key",
            NoKey => "no_key",
            KeyMismatch { .. } => "key_mismatch",
            Untrusted { .. } => "untrusted",
            BadSignature { .. } => "bad_signature",
            WeakAlgorithm { .. } => "weak_algorithm",
            WeakKey { .. } => "weak_key",
            UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Expired { .. } => "expired",
            NotYetValid { .. } => "not_yet_valid",
            NotACa { .. } => "not_a_ca",
            CaPathLen { .. } => "ca_path_length_exceeded",
            KeyUsage { .. } => "key_usage",
            UnsupportedCriticalExtension { .. } => "unsupported_critical_extension",
            BadProxy { .. } => "bad_proxy",
            ProxyPathLen { .. } => "proxy_path_length_exceeded",
            LimitedProxy { .. } => "limited_proxy",
            FullAfterLimited { .. } => "full_proxy_after_limited",
            MixedProxyTypes { .. } => "mixed_proxy_types",
            ProxyNotAllowed { .. } => "proxy_not_allowed",
            Revoked { .. } => "revoked",
            CrlExpired { .. } => "crl_expired",
            CrlMissing { .. } => "crl_missing",
            CrlInvalid { .. } => "crl_invalid",
            Namespace { .. } => "namespace",
            TrustDir { .. } => "trust_dir",
        }
    }

    /// `code: message`, the form the `reason` JSON field carries.
    pub fn reason(&self) -> String {
        format!("{}: {}", self.code(), self)
    }

    /// The docs/design.md exit class: a broken trust directory is the site's fault, everything else
    /// is an invalid credential (denied).
    pub fn class(&self) -> Class {
        match self {
            CredentialError::TrustDir { .. } => Class::SiteError,
            _ => Class::Denied,
        }
    }
}
