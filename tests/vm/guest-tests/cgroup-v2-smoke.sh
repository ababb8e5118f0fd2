#!/bin/sh
# Guest-side checks that the VM is a faithful cgroup-v2 testbed: the behaviours the sandbox
# engine relies on (cgroup v2 "Documentation/admin-guide/cgroup-v2.rst", clone(2), user
# namespaces) really happen here. Each check asserts on kernel-reported state and fails on a
# mismatch; a control case next to each limit shows the limit, not something else, is the cause.
#
# Runs as root inside tests/vm/run.sh (PILOTBOX_IN_VM=1) under PILOTBOX_TEST_CGROUP_ROOT, whose
# children get every controller. Everything it creates lives under $base and is removed at exit.
set -u
if [ "${PILOTBOX_IN_VM:-}" != 1 ]; then
    echo "cgroup-v2-smoke: refusing to run outside the test VM (PILOTBOX_IN_VM!=1)" >&2
    exit 2
fi
cg=/sys/fs/cgroup
base=$cg${PILOTBOX_TEST_CGROUP_ROOT:?}/smoke
H=${PILOTBOX_VM_HELPERS:?}
vuid=${PILOTBOX_VM_UID:?}
vgid=${PILOTBOX_VM_GID:?}
tmp=$(mktemp -d)
npass=0 nfail=0

# --- helpers ---------------------------------------------------------------------------------
fail() { echo "    FAIL: $*"; return 1; }
note() { echo "    $*"; }
# run_test NAME: runs function test_NAME, counts the result.
run_test() {
    echo "--- $1"
    if "test_$1"; then npass=$((npass + 1)); echo "    ok"; else nfail=$((nfail + 1)); fi
}
# in_cg DIR CMD...: exec CMD as a member of cgroup DIR. To run it in the background use
# `sh -c "$IN_CG" DIR CMD... &` so that $! is the pid that joins DIR.
IN_CG='echo $$ > "$0/cgroup.procs" && exec "$@"'
in_cg() { sh -c "$IN_CG" "$@"; }
# kwrite FILE VALUE: write to a kernel interface file with coreutils echo, whose error message
# carries errno (dash's builtin echo only says "I/O error").
kwrite() { /bin/echo "$2" > "$1"; }
# key_of FILE KEY: the value of "KEY value" in a flat-keyed cgroup file.
key_of() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
# wait_until TENTHS CMD...: polls CMD every 0.1 s, at most TENTHS times.
wait_until() {
    _wu_n=$1; shift
    while [ "$_wu_n" -gt 0 ]; do "$@" && return 0; sleep 0.1; _wu_n=$((_wu_n - 1)); done
    return 1
}
events_is() { grep -qx "$2 $3" "$1/cgroup.events"; }
nprocs_at_least() { [ "$(grep -c . "$1/cgroup.procs")" -ge "$2" ]; }
key_at_least() { _ka_v=$(key_of "$1" "$2"); [ "${_ka_v:-0}" -ge "$3" ]; }
file_differs() { _fd_v=$(cat "$1"); [ -n "$_fd_v" ] && [ "$_fd_v" != "$2" ]; }
# new_cg NAME: a fresh child of $base (all controllers available in it).
new_cg() { rmdir "$base/$1" 2>/dev/null; mkdir "$base/$1" && echo "$base/$1"; }
# destroy DIR: kill its processes, remove it and its children.
destroy() {
    [ -d "$1" ] || return 0
    echo 1 > "$1/cgroup.kill" 2>/dev/null
    wait_until 50 events_is "$1" populated 0
    find "$1" -depth -type d -exec rmdir {} + 2>/dev/null
    [ ! -d "$1" ] || echo "    WARNING: could not remove $1"
}
as_user() { setpriv --reuid="$vuid" --regid="$vgid" --clear-groups "$@"; }
cleanup() { destroy "$base"; rm -rf "$tmp"; }
trap cleanup EXIT

# --- the checks ------------------------------------------------------------------------------

test_pure_v2_nsdelegate() {
    own=$(cat /proc/self/cgroup)
    case $own in 0::/*) ;; *) fail "/proc/self/cgroup is not v2-only: $own"; return 1 ;; esac
    [ "$(grep -c . /proc/self/cgroup)" = 1 ] || { fail "v1 hierarchies in /proc/self/cgroup"; return 1; }
    v1=$(awk '$3 == "cgroup"' /proc/mounts)
    [ -z "$v1" ] || { fail "cgroup v1 mounted: $v1"; return 1; }
    opts=$(awk -v m="$cg" '$2 == m && $3 == "cgroup2" { print $4 }' /proc/mounts)
    case ",$opts," in *,nsdelegate,*) ;; *) fail "cgroup2 at $cg lacks nsdelegate: '$opts'"; return 1 ;; esac
    case ",$opts," in *,memory_recursiveprot,*) ;; *) fail "no memory_recursiveprot: '$opts'"; return 1 ;; esac
    # cgroup_no_v1=all: no controller may be bound to a v1 hierarchy.
    bound=$(awk 'NR > 1 && $2 != 0 { print $1 }' /proc/cgroups)
    [ -z "$bound" ] || { fail "controllers on v1 hierarchies: $bound"; return 1; }
}

test_controllers_delegated() {
    for c in cpu memory pids io cpuset; do
        grep -qw "$c" "$base/cgroup.controllers" ||
            { fail "$c not available in $base: $(cat "$base/cgroup.controllers")"; return 1; }
        echo "+$c" > "$base/cgroup.subtree_control" || { fail "cannot enable $c in $base"; return 1; }
    done
    leaf=$(new_cg leaf) || return 1
    for f in cpu.max cpu.weight memory.max memory.swap.max memory.peak memory.events pids.max \
             io.max io.weight cpuset.cpus cgroup.kill cgroup.freeze; do
        [ -e "$leaf/$f" ] || { fail "$leaf/$f missing"; rmdir "$leaf"; return 1; }
    done
    rmdir "$leaf"
}

test_no_internal_process() {
    busy=$(new_cg busy) || return 1
    sh -c "$IN_CG" "$busy" sleep 300 &
    pid=$!
    wait_until 50 grep -qx "$pid" "$busy/cgroup.procs" || { fail "sleep never joined $busy"; destroy "$busy"; return 1; }
    # A cgroup with processes may not enable controllers for children (EBUSY) ...
    if err=$(kwrite "$busy/cgroup.subtree_control" +memory 2>&1); then
        fail "enabling +memory in a populated cgroup succeeded"; destroy "$busy"; return 1
    fi
    case $err in *"busy"*) ;; *) fail "want EBUSY, got: $err"; destroy "$busy"; return 1 ;; esac
    # ... and a cgroup with enabled controllers accepts no process ($base has them enabled).
    if err=$(kwrite "$base/cgroup.procs" $pid 2>&1); then
        fail "moving a process into $base (subtree_control set) succeeded"; destroy "$busy"; return 1
    fi
    case $err in *"busy"*) ;; *) fail "want EBUSY on cgroup.procs, got: $err"; destroy "$busy"; return 1 ;; esac
    # Control: once empty, the same write succeeds.
    destroy "$busy"; wait $pid 2>/dev/null
    busy=$(new_cg busy) || return 1
    echo +memory > "$busy/cgroup.subtree_control" || { fail "+memory on the empty cgroup failed"; rmdir "$busy"; return 1; }
    rmdir "$busy"
}

test_memory_oom_peak_swap() {
    leaf=$(new_cg mem) || return 1
    echo 32M > "$leaf/memory.max" && echo 0 > "$leaf/memory.swap.max" ||
        { fail "cannot set memory.max/memory.swap.max"; rmdir "$leaf"; return 1; }
    [ "$(cat "$leaf/memory.swap.max")" = 0 ] || { fail "memory.swap.max reads $(cat "$leaf/memory.swap.max")"; rmdir "$leaf"; return 1; }
    # Control: 8 MiB fits.
    in_cg "$leaf" dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null ||
        { fail "an 8 MiB dd failed under memory.max=32M"; destroy "$leaf"; return 1; }
    # 64 MiB buffer under a 32 MiB limit without swap: the OOM killer must SIGKILL it.
    in_cg "$leaf" dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null
    rc=$?
    kills=$(key_of "$leaf/memory.events" oom_kill)
    peak=$(cat "$leaf/memory.peak")
    note "dd exit $rc, memory.events oom_kill=$kills, memory.peak=$peak"
    destroy "$leaf"
    [ "$rc" = 137 ] || { fail "dd exit $rc, want 137 (SIGKILL)"; return 1; }
    [ "${kills:-0}" -ge 1 ] || { fail "memory.events oom_kill=$kills, want >= 1"; return 1; }
    [ "$peak" -gt $((16 << 20)) ] && [ "$peak" -le $((32 << 20)) ] ||
        { fail "memory.peak=$peak, want (16 MiB, 32 MiB]"; return 1; }
}

test_pids_max() {
    leaf=$(new_cg pids) || return 1
    echo 5 > "$leaf/pids.max" || { fail "cannot set pids.max"; rmdir "$leaf"; return 1; }
    in_cg "$leaf" sh -c 'i=0; while [ $i -lt 10 ]; do sleep 300 & i=$((i + 1)); done; wait' 2>/dev/null &
    wait_until 100 key_at_least "$leaf/pids.events" max 1
    n=$(grep -c . "$leaf/cgroup.procs")
    cur=$(cat "$leaf/pids.current")
    max_events=$(key_of "$leaf/pids.events" max)
    note "processes=$n pids.current=$cur pids.events max=$max_events"
    destroy "$leaf"; wait
    [ "${max_events:-0}" -ge 1 ] || { fail "pids.events max=$max_events, want >= 1"; return 1; }
    [ "$n" -le 5 ] && [ "$cur" -le 5 ] || { fail "$n processes / pids.current=$cur above pids.max=5"; return 1; }
}

test_cpu_max_throttling() {
    leaf=$(new_cg cpu) || return 1
    echo "10000 100000" > "$leaf/cpu.max" || { fail "cannot set cpu.max"; rmdir "$leaf"; return 1; }
    in_cg "$leaf" timeout 2 sh -c 'while :; do :; done'
    thr=$(key_of "$leaf/cpu.stat" nr_throttled)
    periods=$(key_of "$leaf/cpu.stat" nr_periods)
    usage=$(key_of "$leaf/cpu.stat" usage_usec)
    note "cpu.max 10ms/100ms: used ${usage}us over $periods periods, nr_throttled=$thr"
    destroy "$leaf"
    [ "${thr:-0}" -ge 1 ] || { fail "cpu.stat nr_throttled=$thr, want >= 1"; return 1; }
    # The quota is 10 ms per period; allow 50% slack for tick-granular enforcement. (Wall time is
    # no yardstick: under TCG even exec'ing the loop takes several throttled periods.)
    [ "$usage" -le $((periods * 15000)) ] ||
        { fail "usage_usec=$usage over $periods periods exceeds the 10 ms/period quota"; return 1; }
}

test_cgroup_kill_tree() {
    leaf=$(new_cg kill) || return 1
    fifo=$tmp/never-written
    mkfifo "$fifo"
    # 10 subshells each forking 10 children blocked opening a FIFO nobody writes: 110 processes
    # in a tree, no exec needed (fast under TCG).
    in_cg "$leaf" sh -c 'for i in 0 1 2 3 4 5 6 7 8 9; do
        ( for j in 0 1 2 3 4 5 6 7 8 9; do ( : < "$1" ) & done; wait ) &
    done; wait' sh "$fifo" &
    wait_until 300 nprocs_at_least "$leaf" 111 ||
        { fail "only $(grep -c . "$leaf/cgroup.procs") processes started"; destroy "$leaf"; return 1; }
    pids=$(cat "$leaf/cgroup.procs")
    echo 1 > "$leaf/cgroup.kill" || { fail "write cgroup.kill"; destroy "$leaf"; return 1; }
    wait_until 100 events_is "$leaf" populated 0 || { fail "cgroup still populated after cgroup.kill"; destroy "$leaf"; return 1; }
    wait
    alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
    note "$(echo "$pids" | grep -c .) processes killed by one cgroup.kill write, $alive alive after"
    rmdir "$leaf"
    [ "$alive" = 0 ] || { fail "$alive processes survived cgroup.kill"; return 1; }
}

test_freeze_thaw() {
    leaf=$(new_cg freeze) || return 1
    ctr=$tmp/counter
    in_cg "$leaf" sh -c 'i=0; while :; do i=$((i + 1)); echo $i > "$0"; done' "$ctr" &
    wait_until 50 test -s "$ctr" || { fail "counter never started"; destroy "$leaf"; return 1; }
    echo 1 > "$leaf/cgroup.freeze"
    wait_until 100 events_is "$leaf" frozen 1 || { fail "cgroup.events never said frozen 1"; destroy "$leaf"; return 1; }
    a=$(cat "$ctr"); sleep 1; b=$(cat "$ctr")
    [ "$a" = "$b" ] || { fail "counter moved while frozen: $a -> $b"; destroy "$leaf"; return 1; }
    echo 0 > "$leaf/cgroup.freeze"
    wait_until 100 events_is "$leaf" frozen 0 || { fail "cgroup.events never said frozen 0"; destroy "$leaf"; return 1; }
    wait_until 50 file_differs "$ctr" "$b" || { fail "counter did not move after thaw"; destroy "$leaf"; return 1; }
    note "frozen at $b, running again at $(cat "$ctr")"
    destroy "$leaf"; wait
}

test_nsdelegate_boundary() {
    leaf=$(new_cg nsd) || return 1
    # Control: root outside a cgroup namespace may set the limit.
    echo 100M > "$leaf/memory.max" || { fail "root cannot write $leaf/memory.max"; rmdir "$leaf"; return 1; }
    # Inside a cgroup namespace rooted at $leaf, the namespace root's own interface files are
    # not writable, even for root (nsdelegate: the namespace is a delegation boundary).
    out=$(in_cg "$leaf" unshare -C sh -c "cat /proc/self/cgroup; /bin/echo 50M > $leaf/memory.max" 2>&1)
    rc=$?
    limit=$(cat "$leaf/memory.max")
    destroy "$leaf"
    note "in cgroupns: $(echo "$out" | tr '\n' ' ')"
    [ $rc -ne 0 ] || { fail "write to the namespace root's memory.max succeeded inside it"; return 1; }
    case $out in *"0::/"*"not permitted"*) ;; *) fail "want EPERM inside a cgroupns at /, got: $out"; return 1 ;; esac
    [ "$limit" = $((100 << 20)) ] || { fail "memory.max changed to $limit"; return 1; }
}

test_clone_into_cgroup() {
    leaf=$(new_cg clone) || return 1
    got=$("$H/clone-into-cgroup" "$leaf" cat /proc/self/cgroup)
    rc=$?
    want="0::${PILOTBOX_TEST_CGROUP_ROOT}/smoke/clone"
    [ $rc = 0 ] && [ "$got" = "$want" ] || { fail "clone3(CLONE_INTO_CGROUP) rc=$rc: got '$got', want '$want'"; rmdir "$leaf"; return 1; }
    # The no-internal-process rule applies to CLONE_INTO_CGROUP too: $base has controllers on.
    err=$("$H/clone-into-cgroup" "$base" true 2>&1)
    rc=$?
    rmdir "$leaf"
    [ $rc = 99 ] || { fail "clone3 into $base (subtree_control set) gave rc=$rc, want 99 (EBUSY)"; return 1; }
    case $err in *"busy"*) ;; *) fail "want EBUSY, got: $err"; return 1 ;; esac
}

test_userns_nonroot() {
    [ "$(as_user id -u)" = "$vuid" ] || { fail "setpriv to uid $vuid failed"; return 1; }
    got=$(as_user unshare -Ur id -u 2>&1)
    [ "$got" = 0 ] || { fail "unshare -Ur id -u as uid $vuid printed: $got"; return 1; }
    map=$(as_user unshare -Ur cat /proc/self/uid_map | awk '{ print $1, $2, $3 }')
    [ "$map" = "0 $vuid 1" ] || { fail "uid_map '$map', want '0 $vuid 1'"; return 1; }
}

test_pivot_root_in_userns() {
    # What the engine does for a payload root: a non-root caller, new user + mount namespace,
    # a fresh tmpfs as new root, pivot_root(2). Fails if the guest root were a plain chroot or
    # not a mount (the initramfs pitfall runc's --no-pivot exists for).
    got=$(as_user unshare -Urm sh -c 'mount -t tmpfs pbroot /tmp && mkdir /tmp/old && cd /tmp &&
        pivot_root . old && cd / && [ -d /old/proc ] && [ ! -e /proc/self ] && echo pivoted' 2>&1)
    [ "$got" = pivoted ] || { fail "pivot_root in a userns as uid $vuid: $got"; return 1; }
}

test_setuid_root_binary() {
    # From the host's root (virtiofs lower layer of the overlay), run by an unprivileged user.
    got=$(as_user "$H/show-ids")
    case $got in "ruid=$vuid euid=0 "*) ;; *) fail "setuid-root helper from the host printed: $got"; return 1 ;; esac
    # From a guest tmpfs, made setuid by guest root (how launcher tests can install pilotbox).
    cp "$H/show-ids" "$tmp/show-ids" && chown 0:0 "$tmp/show-ids" && chmod 4755 "$tmp/show-ids"
    chmod 0755 "$tmp"
    got=$(as_user "$tmp/show-ids")
    case $got in "ruid=$vuid euid=0 "*) ;; *) fail "setuid-root copy on tmpfs printed: $got"; return 1 ;; esac
    # And the host's own setuid binaries keep owner and mode.
    st=$(stat -c '%u %A' /usr/bin/su)
    case $st in "0 -rwsr-xr-x") ;; *) fail "/usr/bin/su shows as '$st'"; return 1 ;; esac
}

mkdir "$base" || { echo "cannot create $base"; exit 1; }
for t in pure_v2_nsdelegate controllers_delegated no_internal_process memory_oom_peak_swap \
         pids_max cpu_max_throttling cgroup_kill_tree freeze_thaw nsdelegate_boundary \
         clone_into_cgroup userns_nonroot pivot_root_in_userns setuid_root_binary; do
    run_test $t
done
echo "cgroup-v2-smoke: $npass passed, $nfail failed"
[ "$nfail" = 0 ]
