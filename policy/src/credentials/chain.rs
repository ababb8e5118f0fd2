//! Building and verifying a proxy chain: proxies → end-entity certificate (EEC) → CA(s) → a
//! trust anchor from the trust directory.
//!
//! Path validation follows RFC 5280 section 6 where it applies (signatures, validity, CA
//! basicConstraints and pathLenConstraint, keyCertSign) and RFC 3820 section 4 for the proxy
//! part (each proxy is signed by the certificate before it, which must allow digitalSignature;
//! pCPathLenConstraint; one profile per chain). Limited-proxy inheritance follows Globus: a
//! proxy issued by a limited proxy must be limited too. CRLs (RFC 5280 section 6.3) and CA
//! namespaces apply to certificates issued by CAs, never to proxies.

use super::algorithms::AlgorithmPolicy;
use super::cert::Cert;
use super::error::CredentialError;
use super::namespaces::permits;
use super::proxy::{classify, ProxyInfo};
use super::trust_dir::TrustDir;
use time::OffsetDateTime;

/// Most CA certificates between the EEC and the trust anchor.
pub const MAX_CA_DEPTH: usize = 8;

/// How CRLs are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CrlPolicy {
    /// Every issuing CA must have a CRL in the trust directory (canl `REQUIRE`).
    pub require: bool,
    /// Use a CRL past its nextUpdate instead of refusing (fetch-crl failing must normally be
    /// noticed, so the default refuses).
    pub allow_expired: bool,
}

/// Which CA namespace files are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceMode {
    Off,
    /// `.namespaces` only.
    EuGridPma,
    /// `.namespaces`, falling back to `.signing_policy` when no `.namespaces` has rules.
    EuGridPmaThenGlobus,
}

/// The checks' parameters (a subset of `VerifyOptions`).
#[derive(Debug, Clone, Copy)]
pub struct ChainPolicy {
    pub now: i64,
    pub skew_secs: i64,
    pub algorithms: AlgorithmPolicy,
    pub allow_limited: bool,
    pub allow_proxies: bool,
    pub crl: CrlPolicy,
    pub namespaces: NamespaceMode,
}

/// A verified chain.
#[derive(Debug, Clone)]
pub struct ValidatedChain {
    /// Presented certificates used on the path, leaf first: proxies, the EEC, intermediate CAs.
    pub path: Vec<Cert>,
    /// Index of the EEC in `path` (= the number of proxies).
    pub eec: usize,
    /// `proxies[i]` describes `path[i]`.
    pub proxies: Vec<ProxyInfo>,
    /// The trust anchor (from the trust directory).
    pub anchor: Cert,
}

fn fmt_time(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

fn check_validity(c: &Cert, p: &ChainPolicy) -> Result<(), CredentialError> {
    if p.now > c.not_after.saturating_add(p.skew_secs) {
        return Err(CredentialError::Expired {
            subject: c.subject_slash.clone(),
            not_after: fmt_time(c.not_after),
        });
    }
    if p.now < c.not_before.saturating_sub(p.skew_secs) {
        return Err(CredentialError::NotYetValid {
            subject: c.subject_slash.clone(),
            not_before: fmt_time(c.not_before),
        });
    }
    Ok(())
}

fn check_signature(c: &Cert, signer: &Cert, algs: &AlgorithmPolicy) -> Result<(), CredentialError> {
    let key = signer.public_key()?;
    algs.verify(
        &c.subject_slash,
        &signer.subject_slash,
        &c.sig_alg,
        &key,
        &c.tbs,
        &c.signature,
    )
}

/// Splits off the proxies at the front of `certs` (RFC 3820 section 4.1: a certificate whose
/// issuer is a non-CA certificate must be a proxy of it). Returns their descriptions; the EEC is
/// `certs[proxies.len()]`.
fn split_proxies(certs: &[Cert]) -> Result<Vec<ProxyInfo>, CredentialError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(c) = certs.get(i) {
        let signer = certs
            .get(i + 1)
            .filter(|n| n.subject_key == c.issuer_key && !n.is_ca());
        let Some(signer) = signer else { break };
        match classify(c, signer)? {
            Some(info) => out.push(info),
            None => {
                return Err(CredentialError::BadProxy {
                    subject: c.subject_slash.clone(),
                    detail: format!(
                        "it is issued by the non-CA {} but is not a well-formed proxy (legacy needs subject = issuer + CN=proxy|limited proxy; RFC 3820 needs ProxyCertInfo)",
                        signer.subject_slash
                    ),
                })
            }
        }
        i += 1;
    }
    Ok(out)
}

/// Builds the CA part of the path above `start` (the EEC or a CA certificate): presented CA
/// certificates from `pool` and trust anchors from `trust`. Returns (intermediates, anchor).
pub fn build_ca_path(
    start: &Cert,
    pool: &[Cert],
    trust: &TrustDir,
    algs: &AlgorithmPolicy,
) -> Result<(Vec<Cert>, Cert), CredentialError> {
    let mut current = start.clone();
    let mut intermediates = Vec::new();
    // A self-issued presented CA that is itself installed is its own anchor.
    if let Some(entry) = trust.entry_of(start) {
        if start.self_signed_name {
            return Ok((intermediates, entry.cert.clone()));
        }
    }
    loop {
        let mut first_err = None;
        for ca in trust.cas_named(&current.issuer_key) {
            match check_signature(&current, &ca.cert, algs) {
                Ok(()) => return Ok((intermediates, ca.cert.clone())),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let next = pool
            .iter()
            .find(|c| c.subject_key == current.issuer_key && c.is_ca() && c.der != current.der);
        match next {
            Some(n) if intermediates.len() < MAX_CA_DEPTH => {
                if let Err(e) = check_signature(&current, n, algs) {
                    return Err(first_err.unwrap_or(e));
                }
                intermediates.push(n.clone());
                current = n.clone();
            }
            Some(_) => {
                return Err(CredentialError::ChainTooLong {
                    count: intermediates.len() + 1,
                    limit: MAX_CA_DEPTH,
                })
            }
            None => {
                return Err(first_err.unwrap_or_else(|| CredentialError::Untrusted {
                    subject: current.subject_slash.clone(),
                    issuer: current.issuer_slash.clone(),
                }))
            }
        }
    }
}

/// Verifies `certs` (leaf first, as presented) against `trust`.
pub fn validate(
    certs: &[Cert],
    trust: &TrustDir,
    p: &ChainPolicy,
) -> Result<ValidatedChain, CredentialError> {
    let proxies = split_proxies(certs)?;
    let eec_i = proxies.len();
    let eec = certs.get(eec_i).ok_or(CredentialError::NoCertificate)?;
    if eec.has_pci() {
        // Carries ProxyCertInfo but no non-CA signer was presented: its issuer must be a CA.
        return Err(CredentialError::BadProxy {
            subject: eec.subject_slash.clone(),
            detail: format!("it carries ProxyCertInfo but its issuer {} is not presented as an end-entity certificate", eec.issuer_slash),
        });
    }
    if !p.allow_proxies && eec_i > 0 {
        return Err(CredentialError::ProxyNotAllowed {
            subject: certs[0].subject_slash.clone(),
        });
    }
    let (intermediates, anchor) = build_ca_path(eec, &certs[eec_i + 1..], trust, &p.algorithms)?;
    let mut path: Vec<Cert> = certs[..=eec_i].to_vec();
    path.extend(intermediates);

    // Signatures of the proxy part, each by the certificate after it.
    for i in 0..eec_i {
        check_signature(&path[i], &path[i + 1], &p.algorithms)?;
    }
    // Key sizes everywhere (the trust anchor's too), validity everywhere, unknown critical exts.
    for c in path.iter().chain(std::iter::once(&anchor)) {
        p.algorithms.check_key(&c.subject_slash, &c.public_key()?)?;
    }
    for c in path.iter().chain(std::iter::once(&anchor)) {
        check_validity(c, p)?;
        if let Some(oid) = &c.unknown_critical {
            return Err(CredentialError::UnsupportedCriticalExtension {
                subject: c.subject_slash.clone(),
                oid: oid.clone(),
            });
        }
    }
    check_cas(&path, eec_i, &anchor)?;
    check_proxies(&path, &proxies, p)?;
    check_revocation(&path, eec_i, &anchor, trust, p)?;
    if p.namespaces != NamespaceMode::Off {
        check_namespaces(&path, eec_i, &anchor, trust, p.namespaces)?;
    }
    Ok(ValidatedChain {
        path,
        eec: eec_i,
        proxies,
        anchor,
    })
}

/// RFC 5280 6.1.4 (k), (l), (m), (n) for every CA above the EEC.
fn check_cas(path: &[Cert], eec: usize, anchor: &Cert) -> Result<(), CredentialError> {
    let cas: Vec<&Cert> = path[eec + 1..]
        .iter()
        .chain(std::iter::once(anchor))
        .collect();
    for (k, ca) in cas.iter().enumerate() {
        let child = if k == 0 { &path[eec] } else { cas[k - 1] };
        let is_anchor = k + 1 == cas.len();
        match ca.basic_constraints {
            Some((true, path_len)) => {
                // CA certificates between this CA and the EEC (self-issued ones do not count).
                let below = cas[..k].iter().filter(|c| !c.self_signed_name).count() as u32;
                if let Some(max) = path_len {
                    if below > max {
                        return Err(CredentialError::CaPathLen {
                            subject: ca.subject_slash.clone(),
                            path_len: max,
                            below,
                        });
                    }
                }
            }
            // A v1 trust anchor without extensions is a CA by virtue of being installed.
            None if is_anchor => {}
            _ => {
                return Err(CredentialError::NotACa {
                    subject: ca.subject_slash.clone(),
                    child: child.subject_slash.clone(),
                })
            }
        }
        if ca.key_usage.is_some_and(|ku| !ku.key_cert_sign) {
            return Err(CredentialError::KeyUsage {
                subject: ca.subject_slash.clone(),
                child: child.subject_slash.clone(),
                needed: "keyCertSign",
            });
        }
    }
    Ok(())
}

/// RFC 3820 section 4 and the Globus limited/legacy rules over the proxy part.
fn check_proxies(
    path: &[Cert],
    proxies: &[ProxyInfo],
    p: &ChainPolicy,
) -> Result<(), CredentialError> {
    let n = proxies.len();
    if n == 0 {
        return Ok(());
    }
    let kinds: Vec<_> = proxies.iter().rev().map(|x| x.kind).collect();
    if kinds.iter().any(|k| *k != kinds[0]) {
        let names: Vec<String> = kinds
            .iter()
            .map(|k| format!("{k:?}").to_lowercase())
            .collect();
        return Err(CredentialError::MixedProxyTypes {
            detail: names.join(" -> "),
        });
    }
    // From the EEC's first proxy (index n-1) down to the leaf (index 0).
    let mut limited_above: Option<&Cert> = None;
    for i in (0..n).rev() {
        let signer = &path[i + 1];
        if signer.key_usage.is_some_and(|ku| !ku.digital_signature) {
            return Err(CredentialError::KeyUsage {
                subject: signer.subject_slash.clone(),
                child: path[i].subject_slash.clone(),
                needed: "digitalSignature",
            });
        }
        let info = &proxies[i];
        if let Some(l) = limited_above {
            if !info.limited {
                return Err(CredentialError::FullAfterLimited {
                    subject: path[i].subject_slash.clone(),
                    limited: l.subject_slash.clone(),
                });
            }
        }
        if info.limited {
            limited_above.get_or_insert(&path[i]);
        }
        if let Some(max) = info.path_len {
            let below = i as u32;
            if below > max {
                return Err(CredentialError::ProxyPathLen {
                    subject: path[i].subject_slash.clone(),
                    allowed: max,
                    below,
                });
            }
        }
    }
    if !p.allow_limited {
        if let Some(l) = limited_above {
            return Err(CredentialError::LimitedProxy {
                subject: l.subject_slash.clone(),
            });
        }
    }
    Ok(())
}

/// RFC 5280 6.3 with the trust directory's CRLs, for each certificate issued by a CA.
fn check_revocation(
    path: &[Cert],
    eec: usize,
    anchor: &Cert,
    trust: &TrustDir,
    p: &ChainPolicy,
) -> Result<(), CredentialError> {
    // CRL signatures are held to the same algorithm policy as the certificates (one policy
    // everywhere, as rustls does). A CRL whose signature the policy refuses is an error, not
    // skipped: skipping it would silently drop its revocations (fail open).
    for i in eec..path.len() {
        let subject = &path[i];
        let ca = path.get(i + 1).unwrap_or(anchor);
        let ca_key = ca.public_key()?;
        let mut found = false;
        for crl in trust.crls_of(&ca.subject_key) {
            match p.algorithms.verify(
                &format!("CRL {}", crl.file),
                &ca.subject_slash,
                &crl.sig_alg,
                &ca_key,
                &crl.tbs,
                &crl.signature,
            ) {
                Ok(()) => {}
                // Not signed by this CA (another CA of the same name): says nothing about its
                // certificates.
                Err(CredentialError::BadSignature { .. }) => continue,
                Err(refused) => return Err(refused),
            }
            found = true;
            if p.now + p.skew_secs < crl.this_update {
                return Err(CredentialError::CrlInvalid {
                    ca: ca.subject_slash.clone(),
                    detail: format!("thisUpdate {} is in the future", fmt_time(crl.this_update)),
                });
            }
            if let Some(next) = crl.next_update {
                if p.now > next + p.skew_secs && !p.crl.allow_expired {
                    return Err(CredentialError::CrlExpired {
                        ca: ca.subject_slash.clone(),
                        next_update: fmt_time(next),
                    });
                }
            }
            if crl.revoked.contains(&subject.serial) {
                return Err(CredentialError::Revoked {
                    subject: subject.subject_slash.clone(),
                    serial: subject.serial_hex(),
                    ca: ca.subject_slash.clone(),
                });
            }
        }
        if !found && p.crl.require {
            return Err(CredentialError::CrlMissing {
                ca: ca.subject_slash.clone(),
            });
        }
    }
    Ok(())
}

/// CA namespaces for each certificate issued by a CA: the first CA from the issuer upwards whose
/// `.namespaces` has rules for the issuer decides; else (Globus mode) the first `.signing_policy`
/// with a block for the issuer; else no policy applies.
fn check_namespaces(
    path: &[Cert],
    eec: usize,
    anchor: &Cert,
    trust: &TrustDir,
    mode: NamespaceMode,
) -> Result<(), CredentialError> {
    let cas: Vec<&Cert> = path[eec + 1..]
        .iter()
        .chain(std::iter::once(anchor))
        .collect();
    for (k, issuer) in cas.iter().enumerate() {
        let subject = if k == 0 { &path[eec] } else { cas[k - 1] };
        let deny = |policy: String| CredentialError::Namespace {
            subject: subject.subject_slash.clone(),
            issuer: issuer.subject_slash.clone(),
            policy,
        };
        let broken_file = |detail: &String| CredentialError::TrustDir {
            path: trust.path.display().to_string(),
            detail: detail.clone(),
        };
        let mut decided = false;
        for owner in &cas[k..] {
            let Some(entry) = trust.entry_of(owner) else {
                continue;
            };
            match trust.namespaces_of(entry) {
                Some(Ok(ns)) => {
                    let rules = ns.rules_for(&issuer.subject_key, &owner.subject_key);
                    if !rules.is_empty() {
                        if !permits(&rules, &subject.subject_slash) {
                            return Err(deny(format!("{}.namespaces", entry.stems[0])));
                        }
                        decided = true;
                        break;
                    }
                }
                Some(Err(e)) => return Err(broken_file(e)),
                None => {}
            }
        }
        if decided || mode != NamespaceMode::EuGridPmaThenGlobus {
            continue;
        }
        for owner in &cas[k..] {
            let Some(entry) = trust.entry_of(owner) else {
                continue;
            };
            if trust.namespaces_of(entry).is_some() {
                continue; // .namespaces wins when both exist
            }
            match trust.signing_policy_of(entry) {
                Some(Ok(sp)) => {
                    if let Some(block) = sp.for_issuer(&issuer.subject_key) {
                        if !block.permits(&subject.subject_slash) {
                            return Err(deny(format!("{}.signing_policy", entry.stems[0])));
                        }
                        break;
                    }
                }
                Some(Err(e)) => return Err(broken_file(e)),
                None => {}
            }
        }
    }
    Ok(())
}

/// Checks a VOMS server (AA) certificate chain, AA first, up to a trust anchor: signatures,
/// algorithm policy, validity at `now` and CA constraints (no proxies, CRLs or namespaces).
/// This is the callback the VOMS module uses.
pub fn verify_ca_issued_chain(
    certs: &[Cert],
    trust: &TrustDir,
    now: i64,
    algorithms: AlgorithmPolicy,
) -> Result<(), CredentialError> {
    let leaf = certs.first().ok_or(CredentialError::NoCertificate)?;
    let (intermediates, anchor) = build_ca_path(leaf, &certs[1..], trust, &algorithms)?;
    let mut path = vec![leaf.clone()];
    path.extend(intermediates);
    let p = ChainPolicy {
        now,
        skew_secs: 300,
        algorithms,
        allow_limited: false,
        allow_proxies: false,
        crl: CrlPolicy::default(),
        namespaces: NamespaceMode::Off,
    };
    for c in path.iter().chain(std::iter::once(&anchor)) {
        algorithms.check_key(&c.subject_slash, &c.public_key()?)?;
        check_validity(c, &p)?;
    }
    check_cas(&path, 0, &anchor)?;
    check_revocation(&path, 0, &anchor, trust, &p)
}
