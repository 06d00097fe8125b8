#!/bin/sh
# Builds bench_transformer against a build tree and runs it once: OpenCL (PoCL) attention
# fwd+bwd and strided batched SGEMM vs the cpu module and CLBlast, side by side.
# Usage: bench/opencl_transformer/run.sh [build_dir] [repeats] [gemm|attention]
#        (build_dir default: build; the last argument runs one part)
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
reps=${2:-5}
part=${3:-}
ocl=$build/lib/hetrun/libhetrun_backend_opencl.so
cpu=$build/lib/hetrun/libhetrun_backend_cpu.so
for m in "$ocl" "$cpu"; do
    [ -f "$m" ] || { echo "no $m: build the opencl and cpu backends first" >&2; exit 1; }
done
echo "OPENBLAS_CORETYPE='${OPENBLAS_CORETYPE:-}' OPENBLAS_L2_SIZE='${OPENBLAS_L2_SIZE:-}' (cleared)"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
exe=$build/bin/bench_transformer
mkdir -p "$build/bin"
cc -O2 -std=c11 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
   -DCL_TARGET_OPENCL_VERSION=120 -I "$src/include" -I "$src" \
   "$src/bench/opencl_transformer/bench_transformer.c" "$src/kernels/catalogue.c" -o "$exe" \
   -lclblast -lOpenCL -ldl -lm
uptime
exec "$exe" "$ocl" "$cpu" "$reps" $part
