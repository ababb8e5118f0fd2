//! decide() with the gridmapdir backend, real NSS accounts and a group-mapfile, as a site
//! switching from LCMAPS would run it: pool found by prefix in the gridmapdir, lease file named
//! `<encoded DN>:<pgroup>` hard-linked to the account file. Needs root (useradd/groupadd); the
//! accounts and group are removed afterwards.

use policy::authz::{decide, Policy, Request};
use policy::config::parse;
use policy::identity::{Identity, Voms};
use policy::lease::gridmapdir::{lease_name, GridmapdirStore};
use policy::lease::LeaseStore;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

const USERS: [(&str, u32); 2] = [("pbxgm01", 39601), ("pbxgm02", 39602)];
const GROUP: (&str, u32) = ("pbxgmgrp", 39600);

struct Accounts;

impl Accounts {
    fn create() -> Accounts {
        let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
        let g = Accounts; // drop cleans up even if a later step fails
        ok(Command::new("groupadd").args(["-g", &GROUP.1.to_string(), GROUP.0]));
        for (n, u) in USERS {
            ok(Command::new("useradd").args([
                "-M",
                "-N",
                "-g",
                GROUP.0,
                "-s",
                "/usr/sbin/nologin",
                "-u",
                &u.to_string(),
                n,
            ]));
        }
        g
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for (n, _) in USERS {
            let _ = Command::new("userdel").arg(n).status();
        }
        let _ = Command::new("groupdel").arg(GROUP.0).status();
    }
}

fn ident(dn: &str, fqan: &str) -> Identity {
    Identity {
        dn: dn.into(),
        issuer_dn: "/CN=CA".into(),
        proxy_type: None,
        limited: false,
        not_after: time::OffsetDateTime::now_utc(),
        voms: Some(Voms {
            vo: "testvo".into(),
            fqans: vec![fqan.into()],
            generic: vec![],
            valid: true,
            reason: None,
            not_after: None,
        }),
    }
}

#[test]
fn gridmapdir_backend_with_prefix_pools_and_group_suffix() {
    if nix::unistd::getuid().as_raw() != 0 {
        eprintln!("skipped: needs root for useradd");
        return;
    }
    let _accounts = Accounts::create();
    let d = tempfile::tempdir().unwrap();
    let gmd = d.path().join("gridmapdir");
    std::fs::create_dir(&gmd).unwrap();
    for (n, _) in USERS {
        std::fs::write(gmd.join(n), b"").unwrap();
    }
    std::fs::write(d.path().join("grid-mapfile"), "\"/testvo/*\" .pbxgm\n").unwrap();
    std::fs::write(
        d.path().join("group-mapfile"),
        format!("\"/testvo/*\" {}\n", GROUP.0),
    )
    .unwrap();
    let text = format!(
        "[mapping]\ngrid_mapfile = \"{0}/grid-mapfile\"\ngroup_mapfile = \"{0}/group-mapfile\"\n\
         [lease]\nbackend = \"gridmapdir\"\ngridmapdir = \"{1}\"\ngridmapdir_groups = \"primary\"\n",
        d.path().display(),
        gmd.display()
    );
    let p = Policy::compile(parse(&text, Path::new("t")).unwrap(), Path::new("t")).unwrap();
    let store = GridmapdirStore::open(&gmd, 10).unwrap();
    let run = |dn: &str| {
        decide(
            &p,
            &ident(dn, "/testvo/Role=NULL/Capability=NULL"),
            &Request::default(),
            &store,
            &|_| false,
            5000,
        )
    };

    let a = run("/DC=org/CN=John-John Doe").unwrap();
    assert_eq!(
        (a.account.as_str(), a.uid, a.gid, a.pool.as_deref()),
        ("pbxgm01", 39601, GROUP.1, Some("pbxgm"))
    );
    let lease = gmd.join(lease_name(
        "/DC=org/CN=John-John Doe",
        &[GROUP.0.to_string()],
    ));
    assert_eq!(
        lease.file_name().unwrap(),
        "%2fdc%3dorg%2fcn%3djohn%2djohn%20doe:pbxgmgrp"
    );
    assert_eq!(
        std::fs::metadata(&lease).unwrap().ino(),
        std::fs::metadata(gmd.join("pbxgm01")).unwrap().ino()
    );
    assert_eq!(
        run("/DC=org/CN=John-John Doe").unwrap().uid,
        39601,
        "sticky"
    );
    assert_eq!(run("/DC=org/CN=Other").unwrap().uid, 39602);
    let full = run("/DC=org/CN=Third").unwrap_err();
    assert_eq!(full.class.exit_code(), 121, "{full}");
    assert!(store.check().unwrap().is_empty());
    assert_eq!(store.list().unwrap().len(), 2);

    // A [[pool]] of uids cannot live in a gridmapdir (files are named after accounts).
    let bad = format!("{text}[[pool]]\nname = \"x\"\nuids = \"30001-30002\"\n");
    assert!(Policy::compile(parse(&bad, Path::new("t")).unwrap(), Path::new("t")).is_err());
}
