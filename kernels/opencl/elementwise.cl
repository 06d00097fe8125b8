/* Per-dtype op bodies. The host prepends, per storage dtype:
 *   SUF (f32|f16|bf16|f64), ST_T (storage type), CT (compute type: CT or double),
 *   C(x) (a literal in CT), LD(p, i), ST(p, i, v), HR_VEC_C (C rows take vector loads)
 * and instantiates this file once per dtype; KN(name) gives name_SUF.
 * Offsets (o*) are in elements. n/m/cols are element counts; one work-item per element
 * unless stated; the global size is rounded up, so every kernel bounds-checks. */
#define KN(name) HR_CAT(name, HR_CAT(_, SUF))

/* GELU, tanh form, written as x * sigmoid(2u): same value, no cancellation for x << 0. */
inline CT KN(gelu)(CT x) {
    CT u = C(0.7978845608028654) * (x + C(0.044715) * x * x * x);
    return x / (C(1.0) + exp(C(-2.0) * u));
}
inline CT KN(gelu_grad)(CT x) {
    CT u = C(0.7978845608028654) * (x + C(0.044715) * x * x * x);
    CT du = C(0.7978845608028654) * (C(1.0) + C(3.0) * C(0.044715) * x * x);
    CT s = C(1.0) / (C(1.0) + exp(C(-2.0) * u)); /* (1 + tanh u) / 2 */
    return s + C(2.0) * x * s * (C(1.0) - s) * du;
}
/* GELU, erf form, as 0.5 x erfc(-x/sqrt 2): 1 + erf(z) without cancellation for x << 0. */
inline CT KN(gelu_erf)(CT x) { return C(0.5) * x * erfc(C(-0.7071067811865476) * x); }
inline CT KN(gelu_erf_grad)(CT x) {
    return C(0.5) * erfc(C(-0.7071067811865476) * x) +
           x * C(0.3989422804014327) * exp(C(-0.5) * x * x);
}
/* act: 0 relu, 1 gelu (tanh), 2 gelu (erf), 3 identity (hetrun_activation). */
inline CT KN(act)(int act, CT x) {
    switch (act) {
    case 0: return fmax(x, C(0.0));
    case 1: return KN(gelu)(x);
    case 2: return KN(gelu_erf)(x);
    default: return x;
    }
}
inline CT KN(act_grad)(int act, CT x) {
    switch (act) {
    case 0: return x > C(0.0) ? C(1.0) : C(0.0);
    case 1: return KN(gelu_grad)(x);
    case 2: return KN(gelu_erf_grad)(x);
    default: return C(1.0);
    }
}

__kernel void KN(fill)(__global ST_T *y, ulong oy, ulong n, CT alpha) {
    size_t i = get_global_id(0);
    if (i < n) ST(y, oy + i, alpha);
}

__kernel void KN(scale)(__global const ST_T *x, ulong ox, __global ST_T *y, ulong oy, ulong n,
                        CT alpha) {
    size_t i = get_global_id(0);
    if (i < n) ST(y, oy + i, alpha * LD(x, ox + i));
}

__kernel void KN(axpy)(__global const ST_T *x, ulong ox, __global ST_T *y, ulong oy, ulong n,
                       CT alpha) {
    size_t i = get_global_id(0);
    if (i < n) ST(y, oy + i, fma(alpha, LD(x, ox + i), LD(y, oy + i)));
}

__kernel void KN(mul)(__global const ST_T *x, ulong ox, __global const ST_T *y, ulong oy,
                      __global ST_T *z, ulong oz, ulong n) {
    size_t i = get_global_id(0);
    if (i < n) ST(z, oz + i, LD(x, ox + i) * LD(y, oy + i));
}

__kernel void KN(bias_add)(__global const ST_T *x, ulong ox, __global const ST_T *b, ulong ob,
                           __global ST_T *y, ulong oy, ulong n, ulong cols) {
    size_t i = get_global_id(0);
    if (i < n) ST(y, oy + i, LD(x, ox + i) + LD(b, ob + i % cols));
}

__kernel void KN(act_fwd)(__global const ST_T *x, ulong ox, __global ST_T *y, ulong oy, ulong n,
                          int act) {
    size_t i = get_global_id(0);
    if (i < n) ST(y, oy + i, KN(act)(act, LD(x, ox + i)));
}

__kernel void KN(act_bwd)(__global const ST_T *x, ulong ox, __global const ST_T *dy, ulong ody,
                          __global ST_T *dx, ulong odx, ulong n, int act) {
    size_t i = get_global_id(0);
    if (i < n) ST(dx, odx + i, LD(dy, ody + i) * KN(act_grad)(act, LD(x, ox + i)));
}

__kernel void KN(xent_bwd)(__global const ST_T *p, ulong op, __global const int *labels,
                           ulong olab, __global ST_T *dl, ulong odl, ulong n, ulong cols,
                           CT alpha) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    int label = labels[olab + i / cols];
    CT v = LD(p, op + i) - ((long)(i % cols) == (long)label ? C(1.0) : C(0.0));
    ST(dl, odl + i, alpha * v);
}

__kernel void KN(sgd)(__global ST_T *w, ulong ow, __global const ST_T *g, ulong og,
                      __global ST_T *v, ulong ov, ulong n, CT lr, CT mom, CT wd) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    CT wi = LD(w, ow + i);
    CT vi = mom * LD(v, ov + i) + LD(g, og + i) + wd * wi;
    ST(v, ov + i, vi);
    ST(w, ow + i, wi - lr * vi);
}

/* c1 = 1 - b1^t, c2 = 1 - b2^t are computed on the host in double. */
__kernel void KN(adamw)(__global ST_T *w, ulong ow, __global const ST_T *g, ulong og,
                        __global ST_T *mo, ulong om, __global ST_T *ve, ulong ov, ulong n,
                        CT lr, CT b1, CT b2, CT eps, CT wd, CT c1, CT c2) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    CT gi = LD(g, og + i), wi = LD(w, ow + i);
    CT mi = b1 * LD(mo, om + i) + (C(1.0) - b1) * gi;
    CT vi = b2 * LD(ve, ov + i) + (C(1.0) - b2) * gi * gi;
    wi -= lr * wd * wi;
    wi -= lr * (mi / c1) / (sqrt(vi / c2) + eps);
    ST(w, ow + i, wi);
    ST(mo, om + i, mi);
    ST(ve, ov + i, vi);
}

__kernel void KN(cast_to_f32)(__global const ST_T *x, ulong ox, __global float *y, ulong oy,
                              ulong n) {
    size_t i = get_global_id(0);
    if (i < n) y[oy + i] = LD(x, ox + i);
}

__kernel void KN(cast_from_f32)(__global const float *x, ulong ox, __global ST_T *y, ulong oy,
                                ulong n) {
    size_t i = get_global_id(0);
    if (i < n) ST(y, oy + i, x[ox + i]);
}

/* ---- row / column ops: one work-item per row (or column) ---- */

__kernel void KN(softmax)(__global const ST_T *x, ulong ox, __global ST_T *y, ulong oy, ulong rows,
                          ulong cols) {
    size_t r = get_global_id(0);
    if (r >= rows) return;
    size_t base = r * cols;
    CT mx = -(CT)INFINITY, s = C(0.0), c = C(0.0);
    for (size_t j = 0; j < cols; j++) mx = fmax(mx, LD(x, ox + base + j));
    for (size_t j = 0; j < cols; j++) HR_KADD(s, c, exp(LD(x, ox + base + j) - mx));
    CT inv = C(1.0) / s;
    for (size_t j = 0; j < cols; j++) ST(y, oy + base + j, exp(LD(x, ox + base + j) - mx) * inv);
}

__kernel void KN(xent_fwd)(__global const ST_T *x, ulong ox, __global const int *labels,
                           ulong olab, __global ST_T *probs, ulong op, __global ST_T *loss,
                           ulong ol, ulong rows, ulong cols) {
    size_t r = get_global_id(0);
    if (r >= rows) return;
    size_t base = r * cols;
    CT mx = -(CT)INFINITY, s = C(0.0), c = C(0.0);
    for (size_t j = 0; j < cols; j++) mx = fmax(mx, LD(x, ox + base + j));
    for (size_t j = 0; j < cols; j++) HR_KADD(s, c, exp(LD(x, ox + base + j) - mx));
    CT inv = C(1.0) / s;
    for (size_t j = 0; j < cols; j++)
        ST(probs, op + base + j, exp(LD(x, ox + base + j) - mx) * inv);
    int label = labels[olab + r];
    /* An out-of-range label gives NaN, as the reference does. */
    CT xl = (label >= 0 && (ulong)label < cols) ? LD(x, ox + base + (size_t)label) : (CT)NAN;
    ST(loss, ol + r, mx + log(s) - xl);
}

/* LAYERNORM, and LAYERNORM_FORWARD when `stats` is set: also mean and rstd (fp32). */
__kernel void KN(layernorm)(__global const ST_T *x, ulong ox, __global const ST_T *gam, ulong og,
                            __global const ST_T *bet, ulong ob, __global ST_T *y, ulong oy,
                            ulong rows, ulong cols, CT eps, int stats, __global float *mu,
                            ulong omu, __global float *rs, ulong ors) {
    size_t r = get_global_id(0);
    if (r >= rows) return;
    size_t base = r * cols;
    CT s = C(0.0), c = C(0.0);
    for (size_t j = 0; j < cols; j++) HR_KADD(s, c, LD(x, ox + base + j));
    CT mean = s / (CT)cols;
    s = C(0.0);
    c = C(0.0);
    for (size_t j = 0; j < cols; j++) {
        CT d = LD(x, ox + base + j) - mean;
        HR_KADD(s, c, d * d);
    }
    CT inv = C(1.0) / sqrt(s / (CT)cols + eps);
    for (size_t j = 0; j < cols; j++)
        ST(y, oy + base + j,
           (LD(x, ox + base + j) - mean) * inv * LD(gam, og + j) + LD(bet, ob + j));
    if (stats) {
        mu[omu + r] = (float)mean;
        rs[ors + r] = (float)inv;
    }
}

/* out[j] = alpha * sum_i X[i,j] + beta * out[j]; out is not read when beta == 0. */
__kernel void KN(reduce0)(__global const ST_T *x, ulong ox, __global ST_T *out, ulong oo,
                          ulong rows, ulong cols, CT alpha, CT beta) {
    size_t j = get_global_id(0);
    if (j >= cols) return;
    CT s = C(0.0), c = C(0.0);
    for (size_t i = 0; i < rows; i++) HR_KADD(s, c, LD(x, ox + i * cols + j));
    CT v = alpha * s;
    if (beta != C(0.0)) v += beta * LD(out, oo + j);
    ST(out, oo + j, v);
}

__kernel void KN(reduce1)(__global const ST_T *x, ulong ox, __global ST_T *out, ulong oo,
                          ulong rows, ulong cols, CT alpha, CT beta) {
    size_t i = get_global_id(0);
    if (i >= rows) return;
    CT s = C(0.0), c = C(0.0);
    for (size_t j = 0; j < cols; j++) HR_KADD(s, c, LD(x, ox + i * cols + j));
    CT v = alpha * s;
    if (beta != C(0.0)) v += beta * LD(out, oo + i);
    ST(out, oo + i, v);
}
