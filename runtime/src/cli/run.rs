//! `pilotbox run`: the launch sequence of docs/launcher-design.md, in order, each step a call
//! into `crate::launcher`. Every failure before the payload starts prints one line on stderr,
//! is audited when it is a decision, lands in the `--report` JSON and exits with its class
//! (120 denied, 121 temporary, 122 pilot error, 123 site error); afterwards the exit status is
//! the payload's (128+N for signal N).
//!
//! The launch itself is [`execute`], driven by a [`Request`]: `pilotbox run` builds one from its
//! command line, the gLExec-compatible entry point (`cli/glexec.rs`) from gLExec's environment
//! variables, so both run through exactly the same code path and differ only in how the
//! [`Outcome`] is turned into an exit status.

use crate::cgroups::{self, Placement};
use crate::engine::{self, RunOptions};
use crate::launcher::audit::{self, Audit};
use crate::launcher::credfile::{self, CredFileError};
use crate::launcher::prepare::{self, Prepared};
use crate::launcher::sanitize::Caller;
use crate::launcher::state::{Handover, Store};
use crate::launcher::unprivileged;
use policy::authz::{decide, Decision, LimitRequest, Policy};
use policy::config::schema::{CgroupPlacement, ExpirySignal};
use policy::lease::{open_store, unix_now};
use policy::{Class, Denial, Identity};
use serde_json::{json, Value};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The user's proxy (default: the caller's $X509_USER_PROXY). Must be owned by the caller, mode 0600.
    #[arg(long)]
    pub proxy: Option<PathBuf>,
    /// Work directory (the caller's): the payload runs in it and may write to it.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Payload id (default: random); names the cgroup and the state record.
    #[arg(long)]
    pub id: Option<String>,
    /// Memory limit: bytes or a size with K/M/G/T suffix.
    #[arg(long, value_parser = parse_size)]
    pub memory: Option<u64>,
    #[arg(long)]
    pub cpus: Option<f64>,
    #[arg(long)]
    pub pids: Option<u64>,
    /// Wall-time limit in seconds.
    #[arg(long)]
    pub walltime: Option<u64>,
    /// K=V passed to the payload (repeatable).
    #[arg(long = "env", value_parser = parse_kv)]
    pub env: Vec<(String, String)>,
    /// Write the outcome JSON here (created as the caller).
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[arg(last = true, required = true)]
    pub cmd: Vec<String>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    policy::config::units::parse_size(s).map_err(|e| e.to_string())
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
            Ok((k.into(), v.into()))
        }
        _ => Err(format!("{s:?}: expected NAME=VALUE")),
    }
}

/// One launch, however it was asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// Prefix of every message on stderr (`pilotbox run`, `glexec`).
    pub name: &'static str,
    /// The user's proxy as the caller named it (relative to the caller's cwd); read as the caller.
    pub proxy: Option<PathBuf>,
    /// How to name a proxy, for the pilot-error line when `proxy` is `None`.
    pub proxy_hint: &'static str,
    pub workdir: Option<PathBuf>,
    pub id: Option<String>,
    pub limits: LimitRequest,
    pub env: Vec<(String, String)>,
    pub report: Option<PathBuf>,
    /// Where the payload finds its proxy copy, when not the default
    /// [`prepare::SANDBOX_PROXY`] (gLExec's `GLEXEC_TARGET_PROXY`).
    pub target_proxy: Option<PathBuf>,
    pub cmd: Vec<String>,
}

/// How a launch ended: refused or failed before the payload ran (its class), or the payload's
/// own exit status (128+N for signal N). Kept apart because a payload may itself exit 120–123.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Failed(Class),
    Payload(i32),
}

impl Outcome {
    /// The exit status of `pilotbox run` (docs/design.md): the class, else the payload's status.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Failed(c) => c.exit_code(),
            Outcome::Payload(s) => s,
        }
    }
}

/// What is known about the user so far, for the report.
fn user_json(id: Option<&Identity>, d: Option<&Decision>) -> Value {
    if id.is_none() && d.is_none() {
        return Value::Null;
    }
    json!({
        "dn": id.map(|i| i.dn.clone()),
        "vo": id.and_then(|i| i.verified_vo().map(String::from)),
        "fqans": id.map(|i| i.verified_fqans().to_vec()).unwrap_or_default(),
        "account": d.map(|d| d.account.clone()),
        "uid": d.map(|d| d.uid),
        "gid": d.map(|d| d.gid),
    })
}

struct Ctx<'a> {
    caller: &'a Caller,
    req: &'a Request,
    started: String,
    id: Option<String>,
    identity: Option<Identity>,
    decision: Option<Decision>,
}

impl Ctx<'_> {
    fn write_report(&self, v: &Value) {
        let Some(path) = &self.req.report else { return };
        let path = self.caller.absolute(path);
        match credfile::create_as_caller(self.caller, &path) {
            Ok(mut f) => {
                use std::io::Write;
                let _ = f.write_all(
                    serde_json::to_string_pretty(v)
                        .unwrap_or_default()
                        .as_bytes(),
                );
            }
            Err(e) => eprintln!("{}: cannot write the report: {e}", self.req.name),
        }
    }

    /// A failure before the payload started: one line, the report, the class.
    fn fail(&self, d: Denial) -> Outcome {
        eprintln!("{}: {d}", self.req.name);
        self.write_report(&json!({
            "id": self.id,
            "outcome": d.class.outcome(),
            "reason": d.reason,
            "exit_code": d.class.exit_code(),
            "signal": null,
            "user": user_json(self.identity.as_ref(), self.decision.as_ref()),
            "cgroup": null,
            "started": self.started,
            "ended": audit::now_rfc3339(),
            "usage": null,
        }));
        Outcome::Failed(d.class)
    }
}

fn from_credfile(e: CredFileError) -> Denial {
    match e {
        CredFileError::Switch { .. } => Denial::new(Class::SiteError, e.to_string()),
        _ => Denial::new(Class::PilotError, e.to_string()),
    }
}

/// `pilotbox run`: the request from the command line (the proxy defaulting to the caller's
/// `$X509_USER_PROXY`), then [`execute`].
pub fn run(args: Args, caller: &Caller) -> i32 {
    let req = Request {
        name: "pilotbox run",
        proxy: args
            .proxy
            .or_else(|| caller.var("X509_USER_PROXY").map(PathBuf::from)),
        proxy_hint: "give --proxy FILE or set X509_USER_PROXY",
        workdir: args.workdir,
        id: args.id,
        limits: LimitRequest {
            memory: args.memory,
            pids: args.pids,
            cpus: args.cpus,
            walltime: args.walltime,
        },
        env: args.env,
        report: args.report,
        target_proxy: None,
        cmd: args.cmd,
    };
    execute(req, caller).exit_code()
}

/// The launch sequence of docs/launcher-design.md for one [`Request`].
pub fn execute(req: Request, caller: &Caller) -> Outcome {
    // Signals the supervisor forwards stay pending until the payload runs (a pilot's SIGTERM
    // during setup then reaches the payload instead of leaving a half-made sandbox behind).
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&crate::launch::supervised_signals()),
        None,
    );
    let mut ctx = Ctx {
        caller,
        req: &req,
        started: audit::now_rfc3339(),
        id: req.id.clone(),
        identity: None,
        decision: None,
    };
    if caller.euid != 0 {
        return ctx.fail(Denial::new(
            Class::SiteError,
            "pilotbox is not installed setuid root (chown root pilotbox; chmod 4755 pilotbox)",
        ));
    }
    let policy = match crate::launcher::policy_for_pilot(caller) {
        Ok(p) => p,
        Err(d) => return ctx.fail(d),
    };
    let audit = Audit::new(&policy.file.audit);
    let Some(proxy_path) = req.proxy.as_deref().map(|p| caller.absolute(p)) else {
        return ctx.fail(Denial::new(
            Class::PilotError,
            format!("no proxy: {}", req.proxy_hint),
        ));
    };
    let bytes = match credfile::read_proxy(caller, &proxy_path) {
        Ok(b) => b,
        Err(e) => return ctx.fail(from_credfile(e)),
    };
    let workdir = match &req.workdir {
        Some(w) => match credfile::open_workdir(caller, &caller.absolute(w)) {
            Ok(fd) => Some(fd),
            Err(e) => return ctx.fail(from_credfile(e)),
        },
        None => None,
    };

    let vopts = crate::launcher::verify_options(
        policy.file.trust.ca_dir.clone(),
        policy.file.trust.voms_dir.clone(),
    );
    let identity = match unprivileged::verify(&bytes, &vopts) {
        Ok(i) => i,
        Err(d) => {
            let _ = audit.record(
                "decision",
                json!({"pilot_uid": caller.uid, "outcome": d.class.outcome(), "reason": d.reason}),
            );
            return ctx.fail(d);
        }
    };
    ctx.identity = Some(identity.clone());

    let store = Store::default();
    let in_use = |uid: u32| {
        super::leases::uid_has_processes(uid)
            || store
                .read_all()
                .map(|(r, _)| r.iter().any(|r| r.uid == uid))
                .unwrap_or(true)
    };
    let asked = policy::authz::Request {
        limits: req.limits.clone(),
        env: caller.env_pairs(),
    };
    let decided = open_store(&policy.file.lease)
        .map_err(Denial::from)
        .and_then(|s| decide(&policy, &identity, &asked, s.as_ref(), &in_use, unix_now()));
    let who = json!({
        "pilot_uid": caller.uid, "dn": identity.dn, "issuer": identity.issuer_dn,
        "vo": identity.verified_vo(), "fqans": identity.verified_fqans(),
    });
    let decision = match decided {
        Ok(d) => d,
        Err(d) => {
            let mut f = who.clone();
            f["outcome"] = json!(d.class.outcome());
            f["reason"] = json!(d.reason);
            let _ = audit.record("decision", f);
            return ctx.fail(d);
        }
    };
    ctx.decision = Some(decision.clone());
    let mut f = who.clone();
    f["outcome"] = json!("mapped");
    f["account"] = json!(decision.account);
    f["uid"] = json!(decision.uid);
    f["gid"] = json!(decision.gid);
    f["groups"] = json!(decision.groups);
    f["reasons"] = json!(decision.reasons);
    if let Err(e) = audit.record("decision", f) {
        return ctx.fail(Denial::new(Class::SiteError, e.to_string()));
    }

    let prepared = match prepare::prepare(
        &store,
        prepare::Request {
            caller,
            id: req.id.clone(),
            workdir,
            proxy_path: &proxy_path,
            proxy_bytes: &bytes,
            target_proxy: req.target_proxy.clone(),
            site_private: policy::lease::private_paths(&policy.file.lease),
            decision: &decision,
            identity: &identity,
            extra_env: &req.env,
            cmd: req.cmd.clone(),
        },
    ) {
        Ok(p) => p,
        Err(d) => return ctx.fail(d),
    };
    ctx.id = Some(prepared.id.clone());
    launch(
        &ctx, &policy, &audit, &store, prepared, &identity, &decision, who,
    )
}

#[allow(clippy::too_many_arguments)]
fn launch(
    ctx: &Ctx,
    policy: &Policy,
    audit: &Audit,
    store: &Store,
    mut p: Prepared,
    identity: &Identity,
    d: &Decision,
    who: Value,
) -> Outcome {
    let conf = &policy.file.cgroup;
    let placement = match conf.placement {
        CgroupPlacement::Root => Placement::Under(conf.root.clone()),
        CgroupPlacement::Nested => Placement::Nested {
            fallback: Some(conf.root.clone()),
        },
    };
    let cgroup = match cgroups::place(&placement, std::process::id() as i32, &p.id) {
        Ok(c) => c,
        Err(e) => {
            let class = if e.is_site_error() {
                Class::SiteError
            } else {
                Class::Temporary
            };
            let _ = p.finish();
            return ctx.fail(Denial::new(class, format!("cgroup placement: {e}")));
        }
    };
    let l = &d.limits;
    p.spec.cgroup_path = Some(cgroup.clone());
    p.spec.resources = engine::resources(
        l.memory_bytes.map(|m| m as i64),
        l.pids.map(|n| n as i64),
        l.cpus,
    );
    p.spec.seccomp = Some(engine::default_seccomp());
    let network = policy.file.network.mode;
    crate::network::apply_mode(&mut p.spec, network);
    if let Err(e) = crate::network::bind_resolv_conf(&mut p.spec, network, &p.dir) {
        let _ = p.finish();
        return ctx.fail(Denial::new(Class::SiteError, format!("network: {e}")));
    }
    payload_rlimits(&mut p.spec.rlimits, ctx.caller);
    let spec = match p.spec.to_spec() {
        Ok(s) => s,
        Err(e) => {
            let _ = p.finish();
            return ctx.fail(Denial::new(Class::SiteError, format!("payload spec: {e}")));
        }
    };
    // Written before the launch (init_pid 0: still starting), so `gc` finds a run that dies
    // during setup; rewritten with init's pid by the on_started hook. `prepare` filled in all
    // but the cgroup (and wrote it already if it handed the work dir over by chown).
    let mut rec = p.record.clone();
    rec.cgroup = Some(cgroup.clone());
    rec.started = audit::now_rfc3339();
    let cred_end = identity.usable_until();
    // Durable (fsync) only when a crash would leave something only the record can undo: a
    // work dir handed over by chown (`gc` gives it back). Otherwise `gc` needs no record after
    // a crash (record-less state dirs and cgroups are swept by age), and the fsync costs 1–4 ms
    // of every launch on the bench host (docs/performance.md).
    let written = if rec.workdir_handover == Handover::Chown {
        store.write(&rec)
    } else {
        store.update(&rec)
    };
    if let Err(e) = written {
        let _ = p.finish();
        return ctx.fail(Denial::new(Class::SiteError, e.to_string()));
    }
    let mut start = who.clone();
    start["id"] = json!(p.id);
    start["account"] = json!(d.account);
    start["uid"] = json!(d.uid);
    start["gid"] = json!(d.gid);
    start["groups"] = json!(d.groups);
    start["cgroup"] = json!(cgroup);
    start["workdir"] = json!(p.workdir);
    start["workdir_handover"] = json!(rec.workdir_handover);
    if let Err(e) = audit.record("start", start) {
        let _ = p.finish();
        return ctx.fail(Denial::new(Class::SiteError, e.to_string()));
    }

    // Once the payload runs, the record gets init's pid (lifecycle commands check it).
    // Re-read rather than rewrite our copy: a `pilotbox renew` may already have moved
    // `cred_not_after`.
    let on_started = |s: &engine::Started| {
        // Under the record's lock: a concurrent `renew` or `gc` rewrites it too.
        let _lock = store.lock(&rec.id);
        let mut r = store.read(&rec.id).unwrap_or_else(|_| rec.clone());
        r.init_pid = s.init_pid;
        if let Err(e) = store.update(&r) {
            eprintln!("{}: warning: {e}", ctx.req.name);
        }
    };
    // Credential expiry (policy `[expiry]`): warn `margin` before the end, end the payload at
    // it; `refresh` re-reads the record, whose `cred_not_after` `pilotbox renew` moves.
    let refresh = || {
        store
            .read(&rec.id)
            .ok()
            .and_then(|r| r.cred_not_after_at())
            .map(std::time::SystemTime::from)
    };
    let opts = RunOptions {
        walltime: l.walltime_s.map(Duration::from_secs),
        seccomp_cache: engine::default_seccomp_cache(),
        on_started: Some(&on_started),
        cred_expiry: Some(engine::CredExpiry {
            not_after: cred_end.into(),
            margin: Duration::from_secs(policy.file.expiry.margin.0),
            signal: expiry_signal(policy.file.expiry.signal),
            refresh: &refresh,
        }),
        relay: ctx.caller.relay.as_deref().map(|fd| fd.as_fd()),
        ..RunOptions::default()
    };
    let result = engine::run(&spec, &opts);
    let id = p.id.clone();
    let handover = p.handover;
    let (leftover, workdir_cleanup) = p.finish_counted();
    let name = ctx.req.name;
    let (mut report, outcome) = engine_outcome(
        name,
        result,
        Some(&cgroup),
        &ctx.started,
        " (left for `pilotbox gc`)",
    );
    let code = outcome.exit_code();
    if let Some(l) = &leftover {
        eprintln!("{name}: warning: cleanup: {l}");
    }
    report["id"] = json!(id);
    report["user"] = user_json(Some(identity), Some(d));
    report["network"] = json!(network.name());
    let mut end = who;
    end["id"] = json!(id);
    end["account"] = json!(d.account);
    end["uid"] = json!(d.uid);
    end["cgroup"] = json!(cgroup);
    end["outcome"] = report["outcome"].clone();
    end["exit"] = json!(code);
    end["signal"] = report["signal"].clone();
    // Why it ended, when pilotbox ended it (wall time, credential, the caller gone, OOM).
    end["reason"] = report["reason"].clone();
    end["usage"] = report["usage"].clone();
    end["workdir_handover"] = json!(handover);
    end["network"] = json!(network.name());
    end["cleanup_problems"] = json!(leftover);
    // Set-id bits/capabilities stripped and entries given back in the work dir (issue 11).
    end["workdir_cleanup"] = json!(workdir_cleanup);
    if let Value::Object(apel) = audit::apel_fields(&report["usage"], l.cpus) {
        for (k, v) in apel {
            end[k] = v;
        }
    }
    if let Err(e) = audit.record("end", end) {
        eprintln!("{name}: warning: {e}");
    }
    ctx.write_report(&report);
    outcome
}

/// The caller's own limits for what `sanitize` raised for pilotbox (a batch system's limits must
/// reach the job, as they did when pilotbox only raised soft limits to the hard ones — and now
/// hard ones may have been raised too), unless the spec sets that limit. Only where they differ
/// from ours: otherwise the payload inherits the same values without a setrlimit.
fn payload_rlimits(rlimits: &mut Vec<(String, u64, u64)>, caller: &Caller) {
    for &(res, soft, hard) in &caller.rlimits {
        let name = format!("{res:?}");
        let ours = nix::sys::resource::getrlimit(res).ok();
        if ours != Some((soft, hard)) && !rlimits.iter().any(|(n, _, _)| *n == name) {
            rlimits.push((name, soft, hard));
        }
    }
}

/// The policy's `[expiry] signal` as a signal (the schema admits only those init forwards).
pub fn expiry_signal(s: ExpirySignal) -> nix::sys::signal::Signal {
    use nix::sys::signal::Signal;
    match s {
        ExpirySignal::Sigterm => Signal::SIGTERM,
        ExpirySignal::Sigint => Signal::SIGINT,
        ExpirySignal::Sighup => Signal::SIGHUP,
        ExpirySignal::Sigusr1 => Signal::SIGUSR1,
        ExpirySignal::Sigusr2 => Signal::SIGUSR2,
    }
}

/// The report (engine part) and outcome of an engine run, with its one stderr line when the
/// payload did not start or the engine failed; shared by `pilotbox run` and `pilotbox-nosuid`.
/// `cleanup_hint` follows a cleanup warning (where what was left goes).
pub fn engine_outcome(
    name: &str,
    result: Result<engine::RunResult, engine::EngineError>,
    cgroup: Option<&str>,
    started: &str,
    cleanup_hint: &str,
) -> (Value, Outcome) {
    match result {
        Ok(r) => {
            let mut rep = r.report();
            let outcome = match &r.outcome.exec_error {
                Some((_, why)) => {
                    eprintln!("{name}: pilot_error: the payload did not start: {why}");
                    rep["exit_code"] = json!(Class::PilotError.exit_code());
                    Outcome::Failed(Class::PilotError)
                }
                None => Outcome::Payload(r.outcome.status.exit_code()),
            };
            if let Some(e) = &r.cleanup_error {
                eprintln!("{name}: warning: {e}{cleanup_hint}");
            }
            (rep, outcome)
        }
        Err(e) => {
            let class = e.class();
            eprintln!("{name}: {class}: {e}");
            let rep = json!({"outcome": class.outcome(), "reason": e.to_string(),
                "exit_code": class.exit_code(), "signal": null, "cgroup": cgroup,
                "started": started, "ended": audit::now_rfc3339(), "usage": null});
            (rep, Outcome::Failed(class))
        }
    }
}
