//! Bans: subject DNs, issuing CAs and FQAN patterns, from `policy.toml` and from ban files.
//!
//! Differences from LCAS/LCMAPS, on purpose (issue 5, "Semantics"):
//! - a configured ban file that is missing, unreadable or malformed bans **everyone** (site
//!   error, logged loudly): a ban list that silently disappears must not let banned users in;
//! - FQAN bans apply to the FQANs the credential *claims*, even when the AC is invalid or
//!   expired (LCMAPS `ban_fqan` only saw verified FQANs, so an expired AC evaded the ban);
//! - DNs compare in normalised form, so slash and RFC 2253 spellings ban the same subject.
//!
//! Ban file format (compatible with LCAS `ban_users.db`): one entry per line, optionally in
//! double quotes, `#` comments; an entry whose first `/` component contains `=` is a DN,
//! anything else an FQAN pattern.

use crate::config::schema::Ban;
use crate::config::ConfigError;
use crate::dn::Dn;
use crate::identity::Identity;
use crate::mapfile::fqan::{Fqan, FqanPattern};
use crate::mapfile::MapKey;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct Bans {
    dns: Vec<(String, String)>,
    cas: Vec<(String, String)>,
    fqans: Vec<(String, FqanPattern)>,
    /// Ban files that could not be used: while non-empty, everyone is banned.
    pub broken: Vec<String>,
}

/// Why an identity is banned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanHit {
    Dn {
        entry: String,
        source: String,
    },
    Ca {
        entry: String,
        source: String,
    },
    Fqan {
        fqan: String,
        pattern: String,
        source: String,
        verified: bool,
    },
    UnparseableFqan {
        fqan: String,
    },
    BrokenBanFile(String),
}

impl std::fmt::Display for BanHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BanHit::Dn { entry, source } => write!(f, "subject DN is banned ({source}: {entry})"),
            BanHit::Ca { entry, source } => write!(f, "issuing CA is banned ({source}: {entry})"),
            BanHit::Fqan {
                fqan,
                pattern,
                source,
                verified,
            } => write!(
                f,
                "FQAN {fqan}{} is banned ({source}: {pattern})",
                if *verified {
                    ""
                } else {
                    " (claimed by an unverified AC)"
                }
            ),
            BanHit::UnparseableFqan { fqan } => {
                write!(
                    f,
                    "claimed FQAN {fqan:?} cannot be parsed, so FQAN bans cannot be ruled out"
                )
            }
            BanHit::BrokenBanFile(why) => write!(
                f,
                "everyone is banned until the site fixes a ban file: {why}"
            ),
        }
    }
}

fn norm(path: &Path, s: &str) -> Result<String, ConfigError> {
    Dn::parse(s)
        .map(|d| d.comparison_key())
        .map_err(|e| ConfigError::Invalid {
            path: path.into(),
            reason: format!("[ban] DN {s:?}: {e}"),
        })
}

impl Bans {
    /// Compile `[ban]`; `policy_path` is for messages. Inline entries that do not parse are a
    /// configuration error; ban files that cannot be used go to `broken`.
    pub fn compile(ban: &Ban, policy_path: &Path) -> Result<Bans, ConfigError> {
        let src = "policy.toml [ban]".to_string();
        let mut b = Bans::default();
        for d in &ban.dns {
            b.dns.push((d.clone(), norm(policy_path, d)?));
        }
        for d in &ban.cas {
            b.cas.push((d.clone(), norm(policy_path, d)?));
        }
        for f in &ban.fqans {
            let p = FqanPattern::parse(f).map_err(|e| ConfigError::Invalid {
                path: policy_path.into(),
                reason: format!("[ban] fqans: {e}"),
            })?;
            b.fqans.push((format!("{src} fqans"), p));
        }
        for file in &ban.files {
            if let Err(why) = b.load_file(file) {
                tracing::error!(ban_file = %file.display(), "{why}: EVERYONE IS BANNED until this is fixed");
                b.broken.push(why);
            }
        }
        Ok(b)
    }

    fn load_file(&mut self, file: &PathBuf) -> Result<(), String> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("ban file {}: {e}", file.display()))?;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = match line.strip_prefix('"') {
                Some(q) => match q.find('"') {
                    Some(end) => &q[..end],
                    None => {
                        return Err(format!(
                            "ban file {}:{}: unterminated quote",
                            file.display(),
                            i + 1
                        ))
                    }
                },
                None => line.split('#').next().unwrap_or("").trim(),
            };
            let src = format!("{}:{}", file.display(), i + 1);
            match MapKey::parse(entry) {
                Ok(MapKey::Dn { normalized, .. }) => {
                    self.dns.push((format!("{entry} ({src})"), normalized))
                }
                Ok(MapKey::Fqan(p)) => self.fqans.push((src, p)),
                Err(e) => return Err(format!("ban file {}: {e}", src)),
            }
        }
        Ok(())
    }

    /// Every reason `id` is banned (empty = not banned).
    pub fn check(&self, id: &Identity) -> Vec<BanHit> {
        let mut hits: Vec<BanHit> = self
            .broken
            .iter()
            .map(|b| BanHit::BrokenBanFile(b.clone()))
            .collect();
        let subject = Dn::parse(&id.dn).map(|d| d.comparison_key()).ok();
        let issuer = Dn::parse(&id.issuer_dn).map(|d| d.comparison_key()).ok();
        for (entry, n) in &self.dns {
            if subject.as_deref() == Some(n.as_str()) {
                hits.push(BanHit::Dn {
                    entry: entry.clone(),
                    source: "ban dns".into(),
                });
            }
        }
        for (entry, n) in &self.cas {
            if issuer.as_deref() == Some(n.as_str()) {
                hits.push(BanHit::Ca {
                    entry: entry.clone(),
                    source: "ban cas".into(),
                });
            }
        }
        if !self.fqans.is_empty() {
            let verified = id.verified_vo().is_some();
            for fq in id.claimed_fqans() {
                match Fqan::parse(fq) {
                    Ok(parsed) => {
                        for (source, p) in &self.fqans {
                            if p.matches(&parsed) {
                                hits.push(BanHit::Fqan {
                                    fqan: fq.clone(),
                                    pattern: p.to_string(),
                                    source: source.clone(),
                                    verified,
                                });
                            }
                        }
                    }
                    Err(_) => hits.push(BanHit::UnparseableFqan { fqan: fq.clone() }),
                }
            }
        }
        if subject.is_none() && !self.dns.is_empty() {
            hits.push(BanHit::Dn {
                entry: id.dn.clone(),
                source: "subject DN does not parse".into(),
            });
        }
        if issuer.is_none() && !self.cas.is_empty() {
            hits.push(BanHit::Ca {
                entry: id.issuer_dn.clone(),
                source: "issuer DN does not parse".into(),
            });
        }
        hits
    }
}
