//! Compiles an OCI [`LinuxSeccomp`] profile into a classic-BPF program with libseccomp.
//!
//! Semantics follow runc (libcontainer/seccomp/seccomp_linux.go) so that profiles written for
//! Docker/runc mean the same here:
//! - the native architecture is always in the filter; `architectures` adds more, and a syscall
//!   from any other architecture kills the process (libseccomp's "bad arch" action, set to
//!   KILL_PROCESS: an unfiltered secondary ABI would be a hole);
//! - a syscall name unknown to libseccomp is skipped with a debug log, not an error, so one profile
//!   serves old and new kernels/libseccomp versions;
//! - `SCMP_ACT_ERRNO`/`SCMP_ACT_TRACE` without `errnoRet` return EPERM;
//! - a rule whose action equals the default action is skipped (libseccomp rejects it);
//! - conditions of one rule on distinct arguments are ANDed; when a rule has several conditions on
//!   the *same* argument, libseccomp cannot AND them and, like runc, each becomes its own rule
//!   (ORed);
//! - `SCMP_CMP_MASKED_EQ` takes the mask from `value` and the expected value from `valueTwo`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

use nix::sys::memfd::{memfd_create, MFdFlags};

use super::filter::{FLAG_LOG, FLAG_SPEC_ALLOW, FLAG_TSYNC};
use super::{CompiledFilter, SeccompError};

/// The largest errno a seccomp ERRNO action can meaningfully carry (the kernel clamps the 16-bit
/// data to MAX_ERRNO).
const MAX_ERRNO: u32 = 4095;
/// Syscalls take at most six arguments.
const MAX_ARGS: usize = 6;

/// Compiles `profile` into a loadable [`CompiledFilter`].
///
/// Errors name the offending field: an unsupported action (`SCMP_ACT_NOTIFY`), flag or
/// architecture, an out-of-range errno or argument index, or a libseccomp failure.
pub fn compile(profile: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    let default_action = action(
        profile.default_action(),
        profile.default_errno_ret(),
        "defaultAction",
    )?;
    let mut ctx = ScmpFilterContext::new(default_action)
        .map_err(|e| SeccompError::libseccomp("create a filter context", e))?;
    // libseccomp would set no_new_privs itself when loading; we only export, but keep the
    // context honest about who is responsible for it (CompiledFilter::load checks it).
    ctx.set_ctl_nnp(false)
        .map_err(|e| SeccompError::libseccomp("clear the NNP attribute", e))?;
    ctx.set_act_badarch(ScmpAction::KillProcess)
        .map_err(|e| SeccompError::libseccomp("set the bad-architecture action", e))?;
    // Binary-tree dispatch on the syscall number (libseccomp >= 2.5) instead of a linear chain:
    // same decisions, but a syscall walks O(log n) instructions instead of O(n), which matters
    // for every syscall on kernels without the seccomp action cache (< 5.11) and for the load
    // itself — the kernel's action-cache setup emulates the filter once per syscall number.
    ctx.set_ctl_optimize(2)
        .map_err(|e| SeccompError::libseccomp("enable binary-tree optimisation", e))?;

    for arch in profile.architectures().iter().flatten() {
        let scmp_arch = architecture(*arch)?;
        if ctx
            .is_arch_present(scmp_arch)
            .map_err(|e| SeccompError::libseccomp(format!("query architecture {arch:?}"), e))?
        {
            continue;
        }
        ctx.add_arch(scmp_arch)
            .map_err(|e| SeccompError::libseccomp(format!("add architecture {arch:?}"), e))?;
    }

    let flags = filter_flags(profile.flags().as_deref().unwrap_or(&[]))?;

    for (i, rule) in profile.syscalls().iter().flatten().enumerate() {
        let what = || format!("syscalls[{i}]");
        let act = action(rule.action(), rule.errno_ret(), &what())?;
        if act == default_action {
            tracing::debug!(rule = i, names = ?rule.names(), "seccomp: rule action equals the default action, skipped");
            continue;
        }
        let conditions = rule
            .args()
            .iter()
            .flatten()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SeccompError::InvalidProfile(format!("{}: {e}", what())))?;
        // runc: several conditions on the same argument cannot be ANDed by libseccomp; each
        // becomes its own rule.
        let mut seen = [0usize; MAX_ARGS];
        rule.args()
            .iter()
            .flatten()
            .for_each(|a| seen[a.index()] += 1);
        let split = seen.iter().any(|&n| n > 1);

        for name in rule.names() {
            let syscall = match ScmpSyscall::from_name(name) {
                Ok(s) => s,
                Err(_) => {
                    tracing::debug!(syscall = %name, "seccomp: syscall unknown to libseccomp on this architecture, skipped");
                    continue;
                }
            };
            let added = if split {
                conditions
                    .iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, syscall, &[*c]).map(|_| ()))
            } else {
                ctx.add_rule_conditional(act, syscall, &conditions)
                    .map(|_| ())
            };
            added.map_err(|e| {
                SeccompError::libseccomp(format!("add {} rule for {name}", what()), e)
            })?;
        }
    }

    CompiledFilter::from_bpf_bytes(export_bpf(&ctx)?)?.with_flags(flags)
}

/// Exports the raw BPF program. `seccomp_export_bpf_mem` only exists from libseccomp 2.6 (Debian 12
/// ships 2.5.4), so the program goes through an anonymous memory file instead.
fn export_bpf(ctx: &ScmpFilterContext) -> Result<Vec<u8>, SeccompError> {
    let memfd = memfd_create("pilotbox-seccomp-bpf", MFdFlags::MFD_CLOEXEC).map_err(|e| {
        SeccompError::InvalidProfile(format!("memfd_create for the BPF export failed: {e}"))
    })?;
    ctx.export_bpf(&memfd)
        .map_err(|e| SeccompError::libseccomp("export the BPF program", e))?;
    let mut file = File::from(memfd);
    file.seek(SeekFrom::Start(0))
        .and_then(|_| {
            let mut bpf = Vec::new();
            file.read_to_end(&mut bpf).map(|_| bpf)
        })
        .map_err(|e| {
            SeccompError::InvalidProfile(format!("reading back the exported BPF failed: {e}"))
        })
}

/// Maps an OCI action (plus its `errnoRet`) to a libseccomp action.
fn action(
    act: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
) -> Result<ScmpAction, SeccompError> {
    use LinuxSeccompAction as A;
    let errno = || -> Result<u16, SeccompError> {
        match errno_ret {
            None => Ok(libc::EPERM as u16),
            Some(e) if (1..=MAX_ERRNO).contains(&e) => Ok(e as u16),
            Some(e) => Err(SeccompError::InvalidProfile(format!(
                "{field}: errnoRet {e} is outside 1..={MAX_ERRNO}"
            ))),
        }
    };
    let plain = |a: ScmpAction| {
        if let Some(e) = errno_ret {
            Err(SeccompError::InvalidProfile(format!(
                "{field}: errnoRet {e} is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {act}"
            )))
        } else {
            Ok(a)
        }
    };
    match act {
        A::ScmpActAllow => plain(ScmpAction::Allow),
        A::ScmpActLog => plain(ScmpAction::Log),
        A::ScmpActKill | A::ScmpActKillThread => plain(ScmpAction::KillThread),
        A::ScmpActKillProcess => plain(ScmpAction::KillProcess),
        A::ScmpActTrap => plain(ScmpAction::Trap),
        A::ScmpActErrno => Ok(ScmpAction::Errno(i32::from(errno()?))),
        A::ScmpActTrace => Ok(ScmpAction::Trace(errno()?)),
        A::ScmpActNotify => Err(SeccompError::Unsupported {
            what: "seccomp action (no seccomp agent in pilotbox)",
            value: format!("{act} in {field}"),
        }),
    }
}

/// Maps an OCI argument condition to a libseccomp comparison.
fn condition(arg: &LinuxSeccompArg) -> Result<ScmpArgCompare, String> {
    use LinuxSeccompOperator as O;
    if arg.index() >= MAX_ARGS {
        return Err(format!(
            "argument index {} is not below {MAX_ARGS}",
            arg.index()
        ));
    }
    let op = match arg.op() {
        O::ScmpCmpNe => ScmpCompareOp::NotEqual,
        O::ScmpCmpLt => ScmpCompareOp::Less,
        O::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        O::ScmpCmpEq => ScmpCompareOp::Equal,
        O::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        O::ScmpCmpGt => ScmpCompareOp::Greater,
        O::ScmpCmpMaskedEq => {
            return Ok(ScmpArgCompare::new(
                arg.index() as u32,
                ScmpCompareOp::MaskedEqual(arg.value()),
                arg.value_two().unwrap_or(0),
            ))
        }
    };
    Ok(ScmpArgCompare::new(arg.index() as u32, op, arg.value()))
}

/// Maps an OCI architecture to libseccomp's token.
fn architecture(arch: Arch) -> Result<ScmpArch, SeccompError> {
    Ok(match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    })
}

/// Maps the OCI filter flags to `SECCOMP_FILTER_FLAG_*` bits.
fn filter_flags(flags: &[LinuxSeccompFilterFlag]) -> Result<u32, SeccompError> {
    use LinuxSeccompFilterFlag as F;
    flags.iter().try_fold(0, |acc, f| {
        Ok(acc
            | match f {
                F::SeccompFilterFlagTsync => FLAG_TSYNC,
                F::SeccompFilterFlagLog => FLAG_LOG,
                F::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
                // Only meaningful with SECCOMP_FILTER_FLAG_NEW_LISTENER (a notify agent).
                F::SeccompFilterFlagWaitKillableRecv => {
                    return Err(SeccompError::Unsupported {
                        what: "seccomp filter flag (no seccomp agent in pilotbox)",
                        value: f.to_string(),
                    })
                }
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::{default_profile, ProfileOptions};

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn default_profile_compiles_to_a_loadable_size() {
        let f = compile(&default_profile(&ProfileOptions::default())).unwrap();
        assert!(
            f.instructions() > 100 && f.instructions() < 4096,
            "{}",
            f.instructions()
        );
        assert_eq!(f.flags(), 0);
    }

    #[test]
    fn x86_only_names_resolve_on_x86_64() {
        // The 32-bit ABI part of the filter depends on these resolving (to pseudo numbers).
        for name in ["_llseek", "socketcall", "fcntl64", "mmap2"] {
            assert!(ScmpSyscall::from_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn unknown_syscall_names_are_skipped() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["no_such_syscall_xyz","keyctl"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        assert!(compile(&p).is_ok());
    }

    #[test]
    fn rejects_what_it_cannot_honour() {
        let notify = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["keyctl"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(
            matches!(compile(&notify), Err(SeccompError::Unsupported { .. })),
            "{:?}",
            compile(&notify)
        );
        let index = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["ioctl"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(matches!(
            compile(&index),
            Err(SeccompError::InvalidProfile(_))
        ));
        let errno_on_allow = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":1}]}"#,
        );
        assert!(matches!(
            compile(&errno_on_allow),
            Err(SeccompError::InvalidProfile(_))
        ));
        let big_errno = profile(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}"#);
        assert!(matches!(
            compile(&big_errno),
            Err(SeccompError::InvalidProfile(_))
        ));
        let flag = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        );
        assert!(matches!(
            compile(&flag),
            Err(SeccompError::Unsupported { .. })
        ));
    }

    #[test]
    fn flags_and_same_argument_conditions() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_LOG"],
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[
                {"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
              {"names":["read"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        let f = compile(&p).unwrap();
        assert_eq!(f.flags(), crate::seccomp::filter::FLAG_LOG);
    }
}
