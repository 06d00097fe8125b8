#!/bin/sh
# Builds bench_opencl against an OpenCL backend build and runs it once.
# Usage: bench/opencl/run.sh [build_dir] [repeats]   (build_dir default: build)
# For a fair comparison unset OPENBLAS_* and pin nothing else; POCL_* vars are printed.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
reps=${2:-7}
module=$build/lib/hetrun/libhetrun_backend_opencl.so
[ -f "$module" ] || { echo "no $module: build target hetrun_backend_opencl first" >&2; exit 1; }
exe=$build/bin/bench_opencl
mkdir -p "$build/bin"
cc -O2 -std=c11 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
   -DCL_TARGET_OPENCL_VERSION=120 -I "$src/include" -I "$src" \
   "$src/bench/opencl/bench_opencl.c" "$src/kernels/catalogue.c" -o "$exe" \
   -lclblast -lOpenCL -ldl -lm
exec "$exe" "$module" "$reps"
