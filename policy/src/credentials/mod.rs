//! X.509 proxy credentials: from the bytes of a proxy file to a verified [`Identity`].
//!
//! What is checked, and where (each file cites the rules it follows):
//! - [`pem`]: bounded reading of the proxy file (certificates + the proxy's private key); the
//!   one PEM reader of the crate (blocks decoded by `pem-rfc7468`).
//! - [`cert`]: one certificate, parsed once into the owned facts the checks need.
//! - [`algorithms`]: which signature algorithms and key sizes are acceptable; verification via
//!   ring. One policy value serves the chain, the CRLs and the VOMS AC (see its module docs).
//! - [`proxy`]: RFC 3820 / Globus legacy / GT3 draft proxy profiles and ProxyCertInfo.
//! - [`trust_dir`]: the IGTF trust directory (CA certificates, CRLs, namespaces, signing policies).
//! - [`namespaces`], [`signing_policy`]: the CA namespace policies (EUGridPMA EACL and Globus).
//! - [`chain`]: building and verifying the path proxy → end-entity → CA(s) → trust anchor.
//! - [`verify`]: the entry point [`verify_proxy`] and its options.
//!
//! Everything here parses untrusted bytes and must never panic: every failure is a
//! [`CredentialError`] with a stable machine code ([`CredentialError::code`]) and a human message;
//! `tests/refusal_codes.rs` produces every code from a real credential.
//!
//! [`Identity`]: crate::identity::Identity

pub mod algorithms;
pub mod cert;
pub mod chain;
mod error;
pub mod namespaces;
pub mod pem;
pub mod proxy;
pub mod signing_policy;
pub mod trust_dir;
pub mod verify;
mod voms_hook;

pub use algorithms::AlgorithmPolicy;
pub use error::CredentialError;
pub use trust_dir::TrustDir;
pub use verify::{verify_proxy, verify_with_trust_dir, CrlPolicy, Verified, VerifyOptions};
