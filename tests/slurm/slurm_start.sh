# Sourced by the Slurm tests: starts a private Slurm (munged, slurmctld, slurmd) in a temp
# folder $tmp with its own slurm.conf and ports, stops it on exit (and from a watchdog
# before ctest's limit), and leaves the shell in $tmp. Skips (77) where Slurm cannot start:
# packages missing, not root, daemons not coming up.
# Set before sourcing: SLURM_MODE=plain|cgroup, SLURM_WATCHDOG_S (default 150), and
# SLURM_HOSTS="nodea nodeb" for one slurmd per namespace test host (tests/multinode/hosts.sh:
# own network, hostname and node-local folder); then run Slurm's commands with `sl CMD...`
# (on the first host, where slurmctld runs), which runs them here in the single-node case.
skip() {
    echo "SKIP: $*"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "slurmd must run as root here"
for c in munged munge slurmctld slurmd sbatch srun sinfo python3; do
    command -v "$c" > /dev/null || skip "$c not installed (scripts/install-deps.sh installs slurm-wlm and munge)"
done
# The mpirun forms run as root here.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Nothing of an outer Slurm job may leak into ours.
for v in $(env | grep -o '^SLURM_[A-Z_]*'); do unset "$v"; done

hosts=(${SLURM_HOSTS:-})
if [ ${#hosts[@]} -gt 0 ]; then
    . "$(dirname "${BASH_SOURCE[0]}")/../multinode/hosts.sh"
    mn_setup "${hosts[@]}" || skip "the namespace hosts could not be made"
    sl() { mn_exec "${hosts[0]}" "$@"; }
else
    sl() { "$@"; }
fi
tmp=$(mktemp -d /tmp/hetrun-slurm.XXXXXX)
chmod 755 "$tmp"
# The daemons detach from this script: stop them by their pid files, on any exit and from a
# watchdog before ctest's limit (which would only kill this shell), so none outlives the test.
stop_daemons() {
    local f
    for f in "$tmp"/slurmd*.pid "$tmp/slurmctld.pid" "$tmp/munged.pid"; do
        [ -s "$f" ] && kill "$(cat "$f")" 2> /dev/null
    done
    sleep 1
    for f in "$tmp"/slurmd*.pid "$tmp/slurmctld.pid" "$tmp/munged.pid"; do
        [ -s "$f" ] && kill -9 "$(cat "$f")" 2> /dev/null
    done
}
(
    exec > /dev/null 2>&1 # ctest waits for every holder of its output pipe
    sleep "${SLURM_WATCHDOG_S:-150}"
    stop_daemons
) &
watchdog=$!
cleanup() {
    kill "$watchdog" 2> /dev/null
    stop_daemons
    # Never rm -rf through the cgroup bind mount (it would remove the machine's cgroups).
    if ! mountpoint -q "$tmp/cgroup" || umount -R "$tmp/cgroup"; then rm -rf "$tmp"; fi
    [ ${#hosts[@]} -eq 0 ] || mn_cleanup
}
trap cleanup EXIT
trap 'exit 1' TERM INT
cd "$tmp" || exit 1
mkdir state log work

# munge: its own key and socket.
dd if=/dev/urandom of=munge.key bs=1024 count=1 2> /dev/null
chmod 400 munge.key
munged -f --socket="$tmp/munge.sock" --key-file="$tmp/munge.key" --pid-file="$tmp/munged.pid" \
    --seed-file="$tmp/munged.seed" --log-file="$tmp/log/munged.log" ||
    skip "munged did not start: $(tail -n 3 log/munged.log 2> /dev/null)"

# slurm.conf: by default no cgroups (proctrack/linuxproc, task/none), which runs in any
# container; SLURM_MODE=cgroup uses the plugins centres run (proctrack/cgroup, task/cgroup
# with ConstrainCores, task/affinity) and needs writable cgroup v1 controllers. Ports are
# chosen at random so parallel runs of these tests do not meet.
node=$(slurmd -C 2> /dev/null | head -n 1)
cpus=$(echo "$node" | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')
name=$(echo "$node" | sed -n 's/^NodeName=\([^ ]*\).*/\1/p')
[ -n "$name" ] && [ "${cpus:-0}" -ge 2 ] || skip "slurmd -C: '$node' (2 CPUs needed)"
port=$((20000 + RANDOM % 20000))
proctrack=proctrack/linuxproc taskplugin=task/none
if [ ${#hosts[@]} -gt 0 ]; then
    # `ip netns exec` mounts a fresh /sys, hiding the cgroup tree slurmd 22.05 opens even
    # without cgroup plugins: give it the machine's through a bind mount outside /sys.
    [ "${SLURM_MODE:-plain}" = plain ] || skip "SLURM_MODE=$SLURM_MODE with namespace hosts"
    mkdir cgroup && mount --rbind /sys/fs/cgroup cgroup || skip "cannot bind /sys/fs/cgroup"
    printf 'CgroupPlugin=cgroup/v1\nCgroupMountpoint=%s\nCgroupAutomount=no\n' "$tmp/cgroup" \
        > cgroup.conf
    # The hosts share /tmp: each keeps PMIx's client folders in its own node-local folder.
    printf 'PMIxCliTmpDirBase=%s\n' "$MN_BASE/node" > mpi.conf
fi
if [ "${SLURM_MODE:-plain}" = cgroup ]; then
    [ -w /sys/fs/cgroup/cpuset ] && [ -w /sys/fs/cgroup/freezer ] ||
        skip "no writable cgroup v1 cpuset and freezer controllers under /sys/fs/cgroup"
    proctrack=proctrack/cgroup taskplugin=task/cgroup,task/affinity
    cat > cgroup.conf << EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
CgroupAutomount=no
ConstrainCores=yes
ConstrainRAMSpace=no
EOF
fi
if [ ${#hosts[@]} -gt 0 ]; then
    ctl="${hosts[0]}(10.77.0.1)" nodes=$(
        IFS=,
        echo "${hosts[*]}"
    )
    i=1
    nodelines=
    for h in "${hosts[@]}"; do
        nodelines+="NodeName=$h NodeAddr=10.77.0.$i ${node#NodeName=* }"$'\n'
        i=$((i + 1))
    done
else
    ctl="$name(127.0.0.1)" nodes=$name nodelines="$node NodeAddr=127.0.0.1"
fi
cat > slurm.conf << EOF
ClusterName=hetruntest
SlurmctldHost=$ctl
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge.sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool-%n
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd-%n.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd-%n.log
ProctrackType=$proctrack
TaskPlugin=$taskplugin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=5
TmpFS=${MN_BASE:-/tmp}${MN_BASE:+/node}
$nodelines
PartitionName=debug Nodes=$nodes Default=YES MaxTime=INFINITE State=UP
EOF
sed -i 's/ UpTime=[^ ]*//; /^$/d' slurm.conf
export SLURM_CONF=$tmp/slurm.conf
sl slurmctld -i -f "$SLURM_CONF" || skip "slurmctld did not start: $(tail -n 3 log/slurmctld.log)"
for h in "${hosts[@]:-}"; do
    if [ -n "$h" ]; then
        mn_exec "$h" slurmd -f "$SLURM_CONF"
    else
        slurmd -f "$SLURM_CONF"
    fi || skip "slurmd did not start: $(tail -n 3 log/slurmd-*.log)"
done
want=$(echo "$nodes" | tr , '\n' | wc -l)
for _ in $(seq 30); do
    [ "$(sl sinfo -h -N -o %t 2> /dev/null | grep -cx idle)" -eq "$want" ] && break
    sleep 1
done
[ "$(sl sinfo -h -N -o %t 2> /dev/null | grep -cx idle)" -eq "$want" ] ||
    skip "the nodes never became idle: $(sl sinfo -N 2>&1 | tail -n 3); $(tail -n 3 log/slurmd-*.log)"
echo "slurm: $(sinfo -V), node(s) $nodes with $cpus CPUs each, port $port"
sl srun --mpi=list 2>&1 | tr '\n' ' '
echo

