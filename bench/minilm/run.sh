#!/bin/bash
# hetrun embed vs PyTorch (Debian's python3-torch) vs onnxruntime (PyPI) on all-MiniLM-L6-v2,
# the same 233 sentences (tests/data/minilm/sentences.txt), the same request: tokenize (max
# 256, padded to the batch's longest), forward, mean pooling, L2 normalisation, on the host.
# CPU, 2 cores (the whole machine): hetrun's cpu backend (fp32, attention auto = fused);
# torch.set_num_threads(2) with OPENBLAS_NUM_THREADS=2 (Debian's torch GEMMs run in OpenBLAS);
# onnxruntime intra_op_num_threads=2. Batch 1: latency p50/p90/p99; batch 32: sentences/s.
# Side by side, REPEATS rounds, each round runs the three one after the other; at the end the
# per-round ratios hetrun/peer, min / median / max, and the load average seen at each start.
# usage: bench/minilm/run.sh BUILD_DIR PYTHON [REPEATS [uniform]]
#   uniform: only the reference sentences of the most common token count (15 of 14 tokens),
#   so no batch has padding: hetrun's packed batches then do the peers' padded work.
#   PYTHON: an interpreter with torch, transformers, tokenizers and onnxruntime. The one of
#   bench/RESULTS.md (Debian's torch 1.13 underneath, transformers 4.40.2, onnxruntime 1.32):
#     /usr/bin/python3 -m venv --system-site-packages /work/venv-minilm
#     /work/venv-minilm/bin/pip install transformers==4.40.2 onnxruntime
set -u
build=$1 py=$2 reps=${3:-3} which=${4:-all}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
echo "OPENBLAS_CORETYPE='${OPENBLAS_CORETYPE:-}' OPENBLAS_L2_SIZE='${OPENBLAS_L2_SIZE:-}' (cleared)"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HF_HUB_OFFLINE=1
export HETRUN_BACKEND_PATH=$build/lib/hetrun
MODEL=$("$src/scripts/get-model.sh") || exit 1
SENTENCES=$src/tests/data/minilm/sentences.txt
echo "$(date -u '+%F %T UTC'); $(grep -m1 'model name' /proc/cpuinfo); $(nproc) cores"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$which" = uniform ]; then
    ids=$src/tests/data/minilm/ids.txt
    n=$(awk '{print NF}' "$ids" | sort -n | uniq -c | sort -k1,1n -k2,2n | tail -1 | awk '{print $2}')
    awk -v n="$n" 'NR == FNR { len[FNR] = NF; next } len[FNR] == n' "$ids" "$SENTENCES" \
        > "$tmp/uniform.txt"
    SENTENCES=$tmp/uniform.txt
    echo "uniform: the $(wc -l < "$SENTENCES") reference sentences of $n tokens (no padding)"
fi
export MODEL SENTENCES
hetrun_point() { # BATCH ITERS -> "p50_ms sentences_per_s p90_ms p99_ms"
    BATCH=$1 ITERS=$2 "$build/bin/hetrun" run -q --report "$tmp/h.json" "$here/embed.yaml" \
        > "$tmp/h.txt" 2>&1 || { cat "$tmp/h.txt" >&2; echo "- - - -"; return; }
    python3 -c "
import json,sys
b=json.load(open(sys.argv[1]))['ranks'][0]['results'][0]['batches'][0]
print(*(round(b[k],3) for k in ('latency_ms_p50','sentences_per_s','latency_ms_p90','latency_ms_p99')))" "$tmp/h.json"
}
peer() { # NAME BATCH ITERS -> the same four
    OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "$py" "$here/peers.py" "$1" "$MODEL" "$SENTENCES" 2 \
        "$2" "$3" 2> /dev/null | awk '{print $5, $7, $9, $11}'
}
for i in $(seq 1 "$reps"); do
    for b in "1 50" "32 8"; do
        set -- $b
        load=$(cut -d' ' -f1 /proc/loadavg)
        line="round $i batch $1 load $load hetrun $(hetrun_point "$1" "$2") torch $(peer torch "$1" "$2") ort $(peer ort "$1" "$2")"
        echo "$line" | tee -a "$tmp/rounds"
    done
done
echo "(each: p50_ms sentences_per_s p90_ms p99_ms)"
python3 - "$tmp/rounds" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def figures(r, who):
    i = r.index(who)
    try:
        return [float(x) for x in r[i + 1:i + 5]]
    except ValueError:
        return None
for batch, col, what in (("1", 0, "batch 1 p50 latency, hetrun/peer"),
                         ("1", 2, "batch 1 p90 latency, hetrun/peer"),
                         ("1", 3, "batch 1 p99 latency, hetrun/peer"),
                         ("32", 1, "batch 32 sentences/s, hetrun/peer")):
    sel = [r for r in rows if r[3] == batch]
    out = []
    for peer in ("torch", "ort"):
        q = [figures(r, "hetrun")[col] / figures(r, peer)[col] for r in sel
             if figures(r, "hetrun") and figures(r, peer)]
        out.append("%s %s" % (peer, "%.2f / %.2f / %.2f" % (min(q), statistics.median(q), max(q))
                               if q else "-"))
    print("%-36s min / median / max: %s" % (what, "; ".join(out)))
loads = [float(r[5]) for r in rows]
print("load average (1 min) at the start of each point: %.1f-%.1f" % (min(loads), max(loads)))
PY
