#!/bin/bash
# `hetrun backends` over deliberately broken modules: each is named by path, ABI and version
# in the table and in valid JSON, with its failure (signal name, hang, exit, refusal cause),
# and the tool neither crashes nor hangs. Then an installed layout: a registration file in
# <prefix>/etc/hetrun/backends.d is found with no environment variable, a broken one is
# refused naming the file, a shadowed module is reported, and a binary outside the build
# tree never searches it.
# usage: test_backends.sh HETRUN FAKE_MODULE_DIR MODULE_INSTALL_SUBDIR
set -u
hetrun=$(realpath "$1") mods=$(realpath "$2") libsub=${3:-lib/hetrun}
broken=$mods/broken
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
scale=${HETRUN_TEST_TIME_SCALE:-1}
py=/usr/bin/python3
bad() { echo "FAIL: $*"; fail=1; }

# ---- the broken folder, table and JSON ----
for fmt in table json; do
    start=$(date +%s)
    HETRUN_PROBE_TIMEOUT=2 HETRUN_BACKEND_PATH=$broken timeout 60 "$hetrun" backends \
        --format $fmt > "$tmp/$fmt.out" 2> "$tmp/$fmt.err"
    rc=$?
    took=$(($(date +%s) - start))
    [ $rc -eq 4 ] || { cat "$tmp/$fmt.out" "$tmp/$fmt.err"; bad "$fmt: exit $rc, expected 4"; }
    # One hung module costs one time limit (2 s), not more; the bound is generous for load.
    [ $took -le $((20 * scale)) ] || bad "$fmt: took $took s"
done
$py - "$tmp/json.out" "$broken" <<'EOF' || fail=1
import json, sys
doc = json.load(open(sys.argv[1]))  # must be valid JSON despite a module printing to stdout
d = sys.argv[2]
want = {  # name: (state, words the reason must hold)
    "crashinit": ("crashed", ["crashed in init", "signal 11", "SIGSEGV"]),
    "hanginit": ("hung", ["hung in init", "within 2 s"]),
    "exitinit": ("exited", ["in init", "exit status 3"]),
    "abimajor": ("refused", ["ABI major mismatch", "found 2."]),
    "shorttable": ("refused", ["ops table too small"]),
    "nullfn": ("refused", ["lacks required functions (NULL): copy_d2h, op_run"]),
    "mismatch": ("refused", ["name mismatch", "'mismatch'", "'othername'"]),
    "onedev": ("loaded", []),
}
got = {b["name"]: b for b in doc["backends"]}
bad = 0
for name, (state, words) in want.items():
    b = got.get(name)
    if b is None:
        print(f"FAIL: json: {name} not listed"); bad = 1; continue
    path = f"{d}/libhetrun_backend_{name}.so"
    if b["state"] != state: print(f"FAIL: json: {name} state {b['state']}, expected {state}"); bad = 1
    if b["path"] != path: print(f"FAIL: json: {name} path {b['path']}"); bad = 1
    if b["version"] != f"{name}-1.2": print(f"FAIL: json: {name} version {b['version']}"); bad = 1
    if not b["abi"]: print(f"FAIL: json: {name} has no ABI"); bad = 1
    reason = b["reason"] or ""
    for w in words + ([path, f"version {name}-1.2"] if words else []):
        if w not in reason: print(f"FAIL: json: {name} reason lacks {w!r}: {reason}"); bad = 1
if got.get("crashinit", {}).get("signal") != 11: print("FAIL: json: crashinit signal"); bad = 1
one = got.get("onedev", {}).get("devices", [])
if len(one) != 1 or one[0].get("name") != "fake device 0":
    print(f"FAIL: json: onedev devices {one}"); bad = 1
print("ok:   json names every broken module" if not bad else "")
sys.exit(bad)
EOF
for name in crashinit hanginit exitinit abimajor shorttable nullfn mismatch onedev; do
    grep -Eq "^$name +[a-z]+ +[0-9]+\.[0-9]+ +$name-1\.2 +$broken/libhetrun_backend_$name\.so" \
        "$tmp/table.out" || { cat "$tmp/table.out"; bad "table: no line naming $name with ABI, version and path"; }
done
grep -q "killed by signal 11 (SIGSEGV" "$tmp/table.out" || bad "table: no signal name"
grep -q "hello from init" "$tmp/table.out" && bad "table: a module's stdout reached hetrun's stdout"

# ---- topo: a crashing module is a row, an unknown name is exit 4 ----
HETRUN_BACKEND_PATH=$broken "$hetrun" topo --backend crashinit --format json > "$tmp/topo.json" 2>&1
rc=$?
[ $rc -eq 0 ] || bad "topo --backend crashinit: exit $rc, expected 0"
$py -c 'import json,sys; b=json.load(open(sys.argv[1]))["backends"][0]; sys.exit(not (b["state"] == "crashed" and "version crashinit-1.2" in b["reason"] and "SIGSEGV" in b["reason"]))' \
    "$tmp/topo.json" || { cat "$tmp/topo.json"; bad "topo: crashinit not reported as crashed with its version"; }
HETRUN_BACKEND_PATH=$broken "$hetrun" topo --backend nosuch > "$tmp/topo.txt" 2>&1
rc=$?
[ $rc -eq 4 ] || { cat "$tmp/topo.txt"; bad "topo --backend nosuch: exit $rc, expected 4 (no such backend)"; }

# ---- an installed layout: registration folder, no environment variable ----
prefix=$tmp/prefix
mkdir -p "$prefix/bin" "$prefix/etc/hetrun/backends.d"
cp "$hetrun" "$prefix/bin/hetrun"
echo "$broken/libhetrun_backend_onedev.so" > "$prefix/etc/hetrun/backends.d/onedev.conf"
printf '# a vendor package\n\n  %s  \n' "$mods/unavailable/libhetrun_backend_fake.so" \
    > "$prefix/etc/hetrun/backends.d/fake.conf"
echo "relative/libhetrun_backend_rel.so" > "$prefix/etc/hetrun/backends.d/rel.conf"
# The install folder comes after the registrations: its onedev is shadowed by onedev.conf,
# its own cpu-less "exitinit" is found there.
mkdir -p "$prefix/$libsub"
cp "$broken/libhetrun_backend_onedev.so" "$broken/libhetrun_backend_exitinit.so" "$prefix/$libsub/"
env -u HETRUN_BACKEND_PATH "$prefix/bin/hetrun" backends --format json > "$tmp/inst.json" 2> "$tmp/inst.err"
rc=$?
[ $rc -eq 4 ] || bad "installed: exit $rc, expected 4 (rel.conf is broken)"
$py - "$tmp/inst.json" "$prefix" "$broken" <<'EOF' || fail=1
import json, sys
doc = json.load(open(sys.argv[1]))
prefix, broken = sys.argv[2], sys.argv[3]
got = {b["name"]: b for b in doc["backends"] if b["state"] != "shadowed"}
bad = 0
def check(cond, what):
    global bad
    if not cond: print("FAIL: installed:", what, json.dumps(doc, indent=1)[:3000]); bad = 1
check(got.get("onedev", {}).get("state") == "loaded", "registered onedev not loaded")
check(got.get("onedev", {}).get("origin", "").startswith("registration "), "origin of onedev")
check(got.get("fake", {}).get("state") == "unavailable", "registered fake (comment, spaces)")
rel = got.get("rel", {})
check(rel.get("state") == "refused" and "rel.conf" in (rel.get("reason") or "")
      and "not absolute" in rel["reason"], "broken registration not refused naming its file")
check("cpu" not in got, "a binary outside the build tree found the build tree's cpu module")
ex = got.get("exitinit", {})
check(ex.get("origin") == "install folder" and ex.get("state") == "exited", "install folder module")
sh = [b for b in doc["backends"] if b["name"] == "onedev" and b["state"] == "shadowed"]
check(len(sh) == 1 and sh[0]["path"].startswith(prefix) and "registration" in sh[0]["reason"],
      "the install folder's onedev is not shadowed by the registration")
sys.exit(bad)
EOF
# Shadowing: HETRUN_BACKEND_PATH wins over the registration of the same name.
HETRUN_BACKEND_PATH=$mods/major2 "$prefix/bin/hetrun" backends --format json > "$tmp/sh.json" 2>/dev/null
$py - "$tmp/sh.json" "$mods" <<'EOF' || fail=1
import json, sys
doc = json.load(open(sys.argv[1]))
mods = sys.argv[2]
fakes = [b for b in doc["backends"] if b["name"] == "fake"]
states = sorted(b["state"] for b in fakes)
ok = states == ["refused", "shadowed"]
sh = [b for b in fakes if b["state"] == "shadowed"]
ok = ok and sh[0]["path"] == f"{mods}/unavailable/libhetrun_backend_fake.so"
ok = ok and sh[0]["shadowed_by"] == f"{mods}/major2/libhetrun_backend_fake.so"
ok = ok and "HETRUN_BACKEND_PATH" in sh[0]["reason"]
print("ok:   shadowing reported" if ok else "FAIL: shadowing: " + json.dumps(fakes, indent=1))
sys.exit(0 if ok else 1)
EOF
HETRUN_BACKEND_PATH=$mods/major2 "$prefix/bin/hetrun" backends > "$tmp/sh.txt" 2>&1
grep -Eq "^fake +shadowed .*unavailable/libhetrun_backend_fake.so" "$tmp/sh.txt" &&
    grep -q "shadowed by $mods/major2/libhetrun_backend_fake.so" "$tmp/sh.txt" ||
    { cat "$tmp/sh.txt"; bad "table: shadowing not reported"; }
[ $fail = 0 ] && echo "ok:   installed layout, registration, shadowing"

# ---- which ops a job needs, and who supports them ----
cat > "$tmp/job.yaml" <<'YAML'
version: 1
backend: onedev
workloads:
  - gemm: {m: 16, n: 16, k: 16, dtype: [fp32, fp64]}
  - bench: {op: softmax, dtype: fp32, size: 64}
YAML
HETRUN_BACKEND_PATH=$broken "$hetrun" plan "$tmp/job.yaml" --ranks 1 --format json \
    > "$tmp/plan.json" 2> "$tmp/plan.err"
rc=$?
[ $rc -eq 4 ] || { cat "$tmp/plan.err"; bad "plan: exit $rc, expected 4 (onedev lacks softmax)"; }
grep -q "backend onedev does not support 2 ops" "$tmp/plan.err" || { cat "$tmp/plan.err"; bad "plan: message"; }
HETRUN_PROBE_TIMEOUT=2 HETRUN_BACKEND_PATH=$broken "$hetrun" validate --needs --format json \
    "$tmp/job.yaml" > "$tmp/val.json" 2> /dev/null
rc=$?
[ $rc -eq 0 ] || bad "validate --needs: exit $rc, expected 0 (the spec is valid)"
$py - "$tmp/plan.json" "$tmp/val.json" <<'EOF2' || fail=1
import json, sys
plan = json.load(open(sys.argv[1]))["needs"]
val = json.load(open(sys.argv[2]))["files"][0]["needs"]
bad = 0
def check(cond, what):
    global bad
    if not cond: print("FAIL: needs:", what); bad = 1
ops = [(o["op"], o["dtype"], o["out_dtype"]) for o in plan["ops"]]
check(ops == [("gemm", "fp32", "fp32"), ("gemm", "fp64", "fp64"), ("softmax", "fp32", "fp32")],
      f"ops {ops}")
check(plan["ops"][2]["workloads"] and "bench" in plan["ops"][2]["workloads"][0], "workload labels")
(b,) = plan["backends"]
check(b["name"] == "onedev" and b["state"] == "loaded" and not b["supports_all"], "plan backend")
sup = [o["supported"] for o in b["ops"]]
check(sup == [True, False, False], f"onedev support {sup}")
check("only gemm f32" in b["ops"][2]["reason"], "reason of the module")
by = {x["name"]: x for x in val["backends"]}
check(by["onedev"]["ops"][0]["supported"] is True, "validate: onedev gemm fp32")
check(by["crashinit"]["state"] == "crashed" and not by["crashinit"]["supports_all"], "crashinit")
check("version crashinit-1.2" in by["crashinit"]["reason"], "crashinit named in validate")
check(by["hanginit"]["state"] == "hung", "hanginit in validate")
print("ok:   needs and support matrix" if not bad else "")
sys.exit(bad)
EOF2
exit $fail
