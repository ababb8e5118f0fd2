//! Unit tests of the set-id strip and the hand-over back (root: chown and capabilities).

use super::*;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::path::Path;

const PILOT: u32 = 43_210;
const POOL: u32 = 43_211;

fn root_or_skip() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED: needs root (chown, security.capability)");
    }
    root
}

fn file(p: &Path, uid: u32, mode: u32) {
    std::fs::write(p, b"content").unwrap();
    chown(p, Some(uid), Some(uid)).unwrap();
    // After the chown (which clears set-id bits).
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn open(p: &Path) -> OwnedFd {
    openat(
        rustix::fs::CWD,
        p,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

/// A v2 `security.capability` value granting CAP_NET_RAW, effective (linux/capability.h).
fn set_cap(p: &Path) {
    let mut v = Vec::new();
    v.extend_from_slice(&(0x0200_0000u32 | 1).to_le_bytes());
    v.extend_from_slice(&(1u32 << 13).to_le_bytes()); // permitted
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable
    v.extend_from_slice(&[0u8; 8]);
    rustix::fs::setxattr(p, CAPS_XATTR, &v, rustix::fs::XattrFlags::empty()).unwrap();
}

fn has_cap(p: &Path) -> bool {
    rustix::fs::lgetxattr(p, CAPS_XATTR, &mut [0u8; 64][..]).is_ok()
}

#[test]
fn setid_bits_and_capabilities_are_stripped_at_any_depth_and_nothing_else_changes() {
    if !root_or_skip() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let w = t.path().join("w");
    let outside = t.path().join("outside");
    let mut deep = w.clone();
    for _ in 0..300 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    file(&w.join("suid"), PILOT, 0o4755);
    file(&w.join("sgid"), POOL, 0o2755);
    file(&w.join("plain"), PILOT, 0o755);
    file(&deep.join("deep"), PILOT, 0o6711);
    file(&w.join("capped"), PILOT, 0o755);
    set_cap(&w.join("capped"));
    // Someone else's set-uid file hard-linked in: not the pilot's nor the pool's, left alone.
    file(&w.join("other"), 0, 0o4755);
    // A symlink to a set-uid file outside: not followed.
    file(&outside.join("target"), PILOT, 0o4755);
    symlink(outside.join("target"), w.join("link")).unwrap();
    // A set-gid directory: group inheritance only, left alone.
    std::fs::create_dir(w.join("shared")).unwrap();
    std::fs::set_permissions(w.join("shared"), std::fs::Permissions::from_mode(0o2775)).unwrap();

    let what = AfterRun {
        owners: vec![PILOT, POOL],
        back: None,
        caps: true,
    };
    let c = after_run(&open(&w), &what).unwrap();
    assert_eq!(mode(&w.join("suid")), 0o755);
    assert_eq!(mode(&w.join("sgid")), 0o755);
    assert_eq!(mode(&w.join("plain")), 0o755);
    assert_eq!(mode(&deep.join("deep")), 0o711, "300 levels down");
    assert!(!has_cap(&w.join("capped")));
    assert_eq!(mode(&w.join("other")), 0o4755);
    assert_eq!(mode(&outside.join("target")), 0o4755);
    assert_eq!(mode(&w.join("shared")), 0o2775);
    assert_eq!(
        (c.setid_stripped, c.caps_removed, c.errors),
        (3, 1, 0),
        "{c:?}"
    );
    // Idempotent.
    let again = after_run(&open(&w), &what).unwrap();
    assert_eq!((again.setid_stripped, again.caps_removed), (0, 0));
}

#[test]
fn the_way_back_leaves_nothing_to_the_pool_uid_at_any_depth_nor_through_hard_links() {
    if !root_or_skip() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let w = t.path().join("w");
    let other_run = t.path().join("other-run");
    let mut deep = w.clone();
    for _ in 0..300 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::create_dir_all(&other_run).unwrap();
    let mut p = deep.clone();
    while p.starts_with(&w) {
        chown(&p, Some(POOL), Some(POOL)).unwrap();
        p.pop();
    }
    file(&deep.join("out"), POOL, 0o644);
    file(&w.join("suid"), POOL, 0o4755);
    // Another run's file of the same pool account, linked into this work dir by the payload,
    // and a file the payload linked twice inside the work dir.
    file(&other_run.join("theirs"), POOL, 0o600);
    std::fs::hard_link(other_run.join("theirs"), w.join("linked")).unwrap();
    file(&w.join("twice"), POOL, 0o640);
    std::fs::hard_link(w.join("twice"), deep.join("twice2")).unwrap();
    symlink("target", w.join("sym")).unwrap();
    rustix::fs::chownat(
        rustix::fs::CWD,
        &w.join("sym"),
        Some(rustix::fs::Uid::from_raw(POOL)),
        Some(rustix::fs::Gid::from_raw(POOL)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
    rustix::fs::linkat(
        rustix::fs::CWD,
        &w.join("sym"),
        rustix::fs::CWD,
        &other_run.join("sym"),
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();

    let what = AfterRun {
        owners: vec![PILOT, POOL],
        back: Some(Transfer {
            from_uid: POOL,
            to_uid: PILOT,
            to_gid: PILOT,
            skip_multilinked: true,
        }),
        caps: true,
    };
    let c = after_run(&open(&w), &what).unwrap();
    assert_eq!(c.errors, 0, "{c:?}");
    // Nothing below w belongs to the pool uid, nothing is set-id.
    let mut stack = vec![w.clone()];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        let md = std::fs::symlink_metadata(&d).unwrap();
        assert_eq!(md.uid(), PILOT, "{} is still the pool uid's", d.display());
        assert_eq!(md.mode() & 0o6000, 0, "{} is set-id", d.display());
        n += 1;
        if md.is_dir() {
            stack.extend(std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert!(n > 300);
    // The other run's file was not given to the pilot; the work dir has a copy of it.
    let theirs = std::fs::metadata(other_run.join("theirs")).unwrap();
    assert_eq!((theirs.uid(), theirs.nlink()), (POOL, 1));
    assert_eq!(std::fs::read(w.join("linked")).unwrap(), b"content");
    assert_eq!(mode(&w.join("linked")), 0o600);
    assert_eq!(
        std::fs::symlink_metadata(other_run.join("sym"))
            .unwrap()
            .uid(),
        POOL
    );
    assert_eq!(
        std::fs::read_link(w.join("sym")).unwrap(),
        Path::new("target")
    );
    assert_eq!(std::fs::read(deep.join("twice2")).unwrap(), b"content");
    assert!(c.handback.replaced >= 3, "{c:?}");
    // No temporaries left behind.
    assert!(std::fs::read_dir(&w).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".pilotbox")));
}

/// Cost of the after-run walk (`cargo test -p runtime --lib walk_cost -- --ignored --nocapture`).
#[test]
#[ignore]
fn walk_cost() {
    let t = tempfile::tempdir().unwrap();
    let w = t.path().join("w");
    for d in 0..100 {
        let dir = w.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f}")), b"x").unwrap();
        }
    }
    let what = AfterRun {
        owners: vec![rustix::process::geteuid().as_raw()],
        back: None,
        caps: true,
    };
    let fd = open(&w);
    let t0 = std::time::Instant::now();
    let c = after_run(&fd, &what).unwrap();
    eprintln!("10,100 entries: {:?} ({c:?})", t0.elapsed());
}
