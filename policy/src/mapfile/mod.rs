//! Parsers for the Globus `grid-mapfile` and the LCMAPS/Argus `group-mapfile`, so a site can
//! import the files it already has.
//!
//! Both share one line syntax (Globus GT2 grid-mapfile, LCMAPS `lcmaps_gridmapfile.c`):
//!
//! ```text
//! # comment
//! "/DC=org/DC=example/CN=Alice"   alice          # DN -> fixed account
//! "/DC=org/CN=Bob" bob,bob2                      # several accounts: the first is used
//! "/atlas/Role=production"        .atlasprd      # FQAN -> pool (leading '.')
//! "/cms/*/Role=*"                 cms            # group-mapfile: FQAN -> group name
//! ```
//!
//! The key is double-quoted (inside quotes `\"` is a quote; other backslash sequences such as
//! `\/` are left for the DN parser) or, if it has no blanks, may be bare. Which kind of key a
//! line has is decided as Argus does: if the first `/` component contains `=` it is a DN,
//! otherwise an FQAN pattern ([`fqan::FqanPattern`]).

pub mod dfpm;
pub mod fqan;

use crate::dn::{Dn, DnError};
use fqan::{FqanError, FqanPattern};
use std::path::Path;

/// The key of a map-file line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapKey {
    /// A subject DN, kept parsed for normalised comparison; `text` is as written.
    Dn {
        text: String,
        normalized: String,
    },
    Fqan(FqanPattern),
}

impl MapKey {
    /// Classify and parse a key as Argus does (first path component containing `=` → DN).
    pub fn parse(key: &str) -> Result<MapKey, MapfileError> {
        let first = key.trim_start_matches('/').split('/').next().unwrap_or("");
        if first.contains('=') {
            let dn = Dn::parse(key).map_err(|e| MapfileError::BadDn(key.into(), e))?;
            Ok(MapKey::Dn {
                text: key.to_string(),
                normalized: dn.comparison_key(),
            })
        } else {
            Ok(MapKey::Fqan(
                FqanPattern::parse(key).map_err(|e| MapfileError::BadFqan(key.into(), e))?,
            ))
        }
    }
}

/// The value of a map-file line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapTarget {
    /// A plain account (grid-mapfile) or group (group-mapfile) name.
    Name(String),
    /// `.prefix`: a pool of accounts `<prefix><digits>`.
    Pool(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    pub line: usize,
    pub key: MapKey,
    pub target: MapTarget,
}

#[derive(Debug, thiserror::Error)]
pub enum MapfileError {
    #[error("cannot read map file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("line {line}: {msg}")]
    Syntax { line: usize, msg: String },
    #[error("bad DN {0:?}: {1}")]
    BadDn(String, DnError),
    #[error("bad FQAN pattern {0:?}: {1}")]
    BadFqan(String, FqanError),
    #[error("{path}: {source}")]
    InFile {
        path: String,
        source: Box<MapfileError>,
    },
}

/// A parsed map file (entries in file order: first match wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapfile {
    pub entries: Vec<MapEntry>,
}

/// Split a line into its (unquoted) key and the rest.
fn split_key(line: &str, lineno: usize) -> Result<(String, &str), MapfileError> {
    let syntax = |msg: &str| MapfileError::Syntax {
        line: lineno,
        msg: msg.into(),
    };
    if let Some(rest) = line.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((key, &rest[i + 1..])),
                '\\' => match chars.next() {
                    Some((_, '"')) => key.push('"'),
                    Some((_, n)) => {
                        key.push('\\');
                        key.push(n);
                    }
                    None => return Err(syntax("backslash at end of line")),
                },
                _ => key.push(c),
            }
        }
        Err(syntax("unterminated quoted key"))
    } else {
        let end = line.find(char::is_whitespace).unwrap_or(line.len());
        Ok((line[..end].to_string(), &line[end..]))
    }
}

impl Mapfile {
    pub fn parse(text: &str) -> Result<Mapfile, MapfileError> {
        let mut entries = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let lineno = idx + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, rest) = split_key(line, lineno)?;
            let value = rest.split('#').next().unwrap_or("").trim();
            // "a,b" (and "a, b"): several accounts, the first is the default.
            let first = value.split(',').next().unwrap_or("").trim();
            if key.is_empty() || first.is_empty() {
                return Err(MapfileError::Syntax {
                    line: lineno,
                    msg: "expected \"KEY\" VALUE".into(),
                });
            }
            if first.contains(char::is_whitespace) {
                return Err(MapfileError::Syntax {
                    line: lineno,
                    msg: format!("unexpected text after value {first:?}"),
                });
            }
            let target = match first.strip_prefix('.') {
                Some(p) if !p.is_empty() => MapTarget::Pool(p.to_string()),
                Some(_) => {
                    return Err(MapfileError::Syntax {
                        line: lineno,
                        msg: "empty pool prefix".into(),
                    })
                }
                None => MapTarget::Name(first.to_string()),
            };
            let key = MapKey::parse(&key).map_err(|e| MapfileError::Syntax {
                line: lineno,
                msg: e.to_string(),
            })?;
            entries.push(MapEntry {
                line: lineno,
                key,
                target,
            });
        }
        Ok(Mapfile { entries })
    }

    pub fn load(path: &Path) -> Result<Mapfile, MapfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| MapfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Mapfile::parse(&text).map_err(|e| MapfileError::InFile {
            path: path.display().to_string(),
            source: Box::new(e),
        })
    }

    /// First entry whose DN key equals `dn` (slash or RFC 2253 form).
    pub fn match_dn(&self, dn: &str) -> Option<&MapEntry> {
        let n = crate::dn::normalize_dn(dn).ok()?;
        self.entries
            .iter()
            .find(|e| matches!(&e.key, MapKey::Dn { normalized, .. } if *normalized == n))
    }

    /// All entries whose DN key equals `dn`, in file order.
    pub fn all_dn(&self, dn: &str) -> Vec<&MapEntry> {
        let Ok(n) = crate::dn::normalize_dn(dn) else {
            return vec![];
        };
        self.entries
            .iter()
            .filter(|e| matches!(&e.key, MapKey::Dn { normalized, .. } if *normalized == n))
            .collect()
    }

    /// All entries whose FQAN pattern matches `fqan`, in file order.
    pub fn all_fqan(&self, fqan: &str) -> Vec<&MapEntry> {
        self.entries
            .iter()
            .filter(|e| matches!(&e.key, MapKey::Fqan(p) if p.matches_str(fqan)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoting_pools_comments_and_multiple_accounts() {
        let m = Mapfile::parse(
            "# c\n\n\"/CN=Batman/OU=Grid User\" batman\n  \"/atlas\"\t.atlas  # pool\n\
             /CN=bare/O=x alice,alice2\n\"/CN=q\\\"uote\" q\n",
        )
        .unwrap();
        assert_eq!(m.entries.len(), 4);
        assert_eq!(m.entries[0].target, MapTarget::Name("batman".into()));
        assert!(matches!(m.entries[1].key, MapKey::Fqan(_)));
        assert_eq!(m.entries[1].target, MapTarget::Pool("atlas".into()));
        assert_eq!(m.entries[2].target, MapTarget::Name("alice".into()));
        assert!(m.match_dn("CN=q\"uote").is_some());
        assert_eq!(m.match_dn("OU=Grid User,CN=Batman").unwrap().line, 3);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (bad, line) in [
            ("\"/CN=x\n", 1),
            ("\"/CN=a\" x\n\"/CN=b\n", 2),
            ("\"/a\" .\n", 1),
            ("\"/CN=x\" a b\n", 1),
        ] {
            match Mapfile::parse(bad) {
                Err(MapfileError::Syntax { line: l, .. }) => assert_eq!(l, line, "{bad:?}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
