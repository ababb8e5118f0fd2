//! Seccomp cost per launch: libseccomp compilation vs. a cache hit vs. the `seccomp(2)` load
//! itself, plus the end-to-end cost of loading in a forked child (spawn /bin/true with and
//! without the filter). Plain `harness = false` bench: `cargo bench -p runtime --bench seccomp`.
//! Medians of repeated runs, in microseconds.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use runtime::seccomp::{compile, compile_cached, default_profile, CompiledFilter, ProfileOptions};

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn time<T>(n: usize, mut f: impl FnMut() -> T) -> f64 {
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

/// Spawns /bin/true through fork + pre_exec (so both variants pay the same fork, unlike
/// posix_spawn), loading `filter` in the child when given.
fn spawn_true(filter: Option<&CompiledFilter>) {
    let mut cmd = Command::new("/bin/true");
    let f = filter.cloned();
    // SAFETY: only prctl + seccomp system calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(f) = &f {
                nix::sys::prctl::set_no_new_privs()
                    .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
                f.load()
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::EPERM))?;
            }
            Ok(())
        });
    }
    assert!(cmd.status().unwrap().success());
}

fn main() {
    for (name, opts) in [
        ("default (x86_64 only)", ProfileOptions::default()),
        (
            "with i386 (--ia32)",
            ProfileOptions {
                allow_ia32: true,
                ..Default::default()
            },
        ),
    ] {
        let profile = default_profile(&opts);
        let filter = compile(&profile).unwrap();
        let dir = tempfile::tempdir().unwrap();
        compile_cached(&profile, Some(dir.path())).unwrap();
        println!("{name}: {} BPF instructions", filter.instructions());
        println!(
            "  compile (libseccomp)      {:9.1} us",
            time(10, || compile(&profile).unwrap())
        );
        println!(
            "  compile_cached (hit)      {:9.1} us",
            time(200, || compile_cached(&profile, Some(dir.path())).unwrap())
        );
        let plain = time(40, || spawn_true(None));
        let filtered = time(40, || spawn_true(Some(&filter)));
        println!("  fork+exec /bin/true       {:9.1} us", plain);
        println!(
            "    + nnp + load in child   {:9.1} us  (difference {:+.1} us)",
            filtered,
            filtered - plain
        );
    }

    // Last, because it filters this very process: the seccomp(2) call alone. Each call stacks
    // one more filter (the kernel caps the total at 32768 instructions), so keep the count small.
    let profile = default_profile(&ProfileOptions::default());
    let filter = compile(&profile).unwrap();
    nix::sys::prctl::set_no_new_privs().unwrap();
    println!(
        "load() of the default filter in this process {:9.1} us",
        time(15, || filter.load().unwrap())
    );
}
