#!/bin/bash
# Batched SGEMM through the CPU backend vs OpenBLAS looping cblas_sgemm at its best thread
# split (all threads per entry, or one entry per thread), same process, same library
# instance, alternating (bench/cpu/batched_gemm.c). Shapes: attention-like (12 heads,
# 128 tokens, head dim 64), MLP-like, and entries large enough to split on their own.
# Ratio = hetrun / max(peer splits) per round: min / median / max over REPS rounds.
# usage: bench/cpu/batched.sh [BUILD_DIR] [THREADS] [REPS]   (prints a Markdown table)
set -euo pipefail
build=${1:-build}
threads=${2:-2}
reps=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
echo "environment before clearing: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS OMP_NUM_THREADS
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($(nproc) online CPUs), $threads threads"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$(cd "$here/../.." && pwd)
cc -O2 -I"$src/include" -o "$tmp/batched_gemm" "$here/batched_gemm.c" -ldl -lpthread
module=$build/lib/hetrun/libhetrun_backend_cpu.so
printf '| batch x m x n x k | hetrun GFLOP/s | OpenBLAS all threads per entry | OpenBLAS one entry per thread | hetrun / best split min / median / max |\n|---|---:|---:|---:|---|\n'
for shape in 12x128x128x64 12x128x64x128 16x256x256x64 8x512x512x512 2x1024x1024x1024 3x1024x1024x1024; do
    IFS=x read -r b m n k <<< "$shape"
    iters=$(( b * m * n * k > 1000000000 ? 3 : 15 ))
    "$tmp/batched_gemm" "$module" "$threads" "$b" "$m" "$n" "$k" "$iters" "$reps" > "$tmp/out"
    python3 - "$tmp/out" "$shape" <<'PY'
import statistics, sys
rows = [list(map(float, l.split()[1:])) for l in open(sys.argv[1])]
ratios = sorted(h / max(a, e) for h, a, e in rows)
med = lambda xs: statistics.median(xs)
print(f"| {sys.argv[2]} | {med([r[0] for r in rows]):.1f} | {med([r[1] for r in rows]):.1f} | "
      f"{med([r[2] for r in rows]):.1f} | {ratios[0]:.2f} / {med(ratios):.2f} / {ratios[-1]:.2f} |")
PY
done
