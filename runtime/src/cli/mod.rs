//! `pilotbox` subcommands. Each module has an `Args` (clap derive) and `run(args) -> i32`
//! returning the process exit status.

pub mod verify;
