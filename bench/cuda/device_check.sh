#!/bin/bash
# Every GPU check of the CUDA backend in one run, for the lent GPU machine (device tool), which
# cannot build hetrun: build here with CUDA on, bundle, carry, run this there.
#
#   here:   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2
#           ../shared/gpu/make-bundle.sh build            # .gpu-bundle/, carried
#   device: source .gpu-bundle/env.sh && OUT=$OUT bench/cuda/device_check.sh   (repo root)
#
# Steps, each bounded by `timeout` and logged to $OUT/<step>.log (summary.txt, then all logs
# in one logs.tgz since few files come back):
#   1. nvidia-smi, hetrun backends (the cuda module loads and lists the GPU);
#   2. conformance of every op x dtype against the CPU reference (hetrun conform, or the older
#      hetrun-conformance), and the CUDA op test;
#   3. compute-sanitizer memcheck on the op test (quick shapes);
#   4. the GPT against PyTorch's reference tensors on cuda: fp32, bf16 and fp16 mixed
#      precision (tests/gpt/reference.yaml);
#   5. GEMM through the ABI vs direct cuBLASLt, and dispatch cost (hetrun_bench_cuda);
#   6. fused attention forward + backward through the ABI (hetrun_attn_bench) vs PyTorch's
#      scaled_dot_product_attention, fp32, GPT-2 shape (B 8, H 12, L 1024, D 64, causal);
#   7. GPT-2 124M shape trained on fortunes for a few steps, bf16, 1 rank: tokens/s, MFU;
#   8. 2 ranks on the one GPU (NCCL refuses: the host-staged allreduce takes over).
# Exit 77 without a GPU; otherwise the number of failed steps.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$PWD/device-check-logs}
STEPS=${STEPS:-1 2 3 4 5 6 7 8}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
fails=0
if ! nvidia-smi > "$OUT/nvidia-smi.log" 2>&1; then
    echo "no GPU here (nvidia-smi failed): nothing to check" | tee -a "$SUMMARY"
    exit 77
fi
command -v hetrun > /dev/null || { echo "hetrun not on PATH: source .gpu-bundle/env.sh first"; exit 2; }
MOD=$HETRUN_BACKEND_PATH/libhetrun_backend_cuda.so
BIN=$(dirname "$(command -v hetrun)")
tmp=$(mktemp -d)
trap 'tar -C "$OUT" -czf "$OUT/logs.tgz" --exclude logs.tgz . 2> /dev/null; rm -rf "$tmp"' EXIT

step() { # step NAME SECONDS CMD...: runs CMD under timeout, logs, records ok/FAIL/skipped
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*" | tee -a "$SUMMARY"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    if [ $rc -eq 0 ]; then echo "   ok" | tee -a "$SUMMARY"
    elif [ $rc -eq 77 ]; then echo "   skipped" | tee -a "$SUMMARY"
    else echo "   FAIL rc=$rc (last lines below)" | tee -a "$SUMMARY"; tail -5 "$OUT/$name.log" | tee -a "$SUMMARY"; fails=$((fails + 1)); fi
    return $rc
}
want() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if want 1; then step backends 60 hetrun backends; grep -E "^cuda" "$OUT/backends.log" | tee -a "$SUMMARY"; fi
if want 2; then
    if hetrun conform --help > /dev/null 2>&1; then
        step conform 900 hetrun conform --backend cuda --format table
    else
        step conform 900 "$BIN/hetrun-conformance" --backend cuda --verbose
    fi
    [ -x "$BIN/test_cuda_ops" ] && step op-test 600 "$BIN/test_cuda_ops" "$MOD"
fi
if want 3; then
    SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    step memcheck 600 "$SAN" --tool memcheck --error-exitcode 3 "$BIN/test_cuda_ops" "$MOD" --quick
fi
if want 4; then
    for p in fp32 bf16 fp16; do
        sed "s|reference: ../data/gpt|reference: $ROOT/tests/data/gpt\n        precision: $p|" \
            "$ROOT/tests/gpt/reference.yaml" > "$tmp/ref-$p.yaml"
        step "gpt-reference-$p" 300 hetrun run --backend cuda --report "$OUT/gpt-reference-$p.json" \
            "$tmp/ref-$p.yaml"
        grep "gpt reference" "$OUT/gpt-reference-$p.log" | tee -a "$SUMMARY"
    done
fi
if want 5; then step bench-gemm 600 "$BIN/hetrun_bench_cuda" "$MOD" 20; fi
if want 6 && [ -x "$BIN/hetrun_attn_bench" ]; then
    # alternated, 3 rounds: hetrun's fused attention, then PyTorch's SDPA, same shape
    for r in 1 2 3; do
        step "attention-hetrun-$r" 300 "$BIN/hetrun_attn_bench" "$MOD" 1 attention 8 12 1024 64 1 20
        step "attention-torch-$r" 300 python3 "$ROOT/bench/cpu_attention/torch_peer.py" 1 8 12 1024 64 1 20 cuda
    done
    grep -h "" "$OUT"/attention-*.log | grep -E "attention|torch_sdpa" | tee -a "$SUMMARY"
fi
gpt_spec() { # gpt_spec FILE PRECISION STEPS: the GPT-2 124M shape on fortunes (bytes)
    cat > "$1" <<YAML
version: 1
job: {name: gpt2-124m-shape}
backend: cuda
workloads:
  - train:
      model: gpt
      gpt: {layers: 12, heads: 12, width: 768, context: 1024, vocab: 50304,
            batch_tokens: 16384, micro_batch: 16, eval_tokens: 16384, sample_tokens: 0,
            precision: $2}
      text: {corpus: [$ROOT/README.md, $ROOT/docs/jobspec.md], tokens: $tmp/gpt.tok,
             val_fraction: 0.2}
      lr: 0.0006
      warmup_steps: 2
      steps: $3
      log_every: 1
YAML
}
if want 7; then
    gpt_spec "$tmp/gpt2.yaml" bf16 10
    step gpt2-bf16 600 hetrun run --report "$OUT/gpt2-bf16.json" "$tmp/gpt2.yaml"
    grep -o '"tokens_per_s":[^,]*\|"mfu":[^,]*\|"val_loss":[^,]*' "$OUT/gpt2-bf16.json" | tee -a "$SUMMARY"
fi
if want 8; then
    gpt_spec "$tmp/gpt2-2r.yaml" bf16 4
    step gpt2-two-ranks 600 orterun -x LD_LIBRARY_PATH -x PATH -x HETRUN_BACKEND_PATH -np 2 \
        hetrun run --report "$OUT/gpt2-two-ranks.json" "$tmp/gpt2-2r.yaml"
    grep -o '"allreduce":[^,]*\|"weights_equal_on_all_ranks":[^,]*' "$OUT/gpt2-two-ranks.json" | tee -a "$SUMMARY"
fi
echo "failures: $fails (logs in $OUT)" | tee -a "$SUMMARY"
exit "$fails"
