//! Real credentials made at test time (openssl, grid-proxy-init, voms-proxy-fake), each with
//! its expected verdict and machine reason.

mod support;

use policy::credentials::{
    verify_proxy, AlgorithmPolicy, CredentialError, Verified, VerifyOptions,
};
use policy::ProxyType;
use std::path::Path;
use support::{date, Pki, Spec};
use time::{Duration, OffsetDateTime};

fn opts(pki: &Pki) -> VerifyOptions {
    VerifyOptions::new(&pki.ca_dir)
}

fn verify(file: &Path, o: &VerifyOptions) -> Result<Verified, CredentialError> {
    verify_proxy(&std::fs::read(file).unwrap(), o)
}

/// Asserts a rejection with this machine reason and returns the message.
#[track_caller]
fn rejected(file: &Path, o: &VerifyOptions, code: &str) -> String {
    match verify(file, o) {
        Ok(v) => panic!("accepted {}, expected {code}", v.identity.dn),
        Err(e) => {
            assert_eq!(e.code(), code, "wrong reason: {}", e.reason());
            e.reason()
        }
    }
}

#[track_caller]
fn accepted(file: &Path, o: &VerifyOptions) -> Verified {
    verify(file, o).unwrap_or_else(|e| panic!("rejected: {}", e.reason()))
}

#[test]
fn rfc_legacy_and_draft_proxies() {
    let pki = Pki::new("Test CA");
    let alice = pki.user("Alice", &Spec::default());
    for (args, kind) in [
        (&["-rfc"][..], ProxyType::Rfc3820),
        (&["-old"][..], ProxyType::Legacy),
        (&["-draft"][..], ProxyType::Draft),
    ] {
        let v = accepted(&pki.grid_proxy_init(&alice, args), &opts(&pki));
        assert_eq!(v.identity.dn, "/DC=org/DC=example/CN=Alice");
        assert_eq!(v.identity.issuer_dn, "/DC=org/DC=example/CN=Test CA");
        assert_eq!(v.identity.proxy_type, Some(kind), "{args:?}");
        assert!(!v.identity.limited);
        assert_eq!(v.proxy_depth, 1);
        assert!(v.identity.voms.is_none());
    }
}

#[test]
fn limited_independent_and_path_length() {
    let pki = Pki::new("Test CA");
    let alice = pki.user("Alice", &Spec::default());
    let limited = pki.grid_proxy_init(&alice, &["-rfc", "-limited"]);
    rejected(&limited, &opts(&pki), "limited_proxy");
    let mut allow = opts(&pki);
    allow.allow_limited = true;
    assert!(accepted(&limited, &allow).identity.limited);
    let legacy_limited = pki.grid_proxy_init(&alice, &["-old", "-limited"]);
    assert!(accepted(&legacy_limited, &allow).identity.limited);

    let indep = accepted(
        &pki.grid_proxy_init(&alice, &["-rfc", "-independent"]),
        &opts(&pki),
    );
    assert!(indep.independent);
    assert_eq!(indep.identity.dn, "/DC=org/DC=example/CN=Alice");

    // path length 0 (openssl-made): no proxy may follow
    let pl0 = pki.sign_proxy(&alice, &Spec::default(), "v3_proxy_pl0");
    assert_eq!(
        accepted(&pki.proxy_file(&pl0, &[&alice.cert]), &opts(&pki)).proxy_path_lens,
        vec![Some(0)]
    );
    let below = pki.sign_proxy(&pl0, &Spec::default(), "v3_proxy");
    rejected(
        &pki.proxy_file(&below, &[&pl0.cert, &alice.cert]),
        &opts(&pki),
        "proxy_path_length_exceeded",
    );
    // path length 1: one may follow
    let pl1 = pki.grid_proxy_init(&alice, &["-rfc", "-path-length", "1"]);
    let pl1_cred = support::Cred {
        cert: pl1.clone(),
        key: pl1.clone(),
        dn: String::new(),
    };
    let v = accepted(&pki.grid_proxy_init(&pl1_cred, &["-rfc"]), &opts(&pki));
    assert_eq!(v.proxy_depth, 2);
    assert_eq!(v.identity.dn, "/DC=org/DC=example/CN=Alice");
}

#[test]
fn proxy_of_proxy_rules() {
    let pki = Pki::new("Test CA");
    let alice = pki.user("Alice", &Spec::default());
    let as_cred = |p: &Path| support::Cred {
        cert: p.to_path_buf(),
        key: p.to_path_buf(),
        dn: String::new(),
    };
    let p1 = pki.grid_proxy_init(&alice, &["-rfc"]);
    let p2 = pki.grid_proxy_init(&as_cred(&p1), &["-rfc"]);
    let p3 = pki.grid_proxy_init(&as_cred(&p2), &["-rfc"]);
    let v = accepted(&p3, &opts(&pki));
    assert_eq!(
        (v.proxy_depth, v.identity.dn.as_str()),
        (3, "/DC=org/DC=example/CN=Alice")
    );
    // a full proxy below a limited one
    // (grid-proxy-init makes a proxy of a limited proxy limited itself, so sign with openssl)
    let lim = pki.sign_proxy(&alice, &Spec::default(), "v3_proxy_limited");
    let full = pki.sign_proxy(&lim, &Spec::default(), "v3_proxy");
    let full = pki.proxy_file(&full, &[&lim.cert, &alice.cert]);
    let mut allow = opts(&pki);
    allow.allow_limited = true;
    rejected(&full, &allow, "full_proxy_after_limited");
    // legacy then RFC
    let old = pki.grid_proxy_init(&alice, &["-old"]);
    // (grid-proxy-init refuses to mix, so sign the RFC proxy with openssl)
    let old_cred = pki.cred_of_file(&old);
    let rfc_below = pki.sign_proxy(&old_cred, &Spec::default(), "v3_proxy");
    let old_cert = pki.path("old-proxy-cert.pem");
    std::fs::write(
        &old_cert,
        std::fs::read_to_string(&old)
            .unwrap()
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap(),
    )
    .unwrap();
    let mixed = pki.proxy_file(&rfc_below, &[&old_cert, &alice.cert]);
    rejected(&mixed, &opts(&pki), "mixed_proxy_types");
}

#[test]
fn validity_at_each_level() {
    let pki = Pki::new("Test CA");
    let alice = pki.user("Alice", &Spec::default());
    let proxy = pki.grid_proxy_init(&alice, &["-rfc", "-valid", "12:00"]);
    let mut o = opts(&pki);
    o.at = Some(OffsetDateTime::now_utc() + Duration::hours(13));
    assert!(rejected(&proxy, &o, "expired").contains("/CN=Alice/CN="));
    o.at = Some(OffsetDateTime::now_utc() - Duration::hours(2));
    assert!(rejected(&proxy, &o, "not_yet_valid").contains("/CN=Alice/CN="));
    // inside the 5-minute skew allowance: still valid
    o.at = Some(OffsetDateTime::now_utc() - Duration::minutes(3));
    accepted(&proxy, &o);

    // user certificate expired / not yet valid, proxy itself valid (signed with explicit dates)
    let old_user = pki.user(
        "Old",
        &Spec {
            start: Some(date(-30)),
            end: Some(date(-1)),
            ..Spec::default()
        },
    );
    let p = pki.sign_proxy(&old_user, &Spec::default(), "v3_proxy");
    let f = pki.proxy_file(&p, &[&old_user.cert]);
    assert!(rejected(&f, &opts(&pki), "expired").contains("CN=Old expired"));
    let future_user = pki.user(
        "Future",
        &Spec {
            start: Some(date(2)),
            end: Some(date(30)),
            ..Spec::default()
        },
    );
    let p = pki.sign_proxy(&future_user, &Spec::default(), "v3_proxy");
    rejected(
        &pki.proxy_file(&p, &[&future_user.cert]),
        &opts(&pki),
        "not_yet_valid",
    );
    // CA expired (verify far in the future, after everything): the leaf is reported first
    o.at = Some(OffsetDateTime::now_utc() + Duration::days(365 * 11));
    rejected(&proxy, &o, "expired");
}

#[test]
fn revocation_and_crls() {
    let pki = Pki::new("Test CA");
    let alice = pki.user("Alice", &Spec::default());
    let bob = pki.user("Bob", &Spec::default());
    let pa = pki.grid_proxy_init(&alice, &["-rfc"]);
    let pb = pki.grid_proxy_init(&bob, &["-rfc"]);
    let mut require = opts(&pki);
    require.crl.require = true;
    rejected(&pa, &require, "crl_missing");
    pki.revoke(&bob);
    rejected(&pb, &opts(&pki), "revoked");
    accepted(&pa, &require);
    pki.expired_crl();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut later = opts(&pki);
    later.at = Some(OffsetDateTime::now_utc() + Duration::minutes(10));
    rejected(&pa, &later, "crl_expired");
    later.crl.allow_expired = true;
    accepted(&pa, &later);
    rejected(&pb, &later, "revoked");
}

#[test]
fn untrusted_ca_tampering_and_wrong_key() {
    let pki = Pki::new("Test CA");
    let other = Pki::new("Other CA");
    let alice = pki.user("Alice", &Spec::default());
    let mallory = other.user("Alice", &Spec::default());
    let foreign = other.grid_proxy_init(&mallory, &["-rfc"]);
    rejected(&foreign, &opts(&pki), "untrusted");

    let good = pki.grid_proxy_init(&alice, &["-rfc"]);
    let text = std::fs::read_to_string(&good).unwrap();
    // flip one base64 character in the last line of the first certificate: its signature
    let end = text.find("-----END CERTIFICATE-----").unwrap();
    let line_start = text[..end - 1].rfind('\n').unwrap() + 1;
    let mut bytes = text.into_bytes();
    let i = line_start + 5;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = pki.path("tampered.proxy");
    std::fs::write(&tampered, &bytes).unwrap();
    rejected(&tampered, &opts(&pki), "bad_signature");

    // the key of another proxy in the file
    let other_proxy = std::fs::read_to_string(pki.grid_proxy_init(&alice, &["-rfc"])).unwrap();
    let key_of = |t: &str| {
        let s = t
            .find("-----BEGIN PRIVATE KEY-----")
            .or_else(|| t.find("-----BEGIN RSA PRIVATE KEY-----"))
            .unwrap();
        let e = t[s..].find("KEY-----\n").unwrap() + s;
        let e = t[e + 9..].find("KEY-----").unwrap() + e + 9 + 9;
        (s, e)
    };
    let text = std::fs::read_to_string(&good).unwrap();
    let (s1, e1) = key_of(&text);
    let (s2, e2) = key_of(&other_proxy);
    let swapped = format!("{}{}{}", &text[..s1], &other_proxy[s2..e2], &text[e1..]);
    let wrong = pki.path("wrongkey.proxy");
    std::fs::write(&wrong, swapped).unwrap();
    rejected(&wrong, &opts(&pki), "key_mismatch");
    let mut nokey = opts(&pki);
    nokey.require_key = true;
    rejected(&alice.cert, &nokey, "no_key");
}

#[test]
fn namespaces_and_signing_policy() {
    let pki = Pki::new("Test CA");
    let alice = pki.user("Alice", &Spec::default());
    let bob = pki.user("Bob", &Spec::default());
    let (pa, pb) = (
        pki.grid_proxy_init(&alice, &["-rfc"]),
        pki.grid_proxy_init(&bob, &["-rfc"]),
    );
    pki.signing_policy("access_id_CA X509 '@CA@'\npos_rights globus CA:sign\ncond_subjects globus '\"/DC=org/DC=example/CN=B*\"'\n");
    rejected(&pa, &opts(&pki), "namespace");
    accepted(&pb, &opts(&pki));
    // .namespaces wins over .signing_policy
    pki.namespaces("TO Issuer \"@CA@\" PERMIT Subject \"/DC=org/DC=example/CN=Alice\"\n");
    accepted(&pa, &opts(&pki));
    let msg = rejected(&pb, &opts(&pki), "namespace");
    assert!(msg.contains(".namespaces"), "{msg}");
    // a broken namespaces file is the site's problem, and fails closed
    pki.namespaces("TO Issuer garbage\n");
    let e = verify(&pa, &opts(&pki)).unwrap_err();
    assert_eq!(e.class(), policy::Class::SiteError);
}

#[test]
fn algorithm_policy() {
    let pki = Pki::new("Test CA");
    let legacy = {
        let mut o = opts(&pki);
        o.algorithms = AlgorithmPolicy::legacy();
        o
    };
    let sha1 = pki.user(
        "Sha1",
        &Spec {
            md: "sha1",
            ..Spec::default()
        },
    );
    let p = pki.grid_proxy_init(&sha1, &["-rfc"]);
    assert!(rejected(&p, &opts(&pki), "weak_algorithm").contains("sha1WithRSAEncryption"));
    accepted(&p, &legacy);
    let md5 = pki.user(
        "Md5",
        &Spec {
            md: "md5",
            ..Spec::default()
        },
    );
    let p = pki.proxy_file(
        &pki.sign_proxy(&md5, &Spec::default(), "v3_proxy"),
        &[&md5.cert],
    );
    rejected(&p, &opts(&pki), "weak_algorithm");
    rejected(&p, &legacy, "weak_algorithm");
    let small = pki.user(
        "Small",
        &Spec {
            key: "rsa:1024",
            ..Spec::default()
        },
    );
    let p = pki.proxy_file(
        &pki.sign_proxy(&small, &Spec::default(), "v3_proxy"),
        &[&small.cert],
    );
    rejected(&p, &opts(&pki), "weak_key");
    accepted(&p, &legacy);
    // ECDSA P-256 CA and P-384 user, RSA proxy
    let ec = Pki::with_spec(
        "EC CA",
        &Spec {
            key: "ec:P-256",
            ..Spec::default()
        },
    );
    let u = ec.user(
        "Eve",
        &Spec {
            key: "ec:P-384",
            md: "sha384",
            ..Spec::default()
        },
    );
    let p = ec.proxy_file(&ec.sign_proxy(&u, &Spec::default(), "v3_proxy"), &[&u.cert]);
    assert_eq!(
        accepted(&p, &opts(&ec)).identity.dn,
        "/DC=org/DC=example/CN=Eve"
    );
    // a signer without digitalSignature cannot sign proxies
    let nosig = pki.issue(
        None,
        "/DC=org/DC=example/CN=NoSig",
        &Spec::default(),
        "v3_nosig",
    );
    let p = pki.proxy_file(
        &pki.sign_proxy(&nosig, &Spec::default(), "v3_proxy"),
        &[&nosig.cert],
    );
    rejected(&p, &opts(&pki), "key_usage");
}

#[test]
fn garbage_never_panics() {
    let pki = Pki::new("Test CA");
    let alice = pki.user("Alice", &Spec::default());
    let good = std::fs::read(pki.grid_proxy_init(&alice, &["-rfc"])).unwrap();
    let o = opts(&pki);
    for cut in (0..good.len()).step_by(97) {
        let _ = policy::credentials::verify_with_trust_dir(
            &good[..cut],
            &policy::credentials::TrustDir::load(&pki.ca_dir).unwrap(),
            &o,
        );
    }
    let huge = vec![b'A'; 2 * 1024 * 1024];
    assert_eq!(
        policy::credentials::verify_proxy(&huge, &o)
            .unwrap_err()
            .code(),
        "too_large"
    );
    assert_eq!(
        policy::credentials::verify_proxy(b"\x30\x82\xff\xff garbage", &o)
            .unwrap_err()
            .code(),
        "malformed_pem"
    );
    assert_eq!(
        policy::credentials::verify_proxy(b"hello", &o)
            .unwrap_err()
            .code(),
        "no_certificate"
    );
}

/// A real VOMS proxy through the whole verifier: chain, then the AC of the nearest proxy.
#[test]
fn voms_proxy_keeps_fqans_in_order() {
    let pki = Pki::new("Test CA");
    let alice = pki.user("Alice", &Spec::default());
    let host = pki.host("voms.example.org");
    let p = pki.voms_proxy_fake(
        &alice,
        &host,
        "testvo",
        "voms.example.org:15000",
        support::TWO_FQANS_AND_A_GA,
    );
    let mut o = opts(&pki);
    o.voms_dir = Some(pki.vomsdir("testvo", "voms.example.org", &host));
    let v = accepted(&p, &o);
    let voms = v.identity.voms.expect("AC found");
    assert!(voms.valid, "{:?}", voms.reason);
    assert_eq!(voms.vo, "testvo");
    assert_eq!(
        voms.fqans,
        vec![
            "/testvo/Role=NULL/Capability=NULL",
            "/testvo/prod/Role=pilot/Capability=NULL"
        ]
    );
    // a plain proxy delegated from the VOMS proxy keeps the VO
    let plain = pki.grid_proxy_init(
        &support::Cred {
            cert: p.clone(),
            key: p.clone(),
            dn: String::new(),
        },
        &["-rfc"],
    );
    assert_eq!(accepted(&plain, &o).identity.verified_vo(), Some("testvo"));
}

/// The whole verifier with one algorithm policy: a VOMS proxy whose AC was signed by a 1024-bit
/// VOMS server key. The chain (2048-bit user) is fine; the AC is invalid with `weak_key`, as a
/// 1024-bit certificate key in the chain is; `--legacy-algorithms` accepts both.
#[test]
fn voms_ac_from_small_aa_key_is_weak_key() {
    let pki = Pki::new("Test CA");
    let alice = pki.user("Alice", &Spec::default());
    let small = pki.issue(
        None,
        "/DC=org/DC=example/CN=voms.example.org",
        &Spec {
            key: "rsa:1024",
            ..Spec::default()
        },
        "v3_host",
    );
    let p = pki.voms_proxy_fake(
        &alice,
        &small,
        "testvo",
        "voms.example.org:15000",
        &["-fqan", "/testvo"],
    );
    let mut o = opts(&pki);
    o.voms_dir = Some(pki.vomsdir("testvo", "voms.example.org", &small));
    let voms = accepted(&p, &o).identity.voms.expect("AC found");
    assert!(!voms.valid);
    let reason = voms.reason.unwrap();
    assert!(
        reason.starts_with("AC signature refused: weak_key: /DC=org/DC=example/CN=voms.example.org has a 1024-bit RSA key"),
        "{reason}"
    );
    o.algorithms = AlgorithmPolicy::legacy();
    let voms = accepted(&p, &o).identity.voms.expect("AC found");
    assert!(voms.valid, "{:?}", voms.reason);
}

/// One algorithm policy for CRL signatures too. A CRL the policy refuses is an error with the
/// chain's code, never skipped: skipping an MD5-signed CRL used to drop its revocations and let
/// a revoked certificate through (fail open); a SHA-1 CRL was accepted under the modern policy.
#[test]
fn crl_signatures_follow_the_algorithm_policy() {
    let pki = Pki::new("Test CA");
    let bob = pki.user("Bob", &Spec::default());
    let pb = pki.grid_proxy_init(&bob, &["-rfc"]);
    pki.revoke(&bob);
    rejected(&pb, &opts(&pki), "revoked");
    let mut legacy = opts(&pki);
    legacy.algorithms = AlgorithmPolicy::legacy();
    pki.write_crl_md("sha1");
    let msg = rejected(&pb, &opts(&pki), "weak_algorithm");
    assert!(
        msg.contains("CRL") && msg.contains("sha1WithRSAEncryption"),
        "{msg}"
    );
    rejected(&pb, &legacy, "revoked");
    pki.write_crl_md("md5");
    assert!(rejected(&pb, &opts(&pki), "weak_algorithm").contains("md5WithRSAEncryption"));
    rejected(&pb, &legacy, "weak_algorithm");
}

/// A VOMS server whose certificate is SHA-1 signed (voms-proxy-fake then signs the AC with
/// SHA-1 too): the AC is invalid with the chain's `weak_algorithm` (AC signature first, the AA
/// chain would give the same code), and valid when legacy algorithms are allowed.
#[test]
fn voms_from_sha1_aa_is_weak_algorithm() {
    let pki = Pki::new("Test CA");
    let alice = pki.user("Alice", &Spec::default());
    let sha1_host = pki.issue(
        None,
        "/DC=org/DC=example/CN=voms.example.org",
        &Spec {
            md: "sha1",
            ..Spec::default()
        },
        "v3_host",
    );
    let p = pki.voms_proxy_fake(
        &alice,
        &sha1_host,
        "testvo",
        "voms.example.org:15000",
        &["-fqan", "/testvo"],
    );
    let mut o = opts(&pki);
    o.voms_dir = Some(pki.vomsdir("testvo", "voms.example.org", &sha1_host));
    let voms = accepted(&p, &o).identity.voms.expect("AC found");
    let reason = voms.reason.unwrap_or_default();
    assert!(
        !voms.valid && reason.starts_with("AC signature refused: weak_algorithm: "),
        "{reason}"
    );
    o.algorithms = AlgorithmPolicy::legacy();
    let voms = accepted(&p, &o).identity.voms.expect("AC found");
    assert!(voms.valid, "{:?}", voms.reason);
}
