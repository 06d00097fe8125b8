/**
 * @file launcher/workloads/train_gpt.h
 * @brief The spec sections of the train workload's GPT (`model: gpt`): `gpt:` (shape and
 *        language-model training knobs) and `text:` (corpus and token file). The model
 *        itself, over a memory-mapped token file, is hetrun_train_gpt (train_model.h).
 */
#ifndef HETRUN_WORKLOADS_TRAIN_GPT_H
#define HETRUN_WORKLOADS_TRAIN_GPT_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "exec/session.h"
#include "spec/schema.h"

typedef struct hetrun_gpt_params {
    int64_t layers, heads, width, context, vocab;
    int64_t batch_tokens; /**< global batch in tokens per optimizer step */
    int64_t micro_batch;  /**< sequences per forward on one rank (gradient accumulation) */
    double grad_clip;     /**< global gradient-norm limit, 0: none */
    int64_t eval_every, eval_tokens, sample_tokens;
    double temperature;
    double max_val_loss; /**< check: final validation loss must be at most this (0: none) */
    char *loss_csv;      /**< loss curve CSV path (rank 0), or NULL */
    char *reference;     /**< folder of PyTorch reference tensors: check instead of train */
    int precision;       /**< ::hetrun_dtype of the GEMM operands (fp32, bf16, fp16) */
    double loss_scale;   /**< fp16: initial dynamic loss scale */
    double dropout;      /**< dropout probability in training (0: off) */
} hetrun_gpt_params;

typedef struct hetrun_text_params {
    hetrun_string_list corpus; /**< UTF-8 text files, tokenised when `tokens` is missing */
    char *tokens;              /**< token file (tokens.h) */
    double val_fraction;       /**< tail of the token stream held out */
    int tokenizer;             /**< 0: bytes, 1: bpe (trained on the corpus) */
    int64_t bpe_vocab;         /**< bpe: vocabulary to train up to */
} hetrun_text_params;

extern const hetrun_schema hetrun_gpt_schema, hetrun_text_schema;

#endif
