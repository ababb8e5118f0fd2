//! `pilotbox-nosuid`: pilotbox for sites that allow no identity switch (issue 6).
//!
//! A separate binary (`bin/pilotbox-nosuid.rs`), not a mode of `pilotbox`: there is no option,
//! policy key or environment variable that turns one into the other. It runs as the calling
//! pilot and never asks for more:
//!
//! 1. sanitize (the same [`crate::launcher::sanitize`] as `pilotbox`), then [`refuse_privilege`]:
//!    installed setuid/setgid or with file capabilities it stops (site error 123) before
//!    reading anything — being unprivileged is what makes it safe to run;
//! 2. the site policy from the same build-time path, with the same ownership rule (a policy the
//!    caller could write would authorize nothing); the pilot check;
//! 3. the proxy, opened by the caller and checked as gLExec did ([`verify::read_proxy`]), verified
//!    in a child confined by seccomp ([`verify`]);
//! 4. the decision with [`policy::lease::preview::PreviewStore`]: bans, rules, groups, limits —
//!    the account it *would* map to — without opening, reading or writing a lease store;
//! 5. audit to syslog ([`audit`]), the only channel an unprivileged process has to a log it
//!    cannot rewrite;
//! 6. the payload under the caller's own uid, in the engine's sandbox run unprivileged
//!    (`RunOptions::unprivileged`): user namespace mapping only the caller's uid/gid to
//!    themselves (no root inside), new pid/mount/ipc/uts/cgroup namespaces, read-only host root,
//!    private /tmp, the caller's home and proxy hidden, a copy of the proxy at the same
//!    `X509_USER_PROXY` path as `pilotbox run`, no capabilities, no_new_privs, seccomp; in a
//!    delegated cgroup-v2 subtree when the caller has one ([`cgroup`]);
//! 7. a state record (`pilotbox`'s format, in a directory of the caller's own: [`state`]) while
//!    the payload runs, for the lifecycle commands `ps`, `status`, `kill`, `suspend`, `resume`,
//!    `renew`, `gc` ([`lifecycle`]): `pilotbox`'s output formats and exit classes, on the
//!    caller's own payloads only. Without a delegated cgroup `kill` goes through the sandbox's
//!    pid-namespace init (the kernel ends the whole namespace with it) and `suspend`/`resume`
//!    are refused (123): freezing needs the cgroup freezer.
//!
//! What it does *not* give (docs/admin-guide.md): the payload runs with the pilot's uid, so
//! files the pilot can reach and the payload can reach differ only by what the sandbox hides,
//! and per-payload accounting by uid is impossible.

#![forbid(unsafe_code)]

pub mod audit;
pub mod cgroup;
pub mod launch;
pub mod lifecycle;
pub mod map;
pub mod state;
pub mod verify;

use caps::CapSet;
use nix::unistd::{getresgid, getresuid};
use policy::{Class, Denial};

/// Prefix of every message on stderr.
pub const NAME: &str = "pilotbox-nosuid";

/// Refuse to run with any privilege the caller does not have: a setuid or setgid installation
/// (effective or saved id differs from the real one — `euid 0 ≠ ruid` included) or file
/// capabilities (a non-root process holding capabilities). Checked before anything else: the
/// binary's security argument is that it can do nothing its caller could not.
pub fn refuse_privilege() -> Result<(), Denial> {
    let site = |r: String| Denial::new(Class::SiteError, r);
    let u = getresuid().map_err(|e| site(format!("getresuid: {e}")))?;
    let g = getresgid().map_err(|e| site(format!("getresgid: {e}")))?;
    if u.effective != u.real || u.saved != u.real {
        return Err(site(format!(
            "{NAME} is installed setuid (real uid {}, effective uid {}): it must never run with \
             privilege (chmod u-s {NAME}; the setuid launcher is `pilotbox`)",
            u.real, u.effective
        )));
    }
    if g.effective != g.real || g.saved != g.real {
        return Err(site(format!(
            "{NAME} is installed setgid (real gid {}, effective gid {}): chmod g-s {NAME}",
            g.real, g.effective
        )));
    }
    if !u.real.is_root() {
        for set in [CapSet::Permitted, CapSet::Effective, CapSet::Ambient] {
            let have = caps::read(None, set).map_err(|e| site(format!("capabilities: {e}")))?;
            if !have.is_empty() {
                return Err(site(format!(
                    "{NAME} runs with capabilities ({set:?}: {have:?}): remove them (setcap -r {NAME})"
                )));
            }
        }
    }
    Ok(())
}

/// The caller's login name from NSS, or its uid as text.
pub fn account_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}
