//! One DER certificate: parsing, DN rendering and proxy classification against itself.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = policy::credentials::cert::Cert::from_der(data, 0) {
        let _ = c.subject.to_rfc2253();
        let _ = policy::credentials::proxy::classify(&c, &c);
    }
});
