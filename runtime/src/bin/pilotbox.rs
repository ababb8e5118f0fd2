//! The `pilotbox` command: one subcommand per DESIGN.md contract, each in `runtime::cli`.

use clap::{Parser, Subcommand};

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
    Verify(runtime::cli::verify::Args),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                policy::Class::PilotError.exit_code()
            } else {
                0
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cli.command {
        Command::Verify(args) => runtime::cli::verify::run(args),
    };
    std::process::exit(code);
}
