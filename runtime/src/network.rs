//! The payload's network (`[network] mode` in policy.toml; docs/launcher-design.md, "Network").
//!
//! In the host's network namespace a payload reaches everything the pilot can: its services on
//! 127.0.0.1/::1 (an HTCondor starter, a DIRAC job agent) and its abstract unix sockets. Both
//! belong to a network namespace — loopback is a device of the namespace, and abstract socket
//! names live in a per-namespace table (unix(7): "abstract namespace ... independent of the
//! filesystem"; net/unix/af_unix.c hashes them per `struct net`) — on every kernel, unlike
//! Landlock's abstract-socket scope (linux 6.12; the CI VM runs 6.1). So:
//!
//! - `isolated` (default): a new network namespace, whose outbound traffic `pasta` (package
//!   passt) relays through ordinary sockets of the host: it opens a tap device in the sandbox's
//!   namespace and, for each TCP connection or UDP flow the payload starts, connects a socket on
//!   the host. No port is forwarded in either direction (`-t/-u/-T/-U none`), and the gateway
//!   address is not mapped to the host's loopback (`--no-map-gw`), so host loopback stays out of
//!   reach; the namespace takes the host's addresses and routes (`--config-net`), so the
//!   host's own main address is the sandbox's and not the host's either.
//! - `none`: a new network namespace with loopback only.
//! - `host`: the host's namespace (no isolation).
//!
//! DNS: the payload reads the host's `/etc/resolv.conf`. A resolver on a non-loopback address
//! is reached through pasta like any host. A resolver on **loopback** (systemd-resolved's stub
//! 127.0.0.53, a local dnsmasq) would be the sandbox's own loopback, where nothing answers: then
//! the sandbox gets a resolv.conf naming [`DNS_FORWARD`] instead ([`bind_resolv_conf`]), and
//! pasta (`--dns-forward`, always given) sends UDP port 53 to that address on to the host's
//! first resolver, from the host's namespace. Only DNS to that one address and port is
//! forwarded: every other loopback service stays out of reach. (DNS over TCP to it is not:
//! answers too big for UDP are truncated, which stub resolvers on loopback rarely produce.)
//!
//! pasta is started by the supervisor (as root for `pilotbox`, as the caller for
//! `pilotbox-nosuid`), after the sandbox is built and before the payload is let go, with the
//! sandbox's init as target (`pasta PID`: it joins that process's user and network namespace,
//! so its capabilities are those of the payload's user namespace, none in the host's). The
//! payload starts only once pasta has written its pid (`--pid`, "once initialisation is done",
//! pasta(1)): the namespace is configured by then. pasta is the supervisor's child with
//! `PR_SET_PDEATHSIG(SIGKILL)` ([`crate::sys::spawn_tied`]) and is killed when the payload is
//! gone ([`Pasta`]'s `Drop`), so it never outlives either.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use policy::config::schema::NetworkMode;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// OCI annotation carrying the mode of a new network namespace: `"isolated"` (relay outbound
/// traffic through pasta) or `"none"` (loopback only, the OCI default). See `plan::outbound`.
pub const ANNOTATION: &str = "io.pilotbox.network";

/// The sandbox's nameserver when the host's are all on loopback: link-local (RFC 3927), so
/// never a real resolver or a host the payload needs, and what Podman gives pasta for the same
/// purpose.
pub const DNS_FORWARD: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 1, 1);

/// Where pasta may be. Fixed paths, never `$PATH`: `pilotbox` runs it as root.
const PASTA_PATHS: &[&str] = &["/usr/bin/pasta", "/usr/local/bin/pasta", "/usr/sbin/pasta"];

/// The pasta binary, or why there is none usable. Run as root (`privileged`), it must be owned
/// by root and writable by nobody else, like every file a setuid program executes.
pub fn find_pasta(privileged: bool) -> Result<PathBuf, String> {
    find_pasta_in(PASTA_PATHS, privileged)
}

fn find_pasta_in(paths: &[&str], privileged: bool) -> Result<PathBuf, String> {
    for p in paths {
        let Ok(m) = std::fs::metadata(p) else {
            continue;
        };
        if !m.is_file() {
            continue;
        }
        if privileged && (m.uid() != 0 || m.mode() & 0o022 != 0) {
            return Err(format!(
                "{p} is not owned by root or is group/world-writable: refusing to run it as root"
            ));
        }
        return Ok(PathBuf::from(p));
    }
    Err(format!(
        "pasta (package passt) not found in {}: [network] mode = \"isolated\" needs it",
        paths.join(", ")
    ))
}

/// Rootless pasta opens `/dev/net/tun` as the caller: udev makes it 0666; a bare devtmpfs
/// (no udev) leaves it 0600, and pasta's own message ("Failed to open tun socket in
/// namespace") would not say why.
pub fn tun_usable() -> Result<(), String> {
    use nix::unistd::{access, AccessFlags};
    access("/dev/net/tun", AccessFlags::R_OK | AccessFlags::W_OK).map_err(|e| {
        format!(
            "/dev/net/tun is not readable and writable by uid {} ({e}): rootless pasta needs \
             it (mode 0666, udev's default), or set [network] mode = \"host\" or \"none\"",
            nix::unistd::getuid()
        )
    })
}

/// A running pasta attached to a sandbox; killed and reaped when dropped.
pub struct Pasta {
    child: std::process::Child,
    /// The read end of pasta's stderr, held open (never read once it is up): closed, pasta's
    /// next log line would raise SIGPIPE in it (its default action, restored by `Command`) and
    /// end the payload's network. Full, its writes fail with EAGAIN (non-blocking).
    _stderr: std::os::fd::OwnedFd,
}

impl Pasta {
    /// Start pasta for the network namespace of `init` (the sandbox's pid 1, our unreaped child
    /// or grandchild-by-CLONE_PARENT, so its pid cannot be reused meanwhile) and wait, at most
    /// until `deadline`, until it reports that the namespace is configured.
    pub fn start(init: Pid, privileged: bool, deadline: Instant) -> Result<Pasta, String> {
        let bin = find_pasta(privileged)?;
        if !privileged {
            tun_usable()?;
        }
        let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
        // Non-blocking on both ends: pasta's later log lines (nobody reads them once it is up)
        // must fail with EAGAIN, never block its event loop once the pipe is full.
        for fd in [&err_r, &err_w] {
            fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(|e| e.to_string())?;
        }
        // The namespaces to join, opened here: pasta would open `/proc/<init>/ns/*` only after
        // dropping CAP_SYS_PTRACE, and init is not dumpable (its fsuid changed), so that open
        // fails with EACCES (ptrace access mode check, proc(5)). Passed as inherited fds.
        let ns = |t: &str| {
            std::fs::File::open(format!("/proc/{init}/ns/{t}"))
                .map_err(|e| format!("opening the sandbox's {t} namespace: {e}"))
        };
        let (userns, netns) = (ns("user")?, ns("net")?);
        let mut cmd = Command::new(&bin);
        cmd.args([
            "--foreground", // our child: supervised, tied to us, never daemonized
            "--quiet",
            "--config-net", // addresses and routes of the host, tap up, before --pid is written
            "--no-map-gw",  // the gateway address must not lead to the host's loopback
            "-t",
            "none", // no inbound forwarding (host → sandbox)
            "-u",
            "none",
            "-T",
            "none", // no sandbox → host-loopback forwarding
            "-U",
            "none",
            // UDP port 53 to this address goes to the host's first resolver (used by the
            // sandbox only when the host's resolvers are on loopback: `bind_resolv_conf`).
            "--dns-forward",
            DNS_FORWARD_STR,
            // The readiness report, written once initialisation is done, into our pipe. Not
            // /dev/stdout: a bare devtmpfs (the CI VM, containers) has no such link, and pasta
            // would create a regular file /dev/stdout (as root) or fail (EACCES).
            "--pid",
            "/proc/self/fd/1",
        ]);
        if privileged {
            // pasta started as root switches to `nobody` before opening the target namespaces
            // (passt 2023-03), and nobody may not enter a user namespace owned by root. Staying
            // uid 0 in the host, it enters the payload's user namespace and holds capabilities
            // only there (and its own seccomp filter and empty mount namespace confine it).
            cmd.args(["--runas", "0"]);
        }
        cmd.arg("--userns")
            .arg(format!("/proc/self/fd/{}", userns.as_raw_fd()))
            .arg("--netns")
            .arg(format!("/proc/self/fd/{}", netns.as_raw_fd()))
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err_w));
        let mut child = crate::sys::spawn_tied(&mut cmd, &[userns.as_fd(), netns.as_fd()])
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        drop(cmd); // our copy of the stderr write end: EOF once pasta is gone
        let stdout = child.stdout.take().expect("piped stdout");
        match wait_ready(stdout, deadline) {
            Ok(pid) if pid == child.id() => Ok(Pasta {
                child,
                _stderr: err_r,
            }),
            result => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                let why = match result {
                    Ok(pid) => format!("reported pid {pid}, not {}", child.id()),
                    Err(e) => e,
                };
                let mut log = String::new();
                let _ = std::fs::File::from(err_r).read_to_string(&mut log);
                let log = log.split_whitespace().collect::<Vec<_>>().join(" ");
                Err(format!(
                    "pasta did not come up ({why}; {status}){}{log}",
                    if log.is_empty() { "" } else { ": " }
                ))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Read pasta's pid from its `--pid` output: it is written after the namespace is configured.
fn wait_ready(mut out: std::process::ChildStdout, deadline: Instant) -> Result<u32, String> {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let text = String::from_utf8_lossy(&buf[..end]).into_owned();
            return text
                .trim()
                .parse()
                .map_err(|_| format!("unexpected readiness report {text:?}"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out waiting for it".into());
        }
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        match poll(&mut [PollFd::new(out.as_fd(), PollFlags::POLLIN)], ms) {
            Err(Errno::EINTR) | Ok(0) => continue,
            Err(e) => return Err(format!("poll: {e}")),
            Ok(_) => {}
        }
        let mut chunk = [0u8; 64];
        match out.read(&mut chunk) {
            Ok(0) => return Err("it exited before it was ready".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading its pid: {e}")),
        }
    }
}

impl Drop for Pasta {
    /// pasta keeps the sandbox's network namespace alive through its own file descriptors, so it
    /// does not notice the payload's end by itself: end it, and reap it.
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
}

/// The payload's network namespace is set up by a helper the engine starts (see [`Pasta`]).
/// Kept across the payload's run and dropped at its end; `None` for `host` and `none`.
#[derive(Default)]
pub struct Relay {
    pasta: std::cell::RefCell<Option<Pasta>>,
    privileged: bool,
}

impl Relay {
    pub fn new(privileged: bool) -> Self {
        Relay {
            pasta: Default::default(),
            privileged,
        }
    }
    /// Stop pasta now (the payload is gone).
    pub fn stop(&self) {
        self.pasta.borrow_mut().take();
    }
}

impl crate::launch::NetworkSetup for Relay {
    fn attach(&self, init: Pid, deadline: Instant) -> Result<(), String> {
        let p = Pasta::start(init, self.privileged, deadline)?;
        *self.pasta.borrow_mut() = Some(p);
        Ok(())
    }
}

/// [`DNS_FORWARD`] as pasta's argument.
const DNS_FORWARD_STR: &str = "169.254.1.1";

/// Whether every `nameserver` of a resolv.conf is a loopback address (systemd-resolved's stub
/// 127.0.0.53, a local dnsmasq): unreachable from the sandbox's own network namespace. No
/// nameserver at all means the resolver library's default, 127.0.0.1 (resolv.conf(5)):
/// loopback too. Returns why, for messages.
pub fn loopback_only_resolvers(resolv_conf: &str) -> Option<String> {
    let servers: Vec<&str> = resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    let loopback = |a: &str| {
        a.split('%')
            .next()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
            .is_some_and(|ip| match ip {
                std::net::IpAddr::V4(v4) => v4.is_loopback(),
                std::net::IpAddr::V6(v6) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            })
    };
    if servers.is_empty() {
        return Some("/etc/resolv.conf names no nameserver (the default is 127.0.0.1)".into());
    }
    servers.iter().all(|a| loopback(a)).then(|| {
        format!(
            "/etc/resolv.conf names only loopback nameservers ({})",
            servers.join(", ")
        )
    })
}

/// The sandbox's resolv.conf when the host's resolvers are all on loopback: [`DNS_FORWARD`] as
/// the one nameserver, the host's other lines (`search`, `domain`, `options`) kept.
pub fn sandbox_resolv_conf(host: &str) -> Option<String> {
    loopback_only_resolvers(host)?;
    let mut out = format!(
        "# pilotbox: the host's resolvers are on loopback; pasta forwards this one to them\n\
         nameserver {DNS_FORWARD}\n"
    );
    for l in host.lines() {
        let t = l.trim();
        if !t.starts_with("nameserver") && !t.is_empty() && !t.starts_with('#') {
            out.push_str(t);
            out.push('\n');
        }
    }
    Some(out)
}

/// For `isolated` mode on a node whose resolvers are on loopback: write the sandbox's
/// resolv.conf into `dir` (a directory of this run, removed with it) and bind it read-only over
/// `/etc/resolv.conf` (see the module docs). Nothing to do otherwise.
pub fn bind_resolv_conf(
    spec: &mut crate::spec_builder::PayloadSpec,
    mode: NetworkMode,
    dir: &std::path::Path,
) -> Result<(), String> {
    if mode != NetworkMode::Isolated {
        return Ok(());
    }
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let Some(text) = sandbox_resolv_conf(&host) else {
        return Ok(());
    };
    let path = dir.join("resolv.conf");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_all(text.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    // umask 077 (sanitize) left it 0600: readable by everyone, as /etc/resolv.conf is.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    spec.binds.push(crate::spec_builder::Bind {
        source: path,
        dest: "/etc/resolv.conf".into(),
        readonly: true,
        idmap: None,
    });
    Ok(())
}

/// The policy's `[network] mode` on a payload Spec: the namespace and the annotation.
pub fn apply_mode(spec: &mut crate::spec_builder::PayloadSpec, mode: NetworkMode) {
    spec.isolate_network = mode != NetworkMode::Host;
    spec.outbound = mode == NetworkMode::Isolated;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn pasta_missing_or_unsafe_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("pilotbox-pasta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("none/pasta");
        let err = find_pasta_in(&[missing.to_str().unwrap()], true).unwrap_err();
        assert!(err.contains("pasta (package passt) not found"), "{err}");
        let writable = dir.join("pasta");
        std::fs::write(&writable, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o777)).unwrap();
        let w = writable.to_str().unwrap();
        let err = find_pasta_in(&[w], true).unwrap_err();
        assert!(err.contains("refusing to run it as root"), "{err}");
        // Unprivileged (pilotbox-nosuid runs it as the caller) the owner does not matter.
        assert_eq!(find_pasta_in(&[w], false).unwrap(), writable);
        std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o755)).unwrap();
        if nix::unistd::geteuid().is_root() {
            assert_eq!(
                find_pasta_in(&[missing.to_str().unwrap(), w], true).unwrap(),
                writable
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loopback_only_resolvers_are_found_and_others_pass() {
        for bad in [
            "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
            "nameserver 127.0.0.1\nnameserver ::1\n",
            "# nothing\nsearch example.org\n",
            "nameserver ::ffff:127.0.0.1\n",
        ] {
            assert!(loopback_only_resolvers(bad).is_some(), "{bad:?}");
        }
        for good in [
            "nameserver 10.255.255.53\n",
            "nameserver 127.0.0.53\nnameserver 192.0.2.1\n",
            "  nameserver   2001:db8::1  \n",
            "nameserver fe80::1%eth0\n",
        ] {
            assert_eq!(loopback_only_resolvers(good), None, "{good:?}");
        }
    }

    #[test]
    fn the_sandbox_resolv_conf_names_the_forwarder_and_keeps_the_rest() {
        let host = "# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.org\n";
        let out = sandbox_resolv_conf(host).unwrap();
        assert!(out.contains("nameserver 169.254.1.1\n"), "{out}");
        assert!(!out.contains("127.0.0.53"), "{out}");
        assert!(out.contains("options edns0 trust-ad\n") && out.contains("search example.org\n"));
        assert_eq!(DNS_FORWARD.to_string(), DNS_FORWARD_STR);
        assert_eq!(sandbox_resolv_conf("nameserver 192.0.2.1\n"), None);
    }

    #[test]
    fn modes_map_to_namespace_and_relay() {
        let mut s = crate::spec_builder::PayloadSpec::new(vec!["true".into()], 1, 1);
        for (mode, isolate, relay) in [
            (NetworkMode::Host, false, false),
            (NetworkMode::None, true, false),
            (NetworkMode::Isolated, true, true),
        ] {
            apply_mode(&mut s, mode);
            assert_eq!(
                (s.isolate_network, s.outbound),
                (isolate, relay),
                "{mode:?}"
            );
        }
    }
}
