//! Distinguished names: the one DN implementation of the crate, shared by the credential
//! verifier, VOMS, authorization, grid-mapfiles and leases.
//!
//! Grid software writes a DN in two textual forms and they must compare equal:
//! - the OpenSSL one-line ("slash") form of `X509_NAME_oneline` (`/DC=org/DC=example/CN=Alice`):
//!   every attribute (also each member of a multi-valued RDN) written `/label=value` in
//!   certificate order, OpenSSL short names (dotted OID when OpenSSL has none), bytes outside
//!   printable ASCII as `\xHH`, a "/" inside a value *not* escaped. grid-mapfiles, LCMAPS, VOMS
//!   `.lsc` files and our verifier's output use it;
//! - RFC 2253 / RFC 4514 (`CN=Alice,DC=example,DC=org`): RDNs in reverse order, `\` escaping.
//!
//! A ban that fails to match because one side wrote `E=` and the other `emailAddress=` is a
//! security bug, so every comparison goes through [`Dn::comparison_key`]: canonical labels,
//! values compared case-insensitively with white-space runs collapsed (X.520 `caseIgnoreMatch`
//! with RFC 4518 insignificant-space handling, as OpenSSL's canonical name encoding does).
//!
//! The slash form's "/"-in-a-value ambiguity is resolved as Argus and canl-java
//! `OpensslNameUtils` do (see `parse`): `/CN=cmspilot02/vocms080.cern.ch` is one CN.

mod attributes;
mod hash;
mod parse;

use std::fmt;

use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::x509::X509Name;

pub use attributes::canonical_label;
pub use hash::openssl_subject_hash_of;

/// Why a DN string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    #[error("empty DN")]
    Empty,
    #[error("DN is longer than {0} bytes")]
    TooLong(usize),
    #[error("slash-form DN {0:?} must start with '/'")]
    NoLeadingSlash(String),
    #[error("DN component {0:?} has no 'type=' and follows no attribute")]
    DanglingComponent(String),
    #[error("{0:?} is not an attribute type (RFC 4514 descr or numericoid)")]
    BadAttributeType(String),
    #[error("bad escape, quoted value or #hex value in {0:?}")]
    BadValue(String),
    #[error("expected ',', ';' or '+' before {0:?}")]
    MissingSeparator(String),
}

/// Longest DN string we parse (a grid DN is well under 1 KiB).
pub const MAX_DN_LEN: usize = 16 * 1024;

/// One attribute of a DN: canonical label (OpenSSL short name or dotted OID) and the value's
/// bytes (UTF-8 in practice, but `#hex` values and `\xHH` escapes may carry any byte).
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
                let label = attributes::short_name_for_oid(&oid)
                    .map(str::to_string)
                    .unwrap_or(oid);
                out.push(Attribute {
                    label,
                    value: value_bytes(ava.attr_value().tag(), ava.attr_value().data),
                });
            }
        }
        Dn(out)
    }

    /// Parses either form: a leading "/" means the slash form, anything else RFC 2253.
    pub fn parse(s: &str) -> Result<Dn, DnError> {
        let t = checked_trim(s)?;
        if t.starts_with('/') {
            parse::parse_slash(t)
        } else {
            parse::parse_rfc2253(t)
        }
    }

    /// Parses the OpenSSL slash form only.
    pub fn parse_slash(s: &str) -> Result<Dn, DnError> {
        parse::parse_slash(checked_trim(s)?)
    }

    /// Parses RFC 2253 / RFC 4514 only.
    pub fn parse_rfc2253(s: &str) -> Result<Dn, DnError> {
        parse::parse_rfc2253(checked_trim(s)?)
    }

    /// OpenSSL `X509_NAME_oneline` form.
    pub fn to_slash(&self) -> String {
        let mut s = String::new();
        for a in &self.0 {
            s.push('/');
            s.push_str(&a.label);
            s.push('=');
            for &b in &a.value {
                if (b' '..=b'~').contains(&b) {
                    s.push(b as char);
                } else {
                    s.push_str(&format!("\\x{b:02X}"));
                }
            }
        }
        s
    }

    /// RFC 2253 form (reverse order, section 2.4 escaping). Multi-valued RDNs are not
    /// re-grouped; labels are the OpenSSL short names (the RFC 2253 section 2.3 keywords for
    /// the common attributes).
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

    /// The key two DNs are compared by: the slash form with lower-cased labels and values and
    /// white-space runs collapsed (X.520 `caseIgnoreMatch`, RFC 4518 section 2.6.1). A "/" or
    /// "\" inside a value is written `\/` / `\\`, so that `O=a/OU=b` (one value) and `O=a` +
    /// `OU=b` (two attributes) stay different keys.
    pub fn comparison_key(&self) -> String {
        let mut s = String::new();
        for a in &self.0 {
            s.push('/');
            s.push_str(&a.label.to_ascii_lowercase());
            s.push('=');
            let v = String::from_utf8_lossy(&a.value).to_lowercase();
            for (i, word) in v.split_whitespace().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                for c in word.chars() {
                    if c == '/' || c == '\\' {
                        s.push('\\');
                    }
                    s.push(c);
                }
            }
        }
        s
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_slash())
    }
}

fn checked_trim(s: &str) -> Result<&str, DnError> {
    if s.len() > MAX_DN_LEN {
        return Err(DnError::TooLong(MAX_DN_LEN));
    }
    match s.trim() {
        "" => Err(DnError::Empty),
        t => Ok(t),
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

/// The [`Dn::comparison_key`] of a DN written in either form (`/c=eu/emailaddress=a@b/gn=x`
/// for `/C=EU/E=a@b/givenname=X`, as canl-java's `OpensslNameUtils.normalize`).
pub fn normalize_dn(s: &str) -> Result<String, DnError> {
    Dn::parse(s).map(|d| d.comparison_key())
}

/// Whether two DNs (either form) name the same subject, ignoring label spelling, case and
/// white-space runs in values. Unparseable DNs never match (fail closed).
pub fn same_dn(a: &str, b: &str) -> bool {
    match (normalize_dn(a), normalize_dn(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Whether two certificate names are the same name: identical encodings, or equal
/// [`Dn::comparison_key`]s (OpenSSL `X509_NAME_cmp` compares canonical encodings likewise).
pub fn same_name(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw()
        || Dn::from_x509(a).comparison_key() == Dn::from_x509(b).comparison_key()
}

/// RFC 2253 → OpenSSL slash form.
pub fn rfc2253_to_openssl(s: &str) -> Result<String, DnError> {
    Dn::parse_rfc2253(s).map(|d| d.to_slash())
}

/// OpenSSL slash form → RFC 2253.
pub fn openssl_to_rfc2253(s: &str) -> Result<String, DnError> {
    Dn::parse_slash(s).map(|d| d.to_rfc2253())
}

/// Content bytes of a directory string as OpenSSL prints them: BMPString and UniversalString
/// whose characters are all Latin-1 are narrowed to one byte per character (OpenSSL
/// `X509_NAME_oneline` "gs_doit" logic); other types are printed as their raw content.
fn value_bytes(tag: Tag, data: &[u8]) -> Vec<u8> {
    let width = match tag {
        Tag::BmpString => 2,
        Tag::UniversalString => 4,
        _ => return data.to_vec(),
    };
    if !data.len().is_multiple_of(width) {
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

/// RFC 2253 section 2.4 escaping (also "=", which section 3's `special` lists).
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

#[cfg(test)]
mod tests;
