//! Resource limits of a payload: `min(request, cap)`, with the default when nothing is asked.
//!
//! Caps, most specific first: the first `[[limits.cap]]` whose `vo` is the verified VO or whose
//! `fqan` pattern matches a verified FQAN, then `[limits.max]`, then `[limits.default]` (so
//! without any cap nobody gets more than the default). A request above the cap is not refused:
//! it is lowered to the cap and the trail says so (issue 5: "request ≤ cap, else capped and
//! reported").

use crate::config::schema::{LimitSet, Limits as LimitsConf};
use crate::mapfile::fqan::FqanPattern;
use serde::Serialize;

/// What the pilot asked for (`pilotbox run --memory/--pids/--cpus/--walltime`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitRequest {
    pub memory: Option<u64>,
    pub pids: Option<u64>,
    pub cpus: Option<f64>,
    pub walltime: Option<u64>,
}

/// Effective limits; `None` = the site sets no limit of that kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
    pub cpus: Option<f64>,
    pub walltime_s: Option<u64>,
}

/// Effective limits and the trail lines explaining them.
pub fn compute(
    conf: &LimitsConf,
    vo: Option<&str>,
    fqans: &[String],
    req: &LimitRequest,
) -> (Limits, Vec<String>) {
    let mut notes = Vec::new();
    let cap = conf.caps.iter().enumerate().find(|(_, c)| {
        c.vo.as_deref().is_some_and(|v| Some(v) == vo)
            || c.fqan.as_deref().is_some_and(|p| {
                FqanPattern::parse(p)
                    .map(|p| fqans.iter().any(|f| p.matches_str(f)))
                    .unwrap_or(false)
            })
    });
    let (cap_set, cap_name) = match cap {
        Some((i, c)) => {
            let what =
                c.vo.as_ref()
                    .map(|v| format!("vo {v}"))
                    .or(c.fqan.as_ref().map(|f| format!("fqan {f}")));
            (
                c.limits(),
                format!("[[limits.cap]] #{} ({})", i + 1, what.unwrap_or_default()),
            )
        }
        None => (LimitSet::default(), String::new()),
    };
    let src = |specific: bool| {
        if specific {
            cap_name.clone()
        } else {
            "[limits.max]/[limits.default]".into()
        }
    };
    let d = &conf.default;
    let m = &conf.max;

    let mut pick_u64 =
        |name: &str, req: Option<u64>, dflt: Option<u64>, capv: Option<u64>, maxv: Option<u64>| {
            let (cap, specific) = match capv {
                Some(c) => (Some(c), true),
                None => (maxv.or(dflt), false),
            };
            let want = req.or(dflt);
            match (want, cap) {
                (Some(w), Some(c)) if w > c => {
                    notes.push(format!(
                        "{name}: {} {w} exceeds the cap {c} of {}: capped",
                        if req.is_some() {
                            "requested"
                        } else {
                            "default"
                        },
                        src(specific)
                    ));
                    Some(c)
                }
                (Some(w), _) => Some(w),
                (None, c) => c,
            }
        };
    let memory = pick_u64(
        "memory",
        req.memory,
        d.memory.map(|b| b.0),
        cap_set.memory.map(|b| b.0),
        m.memory.map(|b| b.0),
    );
    let pids = pick_u64("pids", req.pids, d.pids, cap_set.pids, m.pids);
    let walltime = pick_u64(
        "walltime",
        req.walltime,
        d.walltime.map(|s| s.0),
        cap_set.walltime.map(|s| s.0),
        m.walltime.map(|s| s.0),
    );
    let cpu_cap = cap_set.cpus.or(m.cpus).or(d.cpus);
    let cpu_want = req.cpus.or(d.cpus);
    let cpus = match (cpu_want, cpu_cap) {
        (Some(w), Some(c)) if w > c => {
            notes.push(format!(
                "cpus: requested {w} exceeds the cap {c} of {}: capped",
                src(cap_set.cpus.is_some())
            ));
            Some(c)
        }
        (Some(w), _) => Some(w),
        (None, c) => c,
    };
    (
        Limits {
            memory_bytes: memory,
            pids,
            cpus,
            walltime_s: walltime,
        },
        notes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use std::path::Path;

    fn conf() -> LimitsConf {
        parse(
            "[limits.default]\nmemory = \"2G\"\npids = 1024\ncpus = 1.0\nwalltime = \"48h\"\n\
             [limits.max]\nmemory = \"4G\"\n\
             [[limits.cap]]\nfqan = \"/testvo/Role=pilot\"\nmemory = \"16G\"\ncpus = 8.0\n\
             [[limits.cap]]\nvo = \"testvo\"\nmemory = \"8G\"\n",
            Path::new("t"),
        )
        .unwrap()
        .limits
    }

    #[test]
    fn default_when_nothing_asked() {
        let (l, notes) = compute(&conf(), None, &[], &LimitRequest::default());
        assert_eq!(
            l,
            Limits {
                memory_bytes: Some(2 << 30),
                pids: Some(1024),
                cpus: Some(1.0),
                walltime_s: Some(172800)
            }
        );
        assert!(notes.is_empty());
    }

    #[test]
    fn request_is_capped_and_reported() {
        let req = LimitRequest {
            memory: Some(32 << 30),
            pids: Some(10),
            cpus: Some(4.0),
            walltime: Some(3600),
        };
        let (l, notes) = compute(&conf(), None, &[], &req);
        assert_eq!(l.memory_bytes, Some(4 << 30), "global max");
        assert_eq!(l.pids, Some(10), "below cap: as asked");
        assert_eq!(l.cpus, Some(1.0), "no max for cpus: the default caps");
        assert_eq!(notes.len(), 2, "{notes:?}");
        let fq = vec!["/testvo/Role=pilot".to_string()];
        let (l, _) = compute(&conf(), Some("testvo"), &fq, &req);
        assert_eq!(
            l.memory_bytes,
            Some(16 << 30),
            "first matching cap (fqan) wins"
        );
        assert_eq!(l.cpus, Some(4.0));
        let (l, notes) = compute(&conf(), Some("testvo"), &["/testvo".to_string()], &req);
        assert_eq!(l.memory_bytes, Some(8 << 30), "vo cap");
        assert!(notes.iter().any(|n| n.contains("vo testvo")), "{notes:?}");
    }
}
