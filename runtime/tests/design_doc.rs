//! docs/design.md stays true: every test its threat model names (`suite::test_name`, or
//! `suite::*` for a whole suite) exists, so a renamed or deleted test cannot leave the document
//! claiming a defence nothing checks any more. No privilege needed.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

/// Backticked `a::b[::c]` names of lower-case identifiers in `text`.
fn test_names(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.contains("::")
                && s.split("::").all(|p| {
                    p == "*"
                        || (!p.is_empty()
                            && p.bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
                })
        })
        .map(String::from)
        .collect()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Where `name` is defined: an integration suite `runtime|policy/tests/<suite>.rs`, or a unit
/// test module in a source file named `<suite>.rs`.
fn find(name: &str, sources: &[PathBuf]) -> Result<PathBuf, String> {
    let parts: Vec<&str> = name.split("::").collect();
    let (suite, func) = (parts[0], *parts.last().unwrap());
    for krate in ["runtime", "policy"] {
        let f = repo().join(krate).join("tests").join(format!("{suite}.rs"));
        if f.exists() {
            let text = std::fs::read_to_string(&f).unwrap();
            if func == "*" || text.contains(&format!("fn {func}(")) {
                return Ok(f);
            }
            return Err(format!("{name}: no fn {func} in {}", f.display()));
        }
    }
    for f in sources {
        if f.file_stem().is_some_and(|s| s == suite) {
            let text = std::fs::read_to_string(f).unwrap();
            if text.contains(&format!("fn {func}(")) {
                return Ok(f.clone());
            }
        }
    }
    Err(format!(
        "{name}: no suite or source file {suite}.rs defines it"
    ))
}

#[test]
fn every_test_the_threat_model_names_exists() {
    let doc = std::fs::read_to_string(repo().join("docs/design.md")).unwrap();
    let model = &doc[doc.find("## Threat model").expect("a threat model section")..];
    let names = test_names(model);
    assert!(names.len() >= 40, "too few test names found: {names:?}");
    let mut sources = vec![];
    for krate in ["runtime/src", "policy/src"] {
        rust_files(&repo().join(krate), &mut sources);
    }
    let missing: Vec<String> = names
        .iter()
        .filter_map(|n| find(n, &sources).err())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/design.md names tests that do not exist: {missing:#?}"
    );
}

#[test]
fn the_name_parser_sees_names_and_nothing_else() {
    let names = test_names("x `a_b::c1` y `engine_escape::*` `[network] mode` `A::B` `s::t::u`");
    assert_eq!(names, ["a_b::c1", "engine_escape::*", "s::t::u"]);
    let sources = vec![];
    assert!(find("launcher_adversarial::no_such_test", &sources).is_err());
    assert!(find(
        "launcher_adversarial::inherited_fds_do_not_reach_the_payload",
        &sources
    )
    .is_ok());
}
