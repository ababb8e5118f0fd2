//! The gLExec-compatible entry point: `pilotbox` invoked as `glexec` (argv[0] basename, a
//! symlink) behaves as gLExec did, so pilot code written for gLExec (HTCondor's
//! `GLEXEC = /path/to/glexec`, DIRAC's and PanDA's gLExec wrappers) works unchanged.
//!
//! gLExec's interface (gLExec 0.9, `glexec(1)` and its site admin guide):
//! - `glexec CMD [ARGS...]`: no options, no subcommand; the whole argument vector is the payload.
//! - The user's credential: `GLEXEC_CLIENT_CERT` (used for authorization), else
//!   `GLEXEC_SOURCE_PROXY` (the proxy gLExec copies for the payload), else `X509_USER_PROXY`.
//!   The variables are taken from the caller's environment as `sanitize` recorded it before
//!   clearing it ([`Caller::var`]); the file is read as the caller, exactly as `pilotbox run`.
//! - `GLEXEC_TARGET_PROXY`: where gLExec copied the proxy, owned by the target account, and
//!   what the payload's `X509_USER_PROXY` named. pilotbox never writes to a caller-chosen
//!   path: it binds its own copy read-only at that path *inside the sandbox* and announces it
//!   as `X509_USER_PROXY` there (see [`crate::launcher::prepare::Request::target_proxy`]).
//! - Exit status: 201 client error, 202 system error, 203 authorization error, 204 when the
//!   payload itself exited 201–204 (so a caller can tell them apart from gLExec's own), else
//!   the payload's status.
//!
//! The launch is [`super::run::execute`], the same code path as `pilotbox run`; only the request
//! and the exit-status translation live here.

use super::run::{execute, Outcome, Request};
use crate::launcher::sanitize::Caller;
use policy::authz::LimitRequest;
use policy::Class;
use std::ffi::OsString;
use std::path::PathBuf;

/// gLExec's exit statuses (`glexec(1)`).
pub const CLIENT_ERROR: i32 = 201;
pub const SYSTEM_ERROR: i32 = 202;
pub const AUTHZ_ERROR: i32 = 203;
pub const PAYLOAD_IN_RANGE: i32 = 204;

/// The proxy variables in gLExec's order of preference.
pub const PROXY_VARS: [&str; 3] = [
    "GLEXEC_CLIENT_CERT",
    "GLEXEC_SOURCE_PROXY",
    "X509_USER_PROXY",
];
pub const TARGET_VAR: &str = "GLEXEC_TARGET_PROXY";

/// True when `argv0` (as invoked) names the gLExec entry point.
pub fn invoked_as_glexec(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "glexec")
}

/// Translate a launch outcome into gLExec's exit status.
pub fn exit_code(o: Outcome) -> i32 {
    match o {
        Outcome::Failed(Class::Denied) => AUTHZ_ERROR,
        Outcome::Failed(Class::PilotError) => CLIENT_ERROR,
        Outcome::Failed(Class::Temporary | Class::SiteError) => SYSTEM_ERROR,
        Outcome::Payload(s) if (CLIENT_ERROR..=PAYLOAD_IN_RANGE).contains(&s) => PAYLOAD_IN_RANGE,
        Outcome::Payload(s) => s,
    }
}

/// The first non-empty variable of [`PROXY_VARS`] in the caller's environment.
fn source_proxy(caller: &Caller) -> Option<PathBuf> {
    PROXY_VARS
        .iter()
        .find_map(|v| caller.var(v).filter(|s| !s.is_empty()))
        .map(PathBuf::from)
}

/// The request gLExec's interface describes: `args` (argv without argv[0]) is the payload.
/// `Err` is a client error (no command, an argument that is not UTF-8).
pub fn request(args: Vec<OsString>, caller: &Caller) -> Result<Request, String> {
    let cmd = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not valid UTF-8"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if cmd.is_empty() {
        return Err("usage: glexec COMMAND [ARGS...] (the proxy from GLEXEC_CLIENT_CERT, GLEXEC_SOURCE_PROXY or X509_USER_PROXY)".into());
    }
    Ok(Request {
        name: "glexec",
        proxy: source_proxy(caller),
        proxy_hint: "set GLEXEC_CLIENT_CERT, GLEXEC_SOURCE_PROXY or X509_USER_PROXY",
        workdir: None,
        id: None,
        limits: LimitRequest::default(),
        env: vec![],
        report: None,
        target_proxy: caller
            .var(TARGET_VAR)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        cmd,
    })
}

/// The `glexec` entry point: `args` is argv without argv[0]; returns the exit status.
pub fn run(args: Vec<OsString>, caller: &Caller) -> i32 {
    match request(args, caller) {
        Ok(req) => exit_code(execute(req, caller)),
        Err(why) => {
            eprintln!("glexec: pilot_error: {why}");
            CLIENT_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(env: &[(&str, &str)]) -> Caller {
        Caller {
            uid: 1000,
            gid: 1000,
            groups: vec![],
            euid: 0,
            pid: 1,
            cwd: Some("/home/pilot".into()),
            env: env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn argv0_basename_decides() {
        assert!(invoked_as_glexec(Some("glexec".as_ref())));
        assert!(invoked_as_glexec(Some("/usr/sbin/glexec".as_ref())));
        assert!(!invoked_as_glexec(Some("/usr/bin/pilotbox".as_ref())));
        assert!(!invoked_as_glexec(Some("/opt/glexec/pilotbox".as_ref())));
        assert!(!invoked_as_glexec(None));
    }

    #[test]
    fn exit_codes_follow_glexec() {
        assert_eq!(exit_code(Outcome::Failed(Class::Denied)), 203);
        assert_eq!(exit_code(Outcome::Failed(Class::PilotError)), 201);
        assert_eq!(exit_code(Outcome::Failed(Class::Temporary)), 202);
        assert_eq!(exit_code(Outcome::Failed(Class::SiteError)), 202);
        for s in 201..=204 {
            assert_eq!(exit_code(Outcome::Payload(s)), 204);
        }
        for s in [0, 1, 120, 123, 200, 205, 137] {
            assert_eq!(exit_code(Outcome::Payload(s)), s);
        }
    }

    #[test]
    fn proxy_variables_in_glexec_order() {
        let all = [
            ("X509_USER_PROXY", "/x"),
            ("GLEXEC_SOURCE_PROXY", "/s"),
            ("GLEXEC_CLIENT_CERT", "/c"),
        ];
        let r = request(vec!["true".into()], &caller(&all)).unwrap();
        assert_eq!(r.proxy.as_deref(), Some("/c".as_ref()));
        let r = request(vec!["true".into()], &caller(&all[..2])).unwrap();
        assert_eq!(r.proxy.as_deref(), Some("/s".as_ref()));
        let r = request(
            vec!["true".into()],
            &caller(&[("GLEXEC_CLIENT_CERT", ""), all[0]]),
        )
        .unwrap();
        assert_eq!(
            r.proxy.as_deref(),
            Some("/x".as_ref()),
            "an empty variable is unset"
        );
        let r = request(vec!["true".into()], &caller(&[])).unwrap();
        assert!(r.proxy.is_none());
        let r = request(
            vec!["id".into(), "-u".into()],
            &caller(&[(TARGET_VAR, "/tmp/t")]),
        )
        .unwrap();
        assert_eq!(r.target_proxy.as_deref(), Some("/tmp/t".as_ref()));
        assert_eq!(r.cmd, ["id", "-u"]);
        assert!(
            request(vec![], &caller(&all)).is_err(),
            "no command is a client error"
        );
    }
}
