//! Many concurrent `pilotbox`-like processes mapping through the real policy and SQLite store.
//!
//! Issue 5: 200 concurrent mapping processes, 50 identities, pool of 50: every identity gets
//! exactly one account, no account two identities; repeat → same answers; 51st identity → 121.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const PROBE: &str = env!("CARGO_BIN_EXE_pilotbox-lease-probe");

/// A temp dir whose ancestors are root-owned and not group/world-writable when run as root
/// (the target dir, not /tmp), so the probe's permission check passes for the right reason.
pub fn trusted_tempdir() -> tempfile::TempDir {
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
    std::fs::create_dir_all(&base).unwrap();
    let d = tempfile::Builder::new()
        .prefix("authz-")
        .tempdir_in(&base)
        .unwrap();
    std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    d
}

fn write_policy(dir: &Path) -> PathBuf {
    let p = dir.join("policy.toml");
    let text = format!(
        "[[pool]]\nname = \"testvo\"\nuids = \"30001-30050\"\ngid = 30000\n\n\
         [[map]]\nfqan = \"/testvo/*\"\npool = \"testvo\"\n\n\
         [lease]\nstore = \"{}\"\nbusy_timeout = \"120s\"\n",
        dir.join("leases.sqlite").display()
    );
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    p
}

fn spawn(policy: &Path, user: usize) -> Child {
    Command::new(PROBE)
        .args([
            "decide",
            policy.to_str().unwrap(),
            &format!("/DC=org/DC=example/CN=user{user:03}"),
        ])
        .arg("/testvo/Role=NULL/Capability=NULL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn probe")
}

/// Run 200 processes at once (4 per identity); return identity → set of uids it got.
fn round(policy: &Path) -> HashMap<usize, HashSet<u32>> {
    let children: Vec<(usize, Child)> = (0..200).map(|i| (i % 50, spawn(policy, i % 50))).collect();
    let mut got: HashMap<usize, HashSet<u32>> = HashMap::new();
    for (user, c) in children {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "user{user}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["gid"], 30000);
        got.entry(user)
            .or_default()
            .insert(v["uid"].as_u64().unwrap() as u32);
    }
    got
}

#[test]
fn two_hundred_processes_fifty_identities_pool_of_fifty() {
    let dir = trusted_tempdir();
    let policy = write_policy(dir.path());
    let first = round(&policy);
    assert_eq!(first.len(), 50);
    let mut owner: HashMap<u32, usize> = HashMap::new();
    for (user, uids) in &first {
        assert_eq!(uids.len(), 1, "user{user} got several accounts: {uids:?}");
        let uid = *uids.iter().next().unwrap();
        assert!((30001..=30050).contains(&uid));
        if let Some(other) = owner.insert(uid, *user) {
            panic!("uid {uid} given to user{other} and user{user}");
        }
    }
    let second = round(&policy);
    assert_eq!(first, second, "a repeat must give the same answers");

    let out = spawn(&policy, 50).wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(121),
        "51st identity: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pool testvo exhausted"), "{err}");
}
