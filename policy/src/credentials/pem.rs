//! Bounded reading of a proxy file: PEM certificates (leaf first) and the proxy's private key.
//!
//! grid-proxy-init writes `CERTIFICATE` (the proxy), `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY`
//! (PKCS#1, voms-proxy-fake), then the issuing certificates (RFC 7468 textual encodings). Limits
//! keep a hostile file from costing more than a bounded amount of memory and time: the whole file,
//! every block and the number of certificates are capped, and anything unexpected is an error,
//! never a panic. The PEM decoding itself is `pem-rfc7468` (RustCrypto), see [`pem_blocks`].

use super::error::CredentialError;
use x509_parser::der_parser::ber::BerObjectContent;
use x509_parser::der_parser::der::parse_der;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Largest proxy file accepted (a real one is a few KiB).
pub const MAX_PROXY_FILE: usize = 1024 * 1024;
/// Most certificates accepted in one file (proxies + end entity + CAs).
pub const MAX_CERTIFICATES: usize = 16;

/// How the private key was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// `RSA PRIVATE KEY`: RFC 8017 RSAPrivateKey.
    Pkcs1,
    /// `PRIVATE KEY`: RFC 5208 PrivateKeyInfo.
    Pkcs8,
    /// `EC PRIVATE KEY`: RFC 5915 ECPrivateKey.
    Sec1,
}

/// The private key block of a proxy file (DER).
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey {
    pub format: KeyFormat,
    pub der: Vec<u8>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "PrivateKey({:?}, {} bytes)", self.format, self.der.len())
    }
}

/// A proxy file split into its parts.
#[derive(Debug, Clone, Default)]
pub struct ProxyFile {
    /// Certificate DERs in file order (leaf first).
    pub certs: Vec<Vec<u8>>,
    pub key: Option<PrivateKey>,
}

/// Splits a PEM proxy file. Text outside `-----BEGIN`/`-----END` blocks is ignored, as OpenSSL does.
pub fn read_proxy_file(bytes: &[u8]) -> Result<ProxyFile, CredentialError> {
    if bytes.len() > MAX_PROXY_FILE {
        return Err(CredentialError::TooLarge {
            what: "proxy file",
            size: bytes.len(),
            limit: MAX_PROXY_FILE,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        CredentialError::Pem(format!(
            "not text (invalid UTF-8 at byte {})",
            e.valid_up_to()
        ))
    })?;
    let mut out = ProxyFile::default();
    for block in pem_blocks(text)? {
        match block.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                if out.certs.len() == MAX_CERTIFICATES {
                    return Err(CredentialError::ChainTooLong {
                        count: out.certs.len() + 1,
                        limit: MAX_CERTIFICATES,
                    });
                }
                out.certs.push(block.der);
            }
            "RSA PRIVATE KEY" | "PRIVATE KEY" | "EC PRIVATE KEY" => {
                if block.encrypted {
                    return Err(CredentialError::MalformedKey(
                        "the private key is encrypted; a proxy key must not be".into(),
                    ));
                }
                if out.key.is_some() {
                    return Err(CredentialError::MalformedKey(
                        "more than one private key in the file".into(),
                    ));
                }
                let format = match block.label.as_str() {
                    "RSA PRIVATE KEY" => KeyFormat::Pkcs1,
                    "PRIVATE KEY" => KeyFormat::Pkcs8,
                    _ => KeyFormat::Sec1,
                };
                out.key = Some(PrivateKey {
                    format,
                    der: block.der,
                });
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(CredentialError::MalformedKey(
                    "the private key is encrypted; a proxy key must not be".into(),
                ))
            }
            other => {
                return Err(CredentialError::Pem(format!(
                    "unexpected PEM block {other:?}"
                )))
            }
        }
    }
    if out.certs.is_empty() {
        return Err(CredentialError::NoCertificate);
    }
    Ok(out)
}

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    pub label: String,
    pub der: Vec<u8>,
    /// RFC 1421 `Proc-Type: 4,ENCRYPTED` header present.
    pub encrypted: bool,
}

/// All PEM blocks of a text, in order (RFC 7468 with RFC 1421 headers tolerated).
///
/// This is the one PEM reader of `policy` (proxy files, trust directory, vomsdir). The framing
/// is ours because callers rely on it: text outside blocks ignored (as OpenSSL does), each block's
/// END label must match its BEGIN label, a new boundary inside an open block is an error, RFC 1421
/// headers (`Proc-Type: 4,ENCRYPTED`, `DEK-Info`) are recognised so an encrypted key is refused
/// as such, and errors name the block's first line. Each block is then decoded by
/// RustCrypto's `pem-rfc7468` (strict RFC 7468 grammar, constant-time `base64ct`: canonical
/// base64 only, padding and trailing bits checked), on the block rebuilt in the strict form.
pub fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, CredentialError> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut b64 = String::new();
        let mut encrypted = false;
        let mut closed = false;
        for (_, l) in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            if l.starts_with("-----") {
                return Err(CredentialError::Pem(format!(
                    "block {label:?} starting on line {} is not closed before {l:?}",
                    n + 1
                )));
            }
            if let Some((k, v)) = l.split_once(':') {
                if k == "Proc-Type" && v.contains("ENCRYPTED") {
                    encrypted = true;
                }
                continue; // RFC 1421 header
            }
            b64.push_str(l);
        }
        if !closed {
            return Err(CredentialError::Pem(format!(
                "block {label:?} starting on line {} has no END line",
                n + 1
            )));
        }
        if b64.is_empty() {
            return Err(CredentialError::Pem(format!(
                "block {label:?} starting on line {} is empty",
                n + 1
            )));
        }
        let der = decode_block(label, &b64).map_err(|why| {
            CredentialError::Pem(format!(
                "block {label:?} starting on line {} is not valid base64 ({why})",
                n + 1
            ))
        })?;
        blocks.push(PemBlock {
            label: label.to_string(),
            der,
            encrypted,
        });
    }
    Ok(blocks)
}

/// Decodes one block's base64 (`b64`: its lines, trimmed and joined, headers removed) with
/// `pem-rfc7468`. The block is rebuilt in RFC 7468's strict form, re-wrapped at 64 columns:
/// line width carries no meaning and OpenSSL accepts any, so neither do we, while everything
/// else (label grammar, alphabet, padding, non-canonical trailing bits) is the crate's strict
/// check.
fn decode_block(label: &str, b64: &str) -> Result<Vec<u8>, String> {
    let mut doc = Vec::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 32);
    doc.extend_from_slice(b"-----BEGIN ");
    doc.extend_from_slice(label.as_bytes());
    doc.extend_from_slice(b"-----\n");
    for line in b64.as_bytes().chunks(64) {
        doc.extend_from_slice(line);
        doc.push(b'\n');
    }
    doc.extend_from_slice(b"-----END ");
    doc.extend_from_slice(label.as_bytes());
    doc.extend_from_slice(b"-----\n");
    let (decoded_label, der) = pem_rfc7468::decode_vec(&doc).map_err(|e| e.to_string())?;
    if decoded_label != label {
        return Err(format!("label {decoded_label:?} read back as {label:?}"));
    }
    Ok(der)
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[i..]
}

fn key_err(s: &str) -> CredentialError {
    CredentialError::MalformedKey(s.to_string())
}

/// The public half a private key implies: RSA (n, e) or an EC point.
#[derive(Debug, PartialEq, Eq)]
enum PublicHalf {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec(Vec<u8>),
}

fn seq_items<'a>(
    der: &'a [u8],
    what: &str,
) -> Result<Vec<x509_parser::der_parser::ber::BerObject<'a>>, CredentialError> {
    let (rest, obj) = parse_der(der).map_err(|_| key_err(&format!("{what} is not valid DER")))?;
    if !rest.is_empty() {
        return Err(key_err(&format!("{what} has trailing bytes")));
    }
    match obj.content {
        BerObjectContent::Sequence(items) => Ok(items),
        _ => Err(key_err(&format!("{what} is not a SEQUENCE"))),
    }
}

fn int_bytes<'a>(
    o: &x509_parser::der_parser::ber::BerObject<'a>,
    what: &str,
) -> Result<&'a [u8], CredentialError> {
    match &o.content {
        BerObjectContent::Integer(b) => Ok(b),
        _ => Err(key_err(&format!("{what} is not an INTEGER"))),
    }
}

fn pkcs1_public(der: &[u8]) -> Result<PublicHalf, CredentialError> {
    // RFC 8017 A.1.2: RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, ... }
    let items = seq_items(der, "RSAPrivateKey")?;
    if items.len() < 9 {
        return Err(key_err("RSAPrivateKey has too few fields"));
    }
    Ok(PublicHalf::Rsa {
        n: strip_zeros(int_bytes(&items[1], "modulus")?).to_vec(),
        e: strip_zeros(int_bytes(&items[2], "publicExponent")?).to_vec(),
    })
}

fn sec1_public(der: &[u8]) -> Result<PublicHalf, CredentialError> {
    // RFC 5915: ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING,
    //   parameters [0] OPTIONAL, publicKey [1] BIT STRING OPTIONAL }
    let items = seq_items(der, "ECPrivateKey")?;
    for item in items.iter().skip(2) {
        if item.header.raw_tag() == Some(&[0xa1])
            || (item.header.is_contextspecific() && item.header.tag().0 == 1)
        {
            let inner = match &item.content {
                BerObjectContent::Unknown(any) => any.data,
                _ => return Err(key_err("ECPrivateKey publicKey is malformed")),
            };
            let (_, bits) =
                parse_der(inner).map_err(|_| key_err("ECPrivateKey publicKey is not DER"))?;
            if let BerObjectContent::BitString(_, b) = bits.content {
                return Ok(PublicHalf::Ec(b.data.to_vec()));
            }
        }
    }
    Err(key_err(
        "ECPrivateKey carries no public key, so it cannot be matched to the certificate",
    ))
}

impl PrivateKey {
    fn public_half(&self) -> Result<PublicHalf, CredentialError> {
        match self.format {
            KeyFormat::Pkcs1 => pkcs1_public(&self.der),
            KeyFormat::Sec1 => sec1_public(&self.der),
            KeyFormat::Pkcs8 => {
                // RFC 5208: PrivateKeyInfo ::= SEQUENCE { version, privateKeyAlgorithm, privateKey OCTET STRING, ... }
                let items = seq_items(&self.der, "PrivateKeyInfo")?;
                if items.len() < 3 {
                    return Err(key_err("PrivateKeyInfo has too few fields"));
                }
                let alg = match &items[1].content {
                    BerObjectContent::Sequence(a) if !a.is_empty() => a[0]
                        .as_oid()
                        .map_err(|_| key_err("bad key algorithm"))?
                        .to_id_string(),
                    _ => return Err(key_err("PrivateKeyInfo algorithm is malformed")),
                };
                let inner = match &items[2].content {
                    BerObjectContent::OctetString(b) => *b,
                    _ => return Err(key_err("PrivateKeyInfo privateKey is not an OCTET STRING")),
                };
                match alg.as_str() {
                    "1.2.840.113549.1.1.1" => pkcs1_public(inner),
                    "1.2.840.10045.2.1" => sec1_public(inner),
                    other => Err(key_err(&format!(
                        "unsupported private key algorithm {other}"
                    ))),
                }
            }
        }
    }

    /// Whether this private key belongs to the certificate public key `spki`.
    ///
    /// Compares the public half the private key carries (RSA n and e, or the EC point) with
    /// the certificate's key. For RSA keys ring also checks that the private components are
    /// consistent with n (p·q = n, CRT values), when the key size is one ring accepts.
    pub fn matches(&self, spki: &SubjectPublicKeyInfo<'_>) -> Result<bool, CredentialError> {
        let mine = self.public_half()?;
        if let (PublicHalf::Rsa { .. }, KeyFormat::Pkcs1 | KeyFormat::Pkcs8) = (&mine, self.format)
        {
            let checked = match self.format {
                KeyFormat::Pkcs1 => ring::rsa::KeyPair::from_der(&self.der),
                _ => ring::rsa::KeyPair::from_pkcs8(&self.der),
            };
            if let Err(e) = checked {
                if e.to_string() == "InconsistentComponents" || e.to_string() == "InvalidEncoding" {
                    return Err(key_err(&format!("RSA private key rejected: {e}")));
                }
            }
        }
        let theirs = match spki.parsed() {
            Ok(PublicKey::RSA(k)) => PublicHalf::Rsa {
                n: strip_zeros(k.modulus).to_vec(),
                e: strip_zeros(k.exponent).to_vec(),
            },
            Ok(PublicKey::EC(p)) => PublicHalf::Ec(p.data().to_vec()),
            _ => {
                return Err(key_err(
                    "the certificate's public key type is not supported",
                ))
            }
        };
        Ok(mine == theirs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(b64: &str) -> Result<Vec<u8>, CredentialError> {
        let text = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
        pem_blocks(&text).map(|mut v| v.remove(0).der)
    }

    #[test]
    fn base64_rejects_garbage_and_decodes_padding() {
        assert_eq!(block("aGk=").unwrap(), b"hi");
        assert_eq!(block("aGVsbG8h").unwrap(), b"hello!");
        for bad in ["aGk", "a=Gk", "aG*=", "aGk=aGk=", "aGk==", "aG\u{e9}="] {
            let e = block(bad).unwrap_err();
            assert_eq!(e.code(), "malformed_pem", "{bad:?}");
            assert!(e.to_string().contains("line 1 is not valid base64"), "{e}");
        }
        // Non-canonical encodings (non-zero unused trailing bits) are refused: "aGl=" would
        // decode to "hi" too; the hand-written decoder accepted it.
        assert_eq!(block("aGl=").unwrap_err().code(), "malformed_pem");
    }

    #[test]
    fn framing_labels_order_headers_and_line_numbers() {
        // Text outside blocks ignored; any line wrapping; CRLF; order and labels kept.
        let text =
            "junk\r\n-----BEGIN CERTIFICATE-----\r\naG\r\nk=\r\n-----END CERTIFICATE-----\r\n\
                    between\n-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                    DEK-Info: AES-128-CBC,00\n\naGVsbG8h\n-----END RSA PRIVATE KEY-----\n";
        let blocks = pem_blocks(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].label.as_str(), &blocks[0].der[..]),
            ("CERTIFICATE", &b"hi"[..])
        );
        assert!(!blocks[0].encrypted);
        assert_eq!(blocks[1].label, "RSA PRIVATE KEY");
        assert!(blocks[1].encrypted);
        // Errors name the block's first line.
        let e = pem_blocks("\n\n-----BEGIN CERTIFICATE-----\naGk=\n-----END X509 CRL-----\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed PEM: block \"CERTIFICATE\" starting on line 3 is not closed before \"-----END X509 CRL-----\""
        );
        let e =
            pem_blocks("x\n-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").unwrap_err();
        assert!(
            e.to_string().ends_with("starting on line 2 is empty"),
            "{e}"
        );
        let e = pem_blocks("-----BEGIN CERTIFICATE-----\naGk=\n").unwrap_err();
        assert!(
            e.to_string()
                .ends_with("starting on line 1 has no END line"),
            "{e}"
        );
        // A label outside RFC 7468's grammar is refused by the crate.
        let e = pem_blocks("-----BEGIN  BAD--LABEL-----\naGk=\n-----END  BAD--LABEL-----\n")
            .unwrap_err();
        assert_eq!(e.code(), "malformed_pem", "{e}");
    }

    #[test]
    fn truncated_and_empty_files_are_errors() {
        assert_eq!(
            read_proxy_file(b"").unwrap_err(),
            CredentialError::NoCertificate
        );
        let e = read_proxy_file(b"-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap_err();
        assert_eq!(e.code(), "malformed_pem");
        let big = vec![b'A'; MAX_PROXY_FILE + 1];
        assert_eq!(read_proxy_file(&big).unwrap_err().code(), "too_large");
    }
}
