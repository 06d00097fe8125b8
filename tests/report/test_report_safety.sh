#!/bin/bash
# Nothing lost: a report path (or a CSV table beside it) that names the spec, the data, a
# device, a FIFO, a folder or any file hetrun did not write is refused with exit 3 and the
# file is untouched (checksum before and after); hetrun's own earlier report is replaced and
# its tables never outlive it as a stale "ok"; temp files of dead writers are cleaned; the
# guard report of a job with a very long name is valid JSON.
# usage: test_report_safety.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
. "$src/tests/report/pick_python.sh"
pick_python json || { echo "no python3"; exit 77; }
fail=0
zcat "$src/examples/data/digits.csv.gz" > train.csv
cat > job.yaml <<'YAML'
version: 1
job: {name: safety}
backend: cpu
workloads:
  - train: {data: {source: csv, path: train.csv}, hidden: [16], epochs: 1}
YAML
sum() { # content checksum of a regular file; type and inode of anything else (never opened)
    if [ -L "$1" ] || { [ -e "$1" ] && [ ! -f "$1" ]; }; then stat -c '%F %i %s' "$1"
    elif [ -e "$1" ]; then md5sum < "$1"; else echo absent; fi
}
refuse() { # refuse WHAT PATH MESSAGE: exit 3, message, PATH unchanged
    local before after rc
    before=$(sum "$2")
    timeout 60 "$hetrun" run -q --report "$2" job.yaml > out.txt 2>&1
    rc=$?
    after=$(sum "$2")
    [ $rc -eq 3 ] || { cat out.txt; echo "FAIL: $1: exit $rc, expected 3"; fail=1; }
    grep -q -- "$3" out.txt || { cat out.txt; echo "FAIL: $1: message lacks '$3'"; fail=1; }
    [ "$before" = "$after" ] || { echo "FAIL: $1: $2 was modified"; fail=1; }
    echo "ok:   $1 refused"
}
refuse "data file" train.csv "report path train.csv is an existing file hetrun did not write"
refuse "spec" job.yaml "report path job.yaml is the job spec"
refuse "CSV table over the data" train.json "report path train.csv is an existing file hetrun did not write"
[ ! -e train.json ] || { echo "FAIL: the refused job left train.json"; fail=1; }
echo '{"results": [1, 2]}' > foreign.json
refuse "foreign JSON" foreign.json "report path foreign.json is an existing file hetrun did not write"
refuse "device" /dev/null "report path /dev/null is a character device"
[ -c /dev/null ] || { echo "FAIL: /dev/null is no longer a device"; fail=1; }
mkfifo pipe.json
refuse "FIFO" pipe.json "report path pipe.json is a FIFO"
[ -p pipe.json ] || { echo "FAIL: the FIFO was replaced"; fail=1; }
mkdir dir.json
refuse "folder" dir.json "report path dir.json is a directory"
ln -s train.csv link.json
refuse "symlink" link.json "report path link.json is a symbolic link"
# hetrun's own report is replaced; stale temps of dead writers go, a live writer's stay.
sh -c 'exit 0' & dead=$!
wait $dead
touch ".r.json.tmp.$dead.AbCdEf" ".r.json.tmp.$$.AbCdEf"
"$hetrun" run -q --report r.json job.yaml > ok1.txt 2>&1 || { cat ok1.txt; echo "FAIL: first run"; fail=1; }
[ ! -e ".r.json.tmp.$dead.AbCdEf" ] || { echo "FAIL: a dead writer's temp file stayed"; fail=1; }
[ -e ".r.json.tmp.$$.AbCdEf" ] || { echo "FAIL: a live writer's temp file was removed"; fail=1; }
grep -q '"generator":[[:space:]]*"hetrun"' r.json || { echo "FAIL: report lacks the generator mark"; fail=1; }
grep -q ',ok,' r.usage.csv || { cat r.usage.csv; echo "FAIL: first run's usage table"; fail=1; }
"$hetrun" run -q --report r.json job.yaml > ok2.txt 2>&1 || { cat ok2.txt; echo "FAIL: rerun over its own report"; fail=1; }
# A later failed run over the same path: no table beside it may still say ok.
sed 's/path: train.csv/path: missing.csv/' job.yaml > broken.yaml
"$hetrun" run -q --report r.json broken.yaml > bad.txt 2>&1 && { echo "FAIL: missing data accepted"; fail=1; }
grep -q '"status":[[:space:]]*"failed"' r.json || { echo "FAIL: r.json not failed"; fail=1; }
if [ -e r.usage.csv ] && grep -q ',ok,' r.usage.csv; then echo "FAIL: stale ok usage table"; fail=1; fi
echo "ok:   own report replaced, tables follow its status, stale temps cleaned"
# The guard report is valid JSON whatever the job name's length (a spec value may hold 4 KiB).
# A 5 s timeout: the backend probe gets 90 % of it, and 0.9 s was too short under load.
name=$(head -c 4000 /dev/zero | tr '\0' 'n')
cat > slow.yaml <<YAML
version: 1
job: {name: "$name\"quoted\""}
backend: cpu
limits: {timeout: 5s}
workloads:
  - gemm: {m: 2048, n: 2048, k: 2048, warmup: 0, iterations: 100000, check: false}
YAML
timeout -k 5 60 "$hetrun" run -q --report long.json slow.yaml > long.txt 2>&1
rc=$?
[ $rc -eq 124 ] || { cat long.txt; echo "FAIL: long name: exit $rc, expected 124"; fail=1; }
"$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["status"] == "failed"; assert r["job"]["name"].endswith("\"quoted\""), r["job"]["name"][-20:]' long.json ||
    { echo "FAIL: the guard report of a long job name is not valid JSON"; fail=1; }
exit $fail
