//! The entry point: proxy file bytes + options → a verified [`Identity`] or a [`CredentialError`].

use super::algorithms::AlgorithmPolicy;
use super::cert::Cert;
use super::chain::{validate, ChainPolicy, ValidatedChain};
pub use super::chain::{CrlPolicy, NamespaceMode};
use super::error::CredentialError;
use super::pem::read_proxy_file;
use super::trust_dir::TrustDir;
use super::voms_hook;
use crate::identity::{Identity, ProxyType};
use std::path::PathBuf;
use time::OffsetDateTime;

/// Default clock-skew allowance on validity windows (seconds), as VOMS and Globus allow.
pub const DEFAULT_SKEW_SECS: i64 = 300;

/// What to verify against and how strictly.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The trust directory (`X509_CERT_DIR`).
    pub ca_dir: PathBuf,
    /// The VOMS directory (`X509_VOMS_DIR`) for AC verification.
    pub voms_dir: Option<PathBuf>,
    /// Verification time; None = now.
    pub at: Option<OffsetDateTime>,
    pub skew_secs: i64,
    pub allow_limited: bool,
    pub algorithms: AlgorithmPolicy,
    pub crl: CrlPolicy,
    pub namespaces: NamespaceMode,
    /// The file must hold the private key of the leaf certificate (true for proxy files).
    pub require_key: bool,
    /// Accept proxies (false: a plain end-entity certificate only).
    pub allow_proxies: bool,
    /// This host's FQDN, for targeted VOMS ACs.
    pub host_fqdn: Option<String>,
}

impl VerifyOptions {
    /// Production defaults: modern algorithms, limited proxies refused, CRLs checked when present
    /// (expired ones refused), namespaces then signing policies enforced, key required.
    pub fn new(ca_dir: impl Into<PathBuf>) -> Self {
        VerifyOptions {
            ca_dir: ca_dir.into(),
            voms_dir: None,
            at: None,
            skew_secs: DEFAULT_SKEW_SECS,
            allow_limited: false,
            algorithms: AlgorithmPolicy::modern(),
            crl: CrlPolicy::default(),
            namespaces: NamespaceMode::EuGridPmaThenGlobus,
            require_key: true,
            allow_proxies: true,
            host_fqdn: None,
        }
    }
}

/// A verified credential: the identity plus details of the path.
#[derive(Debug, Clone)]
pub struct Verified {
    pub identity: Identity,
    /// Number of proxies above the end-entity certificate.
    pub proxy_depth: usize,
    /// Subject DNs of the validated path, leaf first, trust anchor last.
    pub path_dns: Vec<String>,
    /// Each proxy's pCPathLenConstraint, leaf first.
    pub proxy_path_lens: Vec<Option<u32>>,
    /// An RFC 3820 independent proxy is on the path.
    pub independent: bool,
    pub chain: ValidatedChain,
}

/// Loads the trust directory and verifies a proxy file.
pub fn verify_proxy(bytes: &[u8], opts: &VerifyOptions) -> Result<Verified, CredentialError> {
    let trust = TrustDir::load(&opts.ca_dir)?;
    verify_with_trust_dir(bytes, &trust, opts)
}

/// Verifies a proxy file against an already loaded trust directory.
pub fn verify_with_trust_dir(
    bytes: &[u8],
    trust: &TrustDir,
    opts: &VerifyOptions,
) -> Result<Verified, CredentialError> {
    let file = read_proxy_file(bytes)?;
    let certs = file
        .certs
        .iter()
        .enumerate()
        .map(|(i, d)| Cert::from_der(d, i))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = &certs[0];
    match &file.key {
        Some(k) if !k.matches(&leaf.public_key()?)? => {
            return Err(CredentialError::KeyMismatch {
                subject: leaf.subject_slash.clone(),
            });
        }
        Some(_) => {}
        None if opts.require_key => return Err(CredentialError::NoKey),
        None => {}
    }
    let now = opts.at.unwrap_or_else(OffsetDateTime::now_utc);
    let policy = ChainPolicy {
        now: now.unix_timestamp(),
        skew_secs: opts.skew_secs,
        algorithms: opts.algorithms,
        allow_limited: opts.allow_limited,
        allow_proxies: opts.allow_proxies,
        crl: opts.crl,
        namespaces: opts.namespaces,
    };
    let chain = validate(&certs, trust, &policy)?;
    let eec = &chain.path[chain.eec];
    let proxy_type: Option<ProxyType> = chain.proxies.first().map(|p| p.kind);
    // The earliest notAfter of the presented non-CA certificates: proxies and the EEC.
    let not_after = chain.path[..=chain.eec]
        .iter()
        .map(|c| c.not_after)
        .min()
        .unwrap_or(eec.not_after);
    let not_after =
        OffsetDateTime::from_unix_timestamp(not_after).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let voms = voms_hook::voms_attributes(&chain, trust, opts, now);
    let identity = Identity {
        dn: eec.subject_slash.clone(),
        issuer_dn: eec.issuer_slash.clone(),
        proxy_type,
        limited: chain.proxies.iter().any(|p| p.limited),
        not_after,
        voms,
    };
    let mut path_dns: Vec<String> = chain.path.iter().map(|c| c.subject_slash.clone()).collect();
    path_dns.push(chain.anchor.subject_slash.clone());
    Ok(Verified {
        identity,
        proxy_depth: chain.eec,
        path_dns,
        proxy_path_lens: chain.proxies.iter().map(|p| p.path_len).collect(),
        independent: chain.proxies.iter().any(|p| p.independent),
        chain,
    })
}
