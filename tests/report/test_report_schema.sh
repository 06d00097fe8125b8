#!/bin/bash
# Reports validate against docs/report.schema.json whatever the outcome (ok, a check or a
# run-time failure, a timeout's guard report), and a known bench job's per-rank FLOPs
# equal what its spec predicts. usage: test_report_schema.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/pick_python.sh"
pick_python "jsonschema" || { echo "SKIP: no python3 with jsonschema (apt-get install python3-jsonschema)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
export HETRUN_CACHE_DIR="$tmp/cache"
fail=0

# 1. The known job on 2 ranks: ok, valid, FLOPs as predicted, CSV tables beside it.
mpirun -np 2 "$hetrun" run --report "$tmp/known.json" "$here/known_job.yaml" > known.out 2>&1
rc=$?
[ $rc -eq 0 ] || { cat known.out; echo "FAIL: known job exited $rc"; fail=1; }
"$PY" "$here/check_flops.py" "$tmp/known.json" || fail=1
for f in known.csv known.usage.csv known.collectives.csv; do
    [ -s "$f" ] || { echo "FAIL: $f missing beside the report"; fail=1; }
done
grep -q "# allreduce fp32, 2 ranks" known.out || { echo "FAIL: no collective table printed"; fail=1; }
grep -q "# broadcast int32, 2 ranks" known.out || { echo "FAIL: no broadcast table printed"; fail=1; }

# 2. The gemm example (other workload type) on 2 ranks.
mpirun -np 2 "$hetrun" run -q --report "$tmp/gemm.json" "$src/examples/gemm.yaml" > gemm.out 2>&1 \
    || { cat gemm.out; echo "FAIL: gemm example failed"; fail=1; }

# 3. A run-time failure: a device allocation far beyond memory -> status failed, rank error.
cat > huge.yaml <<'YAML'
version: 1
job: {name: huge}
backend: cpu
workloads:
  - bench: {op: scale, size: 16384, cols: 16777216, dtype: fp64, peak: none}
YAML
"$hetrun" run -q --report "$tmp/huge.json" huge.yaml > huge.out 2>&1
rc=$?
[ $rc -eq 1 ] || { cat huge.out; echo "FAIL: huge job exited $rc, expected 1"; fail=1; }

# 4. A timeout: the guard's report (status failed, no ranks) must validate too.
cat > slow.yaml <<'YAML'
version: 1
job: {name: slow}
backend: cpu
limits: {timeout: 1s}
workloads:
  - bench: {op: gemm, size: 1024, iterations: 100000, peak: none}
YAML
"$hetrun" run -q --report "$tmp/slow.json" slow.yaml > slow.out 2>&1
rc=$?
[ $rc -eq 124 ] || { cat slow.out; echo "FAIL: slow job exited $rc, expected 124"; fail=1; }

"$PY" "$here/validate_report.py" "$src/docs/report.schema.json" known.json gemm.json huge.json \
    slow.json || fail=1
# The schema must be able to fail: a complete-looking report without ranks is refused.
"$PY" - "$src/docs/report.schema.json" known.json <<'PYEOF' || fail=1
import json, sys, jsonschema
v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))
r = json.load(open(sys.argv[2]))
bad = []
r1 = dict(r); r1["ranks"] = []; bad.append(("ok with no ranks", r1))
r2 = json.loads(json.dumps(r)); del r2["ranks"][0]["usage"]["flops"]; bad.append(("usage without flops", r2))
r3 = json.loads(json.dumps(r)); r3["status"] = "done"; bad.append(("unknown status", r3))
r4 = json.loads(json.dumps(r)); r4["reason"] = "x"; bad.append(("ok with a reason", r4))
fails = [name for name, doc in bad if v.is_valid(doc)]
for name in fails:
    print("FAIL: schema accepts a report with", name)
sys.exit(1 if fails else 0)
PYEOF
exit $fail
