//! Where `pilotbox-nosuid` keeps the records of its running payloads, and the record of one run.
//!
//! The records are `pilotbox`'s own ([`crate::launcher::state::Record`], one `<id>/state.json`
//! per payload through the same [`Store`]), with the nosuid part in [`NosuidRun`]. They cannot go
//! to `/var/lib/pilotbox/run` (root's), so each caller has a directory of its own:
//!
//! - `/run/user/<uid>/pilotbox-nosuid/` when `/run/user/<uid>` (the caller's runtime directory,
//!   XDG Base Directory spec, made by systemd-logind / pam_systemd) is a real directory owned by
//!   the caller and not group/world-writable;
//! - else `/tmp/pilotbox-nosuid-<uid>/`.
//!
//! Created 0700. An existing one must be a real directory (never a symlink) owned by the caller
//! with mode 0700, or it is refused (site error 123): in `/tmp` another user could have made it
//! first, to read or plant records. `/tmp`'s sticky bit then keeps others from renaming or
//! removing ours, so checking once is enough.
//!
//! Nothing here is a privilege boundary — the caller can write its own records — so every
//! command also checks the record's `pilot_uid` is the caller ([`load`]), and acts on processes
//! only after checking their identity by pid *and* start time.

use crate::launcher::state::{Record, Store};
use crate::lifecycle::LifecycleError;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where the proxy copies of runs live (`/tmp/pilotbox-nosuid.<random>/`, see `launch`).
pub const CRED_DIR_PREFIX: &str = "pilotbox-nosuid.";

fn site(what: &'static str, reason: String) -> LifecycleError {
    LifecycleError::Site { what, reason }
}

/// The caller's record directory (it may not exist yet).
pub fn state_dir(uid: u32) -> PathBuf {
    let runtime_dir = PathBuf::from(format!("/run/user/{uid}"));
    match std::fs::symlink_metadata(&runtime_dir) {
        Ok(m) if m.is_dir() && m.uid() == uid && m.mode() & 0o022 == 0 => {
            runtime_dir.join("pilotbox-nosuid")
        }
        _ => PathBuf::from(format!("/tmp/pilotbox-nosuid-{uid}")),
    }
}

/// An existing record directory must be a real directory owned by `uid`, mode 0700.
pub fn check_dir(dir: &Path, uid: u32) -> Result<(), LifecycleError> {
    let bad = |why: String| {
        site(
            "record directory",
            format!(
                "{}: {why}; it may have been made by someone else: remove it (or have the \
                 admin remove it) and run again",
                dir.display()
            ),
        )
    };
    let m = std::fs::symlink_metadata(dir).map_err(|e| bad(e.to_string()))?;
    if m.file_type().is_symlink() {
        return Err(bad("is a symlink".into()));
    }
    if !m.is_dir() {
        return Err(bad("is not a directory".into()));
    }
    if m.uid() != uid {
        return Err(bad(format!(
            "is owned by uid {}, not by you (uid {uid})",
            m.uid()
        )));
    }
    if m.mode() & 0o7777 != 0o700 {
        return Err(bad(format!(
            "has mode {:04o}, must be 0700 (chmod 700 {})",
            m.mode() & 0o7777,
            dir.display()
        )));
    }
    Ok(())
}

/// The caller's store for `run`: the directory is created (0700) if missing, then checked.
pub fn ensure(uid: u32) -> Result<Store, LifecycleError> {
    let dir = state_dir(uid);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(site("record directory", format!("{}: {e}", dir.display()))),
    }
    check_dir(&dir, uid)?;
    Ok(Store::new(dir))
}

/// The caller's store for the lifecycle commands: None when the directory does not exist
/// (nothing has run), refused when it exists but fails [`check_dir`].
pub fn existing(uid: u32) -> Result<Option<Store>, LifecycleError> {
    let dir = state_dir(uid);
    match std::fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => {
            check_dir(&dir, uid)?;
            Ok(Some(Store::new(dir)))
        }
    }
}

/// The record of `id` if it is the caller's (its `pilot_uid`): the directory is the caller's
/// anyway, but a record naming another pilot was not written by our `run` for this caller.
pub fn load(store: Option<&Store>, uid: u32, id: &str) -> Result<Record, LifecycleError> {
    crate::launcher::state::validate_id(id)?;
    let Some(store) = store else {
        return Err(LifecycleError::NoSuchPayload(id.into()));
    };
    let rec = store.read(id)?;
    if rec.pilot_uid != uid {
        return Err(LifecycleError::NotYours {
            id: rec.id,
            owner: rec.pilot_uid,
        });
    }
    Ok(rec)
}

/// The proxy-copy directory a record names, if it is one `run` makes: `/tmp/pilotbox-nosuid.X`
/// (one component under /tmp), a real directory owned by `uid`. Anything else is refused: `gc`
/// removes it and `renew` writes into it, and the record is only as trustworthy as its writer.
pub fn cred_dir_of(rec: &Record, uid: u32) -> Result<PathBuf, LifecycleError> {
    let bad = |why: String| site("proxy directory", format!("payload {}: {why}", rec.id));
    let dir = rec
        .nosuid
        .as_ref()
        .map(|n| n.cred_dir.clone())
        .ok_or_else(|| bad("the record names no proxy directory".into()))?;
    let name_ok = dir.parent() == Some(Path::new("/tmp"))
        && dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(CRED_DIR_PREFIX))
            .is_some_and(|r| crate::launcher::state::validate_id(r).is_ok());
    if !name_ok {
        return Err(bad(format!(
            "{} is not a pilotbox-nosuid proxy directory",
            dir.display()
        )));
    }
    let m = std::fs::symlink_metadata(&dir).map_err(|e| bad(format!("{}: {e}", dir.display())))?;
    if !m.is_dir() || m.uid() != uid {
        return Err(bad(format!(
            "{} is not a directory owned by uid {uid}",
            dir.display()
        )));
    }
    Ok(dir)
}

/// The record of the payload this process runs: written before the launch (init pid 0: still
/// starting, so `gc` finds a run that dies during setup), completed once the sandbox is up, and
/// removed when it is dropped — on every way out of `run`.
pub struct RunRecord {
    store: Store,
    id: String,
}

impl RunRecord {
    /// Create `<dir>/<id>/` (fails if the id is taken) and write `rec`.
    pub fn create(store: Store, rec: &Record) -> Result<RunRecord, LifecycleError> {
        store.create_dir(&rec.id)?;
        let r = RunRecord {
            store,
            id: rec.id.clone(),
        };
        // Not fsync'd (`Store::update`): after a crash no payload of ours runs, and `gc`
        // recognizes the dead supervisor.
        r.store.update(rec)?;
        Ok(r)
    }

    /// The sandbox is up: record init's host pid and start time.
    pub fn started(&self, init_pid: i32) -> Result<(), LifecycleError> {
        let _lock = self.store.lock(&self.id)?;
        let mut rec = self.store.read(&self.id)?;
        rec.init_pid = init_pid;
        if let Some(n) = rec.nosuid.as_mut() {
            n.init_start = crate::lifecycle::procs::start_time(init_pid);
        }
        Ok(self.store.update(&rec)?)
    }

    /// The credential end as the record has it now (moved by `renew`).
    pub fn cred_not_after(&self) -> Option<SystemTime> {
        self.store
            .read(&self.id)
            .ok()
            .and_then(|r| r.cred_not_after_at())
            .map(SystemTime::from)
    }
}

impl Drop for RunRecord {
    fn drop(&mut self) {
        let _ = self.store.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn uid() -> u32 {
        nix::unistd::getuid().as_raw()
    }

    #[test]
    fn only_a_private_directory_of_the_caller_is_accepted() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("s");
        std::fs::DirBuilder::new().mode(0o700).create(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_dir(&d, uid()).unwrap();
        let e = check_dir(&d, uid() + 1).unwrap_err();
        assert!(e.to_string().contains("not by you"), "{e}");
        assert_eq!(e.class(), policy::Class::SiteError);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_dir(&d, uid())
            .unwrap_err()
            .to_string()
            .contains("0755"));
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(check_dir(&link, uid())
            .unwrap_err()
            .to_string()
            .contains("symlink"));
        let f = t.path().join("f");
        std::fs::write(&f, "").unwrap();
        assert!(check_dir(&f, uid())
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
    }

    #[test]
    fn the_state_dir_is_the_runtime_dir_only_when_it_is_the_callers() {
        // No /run/user/<uid> for an unused uid: the /tmp fallback.
        assert_eq!(
            state_dir(4_000_000_000),
            PathBuf::from("/tmp/pilotbox-nosuid-4000000000")
        );
    }
}
