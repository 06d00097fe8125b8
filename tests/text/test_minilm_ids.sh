#!/bin/sh
# all-MiniLM-L6-v2's tokenizer.json through hetrun's tokenizer: every id of every reference
# sentence must equal the Hugging Face ids (tests/data/minilm/ids.txt, max length 256).
# usage: test_minilm_ids.sh HETRUN_TOKENIZE SOURCE_DIR
set -u
tool=$1
src=$2
rc=0
model=$("$src/scripts/get-model.sh") || rc=$?
[ "$rc" -ne 75 ] || { echo "model registry unreachable: skipped"; exit 77; }
[ "$rc" -eq 0 ] || { echo "get-model.sh failed ($rc)"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$tool" "$model/tokenizer.json" "$src/tests/data/minilm/sentences.txt" 256 > "$out" || exit 1
want="$src/tests/data/minilm/ids.txt"
n=$(wc -l < "$want")
if ! cmp -s "$out" "$want"; then
    echo "ids differ from the Hugging Face reference (line: sentence):"
    diff "$out" "$want" | head -20
    exit 1
fi
echo "ok: $n sentences, $(wc -w < "$want") ids identical to the Hugging Face tokenizer"
