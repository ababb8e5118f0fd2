//! Issue 11 item 1: a payload must not leave a set-user/group-ID file (or file capabilities) in
//! its work dir — the pilot's directory on the host, where `nosuid` and no_new_privs do not
//! protect and any local process running the file would become the pilot (idmapped mount) or
//! the pool account (chown hand-over). The real setuid `pilotbox run`, called by a non-root
//! pilot (see `launcher_support`).

#[macro_use]
mod launcher_support;

use launcher_support::{Env, PILOT, POOL};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Every entry below `dir` (and `dir`), not following symlinks.
fn tree(dir: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
        out.push((p, md));
    }
    out
}

fn assert_no_setid(dir: &Path) {
    for (p, md) in tree(dir) {
        if md.is_file() {
            assert_eq!(
                md.mode() & 0o6000,
                0,
                "{} is set-id: {:o}",
                p.display(),
                md.mode()
            );
            assert!(
                rustix::fs::lgetxattr(&p, "security.capability", &mut [0u8; 64][..]).is_err(),
                "{} has file capabilities",
                p.display()
            );
        }
    }
}

/// The payload tries every way to make a set-id file; each line says `refused` or `MADE`.
const ATTEMPTS: &str = r#"
try() { if "$@" 2>/dev/null; then echo "MADE $*"; else echo "refused $*"; fi; }
echo x > f
try chmod 6755 f
try chmod u+s f
try chmod g+s f
try install -m 4755 f g
try python3 -c 'import os; os.close(os.open("h", os.O_CREAT|os.O_WRONLY, 0o4755))'
try python3 -c 'import os, stat; os.mknod("i", stat.S_IFREG|0o4755)'
try perl -e 'sysopen(my $f, "j", 0101, 04755) or exit 1'
try unshare -Ur chmod 4755 f
echo done
"#;

#[test]
fn a_payload_cannot_make_setid_files_in_an_idmapped_work_dir() {
    require_root!();
    let env = Env::new();
    let w = env.workdir("job");
    if !runtime::engine::idmap_supported(&w) {
        eprintln!("SKIPPED: the test file system cannot idmap (see the chown test)");
        return;
    }
    let (c, out, e) = env.run(
        &["--workdir", w.to_str().unwrap()],
        &["/bin/sh", "-c", ATTEMPTS],
    );
    assert_eq!(c, 0, "{e}");
    assert!(out.ends_with("done\n"), "{out}");
    let made: Vec<&str> = out.lines().filter(|l| l.starts_with("MADE")).collect();
    assert!(
        made.is_empty(),
        "the payload made set-id files: {made:?}\n{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("refused")).count(),
        8,
        "{out}"
    );
    assert_no_setid(&w);
    let end = env.audit_lines().pop().unwrap();
    assert_eq!(end["workdir_handover"], "idmap", "{end}");
}

/// What seccomp cannot see — file capabilities written by "root" of a nested user namespace
/// (the xattr name is in memory; through the idmapped mount they land on the pilot's file), and
/// set-id files already in the work dir — is stripped by the walk after the run.
#[test]
fn what_slips_past_seccomp_is_stripped_after_the_run() {
    require_root!();
    let env = Env::new();
    let w = env.workdir("job");
    let pre = w.join("pre/deep");
    std::fs::create_dir_all(&pre).unwrap();
    std::fs::write(pre.join("suid"), "x").unwrap();
    for p in [w.join("pre"), pre.clone(), pre.join("suid")] {
        std::os::unix::fs::chown(&p, Some(PILOT), Some(PILOT)).unwrap();
    }
    std::fs::set_permissions(pre.join("suid"), std::fs::Permissions::from_mode(0o6755)).unwrap();
    // A v2 capability (CAP_NET_RAW, effective); the kernel stores it as v3 in the nested userns.
    let script = r#"cp /bin/true t && unshare -Ur python3 -c '
import os, struct
os.setxattr("t", "security.capability", struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0))
os.getxattr("t", "security.capability")
' && echo capped"#;
    let (c, out, e) = env.run(
        &["--workdir", w.to_str().unwrap()],
        &["/bin/sh", "-c", script],
    );
    assert_eq!(c, 0, "{e}");
    assert_eq!(out.trim(), "capped", "the payload could set the xattr: {e}");
    assert_no_setid(&w);
    assert_eq!(
        std::fs::metadata(pre.join("suid")).unwrap().mode() & 0o7777,
        0o755
    );
    let end = env.audit_lines().pop().unwrap();
    assert_eq!(end["workdir_cleanup"]["setid_stripped"], 1, "{end}");
    assert_eq!(end["workdir_cleanup"]["caps_removed"], 1, "{end}");
}

/// A ramfs mounted on a work dir (ramfs has no idmapped mounts, so `pilotbox run` falls back to
/// the chown hand-over); unmounted on drop (before `Env` removes its tree).
struct Ramfs(PathBuf);

impl Ramfs {
    fn at(p: &Path) -> Ramfs {
        std::fs::create_dir_all(p).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "ramfs", "-o", "mode=0711", "pilotbox-test"])
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success(), "mount ramfs");
        Ramfs(p.to_path_buf())
    }
}

impl Drop for Ramfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn the_chown_hand_over_back_leaves_nothing_to_the_pool_uid_nor_set_id() {
    require_root!();
    let env = Env::new();
    let fs = Ramfs::at(&env.pilot_dir.join("ramfs"));
    assert!(
        !runtime::engine::idmap_supported(&fs.0),
        "ramfs was expected not to support idmapped mounts"
    );
    let w = fs.0.join("job");
    let elsewhere = fs.0.join("other-run");
    std::fs::create_dir_all(&w).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::chown(&w, Some(PILOT), Some(PILOT)).unwrap();
    std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The payload: a tree 300 levels deep (the old walk stopped at 64), a file linked twice,
    // a set-id attempt; then it waits while "another run's" link to its file appears.
    let script = r#"
d=.; i=0; while [ $i -lt 300 ]; do d=$d/d; i=$((i+1)); done
mkdir -p $d && echo deep > $d/bottom
echo data > a && ln a b && ln a $d/c
chmod 4755 a 2>/dev/null && echo MADE
touch ready
n=0; while [ ! -e go ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done
rm -f go ready
"#;
    let child = env
        .run_as(
            PILOT,
            &[],
            &[
                "--proxy",
                env.proxy.to_str().unwrap(),
                "--workdir",
                w.to_str().unwrap(),
            ],
            &["/bin/sh", "-c", script],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !w.join("ready").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the payload never got ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Another run of the same pool account holds a link to the payload's file.
    std::fs::hard_link(w.join("a"), elsewhere.join("theirs")).unwrap();
    let pool_uid = std::fs::metadata(w.join("a")).unwrap().uid();
    assert!(POOL.contains(&pool_uid), "handed over by chown: {pool_uid}");
    std::fs::write(w.join("go"), "").unwrap();
    let (c, out, e) = launcher_support::result(child.wait_with_output().unwrap());
    assert_eq!(c, 0, "{e}");
    assert!(!out.contains("MADE"), "{out}");

    let all = tree(&w);
    assert!(all.len() > 300, "{} entries", all.len());
    for (p, md) in &all {
        assert_eq!(
            md.uid(),
            PILOT,
            "{} still belongs to uid {}",
            p.display(),
            md.uid()
        );
    }
    assert_no_setid(&w);
    assert_eq!(std::fs::read_to_string(w.join("a")).unwrap(), "data\n");
    assert_eq!(std::fs::read_to_string(w.join("b")).unwrap(), "data\n");
    // The other run's link was not given to the pilot.
    assert_eq!(
        std::fs::metadata(elsewhere.join("theirs")).unwrap().uid(),
        pool_uid
    );
    let end = env.audit_lines().pop().unwrap();
    assert_eq!(end["workdir_handover"], "chown", "{end}");
    assert!(end["cleanup_problems"].is_null(), "{end}");
    assert!(
        end["workdir_cleanup"]["handback"]["replaced"]
            .as_u64()
            .unwrap()
            >= 1,
        "{end}"
    );
}
