//! Pure parsers for cgroupfs and procfs text formats, and the OCI→cgroup-v2 value conversions.
//! No I/O here, so all of it is unit-tested without root.
//!
//! Formats follow the kernel's `Documentation/admin-guide/cgroup-v2.rst` ("Interface Files":
//! flat keyed, nested keyed, newline separated) and `cgroups(7)` for `/proc/PID/cgroup`.

use std::collections::BTreeMap;

/// Look up `key` in a *flat keyed* file (`KEY VALUE` per line): `cpu.stat`, `memory.events`,
/// `cpuacct.stat`, v1 `memory.oom_control`. `None` when the key is absent or not a number.
pub fn flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        match (it.next(), it.next(), it.next()) {
            (Some(k), Some(v), None) if k == key => v.parse().ok(),
            _ => None,
        }
    })
}

/// A *newline separated* list of ids (`cgroup.procs`, v1 `tasks`). Rejects anything that is not a
/// positive pid rather than guessing: a misparse here would make `kill()` miss a process.
pub fn pid_list(text: &str) -> Result<Vec<i32>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.parse::<i32>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(format!("not a pid: {l:?}")),
        })
        .collect()
}

/// A space separated controller list (`cgroup.controllers`, `cgroup.subtree_control`).
pub fn controller_list(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// The membership of one process as shown by `/proc/PID/cgroup` (cgroups(7)): one line
/// `hierarchy-ID:controller-list:cgroup-path` per hierarchy. The v2 line has ID 0 and an empty
/// controller list; v1 lines name their controllers (`cpu,cpuacct`, `name=systemd`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    /// Path in the unified (v2) hierarchy, from the `0::` line, if any.
    pub unified: Option<String>,
    /// Path per v1 controller name (each controller of a co-mounted hierarchy is listed).
    pub v1: BTreeMap<String, String>,
}

impl ProcCgroup {
    /// The v1 path of `controller` (e.g. `"memory"`).
    pub fn v1_path(&self, controller: &str) -> Option<&str> {
        self.v1.get(controller).map(String::as_str)
    }
}

/// Parse `/proc/PID/cgroup`. Paths are kept verbatim (relative to the reader's cgroup namespace
/// root). A line that does not have three `:`-separated fields is an error; a path may itself
/// contain `:` so only the first two separators count.
pub fn proc_cgroup(text: &str) -> Result<ProcCgroup, String> {
    let mut out = ProcCgroup::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctls), Some(path)) = (it.next(), it.next(), it.next()) else {
            return Err(format!("malformed line {line:?}"));
        };
        if id.parse::<u32>().is_err() || !path.starts_with('/') {
            return Err(format!("malformed line {line:?}"));
        }
        if id == "0" && ctls.is_empty() {
            out.unified = Some(path.to_owned());
        } else {
            for c in ctls.split(',').filter(|c| !c.is_empty()) {
                out.v1.insert(c.to_owned(), path.to_owned());
            }
        }
    }
    Ok(out)
}

/// The value of the v1 `freezer.state` file.
pub fn freezer_state(text: &str) -> &str {
    text.trim()
}

/// OCI `cpu.shares` (v1, 2..=262144, default 1024) → v2 `cpu.weight` (1..=10000, default 100),
/// the linear map runc and crun use (runc `libcontainer/cgroups/utils.go` ConvertCPUSharesToCgroupV2Value).
/// 0 means "unset".
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// OCI `blockIO.weight` (v1 blkio, 10..=1000) → v2 `io.weight` (1..=10000), as runc does
/// (ConvertBlkIOToIOWeightValue). 0 means unset.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// What to write to v2 `memory.swap.max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapV2 {
    /// Leave the file alone.
    Unset,
    /// Write `max`.
    Max,
    /// Write this many bytes of swap (beyond memory).
    Bytes(u64),
}

/// OCI `memory.swap` is the v1 *memory+swap* total; v2 `memory.swap.max` is swap alone. Same rules
/// as runc's ConvertMemorySwapToCgroupV2Value: `-1` = unlimited, `0` = unset, and a swap total
/// needs a memory limit no larger than it.
pub fn swap_to_v2(swap: Option<i64>, limit: Option<i64>) -> Result<SwapV2, String> {
    let swap = swap.unwrap_or(0);
    let limit = limit.unwrap_or(0);
    if limit == -1 && swap == 0 {
        return Ok(SwapV2::Max);
    }
    match swap {
        -1 => return Ok(SwapV2::Max),
        0 => return Ok(SwapV2::Unset),
        s if s < -1 => return Err(format!("memory.swap {s} is negative")),
        _ => {}
    }
    if limit == 0 || limit == -1 {
        return Err("memory.swap set without a memory limit".into());
    }
    if limit < 0 {
        return Err(format!("memory.limit {limit} is negative"));
    }
    if swap < limit {
        return Err(format!(
            "memory.swap {swap} (memory+swap) is below memory.limit {limit}"
        ));
    }
    Ok(SwapV2::Bytes((swap - limit) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU_STAT_V2: &str = "usage_usec 183211\nuser_usec 120000\nsystem_usec 63211\n\
        core_sched.force_idle_usec 0\nnr_periods 10\nnr_throttled 4\nthrottled_usec 51234\n\
        nr_bursts 0\nburst_usec 0\n";

    #[test]
    fn cpu_stat_fields() {
        assert_eq!(flat_keyed(CPU_STAT_V2, "user_usec"), Some(120_000));
        assert_eq!(flat_keyed(CPU_STAT_V2, "system_usec"), Some(63_211));
        assert_eq!(flat_keyed(CPU_STAT_V2, "nr_throttled"), Some(4));
        // a prefix of a key must not match
        assert_eq!(flat_keyed(CPU_STAT_V2, "usage"), None);
        assert_eq!(flat_keyed(CPU_STAT_V2, "missing"), None);
    }

    #[test]
    fn memory_events_and_v1_oom_control() {
        let ev = "low 0\nhigh 0\nmax 17\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(flat_keyed(ev, "oom_kill"), Some(1));
        assert_eq!(flat_keyed(ev, "oom"), Some(2));
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(flat_keyed(v1, "oom_kill"), Some(3));
        assert_eq!(flat_keyed("oom_kill x\n", "oom_kill"), None);
        assert_eq!(flat_keyed("oom_kill 1 2\n", "oom_kill"), None);
    }

    #[test]
    fn cpuacct_stat_v1() {
        let t = "user 250\nsystem 37\n";
        assert_eq!(flat_keyed(t, "user"), Some(250));
        assert_eq!(flat_keyed(t, "system"), Some(37));
    }

    #[test]
    fn pids() {
        assert_eq!(pid_list("12\n 7\n\n").unwrap(), vec![12, 7]);
        assert_eq!(pid_list("").unwrap(), Vec::<i32>::new());
        assert!(pid_list("12\nabc\n").is_err());
        assert!(pid_list("0\n").is_err());
        assert!(pid_list("-3\n").is_err());
    }

    #[test]
    fn proc_cgroup_pure_v2() {
        let p = proc_cgroup("0::/system.slice/condor.service/slot1\n").unwrap();
        assert_eq!(
            p.unified.as_deref(),
            Some("/system.slice/condor.service/slot1")
        );
        assert!(p.v1.is_empty());
    }

    #[test]
    fn proc_cgroup_hybrid_like_this_host() {
        let text = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n\
                    4:memory:/process_api/d172e9fd\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
        let p = proc_cgroup(text).unwrap();
        assert_eq!(p.unified.as_deref(), Some("/"));
        assert_eq!(p.v1_path("memory"), Some("/process_api/d172e9fd"));
        assert_eq!(p.v1_path("pids"), Some("/"));
        assert_eq!(p.v1_path("name=systemd"), Some("/"));
    }

    #[test]
    fn proc_cgroup_v1_comounted_and_colon_in_path() {
        let text = "4:cpu,cpuacct:/slurm/uid_1000/job_7/step_0\n3:memory:/a:b\n";
        let p = proc_cgroup(text).unwrap();
        assert_eq!(p.unified, None);
        assert_eq!(p.v1_path("cpu"), Some("/slurm/uid_1000/job_7/step_0"));
        assert_eq!(p.v1_path("cpuacct"), Some("/slurm/uid_1000/job_7/step_0"));
        assert_eq!(p.v1_path("memory"), Some("/a:b"));
    }

    #[test]
    fn proc_cgroup_rejects_garbage() {
        assert!(proc_cgroup("garbage\n").is_err());
        assert!(proc_cgroup("x:memory:/\n").is_err());
        assert!(proc_cgroup("3:memory:relative\n").is_err());
    }

    #[test]
    fn shares_and_weights() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39); // runc: 1024 -> 39
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(u64::MAX), 10_000);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(0), 0);
    }

    #[test]
    fn swap_conversion_follows_runc() {
        assert_eq!(swap_to_v2(None, None), Ok(SwapV2::Unset));
        assert_eq!(swap_to_v2(None, Some(-1)), Ok(SwapV2::Max));
        assert_eq!(swap_to_v2(Some(-1), Some(100)), Ok(SwapV2::Max));
        assert_eq!(swap_to_v2(Some(300), Some(100)), Ok(SwapV2::Bytes(200)));
        assert_eq!(swap_to_v2(Some(100), Some(100)), Ok(SwapV2::Bytes(0)));
        assert!(swap_to_v2(Some(50), Some(100)).is_err());
        assert!(swap_to_v2(Some(300), None).is_err());
        assert!(swap_to_v2(Some(-5), Some(100)).is_err());
    }
}
