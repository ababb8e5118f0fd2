//! The cgroup layer of the sandbox engine: one payload cgroup per run, on cgroup v1 (legacy and
//! hybrid hosts, like the testbed) and v2 (EL9, Debian 12, Ubuntu 24.04), detected at run time.
//!
//! * [`detect`] — which interface the host offers ([`Version`]).
//! * [`place`] — where the payload's cgroup goes ([`Placement`]: a configured root, or nested under
//!   the pilot's own batch-slot cgroup, honouring v2's no-internal-process rule and delegation).
//! * [`Cgroup`] — create with the OCI `linux.resources` applied (rolled back on error), add
//!   processes or (v2) spawn straight in via [`Cgroup::dir_fd`] + `clone3(CLONE_INTO_CGROUP)`,
//!   signal, freeze/thaw, kill until empty, read [`Usage`], destroy.
//!
//! `cgroups-rs` provides hierarchy detection and the per-controller limit setters; the rest is
//! plain cgroupfs I/O (see each submodule for why). No `unsafe` in this module.

#![forbid(unsafe_code)]

mod cgroup;
mod control;
mod error;
mod fsio;
mod layout;
pub mod parse;
mod placement;
mod resources;

pub use cgroup::Cgroup;
pub use control::{FREEZE_TIMEOUT, KILL_TIMEOUT};
pub use error::CgroupError;
pub use layout::{detect, join, v2_root, Version};
pub use placement::{place, Placement, PILOT_LEAF};

/// Resources used by the payload, read from the cgroup at the end of the run (hierarchical
/// counters, so exited processes and sub-cgroups are included). Reported in `--report` `usage`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    /// User CPU seconds (v2 `cpu.stat` user_usec; v1 `cpuacct.usage_user` or `cpuacct.stat`).
    pub cpu_user_s: f64,
    /// System CPU seconds.
    pub cpu_sys_s: f64,
    /// Peak memory (v2 `memory.peak`, Linux ≥ 5.19; v1 `memory.max_usage_in_bytes`).
    pub mem_peak_bytes: Option<u64>,
    /// True when the kernel OOM-killed at least one process of the payload.
    pub oom_killed: bool,
    /// Number of OOM kills (v2 `memory.events` oom_kill; v1 `memory.oom_control` oom_kill).
    pub oom_kills: u64,
    /// Peak number of tasks (`pids.peak`, Linux ≥ 6.13), when the kernel has it.
    pub pids_peak: Option<u64>,
}
