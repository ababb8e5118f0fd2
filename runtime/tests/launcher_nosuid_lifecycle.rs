//! `pilotbox-nosuid`'s lifecycle commands end to end: the real binary called by a non-root pilot
//! (`setpriv`), real proxies, real long-running payloads in its unprivileged sandbox. On this
//! (hybrid) host a non-root pilot has no delegated cgroup, so these exercise the no-cgroup paths
//! (kill through the pid-namespace init, suspend refused); the delegated-cgroup freeze runs in the
//! cgroup-v2 VM (`launcher_cgroups.rs`). Every test removes its records, payloads and dirs.

#[macro_use]
mod launcher_support;

use launcher_support::{result, Env, FakeSyslog, NOT_PILOT, PILOT, POLICY};
use runtime::launcher::state::Store;
use runtime::lifecycle::procs;
use runtime::nosuid::state::state_dir;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A payload id no other test process (another checkout's run included) uses.
fn id(name: &str) -> String {
    format!("lc{}-{name}", std::process::id())
}

/// `pilotbox-nosuid ARGS` as `uid`: (code, stdout, stderr).
fn nosuid(env: &Env, uid: u32, args: &[&str]) -> (i32, String, String) {
    result(env.nosuid_as(uid, args).output().unwrap())
}

fn status(env: &Env, id: &str) -> Value {
    let (c, o, e) = nosuid(env, PILOT, &["status", id, "--json"]);
    assert_eq!(c, 0, "status {id}: {e}");
    serde_json::from_str(&o).unwrap_or_else(|_| panic!("status --json: {o}"))
}

fn record_dir(id: &str) -> PathBuf {
    state_dir(PILOT).join(id)
}

/// `pilotbox-nosuid run --id ID -- /bin/sh -c SCRIPT` as the pilot, in the background; killed
/// (with everything in its sandbox: init dies with its supervisor) if the test ends early.
struct Payload {
    child: Option<Child>,
    id: String,
}

impl Payload {
    fn start(env: &Env, id: &str, extra: &[&str], script: &str) -> Payload {
        let mut a = vec!["run", "--proxy", env.proxy.to_str().unwrap(), "--id", id];
        a.extend_from_slice(extra);
        a.extend(["--", "/bin/sh", "-c", script]);
        let child = env
            .nosuid_as(PILOT, &a)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut p = Payload {
            child: Some(child),
            id: id.into(),
        };
        // Running: the record names init, and init and the shell are in its tree.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = p.child.as_mut().unwrap().try_wait().unwrap() {
                let (_, o, e) = p.finish_now(st);
                panic!("{id} ended before running ({st}): {o} {e}");
            }
            let (c, o, _) = nosuid(env, PILOT, &["status", id, "--json"]);
            if c == 0 {
                let v: Value = serde_json::from_str(&o).unwrap();
                if v["pids"].as_array().is_some_and(|p| p.len() >= 2) {
                    assert_eq!(v["state"], "running", "{v}");
                    return p;
                }
            }
            assert!(Instant::now() < deadline, "{id} never showed as running");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn finish_now(&mut self, _st: std::process::ExitStatus) -> (i32, String, String) {
        result(self.child.take().unwrap().wait_with_output().unwrap())
    }

    /// Wait (at most 30 s) for `run` to end: (code, stdout, stderr).
    fn finish(mut self) -> (i32, String, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return self.finish_now(st);
            }
            assert!(Instant::now() < deadline, "{} still runs", self.id);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // What a killed supervisor leaves (the record; gc would take it): ours only, by id.
        if let Ok(rec) = Store::new(state_dir(PILOT)).read(&self.id) {
            if let Some(n) = rec.nosuid {
                let name = n.cred_dir.to_string_lossy().into_owned();
                if name.starts_with("/tmp/pilotbox-nosuid.") && !name.contains("/..") {
                    let _ = std::fs::remove_dir_all(n.cred_dir);
                }
            }
        }
        let _ = std::fs::remove_dir_all(record_dir(&self.id));
        // The directory itself only when empty: another checkout's test may use it.
        let _ = std::fs::remove_dir(state_dir(PILOT));
    }
}

/// The pid namespace of `pid`, as root sees it.
fn pid_ns(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// Living host processes in the pid namespace `ns` (a zombie init, not yet reaped by its
/// supervisor, still names its namespace but runs nothing).
fn in_ns(ns: &Path) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| pid_ns(*p).as_deref() == Some(ns) && procs::start_time(*p).is_some())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn ps_status_and_kill_end_the_whole_sandbox() {
    require_root!();
    let env = Env::new();
    let id = id("kill");
    let p = Payload::start(&env, &id, &[], "sleep 86399 & sleep 86398 & wait");
    let (c, table, e) = nosuid(&env, PILOT, &["ps"]);
    assert_eq!(c, 0, "{e}");
    let row = table
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not in ps: {table}"));
    assert!(row.contains("running"), "{row}");
    assert!(table.starts_with("ID "), "pilotbox's columns: {table}");
    let (c, o, _) = nosuid(&env, PILOT, &["ps", "--json"]);
    assert_eq!(c, 0);
    let list: Vec<Value> = serde_json::from_str(&o).unwrap();
    assert!(list.iter().any(|s| s["id"] == id.as_str()), "{o}");

    let rec = Store::new(state_dir(PILOT)).read(&id).unwrap();
    let ns = pid_ns(rec.init_pid).expect("init's pid namespace");
    assert_ne!(pid_ns(std::process::id() as i32).unwrap(), ns);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut members = in_ns(&ns);
    while members.len() < 4 {
        assert!(
            Instant::now() < deadline,
            "init, sh and two sleeps: {members:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
        members = in_ns(&ns);
    }
    let s = status(&env, &id);
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(s["pilot_uid"], PILOT, "{s}");
    assert_eq!(s["uid"], PILOT, "the payload runs as the caller: {s}");
    assert_eq!(s["supervisor_pid"], p.pid(), "{s}");
    assert_eq!(
        s["cgroup"], "",
        "no delegated cgroup for the pilot on this host: {s}"
    );
    let would = s["would_map_account"].as_str().unwrap_or_default();
    assert!(!would.is_empty() && would != s["account"], "{s}");
    let listed: Vec<i32> = s["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap() as i32)
        .collect();
    assert_eq!(
        listed, members,
        "status lists exactly the sandbox's processes"
    );
    let starts: Vec<(i32, u64)> = members
        .iter()
        .filter_map(|p| Some((*p, procs::start_time(*p)?)))
        .collect();
    let cred_dir = rec.nosuid.unwrap().cred_dir;
    assert!(cred_dir.is_dir());

    let (c, _, e) = nosuid(&env, PILOT, &["kill", &id]);
    assert_eq!(c, 0, "kill: {e}");
    // `kill` returned once the payload was gone: nothing of the namespace is left, at once.
    assert!(
        in_ns(&ns).is_empty(),
        "left in the sandbox: {:?}",
        in_ns(&ns)
    );
    for (pid, start) in starts {
        assert!(!procs::is_same_process(pid, start), "pid {pid} survived");
    }
    let (code, _, e) = p.finish();
    assert_eq!(code, 137, "run reports the SIGKILL: {e}");
    assert!(
        !record_dir(&id).exists(),
        "the record is removed at the end"
    );
    assert!(!cred_dir.exists(), "the proxy copy is removed at the end");
    let (c, _, e) = nosuid(&env, PILOT, &["status", &id]);
    assert_eq!(c, 122, "an ended payload is unknown: {e}");
}

#[test]
fn kill_with_a_signal_reaches_the_payload() {
    require_root!();
    let env = Env::new();
    let w = env.workdir("w");
    let id = id("term");
    let script = "trap 'echo term > got-term; exit 3' TERM; while :; do sleep 0.1; done";
    let p = Payload::start(&env, &id, &["--workdir", w.to_str().unwrap()], script);
    let (c, _, e) = nosuid(&env, PILOT, &["kill", "--signal", "TERM", &id]);
    assert_eq!(c, 0, "{e}");
    let (code, _, e) = p.finish();
    assert_eq!(code, 3, "the payload's own trap ran: {e}");
    assert_eq!(
        std::fs::read_to_string(w.join("got-term")).unwrap(),
        "term\n"
    );
    // Without a cgroup only the signals init forwards can reach the payload.
    let p = Payload::start(&env, &id, &[], "sleep 86399");
    let (c, _, e) = nosuid(&env, PILOT, &["kill", "--signal", "STOP", &id]);
    assert_eq!(c, 123, "{e}");
    assert!(e.contains("only KILL, TERM"), "{e}");
    assert_eq!(status(&env, &id)["state"], "running");
    drop(p);
}

#[test]
fn suspend_and_resume_need_a_delegated_cgroup() {
    require_root!();
    let env = Env::new();
    let id = id("freeze");
    let p = Payload::start(&env, &id, &[], "sleep 86399");
    assert_eq!(
        status(&env, &id)["cgroup"],
        "",
        "this host delegates no cgroup"
    );
    for cmd in ["suspend", "resume"] {
        let (c, _, e) = nosuid(&env, PILOT, &[cmd, &id]);
        assert_eq!(c, 123, "{cmd}: {e}");
        assert!(
            e.contains("Delegate=yes") && e.lines().count() == 1,
            "{cmd}: {e}"
        );
    }
    assert_eq!(status(&env, &id)["state"], "running", "nothing was stopped");
    drop(p);
}

#[test]
fn renew_replaces_the_proxy_the_payload_sees_for_the_same_identity_only() {
    require_root!();
    let env = Env::new();
    let log = FakeSyslog::bind();
    if log.is_some() {
        let text = std::fs::read_to_string(POLICY).unwrap();
        std::fs::write(POLICY, text.replace("syslog = false", "syslog = true")).unwrap();
    }
    let w = env.workdir("w");
    let id = id("renew");
    let script = "cat \"$X509_USER_PROXY\" > before; while [ ! -e go ]; do sleep 0.1; done; \
                  cat \"$X509_USER_PROXY\" > after";
    let p = Payload::start(&env, &id, &["--workdir", w.to_str().unwrap()], script);
    let old = std::fs::read(&env.proxy).unwrap();

    let bob = env.pki.cert("Bob Other");
    let other = env.pki.voms_proxy(&bob, &env.host, "testvo");
    let other = env.give_to_pilot(&other, "x509up-bob");
    let (c, _, e) = nosuid(
        &env,
        PILOT,
        &["renew", &id, "--proxy", other.to_str().unwrap()],
    );
    assert_eq!(c, 120, "another identity is refused: {e}");
    assert!(e.contains("Bob Other"), "{e}");

    let fresh = env.pki.voms_proxy(&env.user, &env.host, "testvo");
    let fresh = env.give_to_pilot(&fresh, "x509up-new");
    let new = std::fs::read(&fresh).unwrap();
    assert_ne!(old, new);
    // The same file rule as `run`: a proxy readable by others is the pilot's error.
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (c, _, e) = nosuid(
        &env,
        PILOT,
        &["renew", &id, "--proxy", fresh.to_str().unwrap()],
    );
    assert_eq!(c, 122, "{e}");
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (c, o, e) = nosuid(&env, PILOT, &["renew", &id, "--proxy", "x509up-new"]);
    assert_eq!(c, 0, "renew (relative path, the pilot's cwd): {e}");
    assert!(
        o.starts_with(&format!("renewed {id}: proxy valid until ")),
        "{o}"
    );

    std::fs::write(w.join("go"), "").unwrap();
    let (code, _, e) = p.finish();
    assert_eq!(code, 0, "{e}");
    assert_eq!(std::fs::read(w.join("before")).unwrap(), old);
    assert_eq!(
        std::fs::read(w.join("after")).unwrap(),
        new,
        "the payload sees the new proxy"
    );
    if let Some(log) = log {
        let events: Vec<Value> = log
            .messages()
            .iter()
            .filter_map(|m| serde_json::from_str(m.split_once("]: ")?.1).ok())
            .filter(|v: &Value| v["id"] == id.as_str())
            .collect();
        let refused = events
            .iter()
            .find(|v| v["event"] == "renew_refused")
            .expect("audited refusal");
        assert!(
            refused["reason"].as_str().unwrap().contains("Bob Other"),
            "{refused}"
        );
        assert_eq!(refused["identity_switch"], false);
        assert!(events.iter().any(|v| v["event"] == "renew"), "{events:?}");
    } else {
        eprintln!("(audit not checked: the host has a /dev/log of its own)");
    }
}

#[test]
fn gc_reclaims_a_run_whose_supervisor_was_killed() {
    require_root!();
    let env = Env::new();
    let id = id("gc");
    let mut p = Payload::start(&env, &id, &[], "sleep 86399");
    let rec = Store::new(state_dir(PILOT)).read(&id).unwrap();
    let ns = pid_ns(rec.init_pid).unwrap();
    let cred_dir = rec.nosuid.clone().unwrap().cred_dir;
    // SIGKILL the supervisor (our child): no cleanup of its own runs.
    let mut child = p.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !in_ns(&ns).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the sandbox outlived its supervisor"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(record_dir(&id).exists() && cred_dir.exists(), "left for gc");
    assert_eq!(status(&env, &id)["state"], "orphaned");
    let (c, o, e) = nosuid(&env, PILOT, &["gc"]);
    assert_eq!(c, 0, "{e}");
    assert!(o.contains(&format!("reclaimed payload {id}")), "{o}");
    assert!(!record_dir(&id).exists(), "record reclaimed");
    assert!(!cred_dir.exists(), "proxy copy reclaimed");
}

#[test]
fn a_record_of_another_pilot_or_a_foreign_directory_is_refused() {
    require_root!();
    let env = Env::new();
    // A record in the pilot's directory naming another pilot, whose "init" is a process of
    // ours: it must not be signalled.
    let mut victim = std::process::Command::new("sleep")
        .arg("86397")
        .spawn()
        .unwrap();
    let vpid = victim.id() as i32;
    let id = id("foreign");
    let guard = Payload {
        child: None,
        id: id.clone(),
    };
    let dir = state_dir(PILOT);
    let _ = std::fs::create_dir(&dir);
    std::os::unix::fs::chown(&dir, Some(PILOT), Some(PILOT)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let me = std::process::id() as i32;
    let rec: runtime::launcher::state::Record = serde_json::from_value(serde_json::json!({
        "id": id, "pilot_uid": NOT_PILOT, "pilot_gid": NOT_PILOT, "supervisor_pid": me,
        "supervisor_start": procs::start_time(me).unwrap(), "init_pid": vpid,
        "account": "x", "uid": NOT_PILOT, "gid": NOT_PILOT, "groups": [], "dn": "/CN=x",
        "issuer_dn": "/CN=ca", "vo": null, "fqans": [], "pool": null, "lease_key": null,
        "cgroup": null, "workdir": null, "workdir_handover": "none",
        "started": "2026-01-01T00:00:00Z", "cred_not_after": null,
        "nosuid": {"would_map_account": "x", "would_map_uid": 1,
                   "init_start": procs::start_time(vpid).unwrap(), "cred_dir": "/tmp/pilotbox-nosuid.none"}
    }))
    .unwrap();
    let store = Store::new(&dir);
    store.create_dir(&id).unwrap();
    store.update(&rec).unwrap();
    for p in [dir.join(&id), dir.join(&id).join("state.json")] {
        std::os::unix::fs::chown(p, Some(PILOT), Some(PILOT)).unwrap();
    }
    for args in [vec!["status", &id], vec!["kill", &id], vec!["suspend", &id]] {
        let (c, _, e) = nosuid(&env, PILOT, &args);
        assert_eq!(c, 120, "{args:?}: {e}");
        assert!(e.contains(&format!("launched by uid {NOT_PILOT}")), "{e}");
    }
    let (c, o, _) = nosuid(&env, PILOT, &["ps"]);
    assert!(
        c == 0 && !o.contains(&id),
        "ps lists only the caller's: {o}"
    );
    assert!(
        victim.try_wait().unwrap().is_none(),
        "nothing was signalled"
    );
    let _ = victim.kill();
    let _ = victim.wait();
    drop(guard);

    // Another user's directory where NOT_PILOT's should be: refused, never used.
    let theirs = state_dir(NOT_PILOT);
    assert!(theirs.starts_with("/tmp"), "{}", theirs.display());
    let _ = std::fs::remove_dir_all(&theirs);
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (c, _, e) = nosuid(&env, NOT_PILOT, &["ps"]);
    std::fs::remove_dir(&theirs).unwrap();
    assert_eq!(c, 123, "{e}");
    assert!(e.contains("not by you") && e.lines().count() == 1, "{e}");
    std::os::unix::fs::symlink("/tmp", &theirs).unwrap();
    let (c, _, e) = nosuid(&env, NOT_PILOT, &["gc"]);
    std::fs::remove_file(&theirs).unwrap();
    assert_eq!(c, 123, "{e}");
    assert!(e.contains("symlink"), "{e}");
}
