#!/bin/bash
# Every GPU check of the CUDA backend in one run, for the lent GPU machine (device tool), which
# cannot build hetrun: build here with CUDA on, bundle, carry, run this there.
#
#   here:   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2
#           ../shared/gpu/make-bundle.sh build            # .gpu-bundle/, carried
#   device: source .gpu-bundle/env.sh && OUT=$OUT bench/cuda/device_check.sh   (repo root)
#
# Steps, each bounded by `timeout` and logged to <step>.log; $OUT gets only summary.txt and
# logs.tgz (all logs and reports), since the device tool brings back at most 8 files:
#   1. nvidia-smi, hetrun backends (the cuda module loads and lists the GPU);
#   2. conformance of every op x dtype against the CPU reference (hetrun conform, or the older
#      hetrun-conformance), and the CUDA op test;
#   3. compute-sanitizer memcheck on the op test (quick shapes);
#   4. the GPT against PyTorch's reference tensors on cuda: fp32, bf16 and fp16 mixed
#      precision (tests/gpt/reference.yaml);
#   5. GEMM through the ABI vs direct cuBLASLt, and dispatch cost (hetrun_bench_cuda);
#   6. fused attention forward + backward through the ABI (hetrun_attn_bench) vs PyTorch's
#      scaled_dot_product_attention, bf16, causal, batch 8, 16 heads, 2048 tokens, head dim
#      64 and 128, alternated, 2 rounds;
#   7. GPT-2 124M shape trained on fortunes for a few steps, bf16, 1 rank: tokens/s, MFU;
#   8. 2 ranks on the one GPU (NCCL refuses: the host-staged allreduce takes over);
#   9. all-MiniLM-L6-v2 (needs HETRUN_MODEL_DIR, a folder scripts/get-model.sh accepts: the
#      GPU machine has no registry, so the model is carried): tests/minilm/test_embed.sh on cuda
#      (cosine to sentence-transformers, fp32 / bf16 / fp16 and fused attention), then batch 256
#      bf16 sentences/s, hetrun vs plain PyTorch (bench/minilm/torch_ids_peer.py), 3 rounds.
# STEPS gives the steps in the order they run (default: correctness first, the slow sanitizer
# last); DEADLINE_S (seconds from the start) skips a step that cannot finish in time and cuts
# the last one's limit, so a bounded device call still brings its logs back.
# Exit 77 without a GPU; otherwise the number of failed steps.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$PWD/device-check-logs}
STEPS=${STEPS:-1 2 9 4 5 6 7 8 3}
DEADLINE_S=${DEADLINE_S:-0}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
LOG=$(mktemp -d) # every step's log and report, tarred into $OUT/logs.tgz at the end
tmp=$(mktemp -d)
trap 'tar -C "$LOG" -czf "$OUT/logs.tgz" . 2> /dev/null; rm -rf "$tmp" "$LOG"' EXIT
: > "$SUMMARY"
fails=0
if ! nvidia-smi > "$LOG/nvidia-smi.log" 2>&1; then
    echo "no GPU here (nvidia-smi failed): nothing to check" | tee -a "$SUMMARY"
    exit 77
fi
command -v hetrun > /dev/null || { echo "hetrun not on PATH: source .gpu-bundle/env.sh first"; exit 2; }
MOD=$HETRUN_BACKEND_PATH/libhetrun_backend_cuda.so
BIN=$(dirname "$(command -v hetrun)")

step() { # step NAME SECONDS CMD...: runs CMD under timeout, logs, records ok/FAIL/skipped
    local name=$1 limit=$2
    shift 2
    if [ "$DEADLINE_S" -gt 0 ]; then
        local left=$((DEADLINE_S - SECONDS))
        if [ "$left" -lt 15 ]; then echo "== $name: not run ($left s left)" | tee -a "$SUMMARY"; return 0; fi
        [ "$left" -lt "$limit" ] && limit=$left
    fi
    echo "== $name ($limit s): $*" | tee -a "$SUMMARY"
    timeout "$limit" "$@" > "$LOG/$name.log" 2>&1
    local rc=$?
    if [ $rc -eq 0 ]; then echo "   ok" | tee -a "$SUMMARY"
    elif [ $rc -eq 77 ]; then echo "   skipped" | tee -a "$SUMMARY"
    else echo "   FAIL rc=$rc (last lines below)" | tee -a "$SUMMARY"; tail -5 "$LOG/$name.log" | tee -a "$SUMMARY"; fails=$((fails + 1)); fi
    return $rc
}
step1() { step backends 60 hetrun backends; grep -E "^cuda" "$LOG/backends.log" | tee -a "$SUMMARY"; }
step2() {
    if hetrun conform --help > /dev/null 2>&1; then
        step conform 300 hetrun conform --backend cuda --format table
    else
        step conform 300 "$BIN/hetrun-conformance" --backend cuda --verbose
    fi
    [ -x "$BIN/test_cuda_ops" ] && step op-test 300 "$BIN/test_cuda_ops" "$MOD"
}
step3() {
    local san
    san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    # API errors are not counted: NCCL's initialisation probes kernels this GPU has no image for
    # (cudaErrorNoKernelImageForDevice, 8 reports on an H200) and carries on; the op test checks
    # every status hetrun's calls return.
    step memcheck 600 "$san" --tool memcheck --report-api-errors no --error-exitcode 3 \
        "$BIN/test_cuda_ops" "$MOD" --quick
}
step4() {
    for p in fp32 bf16 fp16; do
        sed "s|reference: ../data/gpt|reference: $ROOT/tests/data/gpt\n        precision: $p|" \
            "$ROOT/tests/gpt/reference.yaml" > "$tmp/ref-$p.yaml"
        step "gpt-reference-$p" 120 hetrun run --backend cuda --report "$LOG/gpt-reference-$p.json" \
            "$tmp/ref-$p.yaml"
        grep "gpt reference" "$LOG/gpt-reference-$p.log" | tee -a "$SUMMARY"
    done
}
step5() { step bench-gemm 180 "$BIN/hetrun_bench_cuda" "$MOD" 20; }
step6() { # alternated: hetrun's fused attention, then PyTorch's SDPA, same shape and dtype
    [ -x "$BIN/hetrun_attn_bench" ] || return 0
    for d in 64 128; do
        for r in 1 2; do
            step "attention-d$d-hetrun-$r" 60 env ATTN_BENCH_DTYPE=bf16 "$BIN/hetrun_attn_bench" \
                "$MOD" 1 attention 8 16 2048 "$d" 1 10
            step "attention-d$d-torch-$r" 60 python3 "$ROOT/bench/cpu_attention/torch_peer.py" \
                1 8 16 2048 "$d" 1 10 cuda bf16
        done
    done
    grep -H -E "attention_fwd_bwd|torch_sdpa" "$LOG"/attention-*.log | sed "s|$LOG/||" |
        tee -a "$SUMMARY"
}
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
step7() {
    gpt_spec "$tmp/gpt2.yaml" bf16 10
    step gpt2-bf16 180 hetrun run --report "$LOG/gpt2-bf16.json" "$tmp/gpt2.yaml"
    grep -o '"tokens_per_s":[^,]*\|"mfu":[^,]*\|"val_loss":[^,]*' "$LOG/gpt2-bf16.json" | tee -a "$SUMMARY"
}
step8() {
    gpt_spec "$tmp/gpt2-2r.yaml" bf16 4
    step gpt2-two-ranks 180 orterun -x LD_LIBRARY_PATH -x PATH -x HETRUN_BACKEND_PATH -np 2 \
        hetrun run --report "$LOG/gpt2-two-ranks.json" "$tmp/gpt2-2r.yaml"
    grep -o '"allreduce":[^,]*\|"weights_equal_on_all_ranks":[^,]*' "$LOG/gpt2-two-ranks.json" | tee -a "$SUMMARY"
}
step9() {
    if [ -z "${HETRUN_MODEL_DIR:-}" ]; then
        echo "== minilm: not run (HETRUN_MODEL_DIR not set: carry the model)" | tee -a "$SUMMARY"
        return 0
    fi
    step minilm-embed 240 "$ROOT/tests/minilm/test_embed.sh" "$(command -v hetrun)" "$ROOT" cuda \
        "fp32 bf16 fp16" fused
    grep -E "^cuda |FAIL" "$LOG/minilm-embed.log" | tee -a "$SUMMARY"
    cat > "$tmp/embed256.yaml" <<YAML
version: 1
job: {name: minilm-batch256}
backend: cuda
workloads:
  - embed: {model: $HETRUN_MODEL_DIR, input: $ROOT/tests/data/minilm/sentences.txt, dtype: bf16,
            batch_sizes: [256], warmup: 3, iterations: 50}
YAML
    local ref=$ROOT/tests/data/minilm/embeddings_f32.npy
    for r in 1 2 3; do
        step "minilm-hetrun-$r" 120 hetrun run -q --report "$LOG/minilm-hetrun-$r.json" "$tmp/embed256.yaml" &&
            python3 -c "
import json,sys
b=json.load(open(sys.argv[1]))['ranks'][0]['results'][0]['batches'][0]
print('hetrun cuda bf16 batch 256 p50_ms %.3f sentences_per_s %.1f' % (b['latency_ms_p50'], b['sentences_per_s']))" \
                "$LOG/minilm-hetrun-$r.json" | tee -a "$SUMMARY"
        step "minilm-torch-$r" 120 python3 "$ROOT/bench/minilm/torch_ids_peer.py" "$HETRUN_MODEL_DIR" \
            "$ROOT/tests/data/minilm/ids.txt" cuda bf16 256 50 "$ref"
        tail -1 "$LOG/minilm-torch-$r.log" | tee -a "$SUMMARY"
        ref=""
    done
}
for s in $STEPS; do
    case $s in [1-9]) "step$s" ;; *) echo "unknown step '$s' (1-9)" | tee -a "$SUMMARY" ;; esac
done
echo "failures: $fails (logs in $OUT/logs.tgz)" | tee -a "$SUMMARY"
exit "$fails"
