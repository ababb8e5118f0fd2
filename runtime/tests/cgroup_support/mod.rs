//! Shared by the cgroup root tests (`cgroups_root.rs`, `cgroups_kill.rs`): the [`Fixture`]
//! guard that gives each test its own top-level cgroup tree and removes it (and kills its
//! children) even when the test fails, plus small helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};
use runtime::cgroups::{detect, Cgroup, Version};

pub const MIB: i64 = 1024 * 1024;

/// How long to wait for a script to make visible progress (a few iterations of a loop that
/// execs `sleep`, a fork loop reaching its limit). A hang guard: every exec costs 0.1-0.3 s in
/// the TCG guest, more on a loaded host, so the former 5 s allowed only a few dozen of them.
pub const PROGRESS: Duration = Duration::from_secs(60);

pub struct Fixture {
    pub root: String,
    kids: Vec<Child>,
}

impl Fixture {
    /// `None` (test skipped with a message) when not root: these tests need real cgroups.
    pub fn new(test: &str) -> Option<Fixture> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP {test}: needs root");
            return None;
        }
        let pid = std::process::id();
        let root = match std::env::var("PILOTBOX_TEST_CGROUP_ROOT") {
            Ok(base) => format!("{}/{test}-{pid}", base.trim_end_matches('/')),
            Err(_) => format!("/pilotbox-test-{pid}-{test}"),
        };
        assert!(
            root.starts_with('/') && !root.contains("process_api"),
            "unsafe test root {root}"
        );
        Some(Fixture {
            root,
            kids: Vec::new(),
        })
    }

    pub fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root)
    }

    /// Spawn `/bin/sh -c 'read _; <script>'`: it waits on stdin so the test can put it in a
    /// cgroup before it does anything; [`release`] starts it.
    pub fn spawn_gated(&mut self, script: &str) -> (i32, ChildStdin) {
        let (pid, stdin, _) = self.spawn_gated_with(script, Stdio::null());
        (pid, stdin)
    }

    /// [`spawn_gated`] with the script's stdout piped back, so it can report progress.
    pub fn spawn_gated_reporting(&mut self, script: &str) -> (i32, ChildStdin, ChildStdout) {
        let (pid, stdin, out) = self.spawn_gated_with(script, Stdio::piped());
        (pid, stdin, out.expect("piped stdout"))
    }

    pub fn spawn_gated_with(
        &mut self,
        script: &str,
        stdout: Stdio,
    ) -> (i32, ChildStdin, Option<ChildStdout>) {
        let mut c = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read _ ; {script}"))
            .stdin(Stdio::piped())
            .stdout(stdout)
            .spawn()
            .expect("spawn /bin/sh");
        let stdin = c.stdin.take().unwrap();
        let out = c.stdout.take();
        let pid = c.id() as i32;
        self.kids.push(c);
        (pid, stdin, out)
    }

    pub fn wait(&mut self, pid: i32, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let kid = self
            .kids
            .iter_mut()
            .find(|k| k.id() as i32 == pid)
            .expect("our child");
        loop {
            if let Some(st) = kid.try_wait().expect("try_wait") {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "child {pid} did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every directory this fixture's root has (or would have) in the mounted hierarchies.
    pub fn root_dirs(&self) -> Vec<PathBuf> {
        hierarchy_mounts()
            .iter()
            .map(|m| m.join(self.root.trim_start_matches('/')))
            .collect()
    }
}

pub fn release(mut gate: ChildStdin) {
    gate.write_all(b"go\n").expect("release child");
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for k in &mut self.kids {
            let _ = k.kill();
        }
        if let Ok(cg) = Cgroup::open(&self.root) {
            if let Err(e) = cg.destroy() {
                eprintln!("fixture cleanup: {e}");
            }
        }
        for k in &mut self.kids {
            let _ = k.wait();
        }
        // Belt and braces: remove anything left, deepest first.
        for d in self.root_dirs() {
            remove_tree(&d);
        }
    }
}

pub fn remove_tree(d: &Path) {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(d);
}

/// Mount points of the hierarchies a payload cgroup lives in.
pub fn hierarchy_mounts() -> Vec<PathBuf> {
    match detect().expect("cgroups usable") {
        Version::V2 => vec![PathBuf::from("/sys/fs/cgroup")],
        Version::V1 => [
            "blkio", "memory", "pids", "cpuset", "cpuacct", "cpu", "freezer",
        ]
        .iter()
        .map(|c| PathBuf::from("/sys/fs/cgroup").join(c))
        .filter(|p| p.join("cgroup.procs").exists())
        .collect(),
    }
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_owned()
}

pub fn file(cg: &Cgroup, controller: &str, name: &str) -> PathBuf {
    cg.dir_of(controller)
        .unwrap_or_else(|| panic!("no {controller} dir"))
        .join(name)
}

pub fn resources(mem: Option<i64>, swap: Option<i64>, pids: Option<i64>) -> LinuxResources {
    let mut m = LinuxMemoryBuilder::default();
    if let Some(l) = mem {
        m = m.limit(l);
    }
    if let Some(s) = swap {
        m = m.swap(s);
    }
    let mut b = LinuxResourcesBuilder::default().memory(m.build().unwrap());
    if let Some(p) = pids {
        b = b.pids(LinuxPidsBuilder::default().limit(p).build().unwrap());
    }
    b.build().unwrap()
}

/// A v1 cgroup in every mounted hierarchy (cpusets filled from the parent level by level),
/// like a batch system's job cgroup.
pub fn batch_slot(path: &str) -> Cgroup {
    for m in hierarchy_mounts() {
        let mut d = m.clone();
        for part in path.trim_start_matches('/').split('/') {
            let parent = d.clone();
            d = d.join(part);
            if !d.exists() {
                std::fs::create_dir(&d).unwrap();
                if d.join("cpuset.cpus").exists() {
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        std::fs::write(d.join(f), read(&parent.join(f))).unwrap();
                    }
                }
            }
        }
    }
    Cgroup::open(path).expect("open the slot")
}

/// The first line `out` prints, or a panic naming `what` if it ends first or prints nothing for
/// `timeout`. The timeout only guards against a hang: callers wait for a script to *say* it is
/// done, not for a guessed amount of work to happen, so a slow machine (the QEMU/TCG guest
/// forks ~4 processes/s) cannot make the test fail.
pub fn first_line(out: ChildStdout, what: &str, timeout: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(timeout) {
        Ok(line) if !line.is_empty() => line.trim().to_owned(),
        Ok(_) => panic!("{what}: the script ended without reporting"),
        Err(_) => panic!("{what}: nothing reported within {timeout:?}"),
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
