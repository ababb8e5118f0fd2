//! The trust directory is parsed lazily (issue #7): in an IGTF-like directory (the test CA plus
//! 30 extra CAs, each with `.namespaces`, `.signing_policy`, `.info` and a CRL), a verification
//! reads the CA certificates and then only the CRL and policy files of the CAs on the path —
//! with the same verdicts as when everything was parsed.

#[path = "support/igtf.rs"]
mod igtf;
mod support;

use policy::credentials::chain::NamespaceMode;
use policy::credentials::{
    verify_with_trust_dir, CredentialError, TrustDir, Verified, VerifyOptions,
};
use std::collections::BTreeSet;
use std::path::Path;
use support::{Pki, Spec};

const EXTRA: usize = 30;

/// A test CA with a user, her proxy and `EXTRA` unrelated CAs in its trust directory.
struct Igtf {
    pki: Pki,
    extra: Vec<igtf::ExtraCa>,
}

fn igtf_dir() -> Igtf {
    let pki = Pki::new("Path CA");
    let extra = igtf::add_extra_cas(&pki.ca_dir, &pki.path("extra-work"), EXTRA, |_| 3);
    Igtf { pki, extra }
}

fn verify(trust: &TrustDir, proxy: &Path, o: &VerifyOptions) -> Result<Verified, CredentialError> {
    verify_with_trust_dir(&std::fs::read(proxy).unwrap(), trust, o)
}

/// The files other than CA certificates (`<hash>.N`) parsed so far, sorted.
fn lazily_parsed(trust: &TrustDir) -> BTreeSet<String> {
    trust
        .files_parsed()
        .into_iter()
        .filter(|f| {
            !f.split_once('.')
                .is_some_and(|(_, e)| e.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

fn set(names: &[String]) -> BTreeSet<String> {
    names.iter().cloned().collect()
}

fn names_in(dir: &Path, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| pred(n))
        .collect();
    v.sort();
    v
}

#[test]
fn verification_parses_only_the_files_of_the_ca_on_the_path() {
    let d = igtf_dir();
    let pki = &d.pki;
    let alice = pki.user("Alice", &Spec::default());
    let proxy = pki.grid_proxy_init(&alice, &["-rfc"]);
    pki.namespaces("TO Issuer \"@CA@\" PERMIT Subject \"/DC=org/DC=example/.*\"\n");
    pki.signing_policy("access_id_CA X509 '@CA@'\npos_rights globus CA:sign\ncond_subjects globus '\"/DC=org/DC=example/*\"'\n");
    pki.write_crl();

    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    // Load: every CA certificate once (the old-hash names are symlinks to the same bytes, only
    // recorded as a second stem), nothing else.
    let certs = names_in(&pki.ca_dir, |n| n.ends_with(".0"));
    assert_eq!(certs.len(), 2 * (EXTRA + 1));
    let at_load = trust.files_parsed();
    assert_eq!(at_load.len(), EXTRA + 1, "{at_load:?}");
    assert!(at_load.iter().all(|f| certs.contains(f)), "{at_load:?}");
    assert_eq!(trust.cas.len(), EXTRA + 1);
    assert!(trust.cas.iter().all(|c| c.stems.len() == 2));

    let v = verify(&trust, &proxy, &VerifyOptions::new(&pki.ca_dir)).unwrap();
    assert_eq!(v.identity.dn, "/DC=org/DC=example/CN=Alice");
    let h = &pki.hash;
    // Its CRL and its .namespaces (which wins, so the .signing_policy is not even read).
    assert_eq!(
        lazily_parsed(&trust),
        set(&[format!("{h}.namespaces"), format!("{h}.r0")])
    );
    // A second verification reads nothing more.
    verify(&trust, &proxy, &VerifyOptions::new(&pki.ca_dir)).unwrap();
    assert_eq!(trust.files_parsed().len(), at_load.len() + 2);

    // Without a .namespaces, the Globus mode reads the .signing_policy instead.
    std::fs::remove_file(pki.ca_dir.join(format!("{h}.namespaces"))).unwrap();
    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    verify(&trust, &proxy, &VerifyOptions::new(&pki.ca_dir)).unwrap();
    assert_eq!(
        lazily_parsed(&trust),
        set(&[format!("{h}.r0"), format!("{h}.signing_policy")])
    );

    // Namespaces off: only the CRL.
    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    let mut off = VerifyOptions::new(&pki.ca_dir);
    off.namespaces = NamespaceMode::Off;
    verify(&trust, &proxy, &off).unwrap();
    assert_eq!(lazily_parsed(&trust), set(&[format!("{h}.r0")]));

    // `pilotbox check` still sees every CRL.
    let all = trust.all_crls();
    assert_eq!(all.len(), EXTRA + 1);
    assert_eq!(
        lazily_parsed(&trust),
        set(&names_in(&pki.ca_dir, |n| n.ends_with(".r0")))
    );
}

#[test]
fn revoked_certificate_is_refused_with_its_crl_found_by_stem() {
    let d = igtf_dir();
    let pki = &d.pki;
    let bob = pki.user("Bob", &Spec::default());
    let alice = pki.user("Alice", &Spec::default());
    let (pb, pa) = (
        pki.grid_proxy_init(&bob, &["-rfc"]),
        pki.grid_proxy_init(&alice, &["-rfc"]),
    );
    pki.revoke(&bob);
    let o = VerifyOptions::new(&pki.ca_dir);
    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    let e = verify(&trust, &pb, &o).unwrap_err();
    assert_eq!(e.code(), "revoked", "{}", e.reason());
    assert!(e.reason().contains("CN=Bob"), "{}", e.reason());
    verify(&trust, &pa, &o).unwrap();
    let crls: Vec<String> = lazily_parsed(&trust)
        .into_iter()
        .filter(|f| f.contains(".r"))
        .collect();
    assert_eq!(crls, vec![format!("{}.r0", pki.hash)]);

    // fetch-crl may name the CRL after the other (old-hash) name of the CA: still found.
    let old = names_in(&pki.ca_dir, |n| n.ends_with(".0"))
        .into_iter()
        .map(|n| n.trim_end_matches(".0").to_string())
        .find(|s| {
            *s != pki.hash
                && std::fs::read_link(pki.ca_dir.join(format!("{s}.0")))
                    .is_ok_and(|t| t == Path::new(&format!("{}.0", pki.hash)))
        })
        .expect("the test CA's old-hash name");
    std::fs::rename(
        pki.ca_dir.join(format!("{}.r0", pki.hash)),
        pki.ca_dir.join(format!("{old}.r0")),
    )
    .unwrap();
    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    assert_eq!(verify(&trust, &pb, &o).unwrap_err().code(), "revoked");
    assert!(lazily_parsed(&trust).contains(&format!("{old}.r0")));
}

#[test]
fn crls_under_stems_that_are_not_the_issuers() {
    let d = igtf_dir();
    let pki = &d.pki;
    let bob = pki.user("Bob", &Spec::default());
    let pb = pki.grid_proxy_init(&bob, &["-rfc"]);
    let mut require = VerifyOptions::new(&pki.ca_dir);
    require.crl.require = true;

    // Another CA's CRL under the test CA's stem: not the issuer's, ignored (as the issuer
    // filter always did) — so with CRLs required, the test CA still has none.
    std::fs::copy(
        pki.ca_dir.join(format!("{}.r0", d.extra[0].hash)),
        pki.ca_dir.join(format!("{}.r1", pki.hash)),
    )
    .unwrap();
    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    let e = verify(&trust, &pb, &require).unwrap_err();
    assert_eq!(e.code(), "crl_missing", "{}", e.reason());
    assert!(lazily_parsed(&trust).contains(&format!("{}.r1", pki.hash)));
    std::fs::remove_file(pki.ca_dir.join(format!("{}.r1", pki.hash))).unwrap();

    // The test CA's own CRL (revoking Bob) under another CA's stem is not looked at: CRLs are
    // found by the CA's file stems (behaviour change, documented in trust_dir.rs). Required
    // CRLs still fail closed; optional ones let the certificate through.
    pki.revoke(&bob);
    std::fs::rename(
        pki.ca_dir.join(format!("{}.r0", pki.hash)),
        pki.ca_dir.join(format!("{}.r1", d.extra[1].hash)),
    )
    .unwrap();
    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    assert_eq!(
        verify(&trust, &pb, &require).unwrap_err().code(),
        "crl_missing"
    );
    verify(&trust, &pb, &VerifyOptions::new(&pki.ca_dir)).unwrap();
    assert!(!lazily_parsed(&trust).contains(&format!("{}.r1", d.extra[1].hash)));
}

#[test]
fn broken_policy_files_matter_only_on_the_path() {
    let d = igtf_dir();
    let pki = &d.pki;
    let alice = pki.user("Alice", &Spec::default());
    let proxy = pki.grid_proxy_init(&alice, &["-rfc"]);
    let o = VerifyOptions::new(&pki.ca_dir);
    let x = &d.extra[7].hash;
    std::fs::write(
        pki.ca_dir.join(format!("{x}.namespaces")),
        "TO Issuer garbage\n",
    )
    .unwrap();
    std::fs::write(
        pki.ca_dir.join(format!("{x}.signing_policy")),
        "cond_subjects junk\n",
    )
    .unwrap();
    // An unreadable file too (a directory where a file should be).
    let y = &d.extra[8].hash;
    std::fs::remove_file(pki.ca_dir.join(format!("{y}.namespaces"))).unwrap();
    std::fs::create_dir(pki.ca_dir.join(format!("{y}.namespaces"))).unwrap();

    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    verify(&trust, &proxy, &o).unwrap();
    let parsed = lazily_parsed(&trust);
    assert!(
        parsed.iter().all(|f| f.starts_with(pki.hash.as_str())),
        "{parsed:?}"
    );

    // The same breakage in the .namespaces of the CA on the path refuses, as a site error
    // naming the file.
    pki.namespaces("TO Issuer garbage\n");
    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    let e = verify(&trust, &proxy, &o).unwrap_err();
    assert_eq!(e.code(), "trust_dir", "{}", e.reason());
    assert_eq!(e.class(), policy::Class::SiteError);
    assert!(
        e.reason().contains(&format!("{}.namespaces", pki.hash)),
        "{}",
        e.reason()
    );
    // … and so does a broken .signing_policy of the CA on the path (Globus fallback).
    std::fs::remove_file(pki.ca_dir.join(format!("{}.namespaces", pki.hash))).unwrap();
    pki.signing_policy("cond_subjects junk\n");
    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    let e = verify(&trust, &proxy, &o).unwrap_err();
    assert_eq!(e.code(), "trust_dir", "{}", e.reason());
    assert!(e.reason().contains(".signing_policy"), "{}", e.reason());
}

/// An intermediate CA that is presented by the user but not installed: its CRL can be found
/// only by issuer, so every CRL file is read (once) — the behaviour of the eager directory.
#[test]
fn crl_of_an_uninstalled_intermediate_is_found_by_scanning() {
    let d = igtf_dir();
    let pki = &d.pki;
    let sub = pki.issue(
        None,
        "/DC=org/DC=example/CN=Sub CA",
        &Spec::default(),
        "v3_ca",
    );
    let carol = pki.issue(
        Some(&sub),
        "/DC=org/DC=example/CN=Carol",
        &Spec::default(),
        "v3_user",
    );
    let proxy_cert = pki.sign_proxy(&carol, &Spec::default(), "v3_proxy");
    let proxy = pki.proxy_file(&proxy_cert, &[&carol.cert, &sub.cert]);
    let o = VerifyOptions::new(&pki.ca_dir);
    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    verify(&trust, &proxy, &o).unwrap();
    let all_crls = names_in(&pki.ca_dir, |n| n.contains(".r"));
    let crls: Vec<String> = lazily_parsed(&trust)
        .into_iter()
        .filter(|f| f.contains(".r"))
        .collect();
    assert_eq!(crls, all_crls, "the fallback reads every CRL");

    // Revoke Carol with the sub-CA and install its CRL under an arbitrary hash-like name.
    let work = pki.path(&format!(
        "work-{}",
        sub.cert.file_name().unwrap().to_str().unwrap()
    ));
    let conf = work.join("ca.cnf");
    for args in [
        vec!["-revoke", carol.cert.to_str().unwrap()],
        vec!["-gencrl", "-out", work.join("sub.crl").to_str().unwrap()],
    ] {
        support::run(
            std::process::Command::new("openssl")
                .env("OPENSSL_CONF", "/dev/null")
                .args(["ca", "-batch", "-config", conf.to_str().unwrap()])
                .args([
                    "-cert",
                    sub.cert.to_str().unwrap(),
                    "-keyfile",
                    sub.key.to_str().unwrap(),
                ])
                .args(&args),
        );
    }
    std::fs::copy(work.join("sub.crl"), pki.ca_dir.join("0badc0de.r0")).unwrap();
    let trust = TrustDir::load(&pki.ca_dir).unwrap();
    let e = verify(&trust, &proxy, &o).unwrap_err();
    assert_eq!(e.code(), "revoked", "{}", e.reason());
    assert!(e.reason().contains("Sub CA"), "{}", e.reason());
}
