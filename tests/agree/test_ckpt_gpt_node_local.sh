#!/bin/bash
# The GPT's resume is one decision too (2 ranks, cpu backend, safetensors checkpoints).
# Node-local folders are simulated with ${OMPI_COMM_WORLD_RANK} in checkpoint.dir, so only
# rank 0's folder holds checkpoints:
# 1. rank 1's folder is empty: both ranks resume at rank 0's step and end bitwise equal to
#    an uninterrupted run (before: rank 1 started at step 0);
# 2. rank 1's folder holds a newer, corrupt checkpoint: never read (only its name is seen, and
#    warned about), same result.
# usage: test_ckpt_gpt_node_local.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
fail=0
cat "$src"/README.md "$src"/docs/*.md > corpus.txt
spec() { # spec NAME EXTRA_TRAIN_KEYS CHECKPOINT_BLOCK
    cat > "$1.yaml" <<YAML
version: 1
job: {name: gpt-$1}
backend: cpu
seed: 5
limits: {timeout: 150}
$3
workloads:
  - train:
      model: gpt
      gpt: {layers: 1, heads: 2, width: 32, context: 16, vocab: 256, batch_tokens: 256,
            micro_batch: 4, eval_tokens: 2048, sample_tokens: 0}
      text: {corpus: [corpus.txt], tokens: corpus.tok, val_fraction: 0.1}
      lr: 0.01
      warmup_steps: 2
      schedule: cosine
      steps: 6
$2
YAML
}
run() { # run NAME -> NAME.json, NAME.txt
    timeout 180 mpirun -np 2 --oversubscribe "$hetrun" run --report "$1.json" "$1.yaml" \
        > "$1.txt" 2>&1
}
crc() { grep -o '"weights_crc32":\s*"[0-9a-f]*"' "$1" | head -1 | sed 's/.*:\s*//; s/"//g'; }
local_ck='checkpoint: {dir: "ck-r${OMPI_COMM_WORLD_RANK}", every: 2, keep: 3'

spec full "" ""
run full || { tail -5 full.txt; echo "FAIL: uninterrupted run"; fail=1; }
want=$(crc full.json)
spec part "      stop_after: 3" "$local_ck}"
run part || { tail -5 part.txt; echo "FAIL: interrupted run"; fail=1; }
[ -f ck-r0/ckpt-000000000002.safetensors ] && [ ! -e ck-r1 ] ||
    { ls ck-r*; echo "FAIL: expected a checkpoint in rank 0's folder only"; fail=1; }
cp -r ck-r0 saved

spec resumed "" "$local_ck, resume: true}"
run resumed || { tail -5 resumed.txt; echo "FAIL: resume with an empty rank-1 folder"; fail=1; }
n=$(grep -c '"resumed_at_step":\s*2' resumed.json)
[ "$n" -eq 2 ] || { echo "FAIL: $n of 2 ranks resumed at step 2"; fail=1; }
got=$(crc resumed.json)
echo "uninterrupted $want, node-local resume: $got"
[ -n "$want" ] && [ "$want" = "$got" ] || { echo "FAIL: resumed weights differ"; fail=1; }
grep -q '"weights_equal_on_all_ranks":\s*true' resumed.json || { echo "FAIL: ranks' weights differ"; fail=1; }

rm -rf ck-r0 && cp -r saved ck-r0 && mkdir ck-r1
cp ck-r0/ckpt-000000000002.safetensors ck-r1/ckpt-000000000004.safetensors
printf '\x5a' | dd of=ck-r1/ckpt-000000000004.safetensors bs=1 seek=200 conv=notrunc status=none
run resumed || { tail -5 resumed.txt; echo "FAIL: resume with a corrupt rank-1 folder"; fail=1; }
n=$(grep -c '"resumed_at_step":\s*2' resumed.json)
[ "$n" -eq 2 ] || { echo "FAIL: corrupt rank-1 folder: $n of 2 ranks resumed at step 2"; fail=1; }
grep -q 'ck-r1/ckpt.*CRC32' resumed.txt && { echo "FAIL: rank 1 read its own folder"; fail=1; }
grep -q "checkpoint folder ck-r1 on host [^ ]* holds ckpt-000000000004.safetensors (step 4), newer than what rank 0 (host [^ ]*) has (step 2)" resumed.txt ||
    { cat resumed.txt; echo "FAIL: rank 1 does not warn about its newer (unread) checkpoint"; fail=1; }
[ "$want" = "$(crc resumed.json)" ] || { echo "FAIL: resumed weights differ (corrupt rank-1 folder)"; fail=1; }
exit $fail
