#!/bin/bash
# Few-row GEMM weight layouts side by side (bench/cpu/few_row_layouts.c): the cpu backend's
# dot-product tiles on weights as stored against a 6x16 broadcast-FMA kernel (the shape of
# onnxruntime's batch-1 hot loop) on weights packed once into k-major panels, over MiniLM's
# 42 MB of encoder weights, at batch-1 token counts.
# Compiled like the backend (-O3); one line per point, ROUNDS times.
# usage: bench/cpu/few_row.sh [ROUNDS]
set -euo pipefail
rounds=${1:-3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($(nproc) online CPUs); load $(cut -d' ' -f1-3 /proc/loadavg)"
cc -O3 -mavx2 -mfma -fopenmp -o "$tmp/few_row_layouts" "$here/few_row_layouts.c" -lm
for round in $(seq "$rounds"); do
    for threads in 1 2; do
        for m in 14 40; do
            echo "round $round: $(OMP_NUM_THREADS=$threads OMP_PROC_BIND=true "$tmp/few_row_layouts" "$m" 5)"
        done
    done
done
