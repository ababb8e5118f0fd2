//! Unit tests of the mount sequence through the `Syscall` seam: no root needed.
use super::*;
use crate::spec_builder::{Bind, PayloadSpec};
use crate::syscall::Recorder;
use std::os::fd::OwnedFd;

fn plan(p: &PayloadSpec) -> Plan {
    Plan::from_spec(&p.to_spec().unwrap()).unwrap()
}

/// Fake detached trees: any open fds will do, the recorder only prints their numbers.
fn sources(plan: &Plan) -> Sources {
    let fd = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    Sources {
        root: fd(),
        binds: plan
            .mounts
            .iter()
            .map(|m| {
                matches!(m.kind, MountKind::Bind { .. })
                    .then(|| (fd(), !m.dest.starts_with("/dev")))
            })
            .collect(),
    }
}

fn host_like() -> Recorder {
    Recorder::with(&[
        ("/newroot/proc", Kind::Dir),
        ("/newroot/dev", Kind::Dir),
        ("/newroot/tmp", Kind::Dir),
        ("/newroot/var", Kind::Dir),
        ("/newroot/var/tmp", Kind::Dir),
        ("/newroot/home", Kind::Dir),
        ("/newroot/home/pilot", Kind::Dir),
        ("/newroot/home/pilot/x509up", Kind::File),
        ("/newroot/srv", Kind::Dir),
    ])
}

fn index_of(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call {prefix:?} in {calls:#?}"))
}

#[test]
fn sequence_cuts_propagation_first_and_pivots_last() {
    let mut p = PayloadSpec::new(vec!["true".into()], 30001, 30000);
    p.binds.push(Bind {
        source: "/srv/w".into(),
        dest: "/srv/w".into(),
        readonly: true,
        idmap: None,
    });
    p.hide.push("/home/pilot".into());
    let plan = plan(&p);
    let r = host_like();
    setup(&r, &plan, &sources(&plan)).unwrap();
    let c = r.calls();
    assert!(
        c[0].starts_with("mount - / - MsFlags(MS_REC | MS_SLAVE)"),
        "first: no propagation to the host: {}",
        c[0]
    );
    let staging = index_of(&c, "mount tmpfs /tmp tmpfs");
    let pivot1 = index_of(&c, "pivot_root /tmp /tmp/oldroot");
    let root = index_of(&c, "attach fd");
    let ro = index_of(&c, "setattr /newroot 0x1 recursive=true");
    let proc_ = index_of(&c, "mount proc /newroot/proc proc");
    let work = index_of(&c, "mkdir /newroot/srv/w");
    let mask = index_of(
        &c,
        "mount tmpfs /newroot/home/pilot tmpfs MsFlags(MS_RDONLY",
    );
    let detach = index_of(&c, "umount2 /oldroot MntFlags(MNT_DETACH)");
    let pivot2 = index_of(&c, "pivot_root . .");
    assert!(
        staging < pivot1
            && pivot1 < root
            && root < ro
            && ro < proc_
            && proc_ < work
            && work < mask
            && mask < detach
            && detach < pivot2
    );
    assert!(
        c.iter()
            .any(|l| l == "setattr /newroot/srv/w 0x7 recursive=true"),
        "ro,nosuid,nodev on the bind: {c:#?}"
    );
    assert_eq!(c.last().unwrap(), "chdir /");
}

#[test]
fn dev_gets_standard_links_and_device_binds() {
    let plan = plan(&PayloadSpec::new(vec!["true".into()], 1, 1));
    let r = host_like();
    setup(&r, &plan, &sources(&plan)).unwrap();
    let c = r.calls();
    for want in [
        "touch /newroot/dev/null",
        "symlink /proc/self/fd /newroot/dev/fd",
        "symlink pts/ptmx /newroot/dev/ptmx",
        "mount devpts /newroot/dev/pts devpts",
    ] {
        assert!(
            c.iter().any(|l| l.starts_with(want)),
            "missing {want:?}: {c:#?}"
        );
    }
}

#[test]
fn masks_files_with_dev_null_and_ignores_missing_paths() {
    let mut p = PayloadSpec::new(vec!["true".into()], 1, 1);
    p.hide = vec!["/home/pilot/x509up".into(), "/does/not/exist".into()];
    let plan = plan(&p);
    let r = host_like();
    setup(&r, &plan, &sources(&plan)).unwrap();
    let c = r.calls();
    assert!(
        c.iter().any(|l| l
            .starts_with("mount /oldroot/dev/null /newroot/home/pilot/x509up - MsFlags(MS_BIND")),
        "{c:#?}"
    );
    assert!(!c.iter().any(|l| l.contains("/does/not/exist")));
}

#[test]
fn a_failing_step_names_the_payload_path() {
    let mut p = PayloadSpec::new(vec!["true".into()], 1, 1);
    p.binds.push(Bind {
        source: "/srv/w".into(),
        dest: "/opt/new/w".into(),
        readonly: false,
        idmap: None,
    });
    let plan = plan(&p);
    let r = host_like();
    r.fail
        .borrow_mut()
        .push(("mkdir /newroot/opt".into(), Errno::EROFS));
    let e = setup(&r, &plan, &sources(&plan)).unwrap_err();
    assert_eq!(e.path, "/opt/new/w");
    assert_eq!(e.errno, Errno::EROFS);
    assert!(e.is_request_error());
    assert!(e.to_string().contains("read-only root filesystem"), "{e}");
    assert!(
        !r.calls().iter().any(|c| c.starts_with("pivot_root . .")),
        "stops at the first error"
    );
}

#[test]
fn secure_join_never_leaves_the_root() {
    let r = Recorder::with(&[
        ("/newroot/tmp", Kind::Symlink("/etc".into())),
        ("/newroot/etc", Kind::Dir),
        ("/newroot/up", Kind::Symlink("../../../../host".into())),
        ("/newroot/a", Kind::Symlink("b".into())),
        ("/newroot/b", Kind::Symlink("a".into())),
    ]);
    let root = Path::new("/newroot");
    assert_eq!(
        secure_join(&r, root, Path::new("/tmp/x")).unwrap(),
        Path::new("/newroot/etc/x")
    );
    assert_eq!(
        secure_join(&r, root, Path::new("/up/x")).unwrap(),
        Path::new("/newroot/host/x")
    );
    assert_eq!(
        secure_join(&r, root, Path::new("/../../etc")).unwrap(),
        Path::new("/newroot/etc")
    );
    assert_eq!(
        secure_join(&r, root, Path::new("/a/x")).unwrap_err().errno,
        Errno::ELOOP
    );
}

#[test]
fn symlinks_are_made_after_the_mounts_with_their_parents_and_never_replace_a_path() {
    let mut p = PayloadSpec::new(vec!["true".into()], 30001, 30000);
    p.symlinks.push((
        "/tmp/pilotbox-cred/x509up".into(),
        "/tmp/job/x509_target".into(),
    ));
    let pl = plan(&p);
    assert_eq!(
        pl.symlinks, p.symlinks,
        "carried through the OCI annotation"
    );
    let r = host_like();
    setup(&r, &pl, &sources(&pl)).unwrap();
    let calls = r.calls();
    let link = index_of(
        &calls,
        "symlink /tmp/pilotbox-cred/x509up /newroot/tmp/job/x509_target",
    );
    assert!(
        index_of(&calls, "mkdir /newroot/tmp/job") < link,
        "parent made first"
    );
    assert!(
        index_of(&calls, "mount tmpfs /newroot/tmp") < link,
        "on the sandbox's /tmp, not the host's: {calls:#?}"
    );

    // An existing path is refused as a request error, not replaced.
    let mut p = PayloadSpec::new(vec!["true".into()], 30001, 30000);
    p.symlinks.push(("/x".into(), "/home/pilot/x509up".into()));
    let pl = plan(&p);
    let e = setup(&host_like(), &pl, &sources(&pl)).unwrap_err();
    assert_eq!((e.step, e.errno), ("create symlink", Errno::EEXIST), "{e}");
    assert_eq!(e.path, "/home/pilot/x509up");
    assert!(e.is_request_error());
}

#[test]
fn symlink_requests_are_validated() {
    for (link, ok) in [
        ("/tmp/a", true),
        ("tmp/a", false),
        ("/tmp/../etc/a", false),
        ("/", false),
    ] {
        let mut p = PayloadSpec::new(vec!["true".into()], 30001, 30000);
        p.symlinks.push(("/t".into(), link.into()));
        let r = Plan::from_spec(&p.to_spec().unwrap());
        assert_eq!(r.is_ok(), ok, "{link}: {r:?}");
    }
    let mut p = PayloadSpec::new(vec!["true".into()], 30001, 30000);
    p.symlinks.push(("".into(), "/tmp/a".into()));
    assert!(
        Plan::from_spec(&p.to_spec().unwrap()).is_err(),
        "empty target"
    );
}
