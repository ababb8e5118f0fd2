//! Parsers for the two textual DN forms.
//!
//! - Slash form (OpenSSL `X509_NAME_oneline`, grid-mapfiles, LCMAPS, `.lsc` files): attributes
//!   most-general first, `\xHH` for bytes outside printable ASCII, and a "/" inside a value *not*
//!   escaped. The resulting ambiguity is resolved as Argus and canl-java `OpensslNameUtils` do:
//!   a "/"-separated component that does not start with `type=` is glued to the previous value
//!   with its "/" (`/CN=cmspilot02/vocms080.cern.ch` is one CN), and `\/` is an escaped "/".
//!   Any other backslash is literal, because `X509_NAME_oneline` does not escape backslashes.
//! - RFC 2253 / RFC 4514 (`CN=Alice,O=Example,C=UK`): RDNs most-specific first, `\` escapes
//!   (`\,` or `\2C`), quoted values and `;` separators as RFC 1779 allowed, `#hex` BER values
//!   (section 2.4). Multi-valued RDNs (`+`) keep their members' order and are flattened, as
//!   `X509_NAME_oneline` flattens them.

use super::attributes::{canonical_label, valid_attr_type};
use super::{Attribute, Dn, DnError};

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Decodes `\xHH` and `\/` in a slash-form value; every other byte (also a lone backslash) is
/// literal.
fn unescape_slash_value(v: &str) -> Vec<u8> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let n = b[i + 1];
            if n == b'x' || n == b'X' {
                if let (Some(h), Some(l)) = (
                    b.get(i + 2).and_then(|c| hex(*c)),
                    b.get(i + 3).and_then(|c| hex(*c)),
                ) {
                    out.push(h << 4 | l);
                    i += 4;
                    continue;
                }
            }
            if n == b'/' {
                out.push(n);
                i += 2;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Byte offset of the first `=` not preceded by a backslash escape.
fn find_unescaped_eq(comp: &str) -> Option<usize> {
    let b = comp.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'=' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Parses the slash form (`s` already trimmed).
pub(super) fn parse_slash(s: &str) -> Result<Dn, DnError> {
    if s.is_empty() {
        return Err(DnError::Empty);
    }
    let rest = s
        .strip_prefix('/')
        .ok_or_else(|| DnError::NoLeadingSlash(s.into()))?;
    // Split on "/" not escaped by a backslash (the escape is kept for unescape_slash_value).
    let mut comps: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '/' => comps.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    comps.push(cur);
    let mut attrs: Vec<(String, String)> = Vec::new();
    for comp in comps {
        // A component starts a new attribute only if what precedes '=' is an attribute type;
        // otherwise it is the continuation of a value that contained an unescaped "/".
        match find_unescaped_eq(&comp).filter(|&eq| valid_attr_type(&comp[..eq])) {
            Some(eq) => attrs.push((comp[..eq].to_string(), comp[eq + 1..].to_string())),
            None => match attrs.last_mut() {
                Some(last) => {
                    last.1.push('/');
                    last.1.push_str(&comp);
                }
                None => return Err(DnError::DanglingComponent(comp)),
            },
        }
    }
    Ok(Dn(attrs
        .into_iter()
        .map(|(l, v)| Attribute {
            label: canonical_label(&l),
            value: unescape_slash_value(&v),
        })
        .collect()))
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    i
}

/// Parses RFC 2253 (`s` already trimmed), returning the attributes in certificate (slash) order.
pub(super) fn parse_rfc2253(s: &str) -> Result<Dn, DnError> {
    if s.is_empty() {
        return Err(DnError::Empty);
    }
    let bad = || DnError::BadValue(s.to_string());
    let b = s.as_bytes();
    let mut rdns: Vec<Vec<Attribute>> = vec![Vec::new()];
    let mut i = 0;
    loop {
        // attributeType '='
        let start = skip_spaces(b, i);
        i = start;
        while i < b.len() && !matches!(b[i], b'=' | b',' | b';' | b'+') {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(DnError::DanglingComponent(s[start..i].to_string()));
        }
        let label = &s[start..i];
        if !valid_attr_type(label) {
            return Err(DnError::BadAttributeType(label.to_string()));
        }
        i = skip_spaces(b, i + 1);
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'#' {
            i += 1;
            let hs = i;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            value = decode_hex_der(&s[hs..i]).ok_or_else(bad)?;
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
                return Err(bad());
            }
            i += 1;
        } else {
            // Unquoted: up to the next unescaped separator; trailing unescaped spaces dropped.
            let mut trailing_spaces = 0;
            while i < b.len() && !matches!(b[i], b',' | b';' | b'+') {
                if b[i] == b'\\' {
                    let n1 = b.get(i + 1).copied().ok_or_else(bad)?;
                    match (hex(n1), b.get(i + 2).and_then(|c| hex(*c))) {
                        (Some(h), Some(l)) => {
                            value.push(h << 4 | l);
                            i += 3;
                        }
                        _ => {
                            value.push(n1);
                            i += 2;
                        }
                    }
                    trailing_spaces = 0;
                    continue;
                }
                trailing_spaces = if b[i] == b' ' { trailing_spaces + 1 } else { 0 };
                value.push(b[i]);
                i += 1;
            }
            value.truncate(value.len() - trailing_spaces);
        }
        if let Some(rdn) = rdns.last_mut() {
            rdn.push(Attribute {
                label: canonical_label(label),
                value,
            });
        }
        i = skip_spaces(b, i);
        if i >= b.len() {
            break;
        }
        match b[i] {
            b'+' => {}
            b',' | b';' => rdns.push(Vec::new()),
            _ => {
                return Err(DnError::MissingSeparator(
                    String::from_utf8_lossy(&b[i..]).into_owned(),
                ))
            }
        }
        i += 1;
    }
    rdns.reverse();
    Ok(Dn(rdns.into_iter().flatten().collect()))
}

/// `#hex` values are the BER encoding of the value (RFC 2253 section 2.4): return the content
/// octets, minus the unused-bits octet for a BIT STRING. Single-byte tags only (all string and
/// bit-string types).
fn decode_hex_der(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) || h.is_empty() {
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
