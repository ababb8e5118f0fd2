//! The `pilotbox` command: one subcommand per DESIGN.md contract, each in `runtime::cli`; this
//! file only parses and dispatches.

use clap::{Parser, Subcommand};
use runtime::cli;

#[derive(Debug, Parser)]
#[command(name = "pilotbox", version, about = "Run a grid payload as its owner, sandboxed")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a proxy credential (no launch).
    Verify(cli::verify::Args),
    /// The mapping decision for a proxy under the site policy (no launch).
    Map(cli::map::Args),
    /// `policy check [FILE]`: check the site policy (or a candidate file).
    Policy(cli::policy_check::Args),
    /// Pool-account leases (root only): `leases list`, `leases expire`.
    Leases(cli::leases::Args),
    /// Your running payloads (root: all).
    Ps(cli::ps::PsArgs),
    /// State, account, cgroup and usage of one payload.
    Status(cli::ps::StatusArgs),
    /// Signal a payload (default SIGKILL: the whole cgroup).
    Kill(cli::control::KillArgs),
    /// Freeze a payload.
    Suspend(cli::control::IdArgs),
    /// Thaw a frozen payload.
    Resume(cli::control::IdArgs),
    /// Replace a payload's proxy with a fresh one of the same identity.
    Renew(cli::renew::Args),
    /// Reclaim what payloads whose supervisor is gone left behind.
    Gc(cli::gc::Args),
    /// Check the installation (setuid, policy, trust, cgroups, user namespaces).
    Check(cli::check::Args),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Bad usage is the caller's error (122); --help/--version are not errors.
            let code = if e.use_stderr() { policy::Class::PilotError.exit_code() } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cli.command {
        Command::Verify(a) => cli::verify::run(a),
        Command::Map(a) => cli::map::run(a),
        Command::Policy(a) => cli::policy_check::run(a),
        Command::Leases(a) => cli::leases::run(a),
        Command::Ps(a) => cli::ps::run_ps(a),
        Command::Status(a) => cli::ps::run_status(a),
        Command::Kill(a) => cli::control::run_kill(a),
        Command::Suspend(a) => cli::control::run_suspend(a),
        Command::Resume(a) => cli::control::run_resume(a),
        Command::Renew(a) => cli::renew::run(a),
        Command::Gc(a) => cli::gc::run(a),
        Command::Check(a) => cli::check::run(a),
    };
    std::process::exit(code);
}
