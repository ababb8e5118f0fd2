//! Start a payload from a [`Plan`]: the supervisor side and the two sandbox stages.
//!
//! ```text
//! supervisor (host root, host namespaces; stays outside)
//!   └─ clone3 [CLONE_INTO_CGROUP on v2] ── stage 1 (host root)
//!        setns(joined namespaces, user first); unshare(CLONE_NEWUSER)
//!        ⇠ supervisor writes uid_map/gid_map (and places it in the v1 cgroup)
//!        unshare(NEWNS|NEWPID|NEWIPC|NEWUTS|NEWCGROUP[|NEWNET])
//!        clone3(CLONE_PARENT) ── stage 2 = pid 1 of the new pid ns, child of the supervisor
//!        stage 1 exits
//!   stage 2: PR_SET_PDEATHSIG(SIGKILL), hostname, rootfs ⇢ SetupDone
//!        ⇠ Go: fork the payload (pid 2): setsid, ids, caps, rlimits, chdir, no_new_privs,
//!          seccomp, execve. Stage 2 drops to CAP_KILL only and stays as init (reaps, forwards
//!          signals, reports status).
//! ```
//! Unprivileged (`RunOptions::unprivileged`, for `pilotbox-nosuid`) the same tree runs as the
//! calling user: stage 1 enters the user namespace *before* cloning the mount sources (it has no
//! privilege over the host's mount namespace), the supervisor writes `setgroups` = `deny` and
//! the caller's own one-line maps, and the payload keeps its inherited supplementary groups.
//!
//! Why two stages (as runc's nsexec): joining an existing namespace (a pod's mount namespace)
//! needs host privilege, so it must happen before the new user namespace is entered; and the new
//! pid namespace only applies to children of the process that unshared it. `CLONE_PARENT` makes
//! pid 1 a direct child of the supervisor, so the supervisor waits for it, and pid 1's
//! parent-death signal fires when the supervisor dies for any reason — taking the whole pid
//! namespace with it.

use crate::channel::{Channel, FailKind, Msg};
use crate::plan::Plan;
use crate::sys::{self, Forked};
use crate::syscall::Linux;
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{getpid, getppid, Pid};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant, SystemTime};

/// What the engine needs from a cgroup while launching (implemented by `cgroups::Cgroup`).
pub trait PayloadCgroup {
    /// The cgroup-v2 directory to spawn into with `CLONE_INTO_CGROUP`; `None` on v1.
    fn clone_into(&self) -> Option<BorrowedFd<'_>>;
    /// Move the calling, single-threaded process in (v1: every hierarchy), before it forks
    /// anything. Called in stage 1, only when `clone_into` is `None`.
    fn join_self(&self) -> Result<(), String>;
}

/// Loads a compiled seccomp filter in the payload child, right before execve.
pub trait FilterLoader {
    fn load(&self) -> Result<(), String>;
}

/// Gives a new network namespace its connectivity (see [`crate::network`]), once the sandbox is
/// built and before the payload starts.
pub trait NetworkSetup {
    /// Set up the network namespace of the sandbox whose init is `init`, ready before
    /// `deadline`; an error is the site's (a missing or failing helper).
    fn attach(&self, init: Pid, deadline: Instant) -> Result<(), String>;
}

pub struct LaunchOptions<'a> {
    pub cgroup: Option<&'a dyn PayloadCgroup>,
    pub seccomp: Option<&'a dyn FilterLoader>,
    /// Called before `Go` when the plan asks for outbound connectivity ([`Plan::outbound`]).
    pub network: Option<&'a dyn NetworkSetup>,
    /// Longest time the sandbox may take to get ready (a hung NFS mount must not hang the pilot).
    pub setup_timeout: Duration,
}

/// Signals the supervisor forwards to the payload (through init).
pub const FORWARDED: [Signal; 5] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The forwarded signals plus SIGCHLD: blocked in the supervisor from before the first clone, so
/// none is lost or acted on by default between launch and supervision.
pub fn supervised_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in FORWARDED {
        s.add(sig);
    }
    s.add(Signal::SIGCHLD);
    s
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("the engine must be called from a single-threaded process (found {0} threads)")]
    Threads(usize),
    #[error("{step}: {errno}")]
    Sys { step: &'static str, errno: Errno },
    #[error("sandbox setup failed: {1}")]
    Setup(FailKind, String),
    #[error("sandbox setup did not finish within {0:?}")]
    Timeout(Duration),
    #[error("sandbox died during setup (expected {0})")]
    Died(&'static str),
    #[error("unexpected message {0:?} during setup")]
    Protocol(Msg),
}

impl LaunchError {
    /// Whether the request (not the machine) is to blame.
    pub fn is_request_error(&self) -> bool {
        matches!(self, LaunchError::Setup(FailKind::Request, _))
    }
}

fn sys_err(step: &'static str) -> impl Fn(Errno) -> LaunchError {
    move |errno| LaunchError::Sys { step, errno }
}

/// A started payload, handed to the supervisor loop.
pub struct Running {
    /// Pid 1 of the sandbox, as the supervisor sees it.
    pub init: Pid,
    pub chan: Channel,
    pub started: SystemTime,
    pub started_at: Instant,
}

/// Start the sandbox and the payload. On error nothing of the sandbox is left running (the
/// caller still owns and removes the cgroup).
pub fn launch(plan: &Plan, opts: &LaunchOptions) -> Result<Running, LaunchError> {
    let threads = sys::thread_count().map_err(|_| LaunchError::Threads(0))?;
    if threads != 1 {
        return Err(LaunchError::Threads(threads));
    }
    supervised_signals()
        .thread_block()
        .map_err(sys_err("block signals"))?;
    let (ours, theirs) = Channel::pair().map_err(sys_err("socketpair"))?;
    let supervisor = getpid();

    let stage1 = match sys::clone3_fork(0, opts.cgroup.and_then(|c| c.clone_into()))
        .map_err(sys_err("clone3 stage 1"))?
    {
        Forked::Child => {
            drop(ours);
            stage1(plan, opts, &theirs, supervisor)
        }
        Forked::Parent(pid) => pid,
    };
    drop(theirs);

    let mut stage2 = None;
    let result = setup(plan, opts, &ours, stage1, &mut stage2);
    // Stage 1 is finished (or failed) either way: reap it so it never lingers as a zombie.
    let _ = kill(stage1, Signal::SIGKILL);
    let _ = waitpid(stage1, None);
    match result {
        Ok(init) => Ok(Running {
            init,
            chan: ours,
            started: SystemTime::now(),
            started_at: Instant::now(),
        }),
        Err(e) => {
            if let Some(pid) = stage2 {
                // Killing pid 1 kills its whole pid namespace.
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
            }
            Err(e)
        }
    }
}

/// Wait for the next setup message, at most until `deadline`.
fn next(
    chan: &Channel,
    deadline: Instant,
    timeout: Duration,
    expect: &'static str,
) -> Result<Msg, LaunchError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LaunchError::Timeout(timeout));
        }
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(chan.0.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Err(Errno::EINTR) | Ok(0) => continue,
            Err(e) => {
                return Err(LaunchError::Sys {
                    step: "poll",
                    errno: e,
                })
            }
            Ok(_) => {}
        }
        return match chan.recv().map_err(sys_err("recv"))? {
            None => Err(LaunchError::Died(expect)),
            Some(Msg::SetupFailed(kind, why)) => Err(LaunchError::Setup(kind, why)),
            Some(m) => Ok(m),
        };
    }
}

/// Supervisor side of the setup protocol. Returns the pid of the sandbox's init.
fn setup(
    plan: &Plan,
    opts: &LaunchOptions,
    chan: &Channel,
    stage1: Pid,
    stage2: &mut Option<Pid>,
) -> Result<Pid, LaunchError> {
    let deadline = Instant::now() + opts.setup_timeout;
    let t = opts.setup_timeout;
    match next(chan, deadline, t, "user namespace ready")? {
        Msg::UsernsReady => {}
        m => return Err(LaunchError::Protocol(m)),
    }
    if plan.new_userns {
        // Written by us, root in the parent user namespace: any 1:1 map is allowed, and
        // /proc/PID/setgroups stays "allow" so the payload's supplementary groups can be set.
        let write = |file: &str, maps: &[crate::plan::IdMap]| {
            std::fs::write(format!("/proc/{stage1}/{file}"), Plan::map_file(maps)).map_err(|e| {
                LaunchError::Sys {
                    step: "write id map",
                    errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                }
            })
        };
        write("uid_map", &plan.uid_mappings)?;
        if plan.unprivileged {
            // An unprivileged writer may set gid_map only after setgroups is denied
            // (user_namespaces(7), since Linux 3.19): else dropping a group could grant access.
            std::fs::write(format!("/proc/{stage1}/setgroups"), "deny").map_err(|e| {
                LaunchError::Sys {
                    step: "deny setgroups",
                    errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                }
            })?;
        }
        write("gid_map", &plan.gid_mappings)?;
    }
    chan.send(&Msg::MapsWritten).map_err(sys_err("send"))?;
    // Two senders share the sandbox end from here: stage 1 reports stage 2's pid right after
    // the clone, stage 2 reports `SetupDone` when the tree is built. Nothing orders the two: a
    // stage 1 preempted between clone3 and send (a loaded host, the TCG guest) lets stage 2
    // finish first. Both are required, in either order.
    let mut init = None;
    let mut ready = false;
    loop {
        if let (Some(pid), true) = (init, ready) {
            // The payload must find its network up: nothing else waits for it inside.
            if plan.outbound {
                let Some(net) = opts.network else {
                    return Err(LaunchError::Setup(
                        FailKind::System,
                        "network: the plan asks for outbound connectivity and no helper is set"
                            .into(),
                    ));
                };
                net.attach(pid, deadline)
                    .map_err(|e| LaunchError::Setup(FailKind::System, format!("network: {e}")))?;
            }
            chan.send(&Msg::Go).map_err(sys_err("send"))?;
            return Ok(pid);
        }
        let expect = if init.is_none() {
            "stage 2 pid"
        } else {
            "sandbox ready"
        };
        match next(chan, deadline, t, expect)? {
            Msg::Stage2(pid) if init.is_none() => {
                init = Some(Pid::from_raw(pid));
                *stage2 = init;
            }
            Msg::SetupDone if !ready => ready = true,
            m => return Err(LaunchError::Protocol(m)),
        }
    }
}

/// Report a setup failure to the supervisor and leave.
fn fail(chan: &Channel, kind: FailKind, what: impl std::fmt::Display) -> ! {
    let _ = chan.send(&Msg::SetupFailed(kind, what.to_string()));
    sys::exit_now(1)
}

/// Stage 1: join namespaces, enter the new user namespace, unshare the rest, fork pid 1.
fn stage1(plan: &Plan, opts: &LaunchOptions, chan: &Channel, supervisor: Pid) -> ! {
    use nix::sys::prctl::set_pdeathsig;
    // If the supervisor is already gone, nobody would ever reap or supervise us.
    if set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != supervisor {
        sys::exit_now(1);
    }
    // v1: into the payload cgroup first, so every later process is born inside. Stage 1 moves
    // itself (one thread, `0` to `tasks`): unlike the supervisor moving it by pid, that does
    // not wait for an RCU grace period (see `Cgroup::join_current_thread`).
    if let Some(cg) = opts
        .cgroup
        .filter(|c| PayloadCgroup::clone_into(*c).is_none())
    {
        if let Err(e) = cg.join_self() {
            fail(
                chan,
                FailKind::System,
                format!("placing the sandbox in its cgroup: {e}"),
            );
        }
    }
    for (flag, path) in &plan.joins {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => fail(
                chan,
                FailKind::Request,
                format!("open namespace {}: {e}", path.display()),
            ),
        };
        if let Err(e) = nix::sched::setns(file.as_fd(), *flag) {
            fail(
                chan,
                FailKind::System,
                format!("setns {}: {e}", path.display()),
            );
        }
    }
    let or_fail = |e: crate::rootfs::RootfsError| -> ! {
        let kind = if e.is_request_error() {
            FailKind::Request
        } else {
            FailKind::System
        };
        fail(chan, kind, e)
    };
    let open_sources = || crate::rootfs::Sources::open(plan).unwrap_or_else(|e| or_fail(e));
    // Clone the bind sources and then the root while still host root. The root comes from a
    // private copy of the host (or joined) mount namespace: a namespace pinned on the host by
    // bind-mounting its nsfs file (`unshare --mount=FILE`, `ip netns add`) is newer than the
    // host's mount namespace, so a mount-namespace file of it inside the cloned root would form
    // a reference loop once attached in the (newer still) sandbox namespace, and move_mount
    // refuses the whole tree with ELOOP (fs/namespace.c check_for_nsfs_mounts). copy_mnt_ns
    // (unshare) leaves such files out (no CL_COPY_MNT_NS_FILE) — which is also why bubblewrap,
    // binding `/` after its unshare, never meets them. The bind sources are cloned before
    // that unshare: the work dir is a /proc/self/fd path to a mount of the host namespace,
    // and the kernel clones only mounts of the current one.
    // Unprivileged, `open_tree(OPEN_TREE_CLONE)` needs CAP_SYS_ADMIN over the mount namespace,
    // which we only get in a mount namespace our new user namespace owns: done below.
    let mut sources = None;
    if !plan.unprivileged {
        let binds = crate::rootfs::Sources::open_binds(plan).unwrap_or_else(|e| or_fail(e));
        if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWNS) {
            fail(
                chan,
                FailKind::System,
                format!("unshare mount namespace: {e}"),
            );
        }
        let root = crate::rootfs::Sources::open_root(plan).unwrap_or_else(|e| or_fail(e));
        sources = Some(crate::rootfs::Sources { root, binds });
    }
    if plan.new_userns {
        if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWUSER) {
            fail(
                chan,
                FailKind::System,
                format!("unshare user namespace: {e}"),
            );
        }
    }
    if chan.send(&Msg::UsernsReady).is_err() {
        sys::exit_now(1);
    }
    match chan.recv() {
        Ok(Some(Msg::MapsWritten)) => {}
        _ => sys::exit_now(1),
    }
    let mut rest = plan.new_namespaces;
    if plan.unprivileged {
        // Unprivileged: the mount namespace first (owned by our user namespace, so open_tree
        // is allowed), the sources cloned in it — as the caller, whose permissions apply to
        // every path — then the other namespaces. The mounts copied from the host's namespace
        // are locked (mount_namespaces(7)): they can be bound recursively and made read-only,
        // never uncovered.
        if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWNS) {
            fail(
                chan,
                FailKind::System,
                format!("unshare mount namespace: {e}"),
            );
        }
        rest.remove(CloneFlags::CLONE_NEWNS);
        sources = Some(open_sources());
    }
    let Some(sources) = sources else {
        fail(chan, FailKind::System, "no mount sources")
    };
    if let Err(e) = nix::sched::unshare(rest) {
        fail(chan, FailKind::System, format!("unshare {rest:?}: {e}"));
    }
    match sys::clone3_fork(libc::CLONE_PARENT as u64, None) {
        Err(e) => fail(chan, FailKind::System, format!("clone3 stage 2: {e}")),
        Ok(Forked::Child) => stage2(plan, opts, chan, &sources),
        Ok(Forked::Parent(pid)) => {
            let _ = chan.send(&Msg::Stage2(pid.as_raw()));
            sys::exit_now(0)
        }
    }
}

/// Stage 2, pid 1 of the sandbox: build the mount tree, then become init.
fn stage2(
    plan: &Plan,
    opts: &LaunchOptions,
    chan: &Channel,
    sources: &crate::rootfs::Sources,
) -> ! {
    use nix::sys::prctl::set_pdeathsig;
    // The payload's supplementary groups now, so that the tree is built with exactly the
    // payload's file access (fsuid, fsgid, groups; our capabilities in this user namespace
    // override nothing on inodes it does not map): a path we cannot reach while hiding it is
    // one the payload cannot reach either (rootfs::mask). init sets them again, harmlessly.
    // Unprivileged, setgroups is denied: we and the payload both keep the caller's groups.
    let groups: Vec<nix::unistd::Gid> = plan
        .additional_gids
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    if !plan.unprivileged {
        if let Err(e) = nix::unistd::setgroups(&groups) {
            fail(chan, FailKind::System, format!("setgroups: {e}"));
        }
    }
    // Files we create (mount points, staging dirs) need an owner mapped in our user namespace,
    // else EOVERFLOW: create them as the payload's ids. Host root stays unmapped on purpose.
    nix::unistd::setfsgid(nix::unistd::Gid::from_raw(plan.gid));
    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(plan.uid));
    // Only after every uid/gid change: the kernel clears the parent-death signal whenever
    // euid/egid/fsuid/fsgid change (commit_creds), so arming it earlier would silently disarm it.
    // Our parent is the supervisor (CLONE_PARENT). If it died before this line, we are caught
    // below: its end of the channel is closed and waiting for Go reads end-of-file.
    if set_pdeathsig(Signal::SIGKILL).is_err() {
        sys::exit_now(1);
    }
    // Out of the caller's session and process group: a signal to the pilot's whole group (root
    // or the tty's SIGINT/SIGHUP) reaches the supervisor, which forwards it, and must not reach
    // init directly too — init would hand the payload every such signal twice.
    let _ = nix::unistd::setsid();
    if let Some(h) = &plan.hostname {
        if let Err(e) = nix::unistd::sethostname(h) {
            fail(chan, FailKind::System, format!("sethostname: {e}"));
        }
    }
    // A new network namespace: its loopback up (`none` means loopback only, not no loopback).
    if plan.new_namespaces.contains(CloneFlags::CLONE_NEWNET) {
        if let Err(e) = sys::loopback_up() {
            fail(chan, FailKind::System, format!("bringing up lo: {e}"));
        }
    }
    if let Err(e) = crate::rootfs::setup(&Linux, plan, sources) {
        let kind = if e.is_request_error() {
            FailKind::Request
        } else {
            FailKind::System
        };
        fail(chan, kind, e);
    }
    let _ = nix::sys::prctl::set_name(c"pilotbox-init");
    if chan.send(&Msg::SetupDone).is_err() {
        sys::exit_now(1);
    }
    match chan.recv() {
        Ok(Some(Msg::Go)) => crate::init::run(plan, opts.seccomp, chan),
        _ => sys::exit_now(1),
    }
}

/// Unblock what `launch` blocked, in the supervisor after supervision.
pub fn unblock_signals() {
    let _ =
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&supervised_signals()), None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec_builder::PayloadSpec;

    /// The supervisor side of the setup protocol against a thread playing stage 1 and stage 2,
    /// which send their two reports in `order`. Returns what `setup` returned, the stage 2 pid
    /// it recorded for cleanup, and what the sandbox side received last (`Go` or nothing).
    fn setup_against(order: [Msg; 2]) -> (Result<Pid, LaunchError>, Option<Pid>, Option<Msg>) {
        let spec = PayloadSpec::new(vec!["true".into()], 30001, 30000)
            .to_spec()
            .unwrap();
        let mut plan = Plan::from_spec(&spec).unwrap();
        // No real stage 1 whose /proc/<pid>/uid_map could be written.
        plan.new_userns = false;
        let opts = LaunchOptions {
            cgroup: None,
            seccomp: None,
            network: None,
            setup_timeout: Duration::from_secs(30),
        };
        let (ours, theirs) = Channel::pair().unwrap();
        let sandbox = std::thread::spawn(move || {
            theirs.send(&Msg::UsernsReady).unwrap();
            assert_eq!(theirs.recv(), Ok(Some(Msg::MapsWritten)));
            for m in order {
                // The supervisor may have given up already (then this fails: nobody listens).
                let _ = theirs.send(&m);
            }
            theirs.recv().ok().flatten()
        });
        let mut stage2 = None;
        let r = setup(&plan, &opts, &ours, Pid::from_raw(1), &mut stage2);
        drop(ours);
        (r, stage2, sandbox.join().unwrap())
    }

    #[test]
    fn stage_2_pid_then_ready_starts_the_payload() {
        let (r, stage2, last) = setup_against([Msg::Stage2(4242), Msg::SetupDone]);
        assert_eq!(r.unwrap(), Pid::from_raw(4242));
        assert_eq!(stage2, Some(Pid::from_raw(4242)));
        assert_eq!(last, Some(Msg::Go));
    }

    /// Stage 1 preempted between its clone and its report: stage 2's `SetupDone` comes first.
    /// Seen as "launch: unexpected message SetupDone during setup" with the engine under a 1%
    /// CPU quota (1 launch in 20), a stand-in for the TCG guest on a loaded host.
    #[test]
    fn ready_before_the_stage_2_pid_starts_the_payload_too() {
        let (r, stage2, last) = setup_against([Msg::SetupDone, Msg::Stage2(4242)]);
        assert_eq!(r.unwrap(), Pid::from_raw(4242));
        assert_eq!(stage2, Some(Pid::from_raw(4242)));
        assert_eq!(last, Some(Msg::Go));
    }

    /// Control: a report twice is still a protocol error, and no `Go` is sent.
    #[test]
    fn a_repeated_report_is_refused() {
        let (r, _, last) = setup_against([Msg::SetupDone, Msg::SetupDone]);
        assert!(
            matches!(r, Err(LaunchError::Protocol(Msg::SetupDone))),
            "{r:?}"
        );
        assert_eq!(last, None);
    }
}
