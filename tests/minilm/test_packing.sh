#!/bin/bash
# The packed (unpadded) encoder: a batch mixing 256-token sentences with 3-token ones and
# sentences in between must give each sentence the embedding it gets alone in a batch of 1
# (cosine >= 0.99999 in fp32, >= 0.999 in bf16/fp16: the batch-1 and batch-N products take
# different GEMM kernels, so not bit for bit). A wrong row offset, position id, gather map,
# per-sentence attention window or pooling group moves some sentence far off. The batches
# are formed in length order, so every batch holds several lengths; with more than 32
# sentences the second pooling group is exercised too.
# usage: test_packing.sh HETRUN SOURCE_DIR BACKEND "ATTENTIONS" "DTYPES" COUNT
#   COUNT sentences (at most 24 + 3 + 1 + 1 + 3 = 32 distinct, repeated beyond), one batch
#   of COUNT against batches of 1, for each attention (auto, gemm, fused) and dtype.
set -u
hetrun=$1 src=$2 backend=$3 attentions=$4 dtypes=$5 count=$6
# shellcheck source=tests/minilm/setup.sh
. "$(dirname "$0")/setup.sh"
# 3-token sentences ([CLS] word [SEP]), the three reference lines cut to 256 tokens, a
# 122-token and a 58-token one, short reference sentences; interleaved, COUNT lines
{
    for w in a yes b no c ok; do echo "$w"; done
    sed -n '231p;110p;232p;57p;233p' "$data/sentences.txt"
    sed -n '1,21p' "$data/sentences.txt"
} > pool.txt
: > input.txt
while [ "$(wc -l < input.txt)" -lt "$count" ]; do
    # one short, one from the rest, round robin, so lengths alternate in input order
    paste -d '\n' <(sed -n '1,6p' pool.txt) <(sed -n '7,12p' pool.txt) >> input.txt
    sed -n '13,$p' pool.txt >> input.txt
done
head -n "$count" input.txt > in.txt
spec() { # NAME ATTENTION DTYPE BATCH [REFERENCE MIN]
    cat > "$1.yaml" <<YAML
version: 1
job: {name: packing-$1}
backend: $backend
workloads:
  - embed:
      model: $model
      input: $tmp/in.txt
      dtype: $3
      attention: $2
      batch_sizes: [$4]
      iterations: 0
      output: $1.npy
YAML
    [ $# -lt 5 ] || printf '      reference: %s\n      min_cosine: %s\n' "$5" "$6" >> "$1.yaml"
}
fail=0
for att in $attentions; do
    for dt in $dtypes; do
        min=0.999
        [ "$dt" = fp32 ] && min=0.99999
        spec "one-$att-$dt" "$att" "$dt" 1
        spec "all-$att-$dt" "$att" "$dt" "$count" "$tmp/one-$att-$dt.npy" "$min"
        if ! "$hetrun" run --report "one-$att-$dt.json" "one-$att-$dt.yaml" > one.log 2>&1; then
            tail -5 one.log
            echo "FAIL: $backend $att $dt: batch 1 run"
            fail=1
            continue
        fi
        if "$hetrun" run --report "all-$att-$dt.json" "all-$att-$dt.yaml" > all.log 2>&1; then
            ok=ok
        else
            ok=FAIL fail=1
            tail -5 all.log
        fi
        python3 -c "
import json,sys
x=json.load(open(sys.argv[1]))['ranks'][0]['results'][0]
c=x.get('reference_cosine',{})
print('%s: %s %s %s, batch %s vs batch 1: cosine min %s (line %s), attention %s' % (sys.argv[2],
      sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], c.get('min'), c.get('min_line'),
      x.get('attention')))" "all-$att-$dt.json" "$ok" "$backend" "$att" "$dt" "$count"
    done
done
exit $fail
