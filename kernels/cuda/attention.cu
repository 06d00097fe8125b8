/* ATTENTION_FORWARD / ATTENTION_BACKWARD on CUDA. F16 and BF16 at head dim 32, 64 and 128 go
 * to the tensor-core flash-attention-2-class kernels of attention_flash.cu. Everything else
 * (F32, other head dims) runs this file's correctness baseline, not a fast kernel: one block
 * per (query, head, batch) (forward, dQ) or (key, head, batch) (dK, dV); scores are
 * recomputed per pass instead of kept, sums run in a fixed order (deterministic, no atomics),
 * math in float. Both paths share the workspace (rowsum(dO * O)). */
#include <math.h>

#include "common.cuh"
#include "kernels.h"
#include "kernels/catalogue.h"

using namespace hetrun_cuda;

namespace {

constexpr int THREADS = 128; /* keys (or queries) per chunk: one per thread */
constexpr int MAX_D = 256;   /* head dimension limit (hetrun_cuda_attention_max_head_dim) */

struct Geo {
    int64_t lq, lk, heads, dim;
    int64_t ldq, bsq, ldk, bsk, ldo, bso;
    float scale;
    bool causal;
    const int32_t *mask; /* B x Lk, nonzero = kept; NULL = all kept */
};

__device__ __forceinline__ bool kept(const Geo &g, int64_t b, int64_t i, int64_t j) {
    if (g.causal && j > i + (g.lk - g.lq)) return false;
    return !g.mask || g.mask[b * g.lk + j] != 0;
}

/* Fixed-order tree reductions over the block (THREADS values in sh). */
__device__ float block_max(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

__device__ float block_add(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

template <typename T> __device__ float dot(const float *q, const T *k, int64_t dim) {
    float s = 0.0f;
    for (int64_t d = 0; d < dim; d++)
        s += q[d] * to_f(k[d]);
    return s;
}

/* acc[c] += sum_t w[t] * rows[t * ld + d] over n rows, for this thread's columns
 * d = threadIdx.x + c * THREADS (fixed order). */
template <typename T>
__device__ void add_rows(float (&acc)[MAX_D / THREADS], const float *w, const T *rows, int64_t ld,
                         int64_t n, int64_t dim) {
    for (int c = 0; c < MAX_D / THREADS; c++) {
        const int64_t d = threadIdx.x + (int64_t)c * THREADS;
        if (d >= dim) break;
        for (int64_t t = 0; t < n; t++)
            acc[c] += w[t] * to_f(rows[t * ld + d]);
    }
}

/* Forward: pass 1 max and sum of exp over kept keys, pass 2 O = sum_j p_j v_j by chunks. */
template <typename T>
__global__ void attn_forward(Geo g, const T *q, const T *k, const T *v, T *o, float *lse) {
    __shared__ float qs[MAX_D], red[THREADS], p[THREADS];
    const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const T *qi = q + b * g.bsq + i * g.ldq + h * g.dim;
    for (int64_t d = threadIdx.x; d < g.dim; d += THREADS)
        qs[d] = to_f(qi[d]);
    __syncthreads();
    const T *kb = k + b * g.bsk + h * g.dim, *vb = v + b * g.bsk + h * g.dim;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < g.lk; j += THREADS)
        if (kept(g, b, i, j)) mx = fmaxf(mx, g.scale * dot(qs, kb + j * g.ldk, g.dim));
    mx = block_max(mx, red);
    T *oi = o + b * g.bso + i * g.ldo + h * g.dim;
    float *lse_i = lse + (b * g.heads + h) * g.lq + i;
    if (mx == -INFINITY) { /* no kept key */
        for (int64_t d = threadIdx.x; d < g.dim; d += THREADS)
            oi[d] = from_f<T>(0.0f);
        if (threadIdx.x == 0) *lse_i = -INFINITY;
        return;
    }
    float l = 0.0f;
    for (int64_t j = threadIdx.x; j < g.lk; j += THREADS)
        if (kept(g, b, i, j)) l += expf(g.scale * dot(qs, kb + j * g.ldk, g.dim) - mx);
    l = block_add(l, red);
    /* Each thread owns output columns d = t, t + THREADS, ... (at most MAX_D / THREADS). */
    float acc[MAX_D / THREADS] = {0.0f};
    for (int64_t j0 = 0; j0 < g.lk; j0 += THREADS) {
        const int64_t j = j0 + threadIdx.x;
        p[threadIdx.x] = (j < g.lk && kept(g, b, i, j))
                             ? expf(g.scale * dot(qs, kb + j * g.ldk, g.dim) - mx) / l
                             : 0.0f;
        __syncthreads();
        add_rows(acc, p, vb + j0 * g.ldk, g.ldk, g.lk - j0 < THREADS ? g.lk - j0 : THREADS, g.dim);
        __syncthreads();
    }
    for (int c = 0; c < MAX_D / THREADS; c++) {
        const int64_t d = threadIdx.x + (int64_t)c * THREADS;
        if (d < g.dim) oi[d] = from_f<T>(acc[c]);
    }
    if (threadIdx.x == 0) *lse_i = mx + logf(l);
}

/* Backward step 1: Dsum[b, h, i] = sum_d dO[i, d] * O[i, d]. */
template <typename T> __global__ void attn_rowdot(Geo g, const T *o, const T *dout, float *dsum) {
    __shared__ float red[THREADS];
    const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int64_t off = b * g.bso + i * g.ldo + h * g.dim;
    float s = 0.0f;
    for (int64_t d = threadIdx.x; d < g.dim; d += THREADS)
        s += to_f(o[off + d]) * to_f(dout[off + d]);
    s = block_add(s, red);
    if (threadIdx.x == 0) dsum[(b * g.heads + h) * g.lq + i] = s;
}

/* P_ij and dS_ij = P_ij (dO_i . v_j - Dsum_i) for one kept pair; P = 0 off the mask. */
template <typename T>
__device__ void pair_grad(const Geo &g, const float *qi, const T *kj, const T *vj, const T *doi,
                          float lse_i, float dsum_i, float *p, float *ds) {
    if (lse_i == -INFINITY) { /* a query with no kept key contributes nothing */
        *p = 0.0f;
        *ds = 0.0f;
        return;
    }
    *p = expf(g.scale * dot(qi, kj, g.dim) - lse_i);
    float dp = 0.0f;
    for (int64_t d = 0; d < g.dim; d++)
        dp += to_f(doi[d]) * to_f(vj[d]);
    *ds = *p * (dp - dsum_i);
}

/* Backward step 2: dQ_i = scale * sum_j dS_ij k_j, one block per query. */
template <typename T>
__global__ void attn_dq(Geo g, const T *q, const T *k, const T *v, const T *dout, const float *lse,
                        const float *dsum, T *dq) {
    __shared__ float qs[MAX_D], ds[THREADS];
    const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int64_t qoff = b * g.bsq + i * g.ldq + h * g.dim;
    for (int64_t d = threadIdx.x; d < g.dim; d += THREADS)
        qs[d] = to_f(q[qoff + d]);
    __syncthreads();
    const int64_t row = (b * g.heads + h) * g.lq + i;
    const T *kb = k + b * g.bsk + h * g.dim, *vb = v + b * g.bsk + h * g.dim;
    const T *doi = dout + b * g.bso + i * g.ldo + h * g.dim;
    float acc[MAX_D / THREADS] = {0.0f};
    for (int64_t j0 = 0; j0 < g.lk; j0 += THREADS) {
        const int64_t j = j0 + threadIdx.x;
        float pv = 0.0f, dsv = 0.0f;
        if (j < g.lk && kept(g, b, i, j))
            pair_grad(g, qs, kb + j * g.ldk, vb + j * g.ldk, doi, lse[row], dsum[row], &pv, &dsv);
        ds[threadIdx.x] = dsv;
        __syncthreads();
        add_rows(acc, ds, kb + j0 * g.ldk, g.ldk, g.lk - j0 < THREADS ? g.lk - j0 : THREADS, g.dim);
        __syncthreads();
    }
    for (int c = 0; c < MAX_D / THREADS; c++) {
        const int64_t d = threadIdx.x + (int64_t)c * THREADS;
        if (d < g.dim) dq[qoff + d] = from_f<T>(g.scale * acc[c]);
    }
}

/* Backward step 3: dV_j = sum_i P_ij dO_i, dK_j = scale * sum_i dS_ij q_i, one block per key. */
template <typename T>
__global__ void attn_dkv(Geo g, const T *q, const T *k, const T *v, const T *dout, const float *lse,
                         const float *dsum, T *dk, T *dv) {
    __shared__ float ps[THREADS], ds[THREADS];
    const int64_t j = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int64_t koff = b * g.bsk + j * g.ldk + h * g.dim;
    const T *kj = k + koff, *vj = v + koff;
    float accv[MAX_D / THREADS] = {0.0f}, acck[MAX_D / THREADS] = {0.0f};
    for (int64_t i0 = 0; i0 < g.lq; i0 += THREADS) {
        const int64_t i = i0 + threadIdx.x;
        float pv = 0.0f, dsv = 0.0f;
        if (i < g.lq && kept(g, b, i, j)) {
            const int64_t row = (b * g.heads + h) * g.lq + i;
            const T *qi = q + b * g.bsq + i * g.ldq + h * g.dim;
            float s = 0.0f, dp = 0.0f;
            const T *doi = dout + b * g.bso + i * g.ldo + h * g.dim;
            for (int64_t d = 0; d < g.dim; d++) {
                s += to_f(qi[d]) * to_f(kj[d]);
                dp += to_f(doi[d]) * to_f(vj[d]);
            }
            if (lse[row] != -INFINITY) {
                pv = expf(g.scale * s - lse[row]);
                dsv = pv * (dp - dsum[row]);
            }
        }
        ps[threadIdx.x] = pv;
        ds[threadIdx.x] = dsv;
        __syncthreads();
        const int64_t n = g.lq - i0 < THREADS ? g.lq - i0 : THREADS;
        add_rows(accv, ps, dout + b * g.bso + i0 * g.ldo + h * g.dim, g.ldo, n, g.dim);
        add_rows(acck, ds, q + b * g.bsq + i0 * g.ldq + h * g.dim, g.ldq, n, g.dim);
        __syncthreads();
    }
    for (int c = 0; c < MAX_D / THREADS; c++) {
        const int64_t d = threadIdx.x + (int64_t)c * THREADS;
        if (d < g.dim) {
            dv[koff + d] = from_f<T>(accv[c]);
            dk[koff + d] = from_f<T>(g.scale * acck[c]);
        }
    }
}

Geo geometry(const hetrun_op_desc *d, const void *mask) {
    Geo g;
    g.lq = d->m;
    g.lk = d->n;
    g.heads = d->heads > 1 ? d->heads : 1;
    g.dim = d->k;
    hetrun_attention_geometry(d, 'q', &g.ldq, &g.bsq);
    hetrun_attention_geometry(d, 'k', &g.ldk, &g.bsk);
    hetrun_attention_geometry(d, 'o', &g.ldo, &g.bso);
    g.scale = (float)d->alpha;
    g.causal = (d->flags & HETRUN_OP_CAUSAL) != 0;
    g.mask = (d->flags & HETRUN_OP_KEY_PADDING_MASK) ? (const int32_t *)mask : nullptr;
    return g;
}

template <typename T>
cudaError_t run_typed(const hetrun_op_desc *d, void *const *a, void *ws, cudaStream_t s) {
    const Geo g = geometry(d, a[3]);
    const int64_t batch = d->batch > 1 ? d->batch : 1;
    const dim3 qgrid((unsigned)g.lq, (unsigned)g.heads, (unsigned)batch);
    if (d->kind == HETRUN_OP_ATTENTION_FORWARD) {
        attn_forward<T><<<qgrid, THREADS, 0, s>>>(g, (const T *)a[0], (const T *)a[1],
                                                  (const T *)a[2], (T *)a[4], (float *)a[5]);
        return cudaGetLastError();
    }
    float *dsum = (float *)ws;
    attn_rowdot<T><<<qgrid, THREADS, 0, s>>>(g, (const T *)a[4], (const T *)a[5], dsum);
    attn_dq<T><<<qgrid, THREADS, 0, s>>>(g, (const T *)a[0], (const T *)a[1], (const T *)a[2],
                                         (const T *)a[5], (const float *)a[6], dsum, (T *)a[7]);
    const dim3 kgrid((unsigned)g.lk, (unsigned)g.heads, (unsigned)batch);
    attn_dkv<T><<<kgrid, THREADS, 0, s>>>(g, (const T *)a[0], (const T *)a[1], (const T *)a[2],
                                          (const T *)a[5], (const float *)a[6], dsum, (T *)a[8],
                                          (T *)a[9]);
    return cudaGetLastError();
}

} // namespace

extern "C" int64_t hetrun_cuda_attention_max_head_dim(void) {
    return MAX_D;
}

extern "C" uint64_t hetrun_cuda_attention_workspace(const hetrun_op_desc *d) {
    if (d->kind != HETRUN_OP_ATTENTION_BACKWARD) return 0;
    const uint64_t b = (uint64_t)(d->batch > 1 ? d->batch : 1);
    return b * (uint64_t)(d->heads > 1 ? d->heads : 1) * (uint64_t)d->m * sizeof(float);
}

extern "C" cudaError_t hetrun_cuda_attention(const hetrun_op_desc *d, void *const *args, void *ws,
                                             cudaStream_t stream) {
    if (hetrun_cuda_attention_flash_supported(d))
        return hetrun_cuda_attention_flash(d, args, ws, stream);
    switch ((hetrun_dtype)d->dtype) {
    case HETRUN_F32: return run_typed<float>(d, args, ws, stream);
    case HETRUN_F16: return run_typed<__half>(d, args, ws, stream);
    case HETRUN_BF16: return run_typed<__nv_bfloat16>(d, args, ws, stream);
    default: return cudaErrorNotSupported;
    }
}
