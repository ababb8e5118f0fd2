//! OpenSSL one-line ("slash") form of an X.509 name, as `.lsc` files and VOMS print DNs.
//!
//! Private to VOMS for now: the credentials module has its own `policy::credentials::dn`;
//! the two are to be merged. Follows `X509_NAME_oneline`: every attribute in encoding order as
//! `/SN=value`, OpenSSL short names, bytes outside printable ASCII as `\xHH`.

use x509_parser::x509::X509Name;

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// `/DC=org/DC=example/CN=Alice` for the name.
pub(crate) fn oneline(name: &X509Name<'_>) -> String {
    let mut s = String::new();
    for atv in name.iter_attributes() {
        let oid = atv.attr_type().to_id_string();
        s.push('/');
        s.push_str(short_name(&oid).unwrap_or(&oid));
        s.push('=');
        for &b in atv.attr_value().data.iter() {
            if (0x20..0x7f).contains(&b) {
                s.push(b as char);
            } else {
                s.push_str(&format!("\\x{b:02X}"));
            }
        }
    }
    s
}

/// VOMS `dncompare`: equal, treating the historical spellings `Email`/`E` = `emailAddress`
/// and `USERID` = `UID` as the same attribute.
pub(crate) fn same_dn(a: &str, b: &str) -> bool {
    a == b || normalize(a) == normalize(b)
}

fn normalize(dn: &str) -> String {
    dn.replace("/Email=", "/emailAddress=")
        .replace("/E=", "/emailAddress=")
        .replace("/USERID=", "/UID=")
}

/// Two names are the same if their encodings are identical or their one-line forms are.
pub(crate) fn same_name(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw() || oneline(a) == oneline(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_attribute_spellings_compare_equal() {
        assert!(same_dn("/O=x/Email=a@b", "/O=x/emailAddress=a@b"));
        assert!(same_dn("/O=x/USERID=7", "/O=x/UID=7"));
        assert!(!same_dn("/O=x/CN=a", "/O=x/CN=b"));
        assert!(!same_dn("/O=x/CN=a", "/O=x/CN=A"));
    }
}
