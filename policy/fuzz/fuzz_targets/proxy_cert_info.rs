//! ProxyCertInfo extension values (RFC 3820 and GT3 draft layouts).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = policy::credentials::proxy::parse_proxy_cert_info(data);
});
