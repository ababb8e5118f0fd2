//! Root integration tests of `runtime::cgroups` on the host's real cgroups (v1/hybrid here, pure
//! v2 in the VM of issue 3). Every test works under its own top-level cgroup
//! (`$PILOTBOX_TEST_CGROUP_ROOT/<test>-<pid>` or `/pilotbox-test-<pid>-<test>`), never under the
//! caller's cgroup, and a [`Fixture`] guard kills its children and removes that tree in every
//! hierarchy even when the test fails. `$PILOTBOX_TEST_CGROUP_ROOT` itself is left in place (it
//! belongs to whoever runs the tests; `create` makes it if missing). Only `/bin/sh` + busybox-level tools are used, so the same
//! tests run in a busybox initramfs.

mod cgroup_support;

use cgroup_support::*;
use runtime::cgroups::{detect, place, Cgroup, Placement, Version};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::Duration;

use oci_spec::runtime::LinuxCpuBuilder;

#[test]
fn limits_are_written_and_read_back() {
    let Some(fx) = Fixture::new("limits") else {
        return;
    };
    let mut r = resources(Some(64 * MIB), Some(96 * MIB), Some(50));
    r.set_cpu(Some(
        LinuxCpuBuilder::default()
            .shares(512u64)
            .quota(50_000i64)
            .period(100_000u64)
            .cpus("0")
            .mems("0")
            .build()
            .unwrap(),
    ));
    let cg = Cgroup::create(&fx.path("p"), Some(&r)).expect("create");
    let v = cg.version();
    assert_eq!(v, detect().unwrap());
    match v {
        Version::V1 => {
            assert!(cg.dir_fd().is_none());
            assert_eq!(
                read(&file(&cg, "memory", "memory.limit_in_bytes")),
                (64 * MIB).to_string()
            );
            let memsw = file(&cg, "memory", "memory.memsw.limit_in_bytes");
            if memsw.exists() {
                assert_eq!(read(&memsw), (96 * MIB).to_string());
            }
            assert_eq!(read(&file(&cg, "cpu", "cpu.cfs_quota_us")), "50000");
            assert_eq!(read(&file(&cg, "cpu", "cpu.cfs_period_us")), "100000");
            assert_eq!(read(&file(&cg, "cpu", "cpu.shares")), "512");
        }
        Version::V2 => {
            assert!(cg.dir_fd().is_some());
            assert_eq!(
                read(&file(&cg, "memory", "memory.max")),
                (64 * MIB).to_string()
            );
            let swap = file(&cg, "memory", "memory.swap.max");
            if swap.exists() {
                assert_eq!(read(&swap), (32 * MIB).to_string());
            }
            assert_eq!(read(&file(&cg, "cpu", "cpu.max")), "50000 100000");
            assert_eq!(read(&file(&cg, "cpu", "cpu.weight")), "20"); // 1+(510*9999)/262142
        }
    }
    assert_eq!(read(&file(&cg, "pids", "pids.max")), "50");
    assert_eq!(read(&file(&cg, "cpuset", "cpuset.cpus")), "0");
    assert_eq!(read(&file(&cg, "cpuset", "cpuset.mems")), "0");
    let dirs = cg.dirs();
    cg.destroy().expect("destroy");
    for d in dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn added_process_is_listed_signalled_and_killed_by_destroy() {
    let Some(mut fx) = Fixture::new("procs") else {
        return;
    };
    let cg = Cgroup::create(&fx.path("p"), None).expect("create");
    let (pid, _gate) = fx.spawn_gated("sleep 1000");
    assert!(!cg.pids().unwrap().contains(&pid));
    cg.add_process(pid).expect("add");
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(&fx.path("p")), "{own}");
    // signal() reaches it: SIGSTOP shows up as state T
    cg.signal(nix::sys::signal::Signal::SIGSTOP).unwrap();
    wait_until("stopped state", PROGRESS, || {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        st.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('T'))
    });
    let dirs = cg.dirs();
    cg.destroy().expect("destroy");
    assert_eq!(
        fx.wait(pid, Duration::from_secs(5)).signal(),
        Some(libc::SIGKILL)
    );
    for d in dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // idempotent: reopening what is gone fails cleanly, nothing to remove
    assert!(Cgroup::open(&fx.path("p")).is_err());
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let Some(mut fx) = Fixture::new("oom") else {
        return;
    };
    // memory+swap == memory: no swap escape (v1 memsw = 32M, v2 swap.max = 0)
    let r = resources(Some(32 * MIB), Some(32 * MIB), None);
    let cg = Cgroup::create(&fx.path("p"), Some(&r)).expect("create");
    // `tail` keeps the whole "last line" of /dev/zero (no newline ever) in memory.
    let (pid, gate) = fx.spawn_gated("exec tail /dev/zero");
    cg.add_process(pid).unwrap();
    release(gate);
    let st = fx.wait(pid, Duration::from_secs(30));
    assert_eq!(st.signal(), Some(libc::SIGKILL), "hog ended with {st:?}");
    let u = cg.usage().expect("usage");
    assert!(u.oom_killed && u.oom_kills >= 1, "{u:?}");
    let peak = u.mem_peak_bytes.expect("memory peak");
    assert!(
        peak > 16 * MIB as u64 && peak <= 33 * MIB as u64,
        "peak {peak}"
    );
    cg.destroy().unwrap();
}

#[test]
fn pids_max_stops_a_fork_loop() {
    let Some(mut fx) = Fixture::new("pids") else {
        return;
    };
    let cg = Cgroup::create(&fx.path("p"), Some(&resources(None, None, Some(10)))).expect("create");
    let (pid, gate) =
        fx.spawn_gated("i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); done; sleep 1000");
    cg.add_process(pid).unwrap();
    release(gate);
    let events = file(&cg, "pids", "pids.events");
    wait_until("pids.events max > 0", PROGRESS, || {
        read(&events)
            .split_whitespace()
            .nth(1)
            .is_some_and(|n| n != "0")
    });
    std::thread::sleep(Duration::from_millis(200));
    let n = cg.pids().unwrap().len();
    assert!(n <= 10, "{n} processes despite pids.max=10");
    assert!(n >= 5, "only {n} processes: the loop never got going");
    if let Some(peak) = cg.usage().unwrap().pids_peak {
        assert!((5..=10).contains(&peak), "pids.peak {peak}");
    }
    cg.kill().expect("kill");
    assert!(cg.pids().unwrap().is_empty());
    cg.destroy().unwrap();
}

#[test]
fn freeze_stops_progress_and_thaw_resumes() {
    let Some(mut fx) = Fixture::new("freeze") else {
        return;
    };
    let counter = std::env::temp_dir().join(format!("pilotbox-freeze-{}", std::process::id()));
    let cg = Cgroup::create(&fx.path("p"), None).expect("create");
    let (pid, gate) = fx.spawn_gated(&format!(
        "i=0; while :; do i=$((i+1)); echo $i > {}; sleep 0.02; done",
        counter.display()
    ));
    cg.add_process(pid).unwrap();
    release(gate);
    let value = || {
        std::fs::read_to_string(&counter)
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    wait_until("counter running", PROGRESS, || value() > 3);
    cg.freeze().expect("freeze");
    assert!(cg.is_frozen().unwrap());
    let a = value();
    std::thread::sleep(Duration::from_millis(400));
    let b = value();
    assert_eq!(a, b, "counter advanced while frozen");
    cg.thaw().expect("thaw");
    wait_until("counter resumed", PROGRESS, || value() > b + 2);
    assert!(!cg.is_frozen().unwrap());
    // a frozen cgroup can still be destroyed (destroy kills it)
    cg.freeze().unwrap();
    cg.destroy().unwrap();
    assert_eq!(
        fx.wait(pid, Duration::from_secs(5)).signal(),
        Some(libc::SIGKILL)
    );
    let _ = std::fs::remove_file(&counter);
}

/// `pilotbox kill` races the supervisor, which removes the payload cgroup the moment it is
/// empty. Here a thread plays the supervisor (rmdir in a tight loop): `kill` must report
/// success, not wait 20 s for a `cgroup.events` that no longer exists (a CI failure in the VM).
#[test]
fn destroy_removes_sub_cgroups_in_every_hierarchy() {
    let Some(mut fx) = Fixture::new("destroy") else {
        return;
    };
    let cg = Cgroup::create(&fx.path("p"), None).expect("create");
    let dirs = cg.dirs();
    if cg.version() == Version::V1 {
        // Made where a payload needs it (resources::v1_controllers): no limits asked, so not
        // in the cpu, cpuset and blkio hierarchies unless they share a mount with one needed.
        for c in ["memory", "pids", "freezer", "cpuacct"] {
            assert!(cg.dir_of(c).is_some(), "no {c} dir: {dirs:?}");
        }
        for c in ["cpuset", "blkio"] {
            assert!(
                cg.dir_of(c).is_none(),
                "a {c} dir nobody asked for: {dirs:?}"
            );
        }
    } else {
        assert_eq!(dirs.len(), 1);
    }
    // a sub-cgroup in every hierarchy, with a process in it
    let (pid, _gate) = fx.spawn_gated("sleep 1000");
    for d in &dirs {
        std::fs::create_dir(d.join("sub")).unwrap();
        if d.join("sub/cpuset.cpus").exists() {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                std::fs::write(d.join("sub").join(f), read(&d.join(f))).unwrap();
            }
        }
        std::fs::write(d.join("sub/cgroup.procs"), pid.to_string()).unwrap();
    }
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    cg.destroy().expect("destroy");
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    assert_eq!(
        fx.wait(pid, Duration::from_secs(5)).signal(),
        Some(libc::SIGKILL)
    );
}

#[test]
fn failed_creation_leaves_nothing_behind() {
    let Some(fx) = Fixture::new("rollback") else {
        return;
    };
    let mut r = resources(Some(64 * MIB), None, Some(20));
    r.set_cpu(Some(
        LinuxCpuBuilder::default().cpus("0-4095").build().unwrap(),
    ));
    let err = Cgroup::create(&fx.path("deep/er/p"), Some(&r)).expect_err("invalid cpuset accepted");
    assert!(err.to_string().contains("cpuset"), "{err}");
    for d in fx.root_dirs() {
        assert!(
            !d.exists(),
            "{} left behind after failed create",
            d.display()
        );
    }
    // an impossible swap value fails before touching anything as well
    let bad = resources(Some(64 * MIB), Some(MIB), None);
    assert!(Cgroup::create(&fx.path("p"), Some(&bad)).is_err());
    for d in fx.root_dirs() {
        assert!(
            !d.exists(),
            "{} left behind after failed create",
            d.display()
        );
    }
    // creating an existing cgroup is refused and keeps the existing one
    let cg = Cgroup::create(&fx.path("p"), None).unwrap();
    assert!(Cgroup::create(&fx.path("p"), None).is_err());
    assert!(cg.dirs().iter().all(|d| d.exists()));
    cg.destroy().unwrap();
}

#[test]
fn usage_counts_cpu_time() {
    let Some(mut fx) = Fixture::new("usage") else {
        return;
    };
    let cg = Cgroup::create(&fx.path("p"), None).expect("create");
    let (pid, gate) = fx.spawn_gated("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done");
    cg.add_process(pid).unwrap();
    release(gate);
    assert!(fx.wait(pid, Duration::from_secs(60)).success());
    let u = cg.usage().unwrap();
    assert!(u.cpu_user_s + u.cpu_sys_s > 0.05, "{u:?}");
    assert!(!u.oom_killed && u.oom_kills == 0);
    let json = serde_json::to_value(&u).unwrap();
    assert!(json.get("cpu_user_s").is_some() && json.get("mem_peak_bytes").is_some());
    cg.destroy().unwrap();
}

#[test]
fn placement_under_a_root_and_nested_under_a_caller() {
    let Some(mut fx) = Fixture::new("place") else {
        return;
    };
    assert_eq!(
        place(&Placement::Under(fx.root.clone()), 1, "p1").unwrap(),
        fx.path("p1")
    );

    // A fake "pilot" in its own batch-slot cgroup under the test root — in every hierarchy,
    // as a batch system makes it (a payload cgroup is made only in the ones it needs).
    let slot = if detect().unwrap() == Version::V1 {
        batch_slot(&fx.path("slot"))
    } else {
        Cgroup::create(&fx.path("slot"), None).expect("slot")
    };
    let (pilot, _gate) = fx.spawn_gated("sleep 1000");
    slot.add_process(pilot).unwrap();
    let nested = Placement::Nested { fallback: None };
    let version = slot.version();

    if version == Version::V1 {
        // Same path in every hierarchy: a plain path under the slot.
        assert_eq!(place(&nested, pilot, "p1").unwrap(), fx.path("slot/p1"));
        // Different memory path (like a Slurm step vs. "/" elsewhere): per-controller form.
        let mem =
            PathBuf::from("/sys/fs/cgroup/memory").join(fx.path("memslot").trim_start_matches('/'));
        std::fs::create_dir(&mem).unwrap();
        std::fs::write(mem.join("cgroup.procs"), pilot.to_string()).unwrap();
        let p = place(&nested, pilot, "p2").unwrap();
        assert!(
            p.contains(&format!("memory={}", fx.path("memslot/p2"))),
            "{p}"
        );
        assert!(p.contains(&format!("pids={}", fx.path("slot/p2"))), "{p}");
        let cg = Cgroup::create(&p, Some(&resources(Some(64 * MIB), None, Some(20))))
            .expect("create nested");
        assert_eq!(cg.dir_of("memory").unwrap(), mem.join("p2"));
        assert_eq!(
            read(&mem.join("p2/memory.limit_in_bytes")),
            (64 * MIB).to_string()
        );
        cg.add_process(pilot).unwrap();
        let own = std::fs::read_to_string(format!("/proc/{pilot}/cgroup")).unwrap();
        assert!(
            own.contains(&format!("memory:{}", fx.path("memslot/p2"))),
            "{own}"
        );
        cg.destroy().unwrap();
        assert!(!mem.join("p2").exists());
    } else {
        // v2: the slot holds the pilot, so its processes must move to a leaf first.
        let slot_dir = slot.dirs()[0].clone();
        assert!(!read(&slot_dir.join("cgroup.subtree_control")).contains("memory"));
        let p = place(&nested, pilot, "p1").unwrap();
        assert_eq!(p, fx.path("slot/p1"));
        assert_eq!(read(&slot_dir.join("cgroup.procs")), "");
        assert_eq!(
            read(&slot_dir.join("pilot/cgroup.procs")),
            pilot.to_string()
        );
        let sc = read(&slot_dir.join("cgroup.subtree_control"));
        assert!(sc.contains("memory") && sc.contains("pids"), "{sc}");
        let cg = Cgroup::create(&p, Some(&resources(Some(64 * MIB), None, Some(20))))
            .expect("create nested");
        assert_eq!(
            read(&file(&cg, "memory", "memory.max")),
            (64 * MIB).to_string()
        );
        // A second and third payload of the same pilot, whose cgroup is now slot/pilot: beside
        // the first under slot (not nested under slot/pilot), and nothing moves any more.
        assert_eq!(place(&nested, pilot, "p2").unwrap(), fx.path("slot/p2"));
        let cg2 = Cgroup::create(&fx.path("slot/p2"), Some(&resources(None, None, Some(20))))
            .expect("create second nested");
        assert_eq!(place(&nested, pilot, "p3").unwrap(), fx.path("slot/p3"));
        assert_eq!(
            read(&slot_dir.join("pilot/cgroup.procs")),
            pilot.to_string()
        );
        assert!(!slot_dir.join("pilot/pilot").exists());
        cg2.destroy().unwrap();
        cg.destroy().unwrap();

        // Control: a cgroup named `pilot` that placement did not make (a batch system's own,
        // without our trusted xattr marker) is never stepped out of, although its parent is
        // empty and enables the controllers: the payload nests inside it.
        let foreign = Cgroup::create(&fx.path("batch/pilot"), None).expect("foreign pilot");
        let batch_dir = foreign.dirs()[0].parent().unwrap().to_owned();
        // enable all it has, as our own placement would (the parent fact must hold)
        let avail = read(&batch_dir.join("cgroup.controllers"));
        for c in avail.split_whitespace() {
            std::fs::write(batch_dir.join("cgroup.subtree_control"), format!("+{c}")).unwrap();
        }
        let sc = read(&batch_dir.join("cgroup.subtree_control"));
        assert!(sc.contains("memory") && sc.contains("pids"), "{sc}");
        assert_eq!(sc, avail);
        foreign.add_process(pilot).unwrap();
        assert_eq!(read(&batch_dir.join("cgroup.procs")), "");
        assert_eq!(
            place(&nested, pilot, "p4").unwrap(),
            fx.path("batch/pilot/p4")
        );
    }
    // An unknown caller: no fallback -> site error; with fallback -> the configured root.
    let e = place(&nested, i32::MAX, "p3").unwrap_err();
    assert!(e.is_site_error(), "{e}");
    let fb = Placement::Nested {
        fallback: Some(fx.root.clone()),
    };
    assert_eq!(place(&fb, i32::MAX, "p3").unwrap(), fx.path("p3"));
}
