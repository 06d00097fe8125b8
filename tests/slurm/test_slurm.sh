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
. "$(dirname "$0")/slurm_start.sh"

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
