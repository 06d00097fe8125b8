#!/bin/bash
# Failure reports bill like normal ones: a 2-rank job ended by limits.timeout and one ended
# by SIGTERM to mpirun leave a report whose ranks each carry backend "cpu", a device, cpus
# and a usage record whose wall reaches the failure moment (within [0.8 T, T + 2 s] of the
# job's real elapsed time T; after a SIGTERM at least the time the test saw the ranks
# training before it sent the signal: a refresh-old snapshot falls short), and
# `hetrun usage --parsable` bills non-zero cpu_core_seconds on a named device.
# Every wait is bounded: a bug fails the test, it does not hang it (`timeout --foreground`:
# a plain `timeout` would also signal the ranks' process group itself, which is not what
# mpirun does; the SIGTERM goes to mpirun alone, through timeout, which forwards it).
# usage: test_failure_usage.sh HETRUN
set -u
hetrun=$1
tmp=$(mktemp -d)
scale=${HETRUN_TEST_TIME_SCALE:-1}
# Start-up (seconds on a loaded host, a few more under the sanitizers) stays well under 20%
# of it; the sanitizer build's scale of 20 is for CPU-bound work, not this wall-clock limit.
limit=$((30 * (scale < 3 ? scale : 3)))
. "$(dirname "$0")/train_job.sh"
trap 'kill_ranks "$tmp/r.json"; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail=0
now() { date +%s.%N; }
start() { # starts 2 ranks in the background; sets mp, t0 and, once both train, seen
    rm -f r.json
    t0=$(now)
    timeout --foreground -k 5 $((120 * scale)) mpirun -np 2 "$hetrun" run -q --report "$tmp/r.json" job.yaml \
        > out.txt 2>&1 &
    mp=$!
    seen=
    for _ in $(seq $((600 * scale))); do
        [ "$(pgrep -fc "hetrun run -q --report $tmp/r.json")" -ge 2 ] && grep -q "train: step" out.txt &&
            seen=$(now) && return
        kill -0 $mp 2> /dev/null || return
        sleep 0.1
    done
}
# check NAME T LOW FROM TO: the report bills both ranks up to the failure (T: real elapsed
# time; LOW: a wall each rank must reach, or 0), and its end times (written by the signal
# handler's own calendar arithmetic) fall between FROM and TO (Unix seconds) and agree with
# the walls.
check() {
    python3 - r.json "$2" "$3" "$4" "$5" << 'PY' || { tail -20 out.txt; echo "FAIL: $1"; fail=1; }
import calendar, json, sys, time
r = json.load(open(sys.argv[1]))
T, low, t_from, t_to = map(float, sys.argv[2:6])
bad = []
def epoch(ts):
    try:
        return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
    except Exception:
        return None
fin = epoch(r.get("finished_at") or "")
if fin is None or not (t_from - 1 <= fin <= t_to + 1):
    bad.append("finished_at %r not within the failure (%.0f..%.0f)" % (r.get("finished_at"), t_from, t_to))
if r.get("status") != "failed":
    bad.append("status %r" % r.get("status"))
ranks = {x.get("rank"): x for x in r.get("ranks", [])}
if sorted(ranks) != [0, 1]:
    bad.append("ranks %s" % sorted(ranks))
for n, x in sorted(ranks.items()):
    u = x.get("usage", {})
    w = u.get("wall_seconds", -1)
    dev = x.get("device") or {}
    print("  rank %s: backend %s, device %r, cpus %s, wall %.2f s (real %.2f s), flops %g, %s .. %s"
          % (n, x.get("backend"), dev.get("name"), x.get("cpus"), w, T, u.get("flops", 0),
             u.get("started_at"), u.get("ended_at")))
    if x.get("backend") != "cpu": bad.append("rank %s backend %r" % (n, x.get("backend")))
    if not dev.get("name"): bad.append("rank %s has no device" % n)
    if not x.get("cpus"): bad.append("rank %s has no cpus" % n)
    if not (0.8 * T <= w <= T + 2): bad.append("rank %s wall %.2f outside [%.2f, %.2f]" % (n, w, 0.8 * T, T + 2))
    if w < low: bad.append("rank %s wall %.2f < %.2f: not up to the failure" % (n, w, low))
    if u.get("final") is not False: bad.append("rank %s final %r" % (n, u.get("final")))
    if not u.get("started_at") or not u.get("ended_at"): bad.append("rank %s without start/end" % n)
    if u.get("flops", 0) <= 0: bad.append("rank %s counted no FLOPs" % n)
    s, e = epoch(u.get("started_at") or ""), epoch(u.get("ended_at") or "")
    if s is None or e is None or abs((e - s) - w) > 1.5 or (fin is not None and abs(e - fin) > 1):
        bad.append("rank %s: %s .. %s disagrees with wall %.2f or finished_at" % (n, u.get("started_at"), u.get("ended_at"), w))
print("  reason: %s" % r.get("reason"))
for b in bad: print("  " + b)
sys.exit(1 if bad else 0)
PY
    # the bill: one line per rank, a device, CPU time
    timeout $((30 * scale)) "$hetrun" usage --parsable r.json > bill.txt 2> bill.err
    python3 - bill.txt << 'PY' || { cat bill.txt bill.err; echo "FAIL: $1: hetrun usage --parsable"; fail=1; }
import sys
lines = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip()]
head, rows = lines[0], lines[1:]
col = {k: i for i, k in enumerate(head)}
ok = len(rows) == 2
for row in rows:
    print("  bill: rank %s device %s cpu_core_seconds %s" % (row[col["rank"]], row[col["device"]], row[col["cpu_core_seconds"]]))
    ok &= float(row[col["cpu_core_seconds"]]) > 0 and row[col["device"]] not in ("", "unknown")
    ok &= "unknown" not in row
sys.exit(0 if ok else 1)
PY
}

# 1. limits.timeout
train_job failure-usage "{peer_timeout: 30s, timeout: ${limit}s}"
start
[ -n "$seen" ] || { cat out.txt; echo "FAIL: timeout job: the ranks never trained"; exit 1; }
wait $mp
rc=$?
t1=$(now)
T=$(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.3f", e - s }')
echo "timeout after ${limit} s: exit $rc after $T s"
# 124 when rank 0's clock runs out first, 1 when another rank's does (docs/faults.md)
[ $rc = 124 ] || [ $rc = 1 ] || { tail -5 out.txt; echo "FAIL: timeout: exit $rc, expected 124 or 1"; fail=1; }
grep -q '"reason":.*timeout' r.json || { echo "FAIL: the report does not say timeout"; fail=1; }
check "timeout" "$T" 0 "$(awk -v s="$t0" -v l="$limit" 'BEGIN { printf "%.3f", s + l }')" "$t1"

# 2. SIGTERM to mpirun, well before the timeout
train_job failure-usage "{peer_timeout: 30s, timeout: 10m}"
start
[ -n "$seen" ] || { cat out.txt; echo "FAIL: SIGTERM job: the ranks never trained"; exit 1; }
sleep "$limit"
tk=$(now)
kill -TERM $mp
wait $mp
rc=$?
t1=$(now)
T=$(awk -v s="$t0" -v e="$tk" 'BEGIN { printf "%.3f", e - s }')
low=$(awk -v s="$seen" -v e="$tk" 'BEGIN { printf "%.3f", e - s }')
echo "SIGTERM to mpirun after $T s (ranks seen training for $low s): exit $rc"
[ $rc -ne 0 ] || { echo "FAIL: SIGTERM: exit 0"; fail=1; }
grep -q '"reason":.*SIGTERM' r.json || { grep reason r.json; echo "FAIL: the report does not say SIGTERM"; fail=1; }
check "SIGTERM" "$T" "$low" "$tk" "$t1"

[ $fail = 0 ] && echo "ok"
exit $fail
