//! Who the payload is: its uid/gids inside the user namespace, and no capabilities at all.
//!
//! The kernel's automatic capability clearing on setuid (`cap_emulate_setxuid`) only triggers
//! when the old uid is root *of the current user namespace*. Our stage processes are host root,
//! which the payload's user namespace deliberately leaves unmapped, so that rule never fires:
//! every set is cleared explicitly here and read back, failing closed if anything remains.

use crate::syscall::Syscall;
use caps::{CapSet, Capability, CapsHashSet};
use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{step}: {errno}")]
    Sys { step: &'static str, errno: Errno },
    #[error("capabilities ({step}): {err}")]
    Caps { step: &'static str, err: String },
    #[error("capability set {0:?} still not empty after dropping")]
    Leftover(CapSet),
}

fn caps_err(step: &'static str) -> impl Fn(caps::errors::CapsError) -> IdentityError {
    move |e| IdentityError::Caps {
        step,
        err: e.to_string(),
    }
}

/// Drop the bounding and ambient sets and the inheritable set. Needs CAP_SETPCAP, so it runs
/// before the uid switch.
fn drop_inheritable_sets() -> Result<(), IdentityError> {
    caps::clear(None, CapSet::Bounding).map_err(caps_err("clear bounding"))?;
    caps::clear(None, CapSet::Ambient).map_err(caps_err("clear ambient"))?;
    caps::clear(None, CapSet::Inheritable).map_err(caps_err("clear inheritable"))?;
    Ok(())
}

/// Become the payload: supplementary groups, gid, uid (all three ids of each), then no
/// capability in any of the five sets. `groups: None` keeps the current supplementary groups
/// (an unprivileged user namespace, where `setgroups` is denied).
pub fn become_payload(
    sys: &dyn Syscall,
    uid: u32,
    gid: u32,
    groups: Option<&[u32]>,
) -> Result<(), IdentityError> {
    drop_inheritable_sets()?;
    // Order matters: setgroups and setresgid need CAP_SETGID, which setresuid takes away.
    if let Some(groups) = groups {
        sys.setgroups(groups).map_err(|errno| IdentityError::Sys {
            step: "setgroups",
            errno,
        })?;
    }
    sys.setresgid(gid).map_err(|errno| IdentityError::Sys {
        step: "setresgid",
        errno,
    })?;
    sys.setresuid(uid).map_err(|errno| IdentityError::Sys {
        step: "setresuid",
        errno,
    })?;
    caps::clear(None, CapSet::Permitted).map_err(caps_err("clear permitted"))?;
    caps::clear(None, CapSet::Effective).map_err(caps_err("clear effective"))?;
    verify_empty(&[
        CapSet::Bounding,
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Permitted,
        CapSet::Effective,
    ])
}

/// (Dropping capabilities does not clear the parent-death signal — only uid/gid changes and
/// capability *gains* do — so init's PR_SET_PDEATHSIG survives this.)
///
/// The pid-1 init keeps exactly one capability in its own user namespace: CAP_KILL, to forward
/// signals to the payload, which runs under another uid. It keeps its (unmapped) host uid, so
/// the payload can neither signal nor ptrace it.
pub fn become_init() -> Result<(), IdentityError> {
    drop_inheritable_sets()?;
    let kill: CapsHashSet = [Capability::CAP_KILL].into_iter().collect();
    caps::set(None, CapSet::Effective, &kill).map_err(caps_err("set effective"))?;
    caps::set(None, CapSet::Permitted, &kill).map_err(caps_err("set permitted"))?;
    verify_empty(&[CapSet::Bounding, CapSet::Ambient, CapSet::Inheritable])
}

fn verify_empty(sets: &[CapSet]) -> Result<(), IdentityError> {
    for set in sets {
        let have = caps::read(None, *set).map_err(caps_err("read back"))?;
        if !have.is_empty() {
            return Err(IdentityError::Leftover(*set));
        }
    }
    Ok(())
}
