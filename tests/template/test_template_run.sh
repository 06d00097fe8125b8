#!/bin/bash
# The vendor template end to end: its module passes conformance, and under mpirun -np 2
# each rank is given its own simulated accelerator through the visibility variable the
# module names (HETRUN_TEMPLATE_VISIBLE_DEVICES), with the placement saying how the
# device's cores were found (its PCI address is not in this machine's topology).
# usage: test_template_run.sh HETRUN CONFORMANCE TEMPLATE_MODULE_DIR
set -u
hetrun=$1 conformance=$2 dir=$3
export HETRUN_BACKEND_PATH=$dir
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
"$conformance" --backend template --quick > "$tmp/conf.txt" 2>&1 || { cat "$tmp/conf.txt"; echo "FAIL: template conformance"; fail=1; }
tail -1 "$tmp/conf.txt"
cat > "$tmp/job.yaml" <<'YAML'
version: 1
backend: template
workloads:
  - gemm: {m: 48, n: 40, k: 56, iterations: 2}
YAML
mpirun -np 2 "$hetrun" run -v --report "$tmp/r.json" "$tmp/job.yaml" > "$tmp/out.txt" 2>&1 || { cat "$tmp/out.txt"; echo "FAIL: run exited non-zero"; fail=1; }
python3 - "$tmp/r.json" <<'PY' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
bad = []
names = [x["device"]["name"] for x in r["ranks"]]
if r["status"] != "ok": bad.append("status " + r["status"])
if sorted(names) != ["template device 0", "template device 1"]: bad.append("devices %s" % names)
for x in r["ranks"]:
    p = x["placement"]
    if p.get("visibility_env") != "HETRUN_TEMPLATE_VISIBLE_DEVICES": bad.append("rank %d visibility_env %r" % (x["rank"], p.get("visibility_env")))
    if p.get("visibility_value") not in ("0", "1"): bad.append("rank %d visibility_value %r" % (x["rank"], p.get("visibility_value")))
    if p.get("locality") == "pci": bad.append("rank %d claims PCI locality for a device not in the topology" % x["rank"])
    if x["results"][0]["check"] != "passed": bad.append("rank %d check %s" % (x["rank"], x["results"][0]["check"]))
for b in bad: print("FAIL:", b)
print("template run: devices %s" % names)
sys.exit(1 if bad else 0)
PY
exit $fail
