//! Benchmark (not a test): full verifications per second of a 2-level RFC 3820 proxy
//! (proxy of a proxy of a user certificate, RSA 2048 / SHA-256) against a loaded trust dir,
//! on one core. Run with `cargo bench -p policy --bench verify`. VOMS ACs are added once the
//! VOMS module is merged (then use `Pki::voms_proxy_fake` for the first level).

#[path = "../tests/support/mod.rs"]
mod support;

use policy::credentials::{verify_with_trust_dir, TrustDir, VerifyOptions};
use std::time::{Duration, Instant};

fn main() {
    let pki = support::Pki::new("Bench CA");
    let user = pki.user("Bench User", &support::Spec::default());
    let p1 = pki.grid_proxy_init(&user, &["-rfc"]);
    let p2 = pki.grid_proxy_init(&pki.cred_of_file(&p1), &["-rfc"]);
    let bytes = std::fs::read(&p2).unwrap();
    let opts = VerifyOptions::new(&pki.ca_dir);
    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    verify_with_trust_dir(&bytes, &trust, &opts).expect("bench credential verifies");
    let budget = Duration::from_secs(3);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        verify_with_trust_dir(&bytes, &trust, &opts).unwrap();
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "verify 2-level RFC proxy: {n} in {secs:.2}s = {:.0}/s (one core, trust dir preloaded)",
        n as f64 / secs
    );
    let start = Instant::now();
    let mut m = 0u64;
    while start.elapsed() < budget {
        policy::credentials::verify_proxy(&bytes, &opts).unwrap();
        m += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "verify incl. trust dir load: {m} in {secs:.2}s = {:.0}/s",
        m as f64 / secs
    );
}
