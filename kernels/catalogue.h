/**
 * @file kernels/catalogue.h
 * @brief The op table: one row per op kind, the single statement of what an op is.
 *
 * A row gives the op's operands (name, role, dtype and shape rules, which operands it may
 * alias, which are optional), the dtype pairs it accepts, its flags, its FLOP count, its
 * reference implementation (kernels/reference.h), its check tolerance and the shapes
 * conformance and bench use. The launcher (validation, accounting), every backend, the
 * conformance program, the bench workload and docs/ops.md all read it.
 *
 * Semantics are documented on ::hetrun_op_kind in include/hetrun/ops.h. Counting
 * conventions (reports and billing): a multiply-add is 2 FLOPs; transcendental functions
 * count as 1; bytes are the fewest a device must move: each input read once, each output
 * written once (an output that is also read counts twice).
 */
#ifndef HETRUN_KERNELS_CATALOGUE_H
#define HETRUN_KERNELS_CATALOGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hetrun/ops.h"
#include "hetrun/reference.h" /* the op queries and the reference run (installed) */

#ifdef __cplusplus
extern "C" {
#endif

/** How an op uses an operand. */
typedef enum hetrun_arg_role {
    HETRUN_ARG_IN = 0,   /**< read only */
    HETRUN_ARG_OUT,      /**< written, never read (tests poison it with NaN) */
    HETRUN_ARG_INOUT,    /**< read, then written */
    HETRUN_ARG_OUT_BETA, /**< written; its old value is read only when beta != 0 */
    HETRUN_ARG_OUT_P1    /**< written; its old value is read only when p[1] != 0 */
} hetrun_arg_role;

/** How many elements an operand spans (the shape rule). */
typedef enum hetrun_arg_extent {
    HETRUN_EXT_MN = 0,    /**< m x n, packed */
    HETRUN_EXT_M,         /**< m */
    HETRUN_EXT_N,         /**< n */
    HETRUN_EXT_KN,        /**< k x n, packed (embedding tables) */
    HETRUN_EXT_ONE,       /**< one element */
    HETRUN_EXT_GEMM_A,    /**< op(A) m x k, row stride lda, batch stride stride_a */
    HETRUN_EXT_GEMM_B,    /**< op(B) k x n, row stride ldb, batch stride stride_b */
    HETRUN_EXT_GEMM_C,    /**< C m x n, row stride ldc, batch stride stride_c */
    HETRUN_EXT_ATTN_Q,    /**< batch x m tokens x heads x k: lda, stride_a */
    HETRUN_EXT_ATTN_K,    /**< batch x n tokens x heads x k: ldb, stride_b */
    HETRUN_EXT_ATTN_O,    /**< batch x m tokens x heads x k: ldc, stride_c */
    HETRUN_EXT_ATTN_MASK, /**< batch x n, packed */
    HETRUN_EXT_ATTN_LSE,  /**< batch x heads x m, packed */
    HETRUN_EXT_COUNT
} hetrun_arg_extent;

/** An operand's dtype rule. */
typedef enum hetrun_arg_type {
    HETRUN_TYPE_IN = 0, /**< the descriptor's dtype */
    HETRUN_TYPE_OUT,    /**< the descriptor's out_dtype */
    HETRUN_TYPE_I32,    /**< always int32 (labels, ids, masks, counts) */
    HETRUN_TYPE_F32     /**< always fp32 (statistics) */
} hetrun_arg_type;

/** What values tests and benchmarks put into an input (so every op sees sane inputs). */
typedef enum hetrun_arg_values {
    HETRUN_VAL_UNIFORM = 0, /**< uniform in [-1, 1) (int8: [-8, 8)) */
    HETRUN_VAL_LABEL,       /**< int32 in [0, n) */
    HETRUN_VAL_ID,          /**< int32 in [0, k), repeats included */
    HETRUN_VAL_POSITIVE,    /**< uniform in [0.01, 1) (second moments, rstd) */
    HETRUN_VAL_PROB,        /**< uniform in [0.05, 1.05) (probabilities) */
    HETRUN_VAL_MASK,        /**< int32 0/1, 3 of 4 kept; batch entry 1 fully masked */
    HETRUN_VAL_WIDE,        /**< uniform in [-60000, 60000) (casts: the fp16 range) */
    HETRUN_VAL_NONFINITE    /**< uniform in [-1, 1) with NaN, +inf, -inf sprinkled in */
} hetrun_arg_values;

/** One operand of an op. */
typedef struct hetrun_op_arg {
    const char *name;      /**< as in ops.h: "A", "bias", "dQ" */
    uint8_t role;          /**< ::hetrun_arg_role */
    uint8_t extent;        /**< ::hetrun_arg_extent */
    uint8_t type;          /**< ::hetrun_arg_type */
    uint8_t values;        /**< ::hetrun_arg_values (inputs) */
    uint32_t present_flag; /**< optional operand: used only with this flag; 0 = always */
    uint32_t may_alias;    /**< bit b: may be the same memory as operand b (in-place) */
} hetrun_op_arg;

/** How the reduction length L behind one output element follows from the shape. */
typedef enum hetrun_op_reduction {
    HETRUN_RED_ONE = 0, /**< elementwise */
    HETRUN_RED_K,
    HETRUN_RED_N,
    HETRUN_RED_M,
    HETRUN_RED_MN,
    HETRUN_RED_MAX_MN, /**< backward ops summing over rows and over columns */
    HETRUN_RED_ATTN    /**< k (scores) + max(m, n) (softmax, P V, dQ, dK, dV) */
} hetrun_op_reduction;

/** Case options (::hetrun_op_case::opts). */
#define HETRUN_CASE_BETA 0x1u     /**< use the case's beta instead of the row's */
#define HETRUN_CASE_P1 0x2u       /**< p[1] = 1 (accumulate parameter gradients) */
#define HETRUN_CASE_INPLACE 0x4u  /**< each output that may alias shares its lowest partner */
#define HETRUN_CASE_INPLACE2 0x8u /**< ... its highest partner (MUL: Z on Y) */
#define HETRUN_CASE_FUSED 0x10u   /**< attention: Q, K, V (and dQ, dK, dV) in one fused buffer */
#define HETRUN_CASE_BIG 0x20u     /**< slow on the double reference: not in --quick nor on cpu */

/** One conformance (and bench-check) case of an op: a shape and its layout. */
typedef struct hetrun_op_case {
    const char *what; /**< what the case exercises, printed with results */
    int64_t m, n, k, batch, heads;
    uint32_t flags;     /**< descriptor flags */
    int64_t pad;        /**< extra elements per row on every row stride (0 = packed) */
    int64_t bpad;       /**< extra elements per batch stride (0 = packed) */
    uint32_t broadcast; /**< GEMM: bit 0 A, bit 1 B read by every batch entry (stride 0) */
    uint32_t opts;      /**< HETRUN_CASE_* */
    double beta;        /**< with HETRUN_CASE_BETA */
    int offset;         /**< every operand starts this many elements into its buffer */
} hetrun_op_case;

/** How bench's `size` and `cols` make a shape. */
typedef enum hetrun_op_bench_shape {
    HETRUN_BENCH_ROWS = 0,  /**< m = size, n = cols (k, flags from the row's first case) */
    HETRUN_BENCH_CUBE,      /**< m = n = k = size */
    HETRUN_BENCH_ATTENTION, /**< m = n = size tokens, heads = cols / 64, k = 64, causal */
    HETRUN_BENCH_VOCAB      /**< m = size tokens, n = cols, k = 8192 table rows */
} hetrun_op_bench_shape;

/** One row of the op table. */
typedef struct hetrun_op_info {
    const char *name;     /**< short lower-case name: "gemm", "attention_forward" */
    const char *summary;  /**< one line; the full contract is in ops.h */
    uint32_t since_minor; /**< ABI 1.x minor that added the op */
    int arity;
    hetrun_op_arg args[HETRUN_OP_MAX_ARGS];
    uint8_t pairs[8][2]; /**< accepted (dtype, out_dtype) pairs */
    int npairs;
    uint32_t flags;             /**< accepted descriptor flags */
    bool uses_act;              /**< reads desc->act */
    bool batched;               /**< accepts batch > 1 */
    double alpha, beta;         /**< typical scalars (bench, conformance) */
    double p[HETRUN_OP_PARAMS]; /**< typical op parameters */
    double flops_mn;            /**< FLOPs per m*n element, when `flops` is NULL */
    double (*flops)(const hetrun_op_desc *desc);
    const char *flops_doc; /**< the FLOP count as a formula */
    uint8_t reduction;     /**< ::hetrun_op_reduction */
    bool tol_linear;       /**< error grows with L, not sqrt(L) (cancelling sums) */
    double tol_ulps;       /**< ulps of the arithmetic its transcendental functions add (exp...) */
    /** Op-specific validity beyond the generic rules; writes "field value ..." into why. */
    bool (*check)(const hetrun_op_desc *desc, char *why, size_t len);
    /** The plain C definition (kernels/reference*.c) on host operands. */
    void (*reference)(const hetrun_op_desc *desc, void *const *args);
    uint8_t bench_shape; /**< ::hetrun_op_bench_shape */
    const hetrun_op_case *cases;
    int ncases;
} hetrun_op_info;

/** The row of `kind`, or NULL for an unknown kind. */
const hetrun_op_info *hetrun_op_info_of(uint32_t kind);

/** The descriptor of case `c` of `kind` with a dtype pair: shapes, strides and flags from
 *  the case, scalars from the row (an integer output takes alpha 1, beta 0 or 1). */
hetrun_op_desc hetrun_op_case_desc(hetrun_op_kind kind, const hetrun_op_case *c, hetrun_dtype dtype,
                                   hetrun_dtype out_dtype, uint32_t act);
/** The bench descriptor of `kind` at `size` x `cols` (see ::hetrun_op_bench_shape). */
hetrun_op_desc hetrun_op_bench_desc(hetrun_op_kind kind, hetrun_dtype dtype, int64_t size,
                                    int64_t cols);

/** Fills `count` elements of operand `arg` of `desc` on the host with the row's value rule
 *  (::hetrun_arg_values), from the splitmix64 stream `state`. */
void hetrun_op_fill_arg(const hetrun_op_desc *desc, int arg, void *host, uint64_t count,
                        uint64_t *state);

#ifdef __cplusplus
}
#endif
#endif
