/* fp32 CPU kernels. Written so GCC vectorises the inner loops (-O2 -ftree-vectorize);
 * reductions accumulate in double so results do not depend on the row length's
 * rounding, and every kernel is deterministic (fixed loop order). */
#include "cpu_kernels.h"

#include <math.h>
#include <string.h>

#include "hetrun/ops.h"
#include "kernels/half.h"

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

void hetrun_cpu_act_forward_f32(unsigned act, const float *x, float *y, int64_t count) {
    if (act == HETRUN_ACT_RELU) {
        for (int64_t i = 0; i < count; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    }
    for (int64_t i = 0; i < count; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(gelu_k * (v + gelu_c * v * v * v)));
    }
}

void hetrun_cpu_act_backward_f32(unsigned act, const float *x, const float *dy, float *dx,
                                 int64_t count) {
    if (act == HETRUN_ACT_RELU) {
        for (int64_t i = 0; i < count; i++)
            dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
        return;
    }
    for (int64_t i = 0; i < count; i++) {
        float v = x[i];
        float t = tanhf(gelu_k * (v + gelu_c * v * v * v));
        float du = gelu_k * (1.0f + 3.0f * gelu_c * v * v);
        dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
    }
}

/* Row max and sum of exp(x - max), the stable softmax denominators. */
static void row_stats(const float *xr, int64_t n, float *maxv, double *sum) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++)
        mx = xr[j] > mx ? xr[j] : mx;
    double s = 0.0;
    for (int64_t j = 0; j < n; j++)
        s += expf(xr[j] - mx);
    *maxv = mx;
    *sum = s;
}

void hetrun_cpu_softmax_f32(const float *x, float *y, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i++) {
        float mx;
        double s;
        row_stats(x + i * n, n, &mx, &s);
        float inv = (float)(1.0 / s);
        for (int64_t j = 0; j < n; j++)
            y[i * n + j] = expf(x[i * n + j] - mx) * inv;
    }
}

void hetrun_cpu_xent_forward_f32(const float *logits, const int32_t *labels, float *probs,
                                 float *loss, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i++) {
        const float *xr = logits + i * n;
        float mx;
        double s;
        row_stats(xr, n, &mx, &s);
        float inv = (float)(1.0 / s);
        for (int64_t j = 0; j < n; j++)
            probs[i * n + j] = expf(xr[j] - mx) * inv;
        int32_t label = labels[i];
        loss[i] =
            (label >= 0 && label < n) ? (float)((double)mx + log(s) - (double)xr[label]) : NAN;
    }
}

void hetrun_cpu_xent_backward_f32(const float *probs, const int32_t *labels, float *dlogits,
                                  int64_t m, int64_t n, float alpha) {
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++)
            dlogits[i * n + j] = alpha * probs[i * n + j];
        int32_t label = labels[i];
        if (label >= 0 && label < n) dlogits[i * n + label] -= alpha;
    }
}

void hetrun_cpu_layernorm_f32(const float *x, const float *gamma, const float *beta, float *y,
                              int64_t m, int64_t n, float eps) {
    for (int64_t i = 0; i < m; i++) {
        const float *xr = x + i * n;
        double mean = 0.0, var = 0.0;
        for (int64_t j = 0; j < n; j++)
            mean += xr[j];
        mean /= (double)n;
        for (int64_t j = 0; j < n; j++) {
            double c = xr[j] - mean;
            var += c * c;
        }
        var /= (double)n;
        float inv = (float)(1.0 / sqrt(var + eps)), fm = (float)mean;
        for (int64_t j = 0; j < n; j++)
            y[i * n + j] = (xr[j] - fm) * inv * gamma[j] + beta[j];
    }
}

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

void hetrun_cpu_reduce_axis1_f32(const float *x, float *out, int64_t m, int64_t n, float alpha,
                                 float beta) {
    for (int64_t i = 0; i < m; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < n; j++)
            s += x[i * n + j];
        out[i] = alpha * (float)s + (beta != 0.0f ? beta * out[i] : 0.0f);
    }
}

void hetrun_cpu_scale_f32(const float *x, float *y, int64_t count, float alpha) {
    for (int64_t i = 0; i < count; i++)
        y[i] = alpha * x[i];
}

void hetrun_cpu_axpy_f32(const float *x, float *y, int64_t count, float alpha) {
    for (int64_t i = 0; i < count; i++)
        y[i] += alpha * x[i];
}

void hetrun_cpu_mul_f32(const float *x, const float *y, float *z, int64_t count) {
    for (int64_t i = 0; i < count; i++)
        z[i] = x[i] * y[i];
}

void hetrun_cpu_fill_f32(float *y, int64_t count, float value) {
    for (int64_t i = 0; i < count; i++)
        y[i] = value;
}

void hetrun_cpu_sgd_momentum_f32(float *w, const float *g, float *v, int64_t count, float lr,
                                 float momentum, float wd) {
    for (int64_t i = 0; i < count; i++) {
        float vi = momentum * v[i] + g[i] + wd * w[i];
        v[i] = vi;
        w[i] -= lr * vi;
    }
}

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
