/* ABI 1.1 training ops on CUDA: LAYERNORM_FORWARD/BACKWARD, SOFTMAX_BACKWARD,
 * EMBEDDING_FORWARD/BACKWARD, NONFINITE_COUNT, SUM_SQUARES. Written for correctness and
 * bit-for-bit determinism, not speed: every sum runs in a fixed order (tree reductions
 * of a fixed block size, partials over a fixed chunking, no float atomics), so the same
 * inputs give the same bits on every run and every device. Math in float (double for
 * f64); sums of squares in double. */
#include <math.h>

#include "common.cuh"
#include "kernels.h"

using namespace hetrun_cuda;

namespace {

constexpr int THREADS = 256;         /* every kernel here; block_sum relies on a power of two */
constexpr int64_t LN_CHUNK = 256;    /* rows per partial of the dgamma/dbeta column sums */
constexpr int64_t SUM_BLOCKS = 1024; /* most partials of the whole-tensor reductions */

/* Sum over the block in a fixed tree order; `sh` holds THREADS values. */
template <typename A> __device__ A block_sum(A v, A *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    A r = sh[0];
    __syncthreads(); /* sh is reused by the next call */
    return r;
}

/* Blocks for a one-block-per-row kernel (grid-stride over rows). */
unsigned row_blocks(int64_t m) {
    return (unsigned)(m < 65535 ? (m > 0 ? m : 1) : 65535);
}

/* Blocks of a whole-tensor reduction: a function of the size only, so partials (and
 * the result's bits) do not depend on the device. */
unsigned sum_blocks(int64_t mn) {
    int64_t b = (mn + THREADS - 1) / THREADS;
    return (unsigned)(b < 1 ? 1 : b > SUM_BLOCKS ? SUM_BLOCKS : b);
}

/* ---- LayerNorm forward: one block per row, two-pass mean and variance ---- */

template <typename T>
__global__ void ln_forward(const T *x, const T *gamma, const T *beta, T *y, float *mean_out,
                           float *rstd_out, int64_t m, int64_t n, double eps) {
    using A = acc_t<T>;
    __shared__ A sh[THREADS];
    for (int64_t i = blockIdx.x; i < m; i += gridDim.x) {
        const T *xr = x + i * n;
        A s = 0;
        for (int64_t j = threadIdx.x; j < n; j += THREADS)
            s += to_f(xr[j]);
        const A mean = block_sum(s, sh) / (A)n;
        A q = 0;
        for (int64_t j = threadIdx.x; j < n; j += THREADS) {
            A c = to_f(xr[j]) - mean;
            q += c * c;
        }
        const A rstd = m_rsqrt(block_sum(q, sh) / (A)n + (A)eps);
        for (int64_t j = threadIdx.x; j < n; j += THREADS)
            y[i * n + j] = from_f<T>((to_f(xr[j]) - mean) * rstd * to_f(gamma[j]) + to_f(beta[j]));
        if (threadIdx.x == 0) {
            mean_out[i] = (float)mean;
            rstd_out[i] = (float)rstd;
        }
    }
}

/* ---- LayerNorm backward ---- */

/* dX, one block per row: dx = rstd (g dy - mean(g dy) - xhat mean(g dy xhat)) (+ old). */
template <typename T>
__global__ void ln_backward_dx(const T *x, const T *gamma, const float *mean, const float *rstd,
                               const T *dy, T *dx, int64_t m, int64_t n, bool accumulate) {
    using A = acc_t<T>;
    __shared__ A sh[THREADS];
    for (int64_t i = blockIdx.x; i < m; i += gridDim.x) {
        const A mu = mean[i], rs = rstd[i];
        A s1 = 0, s2 = 0;
        for (int64_t j = threadIdx.x; j < n; j += THREADS) {
            A xhat = (to_f(x[i * n + j]) - mu) * rs;
            A g = to_f(dy[i * n + j]) * to_f(gamma[j]);
            s1 += g;
            s2 += g * xhat;
        }
        s1 = block_sum(s1, sh) / (A)n;
        s2 = block_sum(s2, sh) / (A)n;
        for (int64_t j = threadIdx.x; j < n; j += THREADS) {
            A xhat = (to_f(x[i * n + j]) - mu) * rs;
            A g = to_f(dy[i * n + j]) * to_f(gamma[j]);
            A v = rs * (g - s1 - xhat * s2);
            if (accumulate) v += to_f(dx[i * n + j]);
            dx[i * n + j] = from_f<T>(v);
        }
    }
}

/* dgamma/dbeta pass 1: partial column sums over chunks of LN_CHUNK rows, rows in order;
 * item (c, j) writes part[c * n + j] (dgamma) and part[(chunks + c) * n + j] (dbeta). */
template <typename T>
__global__ void ln_backward_partial(const T *x, const float *mean, const float *rstd, const T *dy,
                                    acc_t<T> *part, int64_t m, int64_t n, int64_t chunks) {
    using A = acc_t<T>;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < chunks * n;
         t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t c = t / n, j = t % n;
        const int64_t end = (c + 1) * LN_CHUNK < m ? (c + 1) * LN_CHUNK : m;
        A dg = 0, db = 0;
        for (int64_t i = c * LN_CHUNK; i < end; i++) {
            A g = to_f(dy[i * n + j]);
            dg += g * (to_f(x[i * n + j]) - (A)mean[i]) * (A)rstd[i];
            db += g;
        }
        part[c * n + j] = dg;
        part[(chunks + c) * n + j] = db;
    }
}

/* dgamma/dbeta pass 2: chunks summed in order per column (+ old value when accumulating). */
template <typename T>
__global__ void ln_backward_final(const acc_t<T> *part, T *dgamma, T *dbeta, int64_t n,
                                  int64_t chunks, bool accumulate) {
    using A = acc_t<T>;
    for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < n;
         j += (int64_t)gridDim.x * blockDim.x) {
        A dg = 0, db = 0;
        for (int64_t c = 0; c < chunks; c++) {
            dg += part[c * n + j];
            db += part[(chunks + c) * n + j];
        }
        if (accumulate) {
            dg += to_f(dgamma[j]);
            db += to_f(dbeta[j]);
        }
        dgamma[j] = from_f<T>(dg);
        dbeta[j] = from_f<T>(db);
    }
}

/* ---- softmax backward: one block per row; dX may alias dY (each element is read by
 * the thread that writes it, after the row's dot product is complete) ---- */

template <typename T>
__global__ void softmax_backward(const T *y, const T *dy, T *dx, int64_t m, int64_t n) {
    using A = acc_t<T>;
    __shared__ A sh[THREADS];
    for (int64_t i = blockIdx.x; i < m; i += gridDim.x) {
        A s = 0;
        for (int64_t j = threadIdx.x; j < n; j += THREADS)
            s += to_f(y[i * n + j]) * to_f(dy[i * n + j]);
        const A dot = block_sum(s, sh);
        for (int64_t j = threadIdx.x; j < n; j += THREADS)
            dx[i * n + j] = from_f<T>(to_f(y[i * n + j]) * (to_f(dy[i * n + j]) - dot));
    }
}

/* ---- embedding ---- */

template <typename T>
__global__ void embedding_forward(const int32_t *ids, const T *table, T *out, int64_t m, int64_t n,
                                  int64_t rows, double alpha, double beta) {
    using A = acc_t<T>;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < m * n;
         t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t i = t / n, j = t % n;
        const int32_t id = ids[i];
        A v = (id >= 0 && id < rows) ? (A)alpha * to_f(table[(int64_t)id * n + j]) : (A)NAN;
        if (beta != 0.0) v += (A)beta * to_f(out[t]);
        out[t] = from_f<T>(v);
    }
}

/* One thread per (table row r, column j) scans every id in order: deterministic and
 * simple, O(rows * n * m) id reads. A sort-based kernel is future work. */
template <typename T, typename O>
__global__ void embedding_backward(const int32_t *ids, const T *dout, O *dtable, int64_t m,
                                   int64_t n, int64_t rows, double alpha, double beta) {
    using A = acc_t<O>;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < rows * n;
         t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = t / n, j = t % n;
        A s = 0;
        for (int64_t i = 0; i < m; i++)
            if (ids[i] == r) s += (A)to_f(dout[i * n + j]);
        A v = (A)alpha * s;
        if (beta != 0.0) v += (A)beta * to_f(dtable[t]);
        dtable[t] = from_f<O>(v);
    }
}

/* ---- whole-tensor reductions: per-block partials, then one block sums them ---- */

template <typename T> __device__ __forceinline__ bool finite_of(T v) {
    return isfinite(to_f(v));
}

template <typename T>
__global__ void nonfinite_partial(const T *x, int64_t mn, unsigned long long *part) {
    __shared__ unsigned long long sh[THREADS];
    unsigned long long c = 0;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < mn;
         t += (int64_t)gridDim.x * blockDim.x)
        c += !finite_of(x[t]);
    c = block_sum(c, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = c;
}

__global__ void nonfinite_final(const unsigned long long *part, int nparts, int32_t *count,
                                bool accumulate) {
    __shared__ unsigned long long sh[THREADS];
    unsigned long long c = 0;
    for (int i = threadIdx.x; i < nparts; i += THREADS)
        c += part[i];
    c = block_sum(c, sh);
    if (threadIdx.x == 0) *count = (int32_t)c + (accumulate ? *count : 0);
}

template <typename T> __global__ void sumsq_partial(const T *x, int64_t mn, double *part) {
    __shared__ double sh[THREADS];
    double s = 0;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < mn;
         t += (int64_t)gridDim.x * blockDim.x) {
        double v = (double)to_f(x[t]);
        s += v * v;
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void sumsq_final(const double *part, int nparts, float *out, double alpha, double beta) {
    __shared__ double sh[THREADS];
    double s = 0;
    for (int i = threadIdx.x; i < nparts; i += THREADS)
        s += part[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) *out = (float)(alpha * s + (beta != 0.0 ? beta * (double)*out : 0.0));
}

template <typename T>
cudaError_t run_typed(const hetrun_op_desc *d, void *const *a, void *ws, cudaStream_t s, int sm) {
    const int64_t m = d->m, n = d->n, mn = m * n;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_LAYERNORM_FORWARD:
        ln_forward<T><<<row_blocks(m), THREADS, 0, s>>>((const T *)a[0], (const T *)a[1],
                                                        (const T *)a[2], (T *)a[3], (float *)a[4],
                                                        (float *)a[5], m, n, d->p[0]);
        break;
    case HETRUN_OP_LAYERNORM_BACKWARD: {
        const int64_t chunks = (m + LN_CHUNK - 1) / LN_CHUNK;
        acc_t<T> *part = (acc_t<T> *)ws;
        ln_backward_dx<T><<<row_blocks(m), THREADS, 0, s>>>(
            (const T *)a[0], (const T *)a[1], (const float *)a[2], (const float *)a[3],
            (const T *)a[4], (T *)a[5], m, n, d->beta != 0.0);
        ln_backward_partial<T><<<grid_for(chunks * n, THREADS, sm), THREADS, 0, s>>>(
            (const T *)a[0], (const float *)a[2], (const float *)a[3], (const T *)a[4], part, m, n,
            chunks);
        ln_backward_final<T><<<grid_for(n, THREADS, sm), THREADS, 0, s>>>(
            part, (T *)a[6], (T *)a[7], n, chunks, d->p[1] != 0.0);
        break;
    }
    case HETRUN_OP_SOFTMAX_BACKWARD:
        softmax_backward<T>
            <<<row_blocks(m), THREADS, 0, s>>>((const T *)a[0], (const T *)a[1], (T *)a[2], m, n);
        break;
    case HETRUN_OP_EMBEDDING_FORWARD:
        embedding_forward<T><<<grid_for(mn, THREADS, sm), THREADS, 0, s>>>(
            (const int32_t *)a[0], (const T *)a[1], (T *)a[2], m, n, d->k, d->alpha, d->beta);
        break;
    case HETRUN_OP_EMBEDDING_BACKWARD:
        if (d->out_dtype == d->dtype)
            embedding_backward<T, T><<<grid_for(d->k * n, THREADS, sm), THREADS, 0, s>>>(
                (const int32_t *)a[0], (const T *)a[1], (T *)a[2], m, n, d->k, d->alpha, d->beta);
        else if (d->out_dtype == HETRUN_F32)
            embedding_backward<T, float><<<grid_for(d->k * n, THREADS, sm), THREADS, 0, s>>>(
                (const int32_t *)a[0], (const T *)a[1], (float *)a[2], m, n, d->k, d->alpha,
                d->beta);
        else
            return cudaErrorNotSupported;
        break;
    case HETRUN_OP_NONFINITE_COUNT: {
        const unsigned g = sum_blocks(mn);
        nonfinite_partial<T><<<g, THREADS, 0, s>>>((const T *)a[0], mn, (unsigned long long *)ws);
        nonfinite_final<<<1, THREADS, 0, s>>>((const unsigned long long *)ws, (int)g,
                                              (int32_t *)a[1], d->beta != 0.0);
        break;
    }
    case HETRUN_OP_SUM_SQUARES: {
        const unsigned g = sum_blocks(mn);
        sumsq_partial<T><<<g, THREADS, 0, s>>>((const T *)a[0], mn, (double *)ws);
        sumsq_final<<<1, THREADS, 0, s>>>((const double *)ws, (int)g, (float *)a[1], d->alpha,
                                          d->beta);
        break;
    }
    default: return cudaErrorNotSupported;
    }
    return cudaGetLastError();
}

} // namespace

extern "C" uint64_t hetrun_cuda_training_workspace(const hetrun_op_desc *d) {
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_LAYERNORM_BACKWARD: /* two partial sums per (chunk, column), acc type */
        return 2ull * (uint64_t)((d->m + LN_CHUNK - 1) / LN_CHUNK) * (uint64_t)d->n *
               sizeof(double);
    case HETRUN_OP_NONFINITE_COUNT:
    case HETRUN_OP_SUM_SQUARES: return (uint64_t)SUM_BLOCKS * 8u;
    default: return 0;
    }
}

extern "C" cudaError_t hetrun_cuda_training(const hetrun_op_desc *d, void *const *args, void *ws,
                                            cudaStream_t stream, int sm_count) {
    switch ((hetrun_dtype)d->dtype) {
    case HETRUN_F32: return run_typed<float>(d, args, ws, stream, sm_count);
    case HETRUN_F64: return run_typed<double>(d, args, ws, stream, sm_count);
    case HETRUN_F16: return run_typed<__half>(d, args, ws, stream, sm_count);
    case HETRUN_BF16: return run_typed<__nv_bfloat16>(d, args, ws, stream, sm_count);
    default: return cudaErrorNotSupported;
    }
}
