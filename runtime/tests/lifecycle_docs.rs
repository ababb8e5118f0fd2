//! docs/pilot-guide.md stays true: every `pilotbox <cmd> ...` line in its code blocks names an
//! existing subcommand, and each `--flag` it uses appears in that subcommand's `--help`.
use std::process::Command;

const PILOTBOX: &str = env!("CARGO_BIN_EXE_pilotbox");

#[test]
fn every_documented_command_and_flag_exists() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/pilot-guide.md"
    ))
    .unwrap();
    let mut checked = 0;
    for line in guide.lines().filter(|l| l.starts_with("pilotbox ")) {
        let code = line.split('#').next().unwrap();
        let words: Vec<&str> = code.split_whitespace().collect();
        let sub = words[1];
        let help = Command::new(PILOTBOX)
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(
            help.status.success(),
            "`pilotbox {sub}` is documented but does not exist"
        );
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(flag),
                "{line}: {flag} not in `pilotbox {sub} --help`"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 8,
        "the guide's examples were found ({checked} flags)"
    );
}
