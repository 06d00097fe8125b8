#!/bin/bash
# One backend per job (2 ranks). Rank 1 is made to lack the OpenCL driver (OCL_ICD_VENDORS
# pointing at an empty folder, as on a node without the ICD files), so with
# `backend: [opencl, cpu]` rank 0 picks opencl and rank 1 cpu:
# 1. the mix is refused before anything runs: exit 4, stderr and a failed report name both
#    ranks, their hosts and backends;
# 2. with `backend_mix: allow` it runs, and the report's top-level backend lists the mix
#    ("cpu+opencl") while each rank's record says its own;
# 3. a rank the placement leaves without a device (map: [0, -1]) runs on cpu: also a mix,
#    refused naming the plan as the cause;
# 4. both ranks on opencl: ok, top-level backend "opencl".
# Skipped (77) when the opencl backend has no device here.
# Every report validates against docs/report.schema.json (when python3-jsonschema is there).
# usage: test_backend_mix.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
"$hetrun" backends 2> /dev/null | grep -q '^opencl *loaded' || { echo "SKIP: no opencl device"; exit 77; }
mkdir empty
fail=0
spec() { # spec NAME EXTRA_TOP_KEYS
    cat > "$1.yaml" <<YAML
version: 1
job: {name: mix-$1}
backend: [opencl, cpu]
limits: {timeout: 100}
$2
workloads:
  - gemm: {m: 32, n: 24, k: 40, warmup: 1, iterations: 2}
YAML
}
# run NAME [nodriver] -> NAME.json, NAME.txt; rank 1 without the OpenCL driver when asked
run() {
    local hide=${2:-}
    timeout 120 mpirun -np 2 --oversubscribe sh -c \
        'if [ "$OMPI_COMM_WORLD_RANK" = 1 ] && [ -n "$1" ]; then export OCL_ICD_VENDORS=$PWD/empty; fi
         exec "$0" run --report "$2.json" "$2.yaml"' "$hetrun" "$hide" "$1" > "$1.txt" 2>&1
}

spec refused ""
run refused nodriver
rc=$?
[ $rc -eq 4 ] || { cat refused.txt; echo "FAIL: a backend mix exited $rc, expected 4"; fail=1; }
host=$(hostname | cut -c1-63)
msg="the ranks would run on different backends: cpu on rank 1 (host $host); opencl on rank 0 (host $host)"
grep -qF "$msg" refused.txt || { cat refused.txt; echo "FAIL: stderr does not name ranks, hosts, backends"; fail=1; }
grep -qF "$msg" refused.json || { cat refused.json; echo "FAIL: report reason does not name them"; fail=1; }
grep -q '"status":\s*"failed"' refused.json || { echo "FAIL: report not failed"; fail=1; }
grep -q '"results"' refused.json && { echo "FAIL: a workload ran"; fail=1; }

spec allowed "backend_mix: allow"
run allowed nodriver || { cat allowed.txt; echo "FAIL: an allowed mix did not run"; fail=1; }
grep -q '"backend":\s*"cpu+opencl"' allowed.json || { echo "FAIL: top-level backend not the mix"; fail=1; }
grep -q '^\s*"backend":\s*"opencl",' allowed.json && grep -q '^\s*"backend":\s*"cpu",' allowed.json ||
    { echo "FAIL: each rank's own backend not recorded"; fail=1; }
grep -q "backend_mix: allow: the ranks run on different backends" allowed.txt ||
    { echo "FAIL: an allowed mix is not warned about"; fail=1; }

spec planned "placement: {policy: map, map: [0, -1]}"
run planned
rc=$?
[ $rc -eq 4 ] || { cat planned.txt; echo "FAIL: a plan CPU-only rank exited $rc, expected 4"; fail=1; }
grep -qF "cpu on rank 1 (host $host, no device in the placement plan); opencl on rank 0" planned.txt ||
    { cat planned.txt; echo "FAIL: the plan's CPU-only rank is not named"; fail=1; }

spec same ""
run same || { cat same.txt; echo "FAIL: one backend on all ranks did not run"; fail=1; }
grep -q '"backend":\s*"opencl",' same.json || { echo "FAIL: top-level backend not opencl"; fail=1; }
. "$src/tests/report/pick_python.sh"
if pick_python jsonschema; then
    "$PY" "$src/tests/report/validate_report.py" "$src/docs/report.schema.json" refused.json allowed.json planned.json same.json ||
        { echo "FAIL: a report does not validate against the schema"; fail=1; }
else
    echo "note: no python3 with jsonschema: reports not validated against the schema"
fi
exit $fail
