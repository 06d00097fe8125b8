#!/bin/bash
# `hetrun usage` over several reports: totals equal the sums of the rank records (checked
# in python from the reports themselves), the CSV says the same, a failed report is summed
# apart, a duplicate counts once, and a file that is not a complete report is refused with
# exit 3 and nothing printed. usage: test_usage.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/pick_python.sh"
pick_python "json" || { echo "SKIP: no python3"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
export HETRUN_CACHE_DIR="$tmp/cache"
fail=0

cat > a.yaml <<'YAML'
version: 1
job: {name: usage-a, account: proj-a}
backend: cpu
workloads:
  - bench: {op: [gemm, layernorm], size: 96, cols: 64, warmup: 1, iterations: 2, peak: none}
YAML
cat > b.yaml <<'YAML'
version: 1
job: {name: usage-b}
backend: cpu
workloads:
  - gemm: {m: 64, n: 80, k: 32, warmup: 1, iterations: 2}
  - bench: {op: allreduce, min_bytes: 64, max_bytes: 4KiB, step_factor: 4, iterations: 3}
YAML
cat > c.yaml <<'YAML'
version: 1
job: {name: usage-c-fails}
backend: cpu
workloads:
  - bench: {op: softmax, size: 40, cols: 30, warmup: 0, iterations: 2, peak: none}
  - bench: {op: scale, size: 16384, cols: 16777216, dtype: fp64, peak: none}
YAML
mpirun -np 2 "$hetrun" run -q --report a.json a.yaml > a.out 2>&1 || { cat a.out; echo "FAIL: job a"; fail=1; }
mpirun -np 2 "$hetrun" run -q --report b.json b.yaml > b.out 2>&1 || { cat b.out; echo "FAIL: job b"; fail=1; }
"$hetrun" run -q --report c.json c.yaml > c.out 2>&1
[ $? -eq 1 ] || { cat c.out; echo "FAIL: job c should fail with 1"; fail=1; }

"$hetrun" usage --format json --csv u.csv a.json b.json c.json a.json > u.json 2> u.err
rc=$?
[ $rc -eq 0 ] || { cat u.err; echo "FAIL: hetrun usage exited $rc"; fail=1; }
grep -q "c.json has status failed" u.err || { cat u.err; echo "FAIL: no warning for the failed report"; fail=1; }
grep -q "a.json is the same job report" u.err || { cat u.err; echo "FAIL: no warning for the duplicate"; fail=1; }
"$PY" - a.json b.json c.json u.json u.csv <<'PYEOF' || fail=1
import csv, json, sys
reports = [json.load(open(p)) for p in sys.argv[1:4]]
out = json.load(open(sys.argv[4]))
rows = list(csv.DictReader(open(sys.argv[5])))
figs = ["wall_seconds", "device_busy_seconds", "flops", "bytes", "ops", "h2d_bytes",
        "d2h_bytes", "collective_bytes"]
fails = 0
def close(a, b):
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)
for status, subset in (("ok", reports[:2]), ("failed", reports[2:])):
    recs = [rk["usage"] for r in subset for rk in r["ranks"]]
    tot = [t for t in out["totals"] if t["status"] == status]
    if len(tot) != 1:
        print("FAIL: %d totals rows with status %s" % (len(tot), status)); fails += 1; continue
    t = tot[0]
    if t["records"] != len(recs) or t["jobs"] != len(subset):
        print("FAIL %s: records %r jobs %r, want %d %d" % (status, t["records"], t["jobs"], len(recs), len(subset))); fails += 1
    for f in figs:
        want = sum(u[f] for u in recs)
        if not close(t[f], want):
            print("FAIL %s totals.%s = %r, sum of records %r" % (status, f, t[f], want)); fails += 1
        groups = [g for g in out["groups"] if g["status"] == status]
        if not close(sum(g[f] for g in groups), want):
            print("FAIL %s groups do not add up for %s" % (status, f)); fails += 1
        c = [r for r in rows if r["status"] == status and r["backend"] == "*"]
        if len(c) != 1 or not close(float(c[0][f]), want):
            print("FAIL %s CSV totals.%s disagree with the records" % (status, f)); fails += 1
    if t["energy_joules"] is not None:
        print("FAIL: energy should be null on the cpu backend (no telemetry)"); fails += 1
if out["reports"] != 4 or out["reports_duplicate"] != 1 or out["reports_failed"] != 1:
    print("FAIL: report counts", out["reports"], out["reports_duplicate"], out["reports_failed"]); fails += 1
if not fails:
    print("ok   usage totals equal the sums of %d records" % sum(len(r["ranks"]) for r in reports))
sys.exit(1 if fails else 0)
PYEOF

# --by job,user,account,day: the groups add up to the same totals; the spec's account shows.
"$hetrun" usage -f json --by job,user,account,day a.json b.json c.json > by.json 2> /dev/null \
    || { echo "FAIL: usage --by"; fail=1; }
"$PY" - u.json by.json <<'PYEOF' || fail=1
import json, sys
u, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
fails = 0
if b["by"] != ["job", "user", "account", "day"]:
    print("FAIL: by", b["by"]); fails += 1
for t0, t1 in zip(u["totals"], b["totals"]):
    for f in ("wall_seconds", "device_seconds", "flops"):
        if abs(t0[f] - t1[f]) > 1e-9 * max(1.0, abs(t0[f])):
            print("FAIL: totals.%s differ between groupings" % f); fails += 1
jobs = {g["job"] for g in b["groups"]}
if len(jobs) != 3:
    print("FAIL: %d job groups for 3 jobs: %s" % (len(jobs), jobs)); fails += 1
if not any(g["account"] == "proj-a" for g in b["groups"]):
    print("FAIL: the spec's account is not a group"); fails += 1
if any(len(g["day"]) != 10 for g in b["groups"]):
    print("FAIL: day is not a date"); fails += 1
# A device's time is billed once: ranks of one job on this host share its CPU device
# (jobs a and b: 2 ranks, half each; job c: 1 rank, all of it).
for g in b["groups"]:
    if abs(g["device_seconds"] - g["wall_seconds"] / g["records"]) > 1e-9 * g["wall_seconds"]:
        print("FAIL: job %s: device_seconds %r for wall %r over %d ranks"
              % (g["job"], g["device_seconds"], g["wall_seconds"], g["records"])); fails += 1
sys.exit(1 if fails else 0)
PYEOF
"$hetrun" usage --by nope a.json > /dev/null 2>&1
[ $? -eq 2 ] || { echo "FAIL: usage --by nope should exit 2"; fail=1; }

# --parsable: a header, then one line per rank with as many fields; -o picks the fields.
"$hetrun" usage --parsable a.json b.json c.json > p.txt 2> /dev/null || { echo "FAIL: --parsable"; fail=1; }
"$hetrun" usage -p -o job,rank,account,flops,device_seconds a.json b.json > o.txt 2> /dev/null \
    || { echo "FAIL: -o"; fail=1; }
"$PY" - p.txt o.txt a.json b.json c.json <<'PYEOF' || fail=1
import json, sys
p = open(sys.argv[1]).read().splitlines()
o = open(sys.argv[2]).read().splitlines()
reps = [json.load(open(x)) for x in sys.argv[3:]]
fails = 0
head = p[0].split("|")
if head[:4] != ["job", "job_id", "step_id", "user"] or "wall_seconds" not in head:
    print("FAIL: parsable header", head); fails += 1
nranks = sum(len(r["ranks"]) for r in reps)
if len(p) != 1 + nranks or any(len(l.split("|")) != len(head) for l in p[1:]):
    print("FAIL: %d parsable lines for %d ranks, or ragged fields" % (len(p) - 1, nranks)); fails += 1
if o[0] != "job|rank|account|flops|device_seconds" or len(o) != 1 + 4:
    print("FAIL: -o output", o[:2], len(o)); fails += 1
want = [rk["usage"]["flops"] for r in reps[:2] for rk in r["ranks"]]
got = [float(l.split("|")[3]) for l in o[1:]]
if got != want:
    print("FAIL: -o flops", got, "want", want); fails += 1
if o[1].split("|")[2] != "proj-a":
    print("FAIL: account column", o[1]); fails += 1
sys.exit(1 if fails else 0)
PYEOF
"$hetrun" usage -o nosuchfield a.json > /dev/null 2>&1
[ $? -eq 2 ] || { echo "FAIL: usage -o nosuchfield should exit 2"; fail=1; }

# --exclude-failed leaves the failed report out.
"$hetrun" usage -f json -x a.json c.json > x.json 2> /dev/null || { echo "FAIL: usage -x"; fail=1; }
"$PY" -c "import json,sys; o=json.load(open('x.json')); sys.exit(0 if len(o['totals'])==1 and o['reports_excluded']==1 else 1)" \
    || { cat x.json; echo "FAIL: --exclude-failed kept the failed report"; fail=1; }

# Refusals: exit 3, a message naming the file and the cause, nothing on stdout.
echo '{"not": "a report"}' > junk.json
head -c 200 a.json > truncated.json
"$PY" -c "import json; r=json.load(open('a.json')); r['schema_version']='3.0'; json.dump(r, open('v3.json','w'))"
"$PY" -c "import json; r=json.load(open('a.json')); del r['ranks'][1]['usage']; json.dump(r, open('nousage.json','w'))"
for bad in junk.json truncated.json v3.json nousage.json missing.json; do
    "$hetrun" usage a.json "$bad" > bad.out 2> bad.err
    rc=$?
    [ $rc -eq 3 ] || { echo "FAIL: usage with $bad exited $rc, expected 3"; fail=1; }
    [ ! -s bad.out ] || { echo "FAIL: usage with $bad printed a table"; fail=1; }
    grep -q "$bad" bad.err || { cat bad.err; echo "FAIL: the refusal does not name $bad"; fail=1; }
done
"$hetrun" usage > /dev/null 2>&1
[ $? -eq 2 ] || { echo "FAIL: usage without files should exit 2"; fail=1; }
"$hetrun" usage --format xml a.json > /dev/null 2>&1
[ $? -eq 2 ] || { echo "FAIL: usage --format xml should exit 2"; fail=1; }
exit $fail
