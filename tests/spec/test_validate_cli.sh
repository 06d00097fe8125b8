#!/bin/sh
# `hetrun validate`: exit codes 0 / 3 / 2, one error line per problem, JSON shape.
# $1: the validate binary (hetrun_validate_tool or `hetrun` with "validate" prepended).
set -u
bin=$1
src=${HETRUN_SOURCE_DIR:?HETRUN_SOURCE_DIR must point at the source tree}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expect_rc() { # expect_rc WANT DESCRIPTION CMD...
    want=$1; what=$2; shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL $what: exit $rc, expected $want"; cat "$tmp/out" "$tmp/err"; fail=1
    else
        echo "ok   $what (exit $rc)"
    fi
}
valid=$src/tests/spec/valid/full.yaml
invalid=$src/tests/spec/invalid/many_errors.yaml

expect_rc 0 "valid file" "$bin" validate "$valid"
grep -q "valid (1 workload point" "$tmp/out" || { echo "FAIL summary line"; fail=1; }
expect_rc 3 "invalid file" "$bin" validate "$invalid"
n=$(grep -c "^$invalid:[0-9]*:[0-9]*: " "$tmp/err")
[ "$n" -eq 8 ] || { echo "FAIL expected 8 error lines, got $n"; cat "$tmp/err"; fail=1; }
grep -q "^$invalid:2:1: bakend: unknown key 'bakend' (did you mean 'backend'?)$" "$tmp/err" ||
    { echo "FAIL did-you-mean line"; fail=1; }
expect_rc 3 "valid + invalid" "$bin" validate "$valid" "$invalid"
expect_rc 3 "missing file" "$bin" validate "$tmp/nope.yaml"
grep -q "cannot open the spec: No such file or directory" "$tmp/err" || { echo "FAIL open msg"; fail=1; }
expect_rc 3 "directory" "$bin" validate "$tmp"
expect_rc 2 "no file" "$bin" validate
expect_rc 2 "bad option" "$bin" validate --frobnicate "$valid"
expect_rc 2 "bad format" "$bin" validate --format xml "$valid"
expect_rc 2 "format without value" "$bin" validate --format
expect_rc 0 "help" "$bin" validate --help
grep -q "usage: hetrun validate" "$tmp/out" || { echo "FAIL help text"; fail=1; }
expect_rc 3 "json" "$bin" validate --format json "$valid" "$invalid"
cp "$tmp/out" "$tmp/json"
if command -v python3 >/dev/null 2>&1; then
    python3 - "$tmp/json" "$valid" "$invalid" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
f = d["files"]
assert [x["path"] for x in f] == sys.argv[2:4], f
assert f[0]["valid"] is True and f[0]["errors"] == [] and len(f[0]["sha256"]) == 64, f[0]
assert f[1]["valid"] is False and len(f[1]["errors"]) == 8, f[1]
e = f[1]["errors"][1]
assert (e["line"], e["column"], e["path"]) == (2, 1, "bakend"), e
assert e["message"] == "unknown key 'bakend' (did you mean 'backend'?)", e
print("ok   json shape")
PY
else
    grep -q '"valid":	false' "$tmp/json" || { echo "FAIL json"; fail=1; }
fi
expect_rc 0 "json valid only" "$bin" validate --format=json "$valid"
expect_rc 0 "quiet" "$bin" validate -q "$valid"
[ ! -s "$tmp/out" ] || { echo "FAIL --quiet printed a summary"; fail=1; }
exit $fail
