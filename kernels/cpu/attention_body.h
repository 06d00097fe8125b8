/* Flash-style attention for one target ISA: included by attention.c once per ISA with
 * VL (floats per vector), MR (micro-tile rows) and SFX(name) defined, inside a
 * `#pragma GCC target` region. Everything here is static; attention.c picks a variant.
 *
 * Work unit: one (batch, head). Operands are packed once per unit into fp32 scratch
 * (converting fp16/bf16, gathering strided BSHD rows, zero-padding the head dim to a
 * multiple of NR = 2 VL and key rows to a multiple of NR), so the micro-kernels never see
 * strides or dtypes. Query blocks of BQ rows meet key blocks of BK keys; causal blocks
 * above the diagonal are skipped. */

#define NR (2 * VL)
typedef float SFX(vf) __attribute__((vector_size(VL * 4), aligned(4), may_alias));
typedef int32_t SFX(vi) __attribute__((vector_size(VL * 4), aligned(4), may_alias));
typedef uint32_t SFX(vu) __attribute__((vector_size(VL * 4), aligned(4), may_alias));
#define vf SFX(vf)
#define vi SFX(vi)
#define vu SFX(vu)

static inline __attribute__((always_inline)) vf SFX(splat)(float x) {
    return (vf){0} + x;
}

/* Lane-wise select: m ? a : b (m lanes are all ones or zero). */
static inline __attribute__((always_inline)) vf SFX(sel)(vi m, vf a, vf b) {
    return (vf)(((vi)a & m) | ((vi)b & ~m));
}

/* exp(x) as vexpf in cpu_kernels.c, lane-wise; -inf gives 0. */
static inline __attribute__((always_inline)) vf SFX(vexp)(vf x) {
    const vf lo = SFX(splat)(-87.0f), hi = SFX(splat)(88.7f), magic = SFX(splat)(12582912.0f);
    vi under = x < SFX(splat)(-86.9f);
    x = SFX(sel)(x < lo, lo, x);
    x = SFX(sel)(x > hi, hi, x);
    vf t = x * 1.44269504088896341f + magic;
    vf n = t - magic;
    vf r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
    vf p = 1.0f / 5040 + r * 0.0f;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    vu bits = (((vu)t - 0x4b400000u) + 127u) << 23; /* unsigned: no shift of a negative */
    return SFX(sel)(under, SFX(splat)(0.0f), p * (vf)bits);
}

static inline __attribute__((always_inline)) float SFX(hmax)(vf v) {
    float m = v[0];
    for (int l = 1; l < VL; l++)
        m = v[l] > m ? v[l] : m;
    return m;
}

static inline __attribute__((always_inline)) float SFX(hsum)(vf v) {
    float s = 0.0f;
    for (int l = 0; l < VL; l++)
        s += v[l];
    return s;
}

/* C[mr x NR] (+)= A[MR x K] B[K x NR]: A(r, k) at a[r * ars + k * aks], B(k, c) at
 * b[k * ldb + c]. MR rows are computed (A must be readable for all of them), mr stored. */
static inline __attribute__((always_inline)) void SFX(micro)(int64_t K, const float *a, int64_t ars,
                                                             int64_t aks, const float *b,
                                                             int64_t ldb, float *c, int64_t ldc,
                                                             int mr, int acc) {
    vf c0[MR], c1[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
        c0[r] = c1[r] = SFX(splat)(0.0f);
    for (int64_t k = 0; k < K; k++) {
        const vf b0 = *(const vf *)(b + k * ldb), b1 = *(const vf *)(b + k * ldb + VL);
        const float *ak = a + k * aks;
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            const float x = ak[r * ars];
            c0[r] += x * b0;
            c1[r] += x * b1;
        }
    }
    for (int r = 0; r < mr; r++) {
        vf *o0 = (vf *)(c + r * ldc), *o1 = (vf *)(c + r * ldc + VL);
        if (acc) {
            *o0 += c0[r];
            *o1 += c1[r];
        } else {
            *o0 = c0[r];
            *o1 = c1[r];
        }
    }
}

/* C[M x N] (+)= op(A)[M x K] B[K x N], N a multiple of NR. trans = 0: A(r, k) at
 * a[r * lda + k]; trans = 1: at a[k * lda + r]. B(k, c) at b[(c / NR) * ps + k * ldb +
 * c % NR] (ps = NR for a row-major B, K * NR for NR-wide panels). */
static void SFX(gemm)(int64_t M, int64_t N, int64_t K, const float *a, int64_t lda, int trans,
                      const float *b, int64_t ldb, int64_t ps, float *c, int64_t ldc, int acc) {
    const int64_t ars = trans ? 1 : lda, aks = trans ? lda : 1;
    for (int64_t p = 0; p < N / NR; p++)
        for (int64_t r = 0; r < M; r += MR) {
            int mr = M - r < MR ? (int)(M - r) : MR;
            if (trans)
                SFX(micro)(K, a + r, ars, aks, b + p * ps, ldb, c + r * ldc + p * NR, ldc, mr, acc);
            else
                SFX(micro)
            (K, a + r * lda, ars, aks, b + p * ps, ldb, c + r * ldc + p * NR, ldc, mr, acc);
        }
}

/* rows x D elements of a BSHD operand (row stride ld) into fp32 rows of width w (zero
 * pad); rows from `rows` up to `pad_rows` are zero. */
static void SFX(pack_rows)(const attn_job *j, const void *base, int64_t off, int64_t ld,
                           int64_t rows, int64_t pad_rows, float *dst, int64_t w) {
    for (int64_t r = 0; r < pad_rows; r++) {
        float *o = dst + r * w;
        int64_t e = 0;
        if (r < rows) {
            load_row(base, j->dtype, off + r * ld, j->D, o);
            e = j->D;
        }
        for (; e < w; e++)
            o[e] = 0.0f;
    }
}

/* Keys [0, rows) of K or V (row stride ld) transposed into NR-wide panels of D rows:
 * panel p holds dst[p * D * NR + e * NR + c] = X[p * NR + c][e]; padded keys are 0.
 * tmp: D floats. */
static void SFX(pack_panels)(const attn_job *j, const void *base, int64_t off, int64_t ld,
                             int64_t rows, float *dst, float *tmp) {
    const int64_t padded = (rows + NR - 1) / NR * NR, D = j->D;
    for (int64_t key = 0; key < padded; key++) {
        float *o = dst + key / NR * D * NR + key % NR;
        if (key < rows) {
            load_row(base, j->dtype, off + key * ld, D, tmp);
            for (int64_t e = 0; e < D; e++)
                o[e * NR] = tmp[e];
        } else {
            for (int64_t e = 0; e < D; e++)
                o[e * NR] = 0.0f;
        }
    }
}

/* Scores of a block already in s (rows x nbp, row stride BK): scale, mask (key padding
 * bias, causal limit, keys past kend) into s in place. */
static void SFX(mask_scores)(const attn_job *j, float *s, int64_t rows, int64_t i0, int64_t j0,
                             int64_t nbp, int64_t kend, const float *bias) {
    const vf ninf = SFX(splat)(-INFINITY);
    for (int64_t r = 0; r < rows; r++) {
        float *sr = s + r * BK;
        int64_t limit = kend; /* first key index not kept for this row */
        if (j->causal && i0 + r + j->off + 1 < limit) limit = i0 + r + j->off + 1;
        if (!bias && limit >= j0 + nbp) { /* every key kept: scale only */
            for (int64_t c = 0; c < nbp; c += VL)
                *(vf *)(sr + c) *= j->alpha;
            continue;
        }
        for (int64_t c = 0; c < nbp; c += VL) {
            vf x = *(vf *)(sr + c) * j->alpha;
            if (bias) x += *(const vf *)(bias + j0 + c);
            vi idx;
            for (int l = 0; l < VL; l++)
                idx[l] = (int32_t)(j0 + c + l);
            x = SFX(sel)(idx < (int32_t)limit, x, ninf);
            *(vf *)(sr + c) = x;
        }
    }
}

static void SFX(forward_unit)(const attn_job *j, int64_t b, int64_t h, int64_t q_lo, int64_t q_hi,
                              float *ws) {
    const int64_t D = j->D, Dp = j->Dp, Lkp = j->Lkp;
    float *kt = ws, *vr = kt + Lkp * D, *qp = vr + Lkp * Dp, *s = qp + (BQF + MR) * Dp;
    float *oacc = s + (BQF + MR) * BK, *mrow = oacc + (BQF + MR) * Dp, *lrow = mrow + BQF;
    float *tmp = lrow + BQF; /* one row of D */
    const float *bias = j->mask ? j->bias + b * Lkp : NULL;
    /* keys this unit can see at most */
    int64_t kmax = j->Lk;
    if (j->causal && q_hi - 1 + j->off + 1 < kmax) kmax = q_hi - 1 + j->off + 1;
    if (kmax < 0) kmax = 0;
    const int64_t koff = b * j->bsk + h * D;
    SFX(pack_panels)(j, j->k, koff, j->ldk, kmax, kt, tmp);
    SFX(pack_rows)(j, j->v, koff, j->ldk, kmax, (kmax + NR - 1) / NR * NR, vr, Dp);
    for (int64_t i0 = q_lo; i0 < q_hi; i0 += BQF) {
        const int64_t mb = q_hi - i0 < BQF ? q_hi - i0 : BQF;
        int64_t kend = kmax;
        if (j->causal && i0 + mb - 1 + j->off + 1 < kend) kend = i0 + mb - 1 + j->off + 1;
        if (kend < 0) kend = 0;
        SFX(pack_rows)
        (j, j->q, b * j->bsq + i0 * j->ldq + h * D, j->ldq, mb, (mb + MR - 1) / MR * MR, qp, Dp);
        for (int64_t r = 0; r < mb; r++) {
            mrow[r] = -INFINITY;
            lrow[r] = 0.0f;
        }
        memset(oacc, 0, (size_t)(mb * Dp) * sizeof *oacc);
        for (int64_t j0 = 0; j0 < kend; j0 += BK) {
            const int64_t nb = kend - j0 < BK ? kend - j0 : BK, nbp = (nb + NR - 1) / NR * NR;
            SFX(gemm)(mb, nbp, D, qp, Dp, 0, kt + j0 * D, NR, D * NR, s, BK, 0);
            SFX(mask_scores)(j, s, mb, i0, j0, nbp, kend, bias);
            for (int64_t r = 0; r < mb; r++) {
                float *sr = s + r * BK;
                vf mx = SFX(splat)(-INFINITY);
                for (int64_t c = 0; c < nbp; c += VL)
                    mx = SFX(sel)(*(vf *)(sr + c) > mx, *(vf *)(sr + c), mx);
                float mnew = SFX(hmax)(mx);
                if (mrow[r] > mnew) mnew = mrow[r];
                if (mnew == -INFINITY) { /* nothing kept yet: P = 0 */
                    memset(sr, 0, (size_t)nbp * sizeof *sr);
                    continue;
                }
                const float scale = mrow[r] == -INFINITY ? 0.0f : expf(mrow[r] - mnew);
                vf sum = SFX(splat)(0.0f);
                for (int64_t c = 0; c < nbp; c += VL) {
                    vf p = SFX(vexp)(*(vf *)(sr + c) - mnew);
                    *(vf *)(sr + c) = p;
                    sum += p;
                }
                lrow[r] = lrow[r] * scale + SFX(hsum)(sum);
                mrow[r] = mnew;
                if (scale != 1.0f)
                    for (int64_t e = 0; e < Dp; e += VL)
                        *(vf *)(oacc + r * Dp + e) *= scale;
            }
            SFX(gemm)(mb, Dp, nbp, s, BK, 0, vr + j0 * Dp, Dp, NR, oacc, Dp, 1);
        }
        for (int64_t r = 0; r < mb; r++) {
            const int64_t i = i0 + r;
            const float inv = lrow[r] > 0.0f ? 1.0f / lrow[r] : 0.0f;
            store_row(j->out, j->dtype, b * j->bso + i * j->ldo + h * D, D, oacc + r * Dp, inv);
            j->lse[(b * j->H + h) * j->Lq + i] =
                lrow[r] > 0.0f ? mrow[r] + logf(lrow[r]) : -INFINITY;
        }
    }
}

/* Backward of one (batch, head): recomputes P from lse block by block; dK and dV of a key
 * block are finished before the next one, dQ accumulates over all of them. */
static void SFX(backward_unit)(const attn_job *j, int64_t b, int64_t h, float *ws) {
    const int64_t D = j->D, Dp = j->Dp, Lkp = j->Lkp, Lqp = j->Lqp, Lq = j->Lq, Lk = j->Lk;
    float *qp = ws, *dop = qp + Lqp * Dp, *kr = dop + Lqp * Dp, *kt = kr + Lkp * Dp;
    float *vt = kt + Lkp * D, *dq = vt + Lkp * D, *dk = dq + Lqp * Dp, *dv = dk + (BK + MR) * Dp;
    float *p = dv + (BK + MR) * Dp, *dp = p + (BQ + MR) * BK, *lse = dp + (BQ + MR) * BK;
    float *di = lse + Lqp, *tmp = di + Lqp; /* tmp: one row of D */
    const float *bias = j->mask ? j->bias + b * Lkp : NULL;
    const int64_t qoff = b * j->bsq + h * D, koff = b * j->bsk + h * D, ooff = b * j->bso + h * D;
    SFX(pack_rows)(j, j->q, qoff, j->ldq, Lq, Lqp, qp, Dp);
    SFX(pack_rows)(j, j->dout, ooff, j->ldo, Lq, Lqp, dop, Dp);
    SFX(pack_rows)(j, j->k, koff, j->ldk, Lk, Lkp, kr, Dp);
    SFX(pack_panels)(j, j->k, koff, j->ldk, Lk, kt, tmp);
    SFX(pack_panels)(j, j->v, koff, j->ldk, Lk, vt, tmp);
    for (int64_t i = 0; i < Lq; i++) { /* D_i = dO_i . O_i */
        load_row(j->o, j->dtype, ooff + i * j->ldo, D, tmp);
        float acc = 0.0f;
        for (int64_t e = 0; e < D; e++)
            acc += dop[i * Dp + e] * tmp[e];
        di[i] = acc;
        lse[i] = j->lse[(b * j->H + h) * Lq + i];
    }
    memset(dq, 0, (size_t)(Lq * Dp) * sizeof *dq);
    for (int64_t j0 = 0; j0 < Lk; j0 += BK) {
        const int64_t nb = Lk - j0 < BK ? Lk - j0 : BK;
        memset(dk, 0, (size_t)(nb * Dp) * sizeof *dk);
        memset(dv, 0, (size_t)(nb * Dp) * sizeof *dv);
        int64_t qstart = 0; /* causal: queries before j0 - off see none of these keys */
        if (j->causal && j0 - j->off > 0) qstart = j0 - j->off;
        for (int64_t i0 = qstart; i0 < Lq; i0 += BQ) {
            const int64_t mb = Lq - i0 < BQ ? Lq - i0 : BQ;
            int64_t kend = Lk;
            if (j->causal && i0 + mb - 1 + j->off + 1 < kend) kend = i0 + mb - 1 + j->off + 1;
            /* keys of this block some query of the block keeps: the rest is all zero */
            const int64_t ne = kend - j0 < nb ? kend - j0 : nb, nep = (ne + NR - 1) / NR * NR;
            SFX(gemm)(mb, nep, D, qp + i0 * Dp, Dp, 0, kt + j0 * D, NR, D * NR, p, BK, 0);
            SFX(mask_scores)(j, p, mb, i0, j0, nep, kend, bias);
            for (int64_t r = 0; r < mb; r++) { /* P = exp(S - lse); rows with no key: 0 */
                float *pr = p + r * BK;
                const float l = lse[i0 + r];
                if (l == -INFINITY) {
                    memset(pr, 0, (size_t)nep * sizeof *pr);
                    continue;
                }
                for (int64_t c = 0; c < nep; c += VL)
                    *(vf *)(pr + c) = SFX(vexp)(*(vf *)(pr + c) - l);
            }
            /* dV += P^T dO */
            SFX(gemm)(ne, Dp, mb, p, BK, 1, dop + i0 * Dp, Dp, NR, dv, Dp, 1);
            /* dP = dO V^T, then dS = alpha P (dP - D_i) */
            SFX(gemm)(mb, nep, D, dop + i0 * Dp, Dp, 0, vt + j0 * D, NR, D * NR, dp, BK, 0);
            for (int64_t r = 0; r < mb; r++) {
                const vf dr = SFX(splat)(di[i0 + r]);
                for (int64_t c = 0; c < nep; c += VL) {
                    vf *x = (vf *)(dp + r * BK + c);
                    *x = *(const vf *)(p + r * BK + c) * (*x - dr) * j->alpha;
                }
            }
            /* dQ += dS K;  dK += dS^T Q */
            SFX(gemm)(mb, Dp, nep, dp, BK, 0, kr + j0 * Dp, Dp, NR, dq + i0 * Dp, Dp, 1);
            SFX(gemm)(ne, Dp, mb, dp, BK, 1, qp + i0 * Dp, Dp, NR, dk, Dp, 1);
        }
        for (int64_t r = 0; r < nb; r++) {
            store_row(j->dk, j->dtype, koff + (j0 + r) * j->ldk, D, dk + r * Dp, 1.0f);
            store_row(j->dv, j->dtype, koff + (j0 + r) * j->ldk, D, dv + r * Dp, 1.0f);
        }
    }
    for (int64_t i = 0; i < Lq; i++)
        store_row(j->dq, j->dtype, qoff + i * j->ldq, D, dq + i * Dp, 1.0f);
}

/* Scratch floats per worker for forward / backward. */
static int64_t SFX(forward_floats)(const attn_job *j) {
    return j->Lkp * j->D + j->Lkp * j->Dp + 2 * (BQF + MR) * j->Dp + (BQF + MR) * BK + 2 * BQF +
           j->D;
}

static int64_t SFX(backward_floats)(const attn_job *j) {
    return 3 * j->Lqp * j->Dp + j->Lkp * j->Dp + 2 * j->Lkp * j->D + 2 * (BK + MR) * j->Dp +
           2 * (BQ + MR) * BK + 2 * j->Lqp + j->D;
}

#undef vf
#undef vi
#undef vu
#undef NR
