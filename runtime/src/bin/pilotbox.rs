//! `pilotbox`: parse the command line and dispatch; each subcommand lives in `runtime::cli`.

use clap::Parser;
use runtime::cli;

#[derive(Debug, Parser)]
#[command(
    name = "pilotbox",
    about = "Run a grid payload as its own user in a sandbox"
)]
enum Cli {
    /// `policy check [FILE]`: check the site policy (or a candidate file).
    Policy(cli::policy_check::Args),
    /// Pool-account leases (root only): `leases list`, `leases expire`.
    Leases(cli::leases::Args),
}

fn main() {
    let code = match Cli::parse() {
        Cli::Policy(a) => cli::policy_check::run(a),
        Cli::Leases(a) => cli::leases::run(a),
    };
    std::process::exit(code);
}
