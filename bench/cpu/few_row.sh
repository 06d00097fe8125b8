#!/bin/bash
# Few-row GEMM weight layouts side by side (bench/cpu/few_row_layouts.c): the cpu backend
# module's few-row kernel (dot-product tiles on weights as stored, on the module's thread
# pool) against a 6x16 broadcast-FMA kernel (the shape of onnxruntime's batch-1 hot loop) on
# weights packed once into k-major panels (OpenMP), over MiniLM's 42 MB of encoder weights,
# at batch-1 token counts. One process per side, alternating; ROUNDS rounds.
# usage: bench/cpu/few_row.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
module=$build/lib/hetrun/libhetrun_backend_cpu.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "environment before clearing: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS OMP_NUM_THREADS
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($(nproc) online CPUs); load $(cut -d' ' -f1-3 /proc/loadavg)"
cc -O3 -mavx2 -mfma -fopenmp -I"$src/include" -o "$tmp/few_row_layouts" "$here/few_row_layouts.c" -lm -ldl
"$tmp/few_row_layouts" check "$module" 2 14 1
"$tmp/few_row_layouts" check "$module" 2 40 1
for round in $(seq "$rounds"); do
    for threads in 1 2; do
        for m in 14 40; do
            for side in module panels; do
                echo "round $round: $("$tmp/few_row_layouts" "$side" "$module" "$threads" "$m" 5)"
            done
        done
    done
done
