# Shared by the GPT training tests: the small model (1 block, width 32, context 16, byte
# vocabulary) on corpus.txt in the working folder, and reading one field of a report.
# small_gpt_spec NAME TRAIN_KEYS CHECKPOINT_BLOCK VOCAB GPT_KEYS STEPS [TEXT_KEYS] writes
# NAME.yaml (TEXT_KEYS, e.g. ", tokenizer: bpe", also names another token file).
small_gpt_spec() {
    cat > "$1.yaml" <<YAML
version: 1
job: {name: gpt-$1}
backend: cpu
seed: 5
$3
workloads:
  - train:
      model: gpt
      gpt: {layers: 1, heads: 2, width: 32, context: 16, vocab: $4, batch_tokens: 256,
            micro_batch: 4, eval_tokens: 2048, sample_tokens: 0$5}
      text: {corpus: [corpus.txt], tokens: corpus${7:+-bpe}.tok, val_fraction: 0.1${7:-}}
      lr: 0.01
      warmup_steps: 2
      schedule: cosine
      weight_decay: 0.1
      steps: $6
      log_every: 1
$2
YAML
}
field() { grep -o "\"$2\":\s*[^,}]*" "$1" | head -1 | sed 's/.*:\s*//; s/"//g'; }
