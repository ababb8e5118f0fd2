//! A throwaway CA with the real grid tools, shared by the runtime's launcher and lifecycle
//! tests (included with `#[path = "../support/pki.rs"]` from `launcher_support` and
//! `lifecycle_support`; not part of the engine's `support` module). A smaller sibling of
//! `policy/tests/support`'s factory, which also builds revoked, expired and malformed chains:
//! CA, user and VOMS-server certificates by `openssl`, proxies by `voms-proxy-fake` and
//! `grid-proxy-init`. Lives in a TempDir removed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Cred {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub dn: String,
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn openssl() -> Command {
    let mut c = Command::new("openssl");
    c.env("OPENSSL_CONF", "/dev/null");
    c
}

pub struct Pki {
    pub tmp: tempfile::TempDir,
    pub ca_dir: PathBuf,
    pub ca: Cred,
    n: std::cell::Cell<u32>,
}

const EXT: &str = "[v3_user]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n";

impl Pki {
    pub fn new(name: &str) -> Pki {
        let tmp = tempfile::Builder::new()
            .prefix("pilotbox-launcher-pki-")
            .tempdir()
            .unwrap();
        let ca_dir = tmp.path().join("certificates");
        std::fs::create_dir_all(&ca_dir).unwrap();
        let dn = format!("/DC=org/DC=example/CN={name}");
        let (cert, key) = (tmp.path().join("ca.pem"), tmp.path().join("ca.key"));
        run(openssl()
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args([
                "-subj",
                &dn,
                "-days",
                "3650",
                "-sha256",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]));
        let hash = run(openssl()
            .args(["x509", "-noout", "-subject_hash", "-in"])
            .arg(&cert))
        .trim()
        .to_string();
        std::fs::copy(&cert, ca_dir.join(format!("{hash}.0"))).unwrap();
        std::fs::write(tmp.path().join("ext.cnf"), EXT).unwrap();
        Pki {
            tmp,
            ca_dir,
            ca: Cred { cert, key, dn },
            n: std::cell::Cell::new(0),
        }
    }

    fn path(&self, stem: &str) -> PathBuf {
        self.n.set(self.n.get() + 1);
        self.tmp.path().join(format!("{stem}-{}", self.n.get()))
    }

    /// A certificate `/DC=org/DC=example/CN=<cn>` signed by the CA (`openssl x509 -req`).
    pub fn cert(&self, cn: &str) -> Cred {
        let (cert, key, csr) = (self.path("c.pem"), self.path("c.key"), self.path("c.csr"));
        let dn = format!("/DC=org/DC=example/CN={cn}");
        run(openssl()
            .args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", &dn]));
        run(openssl()
            .args(["x509", "-req", "-sha256", "-days", "30", "-set_serial"])
            .arg(format!("{}", 0x2000 + self.n.get()))
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&self.ca.cert)
            .arg("-CAkey")
            .arg(&self.ca.key)
            .arg("-extfile")
            .arg(self.tmp.path().join("ext.cnf"))
            .args(["-extensions", "v3_user", "-out"])
            .arg(&cert));
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o400))
            .unwrap();
        Cred { cert, key, dn }
    }

    /// A VOMS proxy of `user` for `vo` with the AC signed by `host` (real voms-proxy-fake).
    pub fn voms_proxy(&self, user: &Cred, host: &Cred, vo: &str) -> PathBuf {
        self.voms_proxy_with(user, host, vo, &[])
    }

    /// [`Pki::voms_proxy`] with extra voms-proxy-fake options (e.g. `-vomslife`, `-pastac` for
    /// an AC that ends soon).
    pub fn voms_proxy_with(&self, user: &Cred, host: &Cred, vo: &str, extra: &[&str]) -> PathBuf {
        let out = self.path("vomsproxy");
        run(Command::new("voms-proxy-fake")
            .env("X509_CERT_DIR", &self.ca_dir)
            .args(["-q", "-rfc", "-cert"])
            .arg(&user.cert)
            .arg("-key")
            .arg(&user.key)
            .arg("-hostcert")
            .arg(&host.cert)
            .arg("-hostkey")
            .arg(&host.key)
            .args(extra)
            .args([
                "-voms",
                vo,
                "-uri",
                "voms.example.org:15000",
                "-fqan",
                &format!("/{vo}/Role=NULL/Capability=NULL"),
                "-out",
            ])
            .arg(&out));
        out
    }

    /// A plain RFC 3820 proxy (no VOMS) from grid-proxy-init.
    pub fn plain_proxy(&self, user: &Cred) -> PathBuf {
        self.plain_proxy_with(user, &[])
    }

    /// [`Pki::plain_proxy`] with extra grid-proxy-init options (e.g. `-valid 2:00`).
    pub fn plain_proxy_with(&self, user: &Cred, extra: &[&str]) -> PathBuf {
        let out = self.path("proxy");
        run(Command::new("grid-proxy-init")
            .env("X509_CERT_DIR", &self.ca_dir)
            .args(["-q", "-rfc"])
            .args(extra)
            .arg("-cert")
            .arg(&user.cert)
            .arg("-key")
            .arg(&user.key)
            .arg("-out")
            .arg(&out));
        out
    }

    /// `<dir>/<vo>/<host>.lsc` naming `host` and this CA.
    pub fn lsc(&self, dir: &Path, vo: &str, host: &Cred) {
        std::fs::create_dir_all(dir.join(vo)).unwrap();
        std::fs::write(
            dir.join(vo).join("voms.example.org.lsc"),
            format!("{}\n{}\n", host.dn, self.ca.dn),
        )
        .unwrap();
    }
}
