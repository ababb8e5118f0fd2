//! The `pilotbox run` launcher (docs/launcher-design.md): the setuid-root path from a pilot's
//! call to a supervised payload. One file per step of the launch sequence, in order:
//!
//! 1. [`sanitize`] — environment, fds, signals, umask, rlimits, dumpability (first in `main`);
//! 2. policy and pilot check (`policy::authz`), in `cli/run.rs`;
//! 3. [`credfile`] — read the proxy *as the caller*;
//! 4. [`unprivileged`] — verify it in a child with no privilege;
//! 5. decide (`policy::authz::decide`);
//! 6. [`prepare`] — state dir, proxy copy, work-dir hand-over, the payload Spec;
//! 7. launch and supervise (`engine::run`), writing the [`state`] record once running;
//! 8. finish: report, [`audit`] end record, cleanup.
pub mod audit;
pub mod credfile;
pub mod handover;
pub mod prepare;
pub mod sanitize;
pub mod state;
pub mod unprivileged;
