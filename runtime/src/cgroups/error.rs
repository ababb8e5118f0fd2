//! The one error type of the cgroup layer. Every variant names the cgroupfs file (or directory)
//! and the operation, because "Device or resource busy" alone is useless to a site admin.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong in the cgroup layer, naming the file and the operation.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A read, mkdir, rmdir, open or stat of a cgroupfs path failed.
    #[error("cgroup: cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing a value into a cgroupfs control file failed (the kernel rejected it).
    #[error("cgroup: writing {value:?} to {path} failed: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    /// A value written through `cgroups-rs` was rejected.
    #[error("cgroup: {op} in {path} failed: {source}")]
    Library {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: cgroups_rs::fs::error::Error,
    },
    /// A control file did not have the format the kernel documents.
    #[error("cgroup: unexpected content in {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    /// No usable cgroup hierarchy (or a required controller is missing): a site error.
    #[error("cgroup: site error: {0}")]
    Unsupported(String),
    /// A cgroup path that is not absolute, contains `..`, or escapes its hierarchy.
    #[error("cgroup: invalid cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// An OCI resource value that cannot be expressed (negative limit, bad swap, ...).
    #[error("cgroup: invalid resource {what}: {reason}")]
    InvalidResource { what: &'static str, reason: String },
    /// The cgroup does not exist (in the named hierarchy directory).
    #[error("cgroup: {0} does not exist")]
    NotFound(PathBuf),
    /// An operation that must converge (kill until empty, freeze) did not within its bound.
    #[error("cgroup: {op} of {path} did not complete within {timeout:?}: {detail}")]
    Timeout {
        op: &'static str,
        path: PathBuf,
        timeout: Duration,
        detail: String,
    },
    /// Sending a signal to a member process failed for a reason other than "already gone".
    #[error("cgroup: kill({pid}, {signal}) failed: {source}")]
    Signal {
        pid: i32,
        signal: nix::sys::signal::Signal,
        #[source]
        source: nix::Error,
    },
    /// Placement is impossible without writing outside the delegated subtree: a site error
    /// (exit class 123), the admin must delegate a subtree or configure a cgroup root.
    #[error("cgroup: site error: cannot place payload: {0}")]
    Placement(String),
}

impl CgroupError {
    /// True when the cgroup itself went away under us (its directory removed: ENOENT by path,
    /// ENODEV through a file opened before): for a kill or a wait-until-empty that is success —
    /// the supervisor removes the cgroup as soon as the payload's last process is gone.
    pub fn is_gone(&self) -> bool {
        match self {
            CgroupError::NotFound(_) => true,
            CgroupError::Io { source, .. } | CgroupError::Write { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::ENOENT) | Some(libc::ENODEV)
            ),
            _ => false,
        }
    }

    /// True when the cause is the installation (no cgroup access, missing controllers, no
    /// delegation), i.e. the launcher should report the `site_error` outcome (exit 123).
    pub fn is_site_error(&self) -> bool {
        match self {
            CgroupError::Unsupported(_) | CgroupError::Placement(_) => true,
            CgroupError::Io { source, .. } | CgroupError::Write { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
            ),
            _ => false,
        }
    }
}

/// Shorthand used throughout the module.
pub type Result<T> = std::result::Result<T, CgroupError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_cgroup_is_gone_other_failures_are_not() {
        let io = |errno| CgroupError::Io {
            op: "read",
            path: "/sys/fs/cgroup/x/cgroup.procs".into(),
            source: std::io::Error::from_raw_os_error(errno),
        };
        let write = |errno| CgroupError::Write {
            path: "/sys/fs/cgroup/freezer/x/freezer.state".into(),
            value: "THAWED".into(),
            source: std::io::Error::from_raw_os_error(errno),
        };
        assert!(io(libc::ENOENT).is_gone());
        assert!(write(libc::ENOENT).is_gone());
        assert!(write(libc::ENODEV).is_gone());
        assert!(CgroupError::NotFound("/x".into()).is_gone());
        assert!(!io(libc::EACCES).is_gone());
        assert!(!write(libc::EBUSY).is_gone());
        assert!(!CgroupError::Unsupported("no freezer".into()).is_gone());
    }
}
