//! The raw syscalls nix does not wrap safely. This is the only module of the engine with
//! `unsafe` (besides `seccomp`'s filter load): each block is one syscall, with why it is sound.
//!
//! A reviewer should read this file first: everything else calls these or safe nix wrappers.

use nix::errno::Errno;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Result of [`clone3_fork`], like `fork(2)`.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// `struct clone_args` of `linux/sched.h` (version 2, 88 bytes: with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (linux 5.7): the child starts life in the cgroup `cgroup` refers to, so
/// it never runs a single instruction outside its limits (no migration race as with writing
/// `cgroup.procs` after fork).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// fork(2)-like `clone3`: no new stack (the child continues on a copy of ours), `flags` from
/// `CLONE_*`, the child's exit signal SIGCHLD (see below for CLONE_PARENT), optionally spawned straight into a cgroup-v2
/// directory.
///
/// Callers must be single-threaded (the engine checks [`thread_count`] before launching): as
/// with fork, only the calling thread exists in the child, and a lock held by another thread
/// would stay locked forever in it.
pub fn clone3_fork(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, Errno> {
    // With CLONE_PARENT the kernel requires exit_signal 0: the child inherits the caller's own
    // exit signal (SIGCHLD for our stage 1), since it becomes a child of the caller's parent.
    let parent = flags & libc::CLONE_PARENT as u64 != 0;
    let mut args = CloneArgs {
        flags,
        exit_signal: if parent { 0 } else { libc::SIGCHLD as u64 },
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid, fully initialised clone_args that outlives the call, and its size
    // is passed alongside. With stack == 0 the kernel gives the child a copy-on-write copy of our
    // stack, exactly like fork(2), so both sides return here normally. No pointer fields are set.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Plain fork(2), for the pid-1 init forking the payload and for `main` splitting a setuid call
/// into its front and root worker (both single-threaded by construction).
pub fn fork() -> Result<Forked, Errno> {
    // SAFETY: both callers are single-threaded: the init process is a clone3 child of a
    // single-threaded supervisor and never spawns threads; `launcher::split` runs first in
    // `main`, before anything could start a thread. The child inherits no lock held by another
    // thread.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// `MOUNT_ATTR_*` flags of `mount_setattr(2)`.
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// `struct mount_attr` of `linux/mount.h`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const AT_RECURSIVE: libc::c_uint = 0x8000;

/// The one `mount_setattr(2)` call both wrappers below make.
fn mount_setattr_raw(
    dirfd: RawFd,
    path: &std::ffi::CStr,
    flags: libc::c_uint,
    attr: &MountAttr,
) -> Result<(), Errno> {
    // SAFETY: `path` is a valid NUL-terminated string and `attr` a valid mount_attr whose size
    // is passed; the kernel only reads both during the call. `dirfd` is AT_FDCWD or an fd the
    // caller borrows for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `mount_setattr(path, [AT_RECURSIVE], {attr_set})` (linux 5.12): set flags on a mount (tree)
/// in one call, keeping each mount's other (possibly locked) flags — the per-mount
/// `MS_REMOUNT|MS_BIND` walk bubblewrap does would have to repeat them.
pub fn mount_setattr(path: &std::ffi::CStr, attr_set: u64, recursive: bool) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr_raw(
        libc::AT_FDCWD,
        path,
        if recursive { AT_RECURSIVE } else { 0 },
        &attr,
    )
}

/// `MOUNT_ATTR_IDMAP`: the mount translates file ownership through a user namespace's maps.
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `mount_setattr(tree, "", AT_EMPTY_PATH [|AT_RECURSIVE], {MOUNT_ATTR_IDMAP, userns})`: make
/// a detached tree (from [`open_tree_clone`], not yet attached — the kernel only allows it
/// then) an idmapped mount: an on-disk owner `c` appears as `h` for each map line `c h n` of
/// `userns`, and files created through it are stored with the reverse translation.
pub fn mount_setattr_idmap(
    tree: BorrowedFd<'_>,
    userns: BorrowedFd<'_>,
    recursive: bool,
) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let flags = libc::AT_EMPTY_PATH as libc::c_uint | if recursive { AT_RECURSIVE } else { 0 };
    mount_setattr_raw(tree.as_raw_fd(), c"", flags, &attr)
}

/// An fd of a new user namespace with the given `uid_map`/`gid_map` contents, for idmapped
/// mounts. A short-lived child creates the namespace (clone3 with CLONE_NEWUSER) and waits; we
/// write its maps as root of the parent namespace, open `/proc/<child>/ns/user`, and let it exit:
/// the namespace lives on as long as the fd. Callers must be single-threaded (see
/// [`clone3_fork`]).
pub fn userns_fd(uid_map: &str, gid_map: &str) -> Result<OwnedFd, Errno> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    match clone3_fork(libc::CLONE_NEWUSER as u64, None)? {
        Forked::Child => {
            drop(wr);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&rd, &mut b);
            exit_now(0)
        }
        Forked::Parent(child) => {
            drop(rd);
            let io = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
            let result = (|| {
                std::fs::write(format!("/proc/{child}/uid_map"), uid_map).map_err(io)?;
                std::fs::write(format!("/proc/{child}/gid_map"), gid_map).map_err(io)?;
                let f = std::fs::File::open(format!("/proc/{child}/ns/user")).map_err(io)?;
                Ok(OwnedFd::from(f))
            })();
            drop(wr);
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}

/// `open_tree(path, OPEN_TREE_CLONE [|AT_RECURSIVE])` (linux 5.2): a detached copy of the mount
/// at `path` (and its submounts), as an fd. Taken while still host root in the host (or joined)
/// mount namespace, it lets the sandbox later attach a directory its own user namespace could
/// not even look up (a pilot's 0700 work dir) — the approach runc ≥ 1.2 takes for bind sources.
pub fn open_tree_clone(path: &std::ffi::CStr, recursive: bool) -> Result<OwnedFd, Errno> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `path` is a valid NUL-terminated string read only during the call.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: on success open_tree returns a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// `move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`: attach a detached tree
/// from [`open_tree_clone`] at `target`.
pub fn move_mount_to(tree: BorrowedFd<'_>, target: &std::ffi::CStr) -> Result<(), Errno> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    // SAFETY: both strings are valid and NUL-terminated, `tree` is an open fd we borrow.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Mark every fd >= `first` close-on-exec (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`, linux
/// 5.11), so nothing the supervisor had open leaks into the payload across execve.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes plain integers; it cannot affect memory safety, only fd flags.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `pidfd_open(pid, 0)` (linux 5.3): a descriptor that names the process `pid` is *now* and
/// keeps naming it after it dies, so a signal sent through it ([`pidfd_send_signal`]) can never
/// reach a later process that reuses the pid (pidfd_open(2)). It becomes readable when the
/// process exits.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain integer arguments; no memory is passed.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: on success pidfd_open returns a new (close-on-exec) fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Wait until the process `pidfd` names has exited (the pidfd polls readable; it may still be a
/// zombie its parent has not reaped, but it runs no more): `Ok(true)`, or `Ok(false)` when
/// `deadline` passed first.
pub fn wait_pidfd_exit(pidfd: BorrowedFd<'_>, deadline: std::time::Instant) -> Result<bool, Errno> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ms =
            PollTimeout::try_from(left.as_millis().min(1000) as i32).unwrap_or(PollTimeout::MAX);
        match poll(&mut [PollFd::new(pidfd, PollFlags::POLLIN)], ms) {
            Ok(n) if n > 0 => return Ok(true),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)` (linux 5.1): signal the process `pidfd` names.
pub fn pidfd_send_signal(
    pidfd: BorrowedFd<'_>,
    sig: nix::sys::signal::Signal,
) -> Result<(), Errno> {
    // SAFETY: a borrowed open fd, a signal number, a NULL siginfo (the kernel fills in one as
    // for kill(2)) and no flags; no memory of ours is read or written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Number of threads of the calling process (from /proc/self/status), to refuse forking from a
/// multi-threaded caller.
pub fn thread_count() -> std::io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no Threads: line in /proc/self/status"))
}

/// `_exit(2)`: leave a forked child without running atexit handlers or flushing stdio buffers
/// that belong to the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// Reset every catchable signal to its default disposition. Ignored dispositions survive
/// execve (and Rust's runtime ignores SIGPIPE), so without this the payload would inherit
/// SIG_IGN for SIGPIPE from us — the bug std::process::Command also guards against.
pub fn reset_signal_dispositions() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL installs no handler code, so no handler can run in an
        // inconsistent state; sigaction itself is async-signal-safe. Errors (none expected for
        // catchable signals) are ignored: the disposition stays what it was.
        let _ = unsafe { sigaction(sig, &dfl) };
    }
}

/// Set `sigs` to SIG_IGN (sanitize: SIGXFSZ; the root worker: the tty job-control signals).
/// `reset_signal_dispositions` in the payload's init undoes it before execve.
pub fn ignore_signals(sigs: &[nix::sys::signal::Signal]) {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    for sig in sigs {
        // SAFETY: SIG_IGN installs no handler code; sigaction is async-signal-safe. Only
        // SIGKILL/SIGSTOP can fail, and no caller passes them.
        let _ = unsafe { sigaction(*sig, &ign) };
    }
}

/// Drop this process's page-table entries for clean, read-only file pages (code and constants
/// of `pilotbox` and its libraries) once the payload runs. The supervisor then waits for
/// hours, yet fault-around (64 KiB per fault) left ~8 MiB of code resident that only the
/// launch needed — and batch systems (Slurm's `jobacct_gather/linux`, HTCondor's procd) add
/// up RSS per job, so every running payload would cost its pilot that much. The pages stay in
/// the page cache, shared with every other process; what the wait loop and the clean-up touch
/// later comes back by minor faults.
///
/// Only mappings that are private, file-backed, not writable and have no anonymous (copied on
/// write) page — as the kernel reports in `/proc/self/smaps` — are released: every page of
/// such a mapping is a clean page-cache page, which reclaim may drop at any moment anyway, so
/// dropping it here changes nothing any code can observe. A relocated RELRO segment (written
/// by the loader, then made read-only) has anonymous pages and is left alone.
pub fn release_clean_code_pages() -> Result<usize, Errno> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").map_err(|_| Errno::EIO)?;
    let mut released = 0;
    for (start, end) in clean_file_mappings(&smaps) {
        // SAFETY: [start, end) is a mapping the kernel just reported as private, file-backed,
        // non-writable and without a single anonymous page (see above): MADV_DONTNEED only
        // unmaps clean page-cache pages, which a later access faults back in unchanged. No
        // Rust object is mutated or freed; no thread can have written there meanwhile (the
        // mapping is not writable).
        let ret =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if ret == 0 {
            released += end - start;
        }
    }
    Ok(released)
}

/// `(start, end)` of every mapping in `/proc/<pid>/smaps` text that is private (`p`), not
/// writable, backed by a file (inode ≠ 0) and has `Anonymous: 0 kB`.
fn clean_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                let perms = f.next().unwrap_or("");
                let inode = f.nth(2).unwrap_or("0");
                let candidate = perms.len() == 4
                    && perms.as_bytes()[1] == b'-'
                    && perms.as_bytes()[3] == b'p'
                    && inode != "0";
                current = candidate.then_some((start, end));
                continue;
            }
        }
        if first == "Anonymous:" {
            if let Some(m) = current.take() {
                if f.next() == Some("0") {
                    out.push(m);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_rss_kib() -> u64 {
        let here = text_rss_kib as *const () as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(s), Ok(e)) =
                        (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                    {
                        inside = s <= here && here < e;
                        continue;
                    }
                }
            }
            if inside {
                if let Some(v) = line.strip_prefix("Rss:") {
                    return v.trim().trim_end_matches("kB").trim().parse().unwrap();
                }
            }
        }
        panic!("no smaps entry for our text")
    }

    #[test]
    fn only_clean_private_read_only_file_mappings_are_released() {
        let smaps = "\
55d0-55e0 r--p 00000000 08:01 12 /bin/x
Rss: 8 kB
Anonymous: 0 kB
55e0-5600 r-xp 00010000 08:01 12 /bin/x
Anonymous: 0 kB
5600-5610 r--p 00030000 08:01 12 /bin/x
Anonymous: 4 kB
5610-5620 rw-p 00040000 08:01 12 /bin/x
Anonymous: 0 kB
5620-5630 r--s 00000000 08:01 14 /dev/shm/x
Anonymous: 0 kB
7f00-7f10 r-xp 00000000 00:00 0 [vdso]
Anonymous: 0 kB
7f10-7f20 r-xp 00000000 08:01 13 /lib/libc.so.6
Anonymous: 0 kB
";
        assert_eq!(
            clean_file_mappings(smaps),
            vec![(0x55d0, 0x55e0), (0x55e0, 0x5600), (0x7f10, 0x7f20)],
            "not: RELRO with copied pages, writable, shared, anonymous"
        );
    }

    #[test]
    fn releasing_the_text_shrinks_its_rss_and_code_still_runs() {
        // Touch a good part of the test binary's code first, as a launch does.
        let _ = std::hint::black_box(format!("{:?}", std::env::vars().collect::<Vec<_>>()));
        let before = text_rss_kib();
        assert!(release_clean_code_pages().unwrap() > 0);
        let after = text_rss_kib();
        assert!(
            after < before,
            "text RSS {before} KiB before, {after} KiB after"
        );
        // and everything still works (pages come back from the file)
        assert_eq!(format!("{}", 6 * 7), "42");
        assert!(text_rss_kib() > 0);
    }
}

/// Spawn `cmd` tied to the calling process: in the child, before execve, unblock every signal
/// (the supervisor blocks the forwarded ones and SIGCHLD, and a blocked mask survives execve,
/// so the helper could not be stopped with SIGTERM) and arm `PR_SET_PDEATHSIG(SIGKILL)`, so the
/// helper is killed when we die for any reason (SIGKILL included) instead of lingering as an
/// orphan. The kernel clears the parent-death signal only on a credential change that is not a
/// pure reduction (kernel/cred.c `commit_creds`): a helper that keeps its uid and only drops
/// capabilities or enters a child user namespace owned by its uid stays armed. If we already
/// died before `prctl`, the child sees another parent and leaves at once. The real ids are set
/// to the effective ones first: run from the setuid `pilotbox` (real uid the pilot's, effective
/// 0), execve would be a "secure exec" (AT_SECURE) and the kernel clears the parent-death
/// signal on it (fs/exec.c `begin_new_exec`: "Make sure parent cannot signal privileged
/// process") — pasta survived a SIGKILLed supervisor that way. `inherit`: fds of
/// ours (close-on-exec) the helper gets under the same numbers (`/proc/self/fd/N` for it).
pub fn spawn_tied(
    cmd: &mut std::process::Command,
    inherit: &[BorrowedFd<'_>],
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let parent = nix::unistd::getpid();
    let (euid, egid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    let keep: Vec<RawFd> = inherit.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: the closure runs in the forked child between fork and execve, where only
    // async-signal-safe calls are allowed: it makes plain system calls (fcntl, setresgid,
    // setresuid, sigprocmask, prctl, getppid) on values computed before the fork, and touches
    // no lock or allocation.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setresgid(egid, egid, egid)?;
            nix::unistd::setresuid(euid, euid, euid)?;
            for fd in &keep {
                // Only in the child's fd table: ours keeps FD_CLOEXEC.
                if libc::fcntl(*fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            )?;
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("parent gone"));
            }
            Ok(())
        })
    };
    cmd.spawn()
}

/// Bring the loopback device of the current network namespace up (`ip link set lo up`): a new
/// network namespace starts with `lo` down (net/core/dev.c registers it without IFF_UP), and
/// payloads expect 127.0.0.1 to work. SIOCGIFFLAGS/SIOCSIFFLAGS (netdevice(7)) on any socket;
/// needs CAP_NET_ADMIN over the namespace, which stage 2 holds in its user namespace.
pub fn loopback_up() -> Result<(), Errno> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value (empty name, zero flags).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: both ioctls read and write only `req`, a live, correctly sized struct ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } == -1 {
        return Err(Errno::last());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } == -1 {
        return Err(Errno::last());
    }
    Ok(())
}
