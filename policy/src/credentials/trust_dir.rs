//! The IGTF-style trust directory (`/etc/grid-security/certificates`).
//!
//! Layout (OpenSSL `c_rehash` plus the IGTF distribution):
//! - `<hash>.N`: a trusted CA certificate (PEM or DER). `<hash>` is the OpenSSL subject hash,
//!   current (≥ 1.0, SHA-1 based) or old (MD5 based); distributions ship both names. We load
//!   every `<8 hex>.<digit>` file and look CAs up by subject name, so either naming works.
//! - `<hash>.rN`: a CRL of the CA with that hash.
//! - `<hash>.namespaces`, `<hash>.signing_policy`: the CA's namespace policy, tied to the CA
//!   through the file-name stem shared with its certificate.
//!
//! Every CA in the directory is a trust anchor (OpenSSL `-partial_chain` behaviour, as
//! canl-java does): an IGTF directory may hold a sub-CA without its parents.

use super::cert::Cert;
use super::error::CredentialError;
use super::namespaces::Namespaces;
use super::pem::pem_blocks;
use super::signing_policy::SigningPolicy;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Largest CA certificate file read.
const MAX_CA_FILE: u64 = 1024 * 1024;
/// Largest CRL read (the CRLs of big CAs run to megabytes).
const MAX_CRL_FILE: u64 = 64 * 1024 * 1024;

/// A CA of the trust directory with its policy files.
#[derive(Debug)]
pub struct TrustedCa {
    pub cert: Cert,
    /// File-name stems (hashes) this CA is installed under.
    pub stems: Vec<String>,
    /// Parsed `.namespaces` (Err: the file exists but is broken).
    pub namespaces: Option<Result<Namespaces, String>>,
    pub signing_policy: Option<Result<SigningPolicy, String>>,
}

/// A CRL, reduced to what revocation checking needs.
#[derive(Debug, Clone)]
pub struct Crl {
    pub file: String,
    pub issuer_key: String,
    pub issuer_slash: String,
    pub this_update: i64,
    pub next_update: Option<i64>,
    /// Revoked serials, big-endian without leading zeros.
    pub revoked: HashSet<Vec<u8>>,
    pub sig_alg: String,
    pub signature: Vec<u8>,
    pub tbs: Vec<u8>,
}

/// A loaded trust directory.
#[derive(Debug)]
pub struct TrustDir {
    pub path: PathBuf,
    pub cas: Vec<TrustedCa>,
    pub crls: Vec<Crl>,
}

fn is_hash(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    Ok(buf)
}

/// The DER of the first `label` PEM block of a file, or the file itself when it is DER.
fn first_der(bytes: &[u8], label: &str) -> Result<Vec<u8>, String> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => pem_blocks(text)
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|b| {
                b.label == label || (label == "CERTIFICATE" && b.label == "TRUSTED CERTIFICATE")
            })
            .map(|b| b.der)
            .ok_or_else(|| format!("no {label} block")),
        _ => Ok(bytes.to_vec()),
    }
}

impl TrustDir {
    /// Loads a trust directory. A missing or unreadable directory is an error; an unparseable
    /// individual CA or CRL file is skipped (it cannot vouch for anything), and a broken policy
    /// file is remembered so that certificates of that CA are refused.
    pub fn load(path: &Path) -> Result<TrustDir, CredentialError> {
        let site = |detail: String| CredentialError::TrustDir {
            path: path.display().to_string(),
            detail,
        };
        let entries = std::fs::read_dir(path).map_err(|e| site(e.to_string()))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        let mut cas: Vec<TrustedCa> = Vec::new();
        let mut crls = Vec::new();
        for name in &names {
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            if !is_hash(stem) {
                continue;
            }
            let full = path.join(name);
            if !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_digit()) {
                let Ok(bytes) = read_bounded(&full, MAX_CA_FILE) else {
                    continue;
                };
                let Ok(der) = first_der(&bytes, "CERTIFICATE") else {
                    continue;
                };
                let Ok(cert) = Cert::from_der(&der, 0) else {
                    continue;
                };
                if let Some(existing) = cas.iter_mut().find(|c| c.cert.der == cert.der) {
                    existing.stems.push(stem.to_string());
                } else {
                    cas.push(TrustedCa {
                        cert,
                        stems: vec![stem.to_string()],
                        namespaces: None,
                        signing_policy: None,
                    });
                }
            } else if ext.len() > 1
                && ext.starts_with('r')
                && ext[1..].bytes().all(|b| b.is_ascii_digit())
            {
                let Ok(bytes) = read_bounded(&full, MAX_CRL_FILE) else {
                    continue;
                };
                let Ok(der) = first_der(&bytes, "X509 CRL") else {
                    continue;
                };
                if let Some(crl) = parse_crl(&der, name) {
                    crls.push(crl);
                }
            }
        }
        for ca in &mut cas {
            for stem in ca.stems.clone() {
                if ca.namespaces.is_none() {
                    let p = path.join(format!("{stem}.namespaces"));
                    if p.exists() {
                        ca.namespaces = Some(
                            read_bounded(&p, super::namespaces::MAX_POLICY_FILE as u64)
                                .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
                                .and_then(|t| Namespaces::parse(&t).map_err(|e| e.to_string()))
                                .map_err(|e| format!("{}: {e}", p.display())),
                        );
                    }
                }
                if ca.signing_policy.is_none() {
                    let p = path.join(format!("{stem}.signing_policy"));
                    if p.exists() {
                        ca.signing_policy = Some(
                            read_bounded(&p, super::namespaces::MAX_POLICY_FILE as u64)
                                .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
                                .and_then(|t| SigningPolicy::parse(&t).map_err(|e| e.to_string()))
                                .map_err(|e| format!("{}: {e}", p.display())),
                        );
                    }
                }
            }
        }
        Ok(TrustDir {
            path: path.to_path_buf(),
            cas,
            crls,
        })
    }

    /// Trusted CAs whose subject is `subject_key` ([`crate::dn::Dn::comparison_key`]).
    pub fn cas_named<'a>(
        &'a self,
        subject_key: &'a str,
    ) -> impl Iterator<Item = &'a TrustedCa> + 'a {
        self.cas
            .iter()
            .filter(move |c| c.cert.subject_key == subject_key)
    }

    /// The trust-directory entry of exactly this certificate, if it is installed.
    pub fn entry_of(&self, cert: &Cert) -> Option<&TrustedCa> {
        self.cas.iter().find(|c| c.cert.der == cert.der)
    }

    /// CRLs whose issuer name is `subject_key`.
    pub fn crls_of<'a>(&'a self, subject_key: &'a str) -> impl Iterator<Item = &'a Crl> + 'a {
        self.crls
            .iter()
            .filter(move |c| c.issuer_key == subject_key)
    }
}

fn parse_crl(der: &[u8], file: &str) -> Option<Crl> {
    let (_, crl) = x509_parser::parse_x509_crl(der).ok()?;
    let issuer = crate::dn::Dn::from_x509(&crl.tbs_cert_list.issuer);
    Some(Crl {
        file: file.to_string(),
        issuer_key: issuer.comparison_key(),
        issuer_slash: issuer.to_slash(),
        this_update: crl.tbs_cert_list.this_update.timestamp(),
        next_update: crl.tbs_cert_list.next_update.map(|t| t.timestamp()),
        revoked: crl
            .iter_revoked_certificates()
            .map(|r| {
                r.raw_serial()
                    .iter()
                    .copied()
                    .skip_while(|b| *b == 0)
                    .collect()
            })
            .collect(),
        sig_alg: crl.signature_algorithm.algorithm.to_id_string(),
        signature: crl.signature_value.data.to_vec(),
        tbs: crl.tbs_cert_list.as_ref().to_vec(),
    })
}
