//! Escape battery: each test is one thing a hostile payload (non-root pool uid, launched on
//! behalf of a non-root pilot) tries; every attempt must fail, and the test checks both the
//! payload's view (the attempt failed) and the host's (nothing changed).
mod support;
use std::os::unix::fs::{chown, PermissionsExt};
use support::*;

/// Sets up a pilot-owned directory with a 0600 secret, next to a root-owned 0600 file.
fn pilot_files(f: &Fixture) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let pilot = f.dir.join("pilot");
    std::fs::create_dir_all(&pilot).unwrap();
    chown(&pilot, Some(PILOT_UID), Some(PILOT_UID)).unwrap();
    std::fs::set_permissions(&pilot, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = pilot.join("x509up_u30100");
    std::fs::write(&secret, "PILOT PROXY").unwrap();
    chown(&secret, Some(PILOT_UID), Some(PILOT_UID)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let rootfile = f.dir.join("root-secret");
    std::fs::write(&rootfile, "ROOT SECRET").unwrap();
    std::fs::set_permissions(&rootfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    (pilot, secret, rootfile)
}

#[test]
fn cannot_signal_the_pilot_or_the_supervisor() {
    require_root!();
    let mut f = Fixture::new("esc-signal");
    let pilot = f.pilot_process();
    let script = format!(
        "kill -9 {pilot} 2>/dev/null && echo KILLED-PILOT; kill -9 $PPID 2>/dev/null && echo KILLED-PPID; \
         kill -9 1 2>/dev/null && echo KILLED-INIT; kill -9 -1 2>/dev/null; echo done"
    );
    let (code, out, err) = f.sh(&[], &script);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(!out.contains("KILLED"), "{out}");
    assert!(
        out.contains("done"),
        "kill -1 only reaches the payload's own processes: {out}"
    );
    assert!(alive(pilot), "the pilot survived");
}

#[test]
fn cannot_ptrace_the_pilot_or_init() {
    require_root!();
    let mut f = Fixture::new("esc-ptrace");
    let pilot = f.pilot_process();
    // PTRACE_ATTACH = 16; the pilot's host pid is not even a pid in our namespace, and pid 1
    // (init) runs under another, unmapped uid.
    let py = format!(
        "import ctypes,os\nlibc=ctypes.CDLL(None,use_errno=True)\n\
         for pid in ({pilot},1):\n  r=libc.ptrace(16,pid,0,0)\n  print(pid,r,os.strerror(ctypes.get_errno()))"
    );
    let out = f.engine(&[], &["python3", "-c", &py]).output().unwrap();
    let (code, out, err) = result(out);
    assert_eq!(code, 0, "stderr: {err}");
    for line in out.lines() {
        assert!(line.contains(" -1 "), "ptrace must fail: {line}");
    }
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(alive(pilot));
}

#[test]
fn cannot_read_the_pilots_proxy() {
    require_root!();
    let f = Fixture::new("esc-readpilot");
    let (_, secret, _) = pilot_files(&f);
    let (code, out, _) = f.sh(&[], &format!("cat {} 2>&1; echo rc=$?", secret.display()));
    assert_eq!(code, 0);
    assert!(!out.contains("PILOT PROXY"), "{out}");
    assert!(
        out.contains("Permission denied") && out.contains("rc=1"),
        "{out}"
    );
}

#[test]
fn cannot_read_root_owned_files_outside_the_workdir() {
    require_root!();
    let f = Fixture::new("esc-readroot");
    let (_, _, rootfile) = pilot_files(&f);
    let (code, out, _) = f.sh(
        &[],
        &format!("cat {} /etc/shadow 2>&1; echo rc=$?", rootfile.display()),
    );
    assert_eq!(code, 0);
    assert!(
        !out.contains("ROOT SECRET") && !out.contains("root:"),
        "{out}"
    );
    assert_eq!(out.matches("Permission denied").count(), 2, "{out}");
}

#[test]
fn hidden_paths_are_invisible() {
    require_root!();
    let f = Fixture::new("esc-hidden");
    let (pilot, secret, _) = pilot_files(&f);
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let hide = ["--hide", path_str(&pilot)];
    let (code, out, err) = f.sh(
        &hide,
        &format!(
            "ls -A {} 2>/dev/null | wc -l; cat {} 2>/dev/null; echo rc=$?",
            pilot.display(),
            secret.display()
        ),
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("PILOT PROXY"), "{out}");
    assert_eq!(
        out.lines().next(),
        Some("0"),
        "the hidden directory lists as empty: {out}"
    );
    assert!(out.contains("rc=1"), "{out}");
    // Without --hide the same (world-readable) file is readable: the test can fail.
    let (_, out, _) = f.sh(&[], &format!("cat {}", secret.display()));
    assert_eq!(out, "PILOT PROXY");
}

#[test]
fn a_hidden_path_the_payload_cannot_reach_is_no_error() {
    require_root!();
    let f = Fixture::new("esc-hidden-0700");
    let (pilot, secret, _) = pilot_files(&f);
    // The pilot's proxy in a directory only the pilot may enter (the natural layout).
    std::fs::set_permissions(&pilot, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (code, out, err) = f.sh(
        &["--hide", path_str(&secret)],
        &format!("cat {} 2>&1; echo rc=$?", secret.display()),
    );
    assert_eq!(code, 0, "the launch succeeds: {err}");
    assert!(!out.contains("PILOT PROXY"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
}

#[test]
fn cannot_write_into_the_pilots_directory() {
    require_root!();
    let f = Fixture::new("esc-write");
    let (pilot, _, _) = pilot_files(&f);
    std::fs::set_permissions(&pilot, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Even world-writable on the host: the host tree is read-only in the sandbox.
    let (code, out, _) = f.sh(
        &[],
        &format!("touch {}/planted 2>&1; echo rc=$?", pilot.display()),
    );
    assert_eq!(code, 0);
    assert!(out.contains("rc=1"), "{out}");
    assert!(!pilot.join("planted").exists());
}

#[test]
fn the_workdir_is_writable_and_outputs_belong_to_the_pool_uid() {
    require_root!();
    let f = Fixture::new("workdir");
    let w = f.workdir();
    // The work dir appears at its own path (pilots pass paths to payloads unchanged).
    let bind = format!("{}:{}", w.display(), w.display());
    let (code, _, err) = f.sh(
        &["--bind", &bind, "--cwd", path_str(&w)],
        "echo result > out.txt",
    );
    assert_eq!(code, 0, "{err}");
    let meta = std::fs::metadata(w.join("out.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (POOL_UID, POOL_GID));
    // A destination missing from the read-only host root is the request's fault (creating it
    // would write to the host's filesystem).
    let bind = format!("{}:/no-such-dir/work", w.display());
    let (code, _, err) = f.sh(&["--bind", &bind], "true");
    assert_eq!(code, 122, "{err}");
    assert!(
        err.contains("/no-such-dir/work") && err.contains("read-only"),
        "{err}"
    );
}

#[test]
fn cannot_move_out_of_its_cgroup() {
    require_root!();
    let f = Fixture::new("esc-cgroup");
    let script = "for d in /sys/fs/cgroup /sys/fs/cgroup/*; do echo $$ > $d/cgroup.procs 2>/dev/null && echo MOVED $d; done; \
                  mkdir /sys/fs/cgroup/pids/escape 2>/dev/null && echo MADE; cat /proc/self/cgroup";
    let (code, out, err) = f.sh(&[], script);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("MOVED") && !out.contains("MADE"), "{out}");
    // In its cgroup namespace the payload sees its own cgroup as the root.
    assert!(
        out.lines()
            .filter(|l| l.contains(':'))
            .all(|l| l.ends_with(":/")),
        "{out}"
    );
}

#[test]
fn cannot_mount_anything_on_the_host() {
    require_root!();
    let f = Fixture::new("esc-mount");
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    // Directly (no capability), and from a nested user namespace (allowed, apptainer needs it:
    // but its mounts live and die in its own mount namespace).
    let script = "mount -t tmpfs escape /mnt 2>&1; echo direct=$?; \
                  unshare -Urm sh -c 'mount -t tmpfs escape2 /mnt && echo nested-ok'; echo nested=$?";
    let (code, out, err) = f.sh(&[], script);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("direct=") && !out.contains("direct=0"),
        "{out}"
    );
    let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!after.contains("escape"), "host mount table changed");
    assert_eq!(
        before.lines().filter(|l| l.contains(" /mnt ")).count(),
        after.lines().filter(|l| l.contains(" /mnt ")).count()
    );
}

#[test]
fn setuid_root_binaries_give_nothing() {
    require_root!();
    let f = Fixture::new("esc-suid");
    let suid = f.dir.join("suid-id");
    install_executable(std::path::Path::new("/usr/bin/id"), &suid, 0o4755);
    let (code, out, err) = f.sh(
        &[],
        &format!(
            "{} -u; {} -ru; su -c true root </dev/null 2>&1; echo su=$?",
            suid.display(),
            suid.display()
        ),
    );
    assert_eq!(code, 0, "{err}");
    let mut l = out.lines();
    assert_eq!(
        l.next(),
        Some("30001"),
        "effective uid stays the pool uid: {out}"
    );
    assert_eq!(l.next(), Some("30001"));
    assert!(!out.contains("su=0"), "{out}");
}

#[test]
fn cannot_see_host_processes() {
    require_root!();
    let mut f = Fixture::new("esc-proc");
    let pilot = f.pilot_process();
    let (code, out, err) = f.sh(&[], &format!("ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '; echo; test -e /proc/{pilot} && echo SEES-PILOT; ps -e -o comm= 2>/dev/null | sort | tr '\\n' ' '"));
    assert_eq!(code, 0, "{err}");
    let pids: Vec<u32> = out
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        pids.len() <= 6 && pids.iter().all(|p| *p < 50),
        "only the sandbox's few processes: {pids:?}"
    );
    assert!(pids.contains(&1), "its own init is pid 1");
    assert!(!out.contains("SEES-PILOT") || pilot < 50, "{out}");
}

#[test]
fn an_idmapped_workdir_hands_the_pilots_dir_to_the_payload_and_back() {
    require_root!();
    let f = Fixture::new("idmap");
    let w = f.dir.join("pilotwork");
    std::fs::create_dir_all(&w).unwrap();
    chown(&w, Some(PILOT_UID), Some(PILOT_UID)).unwrap();
    std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(w.join("input"), "from the pilot").unwrap();
    chown(w.join("input"), Some(PILOT_UID), Some(PILOT_UID)).unwrap();
    if !runtime::engine::idmap_supported(&w) {
        eprintln!("SKIPPED: no idmapped mounts on this filesystem");
        return;
    }
    let bind = format!(
        "{}:{}:idmap={PILOT_UID},{PILOT_UID}",
        w.display(),
        w.display()
    );
    let script = format!(
        "cd {} && stat -c %u . && cat input && echo output > result",
        w.display()
    );
    let (code, out, err) = f.sh(&["--bind", &bind], &script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["30001", "from the pilot"],
        "the pilot's 0700 dir is the payload's inside"
    );
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(w.join("result")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (PILOT_UID, PILOT_UID),
        "outputs belong to the pilot on disk"
    );
    let dir = std::fs::metadata(&w).unwrap();
    assert_eq!(
        (dir.uid(), dir.mode() & 0o777),
        (PILOT_UID, 0o700),
        "the pilot's dir was never chowned or chmodded"
    );
}
