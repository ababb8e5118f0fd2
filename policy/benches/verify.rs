//! Benchmark (not a test): full verifications per second on one core (trust dir preloaded) of
//! - a 2-level RFC 3820 proxy (grid-proxy-init of a grid-proxy-init proxy of a user
//!   certificate, RSA 2048 / SHA-256), and
//! - a 2-level VOMS proxy, the case the issue asks for: a `voms-proxy-fake` proxy carrying a
//!   VOMS AC (two FQANs and a generic attribute), then a grid-proxy-init proxy of it;
//!   verification includes the AC (signature, `.lsc` chain, validity, holder, FQANs).
//!
//! Run with `cargo bench -p policy --bench verify`.

#[path = "../tests/support/mod.rs"]
mod support;

use policy::credentials::{verify_with_trust_dir, TrustDir, VerifyOptions};
use std::time::{Duration, Instant};

const BUDGET: Duration = Duration::from_secs(3);

/// Runs `f` for [`BUDGET`] and prints the rate.
fn measure(label: &str, mut f: impl FnMut()) {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < BUDGET {
        f();
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label}: {n} in {secs:.2}s = {:.0} verifications/s (one core)",
        n as f64 / secs
    );
}

fn main() {
    let pki = support::Pki::new("Bench CA");
    let user = pki.user("Bench User", &support::Spec::default());
    let trust = TrustDir::load(&pki.ca_dir).unwrap();

    // Plain RFC proxy, 2 levels.
    let p1 = pki.grid_proxy_init(&user, &["-rfc"]);
    let p2 = pki.grid_proxy_init(&pki.cred_of_file(&p1), &["-rfc"]);
    let plain = std::fs::read(&p2).unwrap();
    let opts = VerifyOptions::new(&pki.ca_dir);
    verify_with_trust_dir(&plain, &trust, &opts).expect("RFC proxy verifies");
    measure("verify 2-level RFC proxy, trust dir preloaded", || {
        verify_with_trust_dir(&plain, &trust, &opts).unwrap();
    });
    measure("verify 2-level RFC proxy, incl. trust dir load", || {
        policy::credentials::verify_proxy(&plain, &opts).unwrap();
    });

    // VOMS proxy, 2 levels: voms-proxy-fake (level 1, with the AC), grid-proxy-init of it.
    let host = pki.host("voms.example.org");
    let v1 = pki.voms_proxy_fake(
        &user,
        &host,
        "testvo",
        "voms.example.org:15000",
        support::TWO_FQANS_AND_A_GA,
    );
    let v2 = pki.grid_proxy_init(&pki.cred_of_file(&v1), &["-rfc"]);
    let voms = std::fs::read(&v2).unwrap();
    let mut vopts = VerifyOptions::new(&pki.ca_dir);
    vopts.voms_dir = Some(pki.vomsdir("testvo", "voms.example.org", &host));
    let v = verify_with_trust_dir(&voms, &trust, &vopts).expect("VOMS proxy verifies");
    let ac = v
        .identity
        .voms
        .expect("the AC is found in the 2-level proxy");
    assert!(ac.valid, "the AC verifies: {:?}", ac.reason);
    assert_eq!(ac.fqans.len(), 2);
    measure(
        "verify 2-level VOMS proxy incl. AC, trust dir preloaded",
        || {
            let v = verify_with_trust_dir(&voms, &trust, &vopts).unwrap();
            assert!(v.identity.voms.is_some_and(|a| a.valid));
        },
    );
}
