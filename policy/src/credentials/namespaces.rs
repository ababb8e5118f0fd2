//! EUGridPMA `.namespaces` files (the "EACL" namespace policy language of the IGTF
//! distribution): which subjects a CA may issue.
//!
//! Grammar, one rule per logical line (a backslash at the end of a line joins the next one with
//! nothing in between; `#` starts a comment outside quotes; keywords are case-insensitive):
//!
//! ```text
//! TO Issuer ( "DN" | SELF ) ( PERMIT | DENY ) Subject "regex"
//! ```
//!
//! `SELF` is the CA the file belongs to. Subject patterns are regular expressions matched against
//! the whole OpenSSL slash-form subject, case-insensitively, with attribute labels normalised
//! (`E`/`Email` → `emailAddress`). A subject is permitted when a PERMIT rule for its issuer
//! matches and no DENY rule does.

use crate::dn::{canonical_label, Dn};
use regex::{Regex, RegexBuilder};

/// Largest policy file read.
pub const MAX_POLICY_FILE: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespacesError {
    #[error("line {line}: {detail}")]
    Syntax { line: usize, detail: String },
    #[error("policy file is {0} bytes, more than the limit")]
    TooLarge(usize),
}

/// Who a rule is about.
#[derive(Debug, Clone)]
pub enum RuleIssuer {
    /// The CA the file belongs to.
    SelfCa,
    /// [`Dn::comparison_key`] of the named issuer, and the DN as written.
    Dn(String, String),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub issuer: RuleIssuer,
    pub permit: bool,
    pub pattern: String,
    subject: Regex,
}

impl Rule {
    pub fn matches(&self, subject_slash: &str) -> bool {
        self.subject.is_match(subject_slash)
    }

    fn applies_to(&self, issuer_key: &str, owner_key: &str) -> bool {
        match &self.issuer {
            RuleIssuer::SelfCa => issuer_key == owner_key,
            RuleIssuer::Dn(k, _) => k == issuer_key,
        }
    }
}

/// A parsed `.namespaces` file.
#[derive(Debug, Clone, Default)]
pub struct Namespaces {
    pub rules: Vec<Rule>,
}

/// Rewrites `/label=` in a DN pattern to canonical labels so `E=` in a policy matches the
/// `emailAddress=` OpenSSL prints.
pub(crate) fn normalise_pattern_labels(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for (i, seg) in p.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match seg.split_once('=') {
            Some((label, rest))
                if !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') =>
            {
                out.push_str(&canonical_label(label));
                out.push('=');
                out.push_str(rest);
            }
            _ => out.push_str(seg),
        }
    }
    out
}

/// Splits a logical line into tokens: bare words, or `"quoted"` strings that must be followed by
/// white space, `#` or the end.
fn tokens(line: &str, n: usize) -> Result<Vec<(bool, String)>, NamespacesError> {
    let err = |d: &str| NamespacesError::Syntax {
        line: n,
        detail: d.into(),
    };
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            break;
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(ch) => s.push(ch),
                    None => return Err(err("unterminated quoted string")),
                }
            }
            if chars
                .peek()
                .is_some_and(|ch| !ch.is_whitespace() && *ch != '#')
            {
                return Err(err("a quoted string must be followed by white space"));
            }
            out.push((true, s));
        } else {
            let mut s = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '#' {
                    break;
                }
                if ch == '"' {
                    return Err(err("a quote inside a word (missing white space?)"));
                }
                s.push(ch);
                chars.next();
            }
            out.push((false, s));
        }
    }
    Ok(out)
}

/// Joins backslash-continued lines, returning (first physical line number, logical line).
pub(crate) fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    let mut continuing = false;
    for (i, line) in text.lines().enumerate() {
        if !continuing {
            start = i + 1;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                continuing = true;
            }
            None => {
                cur.push_str(line);
                out.push((start, std::mem::take(&mut cur)));
                continuing = false;
            }
        }
    }
    if continuing {
        out.push((start, cur));
    }
    out
}

/// Compiles a subject pattern: anchored, case-insensitive, bounded in size.
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{})$", normalise_pattern_labels(pattern)))
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("bad subject pattern {pattern:?}: {e}"))
}

impl Namespaces {
    pub fn parse(text: &str) -> Result<Namespaces, NamespacesError> {
        if text.len() > MAX_POLICY_FILE {
            return Err(NamespacesError::TooLarge(text.len()));
        }
        let mut rules = Vec::new();
        for (n, line) in logical_lines(text) {
            let t = tokens(&line, n)?;
            if t.is_empty() {
                continue;
            }
            let err = |d: String| NamespacesError::Syntax { line: n, detail: d };
            let kw = |i: usize, want: &str| {
                t.get(i)
                    .is_some_and(|(q, w)| !q && w.eq_ignore_ascii_case(want))
            };
            if t.len() != 6 || !kw(0, "TO") || !kw(1, "Issuer") || !kw(4, "Subject") {
                return Err(err(
                    "expected: TO Issuer \"DN\"|SELF PERMIT|DENY Subject \"pattern\"".into(),
                ));
            }
            let issuer = match &t[2] {
                (false, w) if w.eq_ignore_ascii_case("SELF") => RuleIssuer::SelfCa,
                (true, dn) => {
                    let key = Dn::parse(dn)
                        .map_err(|e| err(format!("issuer {dn:?}: {e}")))?
                        .comparison_key();
                    RuleIssuer::Dn(key, dn.clone())
                }
                (false, w) => {
                    return Err(err(format!(
                        "issuer must be SELF or a quoted DN, not {w:?}"
                    )))
                }
            };
            let permit = if kw(3, "PERMIT") {
                true
            } else if kw(3, "DENY") {
                false
            } else {
                return Err(err(format!("expected PERMIT or DENY, not {:?}", t[3].1)));
            };
            if !t[5].0 {
                return Err(err("the subject pattern must be quoted".into()));
            }
            let subject = compile(&t[5].1).map_err(err)?;
            rules.push(Rule {
                issuer,
                permit,
                pattern: t[5].1.clone(),
                subject,
            });
        }
        Ok(Namespaces { rules })
    }

    /// The rules about `issuer_key` in this file, which belongs to the CA `owner_key`
    /// (both [`Dn::comparison_key`]s).
    pub fn rules_for<'a>(&'a self, issuer_key: &str, owner_key: &str) -> Vec<&'a Rule> {
        self.rules
            .iter()
            .filter(|r| r.applies_to(issuer_key, owner_key))
            .collect()
    }
}

/// EACL decision over the applicable rules: permitted iff a PERMIT matches and no DENY does.
pub fn permits(rules: &[&Rule], subject_slash: &str) -> bool {
    let denied = rules.iter().any(|r| !r.permit && r.matches(subject_slash));
    !denied && rules.iter().any(|r| r.permit && r.matches(subject_slash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_continuations_comments_and_self() {
        let ns = Namespaces::parse("# c\nTO Issuer \"/C=EU/CN=Test\" PER\\\nMIT Subject \"/C=EU/.*\"#x\nTO Issuer self\\\n DENY Subject \"/C=EU/CN=bad\"\n").unwrap();
        assert_eq!(ns.rules.len(), 2);
        let owner = Dn::parse("/C=EU/CN=Test").unwrap().comparison_key();
        let rules = ns.rules_for(&owner, &owner);
        assert!(permits(&rules, "/C=EU/CN=good"));
        assert!(!permits(&rules, "/C=EU/CN=bad"));
        assert!(!permits(&rules, "/C=PL/CN=x"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "TO Issuer \"/C=X\" PERMIT Subject\"/C=X\"",
            "TO Issuer /C=X PERMIT Subject \"/C=X\"",
            "TO Issuer \"/C=X\" PERMIT Subject \"*\"",
            "junk",
        ] {
            assert!(Namespaces::parse(bad).is_err(), "{bad}");
        }
    }
}
