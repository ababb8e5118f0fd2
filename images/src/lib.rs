//! Payload root filesystems.
#![forbid(unsafe_code)]
