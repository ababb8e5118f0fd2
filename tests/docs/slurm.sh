# A real one-node Slurm cluster for the admin guide's Slurm section (sourced by
# run-admin-guide.sh; POSIX sh). munged + slurmctld + slurmd run as root on this machine with
# their own key, socket, ports, spool and state dirs under one directory, and are stopped by pid.
# The cgroup plugins are proctrack/cgroup + task/cgroup on cgroup v1 (this host is hybrid:
# Slurm's cgroup/v2 plugin refuses it, notes/testbed.md); the guide's slurm.conf fragment and
# cgroup.conf are the ones used (the runner writes them from the guide before slurm_start).
#
#   slurm_start DIR CONF_INCLUDE   start the daemons; slurm.conf Includes CONF_INCLUDE;
#                                  cgroup.conf must already be in DIR/etc (from the guide)
#   slurm_stop DIR                 stop them (by pid), remove Slurm's cgroups of our jobs
# Needs: slurm-wlm, munge (apt).

slurm_start() {
    sd=$1
    mkdir -p "$sd/etc" "$sd/munge" "$sd/spool/ctld" "$sd/spool/d" "$sd/log" "$sd/run"
    chmod 700 "$sd/munge"
    mungekey -c -k "$sd/munge/munge.key" >/dev/null 2>&1 || mungekey --create --keyfile="$sd/munge/munge.key"
    chmod 600 "$sd/munge/munge.key"
    # munged refuses a group/world-writable socket dir unless --force; ours is private anyway.
    munged --force --key-file="$sd/munge/munge.key" --socket="$sd/munge/munge.socket" \
        --pid-file="$sd/run/munged.pid" --log-file="$sd/log/munged.log" --seed-file="$sd/munge/seed" \
        || { echo "slurm.sh: munged failed to start" >&2; return 1; }
    chmod 755 "$sd/munge"   # jobs' users (the pilot) must reach the socket to submit
    host=$(hostname -s)
    mem=$(awk '/^MemTotal/ {print int($2/1024/2)}' /proc/meminfo)
    cat > "$sd/etc/slurm.conf" <<EOF
ClusterName=pilotboxdocs
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sd/munge/munge.socket
SlurmctldPort=${SLURM_TEST_PORT:-16917}
SlurmdPort=$(( ${SLURM_TEST_PORT:-16917} + 1 ))
StateSaveLocation=$sd/spool/ctld
SlurmdSpoolDir=$sd/spool/d
SlurmctldPidFile=$sd/run/slurmctld.pid
SlurmdPidFile=$sd/run/slurmd.pid
SlurmctldLogFile=$sd/log/slurmctld.log
SlurmdLogFile=$sd/log/slurmd.log
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
# The site's cgroup settings, from docs/admin-guide.md:
Include $2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=grid Nodes=$host Default=YES MaxTime=60 State=UP
EOF
    export SLURM_CONF="$sd/etc/slurm.conf"
    slurmctld -c -f "$SLURM_CONF" || { echo "slurm.sh: slurmctld failed; log:" >&2; tail -20 "$sd/log/slurmctld.log" >&2; return 1; }
    slurmd -f "$SLURM_CONF" || { echo "slurm.sh: slurmd failed; log:" >&2; tail -20 "$sd/log/slurmd.log" >&2; return 1; }
    # Wait until the node is schedulable.
    i=0
    while [ $i -lt 60 ]; do
        st=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
        case "$st" in idle*) return 0 ;; esac
        sleep 0.5; i=$((i + 1))
    done
    echo "slurm.sh: node $host not idle after 30 s (state: ${st:-none}); slurmd log:" >&2
    tail -20 "$sd/log/slurmd.log" >&2
    return 1
}

# slurm_stop DIR: TERM each daemon by its pid file, wait, then KILL what is left.
slurm_stop() {
    sd=$1
    for d in slurmd slurmctld munged; do
        f="$sd/run/$d.pid"
        [ -s "$f" ] || continue
        pid=$(cat "$f")
        # Only the daemon this run started: the pid must still be that program.
        case "$(cat /proc/"$pid"/comm 2>/dev/null)" in
            "$d") kill -TERM "$pid" 2>/dev/null || true ;;
            *) continue ;;
        esac
        i=0
        while [ -d /proc/"$pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        [ -d /proc/"$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    done
    # Slurm's v1 cgroups (slurm_<node>/uid_*/job_*) are removed by slurmstepd at job end; the empty
    # per-node parents (slurm_<node>) are left behind: remove what is empty, deepest first.
    for h in /sys/fs/cgroup/*/slurm_"$(hostname -s)"; do
        [ -d "$h" ] || continue
        find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
}
