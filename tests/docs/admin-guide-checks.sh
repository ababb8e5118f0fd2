# Assertions on the admin guide's examples (sourced by run-admin-guide.sh; POSIX sh).
# check_NAME runs after the example NAME (dashes become underscores) with: $OUT its output,
# $T the test root, $HOME_P the pilot's home, $PILOT, $HOST. Return non-zero to fail, after
# saying why on stderr (`no` does both).

no() { echo "   check: $*" >&2; return 1; }
has() { grep -q -- "$1" "$OUT" || no "output lacks '$1'"; }
in_range() { [ -n "$1" ] && [ "$1" -ge "$2" ] 2>/dev/null && [ "$1" -le "$3" ] || no "$4: '$1' not in $2-$3"; }
owner_mode() { # path expected "user group mode"
    got=$(stat -c '%U %G %a' "$1" 2>/dev/null) || { no "$1 missing"; return 1; }
    [ "$got" = "$2" ] || no "$1 is '$got', expected '$2'"
}

check_install() {
    owner_mode "$T/usr/sbin/pilotbox" "root root 4755" || return 1
    [ "$(readlink "$T/usr/sbin/glexec")" = pilotbox ] || { no "glexec is not a symlink to pilotbox"; return 1; }
    owner_mode "$T/etc/pilotbox" "root root 755" || return 1
    owner_mode "$T/var/lib/pilotbox" "root root 700" || return 1
    owner_mode "$T/var/log/pilotbox" "root root 700" || return 1
    has "Next steps" || return 1
    has "no policy yet" || return 1
    if [ -x "$BUILT/pilotbox-nosuid" ]; then owner_mode "$T/usr/bin/pilotbox-nosuid" "root root 755"; fi
}

check_map_user() {
    jq -e '.pool == "atlas" and .gid == 51000 and .account != null' "$OUT" >/dev/null ||
        { no "expected pool atlas, gid 51000"; return 1; }
    in_range "$(jq -r .uid "$OUT")" 51001 51050 "uid" &&
    jq -e '.limits.memory_bytes == 2147483648 and .limits.cpus == 1' "$OUT" >/dev/null ||
        { no "expected the default limits (2 GiB, 1 CPU): $(jq -c .limits "$OUT")"; return 1; }
    # `map` decides as a launch would, but takes no lease: nothing has launched yet in the
    # guide, so there must still be no store at all (map answers as a fresh one would) ...
    if [ -e "$T/var/lib/pilotbox/leases.sqlite" ]; then
        no "pilotbox map created the lease store"; return 1
    fi
    # ... and Alice is in no store file.
    if cat "$T"/var/lib/pilotbox/leases.sqlite* 2>/dev/null | grep -a -q -i "alice atlas"; then
        no "pilotbox map took a lease for Alice"
    fi
}

check_map_production() { has "atlasprd"; }

check_map_banned() { grep -qi "ban" "$OUT" || no "the reason does not say banned"; }

check_reinstall() {
    has "kept the existing" &&
    cmp -s "$T/etc/pilotbox/policy.toml" "$T/blocks/$(grep -l '^site-policy' "$T"/blocks/*.attrs | xargs basename | sed 's/attrs$/block.run/')" ||
        no "the installed policy changed on reinstall"
}

check_glexec_wrapper() {
    uid=$(sed -n 's/^payload uid \([0-9]*\), proxy \/tmp\/x509up_payload$/\1/p' "$OUT")
    in_range "$uid" 51001 51050 "payload uid (atlas pool; proxy at GLEXEC_TARGET_PROXY)" &&
    has "^payload exited 7$"
}

check_glexec_banned() { grep -qi "ban" "$OUT" || no "the stderr line does not say banned"; }

check_pilotbox_run_wrapper() {
    j="$HOME_P/jobs/native-1"
    has "payload finished: exit 0" &&
    in_range "$(cat "$j/who.txt" 2>/dev/null)" 51001 51050 "payload uid (who.txt)" &&
    [ "$(cat "$j/output.txt" 2>/dev/null)" = input ] || { no "output.txt is not the input"; return 1; }
    for f in "$j" "$j/who.txt" "$j/output.txt" "$j.report.json"; do
        [ "$(stat -c %U "$f")" = "$PILOT" ] || { no "$f is owned by $(stat -c %U "$f"), not the pilot"; return 1; }
    done
    jq -e '.outcome == "exited" and .exit_code == 0 and .user.vo == "atlas"' "$j.report.json" >/dev/null ||
        no "report: $(cat "$j.report.json")"
}

check_slurm_submit() {
    has "pilot job exit status: 3" || return 1
    r=$(ls "$HOME_P"/jobs/slurm-*.report.json 2>/dev/null | head -1)
    [ -f "$r" ] || { no "no report from the Slurm job"; return 1; }
    jq -e '.outcome == "exited" and .exit_code == 3' "$r" >/dev/null || { no "report: $(cat "$r")"; return 1; }
    uid=$(jq -r .user.uid "$r")
    in_range "$uid" 51001 51050 "payload uid in the report" || return 1
    grep -q "^payload uid $uid$" "$HOME_P"/pilot-*.out || { no "the job output lacks 'payload uid $uid'"; return 1; }
    # Nested: the payload's memory cgroup is inside the Slurm job's (proctrack/task cgroup v1).
    pu=$(id -u "$PILOT")
    cg=$(jq -r .cgroup "$r")
    echo "$cg" | grep -q "memory=/slurm_$HOST/uid_$pu/job_[0-9]*/step_batch/[^;]*slurm-[0-9]*" ||
        { no "payload cgroup '$cg' is not nested in the Slurm job's memory cgroup"; return 1; }
    echo "$cg" | grep -q "freezer=/slurm_$HOST/uid_$pu/job_[0-9]*/step_batch/slurm-[0-9]*" ||
        no "payload cgroup '$cg' is not nested in the Slurm job's freezer (proctrack) cgroup"
}

check_audit_log() {
    # The Slurm payload, the glexec payload and the native one each ended with an APEL record.
    n=$(jq -s '[.[] | select(.event == "end" and .WallDuration != null and .CpuDuration != null
                and .MemoryReal != null and .Processors != null)] | length' "$T/var/log/pilotbox/audit.jsonl")
    [ "$n" -ge 3 ] || { no "expected at least 3 end records with APEL fields, found $n"; return 1; }
    has '"id":"slurm-[0-9]*"' || return 1
    has '"id":"native-1"' || return 1
    has '"dn":"/DC=org/DC=example/O=Users/CN=Mallory"' || no "the banned user's denial is not in the audit log"
}
