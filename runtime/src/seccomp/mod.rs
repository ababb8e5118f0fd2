//! Seccomp layer of the sandbox engine: the default syscall profile, its compilation to classic
//! BPF with libseccomp, an on-disk cache of the compiled program, and loading it into the payload.
//!
//! The flow, as the engine uses it:
//!
//! 1. [`default_profile`] (or a profile taken from the Spec) gives an OCI
//!    [`LinuxSeccomp`](oci_spec::runtime::LinuxSeccomp);
//! 2. [`compile_cached`] turns it into a [`CompiledFilter`] — compiled with libseccomp the first
//!    time, then read back from `<cache_dir>/<sha256>.bpf`, so a launch pays for a file read and a
//!    checksum instead of a libseccomp compilation;
//! 3. in the forked child, after `no_new_privs` and right before `execve`, the engine calls
//!    [`CompiledFilter::load`], which performs one `seccomp(2)` system call and allocates nothing.
//!
//! Only [`CompiledFilter::load`]'s raw system call is `unsafe`; the rest of this module is safe
//! code (enforced by `deny(unsafe_code)` below).
#![deny(unsafe_code)]

mod cache;
mod compile;
mod error;
mod filter;
mod groups;
mod profile;

pub use cache::{compile_cached, compile_cached_with_outcome, CacheOutcome};
pub use compile::compile;
pub use error::SeccompError;
pub use filter::CompiledFilter;
pub use groups::DELIBERATELY_OMITTED;
pub use profile::{default_profile, ProfileOptions};
