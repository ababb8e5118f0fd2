//! Human units in `policy.toml`: sizes (`"2G"`, `"512Mi"`, `1073741824`) and durations
//! (`"48h"`, `"30m"`, `"7d"`, `172800`).
//!
//! Sizes use binary multiples whether or not the `i` is written (`2G` = 2 GiB), because that is
//! what cgroup `memory.max`, Slurm `--mem` and HTCondor `RequestMemory` admins expect; `B` and a
//! bare number mean bytes.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("{0:?} is not a size (examples: 512M, 2G, 1Ti, 1048576)")]
    Size(String),
    #[error("{0:?} is not a duration (examples: 90s, 30m, 48h, 7d, 3600)")]
    Duration(String),
}

/// Parse a size with an optional binary suffix (K, M, G, T, optionally followed by `i`/`iB`/`B`).
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let err = || UnitError::Size(s.into());
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| err())?;
    let suffix = suffix.trim();
    let mult: u64 = match suffix
        .to_ascii_uppercase()
        .trim_end_matches('B')
        .trim_end_matches('I')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(err()),
    };
    n.checked_mul(mult).ok_or_else(err)
}

/// Parse a duration in seconds with an optional `s`, `m`, `h`, `d` or `w` suffix.
pub fn parse_duration(s: &str) -> Result<u64, UnitError> {
    let err = || UnitError::Duration(s.into());
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| err())?;
    let mult = match suffix.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return Err(err()),
    };
    n.checked_mul(mult).ok_or_else(err)
}

/// A byte count, written as a number or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Bytes(pub u64);

/// A number of seconds, written as a number or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Seconds(pub u64);

struct UnitVisitor(fn(&str) -> Result<u64, UnitError>, &'static str);

impl Visitor<'_> for UnitVisitor {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.1)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        (self.0)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor(
            parse_size,
            "a size such as 2G or a number of bytes",
        ))
        .map(Bytes)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor(
            parse_duration,
            "a duration such as 48h or a number of seconds",
        ))
        .map(Seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512Mi"), Ok(512 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10k"), Ok(10 << 10));
        for bad in ["", "G", "2X", "-1G", "1.5G", "99999999999999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("48h"), Ok(48 * 3600));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("7d"), Ok(7 * 86400));
        assert_eq!(parse_duration("15"), Ok(15));
        for bad in ["", "h", "3y", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
