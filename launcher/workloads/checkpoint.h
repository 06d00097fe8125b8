/**
 * @file launcher/workloads/checkpoint.h
 * @brief MLP checkpoints as the infer workload reads them: shape, step, weights and
 *        feature moments, verified.
 *
 * The train driver writes named-tensor checkpoints (nn_checkpoint.h):
 * `ckpt-<step, 12 digits>.safetensors` with __metadata__ model "mlp 64-32-10 relu",
 * tensors layers.<l>.weight (in x out), layers.<l>.bias, data.feature_mean and
 * data.feature_std. The former binary format is still read (`ckpt-<step>.bin`,
 * little-endian, version 1): the 8-byte magic "HTRNCKP1", a fixed header
 * (::hetrun_ckpt_header), feature mean[features], std[features], params[param_count],
 * state[state_count] (fp32), then the CRC32 (zlib) of every preceding byte.
 */
#ifndef HETRUN_WORKLOADS_CHECKPOINT_H
#define HETRUN_WORKLOADS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "workloads/model.h"

/** Fixed header after the magic (fields are naturally aligned; no padding). */
typedef struct hetrun_ckpt_header {
    uint32_t version;       /**< 1 */
    int32_t optimizer;      /**< ::hetrun_optimizer */
    hetrun_mlp_shape shape; /**< model shape */
    uint64_t param_count;   /**< floats of params */
    uint64_t state_count;   /**< floats of optimizer state */
    int64_t step;           /**< optimizer steps done */
    int64_t nranks;         /**< ranks of the run that wrote it (informational) */
    uint64_t rng_state;     /**< shuffle generator state at the start of the epoch */
    char config_sha256[65]; /**< hex hash of what determines the trajectory */
    char spec_sha256[65];   /**< hex hash of the spec file (provenance only) */
    char reserved[6];
} hetrun_ckpt_header;

/** Largest checkpoint file read (the whole file is held in memory to check its CRC). */
#define HETRUN_CKPT_MAX_BYTES (64ull << 30)

/** A checkpoint in host memory. */
typedef struct hetrun_ckpt {
    hetrun_ckpt_header h;
    float *mean, *std; /**< shape.dims[0] each */
    float *params;     /**< h.param_count */
    float *state;      /**< h.state_count (may be NULL when 0) */
} hetrun_ckpt;

/**
 * Creates `dir` and its missing parents (mkdir -p), so `${SCRATCH}/ckpt/${SLURM_JOB_ID}`
 * works on a node where none of it exists yet. Returns 0 or -1 (err names the part refused).
 */
int hetrun_ckpt_mkdirs(const char *dir, char *err, size_t err_len);

/**
 * Reads and verifies one regular file. A .safetensors file: CRC32, model text, every tensor
 * with its shape and finite (optimizer state is not read: state NULL, state_count 0). A
 * .bin file: magic, CRC32, then every header field in range (version, shape, optimizer,
 * step >= 0, ranks, counts matching the file size, hashes) and every stored float finite.
 * Feature std > 0 in both. Returns 0, or -1 with a message naming the
 * file and the field or value refused.
 */
int hetrun_ckpt_read(const char *path, hetrun_ckpt *c, char *err, size_t err_len);
/**
 * Finds checkpoints in `dir`, newest first, and reads the first that verifies. Files that
 * fail verification are skipped with a warning. Returns 1 when one was loaded (path in
 * `path_out`), 0 when the directory holds no checkpoint (or does not exist), -1 when
 * every checkpoint present is invalid (err names the newest file and its mismatch).
 */
int hetrun_ckpt_load_newest(const char *dir, hetrun_ckpt *c, char *path_out, size_t path_len,
                            char *err, size_t err_len);
/** Frees the arrays of `c`. */
void hetrun_ckpt_free(hetrun_ckpt *c);

#endif
