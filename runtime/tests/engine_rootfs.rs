//! The Spec's `root` (a directory root filesystem) and namespace `path`s (join existing
//! namespaces, as the node shim will join a pod's): both used by later issues.
mod support;
use support::*;

/// A minimal root filesystem: busybox-static and its applet links, plus the mount points the
/// default payload Spec needs (the root is read-only, so they must exist).
fn busybox_rootfs(f: &Fixture) -> std::path::PathBuf {
    let root = f.dir.join("rootfs");
    for d in ["bin", "proc", "dev", "tmp", "var/tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    assert!(
        std::path::Path::new("/bin/busybox").exists(),
        "busybox-static is installed"
    );
    install_executable(
        std::path::Path::new("/bin/busybox"),
        &root.join("bin/busybox"),
        0o755,
    );
    for applet in ["sh", "ls", "cat", "id", "echo", "readlink"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/os-release"), "NAME=pilotbox-test-rootfs\n").unwrap();
    root
}

#[test]
fn a_directory_root_filesystem_replaces_the_host_root() {
    require_root!();
    let f = Fixture::new("rootfs-dir");
    let root = busybox_rootfs(&f);
    let (code, out, err) = f.sh(
        &["--root", path_str(&root), "--env", "PATH=/bin"],
        "cat /etc/os-release; ls /; id -u; echo > /bin/x 2>/dev/null || echo read-only",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("NAME=pilotbox-test-rootfs"), "{out}");
    assert!(!out.contains("usr"), "the host's /usr is not there: {out}");
    assert!(out.contains("30001"));
    assert!(out.contains("read-only"), "{out}");
}

#[test]
fn a_symlink_in_the_root_filesystem_cannot_redirect_a_mount_outside_it() {
    require_root!();
    let f = Fixture::new("rootfs-symlink");
    let root = busybox_rootfs(&f);
    // A hostile image: /tmp points at the host's /etc (absolute) — resolved inside the rootfs,
    // the private /tmp lands on <rootfs>/etc, never on the host's.
    std::fs::remove_dir(root.join("tmp")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("tmp")).unwrap();
    let (code, out, err) = f.sh(
        &["--root", path_str(&root), "--env", "PATH=/bin"],
        "cat /etc/os-release 2>&1; ls -A /tmp | wc -l",
    );
    assert_eq!(code, 0, "{err}");
    // /etc inside now holds the fresh tmpfs (empty), and the host's /etc was never touched.
    assert!(out.contains("can't open '/etc/os-release'"), "{out}");
    assert_eq!(out.lines().last(), Some("0"), "{out}");
    assert!(std::path::Path::new("/etc/passwd").exists());
}

#[test]
fn joins_an_existing_network_namespace() {
    require_root!();
    let f = Fixture::new("join-net");
    let mut holder = std::process::Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .unwrap();
    let ns = format!("/proc/{}/ns/net", holder.id());
    assert!(wait_until(STARTED_WITHIN, || std::fs::read_link(&ns).ok()
        != std::fs::read_link("/proc/self/ns/net").ok()));
    let want = std::fs::read_link(&ns).unwrap();
    let join = format!("network:{ns}");
    let (code, out, err) = f.sh(&["--join", &join], "readlink /proc/self/ns/net");
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), want.to_str().unwrap());
}

#[test]
fn joins_an_existing_mount_namespace_as_a_private_copy() {
    require_root!();
    let f = Fixture::new("join-mnt");
    // A "pod": its own mount namespace with a tmpfs on /mnt holding a marker file.
    let mut pod = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs podfs /mnt && echo pod-marker > /mnt/m && chmod 644 /mnt/m && exec sleep 60"])
        .spawn()
        .unwrap();
    let pid = pod.id();
    assert!(wait_until(STARTED_WITHIN, || {
        std::fs::read_to_string(format!("/proc/{pid}/root/mnt/m")).is_ok()
    }));
    let pod_mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let join = format!("mount:/proc/{pid}/ns/mnt");
    let (code, out, err) = f.sh(&["--join", &join], "cat /mnt/m");
    let pod_mounts_after = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let _ = pod.kill();
    let _ = pod.wait();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "pod-marker",
        "the payload sees the pod's filesystem"
    );
    assert_eq!(
        pod_mounts, pod_mounts_after,
        "the pod's own mount namespace was not modified"
    );
    assert!(!std::path::Path::new("/mnt/m").exists(), "nor the host's");
}

/// Namespaces pinned by bind-mounting their nsfs file (`ip netns add`, `unshare --mount=FILE`)
/// are part of the host tree the sandbox root is cloned from; the clone and attach must still
/// work (the kernel refuses only a mount-namespace file that would form a loop: ELOOP).
#[test]
fn pinned_namespaces_on_the_host_do_not_break_the_launch() {
    require_root!();
    let f = Fixture::new("rootfs-pinned-ns");
    let pins: Vec<std::path::PathBuf> = ["mnt", "net"].iter().map(|n| f.dir.join(n)).collect();
    for (pin, flag) in pins.iter().zip(["--mount", "--net"]) {
        std::fs::write(pin, "").unwrap();
        let st = std::process::Command::new("unshare")
            .arg(format!("{flag}={}", pin.display()))
            .arg("true")
            .status()
            .unwrap();
        assert!(st.success(), "unshare {flag}=FILE");
    }
    let (code, out, err) = f.sh(&[], "echo launched");
    for pin in &pins {
        let _ = std::process::Command::new("umount").arg(pin).status();
    }
    assert_eq!((code, out.trim()), (0, "launched"), "{err}");
}

/// A file system the host mounts after the launch (a CVMFS repository the automounter brings
/// in) appears inside the running sandbox: the root is cloned with its propagation and made a
/// slave (rslave, as runc), while nothing mounted inside propagates out.
#[test]
fn host_mounts_made_after_the_launch_appear_inside() {
    require_root!();
    let f = Fixture::new("rootfs-propagation");
    let shared = f.dir.join("cvmfs");
    let repo = shared.join("repo.example.org");
    std::fs::create_dir_all(&repo).unwrap();
    let run = |args: &[&str]| {
        let st = std::process::Command::new(args[0])
            .args(&args[1..])
            .status();
        assert!(st.unwrap().success(), "{args:?}");
    };
    let shared_s = path_str(&shared).to_string();
    // A shared mount point, as /cvmfs is on a worker node (autofs).
    run(&["mount", "--bind", &shared_s, &shared_s]);
    run(&["mount", "--make-shared", &shared_s]);
    // The payload says when it runs: only then is its mount tree final (cloned, made a
    // slave). Waiting for a process in the cgroup and a fixed 200 ms could mount on the host
    // while stage 1/2 were still building the tree (likely in the TCG guest), testing the
    // copy at clone time instead of propagation. The flag poll (≤ 60 s) is a hang guard.
    let script = format!(
        "echo ready; i=0; while [ ! -e {r}/flag ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; \
         cat {r}/flag; mount -t tmpfs none {r} 2>/dev/null && echo MOUNTED-INSIDE; true",
        r = repo.display()
    );
    let mut child = f
        .engine(&[], &["/bin/sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert_eq!(first.trim(), "ready", "payload started");
    run(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "repo",
        path_str(&repo),
    ]);
    std::fs::write(repo.join("flag"), "from the host\n").unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
    child.wait().unwrap();
    let host_view = std::fs::read_to_string(repo.join("flag"));
    run(&["umount", "-R", &shared_s]);
    assert!(
        out.contains("from the host"),
        "the new mount is visible inside: {out}"
    );
    assert!(!out.contains("MOUNTED-INSIDE"), "{out}");
    assert!(host_view.is_ok(), "nothing inside covered the host's mount");
}
