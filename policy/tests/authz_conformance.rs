//! The Argus mapping and DN fixtures of `tests/conformance` (see its README): every
//! `mapping` case and every `dn` case whose operation we implement, with the expected outcomes
//! read from `manifest.json` (nothing is re-typed here).

mod support;

use support::conformance_dir as corpus;

use policy::dn::{normalize_dn, openssl_to_rfc2253, rfc2253_to_openssl, same_dn};
use policy::lease::gridmapdir::{
    encode_dn, lease_name, pool_accounts, pool_prefix, pool_prefixes, GridmapdirStore,
};
use policy::lease::{LeaseError, LeaseKey, LeaseStore, Pool, PoolAccount};
use policy::mapfile::dfpm::{self, DfpmOptions};
use policy::mapfile::{MapTarget, Mapfile};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn cases(pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let text =
        fs::read_to_string(corpus().join("manifest.json")).expect("conformance manifest.json");
    let m: Value = serde_json::from_str(&text).expect("manifest parses");
    m["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| pred(c))
        .cloned()
        .collect()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// `^prefix[0-9]+$` — the only regex shape the manifest uses for logins.
fn regex_match(re: &str, s: &str) -> bool {
    let prefix = re
        .strip_prefix('^')
        .and_then(|r| r.strip_suffix("[0-9]+$"))
        .expect("regex shape ^P[0-9]+$");
    s.strip_prefix(prefix)
        .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
}

fn gridmapdir(case: &Value) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for f in strs(&case["params"]["gridmapdir_files"]) {
        fs::write(d.path().join(f), b"").unwrap();
    }
    d
}

fn pool(dir: &Path, prefix: &str) -> Pool {
    let accounts = pool_accounts(dir, prefix)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, name)| PoolAccount::named(name, 40000 + i as u32))
        .collect();
    Pool {
        name: prefix.into(),
        accounts,
    }
}

fn lease(
    store: &GridmapdirStore,
    dir: &Path,
    prefix: &str,
    dn: &str,
    groups: Vec<String>,
) -> Result<String, LeaseError> {
    let key = LeaseKey {
        dn: dn.into(),
        primary_fqan: None,
        groups,
    };
    store
        .acquire(&pool(dir, prefix), &key, 1_000_000, 86400, &|_| false)
        .map(|(l, _)| l.account)
}

#[test]
fn argus_dn_cases() {
    let cs = cases(|c| c["kind"] == "dn");
    let mut ran = 0;
    for c in &cs {
        let id = c["id"].as_str().unwrap();
        let f = &c["expected_fields"];
        let ci = f["compare"] == "case-insensitive";
        let same = |a: &str, b: &str| {
            if ci {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match f["operation"].as_str().unwrap() {
            "openssl_to_rfc2253" => {
                let got = openssl_to_rfc2253(f["input"].as_str().unwrap()).unwrap();
                assert!(same(&got, f["output"].as_str().unwrap()), "{id}: got {got}");
            }
            "rfc2253_to_openssl" => {
                let got = rfc2253_to_openssl(f["input"].as_str().unwrap()).unwrap();
                assert!(same(&got, f["output"].as_str().unwrap()), "{id}: got {got}");
            }
            "match_mapfile_dn" => {
                let m = same_dn(
                    f["mapfile_dn"].as_str().unwrap(),
                    f["certificate_dn_rfc2253"].as_str().unwrap(),
                );
                assert_eq!(m, f["match"].as_bool().unwrap(), "{id}");
                // The same line read from a grid-mapfile must match too.
                let line = format!("\"{}\" acct\n", f["mapfile_dn"].as_str().unwrap());
                let mf = Mapfile::parse(&line).unwrap();
                assert_eq!(
                    mf.match_dn(f["certificate_dn_rfc2253"].as_str().unwrap())
                        .is_some(),
                    m,
                    "{id} via mapfile"
                );
            }
            "normalize_openssl_dn" => {
                assert_eq!(
                    normalize_dn(f["input"].as_str().unwrap()).unwrap(),
                    f["output"].as_str().unwrap(),
                    "{id}"
                );
            }
            op if op.starts_with("normalize(rfc2253_to_openssl(input))") => {
                let conv = rfc2253_to_openssl(f["input"].as_str().unwrap()).unwrap();
                let eq = normalize_dn(&conv) == normalize_dn(f["openssl"].as_str().unwrap());
                assert_eq!(eq, f["equal"].as_bool().unwrap(), "{id}");
            }
            "openssl_subject_hash" => continue, // the credentials module's job
            op => panic!("{id}: unknown operation {op}"),
        }
        ran += 1;
    }
    assert!(ran >= 14, "ran {ran} dn cases");
}

#[test]
fn argus_account_mapper_cases() {
    let root = corpus();
    let cs = cases(|c| {
        c["kind"] == "mapping" && c["id"].as_str().unwrap().contains("AccountMapperTest")
    });
    assert_eq!(cs.len(), 12);
    for c in &cs {
        let id = c["id"].as_str().unwrap();
        let p = &c["params"];
        let f = &c["expected_fields"];
        let grid = Mapfile::load(&root.join(c["files"]["grid_mapfile"].as_str().unwrap())).unwrap();
        let group =
            Mapfile::load(&root.join(c["files"]["group_mapfile"].as_str().unwrap())).unwrap();
        let opts = DfpmOptions {
            prefer_dn_for_login_name: p["prefer_dn_for_login_name"].as_bool().unwrap(),
            prefer_dn_for_primary_group_name: p["prefer_dn_for_primary_group_name"]
                .as_bool()
                .unwrap(),
            no_primary_group_name_is_error: p["no_primary_group_name_is_error"].as_bool().unwrap(),
        };
        let input = &f["input"];
        // Our verifier hands over the OpenSSL form; check it agrees with the RFC 2253 one.
        let dn = input["subject_dn"].as_str();
        if let (Some(o), Some(r)) = (dn, input["subject_dn_rfc2253"].as_str()) {
            assert_eq!(rfc2253_to_openssl(r).unwrap(), o, "{id}");
        }
        let primary = input["primary_fqan"].as_str();
        let secondary = strs(&input["secondary_fqans"]);
        let r = dfpm::map(&grid, &group, dn, primary, &secondary, opts);
        if c["expected"] == "invalid" {
            assert!(
                r.is_err(),
                "{id}: expected failure ({}), got {r:?}",
                c["reason_if_invalid"]
            );
            continue;
        }
        let m = r.unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(
            m.primary_group.as_deref(),
            f["primary_group"].as_str(),
            "{id} primary group"
        );
        for k in ["secondary_groups_exact", "secondary_groups_exact_derived"] {
            if !f[k].is_null() {
                assert_eq!(m.secondary_groups, strs(&f[k]), "{id} {k}");
            }
        }
        for g in strs(&f["secondary_groups_include"]) {
            assert!(m.secondary_groups.contains(&g), "{id}: missing {g}");
        }
        let login = if f["login_is_pool_account"].as_bool().unwrap() {
            let MapTarget::Pool(prefix) = &m.login else {
                panic!("{id}: expected a pool, got {:?}", m.login)
            };
            let dir = gridmapdir(c);
            let store = GridmapdirStore::open(dir.path(), 10).unwrap();
            let mut groups: Vec<String> = m.primary_group.iter().cloned().collect();
            if p["use_secondary_group_names_for_lease"].as_bool().unwrap() {
                groups.extend(m.secondary_groups.iter().cloned());
            }
            let acct = lease(&store, dir.path(), prefix, dn.unwrap(), groups).unwrap();
            if let Some(lid) = f["lease_identifier_derived"].as_str() {
                let lp = dir.path().join(lid);
                let ino = fs::metadata(&lp)
                    .unwrap_or_else(|e| panic!("{id}: lease file {lid}: {e}"))
                    .ino();
                assert_eq!(
                    ino,
                    fs::metadata(dir.path().join(&acct)).unwrap().ino(),
                    "{id}: hard link"
                );
            }
            if let Some(sfx) = f["lease_identifier_suffix_asserted"].as_str() {
                let names: Vec<String> = fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                assert!(
                    names.iter().any(|n| n.starts_with('%') && n.ends_with(sfx)),
                    "{id}: {names:?}"
                );
            }
            if !f["login_one_of"].is_null() {
                assert!(strs(&f["login_one_of"]).contains(&acct), "{id}: {acct}");
            }
            acct
        } else {
            match &m.login {
                MapTarget::Name(n) => n.clone(),
                other => panic!("{id}: expected a fixed login, got {other:?}"),
            }
        };
        match (f["login"].as_str(), f["login_regex"].as_str()) {
            (Some(l), _) => assert_eq!(login, l, "{id}"),
            (None, Some(re)) => assert!(regex_match(re, &login), "{id}: {login} !~ {re}"),
            _ => panic!("{id}: no login expectation"),
        }
    }
}

#[test]
fn argus_gridmapdir_pool_cases() {
    let cs = cases(|c| c["kind"] == "mapping" && c["id"].as_str().unwrap().contains("GridMapDir"));
    assert_eq!(cs.len(), 12);
    for c in &cs {
        let id = c["id"].as_str().unwrap();
        let f = &c["expected_fields"];
        let dir = gridmapdir(c);
        let d = dir.path();
        let store = GridmapdirStore::open(d, 30).unwrap();
        let prefix = f["prefix"].as_str().unwrap_or("");
        let to_openssl = |r: &Value| rfc2253_to_openssl(r.as_str().unwrap()).unwrap();
        let groups_of = |f: &Value, with_secondary: bool| -> Vec<String> {
            let mut g: Vec<String> = f["primary_group"]
                .as_str()
                .map(String::from)
                .into_iter()
                .collect();
            if with_secondary {
                g.extend(strs(&f["secondary_groups"]));
            }
            g
        };
        let use_sec = c["params"]["use_secondary_group_names_for_lease"]
            .as_bool()
            .unwrap();
        match f["operation"].as_str().unwrap() {
            "list pool accounts for prefix" => {
                let accts = pool_accounts(d, prefix).unwrap();
                assert_eq!(accts, strs(&f["accounts_exact_derived"]), "{id}");
                assert!(accts
                    .iter()
                    .all(|a| regex_match(f["all_match_regex"].as_str().unwrap(), a)));
            }
            "list pool prefixes" => {
                let p = pool_prefixes(d).unwrap();
                assert_eq!(p, strs(&f["prefixes_exact_derived"]), "{id}");
                let allowed = strs(&f["prefixes_subset_of"]);
                assert!(p.iter().all(|x| allowed.contains(x)), "{id}");
                for n in strs(&f["not_pool_accounts"]) {
                    assert_eq!(pool_prefix(&n), None, "{id}: {n}");
                }
            }
            "count pool accounts" => {
                let n = fs::read_dir(d)
                    .unwrap()
                    .filter(|e| {
                        pool_prefix(e.as_ref().unwrap().file_name().to_str().unwrap()).is_some()
                    })
                    .count();
                assert_eq!(n as u64, f["count"].as_u64().unwrap(), "{id}");
            }
            "lease" => {
                let dn = to_openssl(&f["subject_dn_rfc2253"]);
                let acct = lease(&store, d, prefix, &dn, groups_of(f, use_sec)).unwrap();
                assert!(
                    regex_match(f["login_regex"].as_str().unwrap(), &acct),
                    "{id}: {acct}"
                );
                let lid = f["lease_identifier_derived"].as_str().unwrap();
                assert_eq!(
                    fs::metadata(d.join(lid)).unwrap().ino(),
                    fs::metadata(d.join(&acct)).unwrap().ino(),
                    "{id}"
                );
            }
            "lease sequence" => {
                let mut seen = std::collections::HashMap::new();
                for s in f["subjects_rfc2253"].as_array().unwrap() {
                    let dn = to_openssl(s);
                    let acct = lease(&store, d, prefix, &dn, groups_of(f, use_sec)).unwrap();
                    assert!(
                        regex_match(f["each_login_regex"].as_str().unwrap(), &acct),
                        "{id}: {acct}"
                    );
                    assert_eq!(
                        seen.entry(dn).or_insert(acct.clone()),
                        &acct,
                        "{id}: sticky"
                    );
                }
            }
            "sticky lease" => {
                for s in f["subjects_rfc2253"].as_array().unwrap() {
                    let dn = to_openssl(s);
                    let a = lease(&store, d, prefix, &dn, groups_of(f, use_sec)).unwrap();
                    let b = lease(&store, d, prefix, &dn, groups_of(f, use_sec)).unwrap();
                    assert_eq!(
                        a == b,
                        f["second_mapping_returns_same_account"].as_bool().unwrap(),
                        "{id}"
                    );
                }
            }
            "pool exhaustion" => {
                assert_eq!(
                    pool(d, prefix).accounts.len() as u64,
                    f["pool_size"].as_u64().unwrap()
                );
                let subjects: Vec<String> = f["subjects_rfc2253"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(to_openssl)
                    .collect();
                let first = lease(&store, d, prefix, &subjects[0], vec![]).unwrap();
                for s in &subjects[1..] {
                    lease(&store, d, prefix, s, vec![]).unwrap();
                }
                let fourth = lease(
                    &store,
                    d,
                    prefix,
                    &to_openssl(&f["fourth_subject_rfc2253"]),
                    vec![],
                );
                assert_eq!(
                    fourth.is_ok(),
                    f["fourth_subject_gets_account"].as_bool().unwrap(),
                    "{id}"
                );
                assert!(
                    matches!(fourth, Err(LeaseError::Exhausted { .. })),
                    "{id}: {fourth:?}"
                );
                let again = lease(&store, d, prefix, &subjects[0], vec![]).unwrap();
                assert_eq!(
                    again == first,
                    f["first_subject_still_gets_same_account"]
                        .as_bool()
                        .unwrap(),
                    "{id}"
                );
            }
            "lease identifier" => {
                let dn = to_openssl(&f["subject_dn_rfc2253"]);
                if let Some(o) = f["subject_dn"].as_str() {
                    assert_eq!(dn, o, "{id}");
                }
                let name = lease_name(&dn, &groups_of(f, use_sec));
                assert_eq!(
                    name,
                    f["lease_identifier_derived"].as_str().unwrap(),
                    "{id}"
                );
                for s in strs(&f["contains"]) {
                    assert!(name.contains(&s), "{id}: {s}");
                }
                for s in strs(&f["does_not_contain"]) {
                    assert!(!name.contains(&s), "{id}: {s}");
                }
            }
            "encode DN" => {
                let dn = to_openssl(&f["subject_dn_rfc2253"]);
                let enc = encode_dn(&dn);
                assert_eq!(enc, f["encoded_derived"].as_str().unwrap(), "{id}");
                for s in strs(&f["encoded_must_not_contain"]) {
                    assert!(!enc.contains(&s), "{id}: {s}");
                }
            }
            "concurrent lease, one subject" => {
                let dn = to_openssl(&f["subject_dn_rfc2253"]);
                let n = f["threads"].as_u64().unwrap() as usize;
                let got = run_threads(d, prefix, vec![dn; n]);
                assert!(got.iter().all(|a| a == &got[0]), "{id}: {got:?}");
            }
            "concurrent lease, many subjects" => {
                let subjects: Vec<String> = f["subjects_rfc2253"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(to_openssl)
                    .collect();
                let want = f["distinct_accounts_per_iteration"].as_u64().unwrap() as usize;
                let mut first: Option<Vec<String>> = None;
                for _ in 0..f["iterations"].as_u64().unwrap() {
                    let got = run_threads(d, prefix, subjects.clone());
                    let distinct: std::collections::HashSet<_> = got.iter().collect();
                    assert_eq!(distinct.len(), want, "{id}");
                    assert_eq!(
                        first.get_or_insert(got.clone()),
                        &got,
                        "{id}: sticky across iterations"
                    );
                }
            }
            op => panic!("{id}: unknown operation {op}"),
        }
        assert!(
            store.check().unwrap().is_empty(),
            "{id}: {:?}",
            store.check()
        );
    }
}

/// One thread per subject, each with its own store handle (own lock file description).
fn run_threads(dir: &Path, prefix: &str, subjects: Vec<String>) -> Vec<String> {
    let hs: Vec<_> = subjects
        .into_iter()
        .map(|dn| {
            let (dir, prefix) = (dir.to_path_buf(), prefix.to_string());
            std::thread::spawn(move || {
                let store = GridmapdirStore::open(&dir, 60).unwrap();
                lease(&store, &dir, &prefix, &dn, vec![]).unwrap()
            })
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}
