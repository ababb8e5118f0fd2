//! Fixtures for the lifecycle tests: a scratch state dir, writing a state record for a real
//! running engine payload (as the launcher would), a setuid-root copy of `pilotbox`, running it
//! as another uid, and the runtime tests' shared test CA (`tests/support/pki.rs`). Everything is
//! removed on drop.
#![allow(dead_code)]

#[path = "../support/exec_file.rs"]
mod exec_file;
#[path = "../support/pki.rs"]
pub mod pki;
pub use pki::Pki;

use runtime::launcher::state::{Handover, Record, Store, RUN_DIR};
use runtime::lifecycle::procs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PILOTBOX: &str = env!("CARGO_BIN_EXE_pilotbox");

/// A record for a payload supervised by `supervisor_pid` in `cgroup`, as `pilotbox run` writes
/// it (`launcher::state::Record`).
pub fn record_for(id: &str, pilot_uid: u32, supervisor_pid: i32, cgroup: &str) -> Record {
    Record {
        id: id.into(),
        pilot_uid,
        pilot_gid: pilot_uid,
        supervisor_pid,
        supervisor_start: procs::start_time(supervisor_pid).unwrap_or(1),
        init_pid: 0,
        account: "testvo001".into(),
        uid: 30001,
        gid: 30000,
        groups: vec![30000],
        dn: "/DC=org/DC=example/CN=Alice".into(),
        issuer_dn: "/DC=org/DC=example/CN=Test CA".into(),
        vo: None,
        fqans: vec![],
        pool: None,
        lease_key: None,
        cgroup: Some(cgroup.into()),
        workdir: None,
        workdir_handover: Handover::None,
        started: "2026-01-01T00:00:00Z".into(),
        // A day from now: `gc` ends payloads whose credential ended (issue 11 item 2).
        cred_not_after: (time::OffsetDateTime::now_utc() + time::Duration::days(1))
            .format(&time::format_description::well_known::Rfc3339)
            .ok(),
        walltime_s: None,
        cpus: None,
        end_audited: None,
        nosuid: None,
    }
}

/// Write `rec` into the store at `dir` (creating its per-payload directory) as the launcher does.
pub fn write_record(dir: &Path, rec: &Record) {
    let store = Store::new(dir);
    if !store.dir(&rec.id).unwrap().exists() {
        store.create_dir(&rec.id).unwrap();
    }
    store.write(rec).unwrap();
}

/// A state dir (root, 0711) that is removed on drop.
pub struct StateDir(pub PathBuf);

impl StateDir {
    pub fn scratch(name: &str) -> StateDir {
        let d = PathBuf::from(format!(
            "/var/lib/pilotbox-tests/state-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o711)).unwrap();
        StateDir(d)
    }
    /// The node's real state dir, for tests of non-root callers (who cannot choose another);
    /// only the given ids are removed on drop.
    pub fn write(&self, rec: &Record) {
        write_record(&self.0, rec);
    }
    pub fn arg(&self) -> String {
        format!("--state-dir={}", self.0.display())
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Records written into the node's real `/var/lib/pilotbox/run`, removed on drop.
pub struct RealRecords(pub Vec<String>);

impl Drop for RealRecords {
    fn drop(&mut self) {
        for id in &self.0 {
            let _ = Store::new(RUN_DIR).remove(id);
        }
    }
}

pub fn pilotbox(args: &[&str]) -> Output {
    Command::new(PILOTBOX).args(args).output().unwrap()
}

/// A root-owned setuid copy of `pilotbox` in a directory every uid can traverse.
pub struct SetuidCopy {
    dir: PathBuf,
    pub bin: PathBuf,
}

impl SetuidCopy {
    pub fn new(name: &str) -> SetuidCopy {
        let dir = PathBuf::from(format!(
            "/var/lib/pilotbox-tests/bin-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(
            "/var/lib/pilotbox-tests",
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("pilotbox");
        exec_file::install_executable(Path::new(PILOTBOX), &bin, 0o4755);
        SetuidCopy { dir, bin }
    }

    /// Run the setuid copy as `uid` (real, effective and saved; no groups), via setpriv.
    pub fn run_as(&self, uid: u32, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args([
                "--reuid",
                &uid.to_string(),
                "--regid",
                &uid.to_string(),
                "--clear-groups",
            ])
            .arg(&self.bin)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for SetuidCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn text(o: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}
