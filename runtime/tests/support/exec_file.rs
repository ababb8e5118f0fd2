//! Writing an executable a test then runs, without "Text file busy".
//!
//! The kernel refuses to exec a file some process holds open for writing (ETXTBSY). Tests run
//! as threads of one process: when that process writes the file itself (`std::fs::copy`), a
//! fork by another test thread in that moment inherits the write descriptor and keeps it until
//! the child's own exec — and an exec of our file in that window fails (rust-lang/rust#114554;
//! CI saw it once). `install(1)` writes in a process of its own, which nothing forks from, and
//! has closed the file when it exits.

use std::path::Path;
use std::process::Command;

/// Copy `src` to `dst` with `mode` (setuid bits included), root-owned when we are root.
/// `dst` is replaced by a rename of a sibling temporary, so a concurrent reader of the old
/// file (another test binary running it) never sees a half-written one.
pub fn install_executable(src: &Path, dst: &Path, mode: u32) {
    let tmp = dst.with_file_name(format!(
        ".{}.new-{}",
        dst.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let mut c = Command::new("install");
    if nix::unistd::geteuid().is_root() {
        c.args(["-o", "0", "-g", "0"]);
    }
    let st = c
        .arg("-m")
        .arg(format!("{mode:o}"))
        .arg(src)
        .arg(&tmp)
        .status()
        .expect("run install(1)");
    assert!(
        st.success(),
        "install {} {}: {st}",
        src.display(),
        tmp.display()
    );
    std::fs::rename(&tmp, dst).unwrap();
}
