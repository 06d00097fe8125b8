#!/bin/bash
# Bounded: a rank stopped with SIGSTOP mid-training (a hung node, a debugger) ends the job
# failed within limits.peer_timeout plus slack, naming the silent rank; whichever rank is
# stopped, no rank spins forever.
# (The pids are found by this test's own report path: other jobs may run the same test.)
# usage: test_peer_stop.sh HETRUN
set -u
hetrun=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/train_job.sh"
cd "$tmp" || exit 1
fail=0
train_job peer-stop "{peer_timeout: 3s, timeout: 10m}"
stop_rank() { # stop_rank RANK: runs 2 ranks, SIGSTOPs RANK once training runs, checks the end
    local victim=$1 pid p mp start took rc watchdog
    rm -f r.json
    # The log line "heartbeat: on" says a rank is past MPI_Init and its set-up: a stop before
    # MPI_Init is bounded by limits.timeout only (docs/faults.md), not what this tests.
    HETRUN_LOG=info mpirun -np 2 "$hetrun" run -q --report "$tmp/r.json" job.yaml > out.txt 2>&1 &
    mp=$!
    pid=
    for _ in $(seq 600); do # until both ranks run with the heartbeat and the victim is known
        if [ "$(grep -c 'heartbeat: on' out.txt)" -ge 2 ]; then
            for p in $(pgrep -f "hetrun run -q --report $tmp/r.json"); do
                tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$victim" && pid=$p
            done
        fi
        [ -n "$pid" ] && break
        kill -0 $mp 2> /dev/null || break
        sleep 0.1
    done
    [ -n "$pid" ] || { echo "FAIL: rank $victim never started"; cat out.txt; kill $mp; fail=1; return; }
    sleep 1
    kill -STOP "$pid"
    start=$(date +%s)
    # A hang fails this test within its bound instead of running into ctest's timeout.
    (sleep $((120 * ${HETRUN_TEST_TIME_SCALE:-1})) && kill -TERM $mp && sleep 5 && kill -KILL $mp) \
        > /dev/null 2>&1 &
    watchdog=$!
    wait $mp
    rc=$?
    kill $watchdog 2> /dev/null
    pkill -KILL -f "hetrun run -q --report $tmp/r.json" # a hung job's ranks, if any
    took=$(($(date +%s) - start))
    [ $rc -ne 0 ] || { echo "FAIL: stopped rank $victim: job exited 0"; fail=1; }
    [ $took -le $((30 * ${HETRUN_TEST_TIME_SCALE:-1})) ] || { echo "FAIL: stopped rank $victim: job took $took s to end"; fail=1; }
    grep -q "rank $victim (host .*) sent no heartbeat for" out.txt ||
        { cat out.txt; echo "FAIL: stopped rank $victim is not named"; fail=1; }
    if [ "$victim" = 1 ]; then
        grep -q '"reason":.*rank 1 (host .*) sent no heartbeat' r.json ||
            { cat r.json; echo "FAIL: the report does not name rank 1"; fail=1; }
    fi
    [ $fail = 1 ] || echo "ok:   stopped rank $victim: exit $rc after $took s"
}
stop_rank 1
stop_rank 0
exit $fail
