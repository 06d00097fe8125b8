#!/bin/bash
# Mixed-precision GPT training on the cpu backend (issue 15), the small model of
# test_gpt_train.sh on this repository's docs:
# 1. bf16 and fp16 (default loss scale) end within 1% of fp32's validation loss from the same
#    seed; bf16 on 2 ranks keeps the weights equal on all ranks;
# 2. fp16 with a loss scale far too large: the overflowing steps are skipped with a warning,
#    the scale halves until the gradients fit, and the report counts the skipped steps;
# 3. that fp16 run stopped after 7 of 12 steps and resumed from its step-6 checkpoint ends
#    bitwise equal to the uninterrupted run (the loss scaler's state is in the checkpoint).
# usage: test_gpt_mixed.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail=0
cat "$src"/README.md "$src"/docs/*.md > corpus.txt
. "$src/tests/gpt/small_gpt.sh"
spec() { small_gpt_spec "$1" "${4:-}" "$3" 256 "$2" 12; } # spec NAME GPT_KEYS CKPT [TRAIN_KEYS]
run() { # run NAME NP
    mpirun -np "$2" --oversubscribe "$hetrun" run --report "$1.json" "$1.yaml" > "$1.txt" 2>&1 ||
        { tail -5 "$1.txt"; echo "FAIL: $1 run"; fail=1; }
}
near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 0.01 * a) }'; }

spec fp32 "" ""
run fp32 1
spec bf16 ", precision: bf16" ""
run bf16 2
spec fp16 ", precision: fp16" ""
run fp16 1
v32=$(field fp32.json val_loss) vb=$(field bf16.json val_loss) vh=$(field fp16.json val_loss)
echo "val loss: fp32 $v32, bf16 (2 ranks) $vb, fp16 $vh"
near "$v32" "$vb" || { echo "FAIL: bf16 is not within 1% of fp32"; fail=1; }
near "$v32" "$vh" || { echo "FAIL: fp16 is not within 1% of fp32"; fail=1; }
[ "$(field bf16.json precision)" = bf16 ] || { echo "FAIL: report precision"; fail=1; }
grep -q '"weights_equal_on_all_ranks":\s*true' bf16.json || { echo "FAIL: bf16 weights differ between ranks"; fail=1; }
[ "$(field fp16.json skipped_steps)" = 0 ] || { echo "FAIL: fp16 skipped steps at the default scale"; fail=1; }

spec over ", precision: fp16, loss_scale: 2e9" ""
run over 1
skipped=$(field over.json skipped_steps) scale=$(field over.json loss_scale)
echo "fp16 from loss scale 2e9: $skipped steps skipped, scale now $scale"
[ "${skipped:-0}" -ge 1 ] 2>/dev/null || { echo "FAIL: no step skipped"; fail=1; }
[ "$(grep -c 'fp16 gradients overflowed at loss scale' over.txt)" = "$skipped" ] ||
    { echo "FAIL: one warning per skipped step expected"; fail=1; }
awk -v s="$scale" 'BEGIN { exit !(s > 0 && s < 2e9) }' || { echo "FAIL: scale did not fall"; fail=1; }

spec part ", precision: fp16, loss_scale: 2e9" "checkpoint: {dir: ck, every: 2, keep: 2}" "      stop_after: 7"
run part 1
spec resumed ", precision: fp16, loss_scale: 2e9" "checkpoint: {dir: ck, every: 2, keep: 2, resume: true}"
run resumed 1
want=$(field over.json weights_crc32) got=$(field resumed.json weights_crc32)
echo "fp16 uninterrupted $want, stopped at 7 and resumed from $(field resumed.json resumed_at_step): $got"
[ -n "$want" ] && [ "$want" = "$got" ] || { echo "FAIL: resumed fp16 weights differ"; fail=1; }
[ "$(field resumed.json skipped_steps)" = "$skipped" ] || { echo "FAIL: skipped count lost on resume"; fail=1; }
exit $fail
