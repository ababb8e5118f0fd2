//! Distinguished names: the OpenSSL one-line ("slash") form grid tools use, RFC 2253, and
//! normalisation so that the same name written either way compares equal.
//!
//! - The slash form follows OpenSSL `X509_NAME_oneline`: every attribute (also each member of a
//!   multi-valued RDN) is written `/label=value` in certificate order, labels are OpenSSL short
//!   names (dotted OID when OpenSSL has none), bytes outside printable ASCII are written `\xHH`,
//!   and a "/" inside a value is *not* escaped. grid-mapfiles, LCMAPS and VOMS all use it.
//! - RFC 2253 (`CN=Alice,O=Example,C=UK`) lists RDNs in reverse order with `\` escaping.
//!
//! Parsing the slash form is ambiguous when a value contains "/" (`CN=host/x.y.z`): like Argus
//! (`OpensslNameUtils`) a segment without "=" is glued to the previous value, and `\/` is an
//! escaped "/".

use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::x509::X509Name;

/// A DN string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    #[error("empty DN")]
    Empty,
    #[error("DN component {0:?} has no '='")]
    NoEquals(String),
    #[error("DN component {0:?} has an empty attribute name")]
    EmptyLabel(String),
    #[error("bad escape or hex value in {0:?}")]
    BadEscape(String),
    #[error("DN is longer than {0} bytes")]
    TooLong(usize),
}

/// Longest DN string we parse (a grid DN is well under 1 KiB).
pub const MAX_DN_LEN: usize = 16 * 1024;

/// (dotted OID, OpenSSL short name, lower-case aliases accepted on input).
const ATTRIBUTES: &[(&str, &str, &[&str])] = &[
    ("2.5.4.6", "C", &["c", "countryname"]),
    ("2.5.4.8", "ST", &["st", "s", "stateorprovincename"]),
    ("2.5.4.7", "L", &["l", "localityname"]),
    ("2.5.4.10", "O", &["o", "organizationname"]),
    ("2.5.4.11", "OU", &["ou", "organizationalunitname"]),
    ("2.5.4.3", "CN", &["cn", "commonname"]),
    (
        "0.9.2342.19200300.100.1.25",
        "DC",
        &["dc", "domaincomponent"],
    ),
    (
        "1.2.840.113549.1.9.1",
        "emailAddress",
        &["emailaddress", "e", "email"],
    ),
    ("0.9.2342.19200300.100.1.1", "UID", &["uid", "userid"]),
    ("2.5.4.5", "serialNumber", &["serialnumber"]),
    ("2.5.4.4", "SN", &["sn", "surname"]),
    ("2.5.4.42", "GN", &["gn", "givenname"]),
    ("2.5.4.12", "title", &["title", "t"]),
    ("2.5.4.43", "initials", &["initials"]),
    (
        "2.5.4.44",
        "generationQualifier",
        &["generationqualifier", "generation"],
    ),
    ("2.5.4.46", "dnQualifier", &["dnqualifier", "dnq"]),
    ("2.5.4.65", "pseudonym", &["pseudonym"]),
    ("2.5.4.9", "street", &["street", "streetaddress"]),
    ("2.5.4.17", "postalCode", &["postalcode"]),
    ("2.5.4.41", "name", &["name"]),
    ("2.5.4.13", "description", &["description"]),
    ("2.5.4.15", "businessCategory", &["businesscategory"]),
    (
        "2.5.4.45",
        "x500UniqueIdentifier",
        &["x500uniqueidentifier"],
    ),
    ("2.5.4.72", "role", &["role"]),
    (
        "1.2.840.113549.1.9.2",
        "unstructuredName",
        &["unstructuredname"],
    ),
];

fn short_name_for_oid(oid: &str) -> Option<&'static str> {
    ATTRIBUTES
        .iter()
        .find(|(o, _, _)| *o == oid)
        .map(|(_, sn, _)| *sn)
}

/// The canonical label for a label written by a human or another tool (case-insensitive,
/// aliases such as `E`/`Email` → `emailAddress`, dotted OIDs of known attributes → short name).
pub fn canonical_label(label: &str) -> String {
    let lower = label.trim().to_ascii_lowercase();
    let lower = lower.strip_prefix("oid.").unwrap_or(&lower);
    for (oid, sn, aliases) in ATTRIBUTES {
        if *oid == lower || aliases.contains(&lower) {
            return (*sn).to_string();
        }
    }
    label.trim().to_string()
}

/// One attribute of a DN: canonical label and the value's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub label: String,
    pub value: Vec<u8>,
}

/// A DN as a flat list of attributes in certificate (slash) order, as OpenSSL's one-line form
/// sees it (multi-valued RDNs are flattened, like `X509_NAME_oneline`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dn(pub Vec<Attribute>);

impl Dn {
    /// From a certificate name.
    pub fn from_x509(name: &X509Name<'_>) -> Dn {
        let mut out = Vec::new();
        for rdn in name.iter_rdn() {
            for ava in rdn.iter() {
                let oid = ava.attr_type().to_id_string();
                let label = short_name_for_oid(&oid).map(str::to_string).unwrap_or(oid);
                out.push(Attribute {
                    label,
                    value: value_bytes(ava.attr_value().tag(), ava.attr_value().data),
                });
            }
        }
        Dn(out)
    }

    /// Parses the OpenSSL slash form or RFC 2253 (anything not starting with "/").
    pub fn parse(s: &str) -> Result<Dn, DnError> {
        if s.len() > MAX_DN_LEN {
            return Err(DnError::TooLong(MAX_DN_LEN));
        }
        let t = s.trim();
        if t.is_empty() {
            return Err(DnError::Empty);
        }
        if t.starts_with('/') {
            parse_slash(t)
        } else {
            parse_rfc2253(t)
        }
    }

    /// OpenSSL `X509_NAME_oneline` form.
    pub fn to_slash(&self) -> String {
        let mut s = String::new();
        for a in &self.0 {
            s.push('/');
            s.push_str(&a.label);
            s.push('=');
            push_oneline_bytes(&mut s, &a.value);
        }
        s
    }

    /// RFC 2253 form (reverse order, escaped). Multi-valued RDNs are not re-grouped; labels are
    /// the OpenSSL short names (the RFC 2253 section 2.3 keywords for the common attributes).
    pub fn to_rfc2253(&self) -> String {
        let mut parts = Vec::with_capacity(self.0.len());
        for a in self.0.iter().rev() {
            parts.push(format!(
                "{}={}",
                a.label,
                escape_rfc2253(&String::from_utf8_lossy(&a.value))
            ));
        }
        parts.join(",")
    }

    /// A key for equality that ignores ASCII case and runs of white space in values and the
    /// spelling of labels (X.520 caseIgnoreMatch, as OpenSSL's canonical name encoding does).
    /// Attributes are separated by control characters, not "/", so that `O=a/OU=b` (one value)
    /// and `O=a` + `OU=b` (two attributes) stay different names.
    pub fn comparison_key(&self) -> String {
        let mut s = String::new();
        for a in &self.0 {
            s.push('\u{1}');
            s.push_str(&a.label.to_ascii_lowercase());
            s.push('\u{2}');
            let v = String::from_utf8_lossy(&a.value).to_lowercase();
            s.push_str(&v.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        s
    }
}

/// The DN of a certificate name in OpenSSL slash form (`/DC=org/DC=example/CN=Alice`).
pub fn openssl_slash(name: &X509Name<'_>) -> String {
    Dn::from_x509(name).to_slash()
}

/// The DN of a certificate name in RFC 2253 form (`CN=Alice,DC=example,DC=org`).
pub fn rfc2253(name: &X509Name<'_>) -> String {
    Dn::from_x509(name).to_rfc2253()
}

/// Normalises a DN written in slash or RFC 2253 form to the canonical slash form: canonical
/// labels (`E`, `Email` → `emailAddress`), values unchanged, certificate order.
pub fn normalize_dn(s: &str) -> Result<String, DnError> {
    Dn::parse(s).map(|d| d.to_slash())
}

/// Whether two DNs (either form) name the same subject, ignoring label spelling, ASCII case and
/// white-space runs in values. Unparseable DNs never match.
pub fn same_dn(a: &str, b: &str) -> bool {
    match (Dn::parse(a), Dn::parse(b)) {
        (Ok(x), Ok(y)) => x.comparison_key() == y.comparison_key(),
        _ => false,
    }
}

/// RFC 2253 → OpenSSL slash form.
pub fn rfc2253_to_openssl(s: &str) -> Result<String, DnError> {
    parse_rfc2253(s.trim()).map(|d| d.to_slash())
}

/// OpenSSL slash form → RFC 2253.
pub fn openssl_to_rfc2253(s: &str) -> Result<String, DnError> {
    parse_slash(s.trim()).map(|d| d.to_rfc2253())
}

/// Content bytes of a directory string as OpenSSL prints them: BMPString and UniversalString
/// whose characters are all Latin-1 are narrowed to one byte per character (OpenSSL `do_name_ex`
/// / `X509_NAME_oneline` "gs_doit" logic); other types are printed as their raw content.
fn value_bytes(tag: Tag, data: &[u8]) -> Vec<u8> {
    let width = match tag {
        Tag::BmpString => 2,
        Tag::UniversalString => 4,
        _ => return data.to_vec(),
    };
    if data.len() % width != 0 {
        return data.to_vec();
    }
    let chunks = data.chunks(width);
    if chunks
        .clone()
        .all(|c| c[..width - 1].iter().all(|b| *b == 0))
    {
        chunks.map(|c| c[width - 1]).collect()
    } else {
        data.to_vec()
    }
}

fn push_oneline_bytes(s: &mut String, v: &[u8]) {
    for &b in v {
        if (b' '..=b'~').contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02X}"));
        }
    }
}

fn escape_rfc2253(v: &str) -> String {
    let mut out = String::new();
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Decodes `\xHH` and `\/` (and `\\`) in a slash-form value.
fn unescape_slash_value(v: &str) -> Result<Vec<u8>, DnError> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if b[i + 1] == b'x' || b[i + 1] == b'X' {
                if let (Some(h), Some(l)) = (
                    b.get(i + 2).and_then(|c| hex(*c)),
                    b.get(i + 3).and_then(|c| hex(*c)),
                ) {
                    out.push(h << 4 | l);
                    i += 4;
                    continue;
                }
            }
            if b[i + 1] == b'/' || b[i + 1] == b'\\' {
                out.push(b[i + 1]);
                i += 2;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Ok(out)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn parse_slash(s: &str) -> Result<Dn, DnError> {
    // Split on "/" not preceded by a backslash; glue segments without '=' to the previous value.
    let mut segments: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        if c == '\\' {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
        } else if c == '/' {
            if !first {
                segments.push(std::mem::take(&mut cur));
            }
            first = false;
        } else {
            cur.push(c);
        }
    }
    segments.push(cur);
    let mut attrs: Vec<(String, String)> = Vec::new();
    for seg in segments {
        match seg.find('=') {
            Some(eq) if !attrs.is_empty() || eq > 0 => {
                let label = &seg[..eq];
                if label.trim().is_empty() {
                    return Err(DnError::EmptyLabel(seg.clone()));
                }
                attrs.push((label.to_string(), seg[eq + 1..].to_string()));
            }
            _ => match attrs.last_mut() {
                Some(last) => {
                    last.1.push('/');
                    last.1.push_str(&seg);
                }
                None if seg.is_empty() => {}
                None => return Err(DnError::NoEquals(seg)),
            },
        }
    }
    if attrs.is_empty() {
        return Err(DnError::Empty);
    }
    let mut out = Vec::with_capacity(attrs.len());
    for (l, v) in attrs {
        out.push(Attribute {
            label: canonical_label(&l),
            value: unescape_slash_value(&v)?,
        });
    }
    Ok(Dn(out))
}

/// Parses RFC 2253 (also accepting ';' separators and quoted values per RFC 1779), returning
/// the attributes in certificate (reversed) order.
fn parse_rfc2253(s: &str) -> Result<Dn, DnError> {
    let b = s.as_bytes();
    let mut attrs = Vec::new();
    let mut i = 0;
    loop {
        // label
        let start = i;
        while i < b.len() && b[i] != b'=' {
            if b[i] == b',' || b[i] == b';' || b[i] == b'+' {
                return Err(DnError::NoEquals(String::from_utf8_lossy(&b[start..i]).into_owned()));
            }
            i += 1;
        }
        if i >= b.len() {
            return Err(DnError::NoEquals(String::from_utf8_lossy(&b[start..]).into_owned()));
        }
        let label_owned = String::from_utf8_lossy(&b[start..i]).into_owned();
        let label = label_owned.trim();
        if label.is_empty() {
            return Err(DnError::EmptyLabel(s.to_string()));
        }
        i += 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'#' {
            i += 1;
            let hs = i;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            value = decode_hex_der(&s[hs..i])
                .ok_or_else(|| DnError::BadEscape(s[hs..i].to_string()))?;
        } else if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
            if i >= b.len() {
                return Err(DnError::BadEscape(s.to_string()));
            }
            i += 1;
        } else {
            let mut trailing_plain_spaces = 0;
            while i < b.len() && !matches!(b[i], b',' | b';' | b'+') {
                if b[i] == b'\\' {
                    let n1 = b
                        .get(i + 1)
                        .copied()
                        .ok_or_else(|| DnError::BadEscape(s.to_string()))?;
                    if let (Some(h), Some(l)) = (hex(n1), b.get(i + 2).and_then(|c| hex(*c))) {
                        value.push(h << 4 | l);
                        i += 3;
                    } else {
                        value.push(n1);
                        i += 2;
                    }
                    trailing_plain_spaces = 0;
                } else {
                    trailing_plain_spaces = if b[i] == b' ' {
                        trailing_plain_spaces + 1
                    } else {
                        0
                    };
                    value.push(b[i]);
                    i += 1;
                }
            }
            value.truncate(value.len() - trailing_plain_spaces);
        }
        attrs.push(Attribute {
            label: canonical_label(label),
            value,
        });
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        // separator: ',' ';' or '+' (multi-valued RDN; flattened like X509_NAME_oneline)
        if !matches!(b[i], b',' | b';' | b'+') {
            return Err(DnError::BadEscape(s.to_string()));
        }
        i += 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
    }
    attrs.reverse();
    Ok(Dn(attrs))
}

/// `#hex` values are the BER encoding of the value (RFC 2253 section 2.4): return the content
/// octets, minus the unused-bits octet for a BIT STRING. Single-byte tags only (all string and
/// bit-string types).
fn decode_hex_der(h: &str) -> Option<Vec<u8>> {
    if h.len() % 2 != 0 || h.is_empty() {
        return None;
    }
    let bytes: Vec<u8> = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).ok())
        .collect::<Option<_>>()?;
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (
            rest[..n].iter().fold(0usize, |a, b| a << 8 | *b as usize),
            &rest[n..],
        )
    };
    if rest.len() != len {
        return None;
    }
    if tag == 0x03 {
        rest.get(1..).map(|c| c.to_vec())
    } else {
        Some(rest.to_vec())
    }
}

/// The OpenSSL ≥ 1.0 subject hash (`openssl x509 -subject_hash`, the `<hash>.0` file names) of
/// a DN given as a string, every value taken as a UTF8String: SHA-1 over the canonical name
/// encoding (OpenSSL `x509_name_canon`: each RDN's values lower-cased, leading/trailing white
/// space removed, inner runs collapsed to one space, the RDN SETs concatenated without the
/// outer SEQUENCE), first four bytes read little-endian.
pub fn openssl_subject_hash_of(dn: &str) -> Result<String, DnError> {
    let d = Dn::parse(dn)?;
    let mut canon = Vec::new();
    for a in &d.0 {
        let oid = ATTRIBUTES
            .iter()
            .find(|(_, sn, _)| *sn == a.label)
            .map(|(o, _, _)| *o)
            .unwrap_or(a.label.as_str());
        let oid_der = encode_oid(oid).ok_or_else(|| DnError::BadEscape(a.label.clone()))?;
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
    let h = u32::from_le_bytes([
        digest.as_ref()[0],
        digest.as_ref()[1],
        digest.as_ref()[2],
        digest.as_ref()[3],
    ]);
    Ok(format!("{h:08x}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_and_rfc2253_round_trip() {
        assert_eq!(
            rfc2253_to_openssl("CN=Valery Tschopp,O=SWITCH,C=ch").unwrap(),
            "/C=ch/O=SWITCH/CN=Valery Tschopp"
        );
        assert_eq!(
            openssl_to_rfc2253("/C=ch/O=SWITCH/CN=Valery Tschopp").unwrap(),
            "CN=Valery Tschopp,O=SWITCH,C=ch"
        );
    }

    #[test]
    fn unescaped_slash_in_value_is_glued() {
        let d = Dn::parse("/DC=ch/DC=cern/OU=computers/CN=cmspilot02/vocms080.cern.ch").unwrap();
        assert_eq!(d.0.last().unwrap().value, b"cmspilot02/vocms080.cern.ch");
        assert!(same_dn(
            "/DC=ch/DC=cern/OU=computers/CN=cmspilot02\\/vocms080.cern.ch",
            "CN=cmspilot02/vocms080.cern.ch,OU=computers,DC=cern,DC=ch"
        ));
    }

    #[test]
    fn labels_are_normalised() {
        assert_eq!(
            normalize_dn("/C=EU/E=a@b/EMAIL=c@d/givenname=x").unwrap(),
            "/C=EU/emailAddress=a@b/emailAddress=c@d/GN=x"
        );
        assert!(Dn::parse("").is_err());
        assert!(Dn::parse("novalue").is_err());
        // found by the dn fuzz target: a multi-byte character right after a quoted value
        assert!(Dn::parse("R=\"/1#=\u{2}\"\u{c4}=u\u{2}").is_err());
    }
}
