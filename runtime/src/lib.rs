//! pilotbox sandbox engine: runs an OCI runtime [`oci_spec::runtime::Spec`] as a supervised
//! payload in its own user/pid/mount/ipc/uts/cgroup namespaces and cgroup.
//!
//! Reading order for a reviewer: [`plan`] (what a Spec may ask for), [`launch`] (the process
//! tree and the setup protocol), [`rootfs`] (mounts), [`identity`] (uid/gids/capabilities),
//! [`init`] (pid 1 and the payload's last steps), [`supervisor`]; [`sys`] holds every raw
//! syscall (`unsafe`) in one short file.

pub mod cgroups;
pub mod channel;
pub mod cli;
pub mod engine;
pub mod identity;
pub mod init;
pub mod launch;
pub mod launcher;
pub mod lifecycle;
pub mod network;
pub mod nosuid;
pub mod plan;
pub mod rootfs;
pub mod seccomp;
pub mod spec_builder;
pub mod supervisor;
pub mod sys;
pub mod syscall;
