//! The compiled-filter cache: hits skip libseccomp, damage is recompiled, unsafe places refused.
//! Runs as root in CI (chown to another uid needs it; that test skips otherwise).

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use runtime::seccomp::{
    compile, compile_cached, compile_cached_with_outcome, default_profile, CacheOutcome,
    ProfileOptions, SeccompError,
};

const PROBE: &str = env!("CARGO_BIN_EXE_pilotbox-seccomp-probe");

fn profile() -> oci_spec::runtime::LinuxSeccomp {
    default_profile(&ProfileOptions::default())
}

/// A fresh 0700 cache directory (removed when the guard drops).
fn cache_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn only_bpf_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bpf"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

#[test]
fn second_call_reads_the_file_instead_of_compiling() {
    let dir = cache_dir();
    let (first, outcome) = compile_cached_with_outcome(&profile(), Some(dir.path())).unwrap();
    assert_eq!(outcome, CacheOutcome::Miss { stored: true });
    let file = only_bpf_file(dir.path());
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(file.file_name().unwrap().len(), 64 + 4, "sha256 hex + .bpf");
    // No temporary files left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    let (second, outcome) = compile_cached_with_outcome(&profile(), Some(dir.path())).unwrap();
    assert_eq!(outcome, CacheOutcome::Hit);
    assert_eq!(second, first);
    assert_eq!(
        second,
        compile(&profile()).unwrap(),
        "cached program differs from a fresh compile"
    );
}

#[test]
fn different_profiles_get_different_files() {
    let dir = cache_dir();
    compile_cached(&profile(), Some(dir.path())).unwrap();
    let strict = default_profile(&ProfileOptions {
        allow_nested_userns: false,
        ..Default::default()
    });
    let (_, outcome) = compile_cached_with_outcome(&strict, Some(dir.path())).unwrap();
    assert_eq!(outcome, CacheOutcome::Miss { stored: true });
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn damaged_cache_files_are_recompiled() {
    let dir = cache_dir();
    let good = compile_cached(&profile(), Some(dir.path())).unwrap();
    let file = only_bpf_file(dir.path());
    let bytes = fs::read(&file).unwrap();

    // Truncated (e.g. disk full during a foreign write), short, and bit-flipped files.
    for (what, damaged) in [
        ("truncated", bytes[..bytes.len() - 8].to_vec()),
        ("short", bytes[..10].to_vec()),
        ("empty", Vec::new()),
        ("flipped", {
            let mut b = bytes.clone();
            let n = b.len() - 3;
            b[n] ^= 0x40;
            b
        }),
    ] {
        fs::write(&file, &damaged).unwrap();
        let (f, outcome) = compile_cached_with_outcome(&profile(), Some(dir.path())).unwrap();
        assert!(
            matches!(outcome, CacheOutcome::Replaced { .. }),
            "{what}: {outcome:?}"
        );
        assert_eq!(f, good, "{what}");
        assert_eq!(
            fs::read(&file).unwrap(),
            bytes,
            "{what}: file not rewritten"
        );
        let (_, outcome) = compile_cached_with_outcome(&profile(), Some(dir.path())).unwrap();
        assert_eq!(outcome, CacheOutcome::Hit, "{what}");
    }
}

#[test]
fn writable_or_foreign_cache_places_are_refused() {
    // Group-writable directory.
    let dir = cache_dir();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o770)).unwrap();
    let err = compile_cached(&profile(), Some(dir.path())).unwrap_err();
    assert!(matches!(err, SeccompError::UnsafeCache { .. }), "{err}");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "wrote into an unsafe directory"
    );

    // World-writable cache file in a good directory.
    let dir = cache_dir();
    compile_cached(&profile(), Some(dir.path())).unwrap();
    let file = only_bpf_file(dir.path());
    fs::set_permissions(&file, fs::Permissions::from_mode(0o602)).unwrap();
    let err = compile_cached(&profile(), Some(dir.path())).unwrap_err();
    assert!(matches!(err, SeccompError::UnsafeCache { .. }), "{err}");

    // A symlink planted under the cache file's name.
    fs::remove_file(&file).unwrap();
    let target = dir.path().join("elsewhere");
    fs::write(&target, b"x").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    symlink(&target, &file).unwrap();
    let err = compile_cached(&profile(), Some(dir.path())).unwrap_err();
    assert!(matches!(err, SeccompError::UnsafeCache { .. }), "{err}");

    // The cache directory itself is a symlink.
    let real = cache_dir();
    let parent = cache_dir();
    let link = parent.path().join("link");
    symlink(real.path(), &link).unwrap();
    let err = compile_cached(&profile(), Some(&link)).unwrap_err();
    assert!(matches!(err, SeccompError::UnsafeCache { .. }), "{err}");
}

#[test]
fn files_owned_by_someone_else_are_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let dir = cache_dir();
    compile_cached(&profile(), Some(dir.path())).unwrap();
    let file = only_bpf_file(dir.path());
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    let err = compile_cached(&profile(), Some(dir.path())).unwrap_err();
    assert!(matches!(err, SeccompError::UnsafeCache { .. }), "{err}");

    let other = cache_dir();
    std::os::unix::fs::chown(other.path(), Some(65534), Some(65534)).unwrap();
    let err = compile_cached(&profile(), Some(other.path())).unwrap_err();
    assert!(matches!(err, SeccompError::UnsafeCache { .. }), "{err}");
}

#[test]
fn a_missing_cache_directory_is_created_private() {
    let parent = cache_dir();
    let dir = parent.path().join("seccomp");
    let (_, outcome) = compile_cached_with_outcome(&profile(), Some(&dir)).unwrap();
    assert_eq!(outcome, CacheOutcome::Miss { stored: true });
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    assert_eq!(
        compile_cached_with_outcome(&profile(), None).unwrap().1,
        CacheOutcome::Uncached
    );
}

#[test]
fn a_cached_filter_is_enforced_like_a_fresh_one() {
    let dir = cache_dir();
    let d = dir.path().to_str().unwrap();
    for round in ["miss", "hit"] {
        let out = Command::new(PROBE)
            .args([
                "exec",
                "--cache-dir",
                d,
                "--",
                PROBE,
                "try",
                "keyctl",
                "getpid",
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "keyctl errno 1\ngetpid ok\n",
            "{round}: {out:?}"
        );
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}
