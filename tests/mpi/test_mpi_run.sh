#!/bin/bash
# hetrun run under mpirun: 2 ranks (and 4 oversubscribed) write one report with every
# rank, status ok, checks passed, disjoint cpus, and FLOP counts as the spec predicts.
# usage: test_mpi_run.sh HETRUN CHECK_REPORT SOURCE_DIR
set -u
hetrun=$1 check=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
mpirun -np 2 "$hetrun" run --report "$tmp/r2.json" "$src/examples/gemm.yaml" > out2.txt 2>&1
rc=$?
[ $rc -eq 0 ] || { cat out2.txt; echo "FAIL: mpirun -np 2 exited $rc"; fail=1; }
"$check" "$tmp/r2.json" 2 ok 2 10 || fail=1
[ -s "$tmp/r2.csv" ] || { echo "FAIL: CSV beside the report missing"; fail=1; }
grep -q "passed" out2.txt || { echo "FAIL: table not printed"; fail=1; }

cat > small.yaml <<'YAML'
version: 1
job: {name: small}
backend: cpu
workloads:
  - gemm: {m: 64, n: 48, k: 96, warmup: 1, iterations: 3}
  - gemm: {m: 33, n: 65, k: 17, dtype: fp64, trans_a: true, trans_b: true, warmup: 1, iterations: 3}
YAML
mpirun -np 4 --oversubscribe "$hetrun" run --report "$tmp/r4.json" small.yaml > out4.txt 2>&1
rc=$?
[ $rc -eq 0 ] || { cat out4.txt; echo "FAIL: mpirun -np 4 exited $rc"; fail=1; }
# 4 ranks on a 2-core machine must share cores, so only the schema is checked there.
"$check" "$tmp/r4.json" 4 ok 1 3 2>&1 | grep -v "is bound to rank" | grep FAIL && fail=1
exit $fail
