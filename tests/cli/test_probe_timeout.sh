#!/bin/bash
# Bounded probes: a backend module that hangs in device_count costs at most the job's
# limits.timeout (or HETRUN_PROBE_TIMEOUT, default 20 s), and the message names the module.
# usage: test_probe_timeout.sh HETRUN HANGING_MODULE_DIR
set -u
hetrun=$1 hang=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
export HETRUN_BACKEND_PATH="$hang${HETRUN_BACKEND_PATH:+:$HETRUN_BACKEND_PATH}"
fail=0
scale=${HETRUN_TEST_TIME_SCALE:-1} # sanitizer builds run slower
job() { # job NAME BACKEND LIMITS
    cat > "$1.yaml" <<YAML
version: 1
backend: $2
$3
workloads:
  - gemm: {m: 32, n: 32, k: 32, iterations: 1}
YAML
}
timed() { # timed MAX_S WANT_EXIT NAME BOUND -- command...: exit code, wall-time bound, and
    # the message naming the probe bound that applied ("within BOUND s")
    local max=$1 want=$2 name=$3 bound=$4 start rc
    shift 5
    start=$(date +%s)
    timeout --preserve-status -s KILL $((60 * scale)) "$@" > "$name.txt" 2>&1 # a hang: 137
    rc=$?
    local took=$(($(date +%s) - start))
    [ $rc -eq "$want" ] || { cat "$name.txt"; echo "FAIL: $name: exit $rc, expected $want"; fail=1; }
    [ $took -le $((max * scale)) ] || { echo "FAIL: $name took $took s, bound $max s"; fail=1; }
    grep -q "module libhetrun_backend_fake.so gave no device list within $bound s" "$name.txt" ||
        { cat "$name.txt"; echo "FAIL: $name: message does not name the hung module"; fail=1; }
    [ $fail = 1 ] || echo "ok:   $name ($took s)"
}
job only fake "limits: {timeout: 2s}"
timed 15 4 only-limit 1.8 -- "$hetrun" run -q --report only.json only.yaml
job fallback "[fake, cpu]" ""
# 5 s, not 1: the bound applies to the cpu module too, whose start took over 1 s under load.
# The message says which bound applied; the wall-time bound only catches a hang (the job ran
# 16 s at load 31: MPI_Init and the GEMM after the 5 s probe).
HETRUN_PROBE_TIMEOUT=5 timed 40 0 env-limit 5 -- "$hetrun" run -v --report fb.json fallback.yaml
exit $fail
