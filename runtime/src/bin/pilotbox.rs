//! The `pilotbox` command: one subcommand per docs/design.md contract, each in `runtime::cli`; this
//! file only parses and dispatches.

use clap::{Parser, Subcommand};
use runtime::cli;

#[derive(Debug, Parser)]
#[command(
    name = "pilotbox",
    version,
    about = "Run a grid payload as its owner, sandboxed"
)]
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
    /// Run a payload as the proxy's owner, sandboxed (setuid root; called by a pilot).
    Run(cli::run::Args),
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
    let glexec = cli::glexec::invoked_as_glexec(std::env::args_os().next().as_deref());
    // gLExec's statuses for pilotbox's own failures (cli/glexec.rs): 201 client, 202 system.
    let code_for = |class: policy::Class| {
        if !glexec {
            class.exit_code()
        } else if class == policy::Class::PilotError {
            cli::glexec::CLIENT_ERROR
        } else {
            cli::glexec::SYSTEM_ERROR
        }
    };
    // First, for every subcommand: the process state a setuid program inherits is the caller's.
    let mut caller = match runtime::launcher::sanitize::sanitize() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pilotbox: {}: {e}", e.class());
            std::process::exit(code_for(e.class()));
        }
    };
    // Then, still before any policy is read: a setuid call by a non-root caller splits into the
    // caller's front (this pid, relaying signals) and a worker whose uids are all 0, so that the
    // caller can neither stop nor signal what enforces its limits and holds node-wide locks
    // (launcher/split.rs). Every subcommand below runs in the worker; the front never returns.
    if runtime::launcher::split::needed(&caller) {
        let site = code_for(policy::Class::SiteError);
        if let Err(e) = runtime::launcher::split::split(&mut caller, site) {
            // fork failing for lack of processes or memory is worth retrying.
            let class = match e {
                nix::errno::Errno::EAGAIN | nix::errno::Errno::ENOMEM => policy::Class::Temporary,
                _ => policy::Class::SiteError,
            };
            eprintln!("pilotbox: {class}: cannot start the supervisor: {e}");
            std::process::exit(code_for(class));
        }
    }
    // Invoked as `glexec` (a symlink): gLExec's interface, no subcommands (cli/glexec.rs).
    if glexec {
        std::process::exit(cli::glexec::run(
            std::env::args_os().skip(1).collect(),
            &caller,
        ));
    }
    cli::restore_tool_env(&caller);
    let cli: Cli = cli::parse_or_exit();
    let code = match cli.command {
        Command::Verify(a) => cli::verify::run_as_caller(a, &caller),
        Command::Map(a) => cli::map::run(a, &caller),
        Command::Policy(a) => cli::policy_check::run(a),
        Command::Leases(a) => cli::leases::run(a),
        Command::Run(a) => cli::run::run(a, &caller),
        Command::Ps(a) => cli::ps::run_ps(a),
        Command::Status(a) => cli::ps::run_status(a),
        Command::Kill(a) => cli::control::run_kill(a),
        Command::Suspend(a) => cli::control::run_suspend(a),
        Command::Resume(a) => cli::control::run_resume(a),
        Command::Renew(a) => cli::renew::run(a, &caller),
        Command::Gc(a) => cli::gc::run(a),
        Command::Check(a) => cli::check::run(a, &caller),
    };
    std::process::exit(code);
}
