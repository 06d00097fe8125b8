/* Row and column catalogue ops on CUDA. A row is handled by one warp (n <= 1024) or one
 * block (longer rows); statistics come from one pass with online combination (max and
 * rescaled sum for softmax / cross-entropy, Welford mean and M2 for layernorm), then a
 * second pass writes the outputs. Vector loads when the row start and length allow. */
#include "common.cuh"
#include "kernels.h"

#include <math.h>

using namespace hetrun_cuda;

namespace {

template <typename A> struct MaxSum { A m, s; };
template <typename A> struct Welford { A n, mean, m2; };

__device__ __forceinline__ float shfl(float v, int o) {
    return __shfl_xor_sync(0xffffffffu, v, o);
}
__device__ __forceinline__ double shfl(double v, int o) {
    return __shfl_xor_sync(0xffffffffu, v, o);
}
template <typename A> __device__ __forceinline__ MaxSum<A> shfl(MaxSum<A> v, int o) {
    return {shfl(v.m, o), shfl(v.s, o)};
}
template <typename A> __device__ __forceinline__ Welford<A> shfl(Welford<A> v, int o) {
    return {shfl(v.n, o), shfl(v.mean, o), shfl(v.m2, o)};
}

struct SumOp {
    template <typename A> __device__ A operator()(A a, A b) const {
        return a + b;
    }
};
struct MaxSumOp {
    template <typename A> __device__ MaxSum<A> operator()(MaxSum<A> a, MaxSum<A> b) const {
        if (a.m == -INFINITY) return b; /* empty partial: avoid exp(-inf - -inf) */
        if (b.m == -INFINITY) return a;
        A mx = a.m > b.m ? a.m : b.m;
        return {mx, a.s * m_exp(a.m - mx) + b.s * m_exp(b.m - mx)};
    }
};
struct WelfordOp {
    template <typename A> __device__ Welford<A> operator()(Welford<A> a, Welford<A> b) const {
        A n = a.n + b.n;
        if (n == A(0)) return a;
        A delta = b.mean - a.mean;
        return {n, a.mean + delta * (b.n / n), a.m2 + b.m2 + delta * delta * (a.n * b.n / n)};
    }
};

/* Reduce over the row's group (a warp, or the whole block); every thread gets the result.
 * The block variant combines the per-warp partials in a fixed order (deterministic). */
template <bool BLOCK, typename R, typename C> __device__ R group_reduce(R v, C comb) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = comb(v, shfl(v, o));
    if constexpr (!BLOCK) {
        return v;
    } else {
        __shared__ R part[32];
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
        __syncthreads(); /* the previous row may still be reading part[] */
        if (lane == 0) part[warp] = v;
        __syncthreads();
        R r = part[0];
        for (int w = 1; w < nw; w++)
            r = comb(r, part[w]);
        return r;
    }
}

template <bool BLOCK> struct Group {
    __device__ static int lane() {
        return BLOCK ? (int)threadIdx.x : (int)(threadIdx.x % 32);
    }
    __device__ static int size() {
        return BLOCK ? (int)blockDim.x : 32;
    }
    __device__ static int64_t first_row() {
        return BLOCK ? (int64_t)blockIdx.x
                     : (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    }
    __device__ static int64_t row_stride() {
        return BLOCK ? (int64_t)gridDim.x : (int64_t)gridDim.x * (blockDim.x / 32);
    }
};

template <int V, typename T>
__device__ __forceinline__ void ldv(const T *p, int64_t j, acc_t<T> (&o)[V]) {
    if constexpr (V == 1) {
        o[0] = to_f(p[j]);
    } else {
        Pack<T, V> pk = *reinterpret_cast<const Pack<T, V> *>(p + j);
#pragma unroll
        for (int k = 0; k < V; k++)
            o[k] = to_f(pk.v[k]);
    }
}

template <int V, typename T, typename A>
__device__ __forceinline__ void stv(T *p, int64_t j, const A (&v)[V]) {
    if constexpr (V == 1) {
        p[j] = from_f<T>(v[0]);
    } else {
        Pack<T, V> pk;
#pragma unroll
        for (int k = 0; k < V; k++)
            pk.v[k] = from_f<T>(v[k]);
        *reinterpret_cast<Pack<T, V> *>(p + j) = pk;
    }
}

template <typename A> __device__ __forceinline__ void push(MaxSum<A> &st, A x) {
    if (x > st.m) {
        st.s = st.s * m_exp(st.m - x) + A(1);
        st.m = x;
    } else {
        st.s += m_exp(x - st.m);
    }
}

/* Softmax (loss == nullptr) and cross-entropy forward share one kernel. */
template <typename T, bool BLOCK, int V>
__global__ void __launch_bounds__(1024)
    softmax_kernel(const T *x, const int32_t *labels, T *y, T *loss, int64_t m, int64_t n) {
    using A = acc_t<T>;
    using G = Group<BLOCK>;
    for (int64_t row = G::first_row(); row < m; row += G::row_stride()) {
        const T *xr = x + row * n;
        T *yr = y + row * n;
        MaxSum<A> st{-INFINITY, A(0)};
        for (int64_t j = (int64_t)G::lane() * V; j < n; j += (int64_t)G::size() * V) {
            A v[V];
            ldv<V>(xr, j, v);
#pragma unroll
            for (int k = 0; k < V; k++)
                push(st, v[k]);
        }
        st = group_reduce<BLOCK>(st, MaxSumOp());
        const A inv = A(1) / st.s;
        for (int64_t j = (int64_t)G::lane() * V; j < n; j += (int64_t)G::size() * V) {
            A v[V];
            ldv<V>(xr, j, v);
#pragma unroll
            for (int k = 0; k < V; k++)
                v[k] = m_exp(v[k] - st.m) * inv;
            stv<V>(yr, j, v);
        }
        if (loss && G::lane() == 0) {
            const int32_t label = labels[row];
            A xl = (label >= 0 && label < n) ? to_f(xr[label]) : A(NAN);
            loss[row] = from_f<T>(st.m + m_log(st.s) - xl);
        }
    }
}

template <typename T, bool BLOCK, int V>
__global__ void __launch_bounds__(1024) layernorm_kernel(const T *x, const T *gamma, const T *beta,
                                                         T *y, int64_t m, int64_t n, acc_t<T> eps) {
    using A = acc_t<T>;
    using G = Group<BLOCK>;
    for (int64_t row = G::first_row(); row < m; row += G::row_stride()) {
        const T *xr = x + row * n;
        T *yr = y + row * n;
        Welford<A> st{A(0), A(0), A(0)};
        for (int64_t j = (int64_t)G::lane() * V; j < n; j += (int64_t)G::size() * V) {
            A v[V];
            ldv<V>(xr, j, v);
#pragma unroll
            for (int k = 0; k < V; k++) {
                st.n += A(1);
                A d = v[k] - st.mean;
                st.mean += d / st.n;
                st.m2 += d * (v[k] - st.mean);
            }
        }
        st = group_reduce<BLOCK>(st, WelfordOp());
        const A inv = A(1) / m_sqrt(st.m2 / A(n) + eps);
        for (int64_t j = (int64_t)G::lane() * V; j < n; j += (int64_t)G::size() * V) {
            A v[V], g[V], b[V];
            ldv<V>(xr, j, v);
            ldv<V>(gamma, j, g);
            ldv<V>(beta, j, b);
#pragma unroll
            for (int k = 0; k < V; k++)
                v[k] = (v[k] - st.mean) * inv * g[k] + b[k];
            stv<V>(yr, j, v);
        }
    }
}

template <typename T, bool BLOCK, int V>
__global__ void __launch_bounds__(1024)
    rowsum_kernel(const T *x, T *out, int64_t m, int64_t n, acc_t<T> alpha, acc_t<T> beta) {
    using A = acc_t<T>;
    using G = Group<BLOCK>;
    for (int64_t row = G::first_row(); row < m; row += G::row_stride()) {
        const T *xr = x + row * n;
        A s = A(0);
        for (int64_t j = (int64_t)G::lane() * V; j < n; j += (int64_t)G::size() * V) {
            A v[V];
            ldv<V>(xr, j, v);
#pragma unroll
            for (int k = 0; k < V; k++)
                s += v[k];
        }
        s = group_reduce<BLOCK>(s, SumOp());
        if (G::lane() == 0) {
            A old = beta != A(0) ? beta * to_f(out[row]) : A(0); /* beta 0: out may be NaN */
            out[row] = from_f<T>(alpha * s + old);
        }
    }
}

/* Column sums: a 32 x 8 block owns 32 adjacent columns (coalesced rows), its 8 thread
 * rows stride down the matrix, and a shared-memory tree finishes each column. */
constexpr int kColX = 32, kColY = 8;
template <typename T>
__global__ void colsum_kernel(const T *x, T *out, int64_t m, int64_t n, acc_t<T> alpha,
                              acc_t<T> beta) {
    using A = acc_t<T>;
    __shared__ A part[kColY][kColX + 1];
    for (int64_t c0 = (int64_t)blockIdx.x * kColX; c0 < n; c0 += (int64_t)gridDim.x * kColX) {
        const int64_t col = c0 + threadIdx.x;
        A s = A(0);
        if (col < n)
            for (int64_t i = threadIdx.y; i < m; i += kColY)
                s += to_f(x[i * n + col]);
        part[threadIdx.y][threadIdx.x] = s;
        __syncthreads();
        if (threadIdx.y == 0 && col < n) {
            A t = part[0][threadIdx.x];
            for (int r = 1; r < kColY; r++)
                t += part[r][threadIdx.x];
            A old = beta != A(0) ? beta * to_f(out[col]) : A(0);
            out[col] = from_f<T>(alpha * t + old);
        }
        __syncthreads();
    }
}

struct RowLaunch {
    bool block;
    unsigned grid, threads;
};

inline RowLaunch row_launch(int64_t m, int64_t n, int sm) {
    const int64_t cap = (int64_t)(sm > 0 ? sm : 1) * 16;
    RowLaunch r;
    if (n <= 1024) { /* one warp per row, 8 rows per block */
        r.block = false;
        r.threads = 256;
        int64_t g = (m + 7) / 8;
        r.grid = (unsigned)(g < cap ? g : cap);
    } else {
        r.block = true;
        r.threads = n <= 8192 ? 256 : 1024;
        r.grid = (unsigned)(m < cap ? m : cap);
    }
    return r;
}

#define HETRUN_ROW_LAUNCH(KERNEL, T, VW, L, VEC, S, ...)                                           \
    do {                                                                                           \
        if ((L).block) {                                                                           \
            if (VEC)                                                                               \
                KERNEL<T, true, VW><<<(L).grid, (L).threads, 0, S>>>(__VA_ARGS__);                 \
            else                                                                                   \
                KERNEL<T, true, 1><<<(L).grid, (L).threads, 0, S>>>(__VA_ARGS__);                  \
        } else {                                                                                   \
            if (VEC)                                                                               \
                KERNEL<T, false, VW><<<(L).grid, (L).threads, 0, S>>>(__VA_ARGS__);                \
            else                                                                                   \
                KERNEL<T, false, 1><<<(L).grid, (L).threads, 0, S>>>(__VA_ARGS__);                 \
        }                                                                                          \
    } while (0)

template <typename T>
cudaError_t run_typed(const hetrun_op_desc *d, void *const *a, cudaStream_t s, int sm) {
    using A = acc_t<T>;
    constexpr int VW = vec_width<T>();
    const int64_t m = d->m, n = d->n;
    const RowLaunch L = row_launch(m, n, sm);
    /* Vector loads need every row start aligned: base pointers 16-byte aligned and the
     * row length a multiple of the vector width. Labels/loss/out are read per row. */
    void *const rowptrs[4] = {a[0], d->kind == HETRUN_OP_LAYERNORM ? a[1] : nullptr,
                              d->kind == HETRUN_OP_LAYERNORM ? a[2] : nullptr,
                              d->kind == HETRUN_OP_LAYERNORM ? a[3] : a[1]};
    const bool vec = n % VW == 0 && aligned_all(rowptrs, 4, 16);
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_SOFTMAX:
        HETRUN_ROW_LAUNCH(softmax_kernel, T, VW, L, vec, s, (const T *)a[0], nullptr, (T *)a[1],
                          nullptr, m, n);
        break;
    case HETRUN_OP_XENT_FORWARD: {
        void *const p[2] = {a[0], a[2]};
        const bool v2 = n % VW == 0 && aligned_all(p, 2, 16);
        HETRUN_ROW_LAUNCH(softmax_kernel, T, VW, L, v2, s, (const T *)a[0], (const int32_t *)a[1],
                          (T *)a[2], (T *)a[3], m, n);
        break;
    }
    case HETRUN_OP_LAYERNORM:
        HETRUN_ROW_LAUNCH(layernorm_kernel, T, VW, L, vec, s, (const T *)a[0], (const T *)a[1],
                          (const T *)a[2], (T *)a[3], m, n, (A)d->p[0]);
        break;
    case HETRUN_OP_REDUCE_SUM_AXIS1: {
        void *const p[1] = {a[0]};
        const bool v1 = n % VW == 0 && aligned_all(p, 1, 16);
        HETRUN_ROW_LAUNCH(rowsum_kernel, T, VW, L, v1, s, (const T *)a[0], (T *)a[1], m, n,
                          (A)d->alpha, (A)d->beta);
        break;
    }
    case HETRUN_OP_REDUCE_SUM_AXIS0: {
        const int64_t tiles = (n + kColX - 1) / kColX, cap = (int64_t)(sm > 0 ? sm : 1) * 16;
        colsum_kernel<T><<<(unsigned)(tiles < cap ? tiles : cap), dim3(kColX, kColY), 0, s>>>(
            (const T *)a[0], (T *)a[1], m, n, (A)d->alpha, (A)d->beta);
        break;
    }
    default: return cudaErrorNotSupported;
    }
    return cudaGetLastError();
}

} // namespace

extern "C" cudaError_t hetrun_cuda_rowwise(const hetrun_op_desc *d, void *const *args,
                                           cudaStream_t stream, int sm_count) {
    switch ((hetrun_dtype)d->dtype) {
    case HETRUN_F32: return run_typed<float>(d, args, stream, sm_count);
    case HETRUN_F64: return run_typed<double>(d, args, stream, sm_count);
    case HETRUN_F16: return run_typed<__half>(d, args, stream, sm_count);
    case HETRUN_BF16: return run_typed<__nv_bfloat16>(d, args, stream, sm_count);
    default: return cudaErrorNotSupported;
    }
}
