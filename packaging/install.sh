#!/bin/sh
# Install pilotbox on a worker node (EL9, Debian 12, ...), as root.
#
#   packaging/install.sh --from DIR [--prefix /usr] [--destdir D] [--glexec-symlink]
#                        [--policy FILE]
#
# What it does (docs/admin-guide.md, "Install", shows it in use; tests/docs/run-admin-guide.sh
# runs it):
#   - DIR/pilotbox        -> D/PREFIX/sbin/pilotbox, owner root:root, mode 4755 (setuid root:
#                            pilotbox refuses to launch with exit 123 otherwise);
#   - DIR/pilotbox-nosuid -> D/PREFIX/bin/pilotbox-nosuid, root:root 0755, only if DIR has it
#                            (the no-identity-switch variant is a separate binary);
#   - --glexec-symlink    -> D/PREFIX/sbin/glexec -> pilotbox, for pilots written for gLExec
#                            (never replaces a real gLExec binary that is already there);
#   - D/etc/pilotbox (root 0755), D/var/lib/pilotbox and D/var/log/pilotbox (root 0700);
#   - --policy FILE       -> D/etc/pilotbox/policy.toml (root 0644) only if there is no policy
#                            yet: an existing policy is never overwritten, the candidate goes to
#                            policy.toml.new beside it (as rpm's .rpmnew) for the admin to diff;
#   - prints the next steps.
# The binary's policy path is fixed when it is built (/etc/pilotbox/policy.toml, or
# PILOTBOX_POLICY at build time); D (default empty) relocates everything, for package staging
# or a test root, and must then match what the binary was built with.
# Files are copied to a temporary name in the target directory and renamed, so a running
# pilotbox is never overwritten in place and a half-copied setuid binary never exists under
# its real name. Re-running the script is safe.
set -eu

usage() {
    sed -n '4,5p' "$0" | sed 's/^# *//' >&2
    exit 2
}
die() { echo "install.sh: $*" >&2; exit 1; }

FROM="" PREFIX="/usr" DESTDIR="" GLEXEC=0 POLICY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --from) [ $# -ge 2 ] || usage; FROM=$2; shift 2 ;;
        --prefix) [ $# -ge 2 ] || usage; PREFIX=$2; shift 2 ;;
        --destdir) [ $# -ge 2 ] || usage; DESTDIR=$2; shift 2 ;;
        --glexec-symlink) GLEXEC=1; shift ;;
        --policy) [ $# -ge 2 ] || usage; POLICY=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "install.sh: unknown argument: $1" >&2; usage ;;
    esac
done
[ -n "$FROM" ] || usage
[ "$(id -u)" = 0 ] || die "run as root: pilotbox must be installed owned by root with the setuid bit"
[ -f "$FROM/pilotbox" ] && [ -x "$FROM/pilotbox" ] || die "$FROM/pilotbox: no such executable (build it: cargo build --release -p runtime --bin pilotbox)"
case "$PREFIX" in /*|"") ;; *) die "--prefix must be absolute: $PREFIX" ;; esac
case "$DESTDIR" in /*|"") ;; *) die "--destdir must be absolute: $DESTDIR" ;; esac
if [ -n "$POLICY" ] && [ ! -f "$POLICY" ]; then die "--policy $POLICY: no such file"; fi
PREFIX=${PREFIX%/}
DESTDIR=${DESTDIR%/}
"$FROM/pilotbox" --version >/dev/null 2>&1 || die "$FROM/pilotbox does not run (--version failed): wrong architecture or a broken build?"

SBIN="$DESTDIR$PREFIX/sbin"
BIN="$DESTDIR$PREFIX/bin"
ETC="$DESTDIR/etc/pilotbox"
STATE="$DESTDIR/var/lib/pilotbox"
LOG="$DESTDIR/var/log/pilotbox"

# install_file SRC DST MODE: copy beside DST, set owner and mode, rename over DST.
install_file() {
    tmp="$(dirname "$2")/.$(basename "$2").install.$$"
    rm -f "$tmp"
    cp "$1" "$tmp"
    chown root:root "$tmp"
    chmod "$3" "$tmp"
    mv -f "$tmp" "$2"
    echo "installed $2 ($(stat -c '%U:%G %a' "$2"))"
}

# install_dir DIR MODE: create or fix a root-owned directory.
install_dir() {
    mkdir -p "$1"
    chown root:root "$1"
    chmod "$2" "$1"
    echo "directory $1 ($(stat -c '%U:%G %a' "$1"))"
}

# Refuse before changing anything.
if [ "$GLEXEC" = 1 ] && [ -e "$SBIN/glexec" ] && [ ! -L "$SBIN/glexec" ]; then
    die "$SBIN/glexec exists and is not a symlink (a real gLExec?): remove it first, then re-run with --glexec-symlink"
fi

mkdir -p "$SBIN"
install_file "$FROM/pilotbox" "$SBIN/pilotbox" 4755
if [ -f "$FROM/pilotbox-nosuid" ]; then
    mkdir -p "$BIN"
    install_file "$FROM/pilotbox-nosuid" "$BIN/pilotbox-nosuid" 0755
else
    echo "note: $FROM/pilotbox-nosuid not built; skipped (only sites that allow no identity switch need it)"
fi

if [ "$GLEXEC" = 1 ]; then
    ln -sfn pilotbox "$SBIN/glexec"
    echo "symlink $SBIN/glexec -> pilotbox"
fi

install_dir "$ETC" 0755
install_dir "$STATE" 0700
install_dir "$LOG" 0700

policy_note=""
if [ -n "$POLICY" ]; then
    if [ -e "$ETC/policy.toml" ]; then
        if cmp -s "$POLICY" "$ETC/policy.toml"; then
            policy_note="$ETC/policy.toml is already this policy: unchanged"
        else
            install_file "$POLICY" "$ETC/policy.toml.new" 0644
            policy_note="kept the existing $ETC/policy.toml; the new candidate is $ETC/policy.toml.new: diff them, check it with 'pilotbox policy check $ETC/policy.toml.new', then move it into place"
        fi
    else
        install_file "$POLICY" "$ETC/policy.toml" 0644
    fi
elif [ ! -e "$ETC/policy.toml" ]; then
    policy_note="no policy yet: write $ETC/policy.toml (root-owned, 0644; docs/policy.md, docs/admin-guide.md)"
fi

echo
echo "pilotbox installed. Next steps:"
[ -z "$policy_note" ] || echo "  - $policy_note"
echo "  - check the policy:            $SBIN/pilotbox policy check"
echo "  - check the node, as the pilot: $SBIN/pilotbox check   (as root: add --run-payload)"
[ "$GLEXEC" = 1 ] || echo "  - pilots written for gLExec:   re-run with --glexec-symlink"
echo "  - keep CRLs fresh (fetch-crl) in the policy's [trust] ca_dir"
