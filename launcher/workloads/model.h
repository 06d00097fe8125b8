/**
 * @file launcher/workloads/model.h
 * @brief A multi-layer perceptron on a session's device, written only against catalogue
 *        ops: forward, backward into one flat gradient buffer, and the optimizer step.
 *
 * Layout: every parameter lives in one device buffer, layer by layer W_l (in x out,
 * row-major, so a forward GEMM is X W with no transpose) then b_l (out), each region
 * starting on a 64-float boundary (OpenCL sub-buffer alignment); the gradient buffer has
 * the same layout, so the data-parallel allreduce and the optimizer are one call each.
 * Padding stays zero in weights, gradients and optimizer state.
 */
#ifndef HETRUN_WORKLOADS_MODEL_H
#define HETRUN_WORKLOADS_MODEL_H

#include <stdint.h>

#include "exec/session.h"

/** Most linear layers a model may have. */
#define HETRUN_MLP_MAX_LAYERS 16

/** Shape: dims[0] features, dims[1..layers-1] hidden widths, dims[layers] classes. */
typedef struct hetrun_mlp_shape {
    int32_t layers; /**< linear layers (hidden count + 1) */
    int32_t act;    /**< ::hetrun_activation between layers */
    int64_t dims[HETRUN_MLP_MAX_LAYERS + 1];
} hetrun_mlp_shape;

/** Spec names of the MLP's activations, indexed by ::hetrun_activation (relu, gelu), NULL-ended:
 *  the one list the train and infer schemas share. */
extern const char *const hetrun_mlp_activation_names[];

/** Optimizers (values are stored in checkpoints). */
typedef enum hetrun_optimizer { HETRUN_OPT_SGD = 0, HETRUN_OPT_ADAMW = 1 } hetrun_optimizer;

typedef struct hetrun_mlp {
    hetrun_mlp_shape shape;
    int optimizer; /**< ::hetrun_optimizer, or -1: inference only (no grads/state) */
    int64_t rows;  /**< largest batch the activation buffers hold */
    uint64_t w_off[HETRUN_MLP_MAX_LAYERS], b_off[HETRUN_MLP_MAX_LAYERS]; /**< float offsets */
    uint64_t param_count; /**< floats in the flat parameter buffer, padding included */
    uint64_t state_count; /**< floats of optimizer state (1x or 2x param_count) */
    hetrun_buffer *params, *grads, *state; /**< state: V (sgd) or M then V (adamw) */
    hetrun_buffer *act; /**< Z_l, A_l per layer, two scratch, probs, loss, labels, input */
    uint64_t act_bytes;
    uint64_t z_off[HETRUN_MLP_MAX_LAYERS + 1], a_off[HETRUN_MLP_MAX_LAYERS + 1]; /**< bytes */
    uint64_t d_off[2], probs_off, loss_off, labels_off; /**< bytes into act */
    int fused; /**< each layer one GEMM_BIAS_ACT (the backend supports it for every layer) */
} hetrun_mlp;

/** Parameter floats of `shape` in the padded flat layout. */
uint64_t hetrun_mlp_param_count(const hetrun_mlp_shape *shape);
/** Writes "64-128-10 relu"-style text. */
void hetrun_mlp_shape_text(const hetrun_mlp_shape *shape, char *out, size_t len);

/**
 * Allocates device buffers for `shape`, activations for batches up to `rows`, and (when
 * optimizer >= 0) gradients and zeroed optimizer state. Weights are uninitialised: call
 * hetrun_mlp_init_weights or hetrun_mlp_set_params. Returns 0 or -1 (s->error).
 */
int hetrun_mlp_create(hetrun_session *s, hetrun_mlp *m, const hetrun_mlp_shape *shape,
                      int optimizer, int64_t rows);
/** Frees every buffer (safe on a partly created model). */
void hetrun_mlp_destroy(hetrun_session *s, hetrun_mlp *m);
/** He-normal weights (std sqrt(2/in)), zero biases, from a seeded host generator. */
int hetrun_mlp_init_weights(hetrun_session *s, hetrun_mlp *m, uint64_t seed);
/** Copies param_count floats to / from the device parameter buffer. */
int hetrun_mlp_set_params(hetrun_session *s, hetrun_mlp *m, const float *host);
int hetrun_mlp_get_params(hetrun_session *s, hetrun_mlp *m, float *host);
/** Copies state_count floats to / from the optimizer state buffer. */
int hetrun_mlp_set_state(hetrun_session *s, hetrun_mlp *m, const float *host);
int hetrun_mlp_get_state(hetrun_session *s, hetrun_mlp *m, float *host);

/**
 * Forward pass of `rows` samples already in the input region (hetrun_mlp_input). With
 * labels (already in the labels region) it also computes probs and per-row loss via the
 * fused softmax + cross-entropy; without, it leaves logits in Z_L (probs when
 * `softmax` is set). Returns 0 or -1.
 */
int hetrun_mlp_forward(hetrun_session *s, hetrun_mlp *m, int64_t rows, int with_labels,
                       int softmax);
/** Called by backward when layer `layer`'s gradients (W then b, contiguous) are complete. */
typedef int (*hetrun_mlp_layer_fn)(hetrun_session *s, int layer, void *ctx);

/**
 * Backward pass after a labelled forward: gradients of sum(loss) * `scale` into the grad
 * buffer (overwritten). Use scale = 1 / global batch for a data-parallel mean. When `done`
 * is set it is called as each layer completes, the last layer first.
 */
int hetrun_mlp_backward(hetrun_session *s, hetrun_mlp *m, int64_t rows, double scale,
                        hetrun_mlp_layer_fn done, void *ctx);

/** Optimizer hyper-parameters for one step. */
typedef struct hetrun_opt_step {
    double lr, momentum, weight_decay, beta1, beta2, eps;
    int64_t t; /**< step number, from 1 (AdamW bias correction) */
} hetrun_opt_step;
/** One optimizer op over the whole flat parameter buffer. */
int hetrun_mlp_step(hetrun_session *s, hetrun_mlp *m, const hetrun_opt_step *o);

/** Tensor of the input rows (rows x dims[0] fp32) and labels (rows int32). */
hetrun_tensor hetrun_mlp_input(const hetrun_mlp *m);
hetrun_tensor hetrun_mlp_labels(const hetrun_mlp *m);
/** Tensor of the output (logits or probs, rows x classes) and per-row loss. */
hetrun_tensor hetrun_mlp_output(const hetrun_mlp *m, int probs);
hetrun_tensor hetrun_mlp_loss(const hetrun_mlp *m);

#endif
