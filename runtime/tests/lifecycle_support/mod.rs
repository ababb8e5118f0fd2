//! Fixtures for the lifecycle tests: a scratch state dir, writing a state record for a real
//! running engine payload (as the launcher would), a setuid-root copy of `pilotbox`, running it
//! as another uid, and a minimal test CA (openssl + grid-proxy-init, after
//! policy/tests/support's `Pki`). Everything is removed on drop.
#![allow(dead_code)]

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
        cred_not_after: Some("2026-01-02T00:00:00Z".into()),
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
        let d = PathBuf::from(format!("/var/lib/pilotbox-tests/state-{name}-{}", std::process::id()));
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
        let dir = PathBuf::from(format!("/var/lib/pilotbox-tests/bin-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions("/var/lib/pilotbox-tests", std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("pilotbox");
        std::fs::copy(PILOTBOX, &bin).unwrap();
        std::os::unix::fs::chown(&bin, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o4755)).unwrap();
        SetuidCopy { dir, bin }
    }

    /// Run the setuid copy as `uid` (real, effective and saved; no groups), via setpriv.
    pub fn run_as(&self, uid: u32, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args(["--reuid", &uid.to_string(), "--regid", &uid.to_string(), "--clear-groups"])
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
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
}

fn openssl() -> Command {
    let mut c = Command::new("openssl");
    c.env("OPENSSL_CONF", "/dev/null");
    c
}

/// A throwaway CA with an IGTF-style trust dir, user certificates and grid-proxy-init proxies.
pub struct Pki {
    pub tmp: tempfile::TempDir,
    pub ca_dir: PathBuf,
    pub voms_dir: PathBuf,
    ca_cert: PathBuf,
    ca_key: PathBuf,
    serial: std::cell::Cell<u32>,
}

impl Pki {
    pub fn new() -> Pki {
        let tmp = tempfile::Builder::new().prefix("pilotbox-lc-pki-").tempdir().unwrap();
        let root = tmp.path();
        let ca_dir = root.join("certificates");
        let voms_dir = root.join("vomsdir");
        std::fs::create_dir_all(&ca_dir).unwrap();
        std::fs::create_dir_all(&voms_dir).unwrap();
        let (ca_cert, ca_key) = (root.join("ca.pem"), root.join("ca.key"));
        run(openssl().args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"]).arg(&ca_key)
            .arg("-out").arg(&ca_cert)
            .args(["-subj", "/DC=org/DC=example/CN=Test CA", "-days", "30",
                   "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
        let hash = String::from_utf8(openssl().args(["x509", "-noout", "-subject_hash", "-in"]).arg(&ca_cert).output().unwrap().stdout).unwrap();
        std::fs::copy(&ca_cert, ca_dir.join(format!("{}.0", hash.trim()))).unwrap();
        Pki { tmp, ca_dir, voms_dir, ca_cert, ca_key, serial: std::cell::Cell::new(0x100) }
    }

    /// A user certificate and key for `/DC=org/DC=example/CN=<cn>`; returns (cert, key, dn).
    pub fn user(&self, cn: &str) -> (PathBuf, PathBuf, String) {
        let dn = format!("/DC=org/DC=example/CN={cn}");
        let d = self.tmp.path();
        let (cert, key, csr, ext) = (d.join(format!("{cn}.pem")), d.join(format!("{cn}.key")), d.join(format!("{cn}.csr")), d.join("user.ext"));
        std::fs::write(&ext, "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n").unwrap();
        run(openssl().args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout"]).arg(&key).arg("-out").arg(&csr).args(["-subj", &dn]));
        let s = self.serial.get() + 1;
        self.serial.set(s);
        run(openssl().args(["x509", "-req", "-days", "10", "-sha256", "-in"]).arg(&csr).arg("-CA").arg(&self.ca_cert)
            .arg("-CAkey").arg(&self.ca_key).args(["-set_serial", &s.to_string(), "-extfile"]).arg(&ext).arg("-out").arg(&cert));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        (cert, key, dn)
    }

    /// `grid-proxy-init -rfc` for the user; the file is 0600 and owned by us (root).
    pub fn proxy(&self, user: &(PathBuf, PathBuf, String), name: &str) -> PathBuf {
        let out = self.tmp.path().join(name);
        run(Command::new("grid-proxy-init").env("X509_CERT_DIR", &self.ca_dir)
            .args(["-q", "-rfc", "-valid", "2:00", "-cert"]).arg(&user.0).arg("-key").arg(&user.1).arg("-out").arg(&out));
        out
    }
}
