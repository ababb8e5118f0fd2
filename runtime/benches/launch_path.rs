//! In-process rates of the two decision steps every `pilotbox run` takes, on the real files
//! `tests/bench/run.sh` made (a voms-proxy-fake proxy, an IGTF-style trust dir, the bench
//! policy), plus the seccomp profile the peers get so that every runtime filters the same calls.
//! Single-threaded, so each rate is per core. Plain `harness = false` bench, driven by
//! environment variables (without them it explains itself and exits 0, so `cargo bench` works):
//!
//! ```text
//! PILOTBOX_BENCH=rates PILOTBOX_BENCH_PROXY=F PILOTBOX_BENCH_POLICY=P [PILOTBOX_BENCH_SECS=2]
//!     cargo bench -p runtime --bench launch_path      # one JSON object on stdout
//! PILOTBOX_BENCH=seccomp-json cargo bench -p runtime --bench launch_path   # OCI linux.seccomp
//! ```
//! Rates measured:
//! - `verify_per_s`: a full verification as `pilotbox run` does it (trust dir and vomsdir read
//!   from disk, chain + proxy rules + VOMS AC signature, `.lsc`, FQANs);
//! - `verify_preloaded_per_s`: the same with the trust dir loaded once (what a daemon could do);
//! - `verify_igtf_per_s`: `verify_per_s` against the bench trust dir plus 100 generated
//!   IGTF-style CAs (two hash names, `.namespaces`, `.signing_policy`, `.info`, a CRL each; every
//!   tenth CRL ~1 MB, 10 MB in all), i.e. a worker node's directory; generated once per run into
//!   a temp dir (~10 s of openssl). `igtf_files_parsed_per_verify` says how many of its files one
//!   verification read beyond the CA certificates (issue #7: only the path's CA's);
//! - `decide_warm_per_s`: a mapping decision (bans, rule, pool lease renewal — a committed
//!   SQLite transaction — limits) on one open lease store;
//! - `decide_open_per_s`: opening the store, then deciding: what each `pilotbox run` pays.

use policy::authz::{decide, LimitRequest, Policy, Request};
use policy::credentials::{verify_proxy, verify_with_trust_dir, TrustDir, VerifyOptions};
use policy::lease::{open_store, unix_now};
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "../../policy/tests/support/igtf.rs"]
mod igtf;

/// Extra CAs in the IGTF-like directory, and the revoked serials in every tenth one's CRL
/// (29,000 make ~1 MB).
const IGTF_CAS: usize = 100;
const BIG_CRL_SERIALS: usize = 29_000;

/// The bench trust dir copied into `tmp` plus [`IGTF_CAS`] generated CAs.
fn igtf_dir(ca_dir: &Path, tmp: &Path) -> std::path::PathBuf {
    let dir = tmp.join("certificates");
    std::fs::create_dir_all(&dir).expect("igtf dir");
    for e in std::fs::read_dir(ca_dir).expect("read the bench trust dir") {
        let e = e.expect("dir entry");
        std::fs::copy(e.path(), dir.join(e.file_name())).expect("copy a trust dir file");
    }
    igtf::add_extra_cas(&dir, &tmp.join("work"), IGTF_CAS, |i| {
        if i % 10 == 0 {
            BIG_CRL_SERIALS
        } else {
            3
        }
    });
    dir
}

fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("launch_path: {name} is not set");
        std::process::exit(2)
    })
}

fn rates() {
    let secs: f64 = std::env::var("PILOTBOX_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(secs);
    let bytes = std::fs::read(env("PILOTBOX_BENCH_PROXY")).expect("read the proxy");
    let policy = Policy::load(Path::new(&env("PILOTBOX_BENCH_POLICY")), 0).expect("policy");
    let mut opts = VerifyOptions::new(policy.file.trust.ca_dir.clone());
    opts.voms_dir = Some(policy.file.trust.voms_dir.clone());
    let id = verify_proxy(&bytes, &opts)
        .expect("the bench proxy verifies")
        .identity;
    assert!(
        id.voms.as_ref().is_some_and(|v| v.valid),
        "the bench proxy's VOMS AC verifies"
    );
    let verify = rate(budget, || {
        verify_proxy(&bytes, &opts).unwrap();
    });
    let trust = TrustDir::load(&opts.ca_dir).unwrap();
    let verify_pre = rate(budget, || {
        verify_with_trust_dir(&bytes, &trust, &opts).unwrap();
    });
    let tmp = tempfile::Builder::new()
        .prefix("pilotbox-bench-igtf-")
        .tempdir()
        .expect("temp dir");
    let mut igtf_opts = opts.clone();
    igtf_opts.ca_dir = igtf_dir(&opts.ca_dir, tmp.path());
    let igtf = rate(budget, || {
        verify_proxy(&bytes, &igtf_opts).unwrap();
    });
    let td = TrustDir::load(&igtf_opts.ca_dir).unwrap();
    let at_load = td.files_parsed().len();
    verify_with_trust_dir(&bytes, &td, &igtf_opts).unwrap();
    let igtf_files = td.files_parsed().len() - at_load;
    drop(td);
    drop(tmp);
    let req = Request {
        limits: LimitRequest::default(),
        env: vec![],
    };
    let free = |_: u32| false;
    let store = open_store(&policy.file.lease).expect("lease store");
    let d = decide(&policy, &id, &req, store.as_ref(), &free, unix_now()).expect("mapped");
    let warm = rate(budget, || {
        decide(&policy, &id, &req, store.as_ref(), &free, unix_now()).unwrap();
    });
    drop(store);
    let open = rate(budget, || {
        let s = open_store(&policy.file.lease).unwrap();
        decide(&policy, &id, &req, s.as_ref(), &free, unix_now()).unwrap();
    });
    println!(
        "{}",
        serde_json::json!({
            "account": d.account,
            "verify_per_s": verify,
            "verify_preloaded_per_s": verify_pre,
            "verify_igtf_per_s": igtf,
            "igtf_files_parsed_per_verify": igtf_files,
            "decide_warm_per_s": warm,
            "decide_open_per_s": open,
            "budget_s": secs,
        })
    );
}

fn main() {
    match std::env::var("PILOTBOX_BENCH").as_deref() {
        Ok("rates") => rates(),
        Ok("seccomp-json") => {
            let p = runtime::engine::default_seccomp();
            println!("{}", serde_json::to_string(&p).expect("serialize"));
        }
        _ => eprintln!(
            "launch_path: driven by tests/bench/run.sh (set PILOTBOX_BENCH=rates|seccomp-json)"
        ),
    }
}
