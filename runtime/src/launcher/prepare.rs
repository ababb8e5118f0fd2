//! Step 7: everything the payload needs besides the decision — its id, the per-payload state
//! dir with the proxy copy, the work-dir hand-over, the hidden paths, the environment — and the
//! payload [`PayloadSpec`]. [`Prepared::finish`] undoes all of it at the end.

use super::handover::{self, Transfer};
use super::sanitize::Caller;
use super::setid;
use super::state::{Handover, Record, Store};
use crate::spec_builder::{Bind, Idmap, PayloadSpec};
use policy::authz::Decision;
use policy::{Class, Denial, Identity};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where the proxy copy appears inside the sandbox (a directory bound read-only: `renew`
/// replaces the file in it atomically and the payload sees the new one).
pub const SANDBOX_CRED_DIR: &str = "/tmp/pilotbox-cred";
pub const SANDBOX_PROXY: &str = "/tmp/pilotbox-cred/x509up";
pub const PAYLOAD_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// What the launcher asks for.
pub struct Request<'a> {
    pub caller: &'a Caller,
    pub id: Option<String>,
    /// The work dir, opened as the caller ([`super::credfile::open_workdir`]).
    pub workdir: Option<OwnedFd>,
    /// The caller's proxy path (hidden in the sandbox).
    pub proxy_path: &'a Path,
    pub proxy_bytes: &'a [u8],
    /// Where the payload finds its proxy instead of [`SANDBOX_PROXY`] (gLExec's
    /// `GLEXEC_TARGET_PROXY`, absolute), and `X509_USER_PROXY` names it: under the private
    /// `/tmp` or `/var/tmp` a symlink to the copy (so `renew` reaches it), elsewhere a read-only
    /// bind of the copy over an existing file; anything else fails as a request error.
    pub target_proxy: Option<PathBuf>,
    /// Site state that names other users and must not be visible to any payload (the lease
    /// store, a gridmapdir), besides pilotbox's own `/var/lib/pilotbox` and configuration.
    pub site_private: Vec<PathBuf>,
    pub decision: &'a Decision,
    /// The verified identity the decision was made for (the state record names it).
    pub identity: &'a Identity,
    /// `--env K=V` from the pilot.
    pub extra_env: &'a [(String, String)],
    pub cmd: Vec<String>,
}

pub struct Prepared {
    pub id: String,
    pub dir: PathBuf,
    pub spec: PayloadSpec,
    pub workdir: Option<PathBuf>,
    pub handover: Handover,
    /// The state record as far as it is known here (no cgroup yet, `init_pid` 0). Written
    /// durably before the first `chown` of a work-dir hand-over; the launcher completes and
    /// rewrites it before the launch.
    pub record: Record,
    /// Kept open for the whole run: the bind source is `/proc/self/fd/<fd>` (no path race).
    workdir_fd: Option<OwnedFd>,
    pilot: (u32, u32),
    pool_uid: u32,
}

fn site(r: impl Into<String>) -> Denial {
    Denial::new(Class::SiteError, r)
}

/// A random payload id `pb-<16 hex>` from the kernel's CSPRNG.
pub fn random_id() -> Result<String, Denial> {
    let mut b = [0u8; 8];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| site(format!("/dev/urandom: {e}")))?;
    Ok(format!(
        "pb-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

/// The caller's home directory from NSS (hidden from the payload).
fn caller_home(uid: u32) -> Option<PathBuf> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.dir)
}

/// Prepare the run of `req` in `store`. On error nothing is left behind.
pub fn prepare(store: &Store, mut req: Request) -> Result<Prepared, Denial> {
    let d = req.decision;
    let chosen = req.id.is_some();
    let id = match req.id.take() {
        Some(id) => {
            super::state::validate_id(&id)
                .map_err(|e| Denial::new(Class::PilotError, e.to_string()))?;
            id
        }
        None => random_id()?,
    };
    // A pilot-chosen id that is taken is the pilot's error; a random one colliding is not.
    let dir = store.create_dir(&id).map_err(|e| match chosen {
        true => Denial::new(Class::PilotError, e.to_string()),
        false => site(e.to_string()),
    })?;
    let me = std::process::id() as i32;
    let mut record = Record {
        id: id.clone(),
        pilot_uid: req.caller.uid,
        pilot_gid: req.caller.gid,
        supervisor_pid: me,
        supervisor_start: crate::lifecycle::procs::start_time(me).unwrap_or(0),
        init_pid: 0,
        account: d.account.clone(),
        uid: d.uid,
        gid: d.gid,
        groups: d.groups.clone(),
        dn: req.identity.dn.clone(),
        issuer_dn: req.identity.issuer_dn.clone(),
        vo: req.identity.verified_vo().map(String::from),
        fqans: req.identity.verified_fqans().to_vec(),
        pool: d.pool.clone(),
        lease_key: None,
        cgroup: None,
        workdir: None,
        workdir_handover: Handover::None,
        started: super::audit::now_rfc3339(),
        cred_not_after: None,
        walltime_s: d.limits.walltime_s,
        cpus: d.limits.cpus,
        end_audited: None,
        nosuid: None,
    };
    // When the credential stops being usable: the chain's notAfter, or the AC's if earlier.
    record.set_cred_not_after(req.identity.usable_until());
    let mut p = Prepared {
        id,
        dir,
        spec: PayloadSpec::new(std::mem::take(&mut req.cmd), d.uid, d.gid),
        workdir: None,
        handover: Handover::None,
        record,
        workdir_fd: None,
        pilot: (req.caller.uid, req.caller.gid),
        pool_uid: d.uid,
    };
    if let Err(e) = fill(&mut p, store, &mut req) {
        p.finish();
        return Err(e);
    }
    Ok(p)
}

fn fill(p: &mut Prepared, store: &Store, req: &mut Request) -> Result<(), Denial> {
    let (caller, proxy_path, proxy_bytes, d, extra_env) = (
        req.caller,
        req.proxy_path,
        req.proxy_bytes,
        req.decision,
        req.extra_env,
    );
    // The proxy copy: cred/ owned by the pool account (0700), x509up 0600.
    let cred = p.dir.join("cred");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&cred)
        .map_err(|e| site(format!("{}: {e}", cred.display())))?;
    let file = cred.join("x509up");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&file)
        .map_err(|e| site(format!("{}: {e}", file.display())))?;
    // No fsync: the copy means nothing after a crash (its payload is gone, `gc` removes the
    // directory), and an fsync costs 1–3 ms of every launch (docs/performance.md).
    f.write_all(proxy_bytes)
        .map_err(|e| site(format!("{}: {e}", file.display())))?;
    for path in [&file, &cred] {
        std::os::unix::fs::lchown(path, Some(d.uid), Some(d.gid))
            .map_err(|e| site(format!("chown {}: {e}", path.display())))?;
    }
    p.spec.groups = d.groups.clone();
    p.spec.binds.push(Bind {
        source: cred,
        dest: SANDBOX_CRED_DIR.into(),
        readonly: true,
        idmap: None,
    });
    let announced = match &req.target_proxy {
        Some(t)
            if !t.is_absolute() || t.components().any(|c| c == std::path::Component::ParentDir) =>
        {
            return Err(Denial::new(
                Class::PilotError,
                format!(
                    "target proxy {}: must be an absolute path without '..'",
                    t.display()
                ),
            ))
        }
        Some(t) if t == Path::new(SANDBOX_PROXY) => SANDBOX_PROXY.into(),
        // On the sandbox's private tmpfs: a symlink to the copy, so the payload follows what
        // `renew` does (it replaces cred/x509up by rename, which the directory bind shows and
        // a file bind, pinned to the old inode, would not).
        Some(t) if t.starts_with("/tmp") || t.starts_with("/var/tmp") => {
            p.spec.symlinks.push((SANDBOX_PROXY.into(), t.clone()));
            t.to_string_lossy().into_owned()
        }
        // Elsewhere the root is read-only: only an existing file can be covered, by a file bind
        // of this copy — which `renew` cannot reach (docs/admin-guide.md).
        Some(t) => {
            p.spec.binds.push(Bind {
                source: file.clone(),
                dest: t.clone(),
                readonly: true,
                idmap: None,
            });
            t.to_string_lossy().into_owned()
        }
        None => SANDBOX_PROXY.into(),
    };

    // The work dir, at its own path.
    let mut cwd = PathBuf::from("/tmp");
    if let Some(fd) = req.workdir.take() {
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|e| site(format!("resolving the work directory: {e}")))?;
        let mut idmap = None;
        if crate::engine::idmap_supported(&real) {
            p.handover = Handover::Idmap;
            idmap = Some(Idmap {
                disk_uid: caller.uid,
                disk_gid: caller.gid,
                uid: d.uid,
                gid: d.gid,
            });
        } else {
            // The record first, durably (fsync): a launcher killed at any point of the walk
            // below leaves files owned by the pool uid, and only the record tells `gc` to give
            // them back (issue 11 item 6). `gc` accepts a work dir still owned by the pilot
            // for such a record (killed before the walk reached the top directory).
            p.handover = Handover::Chown;
            p.record.workdir = Some(real.clone());
            p.record.workdir_handover = Handover::Chown;
            store.write(&p.record).map_err(|e| site(e.to_string()))?;
            let moved = handover::transfer(
                &fd,
                Transfer {
                    from_uid: caller.uid,
                    to_uid: d.uid,
                    to_gid: d.gid,
                    skip_multilinked: false,
                },
            );
            match moved {
                Ok(m) if m.errors > 0 => tracing::warn!(
                    "work dir hand-over: {} entries not handed over ({} were)",
                    m.errors,
                    m.chowned
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("work dir hand-over: {e}"),
            }
        }
        p.spec.binds.push(Bind {
            source: format!("/proc/self/fd/{}", fd.as_raw_fd()).into(),
            dest: real.clone(),
            readonly: false,
            idmap,
        });
        p.workdir_fd = Some(fd);
        p.workdir = Some(real.clone());
        p.record.workdir = Some(real.clone());
        p.record.workdir_handover = p.handover;
        cwd = real;
    }
    p.spec.cwd = cwd.clone();

    // Hidden: the pilot's home (unless the work dir lies in it: a mask would cover the work
    // dir too), the pilot's proxy, pilotbox's state and configuration.
    if let Some(home) = caller_home(caller.uid).filter(|h| h != Path::new("/")) {
        if !p.workdir.as_ref().is_some_and(|w| w.starts_with(&home)) {
            p.spec.hide.push(home);
        }
    }
    // (Not when the copy is announced at the same path: the mask would cover it.)
    let own = caller.absolute(proxy_path);
    if req.target_proxy.as_deref() != Some(own.as_path()) {
        p.spec.hide.push(own);
    }
    p.spec.hide.push("/var/lib/pilotbox".into());
    p.spec.hide.extend(req.site_private.iter().cloned());
    if let Some(conf_dir) = Path::new(policy::config::POLICY_PATH).parent() {
        p.spec.hide.push(conf_dir.into());
    }

    // Environment: fixed names, then what the policy lets through from the caller, then the
    // pilot's explicit --env.
    let mut env: Vec<(String, String)> = vec![
        ("HOME".into(), cwd.to_string_lossy().into_owned()),
        ("USER".into(), d.account.clone()),
        ("LOGNAME".into(), d.account.clone()),
        ("PATH".into(), PAYLOAD_PATH.into()),
        ("TMPDIR".into(), "/tmp".into()),
        ("X509_USER_PROXY".into(), announced),
    ];
    for (k, v) in d.env.iter().chain(extra_env) {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    p.spec.env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(())
}

impl Prepared {
    /// Undo the hand-over (files owned by the pool account go back to the pilot) and remove the
    /// state dir. Returns a description of what could not be undone.
    pub fn finish(self) -> Option<String> {
        self.finish_counted().0
    }

    /// [`Self::finish`], also returning what the work-dir walk did (for the end audit record):
    /// after every run with a work dir — idmapped or handed over by chown — set-id bits and file
    /// capabilities are stripped ([`super::setid`]), in the same walk that gives a chowned work
    /// dir back.
    pub fn finish_counted(self) -> (Option<String>, Option<setid::Cleanup>) {
        let mut problems = Vec::new();
        let mut cleanup = None;
        if let Some(fd) = &self.workdir_fd {
            let back = (self.handover == Handover::Chown).then_some(Transfer {
                from_uid: self.pool_uid,
                to_uid: self.pilot.0,
                to_gid: self.pilot.1,
                skip_multilinked: true,
            });
            let what = setid::AfterRun {
                owners: vec![self.pilot.0, self.pool_uid],
                back,
                caps: true,
            };
            match setid::after_run(fd, &what) {
                Ok(c) => {
                    if c.handback.errors > 0 {
                        problems.push(format!(
                            "{} work-dir entries not given back to uid {}",
                            c.handback.errors, self.pilot.0
                        ));
                    }
                    let other = c.errors - c.handback.errors;
                    if other > 0 {
                        problems.push(format!(
                            "{other} work-dir entries not checked for set-id bits"
                        ));
                    }
                    cleanup = Some(c);
                }
                Err(e) => problems.push(format!("work dir: {e}")),
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            problems.push(format!("{}: {e}", self.dir.display()));
        }
        ((!problems.is_empty()).then(|| problems.join("; ")), cleanup)
    }
}
