//! VOMS attribute certificates (RFC 5755 + the VOMS profile): the proxy extension value
//! (`SEQUENCE OF SEQUENCE OF AttributeCertificate`), split into ACs, each parsed; and the bytes
//! parsed directly as one AC. Seeds: `seeds/voms_ac/` (extension values of the
//! ngx_http_voms_module conformance proxies).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(acs) = policy::voms::split_ac_extension(data) {
        for ac in acs {
            let _ = policy::voms::parse_ac(ac);
        }
    }
    let _ = policy::voms::parse_ac(data);
});
