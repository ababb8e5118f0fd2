#!/bin/sh
# Runs inside the guest, as root, chrooted into the overlay of the host's root (see guest/init).
# Executes the steps listed in /run/vm-xfer/plan, one per line, tab-separated:
#
#   cmd   <label> <cwd> <script>   run `sh <script>` (a file in the xfer dir holding the quoted
#                                  command) in <cwd>
#   test  <label> <cwd> <binary>   run a Rust test binary: `<binary> --test-threads=1 --color never`
#                                  in <cwd> (its crate's manifest dir), like `cargo test` would
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
# Every exec costs ~0.1-0.3 s under TCG, so the per-step bookkeeping below sticks to shell
# builtins where it can.
# centis VAR: store the guest uptime in centiseconds in VAR.
centis() { read -r _up _ < /proc/uptime; eval "$1=\${_up%.*}\${_up#*.}"; }

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
# "+c1 +c2 ..." for the controllers listed in the cgroup.controllers file $1.
plus_list() { read -r _c < "$1"; _l=""; for _x in $_c; do _l="$_l +$_x"; done; echo "$_l"; }
echo "$(plus_list $cg/cgroup.controllers)" > $cg/cgroup.subtree_control ||
    { say "cannot enable the controllers at the root"; exit 125; }
test_root=$cg${PILOTBOX_TEST_CGROUP_ROOT}

populated() { while read -r _k _v; do [ "$_k" = populated ] && [ "$_v" = 1 ] && return 0; done < "$1/cgroup.events"; return 1; }
# Remove a cgroup subtree, children first, after killing what runs in it.
cgroup_remove() {
    for _d in "$1"/*/; do [ -d "$_d" ] && cgroup_remove "${_d%/}"; done
    _i=0
    while populated "$1" && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
    rmdir "$1" 2>/dev/null || say "WARNING: could not remove $1"
}
cgroup_destroy() {
    [ -d "$1" ] || return 0
    echo 1 > "$1/cgroup.kill" 2>/dev/null
    cgroup_remove "$1"
}
top_level_cgroups() { _l=""; for _d in $cg/*/; do [ -d "$_d" ] && _l="$_l ${_d%/}"; done; echo "$_l"; }

prepare_test_root() {
    cgroup_destroy "$test_root"
    mkdir "$test_root" || return 1
    # Children of the test root get every controller; the test root itself holds no process.
    echo "$(plus_list "$test_root/cgroup.controllers")" > "$test_root/cgroup.subtree_control"
}

# Fails (returns 1) when the step left cgroups behind; cleans them either way.
check_leftovers() {
    leak=0
    for d in "$test_root"/*/; do
        [ -d "$d" ] || continue
        say "FAIL: step left cgroup ${d%/} (and what is below it)"; leak=1
    done
    for d in $(top_level_cgroups); do
        case " $cg_before " in *" $d "*) continue ;; esac
        [ "$d" = "$test_root" ] && continue
        say "FAIL: step left top-level cgroup $d"; leak=1
        cgroup_destroy "$d"
    done
    cgroup_destroy "$test_root"
    return $leak
}

: > $xfer/results
nsteps=0
failed=0
last_rc=0
tab=$(printf '\t')
while IFS="$tab" read -r kind label cwd arg <&3; do
    [ -n "$kind" ] || continue
    nsteps=$((nsteps + 1))
    say "===== step: $label ($kind) ====="
    cgroup_destroy "$test_root"
    cg_before=$(top_level_cgroups)
    if ! prepare_test_root; then
        say "HARNESS ERROR: cannot create $test_root"; exit 125
    fi
    centis t0
    case $kind in
        cmd) (cd "$cwd" && exec sh "$arg") < /dev/null ;;
        test) (cd "$cwd" && CARGO_MANIFEST_DIR=$cwd exec "$arg" --test-threads=1 --color never) < /dev/null ;;
        *) say "HARNESS ERROR: unknown step kind $kind"; exit 125 ;;
    esac
    rc=$?
    if ! check_leftovers && [ $rc -eq 0 ]; then rc=1; fi
    centis t1
    dt=$((t1 - t0))
    secs=$((dt / 100)).$((dt % 100 / 10))
    if [ $rc -eq 0 ]; then st=PASS; else st=FAIL; failed=$((failed + 1)); fi
    last_rc=$rc
    say "===== $st ($rc) in ${secs}s: $label ====="
    echo "$st $rc $secs $label" >> $xfer/results
done 3< $xfer/plan

say "===== summary ====="
cat $xfer/results
if [ "$nsteps" -eq 1 ]; then exit $last_rc; fi
[ $failed -eq 0 ]
