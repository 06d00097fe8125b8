#!/bin/bash
# `hetrun conform` against the fake modules of fake_module.c: each broken one must fail, with
# the certificate naming the contract check it breaks (and the module's path and version);
# fake_good must pass every check but the training run. Also the exit codes: 4 no such
# backend, 5 nothing selected, 2 usage.
# usage: test_broken_modules.sh HETRUN FAKE_MODULE_DIR
hetrun=$1
export HETRUN_BACKEND_PATH=$2
PY=$(command -v python3 || echo /usr/bin/python3)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp # a failed training check keeps its folder there
fail=0

# expect VARIANT WANT_RC CHECK_THAT_FAILS ARGS...: runs conform, checks the exit code and
# the certificate (CHECK "-": the whole certificate must pass; "op:NAME": that op's fp32 row fails).
expect() {
    local v=$1 want=$2 check=$3 rc
    shift 3
    "$hetrun" conform --backend "fake_$v" --out "$tmp/$v.json" "$@" > "$tmp/$v.txt" 2>&1
    rc=$?
    if [ $rc -ne "$want" ]; then
        echo "FAIL: fake_$v: exit $rc, expected $want"; cat "$tmp/$v.txt"; fail=1; return
    fi
    "$PY" - "$tmp/$v.json" "$v" "$check" << 'PYEOF' || { cat "$tmp/$v.txt"; fail=1; }
import json, sys
cert = json.load(open(sys.argv[1]))
v, check = sys.argv[2], sys.argv[3]
mod = cert["module"]
assert mod["path"].endswith("libhetrun_backend_fake_%s.so" % v), mod
assert mod["version"] == "0.0-test" and mod["abi"] == "1.3", mod
assert all(d["index"] == 0 for d in cert["devices"]), cert["devices"]
checks = cert["checks"] + [c for d in cert["devices"] for c in d["checks"]]
if check == "-":
    bad = [c for c in checks if c["status"] == "fail"]
    bad += [o for d in cert["devices"] for o in d["ops"] if o["status"] == "fail"]
    assert cert["status"] == "pass" and not bad, bad
elif check.startswith("op:"):  # a numeric fault: the op's fp32 row must fail
    rows = [o for d in cert["devices"] for o in d["ops"] if o["op"] == check[3:] and o["dtype"] == "fp32"]
    assert cert["status"] == "fail" and rows and rows[0]["status"] == "fail", rows
    print("ok: fake_%s caught by %s fp32: error %.3g > bound %.3g" % (v, check[3:], rows[0]["max_error"], rows[0]["bound"]))
else:
    hit = [c for c in checks if c["name"] == check and c["status"] == "fail"]
    assert cert["status"] == "fail", cert["status"]
    assert hit, "fake_%s: no failed check named %s in %s" % (v, check, [(c["name"], c["status"]) for c in checks])
    print("ok: fake_%s caught by %s: %s" % (v, check, hit[0]["detail"][:160]))
PYEOF
}

expect late_read 1 copy_h2d_reuse --checks copy
expect inplace_mul 1 inplace --checks ops --op mul
expect negative_events 1 events --checks events
expect unsafe_free 1 mem_free_pending --checks free
# ASan's quarantine keeps freed memory, so the leak check gives no verdict under it.
case ${HETRUN_TEST_SANITIZE:-OFF} in
ON | 1 | TRUE | true) ;;
*) expect leaky_free 1 mem_free_releases --checks free ;;
esac
expect beta0_reads 1 beta0_no_read --checks ops --op gemm --quick
expect null_crash 1 invalid_handles --checks handles
expect stale_const 1 const_operand --checks const_operand
expect mean_n1 1 op:layernorm_forward --checks ops --op layernorm_forward
grep -q "crashed: killed by signal" "$tmp/null_crash.txt" || { echo "FAIL: null_crash: the crash is not named"; fail=1; }
# The late read also breaks training: ranks end with different weights.
if command -v mpirun > /dev/null; then
    expect late_read 1 train_data_parallel --checks train
fi
expect good 0 - --quick --checks ops,invalid,copy,events,free,handles,concurrency,const_operand

# A module that crashes or hangs in init: the load check fails naming the file; no hang.
for v in crash_init hang_init; do
    HETRUN_PROBE_TIMEOUT=3 timeout 60 "$hetrun" conform --backend "fake_$v" > "$tmp/$v.txt" 2>&1
    rc=$?
    { [ $rc -eq 1 ] && grep -q "libhetrun_backend_fake_$v.so: .*\(crashed\|did not finish\)" "$tmp/$v.txt"; } ||
        { echo "FAIL: fake_$v: exit $rc, want 1 and the file named"; cat "$tmp/$v.txt"; fail=1; }
done

"$hetrun" conform --backend nosuch > /dev/null 2>&1
[ $? -eq 4 ] || { echo "FAIL: --backend nosuch: want exit 4"; fail=1; }
"$hetrun" conform --backend fake_good --checks ops --op attention_forward --dtype fp64 > /dev/null 2>&1
[ $? -eq 5 ] || { echo "FAIL: nothing selected: want exit 5"; fail=1; }
"$hetrun" conform --backend fake_good --format xml > /dev/null 2>&1
[ $? -eq 2 ] || { echo "FAIL: --format xml: want exit 2"; fail=1; }
# --out never replaces a file hetrun conform did not write.
echo "not a certificate" > "$tmp/foreign.json"
"$hetrun" conform --backend fake_good --checks events --out "$tmp/foreign.json" > /dev/null 2>&1
[ $? -eq 1 ] && grep -q "not a certificate" "$tmp/foreign.json" || { echo "FAIL: --out overwrote a foreign file"; fail=1; }
exit $fail
