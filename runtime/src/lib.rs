//! pilotbox sandbox engine: runs an OCI runtime [`oci_spec::runtime::Spec`] as a supervised
//! payload in its own user/pid/mount/ipc/uts/cgroup namespaces and cgroup.
pub mod cli;
