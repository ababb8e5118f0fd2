//! Audit for `pilotbox-nosuid`: the same decision/start/end records as `pilotbox run`, each
//! marked `"identity_switch": false` with the account it would have mapped to, sent to syslog
//! (`LOG_AUTHPRIV`, tag `pilotbox-nosuid`) when `[audit] syslog` is on (the default). With it
//! off, `pilotbox-nosuid` writes no audit record at all: the file is out of its reach (below).
//!
//! Why not the `[audit] log` file: `pilotbox run` only appends to a root-owned file that is not
//! group/world-writable (anything else could be rewritten by a pilot), and an unprivileged
//! process cannot write such a file. Syslog is the channel an ordinary user has to a log it
//! cannot edit afterwards (journald records the sender's kernel-attested uid and pid). It is
//! best effort: without a syslog socket a warning goes to stderr and the payload still runs —
//! the payload runs as the caller anyway, so the record adds information but no protection, and
//! a caller could always hide a socket from us (its own mount namespace).

use crate::launcher::audit::{line, send_syslog};
use serde_json::Value;

pub struct Audit {
    syslog: bool,
    warned: std::cell::Cell<bool>,
}

impl Audit {
    /// `syslog`: the policy's `[audit] syslog`.
    pub fn new(syslog: bool) -> Audit {
        Audit {
            syslog,
            warned: std::cell::Cell::new(false),
        }
    }

    /// Send one record; warns once on stderr when syslog is unreachable.
    pub fn record(&self, event: &str, mut fields: Value) {
        if !self.syslog {
            return;
        }
        fields["identity_switch"] = Value::Bool(false);
        let text = line(event, fields);
        if let Err(e) = send_syslog(super::NAME, &text) {
            if !self.warned.replace(true) {
                eprintln!("{}: warning: audit: syslog (/dev/log): {e}", super::NAME);
            }
        }
    }
}
