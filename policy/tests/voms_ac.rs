//! VOMS AC verification against REAL ACs made at test time by `voms-proxy-fake` (voms-clients)
//! with a throwaway OpenSSL CA; each rule of `policy::voms` has its own test and reason.

mod support;

use std::fs;
use std::path::Path;

use policy::credentials::AlgorithmPolicy;
use policy::voms::{self, parse_ac, split_ac_extension, verify_ac, VomsContext, VomsError};
use policy::Voms;
use support::voms::*;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

const SKEW: Duration = Duration::minutes(5);

struct Run<'a> {
    vomsdir: &'a Path,
    anchors: Vec<Vec<u8>>,
    /// Time of the AC checks.
    now: OffsetDateTime,
    /// Time the stand-in chain verifier checks the AA certificate at (the test CA cannot
    /// backdate certificates, so AC time travel must not drag the AA chain along).
    chain_now: OffsetDateTime,
    host: Option<&'a str>,
    legacy: bool,
}

impl<'a> Run<'a> {
    fn new(fx: &'a VomsFixture) -> Self {
        Run {
            vomsdir: &fx.vomsdir,
            anchors: pem_certs(&fx.ca.cert),
            now: OffsetDateTime::now_utc(),
            chain_now: OffsetDateTime::now_utc(),
            host: None,
            legacy: false,
        }
    }

    fn check(&self, ext: &[u8], holder_der: &[u8]) -> (Voms, Result<(), VomsError>) {
        let (_, holder) = X509Certificate::from_der(holder_der).unwrap();
        let checker = aa_chain_checker(self.anchors.clone(), self.chain_now, self.legacy);
        let ctx = VomsContext {
            vomsdir: self.vomsdir,
            now: self.now,
            host_fqdn: self.host,
            clock_skew: SKEW,
            verify_aa_chain: &checker,
            algorithms: if self.legacy {
                AlgorithmPolicy::legacy()
            } else {
                AlgorithmPolicy::modern()
            },
        };
        let detailed = split_ac_extension(ext)
            .and_then(|acs| parse_ac(acs[0]))
            .and_then(|ac| voms::verify_parsed(&ac, &holder, &ctx));
        let v = verify_ac(ext, &holder, &ctx);
        // The two entry points must agree on the verdict and the reason.
        assert_eq!(v.valid, detailed.is_ok());
        assert_eq!(v.reason, detailed.as_ref().err().map(|e| e.to_string()));
        (v, detailed)
    }
}

/// The chain verifier's code of an algorithm-policy / signature refusal ("" otherwise).
fn code(r: &Result<(), VomsError>) -> &'static str {
    r.as_ref()
        .err()
        .and_then(VomsError::credential_code)
        .unwrap_or("")
}

fn fqans(fx: &VomsFixture, list: &[&str]) -> Vec<String> {
    let _ = fx;
    list.iter().map(|s| s.to_string()).collect()
}

fn args<'a>(fq: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = Vec::new();
    for f in fq {
        v.extend(["-fqan", f]);
    }
    v.extend(extra);
    v
}

fn alice_proxy(fx: &VomsFixture, extra: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let p = fx.fake_proxy(&fx.alice, &fx.voms, VO, URI, extra);
    (ac_ext_of(&p), holder_der_of(&p))
}

#[test]
fn valid_ac_gives_vo_fqans_in_ac_order_and_generic_attributes() {
    let fx = VomsFixture::new();
    let a = args(
        &[
            "/testvo/grp/Role=admin/Capability=NULL",
            "/testvo/Role=NULL/Capability=NULL",
            "/testvo/grp/sub/Role=NULL/Capability=NULL",
        ],
        &[
            "-ga",
            "nickname=alice",
            "-ga",
            "title=assegnista%di%ricerca@CNAF",
        ],
    );
    let (ext, holder) = alice_proxy(&fx, &a);
    let (v, r) = Run::new(&fx).check(&ext, &holder);
    assert_eq!(r, Ok(()));
    assert!(v.valid && v.reason.is_none());
    assert_eq!(v.vo, "testvo");
    assert_eq!(
        v.fqans,
        fqans(
            &fx,
            &[
                "/testvo/grp/Role=admin/Capability=NULL",
                "/testvo/Role=NULL/Capability=NULL",
                "/testvo/grp/sub/Role=NULL/Capability=NULL"
            ]
        )
    );
    assert_eq!(
        v.generic,
        vec![
            ("nickname".into(), "alice".into()),
            ("title".into(), "assegnista%di%ricerca@CNAF".into())
        ]
    );
    let acs = split_ac_extension(&ext).unwrap();
    let ac = parse_ac(acs[0]).unwrap();
    assert_eq!(v.not_after, Some(ac.not_after));
    assert_eq!(ac.policy_authority.host, VOMS_HOST);
    assert_eq!(ac.policy_authority.port, 15000);
    assert_eq!(ac.generic[0].qualifier, "testvo");
    assert_eq!(ac.aa_certs.len(), 1);
    assert!(ac.targets.is_none());
}

#[test]
fn short_form_fqans_are_reported_in_long_form() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(
        &fx,
        &args(&["/testvo", "/testvo/grp", "/testvo/grp/Role=prod"], &[]),
    );
    let (v, r) = Run::new(&fx).check(&ext, &holder);
    assert_eq!(r, Ok(()));
    assert_eq!(
        v.fqans,
        vec![
            "/testvo/Role=NULL/Capability=NULL",
            "/testvo/grp/Role=NULL/Capability=NULL",
            "/testvo/grp/Role=prod/Capability=NULL"
        ]
    );
}

#[test]
fn expired_ac_is_invalid_but_keeps_claimed_fqans() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(
        &fx,
        &args(&["/testvo/banned"], &["-pastac", "48:00", "-vomslife", "1"]),
    );
    let (v, r) = Run::new(&fx).check(&ext, &holder);
    assert!(matches!(r, Err(VomsError::Expired { .. })), "{r:?}");
    assert!(!v.valid);
    assert!(v.reason.unwrap().starts_with("AC not valid anymore"));
    assert_eq!(v.fqans, vec!["/testvo/banned/Role=NULL/Capability=NULL"]);
}

#[test]
fn validity_period_honours_clock_skew_on_both_ends() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    let ac = parse_ac(split_ac_extension(&ext).unwrap()[0]).unwrap();
    let mut run = Run::new(&fx);
    let at = |run: &mut Run, t: OffsetDateTime| {
        run.now = t;
        run.check(&ext, &holder).1
    };
    assert!(matches!(
        at(&mut run, ac.not_before - Duration::minutes(10)),
        Err(VomsError::NotYetValid { .. })
    ));
    assert_eq!(at(&mut run, ac.not_before - Duration::minutes(4)), Ok(()));
    assert_eq!(at(&mut run, ac.not_after + Duration::minutes(4)), Ok(()));
    assert!(matches!(
        at(&mut run, ac.not_after + Duration::minutes(6)),
        Err(VomsError::Expired { .. })
    ));
}

#[test]
fn not_yet_valid_ac_is_rejected_with_reason() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    let ac = parse_ac(split_ac_extension(&ext).unwrap()[0]).unwrap();
    let mut run = Run::new(&fx);
    run.now = ac.not_before - Duration::hours(1);
    let (v, _) = run.check(&ext, &holder);
    assert!(!v.valid);
    assert!(v.reason.unwrap().starts_with("AC not yet valid"));
}

/// voms-proxy-fake 2.1.0 encodes `-target` as an EMPTY target list (checked in the DER): such
/// an AC names no host, so no host can accept it (VOMS C++ behaves the same).
#[test]
fn voms_proxy_fake_targeted_ac_matches_no_host() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo"], &["-target", "wn1.example.org"]));
    let ac = parse_ac(split_ac_extension(&ext).unwrap()[0]).unwrap();
    assert_eq!(ac.targets, Some(vec![]));
    let mut run = Run::new(&fx);
    run.host = Some("wn1.example.org");
    assert!(matches!(
        run.check(&ext, &holder).1,
        Err(VomsError::TargetMismatch { .. })
    ));
    run.host = None;
    assert!(matches!(
        run.check(&ext, &holder).1,
        Err(VomsError::TargetedNoHost(_))
    ));
}

/// Real targets: the real AC re-signed by the AA key with a targetInformation extension.
#[test]
fn targeted_ac_must_name_this_host() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    for voms_form in [true, false] {
        let mut ed = AcEditor::from_ext(&ext);
        ed.replace_extension(
            OID_TARGETS,
            targets_extension(&["wn1.example.org", "WN2.example.org"], voms_form),
        );
        let targeted = ed.sign(&fx.voms.key, "sha256", fx.dir());
        let mut run = Run::new(&fx);
        run.host = Some("wn2.example.org");
        assert_eq!(
            run.check(&targeted, &holder).1,
            Ok(()),
            "voms_form={voms_form}"
        );
        run.host = Some("wn3.example.org");
        let (v, r) = run.check(&targeted, &holder);
        assert!(matches!(r, Err(VomsError::TargetMismatch { .. })), "{r:?}");
        assert!(v
            .reason
            .unwrap()
            .contains("not at this host wn3.example.org"));
        run.host = None;
        assert!(matches!(
            run.check(&targeted, &holder).1,
            Err(VomsError::TargetedNoHost(_))
        ));
    }
}

#[test]
fn wrong_lsc_rejects_the_aa() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    fx.write_lsc(
        VO,
        VOMS_HOST,
        &format!("{VOMS_DN}\n/DC=org/DC=example/CN=Some Other CA\n"),
    );
    let (v, r) = Run::new(&fx).check(&ext, &holder);
    assert!(matches!(r, Err(VomsError::LscMismatch { .. })), "{r:?}");
    assert!(v.reason.unwrap().contains("voms.example.org.lsc"));
    assert_eq!(v.fqans, vec!["/testvo/Role=NULL/Capability=NULL"]);
}

#[test]
fn lsc_next_chain_alternatives_are_tried_in_turn() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    let wrong = "/DC=org/DC=example/CN=old-voms.example.org\n/DC=org/DC=example/CN=Old CA\n";
    fx.write_lsc(
        VO,
        VOMS_HOST,
        &format!("{wrong}------ NEXT CHAIN ------\n{VOMS_DN}\n{CA_DN}\n"),
    );
    assert_eq!(Run::new(&fx).check(&ext, &holder).1, Ok(()));
    fx.write_lsc(
        VO,
        VOMS_HOST,
        &format!("{wrong}------ NEXT CHAIN ------\n{wrong}"),
    );
    assert!(matches!(
        Run::new(&fx).check(&ext, &holder).1,
        Err(VomsError::LscMismatch { .. })
    ));
}

#[test]
fn aa_certificate_in_vomsdir_is_trusted_without_lsc() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    fx.remove_lsc(VO, VOMS_HOST);
    assert!(matches!(
        Run::new(&fx).check(&ext, &holder).1,
        Err(VomsError::NoTrust { .. })
    ));
    let in_vo = fx.vomsdir.join(VO).join("voms.pem");
    fs::copy(&fx.voms.cert, &in_vo).unwrap();
    // A broken PEM file read first (the one PEM reader refuses it) is skipped, not fatal.
    let broken = fx.vomsdir.join(VO).join("a-broken.pem");
    fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\naGl=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert_eq!(Run::new(&fx).check(&ext, &holder).1, Ok(()));
    fs::remove_file(&broken).unwrap();
    fs::remove_file(&in_vo).unwrap();
    fs::copy(&fx.voms.cert, fx.vomsdir.join("voms.pem")).unwrap();
    assert_eq!(Run::new(&fx).check(&ext, &holder).1, Ok(()));
    // A certificate with the right name but another key does not sign the AC.
    let impostor = fx.issue(VOMS_DN, "rsa:2048");
    fs::copy(&impostor.cert, fx.vomsdir.join("voms.pem")).unwrap();
    assert_eq!(code(&Run::new(&fx).check(&ext, &holder).1), "bad_signature");
}

#[test]
fn unknown_vo_directory_means_no_trust() {
    let fx = VomsFixture::new();
    let p = fx.fake_proxy(
        &fx.alice,
        &fx.voms,
        "othervo",
        "voms.example.org:15001",
        &["-fqan", "/othervo/x"],
    );
    let (v, r) = Run::new(&fx).check(&ac_ext_of(&p), &holder_der_of(&p));
    assert!(matches!(r, Err(VomsError::NoTrust { .. })), "{r:?}");
    assert_eq!(v.vo, "othervo");
    assert!(v
        .reason
        .unwrap()
        .contains("no trusted VOMS server certificate for VO othervo"));
}

#[test]
fn ac_of_another_holder_is_rejected() {
    let fx = VomsFixture::new();
    let (alice_ext, _) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    // Bob's proxy carrying Alice's AC: the holder is Bob's end-entity certificate.
    let bob = fx.fake_proxy(&fx.bob, &fx.voms, VO, URI, &["-fqan", "/testvo"]);
    let (v, r) = Run::new(&fx).check(&alice_ext, &holder_der_of(&bob));
    assert!(matches!(r, Err(VomsError::HolderMismatch { .. })), "{r:?}");
    assert!(v.reason.unwrap().contains("CN=Bob"));
    // Same subject as Alice, another serial: still not the holder.
    let alice2 = fx.issue("/DC=org/DC=example/CN=Alice", "rsa:2048");
    let (_, r) = Run::new(&fx).check(&alice_ext, &pem_certs(&alice2.cert)[0]);
    assert!(matches!(r, Err(VomsError::HolderMismatch { .. })), "{r:?}");
}

#[test]
fn tampered_ac_fails_signature_but_reports_claimed_fqans() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo/grp"], &[]));
    // Flip a byte inside the signed part: "/testvo/grp" becomes "/testvo/grq".
    let pos = ext.windows(11).position(|w| w == b"/testvo/grp").unwrap() + 10;
    let mut tampered = ext.clone();
    tampered[pos] ^= 0x01;
    let (v, r) = Run::new(&fx).check(&tampered, &holder);
    assert_eq!(code(&r), "bad_signature", "{r:?}");
    assert_eq!(v.fqans, vec!["/testvo/grq/Role=NULL/Capability=NULL"]);
    // Flip a byte of the signature value itself.
    let mut badsig = ext.clone();
    let last = badsig.len() - 5;
    badsig[last] ^= 0x01;
    assert_eq!(
        code(&Run::new(&fx).check(&badsig, &holder).1),
        "bad_signature"
    );
}

#[test]
fn sha2_rsa_accepted_sha1_only_with_legacy_md5_never() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    let resign = |alg: &[u8], digest: &str| {
        let mut ed = AcEditor::from_ext(&ext);
        ed.set_algorithm(alg);
        ed.sign(&fx.voms.key, digest, fx.dir())
    };
    let mut run = Run::new(&fx);
    assert_eq!(
        run.check(&resign(ALG_SHA512_RSA, "sha512"), &holder).1,
        Ok(())
    );
    let sha1 = resign(ALG_SHA1_RSA, "sha1");
    let (v, r) = run.check(&sha1, &holder);
    assert_eq!(code(&r), "weak_algorithm");
    assert_eq!(
        v.reason.unwrap(),
        "AC signature refused: weak_algorithm: the attribute certificate is signed with \
         sha1WithRSAEncryption, which the algorithm policy rejects"
    );
    let md5 = resign(ALG_MD5_RSA, "md5");
    run.legacy = true;
    assert_eq!(run.check(&sha1, &holder).1, Ok(()));
    let r = run.check(&md5, &holder).1;
    assert_eq!(code(&r), "weak_algorithm");
    assert!(format!("{r:?}").contains("md5WithRSAEncryption"), "{r:?}");
}

#[test]
fn ecdsa_aa_is_accepted() {
    let fx = VomsFixture::new();
    let ec = fx.issue("/DC=org/DC=example/CN=voms-ec.example.org", "ec:P-256");
    fx.write_lsc(
        VO,
        "voms-ec.example.org",
        &format!("/DC=org/DC=example/CN=voms-ec.example.org\n{CA_DN}\n"),
    );
    let p = fx.fake_proxy(
        &fx.alice,
        &ec,
        VO,
        "voms-ec.example.org:15000",
        &["-fqan", "/testvo"],
    );
    let (ext, holder) = (ac_ext_of(&p), holder_der_of(&p));
    // voms-proxy-fake labels an ECDSA signature as sha256WithRSAEncryption: it cannot verify.
    let (_, r) = Run::new(&fx).check(&ext, &holder);
    assert!(
        ["bad_signature", "unsupported_algorithm"].contains(&code(&r)),
        "{r:?}"
    );
    // Correctly labelled (ecdsa-with-SHA256) and re-signed by the same EC key, it verifies.
    let mut ed = AcEditor::from_ext(&ext);
    ed.set_algorithm(ALG_ECDSA_SHA256);
    let fixed = ed.sign(&ec.key, "sha256", fx.dir());
    assert_eq!(Run::new(&fx).check(&fixed, &holder).1, Ok(()));
}

#[test]
fn unknown_critical_extension_is_rejected_noncritical_tolerated() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    // OID 1.3.6.1.4.1.99999.1 (private arc), value NULL.
    let oid: &[u8] = &[
        0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x01,
    ];
    for (critical, ok) in [(false, true), (true, false)] {
        let mut ed = AcEditor::from_ext(&ext);
        let crit: &[u8] = if critical { &[0x01, 0x01, 0xff] } else { &[] };
        ed.replace_extension(oid, seq(&[oid, crit, &tlv(0x04, &[0x05, 0x00])]));
        let signed = ed.sign(&fx.voms.key, "sha256", fx.dir());
        let (_, r) = Run::new(&fx).check(&signed, &holder);
        if ok {
            assert_eq!(r, Ok(()));
        } else {
            assert_eq!(
                r,
                Err(VomsError::UnknownCriticalExtension(
                    "1.3.6.1.4.1.99999.1".into()
                ))
            );
        }
    }
}

#[test]
fn aa_chain_rejected_by_chain_verifier_invalidates_ac() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    let mut run = Run::new(&fx);
    run.anchors = vec![]; // the AA's CA is not a trust anchor
    let (v, r) = run.check(&ext, &holder);
    assert!(matches!(r, Err(VomsError::AaChain(_))), "{r:?}");
    assert!(v
        .reason
        .unwrap()
        .starts_with("AA certificate chain rejected: no trust anchor"));
}

#[test]
fn unparseable_ac_gives_no_fqans() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    for bad in [&ext[..ext.len() - 1], &b"\x30\x03\x02\x01\x01"[..], &[][..]] {
        let (v, r) = Run::new(&fx).check(bad, &holder);
        assert!(r.as_ref().is_err_and(|e| e.is_parse_error()), "{r:?}");
        assert!(!v.valid && v.fqans.is_empty() && v.vo.is_empty() && v.not_after.is_none());
    }
    // An FQAN outside the VO of the policyAuthority makes the AC unusable.
    let p = fx.fake_proxy(&fx.alice, &fx.voms, VO, URI, &["-fqan", "/othervo/x"]);
    let (v, r) = Run::new(&fx).check(&ac_ext_of(&p), &holder_der_of(&p));
    assert!(matches!(r, Err(VomsError::Fqan { .. })), "{r:?}");
    assert!(v.fqans.is_empty());
}

#[test]
fn find_ac_extension_only_on_voms_proxies() {
    let fx = VomsFixture::new();
    let p = fx.fake_proxy(&fx.alice, &fx.voms, VO, URI, &["-fqan", "/testvo"]);
    let certs = pem_certs(&p);
    let (_, proxy) = X509Certificate::from_der(&certs[0]).unwrap();
    let (_, user) = X509Certificate::from_der(certs.last().unwrap()).unwrap();
    assert!(voms::find_ac_extension(&proxy).is_some());
    assert!(voms::find_ac_extension(&user).is_none());
}

/// RFC 5755 holder forms VOMS does not write itself: baseCertificateID with the holder's real
/// issuer (the CA), and entityName = the holder's subject. Built by re-signing a real AC.
#[test]
fn rfc_holder_forms_bind_to_the_end_entity() {
    let fx = VomsFixture::new();
    let (ext, alice) = alice_proxy(&fx, &args(&["/testvo"], &[]));
    let bob = pem_certs(&fx.bob.cert).remove(0);
    let (_, a) = X509Certificate::from_der(&alice).unwrap();
    let base_id = seq(&[&tlv(
        0xa0,
        &[
            seq(&[&tlv(0xa4, a.issuer().as_raw())]),
            tlv(0x02, a.raw_serial()),
        ]
        .concat(),
    )]);
    let entity = seq(&[&tlv(0xa1, &tlv(0xa4, a.subject().as_raw()))]);
    for holder in [base_id, entity] {
        let mut ed = AcEditor::from_ext(&ext);
        ed.acinfo[1] = holder;
        let signed = ed.sign(&fx.voms.key, "sha256", fx.dir());
        assert_eq!(Run::new(&fx).check(&signed, &alice).1, Ok(()));
        let (_, r) = Run::new(&fx).check(&signed, &bob);
        assert!(matches!(r, Err(VomsError::HolderMismatch { .. })), "{r:?}");
    }
}

/// Poor man's fuzzing on a real AC (the cargo-fuzz target does this at length): bit flips,
/// byte overwrites and truncations must yield errors or verdicts, never panics.
#[test]
fn mutated_real_acs_never_panic() {
    let fx = VomsFixture::new();
    let (ext, holder) = alice_proxy(&fx, &args(&["/testvo/a", "/testvo/b"], &["-ga", "k=v"]));
    let mut run = Run::new(&fx);
    run.host = Some("wn1.example.org");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut parsed, mut valid) = (0, 0);
    for i in 0..1500 {
        let mut m = ext.clone();
        let pos = (rnd() as usize) % m.len();
        match i % 3 {
            0 => m[pos] ^= 1 << (rnd() % 8),
            1 => m[pos] = m[pos].wrapping_add(1 + (rnd() % 255) as u8),
            _ => m.truncate(pos),
        }
        assert_ne!(m, ext);
        if let Ok(acs) = split_ac_extension(&m) {
            if parse_ac(acs[0]).is_ok() {
                parsed += 1;
            }
        }
        let (v, _) = run.check(&m, &holder);
        valid += v.valid as u32;
    }
    assert!(
        parsed > 0,
        "some mutations (e.g. inside the signature) still parse"
    );
    // Everything but the envelope is signed, and the envelope is strict DER: no mutation of
    // a real AC may still verify.
    assert_eq!(valid, 0, "mutated ACs verified");
}

/// One algorithm policy: a VOMS server (AA) with a 1024-bit RSA key is refused under the modern
/// policy with the code the chain gives a 1024-bit certificate key (`weak_key`, naming the AA),
/// and accepted under the legacy policy (RSA >= 1024), exactly like a chain certificate.
#[test]
fn small_aa_key_is_weak_key_as_in_the_chain() {
    let fx = VomsFixture::new();
    let host = "voms-small.example.org";
    let dn = format!("/DC=org/DC=example/CN={host}");
    let small = fx.issue(&dn, "rsa:1024");
    fx.write_lsc(VO, host, &format!("{dn}\n{CA_DN}\n"));
    let p = fx.fake_proxy(
        &fx.alice,
        &small,
        VO,
        &format!("{host}:15000"),
        &["-fqan", "/testvo"],
    );
    let (ext, holder) = (ac_ext_of(&p), holder_der_of(&p));
    let mut run = Run::new(&fx);
    let (v, r) = run.check(&ext, &holder);
    assert_eq!(code(&r), "weak_key", "{r:?}");
    let reason = v.reason.unwrap();
    assert!(
        reason.contains(&format!(
            "{dn} has a 1024-bit RSA key, below the policy minimum of 2048"
        )),
        "{reason}"
    );
    run.legacy = true;
    assert_eq!(run.check(&ext, &holder).1, Ok(()));
}
