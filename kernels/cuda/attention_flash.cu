/* ATTENTION_FORWARD / ATTENTION_BACKWARD on tensor cores for F16 and BF16 with head dim 32,
 * 64 or 128: a flash-attention-2-class kernel on the nvcuda::wmma API (16x16x16 tiles, float
 * accumulators). attention.cu dispatches here; F32 and other head dims stay on its baseline.
 *
 * Design (correctness first; every block has 4 warps, each warp owns 16 rows of the block's
 * 64-row tile, and the other operand streams through shared memory in tiles of BN rows):
 * - Forward: one block per 64 queries of one (head, batch). For each K/V tile: S = Q K^T is
 *   stored to shared memory as float (fragment layouts are opaque), two lanes per row run the
 *   online softmax there (masking, running max and sum in registers), P goes back as T, O
 *   stays in shared memory as float so that it can be rescaled per row, O += P V on wmma.
 *   Causal tiles past the last row's diagonal are skipped. O = acc / l, lse = max + log(l).
 * - Backward, three kernels: rowdot (Dsum = rowsum(dO * O), the workspace); dK/dV with one
 *   block per 64 keys looping over query tiles (causal: from the first tile that sees the
 *   keys); dQ with one block per 64 queries looping over key tiles. P = exp(scale S - lse) is
 *   recomputed in both. No atomics, every output element is written by one block and every
 *   sum runs in a fixed order: results are bitwise reproducible.
 * - Precision: math and accumulation in float. The forward rounds P to T once for P V (as
 *   FlashAttention does; error <= u_T max|V|). The backward splits P and dS into hi + lo
 *   parts in T and multiplies both (about 16 bits for bf16, 22 for f16): dK, dQ and dV are
 *   long sums of unnormalised terms, where one rounding of P or dS costs up to 1.6x the
 *   per-element tolerance of tests/cuda (measured on a host emulation); the price is two MMAs
 *   where FlashAttention does one for dV, dK and dQ.
 * - Partial tiles: rows past the end are zero-filled in shared memory and their keys masked
 *   as -inf; nothing outside the operands is read or written. Strides are arbitrary (fused
 *   QKV); global loads are 16-byte vectors when pointers and strides allow, else scalar.
 * Limits: F16 keeps P and dS in f16 (|dS| < 65504, as FlashAttention). Dynamic shared memory
 * (opted in above 48 KB, kept under 96 KB for sm_80 and consumer parts): forward 51712 / 72192 /
 * 83328 bytes, dK/dV and dQ 56832 / 73216 / 71936 bytes at D = 32 / 64 / 128.
 * Later: mma.sync with the softmax on register fragments (no shared-memory round trip for S
 * and O), cp.async / TMA double buffering, warp specialisation and wgmma on sm_90 (FA3), a
 * fused single-pass dK/dV/dQ with a deterministic dQ reduction, head dims 80/96/256. */
#include <math.h>
#include <mma.h>
#include <stdint.h>

#include "common.cuh"
#include "kernels.h"
#include "kernels/catalogue.h"

using namespace hetrun_cuda;
namespace wmma = nvcuda::wmma;

namespace {

constexpr int WARPS = 4;
constexpr int THREADS = WARPS * 32;
constexpr int BM = 64;   /* rows of the block's own tile: queries (forward, dQ), keys (dK/dV) */
constexpr int PAD_T = 8; /* T elements of row padding: 16 bytes, keeps ldm legal, spreads banks */
constexpr int PAD_F = 4; /* float elements of row padding */
constexpr unsigned FULL = 0xffffffffu;

/* Tile shapes per head dim. BN: rows of the streamed operand per step (keys in the forward and
 * dQ, queries in dK/dV); 32 at D = 128 keeps shared memory under 96 KB. */
template <int D> struct Cfg {
    static_assert(D % 16 == 0, "head dim must be a multiple of the wmma tile");
    static constexpr int BN = D <= 64 ? 64 : 32;
    static constexpr int LDT = D + PAD_T;  /* Q, K, V, dO tiles (T) */
    static constexpr int LDS = BN + PAD_F; /* scores, dP (float) */
    static constexpr int LDP = BN + PAD_T; /* P, dS (T) */
    static constexpr int LDO = D + PAD_F;  /* forward O accumulator (float) */
};

constexpr size_t al128(size_t x) {
    return (x + 127) & ~(size_t)127;
}

/* Shared memory of the forward kernel, byte offsets (T is 2 bytes). */
template <int D> struct FwdSmem {
    using C = Cfg<D>;
    static constexpr size_t q = 0;
    static constexpr size_t k = q + al128((size_t)BM * C::LDT * 2);
    static constexpr size_t v = k + al128((size_t)C::BN * C::LDT * 2);
    static constexpr size_t s = v + al128((size_t)C::BN * C::LDT * 2);
    static constexpr size_t p = s + al128((size_t)BM * C::LDS * 4);
    static constexpr size_t o = p + al128((size_t)BM * C::LDP * 2);
    static constexpr size_t keep = o + al128((size_t)BM * C::LDO * 4);
    static constexpr size_t inv = keep + al128((size_t)C::BN * 4);
    static constexpr size_t bytes = inv + al128((size_t)BM * 4);
};

/* Shared memory of the dK/dV and dQ kernels: the block's own 64 rows of two operands (r0, r1),
 * BN rows of the two streamed ones (c0, c1), scores / dP (f), P or dS as hi + lo (ph, pl),
 * and two per-column vectors (dK/dV: lse, Dsum of the queries; dQ: keep flags of the keys). */
template <int D> struct BwdSmem {
    using C = Cfg<D>;
    static constexpr size_t r0 = 0;
    static constexpr size_t r1 = r0 + al128((size_t)BM * C::LDT * 2);
    static constexpr size_t c0 = r1 + al128((size_t)BM * C::LDT * 2);
    static constexpr size_t c1 = c0 + al128((size_t)C::BN * C::LDT * 2);
    static constexpr size_t f = c1 + al128((size_t)C::BN * C::LDT * 2);
    static constexpr size_t ph = f + al128((size_t)BM * C::LDS * 4);
    static constexpr size_t pl = ph + al128((size_t)BM * C::LDP * 2);
    static constexpr size_t col0 = pl + al128((size_t)BM * C::LDP * 2);
    static constexpr size_t col1 = col0 + al128((size_t)C::BN * 4);
    static constexpr size_t bytes = col1 + al128((size_t)C::BN * 4);
};

static_assert(FwdSmem<128>::bytes < 96 * 1024 && BwdSmem<128>::bytes < 96 * 1024 &&
                  FwdSmem<64>::bytes < 96 * 1024 && BwdSmem<64>::bytes < 96 * 1024,
              "shared memory per block must stay under 96 KB");

struct FGeo {
    int64_t lq, lk, heads;
    int64_t ldq, bsq, ldk, bsk, ldo, bso;
    float scale;
    bool causal;
    bool vq, vk, vo;     /* Q, K/V, dO may use 16-byte loads (pointers and strides aligned) */
    const int32_t *mask; /* B x Lk, nonzero = kept; NULL = all kept */
};

template <typename T> using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major>;
template <typename T>
using FragBT = wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major>; /* rows as B^T */
template <typename T> using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

__device__ __forceinline__ unsigned char *dyn_smem() {
    extern __shared__ __align__(128) unsigned char hetrun_flash_smem[];
    return hetrun_flash_smem;
}

/* Rows [r0, r0 + ROWS) of one head's slice (row stride ld, n rows) into shared memory (pitch
 * D + PAD_T). Rows at or past n are zero, so partial tiles add nothing to the products. */
template <typename T, int D, int ROWS>
__device__ __forceinline__ void load_rows(T *dst, const T *src, int64_t ld, int64_t r0, int64_t n,
                                          bool vec) {
    constexpr int LD = D + PAD_T;
    if (vec) {
        constexpr int CH = D / 8; /* 16-byte chunks per row */
        for (int c = threadIdx.x; c < ROWS * CH; c += THREADS) {
            const int r = c / CH, e = (c % CH) * 8;
            uint4 x = make_uint4(0u, 0u, 0u, 0u);
            if (r0 + r < n) x = *reinterpret_cast<const uint4 *>(src + (r0 + r) * ld + e);
            *reinterpret_cast<uint4 *>(dst + r * LD + e) = x;
        }
    } else {
        const T zero = from_f<T>(0.0f);
        for (int c = threadIdx.x; c < ROWS * D; c += THREADS) {
            const int r = c / D, e = c % D;
            dst[r * LD + e] = r0 + r < n ? src[(r0 + r) * ld + e] : zero;
        }
    }
}

/* End of the keys a query tile starting at m0 sees: causal masks the keys past the diagonal of
 * the tile's last row for every row of the tile, so later key tiles are skipped. */
__device__ __forceinline__ int64_t key_end(const FGeo &g, int64_t m0) {
    const int64_t diag = m0 + BM + (g.lk - g.lq);
    return g.causal && diag < g.lk ? diag : g.lk;
}

/* Key tile [n0, n0 + BN) of one (batch, head): K and V rows into shared memory, and keep[c]
 * nonzero when key n0 + c exists and the padding mask keeps it. */
template <typename T, int D>
__device__ __forceinline__ void load_kv_tile(T *ks, T *vs, int *keep, const T *kb, const T *vb,
                                             const FGeo &g, int64_t b, int64_t n0) {
    constexpr int BN = Cfg<D>::BN;
    load_rows<T, D, BN>(ks, kb, g.ldk, n0, g.lk, g.vk);
    load_rows<T, D, BN>(vs, vb, g.ldk, n0, g.lk, g.vk);
    for (int c = threadIdx.x; c < BN; c += THREADS) {
        const int64_t j = n0 + c;
        keep[c] = j < g.lk && (!g.mask || g.mask[b * g.lk + j] != 0);
    }
}

/* A warp's 16 rows (pitch D + PAD_T) as matrix_a fragments. */
template <typename T, int D>
__device__ __forceinline__ void load_a(FragA<T> (&a)[D / 16], const T *rows) {
#pragma unroll
    for (int t = 0; t < D / 16; t++)
        wmma::load_matrix_sync(a[t], rows + t * 16, D + PAD_T);
}

/* out (16 x BN floats, pitch BN + PAD_F) = A B^T: A the warp's 16 x D rows, B BN x D rows. */
template <typename T, int D>
__device__ __forceinline__ void scores(float *out, const FragA<T> (&a)[D / 16], const T *b) {
    constexpr int BN = Cfg<D>::BN, LDT = Cfg<D>::LDT;
#pragma unroll
    for (int nt = 0; nt < BN / 16; nt++) {
        FragC acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int kt = 0; kt < D / 16; kt++) {
            FragBT<T> bf;
            wmma::load_matrix_sync(bf, b + nt * 16 * LDT + kt * 16, LDT);
            wmma::mma_sync(acc, a[kt], bf, acc);
        }
        wmma::store_matrix_sync(out + nt * 16, acc, Cfg<D>::LDS, wmma::mem_row_major);
    }
}

/* acc (16 x D) += (hi + lo) B: hi, lo the warp's 16 x BN rows (pitch BN + PAD_T), B BN x D. */
template <typename T, int D>
__device__ __forceinline__ void add_split(FragC (&acc)[D / 16], const T *hi, const T *lo,
                                          const T *b) {
    constexpr int BN = Cfg<D>::BN, LDT = Cfg<D>::LDT, LDP = Cfg<D>::LDP;
#pragma unroll
    for (int t = 0; t < BN / 16; t++) {
        FragA<T> ah, alo;
        wmma::load_matrix_sync(ah, hi + t * 16, LDP);
        wmma::load_matrix_sync(alo, lo + t * 16, LDP);
#pragma unroll
        for (int dt = 0; dt < D / 16; dt++) {
            FragB<T> bf;
            wmma::load_matrix_sync(bf, b + t * 16 * LDT + dt * 16, LDT);
            wmma::mma_sync(acc[dt], ah, bf, acc[dt]);
            wmma::mma_sync(acc[dt], alo, bf, acc[dt]);
        }
    }
}

/* x = hi + lo with both in T: hi the rounding of x, lo the rounding of the (exact) rest. */
template <typename T> __device__ __forceinline__ void split(float x, T *hi, T *lo) {
    const T h = from_f<T>(x);
    *hi = h;
    *lo = from_f<T>(x - to_f(h));
}

/* Writes s * acc (a warp's 16 x D rows) to rows row0.. (< n) of dst (row stride ld), each 16x16
 * tile staged through the warp's 256 floats at stage to convert it to T. */
template <typename T, int D>
__device__ __forceinline__ void store_rows(T *dst, int64_t ld, int64_t row0, int64_t n,
                                           FragC (&acc)[D / 16], float s, float *stage) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int dt = 0; dt < D / 16; dt++) {
        for (int e = 0; e < acc[dt].num_elements; e++)
            acc[dt].x[e] *= s;
        wmma::store_matrix_sync(stage, acc[dt], 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) {
            const int r = e >> 4, c = e & 15;
            if (row0 + r < n) dst[(row0 + r) * ld + dt * 16 + c] = from_f<T>(stage[e]);
        }
        __syncwarp();
    }
}

/* ---- forward ---- */

template <typename T, int D>
__global__ void __launch_bounds__(THREADS)
    flash_forward(FGeo g, const T *q, const T *k, const T *v, T *o, float *lse) {
    using C = Cfg<D>;
    using L = FwdSmem<D>;
    constexpr int BN = C::BN, LDT = C::LDT, LDS = C::LDS, LDP = C::LDP, LDO = C::LDO;
    unsigned char *sm = dyn_smem();
    T *qs = (T *)(sm + L::q), *ks = (T *)(sm + L::k), *vs = (T *)(sm + L::v);
    float *ss = (float *)(sm + L::s), *os = (float *)(sm + L::o), *rinv = (float *)(sm + L::inv);
    T *ps = (T *)(sm + L::p);
    int *keep = (int *)(sm + L::keep);

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t h = blockIdx.y, b = blockIdx.z;
    const int64_t m0 = (int64_t)(gridDim.x - 1 - blockIdx.x) * BM; /* longest causal rows first */
    const int64_t off = g.lk - g.lq;
    const T *kb = k + b * g.bsk + h * D, *vb = v + b * g.bsk + h * D;

    load_rows<T, D, BM>(qs, q + b * g.bsq + h * D, g.ldq, m0, g.lq, g.vq);
    for (int e = threadIdx.x; e < BM * LDO; e += THREADS)
        os[e] = 0.0f;
    __syncthreads();
    FragA<T> qa[D / 16];
    load_a<T, D>(qa, qs + warp * 16 * LDT);

    /* Softmax lanes: two per row, this one takes the columns of parity par. */
    const int r = warp * 16 + (lane >> 1), par = lane & 1;
    const int64_t i = m0 + r;
    float m_run = -INFINITY, l_run = 0.0f;
    float *srow = ss + r * LDS, *orow = os + r * LDO;
    T *prow = ps + r * LDP;

    for (int64_t n0 = 0, kend = key_end(g, m0); n0 < kend; n0 += BN) {
        load_kv_tile<T, D>(ks, vs, keep, kb, vb, g, b, n0);
        __syncthreads();

        scores<T, D>(ss + warp * 16 * LDS, qa, ks);
        __syncwarp();

        float mx = -INFINITY;
#pragma unroll 8
        for (int c = par; c < BN; c += 2) {
            float s = srow[c] * g.scale;
            if (!keep[c] || (g.causal && n0 + c > i + off)) s = -INFINITY;
            srow[c] = s;
            mx = fmaxf(mx, s);
        }
        mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 1));
        const float m_new = fmaxf(m_run, mx);
        /* Nothing kept yet: p = 0 and no rescale (exp(-inf - -inf) would be NaN). */
        const bool none = m_new == -INFINITY;
        const float alpha = none ? 1.0f : expf(m_run - m_new);
        float sum = 0.0f;
#pragma unroll 8
        for (int c = par; c < BN; c += 2) {
            const float p = none ? 0.0f : expf(srow[c] - m_new);
            prow[c] = from_f<T>(p);
            sum += p;
        }
        sum += __shfl_xor_sync(FULL, sum, 1); /* commutative: both lanes get the same bits */
        l_run = l_run * alpha + sum;
        m_run = m_new;
        for (int c = par; c < D; c += 2)
            orow[c] *= alpha;
        __syncwarp();

        FragA<T> pa[BN / 16];
#pragma unroll
        for (int t = 0; t < BN / 16; t++)
            wmma::load_matrix_sync(pa[t], ps + warp * 16 * LDP + t * 16, LDP);
#pragma unroll
        for (int dt = 0; dt < D / 16; dt++) {
            FragC acc;
            float *ot = os + warp * 16 * LDO + dt * 16;
            wmma::load_matrix_sync(acc, ot, LDO, wmma::mem_row_major);
#pragma unroll
            for (int t = 0; t < BN / 16; t++) {
                FragB<T> vf;
                wmma::load_matrix_sync(vf, vs + t * 16 * LDT + dt * 16, LDT);
                wmma::mma_sync(acc, pa[t], vf, acc);
            }
            __syncwarp(); /* fragment ownership is opaque: every lane's load before any store */
            wmma::store_matrix_sync(ot, acc, LDO, wmma::mem_row_major);
        }
        __syncthreads(); /* K, V, keep are reloaded next */
    }

    /* A row with no kept key: O = 0, lse = -inf. Otherwise l >= 1 (the max term is 1). */
    if (par == 0) {
        const bool dead = m_run == -INFINITY;
        rinv[r] = dead ? 0.0f : 1.0f / l_run;
        if (i < g.lq) lse[(b * g.heads + h) * g.lq + i] = dead ? -INFINITY : m_run + logf(l_run);
    }
    __syncthreads();
    T *ob = o + b * g.bso + h * D;
    for (int e = threadIdx.x; e < BM * D; e += THREADS) {
        const int rr = e / D, c = e % D;
        if (m0 + rr < g.lq) ob[(m0 + rr) * g.ldo + c] = from_f<T>(os[rr * LDO + c] * rinv[rr]);
    }
}

/* ---- backward ---- */

/* Dsum[b, h, i] = sum_d dO[i, d] * O[i, d]; one warp per query row, fixed shuffle tree. */
template <typename T, int D>
__global__ void __launch_bounds__(THREADS)
    flash_rowdot(FGeo g, const T *o, const T *dout, float *dsum) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t i = (int64_t)blockIdx.x * WARPS + warp, h = blockIdx.y, b = blockIdx.z;
    if (i >= g.lq) return; /* whole warps only; no block barrier in this kernel */
    const int64_t at = b * g.bso + i * g.ldo + h * D;
    float s = 0.0f;
    for (int d = lane; d < D; d += 32)
        s += to_f(o[at + d]) * to_f(dout[at + d]);
    for (int w = 16; w > 0; w >>= 1)
        s += __shfl_xor_sync(FULL, s, w);
    if (lane == 0) dsum[(b * g.heads + h) * g.lq + i] = s;
}

/* dK, dV for 64 keys of one (head, batch), looping over query tiles of BN. Per warp (16 keys):
 * S^T = K Q^T, P^T = exp(scale S^T - lse), dV += P^T dO, dP^T = V dO^T,
 * dS^T = P^T (dP^T - Dsum), dK += dS^T Q; dK is scaled at the end. */
template <typename T, int D>
__global__ void __launch_bounds__(THREADS)
    flash_dkv(FGeo g, const T *q, const T *k, const T *v, const T *dout, const float *lse,
              const float *dsum, T *dk, T *dv) {
    using C = Cfg<D>;
    using L = BwdSmem<D>;
    constexpr int BN = C::BN, LDT = C::LDT, LDS = C::LDS, LDP = C::LDP;
    unsigned char *sm = dyn_smem();
    T *ks = (T *)(sm + L::r0), *vs = (T *)(sm + L::r1), *qs = (T *)(sm + L::c0),
      *dos = (T *)(sm + L::c1), *ph = (T *)(sm + L::ph), *pl = (T *)(sm + L::pl);
    float *f = (float *)(sm + L::f), *lse_s = (float *)(sm + L::col0),
          *dsum_s = (float *)(sm + L::col1);

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t h = blockIdx.y, b = blockIdx.z;
    const int64_t n0 = (int64_t)blockIdx.x * BM; /* first keys see the most queries: first */
    const int64_t off = g.lk - g.lq, row0 = (b * g.heads + h) * g.lq;
    const T *qb = q + b * g.bsq + h * D, *dob = dout + b * g.bso + h * D;

    load_rows<T, D, BM>(ks, k + b * g.bsk + h * D, g.ldk, n0, g.lk, g.vk);
    load_rows<T, D, BM>(vs, v + b * g.bsk + h * D, g.ldk, n0, g.lk, g.vk);

    /* Lanes: two per key row, this one takes the query columns of parity par. */
    const int r = warp * 16 + (lane >> 1), par = lane & 1;
    const int64_t j = n0 + r;
    const bool kkeep = j < g.lk && (!g.mask || g.mask[b * g.lk + j] != 0);
    float *frow = f + r * LDS, *fw = f + warp * 16 * LDS;
    T *hrow = ph + r * LDP, *lrow = pl + r * LDP;
    const T *hw = ph + warp * 16 * LDP, *lw = pl + warp * 16 * LDP;

    FragC dka[D / 16], dva[D / 16];
#pragma unroll
    for (int t = 0; t < D / 16; t++) {
        wmma::fill_fragment(dka[t], 0.0f);
        wmma::fill_fragment(dva[t], 0.0f);
    }

    /* Causal: query i sees key j iff i >= j - off; start at the tile of the first one. */
    int64_t qbeg = 0;
    if (g.causal && n0 - off > 0) qbeg = (n0 - off) / BN * BN;
    for (int64_t m0 = qbeg; m0 < g.lq; m0 += BN) {
        load_rows<T, D, BN>(qs, qb, g.ldq, m0, g.lq, g.vq);
        load_rows<T, D, BN>(dos, dob, g.ldo, m0, g.lq, g.vo);
        for (int c = threadIdx.x; c < BN; c += THREADS) {
            const int64_t i = m0 + c;
            lse_s[c] = i < g.lq ? lse[row0 + i] : -INFINITY; /* -inf: row contributes nothing */
            dsum_s[c] = i < g.lq ? dsum[row0 + i] : 0.0f;
        }
        __syncthreads();

        {
            FragA<T> ka[D / 16];
            load_a<T, D>(ka, ks + warp * 16 * LDT);
            scores<T, D>(fw, ka, qs);
        }
        __syncwarp();
#pragma unroll 4
        for (int c = par; c < BN; c += 2) {
            const float l = lse_s[c];
            float p = 0.0f;
            if (kkeep && l != -INFINITY && !(g.causal && j > m0 + c + off))
                p = expf(frow[c] * g.scale - l);
            split(p, hrow + c, lrow + c);
        }
        __syncwarp();
        add_split<T, D>(dva, hw, lw, dos);
        {
            FragA<T> va[D / 16];
            load_a<T, D>(va, vs + warp * 16 * LDT);
            scores<T, D>(fw, va, dos); /* dP^T; f is free once P is split */
        }
        __syncwarp(); /* dP^T stored and P read by the dV product before ph, pl change */
#pragma unroll 4
        for (int c = par; c < BN; c += 2) {
            const float p = to_f(hrow[c]) + to_f(lrow[c]);
            split(p * (frow[c] - dsum_s[c]), hrow + c, lrow + c);
        }
        __syncwarp();
        add_split<T, D>(dka, hw, lw, qs);
        __syncthreads(); /* Q, dO, lse, Dsum are reloaded next */
    }

    T *dkb = dk + b * g.bsk + h * D, *dvb = dv + b * g.bsk + h * D;
    store_rows<T, D>(dvb, g.ldk, n0 + warp * 16, g.lk, dva, 1.0f, fw);
    store_rows<T, D>(dkb, g.ldk, n0 + warp * 16, g.lk, dka, g.scale, fw);
}

/* dQ for 64 queries of one (head, batch), looping over key tiles of BN. Per warp (16 queries):
 * S = Q K^T, P = exp(scale S - lse), dP = dO V^T, dS = P (dP - Dsum), dQ += dS K; dQ is
 * scaled at the end. */
template <typename T, int D>
__global__ void __launch_bounds__(THREADS)
    flash_dq(FGeo g, const T *q, const T *k, const T *v, const T *dout, const float *lse,
             const float *dsum, T *dq) {
    using C = Cfg<D>;
    using L = BwdSmem<D>;
    constexpr int BN = C::BN, LDT = C::LDT, LDS = C::LDS, LDP = C::LDP;
    unsigned char *sm = dyn_smem();
    T *qs = (T *)(sm + L::r0), *dos = (T *)(sm + L::r1), *ks = (T *)(sm + L::c0),
      *vs = (T *)(sm + L::c1), *ph = (T *)(sm + L::ph), *pl = (T *)(sm + L::pl);
    float *f = (float *)(sm + L::f);
    int *keep = (int *)(sm + L::col0);

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t h = blockIdx.y, b = blockIdx.z;
    const int64_t m0 = (int64_t)(gridDim.x - 1 - blockIdx.x) * BM; /* longest causal rows first */
    const int64_t off = g.lk - g.lq, row0 = (b * g.heads + h) * g.lq;
    const T *kb = k + b * g.bsk + h * D, *vb = v + b * g.bsk + h * D;

    load_rows<T, D, BM>(qs, q + b * g.bsq + h * D, g.ldq, m0, g.lq, g.vq);
    load_rows<T, D, BM>(dos, dout + b * g.bso + h * D, g.ldo, m0, g.lq, g.vo);
    __syncthreads();
    FragA<T> qa[D / 16], da[D / 16];
    load_a<T, D>(qa, qs + warp * 16 * LDT);
    load_a<T, D>(da, dos + warp * 16 * LDT);

    /* Lanes: two per query row, this one takes the key columns of parity par. */
    const int r = warp * 16 + (lane >> 1), par = lane & 1;
    const int64_t i = m0 + r;
    const float l = i < g.lq ? lse[row0 + i] : -INFINITY; /* -inf: row contributes nothing */
    const float dd = i < g.lq ? dsum[row0 + i] : 0.0f;
    float *frow = f + r * LDS, *fw = f + warp * 16 * LDS;
    T *hrow = ph + r * LDP, *lrow = pl + r * LDP;
    const T *hw = ph + warp * 16 * LDP, *lw = pl + warp * 16 * LDP;

    FragC dqa[D / 16];
#pragma unroll
    for (int t = 0; t < D / 16; t++)
        wmma::fill_fragment(dqa[t], 0.0f);

    for (int64_t n0 = 0, kend = key_end(g, m0); n0 < kend; n0 += BN) {
        load_kv_tile<T, D>(ks, vs, keep, kb, vb, g, b, n0);
        __syncthreads();

        scores<T, D>(fw, qa, ks);
        __syncwarp();
#pragma unroll 4
        for (int c = par; c < BN; c += 2) {
            float p = 0.0f;
            if (keep[c] && l != -INFINITY && !(g.causal && n0 + c > i + off))
                p = expf(frow[c] * g.scale - l);
            split(p, hrow + c, lrow + c);
        }
        __syncwarp();
        scores<T, D>(fw, da, vs); /* dP; f is free once P is split */
        __syncwarp();
#pragma unroll 4
        for (int c = par; c < BN; c += 2) {
            const float p = to_f(hrow[c]) + to_f(lrow[c]);
            split(p * (frow[c] - dd), hrow + c, lrow + c);
        }
        __syncwarp();
        add_split<T, D>(dqa, hw, lw, ks);
        __syncthreads(); /* K, V, keep are reloaded next */
    }

    store_rows<T, D>(dq + b * g.bsq + h * D, g.ldq, m0 + warp * 16, g.lq, dqa, g.scale, fw);
}

/* ---- host side ---- */

bool aligned16(const void *p) {
    return ((uintptr_t)p & 15u) == 0;
}

FGeo geometry(const hetrun_op_desc *d, void *const *a) {
    FGeo g;
    g.lq = d->m;
    g.lk = d->n;
    g.heads = d->heads > 1 ? d->heads : 1;
    hetrun_attention_geometry(d, 'q', &g.ldq, &g.bsq);
    hetrun_attention_geometry(d, 'k', &g.ldk, &g.bsk);
    hetrun_attention_geometry(d, 'o', &g.ldo, &g.bso);
    g.scale = (float)d->alpha;
    g.causal = (d->flags & HETRUN_OP_CAUSAL) != 0;
    g.mask = (d->flags & HETRUN_OP_KEY_PADDING_MASK) ? (const int32_t *)a[3] : nullptr;
    /* 16 bytes = 8 elements; the head offset h * D is a multiple of 8 for every D here. */
    g.vq = aligned16(a[0]) && g.ldq % 8 == 0 && g.bsq % 8 == 0;
    g.vk = aligned16(a[1]) && aligned16(a[2]) && g.ldk % 8 == 0 && g.bsk % 8 == 0;
    g.vo = d->kind == HETRUN_OP_ATTENTION_BACKWARD && aligned16(a[5]) && g.ldo % 8 == 0 &&
           g.bso % 8 == 0;
    return g;
}

/* Opts the kernel in to `bytes` of dynamic shared memory (above the 48 KB default). Per call:
 * the setting belongs to the current device's context and costs far less than the kernel. */
template <typename K> cudaError_t allow_smem(K *kernel, size_t bytes) {
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
}

template <typename T, int D>
cudaError_t run_flash(const hetrun_op_desc *d, void *const *a, void *ws, cudaStream_t s) {
    const FGeo g = geometry(d, a);
    const unsigned heads = (unsigned)g.heads, batch = (unsigned)(d->batch > 1 ? d->batch : 1);
    const dim3 qgrid((unsigned)((g.lq + BM - 1) / BM), heads, batch);
    cudaError_t e;
    if (d->kind == HETRUN_OP_ATTENTION_FORWARD) {
        constexpr size_t bytes = FwdSmem<D>::bytes;
        if ((e = allow_smem(flash_forward<T, D>, bytes)) != cudaSuccess) return e;
        flash_forward<T, D><<<qgrid, THREADS, bytes, s>>>(
            g, (const T *)a[0], (const T *)a[1], (const T *)a[2], (T *)a[4], (float *)a[5]);
        return cudaGetLastError();
    }
    constexpr size_t bytes = BwdSmem<D>::bytes;
    const T *q = (const T *)a[0], *k = (const T *)a[1], *v = (const T *)a[2];
    const T *o = (const T *)a[4], *dout = (const T *)a[5];
    const float *lse = (const float *)a[6];
    float *dsum = (float *)ws;
    const dim3 rgrid((unsigned)((g.lq + WARPS - 1) / WARPS), heads, batch);
    flash_rowdot<T, D><<<rgrid, THREADS, 0, s>>>(g, o, dout, dsum);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
    if ((e = allow_smem(flash_dkv<T, D>, bytes)) != cudaSuccess) return e;
    const dim3 kgrid((unsigned)((g.lk + BM - 1) / BM), heads, batch);
    flash_dkv<T, D>
        <<<kgrid, THREADS, bytes, s>>>(g, q, k, v, dout, lse, dsum, (T *)a[8], (T *)a[9]);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
    if ((e = allow_smem(flash_dq<T, D>, bytes)) != cudaSuccess) return e;
    flash_dq<T, D><<<qgrid, THREADS, bytes, s>>>(g, q, k, v, dout, lse, dsum, (T *)a[7]);
    return cudaGetLastError();
}

template <typename T>
cudaError_t run_dim(const hetrun_op_desc *d, void *const *a, void *ws, cudaStream_t s) {
    switch (d->k) {
    case 32: return run_flash<T, 32>(d, a, ws, s);
    case 64: return run_flash<T, 64>(d, a, ws, s);
    case 128: return run_flash<T, 128>(d, a, ws, s);
    default: return cudaErrorNotSupported;
    }
}

} // namespace

extern "C" int hetrun_cuda_attention_flash_supported(const hetrun_op_desc *d) {
    const bool type = d->dtype == HETRUN_F16 || d->dtype == HETRUN_BF16;
    return type && (d->k == 32 || d->k == 64 || d->k == 128);
}

extern "C" cudaError_t hetrun_cuda_attention_flash(const hetrun_op_desc *d, void *const *args,
                                                   void *ws, cudaStream_t stream) {
    switch ((hetrun_dtype)d->dtype) {
    case HETRUN_F16: return run_dim<__half>(d, args, ws, stream);
    case HETRUN_BF16: return run_dim<__nv_bfloat16>(d, args, ws, stream);
    default: return cudaErrorNotSupported;
    }
}
