/**
 * @file kernels/catalogue.h
 * @brief The op catalogue: names, operand counts and sizes, FLOP and byte counts,
 *        stated once for the launcher, every backend and the tests.
 *
 * Semantics are documented on ::hetrun_op_kind in include/hetrun/ops.h; the plain C
 * reference implementations are in kernels/reference.h. Counting conventions (used in
 * reports and billing): a multiply-add is 2 FLOPs; transcendental functions count as 1;
 * bytes are the fewest a device must move: each input read once, each output written
 * once (an in-place operand counts once read and once written).
 */
#ifndef HETRUN_KERNELS_CATALOGUE_H
#define HETRUN_KERNELS_CATALOGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hetrun/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Short lower-case name of an op kind ("gemm", "bias_add"...), or NULL. */
const char *hetrun_op_name(hetrun_op_kind kind);
/** Op kind by name; returns -1 when unknown. */
int hetrun_op_from_name(const char *name);
/** Whether operand `arg` of `desc` is used: false for an optional operand whose flag
 *  (HETRUN_OP_HAS_BIAS, HETRUN_OP_HAS_AUX, HETRUN_OP_KEY_PADDING_MASK) is not set; its
 *  tensor may then have a NULL buffer. (The operand count is hetrun_op_arity, ops.h.) */
bool hetrun_op_arg_present(const hetrun_op_desc *desc, int arg);
/** Lower-case dtype name ("fp32", "bf16"...), or NULL. */
const char *hetrun_dtype_name(hetrun_dtype dtype);
/** Dtype by name (accepts fp32/f32/float32 ...); returns -1 when unknown. */
int hetrun_dtype_from_name(const char *name);
/** Bytes per element. */
size_t hetrun_dtype_size(hetrun_dtype dtype);
/** Unit roundoff of a float dtype (2^-24 for fp32, 2^-11 fp16, 2^-8 bf16, 2^-53 fp64);
 *  0 for the integer types, whose arithmetic here is exact. */
double hetrun_dtype_unit_roundoff(hetrun_dtype dtype);
/** Activation name ("relu", "gelu") or NULL; and back (-1 when unknown). */
const char *hetrun_activation_name(hetrun_activation act);
int hetrun_activation_from_name(const char *name);

/** Number of elements operand `arg` of `desc` spans (taking leading dims into account). */
uint64_t hetrun_op_arg_elements(const hetrun_op_desc *desc, int arg);
/** Dtype of operand `arg` of `desc`. */
hetrun_dtype hetrun_op_arg_dtype(const hetrun_op_desc *desc, int arg);
/** Bytes operand `arg` spans. */
uint64_t hetrun_op_arg_bytes(const hetrun_op_desc *desc, int arg);

/** Elements between batch entries of GEMM operand `arg` (0 A, 1 B, 2 C): 0 for a
 *  broadcast A or B; C's packed default resolved. */
int64_t hetrun_gemm_batch_stride(const hetrun_op_desc *desc, int arg);
/** Attention operand geometry for role 'q' (Q, dQ), 'k' (K, V, dK, dV) or 'o' (O, dO):
 *  token stride and batch stride in elements, defaults resolved. */
void hetrun_attention_geometry(const hetrun_op_desc *desc, char role, int64_t *ld,
                               int64_t *bstride);
/** (query, key) pairs attention computes per (batch, head): Lq x Lk, or fewer when causal. */
double hetrun_attention_kept_pairs(const hetrun_op_desc *desc);

/** Nominal floating-point (or integer for I8 GEMM) operations of one call. */
double hetrun_op_flops(const hetrun_op_desc *desc);
/** Fewest bytes a device must move for one call. */
double hetrun_op_bytes(const hetrun_op_desc *desc);

/**
 * Checks a descriptor's shapes, leading dims, flags and dtype pair against the
 * catalogue. Returns true when valid; otherwise writes a message naming the field
 * into `why` (may be NULL).
 */
bool hetrun_op_desc_valid(const hetrun_op_desc *desc, char *why, size_t why_len);

/** A descriptor with struct_size set, out_dtype = dtype, alpha = 1, everything else 0. */
hetrun_op_desc hetrun_op_desc_init(hetrun_op_kind kind, hetrun_dtype dtype);

#ifdef __cplusplus
}
#endif
#endif
