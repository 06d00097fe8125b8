#!/bin/bash
# The candidate BLAS libraries for the CPU backend, side by side on 1 thread (pinned to CPU
# 0), alternating, REPS times: OpenBLAS with its own core-type choice, OpenBLAS with the
# core type the backend derives from CPUID, BLIS (runtime config from CPUID) and oneDNN's
# dnnl_sgemm. Libraries that are not installed are skipped. Prints a Markdown table.
# usage: bench/cpu/peers.sh [REPS] [SIZES...]
set -euo pipefail
reps=${1:-5}
shift || true
sizes=${*:-"1024 2048"}
here=$(cd "$(dirname "$0")" && pwd)
echo "environment before clearing: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OPENBLAS_NUM_THREADS=1 BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/peers" "$here/blas_peers.c" -ldl
flags=$(grep -m1 '^flags' /proc/cpuinfo)
case "$flags" in
*avx512_bf16*) cpuid=Cooperlake ;;
*avx512vl*) cpuid=SkylakeX ;;
*avx2*) if grep -q AuthenticAMD /proc/cpuinfo; then cpuid=Zen; else cpuid=Haswell; fi ;;
*) cpuid=Prescott ;;
esac
declare -A lib=([openblas-auto]=libopenblas.so.0 [openblas-$cpuid]=libopenblas.so.0
                [blis]=libblis.so.4 [onednn]=libdnnl.so.2)
names="openblas-auto openblas-$cpuid blis onednn"
printf '| n | library | GFLOP/s min / median / max (of run medians) |\n|---:|---|---|\n'
for n in $sizes; do
    declare -A res=()
    for r in $(seq "$reps"); do
        for name in $names; do
            core=""
            [ "$name" = "openblas-$cpuid" ] && core=$cpuid
            g=$(env ${core:+OPENBLAS_CORETYPE=$core} taskset -c 0 "$tmp/peers" "${lib[$name]}" "$n" 5 2 2>/dev/null | awk '{print $1}') || g=""
            [ -n "$g" ] && res[$name]="${res[$name]:-} $g"
        done
    done
    for name in $names; do
        [ -z "${res[$name]:-}" ] && { printf '| %s | %s | not installed |\n' "$n" "$name"; continue; }
        printf '| %s | %s | %s |\n' "$n" "$name" "$(printf '%s\n' ${res[$name]} | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f / %.1f / %.1f", a[1], m, a[NR]}')"
    done
done
