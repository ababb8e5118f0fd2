//! Shared fixtures for the engine's root integration tests: a per-test host directory, a
//! per-test cgroup, a non-root "pilot" process, and running `pilotbox-engine`.
//! Everything a fixture creates is removed in `Drop`, also when the test fails.
#![allow(dead_code)]

#[path = "exec_file.rs"]
mod exec_file;
#[allow(unused_imports)]
pub use exec_file::install_executable;

use runtime::cgroups::Cgroup;
use serde_json::Value;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ENGINE: &str = env!("CARGO_BIN_EXE_pilotbox-engine");
/// The pool account the payload runs as, and the non-root pilot that "launches" it.
pub const POOL_UID: u32 = 30001;
pub const POOL_GID: u32 = 30000;
pub const POOL_GROUP2: u32 = 30500;
pub const PILOT_UID: u32 = 30100;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Root tests need root; say so loudly instead of passing vacuously. CI runs as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !support::is_root() {
            eprintln!("SKIPPED: needs root");
            if std::env::var_os("PILOTBOX_REQUIRE_ROOT").is_some() {
                panic!("PILOTBOX_REQUIRE_ROOT is set but not running as root");
            }
            return;
        }
    };
}

pub struct Fixture {
    pub name: String,
    /// Host directory for this test (root-owned, 0755), outside /tmp and /var/tmp, which the
    /// sandbox replaces with private tmpfs.
    pub dir: PathBuf,
    /// Absolute cgroup path for the payload (never under the machine's own process_api).
    pub cgroup: String,
    cgroup_base: String,
    children: Vec<Child>,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        let pid = std::process::id();
        let dir = PathBuf::from(format!("/var/lib/pilotbox-tests/{name}-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(
            "/var/lib/pilotbox-tests",
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let base =
            std::env::var("PILOTBOX_TEST_CGROUP_ROOT").unwrap_or_else(|_| "/pilotbox-test".into());
        assert!(
            !base.contains("process_api"),
            "never use the machine's own cgroup"
        );
        let cgroup_base = format!("{base}/engine-{name}-{pid}");
        Fixture {
            name: name.into(),
            dir,
            cgroup: format!("{cgroup_base}/payload"),
            cgroup_base,
            children: vec![],
        }
    }

    /// A directory the pool account owns, to use as the payload's work dir.
    pub fn workdir(&self) -> PathBuf {
        let w = self.dir.join("work");
        std::fs::create_dir_all(&w).unwrap();
        chown(&w, Some(POOL_UID), Some(POOL_GID)).unwrap();
        w
    }

    /// A long-running process as the non-root pilot uid; returns its host pid.
    pub fn pilot_process(&mut self) -> i32 {
        let c = Command::new("setpriv")
            .args([
                "--reuid",
                &PILOT_UID.to_string(),
                "--regid",
                &PILOT_UID.to_string(),
                "--clear-groups",
                "sleep",
                "300",
            ])
            .spawn()
            .unwrap();
        let pid = c.id() as i32;
        self.children.push(c);
        pid
    }

    /// `pilotbox-engine exec` with the default payload spec, the test cgroup and a report.
    pub fn engine(&self, extra: &[&str], cmd: &[&str]) -> Command {
        let mut c = Command::new(ENGINE);
        c.args([
            "exec",
            "--uid",
            &POOL_UID.to_string(),
            "--gid",
            &POOL_GID.to_string(),
        ])
        .args(["--groups", &POOL_GROUP2.to_string()])
        .args(["--cgroup", &self.cgroup])
        .args(["--report", self.report_path().to_str().unwrap()])
        .args(extra)
        .arg("--")
        .args(cmd);
        c
    }

    pub fn report_path(&self) -> PathBuf {
        self.dir.join("report.json")
    }

    pub fn report(&self) -> Value {
        let text = std::fs::read_to_string(self.report_path()).expect("engine wrote no report");
        serde_json::from_str(&text).unwrap()
    }

    /// Run a shell script as the payload; (exit code, stdout, stderr).
    pub fn sh(&self, extra: &[&str], script: &str) -> (i32, String, String) {
        let out = self
            .engine(extra, &["/bin/sh", "-c", script])
            .output()
            .unwrap();
        result(out)
    }

    /// Host pids of every process in the payload cgroup (empty when gone).
    pub fn cgroup_pids(&self) -> Vec<i32> {
        Cgroup::open(&self.cgroup)
            .and_then(|c| c.pids())
            .unwrap_or_default()
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

impl Drop for Fixture {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A supervisor killed by a test leaves its cgroup behind (that is what `gc` is for).
        if let Ok(c) = Cgroup::open(&self.cgroup) {
            let _ = c.destroy();
        }
        if let Ok(c) = Cgroup::open(&self.cgroup_base) {
            let _ = c.destroy();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How long to wait for a launched payload (or a helper process) to be up. A hang guard only:
/// callers wait for a condition, so a fast machine never waits it out, while a launch in the
/// TCG guest on a loaded host can take seconds (5-10 s bounds were within reach of that).
pub const STARTED_WITHIN: Duration = Duration::from_secs(60);

/// Poll until `f` holds or the timeout passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Host pids whose command line contains `marker`.
pub fn pids_with_marker(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

pub fn alive(pid: i32) -> bool {
    // A zombie is dead for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

pub fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
