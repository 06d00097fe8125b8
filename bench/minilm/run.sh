#!/bin/bash
# hetrun embed vs PyTorch (Debian's python3-torch) vs onnxruntime (PyPI) on all-MiniLM-L6-v2,
# the same 233 sentences (tests/data/minilm/sentences.txt), the same request: tokenize (max
# 256, padded to the batch's longest), forward, mean pooling, L2 normalisation, on the host.
# CPU, 2 cores (the whole machine): hetrun's cpu backend; torch.set_num_threads(2) with
# OPENBLAS_NUM_THREADS=2 (Debian's torch GEMMs run in OpenBLAS); onnxruntime
# intra_op_num_threads=2. Batch 1: p50 latency; batch 32: sentences/s. Side by side, REPEATS
# rounds, each round runs the three one after the other.
# usage: bench/minilm/run.sh BUILD_DIR PYTHON [REPEATS]
#   PYTHON: an interpreter with torch, transformers, tokenizers and onnxruntime, e.g.
#   /usr/bin/python3 -m venv --system-site-packages V && V/bin/pip install \
#       transformers==4.40.2 onnxruntime
set -u
build=$1 py=$2 reps=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
echo "OPENBLAS_CORETYPE='${OPENBLAS_CORETYPE:-}' OPENBLAS_L2_SIZE='${OPENBLAS_L2_SIZE:-}' (cleared)"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HF_HUB_OFFLINE=1
export HETRUN_BACKEND_PATH=$build/lib/hetrun
MODEL=$("$src/scripts/get-model.sh") || exit 1
SENTENCES=$src/tests/data/minilm/sentences.txt
export MODEL SENTENCES
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
hetrun_point() { # BATCH ITERS -> "p50_ms sentences_per_s"
    BATCH=$1 ITERS=$2 "$build/bin/hetrun" run -q --report "$tmp/h.json" "$here/embed.yaml" \
        > "$tmp/h.txt" 2>&1 || { cat "$tmp/h.txt" >&2; echo "- -"; return; }
    python3 -c "
import json,sys
b=json.load(open(sys.argv[1]))['ranks'][0]['results'][0]['batches'][0]
print(round(b['latency_ms_p50'],3), round(b['sentences_per_s'],1))" "$tmp/h.json"
}
peer() { # NAME BATCH ITERS
    OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "$py" "$here/peers.py" "$1" "$MODEL" "$SENTENCES" 2 \
        "$2" "$3" 2> /dev/null | awk '{print $5, $7}'
}
for i in $(seq 1 "$reps"); do
    echo "round $i batch 1 p50_ms sentences_per_s: hetrun $(hetrun_point 1 50) torch $(peer torch 1 50) ort $(peer ort 1 50)"
    echo "round $i batch 32 p50_ms sentences_per_s: hetrun $(hetrun_point 32 8) torch $(peer torch 32 8) ort $(peer ort 32 8)"
done
