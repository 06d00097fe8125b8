/**
 * @file hetrun/ops.h
 * @brief The op catalogue as it crosses the ABI: op kinds, dtypes and the descriptor.
 *
 * Ops are dispatched by descriptor, never by kernel name, so a vendor maps them onto
 * its own library (cuBLAS, aclnn, CNNL, clBLAS...). All matrices are row-major. Unless
 * an op says otherwise, a "matrix" op works on an m x n matrix and an "elementwise" op
 * on m * n contiguous elements. Operands (`args`) come in the order listed for each op;
 * their count is hetrun_op_arity(). FLOP and byte counts, and the reference semantics
 * in plain C, live in kernels/catalogue.c (one place for everyone).
 *
 * ## ABI 1.1 (appended)
 * Ops 17-26 (GEMM epilogue, attention, layernorm/softmax/embedding backward, checks) and
 * the descriptor fields from `batch` on are new in 1.1. The launcher never sends a 1.1 op
 * kind, nor a batched GEMM, to a module that declares ABI minor 0: it runs a batched GEMM
 * on such a module as one call per batch entry. A 1.1 module must read the 1.1 fields only
 * when `desc->struct_size` covers them (HETRUN_OP_DESC_SIZE_V1_1).
 *
 * ## Optional operands
 * An operand documented as optional is used only when the descriptor flag named with it is
 * set; otherwise its tensor is ignored and may have a NULL buffer.
 *
 * ## Attention layout
 * Q, K, V, O and their gradients are "BSHD": element (b, token i, head h, d) of Q is at
 * b * stride_a + i * lda + h * k + d (K and V use stride_b/ldb, O and dO stride_c/ldc).
 * Row strides of 0 mean packed (heads * k); batch strides of 0 mean packed (rows * ld).
 * This lets Q, K and V be read straight out of one fused QKV projection [B, L, 3, H, D]
 * (ld = 3 * H * D) and O be written straight into the [B, L, H * D] input of the output
 * projection: no permute copies. dQ uses Q's strides, dK and dV K's, dO O's.
 */
#ifndef HETRUN_OPS_H
#define HETRUN_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Element types. Values are stable ABI; new ones are appended (< HETRUN_MAX_DTYPES). */
typedef enum hetrun_dtype {
    HETRUN_F32 = 0,
    HETRUN_F64 = 1,
    HETRUN_F16 = 2,  /**< IEEE binary16 */
    HETRUN_BF16 = 3, /**< bfloat16 */
    HETRUN_I8 = 4,
    HETRUN_I32 = 5,
    HETRUN_DTYPE_COUNT = 6
} hetrun_dtype;

/** Op kinds. Values are stable ABI; new ones are appended. */
typedef enum hetrun_op_kind {
    /** C = alpha * op(A) * op(B) + beta * C. args: A, B, C.
     *  op(A) is m x k, op(B) is k x n, C is m x n; lda/ldb/ldc are row strides in
     *  elements of the stored (untransposed) matrices (0 = packed). `dtype` is the type
     *  of A and B, `out_dtype` the type of C: F32/F32, F64/F64, F16/F16, F16/F32,
     *  BF16/BF16, BF16/F32 (accumulate in f32), I8/I32 (accumulate in i32, alpha=1,
     *  beta in {0,1}). Flags: TRANS_A, TRANS_B, ALLOW_TF32. */
    HETRUN_OP_GEMM = 0,
    /** Y[i,j] = X[i,j] + bias[j]. args: X (m x n), bias (n), Y (m x n; may alias X). */
    HETRUN_OP_BIAS_ADD = 1,
    /** Y = act(X), elementwise, `act` from ::hetrun_activation. args: X, Y (may alias). */
    HETRUN_OP_ACT_FORWARD = 2,
    /** dX = dY * act'(X), elementwise. args: X (forward input), dY, dX (may alias dY). */
    HETRUN_OP_ACT_BACKWARD = 3,
    /** Row-wise softmax, numerically stable. args: X (m x n), Y (m x n). */
    HETRUN_OP_SOFTMAX = 4,
    /** Softmax + cross-entropy forward. args: logits (m x n), labels (m, I32 in [0,n)),
     *  probs (m x n, softmax of logits), loss (m: -log probs[i, label[i]], computed as
     *  logsumexp(row) - logit[label] for stability). */
    HETRUN_OP_XENT_FORWARD = 5,
    /** Softmax + cross-entropy backward. args: probs (m x n), labels (m, I32),
     *  dlogits (m x n) = alpha * (probs - onehot(labels)); alpha is usually 1/batch. */
    HETRUN_OP_XENT_BACKWARD = 6,
    /** Y = (X - mean_row) / sqrt(var_row + eps) * gamma + beta, per row; eps = p[0].
     *  args: X (m x n), gamma (n), beta (n), Y (m x n). */
    HETRUN_OP_LAYERNORM = 7,
    /** out[j] = alpha * sum_i X[i,j] + beta * out[j]. args: X (m x n), out (n). */
    HETRUN_OP_REDUCE_SUM_AXIS0 = 8,
    /** out[i] = alpha * sum_j X[i,j] + beta * out[i]. args: X (m x n), out (m). */
    HETRUN_OP_REDUCE_SUM_AXIS1 = 9,
    /** Y = alpha * X, elementwise. args: X, Y (may alias). */
    HETRUN_OP_SCALE = 10,
    /** Y = alpha * X + Y, elementwise. args: X, Y. */
    HETRUN_OP_AXPY = 11,
    /** Z = X * Y, elementwise. args: X, Y, Z (may alias X or Y). */
    HETRUN_OP_MUL = 12,
    /** Y = alpha, elementwise. args: Y. */
    HETRUN_OP_FILL = 13,
    /** SGD with momentum (PyTorch semantics). args: W, G, V (all m*n).
     *  d = G + wd * W; V = momentum * V + d; W = W - lr * V.
     *  p[0] = lr, p[1] = momentum, p[2] = weight decay (wd). */
    HETRUN_OP_SGD_MOMENTUM = 14,
    /** AdamW (decoupled weight decay, PyTorch semantics). args: W, G, M, V (all m*n).
     *  W -= lr*wd*W; M = b1*M + (1-b1)*G; V = b2*V + (1-b2)*G^2;
     *  W -= lr * (M/(1-b1^t)) / (sqrt(V/(1-b2^t)) + eps).
     *  p[0] = lr, p[1] = b1, p[2] = b2, p[3] = eps, p[4] = wd, p[5] = step t (>= 1). */
    HETRUN_OP_ADAMW = 15,
    /** Y = (out_dtype) X, elementwise, round to nearest even. args: X (dtype), Y
     *  (out_dtype). Pairs: F32<->F16, F32<->BF16, F32<->F64. */
    HETRUN_OP_CAST = 16,

    /* ---- ABI 1.1 ---- */

    /** C = act(alpha * op(A) * op(B) + beta * C + bias[j]), the GEMM with a fused
     *  epilogue. args: A, B, bias (n, out_dtype; optional: HETRUN_OP_HAS_BIAS), C (m x n,
     *  out_dtype, ldc), aux (m x n packed, out_dtype; optional: HETRUN_OP_HAS_AUX; receives
     *  the pre-activation value, which ACT_BACKWARD needs). Shapes, strides, flags and dtype pairs
     * as GEMM (float types only); `act` from ::hetrun_activation (HETRUN_ACT_IDENTITY for bias
     * only). Not batched. aux and C never alias. */
    HETRUN_OP_GEMM_BIAS_ACT = 17,
    /** Scaled-dot-product attention, forward. args: Q, K, V, mask, O, lse.
     *  batch = B, heads = H, m = Lq (query tokens), n = Lk (key tokens), k = D (head dim);
     *  layout as in "Attention layout" above. S = alpha * Q K^T per (b, h) (alpha is the
     *  softmax scale, usually 1/sqrt(D)); masked scores are -inf; P = softmax(S) over keys;
     *  O = P V. mask (optional, I32, B x Lk packed, nonzero = key kept) is read only with
     *  HETRUN_OP_KEY_PADDING_MASK; HETRUN_OP_CAUSAL keeps key j for query i iff
     *  j <= i + (Lk - Lq). lse (F32, B x H x Lq packed) = log(sum over kept keys of
     *  exp(S)): the softmax statistics backward needs. A query with no kept key gets O = 0
     *  and lse = -inf. dtype: F32, F16 or BF16 for Q, K, V, O (out_dtype == dtype);
     *  backends accumulate in F32 at least. No operand aliases another. */
    HETRUN_OP_ATTENTION_FORWARD = 18,
    /** Attention backward. args: Q, K, V, mask, O, dO, lse, dQ, dK, dV. Fields, flags,
     *  layout and dtypes as ATTENTION_FORWARD (lse from it); dQ, dK, dV are overwritten
     *  (not accumulated). dQ/dK/dV may share one fused buffer (like QKV) but never alias
     *  an input. Backends may ask for workspace (e.g. rowsum(dO * O)). */
    HETRUN_OP_ATTENTION_BACKWARD = 19,
    /** LayerNorm forward for training: as LAYERNORM, also writing the row statistics.
     *  args: X (m x n), gamma (n), beta (n), Y (m x n), mean (m, F32), rstd (m, F32:
     *  1/sqrt(var + eps)); eps = p[0]. */
    HETRUN_OP_LAYERNORM_FORWARD = 20,
    /** LayerNorm backward. args: X (m x n), gamma (n), mean (m, F32), rstd (m, F32),
     *  dY (m x n), dX (m x n), dgamma (n), dbeta (n).
     *  dX = computed + beta * dX; dgamma and dbeta = computed + p[1] * old value
     *  (beta and p[1] each 0 or 1: 1 accumulates, e.g. into a residual gradient or over
     *  micro-batches; 0 must not read the old value). */
    HETRUN_OP_LAYERNORM_BACKWARD = 21,
    /** Row-wise softmax backward. args: Y (m x n, softmax output), dY, dX (may alias dY).
     *  dX[i,j] = Y[i,j] * (dY[i,j] - sum_l dY[i,l] * Y[i,l]). */
    HETRUN_OP_SOFTMAX_BACKWARD = 22,
    /** Embedding lookup. args: ids (m, I32), table (k x n, dtype), out (m x n, dtype).
     *  out[i,:] = alpha * table[ids[i],:] + beta * out[i,:] (beta 0 must not read out).
     *  An id outside [0, k) yields a row of NaN, so the error cannot pass unnoticed. */
    HETRUN_OP_EMBEDDING_FORWARD = 23,
    /** Embedding backward (scatter-add). args: ids (m, I32), dout (m x n, dtype),
     *  dtable (k x n, out_dtype: F32 master gradients may take F16/BF16 dout).
     *  dtable = beta * dtable + alpha * sum over i with ids[i] == r of dout[i,:], per row r.
     *  Deterministic: the same inputs give the same bits on every run (no float atomics
     *  in unspecified order). Ids outside [0, k) contribute nothing. */
    HETRUN_OP_EMBEDDING_BACKWARD = 24,
    /** Counts non-finite elements. args: X (m * n, dtype), count (1, I32).
     *  count = (number of NaN or +-inf in X) + (beta != 0 ? count : 0). For loss scaling and
     *  for the launcher's "nothing false" checks without copying tensors to the host. */
    HETRUN_OP_NONFINITE_COUNT = 25,
    /** Sum of squares. args: X (m * n, dtype), out (1, F32).
     *  out = alpha * sum(X^2) + beta * out (gradient-norm clipping, weight norms). */
    HETRUN_OP_SUM_SQUARES = 26,
    HETRUN_OP_KIND_COUNT = 27
} hetrun_op_kind;

/** Largest operand count of any op (ATTENTION_BACKWARD). */
#define HETRUN_OP_MAX_ARGS 10

/** Number of tensor operands of `kind` (0 for an unknown kind). Inline so that a module
 *  built from the installed headers alone can check `nargs`. */
static inline int hetrun_op_arity(uint32_t kind) {
    static const unsigned char arity[HETRUN_OP_KIND_COUNT] = {
        3, 3, 2,  3, 2, 4, 3, 4, 2, 2, 2, 2, 3, 1, 3, 4, 2, /* 1.0: GEMM .. CAST */
        5, 6, 10, 6, 8, 3, 3, 3, 2, 2};                     /* 1.1: GEMM_BIAS_ACT .. */
    return kind < HETRUN_OP_KIND_COUNT ? arity[kind] : 0;
}

/** First op kind new in ABI 1.1: a 1.0 module is never sent a kind >= this. */
#define HETRUN_OP_FIRST_V1_1 HETRUN_OP_GEMM_BIAS_ACT

/** Activations for ACT_FORWARD / ACT_BACKWARD. */
typedef enum hetrun_activation {
    HETRUN_ACT_RELU = 0,     /**< max(x, 0); derivative 1 for x > 0, else 0 */
    HETRUN_ACT_GELU = 1,     /**< 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))), the tanh form */
    HETRUN_ACT_GELU_ERF = 2, /**< 0.5x(1+erf(x/sqrt(2))), the exact form (BERT); ABI 1.1 */
    HETRUN_ACT_IDENTITY = 3, /**< x (GEMM_BIAS_ACT with bias only); ABI 1.1 */
    HETRUN_ACT_COUNT = 4
} hetrun_activation;

/** Descriptor flags. */
#define HETRUN_OP_TRANS_A 0x1u           /**< GEMM: use A transposed (A stored k x m) */
#define HETRUN_OP_TRANS_B 0x2u           /**< GEMM: use B transposed (B stored n x k) */
#define HETRUN_OP_ALLOW_TF32 0x4u        /**< GEMM f32: reduced-precision tensor cores allowed */
#define HETRUN_OP_CAUSAL 0x8u            /**< attention: causal mask (1.1) */
#define HETRUN_OP_KEY_PADDING_MASK 0x10u /**< attention: read the mask operand (1.1) */
#define HETRUN_OP_HAS_BIAS 0x20u         /**< GEMM_BIAS_ACT: read the bias operand (1.1) */
#define HETRUN_OP_HAS_AUX 0x40u          /**< GEMM_BIAS_ACT: write the aux operand (1.1) */
/** GEMM, GEMM_BIAS_ACT: B is a constant operand, e.g. inference weights (1.3): the module may
 *  keep a re-laid-out copy of it across calls; see "Constant operands" in backend.h. */
#define HETRUN_OP_CONST_B 0x80u

/** Number of op-specific scalar parameters in a descriptor. */
#define HETRUN_OP_PARAMS 8

/**
 * One op invocation: what to compute, on which shapes and types. Filled by the host,
 * borrowed by the module for the duration of the call.
 */
typedef struct hetrun_op_desc {
    uint32_t struct_size;       /**< sizeof(hetrun_op_desc) as the host built it */
    uint32_t kind;              /**< ::hetrun_op_kind */
    uint32_t dtype;             /**< ::hetrun_dtype of the inputs */
    uint32_t out_dtype;         /**< ::hetrun_dtype of the output (== dtype for most ops) */
    uint32_t flags;             /**< HETRUN_OP_* flags */
    uint32_t act;               /**< ::hetrun_activation for ACT_* ops */
    int64_t m, n, k;            /**< shapes; see each op */
    int64_t lda, ldb, ldc;      /**< GEMM row strides in elements; 0 means packed */
    double alpha, beta;         /**< scalars; see each op */
    double p[HETRUN_OP_PARAMS]; /**< op-specific scalars; see each op */

    /* ---- ABI 1.1: read only when struct_size >= HETRUN_OP_DESC_SIZE_V1_1 ---- */
    /** Number of problems in a batched call (GEMM, attention); 0 and 1 both mean one. */
    int64_t batch;
    /** Attention: heads per token (the head dimension is `k`); 0 means 1. */
    int64_t heads;
    /** Elements between consecutive batch entries of operand A, B, C (GEMM) or Q, K/V, O
     *  (attention). GEMM: 0 for A or B means every batch entry reads the same matrix
     *  (broadcast), 0 for C means packed; a non-zero stride must be at least the span of
     *  one matrix. Attention: 0 means packed. */
    int64_t stride_a, stride_b, stride_c;
} hetrun_op_desc;

/** Descriptor size in ABI 1.0 and 1.1: modules compare `struct_size` against these. */
#define HETRUN_OP_DESC_SIZE_V1_0 (offsetof(hetrun_op_desc, batch))
#define HETRUN_OP_DESC_SIZE_V1_1 (offsetof(hetrun_op_desc, stride_c) + sizeof(int64_t))

#ifdef __cplusplus
}
#endif
#endif /* HETRUN_OPS_H */
