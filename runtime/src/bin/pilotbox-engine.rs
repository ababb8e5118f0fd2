//! `pilotbox-engine`: run one OCI Spec (or a payload described on the command line) under the
//! engine, as root, without credentials or policy. For tests, the demo and debugging; pilots call
//! `pilotbox`.
use clap::{Parser, Subcommand};
use runtime::engine::{self, RunOptions};
use runtime::spec_builder::{Bind, Idmap, PayloadSpec};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "pilotbox-engine",
    about = "Run a payload in the pilotbox sandbox engine (root only)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct Common {
    /// Wall-time limit in seconds (SIGTERM, grace, then kill).
    #[arg(long)]
    walltime: Option<u64>,
    /// Seconds between SIGTERM and the hard kill.
    #[arg(long, default_value_t = 10)]
    grace: u64,
    /// Write the outcome and usage as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The payload's credential expires in this many seconds (warned, then ended).
    #[arg(long)]
    expires_in: Option<u64>,
    /// Warn this many seconds before the credential expires.
    #[arg(long, default_value_t = 300)]
    expiry_margin: u64,
    /// Signal that warns of expiry.
    #[arg(long, default_value = "SIGUSR2")]
    expiry_signal: nix::sys::signal::Signal,
    /// A file holding the credential's current expiry (unix seconds), re-read before acting:
    /// what `pilotbox renew` updates.
    #[arg(long)]
    expiry_file: Option<PathBuf>,
}

// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Run an OCI runtime config.json.
    Run {
        #[arg(long)]
        spec: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Run CMD as uid/gid with pilotbox's default payload Spec.
    Exec {
        #[arg(long)]
        uid: u32,
        #[arg(long)]
        gid: u32,
        /// Supplementary gids.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<u32>,
        /// SRC:DEST[:ro|:idmap=DISKUID,DISKGID] bind mounts from the host.
        #[arg(long)]
        bind: Vec<String>,
        /// Paths to hide from the payload.
        #[arg(long)]
        hide: Vec<PathBuf>,
        #[arg(long, default_value = "/tmp")]
        cwd: PathBuf,
        /// Root filesystem directory (default: the host's, read-only).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// KEY=VALUE environment entries (nothing else is passed).
        #[arg(long)]
        env: Vec<String>,
        /// A new network namespace with loopback only.
        #[arg(long)]
        isolate_network: bool,
        /// With --isolate-network: outbound connectivity through pasta (policy mode "isolated").
        #[arg(long, requires = "isolate_network")]
        outbound: bool,
        /// Namespace to join: TYPE:PATH (e.g. network:/proc/123/ns/net).
        #[arg(long)]
        join: Vec<String>,
        /// cgroup path (absolute within the hierarchy) to create for the payload.
        #[arg(long)]
        cgroup: Option<String>,
        #[arg(long)]
        memory: Option<i64>,
        #[arg(long)]
        pids: Option<i64>,
        #[arg(long)]
        cpus: Option<f64>,
        #[arg(long)]
        no_seccomp: bool,
        /// Print the generated Spec and exit.
        #[arg(long)]
        print_spec: bool,
        #[command(flatten)]
        common: Common,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let (spec, common) = match cli.cmd {
        Cmd::Run { spec, common } => {
            let text = std::fs::read_to_string(&spec)
                .unwrap_or_else(|e| die(122, &format!("{}: {e}", spec.display())));
            let spec = serde_json::from_str(&text)
                .unwrap_or_else(|e| die(122, &format!("{}: {e}", spec.display())));
            (spec, common)
        }
        Cmd::Exec {
            uid,
            gid,
            groups,
            bind,
            hide,
            cwd,
            root,
            env,
            isolate_network,
            outbound,
            join,
            cgroup,
            memory,
            pids,
            cpus,
            no_seccomp,
            print_spec,
            common,
            cmd,
        } => {
            let mut p = PayloadSpec::new(cmd, uid, gid);
            p.groups = groups;
            p.cwd = cwd;
            p.root = root;
            p.hide = hide;
            p.isolate_network = isolate_network;
            p.outbound = outbound;
            if !env.is_empty() {
                p.env = env;
            }
            for b in bind {
                let parts: Vec<&str> = b.split(':').collect();
                match parts.as_slice() {
                    [s, d] => p.binds.push(Bind {
                        source: s.into(),
                        dest: d.into(),
                        readonly: false,
                        idmap: None,
                    }),
                    [s, d, "ro"] => p.binds.push(Bind {
                        source: s.into(),
                        dest: d.into(),
                        readonly: true,
                        idmap: None,
                    }),
                    [s, d, m] if m.starts_with("idmap=") => {
                        // idmap=DISKUID,DISKGID — shown inside as the payload's uid/gid.
                        let ids: Vec<u32> = m["idmap=".len()..]
                            .split(',')
                            .filter_map(|x| x.parse().ok())
                            .collect();
                        if ids.len() != 2 {
                            die(122, &format!("--bind {b}: expected idmap=DISKUID,DISKGID"));
                        }
                        let idmap = Some(Idmap {
                            disk_uid: ids[0],
                            disk_gid: ids[1],
                            uid,
                            gid,
                        });
                        p.binds.push(Bind {
                            source: s.into(),
                            dest: d.into(),
                            readonly: false,
                            idmap,
                        })
                    }
                    _ => die(
                        122,
                        &format!("--bind {b}: expected SRC:DEST[:ro|:idmap=DISKUID,DISKGID]"),
                    ),
                }
            }
            for j in join {
                match j.split_once(':') {
                    Some((t, path)) => p.join.push((t.into(), path.into())),
                    None => die(122, &format!("--join {j}: expected TYPE:PATH")),
                }
            }
            p.cgroup_path = cgroup;
            p.resources = engine::resources(memory, pids, cpus);
            if !no_seccomp {
                p.seccomp = Some(engine::default_seccomp());
            }
            let spec = p
                .to_spec()
                .unwrap_or_else(|e| die(122, &format!("spec: {e}")));
            if print_spec {
                println!("{}", serde_json::to_string_pretty(&spec).unwrap());
                return;
            }
            (spec, common)
        }
    };
    let refresh = || -> Option<std::time::SystemTime> {
        let text = std::fs::read_to_string(common.expiry_file.as_ref()?).ok()?;
        Some(std::time::UNIX_EPOCH + Duration::from_secs(text.trim().parse().ok()?))
    };
    let opts = RunOptions {
        walltime: common.walltime.map(Duration::from_secs),
        grace: Duration::from_secs(common.grace),
        seccomp_cache: engine::default_seccomp_cache(),
        cred_expiry: common.expires_in.map(|s| engine::CredExpiry {
            not_after: std::time::SystemTime::now() + Duration::from_secs(s),
            margin: Duration::from_secs(common.expiry_margin),
            signal: common.expiry_signal,
            refresh: &refresh,
        }),
        ..RunOptions::default()
    };
    match engine::run(&spec, &opts) {
        Ok(r) => {
            if let Some(path) = common.report {
                let _ = std::fs::write(path, serde_json::to_string_pretty(&r.report()).unwrap());
            }
            if let Some((_, why)) = &r.outcome.exec_error {
                eprintln!("pilotbox-engine: payload did not start: {why}");
                std::process::exit(122);
            }
            std::process::exit(r.outcome.status.exit_code());
        }
        Err(e) => die(e.class_code(), &e.to_string()),
    }
}

fn die(code: i32, msg: &str) -> ! {
    eprintln!("pilotbox-engine: {msg}");
    std::process::exit(code)
}
