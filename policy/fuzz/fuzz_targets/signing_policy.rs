//! Globus .signing_policy files, then a match against a fixed subject.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(sp) = policy::credentials::signing_policy::SigningPolicy::parse(text) {
            for ca in &sp.cas {
                let _ = ca.permits("/DC=org/DC=example/CN=Alice");
            }
        }
    }
});
