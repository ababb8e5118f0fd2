//! The `pilotbox run` launcher (docs/launcher-design.md): the setuid-root path from a pilot's
//! call to a supervised payload. One file per step of the launch sequence, in order:
//!
//! 1. [`sanitize`] — environment, fds, signals, umask, rlimits, dumpability (first in `main`);
//!    then [`split`] — a setuid call by a non-root caller forks into the caller's front and a
//!    worker with every uid 0, which does everything below;
//! 2. policy and pilot check (`policy::authz`), in `cli/run.rs`;
//! 3. [`credfile`] — read the proxy *as the caller*;
//! 4. [`unprivileged`] — verify it in a child with no privilege;
//! 5. decide (`policy::authz::decide`);
//! 6. [`prepare`] — state dir, proxy copy, work-dir hand-over, the payload Spec;
//! 7. launch and supervise (`engine::run`), writing the [`state`] record once running;
//! 8. finish: report, [`audit`] end record, cleanup (the hand-over back and the [`setid`] strip
//!    of the work dir, both with the fd-relative [`walk`]).
pub mod audit;
pub mod credfile;
pub mod handover;
pub mod prepare;
pub mod sanitize;
pub mod setid;
pub mod split;
pub mod state;
pub mod unprivileged;
pub mod walk;

/// Verification options for this node: the trust and VOMS directories, and this host's name
/// for the AC target check (RFC 5755 §4.3.2).
pub fn verify_options(
    ca_dir: std::path::PathBuf,
    voms_dir: std::path::PathBuf,
) -> policy::credentials::VerifyOptions {
    let mut opts = policy::credentials::VerifyOptions::new(ca_dir);
    opts.voms_dir = Some(voms_dir);
    opts.host_fqdn = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok());
    opts
}

/// Step 2 of the launch (for `pilotbox run` and `pilotbox-nosuid` alike): the installed policy
/// (its permission rule included), and the caller must be one of its pilots.
pub fn policy_for_pilot(
    caller: &sanitize::Caller,
) -> Result<policy::authz::Policy, policy::Denial> {
    let policy = policy::authz::Policy::load_system()?;
    let mut gids = caller.groups.clone();
    gids.push(caller.gid);
    policy::authz::check_pilot(&policy, caller.uid, &gids)?;
    Ok(policy)
}
