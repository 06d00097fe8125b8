/**
 * @file kernels/cpu/attention.h
 * @brief Fused (flash-style) scaled-dot-product attention on the CPU, forward and
 *        backward, fp32 / fp16 / bf16 (fp32 arithmetic), threaded over (batch, head).
 *        Semantics and layout: HETRUN_OP_ATTENTION_FORWARD/BACKWARD in hetrun/ops.h.
 */
#ifndef HETRUN_KERNELS_CPU_ATTENTION_H
#define HETRUN_KERNELS_CPU_ATTENTION_H

#include "hetrun/ops.h"

/** Forward on a valid descriptor; args as the op's operands (Q, K, V, mask, O, lse).
 *  Returns 0, or -1 when scratch memory could not be allocated (nothing written). */
int hetrun_cpu_attention_forward(const hetrun_op_desc *desc, void *const *args);
/** Backward; args (Q, K, V, mask, O, dO, lse, dQ, dK, dV). Returns 0 or -1 as forward. */
int hetrun_cpu_attention_backward(const hetrun_op_desc *desc, void *const *args);

#endif
