#!/bin/bash
# A rank that fails in a job whose workloads communicate (train) must not leave its
# peers waiting in a collective forever: the job aborts within seconds, exits non-zero,
# and the report says failed. Each rank reads a per-rank data file; one is missing.
# usage: test_abort.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
cat > job.yaml <<'YAML'
version: 1
backend: cpu
workloads:
  - train:
      data: {source: csv, path: "data-${OMPI_COMM_WORLD_RANK}.csv.gz"}
      hidden: [32]
      steps: 50
YAML
for present in 0 1; do
    rm -f data-*.csv.gz r.json
    cp "$src/examples/data/digits.csv.gz" "data-$present.csv.gz"
    start=$(date +%s)
    timeout 60 mpirun -np 2 "$hetrun" run --report r.json job.yaml > out.txt 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat out.txt; echo "FAIL: rank $((1 - present)) missing its data: exit $rc"; fail=1; }
    [ $took -lt 30 ] || { echo "FAIL: abort took $took s"; fail=1; }
    grep -q "aborting the job so no rank waits forever" out.txt || { cat out.txt; echo "FAIL: no abort message"; fail=1; }
    grep -q '"status":[[:space:]]*"failed"' r.json || { cat r.json; echo "FAIL: report not failed"; fail=1; }
    if [ $present -eq 1 ]; then # rank 0 failed: its report names the cause
        grep -q 'rank 0 failed and the job was aborted: .*data-0.csv.gz' r.json || { cat r.json; echo "FAIL: cause missing"; fail=1; }
    fi
    echo "rank $((1 - present)) without data: exit $rc after ${took}s"
done
exit $fail
