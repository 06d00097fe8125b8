#!/bin/bash
# hetrun under a real single-node Slurm (Debian's slurm-wlm + munge), started here in a temp
# folder with its own slurm.conf and ports: examples/slurm/hetrun.sbatch submitted in its
# `srun --mpi=pmix` and `mpirun` forms writes an ok report named after the job id; plain
# `srun -n 2` and `srun --mpi=pmi2` (which Debian's Open MPI cannot start under) end with
# exit 1, the advice on stderr and a failed report that names the fix.
# Skipped (77) where Slurm cannot start: packages missing, not root, daemons not coming up.
# usage: test_slurm.sh HETRUN CHECK_REPORT SOURCE_DIR
set -u
hetrun=$(realpath "$1") check=$(realpath "$2") src=$(realpath "$3")
skip() {
    echo "SKIP: $*"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "slurmd must run as root here"
for c in munged munge slurmctld slurmd sbatch srun sinfo python3; do
    command -v "$c" > /dev/null || skip "$c not installed (scripts/install-deps.sh installs slurm-wlm and munge)"
done
# Nothing of an outer Slurm job may leak into ours.
for v in $(env | grep -o '^SLURM_[A-Z_]*'); do unset "$v"; done

tmp=$(mktemp -d /tmp/hetrun-slurm.XXXXXX)
chmod 755 "$tmp"
# The daemons detach from this script: stop them by their pid files, on any exit and from a
# watchdog before ctest's limit (which would only kill this shell), so none outlives the test.
stop_daemons() {
    for p in slurmd slurmctld munged; do
        [ -s "$tmp/$p.pid" ] && kill "$(cat "$tmp/$p.pid")" 2> /dev/null
    done
    sleep 1
    for p in slurmd slurmctld munged; do
        [ -s "$tmp/$p.pid" ] && kill -9 "$(cat "$tmp/$p.pid")" 2> /dev/null
    done
}
(
    exec > /dev/null 2>&1 # ctest waits for every holder of its output pipe
    sleep 150
    stop_daemons
) &
watchdog=$!
cleanup() {
    kill "$watchdog" 2> /dev/null
    stop_daemons
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' TERM INT
cd "$tmp" || exit 1
mkdir state spool log work

# munge: its own key and socket.
dd if=/dev/urandom of=munge.key bs=1024 count=1 2> /dev/null
chmod 400 munge.key
munged -f --socket="$tmp/munge.sock" --key-file="$tmp/munge.key" --pid-file="$tmp/munged.pid" \
    --seed-file="$tmp/munged.seed" --log-file="$tmp/log/munged.log" ||
    skip "munged did not start: $(tail -n 3 log/munged.log 2> /dev/null)"

# slurm.conf: no cgroups (proctrack/linuxproc, task/none) so it runs in a container;
# ports chosen at random so parallel runs of this test do not meet.
node=$(slurmd -C 2> /dev/null | head -n 1)
cpus=$(echo "$node" | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')
name=$(echo "$node" | sed -n 's/^NodeName=\([^ ]*\).*/\1/p')
[ -n "$name" ] && [ "${cpus:-0}" -ge 2 ] || skip "slurmd -C: '$node' (2 CPUs needed)"
port=$((20000 + RANDOM % 20000))
cat > slurm.conf << EOF
ClusterName=hetruntest
SlurmctldHost=$name(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge.sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=5
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$name Default=YES MaxTime=INFINITE State=UP
EOF
sed -i 's/ UpTime=[^ ]*//' slurm.conf
export SLURM_CONF=$tmp/slurm.conf
slurmctld -i -f "$SLURM_CONF" || skip "slurmctld did not start: $(tail -n 3 log/slurmctld.log)"
slurmd -f "$SLURM_CONF" || skip "slurmd did not start: $(tail -n 3 log/slurmd.log)"
for _ in $(seq 30); do
    sinfo -h -o %t 2> /dev/null | grep -qx idle && break
    sleep 1
done
sinfo -h -o %t 2> /dev/null | grep -qx idle ||
    skip "the node never became idle: $(sinfo 2>&1 | tail -n 2); $(tail -n 3 log/slurmd.log)"
echo "slurm: $(sinfo -V), node $name with $cpus CPUs, port $port"
srun --mpi=list 2>&1 | tr '\n' ' '
echo

cd work || exit 1
cat > job.yaml << 'YAML'
version: 1
job: {name: slurm-test}
backend: cpu
workloads:
  - gemm: {m: 64, n: 48, k: 96, warmup: 1, iterations: 3}
YAML
export HETRUN=$hetrun HETRUN_REPORT_DIR=$tmp/work
fail=0

# The example, both forms, through sbatch: the report is named after the job id.
for form in srun mpirun; do
    id=$(HETRUN_LAUNCH=$form timeout 60 sbatch --parsable --wait -o "$form-%j.out" \
        "$src/examples/slurm/hetrun.sbatch" job.yaml)
    rc=$?
    id=${id%%;*}
    if [ $rc -ne 0 ] || [ ! -f "hetrun-$id.json" ]; then
        cat "$form-$id.out" 2> /dev/null
        echo "FAIL: sbatch ($form form) exited $rc, report hetrun-$id.json: $(ls)"
        fail=1
        continue
    fi
    "$check" "hetrun-$id.json" 2 ok 1 3 || {
        cat "$form-$id.out"
        echo "FAIL: report of the $form form"
        fail=1
    }
    echo "ok: sbatch, $form form: job $id, hetrun-$id.json"
done

# The other forms docs/slurm.md promises: srun's --mpi default from SLURM_MPI_TYPE, and one
# rank started directly in a batch script (a singleton MPI job).
SLURM_MPI_TYPE=pmix timeout 60 srun -n 2 "$hetrun" run -q --report env.json job.yaml ||
    { echo "FAIL: SLURM_MPI_TYPE=pmix srun -n 2 exited $?"; fail=1; }
"$check" env.json 2 ok 1 3 || fail=1
timeout 60 sbatch --wait -n 1 -o single.out --wrap "'$hetrun' run -q --report single.json job.yaml" \
    > /dev/null || { cat single.out; echo "FAIL: one rank in a batch script"; fail=1; }
"$check" single.json 1 ok 1 3 || fail=1

# srun forms the MPI cannot start under: exit 1, the fix on stderr, a failed report.
forms=("")
srun --mpi=list 2>&1 | grep -qw pmi2 && forms+=("--mpi=pmi2")
for f in "${forms[@]}"; do
    what="srun -n 2 ${f:-(plain)}"
    rm -f bad.json
    timeout 60 srun -n 2 $f "$hetrun" run --report bad.json job.yaml > bad.out 2> bad.err
    rc=$?
    [ $rc -eq 1 ] || { cat bad.err; echo "FAIL: $what exited $rc, want 1"; fail=1; }
    grep -q 'srun --mpi=pmix hetrun run' bad.err && grep -q 'mpirun -np N' bad.err ||
        { cat bad.err; echo "FAIL: $what: no advice on stderr"; fail=1; }
    grep -q 'not built with SLURM' bad.err &&
        { echo "FAIL: $what reached MPI_Init"; fail=1; }
    [ "$(grep -c 'Run it one of these ways' bad.err)" -eq 1 ] ||
        { cat bad.err; echo "FAIL: $what: the advice should be printed once (rank 0)"; fail=1; }
    python3 - bad.json "$what" << 'PY' || fail=1
import json, sys
path, what = sys.argv[1], sys.argv[2]
try:
    r = json.load(open(path))
except Exception as e:
    sys.exit(f"FAIL: {what}: no readable report: {e}")
bad = []
if r.get("status") != "failed": bad.append(f"status {r.get('status')!r}")
if "--mpi=pmix" not in (r.get("reason") or ""): bad.append(f"reason {r.get('reason')!r}")
if (r.get("job") or {}).get("name") != "slurm-test": bad.append("job record missing")
if bad: sys.exit(f"FAIL: {what}: " + "; ".join(bad))
print(f"ok: {what}: exit 1, failed report: {r['reason'][:80]}...")
PY
done

# The escape hatch lets MPI_Init itself fail (Open MPI's own message), so the check is real.
HETRUN_SLURM_CHECK=0 timeout 60 srun -n 1 "$hetrun" run --report off.json job.yaml > off.out 2>&1
rc=$?
if grep -q 'one of these ways' off.out; then
    echo "FAIL: HETRUN_SLURM_CHECK=0 still checked"
    fail=1
fi
echo "HETRUN_SLURM_CHECK=0, plain srun: exit $rc"
exit $fail
