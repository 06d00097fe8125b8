#!/bin/sh
# ctest driver: builds the fuzzer and runs it for SECONDS on a copy of the spec corpus.
#   run_ctest.sh OUT_DIR SECONDS LIB...   (LIB: the build's static libraries, see build.sh)
# Exit 77 (skipped) without clang/libFuzzer; non-zero on any finding.
set -eu
out=${1:?usage: run_ctest.sh OUT_DIR SECONDS LIB...}
secs=${2:?seconds}
shift 2
src=$(cd "$(dirname "$0")/.." && pwd)
rc=0
sh "$src/fuzz/build.sh" "$out" "$@" || rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
rm -rf "$out/corpus" && mkdir -p "$out/corpus"
cp "$src"/tests/spec/invalid/*.yaml "$src"/tests/spec/valid/*.yaml "$out/corpus/"
cp "$src"/examples/*.yaml "$out/corpus/" 2>/dev/null || true
cd "$out"
# One worker: the machine has 2 cores and other tests run beside this one.
status=0
./spec_fuzzer -max_total_time="$secs" -max_len=65536 -timeout=5 -rss_limit_mb=2048 \
    -dict="$src/fuzz/spec.dict" -print_final_stats=1 corpus >fuzz.log 2>&1 || status=$?
tail -25 fuzz.log
exit "$status"
