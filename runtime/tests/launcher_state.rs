//! Issue 11 items 2–6 through the real setuid `pilotbox`, a non-root pilot and real cgroups:
//! `gc` as the backstop of limits and accounting when the supervisor is stopped or killed,
//! `renew` re-running the pilot and ban checks, `check`'s permissions and probe cgroups, and the
//! chown hand-over record written before the first chown.
//!
//! The records live in the node's real state dir (`pilotbox run` has no other): every `gc`
//! here names its payload (`--id`) and the test's own cgroup root, so it never touches another
//! run on the node.

#[macro_use]
mod launcher_support;

use launcher_support::{Env, NOT_PILOT, PILOT, POOL};
use runtime::cgroups::Cgroup;
use runtime::launcher::state::{Record, Store};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A launched payload: the `pilotbox run` child; on drop it is killed and its state dir and
/// cgroup removed (also when the test fails half-way).
struct Run<'a> {
    env: &'a Env,
    id: String,
    child: Child,
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if let Ok(r) = Store::default().read(&self.id) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(r.supervisor_pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Cgroup::open(&format!("{}/{}", self.env.cgroup_root, self.id))
            .and_then(|c| c.destroy());
        let _ = Store::default().remove(&self.id);
    }
}

/// `pilotbox run --id ID ARGS -- /bin/sh -c SCRIPT` as the pilot; returns once the payload
/// printed `ready`.
fn start<'a>(env: &'a Env, id: &str, args: &[&str], script: &str) -> Run<'a> {
    let _ = Store::default().remove(id);
    let mut a = vec!["--proxy", env.proxy.to_str().unwrap(), "--id", id];
    a.extend_from_slice(args);
    let mut child = env
        .run_as(PILOT, &[], &a, &["/bin/sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let run = Run {
        env,
        id: id.into(),
        child,
    };
    let line = BufReader::new(out).lines().next();
    assert!(
        matches!(&line, Some(Ok(l)) if l == "ready"),
        "payload {id} did not start: {line:?}"
    );
    run
}

/// The root worker of a setuid call: the front's one child (launcher/split.rs), once forked.
fn worker_of(front: u32) -> i32 {
    let path = format!("/proc/{front}/task/{front}/children");
    let mut pid = None;
    wait_until(Duration::from_secs(60), || {
        pid = std::fs::read_to_string(&path)
            .ok()
            .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()));
        pid.is_some()
    });
    pid.unwrap_or_else(|| panic!("no worker under the front {front}"))
}

fn record(id: &str) -> Record {
    Store::default().read(id).unwrap()
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

/// `pilotbox gc --json --id ID --cgroup-root <the test's> EXTRA` as root: (exit, report).
fn gc(env: &Env, id: &str, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(&env.bin)
        .args([
            "gc",
            "--json",
            "--id",
            id,
            "--cgroup-root",
            &env.cgroup_root,
        ])
        .args(extra)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "gc output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

fn audited(env: &Env, event: &str, id: &str) -> Vec<Value> {
    env.audit_lines()
        .into_iter()
        .filter(|l| l["event"] == event && l["id"] == id)
        .collect()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Item 3: SIGKILL of the supervisor after the work left a `start` and no `end`; `gc` reads the
/// cgroup's usage before removing it and writes the `end` record with the accounting fields.
#[test]
fn gc_writes_the_end_record_with_usage_of_a_killed_supervisor() {
    require_root!();
    let env = Env::new();
    let id = "st-acct";
    // CPU time (hashing 800 MB: a fixed amount of work, however loaded the node) and 8 MB
    // held, then idle.
    let script = "x=$(head -c 8000000 /dev/zero | tr '\\0' a); \
                  head -c 800000000 /dev/zero | md5sum >/dev/null; echo ready; sleep 1000";
    let mut run = start(&env, id, &["--cpus", "2"], script);
    let rec = record(id);
    assert_eq!(
        rec.cpus,
        Some(2.0),
        "the record carries the limits: {rec:?}"
    );
    signal(rec.supervisor_pid, nix::sys::signal::Signal::SIGKILL);
    let _ = run.child.wait();
    assert!(
        audited(&env, "end", id).is_empty(),
        "the supervisor wrote no end"
    );

    let (code, r) = gc(&env, id, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["reclaimed"], serde_json::json!([id]), "{r}");
    let ends = audited(&env, "end", id);
    assert_eq!(ends.len(), 1, "one end record: {ends:?}");
    let end = &ends[0];
    assert_eq!(end["outcome"], "supervisor_lost", "{end}");
    // The hashing's CPU time is in the cgroup's counters (how much depends on the CPU: ~0.5 s
    // here), and APEL's CpuDuration is that, rounded.
    let cpu =
        end["usage"]["cpu_user_s"].as_f64().unwrap() + end["usage"]["cpu_sys_s"].as_f64().unwrap();
    assert!(cpu > 0.2, "the payload's work is accounted: {end}");
    assert_eq!(
        end["CpuDuration"].as_u64(),
        Some(cpu.round() as u64),
        "{end}"
    );
    assert!(end["WallDuration"].as_u64().unwrap() >= 1, "{end}");
    assert!(
        end["MemoryReal"].as_u64().unwrap() >= 7800,
        "8 MB held: {end}"
    );
    assert_eq!(end["Processors"], 2, "{end}");
    assert_eq!(end["dn"], env.user.dn);
    assert!(Cgroup::open(&format!("{}/{id}", env.cgroup_root)).is_err());
    assert!(Store::default().read(id).is_err(), "record removed");
    // A second gc finds nothing and writes nothing more.
    let (_, r) = gc(&env, id, &[]);
    assert_eq!(r["reclaimed"], serde_json::json!([]));
    assert_eq!(audited(&env, "end", id).len(), 1);
}

/// Item 2 (gc part): a stopped supervisor enforces nothing; `gc` ends what outlived its
/// wall-time limit or its credential (`cred_not_after` as the record has it now), audited, and
/// leaves alone what is within its limits.
#[test]
fn gc_ends_a_payload_past_its_limits_whose_supervisor_is_stopped() {
    require_root!();
    let env = Env::new();
    use nix::sys::signal::Signal::SIGSTOP;

    // Wall time: 1 s, supervisor stopped at once.
    let mut wall = start(
        &env,
        "st-wall",
        &["--walltime", "1"],
        "echo ready; sleep 1000",
    );
    let rec = record("st-wall");
    assert_eq!(rec.walltime_s, Some(1), "{rec:?}");
    signal(rec.supervisor_pid, SIGSTOP);
    // Credential: a stopped supervisor within its limits...
    let cred = start(&env, "st-cred", &[], "echo ready; sleep 1000");
    let crec = record("st-cred");
    signal(crec.supervisor_pid, SIGSTOP);
    let (code, r) = gc(&env, "st-cred", &["--limit-grace", "0"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(
        r["limits_enforced"],
        serde_json::json!([]),
        "within its limits: {r}"
    );
    assert!(crec.supervisor_alive());
    // ...until its credential ended (a minute ago, as the record says).
    let mut moved = record("st-cred");
    moved.set_cred_not_after(time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
    Store::default().write(&moved).unwrap();

    std::thread::sleep(Duration::from_millis(2200));
    let wall_cg = format!("{}/st-wall", env.cgroup_root);
    assert!(
        !Cgroup::open(&wall_cg).unwrap().pids().unwrap().is_empty(),
        "past its wall time, the payload still runs: its supervisor is stopped"
    );
    for (id, limit) in [
        ("st-wall", "walltime_exceeded"),
        ("st-cred", "credential_expired"),
    ] {
        let (code, r) = gc(&env, id, &["--limit-grace", "0"]);
        assert_eq!(code, 0, "{r}");
        assert_eq!(r["limits_enforced"], serde_json::json!([id]), "{r}");
        assert_eq!(r["reclaimed"], serde_json::json!([id]), "{r}");
        assert!(Cgroup::open(&format!("{}/{id}", env.cgroup_root)).is_err());
        let g = audited(&env, "gc_limit", id);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0]["limit"], limit);
        let end = audited(&env, "end", id);
        assert_eq!(end.len(), 1, "{end:?}");
        assert_eq!(end[0]["outcome"], limit);
    }
    // The stopped supervisor was killed (SIGKILL ends a stopped process too); the front, the
    // pilot's process, says so as a site error.
    let st = wall.child.wait().unwrap();
    assert_eq!(st.code(), Some(123), "{st:?}");
    assert!(!crec.supervisor_alive() && !rec.supervisor_alive());
    drop(cred);
}

/// Item 4: a banned DN, or a pilot no longer in `[pilots]`, cannot keep renewing.
#[test]
fn renew_rechecks_bans_and_the_pilot_list() {
    require_root!();
    let env = Env::new();
    let id = "st-renew";
    let _run = start(&env, id, &[], "echo ready; sleep 1000");
    let fresh = env.pki.voms_proxy(&env.user, &env.host, "testvo");
    let fresh = env.give_to_pilot(&fresh, "renewed");
    let renew = || {
        let out = env
            .pilot(&["renew", id, "--proxy", fresh.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (c, e) = renew();
    assert_eq!(c, 0, "allowed pilot, not banned: {e}");
    let policy = std::fs::read_to_string(launcher_support::POLICY).unwrap();

    // The DN banned after the launch.
    let banned = policy.replace(
        "dns = [\"/DC=org/DC=example/CN=Mallory\"]",
        &format!(
            "dns = [\"/DC=org/DC=example/CN=Mallory\", {:?}]",
            env.user.dn
        ),
    );
    assert_ne!(banned, policy, "the test policy's [ban] changed");
    std::fs::write(launcher_support::POLICY, &banned).unwrap();
    let (c, e) = renew();
    assert_eq!(c, 120, "banned DN: {e}");
    assert!(e.contains("ban"), "{e}");

    // The pilot removed from [pilots].
    let unlisted = policy.replace(
        &format!("users = [{PILOT}]"),
        &format!("users = [{NOT_PILOT}]"),
    );
    assert_ne!(unlisted, policy);
    std::fs::write(launcher_support::POLICY, &unlisted).unwrap();
    let (c, e) = renew();
    assert_eq!(c, 120, "no longer a pilot: {e}");
    assert!(e.contains("not an allowed pilot"), "{e}");

    let refused = audited(&env, "renew_refused", id);
    assert_eq!(refused.len(), 2, "both refusals audited: {refused:?}");
    assert_eq!(audited(&env, "renew", id).len(), 1);
    std::fs::write(launcher_support::POLICY, &policy).unwrap();
}

/// Item 5: `check` is root's and the pilots'; `--run-payload` root's; it never removes a
/// cgroup it did not create (concurrent launches all succeed); the probe of a check that died
/// is swept by `gc` at once.
#[test]
fn check_is_for_pilots_never_removes_the_root_and_dead_probes_are_swept() {
    require_root!();
    let env = Env::new();
    let check_as = |uid: u32, args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &uid.to_string(),
            "--regid",
            &uid.to_string(),
            "--clear-groups",
        ])
        .arg(&env.bin)
        .arg("check")
        .args(args);
        let out = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (c, e) = check_as(NOT_PILOT, &["--json"]);
    assert_eq!(c, 120, "not a pilot: {e}");
    let (c, e) = check_as(PILOT, &["--json"]);
    assert_ne!(c, 120, "a pilot may check: {e}");
    let (c, e) = check_as(PILOT, &["--json", "--run-payload"]);
    assert_eq!(c, 120, "--run-payload is root's: {e}");

    // Checks in a loop (as root, on the policy's cgroup root, which does not exist yet) while
    // launches run: none may lose its cgroup to a check.
    // The pilot's check created the root and left it (it is where payloads go).
    Cgroup::open(&env.cgroup_root)
        .expect("the check left the cgroup root")
        .destroy()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Three check loops keep a check in flight at all times: before the fix, one that found
    // the root missing removed it at its end, with the payload cgroups created meanwhile.
    let checkers: Vec<_> = (0..3)
        .map(|_| {
            let (stop, bin) = (stop.clone(), env.bin.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = Command::new(&bin).args(["check", "--json"]).output();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let launches: Vec<Child> = (0..30)
        .map(|i| {
            let id = format!("st-check-{i}");
            env.run_as(
                PILOT,
                &[],
                &["--proxy", env.proxy.to_str().unwrap(), "--id", &id],
                &["/bin/sh", "-c", "sleep 0.7"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let results: Vec<_> = launches
        .into_iter()
        .map(|c| launcher_support::result(c.wait_with_output().unwrap()))
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in checkers {
        assert!(c.join().unwrap() > 0);
    }
    for (c, _, e) in &results {
        assert_eq!(*c, 0, "a launch racing checks: {e}");
    }

    // The probe of a check SIGKILLed mid-probe: named after a process that is gone.
    let mut gone = Command::new("sleep").arg("100").spawn().unwrap();
    let pid = gone.id() as i32;
    let start = runtime::lifecycle::procs::start_time(pid).unwrap();
    gone.kill().unwrap();
    gone.wait().unwrap();
    let probe = format!("{}/check-{pid}-{start}", env.cgroup_root);
    drop(Cgroup::create(&probe, None).unwrap());
    // A live check's probe (this test process) stays.
    let me = std::process::id() as i32;
    let live = format!(
        "{}/check-{me}-{}",
        env.cgroup_root,
        runtime::lifecycle::procs::start_time(me).unwrap()
    );
    let live_cg = Cgroup::create(&live, None).unwrap();
    let (code, r) = gc(&env, "none", &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["cgroups_removed"], serde_json::json!([probe]), "{r}");
    assert!(Cgroup::open(&probe).is_err());
    live_cg.destroy().unwrap();
}

/// Item 6: a launcher killed during the forward chown hand-over leaves the record, so `gc`
/// gives every file back. The work dir is on ramfs (no idmapped mounts: the chown hand-over),
/// big enough that the SIGKILL lands mid-walk.
#[test]
fn gc_gives_back_a_work_dir_whose_chown_hand_over_was_killed() {
    require_root!();
    let env = Env::new();
    let w = env.pilot_dir.join("ramfs-work");
    std::fs::create_dir_all(&w).unwrap();
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    nix::mount::mount(
        Some("ramfs"),
        &w,
        Some("ramfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let _unmount = Unmount(&w);
    let files = 40_000;
    for d in 0..40 {
        let sub = w.join(format!("d{d}"));
        std::fs::create_dir(&sub).unwrap();
        for f in 0..files / 40 {
            std::fs::write(sub.join(format!("f{f}")), "").unwrap();
        }
    }
    let st = Command::new("chown")
        .args(["-R", &format!("{PILOT}:{PILOT}")])
        .arg(&w)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::set_permissions(&w, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();

    let id = "st-chown";
    let _ = Store::default().remove(id);
    let mut child = env
        .run_as(
            PILOT,
            &[],
            &[
                "--proxy",
                env.proxy.to_str().unwrap(),
                "--id",
                id,
                "--workdir",
                w.to_str().unwrap(),
            ],
            &["/bin/true"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Entries under the top directory, by owner: (pool, pilot).
    let owners = || {
        let (mut pool, mut pilot) = (0, 0);
        let mut count = |uid: u32| match uid {
            u if u == PILOT => pilot += 1,
            u if POOL.contains(&u) => pool += 1,
            u => panic!("an entry of uid {u}"),
        };
        for d in 0..40 {
            let sub = w.join(format!("d{d}"));
            count(std::fs::metadata(&sub).unwrap().uid());
            for e in std::fs::read_dir(&sub).unwrap() {
                count(e.unwrap().metadata().unwrap().uid());
            }
        }
        (pool, pilot)
    };
    // Each directory is chowned before what is in it: once one of them is the pool's, the walk
    // is under way.
    let started = wait_until(Duration::from_secs(60), || {
        (0..40).any(|d| {
            std::fs::metadata(w.join(format!("d{d}")))
                .map(|m| m.uid() != PILOT)
                .unwrap_or(false)
        })
    });
    // The launcher doing the walk is the root worker (the front would only take the pilot's
    // side of the call with it).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker_of(child.id())),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    assert!(started, "the hand-over began");
    let (pool, pilot) = owners();
    assert!(
        pool > 0 && pilot > 0,
        "killed mid-walk: {pool} pool-owned, {pilot} pilot-owned"
    );

    let (code, r) = gc(&env, id, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["reclaimed"], serde_json::json!([id]), "{r}");
    assert_eq!(
        owners(),
        (0, files + 40),
        "every entry is the pilot's again"
    );
    assert_eq!(std::fs::metadata(&w).unwrap().uid(), PILOT);
    assert!(
        audited(&env, "end", id).is_empty(),
        "no payload ran: nothing to account"
    );
    let _ = Store::default().remove(id);
}
