#!/bin/bash
# Who decides whether rank 0 prints progress: `hetrun run --progress`, then
# HETRUN_PROGRESS, then the spec's job.progress, each auto|always|never (auto: the next
# decides; at the end: shown). A bad value of each is refused naming it. Every run is
# bounded by timeout(1).
# usage: test_progress_switch.sh HETRUN
set -u
hetrun=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
bound=$((60 * ${HETRUN_TEST_TIME_SCALE:-1}))
spec() { # spec MODE: a small job with job.progress MODE ("" : the key left out)
    local key=
    [ -n "$1" ] && key=", progress: $1"
    cat > "job-$1.yaml" <<YAML
version: 1
job: {name: progress-switch$key}
backend: cpu
workloads:
  - gemm: {m: [16, 32], n: 16, k: 16, warmup: 1, iterations: 3}
YAML
}
for m in "" auto always never sometimes; do spec "$m"; done
# case WANT SPEC ENV CLI: prints progress lines (WANT yes) or none (no)
case_() {
    local want=$1 sp=$2 env=$3 cli=$4 got=no
    local -a args=(run -q -r r.json)
    [ -n "$cli" ] && args+=("--progress=$cli")
    [ "$cli" = never ] && args=(run -q -r r.json -P never) # the short form
    if [ -n "$env" ]; then
        HETRUN_PROGRESS=$env HETRUN_PROGRESS_INTERVAL=0 timeout "$bound" "$hetrun" "${args[@]}" "job-$sp.yaml" > out.txt 2> err.txt
    else
        env -u HETRUN_PROGRESS HETRUN_PROGRESS_INTERVAL=0 timeout "$bound" "$hetrun" "${args[@]}" "job-$sp.yaml" > out.txt 2> err.txt
    fi
    local rc=$?
    [ $rc = 0 ] || { cat err.txt; echo "FAIL: spec '$sp' env '$env' cli '$cli': exit $rc"; fail=1; return; }
    grep -q '^\[rank 0\] progress: ' err.txt && got=yes
    if [ $got = "$want" ]; then
        echo "ok:   spec '$sp' env '$env' cli '$cli': progress $got"
    else
        cat err.txt
        echo "FAIL: spec '$sp' env '$env' cli '$cli': progress $got, expected $want"
        fail=1
    fi
}
case_ yes "" "" ""            # nobody says: shown
case_ yes auto "" ""
case_ no never "" ""          # the spec
case_ yes always "" ""
case_ no "" 0 ""              # the environment
case_ no "" never ""
case_ yes never 1 ""          # environment over spec
case_ yes never always ""
case_ no always never ""
case_ no never auto ""        # auto in the environment: the spec decides
case_ no "" "" never          # the command line
case_ yes "" 0 always         # command line over environment
case_ no always always never
case_ yes never never always
case_ no never "" auto        # auto on the command line: the next decides
# refused, named
timeout "$bound" "$hetrun" run -q -r r.json --progress=sometimes job-.yaml > out.txt 2> err.txt
rc=$?
{ [ $rc = 2 ] && grep -q -- "--progress.*sometimes" err.txt; } ||
    { cat err.txt; echo "FAIL: --progress=sometimes: exit $rc"; fail=1; }
timeout "$bound" "$hetrun" validate job-sometimes.yaml > out.txt 2> err.txt
rc=$?
{ [ $rc = 3 ] && grep -q 'job.progress.*"sometimes"' out.txt err.txt; } ||
    { cat out.txt err.txt; echo "FAIL: job.progress: sometimes: exit $rc"; fail=1; }
HETRUN_PROGRESS=maybe HETRUN_PROGRESS_INTERVAL=0 timeout "$bound" "$hetrun" run -q -r r.json job-.yaml > out.txt 2> err.txt
{ grep -q "HETRUN_PROGRESS='maybe'" err.txt && grep -q '^\[rank 0\] progress: ' err.txt; } ||
    { cat err.txt; echo "FAIL: HETRUN_PROGRESS=maybe: no warning, or no progress"; fail=1; }
timeout "$bound" "$hetrun" help run | grep -q -- "-P, --progress WHEN" || { echo "FAIL: help run does not list --progress"; fail=1; }
[ $fail = 0 ] && echo "ok"
exit $fail
