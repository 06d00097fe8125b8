#!/bin/sh
# Builds target bench_opencl (bench/opencl/CMakeLists.txt) in a build and runs it once.
# Usage: bench/opencl/run.sh [build_dir] [repeats]   (build_dir default: build)
# For a fair comparison unset OPENBLAS_* and pin nothing else; POCL_* vars are printed.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
reps=${2:-7}
module=$build/lib/hetrun/libhetrun_backend_opencl.so
[ -f "$module" ] || { echo "no $module: build target hetrun_backend_opencl first" >&2; exit 1; }
cmake --build "$build" --target bench_opencl
exe=$build/bin/bench_opencl
exec "$exe" "$module" "$reps"
