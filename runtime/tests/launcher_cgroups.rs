//! One payload's life through the real setuid `pilotbox`, called by a non-root pilot: its limits
//! land in its own cgroup (v1 controllers here, the unified hierarchy in the cgroup-v2 VM — this
//! binary is the VM's check of the launchers, so it keeps to one credential set per test and few
//! launches: under QEMU/TCG every RSA key costs ~10 s), the pilot sees it with `status`, freezes,
//! thaws and kills it without the user's credential, and the report carries the cgroup's usage.
//! And `pilotbox-nosuid` in a cgroup delegated to the pilot (only v2 can delegate).

#[macro_use]
mod launcher_support;

use launcher_support::{Env, PILOT, POOL, POOL_GID};
use runtime::cgroups::{Cgroup, Version};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Delegate a v2 cgroup to the pilot as systemd's `Delegate=yes` does (cgroup-v2.rst
/// "Delegation"): the directory and its `cgroup.procs`, `cgroup.subtree_control`,
/// `cgroup.threads` are chowned to the pilot.
fn delegate_to_pilot(dir: &Path) {
    for f in [
        "",
        "cgroup.procs",
        "cgroup.subtree_control",
        "cgroup.threads",
    ] {
        std::os::unix::fs::chown(dir.join(f), Some(PILOT), Some(PILOT)).unwrap();
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

/// `pilotbox status ID --json` as the pilot.
fn status(env: &Env, id: &str) -> Value {
    let out = env.pilot(&["status", id, "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "status as the pilot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

fn uid_of(pid: i32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The limits `--memory 96M --pids 64 --cpus 0.5` asked for, as the kernel holds them.
fn assert_limits(cg: &Cgroup) {
    let (mem, pids, cpu) = match cg.version() {
        Version::V2 => {
            let d = cg.dir_of("memory").expect("v2 dir");
            let (quota, period) = read(&d, "cpu.max")
                .split_once(' ')
                .map(|(q, p)| (q.to_string(), p.to_string()))
                .expect("cpu.max: QUOTA PERIOD");
            (
                read(&d, "memory.max"),
                read(&d, "pids.max"),
                (quota, period),
            )
        }
        _ => {
            let m = cg.dir_of("memory").expect("v1 memory");
            let p = cg.dir_of("pids").expect("v1 pids");
            let c = cg.dir_of("cpu").expect("v1 cpu");
            (
                read(&m, "memory.limit_in_bytes"),
                read(&p, "pids.max"),
                (read(&c, "cpu.cfs_quota_us"), read(&c, "cpu.cfs_period_us")),
            )
        }
    };
    assert_eq!(mem, (96u64 << 20).to_string(), "memory limit");
    assert_eq!(pids, "64", "pids limit");
    let (q, p): (f64, f64) = (cpu.0.parse().unwrap(), cpu.1.parse().unwrap());
    assert!((q / p - 0.5).abs() < 1e-9, "cpu quota/period {q}/{p}");
}

#[test]
fn a_pilots_payload_is_limited_controlled_and_accounted_in_its_cgroup() {
    require_root!();
    let env = Env::new();
    let rep = env.report_path();
    let id = "cglife";
    // 8 MB held in a shell variable, so the memory peak is known to be at least that.
    let script = "x=$(head -c 8000000 /dev/zero | tr '\\0' a); id -u; echo ready; \
                  while :; do sleep 0.2; done";
    let mut child = env
        .run_as(
            PILOT,
            &[],
            &[
                "--proxy",
                env.proxy.to_str().unwrap(),
                "--id",
                id,
                "--memory",
                "96M",
                "--pids",
                "64",
                "--cpus",
                "0.5",
                "--report",
                rep.to_str().unwrap(),
            ],
            &["/bin/sh", "-c", script],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let uid: u32 = match lines.next() {
        Some(Ok(l)) => l.trim().parse().expect("payload prints its uid"),
        other => {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "payload did not start ({other:?}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    assert!(POOL.contains(&uid), "mapped to a pool uid, got {uid}");

    // The cgroup, seen by root on the host side: its limits and its processes.
    let path = format!("{}/{id}", env.cgroup_root);
    let cg = Cgroup::open(&path).expect("payload cgroup exists");
    assert_limits(&cg);
    let pids = cg.pids().unwrap();
    assert!(
        pids.len() >= 2,
        "init and the payload in the cgroup: {pids:?}"
    );
    let payload_uids: Vec<Option<u32>> = pids.iter().map(|p| uid_of(*p)).collect();
    assert!(
        payload_uids.iter().flatten().any(|u| *u == uid),
        "the payload's processes run as {uid}: {payload_uids:?}"
    );
    // Init (pid 1 of the sandbox) keeps the kernel uid it was cloned with, unmapped in the
    // sandbox's user namespace (docs/engine.md); everything else is the pool account.
    assert!(
        payload_uids.iter().flatten().all(|u| *u == uid || *u == 0),
        "only init and the pool account in the cgroup, never the pilot: {payload_uids:?}"
    );
    assert_eq!(
        payload_uids.iter().flatten().filter(|u| **u == 0).count(),
        1,
        "one init: {payload_uids:?}"
    );

    // The pilot's view, without the user's credential.
    let s = status(&env, id);
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(s["uid"], uid);
    assert_eq!(s["gid"], POOL_GID);
    assert_eq!(s["pilot_uid"], PILOT);
    assert_eq!(s["cgroup"], path);
    assert_eq!(s["dn"], env.user.dn);
    assert!(s["pids"].as_array().is_some_and(|p| !p.is_empty()), "{s}");
    let ok = |args: &[&str]| {
        let out = env.pilot(args).output().unwrap();
        assert!(
            out.status.success(),
            "pilotbox {args:?} as the pilot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(&["suspend", id]);
    assert_eq!(status(&env, id)["state"], "frozen");
    ok(&["resume", id]);
    assert_eq!(status(&env, id)["state"], "running");
    ok(&["kill", id]);

    // SIGKILL of the whole cgroup: the run ends with 128+9 and leaves nothing behind.
    let t = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break launcher_support::result(std::process::Output {
                status: st,
                stdout: vec![],
                stderr: vec![],
            })
            .0;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("pilotbox run did not end after kill");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(code, 137, "exit 128+SIGKILL; stderr: {err}");
    assert!(Cgroup::open(&path).is_err(), "payload cgroup removed");
    for p in pids {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists() || uid_of(p) != Some(uid),
            "payload process {p} gone"
        );
    }
    let r = env.report();
    assert_eq!(r["outcome"], "signaled", "{r}");
    assert_eq!(r["signal"], 9);
    assert_eq!(r["user"]["uid"], uid);
    let peak = r["usage"]["mem_peak_bytes"].as_u64().expect("memory peak");
    assert!(
        peak >= 8_000_000,
        "peak {peak} covers the 8 MB the payload held"
    );
    assert!(r["usage"]["cpu_user_s"].as_f64().is_some(), "{r}");
    // The audit's end record carries the APEL fields from the same counters.
    // (`pilotbox kill` audits too, racing the supervisor's end record: find the end record.)
    let end = env
        .audit_lines()
        .into_iter()
        .rfind(|l| l["event"] == "end")
        .expect("an end record");
    // (APEL's MemoryReal is in KiB; Processors from --cpus 0.5, rounded up.)
    assert_eq!(end["MemoryReal"].as_u64(), Some(peak / 1024), "{end}");
    assert_eq!(end["Processors"], 1, "{end}");
}

/// `pilotbox-nosuid` in a cgroup-v2 subtree delegated to the pilot (as `systemd-run --user -p
/// Delegate=yes` makes one): the payload gets its own cgroup with the limits asked for. On a v1 or
/// hybrid host a non-root pilot owns no cgroup, and a limit it asks for is refused (123), never
/// dropped.
#[test]
fn nosuid_enforces_limits_only_in_a_cgroup_delegated_to_the_pilot() {
    require_root!();
    let env = Env::new();
    let rep = env.report_path();
    let slot_path = format!("{}/slot", env.cgroup_root);
    let slot = Cgroup::create(&slot_path, None).expect("the pilot's batch slot");
    let v2 = slot.version() == Version::V2;
    let dir = slot.dir_of("memory").expect("slot dir");
    if v2 {
        delegate_to_pilot(&dir);
    }
    let nosuid = launcher_support::nosuid_bin();
    let id = "nsdeleg";
    let limit_file = format!("{}/{id}/memory.max", dir.display());
    // The pilot process enters its slot (as a batch system would put it there), then becomes
    // the pilot and calls pilotbox-nosuid.
    let inner = format!(
        "echo $$ > {procs} && exec setpriv --reuid {PILOT} --regid {PILOT} --clear-groups -- \
         /usr/bin/env -i {bin} run --proxy {proxy} --id {id} --memory 64M --pids 32 \
         --report {rep} -- /bin/sh -c 'id -u; cat /proc/self/cgroup; cat {limit_file}'",
        procs = dir.join("cgroup.procs").display(),
        bin = nosuid.display(),
        proxy = env.proxy.display(),
        rep = rep.display(),
    );
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", &inner])
        .current_dir(&env.pilot_dir)
        .output()
        .unwrap();
    let (code, stdout, stderr) = launcher_support::result(out);
    if !v2 {
        assert_eq!(code, 123, "v1: the asked-for limit is refused: {stderr}");
        assert!(stderr.contains("cannot be enforced"), "{stderr}");
    } else {
        assert_eq!(code, 0, "{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines[0],
            PILOT.to_string(),
            "the caller's own uid: {stdout}"
        );
        assert_eq!(lines[1], "0::/", "its own cgroup namespace: {stdout}");
        assert_eq!(lines[2], (64u64 << 20).to_string(), "memory.max: {stdout}");
        let r = env.report();
        assert_eq!(r["identity_switch"], false, "{r}");
        assert_eq!(r["limits_enforced"], true, "{r}");
        assert_eq!(r["cgroup"], format!("{slot_path}/{id}"), "{r}");
        assert!(
            Cgroup::open(&format!("{slot_path}/{id}")).is_err(),
            "the payload cgroup is removed at the end"
        );
    }
    // The slot (and the pilot/ leaf nested placement may have made) goes with Env's root.
    drop(slot);
}

/// `pilotbox-nosuid suspend`/`resume`/`kill` on a payload in a cgroup delegated to the pilot:
/// the same freezer and whole-cgroup kill as `pilotbox` (`nosuid::lifecycle`). Only v2 can
/// delegate; on the hybrid host `launcher_nosuid_lifecycle` checks the refusal instead.
#[test]
fn nosuid_suspend_resume_and_kill_in_a_delegated_cgroup() {
    require_root!();
    let env = Env::new();
    let slot_path = format!("{}/slot", env.cgroup_root);
    let slot = Cgroup::create(&slot_path, None).expect("the pilot's batch slot");
    if slot.version() != Version::V2 {
        eprintln!("SKIPPED: only a cgroup-v2 host can delegate a cgroup to the pilot");
        return;
    }
    let dir = slot.dir_of("memory").expect("slot dir");
    delegate_to_pilot(&dir);
    let id = "nsfreeze";
    let inner = format!(
        "echo $$ > {procs} && exec setpriv --reuid {PILOT} --regid {PILOT} --clear-groups -- \
         /usr/bin/env -i {bin} run --proxy {proxy} --id {id} --pids 32 -- /bin/sleep 86399",
        procs = dir.join("cgroup.procs").display(),
        bin = launcher_support::nosuid_bin().display(),
        proxy = env.proxy.display(),
    );
    let mut run = std::process::Command::new("/bin/sh")
        .args(["-c", &inner])
        .current_dir(&env.pilot_dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let nosuid =
        |args: &[&str]| launcher_support::result(env.nosuid_as(PILOT, args).output().unwrap());
    let state = || {
        let (c, o, _) = nosuid(&["status", id, "--json"]);
        (c == 0).then(|| serde_json::from_str::<Value>(&o).unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let cgroup = loop {
        if let Some(s) = state() {
            if s["state"] == "running" && !s["pids"].as_array().unwrap().is_empty() {
                break s["cgroup"].as_str().unwrap().to_string();
            }
        }
        if Instant::now() > deadline || run.try_wait().unwrap().is_some() {
            let _ = run.kill();
            let out = run.wait_with_output().unwrap();
            panic!("never running: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        cgroup,
        format!("{slot_path}/{id}"),
        "its own delegated cgroup"
    );
    let cg = Cgroup::open(&cgroup).unwrap();
    let (c, _, e) = nosuid(&["suspend", id]);
    assert_eq!(c, 0, "suspend: {e}");
    assert!(cg.is_frozen().unwrap(), "the kernel reports it frozen");
    assert_eq!(state().unwrap()["state"], "frozen");
    let (c, _, e) = nosuid(&["resume", id]);
    assert_eq!(c, 0, "resume: {e}");
    assert!(!cg.is_frozen().unwrap());
    let (c, _, e) = nosuid(&["kill", id]);
    assert_eq!(c, 0, "kill: {e}");
    assert!(
        cg.pids().map(|p| p.is_empty()).unwrap_or(true),
        "the cgroup is empty"
    );
    let out = run.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        Cgroup::open(&cgroup).is_err(),
        "the payload cgroup is removed at the end"
    );
    drop(slot);
}
