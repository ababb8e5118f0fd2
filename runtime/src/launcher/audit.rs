//! Audit records: one JSON line per decision, payload start and payload end, appended to the
//! root-owned log `[audit] log` (default `/var/log/pilotbox/audit.jsonl`, 0600, `O_APPEND` so
//! concurrent pilotbox processes never interleave inside a line) and sent to syslog with
//! facility `LOG_AUTHPRIV` (RFC 3164 framing over `[audit] syslog_socket`, default `/dev/log`,
//! as syslog(3) does).
//!
//! The end record carries APEL's accounting names (`WallDuration`, `CpuDuration`,
//! `MemoryReal` peak, `Processors`) next to ours, so an accounting parser can take it as is.

use policy::config::schema::AuditConf;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {reason}")]
    Log { path: PathBuf, reason: String },
}

/// `LOG_AUTHPRIV | LOG_INFO` (syslog.h: facility 10 << 3, severity 6).
const PRI_AUTHPRIV_INFO: u8 = (10 << 3) | 6;

pub struct Audit {
    conf: AuditConf,
}

/// Now, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Audit {
    pub fn new(conf: &AuditConf) -> Audit {
        Audit { conf: conf.clone() }
    }

    /// Append `{"event": event, "time": now, ...fields}` as one line; syslog best effort.
    pub fn record(&self, event: &str, fields: Value) -> Result<(), AuditError> {
        let line = line(event, fields);
        if self.conf.syslog {
            // Best effort: no syslog daemon, or a full queue, must not stop a launch — the
            // audit file is the record of truth and is written regardless.
            let _ = send_syslog(&self.conf.syslog_socket, "pilotbox", &line);
        }
        self.append(&line)
    }

    fn append(&self, line: &str) -> Result<(), AuditError> {
        let path = &self.conf.log;
        let err = |reason: String| AuditError::Log {
            path: path.clone(),
            reason,
        };
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| err(e.to_string()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| err(e.to_string()))?;
        let md = f.metadata().map_err(|e| err(e.to_string()))?;
        if !md.is_file() || md.uid() != 0 || md.mode() & 0o022 != 0 {
            return Err(err(format!(
                "must be a regular file owned by root, not group/world-writable (uid {}, mode {:o})",
                md.uid(),
                md.mode() & 0o7777
            )));
        }
        let mut buf = line.as_bytes().to_vec();
        buf.push(b'\n');
        // One write(2) of the whole line: O_APPEND makes its placement atomic.
        f.write_all(&buf).map_err(|e| err(e.to_string()))
    }
}

/// One audit line: `{"event": event, "time": now, ...fields}`.
pub fn line(event: &str, fields: Value) -> String {
    let mut obj = Map::new();
    obj.insert("event".into(), json!(event));
    obj.insert("time".into(), json!(now_rfc3339()));
    if let Value::Object(f) = fields {
        obj.extend(f);
    }
    Value::Object(obj).to_string()
}

/// The datagram syslog(3) sends for `msg`: `<PRI>TAG[PID]: MSG`. The timestamp syslog(3) puts
/// after PRI is left out, as RFC 3164 §4.3.1 allows for a relay-less local sender: rsyslog
/// (`SysSock.IgnoreTimestamp`, on by default) and journald stamp local messages on receipt
/// anyway, and local time would need the TZ database in a setuid process.
fn syslog_datagram(tag: &str, msg: &str) -> String {
    format!("<{PRI_AUTHPRIV_INFO}>{tag}[{}]: {msg}", std::process::id())
}

/// `msg` as an RFC 3164 datagram tagged `tag` to the local syslog socket; an error when there
/// is none. Non-blocking: a full receive queue must not stall a launch (syslog(3) would wait).
pub fn send_syslog(socket: &Path, tag: &str, msg: &str) -> std::io::Result<()> {
    let s = std::os::unix::net::UnixDatagram::unbound()?;
    s.set_nonblocking(true)?;
    s.send_to(syslog_datagram(tag, msg).as_bytes(), socket)
        .map(|_| ())
}

/// The APEL-style fields of an end record from the engine's report `usage`.
pub fn apel_fields(usage: &Value, processors: Option<f64>) -> Value {
    let cpu =
        usage["cpu_user_s"].as_f64().unwrap_or(0.0) + usage["cpu_sys_s"].as_f64().unwrap_or(0.0);
    json!({
        "WallDuration": usage["wall_s"].as_f64().map(|w| w.round() as u64),
        "CpuDuration": cpu.round() as u64,
        "MemoryReal": usage["mem_peak_bytes"].as_u64().map(|b| b / 1024),
        "Processors": processors.map(|c| c.ceil() as u64).unwrap_or(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apel_fields_from_usage() {
        let u = json!({"wall_s": 61.6, "cpu_user_s": 10.2, "cpu_sys_s": 1.0, "mem_peak_bytes": 2048_u64 * 1024});
        let a = apel_fields(&u, Some(1.5));
        assert_eq!(
            a,
            json!({"WallDuration": 62, "CpuDuration": 11, "MemoryReal": 2048, "Processors": 2})
        );
    }

    #[test]
    fn appends_lines_and_refuses_a_group_writable_log() {
        let t = tempfile::tempdir().unwrap();
        let conf = AuditConf {
            log: t.path().join("log/audit.jsonl"),
            syslog: false,
            syslog_socket: "/dev/log".into(),
        };
        let a = Audit::new(&conf);
        if nix::unistd::geteuid().is_root() {
            a.record("decision", json!({"dn": "/CN=A"})).unwrap();
            a.record("end", json!({"exit": 0})).unwrap();
            let text = std::fs::read_to_string(&conf.log).unwrap();
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len(), 2);
            assert_eq!(lines[0]["event"], "decision");
            assert_eq!(lines[1]["exit"], 0);
            std::fs::set_permissions(
                &conf.log,
                std::os::unix::fs::PermissionsExt::from_mode(0o620),
            )
            .unwrap();
        }
        assert!(
            a.record("x", json!({})).is_err(),
            "a log others may write is refused (or not root-owned)"
        );
    }

    #[test]
    fn syslog_gets_each_record_as_authpriv_info_even_when_the_log_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let sock = t.path().join("log.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        // A log file nobody may use: the record still reaches syslog first.
        let conf = AuditConf {
            log: t.path().join("missing-dir/\0bad"),
            syslog: true,
            syslog_socket: sock.clone(),
        };
        let _ = Audit::new(&conf).record("decision", json!({"dn": "/CN=A"}));
        let mut buf = [0u8; 4096];
        let n = rx.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        let prefix = format!("<86>pilotbox[{}]: ", std::process::id());
        assert!(msg.starts_with(&prefix), "{msg}");
        let v: Value = serde_json::from_str(&msg[prefix.len()..]).unwrap();
        assert_eq!(v["event"], "decision");
        assert_eq!(v["dn"], "/CN=A");
        // No listener: nothing blocks, nothing fails.
        drop(rx);
        assert!(send_syslog(&sock, "pilotbox", "nobody listens").is_err());
    }
}
