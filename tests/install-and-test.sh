#!/bin/sh
# Installs everything the tests need on a fresh Debian 12 machine (as root) and runs all tests.
# This is exactly what CI runs (.ci/run). Safe to re-run.
set -eu
cd "$(dirname "$0")/.."

need_apt=""
for p in libseccomp-dev pkg-config openssl globus-proxy-utils voms-clients busybox-static \
         qemu-system-x86 uidmap util-linux; do
    dpkg -s "$p" >/dev/null 2>&1 || need_apt="$need_apt $p"
done
if [ -n "$need_apt" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_apt
fi

cargo build --workspace --all-targets
cargo test --workspace
