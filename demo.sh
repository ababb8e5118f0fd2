#!/bin/sh
# pilotbox demo, for a fresh Debian 12 machine, as root. Everything is real and thrown away:
#   1. installs the build and grid-tool packages (apt) and builds pilotbox;
#   2. makes a throwaway CA, a user certificate, a VOMS server certificate and a real VOMS proxy
#      (openssl + voms-proxy-fake), and an IGTF-style trust dir and vomsdir;
#   3. verifies the proxy (`pilotbox verify`), writes a site policy with a pool of accounts and
#      checks it (`pilotbox policy check`), and maps the user to a pool uid (`pilotbox map`);
#   4. runs a payload as that pool uid in its own user/pid/mount/ipc/uts/cgroup namespaces and
#      cgroup, with limits (the sandbox engine, `pilotbox-engine`), and shows its report;
#   5. removes everything it created (temp dir, cgroup, lease store).
# The policy path is fixed at build time; the demo builds its own copy of the binaries with the
# policy inside its temp dir (target/demo), so it never touches /etc/pilotbox.
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
cleanup() {
    for h in /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG"; do [ -d "$h" ] && rmdir "$h" 2>/dev/null || true; done
    rm -rf "$D"
}
trap cleanup EXIT INT TERM

echo "== building pilotbox (policy fixed at $D/etc/policy.toml)"
PILOTBOX_POLICY="$D/etc/policy.toml" cargo build -q --target-dir target/demo -p runtime --bins
BIN="$ROOT/target/demo/debug"

echo "== a throwaway CA, user, VOMS server and VOMS proxy (openssl, voms-proxy-fake)"
mkdir -p "$D/ca" "$D/certificates" "$D/vomsdir/demo" "$D/etc" "$D/pilot"
cd "$D/ca"
export RANDFILE="$D/ca/.rnd"
openssl rand -out "$RANDFILE" 256
openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 2 -subj "/DC=org/DC=pilotbox-demo/CN=Demo CA" \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout ca.key -out ca.pem 2>/dev/null
issue() { # name subject
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > "$1.ext"
    openssl x509 -req -sha256 -days 1 -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
issue user "/DC=org/DC=pilotbox-demo/O=Users/CN=Demo User"
issue voms "/DC=org/DC=pilotbox-demo/O=Hosts/CN=voms.demo.example"
chmod 600 user.key
h=$(openssl x509 -in ca.pem -noout -subject_hash)
cp ca.pem "$D/certificates/$h.0"
cat > "$D/certificates/$h.signing_policy" <<'POLICY'
access_id_CA   X509    '/DC=org/DC=pilotbox-demo/CN=Demo CA'
pos_rights     globus  CA:sign
cond_subjects  globus  '"/DC=org/DC=pilotbox-demo/*"'
POLICY
printf '/DC=org/DC=pilotbox-demo/O=Hosts/CN=voms.demo.example\n/DC=org/DC=pilotbox-demo/CN=Demo CA\n' \
    > "$D/vomsdir/demo/voms.demo.example.lsc"
X509_CERT_DIR="$D/certificates" X509_VOMS_DIR="$D/vomsdir" voms-proxy-fake -q -rfc -cert user.pem -key user.key -hostcert voms.pem -hostkey voms.key \
    -voms demo -uri voms.demo.example:15000 -fqan /demo/Role=NULL/Capability=NULL \
    -fqan /demo/analysis/Role=NULL/Capability=NULL -hours 2 -vomslife 2 -out "$D/pilot/x509up"
chmod 600 "$D/pilot/x509up"
cd "$ROOT"

echo "== pilotbox verify"
"$BIN/pilotbox" verify --proxy "$D/pilot/x509up" --ca-dir "$D/certificates" --voms-dir "$D/vomsdir" --json

echo "== the site policy, and pilotbox policy check"
cat > "$D/etc/policy.toml" <<EOF
[trust]
ca_dir = "$D/certificates"
voms_dir = "$D/vomsdir"

[pilots]
users = ["root"]

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
EOF
chmod 644 "$D/etc/policy.toml"
"$BIN/pilotbox" policy check

echo "== pilotbox map (decision without launching)"
"$BIN/pilotbox" map --proxy "$D/pilot/x509up" --explain
MAP=$("$BIN/pilotbox" map --proxy "$D/pilot/x509up" --json)
uid=$(printf '%s' "$MAP" | sed -n 's/.*"uid": *\([0-9]*\).*/\1/p' | head -1)
gid=$(printf '%s' "$MAP" | sed -n 's/.*"gid": *\([0-9]*\).*/\1/p' | head -1)
echo "mapped to uid $uid gid $gid"

echo "== the payload, as uid $uid, sandboxed (engine: namespaces, cgroup, seccomp, no capabilities)"
mkdir -p "$D/work"
chown "$uid:$gid" "$D/work"
"$BIN/pilotbox-engine" exec --uid "$uid" --gid "$gid" --cgroup "$CG/payload" \
    --memory 268435456 --pids 128 --cpus 1 --walltime 600 \
    --bind "$D/work:$D/work" --cwd "$D/work" --hide "$D/pilot" --hide "$D/ca" \
    --report "$D/report.json" -- /bin/sh -c '
        echo "payload: $(id)"
        echo "payload: hostname $(hostname); pid $$; processes visible: $(ls /proc | grep -c "^[0-9]")"
        grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status | sed "s/^/payload: /"
        echo "payload: namespaces: $(for n in user pid mnt ipc uts cgroup; do printf "%s " "$n:$(readlink /proc/self/ns/$n | tr -dc 0-9)"; done)"
        echo "payload: the pilot proxy dir is hidden: $(ls -A '"$D"'/pilot 2>/dev/null | wc -l) entries"
        echo "payload: work dir is writable: $(echo ok > result.txt && cat result.txt)"
        echo "payload: limits: memory $(cat /sys/fs/cgroup/memory.max 2>/dev/null || echo "(v1: see report)"), nofile $(ulimit -n)"'
echo "== report"
cat "$D/report.json"; echo
echo "== host view: the output belongs to the pool account"
ls -ln "$D/work"
echo "== done; cleaning up"
