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
    };
    std::process::exit(code);
}
