//! pilotbox's default seccomp profile.
//!
//! **Allow-list, default `SCMP_ACT_ERRNO(ENOSYS)`.** An allow-list (as Docker and Podman use)
//! means a syscall added to a future kernel, or an obscure old one nobody reviewed, is
//! unreachable until someone decides otherwise; with a deny-list every new kernel interface
//! (io_uring was the painful example) is open by default on every worker node the day it boots a
//! new kernel. The default errno is ENOSYS rather than Docker's EPERM, as containers/common's
//! profile does since 2021 (containers/common#573, after runc#2746 and moby#42871): for a
//! syscall the filter does not know, "not implemented" is the
//! answer libc and runtimes have fallbacks for (glibc falls back from `clone3` to `clone`, from
//! `faccessat2` to `faccessat`, ...), whereas EPERM made such programs fail outright in Docker.
//! Syscalls we deny *on purpose* return EPERM instead, which is what the kernel itself would
//! answer an unprivileged caller; see [`super::groups`] for every group and its reason. The
//! known weakness of an ENOSYS default — a call that matches none of a syscall's conditional
//! rules falls through to ENOSYS instead of EPERM (moby#42871) — does not arise here: each
//! syscall with argument rules gets a complete, disjoint set of ALLOW and EPERM rules.
//!
//! Two rules need argument filters:
//! - `ioctl` is allowed except `TIOCSTI` (push characters into the terminal's input queue) and
//!   `TIOCLINUX` (console selection/paste), which would let a payload type commands into the
//!   pilot's terminal when they share one (CVE-2017-5226, blocked the same way by bubblewrap).
//!   The kernel truncates the request to 32 bits, so the comparison masks the upper half:
//!   `0x1_0000_5412` must not slip through as "not TIOCSTI".
//! - `clone`/`unshare` may create nested user namespaces (unprivileged Apptainer/Singularity needs
//!   them) unless [`ProfileOptions::allow_nested_userns`] is false; nested *network* namespaces
//!   are refused unless [`ProfileOptions::allow_nested_netns`]: a network namespace owned by a user
//!   namespace the payload created hands it CAP_NET_ADMIN over netfilter/nf_tables, the source of
//!   most unprivileged-user-namespace privilege escalations of recent years. `clone3` passes its
//!   flags in memory, where seccomp cannot look, so whenever some flag is refused `clone3` gets
//!   ENOSYS and glibc falls back to `clone` (Docker does the same).
//! - The calls that give a file a mode — `chmod`, `fchmod`, `fchmodat`, `fchmodat2`, `open`,
//!   `openat`, `creat`, `mknod`, `mknodat` — get EPERM when the mode has `S_ISUID` or `S_ISGID`
//!   (see [`setid_mode_rules`]). The sandbox's `nosuid` mounts and `no_new_privs` only protect
//!   the *inside*: the work dir is the pilot's directory on the host, where a set-id file the
//!   payload leaves (owned by the pilot on an idmapped mount, by the pool uid after a chown
//!   hand-over) makes any local process that runs it the pilot or the pool account. Nix's build
//!   sandbox refuses the same calls the same way (NixOS/nix#10501 added `fchmodat2`).
//!   `openat2` passes its mode in memory and is therefore left to the ENOSYS default. Rules are
//!   inherited by every nested user namespace the payload creates (seccomp filters cannot be
//!   dropped), so even "root" in `unshare -Ur` cannot make a set-id file. What seccomp cannot see
//!   — a `security.capability` xattr (its name is in memory), a file that was set-id before the
//!   run — the launcher strips after the run ([`crate::launcher::setid`]).
//!
//! Architectures: on x86_64 the filter covers x86_64 and, only when
//! [`ProfileOptions::allow_ia32`], the 32-bit i386 ABI (`int 0x80`, `sysenter`) with the same
//! rules. Any syscall through an ABI not in the filter — i386 by default, x32 always — kills the
//! process (libseccomp's bad-architecture action, see [`super::compile`]), so no secondary ABI is
//! ever unfiltered. Why kill i386 by default: grid payloads are 64-bit (EL7 and later ship no
//! 32-bit userland by default), the compat syscall layer is extra kernel attack surface, and each
//! extra architecture repeats the whole allow-list in the BPF program, which costs load time at
//! every launch (measured here: ≈555 instructions and ≈0.2 ms to load for x86_64 alone, ≈1500 and
//! ≈0.5 ms with i386 and x32 added; the set-id rules brought x86_64 to 667 instructions, i386
//! included 1082 → 1248, and `seccomp(2)` load ≈82 → ≈87–97 µs on the same host). x32 is disabled in almost every distribution kernel and has
//! no users, so it gets no option. (On aarch64, `allow_ia32` likewise adds 32-bit ARM.)

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

use super::groups::{
    DEBUGGING, DENIED_EPERM, EVENTS, FILES, MEMORY, NESTED_NAMESPACES, NETWORK_AND_IPC, PROCESS,
    SIGNALS_AND_TIME,
};

/// `TIOCSTI` and `TIOCLINUX` (include/uapi/asm-generic/ioctls.h).
const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541C;
/// `CLONE_NEWUSER` and `CLONE_NEWNET` (include/uapi/linux/sched.h).
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
/// Index of the flags argument of `clone`: s390 swaps the first two arguments.
const CLONE_FLAGS_ARG: usize = if cfg!(target_arch = "s390x") { 1 } else { 0 };

/// Knobs of the default profile. `Default` is what a grid site normally wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileOptions {
    /// Let the payload create user namespaces (and then mount, pivot_root, setns in them).
    /// Needed by unprivileged Apptainer/Singularity. Default: true.
    pub allow_nested_userns: bool,
    /// Let the payload create network namespaces (only possible inside a nested user namespace).
    /// Default: false (netfilter attack surface, see the module docs).
    pub allow_nested_netns: bool,
    /// Let the payload ptrace its own processes (gdb, strace). Forced off on kernels older than
    /// 4.8, where a tracer could bypass seccomp. Default: true.
    pub allow_ptrace: bool,
    /// Run 32-bit i386 binaries (filtered with the same rules) instead of killing them at their
    /// first system call. Default: false (see the module docs).
    pub allow_ia32: bool,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            allow_nested_userns: true,
            allow_nested_netns: false,
            allow_ptrace: true,
            allow_ia32: false,
        }
    }
}

/// Builds pilotbox's default profile (see the module docs for the design).
pub fn default_profile(opts: &ProfileOptions) -> LinuxSeccomp {
    let mut rules: Vec<LinuxSyscall> = Vec::new();

    let mut allowed: Vec<&str> = [
        PROCESS,
        SIGNALS_AND_TIME,
        MEMORY,
        FILES,
        EVENTS,
        NETWORK_AND_IPC,
    ]
    .concat();
    let ptrace_ok = opts.allow_ptrace && kernel_at_least(4, 8);
    if ptrace_ok {
        allowed.extend_from_slice(DEBUGGING);
    }
    if opts.allow_nested_userns {
        allowed.extend_from_slice(NESTED_NAMESPACES);
    }
    rules.push(rule(
        &allowed,
        LinuxSeccompAction::ScmpActAllow,
        None,
        vec![],
    ));

    let mut denied: Vec<&str> = DENIED_EPERM
        .iter()
        .flat_map(|(_, names)| names.iter().copied())
        .collect();
    if !ptrace_ok {
        denied.extend_from_slice(DEBUGGING);
    }
    if !opts.allow_nested_userns {
        denied.extend_from_slice(NESTED_NAMESPACES);
    }
    rules.push(errno(&denied, libc::EPERM, vec![]));

    rules.extend(ioctl_rules());
    rules.extend(namespace_creation_rules(opts));
    rules.extend(setid_mode_rules());

    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(libc::ENOSYS as u32));
    profile.set_architectures(Some(architectures(opts)));
    profile.set_syscalls(Some(rules));
    profile
}

fn rule(
    names: &[&str],
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    args: Vec<LinuxSeccompArg>,
) -> LinuxSyscall {
    let mut r = LinuxSyscall::default();
    r.set_names(names.iter().map(|n| n.to_string()).collect());
    r.set_action(action);
    r.set_errno_ret(errno_ret);
    r.set_args(if args.is_empty() { None } else { Some(args) });
    r
}

fn errno(names: &[&str], errno: i32, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    rule(
        names,
        LinuxSeccompAction::ScmpActErrno,
        Some(errno as u32),
        args,
    )
}

fn masked_eq(index: usize, mask: u64, value: u64) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
        .value(mask)
        .value_two(value)
        .build()
        .expect("all fields of LinuxSeccompArg are set")
}

/// `ioctl`: allowed for every request whose low 32 bits are not TIOCSTI/TIOCLINUX, EPERM for those.
///
/// seccomp has no "masked not-equal", and libseccomp silently lets an unconditional rule win over
/// conditional ones for the same syscall, so "allow ioctl, except..." cannot be written as
/// "allow" plus "deny if". Instead the allowed set is written as disjoint prefix classes of the
/// 32-bit request (see [`complement_prefixes`]), one single-condition ALLOW rule each, and the two
/// refused values get their own EPERM rules: every request matches exactly one rule, so the
/// outcome never depends on how libseccomp orders rules.
fn ioctl_rules() -> Vec<LinuxSyscall> {
    let refused = [TIOCSTI, TIOCLINUX];
    let mut rules: Vec<LinuxSyscall> = complement_prefixes(&refused)
        .into_iter()
        .map(|(mask, value)| {
            rule(
                &["ioctl"],
                LinuxSeccompAction::ScmpActAllow,
                None,
                vec![masked_eq(1, mask.into(), value.into())],
            )
        })
        .collect();
    rules.extend(refused.iter().map(|&r| {
        errno(
            &["ioctl"],
            libc::EPERM,
            vec![masked_eq(1, 0xFFFF_FFFF, r.into())],
        )
    }));
    rules
}

/// Covers all 32-bit values except `excluded` with disjoint `(mask, value)` classes, where a class
/// matches `x` iff `x & mask == value` and every mask is a run of leading one bits (a prefix).
/// Walks the binary trie of `excluded` from the top bit: a subtree containing none of them is one
/// class. At most 32 classes per excluded value.
fn complement_prefixes(excluded: &[u32]) -> Vec<(u32, u32)> {
    fn walk(prefix: u32, depth: u32, excluded: &[u32], out: &mut Vec<(u32, u32)>) {
        if excluded.is_empty() {
            let mask = if depth == 0 {
                0
            } else {
                u32::MAX << (32 - depth)
            };
            out.push((mask, prefix));
            return;
        }
        if depth == 32 {
            return; // exactly an excluded value
        }
        let bit = 1u32 << (31 - depth);
        for set in [false, true] {
            let sub: Vec<u32> = excluded
                .iter()
                .copied()
                .filter(|x| (x & bit != 0) == set)
                .collect();
            walk(
                if set { prefix | bit } else { prefix },
                depth + 1,
                &sub,
                out,
            );
        }
    }
    let mut out = Vec::new();
    let mut ex = excluded.to_vec();
    ex.sort_unstable();
    ex.dedup();
    walk(0, 0, &ex, &mut out);
    out
}

/// `S_ISUID`, `S_ISGID` (include/uapi/linux/stat.h).
const S_ISUID: u64 = 0o4000;
const S_ISGID: u64 = 0o2000;
/// `O_CREAT` and `__O_TMPFILE` (include/uapi/asm-generic/fcntl.h; the same values on x86,
/// arm and s390; `O_TMPFILE` is `__O_TMPFILE | O_DIRECTORY`, and the kernel refuses
/// `__O_TMPFILE` without `O_DIRECTORY`): the only open flags under which the kernel reads the mode.
const O_CREAT: u64 = 0o100;
const O_TMPFILE_BIT: u64 = 0o20_000_000;

/// The mode-taking calls: EPERM when the new mode has a set-id bit, ALLOW otherwise.
///
/// `(name, mode argument, flags argument)`. The argument positions are those of the generic
/// syscall ABI and the same for x86_64 and i386 (`allow_ia32` gets identical rules; libseccomp
/// resolves the names per architecture). The mode is a `umode_t`: the kernel ignores the upper
/// bits of the register, and so do these rules, which only ever look at the two set-id bits.
///
/// Like [`ioctl_rules`], every syscall gets a complete, disjoint set of single-outcome rules
/// (no "masked not-equal" exists): `mode & 06000 == 0` → ALLOW; `mode & 04000 == 04000` →
/// EPERM; `mode & 06000 == 02000` → EPERM. For `open`/`openat` the mode only matters when
/// creating (`O_CREAT` or `O_TMPFILE`): glibc and musl pass 0 otherwise, but a raw caller may
/// leave garbage there, so a set-id "mode" without a creating flag is allowed (split on the
/// flag bits, still disjoint). `creat` always creates; `mknod` makes regular files too
/// (`S_IFREG`, kernel mask `S_IALLUGO` keeps set-id bits). `mkdir` is absent on purpose: the
/// kernel drops set-id bits from its mode (see [`super::groups::FILES`]).
fn setid_mode_rules() -> Vec<LinuxSyscall> {
    const CALLS: &[(&str, usize, Option<usize>)] = &[
        ("chmod", 1, None),
        ("fchmod", 1, None),
        ("fchmodat", 2, None),
        ("fchmodat2", 2, None),
        ("creat", 1, None),
        ("mknod", 1, None),
        ("mknodat", 2, None),
        ("open", 2, Some(1)),
        ("openat", 3, Some(2)),
    ];
    let allow = LinuxSeccompAction::ScmpActAllow;
    // The two refused mode classes, disjoint: set-uid (any set-gid), set-gid without set-uid.
    let setid = [(S_ISUID, S_ISUID), (S_ISUID | S_ISGID, S_ISGID)];
    let mut rules = Vec::new();
    for &(name, mode, flags) in CALLS {
        rules.push(rule(
            &[name],
            allow,
            None,
            vec![masked_eq(mode, S_ISUID | S_ISGID, 0)],
        ));
        for (mask, value) in setid {
            let m = masked_eq(mode, mask, value);
            match flags {
                None => rules.push(errno(&[name], libc::EPERM, vec![m])),
                Some(f) => {
                    let creating = O_CREAT | O_TMPFILE_BIT;
                    rules.push(rule(
                        &[name],
                        allow,
                        None,
                        vec![m.clone(), masked_eq(f, creating, 0)],
                    ));
                    for (fm, fv) in [(O_CREAT, O_CREAT), (creating, O_TMPFILE_BIT)] {
                        rules.push(errno(
                            &[name],
                            libc::EPERM,
                            vec![m.clone(), masked_eq(f, fm, fv)],
                        ));
                    }
                }
            }
        }
    }
    rules
}

/// `clone`, `clone3`, `unshare`: see the module docs.
fn namespace_creation_rules(opts: &ProfileOptions) -> Vec<LinuxSyscall> {
    let mut refused: Vec<u64> = Vec::new();
    if !opts.allow_nested_userns {
        refused.push(CLONE_NEWUSER);
    }
    if !opts.allow_nested_netns {
        refused.push(CLONE_NEWNET);
    }
    if refused.is_empty() {
        return vec![rule(
            &["clone", "clone3", "unshare"],
            LinuxSeccompAction::ScmpActAllow,
            None,
            vec![],
        )];
    }
    let all: u64 = refused.iter().fold(0, |a, b| a | b);
    let mut rules = vec![
        rule(
            &["clone"],
            LinuxSeccompAction::ScmpActAllow,
            None,
            vec![masked_eq(CLONE_FLAGS_ARG, all, 0)],
        ),
        rule(
            &["unshare"],
            LinuxSeccompAction::ScmpActAllow,
            None,
            vec![masked_eq(0, all, 0)],
        ),
        // Equal to the default action, so compile() drops it; kept to state the intent.
        errno(&["clone3"], libc::ENOSYS, vec![]),
    ];
    for flag in refused {
        rules.push(errno(
            &["clone"],
            libc::EPERM,
            vec![masked_eq(CLONE_FLAGS_ARG, flag, flag)],
        ));
        rules.push(errno(
            &["unshare"],
            libc::EPERM,
            vec![masked_eq(0, flag, flag)],
        ));
    }
    rules
}

fn architectures(opts: &ProfileOptions) -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        if opts.allow_ia32 {
            vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86]
        } else {
            vec![Arch::ScmpArchX86_64]
        }
    } else if cfg!(target_arch = "aarch64") && opts.allow_ia32 {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

/// Whether the running kernel's release is at least `major.minor` (false if it cannot be told).
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(uts) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = uts.release().to_string_lossy();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(classes: &[(u32, u32)], x: u32) -> usize {
        classes.iter().filter(|(m, v)| x & m == *v).count()
    }

    #[test]
    fn complement_covers_everything_but_the_excluded_exactly_once() {
        let classes = complement_prefixes(&[TIOCSTI, TIOCLINUX]);
        assert!(classes.len() <= 64, "{} classes", classes.len());
        assert_eq!(matches(&classes, TIOCSTI), 0);
        assert_eq!(matches(&classes, TIOCLINUX), 0);
        // Neighbours, common requests, extremes: each in exactly one class.
        for x in [
            0,
            1,
            0x5411,
            0x5413,
            0x541B,
            0x541D,
            0x5401,
            0x541B,
            0x8004_5413,
            0x4008_5412,
            u32::MAX,
            0x8000_0000,
        ] {
            assert_eq!(matches(&classes, x), 1, "{x:#x}");
        }
        // A deterministic pseudo-random sweep.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..100_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let want = usize::from(x != TIOCSTI && x != TIOCLINUX);
            assert_eq!(matches(&classes, x), want, "{x:#x}");
        }
        assert_eq!(complement_prefixes(&[]), vec![(0, 0)]);
    }

    #[test]
    fn default_profile_has_no_name_both_allowed_and_denied_or_omitted() {
        for opts in [
            ProfileOptions::default(),
            ProfileOptions {
                allow_nested_userns: false,
                allow_ptrace: false,
                ..Default::default()
            },
        ] {
            let p = default_profile(&opts);
            let rules = p.syscalls().as_ref().unwrap();
            let unconditional = |action| {
                rules
                    .iter()
                    .filter(|r| r.action() == action && r.args().is_none())
                    .flat_map(|r| r.names().iter().cloned())
                    .collect::<Vec<_>>()
            };
            let allowed = unconditional(LinuxSeccompAction::ScmpActAllow);
            let denied = unconditional(LinuxSeccompAction::ScmpActErrno);
            for n in &allowed {
                assert!(!denied.contains(n), "{n} is both allowed and denied");
                assert!(
                    !crate::seccomp::DELIBERATELY_OMITTED.contains(&n.as_str()),
                    "{n} allowed but meant to be omitted"
                );
                // Conditional rules must never share a syscall with an unconditional one:
                // libseccomp would silently drop the conditions.
                assert!(
                    !rules
                        .iter()
                        .any(|r| r.args().is_some() && r.names().contains(n)),
                    "{n} has unconditional and conditional rules"
                );
            }
            for must in [
                "keyctl",
                "bpf",
                "perf_event_open",
                "init_module",
                "finit_module",
                "kexec_load",
                "userfaultfd",
                "open_by_handle_at",
            ] {
                assert!(denied.iter().any(|n| n == must), "{must} not denied");
            }
            assert_eq!(
                allowed.iter().any(|n| n == "mount"),
                opts.allow_nested_userns
            );
            assert_eq!(allowed.iter().any(|n| n == "ptrace"), opts.allow_ptrace);
        }
    }

    /// The actions of the rules of `profile` naming `name` whose conditions all hold for `args`
    /// (only MASKED_EQ is used by the default profile).
    fn outcomes(p: &LinuxSeccomp, name: &str, args: [u64; 6]) -> Vec<LinuxSeccompAction> {
        p.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .filter(|r| {
                r.args().iter().flatten().all(|a| {
                    assert_eq!(a.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
                    args[a.index()] & a.value() == a.value_two().unwrap()
                })
            })
            .map(|r| r.action())
            .collect()
    }

    #[test]
    fn setid_modes_are_refused_by_exactly_one_rule_and_others_allowed_by_exactly_one() {
        use LinuxSeccompAction::{ScmpActAllow as A, ScmpActErrno as E};
        let p = default_profile(&ProfileOptions::default());
        let modes = [
            (0o644, false),
            (0o755, false),
            (0o1777, false),
            (0o4755, true),
            (0o2755, true),
            (0o6755, true),
            (0o4000, true),
            (0o2000, true),
            // The kernel ignores the upper bits of a umode_t; so must the filter.
            ((1 << 32) | 0o4755, true),
            (0xFFFF_0000_0000_0000 | 0o755, false),
            (0o100_644 | 0o4000, true), // S_IFREG|04644 for mknod
        ];
        for (name, mode_arg, flags_arg) in [
            ("chmod", 1, None),
            ("fchmod", 1, None),
            ("fchmodat", 2, None),
            ("fchmodat2", 2, None),
            ("creat", 1, None),
            ("mknod", 1, None),
            ("mknodat", 2, None),
            ("open", 2, Some(1)),
            ("openat", 3, Some(2)),
        ] {
            let flag_sets: &[(u64, bool)] = match flags_arg {
                None => &[(0, true)],
                Some(_) => &[
                    (libc::O_RDONLY as u64, false),
                    (libc::O_WRONLY as u64 | libc::O_APPEND as u64, false),
                    (libc::O_CREAT as u64 | libc::O_WRONLY as u64, true),
                    (libc::O_CREAT as u64 | libc::O_EXCL as u64, true),
                    (libc::O_TMPFILE as u64 | libc::O_RDWR as u64, true),
                    (libc::O_DIRECTORY as u64, false),
                ],
            };
            for &(mode, setid) in &modes {
                for &(flags, creating) in flag_sets {
                    let mut args = [0u64; 6];
                    args[mode_arg] = mode;
                    if let Some(f) = flags_arg {
                        args[f] = flags;
                    }
                    let got = outcomes(&p, name, args);
                    let want = if setid && creating { E } else { A };
                    assert_eq!(got, vec![want], "{name} mode {mode:#o} flags {flags:#o}");
                }
            }
        }
        // openat2 (mode in memory) is left to the ENOSYS default; io_uring stays out.
        for gone in ["openat2", "io_uring_setup", "io_uring_enter"] {
            assert!(outcomes(&p, gone, [0; 6]).is_empty(), "{gone} has a rule");
        }
    }

    #[test]
    fn kernel_version_parses() {
        assert!(kernel_at_least(2, 6));
        assert!(!kernel_at_least(999, 0));
    }
}
