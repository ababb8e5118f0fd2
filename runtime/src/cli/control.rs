//! `pilotbox kill ID [--signal SIG]`, `suspend ID`, `resume ID`: act on the whole payload cgroup
//! (see `lifecycle::control` for why the cgroup, and how signals reach the payload).

use super::lifecycle_args::{fail, site_audit, StateArgs};
use crate::lifecycle::caller::Caller;
use crate::lifecycle::control;
use nix::sys::signal::Signal;

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    pub id: String,
    /// Signal name or number (TERM, SIGUSR1, 15 ...). KILL (default) kills the whole cgroup
    /// and returns once it is empty; other signals go to every process of the payload.
    #[arg(long, short = 's', default_value = "KILL", value_parser = control::parse_signal)]
    pub signal: Signal,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    pub id: String,
    #[command(flatten)]
    pub state: StateArgs,
}

pub fn run_kill(a: KillArgs) -> i32 {
    let caller = Caller::current();
    let dir = match a.state.resolve("kill", caller) {
        Ok(d) => d,
        Err(c) => return c,
    };
    match control::kill(&dir, &site_audit(), caller, &a.id, a.signal) {
        Ok(()) => 0,
        Err(e) => fail("kill", &e),
    }
}

pub fn run_suspend(a: IdArgs) -> i32 {
    let caller = Caller::current();
    let dir = match a.state.resolve("suspend", caller) {
        Ok(d) => d,
        Err(c) => return c,
    };
    match control::suspend(&dir, &site_audit(), caller, &a.id) {
        Ok(()) => 0,
        Err(e) => fail("suspend", &e),
    }
}

pub fn run_resume(a: IdArgs) -> i32 {
    let caller = Caller::current();
    let dir = match a.state.resolve("resume", caller) {
        Ok(d) => d,
        Err(c) => return c,
    };
    match control::resume(&dir, &site_audit(), caller, &a.id) {
        Ok(()) => 0,
        Err(e) => fail("resume", &e),
    }
}
