#!/bin/bash
# SGEMM on the CPU backend against the silicon and against the peer, side by side in one run:
# hetrun's gemm workload (1 rank, 1 or 2 threads), a direct OpenBLAS call of the same size
# (bench/gemm/openblas_gemm.c, the library's own kernel choice unless OPENBLAS_CORETYPE is
# set), and the measured FP32 FMA peak the backend declares (its cached probe, same thread
# count). Each configuration runs REPS times, hetrun and OpenBLAS alternating; the table gives
# median GFLOP/s and min / median / max of hetrun's %peak and of the hetrun/OpenBLAS ratio.
# 1 thread: a 1-core hwloc topology for hetrun, taskset -c 0 for OpenBLAS; 2 threads: the
# whole machine. Core-type settings: unset, then each "CORETYPE[:L2_SIZE]" given in
# CORETYPES (default "Haswell:512", the value exported on the Xeon nodes).
# A bf16 row (bf16 in, fp32 out, fp32 accumulate) is measured against the declared bf16 peak.
# usage: bench/cpu/sgemm.sh [BUILD_DIR] [REPS] [SIZES...]   (prints a Markdown table)
set -euo pipefail
build=${1:-build}
reps=${2:-5}
shift 2 || true
sizes=${*:-"1024 2048"}
here=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export HETRUN_BACKEND_PATH=$build/lib/hetrun
echo "environment before clearing: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS OMP_NUM_THREADS
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($(nproc) online CPUs)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/openblas_gemm" "$here/../gemm/openblas_gemm.c" $(pkg-config --cflags --libs openblas 2>/dev/null || echo -lopenblas)
lstopo-no-graphics --restrict 0x1 --of xml "$tmp/one-core.xml"
coretypes=${CORETYPES:-"Haswell:512"}
field() { python3 -c "
import json,sys
r=json.load(open(sys.argv[1])); x=r['ranks'][0]; res=x['results'][0]
print({'gflops': res['gflops'], 'peak': x['device']['peak_flops'].get(sys.argv[2], 0) / 1e9,
       'blas': x['device']['driver_version']}[sys.argv[3]])" "$@"; }
stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f / %.2f / %.2f", a[1], m, a[NR]}'; }
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }
# hetrun THREADS N DTYPE: one gemm run, report in $tmp/r.json
hetrun() {
    local iters=$((${2} >= 2048 ? 5 : 10))
    printf 'version: 1\nbackend: cpu\nworkloads:\n  - gemm: {m: %s, n: %s, k: %s, dtype: %s, warmup: 2, iterations: %s, check: false}\n' \
        "$2" "$2" "$2" "$3" "$iters" > "$tmp/job.yaml"
    if [ "$1" = 1 ]; then
        env HWLOC_XMLFILE="$tmp/one-core.xml" HWLOC_THISSYSTEM=1 "$build/bin/hetrun" run -q --report "$tmp/r.json" "$tmp/job.yaml" > /dev/null
    else
        "$build/bin/hetrun" run -q --report "$tmp/r.json" "$tmp/job.yaml" > /dev/null
    fi
}
direct() {
    local iters=$((${2} >= 2048 ? 5 : 10)) pin=""
    [ "$1" = 1 ] && pin="taskset -c 0"
    $pin "$tmp/openblas_gemm" "$2" "$2" "$2" "$iters" 2 "$1" | awk '{print $6}'
}
printf '\n| n | threads | OPENBLAS_CORETYPE / L2 | hetrun BLAS (kernels, chosen by) | hetrun GFLOP/s | OpenBLAS direct GFLOP/s | FP32 peak GFLOP/s | hetrun %%peak min / med / max | hetrun / OpenBLAS min / med / max |\n|---:|---:|---|---|---:|---:|---:|---|---|\n'
for setting in unset $coretypes; do
    if [ "$setting" = unset ]; then
        unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
    else
        export OPENBLAS_CORETYPE=${setting%%:*}
        if [ "$setting" != "${setting#*:}" ]; then export OPENBLAS_L2_SIZE=${setting#*:}; else unset OPENBLAS_L2_SIZE; fi
    fi
    for threads in 1 2; do
        for n in $sizes; do
            hs=() ds=() pcts=() ratios=()
            for r in $(seq "$reps"); do
                hetrun "$threads" "$n" fp32
                h=$(field "$tmp/r.json" fp32 gflops) peak=$(field "$tmp/r.json" fp32 peak) blas=$(field "$tmp/r.json" fp32 blas)
                d=$(direct "$threads" "$n")
                hs+=("$h") ds+=("$d")
                pcts+=("$(awk -v h="$h" -v p="$peak" 'BEGIN{printf "%.2f", 100*h/p}')")
                ratios+=("$(awk -v h="$h" -v d="$d" 'BEGIN{printf "%.4f", h/d}')")
            done
            printf '| %s | %s | %s / %s | %s | %s | %s | %.1f | %s | %s |\n' "$n" "$threads" \
                "${OPENBLAS_CORETYPE:-unset}" "${OPENBLAS_L2_SIZE:-unset}" "$blas" "$(med "${hs[@]}")" \
                "$(med "${ds[@]}")" "$peak" "$(stats "${pcts[@]}")" "$(stats "${ratios[@]}")"
        done
    done
done
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
printf '\n| bf16 GEMM (fp32 out) n | threads | hetrun GFLOP/s | declared bf16 peak GFLOP/s | %%peak min / med / max | CPU arch (report) |\n|---:|---:|---:|---:|---|---|\n'
for threads in 1 2; do
    n=${sizes##* } hs=() pcts=()
    for r in $(seq "$reps"); do
        hetrun "$threads" "$n" bf16
        h=$(field "$tmp/r.json" bf16 gflops) peak=$(field "$tmp/r.json" bf16 peak)
        hs+=("$h") pcts+=("$(awk -v h="$h" -v p="$peak" 'BEGIN{printf "%.2f", 100*h/p}')")
    done
    arch=$(python3 -c "import json;print(json.load(open('$tmp/r.json'))['ranks'][0]['device']['arch'])")
    printf '| %s | %s | %s | %.1f | %s | %s |\n' "$n" "$threads" "$(med "${hs[@]}")" "$peak" "$(stats "${pcts[@]}")" "$arch"
done
