//! Root integration tests of `Cgroup::kill` on real cgroups (v1 here, v2 in the VM): a
//! 200-process tree and a fork racer, and a kill racing the supervisor's removal of the emptied
//! cgroup. Same fixture as `cgroups_root.rs` (`cgroup_support`).

mod cgroup_support;

use cgroup_support::*;
use runtime::cgroups::Cgroup;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[test]
fn kill_empties_a_200_process_tree_and_a_forking_one() {
    let Some(mut fx) = Fixture::new("kill") else {
        return;
    };
    let cg =
        Cgroup::create(&fx.path("p"), Some(&resources(None, None, Some(400)))).expect("create");
    // The shell reports once its 200th fork has returned: from then on all 201 processes exist
    // (a child is in its parent's cgroup from fork on, and none of them exits by itself).
    let (pid, gate, out) = fx.spawn_gated_reporting(
        "i=0; while [ $i -lt 200 ]; do sleep 1000 >/dev/null & i=$((i+1)); done; echo forked; wait",
    );
    cg.add_process(pid).unwrap();
    release(gate);
    assert_eq!(
        first_line(out, "200-process tree", Duration::from_secs(400)),
        "forked"
    );
    let n = cg.pids().unwrap().len();
    assert_eq!(n, 201, "the cgroup lists {n} processes, the tree has 201");
    // plus a process that keeps forking short-lived children (fork race)
    let (racer, gate2) = fx.spawn_gated("while :; do ( sleep 1000 & ) ; done");
    cg.add_process(racer).unwrap();
    release(gate2);
    std::thread::sleep(Duration::from_millis(200));
    cg.kill().expect("kill");
    assert!(cg.pids().unwrap().is_empty(), "left: {:?}", cg.pids());
    std::thread::sleep(Duration::from_millis(200));
    assert!(cg.pids().unwrap().is_empty(), "respawned: {:?}", cg.pids());
    assert_eq!(
        fx.wait(pid, Duration::from_secs(5)).signal(),
        Some(libc::SIGKILL)
    );
    assert_eq!(
        fx.wait(racer, Duration::from_secs(5)).signal(),
        Some(libc::SIGKILL)
    );
    cg.destroy().unwrap();
}

#[test]
fn kill_succeeds_when_the_emptied_cgroup_is_removed_meanwhile() {
    let Some(mut fx) = Fixture::new("killrm") else {
        return;
    };
    for round in 0..3 {
        let rel = format!("r{round}");
        let cg = Cgroup::create(&fx.path(&rel), None).expect("create");
        let (pid, gate) = fx.spawn_gated("exec sleep 1000");
        cg.add_process(pid).unwrap();
        release(gate);
        let dirs: Vec<PathBuf> = hierarchy_mounts()
            .iter()
            .map(|m| m.join(fx.path(&rel).trim_start_matches('/')))
            .filter(|d| d.is_dir())
            .collect();
        let remover = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while dirs.iter().any(|d| d.exists()) && Instant::now() < deadline {
                for d in &dirs {
                    let _ = std::fs::remove_dir(d);
                }
            }
        });
        let r = cg.kill();
        remover.join().unwrap();
        assert!(
            r.is_ok(),
            "round {round}: kill of a cgroup removed meanwhile: {r:?}"
        );
        assert_eq!(
            fx.wait(pid, Duration::from_secs(5)).signal(),
            Some(libc::SIGKILL)
        );
    }
}
