#!/bin/bash
# The cpu backend's fp32 GEMM on MiniLM's encoder weights with and without the ABI 1.3
# constant-operand hint (bench/cpu/const_operand.c), side by side: one process per side,
# alternating, ROUNDS rounds, at token-row counts from batch 1 (14, 40) to batch 32 (700),
# on 1 and 2 threads. The module is the build's.
# usage: bench/cpu/const_operand.sh [BUILD_DIR] [ROUNDS] [ROWS...]
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
shift $(($# < 2 ? $# : 2))
rows=${*:-14 40 64 128 256 700}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
module=$build/lib/hetrun/libhetrun_backend_cpu.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "environment before clearing: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS OMP_NUM_THREADS
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($(nproc) online CPUs); load $(cut -d' ' -f1-3 /proc/loadavg)"
cc -O2 -I"$src/include" -o "$tmp/const_operand" "$here/const_operand.c" -lm -ldl
for m in $rows; do "$tmp/const_operand" check "$module" 2 "$m" 1; done
for round in $(seq "$rounds"); do
    for threads in 1 2; do
        for m in $rows; do
            for side in plain const; do
                echo "round $round: $("$tmp/const_operand" "$side" "$module" "$threads" "$m" 5)"
            done
        done
    done
done
