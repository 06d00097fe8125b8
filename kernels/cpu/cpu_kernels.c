/* fp32 CPU kernels. Written so GCC vectorises the inner loops (-O2 -ftree-vectorize);
 * reductions accumulate in double so results do not depend on the row length's
 * rounding, and every kernel is deterministic (fixed loop order). */
#include "cpu_kernels.h"

#include <math.h>
#include <string.h>

#include "hetrun/ops.h"
#include "kernels/half.h"

/* exp(x) for float without a libm call, so loops vectorise: x = n ln2 + r with |r| <=
 * ln2/2, exp(r) by its degree-7 Taylor polynomial (truncation < 2e-8 relative), times
 * 2^n built in the exponent bits. Within a few ulp of expf on [-86.9, 88.7]; below that
 * it flushes to 0, above it saturates at exp(88.7) (callers pass x <= 0 or clamp), and
 * NaN stays NaN. */
static inline __attribute__((always_inline)) float vexpf(float x) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.7f ? 88.7f : x;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
    float p =
        1.0f +
        r * (1.0f +
             r * (0.5f +
                  r * (1.0f / 6 +
                       r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    uint32_t ni; /* unsigned: a NaN's bits must not make the shift undefined */
    memcpy(&ni, &t, sizeof ni);
    ni -= 0x4b400000u; /* the bits of magic: leaves n */
    uint32_t bits = (ni + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < -86.9f ? 0.0f : p * scale;
}

/* erf(x) for float without a libm call, so GELU's loops vectorise. |x| < 0.625: x P(x^2),
 * P of degree 5 fitted to erf(x)/x; 0.625 <= |x| < 3.925: 1 - exp(Q(|x| - 0.625)), Q of
 * degree 8 fitted to log(erfc); beyond, +-1 (erfc(3.925) is below half an ulp of 1).
 * Coefficients from scripts/fit-erf.py (least squares on Chebyshev nodes, in double).
 * Against double erf over [-8, 8]: at most ~1.1e-7 absolute (2 ulp, near |x| = 0.6; libm's
 * erff is within 3e-8), checked by tests/cpu (cpu_transformer_ops). NaN stays NaN. */
static inline __attribute__((always_inline)) float verff(float x) {
    const float a = fabsf(x), u = x * x;
    float p = -7.250825403e-04f;
    p = p * u + 5.168345825e-03f;
    p = p * u - 2.685498825e-02f;
    p = p * u + 1.128368920e-01f;
    p = p * u - 3.761263545e-01f;
    p = p * u + 1.128379167e+00f;
    const float s = (a > 3.925f ? 3.925f : a) - 0.625f; /* NaN passes through */
    float q = 1.423792403e-06f;
    q = q * s - 3.475895490e-05f;
    q = q * s + 3.943391293e-04f;
    q = q * s - 2.815567571e-03f;
    q = q * s + 1.455208362e-02f;
    q = q * s - 5.981411566e-02f;
    q = q * s - 7.867248282e-01f;
    q = q * s - 2.026498135e+00f;
    q = q * s - 9.761491406e-01f;
    float big = a >= 3.925f ? 1.0f : 1.0f - vexpf(q);
    big = x < 0.0f ? -big : big;
    return a < 0.625f ? x * p : big;
}

/* tanh(u) = 1 - 2 / (1 + exp(2u)); |u| > 9 is +-1 to float precision. */
static inline __attribute__((always_inline)) float vtanhf(float u) {
    u = u > 9.0f ? 9.0f : u;
    u = u < -9.0f ? -9.0f : u;
    return 1.0f - 2.0f / (1.0f + vexpf(2.0f * u));
}

/* Sum in 16 fixed double lanes: vectorises without reassociating, so results do not
 * depend on the machine, and stays accurate for long rows. */
static inline __attribute__((always_inline)) double lane_sum(const float *v, int64_t n) {
    double lane[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++)
            lane[l] += (double)v[i + l];
    double s = 0.0;
    for (; i < n; i++)
        s += (double)v[i];
    for (int l = 0; l < 16; l++)
        s += lane[l];
    return s;
}

static inline __attribute__((always_inline)) float row_max(const float *v, int64_t n) {
    float lane[16];
    int64_t i = 0;
    for (int l = 0; l < 16; l++)
        lane[l] = -INFINITY;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++)
            lane[l] = v[i + l] > lane[l] ? v[i + l] : lane[l];
    float mx = -INFINITY;
    for (; i < n; i++)
        mx = v[i] > mx ? v[i] : mx;
    for (int l = 0; l < 16; l++)
        mx = lane[l] > mx ? lane[l] : mx;
    return mx;
}

HETRUN_CLONES
void hetrun_cpu_bias_add_f32(const float *x, const float *bias, float *y, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i++) {
        const float *xr = x + i * n;
        float *yr = y + i * n;
        for (int64_t j = 0; j < n; j++)
            yr[j] = xr[j] + bias[j];
    }
}

static const float gelu_k = 0.7978845608028654f; /* sqrt(2/pi) */
static const float gelu_c = 0.044715f;

HETRUN_CLONES
void hetrun_cpu_act_forward_f32(unsigned act, const float *x, float *y, int64_t count) {
    if (act == HETRUN_ACT_RELU) {
        for (int64_t i = 0; i < count; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    }
    if (act == HETRUN_ACT_IDENTITY) {
        if (y != x) memmove(y, x, (size_t)count * sizeof *y);
        return;
    }
    if (act == HETRUN_ACT_GELU_ERF) {
        for (int64_t i = 0; i < count; i++)
            y[i] = 0.5f * x[i] * (1.0f + verff(x[i] * 0.70710678f));
        return;
    }
    for (int64_t i = 0; i < count; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + vtanhf(gelu_k * (v + gelu_c * v * v * v)));
    }
}

HETRUN_CLONES
void hetrun_cpu_act_backward_f32(unsigned act, const float *x, const float *dy, float *dx,
                                 int64_t count) {
    if (act == HETRUN_ACT_RELU) {
        for (int64_t i = 0; i < count; i++)
            dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
        return;
    }
    if (act == HETRUN_ACT_IDENTITY) {
        if (dx != dy) memmove(dx, dy, (size_t)count * sizeof *dx);
        return;
    }
    if (act == HETRUN_ACT_GELU_ERF) { /* Phi(x) + x phi(x) */
        for (int64_t i = 0; i < count; i++) {
            float v = x[i];
            dx[i] = dy[i] * (0.5f * (1.0f + verff(v * 0.70710678f)) +
                             v * 0.39894228f * vexpf(-0.5f * v * v));
        }
        return;
    }
    for (int64_t i = 0; i < count; i++) {
        float v = x[i];
        float t = vtanhf(gelu_k * (v + gelu_c * v * v * v));
        float du = gelu_k * (1.0f + 3.0f * gelu_c * v * v);
        dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
    }
}

/* e[j] = exp(x[j] - max) for one row; returns max and the double sum of e. */
static inline __attribute__((always_inline)) void row_exp(const float *xr, float *e, int64_t n,
                                                          float *maxv, double *sum) {
    float mx = row_max(xr, n);
    for (int64_t j = 0; j < n; j++)
        e[j] = vexpf(xr[j] - mx);
    *maxv = mx;
    *sum = lane_sum(e, n);
}

HETRUN_CLONES
void hetrun_cpu_softmax_f32(const float *x, float *y, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i++) {
        float mx;
        double s;
        row_exp(x + i * n, y + i * n, n, &mx, &s);
        float inv = (float)(1.0 / s);
        for (int64_t j = 0; j < n; j++)
            y[i * n + j] *= inv;
    }
}

HETRUN_CLONES
void hetrun_cpu_xent_forward_f32(const float *logits, const int32_t *labels, float *probs,
                                 float *loss, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i++) {
        const float *xr = logits + i * n;
        float mx;
        double s;
        row_exp(xr, probs + i * n, n, &mx, &s);
        float inv = (float)(1.0 / s);
        for (int64_t j = 0; j < n; j++)
            probs[i * n + j] *= inv;
        int32_t label = labels[i];
        loss[i] =
            (label >= 0 && label < n) ? (float)((double)mx + log(s) - (double)xr[label]) : NAN;
    }
}

HETRUN_CLONES
void hetrun_cpu_xent_backward_f32(const float *probs, const int32_t *labels, float *dlogits,
                                  int64_t m, int64_t n, float alpha) {
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++)
            dlogits[i * n + j] = alpha * probs[i * n + j];
        int32_t label = labels[i];
        if (label >= 0 && label < n) dlogits[i * n + label] -= alpha;
    }
}

HETRUN_CLONES
void hetrun_cpu_layernorm_f32(const float *x, const float *gamma, const float *beta, float *y,
                              int64_t m, int64_t n, float eps) {
    for (int64_t i = 0; i < m; i++) {
        const float *xr = x + i * n;
        double mean = lane_sum(xr, n) / (double)n;
        double lane[16] = {0}, var = 0.0;
        int64_t j = 0;
        for (; j + 16 <= n; j += 16)
            for (int l = 0; l < 16; l++) {
                double c = (double)xr[j + l] - mean;
                lane[l] += c * c;
            }
        for (; j < n; j++)
            var += ((double)xr[j] - mean) * ((double)xr[j] - mean);
        for (int l = 0; l < 16; l++)
            var += lane[l];
        var /= (double)n;
        float inv = (float)(1.0 / sqrt(var + eps)), fm = (float)mean;
        for (j = 0; j < n; j++)
            y[i * n + j] = (xr[j] - fm) * inv * gamma[j] + beta[j];
    }
}

HETRUN_CLONES
void hetrun_cpu_reduce_axis0_f32(const float *x, float *out, int64_t m, int64_t n, float alpha,
                                 float beta) {
    /* Column sums: walk rows in order so memory is read once, sequentially. */
    enum { CHUNK = 1024 };
    double acc[CHUNK];
    for (int64_t j0 = 0; j0 < n; j0 += CHUNK) {
        int64_t w = n - j0 < CHUNK ? n - j0 : CHUNK;
        for (int64_t j = 0; j < w; j++)
            acc[j] = 0.0;
        for (int64_t i = 0; i < m; i++) {
            const float *xr = x + i * n + j0;
            for (int64_t j = 0; j < w; j++)
                acc[j] += xr[j];
        }
        for (int64_t j = 0; j < w; j++)
            out[j0 + j] = alpha * (float)acc[j] + (beta != 0.0f ? beta * out[j0 + j] : 0.0f);
    }
}

HETRUN_CLONES
void hetrun_cpu_reduce_axis1_f32(const float *x, float *out, int64_t m, int64_t n, float alpha,
                                 float beta) {
    for (int64_t i = 0; i < m; i++)
        out[i] = alpha * (float)lane_sum(x + i * n, n) + (beta != 0.0f ? beta * out[i] : 0.0f);
}

HETRUN_CLONES
void hetrun_cpu_scale_f32(const float *x, float *y, int64_t count, float alpha) {
    for (int64_t i = 0; i < count; i++)
        y[i] = alpha * x[i];
}

HETRUN_CLONES
void hetrun_cpu_axpy_f32(const float *x, float *y, int64_t count, float alpha) {
    for (int64_t i = 0; i < count; i++)
        y[i] += alpha * x[i];
}

HETRUN_CLONES
void hetrun_cpu_mul_f32(const float *x, const float *y, float *z, int64_t count) {
    for (int64_t i = 0; i < count; i++)
        z[i] = x[i] * y[i];
}

void hetrun_cpu_fill_f32(float *y, int64_t count, float value) {
    for (int64_t i = 0; i < count; i++)
        y[i] = value;
}

HETRUN_CLONES
void hetrun_cpu_sgd_momentum_f32(float *w, const float *g, float *v, int64_t count, float lr,
                                 float momentum, float wd) {
    for (int64_t i = 0; i < count; i++) {
        float vi = momentum * v[i] + g[i] + wd * w[i];
        v[i] = vi;
        w[i] -= lr * vi;
    }
}

HETRUN_CLONES
void hetrun_cpu_adamw_f32(float *w, const float *g, float *m1, float *m2, int64_t count,
                          const double p[6]) {
    const float lr = (float)p[0], b1 = (float)p[1], b2 = (float)p[2], eps = (float)p[3];
    const float decay = (float)(1.0 - p[0] * p[4]);
    const float c1 = (float)(1.0 / (1.0 - pow(p[1], p[5])));
    const float c2 = (float)(1.0 / (1.0 - pow(p[2], p[5])));
    for (int64_t i = 0; i < count; i++) {
        float gi = g[i];
        float mo = b1 * m1[i] + (1.0f - b1) * gi;
        float ve = b2 * m2[i] + (1.0f - b2) * gi * gi;
        m1[i] = mo;
        m2[i] = ve;
        w[i] = w[i] * decay - lr * (mo * c1) / (sqrtf(ve * c2) + eps);
    }
}

void hetrun_cpu_cast(const void *x, int in, void *y, int out, int64_t count) {
    if (in == HETRUN_F32 && out == HETRUN_BF16) {
        for (int64_t i = 0; i < count; i++)
            ((uint16_t *)y)[i] = hetrun_f32_to_bf16(((const float *)x)[i]);
    } else if (in == HETRUN_F32 && out == HETRUN_F16) {
        for (int64_t i = 0; i < count; i++)
            ((uint16_t *)y)[i] = hetrun_f32_to_f16(((const float *)x)[i]);
    } else if (in == HETRUN_F32 && out == HETRUN_F64) {
        for (int64_t i = 0; i < count; i++)
            ((double *)y)[i] = ((const float *)x)[i];
    } else if (in == HETRUN_BF16 && out == HETRUN_F32) {
        for (int64_t i = 0; i < count; i++)
            ((float *)y)[i] = hetrun_bf16_to_f32(((const uint16_t *)x)[i]);
    } else if (in == HETRUN_F16 && out == HETRUN_F32) {
        for (int64_t i = 0; i < count; i++)
            ((float *)y)[i] = hetrun_f16_to_f32(((const uint16_t *)x)[i]);
    } else if (in == HETRUN_F64 && out == HETRUN_F32) {
        for (int64_t i = 0; i < count; i++)
            ((float *)y)[i] = (float)((const double *)x)[i];
    }
}
