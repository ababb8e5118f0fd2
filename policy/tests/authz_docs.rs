//! The annotated example in `docs/policy.md` must parse, compile and decide as documented.

mod support;

use policy::authz::{decide, Policy, Request};
use policy::class::Class;
use policy::config::parse;
use policy::identity::Identity;
use policy::lease::sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use support::identity;

fn example() -> String {
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/policy.md");
    let text = std::fs::read_to_string(&doc).expect("docs/policy.md");
    let after = text
        .split("<!-- full-example")
        .nth(1)
        .expect("full-example marker");
    let block = after.split("```toml\n").nth(1).expect("toml block");
    block.split("\n```").next().unwrap().to_string()
}

#[test]
fn documented_example_parses_with_every_key() {
    let f = parse(&example(), Path::new("docs/policy.md")).unwrap();
    assert_eq!(f.pools.len(), 2);
    assert_eq!(f.maps.len(), 3);
    assert_eq!(f.limits.default.memory.unwrap().0, 2 << 30);
    assert_eq!(f.limits.default.walltime.unwrap().0, 48 * 3600);
    assert_eq!(f.limits.caps.len(), 2);
    assert_eq!(f.lease.idle.0, 30 * 86400);
    assert_eq!(f.lease.store, Path::new("/var/lib/pilotbox/leases.sqlite"));
    assert_eq!(f.ban.files.len(), 1);
}

#[test]
fn documented_example_decides_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let conformance =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/argus-pep-server");
    let bans = dir.path().join("banned-users");
    std::fs::write(&bans, "\"/DC=org/DC=example/O=Users/CN=Eve\"\n").unwrap();
    let store = dir.path().join("leases.sqlite");
    let text = example()
        .replace(
            "/etc/grid-security/grid-mapfile",
            conformance.join("grid-mapfile").to_str().unwrap(),
        )
        .replace(
            "/etc/grid-security/groupmapfile",
            conformance.join("group-mapfile").to_str().unwrap(),
        )
        .replace("/etc/pilotbox/banned-users", bans.to_str().unwrap())
        .replace("/var/lib/pilotbox/leases.sqlite", store.to_str().unwrap());
    let p = Policy::compile(parse(&text, Path::new("t")).unwrap(), Path::new("t")).unwrap();
    assert!(p.rules.len() > 3, "grid-mapfile lines appended");
    let s = SqliteStore::open(&store, 5).unwrap();
    let run = |id: &Identity| decide(&p, id, &Request::default(), &s, &|_| false, 100);

    let pilot = run(&identity(
        "/DC=org/CN=P",
        &["/testvo/Role=pilot/Capability=NULL"],
        true,
    ))
    .unwrap();
    assert_eq!(
        (pilot.uid, pilot.gid, pilot.groups.clone()),
        (30101, 30100, vec![30999])
    );
    assert_eq!(
        pilot.limits.memory_bytes,
        Some(2 << 30),
        "the default applies when nothing is asked"
    );
    let big = Request {
        limits: policy::authz::LimitRequest {
            memory: Some(32 << 30),
            ..Default::default()
        },
        env: vec![],
    };
    let id = identity("/DC=org/CN=P", &["/testvo/Role=pilot"], true);
    let capped = decide(&p, &id, &big, &s, &|_| false, 100).unwrap();
    assert_eq!(
        capped.limits.memory_bytes,
        Some(16 << 30),
        "the pilot-role cap"
    );
    let user = run(&identity("/DC=org/CN=U", &["/testvo/analysis"], true)).unwrap();
    assert_eq!((user.uid, user.pool.as_deref()), (30001, Some("testvo")));
    let alice = run(&identity(
        "CN=Alice Tester,O=Users,DC=example,DC=org",
        &[],
        false,
    ))
    .unwrap();
    assert_eq!(
        (alice.uid, alice.gid, alice.pool.clone()),
        (31000, 31000, None)
    );
    for (dn, fq) in [
        ("/DC=org/DC=example/O=Users/CN=Mallory", vec![]),
        ("/DC=org/DC=example/O=Users/CN=Eve", vec![]),
        ("/DC=org/CN=U", vec!["/testvo/compromised"]),
    ] {
        assert_eq!(
            run(&identity(dn, &fq, false)).unwrap_err().class,
            Class::Denied,
            "{dn}"
        );
    }
}
