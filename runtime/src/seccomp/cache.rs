//! On-disk cache of compiled filters, so that a launch pays for reading a few kilobytes instead of
//! a libseccomp compilation (~milliseconds for the default profile).
//!
//! `<cache_dir>/<hex>.bpf`, where `<hex>` is the SHA-256 of a format tag, the libseccomp version,
//! the target architecture and the profile's JSON (serde serialises struct fields in declaration
//! order, so equal profiles give equal bytes). A cache file is trusted only as far as its owner:
//! a planted or swapped `.bpf` file would silently replace the payload's filter, so both the
//! directory and the file must belong to the effective uid and must not be group- or
//! world-writable, and the file must be a regular file reached without following a symlink;
//! otherwise the cache is refused with [`SeccompError::UnsafeCache`] (fail closed, with a reason an
//! admin can act on). Every check is made on the opened descriptors (`fstat`), and the file is
//! opened relative to the checked directory descriptor, so nothing can be swapped in between.
//!
//! File format: `PBXBPF01` magic, flags (u32 LE), program length in bytes (u32 LE), SHA-256 of
//! the program, the program. A short, truncated or bit-flipped file fails the length/checksum test
//! and is recompiled and rewritten. Writes go to a unique temporary file (O_EXCL, mode 0600),
//! fsync, then `renameat` over the final name: readers see the old file or the new one, never a
//! partial one.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag, AT_FDCWD};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};
use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

use super::filter::{BPF_MAXINSNS, SOCK_FILTER_SIZE};
use super::{compile, CompiledFilter, SeccompError};

const MAGIC: &[u8; 8] = b"PBXBPF01";
const HEADER_LEN: usize = 8 + 4 + 4 + 32;
const MAX_FILE_LEN: usize = HEADER_LEN + BPF_MAXINSNS * SOCK_FILTER_SIZE;
/// Changing the key derivation or file format must change this tag.
const KEY_TAG: &[u8] = b"pilotbox-seccomp-cache-v1";

/// Where a filter returned by [`compile_cached_with_outcome`] came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// No cache directory was given: compiled.
    Uncached,
    /// Read from the cache file; libseccomp was not called.
    Hit,
    /// Not in the cache: compiled, and stored unless `stored` is false (a write error is logged,
    /// not fatal: the cache is only an optimisation).
    Miss { stored: bool },
    /// The cache file was corrupt (`reason`): recompiled and rewritten.
    Replaced { reason: &'static str },
}

/// [`compile`] with an on-disk cache in `cache_dir` (see the module docs); `None` compiles.
pub fn compile_cached(
    profile: &LinuxSeccomp,
    cache_dir: Option<&Path>,
) -> Result<CompiledFilter, SeccompError> {
    compile_cached_with_outcome(profile, cache_dir).map(|(f, _)| f)
}

/// Like [`compile_cached`], also telling whether the cache was used (for tests and metrics).
pub fn compile_cached_with_outcome(
    profile: &LinuxSeccomp,
    cache_dir: Option<&Path>,
) -> Result<(CompiledFilter, CacheOutcome), SeccompError> {
    let Some(dir_path) = cache_dir else {
        return Ok((compile(profile)?, CacheOutcome::Uncached));
    };
    let dir = open_trusted_dir(dir_path)?;
    let name = format!("{}.bpf", cache_key(profile)?);
    let file_path = dir_path.join(&name);

    let replaced = match openat(
        &dir,
        name.as_str(),
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => {
            let bytes = read_trusted_file(fd, &file_path)?;
            match decode(&bytes) {
                Ok(filter) => return Ok((filter, CacheOutcome::Hit)),
                Err(reason) => {
                    tracing::warn!(path = %file_path.display(), reason, "seccomp cache file is corrupt, recompiling");
                    Some(reason)
                }
            }
        }
        Err(Errno::ENOENT) => None,
        Err(Errno::ELOOP) => {
            return Err(SeccompError::UnsafeCache {
                path: file_path,
                why: "is a symbolic link".into(),
            })
        }
        Err(e) => {
            return Err(SeccompError::CacheIo {
                path: file_path,
                op: "open",
                source: e,
            })
        }
    };

    let filter = compile(profile)?;
    let stored = match store(&dir, &name, &filter) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(path = %file_path.display(), error = %e, "could not write the seccomp cache file");
            false
        }
    };
    let outcome = match replaced {
        Some(reason) => CacheOutcome::Replaced { reason },
        None => CacheOutcome::Miss { stored },
    };
    Ok((filter, outcome))
}

/// The cache key: hex SHA-256 over format tag, libseccomp version, architecture and profile JSON.
fn cache_key(profile: &LinuxSeccomp) -> Result<String, SeccompError> {
    let version = libseccomp::ScmpVersion::current()
        .map_err(|e| SeccompError::libseccomp("query the library version", e))?;
    let json = serde_json::to_vec(profile)
        .map_err(|e| SeccompError::InvalidProfile(format!("cannot serialise profile: {e}")))?;
    let mut h = Sha256::new();
    for part in [
        KEY_TAG,
        format!("{}.{}.{}", version.major, version.minor, version.micro).as_bytes(),
        std::env::consts::ARCH.as_bytes(),
        &json,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens the cache directory (creating it 0700 if absent) and checks who could write into it.
fn open_trusted_dir(path: &Path) -> Result<OwnedFd, SeccompError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::open(path, flags, Mode::empty()) {
        Err(Errno::ENOENT) => {
            match mkdirat(AT_FDCWD, path, Mode::S_IRWXU) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => {
                    return Err(SeccompError::CacheIo {
                        path: path.into(),
                        op: "mkdir",
                        source: e,
                    })
                }
            }
            nix::fcntl::open(path, flags, Mode::empty())
        }
        other => other,
    };
    let fd = match fd {
        Ok(fd) => fd,
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
            return Err(SeccompError::UnsafeCache {
                path: path.into(),
                why: "is not a directory (or is a symlink)".into(),
            })
        }
        Err(e) => {
            return Err(SeccompError::CacheIo {
                path: path.into(),
                op: "open directory",
                source: e,
            })
        }
    };
    let file = File::from(fd);
    check_owner_and_mode(&file, path, true)?;
    Ok(file.into())
}

/// Checks the opened file, then reads at most one maximal cache file from it.
fn read_trusted_file(fd: OwnedFd, path: &Path) -> Result<Vec<u8>, SeccompError> {
    let file = File::from(fd);
    check_owner_and_mode(&file, path, false)?;
    let mut bytes = Vec::with_capacity(MAX_FILE_LEN);
    file.take(MAX_FILE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| SeccompError::CacheIo {
            path: path.into(),
            op: "read",
            source: io_errno(&e),
        })?;
    Ok(bytes)
}

fn check_owner_and_mode(file: &File, path: &Path, want_dir: bool) -> Result<(), SeccompError> {
    let unsafe_cache = |why: String| SeccompError::UnsafeCache {
        path: path.into(),
        why,
    };
    let meta = file.metadata().map_err(|e| SeccompError::CacheIo {
        path: path.into(),
        op: "fstat",
        source: io_errno(&e),
    })?;
    if want_dir && !meta.is_dir() {
        return Err(unsafe_cache("is not a directory".into()));
    }
    if !want_dir && !meta.is_file() {
        return Err(unsafe_cache("is not a regular file".into()));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(unsafe_cache(format!(
            "is owned by uid {}, not by the effective uid {euid}",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_cache(format!(
            "is group- or world-writable (mode {:o})",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO)
}

fn encode(filter: &CompiledFilter) -> Vec<u8> {
    let bpf = filter.as_bpf_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + bpf.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&filter.flags().to_le_bytes());
    out.extend_from_slice(&(bpf.len() as u32).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(bpf));
    out.extend_from_slice(bpf);
    out
}

fn decode(bytes: &[u8]) -> Result<CompiledFilter, &'static str> {
    if bytes.len() < HEADER_LEN {
        return Err("shorter than the header");
    }
    if bytes.len() > MAX_FILE_LEN {
        return Err("longer than any valid program");
    }
    let (header, bpf) = bytes.split_at(HEADER_LEN);
    if &header[..8] != MAGIC {
        return Err("bad magic");
    }
    let word = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let flags = word(8);
    if word(12) as usize != bpf.len() {
        return Err("length does not match the header (truncated?)");
    }
    if Sha256::digest(bpf).as_slice() != &header[16..48] {
        return Err("checksum mismatch");
    }
    CompiledFilter::from_bpf_bytes(bpf.to_vec())
        .and_then(|f| f.with_flags(flags))
        .map_err(|_| "not a loadable program")
}

/// Writes the cache file atomically: unique temp file (O_EXCL, 0600), fsync, rename.
fn store(dir: &OwnedFd, name: &str, filter: &CompiledFilter) -> Result<(), Errno> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dir, tmp.as_str(), flags, Mode::S_IRUSR | Mode::S_IWUSR)?;
    let result = (|| {
        let mut file = File::from(fd);
        file.write_all(&encode(filter)).map_err(|e| io_errno(&e))?;
        nix::unistd::fsync(file.as_fd())?;
        renameat(dir, tmp.as_str(), dir, name)
    })();
    if result.is_err() {
        let _ = unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_roundtrip_and_corruption() {
        let f = CompiledFilter::from_bpf_bytes((0u8..64).collect())
            .unwrap()
            .with_flags(2)
            .unwrap();
        let bytes = encode(&f);
        assert_eq!(decode(&bytes).unwrap(), f);
        assert_eq!(
            decode(&bytes[..bytes.len() - 8]),
            Err("length does not match the header (truncated?)")
        );
        assert_eq!(decode(&bytes[..20]), Err("shorter than the header"));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(decode(&flipped), Err("checksum mismatch"));
        let mut magic = bytes;
        magic[0] = b'X';
        assert_eq!(decode(&magic), Err("bad magic"));
    }
}
