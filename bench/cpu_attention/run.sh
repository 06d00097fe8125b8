#!/bin/bash
# The cpu module's fused attention (forward + backward) against PyTorch's
# scaled_dot_product_attention, and its fp32 batched SGEMM against OpenBLAS looping
# cblas_sgemm (threads inside each GEMM, and across entries), alternated ROUNDS times in
# one run on the same THREADS cores. Prints Markdown tables.
# usage: bench/cpu_attention/run.sh [BUILD_DIR] [ROUNDS] [THREADS] [PYTHON]
#   PYTHON: an interpreter with torch >= 2.0 (scaled_dot_product_attention), e.g. a venv.
set -euo pipefail
build=${1:-build}
rounds=${2:-5}
threads=${3:-2}
python=${4:-python3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
module="$build/lib/hetrun/libhetrun_backend_cpu.so"
echo "environment before clearing: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS OMP_NUM_THREADS MKL_NUM_THREADS
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores online, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "isa: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_bf16|amx_tile)$' | tr '\n' ' ')"
echo "peer: $("$python" -c 'import torch; print("torch", torch.__version__)')"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -I "$root/include" -I "$root" -I "$root/launcher" -o "$tmp/attn_bench" "$here/attn_bench.c" \
    "$root/launcher/util/cache_dir.c" -ldl -lm -lpthread \
    $(pkg-config --libs openblas 2>/dev/null || echo -lopenblas)

stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f / %.3f / %.3f", a[1], m, a[NR]}'; }
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }

echo
echo "### attention forward + backward, fp32, $threads threads"
echo
printf '| B x H x L x D | causal | hetrun ms | GFLOP/s | of peak | torch SDPA ms | ratio torch/hetrun min / median / max |\n|---|---|---:|---:|---:|---:|---|\n'
for shape in "8 12 256 64 1" "8 12 256 64 0"; do
    set -- $shape
    hs=() ts=() rs=() gs=() fs=()
    for r in $(seq "$rounds"); do
        out=$("$tmp/attn_bench" "$module" "$threads" attention "$@" 10)
        h=$(awk '$1=="attention_fwd_bwd"{print $2}' <<<"$out")
        gs+=("$(awk '$1=="attention_fwd_bwd"{print $3}' <<<"$out")")
        fs+=("$(awk '$1=="attention_fwd_bwd"{print $4}' <<<"$out")")
        t=$("$python" "$here/torch_peer.py" "$threads" "$@" 10 2>/dev/null | awk '{print $2}')
        hs+=("$h") ts+=("$t")
        rs+=("$(awk -v h="$h" -v t="$t" 'BEGIN{printf "%.4f", t/h}')")
    done
    printf '| %s x %s x %s x %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" \
        "$([ "$5" = 1 ] && echo yes || echo no)" "$(med "${hs[@]}")" "$(med "${gs[@]}")" \
        "$(med "${fs[@]}")" "$(med "${ts[@]}")" "$(stats "${rs[@]}")"
done

echo
echo "### strided batched SGEMM, fp32, $threads threads"
echo
printf '| batch x m x n x k | hetrun GFLOP/s | OpenBLAS loop, threads inside | OpenBLAS loop, threads across | ratio hetrun/best min / median / max |\n|---|---:|---:|---:|---|\n'
for shape in "96 256 256 64" "96 256 64 256" "16 512 512 512" "3 512 512 512"; do
    set -- $shape
    hs=() is=() as=() rs=()
    for r in $(seq "$rounds"); do
        out=$("$tmp/attn_bench" "$module" "$threads" bgemm "$@" 7)
        h=$(awk '$1=="hetrun_batched"{print $3}' <<<"$out")
        i=$(awk '$1=="openblas_loop_inside"{print $3}' <<<"$out")
        a=$(awk '$1=="openblas_loop_across"{print $3}' <<<"$out")
        hs+=("$h") is+=("$i") as+=("$a")
        rs+=("$(awk -v h="$h" -v i="$i" -v a="$a" 'BEGIN{b=i>a?i:a; printf "%.4f", h/b}')")
    done
    printf '| %s x %s x %s x %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$(med "${hs[@]}")" \
        "$(med "${is[@]}")" "$(med "${as[@]}")" "$(stats "${rs[@]}")"
done
