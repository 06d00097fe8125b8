#!/bin/bash
# bench/suites/quick.yaml on 2 ranks (cpu backend, so the test is the same everywhere):
# exit 0, status ok, every op check passed, every collective row #wrong 0 in every column
# with the plain-MPI reference column present, tables printed, report schema-valid.
# usage: test_bench_quick.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$src/tests/report/pick_python.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
export HETRUN_CACHE_DIR="$tmp/cache"
fail=0
mpirun -np 2 "$hetrun" run --backend cpu --report "$tmp/quick.json" "$src/bench/suites/quick.yaml" \
    > quick.out 2>&1
rc=$?
[ $rc -eq 0 ] || { cat quick.out; echo "FAIL: quick suite exited $rc"; fail=1; }
for t in "workload point (over ranks)" "# allreduce fp32, 2 ranks" "# allgather fp32" \
         "# reduce_scatter fp32" "# broadcast fp32" "status: ok"; do
    grep -qF "$t" quick.out || { echo "FAIL: output lacks '$t'"; fail=1; }
done
pick_python "json" || { echo "SKIP: no python3"; exit 77; }
"$PY" - quick.json <<'PYEOF' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
fails = 0
ops = set()
for rank in r["ranks"]:
    for res in rank["results"]:
        if res["check"] != "passed":
            print("FAIL rank %d %s: check %s" % (rank["rank"], res["label"], res["check"])); fails += 1
        ops.add(res.get("op"))
        for row in res.get("rows", []):
            for col in ("host", "device"):
                if row[col]["wrong"] != 0:
                    print("FAIL rank %d %s %d B %s: #wrong %d" % (rank["rank"], res["op"], row["bytes"], col, row[col]["wrong"])); fails += 1
            if "mpi_reference" not in row:
                print("FAIL %s %d B: no mpi_reference column" % (res["op"], row["bytes"])); fails += 1
want = {"gemm", "bias_add", "act_forward", "act_backward", "softmax", "xent_forward",
        "xent_backward", "layernorm", "reduce_sum_axis0", "reduce_sum_axis1", "scale", "axpy",
        "mul", "fill", "sgd_momentum", "adamw", "cast", "allreduce", "allgather",
        "reduce_scatter", "broadcast"}
if want - ops:
    print("FAIL: the quick suite misses", sorted(want - ops)); fails += 1
rows = r["summary"]["collectives"][0]["rows"]
if not any(x["bytes"] == 4 << 20 for x in rows):
    print("FAIL: the allreduce sweep has no 4 MiB row"); fails += 1
sys.exit(1 if fails else 0)
PYEOF
if pick_python "jsonschema"; then
    "$PY" "$src/tests/report/validate_report.py" "$src/docs/report.schema.json" quick.json || fail=1
else
    echo "note: python3-jsonschema missing; schema validation skipped here"
fi
exit $fail
