/* Device-side helpers shared by hetrun's CUDA kernels: compute types, conversions,
 * aligned vector packs and launch sizing. */
#ifndef HETRUN_KERNELS_CUDA_COMMON_CUH
#define HETRUN_KERNELS_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace hetrun_cuda {

/* Math happens in float for f32/f16/bf16 (one rounding on store) and in double for f64. */
template <typename T> struct acc_of { using type = float; };
template <> struct acc_of<double> { using type = double; };
template <typename T> using acc_t = typename acc_of<T>::type;

__device__ __forceinline__ float to_f(float x) {
    return x;
}
__device__ __forceinline__ double to_f(double x) {
    return x;
}
__device__ __forceinline__ float to_f(__half x) {
    return __half2float(x);
}
__device__ __forceinline__ float to_f(__nv_bfloat16 x) {
    return __bfloat162float(x);
}

/* Math in the compute type: the float function for float, the double one for double. */
__device__ __forceinline__ float m_exp(float x) {
    return expf(x);
}
__device__ __forceinline__ double m_exp(double x) {
    return exp(x);
}
__device__ __forceinline__ float m_log(float x) {
    return logf(x);
}
__device__ __forceinline__ double m_log(double x) {
    return log(x);
}
__device__ __forceinline__ float m_sqrt(float x) {
    return sqrtf(x);
}
__device__ __forceinline__ double m_sqrt(double x) {
    return sqrt(x);
}
__device__ __forceinline__ float m_rsqrt(float x) {
    return rsqrtf(x);
}
__device__ __forceinline__ double m_rsqrt(double x) {
    return rsqrt(x);
}
__device__ __forceinline__ float m_tanh(float x) {
    return tanhf(x);
}
__device__ __forceinline__ double m_tanh(double x) {
    return tanh(x);
}
__device__ __forceinline__ float m_erf(float x) {
    return erff(x);
}
__device__ __forceinline__ double m_erf(double x) {
    return erf(x);
}

/* Round-to-nearest-even conversions into each storage type. */
template <typename T> __device__ __forceinline__ T from_f(float x);
template <typename T> __device__ __forceinline__ T from_f(double x);
template <> __device__ __forceinline__ float from_f<float>(float x) {
    return x;
}
template <> __device__ __forceinline__ float from_f<float>(double x) {
    return (float)x;
}
template <> __device__ __forceinline__ double from_f<double>(float x) {
    return (double)x;
}
template <> __device__ __forceinline__ double from_f<double>(double x) {
    return x;
}
template <> __device__ __forceinline__ __half from_f<__half>(float x) {
    return __float2half_rn(x);
}
template <> __device__ __forceinline__ __half from_f<__half>(double x) {
    return __double2half(x);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(double x) {
    return __double2bfloat16(x);
}

/* 16-byte pack: alignas makes the compiler emit one 128-bit load/store. */
template <typename T, int V> struct alignas(sizeof(T) * V) Pack { T v[V]; };

template <typename T> constexpr int vec_width() {
    return (int)(16 / sizeof(T));
}

/* True when every non-null pointer is aligned to `bytes`. */
inline bool aligned_all(void *const *p, int n, uintptr_t bytes) {
    for (int i = 0; i < n; i++)
        if (p[i] && ((uintptr_t)p[i] % bytes) != 0) return false;
    return true;
}

/* Grid for a grid-stride loop over `work` items: enough blocks to fill the device
 * a few times over, never more than the work needs. */
inline unsigned grid_for(int64_t work, int threads, int sm_count) {
    int64_t blocks = (work + threads - 1) / threads;
    int64_t cap = (int64_t)(sm_count > 0 ? sm_count : 1) * 8;
    if (blocks > cap) blocks = cap;
    if (blocks < 1) blocks = 1;
    return (unsigned)blocks;
}

} // namespace hetrun_cuda

#endif
