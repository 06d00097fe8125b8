#!/bin/bash
# Resume is one decision for the whole job (2 ranks, cpu backend). Node-local checkpoint
# folders are simulated by giving each rank its own folder (${OMPI_COMM_WORLD_RANK} in
# checkpoint.dir, a folder whose parent does not exist yet: created like mkdir -p): only
# rank 0 writes, so only rank 0's folder holds checkpoints.
# 1. rank 1's folder is empty: every rank resumes from rank 0's checkpoint at the same step
#    and ends bitwise equal to an uninterrupted run (before: rank 1 started at step 0);
# 2. rank 1's folder holds an older valid checkpoint and a newer corrupt one: ignored, same
#    result (no rank ever trains from its own copy);
# 3. rank 0's only checkpoint is corrupt while rank 1's folder has a valid one: the job
#    fails on every rank, naming rank 0 and its host, within the timeout (no rank trains);
# 4. a checkpoint folder below a regular file is refused naming that file;
# 5. rank 0's folder is empty while rank 1's holds a valid checkpoint (rank 0 moved to another
#    node): every rank starts at step 0 together, bitwise equal to the uninterrupted run,
#    and rank 1 warns naming its folder, host and step.
# usage: test_ckpt_node_local.sh HETRUN CHECK_TRAIN SOURCE_DIR
set -u
hetrun=$1 check=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
fail=0
spec() { # spec NAME EXTRA_TRAIN_KEYS CHECKPOINT_BLOCK
    cat > "$1.yaml" <<YAML
version: 1
job: {name: agree-$1}
backend: cpu
seed: 5
limits: {timeout: 120}
$3
workloads:
  - train:
      data: {source: csv, path: $src/examples/data/digits.csv.gz}
      hidden: [32]
      optimizer: adamw
      lr: 0.003
      batch: 32
      steps: 60
      min_accuracy: 0.5
$2
YAML
}
run() { # run NAME -> report NAME.json, output NAME.txt, returns hetrun's status
    timeout 150 mpirun -np 2 --oversubscribe "$hetrun" run --report "$1.json" "$1.yaml" \
        > "$1.txt" 2>&1
}
local_ck='checkpoint: {dir: "ck/r${OMPI_COMM_WORLD_RANK}", every: 20, keep: 2'
flip() { # flip FILE: one bit in the middle
    local size off byte
    size=$(stat -c %s "$1") off=$((size / 2))
    byte=$(od -An -tu1 -j $off -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((byte ^ 4)))" | dd of="$1" bs=1 seek=$off conv=notrunc status=none
}

spec full "" ""
run full || { tail -5 full.txt; echo "FAIL: uninterrupted run"; fail=1; }
want=$("$check" full.json 2 0.5 | tail -1)
echo "uninterrupted: $want"

spec part "      stop_after: 50" "$local_ck}"
run part || { tail -5 part.txt; echo "FAIL: interrupted run exited non-zero"; fail=1; }
ls ck/r*
[ -f ck/r0/ckpt-000000000040.safetensors ] && [ ! -e ck/r1 ] ||
    { echo "FAIL: expected checkpoints in rank 0's folder only"; fail=1; }

cp -r ck/r0 saved
# 1. Rank 1 has no checkpoint at all.
spec resumed "" "$local_ck, resume: true}"
run resumed || { tail -5 resumed.txt; echo "FAIL: resume with an empty rank-1 folder"; fail=1; }
n=$(grep -c '"resumed_at_step":\s*40' resumed.json)
[ "$n" -eq 2 ] || { echo "FAIL: $n of 2 ranks resumed at step 40"; fail=1; }
got=$("$check" resumed.json 2 0.5 | tail -1)
echo "node-local, rank 1 empty: $got"
[ -n "$want" ] && [ "$want" = "$got" ] || { echo "FAIL: resumed weights $got != $want"; fail=1; }

# 2. Rank 1's folder: an older valid checkpoint and a newer corrupt one.
rm -rf ck/r0 && cp -r saved ck/r0 && mkdir -p ck/r1
cp ck/r0/ckpt-000000000020.safetensors ck/r1/
cp ck/r0/ckpt-000000000040.safetensors ck/r1/ckpt-000000000045.safetensors
flip ck/r1/ckpt-000000000045.safetensors
run resumed || { tail -5 resumed.txt; echo "FAIL: resume with a stale rank-1 folder"; fail=1; }
n=$(grep -c '"resumed_at_step":\s*40' resumed.json)
[ "$n" -eq 2 ] || { echo "FAIL: stale rank-1 folder: $n of 2 ranks resumed at step 40"; fail=1; }
grep -q 'ck/r1/ckpt.*CRC32' resumed.txt resumed.json &&
    { echo "FAIL: rank 1 read its own checkpoint folder"; fail=1; }
got=$("$check" resumed.json 2 0.5 | tail -1)
echo "node-local, rank 1 stale/corrupt: $got"
[ "$want" = "$got" ] || { echo "FAIL: resumed weights $got != $want"; fail=1; }

# 3. Rank 0's only checkpoint is corrupt, rank 1's is valid: every rank refuses.
rm -rf ck
spec one "      stop_after: 25" "checkpoint: {dir: \"ck/r\${OMPI_COMM_WORLD_RANK}\", every: 20, keep: 1}"
run one || { tail -5 one.txt; echo "FAIL: short run"; fail=1; }
mkdir -p ck/r1 && cp ck/r0/ckpt-000000000020.safetensors ck/r1/
flip ck/r0/ckpt-000000000020.safetensors
t0=$(date +%s)
if run resumed; then echo "FAIL: a corrupt rank-0 checkpoint was accepted"; fail=1; fi
echo "refused in $(($(date +%s) - t0)) s"
grep -q "rank 0 (host [^)]*) reads the checkpoint for every rank: .*ckpt-000000000020.safetensors: CRC32" \
    resumed.txt || { cat resumed.txt; echo "FAIL: refusal does not name rank 0, its host and the file"; fail=1; }
grep -q '"status":\s*"failed"' resumed.json || { echo "FAIL: report not failed"; fail=1; }
grep -q '"resumed_at_step"' resumed.json && { echo "FAIL: a rank resumed"; fail=1; }

# 4. The folder's parent is a regular file.
touch plain
spec below "" "checkpoint: {dir: plain/ck, every: 20}"
if run below; then echo "FAIL: a checkpoint folder below a file was accepted"; fail=1; fi
grep -q "checkpoint dir plain/ck: plain exists and is not a folder" below.txt ||
    { tail -5 below.txt; echo "FAIL: the refusal does not name the file"; fail=1; }

# 5. Only rank 1's folder holds a checkpoint.
rm -rf ck && mkdir -p ck/r1 && cp saved/ckpt-000000000040.safetensors ck/r1/
spec moved "" "$local_ck, resume: true}"
run moved || { tail -5 moved.txt; echo "FAIL: resume with only rank 1's folder filled"; fail=1; }
grep -q '"resumed_at_step"' moved.json && { echo "FAIL: a rank resumed from its own folder"; fail=1; }
got=$("$check" moved.json 2 0.5 | tail -1)
echo "only rank 1's folder filled: $got"
[ "$want" = "$got" ] || { echo "FAIL: weights $got != $want (not a fresh start on every rank)"; fail=1; }
grep -q "checkpoint folder ck/r1 on host [^ ]* holds ckpt-000000000040.safetensors (step 40), newer than what rank 0 (host [^ ]*) has (no valid checkpoint)" moved.txt ||
    { cat moved.txt; echo "FAIL: rank 1 does not warn about its newer checkpoint"; fail=1; }
exit $fail
