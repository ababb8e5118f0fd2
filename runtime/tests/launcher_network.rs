//! `[network] mode` end to end (issue 11 item 9): the real setuid `pilotbox`, called by a
//! non-root pilot. The test plays the pilot's services: an abstract unix socket and TCP
//! listeners on 127.0.0.1 and ::1 (an HTCondor starter, a DIRAC job agent), plus a "remote"
//! TCP service on a non-loopback address of this host (198.18.77.1, added to `lo` for the
//! test's duration: the host's own main address is the sandbox's too, see `network.rs`).
//! Default (`isolated`): the pilot's services are unreachable, the remote one is reachable at
//! full speed; `host` restores reachability (so the probe can fail); `none` has no route out;
//! pasta never outlives the run, even when the supervisor is SIGKILLed.

#[macro_use]
mod launcher_support;

use launcher_support::{result, Env, PILOT};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A non-loopback address of this host only the test uses (RFC 2544 benchmarking range).
const REMOTE: &str = "198.18.77.1";

/// `REMOTE` on the host's `lo` for the test's duration.
struct HostAddr;

impl HostAddr {
    fn add() -> HostAddr {
        let st = Command::new("ip")
            .args(["addr", "replace", &format!("{REMOTE}/32"), "dev", "lo"])
            .status()
            .unwrap();
        assert!(st.success(), "ip addr replace {REMOTE}/32 dev lo");
        HostAddr
    }
}

impl Drop for HostAddr {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["addr", "del", &format!("{REMOTE}/32"), "dev", "lo"])
            .status();
    }
}

/// The pilot's services: every accepted connection is counted, then closed.
struct PilotServices {
    abstract_name: String,
    tcp4: u16,
    tcp6: u16,
    accepted: Arc<AtomicUsize>,
}

impl PilotServices {
    fn start() -> PilotServices {
        let accepted = Arc::new(AtomicUsize::new(0));
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let abstract_name = format!("pilotbox-test-agent-{}-{n}", std::process::id());
        let addr = SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
        let unix = UnixListener::bind_addr(&addr).unwrap();
        let a = accepted.clone();
        std::thread::spawn(move || {
            for c in unix.incoming().flatten() {
                a.fetch_add(1, Ordering::SeqCst);
                drop(c);
            }
        });
        let mut ports = vec![];
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let l = TcpListener::bind(host).unwrap();
            ports.push(l.local_addr().unwrap().port());
            let a = accepted.clone();
            std::thread::spawn(move || {
                for c in l.incoming().flatten() {
                    a.fetch_add(1, Ordering::SeqCst);
                    drop(c);
                }
            });
        }
        PilotServices {
            abstract_name,
            tcp4: ports[0],
            tcp6: ports[1],
            accepted,
        }
    }
}

/// A sink on `REMOTE`: counts the bytes of each connection, answers one byte at its end.
fn remote_sink() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind((REMOTE, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        g.fetch_add(n, Ordering::SeqCst);
                    }
                }
            }
            let _ = c.write_all(b"k");
        }
    });
    (port, got)
}

/// The host's IPv4 default gateway (the address pasta gives the sandbox as its gateway).
fn default_gateway() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "route", "show", "default"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "via")?;
    words.next().map(String::from)
}

/// The payload: probe each pilot service, then send `mib` MiB to the remote sink. One line per
/// probe: `NAME connected` or `NAME failed ERRNO`; then `sent BYTES SECONDS` or `send failed`.
const PROBE: &str = r#"
import socket, sys, time
abstract, p4, p6, gw, remote, rport, mib = sys.argv[1:]
def probe(name, fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(addr)
        print(name, "connected")
    except OSError as e:
        print(name, "failed", e.errno)
    finally:
        s.close()
probe("abstract", socket.AF_UNIX, "\0" + abstract)
probe("lo4", socket.AF_INET, ("127.0.0.1", int(p4)))
probe("lo6", socket.AF_INET6, ("::1", int(p6)))
if gw != "-":
    probe("gateway", socket.AF_INET, (gw, int(p4)))
try:
    s = socket.create_connection((remote, int(rport)), timeout=5)
    s.settimeout(60)
    buf = b"x" * (1 << 20)
    t = time.time()
    for _ in range(int(mib)):
        s.sendall(buf)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    print("sent", int(mib) << 20, time.time() - t)
except OSError as e:
    print("send failed", e.errno)
"#;

struct Probe {
    lines: Vec<String>,
}

impl Probe {
    fn run(env: &Env, svc: &PilotServices, rport: u16, mib: usize) -> Probe {
        Probe::run_with(env, svc, rport, mib, false)
    }
    /// `nosuid`: through `pilotbox-nosuid` (the payload runs as the pilot itself).
    fn run_with(env: &Env, svc: &PilotServices, rport: u16, mib: usize, nosuid: bool) -> Probe {
        let gw = default_gateway().unwrap_or_else(|| "-".into());
        let args = [
            "python3".to_string(),
            "-c".into(),
            PROBE.into(),
            svc.abstract_name.clone(),
            svc.tcp4.to_string(),
            svc.tcp6.to_string(),
            gw,
            REMOTE.into(),
            rport.to_string(),
            mib.to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let rep = env.report_path();
        let (code, out, err) = if nosuid {
            let mut a = vec!["run", "--proxy", env.proxy.to_str().unwrap()];
            a.extend(["--report", rep.to_str().unwrap(), "--"]);
            a.extend_from_slice(&args);
            result(env.nosuid_as(PILOT, &a).output().unwrap())
        } else {
            env.run(&["--report", rep.to_str().unwrap()], &args)
        };
        assert_eq!(code, 0, "payload ran: {out}\n{err}");
        Probe {
            lines: out.lines().map(String::from).collect(),
        }
    }
    fn get(&self, name: &str) -> &str {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(name).map(str::trim))
            .unwrap_or_else(|| panic!("no {name} line in {:?}", self.lines))
    }
}

#[test]
fn isolated_by_default_pilot_services_unreachable_remote_at_full_speed() {
    require_root!();
    let env = Env::new();
    let _addr = HostAddr::add();
    let svc = PilotServices::start();
    let (rport, got) = remote_sink();
    let p = Probe::run(&env, &svc, rport, 100);
    for name in ["abstract", "lo4", "lo6"] {
        assert!(
            p.get(name).starts_with("failed"),
            "{name} reachable from the sandbox: {:?}",
            p.lines
        );
    }
    if default_gateway().is_some() {
        assert!(
            p.get("gateway").starts_with("failed"),
            "the gateway address leads to the host's loopback: {:?}",
            p.lines
        );
    }
    assert_eq!(
        svc.accepted.load(Ordering::SeqCst),
        0,
        "a pilot service saw a connection"
    );
    let sent: Vec<&str> = p.get("sent").split_whitespace().collect();
    assert_eq!(sent[0], (100usize << 20).to_string(), "{:?}", p.lines);
    assert_eq!(
        got.load(Ordering::SeqCst),
        100 << 20,
        "the sink got every byte"
    );
    let secs: f64 = sent[1].parse().unwrap();
    eprintln!(
        "isolated: 100 MiB in {secs:.3} s = {:.0} MiB/s",
        100.0 / secs
    );
    assert_eq!(env.report()["network"], "isolated");
    let end = env.audit_lines().pop().unwrap();
    assert_eq!(end["network"], "isolated");
}

/// `pilotbox-nosuid` runs the payload as the pilot itself: without its own network namespace
/// it could talk to every service of the pilot. Same policy key, same default; pasta runs as
/// the pilot.
#[test]
fn nosuid_is_isolated_by_default_too() {
    require_root!();
    let env = Env::new();
    let _addr = HostAddr::add();
    let svc = PilotServices::start();
    let (rport, got) = remote_sink();
    let p = Probe::run_with(&env, &svc, rport, 10, true);
    for name in ["abstract", "lo4", "lo6"] {
        assert!(p.get(name).starts_with("failed"), "{name}: {:?}", p.lines);
    }
    assert_eq!(svc.accepted.load(Ordering::SeqCst), 0);
    assert_eq!(got.load(Ordering::SeqCst), 10 << 20, "{:?}", p.lines);
    assert_eq!(env.report()["network"], "isolated");
    // Control: `host` gives the nosuid payload the pilot's services back.
    env.write_policy("[network]\nmode = \"host\"\n");
    let p = Probe::run_with(&env, &svc, rport, 1, true);
    for name in ["abstract", "lo4", "lo6"] {
        assert_eq!(p.get(name), "connected", "{:?}", p.lines);
    }
}

/// Control: the same probe under `mode = "host"` reaches every pilot service — the probe can
/// see what the isolated mode hides.
#[test]
fn host_mode_reaches_the_pilot_services() {
    require_root!();
    let env = Env::new();
    env.write_policy("[network]\nmode = \"host\"\n");
    let _addr = HostAddr::add();
    let svc = PilotServices::start();
    let (rport, got) = remote_sink();
    let p = Probe::run(&env, &svc, rport, 100);
    for name in ["abstract", "lo4", "lo6"] {
        assert_eq!(p.get(name), "connected", "{:?}", p.lines);
    }
    let sent: Vec<&str> = p.get("sent").split_whitespace().collect();
    assert_eq!(got.load(Ordering::SeqCst), 100 << 20);
    let secs: f64 = sent[1].parse().unwrap();
    eprintln!("host: 100 MiB in {secs:.3} s = {:.0} MiB/s", 100.0 / secs);
    assert_eq!(env.report()["network"], "host");
}

/// `none`: loopback works inside (its own), nothing leaves.
#[test]
fn none_mode_has_loopback_and_no_route_out() {
    require_root!();
    let env = Env::new();
    env.write_policy("[network]\nmode = \"none\"\n");
    let _addr = HostAddr::add();
    let svc = PilotServices::start();
    let (rport, got) = remote_sink();
    let p = Probe::run(&env, &svc, rport, 1);
    assert_eq!(p.get("send"), "failed 101", "ENETUNREACH: {:?}", p.lines);
    assert_eq!(got.load(Ordering::SeqCst), 0);
    assert_eq!(svc.accepted.load(Ordering::SeqCst), 0);
    // The sandbox's own loopback is up.
    let script = "import socket; l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen(); \
                  c=socket.create_connection(l.getsockname()); print('lo ok')";
    let (code, out, err) = env.run(&[], &["python3", "-c", script]);
    assert_eq!((code, out.trim()), (0, "lo ok"), "{err}");
}

/// The pids of the processes whose parent is `parent` and whose name starts with `prefix`.
fn children_named(parent: u32, prefix: &str) -> Vec<u32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid: u32 = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if ppid == parent && comm.starts_with(prefix) {
            out.push(pid);
        }
    }
    out
}

/// Whether `pid` is gone (or a zombie nobody will see again).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rfind(')')
            .is_some_and(|i| s[i + 2..].starts_with('Z') || s[i + 2..].starts_with('X')),
    }
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a pasta that outlived its test and reclaims what a killed supervisor left.
struct Cleanup<'a>(&'a Env, u32);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !gone(self.1) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.1 as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.0.pilot(&["gc"]).output();
    }
}

/// pasta is the supervisor's child while the payload runs, and is gone after a normal end and
/// after a SIGKILL of the supervisor (parent-death signal); `gc` then leaves nothing.
#[test]
fn pasta_never_outlives_the_run() {
    require_root!();
    let env = Env::new();
    for (id, kill_supervisor) in [("net-normal", false), ("net-killed", true)] {
        let mut child = env
            .run_as(
                PILOT,
                &[],
                &["--proxy", env.proxy.to_str().unwrap(), "--id", id],
                &["/bin/sh", "-c", "echo up; sleep 30"],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = [0u8; 3];
        if child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut line)
            .is_err()
        {
            let (c, _, e) = result(child.wait_with_output().unwrap());
            panic!("{id} did not start: {c} {e}");
        }
        // setpriv execs env, which execs pilotbox: the child's pid is the front, and the
        // supervisor is the front's one child, the root worker (launcher/split.rs).
        let workers = children_named(child.id(), "pilotbox");
        assert_eq!(workers.len(), 1, "the front has one worker: {workers:?}");
        let sup = workers[0];
        let pasta = children_named(sup, "pas");
        assert_eq!(
            pasta.len(),
            1,
            "one pasta, child of the supervisor: {pasta:?}"
        );
        let pasta = pasta[0];
        // On failure: no orphan pasta and no stale record left behind.
        let _cleanup = Cleanup(&env, pasta);
        if kill_supervisor {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(sup as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
        } else {
            let (c, _, e) = result(
                env.pilot(&["kill", id, "--signal", "TERM"])
                    .output()
                    .unwrap(),
            );
            assert_eq!(c, 0, "{e}");
        }
        let status = child.wait().unwrap();
        wait_until("pasta is gone", Duration::from_secs(10), || gone(pasta));
        if kill_supervisor {
            // The front outlives its worker and says so: a site error.
            assert_eq!(status.code(), Some(123), "the supervisor was killed");
            let (c, _, e) = result(env.pilot(&["gc"]).output().unwrap());
            assert_eq!(c, 0, "gc: {e}");
        }
        assert!(!std::path::Path::new("/var/lib/pilotbox/run")
            .join(id)
            .exists());
    }
}

/// A DNS responder for the test: on 127.0.0.153:53 (a loopback resolver, like systemd-resolved's
/// stub), answering every A query with 192.0.2.77. Killed on drop.
struct LoopbackResolver(std::process::Child);

const RESOLVER_PY: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.153", 53))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(512)
    i = 12
    while q[i] != 0:
        i += q[i] + 1
    question = q[12:i + 5]
    (qtype,) = struct.unpack(">H", q[i + 1:i + 3])
    answer = b""
    if qtype == 1:
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("192.0.2.77")
    head = q[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 1 if answer else 0, 0, 0)
    s.sendto(head + question + answer, peer)
"#;

impl LoopbackResolver {
    fn start() -> LoopbackResolver {
        let mut c = Command::new("python3")
            .args(["-c", RESOLVER_PY])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = [0u8; 6];
        c.stdout.as_mut().unwrap().read_exact(&mut line).unwrap();
        assert_eq!(&line, b"ready\n");
        LoopbackResolver(c)
    }
}

impl Drop for LoopbackResolver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `pilotbox run ARGS -- getent ahostsv4 NAME` as the pilot, in a private mount namespace whose
/// /etc/resolv.conf names only the loopback resolver (as on a node with systemd-resolved).
fn resolve_with_loopback_resolver(env: &Env, policy_extra: &str) -> (i32, String, String) {
    resolve_via(env, &env.bin, policy_extra)
}

/// [`resolve_with_loopback_resolver`] through `bin` (`pilotbox` or `pilotbox-nosuid`).
fn resolve_via(env: &Env, bin: &std::path::Path, policy_extra: &str) -> (i32, String, String) {
    env.write_policy(policy_extra);
    let conf = std::path::Path::new(launcher_support::BASE).join("resolv.conf");
    std::fs::write(
        &conf,
        "nameserver 127.0.0.153\noptions timeout:2 attempts:1\n",
    )
    .unwrap();
    let script = format!(
        "mount --bind {conf} /etc/resolv.conf && exec setpriv --reuid {PILOT} --regid {PILOT} \
         --clear-groups -- /usr/bin/env -i {bin} run --proxy {proxy} -- \
         /bin/sh -c 'cat /etc/resolv.conf >&2; getent ahostsv4 pilotbox-dns-test.example'",
        conf = conf.display(),
        bin = bin.display(),
        proxy = env.proxy.display(),
    );
    result(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "/bin/sh", "-c", &script])
            .current_dir(&env.pilot_dir)
            .output()
            .unwrap(),
    )
}

/// A node whose resolver is on loopback (systemd-resolved, dnsmasq): in `isolated` mode the
/// sandbox's own loopback has no resolver, so pilotbox names pasta's DNS forwarder instead, and
/// names resolve; the loopback resolver is the only loopback service reached, and only on port 53.
#[test]
fn a_loopback_resolver_is_reached_through_the_dns_forwarder() {
    require_root!();
    let env = Env::new();
    let _dns = LoopbackResolver::start();
    let (code, out, err) = resolve_with_loopback_resolver(&env, "");
    assert_eq!(code, 0, "the name did not resolve: {out}{err}");
    assert!(out.contains("192.0.2.77"), "{out}{err}");
    assert!(
        err.contains("nameserver 169.254.1.1"),
        "the sandbox's resolv.conf: {err}"
    );
    assert!(
        err.contains("options timeout:2"),
        "the host's options are kept: {err}"
    );
    // `host` mode: the host's own resolv.conf and loopback, as before.
    let (code, out, err) = resolve_with_loopback_resolver(&env, "[network]\nmode = \"host\"\n");
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("nameserver 127.0.0.153"), "{err}");
}
