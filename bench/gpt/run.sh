#!/bin/bash
# hetrun vs PyTorch (CPU, fp32) training the same GPT (6 layers, 6 heads, width 384, context
# 256, byte vocabulary): median step time and tokens/s, alternated REPEATS times, side by
# side; tokens/s from the median step time on both sides. hetrun uses the whole machine (its cpu backend threads); torch runs at 1 and 2
# threads (its best is taken per repeat), with OPENBLAS_NUM_THREADS matched (Debian's torch
# GEMMs run in OpenBLAS). OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are cleared and printed.
# usage: bench/gpt/run.sh BUILD_DIR [REPEATS] [BATCH] [STEPS]
set -u
build=$1 reps=${2:-3} batch=${3:-4} steps=${4:-5}
here=$(cd "$(dirname "$0")" && pwd)
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-unset} (cleared)"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export HETRUN_BACKEND_PATH=$build/lib/hetrun
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TOKFILE=$tmp/fortunes.tok TOKENS=$((batch * 256)) BATCH=$batch STEPS=$steps
for i in $(seq 1 "$reps"); do
    "$build/bin/hetrun" run -q --report "$tmp/h.json" "$here/train-gpt.yaml" > "$tmp/h.txt" 2>&1 ||
        { tail -3 "$tmp/h.txt"; exit 1; }
    h=$(python3 -c "
import json,sys
r=json.load(open(sys.argv[1]))['ranks'][0]['results'][0]
m=r['step_time_ms']['median']
print('%.1f %.1f' % (m, int(sys.argv[2]) * 256 / m * 1e3))" "$tmp/h.json" "$batch")
    t1=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 "$here/torch_gpt.py" 1 "$batch" "$steps")
    t2=$(OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 /usr/bin/python3 "$here/torch_gpt.py" 2 "$batch" "$steps")
    best=$(printf '%s\n%s\n' "$t1" "$t2" | sort -k2 -g | tail -1)
    echo "repeat $i: hetrun step_ms tokens/s: $h | torch 1 thread: $t1 | torch 2 threads: $t2 | ratio hetrun/best torch tokens/s: $(echo "$h $best" | awk '{printf "%.3f", $2 / $4}')"
done
