//! `pilotbox` subcommands. Each module exposes clap `Args` and `run(args) -> i32` (the exit
//! status); `bin/pilotbox.rs` only parses and dispatches.

pub mod glexec;
pub mod leases;
pub mod map;
pub mod policy_check;
pub mod run;
pub mod verify;
// Lifecycle commands (issue 6).
pub mod check;
pub mod control;
pub mod gc;
pub mod lifecycle_args;
pub mod ps;
pub mod renew;
