#!/bin/sh
# `hetrun plan` / `hetrun topo` end to end: 100 byte-identical plans, timing, exit codes.
# Usage: cli_plan.sh HETRUN TOPOLOGY_DIR
set -u
HETRUN=$1
TOPO=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
cat >"$tmp/job.yaml" <<'YAML'
version: 1
job:
  name: plan-test
backend: cpu
placement:
  policy: closest
workloads:
  - gemm:
      m: 64
      n: 64
      k: 64
YAML
sed 's/policy: closest/policy: nearest/' "$tmp/job.yaml" >"$tmp/bad.yaml"
printf 'version: 1\nbackend: cpu\nplacement:\n  policy: map\n  map: [0, 99]\nworkloads:\n  - gemm: {m: 8, n: 8, k: 8}\n' >"$tmp/map.yaml"

expect() { # expect CODE DESCRIPTION CMD...
    code=$1; what=$2; shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$code" ]; then
        echo "FAIL: $what: exit $rc, expected $code"; cat "$tmp/err"; fail=1
    fi
}

DGX=$TOPO/nvidia-dgx2-16gpu.xml
expect 0 "plan dgx-2" "$HETRUN" plan "$tmp/job.yaml" --ranks 16 --topology "$DGX" --format json
cp "$tmp/out" "$tmp/first.json"
grep -q '"pci_bus_id":[[:space:]]*"0000:e7:00.0"' "$tmp/first.json" || { echo "FAIL: GPU 15 not in plan"; fail=1; }
start=$(date +%s%N)
i=1
while [ $i -lt 100 ]; do
    "$HETRUN" plan "$tmp/job.yaml" --ranks 16 --topology "$DGX" --format json >"$tmp/again.json" 2>/dev/null
    if ! cmp -s "$tmp/first.json" "$tmp/again.json"; then
        echo "FAIL: plan run $i differs"; diff "$tmp/first.json" "$tmp/again.json" | head; fail=1; break
    fi
    i=$((i + 1))
done
end=$(date +%s%N)
echo "hetrun plan (DGX-2, 16 ranks): 100 identical outputs, $(( (end - start) / 99000 )) us per run (process start included)"
one=$(( (end - start) / 99000000 ))
[ "$one" -lt 1000 ] || { echo "FAIL: one plan took ${one} ms"; fail=1; }

expect 0 "table format" "$HETRUN" plan "$tmp/job.yaml" --ranks 32 --nodes 2 --topology "$DGX"
[ "$(grep -c ' node1 ' "$tmp/out")" -eq 16 ] || { echo "FAIL: 16 ranks expected on node1"; fail=1; }
expect 2 "missing --ranks" "$HETRUN" plan "$tmp/job.yaml"
expect 2 "bad --ranks" "$HETRUN" plan "$tmp/job.yaml" --ranks 0
expect 2 "nodes > ranks" "$HETRUN" plan "$tmp/job.yaml" --ranks 2 --nodes 3
expect 2 "bad format" "$HETRUN" plan "$tmp/job.yaml" --ranks 2 --format xml
expect 3 "invalid spec" "$HETRUN" plan "$tmp/bad.yaml" --ranks 2 --topology "$DGX"
expect 3 "map to a missing device" "$HETRUN" plan "$tmp/map.yaml" --ranks 2 --topology "$DGX"
grep -q "map\[1\] = 99" "$tmp/err" || { echo "FAIL: map message: $(cat "$tmp/err")"; fail=1; }
expect 4 "missing topology" "$HETRUN" plan "$tmp/job.yaml" --ranks 2 --topology "$tmp/none.xml"
grep -q "none.xml" "$tmp/err" || { echo "FAIL: message does not name the file"; fail=1; }
echo "<topology>" >"$tmp/broken.xml"
expect 4 "broken topology" "$HETRUN" plan "$tmp/job.yaml" --ranks 2 --topology "$tmp/broken.xml"
grep -q "broken.xml" "$tmp/err" || { echo "FAIL: message does not name the file"; fail=1; }

expect 0 "topo xml" "$HETRUN" topo --topology "$TOPO/2socket-1gpu-cuda-opencl.xml" --format json
grep -q '"osdevs":[[:space:]]*"cuda0,card0,opencl0d1"' "$tmp/out" || { echo "FAIL: topo osdevs"; cat "$tmp/out"; fail=1; }
expect 0 "topo this machine" "$HETRUN" topo --backend cpu
expect 2 "topo bad option" "$HETRUN" topo --frobnicate
expect 4 "topo missing file" "$HETRUN" topo --topology "$tmp/none.xml"
[ $fail -eq 0 ] && echo "cli_plan: all checks passed"
exit $fail
