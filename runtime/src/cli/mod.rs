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

use crate::launcher::sanitize::Caller;

/// Caller variables the read-only subcommands keep (their documented defaults); `run` reads
/// only what it needs from the remembered environment, never from the process's.
const KEPT_FOR_TOOLS: [&str; 3] = ["X509_USER_PROXY", "X509_CERT_DIR", "X509_VOMS_DIR"];

/// After sanitizing: put back the variables a read-only subcommand documents as defaults
/// (not for `run`). Must be called while the process is still single-threaded.
pub fn restore_tool_env(caller: &Caller) {
    if std::env::args_os().nth(1).is_some_and(|a| a == "run") {
        return;
    }
    for name in KEPT_FOR_TOOLS {
        if let Some((k, v)) = caller.env.iter().find(|(k, _)| k == name) {
            std::env::set_var(k, v);
        }
    }
}

/// Parse the command line, or exit: bad usage is the caller's error (122); `--help` and
/// `--version` are not errors (0).
pub fn parse_or_exit<P: clap::Parser>() -> P {
    match P::try_parse() {
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
    }
}
