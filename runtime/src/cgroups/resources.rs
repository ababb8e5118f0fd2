//! Apply the OCI `linux.resources` of a Spec to a freshly created cgroup, v1 or v2.
//!
//! The per-controller setters of `cgroups-rs` are used where they write exactly one documented
//! file and report failure (memory limit/soft limit/memsw, pids.max, cpu.shares, cfs
//! period/quota on v1, cpuset, blkio/io throttles). We deliberately do *not* use its
//! `Cgroup::apply`: it discards errors for memory and cpuset (`update!` macro), and a limit that
//! silently failed to apply is a containment hole. Files it gets wrong or lacks are written
//! directly: v2 `cpu.max` (its setter needs the file's old value), `memory.swap.max` (OCI swap is
//! memory+swap, converted like runc), `memory.low`, `io.weight`/`blkio.weight` (it writes
//! `io.bfq.weight` on v2), `cpu.idle`, v1 `memory.oom_control`.
//! Semantics follow the OCI runtime spec "Control groups" section and runc's fs/fs2 drivers.

use std::path::{Path, PathBuf};

use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::MaxValue;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::error::{CgroupError, Result};
use super::fsio;
use super::layout::{Dir, Version};
use super::parse::{self, SwapV2};

fn lib<T>(op: &'static str, path: &Path, r: cgroups_rs::fs::error::Result<T>) -> Result<T> {
    r.map_err(|source| CgroupError::Library {
        op,
        path: path.to_owned(),
        source,
    })
}

fn invalid(what: &'static str, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidResource {
        what,
        reason: reason.into(),
    }
}

/// The v2 controllers a cgroup needs in its parent's `cgroup.subtree_control`: memory and pids
/// always (OOM accounting, memory.peak, fork-bomb containment), the others when asked for.
pub fn v2_controllers(r: Option<&LinuxResources>) -> Vec<&'static str> {
    let mut out = vec!["memory", "pids"];
    if let Some(r) = r {
        if let Some(c) = r.cpu() {
            if c.shares().is_some() || c.quota().is_some() || c.period().is_some() {
                out.push("cpu");
            }
            if c.cpus().is_some() || c.mems().is_some() {
                out.push("cpuset");
            }
        }
        if r.block_io().is_some() {
            out.push("io");
        }
    }
    out
}

/// The v1 hierarchies a payload cgroup is made in: memory, pids and freezer always (limits,
/// OOM and peak accounting, fork-bomb containment, a race-free kill), cpuacct always (CPU time
/// for the report and the APEL end record), and cpu, cpuset and blkio only when the resources
/// set something there. Every hierarchy costs a `mkdir`, a join and an `rmdir` per launch, and
/// a new cpuset cgroup must be filled from its parent before a task may join; in a hierarchy
/// it is not made in, the payload simply stays where its launcher is (e.g. the batch job's
/// cpuset), which is what a site expects when it asked for no pinning.
pub fn v1_controllers(r: Option<&LinuxResources>) -> Vec<&'static str> {
    let mut out = vec!["memory", "pids", "freezer", "cpuacct"];
    for c in v2_controllers(r) {
        match c {
            "cpu" | "cpuset" => out.push(c),
            "io" => out.push("blkio"),
            _ => {}
        }
    }
    out
}

/// Apply `r` to the cgroup's directories.
pub fn apply(version: Version, dirs: &[Dir], r: &LinuxResources) -> Result<()> {
    let dir_of = |c: &str| -> Result<PathBuf> {
        match version {
            Version::V2 => Ok(dirs[0].full()),
            Version::V1 => dirs
                .iter()
                .find(|d| d.serves(c))
                .map(Dir::full)
                .ok_or_else(|| {
                    CgroupError::Unsupported(format!(
                        "the Spec sets {c} limits but the v1 {c} controller is not mounted"
                    ))
                }),
        }
    };
    let v2 = version == Version::V2;
    if let Some(m) = r.memory() {
        memory(v2, &dir_of("memory")?, m)?;
    }
    if let Some(p) = r.pids() {
        pids(v2, &dir_of("pids")?, p.limit())?;
    }
    if let Some(c) = r.cpu() {
        if c.cpus().is_some() || c.mems().is_some() {
            cpuset(v2, &dir_of("cpuset")?, c)?;
        }
        cpu(v2, &dir_of("cpu")?, c)?;
    }
    if let Some(b) = r.block_io() {
        block_io(v2, &dir_of("blkio")?, b)?;
    }
    Ok(())
}

fn limit_value(what: &'static str, v: i64) -> Result<i64> {
    if v < -1 {
        return Err(invalid(what, format!("{v} is negative")));
    }
    Ok(v)
}

fn memory(v2: bool, dir: &Path, m: &LinuxMemory) -> Result<()> {
    let mc = MemController::new(dir.to_owned(), PathBuf::new(), v2);
    if let Some(l) = m.limit() {
        lib(
            "set memory limit",
            dir,
            mc.set_limit(limit_value("memory.limit", l)?),
        )?;
    }
    if let Some(res) = m.reservation() {
        let res = limit_value("memory.reservation", res)?;
        if v2 {
            let v = if res == -1 {
                "max".to_owned()
            } else {
                res.to_string()
            };
            fsio::write(&dir.join("memory.low"), &v)?;
        } else {
            lib("set memory soft limit", dir, mc.set_soft_limit(res))?;
        }
    }
    if v2 {
        match parse::swap_to_v2(m.swap(), m.limit()).map_err(|e| invalid("memory.swap", e))? {
            SwapV2::Unset => {}
            v => {
                let file = dir.join("memory.swap.max");
                let text = match v {
                    SwapV2::Bytes(b) => b.to_string(),
                    _ => "max".to_owned(),
                };
                if file.exists() {
                    fsio::write(&file, &text)?;
                } else {
                    tracing::warn!(
                        "{} absent (swap accounting off): swap limit not applied",
                        file.display()
                    );
                }
            }
        }
        if m.swappiness().is_some() {
            tracing::warn!("memory.swappiness has no cgroup-v2 equivalent: ignored");
        }
    } else {
        if let Some(s) = m.swap() {
            let s = limit_value("memory.swap", s)?;
            if let (Some(l), true) = (m.limit(), s != -1) {
                if l != -1 && s < l {
                    return Err(invalid(
                        "memory.swap",
                        format!("{s} (memory+swap) is below memory.limit {l}"),
                    ));
                }
            }
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                lib("set memory+swap limit", dir, mc.set_memswap_limit(s))?;
            } else {
                tracing::warn!(
                    "memory.memsw.* absent in {} (swapaccount=0): swap limit not applied",
                    dir.display()
                );
            }
        }
        if let Some(sw) = m.swappiness() {
            if sw > 100 {
                return Err(invalid("memory.swappiness", format!("{sw} > 100")));
            }
            lib("set swappiness", dir, mc.set_swappiness(sw))?;
        }
        if m.disable_oom_killer() == Some(true) {
            fsio::write(&dir.join("memory.oom_control"), "1")?;
        }
    }
    Ok(())
}

fn pids(_v2: bool, dir: &Path, limit: i64) -> Result<()> {
    // runc: 0 = leave unset, negative = unlimited.
    let v = match limit {
        0 => return Ok(()),
        l if l < 0 => MaxValue::Max,
        l => MaxValue::Value(l),
    };
    let pc = PidController::new(dir.to_owned(), PathBuf::new(), _v2);
    lib("set pids.max", dir, pc.set_pid_max(v))
}

fn cpu(v2: bool, dir: &Path, c: &LinuxCpu) -> Result<()> {
    let cc = CpuController::new(dir.to_owned(), PathBuf::new(), v2);
    if let Some(shares) = c.shares() {
        // cgroups-rs writes the number as is; the shares->weight conversion is ours on v2.
        let v = if v2 {
            parse::shares_to_weight(shares)
        } else {
            shares
        };
        if v != 0 {
            lib(
                if v2 {
                    "set cpu.weight"
                } else {
                    "set cpu.shares"
                },
                dir,
                cc.set_shares(v),
            )?;
        }
    }
    if let Some(q) = c.quota() {
        if q < -1 || q == 0 {
            return Err(invalid(
                "cpu.quota",
                format!("{q} is not -1 or a positive number of µs"),
            ));
        }
    }
    if v2 {
        if c.quota().is_some() || c.period().is_some() {
            let quota = match c.quota() {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_owned(),
            };
            let text = match c.period() {
                Some(p) => format!("{quota} {p}"),
                None => quota,
            };
            fsio::write(&dir.join("cpu.max"), &text)?;
        }
    } else {
        // Period first, then quota (runc fs/cpu.go), so a quota valid for the new period is
        // never checked against the old one.
        if let Some(p) = c.period() {
            lib("set cpu.cfs_period_us", dir, cc.set_cfs_period(p))?;
        }
        if let Some(q) = c.quota() {
            lib("set cpu.cfs_quota_us", dir, cc.set_cfs_quota(q))?;
        }
    }
    if let Some(idle) = c.idle() {
        fsio::write(&dir.join("cpu.idle"), &idle.to_string())?;
    }
    if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
        tracing::warn!("realtime cpu limits are not supported: ignored");
    }
    Ok(())
}

fn cpuset(v2: bool, dir: &Path, c: &LinuxCpu) -> Result<()> {
    let cs = CpuSetController::new(dir.to_owned(), PathBuf::new(), v2);
    // mems before cpus is irrelevant for validity; both are checked by the kernel (EINVAL for a
    // CPU outside the parent's set), which is what the half-way-failure test relies on.
    if let Some(cpus) = c.cpus() {
        lib("set cpuset.cpus", dir, cs.set_cpus(cpus))?;
    }
    if let Some(mems) = c.mems() {
        lib("set cpuset.mems", dir, cs.set_mems(mems))?;
    }
    Ok(())
}

fn device(what: &'static str, major: i64, minor: i64) -> Result<(u64, u64)> {
    if major < 0 || minor < 0 {
        return Err(invalid(what, format!("device {major}:{minor}")));
    }
    Ok((major as u64, minor as u64))
}

fn block_io(v2: bool, dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight() {
        let candidates: &[(&str, u64)] = if v2 {
            &[
                ("io.bfq.weight", u64::from(w)),
                ("io.weight", parse::blkio_weight_to_io_weight(w)),
            ]
        } else {
            &[
                ("blkio.weight", u64::from(w)),
                ("blkio.bfq.weight", u64::from(w)),
            ]
        };
        match candidates.iter().find(|(f, _)| dir.join(f).exists()) {
            Some((f, v)) => fsio::write(&dir.join(f), &v.to_string())?,
            None => tracing::warn!(
                "no io weight file in {}: blockIO.weight ignored",
                dir.display()
            ),
        }
    }
    if b.weight_device().as_ref().is_some_and(|v| !v.is_empty()) {
        tracing::warn!("blockIO.weightDevice is not supported: ignored");
    }
    let bc = BlkIoController::new(dir.to_owned(), PathBuf::new(), v2);
    type Setter = fn(&BlkIoController, u64, u64, u64) -> cgroups_rs::fs::error::Result<()>;
    let throttles: [(&'static str, _, Setter); 4] = [
        (
            "blockIO.throttleReadBpsDevice",
            b.throttle_read_bps_device(),
            BlkIoController::throttle_read_bps_for_device,
        ),
        (
            "blockIO.throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
            BlkIoController::throttle_write_bps_for_device,
        ),
        (
            "blockIO.throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
            BlkIoController::throttle_read_iops_for_device,
        ),
        (
            "blockIO.throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
            BlkIoController::throttle_write_iops_for_device,
        ),
    ];
    for (what, list, set) in throttles {
        for t in list.iter().flatten() {
            let (maj, min) = device(what, t.major(), t.minor())?;
            lib(what, dir, set(&bc, maj, min, t.rate()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxResourcesBuilder};

    #[test]
    fn needed_v2_controllers() {
        assert_eq!(v2_controllers(None), vec!["memory", "pids"]);
        let r = LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(50_000i64)
                    .cpus("0")
                    .build()
                    .unwrap(),
            )
            .block_io(
                LinuxBlockIoBuilder::default()
                    .weight(100u16)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(
            v2_controllers(Some(&r)),
            vec!["memory", "pids", "cpu", "cpuset", "io"]
        );
    }
}
