/* C entry points of bench_kernels.cu. */
#ifndef HETRUN_BENCH_CUDA_KERNELS_H
#define HETRUN_BENCH_CUDA_KERNELS_H
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
/** Launches an empty <<<1,1>>> kernel on `s`. */
cudaError_t bench_launch_empty(cudaStream_t s);
/** Fills `n` elements of hetrun dtype `dtype` (0 f32, 2 f16, 3 bf16) with values in [-1,1). */
cudaError_t bench_fill_random(void *p, uint64_t n, int dtype, uint32_t seed, cudaStream_t s);
#ifdef __cplusplus
}
#endif
#endif
