//! One JSON line per lifecycle action (kill, suspend, resume, renew accepted/refused, gc) in the
//! audit log of docs/launcher-design.md ("Audit"): `/var/log/pilotbox/audit.jsonl`, root-owned,
//! 0600, opened `O_APPEND` so concurrent writers never interleave inside a line.
//!
//! Merge note: the launcher's audit module (which also sends to syslog `LOG_AUTHPRIV`) should
//! replace [`record`]'s file writing; the event shape (`event`, `time`, `id`, `caller_uid`, …)
//! is meant to match its start/end records.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use serde_json::{json, Value};

pub const AUDIT_LOG: &str = "/var/log/pilotbox/audit.jsonl";

/// Append `fields` plus `event` and `time` as one line. An audit failure is reported on stderr
/// and returned, but the caller decides whether it stops the action.
pub fn record(event: &str, fields: Value) -> std::io::Result<()> {
    record_to(Path::new(AUDIT_LOG), event, fields)
}

pub fn record_to(log: &Path, event: &str, mut fields: Value) -> std::io::Result<()> {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    if let Value::Object(m) = &mut fields {
        m.insert("event".into(), json!(event));
        m.insert("time".into(), json!(now));
    }
    let mut line = serde_json::to_vec(&fields).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let result = (|| {
        if let Some(dir) = log.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(log)?;
        f.write_all(&line)
    })();
    if let Err(e) = &result {
        eprintln!(
            "pilotbox: cannot write audit record to {}: {e}",
            log.display()
        );
    }
    result
}
