//! `renew ID --proxy FILE`: give a running payload a fresh proxy of the *same* identity.
//!
//! Sequence (docs/launcher-design.md "Lifecycle commands"):
//! 1. the record is read and the caller authorized (the launching pilot or root);
//! 2. the new proxy is read **as the caller** ([`caller::read_private_file`]: owned by the
//!    caller, not accessible to group/others, no symlink);
//! 3. it is verified in an unprivileged child ([`crate::launcher::unprivileged::verify`], the
//!    same step `pilotbox run` uses);
//! 4. the DN and the primary FQAN must equal the record's — the payload was authorized and
//!    mapped with those; anything else is refused (120) and audited;
//! 5. `cred/x509up` in the state dir is replaced atomically (a new 0600 file owned by the pool
//!    uid, fsync, `rename(2)` over the old one): the sandbox binds the *directory*, so it sees the
//!    new file at once and never a half-written one;
//! 6. the record's `cred_not_after` moves to the new proxy's end of use (the earlier of the
//!    chain's and a valid AC's notAfter; the supervisor's expiry enforcement re-reads it), and
//!    the renewal is audited.
//!
//! With a policy (always, unless root names the trust dirs and no policy loads), the launch's
//! own checks run again (issue 11 item 4): a non-root caller must still be one of `[pilots]`,
//! and the identity must not be banned now (`[ban]`: DN, CA, FQANs) — else 120, audited
//! `renew_refused`. Steps 5–6 run under the record's lock
//! ([`crate::launcher::state::Store::lock`]) on the record re-read under it, so parallel renewals
//! (and the launcher's and `gc`'s updates) never lose one another's change; both steps are
//! audited, success (`renew`) and failure (`renew_failed`, saying whether the credential was
//! already replaced).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use policy::authz::Policy;
use policy::credentials::VerifyOptions;
use policy::{Class, Denial, Identity};
use serde_json::json;

use super::caller::{self, Caller};
use super::{audit_record, control, store, LifecycleError};
use crate::launcher::audit::Audit;
use crate::launcher::state::Record;
use crate::launcher::unprivileged;

/// The credential copy inside the state dir, as bound into the sandbox.
pub const CRED_DIR: &str = "cred";
pub const CRED_FILE: &str = "x509up";

/// Why `new` may not replace the credential of `rec`, if it may not.
pub fn identity_mismatch(rec: &Record, new: &Identity) -> Option<String> {
    if new.dn != rec.dn {
        return Some(format!(
            "the new proxy is for {:?}, the payload runs for {:?}",
            new.dn, rec.dn
        ));
    }
    let primary = new.verified_fqans().first().map(String::as_str);
    if primary != rec.primary_fqan() {
        return Some(format!(
            "the new proxy's primary FQAN is {}, the payload was mapped with {}",
            primary.unwrap_or("(none)"),
            rec.primary_fqan().unwrap_or("(none)")
        ));
    }
    None
}

/// A refused renewal: the error, and the reason to audit (None when the verification could not
/// be done at all — site or temporary trouble is not a verdict on the proxy).
pub(crate) struct Refusal {
    pub err: LifecycleError,
    pub audit_reason: Option<String>,
}

/// Steps 3–4 on the verifier's answer (either binary's verifier): a proxy that is bad (120/122)
/// is rejected, one for another identity refused; else the new identity.
pub(crate) fn vet(rec: &Record, verified: Result<Identity, Denial>) -> Result<Identity, Refusal> {
    let new = match verified {
        Ok(v) => v,
        Err(d) if matches!(d.class, Class::Denied | Class::PilotError) => {
            return Err(Refusal {
                audit_reason: Some(d.reason.clone()),
                err: LifecycleError::ProxyRejected(d.reason),
            })
        }
        Err(d) => {
            return Err(Refusal {
                audit_reason: None,
                err: LifecycleError::Site {
                    what: "unprivileged verification",
                    reason: d.reason,
                },
            })
        }
    };
    if let Some(reason) = identity_mismatch(rec, &new) {
        return Err(Refusal {
            audit_reason: Some(format!("{reason} (new DN {:?})", new.dn)),
            err: LifecycleError::IdentityChanged {
                id: rec.id.clone(),
                reason,
            },
        });
    }
    Ok(new)
}

/// The `renew_refused` audit record.
pub(crate) fn refused_fields(rec: &Record, caller: Caller, reason: &str) -> serde_json::Value {
    json!({"id": rec.id, "caller_uid": caller.uid, "pilot_uid": rec.pilot_uid,
           "dn": rec.dn, "fqans": rec.fqans, "reason": reason})
}

/// The `renew` audit record (`rec` already carries the new notAfter).
pub(crate) fn renewed_fields(
    rec: &Record,
    caller: Caller,
    old_not_after: Option<String>,
) -> serde_json::Value {
    json!({"id": rec.id, "caller_uid": caller.uid, "pilot_uid": rec.pilot_uid, "dn": rec.dn,
           "fqans": rec.fqans, "old_not_after": old_not_after, "cred_not_after": rec.cred_not_after})
}

/// The launch's policy checks, again: a non-root caller must still be a pilot, `new` must not
/// be banned. A refusal is audited.
fn recheck_policy(
    policy: &Policy,
    audit: &Audit,
    caller: Caller,
    rec: &Record,
    new: Option<&Identity>,
) -> Result<(), LifecycleError> {
    let refused = |d: Denial| {
        audit_record(
            audit,
            "renew_refused",
            refused_fields(rec, caller, &d.reason),
        );
        match d.class {
            Class::Denied => LifecycleError::PolicyRefused {
                id: rec.id.clone(),
                reason: d.reason,
            },
            _ => LifecycleError::Site {
                what: "policy",
                reason: d.reason,
            },
        }
    };
    match new {
        None if !caller.is_root() => {
            let mut gids: Vec<u32> = nix::unistd::getgroups()
                .map(|g| g.iter().map(|g| g.as_raw()).collect())
                .unwrap_or_default();
            gids.push(caller.gid);
            policy::authz::check_pilot(policy, caller.uid, &gids).map_err(refused)?;
        }
        None => {}
        Some(id) => {
            if let Some(hit) = policy.bans.check(id).first() {
                let class = match hit {
                    policy::authz::bans::BanHit::BrokenBanFile(_) => Class::SiteError,
                    _ => Class::Denied,
                };
                return Err(refused(Denial::new(class, hit.to_string())));
            }
        }
    }
    Ok(())
}

/// Renew the credential of payload `id`; returns the new notAfter. `policy`: the installed
/// policy (None only when root renews with its own trust dirs and none loads).
pub fn renew(
    state_dir: &Path,
    audit: &Audit,
    policy: Option<&Policy>,
    caller: Caller,
    id: &str,
    proxy_path: &Path,
    opts: &VerifyOptions,
) -> Result<time::OffsetDateTime, LifecycleError> {
    let listed = control::load(state_dir, caller, id)?;
    if let Some(p) = policy {
        recheck_policy(p, audit, caller, &listed, None)?;
    }
    let bytes =
        caller::read_private_file(caller, proxy_path, policy::credentials::pem::MAX_PROXY_FILE)?;
    let new = vet(&listed, unprivileged::verify(&bytes, opts)).map_err(|r| {
        if let Some(reason) = &r.audit_reason {
            audit_record(
                audit,
                "renew_refused",
                refused_fields(&listed, caller, reason),
            );
        }
        r.err
    })?;
    if let Some(p) = policy {
        recheck_policy(p, audit, caller, &listed, Some(&new))?;
    }
    let st = store(state_dir);
    let failed = |rec: &Record, replaced: bool, e: LifecycleError| {
        let mut f = refused_fields(rec, caller, &e.to_string());
        f["credential_replaced"] = json!(replaced);
        audit_record(audit, "renew_failed", f);
        e
    };
    let _lock = st.lock(id).map_err(|e| failed(&listed, false, e.into()))?;
    let mut rec = st.read(id).map_err(|e| failed(&listed, false, e.into()))?;
    replace_credential(state_dir, &rec, &bytes).map_err(|e| failed(&rec, false, e))?;
    let old = rec.cred_not_after.clone();
    let until = new.usable_until();
    rec.set_cred_not_after(until);
    st.write(&rec).map_err(|e| failed(&rec, true, e.into()))?;
    let mut f = renewed_fields(&rec, caller, old);
    f["credential_replaced"] = json!(true);
    audit_record(audit, "renew", f);
    Ok(until)
}

/// Write `bytes` to `<state>/<id>/cred/x509up` atomically, owned by the pool uid/gid, 0600.
///
/// The `cred` directory may be writable by the pool uid (the payload's proxy directory), so the
/// payload could plant names in it: see [`replace_in_dir`]. The path up to `cred` is root's
/// (state dir 0711).
pub fn replace_credential(
    state_dir: &Path,
    rec: &Record,
    bytes: &[u8],
) -> Result<(), LifecycleError> {
    let dir = store(state_dir).dir(&rec.id)?.join(CRED_DIR);
    replace_in_dir(&dir, rec.uid, rec.gid, bytes)
}

/// Replace `<dir>/x509up` with `bytes` atomically: a temporary file created with `O_CREAT|
/// O_EXCL|O_NOFOLLOW` (a planted symlink or file makes it fail, nothing is followed), owned by
/// `uid`/`gid` (set on the open descriptor), 0600, fsync'd, then `rename(2)` over the old entry.
/// A sandbox that binds the *directory* sees the new file at once and never a half-written one.
pub(crate) fn replace_in_dir(
    dir: &Path,
    uid: u32,
    gid: u32,
    bytes: &[u8],
) -> Result<(), LifecycleError> {
    let tmp = dir.join(format!(".{CRED_FILE}.renew.{}", std::process::id()));
    let dest = dir.join(CRED_FILE);
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| LifecycleError::Io { op, path, source }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    let result = (|| {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(io("chown", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        std::fs::rename(&tmp, &dest).map_err(io("rename", &dest))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        serde_json::from_value(json!({"id": "p", "pilot_uid": 1, "pilot_gid": 1, "supervisor_pid": 1,
            "supervisor_start": 1, "init_pid": 1, "account": "a", "uid": 2, "gid": 2, "groups": [2],
            "dn": "/CN=A", "issuer_dn": "/CN=CA", "vo": "vo",
            "fqans": ["/vo/Role=NULL/Capability=NULL", "/vo/x/Role=NULL/Capability=NULL"],
            "pool": null, "lease_key": null, "cgroup": "/x", "workdir": null, "workdir_handover": "none",
            "started": "2026-01-01T00:00:00Z", "cred_not_after": "2026-01-02T00:00:00Z"}))
        .unwrap()
    }

    fn id(dn: &str, fqans: &[&str]) -> Identity {
        Identity {
            dn: dn.into(),
            issuer_dn: "/CN=CA".into(),
            proxy_type: None,
            limited: false,
            not_after: time::OffsetDateTime::UNIX_EPOCH,
            voms: Some(policy::Voms {
                vo: "vo".into(),
                fqans: fqans.iter().map(|s| s.to_string()).collect(),
                generic: vec![],
                valid: true,
                reason: None,
                not_after: None,
            }),
        }
    }

    #[test]
    fn same_dn_and_primary_fqan_is_accepted_other_order_of_the_rest_too() {
        assert_eq!(
            identity_mismatch(&rec(), &id("/CN=A", &["/vo/Role=NULL/Capability=NULL"])),
            None
        );
    }

    #[test]
    fn other_dn_or_primary_fqan_is_refused() {
        assert!(
            identity_mismatch(&rec(), &id("/CN=B", &["/vo/Role=NULL/Capability=NULL"])).is_some()
        );
        assert!(
            identity_mismatch(&rec(), &id("/CN=A", &["/vo/x/Role=NULL/Capability=NULL"])).is_some()
        );
        assert!(identity_mismatch(&rec(), &id("/CN=A", &[])).is_some());
    }
}
