//! Distinguished-name parsing, conversion and comparison between the two textual forms grid
//! software uses: the OpenSSL one-line "slash" form (`/DC=org/DC=example/CN=Alice`, RDNs
//! most-general first, as `X509_NAME_oneline` prints them) and RFC 2253 / RFC 4514
//! (`CN=Alice,DC=example,DC=org`, RDNs most-specific first).
//!
//! Why here: a site writes DNs in `policy.toml`, grid-mapfiles and ban files in either form, and
//! the credential verifier hands us the slash form. A ban that fails to match because one side
//! wrote `E=` and the other `emailAddress=` is a security bug, so comparison goes through
//! [`Dn::normalized`]: canonical attribute names (OpenSSL short names, lower-cased), values
//! compared case-insensitively with insignificant whitespace collapsed (the X.520
//! `caseIgnoreMatch` rule with RFC 4518 insignificant-space handling).
//!
//! Slash-form quirks handled as Argus `OpensslNameUtils` and canl-java `OpensslNameUtils` do:
//! an unescaped `/` inside a value (`CN=host/vocms080.cern.ch`) is recognised because the text
//! after it has no `=`, and `\/` is an escaped slash. Bytes outside printable ASCII appear as
//! `\xHH` in the slash form, as OpenSSL prints them.
//!
//! (The credentials module has its own `normalize_dn`; the lead dedupes at merge.)

use std::fmt;

/// Why a DN string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    #[error("DN is empty")]
    Empty,
    #[error("slash-form DN {0:?} must start with '/'")]
    NoLeadingSlash(String),
    #[error("DN {dn:?}: component {component:?} has no '=' and no previous attribute to join")]
    DanglingComponent { dn: String, component: String },
    #[error("DN {dn:?}: missing or malformed attribute type before '='")]
    EmptyAttribute { dn: String },
    #[error("DN {dn:?}: bad escape or hex value ({detail})")]
    BadEscape { dn: String, detail: String },
}

/// One attribute-value assertion, with the attribute in OpenSSL's short name and the value as
/// raw bytes (UTF-8 in practice, but `#hex` values and `\xHH` escapes may carry any byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    pub attr: String,
    pub value: Vec<u8>,
}

/// A parsed DN, AVAs in OpenSSL order (most general first, the order of the DER encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn {
    pub avas: Vec<Ava>,
}

/// Canonical OpenSSL short name for an attribute type (RFC 4519 names, OpenSSL's `obj_dat.h`
/// short names, and the aliases that appear in real grid-mapfiles: `E`, `EMAIL`, `givenname`).
fn canonical_attr(a: &str) -> String {
    let lower = a.trim().to_ascii_lowercase();
    let canon = match lower.as_str() {
        "cn" | "commonname" | "2.5.4.3" => "CN",
        "c" | "countryname" | "2.5.4.6" => "C",
        "l" | "localityname" | "2.5.4.7" => "L",
        "st" | "s" | "stateorprovincename" | "2.5.4.8" => "ST",
        "street" | "streetaddress" | "2.5.4.9" => "street",
        "o" | "organizationname" | "2.5.4.10" => "O",
        "ou" | "organizationalunitname" | "2.5.4.11" => "OU",
        "title" | "2.5.4.12" => "title",
        "sn" | "surname" | "2.5.4.4" => "SN",
        "serialnumber" | "2.5.4.5" => "serialNumber",
        "gn" | "givenname" | "2.5.4.42" => "GN",
        "initials" | "2.5.4.43" => "initials",
        "generationqualifier" | "generation" | "2.5.4.44" => "generationQualifier",
        "dnqualifier" | "2.5.4.46" => "dnQualifier",
        "pseudonym" | "2.5.4.65" => "pseudonym",
        "postalcode" | "2.5.4.17" => "postalCode",
        "dc" | "domaincomponent" | "0.9.2342.19200300.100.1.25" => "DC",
        "uid" | "userid" | "0.9.2342.19200300.100.1.1" => "UID",
        "e" | "email" | "emailaddress" | "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return a.trim().to_string(),
    };
    canon.to_string()
}

/// RFC 4514 section 3: `attributeType = descr / numericoid`.
fn valid_attr_type(a: &str) -> bool {
    let a = a.trim();
    let descr = a.starts_with(|c: char| c.is_ascii_alphabetic())
        && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !a.is_empty()
        && a.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    descr || oid
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Undo `\xHH` (OpenSSL non-printable bytes) and `\/` (escaped slash) in a slash-form value.
fn unescape_slash_value(v: &str) -> Vec<u8> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let n = b[i + 1];
            if (n == b'x' || n == b'X') && i + 3 < b.len() {
                if let (Some(h), Some(l)) = (hex_val(b[i + 2]), hex_val(b[i + 3])) {
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
            // X509_NAME_oneline does not escape backslashes: any other one is literal.
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

impl Dn {
    /// Parse whichever form `s` is in: a leading `/` means slash form, anything else RFC 2253.
    pub fn parse_any(s: &str) -> Result<Dn, DnError> {
        if s.trim_start().starts_with('/') {
            Dn::parse_openssl(s.trim())
        } else {
            Dn::parse_rfc2253(s)
        }
    }

    /// Parse the OpenSSL slash form. A component without `=` is glued to the previous value
    /// with a `/` (the value contained an unescaped slash, which `X509_NAME_oneline` does not
    /// escape).
    pub fn parse_openssl(s: &str) -> Result<Dn, DnError> {
        if s.is_empty() {
            return Err(DnError::Empty);
        }
        let rest = s
            .strip_prefix('/')
            .ok_or_else(|| DnError::NoLeadingSlash(s.into()))?;
        // Split on '/' not escaped by a backslash.
        let mut comps: Vec<String> = Vec::new();
        let mut cur = String::new();
        let mut chars = rest.chars().peekable();
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
        let mut avas: Vec<(String, String)> = Vec::new();
        for comp in comps {
            // A component is a new AVA only if what precedes '=' is an attribute type;
            // otherwise it is the continuation of a value that contained '/'.
            match find_unescaped_eq(&comp).filter(|&eq| valid_attr_type(&comp[..eq])) {
                Some(eq) => avas.push((comp[..eq].to_string(), comp[eq + 1..].to_string())),
                None => match avas.last_mut() {
                    Some(last) => {
                        last.1.push('/');
                        last.1.push_str(&comp);
                    }
                    None => {
                        return Err(DnError::DanglingComponent {
                            dn: s.into(),
                            component: comp,
                        })
                    }
                },
            }
        }
        let avas = avas
            .into_iter()
            .map(|(a, v)| Ava {
                attr: canonical_attr(&a),
                value: unescape_slash_value(&v),
            })
            .collect();
        Ok(Dn { avas })
    }

    /// Parse an RFC 2253 / RFC 4514 string (also the RFC 1779 habit of a space after commas, as
    /// Java's `X500Principal` accepts). Multi-valued RDNs (`+`) become consecutive AVAs.
    pub fn parse_rfc2253(s: &str) -> Result<Dn, DnError> {
        if s.trim().is_empty() {
            return Err(DnError::Empty);
        }
        let bad = |d: &str| DnError::BadEscape {
            dn: s.into(),
            detail: d.into(),
        };
        let b = s.as_bytes();
        let mut rdns: Vec<Vec<Ava>> = vec![Vec::new()];
        let mut i = 0;
        loop {
            // attribute type
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i] != b'=' {
                i += 1;
            }
            if i >= b.len() || !valid_attr_type(&s[start..i]) {
                return Err(DnError::EmptyAttribute { dn: s.into() });
            }
            let attr = canonical_attr(&s[start..i]);
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
                value = der_string_content(&s[hs..i]).ok_or_else(|| bad("#hex value"))?;
            } else if i < b.len() && b[i] == b'"' {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    value.push(b[i]);
                    i += 1;
                }
                i += 1;
            } else {
                let mut trailing_spaces = 0;
                while i < b.len() && !matches!(b[i], b',' | b';' | b'+') {
                    if b[i] == b'\\' {
                        let (h, l) = (b.get(i + 1).copied(), b.get(i + 2).copied());
                        match (h.and_then(hex_val), l.and_then(hex_val)) {
                            (Some(h), Some(l)) => {
                                value.push(h << 4 | l);
                                i += 3;
                            }
                            _ => {
                                value.push(h.ok_or_else(|| bad("trailing backslash"))?);
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
            rdns.last_mut()
                .expect("non-empty")
                .push(Ava { attr, value });
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            if b[i] != b'+' {
                rdns.push(Vec::new());
            }
            i += 1;
        }
        rdns.reverse();
        Ok(Dn {
            avas: rdns.into_iter().flatten().collect(),
        })
    }

    /// The OpenSSL `X509_NAME_oneline` rendering: `/attr=value...`, bytes outside printable
    /// ASCII as `\xHH` (upper-case hex), slashes inside values left unescaped (as OpenSSL does).
    pub fn to_openssl(&self) -> String {
        let mut s = String::new();
        for a in &self.avas {
            s.push('/');
            s.push_str(&a.attr);
            s.push('=');
            for &c in &a.value {
                if (0x20..0x7f).contains(&c) {
                    s.push(c as char);
                } else {
                    s.push_str(&format!("\\x{c:02X}"));
                }
            }
        }
        s
    }

    /// RFC 4514 string (most specific RDN first), escaping the specials of section 2.4.
    pub fn to_rfc2253(&self) -> String {
        let mut parts = Vec::new();
        for a in self.avas.iter().rev() {
            let v = String::from_utf8_lossy(&a.value);
            let mut e = String::new();
            let n = v.chars().count();
            for (idx, c) in v.chars().enumerate() {
                let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
                    || (idx == 0 && (c == '#' || c == ' '))
                    || (idx + 1 == n && c == ' ');
                if special {
                    e.push('\\');
                }
                e.push(c);
            }
            parts.push(format!("{}={}", a.attr, e));
        }
        parts.join(",")
    }

    /// Comparison key: slash form with lower-cased canonical attribute names and values,
    /// insignificant whitespace collapsed (X.520 caseIgnoreMatch, RFC 4518 section 2.6.1).
    pub fn normalized(&self) -> String {
        let mut s = String::new();
        for a in &self.avas {
            s.push('/');
            s.push_str(&a.attr.to_ascii_lowercase());
            s.push('=');
            let v = String::from_utf8_lossy(&a.value).to_lowercase();
            s.push_str(&v.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        s
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_openssl())
    }
}

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

/// Content octets of a DER-encoded string from an RFC 4514 `#hex` value (the value is the
/// BER encoding of the attribute value, section 2.4). BIT STRING drops its unused-bits octet.
fn der_string_content(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 == 1 {
        return None;
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect::<Option<_>>()?;
    let (&tag, rest) = bytes.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, body) = if l0 < 0x80 {
        (l0 as usize, rest)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &x| acc << 8 | x as usize);
        (len, &rest[n..])
    };
    if body.len() != len {
        return None;
    }
    match tag {
        0x03 => body.split_first().map(|(_, b)| b.to_vec()),
        _ => Some(body.to_vec()),
    }
}

/// Normalised comparison key of a DN in either form; `None` if it does not parse.
pub fn normalize_dn(s: &str) -> Option<String> {
    Dn::parse_any(s).ok().map(|d| d.normalized())
}

/// Whether two DNs (each in slash or RFC 2253 form) name the same subject. Unparseable input
/// never matches anything (fail closed for mapping; ban lists are validated at load time).
pub fn dn_eq(a: &str, b: &str) -> bool {
    match (normalize_dn(a), normalize_dn(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Convert an RFC 2253 DN to the OpenSSL slash form.
pub fn rfc2253_to_openssl(s: &str) -> Result<String, DnError> {
    Dn::parse_rfc2253(s).map(|d| d.to_openssl())
}

/// Convert an OpenSSL slash-form DN to RFC 2253.
pub fn openssl_to_rfc2253(s: &str) -> Result<String, DnError> {
    Dn::parse_openssl(s).map(|d| d.to_rfc2253())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_and_rfc2253_round_trip() {
        let o = "/DC=org/DC=example/O=Users/CN=Alice Tester";
        let r = openssl_to_rfc2253(o).unwrap();
        assert_eq!(r, "CN=Alice Tester,O=Users,DC=example,DC=org");
        assert_eq!(rfc2253_to_openssl(&r).unwrap(), o);
        assert!(dn_eq(o, &r));
        assert!(dn_eq(o, "cn=alice  tester, o=users,dc=EXAMPLE,dc=org"));
        assert!(!dn_eq(o, "/DC=org/DC=example/O=Users/CN=Alice Testers"));
    }

    #[test]
    fn email_aliases_compare_equal() {
        assert!(dn_eq("/O=x/E=a@b", "/O=x/emailAddress=a@b"));
        assert!(dn_eq("/O=x/Email=a@b", "EMAILADDRESS=a@b,O=x"));
    }

    #[test]
    fn unescaped_and_escaped_slash_in_value() {
        let d = Dn::parse_openssl("/DC=ch/CN=cmspilot02/vocms080.cern.ch").unwrap();
        assert_eq!(d.avas.last().unwrap().value, b"cmspilot02/vocms080.cern.ch");
        let e = Dn::parse_openssl("/DC=ch/CN=cmspilot02\\/vocms080.cern.ch").unwrap();
        assert_eq!(d, e);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            "",
            "CN",
            "/",
            "noslash/CN=x",
            "/=x",
            "/x/CN=a",
            "CN=#0",
            "CN=x\\",
        ] {
            assert!(Dn::parse_any(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(!dn_eq("", ""));
    }

    #[test]
    fn hex_values_and_non_ascii() {
        assert_eq!(
            rfc2253_to_openssl("2.5.4.3.3.2.222=#030300FEFF").unwrap(),
            "/2.5.4.3.3.2.222=\\xFE\\xFF"
        );
        assert_eq!(
            rfc2253_to_openssl("CN=qwe\u{f3}").unwrap(),
            "/CN=qwe\\xC3\\xB3"
        );
        assert!(dn_eq("/CN=qwe\\xC3\\xB3", "CN=qwe\u{f3}"));
    }
}
