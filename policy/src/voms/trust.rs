//! Which VOMS server (AA) may sign ACs for a VO: the vomsdir (VOMS `vomsdata::check_cert`).
//!
//! 1. `<vomsdir>/<vo>/<host>.lsc` exists (host from the policyAuthority): the AA chain embedded
//!    in the AC (extension 1.3.6.1.4.1.8005.100.100.10) must match one chain of the file. A
//!    chain is a list of DNs in OpenSSL slash form from the AA certificate upwards, one per line;
//!    alternatives are separated by `------ NEXT CHAIN ------`. Embedded certificate *i* must
//!    have subject = line *i* and issuer = line *i+1*; lines past the embedded chain describe
//!    the path to the trust anchor, which `verify_aa_chain` builds and checks. The AC is then
//!    verified with the embedded AA certificate.
//! 2. Otherwise (older deployments) a PEM certificate in `<vomsdir>/<vo>/` or `<vomsdir>/`
//!    whose subject is the AC issuer and whose key verifies the AC is the AA certificate.
//!
//! In both cases the AA chain must then pass `VomsContext::verify_aa_chain` (CA trust, CRLs).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use super::error::VomsError;
use super::parse::ParsedAc;
use super::verify::verify_signature;
use super::VomsContext;
use crate::credentials::pem::pem_blocks;
use crate::dn::{openssl_slash, same_dn, same_name};

/// Separator between alternative chains in an `.lsc` file.
pub const LSC_NEXT_CHAIN: &str = "------ NEXT CHAIN ------";
/// `.lsc` files and vomsdir certificates are small; refuse to read anything bigger.
const MAX_TRUST_FILE_LEN: u64 = 1024 * 1024;

/// Parses an `.lsc` file into its alternative chains of DNs (blank lines and `#` comments
/// ignored; a chain needs at least the AA subject and its issuer).
pub fn parse_lsc(text: &str) -> Vec<Vec<String>> {
    let mut chains = vec![Vec::new()];
    for line in text.lines().map(str::trim) {
        if line == LSC_NEXT_CHAIN {
            chains.push(Vec::new());
        } else if !line.is_empty() && !line.starts_with('#') {
            if let Some(c) = chains.last_mut() {
                c.push(line.to_owned());
            }
        }
    }
    chains.retain(|c| c.len() >= 2);
    chains
}

/// Whether the embedded AA chain (leaf first) matches one LSC chain.
pub fn lsc_matches(chain: &[X509Certificate<'_>], lsc_chain: &[String]) -> bool {
    !chain.is_empty()
        && lsc_chain.len() > chain.len()
        && chain.iter().enumerate().all(|(i, c)| {
            same_dn(&openssl_slash(c.subject()), &lsc_chain[i])
                && same_dn(&openssl_slash(c.issuer()), &lsc_chain[i + 1])
        })
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, VomsError> {
    let unreadable = |why: String| VomsError::Unreadable {
        path: path.display().to_string(),
        why,
    };
    let f = fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut buf = Vec::new();
    f.take(MAX_TRUST_FILE_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(|e| unreadable(e.to_string()))?;
    if buf.len() as u64 > MAX_TRUST_FILE_LEN {
        return Err(unreadable("file too large".into()));
    }
    Ok(buf)
}

/// Establishes that a trusted AA signed `ac`; see the module documentation.
pub(crate) fn establish(ac: &ParsedAc<'_>, ctx: &VomsContext<'_>) -> Result<(), VomsError> {
    let pa = &ac.policy_authority;
    let vo_dir = ctx.vomsdir.join(&pa.vo);
    let lsc = vo_dir.join(format!("{}.lsc", pa.host));
    if lsc.is_file() {
        return trust_by_lsc(ac, ctx, &lsc);
    }
    trust_by_vomsdir_certificate(ac, ctx, &[vo_dir, ctx.vomsdir.to_path_buf()])
}

fn trust_by_lsc(ac: &ParsedAc<'_>, ctx: &VomsContext<'_>, lsc: &Path) -> Result<(), VomsError> {
    let text = read_bounded(lsc)?;
    let text = String::from_utf8_lossy(&text);
    let chains = parse_lsc(&text);
    let Some(aa) = ac.aa_certs.first() else {
        return Err(VomsError::LscMismatch {
            subject: "<no AA certificate in the AC>".into(),
            issuer: "-".into(),
            lsc: lsc.display().to_string(),
        });
    };
    if !chains.iter().any(|c| lsc_matches(&ac.aa_certs, c)) {
        return Err(VomsError::LscMismatch {
            subject: openssl_slash(aa.subject()),
            issuer: openssl_slash(aa.issuer()),
            lsc: lsc.display().to_string(),
        });
    }
    check_aa_signed(ac, aa, ctx)?;
    (ctx.verify_aa_chain)(&ac.aa_certs).map_err(VomsError::AaChain)
}

/// The AC issuer must be the AA's subject (VOMS `validate`), and its key must verify the AC.
fn check_aa_signed(
    ac: &ParsedAc<'_>,
    aa: &X509Certificate<'_>,
    ctx: &VomsContext<'_>,
) -> Result<(), VomsError> {
    if !same_name(&ac.issuer, aa.subject()) {
        return Err(VomsError::IssuerNotAa {
            ac_issuer: openssl_slash(&ac.issuer),
            aa_subject: openssl_slash(aa.subject()),
        });
    }
    verify_signature(ac, aa, &ctx.algorithms)
}

fn trust_by_vomsdir_certificate(
    ac: &ParsedAc<'_>,
    ctx: &VomsContext<'_>,
    dirs: &[PathBuf],
) -> Result<(), VomsError> {
    let mut last_error = None;
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "lsc"))
            .collect();
        files.sort();
        for file in files {
            let Ok(bytes) = read_bounded(&file) else {
                continue;
            };
            // The one PEM reader (`credentials::pem`); a file that is not clean PEM text is
            // not a candidate AA certificate, as an unreadable one is not.
            let Ok(blocks) = std::str::from_utf8(&bytes)
                .map_err(|_| ())
                .and_then(|t| pem_blocks(t).map_err(|_| ()))
            else {
                continue;
            };
            for pem in blocks {
                if pem.label != "CERTIFICATE" {
                    continue;
                }
                let Ok((_, cert)) = X509Certificate::from_der(&pem.der) else {
                    continue;
                };
                if !same_name(cert.subject(), &ac.issuer) {
                    continue;
                }
                match verify_signature(ac, &cert, &ctx.algorithms) {
                    Ok(()) => {
                        let chain = [cert];
                        return (ctx.verify_aa_chain)(&chain).map_err(VomsError::AaChain);
                    }
                    Err(e) => last_error = Some(e),
                }
            }
        }
    }
    Err(last_error.unwrap_or_else(|| VomsError::NoTrust {
        vo: ac.policy_authority.vo.clone(),
        host: ac.policy_authority.host.clone(),
        vomsdir: ctx.vomsdir.display().to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsc_alternatives_split_on_next_chain() {
        let text = "/O=x/CN=voms1\n/O=x/CN=CA\n------ NEXT CHAIN ------\n\n/O=x/CN=voms2\r\n/O=x/CN=Sub\n/O=x/CN=Root\n------ NEXT CHAIN ------\n/O=x/CN=lonely\n";
        let chains = parse_lsc(text);
        assert_eq!(chains.len(), 2, "{chains:?}");
        assert_eq!(chains[0], vec!["/O=x/CN=voms1", "/O=x/CN=CA"]);
        assert_eq!(
            chains[1],
            vec!["/O=x/CN=voms2", "/O=x/CN=Sub", "/O=x/CN=Root"]
        );
    }
}
