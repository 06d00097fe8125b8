#!/bin/bash
# Checkpoint and resume on the cpu backend, 2 ranks:
# 1. a run stopped after 70 steps (stop_after; checkpoints every 25, keep 2) and resumed ends with
#    weights bitwise equal to an uninterrupted run's; so does a run SIGKILLed after its
#    first checkpoint appeared;
# 2. a checkpoint with one flipped bit is refused, naming the file and the CRC mismatch;
# 3. a checkpoint of another model shape, or another configuration, is refused;
# 4. a folder holding only the former binary format (ckpt-*.bin) is refused naming the file
#    and the format.
# usage: test_resume.sh HETRUN CHECK_TRAIN SOURCE_DIR
set -u
hetrun=$1 check=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
fail=0
spec() { # spec NAME HIDDEN EXTRA_TRAIN_KEYS CHECKPOINT_BLOCK
    cat > "$1.yaml" <<YAML
version: 1
job: {name: resume-$1}
backend: cpu
seed: 11
$4
workloads:
  - train:
      data: {source: csv, path: $src/examples/data/digits.csv.gz}
      hidden: $2
      optimizer: sgd
      lr: 0.05
      momentum: 0.9
      weight_decay: 0.0001
      schedule: cosine
      warmup_steps: 10
      batch: 32
      epochs: 4
      min_accuracy: 0.9
$3
YAML
}
run() { # run NAME NP -> report NAME.json, output NAME.txt, returns hetrun's status
    mpirun -np "$2" "$hetrun" run --report "$1.json" "$1.yaml" > "$1.txt" 2>&1
}
spec full "[64]" "" ""
run full 2 || { tail -5 full.txt; echo "FAIL: uninterrupted run"; fail=1; }
want=$("$check" full.json 2 0.9 | tail -1)
echo "uninterrupted: $want"

spec part "[64]" "      stop_after: 70" "checkpoint: {dir: ck, every: 25, keep: 2}"
run part 2 || { tail -5 part.txt; echo "FAIL: interrupted run exited non-zero"; fail=1; }
ls ck
[ -f ck/ckpt-000000000025.safetensors ] && [ -f ck/ckpt-000000000050.safetensors ] &&
    [ "$(ls ck | wc -l)" -eq 2 ] || { echo "FAIL: expected exactly checkpoints 25 and 50"; fail=1; }
spec resumed "[64]" "" "checkpoint: {dir: ck, every: 25, keep: 2, resume: true}"
run resumed 2 || { tail -5 resumed.txt; echo "FAIL: resumed run"; fail=1; }
grep -q '"resumed_at_step":\s*50' resumed.json || { echo "FAIL: did not resume at step 50"; fail=1; }
got=$("$check" resumed.json 2 0.9 | tail -1)
echo "stopped at 70, resumed from 50: $got"
[ -n "$want" ] && [ "$want" = "$got" ] || { echo "FAIL: resumed weights $got != $want"; fail=1; }

# SIGKILL after the first checkpoint file appears, then resume.
rm -rf ck
spec slow "[64]" "" "checkpoint: {dir: ck, every: 5, keep: 3}"
mpirun -np 2 "$hetrun" run --report slow.json slow.yaml > slow.txt 2>&1 &
pid=$!
for _ in $(seq 1 400); do ls ck/ckpt-*.safetensors > /dev/null 2>&1 && break; sleep 0.01; done
# The ranks first (children of mpirun, started above), then mpirun itself.
for child in $(pgrep -P $pid); do kill -KILL "$child" 2> /dev/null; done
kill -KILL $pid 2> /dev/null
wait $pid 2> /dev/null
sleep 0.2
ls ck
spec slowres "[64]" "" "checkpoint: {dir: ck, every: 5, keep: 3, resume: true}"
run slowres 2 || { tail -5 slowres.txt; echo "FAIL: resume after SIGKILL"; fail=1; }
got=$("$check" slowres.json 2 0.9 | tail -1)
echo "killed, resumed: $got ($(grep -o '"resumed_at_step":[^,]*' slowres.json | head -1))"
[ "$want" = "$got" ] || { echo "FAIL: weights after SIGKILL+resume $got != $want"; fail=1; }

# One flipped bit: refused with the file named and the mismatch said.
rm -rf ck
spec one "[64]" "      stop_after: 30" "checkpoint: {dir: ck, every: 25, keep: 1}"
run one 2 > /dev/null
f=ck/ckpt-000000000025.safetensors
[ -f $f ] || { echo "FAIL: no checkpoint to corrupt"; fail=1; }
size=$(stat -c %s $f)
off=$((size / 2))
byte=$(od -An -tu1 -j $off -N1 $f | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 4)))" | dd of=$f bs=1 seek=$off conv=notrunc status=none
spec flipped "[64]" "" "checkpoint: {dir: ck, resume: true}"
if run flipped 2; then echo "FAIL: a corrupt checkpoint was accepted"; fail=1; fi
grep -q "ckpt-000000000025.safetensors: CRC32 [0-9a-f]* of the data does not match" flipped.txt ||
    { cat flipped.txt; echo "FAIL: refusal does not name the file and the CRC mismatch"; fail=1; }

# Shape and configuration mismatches are refused too (fresh, valid checkpoint).
rm -rf ck
run one 2 > /dev/null
spec shape "[32]" "" "checkpoint: {dir: ck, resume: true}"
if run shape 2; then echo "FAIL: a checkpoint of another shape was accepted"; fail=1; fi
grep -q "ckpt-000000000025.safetensors: model \"mlp 64-64-10 relu\" does not match the job's \"mlp 64-32-10 relu\"" shape.txt ||
    { cat shape.txt; echo "FAIL: shape refusal message"; fail=1; }
spec config "[64]" "      lr: 0.02" "checkpoint: {dir: ck, resume: true}"
sed -i '0,/lr: 0.05/{/lr: 0.05/d}' config.yaml
if run config 2; then echo "FAIL: a checkpoint of another configuration was accepted"; fail=1; fi
grep -q "training configuration hash differs" config.txt ||
    { cat config.txt; echo "FAIL: configuration refusal message"; fail=1; }

rm -rf ck && mkdir ck && head -c 4096 /dev/urandom > ck/ckpt-000000000025.bin
spec former "[64]" "" "checkpoint: {dir: ck, resume: true}"
if run former 2; then echo "FAIL: a folder of former-format checkpoints was resumed"; fail=1; fi
grep -q "checkpoint ck/ckpt-000000000025.bin is in the MLP's former binary format" former.txt ||
    { cat former.txt; echo "FAIL: former-format refusal message"; fail=1; }
exit $fail
