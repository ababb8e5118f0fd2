#!/bin/sh
# pilotbox demo, for a fresh Debian 12 machine, as root. Everything is real and thrown away:
#   1. installs the build and grid-tool packages (apt) and builds pilotbox;
#   2. makes a throwaway CA, a user certificate, a VOMS server certificate and a real VOMS proxy
#      (openssl + voms-proxy-fake), and an IGTF-style trust dir and vomsdir;
#   3. verifies the proxy (`pilotbox verify`), writes a site policy with a pool of accounts and
#      checks it (`pilotbox policy check`), and maps the user to a pool uid (`pilotbox map`);
#   4. installs `pilotbox` setuid root into the temp dir and, as a non-root pilot (uid 40100),
#      runs `pilotbox run`: the payload runs as the pool uid in its own user/pid/mount/ipc/uts/
#      cgroup namespaces and cgroup, with limits; shows the report and the audit lines;
#   5. removes everything it created (temp dir, cgroups, lease store, state).
# The policy path is fixed at build time; the demo builds its own copy of the binaries with the
# policy inside its temp dir (target/demo), so it never touches /etc/pilotbox; the site installer
# (packaging/install.sh) installs it there with --destdir.
set -eu
cd "$(dirname "$0")"
ROOT=$(pwd)

[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (it creates namespaces and cgroups)" >&2; exit 1; }

need=""
for p in libseccomp-dev pkg-config openssl globus-proxy-utils voms-clients; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
    echo "== installing:$need"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi

# A root-owned, non-world-writable place (the policy's directory must pass pilotbox's checks).
D=$(mktemp -d /var/lib/pilotbox-demo.XXXXXX)
chmod 755 "$D"
CG="/pilotbox-demo-$$"
PILOT=40100
cleanup() {
    for h in /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG"; do [ -d "$h" ] && rmdir "$h" 2>/dev/null || true; done
    rm -rf "$D"
}
trap cleanup EXIT INT TERM

echo "== building pilotbox (policy fixed at $D/etc/pilotbox/policy.toml)"
PILOTBOX_POLICY="$D/etc/pilotbox/policy.toml" cargo build -q --target-dir target/demo -p runtime --bins
BIN="$ROOT/target/demo/debug"

echo "== a throwaway CA, user, VOMS server and VOMS proxy (openssl, voms-proxy-fake)"
mkdir -p "$D/ca" "$D/certificates" "$D/vomsdir/demo" "$D/etc/pilotbox" "$D/pilot"
. "$ROOT/tests/lib/throwaway-pki.sh"
pki_ca "$D/ca" "/DC=org/DC=pilotbox-demo/CN=Demo CA"
pki_issue "$D/ca" user "/DC=org/DC=pilotbox-demo/O=Users/CN=Demo User"
pki_issue "$D/ca" voms "/DC=org/DC=pilotbox-demo/O=Hosts/CN=voms.demo.example"
pki_trust "$D/ca" "$D/certificates" "/DC=org/DC=pilotbox-demo"
pki_lsc "$D/vomsdir" demo voms.demo.example "/DC=org/DC=pilotbox-demo/O=Hosts/CN=voms.demo.example" \
    "/DC=org/DC=pilotbox-demo/CN=Demo CA"
cd "$D/ca"
X509_CERT_DIR="$D/certificates" X509_VOMS_DIR="$D/vomsdir" voms-proxy-fake -q -rfc -cert user.pem -key user.key -hostcert voms.pem -hostkey voms.key \
    -voms demo -uri voms.demo.example:15000 -fqan /demo/Role=NULL/Capability=NULL \
    -fqan /demo/analysis/Role=NULL/Capability=NULL -hours 2 -vomslife 2 -out "$D/pilot/x509up"
chown -R $PILOT:$PILOT "$D/pilot"
chmod 600 "$D/pilot/x509up"
cd "$ROOT"

echo "== pilotbox verify"
"$BIN/pilotbox" verify --proxy "$D/pilot/x509up" --ca-dir "$D/certificates" --voms-dir "$D/vomsdir" --json

echo "== the site policy, and pilotbox policy check"
cat > "$D/etc/pilotbox/policy.toml" <<EOF
[trust]
ca_dir = "$D/certificates"
voms_dir = "$D/vomsdir"

[pilots]
users = [$PILOT]

[[pool]]
name = "demo"
uids = "40001-40010"
gid = 40000

[[map]]
fqan = "/demo/*"
pool = "demo"

[limits.default]
memory = "256M"
pids = 128
cpus = 1.0
walltime = "10m"

[lease]
store = "$D/leases.sqlite"

[cgroup]
placement = "root"
root = "$CG"

[audit]
log = "$D/audit.jsonl"
syslog = false
EOF
chmod 644 "$D/etc/pilotbox/policy.toml"
"$BIN/pilotbox" policy check

echo "== pilotbox map (decision without launching), as root"
"$BIN/pilotbox" map --proxy "$D/pilot/x509up" --explain

echo "== install pilotbox setuid root (packaging/install.sh); the pilot (uid $PILOT, not root) runs a payload"
"$ROOT/packaging/install.sh" --from "$BIN" --destdir "$D" --prefix /usr
mkdir -p "$D/pilot/job"
: > "$D/audit.jsonl"; chmod 600 "$D/audit.jsonl"
echo "input from the pilot" > "$D/pilot/job/input.txt"
chown -R $PILOT:$PILOT "$D/pilot/job"
set +e
setpriv --reuid $PILOT --regid $PILOT --clear-groups env X509_USER_PROXY="$D/pilot/x509up" LD_PRELOAD=/nonexistent.so \
  "$D/usr/sbin/pilotbox" run --workdir "$D/pilot/job" --memory 256M --walltime 600 \
    --report "$D/pilot/job/report.json" -- /bin/sh -c '
        echo "payload: $(id)"
        echo "payload: hostname $(hostname); pid $$; processes visible: $(ls /proc | grep -c "^[0-9]")"
        grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status | sed "s/^/payload: /"
        echo "payload: namespaces: $(for n in user pid mnt ipc uts cgroup; do printf "%s " "$n:$(readlink /proc/self/ns/$n | tr -dc 0-9)"; done)"
        echo "payload: env: $(env | cut -d= -f1 | sort | tr "\n" " ")"
        echo "payload: my proxy copy: $X509_USER_PROXY ($(stat -c "%U %a" "$X509_USER_PROXY"))"
        echo "payload: the pilot proxy: $(cat '"$D"'/pilot/x509up 2>&1 | head -c 60)"
        echo "payload: work dir $(pwd): $(cat input.txt); writing output.txt"
        echo "result" > output.txt'
rc=$?
set -e
echo "pilotbox run exited $rc"
echo "== report (written for the pilot)"
cat "$D/pilot/job/report.json"; echo
echo "== audit lines"
cat "$D/audit.jsonl"
echo "== host view: the work dir and the output belong to the pilot again"
ls -ln "$D/pilot/job"
echo "== done; cleaning up"
