//! `pilotbox policy check [FILE]`: everything that would make pilotbox refuse or surprise,
//! before a pilot finds out. Checks the schema, the permissions of the file and its directories,
//! the files it references (CA and VOMS dirs, map files, ban files, lease store), pool overlaps
//! (refused at load) and mapping rules that can never match.
//!
//! FILE lets an admin check a candidate before installing it; it never changes which policy
//! pilotbox enforces (always `policy::config::POLICY_PATH`). Because `pilotbox` is setuid root,
//! a caller-supplied FILE is read with the caller's own uid and gids (privileges dropped for
//! good first), so this cannot be used to read files the caller could not read.

use clap::Args as ClapArgs;
use policy::authz::Policy;
use policy::class::Class;
use policy::config::{check_trusted_file, parse, POLICY_PATH, TRUSTED_UID};
use std::path::{Path, PathBuf};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// `check`: the only action (kept as a word so `pilotbox policy check` reads naturally).
    #[arg(value_parser = ["check"])]
    pub action: String,
    /// Policy file to check instead of the installed one.
    pub file: Option<PathBuf>,
}

/// Give up setuid privileges permanently: real, effective and saved ids all become the caller's.
fn drop_privileges() -> Result<(), String> {
    use nix::unistd::{setresgid, setresuid, Gid, Uid};
    // The caller's ids from sanitize: the setuid worker's real ids are 0 (launcher::split).
    let (uid, gid) = crate::launcher::split::caller_ids();
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    setresgid(gid, gid, gid).map_err(|e| format!("setresgid: {e}"))?;
    setresuid(uid, uid, uid).map_err(|e| format!("setresuid: {e}"))
}

/// The report: (errors, warnings, notes).
#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub ok: Vec<String>,
}

fn exists(r: &mut Report, what: &str, p: &Path, dir: bool) {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() == dir => r.ok.push(format!("{what} {} exists", p.display())),
        Ok(_) => r.errors.push(format!(
            "{what} {} is not a {}",
            p.display(),
            if dir { "directory" } else { "file" }
        )),
        Err(e) => r.errors.push(format!("{what} {}: {e}", p.display())),
    }
}

/// Check `path` as the policy; `trusted_uid` is who must own it (root in production).
pub fn check(path: &Path, trusted_uid: u32) -> Report {
    let mut r = Report::default();
    match check_trusted_file(path, trusted_uid) {
        Ok(()) => r.ok.push(format!(
            "{} and its directories are owned by uid {trusted_uid} and not writable by others",
            path.display()
        )),
        Err(e) => r.errors.push(e.to_string()),
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            r.errors
                .push(format!("cannot read {}: {e}", path.display()));
            return r;
        }
    };
    let file = match parse(&text, path) {
        Ok(f) => f,
        Err(e) => {
            r.errors.push(e.to_string());
            return r;
        }
    };
    exists(&mut r, "[trust] ca_dir", &file.trust.ca_dir, true);
    exists(&mut r, "[trust] voms_dir", &file.trust.voms_dir, true);
    if file.pilots.users.is_empty() && file.pilots.groups.is_empty() {
        r.warnings
            .push("[pilots] is empty: nobody may call pilotbox".into());
    }
    if let Some(parent) = file.lease.store.parent() {
        if file.lease.backend == policy::config::schema::LeaseBackend::Sqlite {
            exists(&mut r, "lease store directory", parent, true);
        }
    }
    let policy = match Policy::compile(file, path) {
        Ok(p) => p,
        Err(e) => {
            r.errors.push(e.to_string());
            return r;
        }
    };
    for b in &policy.bans.broken {
        r.errors
            .push(format!("{b}: while this lasts EVERYONE IS BANNED"));
    }
    for u in policy.unreachable_rules() {
        r.warnings.push(u);
    }
    let used: std::collections::HashSet<&str> = policy
        .rules
        .iter()
        .filter_map(|rule| match &rule.target {
            policy::authz::Target::Pool(p) => Some(p.as_str()),
            _ => None,
        })
        .collect();
    for name in policy.pools.keys() {
        if !used.contains(name.as_str()) {
            r.warnings
                .push(format!("[[pool]] {name} is not used by any mapping rule"));
        }
    }
    for pool in policy.pools.values() {
        r.ok.push(format!(
            "pool {}: {} accounts",
            pool.name,
            pool.accounts.len()
        ));
    }
    r.ok.push(format!("{} mapping rules", policy.rules.len()));
    r
}

pub fn run(args: Args) -> i32 {
    let path = match &args.file {
        Some(f) => {
            if let Err(e) = drop_privileges() {
                eprintln!("pilotbox policy check: cannot drop privileges: {e}");
                return Class::SiteError.exit_code();
            }
            f.clone()
        }
        None => PathBuf::from(POLICY_PATH),
    };
    let r = check(&path, TRUSTED_UID);
    for l in &r.ok {
        println!("ok: {l}");
    }
    for l in &r.warnings {
        println!("warning: {l}");
    }
    for l in &r.errors {
        println!("error: {l}");
    }
    if r.errors.is_empty() {
        println!(
            "{}: policy is usable ({} warning(s))",
            path.display(),
            r.warnings.len()
        );
        0
    } else {
        println!(
            "{}: {} error(s): pilotbox would refuse to run (exit 123)",
            path.display(),
            r.errors.len()
        );
        Class::SiteError.exit_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("policy.toml");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn tdir() -> tempfile::TempDir {
        // Root-owned, 0755 ancestors whatever the checkout's location (a clone under /tmp, 1777, would
        // fail the policy permission checks for the wrong reason).
        let base = if nix::unistd::geteuid().is_root() {
            let b = PathBuf::from("/var/lib/pilotbox-tests/tmp");
            std::fs::create_dir_all(&b).unwrap();
            for d in ["/var/lib/pilotbox-tests", "/var/lib/pilotbox-tests/tmp"] {
                std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .unwrap();
            }
            b
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tmp")
        };
        std::fs::create_dir_all(&base).unwrap();
        let d = tempfile::Builder::new()
            .prefix("pcheck-")
            .tempdir_in(&base)
            .unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    fn me() -> u32 {
        nix::unistd::getuid().as_raw()
    }

    #[test]
    fn reports_unreachable_rules_unused_pools_and_missing_dirs() {
        let d = tdir();
        let p = write(
            d.path(),
            "[trust]\nca_dir = \"/nonexistent-ca\"\n[pilots]\nusers = [\"root\"]\n\
             [[pool]]\nname = \"a\"\nuids = \"30001-30002\"\ngid = 1\n\
             [[pool]]\nname = \"unused\"\nuids = \"30011-30012\"\ngid = 1\n\
             [[map]]\nfqan = \"/a/*/Role=*\"\npool = \"a\"\n[[map]]\nfqan = \"/a/Role=pilot\"\npool = \"a\"\n",
            0o644,
        );
        let r = check(&p, me());
        assert!(
            r.errors.iter().any(|e| e.contains("/nonexistent-ca")),
            "{r:?}"
        );
        assert!(
            r.warnings.iter().any(|w| w.contains("#2 can never match")),
            "{r:?}"
        );
        assert!(r.warnings.iter().any(|w| w.contains("unused")), "{r:?}");
    }

    #[test]
    fn reports_permissions_schema_and_broken_ban_files() {
        let d = tdir();
        let p = write(d.path(), "[pilots]\nusers = [\"root\"]\n", 0o666);
        let r = check(&p, me());
        assert!(
            r.errors.iter().any(|e| e.contains("world-writable")),
            "{r:?}"
        );
        let p = write(d.path(), "[bans]\n", 0o644);
        assert!(check(&p, me())
            .errors
            .iter()
            .any(|e| e.contains("unknown field")));
        let p = write(
            d.path(),
            "[ban]\nfiles = [\"/nonexistent-ban-file\"]\n",
            0o644,
        );
        assert!(check(&p, me())
            .errors
            .iter()
            .any(|e| e.contains("EVERYONE IS BANNED")));
    }
}
