#!/bin/bash
# ABI compatibility: a module built against the 1.0 headers (tests/abi/v1_0) loads in this
# 1.1 launcher, runs examples/gemm.yaml (checked), is refused a 1.1 op by name, and gets
# batched GEMMs split per entry by the session (test_abi_session); hetrun-conformance shows
# it only the 1.0 cases and its fp32 GEMM passes them.
# usage: test_abi_v1_0.sh HETRUN SESSION_TEST CONFORMANCE MODULE_DIR CPU_MODULE_DIR SOURCE_DIR
set -u
hetrun=$1 session_test=$2 conformance=$3 dir=$4 cpu_dir=$5 src=$6
export HETRUN_BACKEND_PATH=$dir:$cpu_dir
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
"$hetrun" backends > "$tmp/backends.txt" 2>&1
grep -q "abi10" "$tmp/backends.txt" && ! grep -i "abi10.*refused" "$tmp/backends.txt" ||
    { cat "$tmp/backends.txt"; echo "FAIL: abi10 not listed as loaded"; fail=1; }
cd "$tmp" || exit 1
"$hetrun" run -q --backend abi10 --report "$tmp/r.json" "$src/examples/gemm.yaml" > "$tmp/out.txt" 2>&1 ||
    { cat "$tmp/out.txt"; echo "FAIL: examples/gemm.yaml on the 1.0 module exited non-zero"; fail=1; }
python3 - "$tmp/r.json" <<'PY' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
x = r["ranks"][0]
bad = []
if r["status"] != "ok": bad.append("status " + r["status"])
if x["device"]["name"] != "abi 1.0 test device": bad.append("device " + x["device"]["name"])
if x["results"][0]["check"] != "passed": bad.append("check " + x["results"][0]["check"])
for b in bad: print("FAIL:", b)
print("examples/gemm.yaml on abi10: status %s, check %s" % (r["status"], x["results"][0]["check"]))
sys.exit(1 if bad else 0)
PY
cat > "$tmp/v11.yaml" <<'YAML'
version: 1
backend: abi10
workloads:
  - bench: {op: softmax_backward, dtype: fp32, size: 8, cols: 8, iterations: 1}
YAML
# bench records a point its backend cannot run as skipped, with the reason.
"$hetrun" run -q --report "$tmp/r11.json" "$tmp/v11.yaml" > "$tmp/out11.txt" 2>&1
python3 - "$tmp/r11.json" <<'PY' || { cat "$tmp/out11.txt"; fail=1; }
import json, sys
p = json.load(open(sys.argv[1]))["ranks"][0]["results"][0]
want = "op softmax_backward needs backend ABI 1.1; module abi10 declares ABI 1.0"
ok = p.get("supported") is False and want in p.get("skipped_reason", "")
print(("" if ok else "FAIL: ") + "1.1 op on abi10: %s" % p.get("skipped_reason"))
sys.exit(0 if ok else 1)
PY
"$session_test" || fail=1
"$conformance" --backend abi10 --op gemm > "$tmp/conf.txt" 2>&1 || { cat "$tmp/conf.txt"; echo "FAIL: conformance of the 1.0 module"; fail=1; }
tail -1 "$tmp/conf.txt"
exit $fail
