#!/bin/bash
# One command for the GPU checks of the CUDA backend, for a session that has an NVIDIA GPU:
#   1. configure + build (Release) into $BUILD (default /tmp/hetrun-build-cuda);
#   2. ctest -L cuda (module/unavailable test, exports, op test vs the reference);
#   3. hetrun-conformance --backend cuda (vs the CPU backend);
#   4. compute-sanitizer memcheck and racecheck on the op test (--quick shapes) and on
#      the conformance program (--quick);
#   5. the benchmark (GEMM ABI vs direct cuBLASLt, dispatch cost).
# Logs go to $OUT (default ./gpu-check-logs); the summary is $OUT/summary.txt.
# Usage: bench/cuda/gpu_check.sh            (from the repository root)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-/tmp/hetrun-build-cuda}
OUT=${OUT:-$PWD/gpu-check-logs}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
# CMake finds nvcc on PATH (or $CUDACXX); the toolkit's usual place as a fallback.
if ! command -v nvcc > /dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=/usr/local/cuda/bin:$PATH
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
fails=0

step() { # step NAME LOG CMD...: runs CMD, logs, records ok/FAIL/skipped
    local name=$1 log=$2
    shift 2
    echo "== $name: $*" | tee -a "$SUMMARY"
    "$@" > "$OUT/$log" 2>&1
    local rc=$?
    if [ $rc -eq 0 ]; then echo "   ok ($log)" | tee -a "$SUMMARY"
    elif [ $rc -eq 77 ]; then echo "   skipped ($log)" | tee -a "$SUMMARY"
    else echo "   FAIL rc=$rc ($log)" | tee -a "$SUMMARY"; fails=$((fails + 1)); fi
    return $rc
}

{ nvidia-smi || echo "nvidia-smi not found"; } > "$OUT/nvidia-smi.txt" 2>&1

step configure configure.log cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DHETRUN_BACKEND_CUDA=ON || { cat "$SUMMARY"; exit 1; }
step build build.log cmake --build "$BUILD" -j "$JOBS" || {
    # Someone else's folder may not build: the CUDA pieces alone are enough here.
    step build-cuda-only build-cuda.log cmake --build "$BUILD" -j "$JOBS" --target \
        hetrun_backend_cuda test_cuda_module test_cuda_ops hetrun_bench_cuda || { cat "$SUMMARY"; exit 1; }
}
MOD="$BUILD/lib/hetrun/libhetrun_backend_cuda.so"
export HETRUN_BACKEND_PATH="$BUILD/lib/hetrun"

step ctest-cuda ctest-cuda.log ctest --test-dir "$BUILD" -L cuda --output-on-failure
step op-test test_cuda_ops.log "$BUILD/bin/test_cuda_ops" "$MOD"
CONF="$BUILD/bin/hetrun-conformance"
if [ -x "$CONF" ]; then
    step conformance conformance.log "$CONF" --backend cuda --verbose
else
    echo "== conformance: $CONF not built (tests/conformance)" | tee -a "$SUMMARY"
fi

SAN=$(command -v compute-sanitizer || true)
for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    [ -z "$SAN" ] && [ -x "$c" ] && SAN=$c
done
if [ -n "$SAN" ]; then
    for tool in memcheck racecheck; do
        step "sanitizer-$tool" "sanitizer-$tool.log" "$SAN" --tool "$tool" --error-exitcode 3 \
            "$BUILD/bin/test_cuda_ops" "$MOD" --quick
        if [ -x "$CONF" ]; then
            step "sanitizer-$tool-conformance" "sanitizer-$tool-conformance.log" "$SAN" \
                --tool "$tool" --error-exitcode 3 "$CONF" --backend cuda --quick
        fi
    done
else
    echo "== compute-sanitizer: not found (install the CUDA toolkit's sanitizer)" | tee -a "$SUMMARY"
    fails=$((fails + 1))
fi

step bench bench_cuda.md "$BUILD/bin/hetrun_bench_cuda" "$MOD" 20
echo "failures: $fails (logs in $OUT)" | tee -a "$SUMMARY"
[ $fails -eq 0 ]
