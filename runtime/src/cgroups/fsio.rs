//! Small cgroupfs file helpers that turn `io::Error`s into [`CgroupError`]s naming the file.
//!
//! cgroupfs control files are written with one `write(2)` of the whole value, without `O_TRUNC`
//! or `O_CREAT` (they are not regular files; `cgroup.procs` takes one pid per write).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{CgroupError, Result};
use super::parse;

/// Read a control file to a string.
pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })
}

/// Read a control file; `Ok(None)` when it does not exist (older kernel, controller not enabled).
pub fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Io {
            op: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Write `value` to a control file in a single write.
pub fn write(path: &Path, value: &str) -> Result<()> {
    let err = |source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    };
    let mut f = OpenOptions::new().write(true).open(path).map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

/// A flat-keyed value of a control file, `None` if the file or the key is absent.
pub fn read_keyed(path: &Path, key: &str) -> Result<Option<u64>> {
    Ok(read_opt(path)?.and_then(|t| parse::flat_keyed(&t, key)))
}

/// A single-number control file (`memory.peak`, `pids.peak`), `None` if absent.
pub fn read_u64_opt(path: &Path) -> Result<Option<u64>> {
    match read_opt(path)? {
        None => Ok(None),
        Some(t) => t.trim().parse().map(Some).map_err(|_| CgroupError::Parse {
            path: path.to_owned(),
            reason: format!("not a number: {:?}", t.trim()),
        }),
    }
}

/// The pids in `dir/cgroup.procs`; empty if the directory vanished meanwhile.
pub fn procs(dir: &Path) -> Result<Vec<i32>> {
    let p = dir.join("cgroup.procs");
    match read_opt(&p)? {
        None => Ok(Vec::new()),
        Some(t) => parse::pid_list(&t).map_err(|reason| CgroupError::Parse { path: p, reason }),
    }
}

/// `dir` and every sub-cgroup below it, parents before children.
pub fn subtree(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_owned()];
    let mut i = 0;
    while i < out.len() {
        let entries = match std::fs::read_dir(&out[i]) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                i += 1;
                continue;
            }
            Err(source) => {
                return Err(CgroupError::Io {
                    op: "list",
                    path: out[i].clone(),
                    source,
                })
            }
        };
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(e.path());
            }
        }
        i += 1;
    }
    Ok(out)
}

/// `mkdir` one cgroup directory. Returns `true` if it was created, `false` if it existed.
pub fn mkdir(path: &Path) -> Result<bool> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(CgroupError::Io {
            op: "mkdir",
            path: path.to_owned(),
            source,
        }),
    }
}

/// `rmdir` a cgroup directory; a missing one is fine (idempotent). `EBUSY` right after the last
/// task exited is transient (the kernel still tears down the css), so retry with backoff for
/// about a second, as runc's RemovePath does.
pub fn rmdir(path: &Path) -> Result<()> {
    let mut delay = Duration::from_millis(5);
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 8 => {
                std::thread::sleep(delay);
                delay *= 2;
                tries += 1;
            }
            Err(source) => {
                return Err(CgroupError::Io {
                    op: "rmdir",
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Remove `dir` and all its sub-cgroups, children first.
pub fn rmdir_tree(dir: &Path) -> Result<()> {
    for d in subtree(dir)?.iter().rev() {
        rmdir(d)?;
    }
    Ok(())
}
