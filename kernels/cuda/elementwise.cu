/* Elementwise catalogue ops on CUDA: one grid-stride kernel template, 16-byte vector
 * loads/stores when every operand is 16-byte aligned (scalar tail), math in float
 * (double for f64), one rounding on store. Operands may alias where the catalogue
 * allows it, so no __restrict__: each element is read and written by one thread. */
#include "common.cuh"
#include "kernels.h"

using namespace hetrun_cuda;

namespace {

template <int V, typename T>
__device__ __forceinline__ void ld(const T *p, int64_t i, acc_t<T> (&o)[V]) {
    if constexpr (V == 1) {
        o[0] = to_f(p[i]);
    } else {
        Pack<T, V> pk = *reinterpret_cast<const Pack<T, V> *>(p + i);
#pragma unroll
        for (int k = 0; k < V; k++)
            o[k] = to_f(pk.v[k]);
    }
}

template <int V, typename T, typename A>
__device__ __forceinline__ void st(T *p, int64_t i, const A (&v)[V]) {
    if constexpr (V == 1) {
        p[i] = from_f<T>(v[0]);
    } else {
        Pack<T, V> pk;
#pragma unroll
        for (int k = 0; k < V; k++)
            pk.v[k] = from_f<T>(v[k]);
        *reinterpret_cast<Pack<T, V> *>(p + i) = pk;
    }
}

template <typename A> __device__ __forceinline__ A act_fwd(unsigned act, A x) {
    if (act == HETRUN_ACT_RELU) return x > A(0) ? x : A(0);
    if (act == HETRUN_ACT_IDENTITY) return x;
    if (act == HETRUN_ACT_GELU_ERF) return A(0.5) * x * (A(1) + m_erf(x * A(0.7071067811865476)));
    const A k = A(0.7978845608028654), c = A(0.044715);
    return A(0.5) * x * (A(1) + m_tanh(k * (x + c * x * x * x)));
}

template <typename A> __device__ __forceinline__ A act_grad(unsigned act, A x) {
    if (act == HETRUN_ACT_RELU) return x > A(0) ? A(1) : A(0);
    if (act == HETRUN_ACT_IDENTITY) return A(1);
    if (act == HETRUN_ACT_GELU_ERF) /* Phi(x) + x phi(x) */
        return A(0.5) * (A(1) + m_erf(x * A(0.7071067811865476))) +
               x * A(0.3989422804014327) * m_exp(A(-0.5) * x * x);
    const A k = A(0.7978845608028654), c = A(0.044715);
    A t = m_tanh(k * (x + c * x * x * x));
    A du = k * (A(1) + A(3) * c * x * x);
    return A(0.5) * (A(1) + t) + A(0.5) * x * (A(1) - t * t) * du;
}

/* Each functor processes V consecutive elements starting at i (i % V == 0 when V > 1). */
template <typename T> struct BiasAdd {
    const T *x, *b;
    T *y;
    int64_t n;
    template <int V> __device__ void run(int64_t i) const {
        acc_t<T> v[V];
        ld<V>(x, i, v);
        int64_t j = i % n;
#pragma unroll
        for (int k = 0; k < V; k++) {
            v[k] += to_f(b[j]);
            if (++j == n) j = 0;
        }
        st<V>(y, i, v);
    }
};

template <typename T> struct ActFwd {
    const T *x;
    T *y;
    unsigned act;
    template <int V> __device__ void run(int64_t i) const {
        acc_t<T> v[V];
        ld<V>(x, i, v);
#pragma unroll
        for (int k = 0; k < V; k++)
            v[k] = act_fwd(act, v[k]);
        st<V>(y, i, v);
    }
};

template <typename T> struct ActBwd {
    const T *x, *dy;
    T *dx;
    unsigned act;
    template <int V> __device__ void run(int64_t i) const {
        acc_t<T> a[V], g[V];
        ld<V>(x, i, a);
        ld<V>(dy, i, g);
#pragma unroll
        for (int k = 0; k < V; k++)
            g[k] *= act_grad(act, a[k]);
        st<V>(dx, i, g);
    }
};

template <typename T> struct XentBwd {
    const T *p;
    const int32_t *labels;
    T *dl;
    int64_t n;
    acc_t<T> alpha;
    template <int V> __device__ void run(int64_t i) const {
        acc_t<T> v[V];
        ld<V>(p, i, v);
        int64_t row = i / n, j = i - row * n;
        int32_t label = labels[row];
#pragma unroll
        for (int k = 0; k < V; k++) {
            v[k] = alpha * (v[k] - (j == label ? acc_t<T>(1) : acc_t<T>(0)));
            if (++j == n) {
                j = 0;
                if (k + 1 < V) label = labels[++row];
            }
        }
        st<V>(dl, i, v);
    }
};

template <typename T> struct Scale {
    const T *x;
    T *y;
    acc_t<T> alpha;
    template <int V> __device__ void run(int64_t i) const {
        acc_t<T> v[V];
        ld<V>(x, i, v);
#pragma unroll
        for (int k = 0; k < V; k++)
            v[k] *= alpha;
        st<V>(y, i, v);
    }
};

template <typename T> struct Axpy {
    const T *x;
    T *y;
    acc_t<T> alpha;
    template <int V> __device__ void run(int64_t i) const {
        acc_t<T> a[V], b[V];
        ld<V>(x, i, a);
        ld<V>(y, i, b);
#pragma unroll
        for (int k = 0; k < V; k++)
            b[k] = alpha * a[k] + b[k];
        st<V>(y, i, b);
    }
};

template <typename T> struct Mul {
    const T *x, *y;
    T *z;
    template <int V> __device__ void run(int64_t i) const {
        acc_t<T> a[V], b[V];
        ld<V>(x, i, a);
        ld<V>(y, i, b);
#pragma unroll
        for (int k = 0; k < V; k++)
            a[k] *= b[k];
        st<V>(z, i, a);
    }
};

template <typename T> struct Fill {
    T *y;
    acc_t<T> value;
    template <int V> __device__ void run(int64_t i) const {
        acc_t<T> v[V];
#pragma unroll
        for (int k = 0; k < V; k++)
            v[k] = value;
        st<V>(y, i, v);
    }
};

template <typename T> struct Sgd {
    T *w;
    const T *g;
    T *vel;
    acc_t<T> lr, mom, wd;
    template <int V> __device__ void run(int64_t i) const {
        acc_t<T> a[V], b[V], c[V];
        ld<V>(w, i, a);
        ld<V>(g, i, b);
        ld<V>(vel, i, c);
#pragma unroll
        for (int k = 0; k < V; k++) {
            c[k] = mom * c[k] + b[k] + wd * a[k];
            a[k] = a[k] - lr * c[k];
        }
        st<V>(vel, i, c);
        st<V>(w, i, a);
    }
};

template <typename T> struct AdamW {
    T *w;
    const T *g;
    T *m1, *m2;
    acc_t<T> lr, b1, b2, eps, wd, c1, c2;
    template <int V> __device__ void run(int64_t i) const {
        acc_t<T> w_[V], g_[V], m_[V], v_[V];
        ld<V>(w, i, w_);
        ld<V>(g, i, g_);
        ld<V>(m1, i, m_);
        ld<V>(m2, i, v_);
#pragma unroll
        for (int k = 0; k < V; k++) {
            using A = acc_t<T>;
            m_[k] = b1 * m_[k] + (A(1) - b1) * g_[k];
            v_[k] = b2 * v_[k] + (A(1) - b2) * g_[k] * g_[k];
            w_[k] -= lr * wd * w_[k];
            w_[k] -= lr * (m_[k] / c1) / (m_sqrt(v_[k] / c2) + eps);
        }
        st<V>(w, i, w_);
        st<V>(m1, i, m_);
        st<V>(m2, i, v_);
    }
};

template <typename Ti, typename To> struct Cast {
    const Ti *x;
    To *y;
    template <int V> __device__ void run(int64_t i) const {
        acc_t<Ti> v[V];
        ld<V>(x, i, v);
        st<V>(y, i, v); /* from_f<To>(float|double): direct RNE conversion */
    }
};

template <int V, typename F> __global__ void ew_kernel(F f, int64_t n) {
    const int64_t nvec = n / V;
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t v = tid; v < nvec; v += stride)
        f.template run<V>(v * V);
    if constexpr (V > 1)
        for (int64_t i = nvec * V + tid; i < n; i += stride)
            f.template run<1>(i);
}

constexpr int kThreads = 256;

template <int V, typename F> cudaError_t launch(F f, int64_t n, bool vec, cudaStream_t s, int sm) {
    if (vec && V > 1 && n >= V)
        ew_kernel<V><<<grid_for(n / V, kThreads, sm), kThreads, 0, s>>>(f, n);
    else
        ew_kernel<1><<<grid_for(n, kThreads, sm), kThreads, 0, s>>>(f, n);
    return cudaGetLastError();
}

template <typename T>
cudaError_t run_typed(const hetrun_op_desc *d, void *const *a, cudaStream_t s, int sm) {
    using A = acc_t<T>;
    constexpr int V = vec_width<T>();
    const int64_t mn = d->m * d->n;
    const bool vec = aligned_all(a, 4, 16); /* unused slots are NULL */
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_BIAS_ADD:
        return launch<V>(BiasAdd<T>{(const T *)a[0], (const T *)a[1], (T *)a[2], d->n}, mn, vec, s,
                         sm);
    case HETRUN_OP_ACT_FORWARD:
        return launch<V>(ActFwd<T>{(const T *)a[0], (T *)a[1], d->act}, mn, vec, s, sm);
    case HETRUN_OP_ACT_BACKWARD:
        return launch<V>(ActBwd<T>{(const T *)a[0], (const T *)a[1], (T *)a[2], d->act}, mn, vec, s,
                         sm);
    case HETRUN_OP_XENT_BACKWARD:
        return launch<V>(
            XentBwd<T>{(const T *)a[0], (const int32_t *)a[1], (T *)a[2], d->n, (A)d->alpha}, mn,
            vec, s, sm);
    case HETRUN_OP_SCALE:
        return launch<V>(Scale<T>{(const T *)a[0], (T *)a[1], (A)d->alpha}, mn, vec, s, sm);
    case HETRUN_OP_AXPY:
        return launch<V>(Axpy<T>{(const T *)a[0], (T *)a[1], (A)d->alpha}, mn, vec, s, sm);
    case HETRUN_OP_MUL:
        return launch<V>(Mul<T>{(const T *)a[0], (const T *)a[1], (T *)a[2]}, mn, vec, s, sm);
    case HETRUN_OP_FILL: return launch<V>(Fill<T>{(T *)a[0], (A)d->alpha}, mn, vec, s, sm);
    case HETRUN_OP_SGD_MOMENTUM:
        return launch<V>(
            Sgd<T>{(T *)a[0], (const T *)a[1], (T *)a[2], (A)d->p[0], (A)d->p[1], (A)d->p[2]}, mn,
            vec, s, sm);
    case HETRUN_OP_ADAMW: {
        /* Bias corrections in double on the host: pow() of a step count is not worth
         * a per-element transcendental. */
        const double c1 = 1.0 - pow(d->p[1], d->p[5]), c2 = 1.0 - pow(d->p[2], d->p[5]);
        return launch<V>(AdamW<T>{(T *)a[0], (const T *)a[1], (T *)a[2], (T *)a[3], (A)d->p[0],
                                  (A)d->p[1], (A)d->p[2], (A)d->p[3], (A)d->p[4], (A)c1, (A)c2},
                         mn, vec, s, sm);
    }
    default: return cudaErrorNotSupported;
    }
}

template <typename Ti, typename To>
cudaError_t run_cast(void *const *a, int64_t n, cudaStream_t s, int sm) {
    constexpr int V = vec_width<Ti>() < vec_width<To>() ? vec_width<Ti>() : vec_width<To>();
    return launch<V>(Cast<Ti, To>{(const Ti *)a[0], (To *)a[1]}, n, aligned_all(a, 2, 16), s, sm);
}

cudaError_t cast(const hetrun_op_desc *d, void *const *a, cudaStream_t s, int sm) {
    const int64_t n = d->m * d->n;
    const hetrun_dtype in = (hetrun_dtype)d->dtype, out = (hetrun_dtype)d->out_dtype;
    if (in == HETRUN_F32 && out == HETRUN_F16) return run_cast<float, __half>(a, n, s, sm);
    if (in == HETRUN_F32 && out == HETRUN_BF16) return run_cast<float, __nv_bfloat16>(a, n, s, sm);
    if (in == HETRUN_F32 && out == HETRUN_F64) return run_cast<float, double>(a, n, s, sm);
    if (in == HETRUN_F16 && out == HETRUN_F32) return run_cast<__half, float>(a, n, s, sm);
    if (in == HETRUN_BF16 && out == HETRUN_F32) return run_cast<__nv_bfloat16, float>(a, n, s, sm);
    if (in == HETRUN_F64 && out == HETRUN_F32) return run_cast<double, float>(a, n, s, sm);
    return cudaErrorNotSupported;
}

/* GEMM_BIAS_ACT epilogue on the GEMM's result: v = C + bias[j]; aux = v; C = act(v). */
template <typename T>
__global__ void bias_act(T *c, int64_t ldc, const T *bias, T *aux, int64_t m, int64_t n,
                         unsigned act) {
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < m * n;
         t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = t / n, j = t % n;
        acc_t<T> v = to_f(c[i * ldc + j]);
        if (bias) v += to_f(bias[j]);
        if (aux) aux[t] = from_f<T>(v);
        c[i * ldc + j] = from_f<T>(act_fwd(act, v));
    }
}

template <typename T>
cudaError_t run_bias_act(const hetrun_op_desc *d, void *c, const void *bias, void *aux,
                         cudaStream_t s, int sm) {
    bias_act<T><<<grid_for(d->m * d->n, 256, sm), 256, 0, s>>>(
        (T *)c, d->ldc ? d->ldc : d->n, (const T *)bias, (T *)aux, d->m, d->n, d->act);
    return cudaGetLastError();
}

} // namespace

extern "C" cudaError_t hetrun_cuda_bias_act(const hetrun_op_desc *d, void *c, const void *bias,
                                            void *aux, cudaStream_t stream, int sm_count) {
    switch ((hetrun_dtype)d->out_dtype) {
    case HETRUN_F32: return run_bias_act<float>(d, c, bias, aux, stream, sm_count);
    case HETRUN_F64: return run_bias_act<double>(d, c, bias, aux, stream, sm_count);
    case HETRUN_F16: return run_bias_act<__half>(d, c, bias, aux, stream, sm_count);
    case HETRUN_BF16: return run_bias_act<__nv_bfloat16>(d, c, bias, aux, stream, sm_count);
    default: return cudaErrorNotSupported;
    }
}

extern "C" cudaError_t hetrun_cuda_elementwise(const hetrun_op_desc *d, void *const *args,
                                               cudaStream_t stream, int sm_count) {
    if (d->kind == HETRUN_OP_CAST) return cast(d, args, stream, sm_count);
    switch ((hetrun_dtype)d->dtype) {
    case HETRUN_F32: return run_typed<float>(d, args, stream, sm_count);
    case HETRUN_F64: return run_typed<double>(d, args, stream, sm_count);
    case HETRUN_F16: return run_typed<__half>(d, args, stream, sm_count);
    case HETRUN_BF16: return run_typed<__nv_bfloat16>(d, args, stream, sm_count);
    default: return cudaErrorNotSupported;
    }
}
