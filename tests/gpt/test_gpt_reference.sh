#!/bin/bash
# hetrun's GPT (2 layers, 4 heads, width 64, context 32) against PyTorch on BACKEND: logits,
# loss and every parameter gradient within 1e-4 relative (tests/gpt/reference.yaml); with
# PRECISION bf16 or fp16 (mixed precision), within 10 unit roundoffs of that dtype of the same
# fp32 reference.
# Skips (77) with the reason when the backend is absent or lacks one of the GPT's ops.
# usage: test_gpt_reference.sh HETRUN SOURCE_DIR BACKEND [PRECISION]
set -u
hetrun=$1 src=$2 backend=$3 precision=${4:-fp32}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
sed "s|reference: ../data/gpt|reference: $src/tests/data/gpt\n        precision: $precision|" \
    "$src/tests/gpt/reference.yaml" > ref.yaml
"$hetrun" run --backend "$backend" --report ref.json ref.yaml > out.txt 2>&1
rc=$?
if [ $rc -eq 4 ] || grep -qi "not supported\|unsupported\|refuse" out.txt; then
    echo "SKIP: backend $backend cannot run the GPT here:"
    grep -i "error\|support\|backend" out.txt | head -3
    exit 77
fi
grep "gpt reference" out.txt
[ $rc -eq 0 ] || { tail -20 out.txt; echo "FAIL: exit $rc"; exit 1; }
grep -q '"check":\s*"passed"' ref.json || { echo "FAIL: check not passed"; exit 1; }
grep -q '"worst_relative_error"' ref.json || { echo "FAIL: no errors reported"; exit 1; }
grep -q "\"precision\":\s*\"$precision\"" ref.json || { echo "FAIL: not run in $precision"; exit 1; }
echo "PASS"
