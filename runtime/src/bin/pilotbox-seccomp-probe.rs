//! `pilotbox-seccomp-probe`: runs a command under a pilotbox seccomp filter, or probes one
//! system call and reports how it fared. Used by the seccomp tests and benchmark, and handy for an
//! admin checking what a profile does on a node.
//!
//! ```text
//! pilotbox-seccomp-probe exec [--profile FILE.json] [--no-nested-userns] [--nested-netns]
//!                             [--no-ptrace] [--ia32] [--cache-dir DIR] -- CMD [ARGS...]
//! pilotbox-seccomp-probe try PROBE...     # prints "PROBE ok" or "PROBE errno N" per probe
//! ```
//!
//! `exec` sets `no_new_privs`, compiles (or reads from the cache) the profile — the default
//! profile with the given options unless `--profile` — loads it, and `execvp`s the command.
//! `try` performs raw system calls with harmless arguments (NULL pointers, /dev/null, invalid
//! commands) so that, unfiltered, the kernel answers with something other than EPERM.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;

use runtime::seccomp::{compile_cached, default_profile, ProfileOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("exec") => exec(&args[1..]),
        Some("try") => {
            for probe in &args[1..] {
                match run_probe(probe) {
                    Some(Ok(())) => println!("{probe} ok"),
                    Some(Err(errno)) => println!("{probe} errno {errno}"),
                    None => {
                        eprintln!("unknown probe {probe}");
                        return ExitCode::from(2);
                    }
                }
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: pilotbox-seccomp-probe exec [OPTIONS] -- CMD [ARGS...] | try PROBE..."
            );
            ExitCode::from(2)
        }
    }
}

fn exec(args: &[String]) -> ExitCode {
    let mut opts = ProfileOptions::default();
    let mut profile_file: Option<PathBuf> = None;
    let mut cache_dir: Option<PathBuf> = None;
    let mut it = args.iter();
    let mut cmd: Vec<String> = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--profile" => profile_file = it.next().map(PathBuf::from),
            "--cache-dir" => cache_dir = it.next().map(PathBuf::from),
            "--no-nested-userns" => opts.allow_nested_userns = false,
            "--nested-netns" => opts.allow_nested_netns = true,
            "--no-ptrace" => opts.allow_ptrace = false,
            "--ia32" => opts.allow_ia32 = true,
            "--" => {
                cmd = it.by_ref().cloned().collect();
                break;
            }
            other => {
                eprintln!("unknown option {other}");
                return ExitCode::from(2);
            }
        }
    }
    if cmd.is_empty() {
        eprintln!("exec: no command");
        return ExitCode::from(2);
    }
    let profile = match profile_file {
        Some(p) => match std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("cannot read profile {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => default_profile(&opts),
    };
    let filter = match compile_cached(&profile, cache_dir.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("seccomp: {e}");
            return ExitCode::from(1);
        }
    };
    let argv: Vec<CString> = match cmd.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(v) => v,
        Err(_) => return ExitCode::from(2),
    };
    if let Err(e) = nix::sys::prctl::set_no_new_privs() {
        eprintln!("prctl(PR_SET_NO_NEW_PRIVS): {e}");
        return ExitCode::from(1);
    }
    if let Err(e) = filter.load() {
        eprintln!("seccomp: {e}");
        return ExitCode::from(1);
    }
    let e = nix::unistd::execvp(&argv[0], &argv).unwrap_err();
    eprintln!("execvp {}: {e}", cmd[0]);
    ExitCode::from(127)
}

/// `Some(Ok(()))` when the call succeeded, `Some(Err(errno))` when it failed, `None` for an
/// unknown probe name.
fn run_probe(name: &str) -> Option<Result<(), i32>> {
    use libc::*;
    let devnull = std::fs::File::open("/dev/null").ok()?;
    let null = devnull.as_raw_fd() as c_long;
    let r = match name {
        // KEYCTL_GET_KEYRING_ID of the session keyring, without creating one.
        "keyctl" => raw(
            SYS_keyctl,
            [0, KEY_SPEC_SESSION_KEYRING as c_long, 0, 0, 0, 0],
        ),
        "add_key" => raw(SYS_add_key, [0, 0, 0, 0, 0, 0]),
        "request_key" => raw(SYS_request_key, [0, 0, 0, 0, 0, 0]),
        // An invalid command: EINVAL unfiltered.
        "bpf" => raw(SYS_bpf, [9999, 0, 0, 0, 0, 0]),
        "perf_event_open" => raw(SYS_perf_event_open, [0, 0, -1, -1, 0, 0]),
        "init_module" => raw(SYS_init_module, [0, 0, 0, 0, 0, 0]),
        "finit_module" => raw(SYS_finit_module, [-1, 0, 0, 0, 0, 0]),
        "kexec_load" => raw(SYS_kexec_load, [0, 0, 0, 0xdead_0000, 0, 0]),
        "userfaultfd" => raw(SYS_userfaultfd, [0xdead_0000, 0, 0, 0, 0, 0]),
        "open_by_handle_at" => raw(SYS_open_by_handle_at, [-1, 0, 0, 0, 0, 0]),
        "io_uring_setup" => raw(SYS_io_uring_setup, [0, 0, 0, 0, 0, 0]),
        "kcmp" => raw(SYS_kcmp, [0, 0, 99, 0, 0, 0]),
        "mount" => raw(SYS_mount, [0, 0, 0, 0, 0, 0]),
        "unshare-user" => raw(SYS_unshare, [CLONE_NEWUSER as c_long, 0, 0, 0, 0, 0]),
        "unshare-net" => raw(SYS_unshare, [CLONE_NEWNET as c_long, 0, 0, 0, 0, 0]),
        // Upper 32 bits set: the kernel ignores them, the filter must too.
        "unshare-user-hi" => raw(
            SYS_unshare,
            [(1 << 32) | CLONE_NEWUSER as c_long, 0, 0, 0, 0, 0],
        ),
        "clone-user" => raw_clone(CLONE_NEWUSER as c_long | SIGCHLD as c_long),
        "clone-plain" => raw_clone(SIGCHLD as c_long),
        "clone3" => raw(SYS_clone3, [0, 0, 0, 0, 0, 0]),
        "tiocsti" => raw(SYS_ioctl, [null, TIOCSTI as c_long, 0, 0, 0, 0]),
        "tiocsti-hi" => raw(SYS_ioctl, [null, (1 << 32) | TIOCSTI as c_long, 0, 0, 0, 0]),
        "tioclinux" => raw(SYS_ioctl, [null, TIOCLINUX as c_long, 0, 0, 0, 0]),
        // An ordinary ioctl that must keep working: FIONREAD on a pipe.
        "fionread" => {
            let (r, _w) = nix::unistd::pipe().ok()?;
            let mut n: c_int = 0;
            raw(
                SYS_ioctl,
                [
                    r.as_raw_fd() as c_long,
                    FIONREAD as c_long,
                    &mut n as *mut c_int as c_long,
                    0,
                    0,
                    0,
                ],
            )
        }
        "getpid" => raw(SYS_getpid, [0; 6]),
        // Set-id modes (refused) and ordinary ones (allowed) on a scratch file of our own, so
        // that unfiltered every one of them succeeds (root or not: we own the file).
        p if p.starts_with("setid-") => return Some(setid_probe(&p["setid-".len()..])),
        // 32-bit x86 ABI through int 0x80 (i386 numbers: keyctl 288, getpid 20).
        "int80-keyctl" => int80(288, 0, KEY_SPEC_SESSION_KEYRING as u32, 0),
        "int80-getpid" => int80(20, 0, 0, 0),
        // x32 ABI: the x86_64 syscall instruction with __X32_SYSCALL_BIT (keyctl is 250 there).
        "x32-keyctl" => raw(
            0x4000_0000 | SYS_keyctl,
            [0, KEY_SPEC_SESSION_KEYRING as c_long, 0, 0, 0, 0],
        ),
        _ => return None,
    };
    Some(r)
}

/// The set-id probes: `chmod-suid`, `chmod-sgid`, `chmod-plain`, `chmod-suid-hi`,
/// `fchmod-suid`, `fchmodat-suid`, `fchmodat2-suid`, `creat-suid`, `open-creat-suid`,
/// `openat-creat-sgid`, `openat-tmpfile-suid`, `openat-rdonly-suidmode`, `openat-creat-plain`,
/// `mknod-suid`, `mknodat-sgid`, `mkdir-sgid`, `openat2`, `int80-fchmod-suid`,
/// `int80-fchmod-plain`; anything else is an unknown probe (EINVAL is never a probe result).
fn setid_probe(which: &str) -> Result<(), i32> {
    use libc::*;
    use std::os::unix::ffi::OsStrExt;
    let dir = std::env::temp_dir().join(format!("pb-setid-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.raw_os_error().unwrap_or(0))?;
    let file = dir.join("f");
    let new = dir.join("new");
    std::fs::write(&file, b"").map_err(|e| e.raw_os_error().unwrap_or(0))?;
    let cf = CString::new(file.as_os_str().as_bytes()).unwrap();
    let cn = CString::new(new.as_os_str().as_bytes()).unwrap();
    let cd = CString::new(dir.as_os_str().as_bytes()).unwrap();
    let f = std::fs::File::open(&file).map_err(|e| e.raw_os_error().unwrap_or(0))?;
    let (pf, pn, fd) = (
        cf.as_ptr() as c_long,
        cn.as_ptr() as c_long,
        f.as_raw_fd() as c_long,
    );
    let cwd = AT_FDCWD as c_long;
    let creat = (O_CREAT | O_WRONLY | O_EXCL) as c_long;
    let r = match which {
        "chmod-suid" => raw(SYS_chmod, [pf, 0o4755, 0, 0, 0, 0]),
        "chmod-sgid" => raw(SYS_chmod, [pf, 0o2755, 0, 0, 0, 0]),
        "chmod-plain" => raw(SYS_chmod, [pf, 0o755, 0, 0, 0, 0]),
        "chmod-suid-hi" => raw(SYS_chmod, [pf, (1 << 32) | 0o4755, 0, 0, 0, 0]),
        "fchmod-suid" => raw(SYS_fchmod, [fd, 0o4755, 0, 0, 0, 0]),
        "fchmodat-suid" => raw(SYS_fchmodat, [cwd, pf, 0o4755, 0, 0, 0]),
        "fchmodat2-suid" => raw(SYS_fchmodat2, [cwd, pf, 0o4755, 0, 0, 0]),
        "creat-suid" => raw(SYS_creat, [pn, 0o4755, 0, 0, 0, 0]),
        "open-creat-suid" => raw(SYS_open, [pn, creat, 0o4755, 0, 0, 0]),
        "openat-creat-sgid" => raw(SYS_openat, [cwd, pn, creat, 0o2755, 0, 0]),
        "openat-creat-plain" => raw(SYS_openat, [cwd, pn, creat, 0o755, 0, 0]),
        "openat-tmpfile-suid" => raw(
            SYS_openat,
            [
                cwd,
                cd.as_ptr() as c_long,
                (O_TMPFILE | O_RDWR) as c_long,
                0o4755,
                0,
                0,
            ],
        ),
        // Not creating: the mode is ignored by the kernel, so a set-id value there is allowed.
        "openat-rdonly-suidmode" => raw(SYS_openat, [cwd, pf, O_RDONLY as c_long, 0o4755, 0, 0]),
        "mknod-suid" => raw(SYS_mknod, [pn, (S_IFREG | 0o4755) as c_long, 0, 0, 0, 0]),
        "mknodat-sgid" => raw(
            SYS_mknodat,
            [cwd, pn, (S_IFREG | 0o2755) as c_long, 0, 0, 0],
        ),
        // The kernel drops set-id bits from mkdir's mode: allowed, and harmless.
        "mkdir-sgid" => raw(SYS_mkdir, [pn, 0o2755, 0, 0, 0, 0]),
        // A valid open_how { flags: O_RDONLY, mode: 0, resolve: 0 }.
        "openat2" => {
            let how = [0u64; 3];
            raw(SYS_openat2, [cwd, pf, how.as_ptr() as c_long, 24, 0, 0])
        }
        // i386 fchmod is 94; an fd is a plain integer, so it works from a 64-bit process.
        #[cfg(target_arch = "x86_64")]
        "int80-fchmod-suid" => int80(94, fd as u32, 0o4755, 0),
        #[cfg(target_arch = "x86_64")]
        "int80-fchmod-plain" => int80(94, fd as u32, 0o755, 0),
        _ => Err(EINVAL),
    };
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn raw(nr: libc::c_long, a: [libc::c_long; 6]) -> Result<(), i32> {
    // SAFETY: every probe passes integers or NULL/invalid pointers the kernel validates itself,
    // or a pointer to a live local (FIONREAD); none of these calls can corrupt this process.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

/// A raw fork-like `clone(flags)`: the child exits at once, the parent reaps it.
fn raw_clone(flags: libc::c_long) -> Result<(), i32> {
    // SAFETY: with a NULL stack, clone behaves like fork; the child only calls _exit.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
    match pid {
        0 => unsafe { libc::_exit(0) },
        p if p < 0 => Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
        p => {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(p as i32), None);
            Ok(())
        }
    }
}

/// A system call through the 32-bit x86 entry (`int 0x80`) from this 64-bit process: the kernel
/// treats it as an i386 syscall (seccomp sees AUDIT_ARCH_I386).
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32, a: u32, b: u32, c: u32) -> Result<(), i32> {
    let ret: i32;
    // SAFETY: int 0x80 takes its arguments in registers; rbx is reserved by LLVM, so the first
    // argument is swapped in and out around the trap. The probed calls take no pointers.
    unsafe {
        std::arch::asm!(
            "xchg {a:r}, rbx",
            "int 0x80",
            "xchg {a:r}, rbx",
            a = inout(reg) a as u64 => _,
            inlateout("eax") nr as i32 => ret,
            in("ecx") b,
            in("edx") c,
        );
    }
    if ret < 0 && ret > -4096 {
        Err(-ret)
    } else {
        Ok(())
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn int80(_: u32, _: u32, _: u32, _: u32) -> Result<(), i32> {
    Err(libc::ENOSYS)
}
