//! Typed errors of the seccomp layer.

use std::path::PathBuf;

use nix::errno::Errno;

/// Everything that can go wrong while building, caching or loading a seccomp filter.
///
/// Variants used on the `load` path (after `fork`, before `execve`) carry only plain data, so that
/// constructing them never allocates.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile asks for something this runtime does not implement (e.g. `SCMP_ACT_NOTIFY`,
    /// which needs a seccomp agent listening on a socket).
    #[error("seccomp profile: unsupported {what}: {value}")]
    Unsupported { what: &'static str, value: String },

    /// The profile is self-contradictory or out of range (e.g. an argument index above 5, an
    /// `errnoRet` on an `SCMP_ACT_ALLOW` rule).
    #[error("seccomp profile is invalid: {0}")]
    InvalidProfile(String),

    /// libseccomp refused an operation (building the context, adding a rule, exporting BPF).
    #[error("libseccomp failed to {op}: {source}")]
    Libseccomp {
        op: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    /// A byte string is not a valid classic-BPF program (empty, not a whole number of
    /// 8-byte `sock_filter` instructions, or longer than the kernel's `BPF_MAXINSNS`).
    #[error("not a valid seccomp BPF program: {0}")]
    InvalidBpf(&'static str),

    /// The cache directory or a cache file could be abused by someone else (not owned by the
    /// effective uid, group/world-writable, not a regular file/directory, a symlink): a planted
    /// cache file would be a sandbox bypass, so it is refused rather than used or overwritten.
    #[error("unsafe seccomp cache {path}: {why}")]
    UnsafeCache { path: PathBuf, why: String },

    /// An I/O error on the cache directory or a cache file.
    #[error("seccomp cache {path}: {op}: {source}")]
    CacheIo {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: Errno,
    },

    /// `load` was called without `no_new_privs`: the kernel would refuse an unprivileged filter,
    /// and a privileged one would outlive a setuid exec. The engine must set it first.
    #[error("refusing to load the seccomp filter: no_new_privs is not set (prctl PR_SET_NO_NEW_PRIVS first)")]
    NoNewPrivs,

    /// `prctl(PR_GET_NO_NEW_PRIVS)` itself failed.
    #[error("prctl(PR_GET_NO_NEW_PRIVS) failed: {0}")]
    GetNoNewPrivs(Errno),

    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed.
    #[error("seccomp(SECCOMP_SET_MODE_FILTER) failed: {0}")]
    Load(Errno),

    /// With `SECCOMP_FILTER_FLAG_TSYNC`, another thread could not be synchronised to the filter.
    #[error("seccomp TSYNC failed: thread {0} cannot be synchronised to the new filter")]
    TsyncFailed(i64),
}

impl SeccompError {
    pub(crate) fn libseccomp(
        op: impl Into<String>,
        source: libseccomp::error::SeccompError,
    ) -> Self {
        SeccompError::Libseccomp {
            op: op.into(),
            source,
        }
    }
}
