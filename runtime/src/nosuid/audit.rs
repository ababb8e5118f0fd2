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
use std::path::PathBuf;

pub struct Audit {
    /// The policy's `[audit] syslog_socket` when `[audit] syslog` is on.
    syslog: Option<PathBuf>,
    warned: std::cell::Cell<bool>,
}

impl Audit {
    /// `conf`: the policy's `[audit]`.
    pub fn new(conf: &policy::config::schema::AuditConf) -> Audit {
        let syslog = conf.syslog.then(|| conf.syslog_socket.clone());
        Audit {
            syslog,
            warned: std::cell::Cell::new(false),
        }
    }

    /// Send one record; warns once on stderr when syslog is unreachable.
    pub fn record(&self, event: &str, mut fields: Value) {
        let Some(socket) = &self.syslog else {
            return;
        };
        fields["identity_switch"] = Value::Bool(false);
        let text = line(event, fields);
        if let Err(e) = send_syslog(socket, super::NAME, &text) {
            if !self.warned.replace(true) {
                eprintln!(
                    "{}: warning: audit: syslog ({}): {e}",
                    super::NAME,
                    socket.display()
                );
            }
        }
    }
}
