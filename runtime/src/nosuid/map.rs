//! `pilotbox-nosuid map`: the read-only decision (`would map to`) for the caller's proxy under the
//! site policy — what `run` logs — in the same output formats as `pilotbox map`
//! (`crate::cli::map`), with `"identity_switch": false`. No lease store is touched.

use super::NAME;
use crate::cli::map::{decision_json, denial_json, explain, Args};
use crate::launcher::sanitize::Caller;
use policy::authz::{decide, Policy, Request};
use policy::lease::preview::PreviewStore;
use policy::lease::unix_now;
use policy::Denial;

fn fail(d: Denial, json_flag: bool) -> i32 {
    if json_flag {
        let mut v = denial_json(&d);
        v["identity_switch"] = false.into();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    eprintln!("{NAME} map: {d}");
    d.class.exit_code()
}

pub fn run(args: Args, caller: &Caller) -> i32 {
    let policy = match Policy::load_system() {
        Ok(p) => p,
        Err(e) => return fail(e.into(), args.json),
    };
    let path = caller.absolute(&args.proxy);
    let bytes = match super::verify::read_proxy(caller.uid, &path) {
        Ok(b) => b,
        Err(d) => return fail(d, args.json),
    };
    let opts = crate::launcher::verify_options(
        policy.file.trust.ca_dir.clone(),
        policy.file.trust.voms_dir.clone(),
    );
    let identity = match super::verify::verify(&bytes, &opts) {
        Ok(i) => i,
        Err(d) => return fail(d, args.json),
    };
    match decide(
        &policy,
        &identity,
        &Request::default(),
        &PreviewStore,
        &|_| false,
        unix_now(),
    ) {
        Ok(d) => {
            if args.json {
                let mut v = decision_json(&d);
                v["identity_switch"] = false.into();
                v["ran_as_uid"] = caller.uid.into();
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else if args.explain {
                print!("{}", explain(&d));
                println!(
                    "{NAME}: no identity switch: the payload would run as uid {}",
                    caller.uid
                );
            } else {
                println!("{} {} {}", d.account, d.uid, d.gid);
            }
            0
        }
        Err(d) => fail(d, args.json),
    }
}
