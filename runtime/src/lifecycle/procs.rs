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
