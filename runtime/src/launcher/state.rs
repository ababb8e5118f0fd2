//! The running-payload record: `/var/lib/pilotbox/run/<id>/state.json` (docs/launcher-design.md
//! "State record").
//!
//! `pilotbox run` writes it before the work-dir hand-over and again once the sandbox is up
//! (atomically: a temp file of a unique name in the same directory, fsync, `rename(2)`), and
//! removes the whole per-payload directory at the end. Read-modify-write updates (`renew`, the
//! launcher's on-started hook, `gc`) hold the per-record lock ([`Store::lock`]), so none of them
//! loses another's change. The
//! lifecycle commands (`ps`, `status`, `kill`, `suspend`, `resume`, `renew`) and `gc` read it.
//! Nothing in it is trusted on its own: a reader checks that `supervisor_pid` still runs with
//! `supervisor_start` as its start time (`/proc/<pid>/stat` field 22) before acting on it
//! ([`Record::supervisor_alive`]), so a recycled pid is never mistaken for our supervisor.
//!
//! Directory and file modes: `/var/lib/pilotbox/run` root 0711 (a pilot may traverse to its
//! own `cred/` only through the sandbox bind, never list the payloads); `state.json` root 0600.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where every per-payload directory lives (overridable by tests of this module only).
pub const RUN_DIR: &str = "/var/lib/pilotbox/run";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("payload id {0:?} is not valid: 1-128 characters of [A-Za-z0-9._-], not starting with '.', not 'pilot'")]
    BadId(String),
    #[error("state record {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("state record {path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("no running payload with id {0}")]
    NotFound(String),
}

fn io(path: &Path, e: impl std::fmt::Display) -> StateError {
    StateError::Io {
        path: path.into(),
        reason: e.to_string(),
    }
}

/// How the work directory was made usable by the pool uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handover {
    /// No `--workdir`.
    None,
    /// An idmapped bind mount (pilot uid ↔ pool uid): nothing on disk changed.
    Idmap,
    /// Ownership of the work dir tree was given to the pool uid; `gc`/the end gives it back to
    /// `pilot_uid` (see [`crate::launcher::prepare`]).
    Chown,
}

/// One running payload. Field names are the contract of docs/launcher-design.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pilot_uid: u32,
    pub pilot_gid: u32,
    pub supervisor_pid: i32,
    /// `/proc/<supervisor_pid>/stat` starttime (clock ticks since boot).
    pub supervisor_start: u64,
    /// Host pid of the sandbox's init (pid 1 inside).
    pub init_pid: i32,
    pub account: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub dn: String,
    pub issuer_dn: String,
    pub vo: Option<String>,
    pub fqans: Vec<String>,
    /// The pool the account came from (None: fixed mapping).
    pub pool: Option<String>,
    /// Normalised lease identity (DN + primary FQAN), for `renew` and `gc`.
    pub lease_key: Option<String>,
    pub cgroup: Option<String>,
    pub workdir: Option<PathBuf>,
    pub workdir_handover: Handover,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339: notAfter of the proxy copy in the sandbox.
    pub cred_not_after: Option<String>,
    /// The wall-time limit the supervisor enforces (seconds), so `gc` can enforce it too when
    /// the supervisor cannot (stopped, frozen). Absent in records of older versions and of runs
    /// without a limit: `gc` then checks only `cred_not_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walltime_s: Option<u64>,
    /// The CPU limit (`--cpus`), for the APEL `Processors` of the `end` record `gc` writes
    /// for a lost supervisor. Absent in older records (then 1, as `pilotbox run` writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Set (RFC 3339) by `gc` once it wrote the `end` audit record of a run whose supervisor
    /// was lost, so a `gc` that has to retry the rest of the cleanup does not write a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_audited: Option<String>,
    /// Only in records of `pilotbox-nosuid` runs (absent, and not serialized, in `pilotbox`'s:
    /// its format is unchanged). See [`NosuidRun`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nosuid: Option<NosuidRun>,
}

/// What a `pilotbox-nosuid` run records besides the common fields (`crate::nosuid::state`):
/// there `account`/`uid`/`gid` are the caller's own (no identity switch), so the account the
/// policy *would* have mapped to is kept here, with what the lifecycle commands need to act
/// without a cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NosuidRun {
    /// The account and uid the site policy would have mapped the credential to.
    pub would_map_account: String,
    pub would_map_uid: u32,
    /// `/proc/<init_pid>/stat` starttime: without a cgroup, `kill` signals init (the whole pid
    /// namespace dies with it), and only if it is still this process. None until it runs.
    pub init_start: Option<u64>,
    /// The private `/tmp/pilotbox-nosuid.<random>/` holding the proxy copy the sandbox binds
    /// (`renew` replaces the file in it, `gc` removes it).
    pub cred_dir: PathBuf,
}

impl Record {
    /// Whether the recorded supervisor still runs (same pid *and* same start time).
    pub fn supervisor_alive(&self) -> bool {
        crate::lifecycle::procs::is_same_process(self.supervisor_pid, self.supervisor_start)
    }

    /// The primary FQAN (the first of the AC), if the payload was mapped with VOMS attributes.
    pub fn primary_fqan(&self) -> Option<&str> {
        self.fqans.first().map(String::as_str)
    }

    /// `started` parsed (None if the launcher wrote something that is not RFC 3339).
    pub fn started_at(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.started, &Rfc3339).ok()
    }

    /// `cred_not_after` parsed; None when not recorded or not RFC 3339.
    pub fn cred_not_after_at(&self) -> Option<OffsetDateTime> {
        self.cred_not_after
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
    }

    /// Record a new notAfter of the sandbox's proxy copy (`renew`, and the launch itself).
    pub fn set_cred_not_after(&mut self, t: OffsetDateTime) {
        self.cred_not_after = t.format(&Rfc3339).ok();
    }
}

/// The per-record lock ([`Store::lock`]); released on drop.
#[derive(Debug)]
pub struct RecordLock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

/// Records are small; anything bigger is not ours.
const MAX_RECORD: u64 = 64 * 1024;

/// A payload id is one path component: the cgroup placement's rule (1-128 of `[A-Za-z0-9._-]`,
/// not `pilot`) and, as the lifecycle commands required, no leading `.` (which also excludes
/// `.` and `..`, and hidden names). Ids come from the caller's command line, so this is what
/// keeps them from walking out of the state dir. `check-…` names the probe cgroups of
/// `pilotbox check`, which `gc` sweeps as soon as their check is gone: a payload must never be
/// mistaken for one.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && !id.starts_with("check-")
        && id != "pilot"
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadId(id.into()))
    }
}

/// The state store: a root directory holding one `<id>/` per payload.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            root: RUN_DIR.into(),
        }
    }
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// `<root>/<id>` (the id validated).
    pub fn dir(&self, id: &str) -> Result<PathBuf, StateError> {
        validate_id(id)?;
        Ok(self.root.join(id))
    }

    fn file(&self, id: &str) -> Result<PathBuf, StateError> {
        Ok(self.dir(id)?.join("state.json"))
    }

    /// Create `<root>` (0711) and `<root>/<id>` (0711); fails if the id is already taken, so two
    /// runs can never share a directory.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf, StateError> {
        let dir = self.dir(id)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(|e| io(&self.root, e))?;
        std::fs::DirBuilder::new().mode(0o711).create(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => io(
                &dir,
                "a payload with this id is already running (or was not cleaned up: run `pilotbox gc`)",
            ),
            _ => io(&dir, e),
        })?;
        Ok(dir)
    }

    /// Write the record atomically and durably: temp file (0600) in the same dir, fsync,
    /// rename over. Durable because `gc` needs the record after a crash (to give a handed-over
    /// work dir back to the pilot).
    pub fn write(&self, rec: &Record) -> Result<(), StateError> {
        self.write_inner(rec, true)
    }

    /// [`Store::write`] without the fsync, for updates that mean nothing after a crash (the
    /// pid of a running init: after a reboot no payload runs). Still atomic (temp file +
    /// rename): readers see the old record or the new one. Saves an fsync per launch
    /// (1–3 ms on the bench host, docs/performance.md).
    pub fn update(&self, rec: &Record) -> Result<(), StateError> {
        self.write_inner(rec, false)
    }

    /// The temp file is `state.json.<pid>.<n>.tmp`, created `O_EXCL`: concurrent writers
    /// (several `renew`s, the launcher, `gc`) each rename their own complete file over the
    /// record. With one shared temp name, one writer's rename took the file another was still
    /// writing, whose own rename then failed with ENOENT (issue 11 item 7: 48 of 120 parallel
    /// renews failed after replacing the credential).
    fn write_inner(&self, rec: &Record, durable: bool) -> Result<(), StateError> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let path = self.file(&rec.id)?;
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("json.{}.{n}.tmp", std::process::id()));
        let text = serde_json::to_vec_pretty(rec).map_err(|e| io(&path, e))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| io(&tmp, e))?;
        let done = f
            .write_all(&text)
            .and_then(|_| if durable { f.sync_all() } else { Ok(()) })
            .map_err(|e| io(&tmp, e))
            .and_then(|_| std::fs::rename(&tmp, &path).map_err(|e| io(&path, e)));
        if done.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        done
    }

    /// Take the per-record lock of `id`: an exclusive `flock(2)` on its directory, held until
    /// the guard is dropped (or the process dies: the kernel releases it, so a killed holder
    /// never wedges the record). Every read-modify-write of a record takes it — `renew`, the
    /// launcher's on-started hook, `gc` — and re-reads the record under it. A directory fd
    /// rather than a lock file: nothing to create or clean up, and `gc`'s removal of the
    /// directory needs no extra step (a waiter then finds no record).
    pub fn lock(&self, id: &str) -> Result<RecordLock, StateError> {
        self.lock_within(id, None)
    }

    /// [`Store::lock`], giving up after `wait` (None: wait as long as it takes). For `gc` as
    /// root: the holder may be a process the pilot can stop (its own `pilotbox renew` runs
    /// with the pilot's real uid), and one stopped holder must not stall `gc` for every record.
    pub fn lock_within(
        &self,
        id: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<RecordLock, StateError> {
        use nix::fcntl::{Flock, FlockArg};
        let dir = self.dir(id)?;
        let fd = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&dir)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.into()))
            }
            Err(e) => return Err(io(&dir, e)),
        };
        let Some(wait) = wait else {
            return Flock::lock(fd, FlockArg::LockExclusive)
                .map(RecordLock)
                .map_err(|(_, e)| io(&dir, e));
        };
        let deadline = std::time::Instant::now() + wait;
        let mut fd = fd;
        loop {
            match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Ok(RecordLock(l)),
                Err((f, nix::errno::Errno::EWOULDBLOCK))
                    if std::time::Instant::now() < deadline =>
                {
                    fd = f;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(io(&dir, format!("locked by another process for {wait:?}")))
                }
                Err((_, e)) => return Err(io(&dir, e)),
            }
        }
    }

    /// The record of `id`.
    pub fn read(&self, id: &str) -> Result<Record, StateError> {
        use std::io::Read;
        let path = self.file(id)?;
        // O_NOFOLLOW: the record is root's, a symlink in its place is not a record.
        let f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.into()))
            }
            Err(e) => return Err(io(&path, e)),
        };
        let mut text = Vec::new();
        f.take(MAX_RECORD + 1)
            .read_to_end(&mut text)
            .map_err(|e| io(&path, e))?;
        if text.len() as u64 > MAX_RECORD {
            return Err(StateError::Malformed {
                path,
                reason: format!("larger than {MAX_RECORD} bytes"),
            });
        }
        let rec: Record = serde_json::from_slice(&text).map_err(|e| StateError::Malformed {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if rec.id != id {
            return Err(StateError::Malformed {
                path,
                reason: format!("records id {:?}", rec.id),
            });
        }
        Ok(rec)
    }

    /// Every readable record, sorted by id. Directories without a record (a run still starting,
    /// or one that died before writing it) are listed in the second vector for `gc`, with
    /// malformed records.
    pub fn read_all(&self) -> Result<(Vec<Record>, Vec<(String, StateError)>), StateError> {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((ok, bad)),
            Err(e) => return Err(io(&self.root, e)),
        };
        for e in entries.flatten() {
            let Some(id) = e.file_name().to_str().map(String::from) else {
                continue;
            };
            if validate_id(&id).is_err() || !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            match self.read(&id) {
                Ok(r) => ok.push(r),
                Err(err) => bad.push((id, err)),
            }
        }
        ok.sort_by(|a, b| a.id.cmp(&b.id));
        bad.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((ok, bad))
    }

    /// Remove `<root>/<id>` and everything in it (the record, the proxy copy).
    pub fn remove(&self, id: &str) -> Result<(), StateError> {
        let dir = self.dir(id)?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> Record {
        Record {
            id: id.into(),
            pilot_uid: 1000,
            pilot_gid: 1000,
            supervisor_pid: std::process::id() as i32,
            supervisor_start: crate::lifecycle::procs::start_time(std::process::id() as i32)
                .unwrap(),
            init_pid: 0,
            account: "testvo007".into(),
            uid: 30007,
            gid: 30000,
            groups: vec![30000],
            dn: "/DC=org/CN=A".into(),
            issuer_dn: "/DC=org/CN=CA".into(),
            vo: Some("testvo".into()),
            fqans: vec!["/testvo/Role=NULL/Capability=NULL".into()],
            pool: Some("testvo".into()),
            lease_key: None,
            cgroup: Some("/pilotbox/x".into()),
            workdir: None,
            workdir_handover: Handover::None,
            started: "2026-01-01T00:00:00Z".into(),
            cred_not_after: None,
            walltime_s: None,
            cpus: None,
            end_audited: None,
            nosuid: None,
        }
    }

    #[test]
    fn write_read_all_remove_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::new(t.path().join("run"));
        assert!(
            s.read_all().unwrap().0.is_empty(),
            "missing root: nothing runs"
        );
        s.create_dir("b").unwrap();
        s.create_dir("a").unwrap();
        assert!(s.create_dir("a").is_err(), "an id is never shared");
        s.write(&rec("a")).unwrap();
        s.write(&rec("b")).unwrap();
        std::fs::create_dir(s.root.join("starting")).unwrap();
        let (ok, bad) = s.read_all().unwrap();
        assert_eq!(
            ok.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(bad.len(), 1);
        assert!(matches!(bad[0].1, StateError::NotFound(_)));
        assert_eq!(s.read("a").unwrap(), rec("a"));
        let mut r = s.read("a").unwrap();
        assert_eq!(r.primary_fqan(), Some("/testvo/Role=NULL/Capability=NULL"));
        assert_eq!(r.started_at().unwrap().unix_timestamp(), 1767225600);
        r.set_cred_not_after(OffsetDateTime::from_unix_timestamp(1767229200).unwrap());
        assert_eq!(r.cred_not_after.as_deref(), Some("2026-01-01T01:00:00Z"));
        assert_eq!(r.cred_not_after_at().unwrap().unix_timestamp(), 1767229200);
        assert!(s.read("a").unwrap().supervisor_alive());
        s.remove("a").unwrap();
        assert!(matches!(s.read("a"), Err(StateError::NotFound(_))));
        s.remove("a").unwrap();
    }

    #[test]
    fn setuid_records_keep_their_format_and_nosuid_ones_round_trip() {
        let v = serde_json::to_value(rec("a")).unwrap();
        assert!(
            v.get("nosuid").is_none(),
            "no new key in pilotbox's records"
        );
        let mut r: Record = serde_json::from_value(v).unwrap();
        assert_eq!(r.nosuid, None, "an old record reads without the field");
        r.nosuid = Some(NosuidRun {
            would_map_account: "testvo007".into(),
            would_map_uid: 30007,
            init_start: Some(42),
            cred_dir: "/tmp/pilotbox-nosuid.x".into(),
        });
        let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    /// Issue 11 item 7: parallel writers of one record (each `renew` is its own process; here
    /// threads, which share the temp-name problem) all succeed, and read-modify-write under
    /// the lock loses no update.
    #[test]
    fn parallel_writers_all_succeed_and_locked_updates_are_never_lost() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::new(t.path().join("run"));
        s.create_dir("a").unwrap();
        s.write(&rec("a")).unwrap();
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(|| {
                    for _ in 0..25 {
                        let _l = s.lock("a").unwrap();
                        let mut r = s.read("a").unwrap();
                        r.init_pid += 1;
                        s.update(&r).unwrap();
                    }
                });
            }
            for _ in 0..4 {
                sc.spawn(|| {
                    for _ in 0..25 {
                        s.write(&rec("a"))
                            .map(|_| ())
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                });
            }
        });
        // The unlocked writers reset init_pid to 0 now and then; only the locked increments
        // are counted: read under the lock, never a torn or missing record.
        let r = s.read("a").unwrap();
        assert!(r.init_pid <= 200, "{}", r.init_pid);
        let left: Vec<_> = std::fs::read_dir(s.dir("a").unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["state.json"], "no temp file left behind");
        // Locked writers alone: every update counts.
        s.write(&rec("a")).unwrap();
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(|| {
                    for _ in 0..25 {
                        let _l = s.lock("a").unwrap();
                        let mut r = s.read("a").unwrap();
                        r.init_pid += 1;
                        s.update(&r).unwrap();
                    }
                });
            }
        });
        assert_eq!(s.read("a").unwrap().init_pid, 200);
        assert!(matches!(s.lock("gone"), Err(StateError::NotFound(_))));
        // A held lock: a bounded wait gives up, and succeeds once it is released.
        let held = s.lock("a").unwrap();
        let short = Some(std::time::Duration::from_millis(50));
        assert!(matches!(
            s.lock_within("a", short),
            Err(StateError::Io { .. })
        ));
        drop(held);
        s.lock_within("a", short).unwrap();
    }

    #[test]
    fn bad_ids_and_stale_pids_are_refused() {
        let s = Store::new("/nonexistent");
        let long = "x".repeat(129);
        for id in [
            "",
            ".",
            "..",
            "../x",
            ".hidden",
            "a/b",
            "a\0b",
            "pilot",
            "x y",
            "check-1-2",
            &long,
        ] {
            assert!(matches!(s.dir(id), Err(StateError::BadId(_))), "{id:?}");
        }
        for id in ["p-42", "job_1.2", "A", &"x".repeat(128)] {
            validate_id(id).unwrap();
        }
        let mut r = rec("z");
        r.supervisor_start += 1;
        assert!(
            !r.supervisor_alive(),
            "same pid, other start time: not our supervisor"
        );
    }
}
