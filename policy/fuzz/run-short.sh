#!/bin/sh
# Bounded CI fuzz run: every policy fuzz target for SECONDS each (default 30); fails on the first
# crash, leak-free timeout or OOM (libFuzzer exits non-zero and leaves artifacts/<target>/).
#
# Works with the stable toolchain only (a clean Debian 12 CI machine): cargo-fuzz is installed
# from crates.io if missing, and RUSTC_BOOTSTRAP=1 lets stable rustc accept the `-Z` flags
# cargo-fuzz passes. `--sanitizer none`: the policy crate is #![forbid(unsafe_code)], so
# AddressSanitizer would only instrument C dependencies while slowing every run; the point here
# is panics, infinite loops and runaway allocation in the parsers. See docs/fuzzing.md.
set -eu
SECONDS_EACH="${1:-30}"
cd "$(dirname "$0")"
export RUSTUP_TOOLCHAIN="${RUSTUP_TOOLCHAIN:-stable}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
FUZZ_FLAGS="--sanitizer none --debug-assertions"
# CI: a dev build compiles several times faster; the short run is a smoke test, not a campaign.
if [ -n "${PILOTBOX_FUZZ_DEV:-}" ]; then
    FUZZ_FLAGS="$FUZZ_FLAGS --dev"
fi
cargo fuzz build $FUZZ_FLAGS
for target in $(cargo fuzz list); do
    echo "== $target (${SECONDS_EACH}s)"
    mkdir -p "corpus/$target"
    seeds=""
    [ -d "seeds/$target" ] && seeds="seeds/$target"
    # shellcheck disable=SC2086 # word splitting of the flags and the optional seed dir is wanted
    cargo fuzz run $FUZZ_FLAGS "$target" "corpus/$target" $seeds -- \
        -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=1024 -timeout=10
done
