//! Algorithm policy and signature verification (via ring).
//!
//! The default ([`AlgorithmPolicy::modern`]) follows current IGTF/WLCG guidance: SHA-2 signatures
//! only (RSA PKCS#1 v1.5, ECDSA P-256/P-384, Ed25519) and RSA keys of at least 2048 bits. MD5 and
//! SHA-1 are broken for collision resistance, which is what a certificate signature relies on.
//! [`AlgorithmPolicy::legacy`] additionally admits SHA-1 and 1024-bit RSA for old credentials; MD5
//! is never admitted by any policy a production build can construct.
//!
//! One policy value, one set of refusal codes, for every signature pilotbox checks (as rustls
//! passes one `WebPkiSupportedAlgorithms` everywhere): the proxy chain's certificates and their
//! keys (`chain::validate`), CRL signatures (`chain::check_revocation`), the VOMS AC signature and
//! the AA key (`voms::verify`) and the AA's certificate chain (`chain::verify_ca_issued_chain`).
//! A signature or key the policy refuses is `weak_algorithm` / `weak_key` /
//! `unsupported_algorithm` wherever it occurs; only a signature that does not verify is
//! `bad_signature`.

use super::error::CredentialError;
use ring::signature::{self as sig, VerificationAlgorithm};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Which signature algorithms and key sizes are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmPolicy {
    allow_sha1: bool,
    min_rsa_bits: usize,
    /// Test-only: accept MD5 signatures without checking them (see `insecure_test_only`).
    md5_unchecked: bool,
}

impl Default for AlgorithmPolicy {
    fn default() -> Self {
        Self::modern()
    }
}

impl AlgorithmPolicy {
    /// SHA-2 only, RSA ≥ 2048 bits.
    pub const fn modern() -> Self {
        AlgorithmPolicy {
            allow_sha1: false,
            min_rsa_bits: 2048,
            md5_unchecked: false,
        }
    }

    /// Also SHA-1 signatures and RSA ≥ 1024 bits (`--legacy-algorithms`). MD5 stays rejected.
    pub const fn legacy() -> Self {
        AlgorithmPolicy {
            allow_sha1: true,
            min_rsa_bits: 1024,
            md5_unchecked: false,
        }
    }

    /// TEST ONLY (feature `insecure-test-algorithms`, enabled only by this crate's own tests):
    /// like [`legacy`](Self::legacy), and MD5 signatures are accepted **without being checked**
    /// (ring has no MD5). It exists so that the MD5-signed canl-java conformance vectors can
    /// exercise the structural proxy rules; it is unreachable from any production build.
    #[cfg(feature = "insecure-test-algorithms")]
    pub const fn insecure_test_only() -> Self {
        AlgorithmPolicy {
            allow_sha1: true,
            min_rsa_bits: 1024,
            md5_unchecked: true,
        }
    }

    pub fn allows_sha1(&self) -> bool {
        self.allow_sha1
    }

    pub fn min_rsa_bits(&self) -> usize {
        self.min_rsa_bits
    }

    /// Rejects an RSA key below the minimum size (`subject` names its certificate).
    pub fn check_key(
        &self,
        subject: &str,
        spki: &SubjectPublicKeyInfo<'_>,
    ) -> Result<(), CredentialError> {
        match spki.parsed() {
            Ok(PublicKey::RSA(k)) => {
                let bits = rsa_bits(k.modulus);
                if bits < self.min_rsa_bits {
                    return Err(CredentialError::WeakKey {
                        subject: subject.into(),
                        bits,
                        min: self.min_rsa_bits,
                    });
                }
                Ok(())
            }
            Ok(PublicKey::EC(_)) => match ec_curve(spki) {
                Some(_) => Ok(()),
                None => Err(CredentialError::UnsupportedAlgorithm {
                    subject: subject.into(),
                    what: "elliptic curve (only P-256 and P-384)".into(),
                }),
            },
            Ok(PublicKey::Unknown(_)) if spki.algorithm.algorithm.to_id_string() == OID_ED25519 => {
                Ok(())
            }
            _ => Err(CredentialError::UnsupportedAlgorithm {
                subject: subject.into(),
                what: format!(
                    "public key algorithm {}",
                    spki.algorithm.algorithm.to_id_string()
                ),
            }),
        }
    }

    /// Whether the signature algorithm `alg_oid` is acceptable at all, before any key is
    /// looked at (`subject` names the signed object): MD2/MD4/MD5 and ECDSA-SHA1 never, SHA-1
    /// RSA only when the policy allows SHA-1, anything ring cannot verify is unsupported. The
    /// AC verifier calls this first, so a weak AC is refused as such even when its AA is unknown.
    pub fn check_algorithm(&self, subject: &str, alg_oid: &str) -> Result<(), CredentialError> {
        let weak = || CredentialError::WeakAlgorithm {
            subject: subject.into(),
            algorithm: algorithm_name(alg_oid).into(),
        };
        match alg_oid {
            OID_MD5_RSA if self.md5_unchecked => Ok(()),
            OID_MD5_RSA | OID_MD2_RSA | OID_MD4_RSA | OID_ECDSA_SHA1 => Err(weak()),
            OID_SHA1_RSA | OID_SHA1_RSA_OIW if !self.allow_sha1 => Err(weak()),
            OID_SHA1_RSA | OID_SHA1_RSA_OIW | OID_SHA256_RSA | OID_SHA384_RSA | OID_SHA512_RSA
            | OID_ECDSA_SHA256 | OID_ECDSA_SHA384 | OID_ED25519 => Ok(()),
            other => Err(CredentialError::UnsupportedAlgorithm {
                subject: subject.into(),
                what: format!("signature algorithm {}", algorithm_name(other)),
            }),
        }
    }

    /// Verifies `signature` over `signed` made with algorithm `alg_oid` by the key `signer`.
    /// `subject`/`issuer` name the signed object and its signer for the error message.
    pub fn verify(
        &self,
        subject: &str,
        issuer: &str,
        alg_oid: &str,
        signer: &SubjectPublicKeyInfo<'_>,
        signed: &[u8],
        signature: &[u8],
    ) -> Result<(), CredentialError> {
        self.check_algorithm(subject, alg_oid)?;
        let rsa = |modern: &'static dyn VerificationAlgorithm,
                   legacy: Option<&'static dyn VerificationAlgorithm>| {
            match signer.parsed() {
                Ok(PublicKey::RSA(k)) if rsa_bits(k.modulus) >= 2048 => Ok(modern),
                Ok(PublicKey::RSA(k)) if rsa_bits(k.modulus) >= self.min_rsa_bits => legacy
                    .ok_or_else(|| CredentialError::UnsupportedAlgorithm {
                        subject: subject.into(),
                        what: format!("{} with a key under 2048 bits", algorithm_name(alg_oid)),
                    }),
                Ok(PublicKey::RSA(k)) => Err(CredentialError::WeakKey {
                    subject: issuer.into(),
                    bits: rsa_bits(k.modulus),
                    min: self.min_rsa_bits,
                }),
                _ => Err(CredentialError::UnsupportedAlgorithm {
                    subject: subject.into(),
                    what: format!("{} with a non-RSA signer key", algorithm_name(alg_oid)),
                }),
            }
        };
        let ecdsa = |p256: &'static dyn VerificationAlgorithm,
                     p384: &'static dyn VerificationAlgorithm| match ec_curve(
            signer,
        ) {
            Some(256) => Ok(p256),
            Some(_) => Ok(p384),
            None => Err(CredentialError::UnsupportedAlgorithm {
                subject: subject.into(),
                what: "ECDSA signer key not on P-256/P-384".into(),
            }),
        };
        let alg: &'static dyn VerificationAlgorithm = match alg_oid {
            // check_algorithm admitted it: only the test-only policy gets here, unchecked.
            OID_MD5_RSA => return Ok(()),
            OID_SHA1_RSA | OID_SHA1_RSA_OIW => rsa(
                &sig::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
                Some(&sig::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY),
            )?,
            OID_SHA256_RSA => rsa(
                &sig::RSA_PKCS1_2048_8192_SHA256,
                Some(&sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY),
            )?,
            OID_SHA384_RSA => rsa(&sig::RSA_PKCS1_2048_8192_SHA384, None)?,
            OID_SHA512_RSA => rsa(
                &sig::RSA_PKCS1_2048_8192_SHA512,
                Some(&sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY),
            )?,
            OID_ECDSA_SHA256 => ecdsa(&sig::ECDSA_P256_SHA256_ASN1, &sig::ECDSA_P384_SHA256_ASN1)?,
            OID_ECDSA_SHA384 => ecdsa(&sig::ECDSA_P256_SHA384_ASN1, &sig::ECDSA_P384_SHA384_ASN1)?,
            OID_ED25519 => &sig::ED25519,
            other => unreachable!("check_algorithm admitted {other}"),
        };
        sig::UnparsedPublicKey::new(alg, &signer.subject_public_key.data)
            .verify(signed, signature)
            .map_err(|_| CredentialError::BadSignature {
                subject: subject.into(),
                issuer: issuer.into(),
            })
    }
}

const OID_MD2_RSA: &str = "1.2.840.113549.1.1.2";
const OID_MD4_RSA: &str = "1.2.840.113549.1.1.3";
const OID_MD5_RSA: &str = "1.2.840.113549.1.1.4";
const OID_SHA1_RSA: &str = "1.2.840.113549.1.1.5";
const OID_SHA1_RSA_OIW: &str = "1.3.14.3.2.29";
const OID_SHA256_RSA: &str = "1.2.840.113549.1.1.11";
const OID_SHA384_RSA: &str = "1.2.840.113549.1.1.12";
const OID_SHA512_RSA: &str = "1.2.840.113549.1.1.13";
const OID_ECDSA_SHA1: &str = "1.2.840.10045.4.1";
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// The OpenSSL name of a signature algorithm OID, for messages.
pub fn algorithm_name(oid: &str) -> &str {
    match oid {
        OID_MD2_RSA => "md2WithRSAEncryption",
        OID_MD4_RSA => "md4WithRSAEncryption",
        OID_MD5_RSA => "md5WithRSAEncryption",
        OID_SHA1_RSA | OID_SHA1_RSA_OIW => "sha1WithRSAEncryption",
        OID_SHA256_RSA => "sha256WithRSAEncryption",
        OID_SHA384_RSA => "sha384WithRSAEncryption",
        OID_SHA512_RSA => "sha512WithRSAEncryption",
        OID_ECDSA_SHA1 => "ecdsa-with-SHA1",
        OID_ECDSA_SHA256 => "ecdsa-with-SHA256",
        OID_ECDSA_SHA384 => "ecdsa-with-SHA384",
        OID_ECDSA_SHA512 => "ecdsa-with-SHA512",
        OID_ED25519 => "ED25519",
        other => other,
    }
}

/// Size in bits of a big-endian modulus (leading zero octets and bits ignored).
pub fn rsa_bits(modulus: &[u8]) -> usize {
    let m = match modulus.iter().position(|b| *b != 0) {
        Some(i) => &modulus[i..],
        None => return 0,
    };
    m.len() * 8 - m[0].leading_zeros() as usize
}

/// The curve of an EC key: 256 (P-256) or 384 (P-384), None for any other.
fn ec_curve(spki: &SubjectPublicKeyInfo<'_>) -> Option<u32> {
    let curve = spki
        .algorithm
        .parameters
        .as_ref()?
        .as_oid()
        .ok()?
        .to_id_string();
    match curve.as_str() {
        OID_P256 => Some(256),
        OID_P384 => Some(384),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits() {
        assert_eq!(rsa_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(rsa_bits(&[0x01, 0xff]), 9);
        assert_eq!(rsa_bits(&[]), 0);
    }

    #[test]
    fn policies() {
        assert!(!AlgorithmPolicy::modern().allows_sha1());
        assert_eq!(AlgorithmPolicy::modern().min_rsa_bits(), 2048);
        assert!(AlgorithmPolicy::legacy().allows_sha1());
    }
}
