//! The default seccomp profile, compiled and loaded into real child processes.
//!
//! Each probe runs in its own process (`pilotbox-seccomp-probe try NAME`), once unfiltered as a
//! baseline and once under the filter (`pilotbox-seccomp-probe exec ... -- probe try NAME`), so
//! that an EPERM is shown to come from seccomp and not from the kernel's own checks.
//! Needs root only for a few baselines (it runs fine as root in CI); needs strace, python3,
//! unshare (util-linux) on the PATH.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output};

use runtime::seccomp::{compile, default_profile, ProfileOptions};

const PROBE: &str = env!("CARGO_BIN_EXE_pilotbox-seccomp-probe");
const EPERM: &str = "errno 1";
const ENOSYS: &str = "errno 38";

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Result line of one probe, unfiltered.
fn baseline(probe: &str) -> String {
    let out = output(Command::new(PROBE).args(["try", probe]));
    assert!(out.status.success(), "{probe}: {out:?}");
    line(&out, probe)
}

/// Result line of one probe under the default profile with `opts` (probe-exec flags).
fn filtered(opts: &[&str], probe: &str) -> String {
    let out = output(
        Command::new(PROBE)
            .arg("exec")
            .args(opts)
            .args(["--", PROBE, "try", probe]),
    );
    assert!(out.status.success(), "{probe} under {opts:?}: {out:?}");
    line(&out, probe)
}

fn line(out: &Output, probe: &str) -> String {
    let s = String::from_utf8_lossy(&out.stdout);
    s.trim()
        .strip_prefix(probe)
        .map(|r| r.trim().to_string())
        .unwrap_or_else(|| panic!("bad output {s:?}"))
}

fn ia32_available() -> bool {
    baseline("int80-getpid") == "ok"
}

/// Runs `cmd` under the filter; returns (exit status success, stdout).
fn run_filtered(opts: &[&str], cmd: &[&str]) -> (bool, String, String) {
    let out = output(
        Command::new(PROBE)
            .arg("exec")
            .args(opts)
            .arg("--")
            .args(cmd),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dangerous_syscalls_fail_with_eperm_and_only_because_of_seccomp() {
    // These four have unambiguous baselines on any Linux: keyctl succeeds, the others fail with
    // EINVAL/EFAULT/ENOTTY — never EPERM for root.
    for probe in ["keyctl", "bpf", "perf_event_open", "tiocsti"] {
        assert_ne!(baseline(probe), EPERM, "{probe}: baseline is already EPERM");
        assert_eq!(filtered(&[], probe), EPERM, "{probe}");
    }
    for probe in [
        "add_key",
        "request_key",
        "init_module",
        "finit_module",
        "kexec_load",
        "userfaultfd",
        "open_by_handle_at",
        "kcmp",
        "tioclinux",
        "unshare-net",
    ] {
        let base = baseline(probe);
        if base == EPERM {
            eprintln!("note: {probe} is already EPERM without seccomp here");
        }
        assert_eq!(filtered(&[], probe), EPERM, "{probe} (baseline {base})");
    }
}

#[test]
fn tiocsti_cannot_hide_behind_the_upper_32_bits() {
    // The kernel truncates the ioctl request to 32 bits: 0x1_0000_5412 is TIOCSTI for it.
    assert_ne!(baseline("tiocsti-hi"), EPERM);
    assert_eq!(filtered(&[], "tiocsti-hi"), EPERM);
    // ...while ordinary ioctls still work.
    assert_eq!(filtered(&[], "fionread"), "ok");
}

/// Issue 11 item 1: a payload must not be able to make a set-user/group-ID file (the work dir
/// is on the host, where `nosuid` and no_new_privs do not protect). Each probe succeeds
/// unfiltered, on a scratch file the probe owns.
#[test]
fn setid_modes_are_refused_with_eperm_and_plain_modes_still_work() {
    let refused = [
        "setid-chmod-suid",
        "setid-chmod-sgid",
        "setid-chmod-suid-hi",
        "setid-fchmod-suid",
        "setid-fchmodat-suid",
        "setid-creat-suid",
        "setid-open-creat-suid",
        "setid-openat-creat-sgid",
        "setid-openat-tmpfile-suid",
        "setid-mknod-suid",
        "setid-mknodat-sgid",
    ];
    for probe in refused {
        assert_eq!(baseline(probe), "ok", "{probe} unfiltered");
        assert_eq!(filtered(&[], probe), EPERM, "{probe}");
    }
    // fchmodat2 exists since Linux 6.6 and libseccomp 2.5.5: the filter answers EPERM, or the
    // default ENOSYS where libseccomp does not know the name (then it is never allowed at all).
    let f2 = filtered(&[], "setid-fchmodat2-suid");
    assert!(f2 == EPERM || f2 == ENOSYS, "fchmodat2: {f2}");
    for probe in [
        "setid-chmod-plain",
        "setid-openat-creat-plain",
        "setid-openat-rdonly-suidmode",
        "setid-mkdir-sgid",
    ] {
        assert_eq!(filtered(&[], probe), "ok", "{probe}");
    }
    // openat2 carries its mode in memory: ENOSYS, so callers fall back to openat.
    assert_eq!(baseline("setid-openat2"), "ok");
    assert_eq!(filtered(&[], "setid-openat2"), ENOSYS);
}

/// The same through real tools, also as "root" of a nested user namespace the payload creates
/// (seccomp filters are inherited and cannot be removed), and through the i386 ABI.
#[test]
fn setid_files_cannot_be_made_by_tools_nor_in_a_nested_user_namespace() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let d = dir.path().display();
    let script = format!(
        "cd {d} && touch a && ! chmod 4755 a && ! chmod g+s a && chmod 755 a && \
         ! install -m 4755 a b && ! python3 -c 'import os; os.open(\"c\", os.O_CREAT|os.O_WRONLY, 0o4755)' && \
         ! unshare -Ur chmod 6755 a && unshare -Ur chmod 700 a && echo done"
    );
    let (ok, out, err) = run_filtered(&[], &["sh", "-c", &script]);
    assert!(ok && out.trim_end().ends_with("done"), "{out:?} {err}");
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let e = e.unwrap();
        let mode = std::os::unix::fs::MetadataExt::mode(&e.metadata().unwrap());
        assert_eq!(mode & 0o6000, 0, "{:?} is set-id: {mode:o}", e.path());
    }
    if ia32_available() {
        assert_eq!(baseline("setid-int80-fchmod-suid"), "ok");
        assert_eq!(filtered(&["--ia32"], "setid-int80-fchmod-suid"), EPERM);
        assert_eq!(filtered(&["--ia32"], "setid-int80-fchmod-plain"), "ok");
    }
}

#[test]
fn omitted_syscalls_answer_enosys_so_libc_falls_back() {
    assert_eq!(filtered(&[], "io_uring_setup"), ENOSYS);
    // Default profile refuses nested network namespaces, so clone3 (flags in memory) is ENOSYS.
    assert_eq!(filtered(&[], "clone3"), ENOSYS);
}

#[test]
fn nested_user_namespaces_follow_the_flag() {
    assert_eq!(baseline("unshare-user"), "ok");
    assert_eq!(filtered(&[], "unshare-user"), "ok");
    assert_eq!(filtered(&["--no-nested-userns"], "unshare-user"), EPERM);
    assert_eq!(filtered(&["--no-nested-userns"], "unshare-user-hi"), EPERM);
    assert_eq!(filtered(&["--no-nested-userns"], "clone-user"), EPERM);
    assert_eq!(filtered(&["--no-nested-userns"], "clone-plain"), "ok");
    assert_eq!(filtered(&["--no-nested-userns"], "mount"), EPERM);
    // Allowed mount still reaches the kernel (EFAULT for the NULL arguments).
    assert_ne!(filtered(&[], "mount"), EPERM);
    assert_eq!(filtered(&["--nested-netns"], "unshare-net"), "ok");
}

#[test]
fn ordinary_programs_still_work() {
    let (ok, out, err) = run_filtered(
        &[],
        &["sh", "-c", "echo hello; ls / >/dev/null && echo listed"],
    );
    assert!(ok && out == "hello\nlisted\n", "{out:?} {err}");
    let (ok, out, err) = run_filtered(&[], &["python3", "-c", "import os, threading, subprocess; t = threading.Thread(target=print, args=(6*7,)); t.start(); t.join(); subprocess.run(['true'], check=True)"]);
    assert!(ok && out == "42\n", "{out:?} {err}");
    // Unprivileged Apptainer's building block: a nested user namespace mapping ourselves to root.
    let (ok, out, err) = run_filtered(&[], &["unshare", "-Ur", "id", "-u"]);
    assert!(ok && out == "0\n", "{out:?} {err}");
    let (ok, _, _) = run_filtered(&["--no-nested-userns"], &["unshare", "-Ur", "true"]);
    assert!(
        !ok,
        "unshare -Ur worked with nested user namespaces forbidden"
    );
    let (ok, _, _) = run_filtered(&[], &["unshare", "-Urn", "true"]);
    assert!(
        !ok,
        "nested network namespace created under the default profile"
    );
    let (ok, _, err) = run_filtered(&["--nested-netns"], &["unshare", "-Urn", "true"]);
    assert!(ok, "{err}");
}

#[test]
fn debuggers_work_on_the_payloads_own_children() {
    let (ok, _, err) = run_filtered(
        &[],
        &["strace", "-f", "-o", "/dev/null", "sh", "-c", "true"],
    );
    assert!(ok, "strace under the filter: {err}");
    let (ok, _, _) = run_filtered(
        &["--no-ptrace"],
        &["strace", "-f", "-o", "/dev/null", "true"],
    );
    assert!(!ok, "strace worked with ptrace forbidden");
}

#[test]
fn proc_status_shows_filter_mode_and_no_new_privs() {
    let (ok, out, err) = run_filtered(&[], &["cat", "/proc/self/status"]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().eq(["Seccomp:", "2"])),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().eq(["NoNewPrivs:", "1"])),
        "{out}"
    );
}

#[test]
fn the_i386_abi_is_filtered_with_the_same_rules_when_allowed() {
    if !ia32_available() {
        eprintln!("skipped: this kernel has no IA-32 emulation (int 0x80 unavailable)");
        return;
    }
    assert_ne!(baseline("int80-keyctl"), EPERM);
    assert_eq!(filtered(&["--ia32"], "int80-keyctl"), EPERM);
    assert_eq!(filtered(&["--ia32"], "int80-getpid"), "ok");
}

#[test]
fn secondary_abis_are_killed_by_default() {
    // i386 through int 0x80 (skipped where the kernel has no IA-32 emulation: there the kernel
    // itself refuses it), and x32 (syscall with __X32_SYSCALL_BIT), which is killed even with
    // --ia32 and even where the kernel lacks x32 support (it would answer ENOSYS).
    let mut cases = vec![(&[][..], "x32-keyctl"), (&["--ia32"][..], "x32-keyctl")];
    if ia32_available() {
        cases.push((&[][..], "int80-getpid"));
    }
    for (opts, probe) in cases {
        let out = output(
            Command::new(PROBE)
                .arg("exec")
                .args(opts)
                .args(["--", PROBE, "try", probe]),
        );
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGSYS),
            "{probe} {opts:?}: {out:?}"
        );
    }
    assert_eq!(filtered(&[], "getpid"), "ok");
}

/// The engine's calling pattern: compile in the parent, load in the forked child before execve.
#[test]
fn load_in_pre_exec_like_the_engine() {
    let filter = compile(&default_profile(&ProfileOptions::default())).unwrap();
    let mut cmd = Command::new(PROBE);
    cmd.args(["try", "keyctl", "getpid"]);
    let f = filter.clone();
    // SAFETY: the closure runs between fork and exec; it only makes the prctl and seccomp system
    // calls (no allocation, no locks) and builds an io::Error from a raw errno.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_no_new_privs()
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
            f.load()
                .map_err(|_| std::io::Error::from_raw_os_error(libc::ENOTRECOVERABLE))
        });
    }
    let out = output(&mut cmd);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "keyctl errno 1\ngetpid ok\n"
    );

    // Without no_new_privs, load refuses (and says why) instead of failing with a bare EACCES.
    let mut cmd = Command::new("true");
    // SAFETY: as above.
    unsafe {
        cmd.pre_exec(move || match filter.load() {
            Err(runtime::seccomp::SeccompError::NoNewPrivs) => {
                Err(std::io::Error::from_raw_os_error(libc::ENOTRECOVERABLE))
            }
            _ => Ok(()),
        });
    }
    let err = cmd
        .status()
        .expect_err("load without no_new_privs succeeded");
    assert_eq!(err.raw_os_error(), Some(libc::ENOTRECOVERABLE));
}

/// The BPF program stays small: it is loaded at every launch and counts against the kernel's
/// 32768-instruction total per process (docs/performance.md has the measured numbers).
#[test]
fn filter_size_stays_bounded() {
    for (opts, max) in [
        (ProfileOptions::default(), 800),
        (
            ProfileOptions {
                allow_ia32: true,
                ..Default::default()
            },
            1600,
        ),
    ] {
        let n = compile(&default_profile(&opts)).unwrap().instructions();
        eprintln!("{opts:?}: {n} BPF instructions");
        assert!(n <= max, "{n} instructions for {opts:?}");
    }
}
