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
//!
//! # Loading is lazy
//!
//! The verifier runs in a fresh process for every payload launch, and a worker node's IGTF
//! bundle holds 100–150 CAs under two hash names each, each with `.namespaces`,
//! `.signing_policy` and a fetch-crl CRL (some several MB). Parsing all of it per launch costs
//! tens to hundreds of milliseconds, for the one or two CAs a proxy's path uses. So
//! [`TrustDir::load`] only lists the directory and parses the CA certificates (small: path
//! building needs them all, by subject). The rest is parsed on first use, per CA:
//! - its `.namespaces` and `.signing_policy` ([`TrustDir::namespaces_of`],
//!   [`TrustDir::signing_policy_of`]), when the namespace check reaches that CA;
//! - its CRLs: the `<stem>.rN` files of its own stems ([`TrustDir::crls_of`]), since fetch-crl
//!   and the IGTF distribution name a CA's CRL after the CA's certificate file. Only CRLs whose
//!   issuer is the CA count, as before. For an issuer with no installed CA every CRL file is
//!   read once (see [`TrustDir::crls_of`]).
//!
//! [`TrustDir::files_parsed`] lists what was read, so the laziness is testable.
//!
//! Consequences (intended): a broken or unreadable `.namespaces`/`.signing_policy` is reported
//! only when a verified path reaches its CA; verdicts did not depend on the files of CAs off
//! the path before either, but a file broken in a way that made loading itself slow or large no
//! longer costs anything. A CRL of CA X stored under a stem that is not one of X's certificate
//! stems is no longer found for X (it was, by issuer, when every CRL was parsed); IGTF and
//! fetch-crl never lay CRLs out that way. Files are read when needed, so a file replaced between
//! `load` and its use is read in its new version (as a fresh `load` would).

use super::cert::Cert;
use super::error::CredentialError;
use super::namespaces::Namespaces;
use super::pem::pem_blocks;
use super::signing_policy::SigningPolicy;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Largest CA certificate file read.
const MAX_CA_FILE: u64 = 1024 * 1024;
/// Largest CRL read (the CRLs of big CAs run to megabytes).
const MAX_CRL_FILE: u64 = 64 * 1024 * 1024;

/// A CA of the trust directory. Its policy files are read on first use (see the module doc).
#[derive(Debug)]
pub struct TrustedCa {
    pub cert: Cert,
    /// File-name stems (hashes) this CA is installed under.
    pub stems: Vec<String>,
    /// Parsed `.namespaces`: None = no such file, Some(Err) = the file exists but is broken.
    namespaces: OnceLock<Option<Result<Namespaces, String>>>,
    /// Parsed `.signing_policy`, same convention.
    signing_policy: OnceLock<Option<Result<SigningPolicy, String>>>,
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

/// The CRL files installed under one stem (`<stem>.r0`, `<stem>.r1`, …), parsed on first use.
#[derive(Debug)]
struct StemCrls {
    files: Vec<String>,
    parsed: OnceLock<Vec<Crl>>,
}

/// A loaded trust directory: CA certificates parsed, CRLs and policy files only listed.
///
/// `OnceLock` rather than `OnceCell`: the verifier uses a `TrustDir` from one thread, but the
/// type stays `Sync` so a caller may share a preloaded directory (the conformance tests do).
#[derive(Debug)]
pub struct TrustDir {
    pub path: PathBuf,
    pub cas: Vec<TrustedCa>,
    /// CRL file names by stem; read and parsed per stem on first use.
    crls: BTreeMap<String, StemCrls>,
    /// Names of the `<stem>.namespaces` and `<stem>.signing_policy` files listed.
    policy_files: HashSet<String>,
    /// Every file read and parsed so far, in order (see [`TrustDir::files_parsed`]).
    parsed: Mutex<Vec<String>>,
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

/// `<hash>.N`: a CA certificate file.
fn is_cert_ext(ext: &str) -> bool {
    !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_digit())
}

/// `<hash>.rN`: a CRL file.
fn is_crl_ext(ext: &str) -> bool {
    ext.len() > 1 && ext.starts_with('r') && ext[1..].bytes().all(|b| b.is_ascii_digit())
}

impl TrustDir {
    /// Loads a trust directory: lists it and parses the CA certificates; CRLs and policy files
    /// are only listed here and parsed on first use (see the module doc). A missing or
    /// unreadable directory is an error; an unparseable individual CA or CRL file is skipped
    /// (it cannot vouch for anything), and a broken policy file of a CA on a verified path is
    /// reported when that CA is checked, so that certificates of that CA are refused.
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
        let mut td = TrustDir {
            path: path.to_path_buf(),
            cas: Vec::new(),
            crls: BTreeMap::new(),
            policy_files: HashSet::new(),
            parsed: Mutex::new(Vec::new()),
        };
        // CA file contents already parsed → index in `td.cas` (None: not a usable CA).
        let mut files_seen: HashMap<Vec<u8>, Option<usize>> = HashMap::new();
        for name in names {
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            if !is_hash(stem) {
                continue;
            }
            if is_cert_ext(ext) {
                let Ok(bytes) = read_bounded(&path.join(&name), MAX_CA_FILE) else {
                    continue;
                };
                // The old-hash name is usually a symlink to (or a copy of) the current one: the
                // same bytes give the same CA, so only the stem is recorded.
                if let Some(seen) = files_seen.get(&bytes) {
                    if let Some(i) = *seen {
                        td.cas[i].stems.push(stem.to_string());
                    }
                    continue;
                }
                td.note_parsed(&name);
                let parsed = first_der(&bytes, "CERTIFICATE")
                    .ok()
                    .and_then(|der| Cert::from_der(&der, 0).ok());
                let Some(cert) = parsed else {
                    files_seen.insert(bytes, None);
                    continue;
                };
                if let Some(i) = td.cas.iter().position(|c| c.cert.der == cert.der) {
                    td.cas[i].stems.push(stem.to_string());
                    files_seen.insert(bytes, Some(i));
                } else {
                    files_seen.insert(bytes, Some(td.cas.len()));
                    td.cas.push(TrustedCa {
                        cert,
                        stems: vec![stem.to_string()],
                        namespaces: OnceLock::new(),
                        signing_policy: OnceLock::new(),
                    });
                }
            } else if is_crl_ext(ext) {
                td.crls
                    .entry(stem.to_string())
                    .or_insert_with(|| StemCrls {
                        files: Vec::new(),
                        parsed: OnceLock::new(),
                    })
                    .files
                    .push(name);
            } else if ext == "namespaces" || ext == "signing_policy" {
                td.policy_files.insert(name);
            }
        }
        Ok(td)
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

    /// CRLs whose issuer name is `subject_key`, parsed on first use.
    ///
    /// When CAs with that subject are installed, only the CRL files under their stems are read
    /// (fetch-crl and the IGTF distribution write a CA's CRL as `<hash>.rN` with the hash of the
    /// CA's own certificate file); a CRL under one of those stems from another issuer is
    /// ignored. When no CA with that subject is installed (an intermediate presented by the
    /// user, whose CRL an admin may still have installed under any name), every CRL file of the
    /// directory is read once, as before this directory was lazy: that path is rare, and
    /// finding its CRL by issuer rather than by file name is what it always did.
    pub fn crls_of<'a>(&'a self, subject_key: &'a str) -> Vec<&'a Crl> {
        let mut stems: Vec<&str> = self
            .cas_named(subject_key)
            .flat_map(|c| c.stems.iter().map(String::as_str))
            .collect();
        let fallback = stems.is_empty();
        if fallback {
            stems = self.crls.keys().map(String::as_str).collect();
        }
        stems.sort_unstable();
        stems.dedup();
        stems
            .into_iter()
            .filter_map(|stem| self.crls.get(stem))
            .flat_map(|s| self.stem_crls(s))
            .filter(|c| c.issuer_key == subject_key)
            .collect()
    }

    /// Every CRL of the directory (all of them parsed): for `pilotbox check`, which reports
    /// expired CRLs of any CA. Verification never needs this.
    pub fn all_crls(&self) -> Vec<&Crl> {
        self.crls.values().flat_map(|s| self.stem_crls(s)).collect()
    }

    /// The CA's `.namespaces` (the first of its stems that has one), read on first use: None
    /// when there is none, `Some(Err)` naming the file when it is unreadable or broken.
    pub fn namespaces_of<'a>(&self, ca: &'a TrustedCa) -> Option<&'a Result<Namespaces, String>> {
        ca.namespaces
            .get_or_init(|| {
                self.policy_file(ca, "namespaces", |t| {
                    Namespaces::parse(t).map_err(|e| e.to_string())
                })
            })
            .as_ref()
    }

    /// The CA's `.signing_policy`, same conventions as [`TrustDir::namespaces_of`].
    pub fn signing_policy_of<'a>(
        &self,
        ca: &'a TrustedCa,
    ) -> Option<&'a Result<SigningPolicy, String>> {
        ca.signing_policy
            .get_or_init(|| {
                self.policy_file(ca, "signing_policy", |t| {
                    SigningPolicy::parse(t).map_err(|e| e.to_string())
                })
            })
            .as_ref()
    }

    /// Names of the files read and parsed so far (CA certificates at load — a file with the
    /// same bytes as one already parsed, such as the old-hash symlink, is only read — then CRLs
    /// and policy files as verification needs them), in order. Makes the laziness testable
    /// without timing.
    pub fn files_parsed(&self) -> Vec<String> {
        self.parsed.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn note_parsed(&self, name: &str) {
        if let Ok(mut p) = self.parsed.lock() {
            p.push(name.to_string());
        }
    }

    /// Reads `<stem>.<ext>` for the first stem of `ca` that has one, and parses it.
    fn policy_file<T>(
        &self,
        ca: &TrustedCa,
        ext: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Result<T, String>> {
        for stem in &ca.stems {
            let name = format!("{stem}.{ext}");
            let p = self.path.join(&name);
            // Listed at load and still there (a dangling symlink counts as absent, as before).
            if !self.policy_files.contains(&name) || !p.exists() {
                continue;
            }
            self.note_parsed(&name);
            return Some(
                read_bounded(&p, super::namespaces::MAX_POLICY_FILE as u64)
                    .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
                    .and_then(|t| parse(&t))
                    .map_err(|e| format!("{}: {e}", p.display())),
            );
        }
        None
    }

    /// The CRLs under one stem, read and parsed on first use (unreadable or unparseable files
    /// are skipped: they cannot revoke anything).
    fn stem_crls<'a>(&self, s: &'a StemCrls) -> &'a [Crl] {
        s.parsed.get_or_init(|| {
            s.files
                .iter()
                .filter_map(|name| {
                    self.note_parsed(name);
                    let bytes = read_bounded(&self.path.join(name), MAX_CRL_FILE).ok()?;
                    let der = first_der(&bytes, "X509 CRL").ok()?;
                    parse_crl(&der, name)
                })
                .collect()
        })
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
