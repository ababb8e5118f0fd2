//! Node daemon.
#![forbid(unsafe_code)]
