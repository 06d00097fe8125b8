/* Reference semantics of the op catalogue in plain C, double accumulation. */
#include "reference.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

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

static const double inv_sqrt2 = 0.7071067811865476, inv_sqrt2pi = 0.3989422804014327;

static double act_fwd(unsigned act, double x) {
    switch (act) {
    case HETRUN_ACT_RELU: return x > 0.0 ? x : 0.0;
    case HETRUN_ACT_GELU: return 0.5 * x * (1.0 + tanh(gelu_k * (x + 0.044715 * x * x * x)));
    case HETRUN_ACT_GELU_ERF: return 0.5 * x * (1.0 + erf(x * inv_sqrt2));
    default: return x;
    }
}

static double act_grad(unsigned act, double x) {
    switch (act) {
    case HETRUN_ACT_RELU: return x > 0.0 ? 1.0 : 0.0;
    case HETRUN_ACT_GELU: {
        double u = gelu_k * (x + 0.044715 * x * x * x);
        double t = tanh(u);
        double du = gelu_k * (1.0 + 3.0 * 0.044715 * x * x);
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
    }
    case HETRUN_ACT_GELU_ERF:
        return 0.5 * (1.0 + erf(x * inv_sqrt2)) + x * inv_sqrt2pi * exp(-0.5 * x * x);
    default: return 1.0;
    }
}

/* One GEMM problem: C = alpha op(A) op(B) + beta C, then the epilogue (bias, aux, act)
 * when `epi` is set. Operand pointers address the problem's first elements. */
static void gemm_one(const hetrun_op_desc *d, const void *A, const void *B, void *C,
                     const void *bias, void *aux, int epi) {
    const hetrun_dtype ti = (hetrun_dtype)d->dtype, to = (hetrun_dtype)d->out_dtype;
    const int ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
    const int64_t lda = d->lda ? d->lda : (ta ? d->m : d->k);
    const int64_t ldb = d->ldb ? d->ldb : (tb ? d->k : d->n);
    const int64_t ldc = d->ldc ? d->ldc : d->n;
    for (int64_t i = 0; i < d->m; i++)
        for (int64_t j = 0; j < d->n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < d->k; p++) {
                double x = LD(A, ti, ta ? p * lda + i : i * lda + p);
                double y = LD(B, ti, tb ? j * ldb + p : p * ldb + j);
                acc += x * y;
            }
            double v = d->alpha * acc + (d->beta != 0.0 ? d->beta * LD(C, to, i * ldc + j) : 0.0);
            if (epi) {
                if (bias) v += LD(bias, to, j);
                if (aux) ST(aux, to, i * d->n + j, v);
                v = act_fwd(d->act, v);
            }
            ST(C, to, i * ldc + j, v);
        }
}

static const void *at(const void *base, hetrun_dtype t, int64_t elements) {
    return (const char *)base + (size_t)elements * hetrun_dtype_size(t);
}

void hetrun_ref_gemm(const hetrun_op_desc *d, void *const *a) {
    const hetrun_dtype ti = (hetrun_dtype)d->dtype, to = (hetrun_dtype)d->out_dtype;
    const int64_t batch = d->struct_size >= HETRUN_OP_DESC_SIZE_V1_1 && d->batch > 1 ? d->batch : 1;
    for (int64_t b = 0; b < batch; b++)
        gemm_one(d, at(a[0], ti, b * hetrun_gemm_batch_stride(d, 0)),
                 at(a[1], ti, b * hetrun_gemm_batch_stride(d, 1)),
                 (void *)at(a[2], to, b * hetrun_gemm_batch_stride(d, 2)), NULL, NULL, 0);
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

/* Row statistics in double: mean and 1/sqrt(var + eps). */
static void row_stats(const void *x, hetrun_dtype t, int64_t row, int64_t n, double eps,
                      double *mean, double *rstd) {
    double mu = 0.0, var = 0.0;
    for (int64_t j = 0; j < n; j++)
        mu += LD(x, t, row * n + j);
    mu /= (double)n;
    for (int64_t j = 0; j < n; j++) {
        double c = LD(x, t, row * n + j) - mu;
        var += c * c;
    }
    *mean = mu;
    *rstd = 1.0 / sqrt(var / (double)n + eps);
}

void hetrun_ref_layernorm_forward(const hetrun_op_desc *d, void *const *a) {
    const hetrun_dtype t = (hetrun_dtype)d->dtype;
    for (int64_t i = 0; i < d->m; i++) {
        double mean, rstd;
        row_stats(a[0], t, i, d->n, d->p[0], &mean, &rstd);
        for (int64_t j = 0; j < d->n; j++)
            ST(a[3], t, i * d->n + j,
               (LD(a[0], t, i * d->n + j) - mean) * rstd * LD(a[1], t, j) + LD(a[2], t, j));
        ST(a[4], HETRUN_F32, i, mean);
        ST(a[5], HETRUN_F32, i, rstd);
    }
}

/* dxhat = dy * gamma; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)). */
void hetrun_ref_layernorm_backward(const hetrun_op_desc *d, void *const *a) {
    const hetrun_dtype t = (hetrun_dtype)d->dtype;
    const int64_t m = d->m, n = d->n;
    for (int64_t j = 0; j < n; j++) { /* parameter gradients, summed over rows */
        double dg = 0.0, db = 0.0;
        for (int64_t i = 0; i < m; i++) {
            double xhat =
                (LD(a[0], t, i * n + j) - LD(a[2], HETRUN_F32, i)) * LD(a[3], HETRUN_F32, i);
            double dy = LD(a[4], t, i * n + j);
            dg += dy * xhat;
            db += dy;
        }
        if (d->p[1] != 0.0) {
            dg += LD(a[6], t, j);
            db += LD(a[7], t, j);
        }
        ST(a[6], t, j, dg);
        ST(a[7], t, j, db);
    }
    for (int64_t i = 0; i < m; i++) {
        const double mean = LD(a[2], HETRUN_F32, i), rstd = LD(a[3], HETRUN_F32, i);
        double s1 = 0.0, s2 = 0.0;
        for (int64_t j = 0; j < n; j++) {
            double xhat = (LD(a[0], t, i * n + j) - mean) * rstd;
            double dxhat = LD(a[4], t, i * n + j) * LD(a[1], t, j);
            s1 += dxhat;
            s2 += dxhat * xhat;
        }
        s1 /= (double)n;
        s2 /= (double)n;
        for (int64_t j = 0; j < n; j++) {
            double xhat = (LD(a[0], t, i * n + j) - mean) * rstd;
            double dxhat = LD(a[4], t, i * n + j) * LD(a[1], t, j);
            double dx = rstd * (dxhat - s1 - xhat * s2);
            if (d->beta != 0.0) dx += LD(a[5], t, i * n + j);
            ST(a[5], t, i * n + j, dx);
        }
    }
}

/* Rows summed in ascending token order: the deterministic order every backend matches.
 * Tokens are grouped by id with a counting sort, so the cost is O(m n + k n). */
void hetrun_ref_embedding_backward(const hetrun_op_desc *d, void *const *a) {
    const hetrun_dtype t = (hetrun_dtype)d->dtype, to = (hetrun_dtype)d->out_dtype;
    const int32_t *ids = a[0];
    const int64_t m = d->m, n = d->n, k = d->k;
    int64_t *start = calloc((size_t)k + 1, sizeof *start),
            *order = malloc((size_t)m * sizeof *order);
    double *acc = malloc((size_t)n * sizeof *acc);
    if (!start || !order || !acc) abort(); /* reference on test-sized problems only */
    for (int64_t i = 0; i < m; i++)
        if (ids[i] >= 0 && ids[i] < k) start[ids[i] + 1]++;
    for (int64_t r = 0; r < k; r++)
        start[r + 1] += start[r];
    for (int64_t i = 0, *fill = start; i < m; i++) /* stable: i ascending within a row */
        if (ids[i] >= 0 && ids[i] < k) order[fill[ids[i]]++] = i;
    for (int64_t r = k; r > 0; r--) /* undo the shift the fill loop made */
        start[r] = start[r - 1];
    start[0] = 0;
    for (int64_t r = 0; r < k; r++) {
        for (int64_t j = 0; j < n; j++)
            acc[j] = 0.0;
        for (int64_t e = start[r]; e < start[r + 1]; e++)
            for (int64_t j = 0; j < n; j++)
                acc[j] += LD(a[1], t, order[e] * n + j);
        for (int64_t j = 0; j < n; j++) {
            double old = d->beta != 0.0 ? LD(a[2], to, r * n + j) : 0.0;
            ST(a[2], to, r * n + j, old + d->alpha * acc[j]);
        }
    }
    free(start);
    free(order);
    free(acc);
}

/* Shorthands of the elementwise references: t the dtype, m, n, mn the shape. */
#define SHAPE                                                                                      \
    const hetrun_dtype t = (hetrun_dtype)d->dtype;                                                 \
    const int64_t m = d->m, n = d->n, mn = m * n;                                                  \
    (void)t, (void)m, (void)n, (void)mn

void hetrun_ref_bias_add(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            ST(a[2], t, i * n + j, LD(a[0], t, i * n + j) + LD(a[1], t, j));
}

void hetrun_ref_act_forward(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < mn; i++)
        ST(a[1], t, i, act_fwd(d->act, LD(a[0], t, i)));
}

void hetrun_ref_act_backward(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < mn; i++)
        ST(a[2], t, i, LD(a[1], t, i) * act_grad(d->act, LD(a[0], t, i)));
}

void hetrun_ref_softmax(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < m; i++) {
        double mx, s;
        softmax_row(a[0], t, i, n, &mx, &s);
        for (int64_t j = 0; j < n; j++)
            ST(a[1], t, i * n + j, exp(LD(a[0], t, i * n + j) - mx) / s);
    }
}

void hetrun_ref_xent_forward(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < m; i++) {
        double mx, s;
        softmax_row(a[0], t, i, n, &mx, &s);
        for (int64_t j = 0; j < n; j++)
            ST(a[2], t, i * n + j, exp(LD(a[0], t, i * n + j) - mx) / s);
        int32_t label = ((const int32_t *)a[1])[i];
        double xl = (label >= 0 && label < n) ? LD(a[0], t, i * n + label) : NAN;
        ST(a[3], t, i, mx + log(s) - xl);
    }
}

void hetrun_ref_xent_backward(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < m; i++) {
        int32_t label = ((const int32_t *)a[1])[i];
        for (int64_t j = 0; j < n; j++) {
            double p = LD(a[0], t, i * n + j) - (j == label ? 1.0 : 0.0);
            ST(a[2], t, i * n + j, d->alpha * p);
        }
    }
}

void hetrun_ref_layernorm(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < m; i++) {
        double mean, rstd;
        row_stats(a[0], t, i, n, d->p[0], &mean, &rstd);
        for (int64_t j = 0; j < n; j++)
            ST(a[3], t, i * n + j,
               (LD(a[0], t, i * n + j) - mean) * rstd * LD(a[1], t, j) + LD(a[2], t, j));
    }
}

void hetrun_ref_reduce_sum_axis0(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t j = 0; j < n; j++) {
        double s = 0.0;
        for (int64_t i = 0; i < m; i++)
            s += LD(a[0], t, i * n + j);
        double old = d->beta != 0.0 ? d->beta * LD(a[1], t, j) : 0.0;
        ST(a[1], t, j, d->alpha * s + old);
    }
}

void hetrun_ref_reduce_sum_axis1(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < m; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < n; j++)
            s += LD(a[0], t, i * n + j);
        double old = d->beta != 0.0 ? d->beta * LD(a[1], t, i) : 0.0;
        ST(a[1], t, i, d->alpha * s + old);
    }
}

void hetrun_ref_scale(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < mn; i++)
        ST(a[1], t, i, d->alpha * LD(a[0], t, i));
}

void hetrun_ref_axpy(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < mn; i++)
        ST(a[1], t, i, d->alpha * LD(a[0], t, i) + LD(a[1], t, i));
}

void hetrun_ref_mul(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < mn; i++)
        ST(a[2], t, i, LD(a[0], t, i) * LD(a[1], t, i));
}

void hetrun_ref_fill(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < mn; i++)
        ST(a[0], t, i, d->alpha);
}

void hetrun_ref_sgd_momentum(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < mn; i++) {
        double w = LD(a[0], t, i), g = LD(a[1], t, i), v = LD(a[2], t, i);
        v = d->p[1] * v + g + d->p[2] * w;
        ST(a[2], t, i, v);
        ST(a[0], t, i, w - d->p[0] * v);
    }
}

void hetrun_ref_adamw(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
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
}

void hetrun_ref_cast(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < mn; i++)
        ST(a[1], (hetrun_dtype)d->out_dtype, i, LD(a[0], t, i));
}

void hetrun_ref_gemm_bias_act(const hetrun_op_desc *d, void *const *a) {
    gemm_one(d, a[0], a[1], a[3], (d->flags & HETRUN_OP_HAS_BIAS) ? a[2] : NULL,
             (d->flags & HETRUN_OP_HAS_AUX) ? a[4] : NULL, 1);
}

void hetrun_ref_softmax_backward(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < m; i++) {
        double dot = 0.0;
        for (int64_t j = 0; j < n; j++)
            dot += LD(a[0], t, i * n + j) * LD(a[1], t, i * n + j);
        for (int64_t j = 0; j < n; j++) /* dX may alias dY: each element read first */
            ST(a[2], t, i * n + j, LD(a[0], t, i * n + j) * (LD(a[1], t, i * n + j) - dot));
    }
}

void hetrun_ref_embedding_forward(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    for (int64_t i = 0; i < m; i++) {
        int32_t id = ((const int32_t *)a[0])[i];
        for (int64_t j = 0; j < n; j++) {
            double v = (id >= 0 && id < d->k) ? d->alpha * LD(a[1], t, (int64_t)id * n + j) : NAN;
            if (d->beta != 0.0) v += d->beta * LD(a[2], t, i * n + j);
            ST(a[2], t, i * n + j, v);
        }
    }
}

void hetrun_ref_nonfinite_count(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    int32_t count = d->beta != 0.0 ? ((const int32_t *)a[1])[0] : 0;
    for (int64_t i = 0; i < mn; i++)
        count += !isfinite(LD(a[0], t, i));
    ((int32_t *)a[1])[0] = count;
}

void hetrun_ref_sum_squares(const hetrun_op_desc *d, void *const *a) {
    SHAPE;
    double sum = 0.0;
    for (int64_t i = 0; i < mn; i++) {
        double x = LD(a[0], t, i);
        sum += x * x;
    }
    double old = d->beta != 0.0 ? d->beta * LD(a[1], HETRUN_F32, 0) : 0.0;
    ST(a[1], HETRUN_F32, 0, d->alpha * sum + old);
}

int hetrun_reference_run(const hetrun_op_desc *d, void *const *a) {
    if (!hetrun_op_desc_valid(d, NULL, 0)) return -1;
    hetrun_op_info_of(d->kind)->reference(d, a);
    return 0;
}
