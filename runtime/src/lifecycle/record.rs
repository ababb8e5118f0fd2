//! The per-payload state record, `/var/lib/pilotbox/run/<id>/state.json`, exactly as
//! `docs/launcher-design.md` ("State record") fixes it.
//!
//! The launcher owns writing it (once the sandbox is up) and removing it (at the end); the
//! lifecycle commands only read it, and `renew` rewrites it to move `cred_not_after`. Nothing in
//! it is trusted about *processes* without checking that the pids still match their recorded
//! start time ([`super::procs`]): the record is root-written, but a pid may have been recycled.
//!
//! Merge note: when `launcher::state` lands this file should become a re-export of it; the field
//! names and the on-disk layout are the contract both follow.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

use super::LifecycleError;

/// Where running payloads are recorded (DESIGN.md "Files": state under `/var/lib/pilotbox/`).
pub const STATE_DIR: &str = "/var/lib/pilotbox/run";
/// The record's file name inside `<state dir>/<id>/`.
pub const RECORD_FILE: &str = "state.json";
/// Records are small; anything bigger is not ours.
const MAX_RECORD: u64 = 64 * 1024;

/// One running payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    pub id: String,
    /// Real uid of the pilot that launched it: it (and root) may control the payload.
    pub pilot_uid: u32,
    /// The supervising `pilotbox run` process, and its start time (`/proc/<pid>/stat` field 22,
    /// clock ticks since boot) so that a recycled pid is never taken for it.
    pub supervisor_pid: i32,
    pub supervisor_start: u64,
    /// Host pid of the sandbox's init (pid 1 inside).
    pub init_pid: i32,
    pub account: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub groups: Vec<u32>,
    /// End-entity DN (OpenSSL slash form) the payload was mapped with.
    pub dn: String,
    pub issuer_dn: String,
    #[serde(default)]
    pub vo: Option<String>,
    /// Verified FQANs in AC order; the first is the primary FQAN.
    #[serde(default)]
    pub fqans: Vec<String>,
    #[serde(default)]
    pub lease_key: Option<String>,
    /// The payload cgroup path as given to `Cgroup::create` (uniform or v1 per-controller form);
    /// empty when the launcher recorded none (`null`).
    #[serde(default, deserialize_with = "null_as_empty", serialize_with = "empty_as_null")]
    pub cgroup: String,
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    /// How the work dir was handed to the pool uid: `idmap` (nothing to undo) or `chown`
    /// (ownership moved to the pool uid; `gc` gives it back to the pilot).
    #[serde(default)]
    pub workdir_handover: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    /// notAfter of the proxy copy in the sandbox (`null` when the launcher did not record it).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub cred_not_after: Option<OffsetDateTime>,
    /// Fields this module does not interpret (`pilot_gid`, `pool`, …), kept so that rewriting
    /// the record (`renew`) never loses what the launcher wrote.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn empty_as_null<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.serialize_str(v)
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl StateRecord {
    /// The primary FQAN (the first of the AC), if the payload was mapped with VOMS attributes.
    pub fn primary_fqan(&self) -> Option<&str> {
        self.fqans.first().map(String::as_str)
    }
}

/// A payload id as it may appear in a path: `[A-Za-z0-9_.-]{1,64}`, not starting with `.`.
/// The id comes from the caller's command line, so it must never walk out of the state dir.
pub fn validate_id(id: &str) -> Result<(), LifecycleError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(LifecycleError::BadId(id.to_owned()))
    }
}

/// `<state_dir>/<id>`.
pub fn dir_of(state_dir: &Path, id: &str) -> Result<PathBuf, LifecycleError> {
    validate_id(id)?;
    Ok(state_dir.join(id))
}

/// Read the record of payload `id`.
pub fn read(state_dir: &Path, id: &str) -> Result<StateRecord, LifecycleError> {
    let file = dir_of(state_dir, id)?.join(RECORD_FILE);
    let rec = read_file(&file)?;
    if rec.id != id {
        return Err(LifecycleError::Record {
            path: file,
            reason: format!("records id {:?}", rec.id),
        });
    }
    Ok(rec)
}

fn read_file(file: &Path) -> Result<StateRecord, LifecycleError> {
    use std::io::Read;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LifecycleError::NoSuchPayload(
                    file.parent()
                        .and_then(Path::file_name)
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            } else {
                LifecycleError::Io {
                    op: "open",
                    path: file.to_owned(),
                    source: e,
                }
            }
        })?;
    let mut text = String::new();
    f.take(MAX_RECORD)
        .read_to_string(&mut text)
        .map_err(|source| LifecycleError::Io {
            op: "read",
            path: file.to_owned(),
            source,
        })?;
    serde_json::from_str(&text).map_err(|e| LifecycleError::Record {
        path: file.to_owned(),
        reason: e.to_string(),
    })
}

/// Every record under `state_dir` (sorted by id). Directories without a readable record are
/// returned in the second list (a launch in progress, or a launcher that died before writing
/// one): `gc` decides about them by age.
pub fn read_all(state_dir: &Path) -> Result<(Vec<StateRecord>, Vec<PathBuf>), LifecycleError> {
    let entries = match std::fs::read_dir(state_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], vec![])),
        Err(source) => {
            return Err(LifecycleError::Io {
                op: "list",
                path: state_dir.to_owned(),
                source,
            })
        }
    };
    let mut recs = Vec::new();
    let mut bare = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if validate_id(&name).is_err() || !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        match read(state_dir, &name) {
            Ok(r) => recs.push(r),
            Err(e) => {
                tracing::debug!("{name}: {e}");
                bare.push(e_path(state_dir, &name));
            }
        }
    }
    recs.sort_by(|a, b| a.id.cmp(&b.id));
    bare.sort();
    Ok((recs, bare))
}

fn e_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(name)
}

/// Write (or replace) the record atomically: a temporary file in the same directory, fsync,
/// rename. Creates `<state_dir>/<id>/` (0711) if needed; the file is 0600 (root reads it).
pub fn write(state_dir: &Path, rec: &StateRecord) -> Result<(), LifecycleError> {
    let dir = dir_of(state_dir, &rec.id)?;
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| LifecycleError::Io { op, path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&dir)
        .map_err(io("create", &dir))?;
    let tmp = dir.join(format!(".{RECORD_FILE}.{}", std::process::id()));
    let text = serde_json::to_vec(rec).map_err(|e| LifecycleError::Record {
        path: tmp.clone(),
        reason: e.to_string(),
    })?;
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(&text).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    let dest = dir.join(RECORD_FILE);
    std::fs::rename(&tmp, &dest).map_err(io("rename", &dest))
}

/// Remove the state dir of `id` (record, credential copy, everything).
pub fn remove(state_dir: &Path, id: &str) -> Result<(), LifecycleError> {
    let dir = dir_of(state_dir, id)?;
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LifecycleError::Io {
            op: "remove",
            path: dir,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(id: &str) -> StateRecord {
        serde_json::from_str(&format!(
            r#"{{"id": "{id}", "pilot_uid": 1000, "supervisor_pid": 1234, "supervisor_start": 987654,
 "init_pid": 1240, "account": "testvo007", "uid": 30007, "gid": 30000, "groups": [30000],
 "dn": "/DC=org/CN=A", "issuer_dn": "/DC=org/CN=CA", "vo": "testvo", "fqans": ["/testvo/Role=NULL/Capability=NULL"],
 "lease_key": "k", "cgroup": "/pilotbox/{id}", "workdir": "/home/pilot/job1", "workdir_handover": "idmap",
 "started": "2026-11-22T04:00:00Z", "cred_not_after": "2026-11-22T16:00:00Z"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn design_doc_example_parses_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let r = sample("p-1");
        assert_eq!(r.primary_fqan(), Some("/testvo/Role=NULL/Capability=NULL"));
        write(dir.path(), &r).unwrap();
        assert_eq!(read(dir.path(), "p-1").unwrap(), r);
        let (all, bare) = read_all(dir.path()).unwrap();
        assert_eq!(all, vec![r]);
        assert!(bare.is_empty());
        std::fs::create_dir(dir.path().join("p-2")).unwrap();
        assert_eq!(
            read_all(dir.path()).unwrap().1,
            vec![dir.path().join("p-2")]
        );
        remove(dir.path(), "p-1").unwrap();
        assert!(matches!(
            read(dir.path(), "p-1"),
            Err(LifecycleError::NoSuchPayload(_))
        ));
    }

    #[test]
    fn reads_what_the_launcher_writes_and_keeps_its_extra_fields() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::launcher::state::Store::new(dir.path());
        let mut v = serde_json::to_value(sample("p-3")).unwrap();
        v["pilot_gid"] = 1000.into();
        v["pool"] = "testvo".into();
        v["cgroup"] = serde_json::Value::Null;
        v["cred_not_after"] = serde_json::Value::Null;
        v["workdir_handover"] = "none".into();
        let theirs: crate::launcher::state::Record = serde_json::from_value(v).unwrap();
        store.create_dir("p-3").unwrap();
        store.write(&theirs).unwrap();
        let mine = read(dir.path(), "p-3").unwrap();
        assert_eq!((mine.cgroup.as_str(), mine.cred_not_after), ("", None));
        write(dir.path(), &mine).unwrap();
        assert_eq!(store.read("p-3").unwrap(), theirs, "a rewrite loses nothing");
    }

    #[test]
    fn ids_cannot_leave_the_state_dir() {
        for bad in ["", "..", "../x", "a/b", ".hidden", "a\0b", &"x".repeat(65)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["p-42", "job_1.2", "A"] {
            validate_id(good).unwrap();
        }
    }
}
