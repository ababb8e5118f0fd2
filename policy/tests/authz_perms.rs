//! The policy file is refused unless only root could have written it: group-writable file,
//! writable parent directory and non-root owner are each refused with a message naming the
//! path and the fix (site error, 123).

use policy::authz::Policy;
use policy::class::Class;
use policy::config::{check_trusted_file, PermError, POLICY_PATH};
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};

fn me() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// A directory under the target dir (root-owned, 0755 ancestors when run as root).
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
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
    };
    fs::create_dir_all(&base).unwrap();
    let d = tempfile::Builder::new()
        .prefix("perms-")
        .tempdir_in(&base)
        .unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn policy_in(dir: &Path) -> PathBuf {
    let sub = dir.join("etc");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
    let p = sub.join("policy.toml");
    fs::write(&p, "[pilots]\nusers = [\"pilot\"]\n").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    p
}

#[test]
fn policy_path_is_fixed_at_build_time() {
    assert_eq!(
        POLICY_PATH,
        option_env!("PILOTBOX_POLICY").unwrap_or("/etc/pilotbox/policy.toml")
    );
}

#[test]
fn a_clean_file_is_accepted() {
    let d = tdir();
    let p = policy_in(d.path());
    check_trusted_file(&p, me()).unwrap();
    Policy::load(&p, me()).unwrap();
}

#[test]
fn group_writable_file_is_refused() {
    let d = tdir();
    let p = policy_in(d.path());
    fs::set_permissions(&p, fs::Permissions::from_mode(0o664)).unwrap();
    let e = check_trusted_file(&p, me()).unwrap_err();
    assert!(matches!(e, PermError::Writable { who: "group", .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&p.display().to_string()) && msg.contains("chmod go-w"),
        "{msg}"
    );
    let denial = policy::class::Denial::from(Policy::load(&p, me()).unwrap_err());
    assert_eq!(denial.class, Class::SiteError);
    assert_eq!(denial.class.exit_code(), 123);
}

#[test]
fn world_writable_file_is_refused() {
    let d = tdir();
    let p = policy_in(d.path());
    fs::set_permissions(&p, fs::Permissions::from_mode(0o646)).unwrap();
    assert!(matches!(
        check_trusted_file(&p, me()),
        Err(PermError::Writable { who: "world", .. })
    ));
}

#[test]
fn writable_parent_directory_is_refused() {
    for mode in [0o775, 0o757, 0o1777] {
        let d = tdir();
        let p = policy_in(d.path());
        let parent = p.parent().unwrap();
        fs::set_permissions(parent, fs::Permissions::from_mode(mode)).unwrap();
        let e = check_trusted_file(&p, me()).unwrap_err();
        match &e {
            PermError::Writable { path, .. } => assert_eq!(path, parent, "{e}"),
            other => panic!("mode {mode:o}: {other}"),
        }
        assert!(
            e.to_string()
                .contains(&format!("chmod go-w {}", parent.display())),
            "{e}"
        );
    }
}

#[test]
fn non_root_owner_is_refused() {
    let d = tdir();
    let p = policy_in(d.path());
    if me() != 0 {
        // Without root we cannot chown; the same check with another trusted uid still runs.
        let e = check_trusted_file(&p, me() + 1).unwrap_err();
        assert!(matches!(e, PermError::Owner { .. }), "{e}");
        return;
    }
    chown(&p, Some(65534), None).unwrap();
    let e = check_trusted_file(&p, 0).unwrap_err();
    assert_eq!(
        e,
        PermError::Owner {
            path: p.clone(),
            owner: 65534,
            trusted: 0
        }
    );
    assert!(
        e.to_string().contains(&format!("chown 0 {}", p.display())),
        "{e}"
    );
    // Owned by root again, but the directory above belongs to someone else.
    chown(&p, Some(0), None).unwrap();
    chown(p.parent().unwrap(), Some(65534), None).unwrap();
    let e = check_trusted_file(&p, 0).unwrap_err();
    assert!(
        matches!(&e, PermError::Owner { path, .. } if path == p.parent().unwrap()),
        "{e}"
    );
    chown(p.parent().unwrap(), Some(0), None).unwrap();
    check_trusted_file(&p, 0).unwrap();
}

#[test]
fn symlink_into_an_untrusted_directory_is_refused() {
    let d = tdir();
    let p = policy_in(d.path());
    let evil = d.path().join("evil");
    fs::create_dir(&evil).unwrap();
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o777)).unwrap();
    let target = evil.join("policy.toml");
    fs::copy(&p, &target).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    let link = p.parent().unwrap().join("link.toml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let e = check_trusted_file(&link, me()).unwrap_err();
    assert!(
        matches!(&e, PermError::Writable { path, .. } if path == &evil),
        "{e}"
    );
}

#[test]
fn missing_file_and_directory_are_refused() {
    let d = tdir();
    assert!(matches!(
        check_trusted_file(&d.path().join("nope.toml"), me()),
        Err(PermError::Stat { .. })
    ));
    assert!(matches!(
        check_trusted_file(d.path(), me()),
        Err(PermError::NotAFile { .. })
    ));
}
