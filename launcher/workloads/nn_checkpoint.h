/**
 * @file launcher/workloads/nn_checkpoint.h
 * @brief Checkpoints of a named-tensor model (nn_model.h) as safetensors files:
 *        every parameter under its own name, AdamW's moments as
 *        "optimizer.exp_avg.<name>" and "optimizer.exp_avg_sq.<name>", training state in
 *        __metadata__ (step, config hash, shape), a CRC32 of the data in __metadata__.
 *        Written atomically as dir/ckpt-<step, 12 digits>.safetensors; PyTorch reads them
 *        with safetensors.torch.load_file.
 */
#ifndef HETRUN_WORKLOADS_NN_CHECKPOINT_H
#define HETRUN_WORKLOADS_NN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "workloads/nn_model.h"

/** What a checkpoint holds besides the tensors (all strings in __metadata__). */
typedef struct hetrun_nn_ckpt_meta {
    int64_t step;
    char config_sha256[65];
    char model[128]; /**< e.g. "gpt layers=2 heads=4 width=64 context=32 vocab=256" */
    int64_t vocab;
    /** fp16 loss-scaler state ("scale=S good=G skipped=K"), "" when unused: written as
     *  __metadata__ "loss_scaler" and read back, so a resumed fp16 run scales as before. */
    char loss_scaler[96];
} hetrun_nn_ckpt_meta;

/**
 * Writes parameters (`params`, flat layout) and AdamW state (`state`: M then V, each
 * param_count floats) of `tensors` into dir (created with its parents if missing), then deletes the
 * oldest checkpoints so at most `keep` remain. Returns 0 or -1 (err names the path and cause).
 */
int hetrun_nn_ckpt_write(const char *dir, const hetrun_param_tensor *tensors, int count,
                         uint64_t param_count, const float *params, const float *state,
                         const hetrun_nn_ckpt_meta *meta, int64_t keep, char *err, size_t err_len);

/**
 * Loads the newest checkpoint of `dir` that verifies (CRC, every tensor present with the
 * model's shape) into params/state (flat layout; padding left untouched). Files that fail
 * are skipped with a warning. Returns 1 (loaded; path in path_out), 0 (no checkpoint), or
 * -1 (every one present is invalid, or the newest is for another vocabulary/model: err).
 */
int hetrun_nn_ckpt_load_newest(const char *dir, const hetrun_param_tensor *tensors, int count,
                               uint64_t param_count, float *params, float *state,
                               hetrun_nn_ckpt_meta *meta, char *path_out, size_t path_len,
                               char *err, size_t err_len);

#endif
