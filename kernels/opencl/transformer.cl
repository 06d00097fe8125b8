/* Per-dtype bodies of the ABI 1.1 row, embedding and check ops (macros: see elementwise.cl).
 * Row ops run one work-item per row (or column), like the 1.0 row ops; reductions over a
 * whole tensor run in two deterministic stages (fixed groups, a tree in local memory, then
 * one work-item adds the partials in order), so the same input gives the same bits. */

/* LayerNorm backward, dX: one work-item per row. dX = rstd (dxhat - mean(dxhat)
 * - xhat mean(dxhat xhat)) with dxhat = dY gamma, plus the old dX when `acc`. Products
 * are separate statements so that FP_CONTRACT cannot fuse them into the subtractions:
 * dxhat - mean(dxhat) cancels exactly for n = 1, as in the reference. */
__kernel void KN(layernorm_bwd_dx)(__global const ST_T *x, ulong ox, __global const ST_T *gam,
                                   ulong og, __global const float *mu, ulong omu,
                                   __global const float *rs, ulong ors, __global const ST_T *dy,
                                   ulong ody, __global ST_T *dx, ulong odx, ulong rows, ulong cols,
                                   int acc) {
    size_t r = get_global_id(0);
    if (r >= rows) return;
    size_t base = r * cols;
    const CT mean = mu[omu + r], rstd = rs[ors + r];
    CT s1 = C(0.0), c1 = C(0.0), s2 = C(0.0), c2 = C(0.0);
    for (size_t j = 0; j < cols; j++) {
        CT xhat = (LD(x, ox + base + j) - mean) * rstd;
        CT dxh = LD(dy, ody + base + j) * LD(gam, og + j);
        CT prod = dxh * xhat;
        HR_KADD(s1, c1, dxh);
        HR_KADD(s2, c2, prod);
    }
    s1 /= (CT)cols;
    s2 /= (CT)cols;
    for (size_t j = 0; j < cols; j++) {
        CT xhat = (LD(x, ox + base + j) - mean) * rstd;
        CT dxh = LD(dy, ody + base + j) * LD(gam, og + j);
        CT xs = xhat * s2;
        CT v = rstd * (dxh - s1 - xs);
        if (acc) v += LD(dx, odx + base + j);
        ST(dx, odx + base + j, v);
    }
}

/* LayerNorm backward, dgamma and dbeta: one work-item per column, rows in order. */
__kernel void KN(layernorm_bwd_dgb)(__global const ST_T *x, ulong ox, __global const float *mu,
                                    ulong omu, __global const float *rs, ulong ors,
                                    __global const ST_T *dy, ulong ody, __global ST_T *dg,
                                    ulong odg, __global ST_T *db, ulong odb, ulong rows, ulong cols,
                                    int acc) {
    size_t j = get_global_id(0);
    if (j >= cols) return;
    CT sg = C(0.0), cg = C(0.0), sb = C(0.0), cb = C(0.0);
    for (size_t i = 0; i < rows; i++) {
        CT d = LD(dy, ody + i * cols + j);
        CT xhat = (LD(x, ox + i * cols + j) - (CT)mu[omu + i]) * (CT)rs[ors + i];
        CT prod = d * xhat;
        HR_KADD(sg, cg, prod);
        HR_KADD(sb, cb, d);
    }
    if (acc) {
        sg += LD(dg, odg + j);
        sb += LD(db, odb + j);
    }
    ST(dg, odg + j, sg);
    ST(db, odb + j, sb);
}

/* Softmax backward, one work-item per row: dX = Y (dY - sum(dY Y)); dX may alias dY
 * (each element is read before it is written). */
__kernel void KN(softmax_bwd)(__global const ST_T *y, ulong oy, __global const ST_T *dy, ulong ody,
                              __global ST_T *dx, ulong odx, ulong rows, ulong cols) {
    size_t r = get_global_id(0);
    if (r >= rows) return;
    size_t base = r * cols;
    CT s = C(0.0), c = C(0.0);
    for (size_t j = 0; j < cols; j++)
        HR_KADD(s, c, LD(y, oy + base + j) * LD(dy, ody + base + j));
    for (size_t j = 0; j < cols; j++) {
        CT yj = LD(y, oy + base + j);
        ST(dx, odx + base + j, yj * (LD(dy, ody + base + j) - s));
    }
}

/* Embedding lookup, one work-item per output element; an id outside [0, k) gives NaN. */
__kernel void KN(emb_fwd)(__global const int *ids, ulong oid, __global const ST_T *tab, ulong ot,
                          __global ST_T *out, ulong oo, ulong total, ulong cols, long k, CT alpha,
                          CT beta) {
    size_t x = get_global_id(0);
    if (x >= total) return;
    size_t i = x / cols, j = x - i * cols;
    int id = ids[oid + i];
    CT v = (id >= 0 && id < k) ? alpha * LD(tab, ot + (size_t)id * cols + j) : (CT)NAN;
    if (beta != C(0.0)) v += beta * LD(out, oo + x);
    ST(out, oo + x, v);
}

/* Embedding backward, one work-item per dtable element (r, j): sums the rows of dout whose
 * id is r in ascending token order, from the grouping emb_sort wrote (start[k + 1], then
 * order[m]). dtable is fp32 (`dtf`) when out_f32, else the storage dtype (`dt`). */
__kernel void KN(emb_bwd)(__global const ST_T *dout, ulong od, __global ST_T *dt,
                          __global float *dtf, ulong odt, int out_f32, __global const int *grp,
                          ulong total, ulong cols, long k, CT alpha, CT beta) {
    size_t x = get_global_id(0);
    if (x >= total) return;
    size_t r = x / cols, j = x - r * cols;
    __global const int *order = grp + k + 1;
    CT s = C(0.0), c = C(0.0);
    for (int e = grp[r]; e < grp[r + 1]; e++)
        HR_KADD(s, c, LD(dout, od + (size_t)order[e] * cols + j));
    CT v = alpha * s;
    if (out_f32) {
        if (beta != C(0.0)) v += beta * (CT)dtf[odt + x];
        dtf[odt + x] = (float)v;
    } else {
        if (beta != C(0.0)) v += beta * LD(dt, odt + x);
        ST(dt, odt + x, v);
    }
}

/* Stage 1 of NONFINITE_COUNT: per work-group count of NaN/inf into part[group]. */
__kernel void KN(nonfinite_part)(__global const ST_T *x, ulong ox, ulong n, __global int *part,
                                 __local int *loc) {
    uint lid = get_local_id(0), wg = get_local_size(0);
    int cnt = 0;
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0))
        cnt += !isfinite(LD(x, ox + i));
    loc[lid] = cnt;
    HR_TREE(loc, lid, wg);
    if (lid == 0) part[get_group_id(0)] = loc[0];
}

/* Stage 1 of SUM_SQUARES: per work-group sum of x^2 into part[group] (compute type). */
__kernel void KN(sumsq_part)(__global const ST_T *x, ulong ox, ulong n, __global CT *part,
                             __local CT *loc) {
    uint lid = get_local_id(0), wg = get_local_size(0);
    CT s = C(0.0), c = C(0.0);
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0)) {
        CT v = LD(x, ox + i);
        HR_KADD(s, c, v * v);
    }
    loc[lid] = s;
    HR_TREE(loc, lid, wg);
    if (lid == 0) part[get_group_id(0)] = loc[0];
}

/* Stage 2 of SUM_SQUARES (one work-item): out = alpha sum(part) + beta out. */
__kernel void KN(sumsq_final)(__global const CT *part, int nparts, __global float *out, ulong oo,
                              CT alpha, CT beta) {
    if (get_global_id(0) != 0) return;
    CT s = C(0.0), c = C(0.0);
    for (int g = 0; g < nparts; g++)
        HR_KADD(s, c, part[g]);
    CT v = alpha * s;
    if (beta != C(0.0)) v += beta * (CT)out[oo];
    out[oo] = (float)v;
}
