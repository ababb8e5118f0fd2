//! Lifecycle: supervisor death at any point leaves no payload process, wall time, signals.
mod support;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use support::*;

/// How long processes may take to die once their supervisor is gone (pid-1 parent-death
/// signal, then the kernel empties the pid namespace). A hang guard, not a performance claim:
/// what is waited for (`sleep 1000`) would otherwise outlive it by far.
const GONE_WITHIN: Duration = Duration::from_secs(30);

fn signal(child: &std::process::Child, sig: Signal) {
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
}

#[test]
fn supervisor_sigkill_while_running_kills_the_payload() {
    require_root!();
    let f = Fixture::new("kill9-running");
    let marker = format!("pilotbox-marker-{}-running", std::process::id());
    let script = format!("sleep 1000 & sleep 1000 & sh -c 'sleep 1000' & wait; : {marker}");
    let mut child = spawn(f.engine(&[], &["/bin/sh", "-c", &script]));
    assert!(
        wait_until(Duration::from_secs(10), || f.cgroup_pids().len() >= 5),
        "payload started"
    );
    signal(&child, Signal::SIGKILL);
    child.wait().unwrap();
    let t = Instant::now();
    // The payload's sleeps never end by themselves: any bound tells "killed" from "left
    // running". It only has to outlast a loaded machine and the TCG guest (10-50x slower),
    // where a second for the parent-death signal and the pid namespace's teardown is not safe.
    assert!(
        wait_until(GONE_WITHIN, || f.cgroup_pids().is_empty()),
        "payload gone after the supervisor's death: {:?}",
        f.cgroup_pids()
    );
    assert!(pids_with_marker(&marker).is_empty());
    eprintln!("payload gone {:?} after the supervisor", t.elapsed());
    // What remains is an empty cgroup, which `Fixture::drop` (like `pilotbox gc`) removes.
}

#[test]
fn supervisor_sigkill_during_setup_leaves_nothing_running() {
    require_root!();
    let f = Fixture::new("kill9-setup");
    // Kill at increasing delays so that some land during setup (clone, maps, mounts) and some
    // just after the payload started.
    for (i, delay_us) in [0u64, 300, 700, 1_500, 3_000, 6_000, 12_000, 25_000]
        .iter()
        .enumerate()
    {
        let marker = format!("pilotbox-marker-{}-setup-{i}", std::process::id());
        let mut child =
            spawn(f.engine(&[], &["/bin/sh", "-c", &format!("sleep 1000; : {marker}")]));
        std::thread::sleep(Duration::from_micros(*delay_us));
        signal(&child, Signal::SIGKILL);
        child.wait().unwrap();
        assert!(
            wait_until(GONE_WITHIN, || pids_with_marker(&marker).is_empty()),
            "delay {delay_us}us: left running: {:?}",
            pids_with_marker(&marker)
        );
        assert!(
            wait_until(GONE_WITHIN, || f.cgroup_pids().is_empty()),
            "delay {delay_us}us: cgroup not empty: {:?}",
            f.cgroup_pids()
        );
        if let Ok(c) = runtime::cgroups::Cgroup::open(&f.cgroup) {
            c.destroy().expect("whatever is left can be cleaned");
        }
    }
}

#[test]
fn walltime_terminates_then_kills() {
    require_root!();
    let f = Fixture::new("walltime");
    let t = Instant::now();
    let (code, _, err) = f.sh(&["--walltime", "1", "--grace", "1"], "exec sleep 30");
    assert_eq!(code, 143, "SIGTERM at the limit: {err}");
    // Well before `sleep 30` would have ended by itself; no tighter: the launch alone can take
    // seconds in the TCG guest on a loaded host.
    assert!(t.elapsed() < Duration::from_secs(25), "{:?}", t.elapsed());
    assert_eq!(f.report()["reason"], "wall-time limit exceeded");
    // A payload that ignores SIGTERM is killed after the grace period.
    let t = Instant::now();
    let (code, _, _) = f.sh(
        &["--walltime", "1", "--grace", "1"],
        "trap '' TERM; sleep 30 & while :; do wait; done",
    );
    assert_eq!(code, 137);
    assert!(
        t.elapsed() >= Duration::from_secs(2) && t.elapsed() < Duration::from_secs(25),
        "{:?}",
        t.elapsed()
    );
    assert!(f.cgroup_pids().is_empty());
}

#[test]
fn pilot_signals_are_forwarded() {
    require_root!();
    let f = Fixture::new("forward");
    for (sig, name) in [
        (Signal::SIGUSR1, "USR1"),
        (Signal::SIGUSR2, "USR2"),
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGINT, "INT"),
    ] {
        let script = format!(
            "trap 'echo got-{name}; exit 7' {name}; echo ready; while :; do sleep 0.05; done"
        );
        let child = spawn(f.engine(&[], &["/bin/sh", "-c", &script]));
        assert!(wait_until(Duration::from_secs(10), || f
            .cgroup_pids()
            .len()
            >= 3));
        std::thread::sleep(Duration::from_millis(200));
        signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        let (code, stdout, err) = result(out);
        assert_eq!(code, 7, "{name}: {stdout} {err}");
        assert!(stdout.contains(&format!("got-{name}")), "{stdout}");
    }
}

#[test]
fn credential_expiry_warns_then_ends_the_payload() {
    require_root!();
    let f = Fixture::new("expiry");
    let t = Instant::now();
    // `--expires-in` counts from the engine's start, and a warning that arrives before the
    // payload's trap kills it (default action of SIGUSR2). The trap must be in place by the
    // warning: 4 s after the start, not 1 s — the launch alone (cgroup, namespaces, mounts,
    // seccomp, exec of the shell) approaches a second in the TCG guest and can exceed it on a
    // loaded host. (The engine has no hook to time it from the payload's readiness.)
    let script = "trap 'echo warned' USR2; trap 'echo terminated; exit 9' TERM; echo ready; \
                  while :; do sleep 0.05; done";
    let (code, out, err) = f.sh(
        &["--expires-in", "5", "--expiry-margin", "1", "--grace", "5"],
        script,
    );
    assert_eq!(
        code, 9,
        "stdout {out:?} (no \"ready\": the warning beat the payload's trap) {err}"
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["ready", "warned", "terminated"],
        "warning first, then the end"
    );
    assert!(
        t.elapsed() >= Duration::from_secs(5),
        "not before expiry: {:?}",
        t.elapsed()
    );
    assert_eq!(f.report()["reason"], "credential expired");
}

#[test]
fn a_renewed_credential_lets_the_payload_finish() {
    require_root!();
    let f = Fixture::new("renewed");
    let file = f.dir.join("not_after");
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    std::fs::write(&file, later.to_string()).unwrap();
    let script =
        "trap 'echo warned' USR2; trap 'echo terminated; exit 9' TERM; sleep 3; echo finished";
    let (code, out, err) = f.sh(
        &[
            "--expires-in",
            "2",
            "--expiry-margin",
            "1",
            "--expiry-file",
            path_str(&file),
        ],
        script,
    );
    assert_eq!((code, out.trim()), (0, "finished"), "{err}");
    assert_eq!(f.report()["reason"], serde_json::Value::Null);
}
