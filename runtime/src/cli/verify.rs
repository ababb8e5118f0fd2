//! `pilotbox verify`: credential check only (docs/design.md "Contracts").
//!
//! Exit 0 when the proxy is valid, 120 when it is rejected, 122 for bad usage (unreadable proxy
//! file), 123 when the trust directory is unusable. `--json` prints exactly the fields `valid`,
//! `reason`, `dn`, `issuer_dn`, `proxy_type`, `limited`, `not_after`, `vo`, `fqans`, `voms_valid`.

use policy::credentials::{
    verify_proxy, AlgorithmPolicy, CredentialError, Verified, VerifyOptions,
};
use policy::Class;
use serde::Serialize;
use std::path::PathBuf;
use time::OffsetDateTime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The proxy file (PEM: proxy certificate, its key, the rest of the chain).
    #[arg(long)]
    pub proxy: PathBuf,
    /// Trust directory; default $X509_CERT_DIR, then /etc/grid-security/certificates.
    #[arg(long)]
    pub ca_dir: Option<PathBuf>,
    /// VOMS directory; default $X509_VOMS_DIR, then /etc/grid-security/vomsdir.
    #[arg(long)]
    pub voms_dir: Option<PathBuf>,
    /// Verify as of this time (RFC 3339) instead of now.
    #[arg(long, value_parser = parse_rfc3339)]
    pub at: Option<OffsetDateTime>,
    /// Accept limited proxies.
    #[arg(long)]
    pub allow_limited: bool,
    /// Also accept SHA-1 signatures and 1024-bit RSA keys (never MD5).
    #[arg(long)]
    pub legacy_algorithms: bool,
    /// Print one JSON object instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time: {e}"))
}

/// The `--json` document (field names are the contract).
#[derive(Debug, Serialize)]
pub struct Report {
    pub valid: bool,
    pub reason: Option<String>,
    pub dn: Option<String>,
    pub issuer_dn: Option<String>,
    pub proxy_type: Option<policy::ProxyType>,
    pub limited: Option<bool>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    pub vo: Option<String>,
    pub fqans: Vec<String>,
    pub voms_valid: Option<bool>,
}

impl Report {
    fn accepted(v: &Verified) -> Report {
        let id = &v.identity;
        let voms = id.voms.as_ref();
        Report {
            valid: true,
            // A valid proxy whose AC failed carries the AC's reason (authorization decides).
            reason: voms
                .and_then(|x| x.reason.clone())
                .map(|r| format!("voms: {r}")),
            dn: Some(id.dn.clone()),
            issuer_dn: Some(id.issuer_dn.clone()),
            proxy_type: id.proxy_type,
            limited: Some(id.limited),
            not_after: Some(id.not_after),
            vo: id.verified_vo().map(str::to_string),
            fqans: id.verified_fqans().to_vec(),
            voms_valid: voms.map(|x| x.valid),
        }
    }

    fn rejected(e: &CredentialError) -> Report {
        Report {
            valid: false,
            reason: Some(e.reason()),
            dn: None,
            issuer_dn: None,
            proxy_type: None,
            limited: None,
            not_after: None,
            vo: None,
            fqans: Vec::new(),
            voms_valid: None,
        }
    }
}

fn dir_default(flag: Option<PathBuf>, env: &str, fallback: &str) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os(env)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| PathBuf::from(fallback))
}

/// `verify` needs no privilege at all: when pilotbox runs setuid for a non-root caller, become
/// the caller for good before touching any path it named (a pilot must never make pilotbox read
/// a file or directory it could not read itself).
pub fn run_as_caller(args: Args, caller: &crate::launcher::sanitize::Caller) -> i32 {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    if nix::unistd::geteuid().is_root() && caller.uid != 0 {
        let groups: Vec<Gid> = caller.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        let (g, u) = (Gid::from_raw(caller.gid), Uid::from_raw(caller.uid));
        if setgroups(&groups)
            .and_then(|_| setresgid(g, g, g))
            .and_then(|_| setresuid(u, u, u))
            .is_err()
        {
            eprintln!("pilotbox verify: cannot drop privileges");
            return Class::SiteError.exit_code();
        }
    }
    run(args)
}

pub fn run(args: Args) -> i32 {
    let bytes = match read_proxy(&args.proxy) {
        Ok(b) => b,
        Err(msg) => {
            eprintln!("pilotbox verify: {msg}");
            return Class::PilotError.exit_code();
        }
    };
    let mut opts = VerifyOptions::new(dir_default(
        args.ca_dir,
        "X509_CERT_DIR",
        "/etc/grid-security/certificates",
    ));
    opts.voms_dir = Some(dir_default(
        args.voms_dir,
        "X509_VOMS_DIR",
        "/etc/grid-security/vomsdir",
    ));
    opts.at = args.at;
    opts.allow_limited = args.allow_limited;
    if args.legacy_algorithms {
        opts.algorithms = AlgorithmPolicy::legacy();
    }
    opts.host_fqdn = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok());
    let result = verify_proxy(&bytes, &opts);
    let report = match &result {
        Ok(v) => Report::accepted(v),
        Err(e) => Report::rejected(e),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).unwrap_or_else(|_| "{\"valid\":false}".into())
        );
    } else {
        match &result {
            Ok(v) => println!(
                "valid: {} (issuer {}, {}{}, until {})",
                v.identity.dn,
                v.identity.issuer_dn,
                v.identity
                    .proxy_type
                    .map(|t| format!("{t:?}").to_lowercase())
                    .unwrap_or_else(|| "end-entity certificate".into()),
                if v.identity.limited { ", limited" } else { "" },
                report
                    .not_after
                    .and_then(|t| t
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok())
                    .unwrap_or_default()
            ),
            Err(e) => println!("rejected: {}", e.reason()),
        }
    }
    match &result {
        Ok(_) => 0,
        Err(e) if e.class() == Class::SiteError => {
            if !args.json {
                eprintln!("pilotbox verify: {e}");
            }
            Class::SiteError.exit_code()
        }
        Err(_) => Class::Denied.exit_code(),
    }
}

/// Reads the proxy file, bounded (a larger file is refused by the verifier with a reason).
pub fn read_proxy(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .map_err(|e| format!("cannot open proxy file {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(policy::credentials::pem::MAX_PROXY_FILE as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read proxy file {}: {e}", path.display()))?;
    Ok(buf)
}
