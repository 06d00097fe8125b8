/**
 * @file kernels/cuda/kernels.h
 * @brief C entry points of hetrun's own CUDA kernels (every catalogue op except GEMM,
 *        which goes through cuBLASLt). Called by backends/cuda only.
 *
 * Each function enqueues the op on `stream` and returns the launch status
 * (cudaGetLastError() right after the launch), so a bad configuration is reported
 * by the call that caused it. Operands are raw device pointers in catalogue order
 * in an array of HETRUN_OP_MAX_ARGS with unused slots (and absent optional operands) NULL;
 * the descriptor has been validated by the caller (hetrun_op_desc_valid + bounds).
 */
#ifndef HETRUN_KERNELS_CUDA_KERNELS_H
#define HETRUN_KERNELS_CUDA_KERNELS_H

#include <cuda_runtime_api.h>

#include "hetrun/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Elementwise ops: BIAS_ADD, ACT_FORWARD, ACT_BACKWARD, XENT_BACKWARD, SCALE, AXPY,
 * MUL, FILL, SGD_MOMENTUM, ADAMW, CAST. `sm_count` sizes the grid (grid-stride loops).
 * Returns cudaErrorNotSupported for an op or dtype this file does not handle.
 */
cudaError_t hetrun_cuda_elementwise(const hetrun_op_desc *desc, void *const *args,
                                    cudaStream_t stream, int sm_count);

/**
 * Row and column ops: SOFTMAX, XENT_FORWARD, LAYERNORM, REDUCE_SUM_AXIS0,
 * REDUCE_SUM_AXIS1. Returns cudaErrorNotSupported for anything else.
 */
cudaError_t hetrun_cuda_rowwise(const hetrun_op_desc *desc, void *const *args, cudaStream_t stream,
                                int sm_count);

/**
 * Epilogue of GEMM_BIAS_ACT, run after the GEMM wrote C (out_dtype, row stride ldc):
 * v = C[i,j] + bias[j] (bias may be NULL); aux[i,j] = v (packed; aux may be NULL);
 * C[i,j] = act(v).
 */
cudaError_t hetrun_cuda_bias_act(const hetrun_op_desc *desc, void *c, const void *bias, void *aux,
                                 cudaStream_t stream, int sm_count);

/**
 * ABI 1.1 training ops (training.cu): LAYERNORM_FORWARD, LAYERNORM_BACKWARD,
 * SOFTMAX_BACKWARD, EMBEDDING_FORWARD, EMBEDDING_BACKWARD, NONFINITE_COUNT, SUM_SQUARES.
 * `ws` is 256-byte aligned and holds hetrun_cuda_training_workspace(desc) bytes.
 */
cudaError_t hetrun_cuda_training(const hetrun_op_desc *desc, void *const *args, void *ws,
                                 cudaStream_t stream, int sm_count);

/** Workspace bytes hetrun_cuda_training needs for `desc` (0 for none). */
uint64_t hetrun_cuda_training_workspace(const hetrun_op_desc *desc);

/**
 * ATTENTION_FORWARD / ATTENTION_BACKWARD (attention.cu): F32, F16, BF16, head dimension
 * (k) at most hetrun_cuda_attention_max_head_dim(); F16/BF16 at head dim 32, 64, 128 run the
 * tensor-core kernels of attention_flash.cu. `ws` is 256-byte aligned and holds
 * hetrun_cuda_attention_workspace(desc) bytes (backward: rowsum(dO * O)).
 */
cudaError_t hetrun_cuda_attention(const hetrun_op_desc *desc, void *const *args, void *ws,
                                  cudaStream_t stream);
uint64_t hetrun_cuda_attention_workspace(const hetrun_op_desc *desc);
int64_t hetrun_cuda_attention_max_head_dim(void);

/**
 * Tensor-core (wmma) attention (attention_flash.cu), which hetrun_cuda_attention dispatches to
 * when hetrun_cuda_attention_flash_supported(desc) is nonzero: F16 and BF16 with head dimension
 * 32, 64 or 128. Same contract, workspace (rowsum(dO * O)) and determinism as the baseline;
 * F32 and other head dimensions stay on the baseline.
 */
int hetrun_cuda_attention_flash_supported(const hetrun_op_desc *desc);
cudaError_t hetrun_cuda_attention_flash(const hetrun_op_desc *desc, void *const *args, void *ws,
                                        cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
