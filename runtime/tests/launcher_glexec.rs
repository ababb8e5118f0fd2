//! The gLExec-compatible entry point end to end: a `glexec` symlink to the real setuid
//! `pilotbox` (test policy path baked in, see `launcher_support`), called by a non-root pilot
//! through `setpriv` with only gLExec's variables set, real VOMS proxies, real cgroups. Every
//! gLExec exit status is produced by a real cause. Needs root; cleans up through `Env`'s Drop
//! and [`Glexec`]'s.

#[macro_use]
mod launcher_support;

use launcher_support::{result, Env, PILOT, POOL};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `glexec` → the installed setuid `pilotbox`, removed on drop.
struct Glexec {
    link: PathBuf,
}

impl Glexec {
    fn new(env: &Env) -> Glexec {
        let link = env.bin.with_file_name("glexec");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&env.bin, &link).unwrap();
        Glexec { link }
    }

    /// `glexec CMD...` as the pilot with exactly `vars` in its environment: (code, out, err).
    fn run(&self, env: &Env, vars: &[(&str, &str)], cmd: &[&str]) -> (i32, String, String) {
        result(self.command(env, vars, cmd).output().unwrap())
    }

    /// The command [`Glexec::run`] runs.
    fn command(&self, env: &Env, vars: &[(&str, &str)], cmd: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.env_clear()
            .args([
                "--reuid",
                &PILOT.to_string(),
                "--regid",
                &PILOT.to_string(),
                "--clear-groups",
                "--",
                "/usr/bin/env",
                "-i",
            ])
            .args(vars.iter().map(|(k, v)| format!("{k}={v}")))
            .arg(&self.link)
            .args(cmd)
            .current_dir(&env.pilot_dir);
        c
    }
}

impl Drop for Glexec {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.link);
    }
}

const SHOW: &str = "id -u; echo \"$X509_USER_PROXY\"; head -c 27 \"$X509_USER_PROXY\"; echo";

/// Checks the payload's output of [`SHOW`]: a pool uid, the announced proxy path, a PEM copy.
fn assert_ran_as_pool(out: &str, err: &str, announced: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out} / {err}");
    let uid: u32 = lines[0].trim().parse().unwrap();
    assert!(POOL.contains(&uid), "payload uid {uid} is a pool uid");
    assert_eq!(lines[1], announced);
    assert_eq!(
        lines[2], "-----BEGIN CERTIFICATE-----",
        "the proxy copy is there: {out}"
    );
}

#[test]
fn the_proxy_comes_from_each_glexec_variable() {
    require_root!();
    let env = Env::new();
    let g = Glexec::new(&env);
    let p = env.proxy.to_str().unwrap();
    for var in [
        "GLEXEC_CLIENT_CERT",
        "GLEXEC_SOURCE_PROXY",
        "X509_USER_PROXY",
    ] {
        let (c, out, err) = g.run(&env, &[(var, p)], &["/bin/sh", "-c", SHOW]);
        assert_eq!(c, 0, "{var}: {err}");
        assert_ran_as_pool(&out, &err, "/tmp/pilotbox-cred/x509up");
    }
    // Order of preference: GLEXEC_CLIENT_CERT wins over a broken X509_USER_PROXY, and
    // GLEXEC_SOURCE_PROXY over one too.
    let (c, _, err) = g.run(
        &env,
        &[
            ("GLEXEC_CLIENT_CERT", p),
            ("X509_USER_PROXY", "/nonexistent"),
        ],
        &["true"],
    );
    assert_eq!(c, 0, "{err}");
    let (c, _, err) = g.run(
        &env,
        &[
            ("GLEXEC_SOURCE_PROXY", p),
            ("X509_USER_PROXY", "/nonexistent"),
        ],
        &["true"],
    );
    assert_eq!(c, 0, "{err}");
    // ...and a broken GLEXEC_CLIENT_CERT is not silently skipped.
    let (c, _, err) = g.run(
        &env,
        &[
            ("GLEXEC_CLIENT_CERT", "/nonexistent"),
            ("X509_USER_PROXY", p),
        ],
        &["true"],
    );
    assert_eq!(c, 201, "{err}");
}

#[test]
fn target_proxy_is_where_the_payload_finds_its_proxy() {
    require_root!();
    let env = Env::new();
    let g = Glexec::new(&env);
    let p = env.proxy.to_str().unwrap();
    let target = "/tmp/glexec-target/x509_payload";
    let (c, out, err) = g.run(
        &env,
        &[("GLEXEC_SOURCE_PROXY", p), ("GLEXEC_TARGET_PROXY", target)],
        &["/bin/sh", "-c", SHOW],
    );
    assert_eq!(c, 0, "{err}");
    assert_ran_as_pool(&out, &err, target);
    assert!(
        !Path::new(target).exists(),
        "nothing is written at the target on the host"
    );
    // A relative target is the client's error.
    let (c, _, err) = g.run(
        &env,
        &[
            ("GLEXEC_SOURCE_PROXY", p),
            ("GLEXEC_TARGET_PROXY", "x509_payload"),
        ],
        &["true"],
    );
    assert_eq!(c, 201, "{err}");
}

#[test]
fn failures_get_glexec_exit_codes() {
    require_root!();
    let env = Env::new();
    let g = Glexec::new(&env);

    // 201 client error: no proxy at all; a proxy readable by others (gLExec refused it too);
    // no command.
    let (c, _, err) = g.run(&env, &[], &["true"]);
    assert_eq!(c, 201, "{err}");
    assert!(err.contains("GLEXEC_CLIENT_CERT"), "{err}");
    let loose = env.give_to_pilot(&env.proxy, "loose.proxy");
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (c, _, err) = g.run(
        &env,
        &[("GLEXEC_CLIENT_CERT", loose.to_str().unwrap())],
        &["true"],
    );
    assert_eq!(c, 201, "{err}");
    assert!(err.contains("group or others"), "{err}");
    let (c, _, err) = g.run(
        &env,
        &[("GLEXEC_CLIENT_CERT", env.proxy.to_str().unwrap())],
        &[],
    );
    assert_eq!(c, 201, "{err}");

    // 203 authorization error: a banned DN.
    let mallory = env.pki.cert("Mallory");
    let mp = env.give_to_pilot(
        &env.pki.voms_proxy(&mallory, &env.host, "testvo"),
        "mallory.proxy",
    );
    let (c, _, err) = g.run(
        &env,
        &[("GLEXEC_CLIENT_CERT", mp.to_str().unwrap())],
        &["true"],
    );
    assert_eq!(c, 203, "{err}");
    assert!(err.to_lowercase().contains("ban"), "{err}");

    // 202 system error: the site policy is group-writable (a misconfigured installation).
    std::fs::set_permissions(
        launcher_support::POLICY,
        std::os::unix::fs::PermissionsExt::from_mode(0o664),
    )
    .unwrap();
    let (c, _, err) = g.run(
        &env,
        &[("GLEXEC_CLIENT_CERT", env.proxy.to_str().unwrap())],
        &["true"],
    );
    assert_eq!(c, 202, "{err}");
    std::fs::set_permissions(
        launcher_support::POLICY,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();

    // 202 system error, temporary class: the one-account pool of smallvo is leased.
    let bob = env.give_to_pilot(
        &env.pki
            .voms_proxy(&env.pki.cert("Bob Small"), &env.host, "smallvo"),
        "bob.proxy",
    );
    let carol = env.give_to_pilot(
        &env.pki
            .voms_proxy(&env.pki.cert("Carol Small"), &env.host, "smallvo"),
        "carol.proxy",
    );
    let (c, _, err) = g.run(
        &env,
        &[("GLEXEC_CLIENT_CERT", bob.to_str().unwrap())],
        &["true"],
    );
    assert_eq!(c, 0, "{err}");
    let (c, _, err) = g.run(
        &env,
        &[("GLEXEC_CLIENT_CERT", carol.to_str().unwrap())],
        &["true"],
    );
    assert_eq!(c, 202, "{err}");
}

#[test]
fn payload_status_passes_through_except_glexecs_own_codes() {
    require_root!();
    let env = Env::new();
    let g = Glexec::new(&env);
    let vars = [("X509_USER_PROXY", env.proxy.to_str().unwrap())];
    for (status, expected) in [
        (0, 0),
        (7, 7),
        (122, 122),
        (201, 204),
        (202, 204),
        (204, 204),
        (205, 205),
    ] {
        let (c, _, err) = g.run(&env, &vars, &["/bin/sh", "-c", &format!("exit {status}")]);
        assert_eq!(c, expected, "payload exit {status}: {err}");
    }
}

#[test]
fn renew_reaches_the_payload_at_its_target_proxy_path() {
    require_root!();
    let env = Env::new();
    let g = Glexec::new(&env);
    let target = "/tmp/job/x509_target";
    // Prints the proxy's digest, then waits (up to 60 s) for the content at the target path
    // to change, and shows what it is now.
    let script = "a=$(md5sum < \"$X509_USER_PROXY\"); echo \"$a\"; i=0; \
                  while [ $i -lt 600 ]; do b=$(md5sum < \"$X509_USER_PROXY\"); \
                  if [ \"$b\" != \"$a\" ]; then echo \"$b\"; exit 0; fi; \
                  sleep 0.1; i=$((i+1)); done; exit 7";
    let mut child = g
        .command(
            &env,
            &[
                ("GLEXEC_SOURCE_PROXY", env.proxy.to_str().unwrap()),
                ("GLEXEC_TARGET_PROXY", target),
            ],
            &["/bin/sh", "-c", script],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let before = lines.next().expect("payload started").unwrap();
    // The pilot finds the payload's id with `ps` (gLExec had no ids) and renews it.
    let ps = env.pilot(&["ps", "--json"]).output().unwrap();
    let ps: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    // (This test's payload: other checkouts' tests may run payloads for the same pilot uid.)
    let ours = |p: &&serde_json::Value| {
        p["cgroup"]
            .as_str()
            .is_some_and(|c| c.starts_with(&env.cgroup_root))
    };
    let id = ps
        .as_array()
        .and_then(|l| l.iter().find(ours))
        .and_then(|p| p["id"].as_str())
        .expect("the running payload")
        .to_string();
    let fresh = env.pki.voms_proxy(&env.user, &env.host, "testvo");
    let fresh = env.give_to_pilot(&fresh, "fresh.proxy");
    let out = env
        .pilot(&["renew", &id, "--proxy", fresh.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "renew: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = child.wait().unwrap();
    let after = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(
        st.code(),
        Some(0),
        "the payload saw the renewed proxy at {target}"
    );
    let digest = |p: &Path| {
        let o = Command::new("md5sum")
            .stdin(std::fs::File::open(p).unwrap())
            .output();
        String::from_utf8(o.unwrap().stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(before.trim(), digest(&env.proxy), "first the launch proxy");
    assert_eq!(after.trim(), digest(&fresh), "then the renewed one");
    assert!(!Path::new(target).exists(), "nothing written on the host");
}
