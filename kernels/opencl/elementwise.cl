/* Per-dtype op bodies. The host prepends, per storage dtype:
 *   SUF (f32|f16|bf16), ST_T (storage type), LD(p, i), ST(p, i, v), IS_F32
 * and instantiates this file once per dtype; KN(name) gives name_SUF.
 * Offsets (o*) are in elements. n/m/cols are element counts; one work-item per element
 * unless stated; the global size is rounded up, so every kernel bounds-checks. */
#define KN(name) HR_CAT(name, HR_CAT(_, SUF))

__kernel void KN(fill)(__global ST_T *y, ulong oy, ulong n, float alpha) {
    size_t i = get_global_id(0);
    if (i < n) ST(y, oy + i, alpha);
}

__kernel void KN(scale)(__global const ST_T *x, ulong ox, __global ST_T *y, ulong oy, ulong n,
                        float alpha) {
    size_t i = get_global_id(0);
    if (i < n) ST(y, oy + i, alpha * LD(x, ox + i));
}

__kernel void KN(axpy)(__global const ST_T *x, ulong ox, __global ST_T *y, ulong oy, ulong n,
                       float alpha) {
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
    if (i < n) ST(y, oy + i, hr_act(act, LD(x, ox + i)));
}

__kernel void KN(act_bwd)(__global const ST_T *x, ulong ox, __global const ST_T *dy, ulong ody,
                          __global ST_T *dx, ulong odx, ulong n, int act) {
    size_t i = get_global_id(0);
    if (i < n) ST(dx, odx + i, LD(dy, ody + i) * hr_act_grad(act, LD(x, ox + i)));
}

__kernel void KN(xent_bwd)(__global const ST_T *p, ulong op, __global const int *labels,
                           ulong olab, __global ST_T *dl, ulong odl, ulong n, ulong cols,
                           float alpha) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    int label = labels[olab + i / cols];
    float v = LD(p, op + i) - ((long)(i % cols) == (long)label ? 1.0f : 0.0f);
    ST(dl, odl + i, alpha * v);
}

__kernel void KN(sgd)(__global ST_T *w, ulong ow, __global const ST_T *g, ulong og,
                      __global ST_T *v, ulong ov, ulong n, float lr, float mom, float wd) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float wi = LD(w, ow + i);
    float vi = mom * LD(v, ov + i) + LD(g, og + i) + wd * wi;
    ST(v, ov + i, vi);
    ST(w, ow + i, wi - lr * vi);
}

/* c1 = 1 - b1^t, c2 = 1 - b2^t are computed on the host in double. */
__kernel void KN(adamw)(__global ST_T *w, ulong ow, __global const ST_T *g, ulong og,
                        __global ST_T *mo, ulong om, __global ST_T *ve, ulong ov, ulong n,
                        float lr, float b1, float b2, float eps, float wd, float c1, float c2) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float gi = LD(g, og + i), wi = LD(w, ow + i);
    float mi = b1 * LD(mo, om + i) + (1.0f - b1) * gi;
    float vi = b2 * LD(ve, ov + i) + (1.0f - b2) * gi * gi;
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
    float mx = -INFINITY, s = 0.0f, c = 0.0f;
    for (size_t j = 0; j < cols; j++) mx = fmax(mx, LD(x, ox + base + j));
    for (size_t j = 0; j < cols; j++) HR_KADD(s, c, exp(LD(x, ox + base + j) - mx));
    float inv = 1.0f / s;
    for (size_t j = 0; j < cols; j++) ST(y, oy + base + j, exp(LD(x, ox + base + j) - mx) * inv);
}

__kernel void KN(xent_fwd)(__global const ST_T *x, ulong ox, __global const int *labels,
                           ulong olab, __global ST_T *probs, ulong op, __global ST_T *loss,
                           ulong ol, ulong rows, ulong cols) {
    size_t r = get_global_id(0);
    if (r >= rows) return;
    size_t base = r * cols;
    float mx = -INFINITY, s = 0.0f, c = 0.0f;
    for (size_t j = 0; j < cols; j++) mx = fmax(mx, LD(x, ox + base + j));
    for (size_t j = 0; j < cols; j++) HR_KADD(s, c, exp(LD(x, ox + base + j) - mx));
    float inv = 1.0f / s;
    for (size_t j = 0; j < cols; j++)
        ST(probs, op + base + j, exp(LD(x, ox + base + j) - mx) * inv);
    int label = labels[olab + r];
    /* An out-of-range label gives NaN, as the reference does. */
    float xl = (label >= 0 && (ulong)label < cols) ? LD(x, ox + base + (size_t)label) : NAN;
    ST(loss, ol + r, mx + log(s) - xl);
}

__kernel void KN(layernorm)(__global const ST_T *x, ulong ox, __global const ST_T *gam, ulong og,
                            __global const ST_T *bet, ulong ob, __global ST_T *y, ulong oy,
                            ulong rows, ulong cols, float eps) {
    size_t r = get_global_id(0);
    if (r >= rows) return;
    size_t base = r * cols;
    float s = 0.0f, c = 0.0f;
    for (size_t j = 0; j < cols; j++) HR_KADD(s, c, LD(x, ox + base + j));
    float mean = s / (float)cols;
    s = 0.0f;
    c = 0.0f;
    for (size_t j = 0; j < cols; j++) {
        float d = LD(x, ox + base + j) - mean;
        HR_KADD(s, c, d * d);
    }
    float inv = 1.0f / sqrt(s / (float)cols + eps);
    for (size_t j = 0; j < cols; j++)
        ST(y, oy + base + j,
           (LD(x, ox + base + j) - mean) * inv * LD(gam, og + j) + LD(bet, ob + j));
}

/* out[j] = alpha * sum_i X[i,j] + beta * out[j]; out is not read when beta == 0. */
__kernel void KN(reduce0)(__global const ST_T *x, ulong ox, __global ST_T *out, ulong oo,
                          ulong rows, ulong cols, float alpha, float beta) {
    size_t j = get_global_id(0);
    if (j >= cols) return;
    float s = 0.0f, c = 0.0f;
    for (size_t i = 0; i < rows; i++) HR_KADD(s, c, LD(x, ox + i * cols + j));
    float v = alpha * s;
    if (beta != 0.0f) v += beta * LD(out, oo + j);
    ST(out, oo + j, v);
}

__kernel void KN(reduce1)(__global const ST_T *x, ulong ox, __global ST_T *out, ulong oo,
                          ulong rows, ulong cols, float alpha, float beta) {
    size_t i = get_global_id(0);
    if (i >= rows) return;
    float s = 0.0f, c = 0.0f;
    for (size_t j = 0; j < cols; j++) HR_KADD(s, c, LD(x, ox + i * cols + j));
    float v = alpha * s;
    if (beta != 0.0f) v += beta * LD(out, oo + i);
    ST(out, oo + i, v);
}
