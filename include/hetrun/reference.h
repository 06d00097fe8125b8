/**
 * @file hetrun/reference.h
 * @brief The op table's queries and the plain C reference of every op, for backend
 *        modules: libhetrun_reference (CMake: hetrun::reference, pkg-config:
 *        hetrun-reference).
 *
 * A module uses it to check descriptors the way the launcher does (hetrun_op_desc_valid),
 * to size operands (hetrun_op_arg_bytes), to name ops and dtypes in its errors, and to fall
 * back on the reference for ops its runtime lacks while it is brought up (the template
 * backend runs every op this way). The reference computes in double on host memory: it is
 * the definition conformance checks against, and slow on purpose.
 *
 * The library is static and position independent: hetrun_add_backend() links it into the
 * module with its symbols hidden, so modules never clash over it.
 */
#ifndef HETRUN_REFERENCE_H
#define HETRUN_REFERENCE_H

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
 *  is not set; its tensor may then have a NULL buffer. (The count is hetrun_op_arity.) */
bool hetrun_op_arg_present(const hetrun_op_desc *desc, int arg);
/** Whether the op reads operand `arg`'s contents, and whether it writes them. */
bool hetrun_op_arg_reads(const hetrun_op_desc *desc, int arg);
bool hetrun_op_arg_writes(const hetrun_op_desc *desc, int arg);
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

/** Number of elements operand `arg` of `desc` spans (taking strides into account). */
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
/** Reduction length L behind one output element (1 for elementwise ops). */
double hetrun_op_reduction_length(const hetrun_op_desc *desc);
/**
 * Check tolerance of one call, relative to the largest |reference| of an output:
 *   4 u_out + ulps u_acc + 8 u_acc sqrt(L)   (8 u_acc L for a row with tol_linear)
 * u_out: unit roundoff of the coarser of dtype and out_dtype (the final rounding, with room
 * for a tie); u_acc: that of the arithmetic (fp32 for fp16/bf16, TF32 for an fp32 GEMM
 * allowed TF32, the dtype's own otherwise); ulps: the row's allowance for transcendental
 * functions (0 without); L: hetrun_op_reduction_length.
 */
double hetrun_op_tolerance(const hetrun_op_desc *desc);

/**
 * Checks a descriptor against the table: struct size, kind, dtype pair, flags, activation,
 * shapes, strides, and the op's own rules. Returns true when valid; otherwise writes a
 * message naming the op, the field and its value into `why` (may be NULL).
 */
bool hetrun_op_desc_valid(const hetrun_op_desc *desc, char *why, size_t why_len);

/** A descriptor with struct_size set, out_dtype = dtype, alpha = 1, m = n = k = 1, rest 0. */
hetrun_op_desc hetrun_op_desc_init(hetrun_op_kind kind, hetrun_dtype dtype);

/**
 * Runs `desc` on host operands `args[0..arity)` (each pointing at the operand's first
 * element, laid out as the catalogue says) through the op table's reference function.
 * Returns 0, or -1 when the descriptor is not valid for the catalogue.
 */
int hetrun_reference_run(const hetrun_op_desc *desc, void *const *args);

/** Reads element `i` of a buffer of `dtype` as double. */
double hetrun_load_as_double(const void *base, hetrun_dtype dtype, uint64_t i);
/** Writes `v` into element `i` of a buffer of `dtype` (rounding to nearest even). */
void hetrun_store_from_double(void *base, hetrun_dtype dtype, uint64_t i, double v);

#ifdef __cplusplus
}
#endif
#endif /* HETRUN_REFERENCE_H */
