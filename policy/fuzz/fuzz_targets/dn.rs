//! DN strings in slash and RFC 2253 form: parse, render, normalise, hash.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(d) = policy::dn::Dn::parse(s) {
            let _ = (d.to_slash(), d.to_rfc2253(), d.comparison_key());
        }
        let _ = policy::dn::openssl_subject_hash_of(s);
    }
});
