#!/bin/bash
# GPT dropout (gpt.dropout) on the cpu backend, the small model of small_gpt.sh:
# 1. dropout 0.2 trains (the loss falls) and changes the result against dropout 0, while the
#    masks depend on (seed, step, sequence) only: 1 and 2 ranks reach the same validation
#    loss (within 1e-6 relative: only the order of the gradient sums differs);
# 2. a run with dropout stopped after 3 of 6 steps and resumed ends bitwise equal to an
#    uninterrupted one (2 ranks);
# 3. gpt.dropout outside 0..0.95 is refused naming the key.
# usage: test_gpt_dropout.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
fail=0
cat "$src"/README.md "$src"/docs/*.md > corpus.txt
. "$src/tests/gpt/small_gpt.sh"
spec() { small_gpt_spec "$1" "$2" "$3" 256 ", dropout: ${4:-0.2}" 6; } # spec NAME TRAIN CKPT [P]
run() { # run NAME NP
    mpirun -np "$2" --oversubscribe "$hetrun" run --report "$1.json" "$1.yaml" > "$1.txt" 2>&1
}

spec off "" "" 0
run off 1 || { tail -5 off.txt; echo "FAIL: dropout 0 run"; fail=1; }
spec one "" ""
run one 1 || { tail -5 one.txt; echo "FAIL: 1-rank dropout run"; fail=1; }
spec two "" ""
run two 2 || { tail -5 two.txt; echo "FAIL: 2-rank dropout run"; fail=1; }
v0=$(field off.json val_loss) v1=$(field one.json val_loss) v2=$(field two.json val_loss)
echo "val loss: dropout 0: $v0; dropout 0.2: 1 rank $v1, 2 ranks $v2"
awk -v a="$v1" -v b="$v2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-6 * a) }' ||
    { echo "FAIL: 1 rank ($v1) and 2 ranks ($v2) differ beyond 1e-6 relative"; fail=1; }
[ "$v0" != "$v1" ] || { echo "FAIL: dropout 0.2 left the result unchanged"; fail=1; }
[ "$(field one.json dropout)" = "0.2" ] || { echo "FAIL: report lacks dropout 0.2"; fail=1; }
first=$(grep -o 'step 1/6 loss [0-9.]*' one.txt | awk '{print $4}')
last=$(grep -o 'step 6/6 loss [0-9.]*' one.txt | awk '{print $4}')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' ||
    { echo "FAIL: training loss did not fall with dropout ($first -> $last)"; fail=1; }

want=$(field two.json weights_crc32)
spec part "      stop_after: 3" "checkpoint: {dir: ck, every: 2, keep: 2}"
run part 2 || { tail -5 part.txt; echo "FAIL: interrupted run"; fail=1; }
spec resumed "" "checkpoint: {dir: ck, every: 2, keep: 2, resume: true}"
run resumed 2 || { tail -5 resumed.txt; echo "FAIL: resumed run"; fail=1; }
grep -q '"resumed_at_step":\s*2' resumed.json || { echo "FAIL: did not resume at step 2"; fail=1; }
got=$(field resumed.json weights_crc32)
echo "dropout: uninterrupted $want, stopped at 3 and resumed from 2: $got"
[ -n "$want" ] && [ "$want" = "$got" ] || { echo "FAIL: resumed weights differ"; fail=1; }

spec bad "" "" 1.0
run bad 1 && { echo "FAIL: dropout 1.0 accepted"; fail=1; }
grep -q "dropout" bad.txt || { tail -3 bad.txt; echo "FAIL: refusal does not name gpt.dropout"; fail=1; }
[ $fail -eq 0 ] && echo PASS
exit $fail
