//! `pilotbox renew ID --proxy FILE`: replace the proxy inside a running payload's sandbox with a
//! fresh one of the same identity (see `lifecycle::renew` for the sequence and checks).
//!
//! Exit 0 renewed; 120 refused (proxy invalid, DN / primary FQAN differ from the payload's, the
//! caller is no longer one of the policy's pilots, or the identity is banned now — audited); 122 bad id, unknown payload or unusable proxy file; 123 site error.

use super::lifecycle_args::{fail, root_only, StateArgs};
use crate::lifecycle::caller::Caller;
use crate::lifecycle::renew;
use policy::Class;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// The new proxy (owned by you, mode 0600), e.g. from voms-proxy-init.
    #[arg(long)]
    pub proxy: PathBuf,
    /// (root only) Trust directory instead of the policy's [trust] ca_dir.
    #[arg(long, hide = true)]
    pub ca_dir: Option<PathBuf>,
    /// (root only) VOMS directory instead of the policy's [trust] voms_dir.
    #[arg(long, hide = true)]
    pub voms_dir: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// `sanitized` is what `main` learnt before clearing the process state (it chdir'd to `/`):
/// a relative `--proxy` is relative to the caller's cwd.
pub fn run(mut a: Args, sanitized: &crate::launcher::sanitize::Caller) -> i32 {
    a.proxy = sanitized.absolute(&a.proxy);
    let caller = Caller::current();
    let dir = match a.state.resolve("renew", caller) {
        Ok(d) => d,
        Err(c) => return c,
    };
    if let Err(c) = root_only(
        "renew",
        caller,
        "--ca-dir/--voms-dir",
        a.ca_dir.is_some() || a.voms_dir.is_some(),
    ) {
        return c;
    }
    // The compiled policy: `renew` re-runs the pilot and ban checks of the launch.
    let loaded = policy::authz::Policy::load_system();
    let audit = crate::lifecycle::audit_for(loaded.as_ref().ok().map(|p| &p.file));
    let (ca_dir, voms_dir) = match (a.ca_dir, a.voms_dir) {
        (Some(c), Some(v)) => (c, v),
        (c, v) => match &loaded {
            Ok(p) => (
                c.unwrap_or(p.file.trust.ca_dir.clone()),
                v.unwrap_or(p.file.trust.voms_dir.clone()),
            ),
            Err(e) => {
                eprintln!("pilotbox renew: {e}");
                return Class::SiteError.exit_code();
            }
        },
    };
    let opts = crate::launcher::verify_options(ca_dir, voms_dir);
    // Without a loadable policy only root gets here (with both trust dirs named).
    let policy = loaded.as_ref().ok();
    match renew::renew(&dir, &audit, policy, caller, &a.id, &a.proxy, &opts) {
        Ok(not_after) => {
            println!(
                "renewed {}: proxy valid until {}",
                a.id,
                not_after
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            );
            0
        }
        Err(e) => fail("renew", &e),
    }
}
