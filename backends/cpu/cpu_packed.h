/* Constant-operand GEMM (ABI 1.3, HETRUN_OP_CONST_B): the first few-row GEMM on a constant B
 * (fp32, or fp16/bf16 widened once) packs it into 16-column k-major fp32 panels kept with B's
 * buffer; later calls run a 6 x 16 broadcast-FMA kernel over those panels. That is the layout
 * onnxruntime's MLAS packs its weights into at session start; against the few-row dot-product tiles
 * of cpu_skinny.c it was 1.04-1.46x faster at batch-1 token counts (bench/RESULTS.md, "Few-row
 * weight layouts"). A packed copy lives until B's bytes change through the module (copies into
 * them, an op writing them) or the buffer is freed (cpu_packed_drop), within a memory budget
 * (HETRUN_CPU_PACKED_MB). */
#ifndef HETRUN_BACKEND_CPU_PACKED_H
#define HETRUN_BACKEND_CPU_PACKED_H

#include "cpu_internal.h"

/** Rows (m) up to which cpu_packed_run takes a GEMM (bench/RESULTS.md "Constant operands"). */
#ifndef CPU_PACKED_MAX_ROWS
#define CPU_PACKED_MAX_ROWS 128
#endif

/** Whether cpu_packed_run takes `d`: a GEMM or GEMM_BIAS_ACT with CONST_B, fp32, or fp16 /
 *  bf16 in with that type or fp32 out (B widened once into the fp32 panels, A per call), not
 *  batched, A not transposed, m <= CPU_PACKED_MAX_ROWS, on a CPU with AVX2 and FMA. */
int cpu_packed_takes(const hetrun_op_desc *d);

/** Runs `d` with B = `b` (its panels made on first use) on host pointers p = {A, B, bias or
 *  NULL, C, aux or NULL}; `ws` holds the op's workspace (fp32 copies of fp16/bf16 A, C, bias
 *  and aux). Returns 1 when it ran, 0 when B has no panels and cannot get them (the packed
 *  copies' budget, HETRUN_CPU_PACKED_MB, or no memory): the caller runs `d` as stored. */
int cpu_packed_run(const hetrun_op_desc *d, hetrun_tensor b, void *const *p, void *ws);

/** Drops the packed copies made from bytes [offset, offset + bytes) of `buf` (all of them
 *  with bytes = UINT64_MAX): those bytes are about to change or be freed. */
void cpu_packed_drop(hetrun_buffer *buf, uint64_t offset, uint64_t bytes);

#endif
