//! Whole proxy-file path without a trust dir match: PEM split, certificate parse, key matching.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = policy::credentials::pem::read_proxy_file(data) {
        for (i, der) in file.certs.iter().enumerate() {
            if let Ok(c) = policy::credentials::cert::Cert::from_der(der, i) {
                if let (Some(k), Ok(spki)) = (&file.key, c.public_key()) {
                    let _ = k.matches(&spki);
                }
            }
        }
    }
});
