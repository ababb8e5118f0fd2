//! Fixtures for the setuid launcher tests: build `pilotbox` with a test policy path baked in
//! (`PILOTBOX_POLICY` at build time, in a SEPARATE target dir so nobody else's build changes),
//! install it setuid root into a root-owned prefix, and a per-test [`Env`]: a real CA and
//! proxies, a trust dir readable by `nobody` (the verifier runs as nobody), the policy, a pilot
//! directory owned by the non-root pilot uid. Everything is removed on drop, cgroups included.
//! Tests share one policy path, so they run one at a time ([`Env::new`] takes a global lock).
#![allow(dead_code)]

/// Root tests need root; say so loudly instead of passing vacuously (CI runs as root and sets
/// `PILOTBOX_REQUIRE_ROOT`, which turns a skip into a failure). `#[macro_use] mod
/// launcher_support;` makes it available to a test file.
macro_rules! require_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root");
            assert!(
                std::env::var_os("PILOTBOX_REQUIRE_ROOT").is_none(),
                "PILOTBOX_REQUIRE_ROOT set but not root"
            );
            return;
        }
    };
}

#[path = "../support/exec_file.rs"]
mod exec_file;
#[path = "../support/pki.rs"]
pub mod pki;
pub use exec_file::install_executable;

use pki::{Cred, Pki};
use serde_json::Value;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Everything the launcher tests make lives under `/var/lib/pilotbox-tests/<this checkout's
/// runtime/ path>`: the policy path is baked into the test binary, and two checkouts (a CI
/// clone, another engineer's worktree) must not share — and wipe — each other's fixtures.
macro_rules! checkout_path {
    ($rel:literal) => {
        concat!(
            "/var/lib/pilotbox-tests",
            env!("CARGO_MANIFEST_DIR"),
            "/",
            $rel
        )
    };
}
pub const TOP: &str = "/var/lib/pilotbox-tests";
/// The build-time policy path of the test binary (its directory is root-owned, 0755).
pub const POLICY: &str = checkout_path!("launcher-etc/policy.toml");
/// Where the test copy of `pilotbox` (built with the test policy path) is built: beside this
/// checkout's own build output (`target/setuid-test`), so `cargo clean` removes it and nothing
/// outlives the checkout. Derived from the test executable's path (`target/debug/deps/…`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe.ancestors().nth(3).expect("target/<profile>/deps/<exe>");
    target.join("setuid-test")
}
pub const PREFIX: &str = checkout_path!("launcher-prefix");
pub const BASE: &str = checkout_path!("launcher");

/// Create `dir` with every directory from [`TOP`] down to it root-owned and 0755 (the policy
/// rule refuses a path with a group/world-writable or non-root ancestor; umask may differ).
pub fn root_dir(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for d in dir.ancestors().take_while(|d| d.starts_with(TOP)) {
        chown(d, Some(0), Some(0)).unwrap();
        mode(d, 0o755);
    }
}
pub const PILOT: u32 = 30290;
pub const NOT_PILOT: u32 = 30291;
pub const POOL: std::ops::RangeInclusive<u32> = 30201..=30205;
pub const POOL_GID: u32 = 30200;
pub const SMALL_UID: u32 = 30211;

static LOCK: Mutex<()> = Mutex::new(());
static INSTALLED: OnceLock<PathBuf> = OnceLock::new();

fn mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// Build (once per test process) and install the setuid binary; its path. [`Env`]'s Drop
/// removes it again, so no setuid-root test build outlives the test.
pub fn install() -> PathBuf {
    let built = INSTALLED.get_or_init(|| {
        // The build dir is shared with other builds of other policy paths (the admin-guide
        // examples, the benchmark's quick mode): what these tests run is a copy set aside at
        // once, under a name of its own.
        let kept = target_dir().join("launcher-tests");
        if std::env::var_os("PILOTBOX_IN_VM").is_some() {
            // In the cgroup-v2 VM there is no cargo on PATH, and building under TCG would take
            // an hour: the host's test run (which precedes the VM in tests/install-and-test.sh)
            // built these binaries from the same tree.
            assert!(
                kept.join("pilotbox").exists(),
                "{} missing: run the host tests before the VM",
                kept.display()
            );
            return kept.join("pilotbox");
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args([
                "build",
                "-p",
                "runtime",
                "--bin",
                "pilotbox",
                "--bin",
                "pilotbox-nosuid",
                "--target-dir",
            ])
            .arg(target_dir())
            .env("PILOTBOX_POLICY", POLICY)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(st.success(), "building the test pilotbox failed");
        std::fs::create_dir_all(&kept).unwrap();
        for b in ["pilotbox", "pilotbox-nosuid"] {
            install_executable(&target_dir().join("debug").join(b), &kept.join(b), 0o755);
        }
        kept.join("pilotbox")
    });
    {
        let bin = Path::new(PREFIX).join("bin");
        root_dir(&bin);
        let dst = bin.join("pilotbox");
        install_executable(built, &dst, 0o4755);
        // pilotbox-nosuid (built with the same policy path): root-owned, 0755, never setuid.
        let nosuid = bin.join("pilotbox-nosuid");
        install_executable(&built.with_file_name("pilotbox-nosuid"), &nosuid, 0o755);
        dst
    }
}

/// The installed test `pilotbox-nosuid` (see [`install`]).
pub fn nosuid_bin() -> PathBuf {
    Path::new(PREFIX).join("bin/pilotbox-nosuid")
}

pub struct Env {
    _lock: MutexGuard<'static, ()>,
    pub bin: PathBuf,
    pub pki: Pki,
    pub host: Cred,
    pub user: Cred,
    /// The pilot's directory (owned by the pilot, 0711) holding its proxy and work dirs.
    pub pilot_dir: PathBuf,
    /// The user's VOMS proxy, owned by the pilot, 0600.
    pub proxy: PathBuf,
    pub audit: PathBuf,
    pub cgroup_root: String,
}

impl Env {
    pub fn new() -> Env {
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let bin = install();
        let _ = std::fs::remove_dir_all(BASE);
        root_dir(Path::new(BASE));
        let pki = Pki::new("Launcher Test CA");
        let host = pki.cert("voms.example.org");
        let user = pki.cert("Alice Launcher");
        // Trust dirs the unprivileged verifier (nobody) can read.
        let trust = Path::new(BASE).join("certificates");
        std::fs::create_dir_all(&trust).unwrap();
        for e in std::fs::read_dir(&pki.ca_dir).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), trust.join(e.file_name())).unwrap();
            mode(&trust.join(e.file_name()), 0o644);
        }
        let vomsdir = Path::new(BASE).join("vomsdir");
        for vo in ["testvo", "smallvo"] {
            pki.lsc(&vomsdir, vo, &host);
        }
        Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(&trust)
            .arg(&vomsdir)
            .status()
            .unwrap();
        std::fs::create_dir_all(Path::new(BASE).join("state")).unwrap();
        mode(&Path::new(BASE).join("state"), 0o700);
        let pilot_dir = Path::new(BASE).join("pilot");
        std::fs::create_dir_all(&pilot_dir).unwrap();
        chown(&pilot_dir, Some(PILOT), Some(PILOT)).unwrap();
        mode(&pilot_dir, 0o711);
        // Under the shared test root (the VM session makes a fresh one per step and checks
        // nothing is left in it), one per test process.
        let top =
            std::env::var("PILOTBOX_TEST_CGROUP_ROOT").unwrap_or_else(|_| "/pilotbox-test".into());
        let cgroup_root = format!("{top}/launcher-{}", std::process::id());
        let mut env = Env {
            _lock: lock,
            bin,
            proxy: PathBuf::new(),
            audit: Path::new(BASE).join("log/audit.jsonl"),
            pki,
            host,
            user,
            pilot_dir,
            cgroup_root,
        };
        env.write_policy("");
        let proxy = env.pki.voms_proxy(&env.user, &env.host, "testvo");
        env.proxy = env.give_to_pilot(&proxy, "x509up");
        env
    }

    /// (Re)write the policy; `extra` is appended.
    pub fn write_policy(&self, extra: &str) {
        self.write_policy_with_audit("syslog = false", extra)
    }

    /// (Re)write the policy with `audit` as the `[audit]` keys besides `log`; `extra` appended.
    pub fn write_policy_with_audit(&self, audit: &str, extra: &str) {
        root_dir(Path::new(POLICY).parent().unwrap());
        let text = format!(
            r#"[trust]
ca_dir = "{base}/certificates"
voms_dir = "{base}/vomsdir"
[pilots]
users = [{PILOT}]
[[pool]]
name = "testvo"
uids = "30201-30205"
gid = {POOL_GID}
[[pool]]
name = "smallvo"
uids = "{SMALL_UID}-{SMALL_UID}"
gid = 30210
[[map]]
fqan = "/testvo/*"
pool = "testvo"
[[map]]
fqan = "/smallvo/*"
pool = "smallvo"
[ban]
dns = ["/DC=org/DC=example/CN=Mallory"]
[env]
allow = ["PANDA_*"]
[lease]
store = "{base}/state/leases.sqlite"
[cgroup]
placement = "root"
root = "{cg}"
[audit]
log = "{audit}"
{audit_keys}
{extra}"#,
            audit_keys = audit,
            base = BASE,
            cg = self.cgroup_root,
            audit = self.audit.display()
        );
        std::fs::write(POLICY, text).unwrap();
        chown(POLICY, Some(0), Some(0)).unwrap();
        mode(Path::new(POLICY), 0o644);
    }

    /// Copy `src` into the pilot's dir as `name`, owned by the pilot, 0600.
    pub fn give_to_pilot(&self, src: &Path, name: &str) -> PathBuf {
        let dst = self.pilot_dir.join(name);
        std::fs::copy(src, &dst).unwrap();
        chown(&dst, Some(PILOT), Some(PILOT)).unwrap();
        mode(&dst, 0o600);
        dst
    }

    /// A work dir owned by the pilot (0700).
    pub fn workdir(&self, name: &str) -> PathBuf {
        let w = self.pilot_dir.join(name);
        std::fs::create_dir_all(&w).unwrap();
        chown(&w, Some(PILOT), Some(PILOT)).unwrap();
        mode(&w, 0o700);
        w
    }

    /// `pilotbox run ARGS -- CMD` as `uid` (non-root, no groups), with only `env` set — by
    /// `env -i` running as that uid, so the variables reach pilotbox and nothing before it.
    pub fn run_as(&self, uid: u32, env: &[(&str, &str)], args: &[&str], cmd: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.env_clear()
            .args([
                "--reuid",
                &uid.to_string(),
                "--regid",
                &uid.to_string(),
                "--clear-groups",
                "--",
                "/usr/bin/env",
                "-i",
            ])
            .args(env.iter().map(|(k, v)| format!("{k}={v}")))
            .arg(&self.bin)
            .arg("run")
            .args(args)
            .arg("--")
            .args(cmd)
            .current_dir(&self.pilot_dir);
        c
    }

    /// `pilotbox ARGS` (any subcommand) as the pilot, with an empty environment.
    pub fn pilot(&self, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.env_clear()
            .args(["--reuid", &PILOT.to_string(), "--regid", &PILOT.to_string()])
            .args(["--clear-groups", "--", "/usr/bin/env", "-i"])
            .arg(&self.bin)
            .args(args)
            .current_dir(&self.pilot_dir);
        c
    }

    /// The installed `pilotbox-nosuid ARGS` as `uid` (non-root, no groups), empty environment.
    pub fn nosuid_as(&self, uid: u32, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.env_clear()
            .args(["--reuid", &uid.to_string(), "--regid", &uid.to_string()])
            .args(["--clear-groups", "--", "/usr/bin/env", "-i"])
            .arg(nosuid_bin())
            .args(args)
            .current_dir(&self.pilot_dir);
        c
    }

    /// Run as the pilot, with `--proxy <the user's proxy>` unless `args` name one; (code,
    /// stdout, stderr).
    pub fn run(&self, args: &[&str], cmd: &[&str]) -> (i32, String, String) {
        let mut a = vec![];
        if !args.contains(&"--proxy") {
            a.extend(["--proxy", self.proxy.to_str().unwrap()]);
        }
        a.extend_from_slice(args);
        result(self.run_as(PILOT, &[], &a, cmd).output().unwrap())
    }

    pub fn report_path(&self) -> PathBuf {
        self.pilot_dir.join("report.json")
    }

    pub fn report(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.report_path()).expect("no report"))
            .unwrap()
    }

    pub fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Payload cgroups are removed by pilotbox; the per-process root is ours.
        let _ = runtime::cgroups::Cgroup::open(&self.cgroup_root).and_then(|c| c.destroy());
        let _ = std::fs::remove_dir_all(BASE);
        let _ = std::fs::remove_file(POLICY);
        let _ = std::fs::remove_file(&self.bin);
        let _ = std::fs::remove_file(nosuid_bin());
    }
}

/// A syslog socket at /dev/log for the test's duration (only when the host has none).
pub struct FakeSyslog(std::os::unix::net::UnixDatagram);

impl FakeSyslog {
    pub fn bind() -> Option<FakeSyslog> {
        if Path::new("/dev/log").exists() {
            return None;
        }
        let s = std::os::unix::net::UnixDatagram::bind("/dev/log").ok()?;
        std::fs::set_permissions("/dev/log", std::fs::Permissions::from_mode(0o666)).unwrap();
        s.set_nonblocking(true).unwrap();
        Some(FakeSyslog(s))
    }
    pub fn messages(&self) -> Vec<String> {
        let mut out = vec![];
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.0.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }
}

impl Drop for FakeSyslog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file("/dev/log");
    }
}

pub fn result(out: Output) -> (i32, String, String) {
    use std::os::unix::process::ExitStatusExt;
    let code = out
        .status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
