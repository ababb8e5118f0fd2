#!/bin/sh
# Runs every policy fuzz target for SECONDS each (default 30): the bounded CI run.
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain (`rustup toolchain
# install nightly`); with only stable, RUSTC_BOOTSTRAP=1 is tried instead. See docs/fuzzing.md.
set -eu
SECONDS_EACH="${1:-30}"
cd "$(dirname "$0")"
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ="cargo +nightly fuzz"
else
    export RUSTC_BOOTSTRAP=1
    FUZZ="cargo fuzz"
fi
for target in $($FUZZ list); do
    echo "== $target (${SECONDS_EACH}s)"
    mkdir -p "corpus/$target"
    $FUZZ run "$target" "corpus/$target" -- -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=1024
done
