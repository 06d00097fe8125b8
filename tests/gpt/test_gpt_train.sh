#!/bin/bash
# The GPT trained on a small real text (this repository's docs, byte-level) on the cpu backend:
# 1. 1, 2 and 4 ranks at the same global batch (tokens) reach the same validation loss (within
#    1e-4 relative: only the order of the gradient sums differs), the training loss falls,
#    weights are equal on all ranks;
# 2. a run stopped after 3 of 6 steps (stop_after; checkpoint every 2) and resumed ends with
#    weights bitwise equal to an uninterrupted run's, on 2 ranks;
# 3. resuming with another vocabulary is refused, naming the checkpoint and gpt.vocab;
# 4. a checkpoint with a flipped byte is skipped by its CRC with a warning naming the file,
#    and the run resumes from the older one;
# 5. byte-pair tokens (text.tokenizer bpe, trained on the corpus): the report states the
#    tokenizer and bytes per token, bits per byte are scaled from nats per token, the sample
#    decodes to text; a byte token file named for a bpe job is refused by name.
# usage: test_gpt_train.sh HETRUN SOURCE_DIR
set -u
hetrun=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
fail=0
cat "$src"/README.md "$src"/docs/*.md > corpus.txt
. "$src/tests/gpt/small_gpt.sh"
spec() { small_gpt_spec "$1" "$2" "$3" "${4:-256}" "" 6; } # spec NAME TRAIN_KEYS CKPT [VOCAB]
run() { # run NAME NP
    mpirun -np "$2" --oversubscribe "$hetrun" run --report "$1.json" "$1.yaml" > "$1.txt" 2>&1
}

spec one "" ""
run one 1 || { tail -5 one.txt; echo "FAIL: 1-rank run"; fail=1; }
spec two "" ""
run two 2 || { tail -5 two.txt; echo "FAIL: 2-rank run"; fail=1; }
spec four "" ""
run four 4 || { tail -5 four.txt; echo "FAIL: 4-rank run"; fail=1; }
v1=$(field one.json val_loss) v2=$(field two.json val_loss) v4=$(field four.json val_loss)
u=$(field one.json unigram_val_loss)
echo "val loss: 1 rank $v1, 2 ranks $v2, 4 ranks $v4 (unigram baseline $u)"
for v in "$v2" "$v4"; do
    awk -v a="$v1" -v b="$v" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-4 * a) }' ||
        { echo "FAIL: 1 rank ($v1) and more ranks ($v) differ beyond 1e-4 relative"; fail=1; }
done
for f in two four; do
    grep -q '"weights_equal_on_all_ranks":\s*true' $f.json || { echo "FAIL: $f-rank weights differ"; fail=1; }
done
grep -q '"check":\s*"passed"' two.json || { echo "FAIL: 2-rank check"; fail=1; }
first=$(grep -o 'step 1/6 loss [0-9.]*' one.txt | awk '{print $4}')
last=$(grep -o 'step 6/6 loss [0-9.]*' one.txt | awk '{print $4}')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' ||
    { echo "FAIL: training loss did not fall ($first -> $last)"; fail=1; }

# Bitwise resume on 2 ranks.
want=$(field two.json weights_crc32)
spec part "      stop_after: 3" "checkpoint: {dir: ck, every: 2, keep: 2}"
run part 2 || { tail -5 part.txt; echo "FAIL: interrupted run"; fail=1; }
ls ck
[ -f ck/ckpt-000000000002.safetensors ] || { echo "FAIL: no checkpoint at step 2"; fail=1; }
spec resumed "" "checkpoint: {dir: ck, every: 2, keep: 2, resume: true}"
run resumed 2 || { tail -5 resumed.txt; echo "FAIL: resumed run"; fail=1; }
grep -q '"resumed_at_step":\s*2' resumed.json || { echo "FAIL: did not resume at step 2"; fail=1; }
got=$(field resumed.json weights_crc32)
echo "uninterrupted $want, stopped at 3 and resumed from 2: $got"
[ -n "$want" ] && [ "$want" = "$got" ] || { echo "FAIL: resumed weights differ"; fail=1; }

# Another vocabulary against that checkpoint: refused by name.
spec vocab "" "checkpoint: {dir: ck, resume: true}" 300
run vocab 1 && { echo "FAIL: vocabulary mismatch accepted"; fail=1; }
grep -q "ckpt-.*vocabulary 256 does not match the job's gpt.vocab 300" vocab.txt ||
    { tail -3 vocab.txt; echo "FAIL: vocabulary mismatch not named"; fail=1; }
# One flipped byte in the newest checkpoint's data: skipped (CRC32 in __metadata__), the
# older one (step 4) used.
f=ck/ckpt-000000000006.safetensors
size=$(stat -c %s "$f")
printf '\x5a' | dd of="$f" bs=1 seek=$((size - 100)) conv=notrunc status=none
spec crc "" "checkpoint: {dir: ck, resume: true}"
run crc 1 || { tail -3 crc.txt; echo "FAIL: resume from the older checkpoint"; fail=1; }
grep -q "ckpt-000000000006.safetensors: CRC32.*trying an older checkpoint" crc.txt ||
    { tail -3 crc.txt; echo "FAIL: CRC mismatch not named"; fail=1; }
grep -q '"resumed_at_step":\s*4' crc.json || { echo "FAIL: did not fall back to step 4"; fail=1; }
[ $fail -eq 0 ] && echo PASS
# BPE tokens.
small_gpt_spec bpe "" "" 512 "" 6 ", tokenizer: bpe, bpe_vocab: 512"
sed -i 's/sample_tokens: 0/sample_tokens: 24/' bpe.yaml
run bpe 1 || { tail -5 bpe.txt; echo "FAIL: bpe run"; fail=1; }
bpt=$(field bpe.json bytes_per_token) vl=$(field bpe.json val_loss) bpb=$(field bpe.json val_bits_per_byte)
echo "bpe: $(field bpe.json tokenizer_vocab) tokens, $bpt bytes/token, val loss $vl nats/token = $bpb bits/byte"
[ "$(field bpe.json tokenizer)" = bpe ] || { echo "FAIL: report tokenizer"; fail=1; }
awk -v b="$bpt" -v l="$vl" -v x="$bpb" 'BEGIN { y = l / log(2) / b; d = x - y; if (d < 0) d = -d;
    exit !(b > 1.5 && d < 0.05 * y) }' || { echo "FAIL: bits per byte not scaled by bytes per token"; fail=1; }
grep -q "sample (temperature" bpe.txt || { echo "FAIL: no sample"; fail=1; }
small_gpt_spec wrongtok "" "" 512 "" 6 ", tokenizer: bpe"
sed -i 's/tokens: corpus-bpe.tok/tokens: corpus.tok/' wrongtok.yaml
run wrongtok 1 && { echo "FAIL: byte tokens accepted for a bpe job"; fail=1; }
grep -q "corpus.tok holds bytes tokens but text.tokenizer is bpe" wrongtok.txt ||
    { tail -3 wrongtok.txt; echo "FAIL: tokenizer mismatch not named"; fail=1; }
exit $fail
