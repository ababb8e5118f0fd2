#!/bin/sh
# Boots a real cgroup-v2 Linux kernel (Debian cloud kernel) under QEMU/TCG, with the host's root
# filesystem shared read-only over virtiofs and overlaid privately in the guest, and runs test
# steps in it as root. ONE boot runs every step. See tests/vm/README.md for the design.
#
# Usage: tests/vm/run.sh [options] [-- COMMAND [ARGS...]]
#   --smoke               run every tests/vm/guest-tests/*.sh (the cgroup-v2 testbed checks)
#   --exclude NAME        leave the integration test binary NAME out (repeatable)
#   --cargo-tests CRATE   build `cargo test -p CRATE --no-run` on the host and run each of the
#                         crate's integration test binaries in the guest (--test-threads=1)
#   --test-bin PATH       run one prebuilt Rust test binary in the guest (cwd: current dir)
#   --env K=V             export K=V to every guest step
#   --timeout SECS        hard limit for the VM run (default 540); QEMU is killed after it
#   --no-cache            don't use tests/vm/.cache (also: PILOTBOX_VM_NO_CACHE=1)
#   --keep                keep the work dir (job, plan, results, helpers, virtiofsd log)
#   -- COMMAND...         run COMMAND in the guest, in the current directory
# Steps run in the order: smoke, cargo tests, test binaries, COMMAND.
# Environment: PILOTBOX_VM_TIMEOUT (default for --timeout), PILOTBOX_VM_MEM (guest RAM, 1G),
#   PILOTBOX_VM_VERBOSE=1 (kernel boot messages on the console), PILOTBOX_VM_NO_CACHE=1.
#
# Exit status: 0 all guest steps passed; 1..123 a guest step failed (a single step's own status,
# 1 when several steps ran); 124 timeout; 125 harness error (missing tool, build failure, VM did
# not boot or reported no result); 2 usage error.
#
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
EXIT_TIMEOUT=124
EXIT_HARNESS=125

say() { echo "vm/run: $*" >&2; }
harness_error() { say "HARNESS ERROR: $*"; exit $EXIT_HARNESS; }
usage() { sed -n '6,/^#$/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
shquote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

t_begin=$(date +%s)
work=$(mktemp -d /tmp/pilotbox-vm.XXXXXX)
chmod 0755 "$work"
xfer=$work/xfer
mkdir -m 0755 "$xfer" "$xfer/bin"
: > "$xfer/plan"
: > "$xfer/env"

keep=0
timeout=${PILOTBOX_VM_TIMEOUT:-540}
use_cache=1
[ "${PILOTBOX_VM_NO_CACHE:-0}" = 1 ] && use_cache=0
qemu_pid="" rootfsd_pid="" xferfsd_pid=""

cleanup() {
    for p in $qemu_pid $rootfsd_pid $xferfsd_pid; do
        kill "$p" 2>/dev/null || true
    done
    if [ "$keep" = 1 ]; then say "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

smoke=0 crates="" bins="" ncmd=0 excludes=""
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) smoke=1 ;;
        --cargo-tests) [ $# -ge 2 ] || usage; crates="$crates $2"; shift ;;
        --exclude) [ $# -ge 2 ] || usage; excludes="$excludes $2"; shift ;;
        --test-bin)
            [ $# -ge 2 ] || usage
            [ -x "$2" ] || { say "not an executable: $2"; exit 2; }
            bins="$bins $(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift ;;
        --env)
            [ $# -ge 2 ] || usage
            case ${2%%=*} in
                "$2" | "" | [0-9]* | *[!A-Za-z0-9_]*) say "--env wants NAME=VALUE, got: $2"; exit 2 ;;
            esac
            printf 'export %s=%s\n' "${2%%=*}" "$(shquote "${2#*=}")" >> "$xfer/env"; shift ;;
        --timeout) [ $# -ge 2 ] || usage; timeout=$2; shift ;;
        --no-cache) use_cache=0 ;;
        --keep) keep=1 ;;
        --) shift; ncmd=$#; break ;;
        -h|--help) usage ;;
        *) say "unknown option $1"; usage ;;
    esac
    shift
done
[ "$smoke" = 1 ] || [ -n "$crates" ] || [ -n "$bins" ] || [ "$ncmd" -gt 0 ] || usage
case $timeout in "" | *[!0-9]*) say "--timeout wants whole seconds, got: $timeout"; exit 2 ;; esac

# --- prerequisites ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || harness_error "must run as root (virtiofsd serves / with the host's uids)"
command -v qemu-system-x86_64 >/dev/null || harness_error "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
vfsd=/usr/lib/qemu/virtiofsd
[ -x $vfsd ] || harness_error "$vfsd missing (Debian 12 package qemu-system-common)"
command -v gcc >/dev/null || harness_error "gcc missing (needed for tests/vm/helpers)"
[ -z "$crates" ] || command -v jq >/dev/null || harness_error "jq missing (apt-get install jq)"
if [ "$use_cache" = 1 ]; then cache=$here/.cache; else cache=$work/cache; fi
mkdir -p "$cache"

# --- kernel, initramfs, helpers --------------------------------------------------------------
# Concurrent local runs share the cache: serialize filling it.
exec 9> "$cache/.lock"
flock 9
kdir=$("$here/fetch-kernel.sh" "$cache") || harness_error "could not fetch the kernel package"
vmlinuz=$(ls "$kdir"/tree/boot/vmlinuz-* | head -n 1)
initrd=$("$here/build-initramfs.sh" "$kdir" "$cache") || harness_error "could not build the initramfs"
exec 9>&-
for src in "$here"/helpers/*.c; do
    gcc -O2 -Wall -Werror -o "$xfer/bin/$(basename "$src" .c)" "$src" ||
        harness_error "could not compile $src"
done
# show-ids is the setuid-root probe: proves the shared root keeps ownership and setuid bits.
chmod 4755 "$xfer/bin/show-ids"

# --- the plan ----------------------------------------------------------------------------------
tab=$(printf '\t')
add_step() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$xfer/plan"; }
if [ "$smoke" = 1 ]; then
    for t in "$here"/guest-tests/*.sh; do add_step cmd "smoke/$(basename "$t" .sh)" "$repo" "$t"; done
fi
for crate in $crates; do
    say "building integration tests of $crate"
    (cd "$repo" && cargo test -p "$crate" --no-run --message-format=json) > "$work/cargo-$crate.json" ||
        harness_error "cargo test -p $crate --no-run failed"
    jq -r 'select(.reason == "compiler-artifact" and .executable != null
                  and (.target.kind | index("test")))
           | [.target.name, (.manifest_path | sub("/Cargo.toml$"; "")), .executable] | @tsv' \
        "$work/cargo-$crate.json" > "$work/tests-$crate.tsv"
    [ -s "$work/tests-$crate.tsv" ] || say "note: crate $crate has no integration tests (tests/*.rs)"
    while IFS="$tab" read -r name dir exe; do
        case " $excludes " in
            *" $name "*) say "excluded from the VM: $crate/$name (runs on the host)"; continue ;;
        esac
        add_step test "$crate/$name" "$dir" "$exe"
    done < "$work/tests-$crate.tsv"
done
for b in $bins; do add_step test "bin/$(basename "$b")" "$PWD" "$b"; done
if [ "$ncmd" -gt 0 ]; then
    { for a in "$@"; do printf '%s ' "$(shquote "$a")"; done; echo; } > "$xfer/cmd.sh"
    label=$(printf 'command: %s' "$*" | cut -c1-60)
    add_step cmd "$label" "$PWD" /run/vm-xfer/cmd.sh
fi
[ -s "$xfer/plan" ] || { say "nothing to run"; exit 0; }
printf 'VM_SESSION=%s\n' "$(shquote "$here/guest/session.sh")" > "$xfer/job"
# The work tree may live under /tmp, /var/tmp or /run (a CI clone), which the guest replaces with
# private tmpfs: tell the guest where it is so it can put it back.
printf 'VM_WORKTREE=%s\n' "$(shquote "$(cd "$here/../.." && pwd -P)")" >> "$xfer/job"

# --- boot --------------------------------------------------------------------------------------
# The root share is read-only in the guest and the host's files don't change during a run, so
# the guest may cache it (cache=always: much fewer FUSE round trips under TCG). The xfer share
# is written by the guest and read by the host afterwards: no caching.
start_vfsd() { # socket source cache -> pid in $!
    $vfsd --socket-path="$1" -o source="$2" -o cache="$3" -o sandbox=chroot -o log_level=warn \
        < /dev/null >> "$work/virtiofsd.log" 2>&1 &
}
start_vfsd "$work/root.sock" / always; rootfsd_pid=$!
start_vfsd "$work/xfer.sock" "$xfer" none; xferfsd_pid=$!
i=0
until [ -S "$work/root.sock" ] && [ -S "$work/xfer.sock" ]; do
    i=$((i + 1)); [ $i -le 100 ] || harness_error "virtiofsd did not create its sockets"
    sleep 0.1
done

mem=${PILOTBOX_VM_MEM:-1G}
quiet=quiet
[ "${PILOTBOX_VM_VERBOSE:-0}" = 1 ] && quiet=""
say "booting $(basename "$vmlinuz") ($(grep -c . "$xfer/plan") steps, timeout ${timeout}s)"
t_boot=$(date +%s)
qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m "$mem" \
    -display none -serial stdio -monitor none -no-reboot \
    -object memory-backend-memfd,id=mem,size="$mem",share=on -numa node,memdev=mem \
    -chardev socket,id=vfs0,path="$work/root.sock" -device vhost-user-fs-pci,chardev=vfs0,tag=hostroot \
    -chardev socket,id=vfs1,path="$work/xfer.sock" -device vhost-user-fs-pci,chardev=vfs1,tag=xfer \
    -kernel "$vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 $quiet panic=-1 cgroup_no_v1=all" < /dev/null &
qemu_pid=$!
timed_out=0
deadline=$((t_boot + timeout))
while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        timed_out=1
        say "TIMEOUT: the VM ran longer than ${timeout}s; killing QEMU (pid $qemu_pid)"
        kill "$qemu_pid" 2>/dev/null || true
        sleep 2
        kill -9 "$qemu_pid" 2>/dev/null || true
        break
    fi
    sleep 0.5
done
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=""
# virtiofsd exits when QEMU closes the vhost-user socket; make sure, then reap it. (Until it is
# reaped its pid cannot be reused, so the kill in cleanup() never hits another process.)
kill "$rootfsd_pid" "$xferfsd_pid" 2>/dev/null || true
wait "$rootfsd_pid" "$xferfsd_pid" 2>/dev/null || true
rootfsd_pid="" xferfsd_pid=""
t_end=$(date +%s)

# --- verdict -----------------------------------------------------------------------------------
echo
say "prepare $((t_boot - t_begin))s, VM $((t_end - t_boot))s, total $((t_end - t_begin))s" \
    "(guest reached /init at $(cat "$xfer/booted" 2>/dev/null || echo '?')s uptime)"
[ "$timed_out" = 0 ] || { say "FAIL: timeout after ${timeout}s"; exit $EXIT_TIMEOUT; }
if [ ! -s "$xfer/exit-code" ] && [ -s "$work/virtiofsd.log" ]; then
    say "virtiofsd log:"; sed 's/^/    /' "$work/virtiofsd.log" >&2
fi
[ -s "$xfer/booted" ] ||
    harness_error "the VM never reached /init (QEMU exit $qemu_rc; PILOTBOX_VM_VERBOSE=1 shows kernel messages)"
[ ! -e "$xfer/harness-error" ] || harness_error "guest: $(cat "$xfer/harness-error")"
[ -s "$xfer/exit-code" ] || harness_error "the guest reported no result (crash or panic? QEMU exit $qemu_rc)"
rc=$(cat "$xfer/exit-code")
if [ -s "$xfer/results" ]; then
    say "results:"; sed 's/^/    /' "$xfer/results" >&2
fi
case $rc in
    0) say "PASS"; exit 0 ;;
    125) harness_error "the guest session could not set up (see output above)" ;;
    *[!0-9]*) harness_error "bad exit code from guest: $rc" ;;
esac
say "FAIL: guest exit status $rc"
[ "$rc" -ge 1 ] && [ "$rc" -le 123 ] && exit "$rc"
exit 1
