//! [`CompiledFilter`]: a classic-BPF seccomp program and the one `unsafe` system call that loads it.

use nix::errno::Errno;

use super::SeccompError;

/// Size of one classic-BPF instruction, `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }`.
pub(crate) const SOCK_FILTER_SIZE: usize = 8;

/// The kernel's limit on one seccomp program (`BPF_MAXINSNS`, include/uapi/linux/bpf_common.h).
pub(crate) const BPF_MAXINSNS: usize = 4096;

/// `SECCOMP_FILTER_FLAG_*` bits this runtime passes through (include/uapi/linux/seccomp.h).
pub(crate) const FLAG_TSYNC: u32 = 1;
pub(crate) const FLAG_LOG: u32 = 2;
pub(crate) const FLAG_SPEC_ALLOW: u32 = 4;
const KNOWN_FLAGS: u32 = FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW;

/// A compiled classic-BPF seccomp program (the raw `sock_filter` array in native byte order, as
/// `seccomp_export_bpf(3)` writes it) plus the `SECCOMP_FILTER_FLAG_*` bits to load it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledFilter {
    bpf: Vec<u8>,
    flags: u32,
}

impl CompiledFilter {
    /// Wraps a raw `sock_filter` array, checking its shape: non-empty, a whole number of 8-byte
    /// instructions, at most `BPF_MAXINSNS`. (The kernel verifies the program itself on load.)
    /// The filter flags are 0; use [`CompiledFilter::with_flags`] to set them.
    #[allow(clippy::manual_is_multiple_of)] // is_multiple_of needs Rust 1.87, the MSRV is 1.85
    pub fn from_bpf_bytes(bpf: Vec<u8>) -> Result<Self, SeccompError> {
        if bpf.is_empty() {
            return Err(SeccompError::InvalidBpf("empty program"));
        }
        if bpf.len() % SOCK_FILTER_SIZE != 0 {
            return Err(SeccompError::InvalidBpf(
                "length is not a multiple of sizeof(struct sock_filter)",
            ));
        }
        if bpf.len() / SOCK_FILTER_SIZE > BPF_MAXINSNS {
            return Err(SeccompError::InvalidBpf("longer than BPF_MAXINSNS"));
        }
        Ok(CompiledFilter { bpf, flags: 0 })
    }

    /// Sets the `SECCOMP_FILTER_FLAG_*` bits used by [`CompiledFilter::load`]
    /// (only TSYNC, LOG and SPEC_ALLOW are accepted).
    pub fn with_flags(mut self, flags: u32) -> Result<Self, SeccompError> {
        if flags & !KNOWN_FLAGS != 0 {
            return Err(SeccompError::Unsupported {
                what: "seccomp filter flag bits",
                value: format!("{:#x}", flags & !KNOWN_FLAGS),
            });
        }
        self.flags = flags;
        Ok(self)
    }

    /// The raw `sock_filter` array.
    pub fn as_bpf_bytes(&self) -> &[u8] {
        &self.bpf
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits this filter is loaded with.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Number of BPF instructions.
    pub fn instructions(&self) -> usize {
        self.bpf.len() / SOCK_FILTER_SIZE
    }

    /// Loads the filter into the calling thread (and, with TSYNC, all its threads).
    ///
    /// Meant for the forked child right before `execve`: it allocates nothing and makes exactly
    /// two system calls, `prctl(PR_GET_NO_NEW_PRIVS)` and `seccomp(SECCOMP_SET_MODE_FILTER)`.
    ///
    /// `no_new_privs` must already be set: seccomp(2) refuses a filter from a process without
    /// CAP_SYS_ADMIN otherwise (a filter could make a later setuid program misbehave), and the
    /// sandbox wants `no_new_privs` anyway. We check it ourselves — even when the caller still
    /// holds CAP_SYS_ADMIN — so the failure names the missing step instead of a bare EACCES.
    ///
    /// TSYNC is not forced: after `fork` the child has one thread, and `execve` kills all other
    /// threads anyway (`de_thread`), so the exec'd payload is fully covered either way. A profile
    /// may still ask for it (`SECCOMP_FILTER_FLAG_TSYNC` in its `flags`).
    #[allow(clippy::manual_is_multiple_of)] // is_multiple_of needs Rust 1.87, the MSRV is 1.85
    pub fn load(&self) -> Result<(), SeccompError> {
        match nix::sys::prctl::get_no_new_privs() {
            Ok(true) => {}
            Ok(false) => return Err(SeccompError::NoNewPrivs),
            Err(e) => return Err(SeccompError::GetNoNewPrivs(e)),
        }
        // Checked at construction; re-checked so the u16 cast below can never truncate.
        let insns = self.bpf.len() / SOCK_FILTER_SIZE;
        if insns == 0 || insns > BPF_MAXINSNS || self.bpf.len() % SOCK_FILTER_SIZE != 0 {
            return Err(SeccompError::InvalidBpf("corrupted program length"));
        }
        match seccomp_set_mode_filter(&self.bpf, insns as u16, self.flags) {
            0 => Ok(()),
            r if r > 0 => Err(SeccompError::TsyncFailed(r)),
            _ => Err(SeccompError::Load(Errno::last())),
        }
    }
}

/// The raw `seccomp(SECCOMP_SET_MODE_FILTER, flags, &sock_fprog)` system call (seccomp(2)).
///
/// Returns the system call's result: 0 on success, -1 with errno set on failure, or with TSYNC a
/// positive thread id that could not be synchronised.
#[allow(unsafe_code)]
fn seccomp_set_mode_filter(bpf: &[u8], insns: u16, flags: u32) -> i64 {
    debug_assert_eq!(bpf.len(), insns as usize * SOCK_FILTER_SIZE);
    let prog = libc::sock_fprog {
        len: insns,
        // The kernel copies `len` instructions from this address with copy_from_user (it never
        // keeps the pointer), so byte alignment is enough and Rust never dereferences it.
        filter: bpf.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` lives on this stack frame for the whole call and points into `bpf`, which
    // holds exactly `insns * 8` initialised bytes (checked by the caller); the kernel only reads
    // through the pointer. The system call takes no other pointers and touches no Rust-owned
    // memory, and it is async-signal-safe (no allocation, no locks), as required after fork.
    unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_programs() {
        assert!(matches!(
            CompiledFilter::from_bpf_bytes(vec![]),
            Err(SeccompError::InvalidBpf(_))
        ));
        assert!(matches!(
            CompiledFilter::from_bpf_bytes(vec![0; 12]),
            Err(SeccompError::InvalidBpf(_))
        ));
        assert!(matches!(
            CompiledFilter::from_bpf_bytes(vec![0; 8 * (BPF_MAXINSNS + 1)]),
            Err(SeccompError::InvalidBpf(_))
        ));
        let f = CompiledFilter::from_bpf_bytes(vec![0; 16]).unwrap();
        assert_eq!(f.instructions(), 2);
        assert!(f.clone().with_flags(FLAG_LOG | FLAG_TSYNC).is_ok());
        assert!(matches!(
            f.with_flags(8), // SECCOMP_FILTER_FLAG_NEW_LISTENER: needs an agent, not supported
            Err(SeccompError::Unsupported { .. })
        ));
    }
}
