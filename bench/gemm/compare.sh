#!/bin/bash
# hetrun's GEMM (through the spec, the dlopen'ed cpu module and the session) against a
# direct OpenBLAS call of the same size, in one run, alternating, REPS times each.
# Under mpirun -np 2, both binaries run 2 single-threaded ranks bound to one core each.
# usage: bench/gemm/compare.sh [BUILD_DIR] [REPS] [SIZES...]   (prints a Markdown table)
set -euo pipefail
build=${1:-build}
reps=${2:-7}
shift 2 || true
sizes=${*:-"512 1024 2048"}
here=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "environment before clearing: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS OMP_NUM_THREADS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/openblas_gemm" "$here/openblas_gemm.c" $(pkg-config --cflags --libs openblas 2>/dev/null || echo -lopenblas)
printf '| n | ranks x threads | hetrun GFLOP/s (median of rank medians) | OpenBLAS GFLOP/s | ratio min / median / max |\n|---:|---|---:|---:|---|\n'
for n in $sizes; do
    cat > "$tmp/job.yaml" <<YAML
version: 1
backend: cpu
workloads:
  - gemm: {m: $n, n: $n, k: $n, warmup: 2, iterations: 10, check: false}
YAML
    ratios=() hs=() ds=()
    for r in $(seq "$reps"); do
        mpirun -np 2 "$build/bin/hetrun" run -q --report "$tmp/r.json" "$tmp/job.yaml" > /dev/null
        h=$(python3 -c "import json,statistics;r=json.load(open('$tmp/r.json'));print(statistics.median(x['results'][0]['gflops'] for x in r['ranks']))")
        d=$(mpirun -np 2 "$tmp/openblas_gemm" $n $n $n 10 2 1 | awk '{print $6}' | sort -n | awk '{a[NR]=$1} END {print (a[1]+a[2])/2}')
        hs+=("$h") ds+=("$d")
        ratios+=("$(awk -v h="$h" -v d="$d" 'BEGIN{printf "%.4f", h/d}')")
    done
    stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f / %.3f / %.3f", a[1], m, a[NR]}'; }
    med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }
    printf '| %s | 2 x 1 | %s | %s | %s |\n' "$n" "$(med "${hs[@]}")" "$(med "${ds[@]}")" "$(stats "${ratios[@]}")"
done
