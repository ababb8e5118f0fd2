//! `pilotbox ps/status/kill/suspend/resume/gc/renew/check` against real sandboxed payloads
//! (`pilotbox-engine exec` in a real cgroup), with state records written as the launcher writes
//! them, the real binary (setuid copies for non-root callers), and real proxies.
mod lifecycle_support;
mod support;

use lifecycle_support::*;
use runtime::cgroups::Cgroup;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;
use support::*;

/// A running payload (shell loop) under the engine; returns the supervisor child.
fn start_payload(f: &Fixture, script: &str) -> std::process::Child {
    let child = spawn(f.engine(&[], &["/bin/sh", "-c", script]));
    assert!(
        wait_until(STARTED_WITHIN, || f.cgroup_pids().len() >= 3),
        "payload started"
    );
    child
}

const LOOP: &str = "trap 'exit 9' USR2; while :; do sleep 0.05; done";

/// `pilotbox gc --json` as root on a scratch state dir, with a cgroup root that holds nothing.
fn gc_scratch(sd: &StateDir) -> std::process::Output {
    pilotbox(&[
        "gc",
        "--json",
        &sd.arg(),
        "--cgroup-root",
        "/pilotbox-test/none",
    ])
}

fn cgroup_base(f: &Fixture) -> String {
    f.cgroup.trim_end_matches("/payload").to_string()
}

#[test]
fn status_suspend_resume_and_kill_with_term_act_on_the_payload() {
    require_root!();
    let f = Fixture::new("lc-control");
    let sd = StateDir::scratch("control");
    let child = start_payload(&f, LOOP);
    let id = "lc-control-1";
    sd.write(&record_for(id, PILOT_UID, child.id() as i32, &f.cgroup));

    let ps = pilotbox(&["ps", "--json", &sd.arg()]);
    assert_eq!(code(&ps), 0, "{}", text(&ps));
    let list = json(&ps);
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["state"], "running");

    let st = json(&pilotbox(&["status", id, "--json", &sd.arg()]));
    assert_eq!(st["state"], "running");
    assert_eq!(st["account"], "testvo001");
    assert_eq!(st["cgroup"], f.cgroup.as_str());
    // init and the shell; the loop's `sleep 0.05` comes and goes (no sleep in the cgroup in
    // ~0.3% of samples of such a loop on this host), so it is not counted on.
    assert!(st["pids"].as_array().unwrap().len() >= 2, "{st}");
    assert!(st["usage"]["cpu_user_s"].is_number(), "usage so far: {st}");

    let o = pilotbox(&["suspend", id, &sd.arg()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(Cgroup::open(&f.cgroup).unwrap().is_frozen().unwrap());
    assert_eq!(
        json(&pilotbox(&["status", id, "--json", &sd.arg()]))["state"],
        "frozen"
    );
    // Frozen: no process runs (the loop's sleeps would otherwise replace pids).
    let before = f.cgroup_pids();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(before, f.cgroup_pids());

    let o = pilotbox(&["resume", id, &sd.arg()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(
        json(&pilotbox(&["status", id, "--json", &sd.arg()]))["state"],
        "running"
    );

    // SIGTERM to every process: init forwards it, the payload dies of it, the supervisor
    // reports `signaled 15` (docs/design.md: also when the pilot asked with `kill --signal`).
    let o = pilotbox(&["kill", id, "--signal", "TERM", &sd.arg()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rep = f.report();
    assert_eq!(rep["outcome"], "signaled");
    assert_eq!(rep["signal"], 15);
}

#[test]
fn kill_default_is_sigkill_of_the_whole_cgroup() {
    require_root!();
    let f = Fixture::new("lc-kill");
    let sd = StateDir::scratch("kill");
    // Ignores TERM and forks: only the cgroup kill gets all of it.
    let child = start_payload(
        &f,
        "trap '' TERM; sleep 1000 & sleep 1000 & while :; do sleep 0.05; done",
    );
    sd.write(&record_for(
        "lc-kill-1",
        PILOT_UID,
        child.id() as i32,
        &f.cgroup,
    ));
    let o = pilotbox(&["kill", "lc-kill-1", &sd.arg()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        f.cgroup_pids().is_empty(),
        "empty when kill returns: {:?}",
        f.cgroup_pids()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
    // Unknown and malformed ids are the pilot's error.
    assert_eq!(
        code(&pilotbox(&["kill", "no-such-payload", &sd.arg()])),
        122
    );
    assert_eq!(code(&pilotbox(&["kill", "../etc", &sd.arg()])), 122);
    assert_eq!(
        code(&pilotbox(&[
            "kill",
            "lc-kill-1",
            "--signal",
            "BOGUS",
            &sd.arg()
        ])),
        122
    );
}

#[test]
fn only_the_launching_pilot_and_root_may_control_a_payload() {
    require_root!();
    let f = Fixture::new("lc-authz");
    let bin = SetuidCopy::new("authz");
    let child = start_payload(&f, LOOP);
    // Non-root callers cannot choose a state dir: the record goes where pilotbox looks.
    let id = format!("lc-authz-{}", std::process::id());
    let _cleanup = RealRecords(vec![id.clone()]);
    write_record(
        std::path::Path::new(runtime::launcher::state::RUN_DIR),
        &record_for(&id, PILOT_UID, child.id() as i32, &f.cgroup),
    );
    let other = PILOT_UID + 1;

    // The pilot sees and controls it.
    let o = bin.run_as(PILOT_UID, &["status", &id, "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(json(&o)["state"], "running");
    let ps = json(&bin.run_as(PILOT_UID, &["ps", "--json"]));
    assert!(ps
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == id.as_str()));

    // Another non-root uid: refused (120), does not even see it, cannot pick a state dir.
    for args in [
        vec!["status", &id],
        vec!["kill", &id],
        vec!["suspend", &id],
        vec!["resume", &id],
    ] {
        let o = bin.run_as(other, &args);
        assert_eq!(code(&o), 120, "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(&format!("launched by uid {PILOT_UID}"))
        );
    }
    let ps = json(&bin.run_as(other, &["ps", "--json"]));
    assert!(!ps
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == id.as_str()));
    assert_eq!(code(&bin.run_as(other, &["ps", "--state-dir=/tmp"])), 122);
    // init and the shell (its `sleep 0.05` comes and goes between iterations).
    assert!(f.cgroup_pids().len() >= 2, "the refused kill did nothing");
    assert!(!Cgroup::open(&f.cgroup).unwrap().is_frozen().unwrap());

    // The pilot suspends and kills it.
    assert_eq!(code(&bin.run_as(PILOT_UID, &["suspend", &id])), 0);
    assert!(Cgroup::open(&f.cgroup).unwrap().is_frozen().unwrap());
    let o = bin.run_as(PILOT_UID, &["kill", &id]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(f.cgroup_pids().is_empty());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn gc_after_a_sigkilled_supervisor_leaves_nothing() {
    require_root!();
    let f = Fixture::new("lc-gc");
    let sd = StateDir::scratch("gc");
    let base = cgroup_base(&f);
    let mut child = start_payload(&f, LOOP);
    let dead = record_for("lc-gc-dead", PILOT_UID, child.id() as i32, &f.cgroup);
    sd.write(&dead);
    std::fs::create_dir_all(sd.0.join("lc-gc-dead/cred")).unwrap();
    // A live supervisor (this test process) with its own cgroup: must be left alone.
    let live_cg = format!("{base}/live");
    let live = Cgroup::create(&live_cg, None).unwrap();
    let me = std::process::id() as i32;
    sd.write(&record_for("lc-gc-live", 0, me, &live_cg));
    // A recycled pid: our pid, but another start time. That supervisor is gone.
    let mut recycled = record_for("lc-gc-recycled", 0, me, &format!("{base}/recycled"));
    recycled.supervisor_start += 1;
    sd.write(&recycled);
    // An unclaimed empty cgroup (a launcher killed before it wrote its record).
    let orphan = format!("{base}/orphan");
    drop(Cgroup::create(&orphan, None).unwrap());

    // Killing the supervisor kills the payload (pid-1 parent-death signal), leaving the cgroup.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    assert!(
        Cgroup::open(&f.cgroup).is_ok(),
        "the dead supervisor left its cgroup"
    );
    assert_eq!(
        json(&pilotbox(&["status", "lc-gc-dead", "--json", &sd.arg()]))["state"],
        "orphaned"
    );

    let o = pilotbox(&[
        "gc",
        "--json",
        &sd.arg(),
        "--cgroup-root",
        &base,
        "--min-age",
        "0",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let r = json(&o);
    let reclaimed: Vec<&str> = r["reclaimed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(reclaimed, ["lc-gc-dead", "lc-gc-recycled"], "{r}");
    assert_eq!(r["cgroups_removed"], serde_json::json!([orphan]));
    assert!(Cgroup::open(&f.cgroup).is_err(), "payload cgroup removed");
    assert!(Cgroup::open(&orphan).is_err(), "orphan cgroup removed");
    assert!(!sd.0.join("lc-gc-dead").exists() && !sd.0.join("lc-gc-recycled").exists());
    assert!(
        sd.0.join("lc-gc-live/state.json").exists(),
        "live record kept"
    );
    assert!(Cgroup::open(&live_cg).is_ok(), "live cgroup kept");
    live.destroy().unwrap();
}

#[test]
fn gc_gives_a_chowned_work_dir_back_to_the_pilot() {
    require_root!();
    let sd = StateDir::scratch("gc-chown");
    let w = sd.0.join("work");
    std::fs::create_dir_all(w.join("sub")).unwrap();
    std::fs::write(w.join("sub/out.txt"), "x").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", w.join("link")).unwrap();
    for p in [w.clone(), w.join("sub"), w.join("sub/out.txt")] {
        std::os::unix::fs::chown(&p, Some(30001), Some(30000)).unwrap();
    }
    let mut rec = record_for("lc-gc-chown", PILOT_UID, i32::MAX, "/pilotbox-test/none");
    rec.workdir = Some(w.clone());
    rec.workdir_handover = runtime::launcher::state::Handover::Chown;
    sd.write(&rec);
    let o = gc_scratch(&sd);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(json(&o)["files_restored"], 3);
    for p in [w.clone(), w.join("sub"), w.join("sub/out.txt")] {
        assert_eq!(
            std::fs::metadata(&p).unwrap().uid(),
            PILOT_UID,
            "{}",
            p.display()
        );
    }
    assert_eq!(
        std::fs::metadata("/etc/passwd").unwrap().uid(),
        0,
        "symlink not followed"
    );
}

/// Issue 11 item 6: a launcher killed before its walk reached the top directory leaves a work
/// dir still the pilot's with pool-owned files below; the record (written first) lets `gc`
/// give those back too.
#[test]
fn gc_finishes_a_hand_over_killed_before_the_top_directory_changed_hands() {
    require_root!();
    let sd = StateDir::scratch("gc-chown-early");
    let w = sd.0.join("work");
    std::fs::create_dir_all(w.join("sub")).unwrap();
    std::fs::write(w.join("sub/in.txt"), "x").unwrap();
    std::os::unix::fs::chown(&w, Some(PILOT_UID), Some(PILOT_UID)).unwrap();
    for p in [w.join("sub"), w.join("sub/in.txt")] {
        std::os::unix::fs::chown(&p, Some(30001), Some(30000)).unwrap();
    }
    let mut rec = record_for("lc-gc-early", PILOT_UID, i32::MAX, "/pilotbox-test/none");
    rec.cgroup = None;
    rec.workdir = Some(w.clone());
    rec.workdir_handover = runtime::launcher::state::Handover::Chown;
    sd.write(&rec);
    let o = gc_scratch(&sd);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(json(&o)["files_restored"], 2, "{}", text(&o));
    for p in [w.join("sub"), w.join("sub/in.txt")] {
        assert_eq!(
            std::fs::metadata(&p).unwrap().uid(),
            PILOT_UID,
            "{}",
            p.display()
        );
    }
}

/// Issue 11 item 1: `gc` of a run whose supervisor died strips set-id bits and file
/// capabilities from its work dir — idmapped (files are the pilot's) and chown hand-over
/// (a tree deeper than the old walk's 64 levels, a multi-linked file of the pool uid).
#[test]
fn gc_strips_set_id_files_from_reclaimed_work_dirs() {
    require_root!();
    let sd = StateDir::scratch("gc-setid");
    // An idmapped run: the work dir and its files are the pilot's.
    let w = sd.0.join("work-idmap");
    std::fs::create_dir_all(w.join("sub")).unwrap();
    for (f, mode) in [("sub/suid", 0o4755), ("sgid", 0o2711), ("plain", 0o755)] {
        std::fs::write(w.join(f), "x").unwrap();
        std::os::unix::fs::chown(w.join(f), Some(PILOT_UID), Some(PILOT_UID)).unwrap();
        std::fs::set_permissions(w.join(f), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    for d in [w.clone(), w.join("sub")] {
        std::os::unix::fs::chown(&d, Some(PILOT_UID), Some(PILOT_UID)).unwrap();
    }
    let mut rec = record_for(
        "lc-gc-setid-idmap",
        PILOT_UID,
        i32::MAX,
        "/pilotbox-test/none",
    );
    rec.workdir = Some(w.clone());
    rec.workdir_handover = runtime::launcher::state::Handover::Idmap;
    sd.write(&rec);
    // A chown hand-over: everything the pool uid's, 100 levels deep, a file linked twice.
    let c = sd.0.join("work-chown");
    let mut deep = c.clone();
    for _ in 0..100 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("suid"), "x").unwrap();
    std::fs::hard_link(deep.join("suid"), c.join("link")).unwrap();
    let mut p = deep.join("suid");
    while p.starts_with(&c) {
        std::os::unix::fs::chown(&p, Some(30001), Some(30000)).unwrap();
        p.pop();
    }
    std::fs::set_permissions(deep.join("suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    let mut rec = record_for(
        "lc-gc-setid-chown",
        PILOT_UID,
        i32::MAX,
        "/pilotbox-test/none",
    );
    rec.workdir = Some(c.clone());
    rec.workdir_handover = runtime::launcher::state::Handover::Chown;
    sd.write(&rec);

    let o = gc_scratch(&sd);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let r = json(&o);
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&w.join("sub/suid")), 0o755);
    assert_eq!(mode(&w.join("sgid")), 0o711);
    assert_eq!(mode(&w.join("plain")), 0o755);
    let mut stack = vec![c.clone()];
    let mut n = 0;
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!(md.uid(), PILOT_UID, "{}", p.display());
        assert_eq!(md.mode() & 0o6000, 0, "{}", p.display());
        n += 1;
        if md.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    // With fs.protected_hardlinks (distributions' default; not in the bare test VM) the first
    // name of the doubly linked file is replaced by a copy, else only unlinked.
    let protected =
        std::fs::read_to_string("/proc/sys/fs/protected_hardlinks").is_ok_and(|v| v.trim() == "1");
    assert_eq!(
        n,
        if protected { 103 } else { 102 },
        "the whole tree was walked"
    );
    assert_eq!(r["setid_stripped"], 2, "{r}");
}

#[test]
fn renew_accepts_the_same_identity_and_refuses_another() {
    require_root!();
    let pki = Pki::new("Test CA");
    let alice = pki.cert("Alice");
    let bob = pki.cert("Bob");
    // No VOMS in these proxies: an empty vomsdir.
    let voms_dir = pki.tmp.path().join("vomsdir");
    std::fs::create_dir_all(&voms_dir).unwrap();
    let sd = StateDir::scratch("renew");
    let id = format!("lc-renew-{}", std::process::id());
    let mut rec = record_for(&id, PILOT_UID, i32::MAX, "/pilotbox-test/none");
    rec.dn = alice.dn.clone();
    sd.write(&rec);
    let cred = sd.0.join(&id).join("cred");
    std::fs::create_dir_all(&cred).unwrap();
    std::fs::write(cred.join("x509up"), "old").unwrap();
    let trust = [
        format!("--ca-dir={}", pki.ca_dir.display()),
        format!("--voms-dir={}", voms_dir.display()),
    ];
    let renew = |proxy: &std::path::Path| {
        pilotbox(&[
            "renew",
            &id,
            "--proxy",
            proxy.to_str().unwrap(),
            &trust[0],
            &trust[1],
            &sd.arg(),
        ])
    };

    let good = pki.plain_proxy_with(&alice, &["-valid", "2:00"]);
    let o = renew(&good);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let installed = cred.join("x509up");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&good).unwrap()
    );
    let md = std::fs::metadata(&installed).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o777),
        (30001, 30000, 0o600)
    );
    let after = runtime::launcher::state::Store::new(&sd.0)
        .read(&id)
        .unwrap();
    let expect = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
    assert!(
        (after.cred_not_after_at().unwrap() - expect).abs() < time::Duration::minutes(5),
        "{:?}",
        after.cred_not_after
    );

    // Another DN: refused (120), audited, nothing replaced.
    let other = pki.plain_proxy_with(&bob, &["-valid", "2:00"]);
    let o = renew(&other);
    assert_eq!(code(&o), 120, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("CN=Bob"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&good).unwrap()
    );
    let audit = std::fs::read_to_string(policy::config::schema::AuditConf::default().log).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"renew_refused\"") && l.contains(&id)),
        "audited"
    );

    // A proxy others can read is refused before it is even parsed (122).
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = renew(&good);
    assert_eq!(code(&o), 122, "{}", text(&o));
    // Not a proxy at all: rejected by the verifier (120).
    let junk = pki.tmp.path().join("junk");
    std::fs::write(&junk, "not a proxy").unwrap();
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(code(&renew(&junk)), 120);
}

/// Issue 11 item 7: parallel renewals of one payload all succeed, each audited, and the record
/// ends valid (with one shared temp name, 48 of 120 failed after replacing the credential).
#[test]
fn parallel_renewals_all_succeed_and_each_is_audited() {
    require_root!();
    let pki = Pki::new("Test CA");
    let alice = pki.cert("Alice");
    let voms_dir = pki.tmp.path().join("vomsdir");
    std::fs::create_dir_all(&voms_dir).unwrap();
    let sd = StateDir::scratch("renew-par");
    // Unique across runs: the node's audit log outlives them (pids are reused).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!("lc-renew-par-{}-{nanos}", std::process::id());
    let audit_log = policy::config::schema::AuditConf::default().log;
    let audit_before = std::fs::metadata(&audit_log).map_or(0, |m| m.len()) as usize;
    let mut rec = record_for(&id, PILOT_UID, i32::MAX, "/pilotbox-test/none");
    rec.dn = alice.dn.clone();
    sd.write(&rec);
    std::fs::create_dir_all(sd.0.join(&id).join("cred")).unwrap();
    let proxy = pki.plain_proxy_with(&alice, &["-valid", "2:00"]);
    let n = 80;
    let children: Vec<_> = (0..n)
        .map(|_| {
            std::process::Command::new(PILOTBOX)
                .args(["renew", &id, "--proxy", proxy.to_str().unwrap()])
                .arg(format!("--ca-dir={}", pki.ca_dir.display()))
                .arg(format!("--voms-dir={}", voms_dir.display()))
                .arg(sd.arg())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let failed: Vec<String> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .filter(|o| !o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {n} failed: {:?}",
        failed.len(),
        failed.first()
    );
    let audit = std::fs::read_to_string(&audit_log).unwrap();
    let renewed = audit[audit_before.min(audit.len())..]
        .lines()
        .filter(|l| l.contains("\"event\":\"renew\"") && l.contains(&format!("\"{id}\"")))
        .count();
    assert_eq!(renewed, n, "each renewal audited");
    let st = runtime::launcher::state::Store::new(&sd.0);
    assert!(st.read(&id).unwrap().cred_not_after_at().is_some());
    let left: Vec<_> = std::fs::read_dir(sd.0.join(&id))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "cred" && n != "state.json")
        .collect();
    assert!(left.is_empty(), "no temp files left: {left:?}");
}

#[test]
fn check_reports_each_item_with_a_fix_and_exit_123_on_failure() {
    require_root!();
    let f = Fixture::new("lc-check");
    let base = cgroup_base(&f);
    // The build output is not setuid: that check fails, the run exits 123.
    let o = pilotbox(&["check", "--json", "--cgroup-root", &base]);
    assert_eq!(code(&o), 123, "{}", text(&o));
    let r = json(&o);
    let by = |name: &str| {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(r["ok"], false);
    assert_eq!(by("setuid")["ok"], false);
    assert!(by("setuid")["fix"].as_str().unwrap().contains("chmod 4755"));
    assert_eq!(by("cgroup")["ok"], true, "{}", by("cgroup"));
    assert_eq!(by("userns")["ok"], true);
    // The probe (`check-<pid>-<starttime>`) is gone; the root it was made under stays.
    let root_dir = Cgroup::open(&base).unwrap().dirs()[0].clone();
    let probes: Vec<_> = std::fs::read_dir(&root_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("check-"))
        .collect();
    assert!(probes.is_empty(), "{probes:?}");

    // The setuid copy passes the setuid check; a work dir under a 0700 directory fails.
    let bin = SetuidCopy::new("check");
    let o = std::process::Command::new(&bin.bin)
        .args(["check", "--json", "--cgroup-root", &base])
        .output()
        .unwrap();
    let r = json(&o);
    assert_eq!(r["checks"][0]["name"], "setuid");
    assert_eq!(r["checks"][0]["ok"], true, "{r}");
    let closed = f.dir.join("closed");
    std::fs::create_dir_all(closed.join("job")).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Under the test's cgroup root too: `check` never removes a cgroup root it made (a launch
    // may be placing a payload there), so the default /pilotbox would outlive the test.
    let o = pilotbox(&[
        "check",
        "--json",
        "--cgroup-root",
        &base,
        "--workdir",
        closed.join("job").to_str().unwrap(),
    ]);
    let r = json(&o);
    let w = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "workdir")
        .unwrap()
        .clone();
    assert_eq!(w["ok"], false, "{w}");
    assert!(
        w["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("chmod o+x {}", closed.display())),
        "{w}"
    );
}
