//! `pilotbox-nosuid`: pilotbox for sites that allow no identity switch (`runtime::nosuid`). The
//! same CLI as `pilotbox` for what makes sense without privilege: `run` (same arguments, exit
//! classes and report), `verify`, `map` (the account it would map to), and the pilot lifecycle
//! commands `ps`, `status ID [--json]`, `kill ID [--signal SIG]`, `suspend ID`, `resume ID`,
//! `renew ID --proxy FILE`, `gc` (same output formats and exit classes as `pilotbox`'s, on the
//! caller's own records; `suspend`/`resume` need a delegated cgroup-v2 subtree, else 123 —
//! `runtime::nosuid::lifecycle`). It is a separate program, never installed setuid: it refuses
//! to run if it is (site error 123).

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use runtime::nosuid::lifecycle;
use runtime::{cli, nosuid};

#[derive(Debug, Parser)]
#[command(
    name = "pilotbox-nosuid",
    version,
    about = "Run a grid payload sandboxed under the caller's own uid (no identity switch)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a proxy credential (no launch).
    Verify(cli::verify::Args),
    /// The account the proxy would map to under the site policy (no lease is taken).
    Map(cli::map::Args),
    /// Run a payload sandboxed as the caller (the proxy is verified and authorized first).
    Run(cli::run::Args),
    /// List your running payloads.
    Ps(lifecycle::PsArgs),
    /// State, account, cgroup and processes of one payload.
    Status(lifecycle::StatusArgs),
    /// Signal a payload (default KILL: the whole payload, returns once it is gone).
    Kill(lifecycle::KillArgs),
    /// Freeze a payload (needs a delegated cgroup-v2 subtree).
    Suspend(lifecycle::IdArgs),
    /// Thaw a suspended payload.
    Resume(lifecycle::IdArgs),
    /// Replace the proxy inside a running payload's sandbox (same identity only).
    Renew(lifecycle::RenewArgs),
    /// Reclaim records, cgroups and proxy copies of your payloads whose supervisor is gone.
    Gc(lifecycle::GcArgs),
}

fn main() {
    let site = policy::Class::SiteError.exit_code();
    // The same sanitizing as the setuid binary: the environment, fds, signals, umask, rlimits.
    // No front/worker split (launcher/split.rs): nothing here is privileged or node-wide.
    let caller = match runtime::launcher::sanitize::sanitize() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {}: {e}", nosuid::NAME, e.class());
            std::process::exit(e.class().exit_code());
        }
    };
    if let Err(d) = nosuid::refuse_privilege() {
        eprintln!("{}: {d}", nosuid::NAME);
        std::process::exit(d.class.exit_code());
    }
    // sanitize() made us non-dumpable, which makes /proc/<pid>/{uid,gid}_map and setgroups of
    // our children root-owned: an unprivileged supervisor could not write its sandbox's id maps.
    // Non-dumpable protects nothing here (we hold no privilege; the pilot, same uid, could read
    // our memory through any other process of its own; the payload cannot see us: pid ns).
    if let Err(e) = nix::sys::prctl::set_dumpable(true) {
        eprintln!("{}: PR_SET_DUMPABLE: {e}", nosuid::NAME);
        std::process::exit(site);
    }
    cli::restore_tool_env(&caller);
    let cli: Cli = cli::parse_or_exit();
    let code = match cli.command {
        Command::Verify(a) => cli::verify::run(a),
        Command::Map(a) => nosuid::map::run(a, &caller),
        Command::Run(a) => nosuid::launch::run(a, &caller),
        Command::Ps(a) => lifecycle::ps(a, &caller),
        Command::Status(a) => lifecycle::status(a, &caller),
        Command::Kill(a) => lifecycle::kill(a, &caller),
        Command::Suspend(a) => lifecycle::freeze(a, &caller, true),
        Command::Resume(a) => lifecycle::freeze(a, &caller, false),
        Command::Renew(a) => lifecycle::renew(a, &caller),
        Command::Gc(a) => lifecycle::gc(a, &caller),
    };
    std::process::exit(code);
}
