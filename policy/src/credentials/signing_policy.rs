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
//!
//! The glob is matched directly ([`Glob`]), not translated to a regular expression: an IGTF
//! bundle has a signing policy per CA, and compiling a regex per pattern was the verifier's
//! top page-fault source in a profile of `pilotbox run` (issue #7). The semantics are those the regex translation had (and that Globus'
//! own translation to `.*`/`.` gives, see the note on newlines at [`Glob`]).

use super::namespaces::{normalise_pattern_labels, MAX_POLICY_FILE};
use crate::dn::Dn;

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
    globs: Vec<Glob>,
}

impl CaPolicy {
    pub fn permits(&self, subject_slash: &str) -> bool {
        self.globs.iter().any(|g| g.matches(subject_slash))
    }
}

#[derive(Debug, Clone, Default)]
pub struct SigningPolicy {
    pub cas: Vec<CaPolicy>,
}

/// One element of a compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobItem {
    /// `*`: any run of characters, the empty one included.
    Star,
    /// `?`: exactly one character.
    One,
    /// Any other character, literally (regex metacharacters such as `.`, `+`, `(` and the
    /// backslash have no special meaning in a signing-policy glob), as the set of characters it
    /// matches case-insensitively (its simple case-folding orbit; just itself when caseless).
    Lit(Box<[char]>),
}

/// A `cond_subjects` glob, matched against the whole subject (anchored at both ends).
///
/// Exactly the semantics of the earlier translation to an anchored, case-insensitive regex
/// (`*` → `.*`, `?` → `.`, everything else escaped), pinned by differential tests:
/// - attribute labels in the pattern are normalised first (`/E=` → `/emailAddress=`), as for
///   `.namespaces`;
/// - letters compare case-insensitively by Unicode *simple* case folding, taken from the
///   tables the `regex` crate itself uses (`regex-syntax`), so e.g. `σ`, `ς` and `Σ` are equal
///   but the dotless `ı` does not match `i`;
/// - `*` and `?` never match a line feed, as the regex `.` did not: a subject with a newline in
///   an attribute value matches only a pattern that spells the newline out (fail closed).
///
/// Matching runs the glob as an NFA over the subject (a set of live pattern positions per
/// character): O(subject × pattern), no backtracking blow-up on `*a*a*a…` patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    items: Vec<GlobItem>,
}

/// The characters equal to `c` under simple case folding, `c` first.
fn fold_orbit(c: char) -> Box<[char]> {
    use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};
    let mut class = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
    let mut out = vec![c];
    // Without the folding tables (a build without `unicode-case`) compare exactly.
    if class.try_case_fold_simple().is_ok() {
        for r in class.ranges() {
            out.extend((r.start()..=r.end()).filter(|d| *d != c));
        }
    }
    out.into_boxed_slice()
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let items = normalise_pattern_labels(pattern)
            .chars()
            .map(|c| match c {
                '*' => GlobItem::Star,
                '?' => GlobItem::One,
                c => GlobItem::Lit(fold_orbit(c)),
            })
            .collect();
        Glob { items }
    }

    /// Whether the whole of `subject` matches.
    pub fn matches(&self, subject: &str) -> bool {
        let n = self.items.len();
        // live[i]: the pattern prefix items[..i] matches the subject read so far.
        let mut live = vec![false; n + 1];
        let mut next = vec![false; n + 1];
        live[0] = true;
        self.close_stars(&mut live);
        for c in subject.chars() {
            next.iter_mut().for_each(|x| *x = false);
            let mut any = false;
            for i in 0..n {
                if !live[i] {
                    continue;
                }
                match self.items[i] {
                    // The star stays where it is, having eaten one more character.
                    GlobItem::Star if c != '\n' => next[i] = true,
                    GlobItem::One if c != '\n' => next[i + 1] = true,
                    GlobItem::Lit(ref set) if set.contains(&c) => next[i + 1] = true,
                    _ => continue,
                }
                any = true;
            }
            if !any {
                return false;
            }
            std::mem::swap(&mut live, &mut next);
            self.close_stars(&mut live);
        }
        live[n]
    }

    /// A live position at a `*` also makes the position after it live (the star matching the
    /// empty run).
    fn close_stars(&self, live: &mut [bool]) {
        for i in 0..self.items.len() {
            if live[i] && matches!(self.items[i], GlobItem::Star) {
                live[i + 1] = true;
            }
        }
    }
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
            let globs = patterns.iter().map(|p| Glob::new(p)).collect();
            cas.push(CaPolicy {
                ca_dn: b.ca_dn,
                ca_key,
                patterns,
                globs,
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

    fn m(pattern: &str, subject: &str) -> bool {
        Glob::new(pattern).matches(subject)
    }

    #[test]
    fn star_at_start_middle_end_and_empty() {
        assert!(m("*", ""));
        assert!(m("*", "/C=XY/CN=anything"));
        assert!(m("*/CN=Alice", "/DC=org/DC=example/CN=Alice"));
        assert!(!m("*/CN=Alice", "/DC=org/DC=example/CN=Alice2"));
        assert!(m("/DC=org/*/CN=Alice", "/DC=org/DC=example/CN=Alice"));
        assert!(m("/DC=org/*/CN=Alice", "/DC=org//CN=Alice")); // the run may be empty
        assert!(!m("/DC=org/*/CN=Alice", "/DC=org/CN=Alice"));
        assert!(m("/DC=org/DC=example/*", "/DC=org/DC=example/"));
        assert!(m("/DC=org/DC=example/*", "/DC=org/DC=example/CN=x/CN=y"));
        assert!(!m("/DC=org/DC=example/*", "/DC=org/DC=other/CN=x"));
        assert!(m("**a**", "a"));
        assert!(m("*a*b*a*", "xxaybbza"));
        assert!(!m("*a*b*a*", "xxaybbz"));
        // Anchored at both ends: a pattern without stars is an exact (case-folded) match.
        assert!(m("/C=XY/CN=x", "/c=xy/cn=X"));
        assert!(!m("/C=XY/CN=x", "/C=XY/CN=xy"));
        assert!(!m("/C=XY/CN=x", "pre/C=XY/CN=x"));
        assert!(!m("", "x"));
        assert!(m("", ""));
    }

    #[test]
    fn question_mark_is_exactly_one_character() {
        assert!(m("/C=??", "/C=XY"));
        assert!(!m("/C=??", "/C=X"));
        assert!(!m("/C=??", "/C=XYZ"));
        assert!(m("/CN=J?rg", "/CN=Jörg")); // one character, not one byte
        assert!(m("?*", "a"));
        assert!(!m("?*", ""));
    }

    #[test]
    fn regex_metacharacters_are_literal() {
        assert!(m("/CN=a.b", "/CN=a.b"));
        assert!(!m("/CN=a.b", "/CN=axb"));
        assert!(m("/CN=a+", "/CN=a+"));
        assert!(!m("/CN=a+", "/CN=aa"));
        assert!(m("/O=x (y)/CN=[z]|^$", "/O=x (y)/CN=[z]|^$"));
        assert!(!m("/O=x (y)", "/O=x y"));
        assert!(m("/CN=a\\d", "/CN=a\\d"));
        assert!(!m("/CN=a\\d", "/CN=a1"));
        assert!(m("/CN={1}", "/CN={1}"));
    }

    #[test]
    fn labels_are_normalised_and_case_ignored() {
        assert!(m("/E=a@b/*", "/emailAddress=a@b/CN=x"));
        assert!(m("/Email=A@B", "/emailAddress=a@b"));
        assert!(m("/CN=ÜBER", "/CN=über"));
        assert!(m("/CN=Σ", "/CN=ς")); // σ/ς/Σ: one simple case-folding orbit
    }

    #[test]
    fn wildcards_do_not_match_a_newline() {
        assert!(!m("/CN=*", "/CN=a\nb"));
        assert!(!m("/CN=a?b", "/CN=a\nb"));
        assert!(m("/CN=a\n*", "/CN=a\nb"));
    }

    #[test]
    fn many_stars_stay_linear() {
        let pattern = "*a".repeat(200);
        let subject = "a".repeat(199) + "b";
        let t = std::time::Instant::now();
        assert!(!m(&pattern, &subject));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    /// The regex translation the glob matcher replaced: the reference for the differential
    /// tests below.
    fn reference(glob: &str) -> regex::Regex {
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
        regex::RegexBuilder::new(&re)
            .case_insensitive(true)
            .build()
            .unwrap()
    }

    #[test]
    fn same_verdicts_as_the_regex_translation() {
        let patterns = [
            "/C=??/E=a@b/*",
            "/DC=org/DC=example/*",
            "*/CN=Alice",
            "/O=Grid/O=*/CN=?*",
            "/C=DE/O=GermanGrid/OU=*/CN=*",
            "/O=x.y+(z)/*",
            "*",
            "?",
            "/CN=ÜBER*",
        ];
        let subjects = [
            "",
            "/C=XY/emailAddress=a@b/CN=x",
            "/C=XY/E=a@b/CN=x",
            "/DC=org/DC=example/CN=Alice",
            "/dc=ORG/dc=EXAMPLE/cn=alice",
            "/O=Grid/O=CERN/CN=",
            "/O=Grid/O=CERN/CN=j",
            "/C=DE/O=GermanGrid/OU=KIT/CN=Jörg Müller",
            "/O=x.y+(z)/CN=1",
            "/O=xxy+(z)/CN=1",
            "/CN=über alles",
            "/CN=a\nb",
            "x",
        ];
        for p in patterns {
            let re = reference(p);
            for s in subjects {
                assert_eq!(m(p, s), re.is_match(s), "{p:?} vs {s:?}");
            }
        }
    }

    /// Character by character, over every character that has a case mapping in Rust's own
    /// Unicode tables: the glob's case-insensitive equality is the `regex` crate's. (Rust's
    /// `to_lowercase`/`to_uppercase` are not a substitute: they make `ı` equal `i`, and their
    /// Unicode version differs from regex's.)
    #[test]
    fn case_folding_is_the_regex_crates() {
        let cased: Vec<char> = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|c| {
                !c.to_lowercase().eq(std::iter::once(*c))
                    || !c.to_uppercase().eq(std::iter::once(*c))
            })
            .collect();
        let haystack: String = cased.iter().collect();
        let mut mismatches = Vec::new();
        for &c in &cased {
            let re = regex::RegexBuilder::new(&regex::escape(&c.to_string()))
                .case_insensitive(true)
                .build()
                .unwrap();
            let by_regex: Vec<char> = re
                .find_iter(&haystack)
                .filter_map(|x| x.as_str().chars().next())
                .collect();
            let orbit = fold_orbit(c);
            let by_glob: Vec<char> = cased
                .iter()
                .copied()
                .filter(|d| orbit.contains(d))
                .collect();
            if by_regex != by_glob {
                mismatches.push(format!("{c:?}: regex {by_regex:?}, glob {by_glob:?}"));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }
}
