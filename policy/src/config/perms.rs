//! Who could have written the policy file? Only the trusted owner (root), or pilotbox refuses.
//!
//! The same rule OpenSSH applies to `authorized_keys` (`secure_filename()` in `auth.c`) and
//! sudo to `sudoers`: the file and every directory above it must be owned by the trusted uid
//! and not writable by group or others. Otherwise whoever can write there (or rename entries
//! of a writable directory) can rewrite the bans and the mapping of a setuid-root program.
//! No exception for sticky directories such as `/tmp`: docs/design.md asks for root-owned,
//! non-writable directories all the way up, and a policy under `/tmp` is a mistake anyway.
//!
//! Symbolic links: the directories that hold each link (as written) are checked with `lstat`,
//! then the resolved path and all its ancestors with `stat`, so neither the link nor its
//! target can be swapped by someone else.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a path is not trustworthy. Each message names the path and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermError {
    #[error("{path}: cannot check permissions: {reason}")]
    Stat { path: PathBuf, reason: String },
    #[error("{path} is owned by uid {owner}, must be owned by uid {trusted} (fix: chown {trusted} {path})")]
    Owner {
        path: PathBuf,
        owner: u32,
        trusted: u32,
    },
    #[error("{path} is {who}-writable (mode {mode:04o}) (fix: chmod go-w {path})")]
    Writable {
        path: PathBuf,
        mode: u32,
        who: &'static str,
    },
    #[error("{path} is not a regular file (fix: make it a plain file)")]
    NotAFile { path: PathBuf },
}

fn check_one(path: &Path, md: &std::fs::Metadata, trusted_uid: u32) -> Result<(), PermError> {
    if md.uid() != trusted_uid {
        return Err(PermError::Owner {
            path: path.into(),
            owner: md.uid(),
            trusted: trusted_uid,
        });
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(PermError::Writable {
            path: path.into(),
            mode,
            who: "world",
        });
    }
    if mode & 0o020 != 0 {
        return Err(PermError::Writable {
            path: path.into(),
            mode,
            who: "group",
        });
    }
    Ok(())
}

fn stat(path: &Path, follow: bool) -> Result<std::fs::Metadata, PermError> {
    let r = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    };
    r.map_err(|e| PermError::Stat {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Check that only `trusted_uid` can have written `file`: it is a regular file, and it and
/// every ancestor directory are owned by `trusted_uid` and neither group- nor world-writable.
pub fn check_trusted_file(file: &Path, trusted_uid: u32) -> Result<(), PermError> {
    let abs = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| PermError::Stat {
                path: file.into(),
                reason: e.to_string(),
            })?
            .join(file)
    };
    // Directories holding the path as written (they hold any symlink we pass through).
    for dir in abs.ancestors().skip(1) {
        check_one(dir, &stat(dir, true)?, trusted_uid)?;
    }
    let real = std::fs::canonicalize(&abs).map_err(|e| PermError::Stat {
        path: abs.clone(),
        reason: e.to_string(),
    })?;
    let md = stat(&real, false)?;
    if !md.is_file() {
        return Err(PermError::NotAFile { path: real });
    }
    check_one(&real, &md, trusted_uid)?;
    for dir in real.ancestors().skip(1) {
        check_one(dir, &stat(dir, false)?, trusted_uid)?;
    }
    Ok(())
}
