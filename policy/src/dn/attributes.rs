//! Attribute-type names: OpenSSL short names (`obj_dat.h`), their RFC 4519 long names, the
//! dotted OIDs, and the aliases that appear in real grid-mapfiles and `.lsc` files (`E`,
//! `Email`, `USERID`, `givenname`).

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

/// OpenSSL short name of a dotted OID, if OpenSSL has one (otherwise OpenSSL prints the OID).
pub(crate) fn short_name_for_oid(oid: &str) -> Option<&'static str> {
    ATTRIBUTES
        .iter()
        .find(|(o, _, _)| *o == oid)
        .map(|(_, sn, _)| *sn)
}

/// Dotted OID of a canonical label (a short name, or already a dotted OID).
pub(crate) fn oid_for_label(label: &str) -> &str {
    ATTRIBUTES
        .iter()
        .find(|(_, sn, _)| *sn == label)
        .map(|(o, _, _)| *o)
        .unwrap_or(label)
}

/// The canonical label for a label written by a human or another tool (case-insensitive,
/// aliases such as `E`/`Email` → `emailAddress`, `USERID` → `UID`, dotted OIDs of known
/// attributes (also `OID.`-prefixed, RFC 1779) → short name). Unknown labels are kept as written.
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

/// RFC 4514 section 3 `attributeType = descr / numericoid` (plus the RFC 1779 `OID.` prefix).
/// In the slash form this is what tells a new attribute (`/CN=x`) from the rest of a value that
/// contained an unescaped "/": in `/CN=a/b c=d` the text before "=" is not a type, so
/// "b c=d" belongs to the CN value (see `parse_slash`).
pub(crate) fn valid_attr_type(a: &str) -> bool {
    let a = a.trim();
    let a = a
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("oid."))
        .map_or(a, |_| &a[4..]);
    let descr = a.starts_with(|c: char| c.is_ascii_alphabetic())
        && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !a.is_empty()
        && a.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    descr || oid
}
