//! The timing driver of `tests/bench/run.sh` (std only; built with `rustc -O`).
//!
//! Why not hyperfine: hyperfine benchmarks one command after another, so a load change on this
//! shared 2-core VM (another engineer's build starting) lands on whichever command happens to be
//! running. Here every round runs every command once, the starting command rotating from round to
//! round, so drift hits all of them alike; all commands are started the same way (fork + exec
//! with explicit uid/gid, stdio on /dev/null), so the driver's own cost is the same for each.
//!
//! ```text
//! timeloop interleaved ROUNDS WARMUP REF SPEC OUT.json   # SPEC: one command per line (below)
//! timeloop concurrent N ROUNDS OUT.json UID GID ARGV...   # N at once, per-launch latency
//! timeloop once UID GID ARGV...                           # wall ms of one run, on stdout
//! ```
//! A SPEC line is tab-separated: `name`, `uid`, `gid`, `mntns` (a mount-namespace file to join
//! before exec, or `-`), then the argv. `{n}` in an argument becomes a counter unique per run
//! (container ids). A command that exits non-zero is run once more with stderr shown, and the
//! benchmark stops: timing a failure would be meaningless.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

// glibc's setns(2) wrapper (std has none; this driver has no dependencies on purpose).
extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
}
const CLONE_NEWNS: i32 = 0x0002_0000;

static COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Clone)]
struct Cmd {
    name: String,
    uid: u32,
    gid: u32,
    mntns: Option<String>,
    argv: Vec<String>,
}

impl Cmd {
    fn command(&self, quiet: bool) -> Command {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed).to_string();
        let argv: Vec<String> = self.argv.iter().map(|a| a.replace("{n}", &n)).collect();
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]).uid(self.uid).gid(self.gid).stdin(Stdio::null());
        if quiet {
            c.stdout(Stdio::null()).stderr(Stdio::null());
        }
        if let Some(ns) = &self.mntns {
            let f = File::open(ns).unwrap_or_else(|e| die(&format!("{ns}: {e}")));
            // SAFETY: only setns(2), async-signal-safe, between fork and exec; `f` outlives the
            // Command (it is moved into the closure).
            unsafe {
                c.pre_exec(move || {
                    if setns(f.as_raw_fd(), CLONE_NEWNS) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        c
    }

    /// One timed run: wall time from fork to reaped exit.
    fn time(&self) -> Duration {
        let mut c = self.command(true);
        let t = Instant::now();
        let st = c
            .status()
            .unwrap_or_else(|e| die(&format!("{}: {e}", self.name)));
        let d = t.elapsed();
        self.check(st);
        d
    }

    fn check(&self, st: ExitStatus) {
        if !st.success() {
            eprintln!("timeloop: {:?} failed ({st}); once more with its output:", self.name);
            let again = self.command(false).status();
            eprintln!("timeloop: rerun: {again:?}");
            std::process::exit(1);
        }
    }
}

fn die(msg: &str) -> ! {
    eprintln!("timeloop: {msg}");
    std::process::exit(2)
}

struct Stats {
    min: f64,
    median: f64,
    p95: f64,
    mean: f64,
}

/// Milliseconds; p95 by nearest rank.
fn stats(samples: &[Duration]) -> Stats {
    let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let rank = |p: f64| v[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    Stats {
        min: v[0],
        median: if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        },
        p95: rank(0.95),
        mean: v.iter().sum::<f64>() / n as f64,
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn stats_json(s: &Stats, samples: &[Duration]) -> String {
    let raw: Vec<String> = samples
        .iter()
        .map(|d| format!("{:.3}", d.as_secs_f64() * 1e3))
        .collect();
    format!(
        "\"min_ms\": {:.3}, \"median_ms\": {:.3}, \"p95_ms\": {:.3}, \"mean_ms\": {:.3}, \"n\": {}, \"samples_ms\": [{}]",
        s.min,
        s.median,
        s.p95,
        s.mean,
        samples.len(),
        raw.join(", ")
    )
}

fn parse_spec(path: &str) -> Vec<Cmd> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| die(&format!("{path}: {e}")));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 5 {
                die(&format!("bad spec line {l:?}"));
            }
            let num = |s: &str| s.parse().unwrap_or_else(|_| die(&format!("bad id {s:?}")));
            Cmd {
                name: f[0].into(),
                uid: num(f[1]),
                gid: num(f[2]),
                mntns: (f[3] != "-").then(|| f[3].to_string()),
                argv: f[4..].iter().map(|s| s.to_string()).collect(),
            }
        })
        .collect()
}

fn interleaved(rounds: usize, warmup: usize, reference: &str, spec: &str, out: &str) {
    let cmds = parse_spec(spec);
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); cmds.len()];
    for round in 0..warmup + rounds {
        for k in 0..cmds.len() {
            let i = (round + k) % cmds.len();
            let d = cmds[i].time();
            if round >= warmup {
                samples[i].push(d);
            }
        }
    }
    let all: Vec<Stats> = samples.iter().map(|s| stats(s)).collect();
    let ref_median = cmds
        .iter()
        .position(|c| c.name == reference)
        .map(|i| all[i].median);
    println!(
        "{:<34} {:>9} {:>9} {:>9}   {:>12}",
        "command (/bin/true)", "min ms", "median", "p95", "÷ pilotbox"
    );
    let mut rows = Vec::new();
    for (i, c) in cmds.iter().enumerate() {
        let s = &all[i];
        let ratio = ref_median.map(|r| s.median / r);
        println!(
            "{:<34} {:>9.2} {:>9.2} {:>9.2}   {:>12}",
            c.name,
            s.min,
            s.median,
            s.p95,
            ratio.map_or("-".into(), |r| format!("{r:.2}x"))
        );
        rows.push(format!(
            "    {{\"name\": {}, \"argv\": [{}], \"uid\": {}, {}, \"median_vs_pilotbox\": {}}}",
            json_str(&c.name),
            c.argv
                .iter()
                .map(|a| json_str(a))
                .collect::<Vec<_>>()
                .join(", "),
            c.uid,
            stats_json(s, &samples[i]),
            ratio.map_or("null".into(), |r| format!("{r:.3}"))
        ));
    }
    let json = format!(
        "{{\"rounds\": {rounds}, \"warmup\": {warmup}, \"reference\": {}, \"commands\": [\n{}\n]}}\n",
        json_str(reference),
        rows.join(",\n")
    );
    std::fs::write(out, json).unwrap_or_else(|e| die(&format!("{out}: {e}")));
}

fn concurrent(n: usize, rounds: usize, out: &str, cmd: Cmd) {
    let mut samples = Vec::new();
    let mut walls = Vec::new();
    for _ in 0..rounds {
        let barrier = Arc::new(Barrier::new(n));
        let t0 = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (b, c) = (barrier.clone(), cmd.clone());
                std::thread::spawn(move || {
                    b.wait();
                    c.time()
                })
            })
            .collect();
        for h in handles {
            samples.push(h.join().unwrap_or_else(|_| die("a launch thread panicked")));
        }
        walls.push(t0.elapsed());
    }
    let s = stats(&samples);
    let w = stats(&walls);
    println!(
        "{n} concurrent launches x {rounds}: per-launch median {:.2} ms, p95 {:.2} ms, max {:.2} ms; all {n} done in {:.1} ms (median)",
        s.median,
        s.p95,
        samples.iter().max().unwrap().as_secs_f64() * 1e3,
        w.median
    );
    let json = format!(
        "{{\"concurrency\": {n}, \"rounds\": {rounds}, \"batch_wall_median_ms\": {:.3}, {}}}\n",
        w.median,
        stats_json(&s, &samples)
    );
    std::fs::write(out, json).unwrap_or_else(|e| die(&format!("{out}: {e}")));
}

fn cmd_from(args: &[String]) -> Cmd {
    if args.len() < 3 {
        die("expected UID GID ARGV...");
    }
    let num = |s: &str| s.parse().unwrap_or_else(|_| die(&format!("bad id {s:?}")));
    Cmd {
        name: args[2].clone(),
        uid: num(&args[0]),
        gid: num(&args[1]),
        mntns: None,
        argv: args[2..].to_vec(),
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let num = |i: usize| -> usize {
        a.get(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| die("bad number"))
    };
    match a.get(1).map(String::as_str) {
        Some("interleaved") if a.len() == 7 => interleaved(num(2), num(3), &a[4], &a[5], &a[6]),
        Some("concurrent") if a.len() > 5 => concurrent(num(2), num(3), &a[4], cmd_from(&a[5..])),
        Some("once") if a.len() > 2 => {
            let d = cmd_from(&a[2..]).time();
            println!("{:.3}", d.as_secs_f64() * 1e3);
        }
        _ => {
            eprintln!("usage: see the comment at the top of tests/bench/timeloop.rs");
            let _ = std::io::stderr().flush();
            std::process::exit(2)
        }
    }
}
