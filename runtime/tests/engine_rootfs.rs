//! The Spec's `root` (a directory root filesystem) and namespace `path`s (join existing
//! namespaces, as the node shim will join a pod's): both used by later issues.
mod support;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use support::*;

/// A minimal root filesystem: busybox-static and its applet links, plus the mount points the
/// default payload Spec needs (the root is read-only, so they must exist).
fn busybox_rootfs(f: &Fixture) -> std::path::PathBuf {
    let root = f.dir.join("rootfs");
    for d in ["bin", "proc", "dev", "tmp", "var/tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed");
    std::fs::set_permissions(
        root.join("bin/busybox"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
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
    assert!(wait_until(Duration::from_secs(5), || std::fs::read_link(
        &ns
    )
    .ok()
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
    assert!(wait_until(Duration::from_secs(5), || {
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
