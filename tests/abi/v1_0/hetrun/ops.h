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
 */
#ifndef HETRUN_OPS_H
#define HETRUN_OPS_H

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
    HETRUN_OP_KIND_COUNT = 17
} hetrun_op_kind;

/** Activations for ACT_FORWARD / ACT_BACKWARD. */
typedef enum hetrun_activation {
    HETRUN_ACT_RELU = 0, /**< max(x, 0); derivative 1 for x > 0, else 0 */
    HETRUN_ACT_GELU = 1, /**< 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))), the tanh form */
    HETRUN_ACT_COUNT = 2
} hetrun_activation;

/** Descriptor flags. */
#define HETRUN_OP_TRANS_A 0x1u    /**< GEMM: use A transposed (A stored k x m) */
#define HETRUN_OP_TRANS_B 0x2u    /**< GEMM: use B transposed (B stored n x k) */
#define HETRUN_OP_ALLOW_TF32 0x4u /**< GEMM f32: reduced-precision tensor cores allowed */

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
} hetrun_op_desc;

#ifdef __cplusplus
}
#endif
#endif /* HETRUN_OPS_H */
