//! The seam to VOMS attribute-certificate verification (`crate::voms`, built separately).
//!
//! Our part: find the AC extension (1.3.6.1.4.1.8005.100.100.5) on the certificate nearest the
//! leaf that carries one (a plain proxy delegated from a VOMS proxy keeps its VO, as VOMS C++
//! searches the whole chain), and hand its DER value, the end-entity certificate (the AC
//! holder) and a callback that checks the VOMS server's certificate chain against our trust
//! directory to `crate::voms::verify_ac`.
//!
//! The `voms` feature (on by default) builds this in; without it this returns `None`.

use super::chain::ValidatedChain;
use super::trust_dir::TrustDir;
use super::verify::VerifyOptions;
use crate::identity::Voms;
use time::OffsetDateTime;

/// The raw AC extension value of the proxy nearest the leaf that carries one, if any.
pub fn find_ac(chain: &ValidatedChain) -> Option<&[u8]> {
    chain.path[..chain.eec]
        .iter()
        .find_map(|c| c.voms_ac.as_deref())
}

/// VOMS attributes of a verified chain (None: no AC, or VOMS support not built in).
#[cfg(not(feature = "voms"))]
pub fn voms_attributes(
    chain: &ValidatedChain,
    _trust: &TrustDir,
    _opts: &VerifyOptions,
    _now: OffsetDateTime,
) -> Option<Voms> {
    let _ = find_ac(chain);
    None
}

/// VOMS attributes of a verified chain (None: no AC on any proxy).
#[cfg(feature = "voms")]
pub fn voms_attributes(
    chain: &ValidatedChain,
    trust: &TrustDir,
    opts: &VerifyOptions,
    now: OffsetDateTime,
) -> Option<Voms> {
    use super::cert::Cert;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let ac = find_ac(chain)?;
    let eec_der = &chain.path[chain.eec].der;
    let (_, holder) = X509Certificate::from_der(eec_der).ok()?;
    let algorithms = opts.algorithms;
    let check_chain = |certs: &[X509Certificate<'_>]| -> Result<(), String> {
        let owned = certs
            .iter()
            .map(|c| Cert::from_x509(c, c.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        super::chain::verify_ca_issued_chain(&owned, trust, now.unix_timestamp(), algorithms)
            .map_err(|e| e.reason())
    };
    // No configured vomsdir: the conventional one (an AC it cannot trust stays invalid, but its
    // claimed FQANs are still reported, for bans).
    let vomsdir = opts
        .voms_dir
        .as_deref()
        .unwrap_or(std::path::Path::new("/etc/grid-security/vomsdir"));
    let ctx = crate::voms::VomsContext {
        vomsdir,
        now,
        host_fqdn: opts.host_fqdn.as_deref(),
        clock_skew: time::Duration::seconds(opts.skew_secs),
        verify_aa_chain: &check_chain,
        algorithms,
    };
    Some(crate::voms::verify_ac(ac, &holder, &ctx))
}
