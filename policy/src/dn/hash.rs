//! The OpenSSL ≥ 1.0 subject hash of a DN string: the `<hash>.0` file names of a trust
//! directory (`openssl x509 -subject_hash`).

use super::attributes::oid_for_label;
use super::{Dn, DnError};

/// The OpenSSL ≥ 1.0 subject hash of a DN given as a string, every value taken as a
/// UTF8String: SHA-1 over the canonical name encoding (OpenSSL `x509_name_canon`: each RDN's
/// values lower-cased, leading/trailing white space removed, inner runs collapsed to one space,
/// the RDN SETs concatenated without the outer SEQUENCE), first four bytes read little-endian.
pub fn openssl_subject_hash_of(dn: &str) -> Result<String, DnError> {
    let d = Dn::parse(dn)?;
    let mut canon = Vec::new();
    for a in &d.0 {
        let oid_der = encode_oid(oid_for_label(&a.label))
            .ok_or_else(|| DnError::BadAttributeType(a.label.clone()))?;
        let text = String::from_utf8_lossy(&a.value);
        let value: String = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase();
        let mut atv = der_tlv(0x06, &oid_der);
        atv.extend(der_tlv(0x0c, value.as_bytes()));
        canon.extend(der_tlv(0x31, &der_tlv(0x30, &atv)));
    }
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &canon);
    let d = digest.as_ref();
    Ok(format!(
        "{:08x}",
        u32::from_le_bytes([d[0], d[1], d[2], d[3]])
    ))
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// DER content octets of a dotted OID (X.690 section 8.19).
fn encode_oid(dotted: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse().ok())
        .collect::<Option<_>>()?;
    if arcs.len() < 2 || arcs[0] > 2 {
        return None;
    }
    let mut out = Vec::new();
    let first = arcs[0].checked_mul(40)?.checked_add(arcs[1])?;
    for arc in std::iter::once(first).chain(arcs[2..].iter().copied()) {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            chunk.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        chunk.reverse();
        out.extend(chunk);
    }
    Some(out)
}
