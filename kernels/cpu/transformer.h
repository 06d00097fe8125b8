/**
 * @file kernels/cpu/transformer.h
 * @brief fp32 CPU kernels for the ABI 1.1 row-wise transformer ops (layernorm forward
 *        and backward, softmax backward, embedding forward and backward, non-finite count,
 *        sum of squares), threaded with cpu_parallel. Semantics: hetrun/ops.h. Every
 *        result is independent of the thread count (fixed partitions, fixed sum order).
 */
#ifndef HETRUN_KERNELS_CPU_TRANSFORMER_H
#define HETRUN_KERNELS_CPU_TRANSFORMER_H

#include <stdint.h>

void hetrun_cpu_layernorm_forward_f32(const float *x, const float *gamma, const float *beta,
                                      float *y, float *mean, float *rstd, int64_t m, int64_t n,
                                      float eps);
/** add_dx: dX += computed (else =); add_params: dgamma/dbeta += computed (else =). */
void hetrun_cpu_layernorm_backward_f32(const float *x, const float *gamma, const float *mean,
                                       const float *rstd, const float *dy, float *dx, float *dgamma,
                                       float *dbeta, int64_t m, int64_t n, int add_dx,
                                       int add_params);
/** dx may alias dy. */
void hetrun_cpu_softmax_backward_f32(const float *y, const float *dy, float *dx, int64_t m,
                                     int64_t n);
void hetrun_cpu_embedding_forward_f32(const int32_t *ids, const float *table, float *out, int64_t m,
                                      int64_t n, int64_t k, float alpha, float beta);
/** Returns 0, or -1 when its index memory could not be allocated (nothing written). */
int hetrun_cpu_embedding_backward_f32(const int32_t *ids, const float *dout, float *dtable,
                                      int64_t m, int64_t n, int64_t k, float alpha, int add);
/** Number of NaN and +-inf elements. */
int64_t hetrun_cpu_nonfinite_count_f32(const float *x, int64_t count);
/** Sum of x^2, accumulated in double. */
double hetrun_cpu_sum_squares_f32(const float *x, int64_t count);

#endif
