//! pilotbox policy: everything that decides *whether* and *as whom* a payload runs.
//!
//! This crate needs no privilege and never makes a privileged syscall: the launcher calls it
//! with its effective uid dropped to the caller's, on bytes the caller supplied. Keep it that way
//! (it is the part we fuzz).
//!
//! - [`identity`]: the verified grid identity that credential checking produces and
//!   authorization consumes.
//! - [`class`]: the exit classes every denial carries (DESIGN.md "Exit status").
#![forbid(unsafe_code)]

pub mod class;
pub mod credentials;
pub mod identity;

pub use class::{Class, Denial};
pub use identity::{Identity, ProxyType, Voms};
