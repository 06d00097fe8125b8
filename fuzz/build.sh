#!/bin/sh
# Builds the libFuzzer harness for the spec reader with clang (ASan + UBSan + libFuzzer).
#   fuzz/build.sh OUT_DIR LIB...
# LIB: the static libraries of a normal build, users first (libhetrun_core.a,
# libhetrun_util.a, libhetrun_kernels.a); the spec sources are recompiled here with
# instrumentation, so libhetrun_spec.a is not needed. Needs clang and compiler-rt's libFuzzer (Debian: libclang-rt-14-dev).
# Exit 77 when clang or libFuzzer is missing. The sweep-point limit is lowered to 300 so
# the fuzzer does not spend its time expanding legal 10,000-point sweeps.
set -eu
out=${1:?usage: build.sh OUT_DIR LIB...}
shift
[ $# -gt 0 ] || { echo "usage: build.sh OUT_DIR LIB..." >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null 2>&1 || { echo "build.sh: $CC not found" >&2; exit 77; }
mkdir -p "$out"
probe="$out/probe.c"
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}' >"$probe"
if ! "$CC" -fsanitize=fuzzer "$probe" -o "$out/probe" 2>/dev/null; then
    echo "build.sh: $CC cannot link -fsanitize=fuzzer (install libclang-rt-14-dev)" >&2
    exit 77
fi
mpi_cflags=$(pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile)
mpi_libs=$(pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link)
"$CC" -g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -DHETRUN_SPEC_MAX_POINTS=300 \
    -I"$src/launcher" -I"$src/include" -I"$src" $mpi_cflags \
    "$src/fuzz/spec_fuzzer.c" "$src"/launcher/spec/*.c \
    "$@" \
    $(pkg-config --libs yaml-0.1 libcjson hwloc zlib libcrypto libutf8proc) $mpi_libs -ldl -lpthread -lm \
    -o "$out/spec_fuzzer"
echo "built $out/spec_fuzzer"
