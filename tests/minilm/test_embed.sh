#!/bin/bash
# The embed workload on the real all-MiniLM-L6-v2 (fetched by scripts/get-model.sh; skipped,
# 77, only when the package registry cannot be reached): the 233 reference sentences of
# tests/data/minilm embedded on BACKEND must match sentence-transformers' embeddings, cosine
# >= 0.99999 per sentence in fp32 and >= 0.999 in bf16 and fp16; the .npy output is what
# numpy reads. Bad input ends with a clear error and exit 1, never a crash: missing model
# folder, corrupt safetensors, a tokenizer that is not WordPiece, an empty sentence file,
# invalid UTF-8 (file:line); a sentence over max_length is cut and the log says so once.
# usage: test_embed.sh HETRUN SOURCE_DIR BACKEND [DTYPES [gemm|fused]]
#   DTYPES run with the default attention (auto: fused on cpu, per-head GEMMs elsewhere); the
#   last argument adds one fp32 run with that attention forced. The embeddings compared are
#   those of the largest batch size: 4 (short sentences stay under 128 rows, the cpu module's
#   constant-weight GEMM, cpu_packed.c; longer ones go to the BLAS), and 1 in the forced run.
set -u
hetrun=$1 src=$2 backend=$3 dtypes=${4:-"fp32 bf16 fp16"} forced=${5:-}
# shellcheck source=tests/minilm/setup.sh
. "$(dirname "$0")/setup.sh"
fail=0
spec() { # spec NAME MODEL INPUT DTYPE MIN_COSINE [ATTENTION BATCHES ITERATIONS]
    cat > "$1.yaml" <<YAML
version: 1
job: {name: embed-$1}
backend: $backend
workloads:
  - embed:
      model: $2
      input: $3
      dtype: $4
      reference: $data/embeddings_f32.npy
      min_cosine: $5
      output: $1.npy
      attention: ${6:-auto}
      batch_sizes: ${7:-[1, 4]}
      warmup: 1
      iterations: ${8:-2}
YAML
}
# the .npy shape as numpy sees it (header dict), with python's stdlib only
npy_shape() { python3 -c "
import ast,struct,sys
b=open(sys.argv[1],'rb').read(); n=struct.unpack('<H',b[8:10])[0]; h=ast.literal_eval(b[10:10+n].decode())
assert b[:6]==b'\x93NUMPY' and h['descr']=='<f4' and not h['fortran_order']
r,c=h['shape']; assert len(b)==10+n+4*r*c; print(r,c)" "$1"; }
# cosine and per-batch figures from a report
report_line() { python3 -c "
import json,sys
x=json.load(open(sys.argv[1]))['ranks'][0]['results'][0]
c=x.get('reference_cosine',{})
print('cosine min %s mean %s (line %s); check %s;' % (c.get('min'), c.get('mean'), c.get('min_line'), x.get('check')),
      ' '.join('batch %d p50 %.1f ms %.1f sentences/s' % (b['batch'], b['latency_ms_p50'], b['sentences_per_s']) for b in x.get('batches', [])),
      x.get('error', ''))" "$1"; }
# forced: the other attention path in fp32, embedding only
for dt in $dtypes $forced; do
    min=0.999
    [ "$dt" = fp32 ] || [ "$dt" = "$forced" ] && min=0.99999
    if [ "$dt" = "$forced" ]; then
        spec "$dt" "$model" "$data/sentences.txt" fp32 "$min" "$forced" "[1]" 0
    else
        spec "$dt" "$model" "$data/sentences.txt" "$dt" "$min"
    fi
    if "$hetrun" run --report "$dt.json" "$dt.yaml" > "$dt.log" 2>&1; then
        echo "$backend $dt: $(report_line "$dt.json")"
        shape=$(npy_shape "$dt.npy") || shape="unreadable"
        [ "$shape" = "233 384" ] || { echo "FAIL: $dt.npy shape $shape"; fail=1; }
        grep -q "3 of 233 sentences are longer than 256 tokens and were cut (first: .*sentences.txt:231)" "$dt.log" ||
            { cat "$dt.log"; echo "FAIL: $dt: no truncation note"; fail=1; }
        [ "$(grep -c "were cut" "$dt.log")" -eq 1 ] || { echo "FAIL: $dt: truncation said more than once"; fail=1; }
    elif grep -q "is not supported" "$dt.log"; then
        # a backend without an op the model needs (e.g. ABI 1.1 kernels still pending) is
        # named in the error; that is a skip for this backend, not a wrong answer
        grep "is not supported" "$dt.log" | head -1
        echo "$backend $dt: an op is not supported yet: skipped"
        exit 77
    else
        tail -5 "$dt.log"
        report_line "$dt.json"
        echo "FAIL: $backend $dt run (cosine below $min?)"
        fail=1
    fi
done

# Two ranks share the input (issue 16): the same rows as one rank (to fp32 rounding of a
# different thread count), written once, and every rank's FLOPs counted once between them.
if [ -f fp32.npy ] && command -v mpirun > /dev/null; then
    spec two "$model" "$data/sentences.txt" fp32 0.99999 auto "[4]" 0
    if OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe \
        "$hetrun" run --report two.json two.yaml > two.log 2>&1; then
        python3 - fp32.npy two.npy two.json fp32.json <<'PY' || fail=1
import array, json, struct, sys
def rows(path):
    b = open(path, 'rb').read(); n = struct.unpack('<H', b[8:10])[0]
    return array.array('f', b[10 + n:])
one, two = rows(sys.argv[1]), rows(sys.argv[2])
diff = max(abs(x - y) for x, y in zip(one, two)) if len(one) == len(two) else float('inf')
r2 = json.load(open(sys.argv[3]))['ranks']
flops = [x['usage']['flops'] for x in r2]
print('2 ranks: max |row difference| to 1 rank %.3g; flops per rank %s' % (diff, flops))
ok = diff < 1e-5 and len(flops) == 2 and min(flops) > 0
ok = ok and all(x['results'][0]['ranks_sharing_input'] == 2 for x in r2)
sys.exit(0 if ok else 'FAIL: two ranks do not share the input or disagree with one rank')
PY
    else
        tail -5 two.log
        echo "FAIL: embed on 2 ranks"
        fail=1
    fi
fi

# Refusals: exit 1, the cause named.
expect_error() { # NAME WANTED_TEXT
    local got=0
    "$hetrun" run --report "$1.json" "$1.yaml" > "$1.log" 2>&1 || got=$?
    if [ "$got" -ne 1 ] || ! grep -q -- "$2" "$1.log"; then
        cat "$1.log"
        echo "FAIL: $1: exit $got, expected 1 and '$2'"
        fail=1
    else
        echo "ok: $1 refused: $(grep -o -- "$2.*" "$1.log" | head -1)"
    fi
}
spec nomodel "$tmp/no-such-model" "$data/sentences.txt" fp32 0.9
expect_error nomodel "no-such-model/tokenizer.json: cannot open"
mkdir bad
for f in "$model"/*; do ln -s "$f" bad/; done
rm bad/model.safetensors
head -c 1000000 "$model/model.safetensors" > bad/model.safetensors
spec corrupt "$tmp/bad" "$data/sentences.txt" fp32 0.9
expect_error corrupt "bad/model.safetensors: tensor 'embeddings.word_embeddings.weight': data_offsets .* run past the data section"
mkdir bpe
for f in "$model"/*; do ln -s "$f" bpe/; done
rm bpe/tokenizer.json
sed 's/"type":"WordPiece","unk_token"/"type":"BPE","unk_token"/' "$model/tokenizer.json" > bpe/tokenizer.json
spec bpe "$tmp/bpe" "$data/sentences.txt" fp32 0.9
expect_error bpe "model.type is \"BPE\", not \"WordPiece\""
: > empty.txt
spec empty "$model" "$tmp/empty.txt" fp32 0.9
expect_error empty "empty.txt: no sentences"
printf 'fine\nalso fine\nbad \xff\xfe here\n' > utf8.txt
spec utf8 "$model" "$tmp/utf8.txt" fp32 0.9
expect_error utf8 "utf8.txt:3: invalid UTF-8 at byte 5"
exit $fail
