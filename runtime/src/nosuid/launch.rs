//! `pilotbox-nosuid run`: the launch sequence of [`super`] for one [`Request`] (built from the
//! same clap `Args` as `pilotbox run`), with the same exit classes and `--report` shape, plus
//! `"identity_switch": false`, the account it `would_map` to, and whether limits were enforced.

use super::audit::Audit;
use super::cgroup::{self, Choice};
use super::NAME;
use crate::cli::run::{engine_outcome, Args, Outcome};
use crate::engine::{self, RunOptions};
use crate::launcher::audit::{apel_fields, now_rfc3339};
use crate::launcher::prepare::{random_id, PAYLOAD_PATH, SANDBOX_CRED_DIR, SANDBOX_PROXY};
use crate::launcher::sanitize::Caller;
use crate::launcher::state::{Handover, NosuidRun, Record};
use crate::spec_builder::{Bind, PayloadSpec};
use policy::authz::{decide, Decision, LimitRequest};
use policy::lease::preview::PreviewStore;
use policy::lease::unix_now;
use policy::{Class, Denial, Identity};
use serde_json::{json, Value};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The would-map part of the report and audit records.
pub fn would_map(d: &Decision) -> Value {
    json!({
        "account": d.account, "uid": d.uid, "gid": d.gid, "groups": d.groups,
        "pool": d.pool, "lease": d.lease, "rule": d.rule,
    })
}

/// The report's `user`: who the credential names, and the account the payload *ran* as (the
/// caller's), so `user.uid` is always the uid the payload had, as for `pilotbox run`.
fn user_json(c: &Caller, id: Option<&Identity>, d: Option<&Decision>) -> Value {
    if id.is_none() {
        return Value::Null;
    }
    json!({
        "dn": id.map(|i| i.dn.clone()),
        "vo": id.and_then(|i| i.verified_vo().map(String::from)),
        "fqans": id.map(|i| i.verified_fqans().to_vec()).unwrap_or_default(),
        "account": super::account_name(c.uid),
        "uid": c.uid,
        "gid": c.gid,
        "would_map": d.map(would_map),
    })
}

struct Ctx<'a> {
    caller: &'a Caller,
    report: Option<PathBuf>,
    started: String,
    id: Option<String>,
    identity: Option<Identity>,
    decision: Option<Decision>,
}

impl Ctx<'_> {
    /// The report file, created by us — we are the caller — without following a symlink.
    fn write_report(&self, v: &Value) {
        let Some(path) = &self.report else { return };
        let path = self.caller.absolute(path);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(&path)
            .and_then(|mut f| {
                f.write_all(
                    serde_json::to_string_pretty(v)
                        .unwrap_or_default()
                        .as_bytes(),
                )
            });
        if let Err(e) = written {
            eprintln!("{NAME}: cannot write the report {}: {e}", path.display());
        }
    }

    fn fail(&self, d: Denial) -> Outcome {
        eprintln!("{NAME}: {d}");
        self.write_report(&json!({
            "id": self.id, "outcome": d.class.outcome(), "reason": d.reason,
            "exit_code": d.class.exit_code(), "signal": null,
            "user": user_json(self.caller, self.identity.as_ref(), self.decision.as_ref()),
            "identity_switch": false, "cgroup": null, "started": self.started,
            "ended": now_rfc3339(), "usage": null,
        }));
        Outcome::Failed(d.class)
    }
}

/// A private directory for the proxy copy, removed at the end (also on error paths).
struct CredDir(PathBuf);

impl CredDir {
    /// `/tmp/pilotbox-nosuid.<random>/` (0700, created fresh: never an existing path), with
    /// `x509up` (0600) holding the verified bytes.
    fn create(bytes: &[u8]) -> Result<CredDir, Denial> {
        let site = |r: String| Denial::new(Class::SiteError, r);
        let dir = PathBuf::from(format!("/tmp/{NAME}.{}", random_id()?));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| site(format!("{}: {e}", dir.display())))?;
        let d = CredDir(dir);
        let file = d.0.join("x509up");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&file)
            .and_then(|mut f| f.write_all(bytes))
            .map_err(|e| site(format!("{}: {e}", file.display())))?;
        Ok(d)
    }
}

impl Drop for CredDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn site(r: impl Into<String>) -> Denial {
    Denial::new(Class::SiteError, r)
}

/// `pilotbox-nosuid run`.
pub fn run(args: Args, caller: &Caller) -> i32 {
    execute(args, caller).exit_code()
}

fn execute(args: Args, caller: &Caller) -> Outcome {
    // As `pilotbox run`: forwarded signals wait for the payload instead of killing the setup.
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&crate::launch::supervised_signals()),
        None,
    );
    let mut ctx = Ctx {
        caller,
        report: args.report.clone(),
        started: now_rfc3339(),
        id: args.id.clone(),
        identity: None,
        decision: None,
    };
    if caller.uid == 0 {
        return ctx.fail(site(format!(
            "{NAME} runs the payload as its caller and refuses root (use the setuid `pilotbox`, or run the pilot as an ordinary user)"
        )));
    }
    let policy = match crate::launcher::policy_for_pilot(caller) {
        Ok(p) => p,
        Err(d) => return ctx.fail(d),
    };
    let audit = Audit::new(&policy.file.audit);
    let proxy = args
        .proxy
        .clone()
        .or_else(|| caller.var("X509_USER_PROXY").map(PathBuf::from));
    let Some(proxy_path) = proxy.map(|p| caller.absolute(&p)) else {
        return ctx.fail(Denial::new(
            Class::PilotError,
            "no proxy: give --proxy FILE or set X509_USER_PROXY",
        ));
    };
    let bytes = match super::verify::read_proxy(caller.uid, &proxy_path) {
        Ok(b) => b,
        Err(d) => return ctx.fail(d),
    };
    let workdir = match &args.workdir {
        Some(w) => match super::verify::open_workdir(caller.uid, &caller.absolute(w)) {
            Ok(fd) => Some(fd),
            Err(d) => return ctx.fail(d),
        },
        None => None,
    };
    let id = match args.id.clone() {
        Some(id) => match crate::launcher::state::validate_id(&id) {
            Ok(()) => id,
            Err(e) => return ctx.fail(Denial::new(Class::PilotError, e.to_string())),
        },
        None => match random_id() {
            Ok(id) => id,
            Err(d) => return ctx.fail(d),
        },
    };
    ctx.id = Some(id.clone());

    let vopts = crate::launcher::verify_options(
        policy.file.trust.ca_dir.clone(),
        policy.file.trust.voms_dir.clone(),
    );
    let who = json!({"binary": NAME, "pilot_uid": caller.uid, "id": id});
    let identity = match super::verify::verify(&bytes, &vopts) {
        Ok(i) => i,
        Err(d) => {
            audit.record("decision", refused(&who, &d));
            return ctx.fail(d);
        }
    };
    ctx.identity = Some(identity.clone());
    let mut who = who;
    who["dn"] = json!(identity.dn);
    who["issuer"] = json!(identity.issuer_dn);
    who["vo"] = json!(identity.verified_vo());
    who["fqans"] = json!(identity.verified_fqans());

    let limits = LimitRequest {
        memory: args.memory,
        pids: args.pids,
        cpus: args.cpus,
        walltime: args.walltime,
    };
    let asked = policy::authz::Request {
        limits: limits.clone(),
        env: caller.env_pairs(),
    };
    // Read-only: no lease store is opened (policy::lease::preview).
    let decision = match decide(
        &policy,
        &identity,
        &asked,
        &PreviewStore,
        &|_| false,
        unix_now(),
    ) {
        Ok(d) => d,
        Err(d) => {
            audit.record("decision", refused(&who, &d));
            return ctx.fail(d);
        }
    };
    ctx.decision = Some(decision.clone());
    let mut f = who.clone();
    f["outcome"] = json!("mapped");
    f["would_map"] = would_map(&decision);
    f["ran_as_uid"] = json!(caller.uid);
    f["reasons"] = json!(decision.reasons);
    audit.record("decision", f);

    // Limits need a cgroup of our own; see nosuid::cgroup for what happens without one.
    let l = &decision.limits;
    let wants_cgroup_limits = l.memory_bytes.is_some() || l.pids.is_some() || l.cpus.is_some();
    let choice = if wants_cgroup_limits {
        cgroup::choose(&id)
    } else {
        Choice::Unavailable("no memory, cpu or pids limit to enforce".into())
    };
    let (cgroup_path, limits_note) = match choice {
        Choice::Delegated(p) => (Some(p), None),
        Choice::Unavailable(why) => {
            if limits.memory.is_some() || limits.cpus.is_some() || limits.pids.is_some() {
                return ctx.fail(site(format!(
                    "--memory/--cpus/--pids cannot be enforced: {why} (delegate a cgroup-v2 subtree to the pilot, or drop these options)"
                )));
            }
            if wants_cgroup_limits {
                eprintln!("{NAME}: warning: running without per-payload limits: {why}");
            }
            (None, Some(why))
        }
    };

    // The caller's record directory (super::state): checked before anything is made.
    let store = match super::state::ensure(caller.uid) {
        Ok(s) => s,
        Err(e) => return ctx.fail(site(e.to_string())),
    };
    let creds = match CredDir::create(&bytes) {
        Ok(c) => c,
        Err(d) => return ctx.fail(d),
    };
    let spec = match payload_spec(
        &args,
        caller,
        &decision,
        &proxy_path,
        &creds.0,
        workdir.as_ref(),
    ) {
        Ok(mut s) => {
            // The payload runs as the pilot: it must not see (and rewrite) the pilot's records.
            s.hide.push(store.root.clone());
            s.cgroup_path = cgroup_path.clone();
            if cgroup_path.is_some() {
                s.resources = engine::resources(
                    l.memory_bytes.map(|m| m as i64),
                    l.pids.map(|n| n as i64),
                    l.cpus,
                );
            }
            s.seccomp = Some(engine::default_seccomp());
            crate::network::apply_mode(&mut s, policy.file.network.mode);
            if let Err(e) =
                crate::network::bind_resolv_conf(&mut s, policy.file.network.mode, &creds.0)
            {
                return ctx.fail(site(format!("network: {e}")));
            }
            match s.to_spec() {
                Ok(spec) => spec,
                Err(e) => return ctx.fail(site(format!("payload spec: {e}"))),
            }
        }
        Err(d) => return ctx.fail(d),
    };
    let cred_end = identity.usable_until();
    let record = match super::state::RunRecord::create(
        store,
        &run_record(
            &id,
            caller,
            &identity,
            &decision,
            &cgroup_path,
            &creds.0,
            &args,
        ),
    ) {
        Ok(r) => r,
        // A pilot-chosen id that is taken is the pilot's error; a random one colliding is not.
        Err(e) if args.id.is_some() => {
            return ctx.fail(Denial::new(Class::PilotError, e.to_string()))
        }
        Err(e) => return ctx.fail(site(e.to_string())),
    };
    let mut start = who.clone();
    start["would_map"] = would_map(&decision);
    start["uid"] = json!(caller.uid);
    start["gid"] = json!(caller.gid);
    start["cgroup"] = json!(cgroup_path);
    start["workdir"] = json!(args.workdir);
    audit.record("start", start);

    // Once the payload runs, the record gets init's pid and start time (`kill` without a
    // cgroup signals init).
    let on_started = |s: &engine::Started| {
        if let Err(e) = record.started(s.init_pid) {
            eprintln!("{NAME}: warning: {e}");
        }
    };
    // `pilotbox-nosuid renew` moves the record's `cred_not_after`; the expiry re-reads it.
    let refresh = || record.cred_not_after();
    let opts = RunOptions {
        walltime: l.walltime_s.map(Duration::from_secs),
        seccomp_cache: None,
        cred_expiry: Some(engine::CredExpiry {
            not_after: cred_end.into(),
            margin: Duration::from_secs(policy.file.expiry.margin.0),
            signal: crate::cli::run::expiry_signal(policy.file.expiry.signal),
            refresh: &refresh,
        }),
        unprivileged: true,
        on_started: Some(&on_started),
        ..RunOptions::default()
    };
    let result = engine::run(&spec, &opts);
    drop(record);
    // The payload ran as the pilot: a set-id file it left in the work dir would make any local
    // process that runs it the pilot (issue 11). Seccomp refuses set-id modes; strip what is
    // there anyway. Unprivileged, so only modes (file capabilities a payload can write here are
    // namespaced to the pilot's own user namespaces; see `setid::AfterRun::caps`).
    let workdir_cleanup = workdir.as_ref().map(|fd| {
        let what = crate::launcher::setid::AfterRun {
            owners: vec![caller.uid],
            back: None,
            caps: false,
        };
        crate::launcher::setid::after_run(fd, &what).map_err(|e| e.to_string())
    });
    if let Some(Err(e)) = &workdir_cleanup {
        eprintln!("{NAME}: warning: work dir: {e}");
    }
    drop(workdir);
    drop(creds);
    let (mut report, outcome) =
        engine_outcome(NAME, result, cgroup_path.as_deref(), &ctx.started, "");
    report["id"] = json!(id);
    report["user"] = user_json(caller, Some(&identity), Some(&decision));
    report["identity_switch"] = json!(false);
    report["network"] = json!(policy.file.network.mode.name());
    report["limits_enforced"] = json!(cgroup_path.is_some());
    if let Some(n) = &limits_note {
        report["limits_note"] = json!(n);
    }
    let mut end = who;
    end["would_map"] = would_map(&decision);
    end["uid"] = json!(caller.uid);
    end["cgroup"] = json!(cgroup_path);
    end["network"] = json!(policy.file.network.mode.name());
    end["outcome"] = report["outcome"].clone();
    end["exit"] = json!(outcome.exit_code());
    end["signal"] = report["signal"].clone();
    end["usage"] = report["usage"].clone();
    end["workdir_cleanup"] = match &workdir_cleanup {
        Some(Ok(c)) => json!(c),
        Some(Err(e)) => json!({ "error": e }),
        None => Value::Null,
    };
    if let Value::Object(apel) = apel_fields(&report["usage"], l.cpus) {
        for (k, v) in apel {
            end[k] = v;
        }
    }
    audit.record("end", end);
    ctx.write_report(&report);
    outcome
}

/// The state record of this run (`super::state`): the caller's own account and ids (no identity
/// switch), the would-map account, the proxy directory; init's pid comes once it runs.
fn run_record(
    id: &str,
    caller: &Caller,
    identity: &Identity,
    d: &Decision,
    cgroup: &Option<String>,
    cred_dir: &Path,
    args: &Args,
) -> Record {
    let me = std::process::id() as i32;
    let mut rec = Record {
        id: id.into(),
        pilot_uid: caller.uid,
        pilot_gid: caller.gid,
        supervisor_pid: me,
        supervisor_start: crate::lifecycle::procs::start_time(me).unwrap_or(0),
        init_pid: 0,
        account: super::account_name(caller.uid),
        uid: caller.uid,
        gid: caller.gid,
        groups: caller.groups.clone(),
        dn: identity.dn.clone(),
        issuer_dn: identity.issuer_dn.clone(),
        vo: identity.verified_vo().map(String::from),
        fqans: identity.verified_fqans().to_vec(),
        pool: None,
        lease_key: None,
        cgroup: cgroup.clone(),
        workdir: args.workdir.as_ref().map(|w| caller.absolute(w)),
        workdir_handover: Handover::None,
        started: now_rfc3339(),
        cred_not_after: None,
        walltime_s: None,
        cpus: None,
        end_audited: None,
        nosuid: Some(NosuidRun {
            would_map_account: d.account.clone(),
            would_map_uid: d.uid,
            init_start: None,
            cred_dir: cred_dir.to_path_buf(),
        }),
    };
    rec.set_cred_not_after(identity.usable_until());
    rec
}

/// The payload Spec: as `pilotbox run` builds it (`launcher::prepare`), but for the caller's
/// own uid/gid (no supplementary groups to set: an unprivileged user namespace cannot), the
/// proxy copy from `cred_dir`, and `USER`/`LOGNAME` naming the account the payload really has.
fn payload_spec(
    args: &Args,
    caller: &Caller,
    d: &Decision,
    proxy_path: &Path,
    cred_dir: &Path,
    workdir: Option<&OwnedFd>,
) -> Result<PayloadSpec, Denial> {
    let mut s = PayloadSpec::new(args.cmd.clone(), caller.uid, caller.gid);
    s.binds.push(Bind {
        source: cred_dir.to_path_buf(),
        dest: SANDBOX_CRED_DIR.into(),
        readonly: true,
        idmap: None,
    });
    let mut cwd = PathBuf::from("/tmp");
    let mut wd = None;
    if let Some(fd) = workdir {
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|e| site(format!("resolving the work directory: {e}")))?;
        // Bound by path, not `/proc/self/fd/N` as `pilotbox run` does: unprivileged, the
        // sources are cloned after the sandbox's mount namespace is created, and a mount of
        // another namespace cannot be cloned (open_tree: EINVAL). The path names the directory
        // checked above unless the pilot itself renames it meanwhile — its own directory.
        s.binds.push(Bind {
            source: real.clone(),
            dest: real.clone(),
            readonly: false,
            idmap: None,
        });
        cwd = real.clone();
        wd = Some(real);
    }
    s.cwd = cwd.clone();
    // Hidden as for `pilotbox run`: the pilot's home (unless the work dir is in it), its proxy,
    // pilotbox's state and configuration.
    let home = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(caller.uid))
        .ok()
        .flatten()
        .map(|u| u.dir);
    if let Some(home) = home.filter(|h| h != Path::new("/")) {
        if !wd.as_ref().is_some_and(|w| w.starts_with(&home)) {
            s.hide.push(home);
        }
    }
    s.hide.push(proxy_path.to_path_buf());
    s.hide.push("/var/lib/pilotbox".into());
    if let Some(conf_dir) = Path::new(policy::config::POLICY_PATH).parent() {
        s.hide.push(conf_dir.into());
    }
    let me = super::account_name(caller.uid);
    let mut env: Vec<(String, String)> = vec![
        ("HOME".into(), cwd.to_string_lossy().into_owned()),
        ("USER".into(), me.clone()),
        ("LOGNAME".into(), me),
        ("PATH".into(), PAYLOAD_PATH.into()),
        ("TMPDIR".into(), "/tmp".into()),
        ("X509_USER_PROXY".into(), SANDBOX_PROXY.into()),
    ];
    for (k, v) in d.env.iter().chain(&args.env) {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    s.env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(s)
}

/// The audit decision record of a refusal: `who` with the outcome and the reason.
fn refused(who: &Value, d: &Denial) -> Value {
    let mut f = who.clone();
    f["outcome"] = json!(d.class.outcome());
    f["reason"] = json!(d.reason);
    f
}
