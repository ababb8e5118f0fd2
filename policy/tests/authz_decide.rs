//! `decide()` end to end on real policy text and a real SQLite store: bans (inline, files,
//! missing files, invalid ACs), rule order, fixed and pool mappings, recycling, limits, env.

mod support;

use policy::authz::{check_pilot, decide, Decision, LimitRequest, Policy, Request};
use policy::class::{Class, Denial};
use policy::config::parse;
use policy::identity::Identity;
use policy::lease::sqlite::SqliteStore;
use policy::lease::Acquired;
use std::path::Path;
use support::identity;

const ALICE: &str = "/DC=org/DC=example/O=Users/CN=Alice Tester";
const BOB: &str = "/DC=org/DC=example/O=Users/CN=Bob";
const CA: &str = "/DC=org/DC=example/CN=Example CA";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn policy(&self, extra: &str) -> Policy {
        let text = format!(
            "[pilots]\nusers = [\"root\"]\n\
             [[pool]]\nname = \"testvo\"\nuids = \"30001-30002\"\ngid = 30000\n\
             [[pool]]\nname = \"pilots\"\nuids = \"30101-30101\"\ngid = 30100\ngroups = [30999]\n\
             [[map]]\nfqan = \"/testvo/Role=pilot\"\npool = \"pilots\"\n\
             [[map]]\nfqan = \"/testvo/*\"\npool = \"testvo\"\n\
             [[map]]\ndn = \"CN=Alice Tester,O=Users,DC=example,DC=org\"\naccount = 31000\ngid = 31000\n\
             [lease]\nstore = \"{}\"\nidle = \"1h\"\n{extra}",
            self.dir.path().join("leases.sqlite").display()
        );
        Policy::compile(
            parse(&text, Path::new("test.toml")).unwrap(),
            Path::new("test.toml"),
        )
        .unwrap()
    }
    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.path().join("leases.sqlite"), 10).unwrap()
    }
    fn decide_at(
        &self,
        p: &Policy,
        id: &Identity,
        now: u64,
        busy: bool,
    ) -> Result<Decision, Denial> {
        decide(p, id, &Request::default(), &self.store(), &|_| busy, now)
    }
    fn decide(&self, p: &Policy, id: &Identity) -> Result<Decision, Denial> {
        self.decide_at(p, id, 1_000_000, false)
    }
}

fn denied(r: Result<Decision, Denial>, class: Class, needle: &str) {
    let d = r.expect_err("expected a denial");
    assert_eq!(d.class, class, "{d}");
    assert!(d.reason.contains(needle), "{d:?} should mention {needle:?}");
}

#[test]
fn fqan_rules_first_in_ac_order_then_dn() {
    let e = Env::new();
    let p = e.policy("");
    let d = e
        .decide(
            &p,
            &identity(ALICE, &["/testvo/Role=NULL/Capability=NULL"], true),
        )
        .unwrap();
    assert_eq!(d.pool.as_deref(), Some("testvo"));
    assert_eq!((d.uid, d.gid), (30001, 30000));
    assert_eq!(d.lease, Some(Acquired::New));
    assert!(
        d.reasons.iter().any(|r| r.contains("[[map]] #2")),
        "{:?}",
        d.reasons
    );
    // Role=pilot is the first FQAN: the pilots pool, with its supplementary group.
    let d = e
        .decide(&p, &identity(BOB, &["/testvo/Role=pilot", "/testvo"], true))
        .unwrap();
    assert_eq!(
        (d.uid, d.gid, d.groups.clone()),
        (30101, 30100, vec![30999])
    );
    // Invalid AC: FQANs ignored for mapping; Alice falls through to her DN rule.
    let d = e.decide(&p, &identity(ALICE, &["/testvo"], false)).unwrap();
    assert_eq!((d.uid, d.gid, d.pool.clone()), (31000, 31000, None));
    assert!(
        d.reasons.iter().any(|r| r.contains("VOMS AC not valid")),
        "{:?}",
        d.reasons
    );
    // Bob with an invalid AC matches nothing.
    denied(
        e.decide(&p, &identity(BOB, &["/testvo"], false)),
        Class::Denied,
        "no mapping rule",
    );
}

#[test]
fn dn_first_order_is_configurable() {
    let e = Env::new();
    let p = e.policy("[mapping]\norder = \"dn-first\"\n");
    let d = e.decide(&p, &identity(ALICE, &["/testvo"], true)).unwrap();
    assert_eq!(d.uid, 31000);
    assert_eq!(d.pool, None);
}

#[test]
fn sticky_leases_exhaustion_and_recycling() {
    let e = Env::new();
    let p = e.policy("");
    let fq = ["/testvo"];
    let a = e
        .decide_at(&p, &identity("/CN=u1", &fq, true), 1000, false)
        .unwrap();
    let b = e
        .decide_at(&p, &identity("/CN=u2", &fq, true), 1000, false)
        .unwrap();
    assert_ne!(a.uid, b.uid);
    assert_eq!(
        e.decide_at(&p, &identity("CN=u1", &fq, true), 1500, false)
            .unwrap()
            .uid,
        a.uid,
        "RFC 2253 spelling, same lease"
    );
    // Pool of two is full; u2 idle since 1000, u1 since 1500; idle time 1h.
    denied(
        e.decide_at(&p, &identity("/CN=u3", &fq, true), 1000 + 3599, false),
        Class::Temporary,
        "exhausted",
    );
    denied(
        e.decide_at(&p, &identity("/CN=u3", &fq, true), 1000 + 3600, true),
        Class::Temporary,
        "exhausted",
    );
    let c = e
        .decide_at(&p, &identity("/CN=u3", &fq, true), 1000 + 3600, false)
        .unwrap();
    assert_eq!(
        (c.uid, c.lease),
        (b.uid, Some(Acquired::Recycled)),
        "least recently used idle lease"
    );
    assert_eq!(
        e.decide_at(&p, &identity("/CN=u1", &fq, true), 4700, false)
            .unwrap()
            .uid,
        a.uid
    );
    // Key = DN + primary FQAN: another primary FQAN is another identity.
    denied(
        e.decide_at(&p, &identity("/CN=u3", &["/testvo/sub"], true), 4700, false),
        Class::Temporary,
        "exhausted",
    );
}

#[test]
fn bans_on_dn_ca_and_claimed_fqans() {
    let e = Env::new();
    let p = e.policy(&format!("[ban]\ndns = [\"CN=Bob,O=Users,DC=example,DC=org\"]\ncas = [\"{CA}x\"]\nfqans = [\"/testvo/bad/*/Role=*\"]\n"));
    denied(
        e.decide(&p, &identity(BOB, &["/testvo"], true)),
        Class::Denied,
        "subject DN is banned",
    );
    denied(
        e.decide(
            &p,
            &identity(ALICE, &["/testvo", "/testvo/bad/x/Role=y"], true),
        ),
        Class::Denied,
        "FQAN",
    );
    // An invalid AC cannot be used for mapping, but its claimed FQANs are still banned.
    denied(
        e.decide(&p, &identity(ALICE, &["/testvo/bad"], false)),
        Class::Denied,
        "unverified AC",
    );
    e.decide(&p, &identity(ALICE, &["/testvo"], true)).unwrap();
    let p = e.policy(&format!(
        "[ban]\ncas = [\"{}\"]\n",
        "CN=example ca, DC=example, DC=org"
    ));
    denied(
        e.decide(&p, &identity(ALICE, &["/testvo"], true)),
        Class::Denied,
        "issuing CA is banned",
    );
}

#[test]
fn ban_files_and_missing_ban_files() {
    let e = Env::new();
    let f = e.dir.path().join("banned.db");
    std::fs::write(&f, format!("# LCAS style\n\"{BOB}\"\n/testvo/evil\n")).unwrap();
    let p = e.policy(&format!("[ban]\nfiles = [\"{}\"]\n", f.display()));
    denied(
        e.decide(&p, &identity(BOB, &[], false)),
        Class::Denied,
        "banned.db:2",
    );
    denied(
        e.decide(&p, &identity(ALICE, &["/testvo/evil"], false)),
        Class::Denied,
        "banned.db:3",
    );
    e.decide(&p, &identity(ALICE, &["/testvo"], true)).unwrap();
    // Missing, unreadable (a directory) or malformed: everyone is banned, as a site error.
    let bad = e.dir.path().join("bad.db");
    std::fs::write(&bad, "\"/CN=unterminated\n").unwrap();
    for path in [
        e.dir.path().join("missing.db"),
        e.dir.path().to_path_buf(),
        bad,
    ] {
        let p = e.policy(&format!("[ban]\nfiles = [\"{}\"]\n", path.display()));
        assert!(!p.bans.broken.is_empty());
        denied(
            e.decide(&p, &identity(ALICE, &["/testvo"], true)),
            Class::SiteError,
            "everyone is banned",
        );
    }
}

#[test]
fn limits_env_and_fixed_account_details() {
    let e = Env::new();
    let p = e.policy(
        "[limits.default]\nmemory = \"2G\"\npids = 100\n[[limits.cap]]\nvo = \"testvo\"\nmemory = \"4G\"\n\
         [env]\nallow = [\"LANG\", \"PANDA_*\"]\n",
    );
    let req = Request {
        limits: LimitRequest {
            memory: Some(8 << 30),
            pids: Some(50),
            ..Default::default()
        },
        env: vec![
            ("LANG".into(), "C".into()),
            ("PANDA_ID".into(), "1".into()),
            ("LD_PRELOAD".into(), "x".into()),
        ],
    };
    let d = decide(
        &p,
        &identity(ALICE, &["/testvo"], true),
        &req,
        &e.store(),
        &|_| false,
        1,
    )
    .unwrap();
    assert_eq!(d.limits.memory_bytes, Some(4 << 30));
    assert_eq!(d.limits.pids, Some(50));
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("memory") && r.contains("capped")),
        "{:?}",
        d.reasons
    );
    assert_eq!(
        d.env,
        vec![("LANG".into(), "C".into()), ("PANDA_ID".into(), "1".into())]
    );
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("dropped") && r.contains("LD_PRELOAD")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn root_and_groupless_accounts_are_refused() {
    let e = Env::new();
    let p = e.policy(
        "[[map]]\ndn = \"/CN=r\"\naccount = \"root\"\n[[map]]\ndn = \"/CN=g\"\naccount = 31001\n",
    );
    denied(
        e.decide(&p, &identity("/CN=r", &[], false)),
        Class::SiteError,
        "uid 0",
    );
    denied(
        e.decide(&p, &identity("/CN=g", &[], false)),
        Class::SiteError,
        "no primary group",
    );
}

#[test]
fn pilots_and_invalid_policies() {
    let e = Env::new();
    let p = e.policy("");
    assert!(check_pilot(&p, 0, &[]).is_ok());
    assert_eq!(
        check_pilot(&p, 4242, &[4242]).unwrap_err().class,
        Class::Denied
    );
    let bad = [
        "[[map]]\nfqan = \"/x\"\ndn = \"/CN=x\"\npool = \"testvo\"\n",
        "[[map]]\nfqan = \"/x\"\npool = \"nosuch\"\n",
        "[[map]]\nfqan = \"x\"\npool = \"testvo\"\n",
        "[[pool]]\nname = \"dup\"\nuids = \"30001-30001\"\n",
        "[ban]\ndns = [\"garbage\"]\n",
        "[env]\nallow = [\"A*B\"]\n",
        "[[map]]\ndn = \"/CN=x\"\naccount = 30002\n",
    ];
    for extra in bad {
        let text = format!("[[pool]]\nname = \"testvo\"\nuids = \"30001-30002\"\ngid = 1\n{extra}");
        let r = Policy::compile(parse(&text, Path::new("t")).unwrap(), Path::new("t"));
        assert!(r.is_err(), "{extra}");
    }
}

#[test]
fn unreachable_rules_are_reported() {
    let e = Env::new();
    let p = e.policy("[[map]]\nfqan = \"/testvo/sub\"\npool = \"testvo\"\n");
    let u = p.unreachable_rules();
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].contains("#4") && u[0].contains("#2"), "{u:?}");
}

#[test]
fn a_read_only_decision_takes_no_lease() {
    use policy::lease::preview::PreviewStore;
    let e = Env::new();
    let p = e.policy("");
    let id = identity(BOB, &["/testvo/Role=NULL/Capability=NULL"], true);
    let d = decide(
        &p,
        &id,
        &Request::default(),
        &PreviewStore,
        &|_| true,
        1_000_000,
    )
    .unwrap();
    assert_eq!(d.lease, Some(Acquired::NotTaken));
    assert_eq!((d.uid, d.gid), (30001, 30000));
    assert!(
        d.reasons.iter().any(|r| r.contains("no lease taken")),
        "{:?}",
        d.reasons
    );
    // Bans and rules still apply in full.
    let p = e.policy("[ban]\ndns = [\"/DC=org/DC=example/O=Users/CN=Bob\"]\n");
    denied(
        decide(&p, &id, &Request::default(), &PreviewStore, &|_| false, 1),
        Class::Denied,
        "Bob",
    );
    assert!(
        !e.dir.path().join("leases.sqlite").exists(),
        "the configured store was never opened"
    );
}

/// One `pilotbox run` compiles the policy and decides once. With a 60-uid pool the former
/// compile-time expansion looked up all 60 names (one `getpwuid_r` each); now compiling looks
/// up none and the decision only the account it compares or hands out.
#[test]
fn a_launch_looks_up_only_the_pool_name_it_uses() {
    use policy::authz::accounts::nss_account_name_lookups;
    let e = Env::new();
    // 65534 is `nobody`: the first account has a passwd name, the other 59 uids have none.
    let text = format!(
        "[[pool]]\nname = \"testvo\"\nuids = \"65534-65593\"\ngid = 30000\n\
         [[map]]\nfqan = \"/testvo/*\"\npool = \"testvo\"\n\
         [lease]\nstore = \"{}\"\nidle = \"1h\"\n",
        e.dir.path().join("leases.sqlite").display()
    );
    let launch = |dn: &str| {
        let start = nss_account_name_lookups();
        let p = Policy::compile(parse(&text, Path::new("t")).unwrap(), Path::new("t")).unwrap();
        let compiled = nss_account_name_lookups() - start;
        let d = e.decide(&p, &identity(dn, &["/testvo"], true)).unwrap();
        let lease = (d.account, d.uid, d.lease.unwrap());
        (lease, compiled, nss_account_name_lookups() - start)
    };
    let carol = "/DC=org/DC=example/O=Users/CN=Carol";
    let want = [
        (ALICE, "nobody", 65534, Acquired::New),
        (BOB, "#65535", 65535, Acquired::New),
        (carol, "#65536", 65536, Acquired::New),
        (ALICE, "nobody", 65534, Acquired::Existing),
        (carol, "#65536", 65536, Acquired::Existing),
    ];
    for (dn, account, uid, how) in want {
        assert_eq!(
            launch(dn),
            ((account.to_string(), uid, how), 0, 1),
            "{dn}: (lease, look-ups compiling, look-ups in all)"
        );
    }
}
