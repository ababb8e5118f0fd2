//! Is a recorded process still the one we recorded? `/proc/<pid>/stat` field 22 (`starttime`,
//! clock ticks after boot, see proc(5)) does not change for the life of a process and differs
//! for a later process that reuses the pid, so (pid, start time) names one process for good —
//! the same identity procps/systemd use. A pid alone is never signalled or trusted.

use std::path::Path;

/// Fields of `/proc/<pid>/stat` after the `(comm)` field, which may itself hold spaces and
/// parentheses: everything up to the *last* `)` is skipped.
fn fields_after_comm(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_ascii_whitespace().collect())
}

/// (state letter, start time) from the text of `/proc/<pid>/stat`.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let f = fields_after_comm(stat)?;
    // f[0] is field 3 (state), so field 22 (starttime) is f[19].
    let state = f.first()?.chars().next()?;
    let start = f.get(19)?.parse().ok()?;
    Some((state, start))
}

/// The start time of `pid`, or None when there is no such process (or it is a zombie: it has
/// exited, only its parent has not reaped it yet).
pub fn start_time(pid: i32) -> Option<u64> {
    start_time_in(Path::new("/proc"), pid)
}

fn start_time_in(proc_root: &Path, pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    match parse_stat(&text)? {
        ('Z' | 'X', _) => None,
        (_, start) => Some(start),
    }
}

/// True when `pid` runs and is the process that started at `start`.
pub fn is_same_process(pid: i32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// The parent pid (field 4) from the text of `/proc/<pid>/stat`.
fn parse_ppid(stat: &str) -> Option<i32> {
    fields_after_comm(stat)?.get(1)?.parse().ok()
}

/// `root` and all its living descendants (host pids, sorted), from the `/proc/<pid>/stat`
/// parent links. For the init of a pid namespace this is every process of the namespace: a
/// process's parent is in its own namespace or is that init, and orphans are re-parented to
/// the namespace's init (or a subreaper inside it) — `pid_namespaces(7)` — so nothing in the
/// namespace can hang off a process outside it. What `status` lists for a sandbox without a
/// cgroup of its own. Empty when `root` is gone.
pub fn tree(root: i32) -> Vec<i32> {
    tree_in(Path::new("/proc"), root)
}

fn tree_in(proc_root: &Path, root: i32) -> Vec<i32> {
    if start_time_in(proc_root, root).is_none() {
        return vec![];
    }
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return vec![root];
    };
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(text) = std::fs::read_to_string(e.path().join("stat")) {
            if let (Some(ppid), Some((state, _))) = (parse_ppid(&text), parse_stat(&text)) {
                if !matches!(state, 'Z' | 'X') {
                    parent_of.push((pid, ppid));
                }
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.sort_unstable();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comm_with_spaces_and_parens() {
        let s = "42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 777 1000 10";
        assert_eq!(parse_stat(s), Some(('S', 777)));
        assert_eq!(parse_stat("42 (x) Z 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_tree_of_a_process_holds_its_children_and_grandchildren() {
        let s = "42 (a) b) (c) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 777 1000 10";
        assert_eq!(parse_ppid(s), Some(7));
        // A real tree: sh -> sleep (grandchild through the shell).
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let sh = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut t = tree(sh);
        while t.len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            t = tree(sh);
        }
        let me = std::process::id() as i32;
        // Our own processes, by pid: the sleep first (while the shell still holds it).
        for p in t.iter().filter(|p| **p != sh) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(t.len(), 2, "sh and its sleep: {t:?}");
        assert!(t.contains(&sh) && !t.contains(&me));
        assert!(tree(i32::MAX).is_empty());
    }

    #[test]
    fn own_process_matches_and_a_wrong_start_does_not() {
        let me = std::process::id() as i32;
        let start = start_time(me).expect("we are running");
        assert!(is_same_process(me, start));
        assert!(
            !is_same_process(me, start + 1),
            "a recycled pid has another start time"
        );
        assert_eq!(start_time(0), None);
        assert_eq!(start_time(i32::MAX), None);
    }
}
