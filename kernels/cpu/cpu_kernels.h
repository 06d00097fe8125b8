/**
 * @file kernels/cpu/cpu_kernels.h
 * @brief fp32 CPU kernels for the non-GEMM ops of the catalogue (GEMM goes to CBLAS).
 *        Row-major, contiguous; semantics as in include/hetrun/ops.h.
 */
#ifndef HETRUN_KERNELS_CPU_H
#define HETRUN_KERNELS_CPU_H

#include <stdint.h>

/* Hot loops are compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time
 * (GCC function multiversioning), since the module itself is built for baseline x86-64. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HETRUN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define HETRUN_CLONES
#endif

void hetrun_cpu_bias_add_f32(const float *x, const float *bias, float *y, int64_t m, int64_t n);
void hetrun_cpu_act_forward_f32(unsigned act, const float *x, float *y, int64_t count);
void hetrun_cpu_act_backward_f32(unsigned act, const float *x, const float *dy, float *dx,
                                 int64_t count);
void hetrun_cpu_softmax_f32(const float *x, float *y, int64_t m, int64_t n);
void hetrun_cpu_xent_forward_f32(const float *logits, const int32_t *labels, float *probs,
                                 float *loss, int64_t m, int64_t n);
void hetrun_cpu_xent_backward_f32(const float *probs, const int32_t *labels, float *dlogits,
                                  int64_t m, int64_t n, float alpha);
void hetrun_cpu_layernorm_f32(const float *x, const float *gamma, const float *beta, float *y,
                              int64_t m, int64_t n, float eps);
void hetrun_cpu_reduce_axis0_f32(const float *x, float *out, int64_t m, int64_t n, float alpha,
                                 float beta);
void hetrun_cpu_reduce_axis1_f32(const float *x, float *out, int64_t m, int64_t n, float alpha,
                                 float beta);
void hetrun_cpu_scale_f32(const float *x, float *y, int64_t count, float alpha);
void hetrun_cpu_axpy_f32(const float *x, float *y, int64_t count, float alpha);
void hetrun_cpu_mul_f32(const float *x, const float *y, float *z, int64_t count);
void hetrun_cpu_fill_f32(float *y, int64_t count, float value);
void hetrun_cpu_sgd_momentum_f32(float *w, const float *g, float *v, int64_t count, float lr,
                                 float momentum, float wd);
void hetrun_cpu_adamw_f32(float *w, const float *g, float *m1, float *m2, int64_t count,
                          const double p[6]);
/** Casts between f32 and f16/bf16/f64 (round to nearest even). */
void hetrun_cpu_cast(const void *x, int in_dtype, void *y, int out_dtype, int64_t count);

#endif
