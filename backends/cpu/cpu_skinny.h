/* A GEMM for few rows against a stored nn.Linear weight (C = act(alpha A B^T + beta C +
 * bias)), without the BLAS: a batch-1 transformer request multiplies ~20 token rows by
 * weights of up to 1536 x 1536, where OpenBLAS spends as long packing the weight as
 * multiplying it, and wakes its threads once per call. */
#ifndef HETRUN_BACKEND_CPU_SKINNY_H
#define HETRUN_BACKEND_CPU_SKINNY_H

#include "hetrun/ops.h"

/** Rows (m) up to which cpu_skinny_run takes a GEMM (bench/minilm, RESULTS.md). */
#define CPU_SKINNY_MAX_ROWS 48

/** What the few-row kernels (this one and cpu_packed.c) share: not batched, A not
 *  transposed, m <= max_rows, k < 2^31, a CPU with AVX2 and FMA. */
int cpu_few_row_shape(const hetrun_op_desc *d, int64_t max_rows);

/** Whether cpu_skinny_run takes `d`: a fp32 GEMM_BIAS_ACT, not batched, B
 *  transposed, A not, m <= CPU_SKINNY_MAX_ROWS, on a CPU with AVX2 and FMA. */
int cpu_skinny_takes(const hetrun_op_desc *d);

/** Runs `d` on host pointers p = {A, B, bias or NULL, C, aux or NULL}: C = act(alpha A B^T +
 *  beta C + bias), aux the value before act; the columns are split over the backend's
 *  threads. */
void cpu_skinny_run(const hetrun_op_desc *d, void *const *p);

#endif
