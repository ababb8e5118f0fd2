//! `pilotbox map --proxy FILE [--explain] [--json]`: verify the proxy against the site policy's
//! trust dirs, then print the mapping decision, without launching anything.
//!
//! JSON (docs/design.md "Details that pilots and tools depend on"): `account`, `uid`, `gid`,
//! `groups`, `pool` (null for a fixed mapping), `limits`, `reasons`, plus `lease`, `rule`,
//! `env` names. A denial prints `outcome`, `exit_code`, `reason`.

use policy::authz::{decide, Decision, Policy, Request};
use policy::class::Denial;
use policy::identity::Identity;
use policy::lease::{open_store_without_creating, unix_now};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The proxy file (default: $X509_USER_PROXY).
    #[arg(long, env = "X509_USER_PROXY")]
    pub proxy: PathBuf,
    /// Print the reason trail.
    #[arg(long)]
    pub explain: bool,
    /// Print JSON for programs.
    #[arg(long)]
    pub json: bool,
}

/// `map`: the system policy (fixed path), its trust dirs, the caller's proxy.
pub fn run(args: Args, caller: &crate::launcher::sanitize::Caller) -> i32 {
    let policy = match Policy::load_system() {
        Ok(p) => p,
        Err(e) => return fail(Denial::from(e), args.json),
    };
    // A non-root caller's proxy is read as the caller, under gLExec's rule (owned by the
    // caller, private), exactly as `run` does; root may name any file.
    let bytes = if caller.uid != 0 {
        match crate::launcher::credfile::read_proxy(caller, &args.proxy) {
            Ok(b) => b,
            Err(e) => {
                return fail(
                    Denial::new(policy::Class::PilotError, e.to_string()),
                    args.json,
                )
            }
        }
    } else {
        match super::verify::read_proxy(&args.proxy) {
            Ok(b) => b,
            Err(msg) => return fail(Denial::new(policy::Class::PilotError, msg), args.json),
        }
    };
    let opts = crate::launcher::verify_options(
        policy.file.trust.ca_dir.clone(),
        policy.file.trust.voms_dir.clone(),
    );
    // Untrusted bytes are parsed without privilege, in a uid-65534 child (as `run` does).
    let identity = match crate::launcher::unprivileged::verify(&bytes, &opts) {
        Ok(id) => id,
        Err(d) => return fail(d, args.json),
    };
    run_with_identity(&policy, &identity, args.explain, args.json)
}

fn fail(d: Denial, json_flag: bool) -> i32 {
    if json_flag {
        println!(
            "{}",
            serde_json::to_string_pretty(&denial_json(&d)).unwrap_or_default()
        );
    }
    eprintln!("pilotbox map: {d}");
    d.class.exit_code()
}

/// Human-readable account of a decision (`--explain`).
pub fn explain(d: &Decision) -> String {
    let mut s = format!("account {} (uid {}, gid {}", d.account, d.uid, d.gid);
    if !d.groups.is_empty() {
        let g: Vec<String> = d.groups.iter().map(u32::to_string).collect();
        s.push_str(&format!(", groups {}", g.join(",")));
    }
    s.push_str(")\n");
    match &d.pool {
        Some(p) => s.push_str(&format!(
            "pool {p} ({} lease)\n",
            match d.lease {
                Some(policy::lease::Acquired::Existing) => "existing",
                Some(policy::lease::Acquired::New) => "new",
                Some(policy::lease::Acquired::Recycled) => "recycled",
                Some(policy::lease::Acquired::NotTaken) => "no",
                None => "?",
            }
        )),
        None => s.push_str("fixed mapping (no pool)\n"),
    }
    s.push_str(&format!("rule: {}\n", d.rule));
    let l = &d.limits;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "unlimited".into());
    s.push_str(&format!(
        "limits: memory {} bytes, pids {}, cpus {}, walltime {} s\n",
        opt(l.memory_bytes.map(|v| v.to_string())),
        opt(l.pids.map(|v| v.to_string())),
        opt(l.cpus.map(|v| v.to_string())),
        opt(l.walltime_s.map(|v| v.to_string())),
    ));
    s.push_str("reasons:\n");
    for (i, r) in d.reasons.iter().enumerate() {
        s.push_str(&format!("  {}. {r}\n", i + 1));
    }
    s
}

/// The `--json` object of a decision.
pub fn decision_json(d: &Decision) -> Value {
    json!({
        "outcome": "mapped",
        "account": d.account,
        "uid": d.uid,
        "gid": d.gid,
        "groups": d.groups,
        "pool": d.pool,
        "lease": d.lease,
        "rule": d.rule,
        "limits": d.limits,
        "env": d.env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "reasons": d.reasons,
    })
}

/// The `--json` object of a denial.
pub fn denial_json(d: &Denial) -> Value {
    json!({ "outcome": d.class.outcome(), "exit_code": d.class.exit_code(), "reason": d.reason })
}

/// Decide for `id` under `policy` as a launch would now (store from `[lease]`, read through
/// `PeekStore`: nothing is leased or refreshed; leases of uids with running processes are
/// never recycled) and print the result. Returns the exit status.
pub fn run_with_identity(
    policy: &Policy,
    id: &Identity,
    explain_flag: bool,
    json_flag: bool,
) -> i32 {
    let result = open_store_without_creating(&policy.file.lease)
        .map_err(Denial::from)
        .and_then(|store| {
            decide(
                policy,
                id,
                &Request::default(),
                // Asked, never written: a DN tested with `map` takes no lease, refreshes none.
                &policy::lease::preview::PeekStore(store.as_ref()),
                &super::leases::uid_has_processes,
                unix_now(),
            )
        });
    match result {
        Ok(d) => {
            if json_flag {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&decision_json(&d)).unwrap_or_default()
                );
            } else if explain_flag {
                print!("{}", explain(&d));
            } else {
                println!("{} {} {}", d.account, d.uid, d.gid);
            }
            0
        }
        Err(e) => {
            if json_flag {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&denial_json(&e)).unwrap_or_default()
                );
            }
            eprintln!("pilotbox map: {e}");
            e.class.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::authz::Limits;

    fn decision(pool: Option<&str>) -> Decision {
        Decision {
            account: "testvo007".into(),
            uid: 30007,
            gid: 30000,
            groups: vec![30999],
            pool: pool.map(String::from),
            lease: pool.map(|_| policy::lease::Acquired::Existing),
            rule: "policy.toml [[map]] #2".into(),
            limits: Limits {
                memory_bytes: Some(2 << 30),
                pids: Some(1024),
                cpus: None,
                walltime_s: Some(3600),
            },
            env: vec![("LANG".into(), "C".into())],
            reasons: vec![
                "not banned".into(),
                "FQAN /testvo matches policy.toml [[map]] #2".into(),
            ],
        }
    }

    #[test]
    fn json_has_the_documented_fields() {
        let v = decision_json(&decision(Some("testvo")));
        for k in [
            "account", "uid", "gid", "groups", "pool", "limits", "reasons",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["uid"], 30007);
        assert_eq!(v["groups"], json!([30999]));
        assert_eq!(v["limits"]["memory_bytes"], 2u64 << 30);
        assert_eq!(
            v["reasons"][1],
            "FQAN /testvo matches policy.toml [[map]] #2"
        );
        assert!(
            decision_json(&decision(None))["pool"].is_null(),
            "fixed mapping: pool is null"
        );
        let d = denial_json(&Denial::new(
            policy::Class::Temporary,
            "pool testvo exhausted",
        ));
        assert_eq!(
            (d["outcome"].as_str(), d["exit_code"].as_i64()),
            (Some("temporary"), Some(121))
        );
    }

    #[test]
    fn explain_shows_account_pool_limits_and_numbered_reasons() {
        let e = explain(&decision(Some("testvo")));
        assert!(
            e.contains("account testvo007 (uid 30007, gid 30000, groups 30999)"),
            "{e}"
        );
        assert!(e.contains("pool testvo (existing lease)"), "{e}");
        assert!(e.contains("cpus unlimited"), "{e}");
        assert!(e.contains("  2. FQAN /testvo matches"), "{e}");
        assert!(explain(&decision(None)).contains("fixed mapping"));
    }
}
