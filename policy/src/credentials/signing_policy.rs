//! Globus `.signing_policy` files (the older CA namespace format; used only when the CA has no
//! `.namespaces` file, since EUGridPMA namespaces are the more precise statement).
//!
//! ```text
//! access_id_CA   X509    '/C=XY/O=Example/CN=Example CA'
//! pos_rights     globus  CA:sign
//! cond_subjects  globus  '"/C=XY/O=Example/*" "/C=XY/O=Other/*"'
//! ```
//!
//! Each `access_id_CA` starts a block that must have `pos_rights globus CA:sign` and
//! `cond_subjects globus`. Values are `'…'`, `"…"` or a bare word; inside single quotes the
//! subjects are a white-space separated list of `"…"` patterns. Patterns are globs (`*` any run,
//! `?` one character) matched against the whole slash-form subject, case-insensitively.

use super::namespaces::{normalise_pattern_labels, MAX_POLICY_FILE};
use crate::dn::Dn;
use regex::{Regex, RegexBuilder};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningPolicyError {
    #[error("line {line}: {detail}")]
    Syntax { line: usize, detail: String },
    #[error("policy file is {0} bytes, more than the limit")]
    TooLarge(usize),
}

/// One `access_id_CA` block.
#[derive(Debug, Clone)]
pub struct CaPolicy {
    /// The CA DN as written and its [`Dn::comparison_key`].
    pub ca_dn: String,
    pub ca_key: String,
    pub patterns: Vec<String>,
    regexes: Vec<Regex>,
}

impl CaPolicy {
    pub fn permits(&self, subject_slash: &str) -> bool {
        self.regexes.iter().any(|r| r.is_match(subject_slash))
    }
}

#[derive(Debug, Clone, Default)]
pub struct SigningPolicy {
    pub cas: Vec<CaPolicy>,
}

fn glob_to_regex(glob: &str) -> Result<Regex, String> {
    let glob = normalise_pattern_labels(glob);
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    RegexBuilder::new(&re)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

/// The inside of a quoted value ending in `q`, with `\'`/`\"` unescaped; None when the value
/// is not closed exactly at its end.
fn quoted(body: &str, q: char) -> Option<String> {
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            c if c == q => return chars.as_str().is_empty().then_some(out),
            c => out.push(c),
        }
    }
    None
}

/// A value: `'…'` (returned with `single = true`), `"…"`, or one bare word. A backslash
/// escapes a quote inside a quoted value (`'/O=Let\'s Encrypt'`, as IGTF files write it).
fn value(v: &str) -> Result<(bool, String), String> {
    let v = v.trim();
    if let Some(r) = v.strip_prefix('\'') {
        return quoted(r, '\'')
            .map(|s| (true, s))
            .ok_or_else(|| "unterminated or stray single quote".into());
    }
    if let Some(r) = v.strip_prefix('"') {
        let inner = quoted(r, '"').ok_or("unterminated or stray double quote")?;
        if inner.contains('"') {
            return Err("stray double quote".into());
        }
        return Ok((false, inner));
    }
    if v.is_empty() || v.contains(['\'', '"']) || v.split_whitespace().count() != 1 {
        return Err(format!("bad value {v:?}"));
    }
    Ok((false, v.to_string()))
}

/// The patterns of a single-quoted cond_subjects list: `"p1" "p2"` (or bare words).
fn subject_list(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('"') {
            let end = r
                .find('"')
                .ok_or("unterminated double quote in subject list")?;
            out.push(r[..end].to_string());
            rest = &r[end + 1..];
            if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                return Err("subjects must be separated by white space".into());
            }
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let w = &rest[..end];
            if w.contains('"') {
                return Err("stray double quote in subject list".into());
            }
            out.push(w.to_string());
            rest = &rest[end..];
        }
        rest = rest.trim_start();
    }
    if out.is_empty() {
        return Err("empty subject list".into());
    }
    Ok(out)
}

impl SigningPolicy {
    pub fn parse(text: &str) -> Result<SigningPolicy, SigningPolicyError> {
        if text.len() > MAX_POLICY_FILE {
            return Err(SigningPolicyError::TooLarge(text.len()));
        }
        struct Block {
            line: usize,
            ca_dn: String,
            rights: bool,
            patterns: Option<Vec<String>>,
        }
        let mut blocks: Vec<Block> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let err = |d: String| SigningPolicyError::Syntax { line: n, detail: d };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line
                .splitn(3, char::is_whitespace)
                .filter(|p| !p.is_empty());
            let (Some(key), Some(rest)) = (
                parts.next(),
                Some(
                    line.split_once(char::is_whitespace)
                        .map(|x| x.1)
                        .unwrap_or(""),
                ),
            ) else {
                return Err(err("empty statement".into()));
            };
            let rest = rest.trim_start();
            let (kind, val) = rest
                .split_once(char::is_whitespace)
                .ok_or_else(|| err(format!("{key} needs a type and a value")))?;
            let (single, v) = value(val).map_err(err)?;
            match key {
                "access_id_CA" => {
                    if kind != "X509" {
                        return Err(err(format!("access_id_CA type must be X509, not {kind:?}")));
                    }
                    blocks.push(Block {
                        line: n,
                        ca_dn: v,
                        rights: false,
                        patterns: None,
                    });
                }
                "pos_rights" | "cond_subjects" => {
                    if kind != "globus" {
                        return Err(err(format!("{key} type must be globus, not {kind:?}")));
                    }
                    let b = blocks
                        .last_mut()
                        .ok_or_else(|| err(format!("{key} before access_id_CA")))?;
                    if key == "pos_rights" {
                        if v != "CA:sign" {
                            return Err(err(format!("unsupported right {v:?}")));
                        }
                        b.rights = true;
                    } else {
                        let list = if single {
                            subject_list(&v).map_err(err)?
                        } else {
                            vec![v]
                        };
                        b.patterns.get_or_insert_with(Vec::new).extend(list);
                    }
                }
                other => return Err(err(format!("unknown statement {other:?}"))),
            }
        }
        let mut cas = Vec::new();
        for b in blocks {
            let err = |d: String| SigningPolicyError::Syntax {
                line: b.line,
                detail: d,
            };
            if !b.rights {
                return Err(err(
                    "access_id_CA block without pos_rights globus CA:sign".into()
                ));
            }
            let patterns = b
                .patterns
                .ok_or_else(|| err("access_id_CA block without cond_subjects".into()))?;
            let ca_key = Dn::parse(&b.ca_dn)
                .map_err(|e| err(format!("CA DN {:?}: {e}", b.ca_dn)))?
                .comparison_key();
            let regexes = patterns
                .iter()
                .map(|p| glob_to_regex(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            cas.push(CaPolicy {
                ca_dn: b.ca_dn,
                ca_key,
                patterns,
                regexes,
            });
        }
        Ok(SigningPolicy { cas })
    }

    /// The block for the issuer with [`Dn::comparison_key`] `issuer_key`, if any.
    pub fn for_issuer(&self, issuer_key: &str) -> Option<&CaPolicy> {
        self.cas.iter().find(|c| c.ca_key == issuer_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_globs() {
        let p = SigningPolicy::parse("access_id_CA X509 '/C=EU/CN=CA2'\npos_rights globus CA:sign\ncond_subjects globus '\"/C=??/E=a@b/*\"'\n").unwrap();
        let ca = p
            .for_issuer(&Dn::parse("/C=EU/CN=CA2").unwrap().comparison_key())
            .unwrap();
        assert!(ca.permits("/C=XY/emailAddress=a@b/CN=x"));
        assert!(!ca.permits("/C=XYZ/emailAddress=a@b/CN=x"));
        assert!(SigningPolicy::parse(
            "access_id_CA X509 '/C=EU/CN=CA2'\ncond_subjects globus '\"/C=*\"'\n"
        )
        .is_err());
    }
}
