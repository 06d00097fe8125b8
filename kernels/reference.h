/**
 * @file kernels/reference.h
 * @brief Plain C reference semantics of every catalogue op, on host memory, computed in
 *        double. Slow on purpose: this is the definition the CPU backend is tested
 *        against (and the CPU backend is what the other backends are tested against).
 */
#ifndef HETRUN_KERNELS_REFERENCE_H
#define HETRUN_KERNELS_REFERENCE_H

#include "hetrun/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Runs `desc` on host operands `args[0..arity)` (each pointing at the operand's first
 * element, laid out as the catalogue says). Returns 0, or -1 when the descriptor is not
 * valid for the catalogue.
 */
int hetrun_reference_run(const hetrun_op_desc *desc, void *const *args);

/** Attention forward and backward (kernels/reference_attention.c); operands as
 *  hetrun_reference_run's, descriptor already valid. */
void hetrun_reference_attention_forward(const hetrun_op_desc *desc, void *const *args);
void hetrun_reference_attention_backward(const hetrun_op_desc *desc, void *const *args);

/** Reads element `i` of a buffer of `dtype` as double. */
double hetrun_load_as_double(const void *base, hetrun_dtype dtype, uint64_t i);
/** Writes `v` into element `i` of a buffer of `dtype` (rounding to nearest even). */
void hetrun_store_from_double(void *base, hetrun_dtype dtype, uint64_t i, double v);

#ifdef __cplusplus
}
#endif
#endif
