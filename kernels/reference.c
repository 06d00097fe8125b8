/* Reference semantics of the op catalogue in plain C, double accumulation. */
#include "reference.h"

#include <math.h>
#include <stdint.h>

#include "catalogue.h"
#include "half.h"

double hetrun_load_as_double(const void *base, hetrun_dtype dtype, uint64_t i) {
    switch (dtype) {
    case HETRUN_F32: return ((const float *)base)[i];
    case HETRUN_F64: return ((const double *)base)[i];
    case HETRUN_F16: return hetrun_f16_to_f32(((const uint16_t *)base)[i]);
    case HETRUN_BF16: return hetrun_bf16_to_f32(((const uint16_t *)base)[i]);
    case HETRUN_I8: return ((const int8_t *)base)[i];
    case HETRUN_I32: return ((const int32_t *)base)[i];
    default: return NAN;
    }
}

void hetrun_store_from_double(void *base, hetrun_dtype dtype, uint64_t i, double v) {
    switch (dtype) {
    case HETRUN_F32: ((float *)base)[i] = (float)v; break;
    case HETRUN_F64: ((double *)base)[i] = v; break;
    case HETRUN_F16: ((uint16_t *)base)[i] = hetrun_f32_to_f16((float)v); break;
    case HETRUN_BF16: ((uint16_t *)base)[i] = hetrun_f32_to_bf16((float)v); break;
    case HETRUN_I8: ((int8_t *)base)[i] = (int8_t)v; break;
    case HETRUN_I32: ((int32_t *)base)[i] = (int32_t)v; break;
    default: break;
    }
}

#define LD(p, t, i) hetrun_load_as_double((p), (t), (uint64_t)(i))
#define ST(p, t, i, v) hetrun_store_from_double((p), (t), (uint64_t)(i), (v))

static const double gelu_k = 0.7978845608028654; /* sqrt(2/pi) */

static double act_fwd(unsigned act, double x) {
    if (act == HETRUN_ACT_RELU) return x > 0.0 ? x : 0.0;
    return 0.5 * x * (1.0 + tanh(gelu_k * (x + 0.044715 * x * x * x)));
}

static double act_grad(unsigned act, double x) {
    if (act == HETRUN_ACT_RELU) return x > 0.0 ? 1.0 : 0.0;
    double u = gelu_k * (x + 0.044715 * x * x * x);
    double t = tanh(u);
    double du = gelu_k * (1.0 + 3.0 * 0.044715 * x * x);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
}

static void gemm(const hetrun_op_desc *d, void *const *a) {
    const hetrun_dtype ti = (hetrun_dtype)d->dtype, to = (hetrun_dtype)d->out_dtype;
    const int ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
    const int64_t lda = d->lda ? d->lda : (ta ? d->m : d->k);
    const int64_t ldb = d->ldb ? d->ldb : (tb ? d->k : d->n);
    const int64_t ldc = d->ldc ? d->ldc : d->n;
    for (int64_t i = 0; i < d->m; i++)
        for (int64_t j = 0; j < d->n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < d->k; p++) {
                double x = LD(a[0], ti, ta ? p * lda + i : i * lda + p);
                double y = LD(a[1], ti, tb ? j * ldb + p : p * ldb + j);
                acc += x * y;
            }
            double c = d->beta != 0.0 ? d->beta * LD(a[2], to, i * ldc + j) : 0.0;
            ST(a[2], to, i * ldc + j, d->alpha * acc + c);
        }
}

static void softmax_row(const void *x, hetrun_dtype t, int64_t row, int64_t n, double *maxv,
                        double *sum) {
    double mx = -INFINITY, s = 0.0;
    for (int64_t j = 0; j < n; j++)
        mx = fmax(mx, LD(x, t, row * n + j));
    for (int64_t j = 0; j < n; j++)
        s += exp(LD(x, t, row * n + j) - mx);
    *maxv = mx;
    *sum = s;
}

int hetrun_reference_run(const hetrun_op_desc *d, void *const *a) {
    if (!hetrun_op_desc_valid(d, NULL, 0)) return -1;
    const hetrun_dtype t = (hetrun_dtype)d->dtype;
    const int64_t m = d->m, n = d->n, mn = m * n;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_GEMM: gemm(d, a); break;
    case HETRUN_OP_BIAS_ADD:
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                ST(a[2], t, i * n + j, LD(a[0], t, i * n + j) + LD(a[1], t, j));
        break;
    case HETRUN_OP_ACT_FORWARD:
        for (int64_t i = 0; i < mn; i++)
            ST(a[1], t, i, act_fwd(d->act, LD(a[0], t, i)));
        break;
    case HETRUN_OP_ACT_BACKWARD:
        for (int64_t i = 0; i < mn; i++)
            ST(a[2], t, i, LD(a[1], t, i) * act_grad(d->act, LD(a[0], t, i)));
        break;
    case HETRUN_OP_SOFTMAX:
        for (int64_t i = 0; i < m; i++) {
            double mx, s;
            softmax_row(a[0], t, i, n, &mx, &s);
            for (int64_t j = 0; j < n; j++)
                ST(a[1], t, i * n + j, exp(LD(a[0], t, i * n + j) - mx) / s);
        }
        break;
    case HETRUN_OP_XENT_FORWARD:
        for (int64_t i = 0; i < m; i++) {
            double mx, s;
            softmax_row(a[0], t, i, n, &mx, &s);
            for (int64_t j = 0; j < n; j++)
                ST(a[2], t, i * n + j, exp(LD(a[0], t, i * n + j) - mx) / s);
            int32_t label = ((const int32_t *)a[1])[i];
            double xl = (label >= 0 && label < n) ? LD(a[0], t, i * n + label) : NAN;
            ST(a[3], t, i, mx + log(s) - xl);
        }
        break;
    case HETRUN_OP_XENT_BACKWARD:
        for (int64_t i = 0; i < m; i++) {
            int32_t label = ((const int32_t *)a[1])[i];
            for (int64_t j = 0; j < n; j++) {
                double p = LD(a[0], t, i * n + j) - (j == label ? 1.0 : 0.0);
                ST(a[2], t, i * n + j, d->alpha * p);
            }
        }
        break;
    case HETRUN_OP_LAYERNORM:
        for (int64_t i = 0; i < m; i++) {
            double mean = 0.0, var = 0.0;
            for (int64_t j = 0; j < n; j++)
                mean += LD(a[0], t, i * n + j);
            mean /= (double)n;
            for (int64_t j = 0; j < n; j++) {
                double c = LD(a[0], t, i * n + j) - mean;
                var += c * c;
            }
            var /= (double)n;
            double inv = 1.0 / sqrt(var + d->p[0]);
            for (int64_t j = 0; j < n; j++)
                ST(a[3], t, i * n + j,
                   (LD(a[0], t, i * n + j) - mean) * inv * LD(a[1], t, j) + LD(a[2], t, j));
        }
        break;
    case HETRUN_OP_REDUCE_SUM_AXIS0:
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t i = 0; i < m; i++)
                s += LD(a[0], t, i * n + j);
            double old = d->beta != 0.0 ? d->beta * LD(a[1], t, j) : 0.0;
            ST(a[1], t, j, d->alpha * s + old);
        }
        break;
    case HETRUN_OP_REDUCE_SUM_AXIS1:
        for (int64_t i = 0; i < m; i++) {
            double s = 0.0;
            for (int64_t j = 0; j < n; j++)
                s += LD(a[0], t, i * n + j);
            double old = d->beta != 0.0 ? d->beta * LD(a[1], t, i) : 0.0;
            ST(a[1], t, i, d->alpha * s + old);
        }
        break;
    case HETRUN_OP_SCALE:
        for (int64_t i = 0; i < mn; i++)
            ST(a[1], t, i, d->alpha * LD(a[0], t, i));
        break;
    case HETRUN_OP_AXPY:
        for (int64_t i = 0; i < mn; i++)
            ST(a[1], t, i, d->alpha * LD(a[0], t, i) + LD(a[1], t, i));
        break;
    case HETRUN_OP_MUL:
        for (int64_t i = 0; i < mn; i++)
            ST(a[2], t, i, LD(a[0], t, i) * LD(a[1], t, i));
        break;
    case HETRUN_OP_FILL:
        for (int64_t i = 0; i < mn; i++)
            ST(a[0], t, i, d->alpha);
        break;
    case HETRUN_OP_SGD_MOMENTUM:
        for (int64_t i = 0; i < mn; i++) {
            double w = LD(a[0], t, i), g = LD(a[1], t, i), v = LD(a[2], t, i);
            v = d->p[1] * v + g + d->p[2] * w;
            ST(a[2], t, i, v);
            ST(a[0], t, i, w - d->p[0] * v);
        }
        break;
    case HETRUN_OP_ADAMW: {
        const double lr = d->p[0], b1 = d->p[1], b2 = d->p[2], eps = d->p[3], wd = d->p[4];
        const double c1 = 1.0 - pow(b1, d->p[5]), c2 = 1.0 - pow(b2, d->p[5]);
        for (int64_t i = 0; i < mn; i++) {
            double w = LD(a[0], t, i), g = LD(a[1], t, i);
            double mo = b1 * LD(a[2], t, i) + (1.0 - b1) * g;
            double ve = b2 * LD(a[3], t, i) + (1.0 - b2) * g * g;
            w -= lr * wd * w;
            w -= lr * (mo / c1) / (sqrt(ve / c2) + eps);
            ST(a[0], t, i, w);
            ST(a[2], t, i, mo);
            ST(a[3], t, i, ve);
        }
        break;
    }
    case HETRUN_OP_CAST:
        for (int64_t i = 0; i < mn; i++)
            ST(a[1], (hetrun_dtype)d->out_dtype, i, LD(a[0], t, i));
        break;
    default: return -1;
    }
    return 0;
}
