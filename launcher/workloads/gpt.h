/**
 * @file launcher/workloads/gpt.h
 * @brief A GPT-2-style decoder on a session's device, written only against catalogue
 *        ops: token + position embeddings, pre-LayerNorm blocks (causal multi-head
 *        attention on a fused QKV projection, GELU-tanh MLP 4x), final LayerNorm, LM head
 *        tied to the token embedding.
 *
 * Parameters carry Hugging Face GPT-2 names and layouts (linear weights stored in x out,
 * "transformer.h.<l>.attn.c_attn.weight" ...), so a checkpoint loads into PyTorch's
 * GPT2LMHeadModel. Flat layout (nn_model.h): block 0 .. block L-1, then the embeddings and
 * final LayerNorm; gradient buckets in completion order: block L-1 first, embeddings last.
 */
#ifndef HETRUN_WORKLOADS_GPT_H
#define HETRUN_WORKLOADS_GPT_H

#include <stdint.h>

#include "exec/session.h"
#include "workloads/nn_model.h"

/** Most transformer blocks. */
#define HETRUN_GPT_MAX_LAYERS 96
/** Parameter tensors per block, and outside the blocks. */
#define HETRUN_GPT_BLOCK_TENSORS 12
#define HETRUN_GPT_HEAD_TENSORS 4

typedef struct hetrun_gpt_config {
    int64_t layers, heads, width, context, vocab;
    /** dtype of the GEMM operands: HETRUN_F32 (0, the default), or HETRUN_BF16 / HETRUN_F16
     *  for mixed precision as PyTorch's autocast does it: every matrix product (the four
     *  linears of each block and the LM head, forward and backward) reads low-precision
     *  copies of its fp32 operands and accumulates into fp32; master weights, gradients,
     *  optimizer state, LayerNorm, attention, softmax and the loss stay fp32. */
    hetrun_dtype compute;
    /** Dropout probability (0: off) after the embeddings and on the attention-projection
     *  and MLP-output residual branches, as GPT-2 places it; applied only to a forward that
     *  follows hetrun_gpt_dropout_masks (training), never to evaluation or sampling. */
    double dropout;
} hetrun_gpt_config;

/** Device regions of one block's activations (byte offsets into the activation buffer). */
typedef struct hetrun_gpt_block_acts {
    uint64_t ln1, mean1, rstd1, qkv, atty, lse, ln2, mean2, rstd2, fc_pre, fc_act;
} hetrun_gpt_block_acts;

typedef struct hetrun_gpt {
    hetrun_gpt_config cfg;
    int64_t max_batch; /**< sequences per forward the activation buffers hold */
    int trainable;     /**< gradients and optimizer state allocated */
    int tensor_count;
    hetrun_param_tensor
        tensors[HETRUN_GPT_MAX_LAYERS * HETRUN_GPT_BLOCK_TENSORS + HETRUN_GPT_HEAD_TENSORS];
    hetrun_grad_bucket buckets[HETRUN_GPT_MAX_LAYERS + 1]; /**< completion order */
    uint64_t param_count;                  /**< floats of the flat buffer, padding included */
    uint64_t real_params;                  /**< parameters without padding */
    hetrun_buffer *params, *grads, *state; /**< state: AdamW M then V (2 x param_count) */
    hetrun_buffer *act;
    uint64_t act_bytes;
    hetrun_gpt_block_acts blk[HETRUN_GPT_MAX_LAYERS];
    uint64_t res;                         /**< 2L+1 residual streams of N x C, one after another */
    uint64_t lnf, meanf, rstdf;           /**< final LayerNorm */
    uint64_t logits, probs, loss;         /**< N x V, N x V, N; logits turn into dlogits backward */
    uint64_t dres, dln, dfc, dqkv, datty; /**< backward scratch */
    uint64_t ids, targets, pos;           /**< I32 N each */
    /** Mixed precision (cfg.compute != F32): the weights in the compute dtype, re-cast from
     *  the fp32 masters at every forward, and two regions of the activation buffer that
     *  receive a GEMM's activation operands cast to it (N x max(4C, V) elements each). */
    hetrun_buffer *lowp;
    uint64_t cast0, cast1;
    int64_t pos_len; /**< sequence length the position ids are laid out for (0: none) */
    /** Dropout (cfg.dropout > 0, trainable): 2L+1 masks of N x C (0 or 1/(1-p)) in the
     *  activation buffer, one per site (embeddings, then per block attention and MLP), made
     *  on the host in `drop_host`; `drop_on` while the masks belong to the next forward and
     *  its backward. */
    uint64_t drop;
    float *drop_host;
    int drop_on;
} hetrun_gpt;

/**
 * Lays out and allocates parameters, activations for `max_batch` sequences of
 * cfg.context tokens and, when `trainable`, zeroed gradients and AdamW state. Validates
 * the configuration (width divisible by heads...). Returns 0 or -1 (s->error).
 */
int hetrun_gpt_create(hetrun_session *s, hetrun_gpt *g, const hetrun_gpt_config *cfg,
                      int64_t max_batch, int trainable);
void hetrun_gpt_destroy(hetrun_session *s, hetrun_gpt *g);
/** GPT-2 initialisation: N(0, 0.02) weights, c_proj scaled by 1/sqrt(2L), zero biases,
 *  unit LayerNorm gains; from a seeded host generator. */
int hetrun_gpt_init_weights(hetrun_session *s, hetrun_gpt *g, uint64_t seed);

/** Tensor of the token ids and targets (I32, batch x T, row-major). */
hetrun_tensor hetrun_gpt_ids(const hetrun_gpt *g);
hetrun_tensor hetrun_gpt_targets(const hetrun_gpt *g);
/** Logits (N x V; valid after a forward, before backward) and per-token loss (N). */
hetrun_tensor hetrun_gpt_logits(const hetrun_gpt *g);
hetrun_tensor hetrun_gpt_loss(const hetrun_gpt *g);

/**
 * Forward of `batch` sequences of `T` tokens (T <= context) whose ids are in the ids
 * region; with targets, also softmax probabilities and the per-token loss.
 */
int hetrun_gpt_forward(hetrun_session *s, hetrun_gpt *g, int64_t batch, int64_t T,
                       int with_targets);

/**
 * Makes the dropout masks of the next training forward and its backward for `batch`
 * sequences of `T` tokens: the mask of sequence i depends only on keys[i], the site and
 * the element, so a caller that derives keys from (seed, step, global sequence index) gets
 * the same masks for any rank count, on resume and on every backend. No-op when
 * cfg.dropout is 0. Returns 0 or -1 (s->error).
 */
int hetrun_gpt_dropout_masks(hetrun_session *s, hetrun_gpt *g, int64_t batch, int64_t T,
                             const uint64_t *keys);

/** Called by backward when a bucket's gradients are complete (index into g->buckets). */
typedef int (*hetrun_gpt_bucket_fn)(hetrun_session *s, int bucket, void *ctx);

/**
 * Backward after a forward with targets: adds the gradients of scale * sum(loss) to the
 * gradient buffer (accumulates: zero it with hetrun_gpt_zero_grads once per step). When
 * `on_bucket` is set it is called as each bucket completes (data-parallel overlap).
 */
int hetrun_gpt_backward(hetrun_session *s, hetrun_gpt *g, int64_t batch, int64_t T, double scale,
                        hetrun_gpt_bucket_fn on_bucket, void *ctx);
int hetrun_gpt_zero_grads(hetrun_session *s, hetrun_gpt *g);

/** AdamW hyper-parameters; weight decay applies to 2-D tensors only (as nanoGPT). */
typedef struct hetrun_gpt_adamw {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t t; /**< step from 1 */
} hetrun_gpt_adamw;
int hetrun_gpt_step(hetrun_session *s, hetrun_gpt *g, const hetrun_gpt_adamw *o);

/** FLOPs per token of forward + backward counted the 6N way (cross-check of the op table):
 *  6 x non-embedding-position parameters + 12 x layers x width x T (attention). */
double hetrun_gpt_flops_per_token_estimate(const hetrun_gpt *g, int64_t T);

#endif
