/* Device helpers for the CUDA benchmark: an empty kernel (raw launch cost) and a
 * random fill (so tensor cores see realistic, non-zero data). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "bench_kernels.h"

__global__ void bench_empty_kernel() {}

extern "C" cudaError_t bench_launch_empty(cudaStream_t s) {
    bench_empty_kernel<<<1, 1, 0, s>>>();
    return cudaGetLastError();
}

__device__ __forceinline__ float hash_unit(uint64_t i, uint32_t seed) {
    uint64_t x = i * 0x9e3779b97f4a7c15ull + seed;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    return (float)(x >> 40) * (2.0f / 16777216.0f) - 1.0f; /* [-1, 1) */
}

template <typename T> __global__ void fill_random(T *p, uint64_t n, uint32_t seed) {
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n;
         i += (uint64_t)gridDim.x * blockDim.x)
        p[i] = (T)hash_unit(i, seed);
}

extern "C" cudaError_t bench_fill_random(void *p, uint64_t n, int dtype, uint32_t seed,
                                         cudaStream_t s) {
    switch (dtype) {
    case 0: fill_random<float><<<1024, 256, 0, s>>>((float *)p, n, seed); break;
    case 2: fill_random<__half><<<1024, 256, 0, s>>>((__half *)p, n, seed); break;
    case 3: fill_random<__nv_bfloat16><<<1024, 256, 0, s>>>((__nv_bfloat16 *)p, n, seed); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
