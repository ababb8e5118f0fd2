//! The adversarial suite: attacks on the setuid `pilotbox run` from the pilot's position (a
//! hostile caller of a setuid binary) and from the payload's (code inside the sandbox), each
//! reproduced for real and required to stay blocked. docs/design.md ("Threat model") lists
//! every attack and the test that covers it; the attacks of issue 11 that needed a fix have
//! their regression tests beside the code they exercise (named there too).
//!
//! Like the other launcher suites: the real setuid binary with the test policy path baked in,
//! called by a non-root pilot through `setpriv`, real proxies, real cgroups; `Env` cleans up.

#[macro_use]
mod launcher_support;

use launcher_support::{result, Env, PILOT};
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

/// `setpriv` as the pilot running `sh -c SCRIPT` with `$0` = the pilotbox binary and `$1` =
/// the proxy, so the script can shape the process state pilotbox inherits.
fn pilot_shell(env: &Env, script: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.env_clear()
        .args(["--reuid", &PILOT.to_string(), "--regid", &PILOT.to_string()])
        .args(["--clear-groups", "--", "/bin/sh", "-c", script])
        .arg(&env.bin)
        .arg(&env.proxy)
        .current_dir(&env.pilot_dir);
    c
}

/// Pids whose command line contains `needle` (test markers are unique numbers).
fn procs_with(needle: &str) -> Vec<i32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd)
            .replace('\0', " ")
            .contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

/// Every audit line parses as JSON (nothing else was written into the log).
fn audit_is_clean(env: &Env) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(&env.audit).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

#[test]
fn inherited_fds_do_not_reach_the_payload() {
    require_root!();
    let env = Env::new();
    let secret = env.pilot_dir.join("secret");
    std::fs::write(&secret, "pilot-secret-4711\n").unwrap();
    chown(&secret, Some(PILOT), Some(PILOT)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // fd 7 on the pilot's secret and fd 8 on a pipe, both without close-on-exec.
    let script = format!(
        "exec 7<{s} 8>/dev/null; exec /usr/bin/env -i \"$0\" run --proxy \"$1\" -- \
         /bin/sh -c 'ls /proc/self/fd; cat <&7 || echo no-fd-7'",
        s = secret.display()
    );
    let (code, out, err) = result(pilot_shell(&env, &script).output().unwrap());
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("pilot-secret-4711"), "fd 7 leaked: {out}");
    assert!(out.contains("no-fd-7"), "{out}");
    let fds: Vec<&str> = out.lines().take_while(|l| *l != "no-fd-7").collect();
    for fd in ["7", "8"] {
        assert!(!fds.contains(&fd), "fd {fd} reached the payload: {out}");
    }
}

#[test]
fn closed_stdio_cannot_turn_privileged_files_into_stderr() {
    require_root!();
    let env = Env::new();
    // With 0-2 closed, the first files pilotbox opens (policy, audit log, lease store) would
    // become fds 0-2, and an error message or the payload's output would be written into them.
    // A denied request (unknown proxy path) and a payload writing to its stdout/stderr.
    for args in [
        "--proxy /nonexistent/x509up -- /bin/true",
        "--proxy \"$1\" -- /bin/sh -c 'echo OUT-JUNK; echo ERR-JUNK >&2; exit 0'",
    ] {
        let script = format!("exec 0<&- 1>&- 2>&-; exec /usr/bin/env -i \"$0\" run {args}");
        let status = pilot_shell(&env, &script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.code().is_some(), "killed by a signal: {status:?}");
    }
    let audit = std::fs::read_to_string(&env.audit).unwrap_or_default();
    assert!(!audit.contains("JUNK"), "payload output in the audit log");
    assert!(
        !audit.contains("pilotbox run:"),
        "an error line in the audit log"
    );
    let lines = audit_is_clean(&env);
    assert!(
        lines.iter().any(|l| l["event"] == "end"),
        "the second run was audited: {lines:?}"
    );
    let policy = std::fs::read_to_string(launcher_support::POLICY).unwrap();
    assert!(!policy.contains("JUNK") && !policy.contains("pilotbox run:"));
    // The lease store is still a database pilotbox can use.
    let (code, _, err) = env.run(&[], &["/bin/true"]);
    assert_eq!(code, 0, "a later launch works: {err}");
}

#[test]
fn oversized_and_malformed_proxies_are_refused_with_their_class() {
    require_root!();
    let env = Env::new();
    let big = env.pilot_dir.join("big");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(256 << 20).unwrap(); // sparse: 256 MiB of zeros
    drop(f);
    let junk = env.pilot_dir.join("junk");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for p in [&big, &junk] {
        chown(p, Some(PILOT), Some(PILOT)).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (code, _, err) = env.run(&["--proxy", big.to_str().unwrap()], &["/bin/true"]);
    assert_eq!(code, 122, "oversized proxy is a pilot error: {err}");
    let (code, _, err) = env.run(&["--proxy", junk.to_str().unwrap()], &["/bin/true"]);
    assert_eq!(code, 120, "an unparsable credential is denied: {err}");
    assert!(!err.is_empty() && err.lines().count() <= 3, "{err}");
    audit_is_clean(&env);
}

#[test]
fn report_and_workdir_symlinks_cannot_reach_other_files() {
    require_root!();
    let env = Env::new();
    // A root-owned file the pilot would love to overwrite, and a symlink to it as the report.
    let target = Path::new(launcher_support::BASE).join("root-owned");
    std::fs::write(&target, "original\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = env.pilot_dir.join("report-link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(PILOT), Some(PILOT)).unwrap();
    let (code, _, _) = env.run(&["--report", link.to_str().unwrap()], &["/bin/true"]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "original\n");
    assert_eq!(std::fs::metadata(&target).unwrap().uid(), 0);
    // A report path inside a directory the pilot cannot write.
    let (code, _, err) = env.run(
        &["--report", "/var/lib/pilotbox-adversarial-report.json"],
        &["/bin/true"],
    );
    assert_eq!(code, 0, "the payload still ran: {err}");
    assert!(err.contains("cannot write the report"), "{err}");
    assert!(!Path::new("/var/lib/pilotbox-adversarial-report.json").exists());
    // A work dir that is a symlink to a root directory, or the pilot's symlink to /etc.
    let wlink = env.pilot_dir.join("work-link");
    std::os::unix::fs::symlink("/etc", &wlink).unwrap();
    std::os::unix::fs::lchown(&wlink, Some(PILOT), Some(PILOT)).unwrap();
    for w in [wlink.to_str().unwrap(), "/etc", "/root"] {
        let (code, _, err) = env.run(&["--workdir", w], &["/bin/touch", "pwned"]);
        assert_eq!(code, 122, "--workdir {w}: {err}");
    }
    assert!(!Path::new("/etc/pwned").exists() && !Path::new("/root/pwned").exists());
}

#[test]
fn ids_that_are_not_plain_names_are_pilot_errors() {
    require_root!();
    let env = Env::new();
    for id in [
        "../escape",
        "a/b",
        ".",
        "..",
        "",
        ".hidden",
        "pilot",
        &"x".repeat(200),
    ] {
        let (code, _, err) = env.run(&["--id", id], &["/bin/true"]);
        assert_eq!(code, 122, "--id {id:?}: {err}");
    }
    assert!(!Path::new("/var/lib/pilotbox/escape").exists());
    assert!(!Path::new("/var/lib/pilotbox/run/a").exists());
}

#[test]
fn kill_minus_one_in_the_payload_reaches_only_the_payload() {
    require_root!();
    let env = Env::new();
    // Bystanders: a process of the pilot's and one of root's.
    let mut pilot_proc = Command::new("setpriv")
        .args(["--reuid", &PILOT.to_string(), "--regid", &PILOT.to_string()])
        .args(["--clear-groups", "sleep", "861401"])
        .spawn()
        .unwrap();
    let mut root_proc = Command::new("sleep").arg("861402").spawn().unwrap();
    // kill(-1) spares the caller itself (kill(2)): the payload's background sleep dies, the
    // shell goes on.
    let (code, out, err) = env.run(
        &[],
        &[
            "/bin/sh",
            "-c",
            "sleep 1000 & kill -9 -1; wait $!; echo bg=$?; exit 7",
        ],
    );
    assert_eq!(code, 7, "{err}");
    assert_eq!(
        out.trim(),
        "bg=137",
        "the payload's own process was killed: {out}"
    );
    for (name, p) in [("pilot", &mut pilot_proc), ("root", &mut root_proc)] {
        assert!(
            p.try_wait().unwrap().is_none(),
            "the {name}'s process was killed"
        );
    }
    for mut p in [pilot_proc, root_proc] {
        let _ = p.kill();
        let _ = p.wait();
    }
}

#[test]
fn the_pilots_sysv_ipc_objects_are_invisible() {
    require_root!();
    let env = Env::new();
    let as_pilot = |args: &[&str]| {
        let out = Command::new("setpriv")
            .args(["--reuid", &PILOT.to_string(), "--regid", &PILOT.to_string()])
            .arg("--clear-groups")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A world-readable shared memory segment and a message queue of the pilot's.
    let shm = as_pilot(&["ipcmk", "-M", "4096", "-p", "0666"]);
    let shm_id = shm.split_whitespace().last().unwrap().to_string();
    let q = as_pilot(&["ipcmk", "-Q", "-p", "0666"]);
    let q_id = q.split_whitespace().last().unwrap().to_string();
    let ipcs = as_pilot(&["ipcs", "-m", "-q"]);
    assert!(
        ipcs.contains(&shm_id),
        "the pilot sees its own segment: {ipcs}"
    );
    let (code, out, err) = env.run(&[], &["/bin/sh", "-c", "ipcs -m -q"]);
    as_pilot(&["ipcrm", "-m", &shm_id, "-q", &q_id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains(&format!(" {shm_id} ")) && !out.contains(&format!(" {q_id} ")),
        "the payload sees the pilot's IPC objects: {out}"
    );
}

#[test]
fn nothing_the_payload_starts_outlives_the_run() {
    require_root!();
    let env = Env::new();
    // Daemonize every way a shell can: background + setsid + nohup, double fork.
    let (code, _, err) = env.run(
        &[],
        &[
            "/bin/sh",
            "-c",
            "setsid nohup sleep 861403 >/dev/null 2>&1 & \
             (sh -c 'sleep 861404 &' &) ; sleep 0.2; exit 0",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = [procs_with("sleep 861403"), procs_with("sleep 861404")].concat();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "payload processes outlived the run: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn mounts_in_a_nested_user_namespace_stay_inside() {
    require_root!();
    let env = Env::new();
    let w = env.workdir("nested");
    let (code, out, err) = env.run(
        &["--workdir", w.to_str().unwrap()],
        &[
            "/bin/sh",
            "-c",
            "unshare -Urm sh -c 'mount -t tmpfs pilotbox-adv-marker /tmp && \
             mount --bind /tmp \"$PWD\" && touch \"$PWD\"/inside && echo mounted'; \
             ls -A \"$PWD\"",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("mounted"),
        "the nested namespace can mount (else this proves nothing): {out}{err}"
    );
    assert!(
        !out.contains("inside"),
        "the payload's own view changed: {out}"
    );
    let host = std::fs::read_to_string("/proc/1/mountinfo").unwrap();
    assert!(
        !host.contains("pilotbox-adv-marker"),
        "a payload mount reached the host"
    );
    let mine = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mine.contains("pilotbox-adv-marker"));
    assert_eq!(
        std::fs::read_dir(&w).unwrap().count(),
        0,
        "the work dir on disk is untouched"
    );
}
