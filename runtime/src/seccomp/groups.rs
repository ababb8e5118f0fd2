//! The syscall groups of pilotbox's default profile, each with the reason it is allowed or denied.
//!
//! The profile is an **allow-list**: a syscall that is not named here gets ENOSYS (see
//! [`super::profile`] for why ENOSYS). Names are resolved per architecture by libseccomp, so the
//! lists mix x86_64 names with their 32-bit x86 variants (`*32`, `*64`, `*_time64`, `socketcall`,
//! `ipc`, ...); a name that does not exist on an architecture is simply absent from that
//! architecture's part of the filter, and a name unknown to the installed libseccomp is skipped.
//!
//! Written for pilotbox after reading Docker/moby's default profile (profiles/seccomp/
//! default_linux.go) and containers/common's; the grouping and the decisions are our own and are
//! explained per group. The threat model differs from Docker's: the payload never holds any
//! capability in the sandbox's user namespace (Docker containers run as root with a capability
//! set), so capability-gated syscalls are denied here purely as defence in depth, while syscalls an
//! unprivileged process can use for attack surface or cross-payload leaks are what matters.

/// Process lifecycle, identity, scheduling, limits and self-configuration.
/// Identity changes (`set*id`, `setgroups`, `capset`) can only move within what the process
/// already holds: the payload has no CAP_SETUID/CAP_SETGID in any user namespace it did not
/// create itself. `personality` is allowed unrestricted (gdb turns off ASLR for its inferior with
/// it): `no_new_privs` forbids setuid exec, the only place a weakened personality could hurt.
/// `seccomp` and `landlock_*` can only add restrictions (payloads sandbox themselves).
#[rustfmt::skip]
pub(crate) const PROCESS: &[&str] = &[
    "exit", "exit_group", "fork", "vfork", "execve", "execveat", "wait4", "waitid", "waitpid",
    "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal", "restart_syscall", "getpid",
    "getppid", "gettid", "getpgid", "getpgrp", "setpgid", "getsid", "setsid", "getuid", "getuid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32", "getresuid",
    "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32", "setuid", "setuid32",
    "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32", "setresuid",
    "setresuid32", "setresgid", "setresgid32", "setgroups", "setgroups32", "setfsuid",
    "setfsuid32", "setfsgid", "setfsgid32", "capget", "capset", "prctl", "arch_prctl",
    "personality", "set_tid_address", "set_robust_list", "get_robust_list", "rseq",
    "set_thread_area", "get_thread_area", "membarrier", "getrlimit", "ugetrlimit", "setrlimit",
    "prlimit64", "getrusage", "times", "getpriority", "setpriority", "sched_yield",
    "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr", "sched_getparam",
    "sched_setparam", "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
    "sched_get_priority_min", "sched_rr_get_interval", "sched_rr_get_interval_time64", "getcpu",
    "ioprio_get", "ioprio_set", "umask", "uname", "olduname", "sysinfo", "seccomp",
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "lsm_get_self_attr",
    "lsm_list_modules", "uretprobe",
];

/// Signals and timers.
#[rustfmt::skip]
pub(crate) const SIGNALS_AND_TIME: &[&str] = &[
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "sigaction", "signal", "sigprocmask", "sigreturn", "sigpending", "sigsuspend", "sigaltstack",
    "signalfd", "signalfd4", "pause", "alarm", "getitimer", "setitimer", "timer_create",
    "timer_settime", "timer_settime64", "timer_gettime", "timer_gettime64", "timer_getoverrun",
    "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_settime64", "timerfd_gettime",
    "timerfd_gettime64", "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
    "clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "gettimeofday", "time",
];

/// Memory management of the process's own address space. The NUMA calls (`mbind`,
/// `*_mempolicy`, `move_pages`, `migrate_pages`) are allowed, unlike Docker: MPI and OpenMP
/// payloads place memory with libnuma, and acting on another process needs ptrace-level access
/// plus CAP_SYS_NICE, which the payload lacks.
#[rustfmt::skip]
pub(crate) const MEMORY: &[&str] = &[
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock",
    "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages", "memfd_create",
    "memfd_secret", "pkey_alloc", "pkey_free", "pkey_mprotect", "mbind", "get_mempolicy",
    "set_mempolicy", "set_mempolicy_home_node", "move_pages", "migrate_pages", "map_shadow_stack",
    "mseal", "cachestat",
];

/// Files, directories, extended attributes, file-descriptor plumbing. Access is decided by the
/// payload's uid, the mount namespace and the file modes, not by seccomp. The calls that take a
/// file mode and could make a set-user/group-ID file (`open`, `openat`, `creat`, `chmod`,
/// `fchmod`, `fchmodat`, `fchmodat2`, `mknod`, `mknodat`) are not here but in
/// `super::profile::setid_mode_rules`, and `openat2` is omitted (see [`DELIBERATELY_OMITTED`]).
/// `mkdir`/`mkdirat` stay unconditional: the kernel masks their mode with
/// `S_IRWXUGO | S_ISVTX` (vfs_mkdir → vfs_prepare_mode), so they cannot make a set-id directory.
/// `name_to_handle_at` only encodes a handle (and a mount id); using one (`open_by_handle_at`)
/// is what is dangerous, and that is denied below. `ioctl` is not here: see `ioctl_rules`.
#[rustfmt::skip]
pub(crate) const FILES: &[&str] = &[
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "preadv2", "pwritev",
    "pwritev2", "close", "close_range", "lseek", "_llseek",
    "dup", "dup2", "dup3", "fcntl", "fcntl64", "flock", "fsync", "fdatasync", "sync", "syncfs",
    "sync_file_range", "truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate",
    "fadvise64", "fadvise64_64", "readahead", "stat", "stat64", "lstat", "lstat64", "fstat",
    "fstat64", "fstatat64", "newfstatat", "statx", "statfs", "statfs64", "fstatfs", "fstatfs64",
    "access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd", "mkdir", "mkdirat", "rmdir",
    "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat", "unlink",
    "unlinkat", "readlink", "readlinkat", "chown",
    "chown32", "fchown", "fchown32", "lchown", "lchown32", "fchownat", "utime", "utimes",
    "utimensat", "utimensat_time64", "futimesat", "getdents", "getdents64",
    "readdir", "getxattr", "lgetxattr", "fgetxattr", "getxattrat", "setxattr", "lsetxattr",
    "fsetxattr", "setxattrat", "listxattr", "llistxattr", "flistxattr", "listxattrat",
    "removexattr", "lremovexattr", "fremovexattr", "removexattrat", "file_getattr", "file_setattr",
    "copy_file_range", "sendfile", "sendfile64", "splice", "tee", "vmsplice", "name_to_handle_at",
    "statmount", "listmount",
];

/// Waiting and event notification, futexes, randomness, legacy POSIX AIO (databases, some
/// analysis I/O layers). `fanotify_mark` only works on a group from `fanotify_init`, which is
/// left out (see [`DELIBERATELY_OMITTED`]).
#[rustfmt::skip]
pub(crate) const EVENTS: &[&str] = &[
    "poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "eventfd", "eventfd2", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch", "futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait",
    "futex_requeue", "getrandom", "io_setup", "io_destroy", "io_submit", "io_cancel",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64",
];

/// Sockets, pipes and System V / POSIX IPC (the latter confined by the IPC namespace).
/// `socket` is not filtered by address family: NETLINK_AUDIT is refused by the kernel outside the
/// initial user namespace (`audit_netlink_ok`), raw/packet sockets need CAP_NET_RAW in the owning
/// user namespace of the network namespace, and on 32-bit x86 `socketcall` passes its arguments in
/// memory, where seccomp cannot see them — a family filter would be bypassable there anyway.
#[rustfmt::skip]
pub(crate) const NETWORK_AND_IPC: &[&str] = &[
    "socket", "socketpair", "socketcall", "bind", "connect", "listen", "accept", "accept4",
    "getsockname", "getpeername", "getsockopt", "setsockopt", "send", "sendto", "sendmsg",
    "sendmmsg", "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64", "shutdown", "pipe",
    "pipe2", "ipc", "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "semctl", "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink",
    "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_notify", "mq_getsetattr",
];

/// Debugging the payload's own processes (gdb, strace, perf-less profilers, sanitizers, crash
/// handlers). Allowed when `ProfileOptions::allow_ptrace` and the kernel is at least 4.8: since
/// then seccomp re-checks a syscall after a tracer changed it (commit 93e35efb8de4), so a tracer
/// cannot smuggle a denied syscall through a tracee. The kernel limits the targets to the
/// payload's own uid inside its own pid namespace (ptrace_may_access, plus Yama where enabled).
#[rustfmt::skip]
pub(crate) const DEBUGGING: &[&str] = &[
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
];

/// What unprivileged Apptainer/Singularity needs inside the nested user namespace it creates:
/// mounting (classic and new mount API), changing root, joining/naming its namespaces. The kernel
/// gates every one of these on CAP_SYS_ADMIN (CAP_SYS_CHROOT for `chroot`) in the user namespace
/// owning the target mount/UTS namespace, which the payload only holds in namespaces it created
/// itself, and only for filesystems marked FS_USERNS_MOUNT. Allowed with nested user namespaces;
/// denied with EPERM otherwise, where they could never succeed anyway (defence in depth).
#[rustfmt::skip]
pub(crate) const NESTED_NAMESPACES: &[&str] = &[
    "mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount",
    "fspick", "move_mount", "open_tree", "open_tree_attr", "mount_setattr", "setns", "sethostname",
    "setdomainname",
];

/// Denied with EPERM: the kernel-wide, host-wide or leak-prone syscalls. Most already need a
/// capability in the initial user namespace, which the payload never has; seccomp makes that a
/// second, independent wall and removes the code paths from reach entirely.
#[rustfmt::skip]
pub(crate) const DENIED_EPERM: &[(&str, &[&str])] = &[
    // Loading, removing or replacing kernel code.
    (
        "kernel modules",
        &[
            "init_module", "finit_module", "delete_module", "create_module", "query_module",
            "get_kernel_syms",
        ],
    ),
    (
        "kexec and reboot",
        &["kexec_load", "kexec_file_load", "reboot"],
    ),
    // Keyrings are keyed by kuid, not by sandbox: pool uids are reused by different grid users,
    // so a payload could read keys (Kerberos/AFS tokens, fscrypt keys) left by the previous
    // holder of its uid. The keyring code is also a long-standing source of kernel CVEs.
    ("keyrings", &["keyctl", "add_key", "request_key"]),
    // eBPF and perf: large in-kernel attack surface (verifier bugs), kernel pointer and
    // side-channel leaks about other tenants of the node.
    ("bpf and perf", &["bpf", "perf_event_open"]),
    // userfaultfd lets a process stall the kernel at a chosen page fault, the classic way to win
    // kernel race conditions in exploits; no payload needs it.
    ("userfaultfd", &["userfaultfd"]),
    // Host-wide state: BSD process accounting, swap, disk quotas.
    (
        "accounting, swap, quotas",
        &["acct", "swapon", "swapoff", "quotactl", "quotactl_fd"],
    ),
    // The clock is not namespaced (time namespaces only offset monotonic/boottime). adjtimex
    // and clock_adjtime are denied too, although with `modes == 0` they only read: the mode sits
    // in memory, out of seccomp's sight; glibc's ntp_gettime()/ntp_adjtime() are the casualties.
    (
        "clock setting",
        &[
            "settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex",
            "clock_adjtime", "clock_adjtime64",
        ],
    ),
    // Opening a file by handle bypasses path-based confinement (the 2014 "shocker" container
    // escape); it needs CAP_DAC_READ_SEARCH in the initial namespace anyway.
    ("open by handle", &["open_by_handle_at"]),
    // Direct hardware port access and the 32-bit virtual-8086 mode.
    ("raw I/O and vm86", &["iopl", "ioperm", "vm86", "vm86old"]),
    // Kernel internals and information leaks: kcmp orders kernel object pointers, syslog reads
    // the kernel log (addresses, other tenants' messages), lookup_dcookie is a profiling hook.
    (
        "kernel introspection",
        &["kcmp", "syslog", "lookup_dcookie"],
    ),
    // Obsolete or tty-owner-only.
    ("obsolete and tty control", &["nfsservctl", "vhangup"]),
];

/// Left out on purpose, so they get the default ENOSYS — which is what a kernel built without
/// them answers, so software already has a fallback. Tests check none of them is ever allowed.
#[rustfmt::skip]
pub const DELIBERATELY_OMITTED: &[&str] = &[
    // io_uring: a second syscall interface that bypasses seccomp for the operations it submits,
    // and a steady source of kernel privilege escalations; removed from Docker's and
    // containerd's default profiles in 2023 (moby#46762, containerd#9320), off at Google
    // (ChromeOS, Android, production servers). liburing users fall back to read/write on ENOSYS.
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // 16-bit segments: CVE history (CVE-2015-5157, CVE-2017-17053), only used by Wine/DOSEMU.
    "modify_ldt",
    // fanotify_init: unprivileged fanotify (5.13+) is new, rarely needed code; inotify remains.
    "fanotify_init",
    // process_madvise: acting on another process's memory; no payload needs it.
    "process_madvise",
    // Obsolete interfaces nobody should call: uselib (a.out), _sysctl, sysfs, ustat.
    "uselib",
    "_sysctl",
    "sysfs",
    "ustat",
    // Landlock/LSM attribute writes are not needed; reading is in PROCESS.
    "lsm_set_self_attr",
    // openat2 passes the file mode in a struct in memory, where seccomp cannot see it, so it
    // could create a set-uid file past `setid_mode_rules` (profile.rs). glibc's open() never uses
    // it; programs that do (systemd, runc, libpathrs) fall back to openat on ENOSYS, which is
    // what pre-5.6 kernels answer. Flatpak refuses it with ENOSYS for the same reason.
    "openat2",
];
