//! Root integration tests: who the payload is and what limits hold it, on real namespaces and
//! real cgroups (v1 on the host, v2 in the VM harness).
mod support;
use runtime::cgroups::{detect, Version};
use support::*;

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).map(str::trim))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

#[test]
fn payload_runs_as_pool_uid_with_no_privilege() {
    require_root!();
    let f = Fixture::new("identity");
    let (code, out, err) = f.sh(
        &[],
        "id -u; id -g; id -G; cat /proc/self/status; cat /proc/self/uid_map /proc/self/gid_map",
    );
    assert_eq!(code, 0, "stderr: {err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("30001"));
    assert_eq!(lines.next(), Some("30000"));
    let mut groups: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, vec!["30000", "30500"]);
    for set in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(
            status_field(&out, set),
            "0000000000000000",
            "{set} must be empty"
        );
    }
    assert_eq!(status_field(&out, "NoNewPrivs:"), "1");
    assert_eq!(
        status_field(&out, "Seccomp:"),
        "2",
        "a seccomp filter is loaded"
    );
    // The uid map sends the payload uid to the pool uid 1:1 and maps nothing else (no root).
    let maps: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| {
            l.split_whitespace().count() == 3 && l.trim_start().starts_with(char::is_numeric)
        })
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        maps.contains(&vec!["30001", "30001", "1"]),
        "uid map: {maps:?}"
    );
    assert!(
        !maps.iter().any(|m| m[0] == "0"),
        "root must be unmapped: {maps:?}"
    );
}

#[test]
fn pool_uid_is_what_the_host_sees() {
    require_root!();
    let f = Fixture::new("hostview");
    let mut child = spawn(f.engine(&[], &["sleep", "30"]));
    let comm = |p: &i32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
    assert!(wait_until(STARTED_WITHIN, || f
        .cgroup_pids()
        .iter()
        .any(|p| comm(p).trim() == "sleep")));
    // Every process of the payload cgroup, seen from the host: the payload runs as the real pool
    // uid (the sandbox's init keeps its unmapped host identity and is not the payload).
    let uids: Vec<String> = f
        .cgroup_pids()
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter(|s| {
            s.lines()
                .any(|l| l.starts_with("Name:") && l.contains("sleep"))
        })
        .map(|s| status_field(&s, "Uid:").to_string())
        .collect();
    assert_eq!(uids.len(), 1, "{uids:?}");
    assert!(
        uids[0].split_whitespace().all(|u| u == "30001"),
        "real/effective/saved/fs uid: {}",
        uids[0]
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let st = child.wait().unwrap();
    assert_eq!(
        st.code(),
        Some(143),
        "SIGTERM is forwarded: sleep dies of it"
    );
}

#[test]
fn limits_are_in_the_cgroup() {
    require_root!();
    let f = Fixture::new("limits");
    let mut child = spawn(f.engine(
        &["--memory", "67108864", "--pids", "64", "--cpus", "0.5"],
        &["sleep", "30"],
    ));
    assert!(wait_until(STARTED_WITHIN, || !f.cgroup_pids().is_empty()));
    let cg = runtime::cgroups::Cgroup::open(&f.cgroup).unwrap();
    let read = |ctrl: &str, file: &str| {
        std::fs::read_to_string(cg.dir_of(ctrl).unwrap().join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    match detect().unwrap() {
        Version::V1 => {
            assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
            assert_eq!(read("pids", "pids.max"), "64");
            assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
            assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        }
        Version::V2 => {
            assert_eq!(read("memory", "memory.max"), "67108864");
            assert_eq!(read("memory", "memory.swap.max"), "0");
            assert_eq!(read("pids", "pids.max"), "64");
            assert_eq!(read("cpu", "cpu.max"), "50000 100000");
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap();
    assert!(
        runtime::cgroups::Cgroup::open(&f.cgroup).is_err(),
        "the engine removed its cgroup"
    );
}

#[test]
fn memory_bomb_is_oom_killed_and_reported() {
    require_root!();
    let f = Fixture::new("oom");
    // tail keeps the whole (newline-free) /dev/zero stream in memory.
    let (code, _, err) = f.sh(&["--memory", "33554432"], "exec tail /dev/zero");
    assert_eq!(code, 137, "killed by SIGKILL; stderr: {err}");
    let r = f.report();
    assert_eq!(r["outcome"], "signaled");
    assert_eq!(r["signal"], 9);
    assert_eq!(r["usage"]["oom_killed"], true, "{r}");
    assert_eq!(r["reason"], "out of memory");
    let peak = r["usage"]["mem_peak_bytes"].as_u64().unwrap();
    assert!(peak <= 34 << 20, "peak {peak} within the limit");
    // The host is fine: we are still here, and the next payload runs.
    let (code, out, _) = f.sh(&[], "echo alive");
    assert_eq!((code, out.trim()), (0, "alive"));
}

#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    require_root!();
    let f = Fixture::new("forkbomb");
    let py = "import os,time,errno\npids=[]\nerr=None\nfor i in range(200):\n  try:\n    p=os.fork()\n  except OSError as e:\n    err=errno.errorcode[e.errno]; break\n  if p==0:\n    time.sleep(20); os._exit(0)\n  pids.append(p)\nprint(len(pids), err)\nfor p in pids: os.kill(p,9)\n";
    let (code, out, err) = result(
        f.engine(&["--pids", "32"], &["python3", "-c", py])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "stderr: {err}");
    let mut words = out.split_whitespace();
    let started: u32 = words.next().unwrap().parse().unwrap();
    assert_eq!(
        words.next(),
        Some("EAGAIN"),
        "fork failed with EAGAIN at the limit: {out}"
    );
    assert!(
        started < 32,
        "only {started} of 200 background jobs could start"
    );
    assert!(started > 0);
    if let Some(peak) = f.report()["usage"]["pids_peak"].as_u64() {
        assert!(peak <= 32, "pids peak {peak}");
    }
}

#[test]
fn exit_codes_and_signals_follow_the_shell_convention() {
    require_root!();
    let f = Fixture::new("exitcodes");
    assert_eq!(f.sh(&[], "exit 42").0, 42);
    assert_eq!(f.report()["outcome"], "exited");
    assert_eq!(f.report()["exit_code"], 42);
    assert_eq!(f.sh(&[], "kill -TERM $$").0, 143);
    assert_eq!(f.report()["signal"], 15);
    assert_eq!(f.sh(&[], "kill -KILL $$").0, 137);
    assert_eq!(f.report()["outcome"], "signaled");
}

#[test]
fn a_missing_command_is_a_pilot_error() {
    require_root!();
    let f = Fixture::new("nocmd");
    let out = f.engine(&[], &["/no/such/program"]).output().unwrap();
    let (code, _, err) = result(out);
    assert_eq!(code, 122, "stderr: {err}");
    assert!(err.contains("/no/such/program"), "{err}");
    assert_eq!(f.report()["outcome"], "pilot_error");
    assert!(
        runtime::cgroups::Cgroup::open(&f.cgroup).is_err(),
        "nothing left behind"
    );
}
