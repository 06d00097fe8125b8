/**
 * @file kernels/reference.h
 * @brief Plain C reference semantics of every catalogue op, on host memory, computed in
 *        double. Slow on purpose: this is the definition the CPU backend is tested
 *        against (and the CPU backend is what the other backends are tested against).
 */
#ifndef HETRUN_KERNELS_REFERENCE_H
#define HETRUN_KERNELS_REFERENCE_H

#include "hetrun/reference.h" /* hetrun_reference_run, element load/store */

#ifdef __cplusplus
extern "C" {
#endif

/* The reference of each op (the op table's `reference`): descriptor already valid,
 * operands as hetrun_reference_run's. Attention is in kernels/reference_attention.c. */
void hetrun_ref_gemm(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_bias_add(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_act_forward(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_act_backward(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_softmax(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_xent_forward(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_xent_backward(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_layernorm(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_reduce_sum_axis0(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_reduce_sum_axis1(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_scale(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_axpy(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_mul(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_fill(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_sgd_momentum(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_adamw(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_cast(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_gemm_bias_act(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_attention_forward(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_attention_backward(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_layernorm_forward(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_layernorm_backward(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_softmax_backward(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_embedding_forward(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_embedding_backward(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_nonfinite_count(const hetrun_op_desc *desc, void *const *args);
void hetrun_ref_sum_squares(const hetrun_op_desc *desc, void *const *args);

#ifdef __cplusplus
}
#endif
#endif
