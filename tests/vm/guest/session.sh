#!/bin/sh
# Runs inside the guest, as root, chrooted into the overlay of the host's root (see guest/init).
# Executes the steps listed in /run/vm-xfer/plan, one per line, tab-separated:
#
#   cmd   <label> <cwd> <script>   run `sh <script>` (a file in the xfer dir holding the quoted
#                                  command) in <cwd>
#   test  <label> <cwd> <binary>   run a Rust test binary: `<binary> --test-threads=1` in <cwd>
#                                  (its crate's manifest dir), like `cargo test` would
#
# Every step gets the same environment (see tests/vm/README.md): PILOTBOX_IN_VM=1,
# PILOTBOX_TEST_CGROUP_ROOT (created fresh before each step, removed after), PILOTBOX_VM_USER/UID/
# GID (an unprivileged guest user) and the --env pairs the host passed. After each step the
# harness checks the step left no cgroup behind (in the test root or at the top level); a leak
# fails the step and is then cleaned up so the next step starts clean.
#
# Writes one line per step to /run/vm-xfer/results: "<PASS|FAIL> <rc> <seconds> <label>".
# Exit status: a single step's own status; with several steps 0 if all passed, else 1.
set -u
xfer=/run/vm-xfer
cg=/sys/fs/cgroup
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 RUST_BACKTRACE=1
export PILOTBOX_IN_VM=1
export PILOTBOX_TEST_CGROUP_ROOT=/pilotbox-vmtest
export PILOTBOX_VM_XFER=$xfer
[ -d "$xfer/bin" ] && export PILOTBOX_VM_HELPERS=$xfer/bin
[ -r "$xfer/env" ] && . "$xfer/env"

say() { echo "pilotbox-vm: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }

# --- an unprivileged guest user, only in the guest's private /etc -----------------------------
uid=2000
while getent passwd "$uid" >/dev/null || getent group "$uid" >/dev/null; do uid=$((uid + 1)); done
user=pbvmuser
getent passwd "$user" >/dev/null && { say "user $user already exists on the host root"; exit 125; }
echo "$user:x:$uid:$uid:pilotbox VM test user:/home/$user:/bin/sh" >> /etc/passwd
echo "$user:x:$uid:" >> /etc/group
[ -w /etc/shadow ] && echo "$user:!:19000::::::" >> /etc/shadow
echo "$user:$((uid * 65536)):65536" >> /etc/subuid
echo "$user:$((uid * 65536)):65536" >> /etc/subgid
mkdir -p "/home/$user" && chown "$uid:$uid" "/home/$user"
export PILOTBOX_VM_USER=$user PILOTBOX_VM_UID=$uid PILOTBOX_VM_GID=$uid

# --- cgroup v2: every controller the kernel offers enabled below the root --------------------
for c in $(cat $cg/cgroup.controllers); do
    echo "+$c" > $cg/cgroup.subtree_control || { say "cannot enable $c at the root"; exit 125; }
done
test_root=$cg${PILOTBOX_TEST_CGROUP_ROOT}

# Kill everything in a cgroup subtree and remove it, deepest first.
cgroup_destroy() {
    [ -d "$1" ] || return 0
    echo 1 > "$1/cgroup.kill" 2>/dev/null
    find "$1" -depth -type d | while read -r d; do
        i=0
        while grep -q '^populated 1' "$d/cgroup.events" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1; i=$((i + 1))
        done
        rmdir "$d" 2>/dev/null || say "WARNING: could not remove $d"
    done
}

top_level_cgroups() { find $cg -mindepth 1 -maxdepth 1 -type d | sort; }

prepare_test_root() {
    cgroup_destroy "$test_root"
    mkdir "$test_root" || return 1
    # Children of the test root get every controller; the test root itself holds no process.
    for c in $(cat "$test_root/cgroup.controllers"); do
        echo "+$c" > "$test_root/cgroup.subtree_control" || return 1
    done
}

# Fails (returns 1) when the step left cgroups behind; cleans them either way.
check_leftovers() {
    leak=0
    left=$(find "$test_root" -mindepth 1 -type d 2>/dev/null)
    if [ -n "$left" ]; then
        say "FAIL: step left cgroups under $PILOTBOX_TEST_CGROUP_ROOT:"; echo "$left"; leak=1
    fi
    top_level_cgroups > /tmp/.vm-cg-after
    new=$(comm -13 /tmp/.vm-cg-before /tmp/.vm-cg-after | grep -vx "$test_root")
    if [ -n "$new" ]; then
        say "FAIL: step left top-level cgroups:"; echo "$new"; leak=1
        for d in $new; do cgroup_destroy "$d"; done
    fi
    cgroup_destroy "$test_root"
    return $leak
}

: > $xfer/results
nsteps=$(grep -c . $xfer/plan)
failed=0
last_rc=0
tab=$(printf '\t')
while IFS="$tab" read -r kind label cwd arg <&3; do
    [ -n "$kind" ] || continue
    say "===== step: $label ($kind) ====="
    cgroup_destroy "$test_root"
    top_level_cgroups > /tmp/.vm-cg-before
    if ! prepare_test_root; then
        say "HARNESS ERROR: cannot create $test_root"; exit 125
    fi
    t0=$(now)
    case $kind in
        cmd) (cd "$cwd" && exec sh "$arg") < /dev/null ;;
        test) (cd "$cwd" && exec "$arg" --test-threads=1) < /dev/null ;;
        *) say "HARNESS ERROR: unknown step kind $kind"; exit 125 ;;
    esac
    rc=$?
    if ! check_leftovers && [ $rc -eq 0 ]; then rc=1; fi
    t1=$(now)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ $rc -eq 0 ]; then st=PASS; else st=FAIL; failed=$((failed + 1)); fi
    last_rc=$rc
    say "===== $st ($rc) in ${secs}s: $label ====="
    echo "$st $rc $secs $label" >> $xfer/results
done 3< $xfer/plan

say "===== summary ====="
cat $xfer/results
if [ "$nsteps" -eq 1 ]; then exit $last_rc; fi
[ $failed -eq 0 ]
