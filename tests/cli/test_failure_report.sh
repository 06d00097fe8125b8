#!/bin/bash
# Failure reports with cause and usage, on one node (tests/multinode repeats this across
# namespace hosts): kill -9 of rank 1 names it; SIGTERM to mpirun and kill -9 of rank 0
# leave a failed report carrying both ranks' usage so far; a normal run leaves none of the
# reports kept ready beside its report.
# usage: test_failure_report.sh HETRUN
set -u
hetrun=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
scale=${HETRUN_TEST_TIME_SCALE:-1}
. "$(dirname "$0")/train_job.sh"
train_job failure-report "{peer_timeout: 30s, timeout: 10m}"
rank_pid() { # the pid of rank $1 of this test's job
    local p
    for p in $(pgrep -f "hetrun run -q --report $tmp/r.json"); do
        { tr '\0' '\n' < "/proc/$p/environ"; } 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" &&
            echo "$p" && return
    done
}
stop_all() { kill -KILL $(pgrep -f "hetrun run -q --report $tmp/r.json") $mp 2> /dev/null; }
# kept_ready: the placeholder counts FLOPs of the 2 ranks; the template a signal fills in
# is rendered with it (docs/faults.md): what a kill or a signal must leave behind.
kept_ready() {
    python3 - r.json <<'PY' 2> /dev/null
import json, sys
ok = lambda f: sum(x["usage"]["flops"] > 0 for x in json.load(open(f))["ranks"]) == 2
sys.exit(not ok(sys.argv[1]))
PY
}
start() { # starts 2 ranks; waits until both train and the reports were refreshed once
    rm -f r.json .r.json.tmp.* # a killed rank 0's reports kept ready are not this job's
    mpirun -np 2 "$hetrun" run -q --report "$tmp/r.json" job.yaml > out.txt 2>&1 &
    mp=$!
    for _ in $(seq $((600 * scale))); do
        [ -n "$(rank_pid 1)" ] && grep -q "train: step" out.txt && break
        kill -0 $mp 2> /dev/null || { cat out.txt; echo "FAIL: the job ended before training"; exit 1; }
        sleep 0.1
    done
    # Until a refresh counted both ranks (a fixed sleep raced it on a loaded machine).
    local end=$((SECONDS + 60 * scale))
    until kept_ready; do
        [ $SECONDS -lt $end ] || { cat out.txt; echo "FAIL: no report kept ready with both ranks"; stop_all; exit 1; }
        sleep 0.2
    done
}
# check WHAT PATTERN: the report is failed, its reason matches, both ranks counted FLOPs.
check() {
    python3 - r.json "$2" <<'PY' || { grep -v "train: step" out.txt | tail -20; echo "FAIL: $1"; fail=1; }
import json, re, sys
r = json.load(open(sys.argv[1]))
flops = {x["rank"]: x["usage"]["flops"] for x in r["ranks"]}
print("  %s; FLOPs per rank %s" % (r["reason"], flops))
sys.exit(r["status"] != "failed" or not re.search(sys.argv[2], r["reason"]) or
         sorted(flops) != [0, 1] or min(flops.values()) <= 0)
PY
}
ends() { # ends NAME START: mpirun exits non-zero within 5 s
    local end=$((SECONDS + 60 * scale))
    while kill -0 $mp 2> /dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
    kill -0 $mp 2> /dev/null && { echo "FAIL: $1: still running after 60 s"; stop_all; }
    wait $mp
    local rc=$? took
    took=$(awk -v s="$2" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    echo "$1: exit $rc after $took s"
    [ $rc -ne 0 ] || { echo "FAIL: $1 exited 0"; fail=1; }
    awk -v t="$took" -v b="$((5 * scale))" 'BEGIN { exit !(t <= b) }' || { echo "FAIL: $1 took $took s"; fail=1; }
}

start
kill -KILL "$(rank_pid 1)"
t=$(date +%s.%N)
ends "kill -9 rank 1" "$t"
check "kill -9 rank 1" "^rank 1 \\(host [^)]+\\) ended without finishing"

start
kill -TERM $mp
t=$(date +%s.%N)
ends "SIGTERM to mpirun" "$t"
check "SIGTERM to mpirun" "SIGTERM"

start
kill -KILL "$(rank_pid 0)"
t=$(date +%s.%N)
ends "kill -9 rank 0" "$t"
check "kill -9 rank 0 (the placeholder, refreshed)" "did not finish"

sed -i 's/epochs: 100000/epochs: 2/' job.yaml
mpirun -np 2 "$hetrun" run -q --report "$tmp/r.json" job.yaml > out.txt 2>&1 ||
    { cat out.txt; echo "FAIL: a short job failed"; fail=1; }
left=$(find . -name '.r.json.tmp.*')
[ -z "$left" ] || { echo "FAIL: reports kept ready left behind: $left"; fail=1; }
grep -q '"status":.*"ok"' r.json || { echo "FAIL: short job: report not ok"; fail=1; }
[ $fail = 0 ] && echo "ok"
exit $fail
