//! Killing, freezing and accounting a [`Cgroup`].
//!
//! * v2 kill: `cgroup.kill` (Linux ≥ 5.14) SIGKILLs every process of the subtree atomically with
//!   respect to fork, then we wait for `cgroup.events` `populated 0`.
//! * v1 kill: there is no kill file, and signalling the pids of `cgroup.procs` one by one races
//!   with fork (a child born after the read escapes the signal). So: freeze (frozen tasks cannot
//!   fork), SIGKILL every task, thaw (a frozen task only acts on the SIGKILL once thawed),
//!   repeat until empty — the loop runc's `signalAllProcesses` uses for the v1 freezer.
//!   We do *not* add a twin cgroup in the hybrid host's controller-less `unified` hierarchy to
//!   get `cgroup.kill`: the freeze/kill loop is already race-free, a twin would be a second
//!   membership to keep consistent (and to escape from), pure-v1 hosts (EL7) have no `unified`
//!   mount at all, and systemd owns that hierarchy on hybrid hosts.
//!
//! All waits are bounded ([`KILL_TIMEOUT`], [`FREEZE_TIMEOUT`]); on expiry a `Timeout` error
//! names the cgroup, the state reached and the remaining pids.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::cgroup::{signal_pid, Cgroup};
use super::error::{CgroupError, Result};
use super::fsio;
use super::layout::Version;
use super::Usage;

/// Upper bound for [`Cgroup::kill`] to see the cgroup empty. Generous on purpose: the wait
/// ends as soon as the cgroup is empty, and a loaded node (or a TCG guest: ~3 s for 200
/// processes) must not turn a working kill into an error.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for [`Cgroup::freeze`] to reach the frozen state.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(5);

impl Cgroup {
    fn v2_dir(&self) -> PathBuf {
        self.dirs[0].full()
    }

    fn freezer_dir(&self) -> Result<PathBuf> {
        self.dir_of("freezer").ok_or_else(|| {
            CgroupError::Unsupported(format!(
                "{}: the v1 freezer hierarchy is not available",
                self.path
            ))
        })
    }

    /// SIGKILL every process of the cgroup (and sub-cgroups) and return once it is empty — or
    /// gone: whoever supervises the payload may remove the emptied cgroup while we still poll
    /// it (`pilotbox kill` racing the supervisor's cleanup), and that is the same outcome.
    pub fn kill(&self) -> Result<()> {
        match self.kill_until_empty() {
            Err(e) if e.is_gone() => Ok(()),
            r => r,
        }
    }

    fn kill_until_empty(&self) -> Result<()> {
        match self.version {
            Version::V2 => {
                let dir = self.v2_dir();
                let kill_file = dir.join("cgroup.kill");
                if kill_file.exists() {
                    fsio::write(&kill_file, "1")?;
                    return self.wait_empty(Instant::now() + KILL_TIMEOUT);
                }
                // Kernel < 5.14: freeze via cgroup.freeze (5.2+) gives the same race-freedom.
                self.freeze_kill_loop(|cg, frozen| {
                    let f = cg.v2_dir().join("cgroup.freeze");
                    fsio::write(&f, if frozen { "1" } else { "0" })
                })
            }
            Version::V1 => {
                let state = self.freezer_dir()?.join("freezer.state");
                self.freeze_kill_loop(move |_, frozen| {
                    fsio::write(&state, if frozen { "FROZEN" } else { "THAWED" })
                })
            }
        }
    }

    /// Freeze, SIGKILL all, thaw, until empty or [`KILL_TIMEOUT`].
    fn freeze_kill_loop(&self, set_frozen: impl Fn(&Cgroup, bool) -> Result<()>) -> Result<()> {
        let deadline = Instant::now() + KILL_TIMEOUT;
        loop {
            if self.pids()?.is_empty() {
                return Ok(());
            }
            set_frozen(self, true)?;
            // Give the freeze a moment to settle; a task in uninterruptible sleep may keep the
            // cgroup FREEZING, and then the next round catches whatever it forked.
            let settle = Instant::now() + Duration::from_millis(50);
            while !self.is_frozen().unwrap_or(true) && Instant::now() < settle {
                std::thread::sleep(Duration::from_millis(1));
            }
            let pids = self.pids()?;
            for pid in &pids {
                signal_pid(*pid, Signal::SIGKILL)?;
            }
            set_frozen(self, false)?;
            let round_end = Instant::now() + Duration::from_millis(100);
            while Instant::now() < round_end && !self.pids()?.is_empty() {
                std::thread::sleep(POLL);
            }
            if Instant::now() > deadline {
                return Err(self.timeout("kill", KILL_TIMEOUT));
            }
        }
    }

    /// v2: wait for `cgroup.events` to say `populated 0` (covers sub-cgroups) — or for the
    /// cgroup to be gone: the supervisor removes it the moment it is empty, which can happen
    /// between our write to `cgroup.kill` and our first read here. A missing `cgroup.events`
    /// is that removal, not a cgroup still populated (reading it as "not yet 0" made a
    /// successful kill time out after 20 s with no process left; seen in the VM).
    fn wait_empty(&self, deadline: Instant) -> Result<()> {
        let events = self.v2_dir().join("cgroup.events");
        loop {
            match fsio::read_opt(&events)? {
                None => return Ok(()),
                Some(t) if super::parse::flat_keyed(&t, "populated") == Some(0) => return Ok(()),
                Some(_) => {}
            }
            if Instant::now() > deadline {
                return Err(self.timeout("kill", KILL_TIMEOUT));
            }
            std::thread::sleep(POLL);
        }
    }

    fn timeout(&self, op: &'static str, timeout: Duration) -> CgroupError {
        let left = self
            .pids()
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|e| e.to_string());
        CgroupError::Timeout {
            op,
            path: PathBuf::from(&self.path),
            timeout,
            detail: format!("processes left: {left}"),
        }
    }

    /// True when the whole cgroup is frozen (v2 `cgroup.events` `frozen 1`, v1 `FROZEN`).
    pub fn is_frozen(&self) -> Result<bool> {
        match self.version {
            Version::V2 => {
                // `fsio::read`, not `read_keyed`: a cgroup removed meanwhile is an error
                // (`is_gone`), not "not frozen yet" to poll until the timeout.
                let events = fsio::read(&self.v2_dir().join("cgroup.events"))?;
                Ok(super::parse::flat_keyed(&events, "frozen") == Some(1))
            }
            Version::V1 => {
                let s = fsio::read(&self.freezer_dir()?.join("freezer.state"))?;
                Ok(super::parse::freezer_state(&s) == "FROZEN")
            }
        }
    }

    /// Freeze every process (suspend) and wait until the kernel reports the cgroup frozen.
    /// On v1 the write is repeated while the state stays `FREEZING`, as the kernel's
    /// `cgroup-v1/freezer-subsystem.rst` recommends.
    pub fn freeze(&self) -> Result<()> {
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        let (file, value) = match self.version {
            Version::V2 => (self.v2_dir().join("cgroup.freeze"), "1"),
            Version::V1 => (self.freezer_dir()?.join("freezer.state"), "FROZEN"),
        };
        let mut last_write = Instant::now();
        fsio::write(&file, value)?;
        loop {
            if self.is_frozen()? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.timeout("freeze", FREEZE_TIMEOUT));
            }
            if self.version == Version::V1 && last_write.elapsed() > Duration::from_millis(100) {
                fsio::write(&file, value)?;
                last_write = Instant::now();
            }
            std::thread::sleep(POLL);
        }
    }

    /// Thaw (resume) the cgroup.
    pub fn thaw(&self) -> Result<()> {
        match self.version {
            Version::V2 => fsio::write(&self.v2_dir().join("cgroup.freeze"), "0"),
            Version::V1 => fsio::write(&self.freezer_dir()?.join("freezer.state"), "THAWED"),
        }
    }

    /// Resource usage so far (hierarchical, including exited processes).
    pub fn usage(&self) -> Result<Usage> {
        match self.version {
            Version::V2 => {
                let d = self.v2_dir();
                let user = fsio::read_keyed(&d.join("cpu.stat"), "user_usec")?.unwrap_or(0);
                let sys = fsio::read_keyed(&d.join("cpu.stat"), "system_usec")?.unwrap_or(0);
                let oom_kills =
                    fsio::read_keyed(&d.join("memory.events"), "oom_kill")?.unwrap_or(0);
                Ok(Usage {
                    cpu_user_s: user as f64 / 1e6,
                    cpu_sys_s: sys as f64 / 1e6,
                    mem_peak_bytes: fsio::read_u64_opt(&d.join("memory.peak"))?,
                    oom_killed: oom_kills > 0,
                    oom_kills,
                    pids_peak: fsio::read_u64_opt(&d.join("pids.peak"))?,
                })
            }
            Version::V1 => {
                let (cpu_user_s, cpu_sys_s) = match self.dir_of("cpuacct") {
                    Some(d) => v1_cpu(&d)?,
                    None => (0.0, 0.0),
                };
                let mem = self.dir_of("memory");
                let mem_peak_bytes = match &mem {
                    Some(d) => fsio::read_u64_opt(&d.join("memory.max_usage_in_bytes"))?,
                    None => None,
                };
                let oom_kills = match &mem {
                    Some(d) => {
                        fsio::read_keyed(&d.join("memory.oom_control"), "oom_kill")?.unwrap_or(0)
                    }
                    None => 0,
                };
                let pids_peak = match self.dir_of("pids") {
                    Some(d) => fsio::read_u64_opt(&d.join("pids.peak"))?,
                    None => None,
                };
                Ok(Usage {
                    cpu_user_s,
                    cpu_sys_s,
                    mem_peak_bytes,
                    oom_killed: oom_kills > 0,
                    oom_kills,
                    pids_peak,
                })
            }
        }
    }
}

/// v1 cpu time: `cpuacct.usage_user`/`usage_sys` (ns, Linux ≥ 4.6) when present, else
/// `cpuacct.stat` in USER_HZ ticks.
fn v1_cpu(d: &std::path::Path) -> Result<(f64, f64)> {
    if let (Some(u), Some(s)) = (
        fsio::read_u64_opt(&d.join("cpuacct.usage_user"))?,
        fsio::read_u64_opt(&d.join("cpuacct.usage_sys"))?,
    ) {
        return Ok((u as f64 / 1e9, s as f64 / 1e9));
    }
    let stat = d.join("cpuacct.stat");
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|h| *h > 0)
        .unwrap_or(100) as f64;
    let u = fsio::read_keyed(&stat, "user")?.unwrap_or(0);
    let s = fsio::read_keyed(&stat, "system")?.unwrap_or(0);
    Ok((u as f64 / hz, s as f64 / hz))
}
