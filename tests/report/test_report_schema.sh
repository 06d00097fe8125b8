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

# 2. The gemm example (other workload type) on 2 ranks, the summary as JSON on stdout.
mpirun -np 2 "$hetrun" run --format json --report "$tmp/gemm.json" "$src/examples/gemm.yaml" \
    > gemm.out 2> gemm.err || { cat gemm.out gemm.err; echo "FAIL: gemm example failed"; fail=1; }
"$PY" - gemm.out "$tmp/gemm.json" <<'PYEOF' || fail=1
import json, sys
out, rep = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
fails = 0
if out.get("summary") != rep["summary"] or out.get("status") != rep["status"]:
    print("FAIL: --format json: the summary on stdout differs from the report's"); fails += 1
if out.get("report") != sys.argv[2]:
    print("FAIL: --format json does not name the report", out.get("report")); fails += 1
for p in rep["summary"]["workloads"]:
    if not p["title"].startswith("gemm "):
        print("FAIL: gemm point title does not name the op:", p["title"]); fails += 1
for rk in rep["ranks"]:
    for r in rk["results"]:
        if not all(isinstance(r.get(k), (int, float)) for k in "mnk") or not r.get("dtype"):
            print("FAIL: gemm result without m/n/k/dtype"); fails += 1
sys.exit(1 if fails else 0)
PYEOF

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

# 4. A timeout: the guard's report (status failed, no ranks) must validate too. Not 1 s: the
# backend probe is bounded by 90 % of the timeout, and a loaded machine's probe took 0.9 s
# (exit 4, no usable backend).
cat > slow.yaml <<'YAML'
version: 1
job: {name: slow}
backend: cpu
limits: {timeout: 5s}
workloads:
  - bench: {op: gemm, size: 1024, iterations: 100000, peak: none}
YAML
timeout -k 5 60 "$hetrun" run -q --report "$tmp/slow.json" slow.yaml > slow.out 2>&1
rc=$?
[ $rc -eq 124 ] || { cat slow.out; echo "FAIL: slow job exited $rc, expected 124"; fail=1; }

"$PY" "$here/validate_report.py" "$src/docs/report.schema.json" known.json gemm.json huge.json \
    slow.json || fail=1
# The usage record inside each report against its own schema.
"$PY" - "$src/docs/usage.schema.json" known.json gemm.json huge.json <<'PYEOF' || fail=1
import json, sys, jsonschema
v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))
fails = 0
for path in sys.argv[2:]:
    rec = json.load(open(path)).get("accounting")
    errs = list(v.iter_errors(rec)) if rec is not None else ["no accounting record"]
    for e in errs[:5]:
        print("FAIL %s accounting: %s" % (path, getattr(e, "message", e))); fails += 1
    if rec is not None and len(rec["ranks"]) != len(json.load(open(path))["ranks"]):
        print("FAIL %s: one usage entry per rank" % path); fails += 1
bad = json.loads(json.dumps(json.load(open(sys.argv[2]))["accounting"]))
del bad["ranks"][0]["device_seconds"]
if v.is_valid(bad):
    print("FAIL: usage schema accepts a rank without device_seconds"); fails += 1
sys.exit(1 if fails else 0)
PYEOF
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
