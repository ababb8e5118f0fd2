//! pilotbox policy: everything that decides *whether* and *as whom* a payload runs.
//!
//! This crate needs no privilege and never makes a privileged syscall: the launcher calls it
//! with its effective uid dropped to the caller's, on bytes the caller supplied. Keep it that way
//! (it is the part we fuzz).
//!
//! - [`identity`]: the verified grid identity that credential checking produces and
//!   authorization consumes.
//! - [`class`]: the exit classes every denial carries (docs/design.md "Exit status").
//! - [`config`]: the site policy file (fixed path, permission checks, schema).
//! - [`authz`]: bans, mapping rules, limits and the [`authz::decide`] function.
//! - [`dn`]: distinguished names (OpenSSL slash form, RFC 2253, comparison), shared by all.
//! - [`mapfile`]: grid-mapfile / group-mapfile parsers and Argus mapping semantics.
//! - [`lease`]: pool-account leases (SQLite store, LCMAPS/Argus gridmapdir).
#![forbid(unsafe_code)]

pub mod authz;
pub mod class;
pub mod config;
pub mod credentials;
pub mod dn;
pub mod identity;
pub mod lease;
pub mod mapfile;
pub mod voms;

pub use class::{Class, Denial};
pub use identity::{Identity, ProxyType, Voms};
