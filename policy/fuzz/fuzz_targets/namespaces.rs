//! EUGridPMA .namespaces files, then a match against a fixed subject.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(ns) = policy::credentials::namespaces::Namespaces::parse(text) {
            for r in &ns.rules {
                let _ = r.matches("/DC=org/DC=example/CN=Alice");
            }
        }
    }
});
