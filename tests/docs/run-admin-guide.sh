#!/bin/sh
# Runs the examples of docs/admin-guide.md, so the guide stays true. As root, on this host:
#
#   tests/docs/run-admin-guide.sh [GUIDE]        (default docs/admin-guide.md)
#
# Marked blocks: a line `<!-- test: NAME [as=root|pilot] [file=PATH] [mode=NNNN] [exit=N]
# [slurm] -->` directly before a fenced block. In document order:
#   file=PATH  the block is written to PATH (mode default 0644, owner root; `~/...` is the
#              pilot's home, owned by the pilot) — configuration files, job scripts;
#   otherwise  the block runs with `sh -eu`, as root in the repository root (as=root, default)
#              or as the non-root pilot account `pilot` in its home (as=pilot), and must exit
#              `exit=N` (default 0). A pilot block runs inside a batch-slot cgroup of its own,
#              as under HTCondor, so `[cgroup] placement = "nested"` lands there;
#   slurm      start the one-node Slurm cluster (tests/docs/slurm.sh) first, if not yet up;
#   then `check_NAME` below, if defined, asserts on the output (file $OUT) and what was made.
# Every example is real: the setuid pilotbox built from this tree, real proxies
# (openssl + voms-proxy-fake), real cgroups, real Slurm (munge, slurmctld, slurmd).
#
# Relocation: the guide shows the real paths; the runner moves them under one root-owned
# directory $T, the test build's policy path is $T/etc/pilotbox/policy.toml (PILOTBOX_POLICY at
# build time), and the installer gets --destdir $T. Rewritten in blocks: /etc/pilotbox,
# /etc/grid-security, /etc/slurm, /var/lib/pilotbox, /var/log/pilotbox, /usr/sbin/pilotbox,
# /usr/sbin/glexec, /usr/bin/pilotbox-nosuid (-> $T/...), target/release (-> the test build).
#
# Fails (non-zero, one clear line) if a block fails, a check fails, or fewer than
# EXPECTED_BLOCKS marked blocks (or a REQUIRED one) are found: deleting examples fails the
# test. Cleans up everything: daemons (by pid), the pilot account, cgroups, $T.
# Needs: slurm-wlm munge openssl voms-clients jq util-linux (apt), cargo.
set -eu
cd "$(dirname "$0")/../.."
REPO=$(pwd)
GUIDE=${1:-docs/admin-guide.md}
EXPECTED_BLOCKS=18
REQUIRED="install vomsdir-lsc site-policy ban-file policy-check map-user map-production map-banned
 reinstall preflight glexec-wrapper glexec-banned pilotbox-run-wrapper slurm-conf slurm-cgroup-conf slurm-pilot-job slurm-submit
 audit-log"

T=/var/lib/pilotbox-docs-test          # baked into the test build: keep it fixed
# The launcher tests' build dir: the dependencies are compiled once for both, only the runtime
# crate is rebuilt for the other policy path. The binaries are copied out at once (below).
BUILD_DIR="$REPO/target/setuid-test"
PILOT=pilot
SLOT=pilotbox-docs-slot                 # the pilot's "batch slot" cgroup (v1 hierarchies)
HOST=$(hostname -s)

fail() { echo "run-admin-guide.sh: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (it installs a setuid binary, starts Slurm, creates a user)"
for t in cargo openssl voms-proxy-fake jq setpriv flock useradd munged slurmctld slurmd sbatch; do
    command -v "$t" >/dev/null 2>&1 || fail "$t not found (apt-get install slurm-wlm munge openssl voms-clients jq util-linux)"
done
[ -f "$GUIDE" ] || fail "$GUIDE: no such file"

lockdir=/run/lock; [ -d "$lockdir" ] || lockdir=/tmp
exec 9>"$lockdir/pilotbox-docs-test.lock"
flock -n 9 || fail "another run-admin-guide.sh is running"

# ---------------------------------------------------------------- cleanup (every path)
SLURM_UP=0
cleanup() {
    rc=$?
    set +e
    if [ "$SLURM_UP" = 1 ]; then slurm_stop "$T/slurm"; fi
    # Payload cgroups are removed by pilotbox; the slot is ours. A leftover payload cgroup
    # makes rmdir fail: say so (it is a bug, in pilotbox or in a guide example).
    for h in /sys/fs/cgroup/*/"$SLOT" /sys/fs/cgroup/*/pilotbox; do
        [ -d "$h" ] || continue
        find "$h" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
        rmdir "$h" 2>/dev/null || { echo "run-admin-guide.sh: WARNING: cgroup $h not removable (leaked payload?)" >&2; rc=1; }
    done
    if [ "$PILOT_CREATED" = 1 ]; then userdel "$PILOT" 2>/dev/null; groupdel "$PILOT" 2>/dev/null; fi
    rm -rf "$T"
    exit $rc
}
PILOT_CREATED=0
trap cleanup EXIT
trap 'exit 130' INT TERM
. "$REPO/tests/docs/slurm.sh"
. "$REPO/tests/docs/admin-guide-checks.sh"

# ---------------------------------------------------------------- build (test policy path)
echo "== build pilotbox (policy path $T/etc/pilotbox/policy.toml)"
bins="--bin pilotbox"
[ -f runtime/src/bin/pilotbox-nosuid.rs ] && bins="$bins --bin pilotbox-nosuid"
# shellcheck disable=SC2086
PILOTBOX_POLICY="$T/etc/pilotbox/policy.toml" cargo build -q -p runtime $bins --target-dir "$BUILD_DIR" \
    || fail "cargo build failed"

# ---------------------------------------------------------------- extract the marked blocks
[ -d "$T/slurm/run" ] && slurm_stop "$T/slurm"   # daemons of a run killed before its cleanup
rm -rf "$T"
mkdir -p "$T/blocks" "$T/built"
chmod 755 "$T" "$T/blocks"
BUILT="$T/built"
for b in $bins; do [ "$b" = --bin ] || cp "$BUILD_DIR/debug/$b" "$BUILT/"; done
awk -v dir="$T/blocks" '
    /^<!-- test: / {
        if (pending) { printf "line %d: marker not followed by a fenced block\n", pline > "/dev/stderr"; bad = 1; exit 3 }
        hdr = $0; sub(/^<!-- test: */, "", hdr); sub(/ *-->[ \t]*$/, "", hdr)
        pending = 1; pline = NR; next
    }
    pending && /^```/ { n++; f = sprintf("%s/%02d.block", dir, n); printf "" > f
                        printf "%s\nline=%d\n", hdr, pline > sprintf("%s/%02d.attrs", dir, n)
                        pending = 0; inblock = 1; next }
    pending && /^[ \t]*$/ { next }
    pending { printf "line %d: marker not followed by a fenced block\n", pline > "/dev/stderr"; bad = 1; exit 3 }
    inblock && /^```/ { inblock = 0; close(f); next }
    inblock { print >> f }
    END { if (!bad && (pending || inblock)) { print "unterminated marked block" > "/dev/stderr"; exit 3 } }
' "$GUIDE" || fail "$GUIDE: malformed test markers"
found=$(ls "$T/blocks" | grep -c '\.block$' || true)
[ "$found" -ge "$EXPECTED_BLOCKS" ] || fail "$GUIDE has $found marked blocks, expected at least $EXPECTED_BLOCKS (an example was removed or its marker broken)"
names=$(for a in "$T"/blocks/*.attrs; do head -1 "$a" | awk '{print $1}'; done)
for r in $REQUIRED; do
    echo "$names" | grep -qx "$r" || fail "$GUIDE: required example '$r' is missing"
done
dups=$(echo "$names" | sort | uniq -d)
[ -z "$dups" ] || fail "$GUIDE: duplicate example names: $dups"
echo "== $found marked examples in $GUIDE"

# ---------------------------------------------------------------- fixtures
echo "== fixtures: the pilot account, a CA, VOMS server and user proxies (openssl, voms-proxy-fake)"
# A leftover of a run killed before its cleanup (home under $T) is ours to remove.
if [ "$(getent passwd "$PILOT" | cut -d: -f6)" = "$T/home/$PILOT" ]; then
    userdel "$PILOT"; groupdel "$PILOT" 2>/dev/null || true
fi
getent passwd "$PILOT" >/dev/null && fail "a user '$PILOT' already exists; this test creates (and deletes) its own"
getent group "$PILOT" >/dev/null && fail "a group '$PILOT' already exists; this test creates (and deletes) its own"
HOME_P="$T/home/$PILOT"
mkdir -p "$T/home"
chmod 755 "$T/home"
useradd -M -U -d "$HOME_P" -s /bin/sh "$PILOT" || fail "useradd $PILOT"
PILOT_CREATED=1
mkdir -p "$HOME_P/proxies"
PKI="$T/pki"
mkdir -p "$PKI" "$T/etc/grid-security/certificates" "$T/etc/grid-security/vomsdir"
(
    cd "$PKI"
    export X509_CERT_DIR="$T/etc/grid-security/certificates" X509_VOMS_DIR="$T/etc/grid-security/vomsdir"
    . "$REPO/tests/lib/throwaway-pki.sh"
    pki_ca "$PKI" "/DC=org/DC=example/CN=Example Grid CA"
    pki_issue "$PKI" voms "/DC=org/DC=example/O=Hosts/CN=voms.example.org"
    pki_issue "$PKI" alice "/DC=org/DC=example/O=Users/CN=Alice Atlas"
    pki_issue "$PKI" robot "/DC=org/DC=example/O=Robots/CN=ATLAS Pilot Factory"
    pki_issue "$PKI" bob "/DC=org/DC=example/O=Users/CN=Bob Cms"
    pki_issue "$PKI" mallory "/DC=org/DC=example/O=Users/CN=Mallory"
    pki_trust "$PKI" "$X509_CERT_DIR" "/DC=org/DC=example"
    for vo in cms lhcb dteam; do   # atlas's .lsc is the guide's example (block vomsdir-lsc)
        pki_lsc "$X509_VOMS_DIR" "$vo" voms.example.org "/DC=org/DC=example/O=Hosts/CN=voms.example.org" \
            "/DC=org/DC=example/CN=Example Grid CA"
    done
    proxy() { # name vo out fqan...
        n=$1 vo=$2 out=$3; shift 3
        fq=""; for f in "$@"; do fq="$fq -fqan $f"; done
        # shellcheck disable=SC2086
        voms-proxy-fake -q -rfc -cert "$n.pem" -key "$n.key" -hostcert voms.pem -hostkey voms.key \
            -voms "$vo" -uri voms.example.org:15000 $fq -hours 4 -vomslife 4 -out "$out"
    }
    proxy alice atlas "$HOME_P/proxies/alice.pem" /atlas/Role=NULL/Capability=NULL
    proxy robot atlas "$HOME_P/proxies/pilot.pem" /atlas/Role=production/Capability=NULL /atlas/Role=NULL/Capability=NULL
    proxy bob cms "$HOME_P/proxies/bob.pem" /cms/Role=NULL/Capability=NULL
    proxy mallory dteam "$HOME_P/proxies/mallory.pem" /dteam/Role=NULL/Capability=NULL
) || fail "creating the test PKI and proxies"
chmod -R a+rX "$T/etc/grid-security"
chown -R "$PILOT:$PILOT" "$HOME_P"
# 0700, as a pilot keeps its proxies (the sandbox hides them; the pool account cannot reach them).
chmod 700 "$HOME_P/proxies"
chmod 600 "$HOME_P"/proxies/*.pem
chmod 755 "$HOME_P"

# The pilot's batch slot: a cgroup of its own in every v1 hierarchy (on this host the caller's
# memory cgroup is the machine's own service: nested payloads must never land there).
for h in /sys/fs/cgroup/*; do
    [ -f "$h/cgroup.procs" ] || continue
    case "$h" in */unified|*/systemd) continue ;; esac
    mkdir -p "$h/$SLOT"
    case "$h" in */cpuset) cat "$h/cpuset.cpus" > "$h/$SLOT/cpuset.cpus"; cat "$h/cpuset.mems" > "$h/$SLOT/cpuset.mems" ;; esac
done

# ---------------------------------------------------------------- running one block
relocate() { # file: rewrite the guide's real paths to the test root (see header)
    sed -E -e "s#(^|[^A-Za-z0-9_./-])(/etc/pilotbox|/etc/grid-security|/etc/slurm|/var/lib/pilotbox|/var/log/pilotbox|/usr/sbin/pilotbox|/usr/sbin/glexec|/usr/bin/pilotbox-nosuid)([^A-Za-z0-9_.-]|\$)#\\1$T\\2\\3#g" \
           -e "s#(^|[^A-Za-z0-9_./-])target/release([^A-Za-z0-9_.-]|\$)#\\1$BUILT\\2#g" \
           -e "s#packaging/install\\.sh #packaging/install.sh --destdir $T #g" "$1"
}

attr() { # attrs-file key -> value ("" if absent; "1" for a bare flag)
    head -1 "$1" | tr ' ' '\n' | awk -v k="$2" -F= '$1 == k { print (NF > 1 ? substr($0, length(k) + 2) : "1"); exit }'
}

# as_pilot CMD...: in the pilot's slot cgroup, as the pilot (its groups), a clean environment.
as_pilot() {
    sh -c 'for h in /sys/fs/cgroup/*/'"$SLOT"'; do echo $$ > "$h/cgroup.procs"; done; exec "$@"' sh \
        setpriv --reuid "$PILOT" --regid "$PILOT" --init-groups -- \
        env -i HOME="$HOME_P" USER="$PILOT" LOGNAME="$PILOT" PATH=/usr/local/bin:/usr/bin:/bin \
            SLURM_CONF="${SLURM_CONF:-}" \
            X509_USER_PROXY="$HOME_P/proxies/pilot.pem" PAYLOAD_PROXY="$HOME_P/proxies/alice.pem" \
        sh -c 'cd "$HOME" && exec "$@"' sh "$@"
}

OUT="$T/blocks/out"
for a in "$T"/blocks/*.attrs; do
    b=${a%.attrs}.block
    name=$(head -1 "$a" | awk '{print $1}')
    line=$(sed -n 's/^line=//p' "$a")
    as=$(attr "$a" as); as=${as:-root}
    file=$(attr "$a" file)
    expect=$(attr "$a" exit); expect=${expect:-0}
    relocate "$b" > "$b.run"
    chmod 644 "$b.run"
    if [ -n "$(attr "$a" slurm)" ] && [ "$SLURM_UP" = 0 ]; then
        echo "== starting Slurm (munged, slurmctld, slurmd; proctrack/cgroup + task/cgroup, v1)"
        [ -f "$T/etc/slurm/cgroup.conf" ] && [ -f "$T/etc/slurm/slurm.conf.d/cgroup.conf" ] \
            || fail "the guide's Slurm cgroup.conf / slurm.conf fragment blocks must come before '$name'"
        SLURM_UP=1
        mkdir -p "$T/slurm/etc"
        cp "$T/etc/slurm/cgroup.conf" "$T/slurm/etc/cgroup.conf"
        slurm_start "$T/slurm" "$T/etc/slurm/slurm.conf.d/cgroup.conf" || fail "Slurm did not start"
    fi
    if [ -n "$file" ]; then
        case "$file" in
            "~/"*) dst="$HOME_P/${file#\~/}"; owner=$PILOT ;;
            /*) dst=$(echo "$file" | sed -E "s#^(/etc/pilotbox|/etc/grid-security|/etc/slurm)(/|\$)#$T\\1\\2#"); owner=root
                case "$dst" in "$T"/*) ;; *) fail "$GUIDE:$line: '$name' writes $file, outside the relocated paths" ;; esac ;;
            *) fail "$GUIDE:$line: '$name': file= must be absolute or ~/..." ;;
        esac
        mkdir -p "$(dirname "$dst")"
        cp "$b.run" "$dst"
        chown "$owner:$owner" "$dst" 2>/dev/null || chown "$owner" "$dst"
        chmod "$(attr "$a" mode | grep . || echo 0644)" "$dst"
        echo "-- $name: wrote $dst"
        rc=0
        : > "$OUT"
    else
        echo "-- $name ($as, expect exit $expect)"
        rc=0
        case "$as" in
            root) (cd "$REPO" && sh -eu "$b.run") > "$OUT" 2>&1 || rc=$? ;;
            pilot) as_pilot sh -eu "$b.run" > "$OUT" 2>&1 || rc=$? ;;
            *) fail "$GUIDE:$line: '$name': as=$as (root or pilot)" ;;
        esac
        sed 's/^/   | /' "$OUT"
        [ "$rc" = "$expect" ] || fail "$GUIDE:$line: example '$name' exited $rc, the guide expects $expect"
    fi
    if command -v "check_$(echo "$name" | tr - _)" >/dev/null 2>&1; then
        "check_$(echo "$name" | tr - _)" || fail "$GUIDE:$line: example '$name': its check failed (see above)"
    fi
done
echo "== all $found examples of $GUIDE passed"
