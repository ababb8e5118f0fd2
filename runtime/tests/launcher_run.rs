//! `pilotbox run` end to end: the real setuid binary (test policy path baked in), called by a
//! non-root pilot through `setpriv`, with real proxies from voms-proxy-fake/grid-proxy-init,
//! real cgroups under a test root, a real lease store. Needs root (to install the setuid
//! binary) and the grid tools; each test cleans up through `Env`'s Drop.

#[macro_use]
mod launcher_support;

use launcher_support::{result, Env, NOT_PILOT, PILOT, POOL, POOL_GID, SMALL_UID};
use std::os::unix::fs::MetadataExt;

#[test]
fn maps_to_a_pool_uid_with_report_and_audit() {
    require_root!();
    let env = Env::new();
    let rep = env.report_path();
    let (code, out, err) = env.run(
        &["--id", "maptest", "--report", rep.to_str().unwrap()],
        &["/bin/sh", "-c", "id -u; id -g; exit 3"],
    );
    assert_eq!(code, 3, "the payload's own status: {err}");
    let mut lines = out.lines();
    let uid: u32 = lines.next().unwrap().trim().parse().unwrap();
    let gid: u32 = lines.next().unwrap().trim().parse().unwrap();
    assert!(POOL.contains(&uid), "payload uid {uid} is a pool uid");
    assert_eq!(gid, POOL_GID);
    let r = env.report();
    assert_eq!(r["id"], "maptest");
    assert_eq!(r["outcome"], "exited");
    assert_eq!(r["exit_code"], 3);
    assert!(r["signal"].is_null());
    assert_eq!(
        r["user"]["uid"], uid,
        "report uid is the uid the payload ran as"
    );
    assert_eq!(r["user"]["gid"], POOL_GID);
    assert_eq!(r["user"]["dn"], env.user.dn);
    assert_eq!(r["user"]["vo"], "testvo");
    assert_eq!(r["user"]["fqans"][0], "/testvo/Role=NULL/Capability=NULL");
    assert!(r["user"]["account"].is_string());
    assert_eq!(r["cgroup"], format!("{}/maptest", env.cgroup_root));
    for k in ["reason", "started", "ended"] {
        assert!(r.get(k).is_some(), "report lacks {k}");
    }
    for k in [
        "wall_s",
        "cpu_user_s",
        "cpu_sys_s",
        "mem_peak_bytes",
        "oom_killed",
        "pids_peak",
    ] {
        assert!(r["usage"].get(k).is_some(), "usage lacks {k}: {r}");
    }
    // The report file belongs to the pilot.
    assert_eq!(std::fs::metadata(&rep).unwrap().uid(), PILOT);
    // Audit: decision, start, end, all for this payload.
    let a = env.audit_lines();
    let events: Vec<&str> = a.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["decision", "start", "end"], "{a:?}");
    assert_eq!(a[0]["outcome"], "mapped");
    assert_eq!(a[0]["pilot_uid"], PILOT);
    assert_eq!(a[0]["uid"], uid);
    assert_eq!(a[1]["id"], "maptest");
    assert_eq!(a[2]["exit"], 3);
    for k in ["WallDuration", "CpuDuration", "MemoryReal", "Processors"] {
        assert!(a[2].get(k).is_some(), "end record lacks {k}");
    }
    assert!(
        !std::path::Path::new("/var/lib/pilotbox/run/maptest").exists(),
        "state dir removed"
    );
    // The same identity keeps its account (sticky lease).
    let (_, out2, _) = env.run(&[], &["id", "-u"]);
    assert_eq!(out2.trim().parse::<u32>().unwrap(), uid);
}

#[test]
fn denials_have_their_classes() {
    require_root!();
    let env = Env::new();
    let p = env.proxy.to_str().unwrap().to_string();
    let rep = env.report_path();
    let rep_s = rep.to_str().unwrap().to_string();

    // Not an allowed pilot: 120.
    let (c, _, e) = result(
        env.run_as(NOT_PILOT, &[], &["--proxy", &p], &["true"])
            .output()
            .unwrap(),
    );
    assert_eq!(c, 120, "{e}");
    assert!(e.contains("not an allowed pilot"), "{e}");

    // Unknown VO (no LSC for it: the AC does not verify, no rule matches): 120.
    let other = env.pki.voms_proxy(&env.user, &env.host, "othervo");
    let other = env.give_to_pilot(&other, "other.proxy");
    let (c, _, e) = env.run(
        &["--proxy", other.to_str().unwrap(), "--report", &rep_s],
        &["true"],
    );
    assert_eq!(c, 120, "{e}");
    assert_eq!(env.report()["outcome"], "denied");
    assert_eq!(e.lines().count(), 1, "one line on stderr: {e}");

    // Banned DN: 120.
    let mallory = env.pki.cert("Mallory");
    let mp = env.pki.voms_proxy(&mallory, &env.host, "testvo");
    let mp = env.give_to_pilot(&mp, "mallory.proxy");
    let (c, _, e) = env.run(&["--proxy", mp.to_str().unwrap()], &["true"]);
    assert_eq!(c, 120, "{e}");
    assert!(e.to_lowercase().contains("ban"), "{e}");

    // Pool exhausted: smallvo has one account, leased to the first user: 121 for the second.
    let bob = env.pki.cert("Bob Small");
    let carol = env.pki.cert("Carol Small");
    let bp = env.give_to_pilot(&env.pki.voms_proxy(&bob, &env.host, "smallvo"), "bob.proxy");
    let cp = env.give_to_pilot(
        &env.pki.voms_proxy(&carol, &env.host, "smallvo"),
        "carol.proxy",
    );
    let (c, out, e) = env.run(&["--proxy", bp.to_str().unwrap()], &["id", "-u"]);
    assert_eq!((c, out.trim()), (0, SMALL_UID.to_string().as_str()), "{e}");
    let (c, _, e) = env.run(
        &["--proxy", cp.to_str().unwrap(), "--report", &rep_s],
        &["true"],
    );
    assert_eq!(c, 121, "{e}");
    assert_eq!(env.report()["outcome"], "temporary");

    // Proxy readable by others: 122, as gLExec.
    let loose = env.give_to_pilot(&env.proxy, "loose.proxy");
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (c, _, e) = env.run(&["--proxy", loose.to_str().unwrap()], &["true"]);
    assert_eq!(c, 122, "{e}");
    assert!(e.contains("group or others"), "{e}");

    // A proxy the pilot cannot read (root's) is refused without pilotbox reading it: 122.
    let (c, _, e) = env.run(&["--proxy", env.pki.ca.key.to_str().unwrap()], &["true"]);
    assert_eq!(c, 122, "{e}");

    // Missing work dir: 122. Bad arguments: 122.
    let (c, _, e) = env.run(&["--workdir", "/nonexistent/job"], &["true"]);
    assert_eq!(c, 122, "{e}");
    let (c, _, e) = env.run(&["--memory", "12Q"], &["true"]);
    assert_eq!(c, 122, "{e}");

    // Policy writable by group: 123 (site error), and the report says so.
    std::fs::set_permissions(
        launcher_support::POLICY,
        std::os::unix::fs::PermissionsExt::from_mode(0o664),
    )
    .unwrap();
    let (c, _, e) = env.run(&["--report", &rep_s], &["true"]);
    assert_eq!(c, 123, "{e}");
    assert_eq!(env.report()["outcome"], "site_error");
    assert_eq!(env.report()["exit_code"], 123);
}

#[test]
fn workdir_is_handed_over_and_back() {
    require_root!();
    let env = Env::new();
    let w = env.workdir("job1");
    std::fs::write(w.join("input"), "in\n").unwrap();
    std::os::unix::fs::chown(w.join("input"), Some(PILOT), Some(PILOT)).unwrap();
    let script = "stat -c %u . ; cat input; echo out > output; mkdir sub; echo x > sub/f; pwd";
    let (c, out, e) = env.run(
        &["--workdir", w.to_str().unwrap()],
        &["/bin/sh", "-c", script],
    );
    assert_eq!(c, 0, "{e}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        POOL.contains(&lines[0].parse().unwrap()),
        "inside, the work dir is the pool account's: {out}"
    );
    assert_eq!(lines[1], "in", "the payload reads the pilot's input");
    assert_eq!(
        lines[2],
        w.to_str().unwrap(),
        "cwd is the work dir, at its own path"
    );
    for f in ["", "input", "output", "sub", "sub/f"] {
        let md = std::fs::symlink_metadata(w.join(f)).unwrap();
        assert_eq!(
            (md.uid(), md.gid()),
            (PILOT, PILOT),
            "{f:?} belongs to the pilot again"
        );
    }
    assert_eq!(std::fs::read_to_string(w.join("output")).unwrap(), "out\n");
}

#[test]
fn proxy_copy_belongs_to_the_pool_account_and_the_pilots_is_hidden() {
    require_root!();
    let env = Env::new();
    let script = format!("stat -c %u \"$X509_USER_PROXY\"; echo $X509_USER_PROXY; wc -c < {}; head -c 27 \"$X509_USER_PROXY\"", env.proxy.display());
    let (c, out, e) = env.run(&[], &["/bin/sh", "-c", &script]);
    assert_eq!(c, 0, "{e}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(POOL.contains(&lines[0].parse().unwrap()), "{out}");
    assert_eq!(lines[1], "/tmp/pilotbox-cred/x509up");
    assert_eq!(
        lines[2].trim(),
        "0",
        "the pilot's proxy path shows nothing: {out}"
    );
    assert_eq!(
        lines[3], "-----BEGIN CERTIFICATE-----",
        "the copy is the user's proxy"
    );
}

#[test]
fn hostile_environment_has_no_effect() {
    require_root!();
    let env = Env::new();
    // A preload library that leaves a marker wherever it gets loaded.
    // The marker dir is writable by anyone who might load the library, or the test proves nothing.
    let mark_dir = std::path::Path::new(launcher_support::BASE).join("mark");
    std::fs::create_dir_all(&mark_dir).unwrap();
    std::fs::set_permissions(
        &mark_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let marker = mark_dir.join("preloaded");
    let src = std::path::Path::new(launcher_support::BASE).join("evil.c");
    let lib = std::path::Path::new(launcher_support::BASE).join("evil.so");
    std::fs::write(&src, format!("#include <stdio.h>\n__attribute__((constructor)) static void f(void) {{ FILE *m = fopen(\"{}\", \"a\"); if (m) {{ fputs(\"loaded\\n\", m); fclose(m); }} }}\n", marker.display())).unwrap();
    launcher_support::pki::run(
        std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&lib)
            .arg(&src),
    );
    std::fs::set_permissions(&lib, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let lib_s = lib.to_str().unwrap();
    let p = env.proxy.to_str().unwrap();
    let hostile = [
        ("LD_PRELOAD", lib_s),
        ("LD_LIBRARY_PATH", "/nonexistent"),
        ("PATH", "/nonexistent"),
        ("IFS", "x/"),
        ("MALLOC_CHECK_", "3"),
        ("MALLOC_PERTURB_", "85"),
        ("PANDA_JOB", "42"),
        ("TMPDIR", "/home"),
    ];
    // Sanity: the library really loads into an ordinary program run as the pilot.
    launcher_support::pki::run(std::process::Command::new("setpriv").args([
        "--reuid",
        &PILOT.to_string(),
        "--regid",
        &PILOT.to_string(),
        "--clear-groups",
        "/usr/bin/env",
        "-i",
        &format!("LD_PRELOAD={lib_s}"),
        "/bin/true",
    ]));
    assert!(
        marker.exists(),
        "the preload library works (else this test proves nothing)"
    );
    std::fs::remove_file(&marker).unwrap();

    let (c, out, e) = result(
        env.run_as(PILOT, &hostile, &["--proxy", p], &["/usr/bin/env"])
            .output()
            .unwrap(),
    );
    assert_eq!(c, 0, "{e}");
    assert!(
        !marker.exists(),
        "LD_PRELOAD was loaded by pilotbox or the payload"
    );
    let vars: Vec<&str> = out.lines().collect();
    for bad in [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "IFS",
        "MALLOC_CHECK_",
        "MALLOC_PERTURB_",
    ] {
        assert!(
            !vars.iter().any(|v| v.starts_with(&format!("{bad}="))),
            "{bad} leaked: {out}"
        );
    }
    assert!(vars.contains(&"PATH=/usr/local/bin:/usr/bin:/bin"), "{out}");
    assert!(vars.contains(&"TMPDIR=/tmp"), "{out}");
    assert!(
        vars.contains(&"PANDA_JOB=42"),
        "[env] allow passes PANDA_*: {out}"
    );
}

#[test]
fn pilot_signals_reach_the_payload() {
    require_root!();
    let env = Env::new();
    use std::io::{BufRead, BufReader};
    let script = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
    let mut child = env
        .run_as(
            PILOT,
            &[],
            &[
                "--proxy",
                env.proxy.to_str().unwrap(),
                "--walltime",
                "60",
                "--id",
                "sigtest",
            ],
            &["/bin/sh", "-c", script],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // What the setuid process creates is root's, group included: it runs with the pilot's
    // real gid, which must not become the group of site files (state, lease store).
    for f in ["", "state.json"] {
        let p = std::path::Path::new("/var/lib/pilotbox/run/sigtest").join(f);
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{} owner", p.display());
    }
    // setpriv execs pilotbox: the child's pid is pilotbox's. The pilot itself sends the signal.
    let st = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            &PILOT.to_string(),
            "--regid",
            &PILOT.to_string(),
            "--clear-groups",
            "kill",
            "-TERM",
            &child.id().to_string(),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "the pilot may signal its own pilotbox run");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(7),
        "payload's trap ran and its status came back: {rest}"
    );
    assert!(rest.contains("got-term"), "{rest}");
}

/// `[expiry]`: the payload gets the configured signal `margin` before its credential ends — here
/// the VOMS AC, which ends ~20 s from now while the proxy is good for 12 h, so this also proves
/// the AC's end counts. The state record carries that end as `cred_not_after` while it runs.
#[test]
fn expiry_warns_the_payload_with_the_policy_signal_before_the_ac_ends() {
    require_root!();
    let mut env = Env::new();
    env.write_policy("[expiry]\nmargin = \"15s\"\nsignal = \"SIGUSR1\"\n");
    // AC valid for 1 h, started 3580 s ago: it ends in ~20 s.
    let proxy = env.pki.voms_proxy_with(
        &env.user,
        &env.host,
        "testvo",
        &["-vomslife", "1", "-pastac", "3580"],
    );
    env.proxy = env.give_to_pilot(&proxy, "x509up-short");
    let script = "trap 'echo warned; exit 7' USR1; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; echo not-warned";
    let t = std::time::Instant::now();
    let mut child = env
        .run_as(
            PILOT,
            &[],
            &["--proxy", env.proxy.to_str().unwrap(), "--id", "expirytest"],
            &["/bin/sh", "-c", script],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While it runs, the record names the AC's end (about 20 s from now), not the proxy's.
    // Polled until it appears or the run is over (not for a fixed 5 s: a slow launch on a
    // loaded host must not look like a missing record).
    let mut rec = None;
    while rec.is_none() && child.try_wait().unwrap().is_none() {
        rec = runtime::launcher::state::Store::default()
            .read("expirytest")
            .ok();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, out, err) = result(child.wait_with_output().unwrap());
    let rec = rec.expect("state record while running");
    let left = rec.cred_not_after_at().unwrap() - time::OffsetDateTime::now_utc();
    assert!(
        left < time::Duration::minutes(1),
        "cred_not_after is the AC's end: {:?}",
        rec.cred_not_after
    );
    assert_eq!((code, out.trim()), (7, "warned"), "{err}");
    let waited = t.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(18),
        "warned margin before the end: {waited:?}"
    );
}

/// `map` and `verify` run setuid too: they must never read a file the pilot could not read
/// itself (as `run` never does).
#[test]
fn map_and_verify_read_only_what_the_pilot_can_read() {
    require_root!();
    let env = Env::new();
    let secret = std::path::Path::new(launcher_support::BASE).join("root-only.pem");
    std::fs::write(
        &secret,
        "-----BEGIN CERTIFICATE-----\nUk9PVA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let as_pilot = |args: &[&str]| {
        let out = std::process::Command::new("setpriv")
            .args([
                "--reuid",
                &PILOT.to_string(),
                "--regid",
                &PILOT.to_string(),
                "--clear-groups",
                "--",
            ])
            .arg(&env.bin)
            .args(args)
            .output()
            .unwrap();
        result(out)
    };
    let s = secret.to_str().unwrap();
    for sub in ["map", "verify"] {
        let (c, out, e) = as_pilot(&[sub, "--proxy", s]);
        assert_eq!(c, 122, "{sub}: {out} {e}");
        assert!(
            e.contains("Permission denied"),
            "{sub} opened it as the pilot: {e}"
        );
    }
    // Control: the pilot's own proxy maps.
    let (c, out, e) = as_pilot(&["map", "--proxy", env.proxy.to_str().unwrap(), "--json"]);
    assert_eq!(c, 0, "{out} {e}");
    assert!(POOL.contains(
        &(serde_json::from_str::<serde_json::Value>(&out).unwrap()["uid"]
            .as_u64()
            .unwrap() as u32)
    ));
}

#[test]
fn every_audit_record_also_goes_to_syslog_as_authpriv() {
    require_root!();
    let env = Env::new();
    let sock = std::path::Path::new(launcher_support::BASE).join("syslog.sock");
    let rx = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    // As /dev/log: every local process may log.
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    rx.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    env.write_policy_with_audit(
        &format!("syslog = true\nsyslog_socket = \"{}\"", sock.display()),
        "",
    );
    let (c, _, e) = env.run(&["--id", "sysl"], &["true"]);
    assert_eq!(c, 0, "{e}");
    let other = env.pki.voms_proxy(&env.user, &env.host, "othervo");
    let other = env.give_to_pilot(&other, "other.proxy");
    let (c, _, e) = env.run(&["--proxy", other.to_str().unwrap()], &["true"]);
    assert_eq!(c, 120, "{e}");

    let file = env.audit_lines();
    assert_eq!(file.len(), 4, "decision, start, end, denial: {file:?}");
    let mut buf = vec![0u8; 65536];
    for want in &file {
        let n = rx
            .recv(&mut buf)
            .expect("a syslog datagram per audit record");
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        // <PRI> = LOG_AUTHPRIV (10) * 8 + LOG_INFO (6); the tag names pilotbox and its pid.
        let rest = msg.strip_prefix("<86>pilotbox[").expect(msg);
        let (pid, json) = rest.split_once("]: ").expect(msg);
        assert!(pid.parse::<u32>().is_ok(), "{msg}");
        let got: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            &got, want,
            "syslog and the audit file carry the same record"
        );
    }
    rx.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    assert!(rx.recv(&mut buf).is_err(), "nothing more was sent");
}

#[test]
fn the_lease_store_is_hidden_even_when_readable() {
    require_root!();
    let env = Env::new();
    let (c, _, e) = env.run(&[], &["true"]);
    assert_eq!(c, 0, "first launch creates the store: {e}");
    let state = std::path::Path::new(launcher_support::BASE).join("state");
    let store = state.join("leases.sqlite");
    let wal = state.join("leases.sqlite-wal");
    let size = std::fs::metadata(&store).unwrap().len();
    assert!(size > 0);
    assert!(wal.exists(), "the WAL is kept between calls");
    // A careless site: the store (DNs of everyone mapped on this node) readable by all.
    for (p, m) in [(&state, 0o755), (&store, 0o644), (&wal, 0o644)] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap();
    }
    let (c, out, e) = env.run(
        &[],
        &[
            "/bin/sh",
            "-c",
            &format!("wc -c < {}; wc -c < {}", store.display(), wal.display()),
        ],
    );
    assert_eq!(c, 0, "{e}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "0"],
        "masked, not the {size}-byte store and its WAL"
    );
}
