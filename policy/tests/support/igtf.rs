//! Fills a trust directory with extra CAs laid out as the IGTF distribution and fetch-crl do:
//! per CA `<hash>.0` plus an `<old hash>.0` symlink, `<hash>.namespaces`,
//! `<hash>.signing_policy`, `<hash>.info` and a CRL `<hash>.r0` signed by that CA (optionally
//! with many revoked serials, so it is as large as the CRLs of big CAs).
//!
//! Self-contained (std + the `openssl` command) so both the policy tests
//! (`#[path = "support/igtf.rs"]`) and `runtime/benches/launch_path.rs` can include it. Keys are
//! EC P-256 (cheap to generate); the CAs are never on a verified path, they only have to be
//! what a worker node's directory holds.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// One generated CA.
#[derive(Debug, Clone)]
pub struct ExtraCa {
    pub dn: String,
    /// Current (SHA-1 based) OpenSSL subject hash: the stem of its files.
    pub hash: String,
    /// Old (MD5 based) hash: the `<old>.0` symlink.
    pub old_hash: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .env("OPENSSL_CONF", "/dev/null")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl {args:?}: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const CRL_CONF: &str = "[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = @DB@\ncrlnumber = @NUM@\ndefault_md = sha256\ndefault_crl_days = 30\n";

/// An `openssl ca` index with `n` revoked serials (one line each), for big CRLs.
fn revoked_index(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "R\t351231000000Z\t240101000000Z\t{:032X}\tunknown\t/CN=revoked {i}\n",
                0x1000 + i
            )
        })
        .collect()
}

/// Adds `count` CAs `/DC=org/DC=igtf-like/CN=Extra CA <i>` to `ca_dir`, with work files under
/// `work` (kept out of the trust dir). `big(i)` = number of revoked serials in CA `i`'s CRL
/// (about 36 bytes each: 29,000 make a 1 MB CRL).
pub fn add_extra_cas(
    ca_dir: &Path,
    work: &Path,
    count: usize,
    big: impl Fn(usize) -> usize,
) -> Vec<ExtraCa> {
    std::fs::create_dir_all(work).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let mut out = Vec::new();
    let mut indexes: std::collections::HashMap<usize, PathBuf> = Default::default();
    for i in 0..count {
        let dn = format!("/DC=org/DC=igtf-like/CN=Extra CA {i}");
        let (cert, key) = (
            work.join(format!("ca{i}.pem")),
            work.join(format!("ca{i}.key")),
        );
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &s(&key),
            "-out",
            &s(&cert),
            "-subj",
            &dn,
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        let hashes = openssl(&[
            "x509",
            "-noout",
            "-subject_hash",
            "-subject_hash_old",
            "-in",
            &s(&cert),
        ]);
        let mut h = hashes.split_whitespace().map(str::to_string);
        let (hash, old_hash) = (h.next().unwrap(), h.next().unwrap());
        std::fs::copy(&cert, ca_dir.join(format!("{hash}.0"))).unwrap();
        if old_hash != hash {
            std::os::unix::fs::symlink(format!("{hash}.0"), ca_dir.join(format!("{old_hash}.0")))
                .unwrap();
        }
        std::fs::write(
            ca_dir.join(format!("{hash}.namespaces")),
            format!("TO Issuer \"{dn}\" PERMIT Subject \"/DC=org/DC=igtf-like/.*\"\n"),
        )
        .unwrap();
        std::fs::write(
            ca_dir.join(format!("{hash}.signing_policy")),
            format!("access_id_CA X509 '{dn}'\npos_rights globus CA:sign\ncond_subjects globus '\"/DC=org/DC=igtf-like/*\"'\n"),
        )
        .unwrap();
        std::fs::write(
            ca_dir.join(format!("{hash}.info")),
            format!("alias = extra-{i}\ncrl_url = http://crl.example.org/{hash}.crl\nsubjectdn = {dn}\n"),
        )
        .unwrap();
        let n = big(i);
        let db = indexes.entry(n).or_insert_with(|| {
            let p = work.join(format!("index-{n}.txt"));
            std::fs::write(&p, revoked_index(n)).unwrap();
            p
        });
        let num = work.join(format!("crlnumber{i}"));
        std::fs::write(&num, "01\n").unwrap();
        let conf = work.join(format!("crl{i}.cnf"));
        std::fs::write(
            &conf,
            CRL_CONF.replace("@DB@", &s(db)).replace("@NUM@", &s(&num)),
        )
        .unwrap();
        openssl(&[
            "ca",
            "-batch",
            "-gencrl",
            "-config",
            &s(&conf),
            "-cert",
            &s(&cert),
            "-keyfile",
            &s(&key),
            "-out",
            &s(&ca_dir.join(format!("{hash}.r0"))),
        ]);
        out.push(ExtraCa {
            dn,
            hash,
            old_hash,
            cert,
            key,
        });
    }
    out
}
