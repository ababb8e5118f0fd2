//! Every refusal code of [`CredentialError`] is produced by at least one real vector, and each
//! vector asserts its exact code.
//!
//! Vectors are made at test time with the real tools (openssl, grid-proxy-init), like the rest of
//! the suite. None edits DER; three edit PEM text only, and say so: a flipped base64 character
//! (bad_signature), a CSR under the CERTIFICATE label (malformed_certificate), a truncated file
//! (malformed_pem).
//!
//! Completeness: `CredentialError::code` is an exhaustive match, so a new variant cannot compile
//! without a new `=> "code"` arm; `every_refusal_code_has_a_vector` reads those arms from
//! `error.rs` and fails until the new code has a vector in `VECTORS`.

mod support;

use policy::credentials::pem::MAX_PROXY_FILE;
use policy::credentials::{verify_proxy, AlgorithmPolicy, CredentialError, VerifyOptions};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::{date, openssl, run, Cred, Pki, Spec};
use time::{Duration, OffsetDateTime};

/// A fresh CA with user Alice and an RFC 3820 proxy of hers.
struct Lab {
    pki: Pki,
    alice: Cred,
    proxy: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let pki = Pki::new("Test CA");
        let alice = pki.user("Alice", &Spec::default());
        let proxy = pki.grid_proxy_init(&alice, &["-rfc"]);
        Lab { pki, alice, proxy }
    }

    fn opts(&self) -> VerifyOptions {
        VerifyOptions::new(&self.pki.ca_dir)
    }

    fn read(&self, p: &Path) -> Vec<u8> {
        std::fs::read(p).unwrap()
    }

    fn text(&self, p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    /// A proxy signed by `signer` with openssl (explicit dates), as a proxy file with its chain.
    fn proxy_of(&self, signer: &Cred, chain: &[&Path]) -> Vec<u8> {
        let p = self.pki.sign_proxy(signer, &Spec::default(), "v3_proxy");
        let mut all = vec![signer.cert.as_path()];
        all.extend(chain);
        self.read(&self.pki.proxy_file(&p, &all))
    }

    fn user(&self, cn: &str, spec: Spec) -> Cred {
        self.pki.user(cn, &spec)
    }
}

/// The PEM blocks (with their lines) of a file.
fn blocks(text: &str) -> Vec<String> {
    text.split_inclusive("-----\n")
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|c| c.concat())
        .collect()
}

type Vector = fn(&Lab) -> (Vec<u8>, VerifyOptions);

/// (expected code, vector). Each vector gives the proxy file bytes and the options.
const VECTORS: &[(&str, Vector)] = &[
    ("too_large", |l| {
        // A real proxy file repeated past the limit.
        let one = l.read(&l.proxy);
        (one.repeat(MAX_PROXY_FILE / one.len() + 1), l.opts())
    }),
    ("malformed_pem", |l| {
        // A real proxy file cut inside its first block (PEM text edit).
        let t = l.text(&l.proxy);
        (t.as_bytes()[..t.len() / 4].to_vec(), l.opts())
    }),
    ("no_certificate", |l| (l.read(&l.alice.key), l.opts())),
    ("chain_too_long", |l| {
        // The proxy's own blocks, then its certificate 16 more times: 17 certificates.
        let t = l.text(&l.proxy);
        let cert = blocks(&t).remove(0);
        (format!("{t}{}", cert.repeat(16)).into_bytes(), l.opts())
    }),
    ("malformed_certificate", |l| {
        // A real CSR (openssl req) presented under the CERTIFICATE label (PEM label edit).
        let csr = l.pki.path("alice.csr");
        run(openssl()
            .args(["req", "-new", "-key"])
            .arg(&l.alice.key)
            .args(["-subj", "/CN=Alice", "-out"])
            .arg(&csr));
        let t = l.text(&csr).replace("CERTIFICATE REQUEST", "CERTIFICATE");
        (t.into_bytes(), l.opts())
    }),
    ("malformed_key", |l| {
        // The proxy with its key replaced by a passphrase-encrypted one (openssl genpkey).
        let enc = l.pki.path("enc.key");
        run(openssl()
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-aes-128-cbc",
                "-pass",
                "pass:x",
                "-out",
            ])
            .arg(&enc));
        let b = blocks(&l.text(&l.proxy));
        let t = format!("{}{}{}", b[0], l.text(&enc), b[2..].concat());
        (t.into_bytes(), l.opts())
    }),
    ("no_key", |l| (l.read(&l.alice.cert), l.opts())),
    ("key_mismatch", |l| {
        // The proxy certificate with Alice's own (long-term) key instead of the proxy key.
        let b = blocks(&l.text(&l.proxy));
        let t = format!("{}{}{}", b[0], l.text(&l.alice.key), b[2..].concat());
        (t.into_bytes(), l.opts())
    }),
    ("untrusted", |l| {
        let other = Pki::new("Other CA");
        let mallory = other.user("Alice", &Spec::default());
        (
            l.read(&other.grid_proxy_init(&mallory, &["-rfc"])),
            l.opts(),
        )
    }),
    ("bad_signature", |l| {
        // One base64 character flipped in the last line of the proxy certificate: its
        // signature (PEM text edit).
        let mut t = l.text(&l.proxy).into_bytes();
        let end = String::from_utf8_lossy(&t)
            .find("-----END CERTIFICATE-----")
            .unwrap();
        let i = end - 10;
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        (t, l.opts())
    }),
    ("weak_algorithm", |l| {
        let u = l.user(
            "Sha1",
            Spec {
                md: "sha1",
                ..Spec::default()
            },
        );
        (l.proxy_of(&u, &[]), l.opts())
    }),
    ("weak_key", |l| {
        let u = l.user(
            "Small",
            Spec {
                key: "rsa:1024",
                ..Spec::default()
            },
        );
        (l.proxy_of(&u, &[]), l.opts())
    }),
    ("unsupported_algorithm", |l| {
        // P-521 is not in the policy (P-256, P-384 only).
        let u = l.user(
            "P521",
            Spec {
                key: "ec:P-521",
                ..Spec::default()
            },
        );
        (l.proxy_of(&u, &[]), l.opts())
    }),
    ("expired", |l| {
        let mut o = l.opts();
        o.at = Some(OffsetDateTime::now_utc() + Duration::days(2));
        (l.read(&l.proxy), o)
    }),
    ("not_yet_valid", |l| {
        let u = l.user(
            "Future",
            Spec {
                start: Some(date(2)),
                end: Some(date(30)),
                ..Spec::default()
            },
        );
        (l.proxy_of(&u, &[]), l.opts())
    }),
    ("not_a_ca", |l| {
        // An end-entity certificate (CA:FALSE) installed in the trust directory as if it were
        // a CA, and a certificate it issued.
        let ee = l.pki.issue(
            None,
            "/DC=org/DC=example/CN=Not A CA",
            &Spec::default(),
            "v3_user",
        );
        let hash = run(openssl()
            .args(["x509", "-noout", "-subject_hash", "-in"])
            .arg(&ee.cert));
        std::fs::copy(&ee.cert, l.pki.ca_dir.join(format!("{}.0", hash.trim()))).unwrap();
        let victim = l.pki.issue(
            Some(&ee),
            "/DC=org/DC=example/CN=Victim",
            &Spec::default(),
            "v3_user",
        );
        (l.proxy_of(&victim, &[]), l.opts())
    }),
    ("ca_path_length_exceeded", |l| {
        // Test CA -> Sub CA (pathlen 0) -> Sub Sub CA -> Deep: one CA too many below Sub CA.
        let sub = l.pki.issue(
            None,
            "/DC=org/DC=example/CN=Sub CA",
            &Spec::default(),
            "v3_ca_pl0",
        );
        let subsub = l.pki.issue(
            Some(&sub),
            "/DC=org/DC=example/CN=Sub Sub CA",
            &Spec::default(),
            "v3_ca",
        );
        let deep = l.pki.issue(
            Some(&subsub),
            "/DC=org/DC=example/CN=Deep",
            &Spec::default(),
            "v3_user",
        );
        (l.proxy_of(&deep, &[&subsub.cert, &sub.cert]), l.opts())
    }),
    ("key_usage", |l| {
        let nosig = l.pki.issue(
            None,
            "/DC=org/DC=example/CN=NoSig",
            &Spec::default(),
            "v3_nosig",
        );
        (l.proxy_of(&nosig, &[]), l.opts())
    }),
    ("unsupported_critical_extension", |l| {
        let u = l.pki.issue(
            None,
            "/DC=org/DC=example/CN=Crit",
            &Spec::default(),
            "v3_user_crit",
        );
        (l.proxy_of(&u, &[]), l.opts())
    }),
    ("bad_proxy", |l| {
        // Alice (an end entity) issues a certificate that is not a proxy of hers.
        let bob = l.pki.issue(
            Some(&l.alice),
            "/DC=org/DC=example/CN=Bob",
            &Spec::default(),
            "v3_user",
        );
        (l.read(&l.pki.proxy_file(&bob, &[&l.alice.cert])), l.opts())
    }),
    ("proxy_path_length_exceeded", |l| {
        let pl0 = l.pki.sign_proxy(&l.alice, &Spec::default(), "v3_proxy_pl0");
        let below = l.pki.sign_proxy(&pl0, &Spec::default(), "v3_proxy");
        (
            l.read(&l.pki.proxy_file(&below, &[&pl0.cert, &l.alice.cert])),
            l.opts(),
        )
    }),
    ("limited_proxy", |l| {
        (
            l.read(&l.pki.grid_proxy_init(&l.alice, &["-rfc", "-limited"])),
            l.opts(),
        )
    }),
    ("full_proxy_after_limited", |l| {
        let lim = l
            .pki
            .sign_proxy(&l.alice, &Spec::default(), "v3_proxy_limited");
        let full = l.pki.sign_proxy(&lim, &Spec::default(), "v3_proxy");
        let mut o = l.opts();
        o.allow_limited = true;
        (
            l.read(&l.pki.proxy_file(&full, &[&lim.cert, &l.alice.cert])),
            o,
        )
    }),
    ("mixed_proxy_types", |l| {
        // A legacy (grid-proxy-init -old) proxy, and an RFC 3820 proxy of it (openssl).
        let old = l.pki.grid_proxy_init(&l.alice, &["-old"]);
        let old_cred = l.pki.cred_of_file(&old);
        let rfc = l.pki.sign_proxy(&old_cred, &Spec::default(), "v3_proxy");
        let old_cert = l.pki.path("old-proxy-cert.pem");
        std::fs::write(&old_cert, blocks(&l.text(&old)).remove(0)).unwrap();
        (
            l.read(&l.pki.proxy_file(&rfc, &[&old_cert, &l.alice.cert])),
            l.opts(),
        )
    }),
    ("proxy_not_allowed", |l| {
        let mut o = l.opts();
        o.allow_proxies = false;
        (l.read(&l.proxy), o)
    }),
    ("revoked", |l| {
        l.pki.revoke(&l.alice);
        (l.read(&l.proxy), l.opts())
    }),
    ("crl_expired", |l| {
        l.pki.expired_crl(); // nextUpdate one second from now
        let mut o = l.opts();
        o.at = Some(OffsetDateTime::now_utc() + Duration::minutes(10));
        (l.read(&l.proxy), o)
    }),
    ("crl_missing", |l| {
        let mut o = l.opts();
        o.crl.require = true;
        (l.read(&l.proxy), o)
    }),
    ("crl_invalid", |l| {
        // A CRL whose thisUpdate is tomorrow (`openssl ca -gencrl -crl_lastupdate`).
        l.pki
            .write_crl_with(&["-crl_lastupdate", &date(1), "-crl_nextupdate", &date(30)]);
        (l.read(&l.proxy), l.opts())
    }),
    ("namespace", |l| {
        l.pki
            .namespaces("TO Issuer \"@CA@\" PERMIT Subject \"/DC=org/DC=example/CN=Bob\"\n");
        (l.read(&l.proxy), l.opts())
    }),
    ("trust_dir", |l| {
        l.pki.namespaces("TO Issuer garbage\n");
        (l.read(&l.proxy), l.opts())
    }),
];

/// Every code `CredentialError::code` can return, read from its exhaustive match in error.rs.
fn all_codes() -> BTreeSet<&'static str> {
    let src = include_str!("../src/credentials/error.rs");
    let body = &src[src.find("pub fn code(&self)").expect("code() in error.rs")..];
    let body = &body[..body.find("\n    }\n").unwrap()];
    body.split("=> \"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect()
}

#[test]
fn every_refusal_code_has_a_vector() {
    // Independent vectors (each has its own CA): run them side by side.
    let results: Vec<(&str, Result<String, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = VECTORS
            .iter()
            .map(|(code, vector)| {
                s.spawn(move || {
                    let lab = Lab::new();
                    let (bytes, opts) = vector(&lab);
                    let got = match verify_proxy(&bytes, &opts) {
                        Ok(v) => Err(format!("accepted {}", v.identity.dn)),
                        Err(e) if e.code() == *code => Ok(e.reason()),
                        Err(e) => Err(format!("got {}", e.reason())),
                    };
                    (*code, got)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    for (code, got) in results {
        match got {
            Ok(_) => {
                covered.insert(code);
            }
            Err(e) => failures.push(format!("{code}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "vectors with the wrong verdict:\n{}",
        failures.join("\n")
    );
    let all = all_codes();
    // The parser found the arms (31 when this test was written; more is fine).
    assert!(
        all.len() >= 31 && all.contains("too_large") && all.contains("trust_dir"),
        "{all:?}"
    );
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "refusal codes without a vector: {missing:?}"
    );
    let unknown: Vec<_> = covered.difference(&all).collect();
    assert!(
        unknown.is_empty(),
        "vectors for codes error.rs does not have: {unknown:?}"
    );
}

/// The exit class of each code: a broken trust directory is the site's fault (123), every other
/// refusal is a denied credential (120).
#[test]
fn refusal_classes() {
    let lab = Lab::new();
    lab.pki.namespaces("TO Issuer garbage\n");
    let e = verify_proxy(&lab.read(&lab.proxy), &lab.opts()).unwrap_err();
    assert_eq!(
        (e.code(), e.class()),
        ("trust_dir", policy::Class::SiteError)
    );
    let e = CredentialError::NoKey;
    assert_eq!(e.class(), policy::Class::Denied);
    let _ = AlgorithmPolicy::modern();
}
