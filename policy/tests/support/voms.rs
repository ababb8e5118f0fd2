//! VOMS on top of the [`Pki`] factory: a fixture with a CA, users Alice and Bob, a VOMS
//! server (AA) certificate and a vomsdir whose `.lsc` names it; helpers to read the AC back out of
//! a proxy; and an AC editor that re-signs a real AC with the AA key for cases `voms-proxy-fake`
//! cannot produce (working targets, other algorithms, extra extensions).

use std::fs;
use std::path::{Path, PathBuf};

use policy::voms::find_ac_extension;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

use super::{openssl, run, Cred, Pki};

pub const CA_NAME: &str = "Pilotbox VOMS Test CA";
pub const CA_DN: &str = "/DC=org/DC=example/CN=Pilotbox VOMS Test CA";
pub const VOMS_HOST: &str = "voms.example.org";
pub const VOMS_DN: &str = "/DC=org/DC=example/CN=voms.example.org";
pub const VO: &str = "testvo";
pub const URI: &str = "voms.example.org:15000";

/// A CA with users Alice and Bob and the VOMS server `voms.example.org` of VO `testvo`, and a
/// vomsdir holding `testvo/voms.example.org.lsc` (the correct chain). Removed on drop.
pub struct VomsFixture {
    pub pki: Pki,
    pub ca: Cred,
    pub alice: Cred,
    pub bob: Cred,
    pub voms: Cred,
    pub vomsdir: PathBuf,
}

impl VomsFixture {
    pub fn new() -> Self {
        let pki = Pki::new(CA_NAME);
        let vomsdir = pki.path("vomsdir");
        let alice = pki.issue_user_cert("/DC=org/DC=example/CN=Alice", "rsa:2048");
        let bob = pki.issue_user_cert("/DC=org/DC=example/CN=Bob", "rsa:2048");
        let voms = pki.issue_user_cert(VOMS_DN, "rsa:2048");
        let fx = VomsFixture {
            ca: pki.ca.clone(),
            pki,
            alice,
            bob,
            voms,
            vomsdir,
        };
        fx.write_lsc(VO, VOMS_HOST, &format!("{VOMS_DN}\n{CA_DN}\n"));
        fx
    }

    /// The fixture's temporary directory.
    pub fn dir(&self) -> &Path {
        self.pki.tmp.path()
    }

    /// Issues an end-entity certificate for `dn` from the test CA with key `key` (`rsa:2048`,
    /// `ec:P-256`).
    pub fn issue(&self, dn: &str, key: &'static str) -> Cred {
        self.pki.issue_user_cert(dn, key)
    }

    /// Writes `<vomsdir>/<vo>/<host>.lsc`.
    pub fn write_lsc(&self, vo: &str, host: &str, content: &str) {
        fs::create_dir_all(self.vomsdir.join(vo)).unwrap();
        fs::write(self.vomsdir.join(vo).join(format!("{host}.lsc")), content).unwrap();
    }

    pub fn remove_lsc(&self, vo: &str, host: &str) {
        fs::remove_file(self.vomsdir.join(vo).join(format!("{host}.lsc"))).unwrap();
    }

    /// A VOMS proxy for `user` with an AC signed by `aa` (see [`Pki::voms_proxy_fake`]).
    pub fn fake_proxy(
        &self,
        user: &Cred,
        aa: &Cred,
        vo: &str,
        uri: &str,
        extra: &[&str],
    ) -> PathBuf {
        self.pki.voms_proxy_fake(user, aa, vo, uri, extra)
    }
}

/// DER certificates of a PEM file, in file order.
pub fn pem_certs(path: &Path) -> Vec<Vec<u8>> {
    let bytes = fs::read(path).unwrap();
    Pem::iter_from_buffer(&bytes)
        .map(|p| p.unwrap())
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}

/// The VOMS extension value of the proxy (first certificate of the file).
pub fn ac_ext_of(proxy: &Path) -> Vec<u8> {
    let certs = pem_certs(proxy);
    let (_, leaf) = X509Certificate::from_der(&certs[0]).unwrap();
    find_ac_extension(&leaf)
        .expect("proxy has a VOMS extension")
        .to_vec()
}

/// The end-entity (user) certificate of a proxy file: the last certificate.
pub fn holder_der_of(proxy: &Path) -> Vec<u8> {
    pem_certs(proxy).pop().unwrap()
}

/// A real AA chain check for tests: each certificate signed by the next, the last by one of
/// `anchors` (matched by subject), all within validity at `now`; SHA-1/MD5 signatures only
/// when `legacy`. Stands in for the chain verifier's `verify_aa_chain`.
pub fn aa_chain_checker(
    anchors: Vec<Vec<u8>>,
    now: OffsetDateTime,
    legacy: bool,
) -> impl Fn(&[X509Certificate<'_>]) -> Result<(), String> {
    move |chain: &[X509Certificate<'_>]| {
        let anchors: Vec<X509Certificate<'_>> = anchors
            .iter()
            .map(|d| X509Certificate::from_der(d).unwrap().1)
            .collect();
        if chain.is_empty() {
            return Err("empty AA chain".into());
        }
        for (i, cert) in chain.iter().enumerate() {
            let ts = now.unix_timestamp();
            if ts < cert.validity().not_before.timestamp()
                || ts > cert.validity().not_after.timestamp()
            {
                return Err(format!("AA chain certificate {i} not valid at {now}"));
            }
            let alg = cert.signature_algorithm.algorithm.to_id_string();
            let weak = [
                "1.2.840.113549.1.1.4",
                "1.2.840.113549.1.1.5",
                "1.3.14.3.2.29",
            ]
            .contains(&alg.as_str());
            if weak && !legacy {
                return Err(format!(
                    "AA chain certificate {i} signed with weak algorithm {alg}"
                ));
            }
            let issuer = chain
                .get(i + 1)
                .or_else(|| {
                    anchors
                        .iter()
                        .find(|a| a.subject().as_raw() == cert.issuer().as_raw())
                })
                .ok_or_else(|| format!("no trust anchor for {}", cert.issuer()))?;
            cert.verify_signature(Some(issuer.public_key()))
                .map_err(|e| format!("AA chain certificate {i}: {e}"))?;
        }
        Ok(())
    }
}

// ---- a minimal DER toolkit for rebuilding ACs ----

/// One TLV with a single-byte tag (all we need for RFC 5755 structures).
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// Splits a constructed TLV into its children's encodings.
pub fn children(der: &[u8]) -> Vec<Vec<u8>> {
    fn header(d: &[u8]) -> (usize, usize) {
        let l = d[1] as usize;
        if l < 0x80 {
            (2, l)
        } else {
            let k = l & 0x7f;
            (
                2 + k,
                d[2..2 + k]
                    .iter()
                    .fold(0usize, |a, &b| (a << 8) | b as usize),
            )
        }
    }
    let (h, l) = header(der);
    let mut content = &der[h..h + l];
    let mut out = Vec::new();
    while !content.is_empty() {
        let (h, l) = header(content);
        out.push(content[..h + l].to_vec());
        content = &content[h + l..];
    }
    out
}

pub const ALG_SHA256_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
pub const ALG_SHA512_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00,
];
pub const ALG_SHA1_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
];
pub const ALG_MD5_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04, 0x05, 0x00,
];
pub const ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// OID 2.5.29.55 id-ce-targetInformation, encoded.
pub const OID_TARGETS: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x37];

/// Rebuilds the first AC of a VOMS extension value, then re-signs it with a real key.
pub struct AcEditor {
    /// Children of AttributeCertificateInfo (version, holder, issuer, signature, serial,
    /// validity, attributes, extensions).
    pub acinfo: Vec<Vec<u8>>,
    pub algorithm: Vec<u8>,
}

impl AcEditor {
    pub fn from_ext(ext_value: &[u8]) -> Self {
        let inner = children(ext_value).remove(0);
        let ac = children(&inner).remove(0);
        let parts = children(&ac);
        AcEditor {
            acinfo: children(&parts[0]),
            algorithm: parts[1].clone(),
        }
    }

    /// Sets the signature algorithm, inside and outside the signed part (RFC 5755 §4.2.4).
    pub fn set_algorithm(&mut self, alg: &[u8]) {
        self.acinfo[3] = alg.to_vec();
        self.algorithm = alg.to_vec();
    }

    /// The extensions (last element of AttributeCertificateInfo), as encodings.
    pub fn extensions(&self) -> Vec<Vec<u8>> {
        children(self.acinfo.last().unwrap())
    }

    pub fn set_extensions(&mut self, exts: &[Vec<u8>]) {
        let refs: Vec<&[u8]> = exts.iter().map(|e| e.as_slice()).collect();
        *self.acinfo.last_mut().unwrap() = seq(&refs);
    }

    /// Replaces (or adds) the extension with the given encoded OID.
    pub fn replace_extension(&mut self, oid: &[u8], new_ext: Vec<u8>) {
        let mut exts: Vec<Vec<u8>> = self
            .extensions()
            .into_iter()
            .filter(|e| children(e)[0] != oid)
            .collect();
        exts.push(new_ext);
        self.set_extensions(&exts);
    }

    /// Signs `AttributeCertificateInfo` with `openssl dgst -<digest> -sign key` and returns a
    /// VOMS extension value (`SEQUENCE { SEQUENCE { AttributeCertificate } }`).
    pub fn sign(&self, key: &Path, digest: &str, workdir: &Path) -> Vec<u8> {
        let refs: Vec<&[u8]> = self.acinfo.iter().map(|e| e.as_slice()).collect();
        let acinfo = seq(&refs);
        let tbs = workdir.join("acinfo.der");
        let sig = workdir.join("acinfo.sig");
        fs::write(&tbs, &acinfo).unwrap();
        run(openssl()
            .args(["dgst", &format!("-{digest}"), "-sign"])
            .arg(key)
            .arg("-out")
            .arg(&sig)
            .arg(&tbs));
        let mut bits = vec![0u8];
        bits.extend(fs::read(&sig).unwrap());
        let ac = seq(&[&acinfo, &self.algorithm, &tlv(0x03, &bits)]);
        seq(&[&seq(&[&ac])])
    }
}

/// A critical targetInformation extension naming `hosts`. `voms_form` encodes each Target as
/// VOMS does (a SEQUENCE of tagged optionals), otherwise as RFC 5755's CHOICE.
pub fn targets_extension(hosts: &[&str], voms_form: bool) -> Vec<u8> {
    let targets: Vec<Vec<u8>> = hosts
        .iter()
        .map(|h| {
            let name = tlv(0xa0, &tlv(0x86, h.as_bytes()));
            if voms_form {
                seq(&[&name])
            } else {
                name
            }
        })
        .collect();
    let refs: Vec<&[u8]> = targets.iter().map(|t| t.as_slice()).collect();
    let value = seq(&[&seq(&refs)]);
    seq(&[OID_TARGETS, &[0x01, 0x01, 0xff], &tlv(0x04, &value)])
}
