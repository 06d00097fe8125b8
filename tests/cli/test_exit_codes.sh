#!/bin/bash
# Every documented exit code of hetrun (docs/exit-codes.md), and the report a failed
# job leaves behind. usage: test_exit_codes.sh HETRUN
set -u
hetrun=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0

scale=${HETRUN_TEST_TIME_SCALE:-1}
expect() { # expect CODE DESCRIPTION -- command...: bounded, a hang exits 137 (not 124)
    local want=$1 what=$2
    shift 3
    timeout --preserve-status -s KILL $((60 * scale)) "$@" > out.txt 2> err.txt
    local got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: $what: exit $got, expected $want"; cat out.txt err.txt; fail=1
    else
        echo "ok:   $what (exit $got)"
    fi
}
stderr_has() {
    grep -q -- "$1" err.txt || { echo "FAIL: stderr lacks '$1':"; cat err.txt; fail=1; }
}
report_has() { # report_has FILE STATUS REASON-FRAGMENT
    grep -q "\"status\":[[:space:]]*\"$2\"" "$1" || { echo "FAIL: $1 status is not $2"; cat "$1"; fail=1; }
    grep -q "$3" "$1" || { echo "FAIL: $1 lacks '$3'"; cat "$1"; fail=1; }
}

expect 2 "no command" -- "$hetrun"
expect 2 "unknown command" -- "$hetrun" frobnicate
stderr_has "unknown command 'frobnicate'"
expect 2 "run without a spec" -- "$hetrun" run
expect 2 "run with an unknown option" -- "$hetrun" run --no-such-option x.yaml
expect 0 "--help" -- "$hetrun" --help
expect 0 "--version" -- "$hetrun" --version
# the ABI the header defines (the script's folder is tests/cli of the source tree)
abi=$(awk '/#define HETRUN_ABI_MAJOR/ {M = $3} /#define HETRUN_ABI_MINOR/ {m = $3} END {print M "." m}' \
    "$(dirname "$0")/../../include/hetrun/backend.h")
grep -q "backend ABI $abi\$" out.txt || { echo "FAIL: --version lacks the ABI $abi"; cat out.txt; fail=1; }
expect 0 "run --help" -- "$hetrun" run --help

cat > bad.yaml <<'YAML'
version: 1
workloads:
  - gemm: {m: 64, n: -3, k: 8, iteratons: 2}
YAML
expect 3 "invalid spec" -- "$hetrun" run bad.yaml
stderr_has "bad.yaml:3:"
stderr_has "workloads\[0\].gemm.n"
stderr_has "did you mean 'iterations'"
[ ! -e hetrun-report.json ] || { echo "FAIL: an invalid spec left a report"; fail=1; }
expect 3 "missing spec file" -- "$hetrun" run does-not-exist.yaml
stderr_has "does-not-exist.yaml"

cat > ok.yaml <<'YAML'
version: 1
backend: cpu
workloads:
  - gemm: {m: 32, n: 32, k: 32, iterations: 2}
YAML
expect 4 "unknown backend" -- "$hetrun" run --backend nosuch ok.yaml
stderr_has "nosuch"
expect 0 "a good job" -- "$hetrun" run --report good.json ok.yaml
report_has good.json ok '"check":[[:space:]]*"passed"'

cat > huge.yaml <<'YAML'
version: 1
backend: cpu
workloads:
  - gemm: {m: 1048576, n: 1048576, k: 1048576, iterations: 1}
YAML
expect 1 "a job that fails at run time" -- "$hetrun" run --report huge.json huge.yaml
report_has huge.json failed '"error":'

# Not 1 s: the backend probe is bounded by 90 % of the timeout (0.9 s was too short under load).
cat > slow.yaml <<'YAML'
version: 1
backend: cpu
limits: {timeout: 5s}
workloads:
  - gemm: {m: 2048, n: 2048, k: 2048, warmup: 0, iterations: 100000, check: false}
YAML
# Data files are read while the job runs: a data error is exit 1 with a failed report
# naming the file and line (docs/exit-codes.md), not 3.
printf '1,2,0\n3,x,1\n' > bad.csv
cat > baddata.yaml <<'YAML'
version: 1
backend: cpu
workloads:
  - train: {data: {source: csv, path: bad.csv}, epochs: 1}
YAML
expect 1 "a data error" -- "$hetrun" run --report baddata.json baddata.yaml
report_has baddata.json failed "bad.csv line 2 column 2: not a finite number"
# A report path that would replace a file hetrun did not write: 3, nothing written.
echo "precious" > precious.txt
expect 3 "report path over a foreign file" -- "$hetrun" run --report precious.txt ok.yaml
stderr_has "report path precious.txt is an existing file hetrun did not write"
[ "$(cat precious.txt)" = precious ] || { echo "FAIL: precious.txt was modified"; fail=1; }

start=$(date +%s.%N)
expect 124 "timeout" -- "$hetrun" run --report slow.json slow.yaml
report_has slow.json failed "timeout"
awk -v s="$start" -v e="$(date +%s.%N)" -v k="${HETRUN_TEST_TIME_SCALE:-1}" 'BEGIN { exit !(e - s < 20 * k) }' || { echo "FAIL: timeout took too long"; fail=1; }

# SIGTERM once the job is running: `-v` logs "running <workload>" after the signal
# handlers are armed (cli/cmd_run.c), so wait for that line, not for a fixed time. The
# job's own timeout is far away, so on a loaded machine the signal still comes first.
sed 's/timeout: 5s/timeout: 10m/' slow.yaml > term.yaml
"$hetrun" run -v --report term.json term.yaml > /dev/null 2> term.err &
pid=$!
for _ in $(seq 600); do # up to 60 s; the job itself runs far longer
    grep -q "running gemm" term.err 2>/dev/null && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
grep -q "running gemm" term.err || { echo "FAIL: the job never logged 'running gemm'"; cat term.err; fail=1; }
kill -TERM $pid
for _ in $(seq $((600 * scale))); do kill -0 $pid 2> /dev/null || break; sleep 0.1; done
kill -KILL $pid 2> /dev/null # still running after 60 s: fails below (137)
wait $pid
got=$?
[ "$got" -eq 143 ] || { echo "FAIL: SIGTERM gave exit $got, expected 143"; fail=1; }
report_has term.json failed "SIGTERM"
[ $fail -eq 0 ] && echo "all exit codes as documented"
exit $fail
