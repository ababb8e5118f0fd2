//! `pilotbox-nosuid` end to end: the real binary (test policy path baked in, root-owned, not
//! setuid) called by a non-root pilot through `setpriv`, real proxies from voms-proxy-fake, the
//! same policy and trust dirs as the setuid launcher tests (`launcher_support`). Needs root only
//! to install the binary and prepare the fixtures; every payload runs as the pilot's uid. Each
//! test cleans up through `Env`'s Drop.

#[macro_use]
mod launcher_support;

use launcher_support::{
    nosuid_bin, result, Env, FakeSyslog, NOT_PILOT, PILOT, POLICY, POOL, POOL_GID,
};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `BIN ARGS` as `uid` (non-root, no groups) with only `env`, in the pilot's directory.
fn as_user(env: &Env, bin: &Path, uid: u32, vars: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.env_clear()
        .args(["--reuid", &uid.to_string(), "--regid", &uid.to_string()])
        .args(["--clear-groups", "--", "/usr/bin/env", "-i"])
        .args(vars.iter().map(|(k, v)| format!("{k}={v}")))
        .arg(bin)
        .args(args)
        .current_dir(&env.pilot_dir);
    c
}

/// `pilotbox-nosuid run --proxy <user's proxy> ARGS -- CMD` as the pilot.
fn nosuid_run(env: &Env, args: &[&str], cmd: &[&str]) -> (i32, String, String) {
    nosuid_run_with(env, &[], args, cmd)
}

fn nosuid_run_with(
    env: &Env,
    vars: &[(&str, &str)],
    args: &[&str],
    cmd: &[&str],
) -> (i32, String, String) {
    let mut a = vec!["run"];
    if !args.contains(&"--proxy") {
        a.extend(["--proxy", env.proxy.to_str().unwrap()]);
    }
    a.extend_from_slice(args);
    a.push("--");
    a.extend_from_slice(cmd);
    result(
        as_user(env, &nosuid_bin(), PILOT, vars, &a)
            .output()
            .unwrap(),
    )
}

fn lease_store() -> PathBuf {
    Path::new(launcher_support::BASE).join("state/leases.sqlite")
}

/// Proxy-copy directories this binary leaves in /tmp (there must be none after a run).
fn cred_dirs() -> Vec<PathBuf> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("pilotbox-nosuid."))
        })
        .collect()
}

/// Pids whose command line contains `needle` (NUL-separated args joined by spaces).
fn procs_with(needle: &str) -> Vec<i32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let c: Vec<u8> = c.iter().map(|b| if *b == 0 { b' ' } else { *b }).collect();
            if String::from_utf8_lossy(&c).contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key:?} in {out}"))
        .trim()
}

#[test]
fn payload_runs_as_the_caller_in_an_unprivileged_sandbox() {
    require_root!();
    let env = Env::new();
    assert!(!lease_store().exists());
    let before = cred_dirs();
    let rep = env.report_path();
    // A background process that would outlive a careless sandbox: `sleep 86399`.
    let script = r#"sleep 86399 &
echo "uid=$(id -u)"; echo "gid=$(id -g)"
echo "uidmap=$(cat /proc/self/uid_map | tr -s ' ' | tr '\n' ';')"
echo "gidmap=$(cat /proc/self/gid_map | tr -s ' ' | tr '\n' ';')"
grep -E '^(NoNewPrivs|Seccomp|CapEff|CapPrm|CapInh|CapAmb):' /proc/self/status | tr -d '\t' | sed 's/:/=/'
echo "mypid=$$"; echo "init=$(cat /proc/1/comm)"
echo "nprocs=$(ls /proc | grep -c '^[0-9]')"
echo "proxy=$X509_USER_PROXY"; echo "proxysum=$(sha256sum < $X509_USER_PROXY | cut -d' ' -f1)"
echo "hostname=$(hostname)"
exit 3"#;
    let (code, out, err) = nosuid_run(
        &env,
        &["--id", "nosuid1", "--report", rep.to_str().unwrap()],
        &["/bin/sh", "-c", script],
    );
    assert_eq!(
        code, 3,
        "the payload's own status; stderr: {err}\nstdout: {out}"
    );
    // The caller's uid and gid, mapped to themselves only: no root inside.
    assert_eq!(field(&out, "uid="), PILOT.to_string());
    assert_eq!(field(&out, "gid="), PILOT.to_string());
    assert_eq!(field(&out, "uidmap="), format!("{PILOT} {PILOT} 1;"));
    assert_eq!(field(&out, "gidmap="), format!("{PILOT} {PILOT} 1;"));
    assert_eq!(field(&out, "NoNewPrivs="), "1");
    assert_eq!(field(&out, "Seccomp="), "2", "seccomp filter mode");
    for set in ["CapEff=", "CapPrm=", "CapInh=", "CapAmb="] {
        assert_eq!(field(&out, set), "0000000000000000", "{set}");
    }
    // A new pid namespace: pid 1 is pilotbox's init, the payload a small pid, only our processes.
    assert_eq!(field(&out, "init="), "pilotbox-init");
    let mypid: i32 = field(&out, "mypid=").parse().unwrap();
    assert!(mypid <= 3, "payload pid {mypid}");
    let n: i32 = field(&out, "nprocs=").parse().unwrap();
    assert!(n <= 6, "{n} processes visible in the sandbox");
    // The proxy copy at pilotbox run's location, with the verified bytes.
    assert_eq!(field(&out, "proxy="), "/tmp/pilotbox-cred/x509up");
    let want = sha256_hex(&std::fs::read(&env.proxy).unwrap());
    assert_eq!(field(&out, "proxysum="), want);
    assert_eq!(field(&out, "hostname="), "pilotbox", "own uts namespace");

    let r = env.report();
    assert_eq!(r["id"], "nosuid1");
    assert_eq!(r["outcome"], "exited");
    assert_eq!(r["exit_code"], 3);
    assert_eq!(r["identity_switch"], false);
    assert_eq!(r["user"]["uid"], PILOT, "the uid the payload ran as");
    assert_eq!(r["user"]["dn"], env.user.dn);
    assert_eq!(r["user"]["vo"], "testvo");
    let wm = &r["user"]["would_map"];
    assert!(POOL.contains(&(wm["uid"].as_u64().unwrap() as u32)), "{wm}");
    assert_eq!(wm["gid"], POOL_GID);
    assert_eq!(wm["pool"], "testvo");
    assert_eq!(wm["lease"], "not_taken");
    assert!(
        r["cgroup"].is_null(),
        "no delegated cgroup on this host: {r}"
    );
    assert_eq!(r["limits_enforced"], false);
    for k in ["reason", "started", "ended", "signal", "usage"] {
        assert!(r.get(k).is_some(), "report lacks {k}");
    }
    // Nothing taken, nothing left behind.
    assert!(!lease_store().exists(), "no lease store was created");
    assert_eq!(cred_dirs(), before, "proxy copy removed");
    assert_eq!(
        procs_with("sleep 86399"),
        Vec::<i32>::new(),
        "background payload process killed"
    );
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn work_dir_is_bound_and_outputs_belong_to_the_pilot() {
    require_root!();
    let env = Env::new();
    let w = env.workdir("job1");
    let (code, out, err) = nosuid_run(
        &env,
        &["--workdir", w.to_str().unwrap()],
        &["/bin/sh", "-c", "pwd; echo $HOME; echo hello > out.txt"],
    );
    assert_eq!(code, 0, "{err}");
    let mut l = out.lines();
    assert_eq!(l.next(), Some(w.to_str().unwrap()));
    assert_eq!(l.next(), Some(w.to_str().unwrap()), "HOME is the work dir");
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(w.join("out.txt")).unwrap();
    assert_eq!(md.uid(), PILOT);
    // A work dir that is not the caller's: pilot error.
    let other = Path::new(launcher_support::BASE).join("rootdir");
    std::fs::create_dir_all(&other).unwrap();
    let (code, _, err) = nosuid_run(&env, &["--workdir", other.to_str().unwrap()], &["true"]);
    assert_eq!(code, 122, "{err}");
}

/// Issue 11 item 1: the payload runs as the pilot, so a set-id file it left in the work dir
/// would make any local process the pilot. Seccomp refuses making one; what is there after the
/// run (here put there by the test, as a stand-in for what slipped through) is stripped.
#[test]
fn no_set_id_file_survives_in_the_work_dir() {
    require_root!();
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let w = env.workdir("job-setid");
    let deep = w.join("a/b");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("pre"), "x").unwrap();
    for p in [w.join("a"), deep.clone(), deep.join("pre")] {
        std::os::unix::fs::chown(&p, Some(PILOT), Some(PILOT)).unwrap();
    }
    std::fs::set_permissions(deep.join("pre"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    let (code, out, err) = nosuid_run(
        &env,
        &["--workdir", w.to_str().unwrap()],
        &["/bin/sh", "-c", "echo x > f; chmod 4755 f || echo refused"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "refused");
    for f in [w.join("f"), deep.join("pre")] {
        let mode = std::fs::metadata(&f).unwrap().mode();
        assert_eq!(mode & 0o6000, 0, "{} is set-id: {mode:o}", f.display());
    }
}

#[test]
fn denials_have_their_classes() {
    require_root!();
    let env = Env::new();
    let rep = env.report_path();
    let rep_s = rep.to_str().unwrap().to_string();
    let p = env.proxy.to_str().unwrap().to_string();

    // Banned DN: 120, reported with identity_switch false.
    let mallory = env.pki.cert("Mallory");
    let mp = env.give_to_pilot(
        &env.pki.voms_proxy(&mallory, &env.host, "testvo"),
        "m.proxy",
    );
    let (c, _, e) = nosuid_run(
        &env,
        &["--proxy", mp.to_str().unwrap(), "--report", &rep_s],
        &["true"],
    );
    assert_eq!(c, 120, "{e}");
    assert!(e.to_lowercase().contains("ban"), "{e}");
    assert_eq!(e.lines().count(), 1, "one line on stderr: {e}");
    let r = env.report();
    assert_eq!(
        (r["outcome"].as_str(), r["identity_switch"].as_bool()),
        (Some("denied"), Some(false))
    );

    // Not an allowed pilot: 120.
    let (c, _, e) = result(
        as_user(
            &env,
            &nosuid_bin(),
            NOT_PILOT,
            &[],
            &["run", "--proxy", &p, "--", "true"],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(c, 120, "{e}");
    assert!(e.contains("not an allowed pilot"), "{e}");

    // A proxy readable by others: pilot error 122 (gLExec's rule, as for pilotbox run).
    let loose = env.give_to_pilot(&env.proxy, "loose.proxy");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (c, _, e) = nosuid_run(&env, &["--proxy", loose.to_str().unwrap()], &["true"]);
    assert_eq!(c, 122, "{e}");
    // Missing proxy: 122. Not a credential at all: denied, 120.
    let (c, _, e) = nosuid_run(&env, &["--proxy", "/nonexistent/x509up"], &["true"]);
    assert_eq!(c, 122, "{e}");
    let junk = env.pilot_dir.join("junk.proxy");
    std::fs::write(&junk, "not a proxy\n").unwrap();
    std::os::unix::fs::chown(&junk, Some(PILOT), Some(PILOT)).unwrap();
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (c, _, e) = nosuid_run(&env, &["--proxy", junk.to_str().unwrap()], &["true"]);
    assert_eq!(c, 120, "{e}");
    // Bad usage: 122.
    let (c, _, _) = result(
        as_user(&env, &nosuid_bin(), PILOT, &[], &["run", "--bogus"])
            .output()
            .unwrap(),
    );
    assert_eq!(c, 122);

    // The pilot asks for limits that cannot be enforced (no delegated cgroup here): 123.
    if runtime::cgroups::detect().ok() == Some(runtime::cgroups::Version::V1) {
        let (c, _, e) = nosuid_run(&env, &["--memory", "100M"], &["true"]);
        assert_eq!(c, 123, "{e}");
        assert!(e.contains("cannot be enforced"), "{e}");
    }

    // Policy writable by the pilot, then group-writable, then missing: 123 each.
    std::os::unix::fs::chown(POLICY, Some(PILOT), Some(PILOT)).unwrap();
    let (c, _, e) = nosuid_run(&env, &[], &["true"]);
    assert_eq!(c, 123, "a policy the caller owns is refused: {e}");
    std::os::unix::fs::chown(POLICY, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(POLICY, std::fs::Permissions::from_mode(0o664)).unwrap();
    let (c, _, e) = nosuid_run(&env, &[], &["true"]);
    assert_eq!(c, 123, "a group-writable policy is refused: {e}");
    std::fs::remove_file(POLICY).unwrap();
    let (c, _, e) = nosuid_run(&env, &["--report", &rep_s], &["true"]);
    assert_eq!(c, 123, "{e}");
    assert_eq!(env.report()["outcome"], "site_error");
    assert!(!lease_store().exists());
}

#[test]
fn refuses_to_run_setuid_setgid_or_as_root() {
    require_root!();
    let env = Env::new();
    let bin = Path::new(launcher_support::PREFIX).join("bin/pilotbox-nosuid-priv");
    for (mode, word) in [(0o4755, "setuid"), (0o2755, "setgid")] {
        launcher_support::install_executable(&nosuid_bin(), &bin, mode);
        let p = env.proxy.to_str().unwrap().to_string();
        for sub in [
            vec!["run", "--proxy", &p, "--", "true"],
            vec!["map", "--proxy", &p],
        ] {
            let output = as_user(&env, &bin, PILOT, &[], &sub).output().unwrap();
            let (c, out, e) = result(output);
            assert_eq!(c, 123, "{mode:o} {sub:?}: {e}");
            assert!(e.contains(word), "{e}");
            assert!(out.is_empty(), "nothing done: {out}");
        }
    }
    let _ = std::fs::remove_file(&bin);
    // Root calling it directly: refused for `run` (a payload must not run as root).
    let (c, _, e) = result(
        Command::new(nosuid_bin())
            .args(["run", "--proxy", env.proxy.to_str().unwrap(), "--", "true"])
            .output()
            .unwrap(),
    );
    assert_eq!(c, 123, "{e}");
    assert!(e.contains("refuses root"), "{e}");
}

#[test]
fn caller_environment_does_not_leak_into_the_payload() {
    require_root!();
    let env = Env::new();
    let hostile = [
        ("LD_PRELOAD", "/nonexistent/evil.so"),
        ("LD_LIBRARY_PATH", "/nonexistent/lib"),
        ("PATH", "/nonexistent/bin:/usr/bin:/bin"),
        ("IFS", "x"),
        ("MALLOC_CHECK_", "3"),
        ("BASH_ENV", "/nonexistent/rc"),
        ("PANDA_JOB", "42"),
        ("SECRET", "pilot-only"),
    ];
    let (code, out, err) =
        nosuid_run_with(&env, &hostile, &["--env", "FOO=bar"], &["/usr/bin/env"]);
    assert_eq!(code, 0, "{err}");
    let mut names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once('=').map(|x| x.0))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "FOO",
            "HOME",
            "LOGNAME",
            "PANDA_JOB",
            "PATH",
            "TMPDIR",
            "USER",
            "X509_USER_PROXY"
        ],
        "only pilotbox run's set, the policy's PANDA_*, and --env: {out}"
    );
    assert!(out.contains("PATH=/usr/local/bin:/usr/bin:/bin\n"), "{out}");
    assert!(out.contains("PANDA_JOB=42\n"), "{out}");
}

#[test]
fn map_names_the_account_it_would_map_to_without_a_lease() {
    require_root!();
    let env = Env::new();
    let p = env.proxy.to_str().unwrap().to_string();
    let (c, out, e) = result(
        as_user(
            &env,
            &nosuid_bin(),
            PILOT,
            &[],
            &["map", "--proxy", &p, "--json"],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(c, 0, "{e}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(POOL.contains(&(v["uid"].as_u64().unwrap() as u32)), "{v}");
    assert_eq!(v["pool"], "testvo");
    assert_eq!(v["lease"], "not_taken");
    assert_eq!(v["identity_switch"], false);
    assert_eq!(v["ran_as_uid"], PILOT);
    assert!(!lease_store().exists(), "no lease store was opened");
    // `verify` works unprivileged too.
    let base = launcher_support::BASE;
    let (c, out, e) = result(
        as_user(
            &env,
            &nosuid_bin(),
            PILOT,
            &[],
            &[
                "verify",
                "--proxy",
                &p,
                "--json",
                "--ca-dir",
                &format!("{base}/certificates"),
                "--voms-dir",
                &format!("{base}/vomsdir"),
            ],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(c, 0, "{e}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["valid"].as_bool(), v["vo"].as_str()),
        (Some(true), Some("testvo"))
    );
}

#[test]
fn audit_records_go_to_syslog() {
    require_root!();
    let env = Env::new();
    let Some(log) = FakeSyslog::bind() else {
        eprintln!("SKIPPED: the host has a /dev/log of its own");
        return;
    };
    // The fixture policy turns syslog off (for pilotbox run's tests); on here.
    let text = std::fs::read_to_string(POLICY).unwrap();
    assert!(text.contains("syslog = false"));
    std::fs::write(POLICY, text.replace("syslog = false", "syslog = true")).unwrap();
    let (c, _, e) = nosuid_run(&env, &["--id", "audit1"], &["true"]);
    assert_eq!(c, 0, "{e}");
    let recs: Vec<Value> = log
        .messages()
        .iter()
        .filter(|m| m.starts_with("<86>pilotbox-nosuid["))
        .filter_map(|m| serde_json::from_str(m.split_once("]: ")?.1).ok())
        .filter(|v: &Value| v["id"] == "audit1")
        .collect();
    let events: Vec<&str> = recs.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["decision", "start", "end"], "{recs:?}");
    for r in &recs {
        assert_eq!(r["identity_switch"], false);
        assert_eq!(r["pilot_uid"], PILOT);
    }
    assert_eq!(recs[0]["outcome"], "mapped");
    assert_eq!(recs[0]["would_map"]["lease"], "not_taken");
    assert_eq!(recs[2]["exit"], 0);
    assert!(recs[2].get("WallDuration").is_some());
    assert!(
        env.audit_lines().is_empty(),
        "the root-owned audit file is not written"
    );
}

#[test]
fn the_binary_does_not_contain_the_privileged_paths() {
    require_root!();
    let _env = Env::new();
    let syms = |bin: &Path| {
        let out = Command::new("nm").arg("-C").arg(bin).output().unwrap();
        assert!(out.status.success(), "nm {}", bin.display());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let setuid = syms(&launcher_support::target_dir().join("debug/pilotbox"));
    let nosuid = syms(&nosuid_bin());
    for f in [
        "runtime::launcher::credfile::as_caller",
        "runtime::launcher::prepare::prepare",
        "runtime::launcher::handover::transfer",
        "runtime::launcher::unprivileged::drop_to_nobody",
        // The symbol itself (line end): nosuid keeps its own records with `Store::update`,
        // whose `Store::write_inner` shares the prefix, never root's fsync'd `Store::write`.
        "runtime::launcher::state::Store::write\n",
        "policy::lease::sqlite::SqliteStore::acquire",
        "policy::lease::open_store",
        "runtime::cli::run::execute",
    ] {
        assert!(
            setuid.contains(f),
            "{f} not in the setuid pilotbox: the check would prove nothing"
        );
        assert!(!nosuid.contains(f), "{f} is linked into pilotbox-nosuid");
    }
}

/// docs/pilot-guide.md stays true for `pilotbox-nosuid`: each documented subcommand exists and
/// takes each documented flag (as `lifecycle_docs` does for `pilotbox`). No root needed.
#[test]
fn documented_nosuid_commands_and_flags_exist() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/pilot-guide.md"
    ))
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_pilotbox-nosuid");
    let mut checked = 0;
    for line in guide.lines().filter(|l| l.starts_with("pilotbox-nosuid ")) {
        let words: Vec<&str> = line.split('#').next().unwrap().split_whitespace().collect();
        let help = Command::new(bin)
            .args([words[1], "--help"])
            .output()
            .unwrap();
        assert!(help.status.success(), "`{line}`: no such subcommand");
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in words
            .iter()
            .take_while(|w| **w != "--")
            .filter(|w| w.starts_with("--"))
        {
            assert!(help.contains(flag), "{line}: {flag} not in --help");
            checked += 1;
        }
    }
    assert!(
        checked >= 6,
        "the guide's examples were found ({checked} flags)"
    );
}
