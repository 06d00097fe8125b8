/* Scaled-dot-product attention, forward and backward (per-dtype body for fp32, fp16 and
 * bf16 storage; float arithmetic; macros: see elementwise.cl). Operands are read in
 * their strided BSHD layout: row (b, token t, head h) of Q starts at
 * oq + b * bsq + t * ldq + h * dim (K, V: ldk/bsk; O, dO: ldo/bso; dQ like Q; dK, dV
 * like K). One work-group per (tile, head, batch) = (group 0, global 1, global 2), one
 * work-item per tile row; tiles of Q, K, V, the score block and the accumulators live in
 * local memory (sizes from the host, which fits them to CL_DEVICE_LOCAL_MEM_SIZE).
 * Causal: key j is kept for query i iff j <= i + (lk - lq); tiles wholly above that
 * diagonal are skipped. mask (use_mask): key j of batch b kept iff mask[b * lk + j] != 0. */

#define HR_ATT_ARGS                                                                                \
    __global const ST_T *q, ulong oq, long ldq, long bsq, __global const ST_T *kk, ulong okk,      \
        __global const ST_T *vv, ulong ov, long ldk, long bsk, __global const int *mask,           \
        ulong omask, int use_mask, int heads, int lq, int lk, int dim, float alpha, int causal,    \
        int bq, int bk

/* Copies rows [t0, t0 + rows) of one head of a strided operand into a packed tile
 * (rows x dim floats), zeros past `tokens`. Called by the whole work-group. */
inline void KN(att_load)(__local float *dst, __global const ST_T *src, ulong base, long ld, int t0,
                         int rows, int tokens, int dim) {
    for (int x = get_local_id(0); x < rows * dim; x += get_local_size(0)) {
        int r = x / dim, e = x - r * dim;
        dst[x] = t0 + r < tokens ? LD(src, base + (long)(t0 + r) * ld + e) : 0.0f;
    }
}

/* a . b over dim floats: 8-wide vectors (the CPU's SIMD under PoCL), then a scalar tail. */
inline float KN(att_dot)(__local const float *a, __local const float *b, int dim) {
    float8 s8 = (float8)(0.0f);
    int e = 0;
    for (; e + 8 <= dim; e += 8)
        s8 = fma(vload8(0, a + e), vload8(0, b + e), s8);
    float4 s4 = s8.lo + s8.hi;
    float s = (s4.x + s4.y) + (s4.z + s4.w);
    for (; e < dim; e++)
        s = fma(a[e], b[e], s);
    return s;
}

/* row = row * scale + sum_{c < cn} w[c] m[c dim ..]: the P V, dS K, P^T dO, dS^T Q updates. */
inline void KN(att_acc)(__local float *row, float scale, __local const float *w,
                        __local const float *m, int cn, int dim) {
    int e = 0;
    for (; e + 8 <= dim; e += 8) {
        float8 acc = vload8(0, row + e) * scale;
        for (int c = 0; c < cn; c++)
            acc = fma((float8)(w[c]), vload8(0, m + c * dim + e), acc);
        vstore8(acc, 0, row + e);
    }
    for (; e < dim; e++) {
        float acc = row[e] * scale;
        for (int c = 0; c < cn; c++)
            acc = fma(w[c], m[c * dim + e], acc);
        row[e] = acc;
    }
}

/* Forward with an online softmax: per query row the running max mi, sum li and the
 * unnormalised output row in local memory, rescaled as the max grows. */
__kernel void KN(attn_fwd)(HR_ATT_ARGS, __global ST_T *o, ulong oo, long ldo, long bso,
                           __global float *lse, ulong olse, __local float *qs, __local float *ks,
                           __local float *vs, __local float *ss, __local float *os) {
    const int r = get_local_id(0), q0 = get_group_id(0) * bq;
    const int h = get_global_id(1), b = get_global_id(2), shift = lk - lq, qi = q0 + r;
    const ulong hb = (ulong)h * dim;
    KN(att_load)(qs, q, oq + b * bsq + hb, ldq, q0, bq, lq, dim);
    for (int x = r; x < bq * dim; x += get_local_size(0))
        os[x] = 0.0f;
    const int kend = causal ? clamp(min(q0 + bq, lq) + shift, 0, lk) : lk;
    const int active = qi < lq;
    __local float *qr = qs + r * dim, *orow = os + r * dim, *sr = ss + r * bk;
    float mi = -INFINITY, li = 0.0f;
    for (int k0 = 0; k0 < kend; k0 += bk) {
        barrier(CLK_LOCAL_MEM_FENCE);
        KN(att_load)(ks, kk, okk + b * bsk + hb, ldk, k0, bk, lk, dim);
        KN(att_load)(vs, vv, ov + b * bsk + hb, ldk, k0, bk, lk, dim);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!active) continue;
        const int cend = min(bk, lk - k0);
        float mx = -INFINITY;
        for (int c = 0; c < bk; c++) {
            const int j = k0 + c;
            float s = -INFINITY;
            if (c < cend && (!causal || j <= qi + shift) &&
                (!use_mask || mask[omask + (ulong)b * lk + j] != 0))
                s = alpha * KN(att_dot)(qr, ks + c * dim, dim);
            sr[c] = s;
            mx = fmax(mx, s);
        }
        const float mnew = fmax(mi, mx);
        if (mnew == -INFINITY) continue; /* nothing kept so far */
        const float corr = exp(mi - mnew);
        li *= corr;
        for (int c = 0; c < cend; c++) {
            float p = sr[c] == -INFINITY ? 0.0f : exp(sr[c] - mnew);
            sr[c] = p;
            li += p;
        }
        KN(att_acc)(orow, corr, sr, vs, cend, dim);
        mi = mnew;
    }
    if (!active) return;
    const float inv = li > 0.0f ? 1.0f / li : 0.0f; /* no kept key: O = 0, lse = -inf */
    const ulong ob = oo + b * bso + hb + (long)qi * ldo;
    for (int e = 0; e < dim; e++)
        ST(o, ob + e, orow[e] * inv);
    lse[olse + ((ulong)b * heads + h) * lq + qi] = li > 0.0f ? mi + log(li) : -INFINITY;
}

/* Backward prologue, one work-item per (b, h, i): delta = dO_i . O_i (fp32). */
__kernel void KN(attn_bwd_delta)(__global const ST_T *o, ulong oo, __global const ST_T *dout,
                                 ulong odo, long ldo, long bso, ulong rows, int heads, int lq,
                                 int dim, __global float *delta) {
    const size_t x = get_global_id(0);
    if (x >= rows) return;
    const int i = x % lq, h = (x / lq) % heads, b = x / ((size_t)lq * heads);
    const long at = b * bso + (long)i * ldo + (long)h * dim;
    float s = 0.0f;
    for (int e = 0; e < dim; e++)
        s = fma(LD(dout, odo + at + e), LD(o, oo + at + e), s);
    delta[x] = s;
}

/* dQ, one work-group per query tile: dQ_i = alpha sum_j P_ij (dP_ij - delta_i) K_j with
 * P recomputed from lse and dP_ij = dO_i . V_j. */
__kernel void KN(attn_bwd_dq)(HR_ATT_ARGS, __global const ST_T *dout, ulong odo, long ldo, long bso,
                              __global const float *lse, ulong olse, __global const float *delta,
                              __global ST_T *dq, ulong odq, __local float *qs, __local float *dos,
                              __local float *dqs, __local float *ks, __local float *vs,
                              __local float *ss) {
    const int r = get_local_id(0), q0 = get_group_id(0) * bq;
    const int h = get_global_id(1), b = get_global_id(2), shift = lk - lq, qi = q0 + r;
    const ulong hb = (ulong)h * dim;
    KN(att_load)(qs, q, oq + b * bsq + hb, ldq, q0, bq, lq, dim);
    KN(att_load)(dos, dout, odo + b * bso + hb, ldo, q0, bq, lq, dim);
    for (int x = r; x < bq * dim; x += get_local_size(0))
        dqs[x] = 0.0f;
    const int kend = causal ? clamp(min(q0 + bq, lq) + shift, 0, lk) : lk;
    const size_t row = ((size_t)b * heads + h) * lq + qi;
    const float li = qi < lq ? lse[olse + row] : -INFINITY;
    const float di = qi < lq ? delta[row] : 0.0f;
    __local float *qr = qs + r * dim, *dor = dos + r * dim, *dqr = dqs + r * dim, *sr = ss + r * bk;
    for (int k0 = 0; k0 < kend; k0 += bk) {
        barrier(CLK_LOCAL_MEM_FENCE);
        KN(att_load)(ks, kk, okk + b * bsk + hb, ldk, k0, bk, lk, dim);
        KN(att_load)(vs, vv, ov + b * bsk + hb, ldk, k0, bk, lk, dim);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (li == -INFINITY) continue; /* padding row, or no kept key: dQ = 0 */
        const int cend = min(bk, lk - k0);
        for (int c = 0; c < cend; c++) {
            const int j = k0 + c;
            float ds = 0.0f;
            if ((!causal || j <= qi + shift) &&
                (!use_mask || mask[omask + (ulong)b * lk + j] != 0)) {
                float p = exp(alpha * KN(att_dot)(qr, ks + c * dim, dim) - li);
                ds = p * (KN(att_dot)(dor, vs + c * dim, dim) - di) * alpha;
            }
            sr[c] = ds;
        }
        KN(att_acc)(dqr, 1.0f, sr, ks, cend, dim);
    }
    if (qi >= lq) return;
    const ulong ob = odq + b * bsq + hb + (long)qi * ldq;
    for (int e = 0; e < dim; e++)
        ST(dq, ob + e, dqr[e]);
}

/* dK and dV, one work-group per key tile, one work-item per key row:
 * dV_j = sum_i P_ij dO_i, dK_j = alpha sum_i P_ij (dP_ij - delta_i) Q_i. Causal: query
 * tiles that see none of the tile's keys are skipped. */
__kernel void KN(attn_bwd_dkv)(HR_ATT_ARGS, __global const ST_T *dout, ulong odo, long ldo,
                               long bso, __global const float *lse, ulong olse,
                               __global const float *delta, __global ST_T *dk, ulong odk,
                               __global ST_T *dv, ulong odv, __local float *ks, __local float *vs,
                               __local float *dks, __local float *dvs, __local float *qs,
                               __local float *dos, __local float *ps, __local float *dss,
                               __local float *ls, __local float *dl) {
    const int c = get_local_id(0), k0 = get_group_id(0) * bk, wg = get_local_size(0);
    const int h = get_global_id(1), b = get_global_id(2), shift = lk - lq, j = k0 + c;
    const ulong hb = (ulong)h * dim;
    KN(att_load)(ks, kk, okk + b * bsk + hb, ldk, k0, bk, lk, dim);
    KN(att_load)(vs, vv, ov + b * bsk + hb, ldk, k0, bk, lk, dim);
    for (int x = c; x < bk * dim; x += wg)
        dks[x] = dvs[x] = 0.0f;
    const int key_ok = j < lk && (!use_mask || mask[omask + (ulong)b * lk + j] != 0);
    const int qstart = causal ? max(0, k0 - shift) / bq * bq : 0;
    __local float *kr = ks + c * dim, *vr = vs + c * dim, *dkr = dks + c * dim,
                  *dvr = dvs + c * dim, *pr = ps + c * bq, *dsr = dss + c * bq;
    const size_t lrow = ((size_t)b * heads + h) * lq;
    for (int q0 = qstart; q0 < lq; q0 += bq) {
        barrier(CLK_LOCAL_MEM_FENCE);
        KN(att_load)(qs, q, oq + b * bsq + hb, ldq, q0, bq, lq, dim);
        KN(att_load)(dos, dout, odo + b * bso + hb, ldo, q0, bq, lq, dim);
        for (int x = c; x < bq; x += wg) {
            ls[x] = q0 + x < lq ? lse[olse + lrow + q0 + x] : -INFINITY;
            dl[x] = q0 + x < lq ? delta[lrow + q0 + x] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!key_ok) continue;
        const int rend = min(bq, lq - q0);
        for (int i = 0; i < rend; i++) {
            float p = 0.0f, ds = 0.0f;
            if (ls[i] != -INFINITY && (!causal || j <= q0 + i + shift)) {
                p = exp(alpha * KN(att_dot)(qs + i * dim, kr, dim) - ls[i]);
                ds = p * (KN(att_dot)(dos + i * dim, vr, dim) - dl[i]) * alpha;
            }
            pr[i] = p;
            dsr[i] = ds;
        }
        KN(att_acc)(dvr, 1.0f, pr, dos, rend, dim);
        KN(att_acc)(dkr, 1.0f, dsr, qs, rend, dim);
    }
    if (j >= lk) return;
    const long at = b * bsk + hb + (long)j * ldk;
    for (int e = 0; e < dim; e++) {
        ST(dk, odk + at + e, dkr[e]);
        ST(dv, odv + at + e, dvr[e]);
    }
}
