/**
 * @file launcher/workloads/nn_checkpoint.h
 * @brief Checkpoints of a named-tensor model (nn_model.h) as safetensors files:
 *        every parameter under its own name, the optimizer state as PyTorch names it
 *        (AdamW: "optimizer.exp_avg.<name>" and "optimizer.exp_avg_sq.<name>"; SGD:
 *        "optimizer.momentum_buffer.<name>"), extra tensors (an MLP's feature moments),
 *        training state in __metadata__ (step, config hash, model), a CRC32 of the data in
 *        __metadata__.
 *        Written atomically as dir/ckpt-<step, 12 digits>.safetensors; PyTorch reads them
 *        with safetensors.torch.load_file.
 */
#ifndef HETRUN_WORKLOADS_NN_CHECKPOINT_H
#define HETRUN_WORKLOADS_NN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "workloads/nn_model.h"

/** Most extra (non-parameter) tensors of a checkpoint. */
#define HETRUN_NN_CKPT_MAX_EXTRA 2

/** A 1-D fp32 tensor stored beside the parameters (written; not read back on resume). */
typedef struct hetrun_nn_ckpt_extra {
    const char *name;
    const float *data;
    int64_t count;
} hetrun_nn_ckpt_extra;

/** What a checkpoint holds besides the tensors (all strings in __metadata__). */
typedef struct hetrun_nn_ckpt_meta {
    int64_t step;
    char config_sha256[65];
    char model[128]; /**< e.g. "gpt layers=2 heads=4 width=64 context=32 vocab=256" */
    int64_t vocab;   /**< written and checked when > 0 */
    int state_slots; /**< optimizer state: 1 (SGD momentum) or 2 (AdamW moments) */
    int extra_count;
    hetrun_nn_ckpt_extra extra[HETRUN_NN_CKPT_MAX_EXTRA];
    /** fp16 loss-scaler state ("scale=S good=G skipped=K"), "" when unused: written as
     *  __metadata__ "loss_scaler" and read back, so a resumed fp16 run scales as before. */
    char loss_scaler[96];
} hetrun_nn_ckpt_meta;

/**
 * Writes parameters (`params`, flat layout) and optimizer state (`state`: meta->state_slots
 * slots of param_count floats, AdamW's M then V) of `tensors` into dir (created with its parents if
 * missing), then deletes the oldest checkpoints so at most `keep` remain. Returns 0 or -1 (err
 * names the path and cause).
 */
int hetrun_nn_ckpt_write(const char *dir, const hetrun_param_tensor *tensors, int count,
                         uint64_t param_count, const float *params, const float *state,
                         const hetrun_nn_ckpt_meta *meta, int64_t keep, char *err, size_t err_len);

/**
 * Loads the newest checkpoint of `dir` that verifies (CRC, step, every tensor present with the
 * model's shape and finite) into params/state (meta->state_slots slots) (flat layout; padding left
 * untouched). Files that fail are skipped with a warning. Returns 1 (loaded; path in path_out), 0
 * (no checkpoint), or -1 (every one present is invalid, or the newest is for another
 * vocabulary/model: err). A folder holding only checkpoints of the MLP's former binary format
 * (ckpt-*.bin) is refused naming the file and its format.
 */
int hetrun_nn_ckpt_load_newest(const char *dir, const hetrun_param_tensor *tensors, int count,
                               uint64_t param_count, float *params, float *state,
                               hetrun_nn_ckpt_meta *meta, char *path_out, size_t path_len,
                               char *err, size_t err_len);

#endif
