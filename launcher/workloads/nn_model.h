/**
 * @file launcher/workloads/nn_model.h
 * @brief What every trainable model exposes to the train workload: named parameter
 *        tensors (dtype, shape, place in one flat fp32 buffer), and one flat gradient
 *        buffer of the same layout, so checkpoints, the data-parallel allreduce and the
 *        optimizer are model-agnostic.
 *
 * A model keeps every parameter in one device buffer, tensor after tensor, each
 * starting on a 64-float boundary (OpenCL sub-buffer alignment); padding stays zero.
 * `buckets` split the flat buffer into contiguous ranges whose gradients complete
 * together during backward (a transformer block, the embeddings), in the order they
 * complete, so the allreduce of one can be issued while backward still runs.
 */
#ifndef HETRUN_WORKLOADS_NN_MODEL_H
#define HETRUN_WORKLOADS_NN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "hetrun/ops.h"

/** Longest tensor name ("transformer.h.11.attn.c_attn.weight" fits). */
#define HETRUN_TENSOR_NAME_MAX 64
/** Most dimensions of a parameter tensor. */
#define HETRUN_TENSOR_MAX_DIMS 4

/** One named parameter tensor of a model. */
typedef struct hetrun_param_tensor {
    char name[HETRUN_TENSOR_NAME_MAX];
    hetrun_dtype dtype; /**< of the master copy (fp32) */
    int ndim;
    int64_t shape[HETRUN_TENSOR_MAX_DIMS];
    uint64_t offset; /**< elements into the flat parameter buffer */
    uint64_t count;  /**< elements (product of shape) */
} hetrun_param_tensor;

/** A contiguous range of the flat buffer whose gradients complete together. */
typedef struct hetrun_grad_bucket {
    uint64_t offset, count; /**< elements */
} hetrun_grad_bucket;

/** Rounds an element count up to the parameter alignment (64 floats). */
static inline uint64_t hetrun_param_align(uint64_t n) {
    return (n + 63u) / 64u * 64u;
}

#endif
