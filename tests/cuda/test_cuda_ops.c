/* Every op x dtype the CUDA module claims, against kernels/reference.c on random inputs.
 * Exits 77 (skipped) when the module reports "unavailable" (no driver / no GPU).
 *
 * Error measure (stated once): for every output element,
 *     err = |got - ref| / max(1, scale)
 * where scale is |ref| for elementwise and row ops, sum_i |x_i| (times |alpha|, plus
 * |beta * old|) for reductions, and |alpha| * sum_p |a_ip b_pj| + |beta c_ij| for GEMM,
 * i.e. the magnitude an accumulation could lose precision against. Tolerances on max err:
 *   fp64 1e-12; fp32 1e-5; tf32 GEMM 4e-3; fp16 2e-3; bf16 1.6e-2 (one output rounding
 *   plus float math); GEMM with f16/bf16 inputs and f32 output 1e-4 (tensor-core f32
 *   accumulation); int8 -> int32 exact; NONFINITE_COUNT exact.
 * ABI 1.1 ops: scales as above for their sums (layernorm and softmax backward, embedding
 * backward: the sum of magnitudes the output accumulates), batched GEMM per batch entry. */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hetrun/backend.h"
#include "kernels/catalogue.h"
#include "kernels/half.h"
#include "kernels/reference.h"

static const hetrun_backend_ops *ops;
static hetrun_device *dev;
static hetrun_queue *queue;
static int failures, checked, refused;
static int quick; /* --quick: small shapes only (for compute-sanitizer runs) */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double urand(void) { /* uniform [-1, 1), xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 0x2545f4914f6cdd1dull) >> 11) / 4503599627370496.0 - 1.0;
}

static double tolerance(const hetrun_op_desc *d) {
    const hetrun_dtype out = (hetrun_dtype)d->out_dtype, in = (hetrun_dtype)d->dtype;
    if (d->kind == HETRUN_OP_NONFINITE_COUNT) return 0.0;
    if (d->kind == HETRUN_OP_GEMM) {
        if (in == HETRUN_I8) return 0.0;
        if (in == HETRUN_F32 && (d->flags & HETRUN_OP_ALLOW_TF32)) return 4e-3;
        if ((in == HETRUN_F16 || in == HETRUN_BF16) && out == HETRUN_F32) return 1e-4;
    }
    hetrun_dtype t = out;
    if (d->kind == HETRUN_OP_CAST) t = (in == HETRUN_F32) ? out : in; /* the narrower side */
    switch (t) {
    case HETRUN_F64: return 1e-12;
    case HETRUN_F32: return 1e-5;
    case HETRUN_F16: return 2e-3;
    case HETRUN_BF16: return 1.6e-2;
    default: return 0.0;
    }
}

/* Scale of the ABI 1.1 training ops' outputs: the magnitudes their sums add up. */
static double v1_1_scale(const hetrun_op_desc *d, void *const *in, int arg, uint64_t idx,
                         double ref) {
    const hetrun_dtype t = (hetrun_dtype)d->dtype;
    const int64_t n = d->n;
#define X(a, e) hetrun_load_as_double(in[a], t, (uint64_t)(e))
#define F(a, e) hetrun_load_as_double(in[a], HETRUN_F32, (uint64_t)(e))
    if (d->kind == HETRUN_OP_SOFTMAX_BACKWARD && arg == 2) {
        const int64_t i = (int64_t)idx / n;
        double s = 0.0;
        for (int64_t l = 0; l < n; l++)
            s += fabs(X(0, i * n + l) * X(1, i * n + l));
        return fabs(X(0, idx)) * (fabs(X(1, idx)) + s);
    }
    if (d->kind == HETRUN_OP_LAYERNORM_BACKWARD && arg >= 5) {
        const double old = arg == 5 ? (d->beta != 0.0 ? fabs(X(5, idx)) : 0.0)
                                    : (d->p[1] != 0.0 ? fabs(X(arg, idx)) : 0.0);
        double s = 0.0, s1 = 0.0, s2 = 0.0;
        if (arg >= 6) { /* dgamma, dbeta: column sums */
            for (int64_t i = 0; i < d->m; i++) {
                const double xhat = (X(0, i * n + (int64_t)idx) - F(2, i)) * F(3, i);
                s += fabs(X(4, i * n + (int64_t)idx) * (arg == 6 ? xhat : 1.0));
            }
            return s + old;
        }
        const int64_t i = (int64_t)idx / n, j = (int64_t)idx % n;
        for (int64_t l = 0; l < n; l++) {
            const double g = fabs(X(4, i * n + l) * X(1, l));
            s1 += g;
            s2 += g * fabs((X(0, i * n + l) - F(2, i)) * F(3, i));
        }
        const double xhat = fabs((X(0, idx) - F(2, i)) * F(3, i));
        return fabs(F(3, i)) * (fabs(X(4, idx) * X(1, j)) + s1 / n + xhat * s2 / n) + old;
    }
    if (d->kind == HETRUN_OP_EMBEDDING_BACKWARD && arg == 2) {
        const int64_t r = (int64_t)idx / n, j = (int64_t)idx % n;
        double s = 0.0;
        for (int64_t i = 0; i < d->m; i++)
            if (((const int32_t *)in[0])[i] == r) s += fabs(X(1, i * n + j));
        return fabs(d->alpha) * s +
               (d->beta != 0.0
                    ? fabs(d->beta * hetrun_load_as_double(in[2], (hetrun_dtype)d->out_dtype, idx))
                    : 0.0);
    }
#undef X
#undef F
    return fabs(ref);
}

/* Per-element scale for the error measure (see the header comment). */
static double elem_scale(const hetrun_op_desc *d, void *const *in, int arg, uint64_t idx,
                         double ref) {
    const hetrun_dtype t = (hetrun_dtype)d->dtype;
    const int epi = d->kind == HETRUN_OP_GEMM_BIAS_ACT && (arg == 3 || arg == 4);
    if ((d->kind == HETRUN_OP_GEMM && arg == 2) || epi) {
        const int ta = (d->flags & HETRUN_OP_TRANS_A) != 0,
                  tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
        const int64_t lda = d->lda ? d->lda : (ta ? d->m : d->k);
        const int64_t ldb = d->ldb ? d->ldb : (tb ? d->k : d->n);
        const int64_t ldc = d->ldc ? d->ldc : d->n;
        /* C is operand 2 of GEMM, 3 of GEMM_BIAS_ACT; aux (4) is packed m x n. */
        const int carg = epi ? 3 : 2;
        int64_t local = arg == 4 ? ((int64_t)idx / d->n) * ldc + (int64_t)idx % d->n : (int64_t)idx;
        int64_t oa = 0, ob = 0;
        if (d->batch > 1) { /* batch entry e reads A at e * stride_a (0: broadcast), B alike */
            const int64_t sc = hetrun_gemm_batch_stride(d, 2), e = local / sc;
            local %= sc;
            oa = e * hetrun_gemm_batch_stride(d, 0);
            ob = e * hetrun_gemm_batch_stride(d, 1);
        }
        const int64_t i = local / ldc, j = local % ldc;
        if (j >= d->n || i >= d->m) return 1.0; /* padding: must be untouched */
        double s = 0.0;
        for (int64_t p = 0; p < d->k; p++)
            s += fabs(
                hetrun_load_as_double(in[0], t, (uint64_t)(oa + (ta ? p * lda + i : i * lda + p))) *
                hetrun_load_as_double(in[1], t, (uint64_t)(ob + (tb ? j * ldb + p : p * ldb + j))));
        const hetrun_dtype to = (hetrun_dtype)d->out_dtype;
        const double bias = epi && (d->flags & HETRUN_OP_HAS_BIAS)
                                ? fabs(hetrun_load_as_double(in[2], to, (uint64_t)j))
                                : 0.0;
        return fabs(d->alpha) * s +
               fabs(d->beta *
                    hetrun_load_as_double(in[carg], to, arg == 4 ? (uint64_t)local : idx)) +
               bias;
    }
    if ((d->kind == HETRUN_OP_REDUCE_SUM_AXIS0 || d->kind == HETRUN_OP_REDUCE_SUM_AXIS1) &&
        arg == 1) {
        double s = 0.0;
        const int axis0 = d->kind == HETRUN_OP_REDUCE_SUM_AXIS0;
        const int64_t len = axis0 ? d->m : d->n;
        for (int64_t q = 0; q < len; q++)
            s += fabs(hetrun_load_as_double(
                in[0], t, (uint64_t)(axis0 ? q * d->n + (int64_t)idx : (int64_t)idx * d->n + q)));
        return fabs(d->alpha) * s + fabs(d->beta * hetrun_load_as_double(in[1], t, idx));
    }
    if (d->kind >= HETRUN_OP_FIRST_V1_1) return v1_1_scale(d, in, arg, idx, ref);
    return fabs(ref);
}

/* Fills operand `arg` with random values suited to the op (labels in range, second
 * moments non-negative), already rounded to the operand's dtype. */
static void fill_arg(const hetrun_op_desc *d, int arg, void *buf, uint64_t n) {
    const hetrun_dtype t = hetrun_op_arg_dtype(d, arg);
    for (uint64_t i = 0; i < n; i++) {
        double v = urand();
        if (t == HETRUN_I32 &&
            (d->kind == HETRUN_OP_EMBEDDING_FORWARD || d->kind == HETRUN_OP_EMBEDDING_BACKWARD)) {
            v = (double)(int64_t)(rng % (uint64_t)(d->k + 2)) - 1.0; /* ids, some out of range */
            urand();
        } else if (t == HETRUN_I32 && (d->kind == HETRUN_OP_ATTENTION_FORWARD ||
                                       d->kind == HETRUN_OP_ATTENTION_BACKWARD)) {
            v = (double)(rng % 4 != 0); /* key padding mask: 3 in 4 keys kept */
            urand();
        } else if (t == HETRUN_I32 && d->kind == HETRUN_OP_NONFINITE_COUNT) {
            v = (double)(rng % 100); /* the count accumulated into with beta != 0 */
            urand();
        } else if (t == HETRUN_I32) {
            v = (double)(rng % (uint64_t)d->n); /* labels */
            urand();
        } else if (d->kind == HETRUN_OP_NONFINITE_COUNT && arg == 0 && rng % 37 == 0) {
            v = (rng % 3 == 0) ? NAN : (rng % 3 == 1) ? INFINITY : -INFINITY;
        } else if (d->kind == HETRUN_OP_LAYERNORM_BACKWARD && arg == 3) {
            v = fabs(v) + 0.5; /* rstd > 0 */
        } else if (t == HETRUN_I8) {
            v = (double)((int)(rng % 255) - 127);
        } else if (d->kind == HETRUN_OP_ADAMW && arg == 3) {
            v = fabs(v) * 0.01; /* second moment */
        } else if (d->kind == HETRUN_OP_SOFTMAX || d->kind == HETRUN_OP_XENT_FORWARD) {
            v *= 8.0; /* spread the logits: exercises the max subtraction */
        }
        hetrun_store_from_double(buf, t, i, v);
    }
}

static int run_case(const hetrun_op_desc *d) {
    char name[200];
    if (quick && (d->kind == HETRUN_OP_GEMM ? d->m * d->n * d->k > 2200000 : d->m * d->n > 20000))
        return 1;
    snprintf(name, sizeof name, "%s %s->%s m=%lld n=%lld k=%lld flags=%u", hetrun_op_name(d->kind),
             hetrun_dtype_name(d->dtype), hetrun_dtype_name(d->out_dtype), (long long)d->m,
             (long long)d->n, (long long)d->k, d->flags);
    if (ops->op_supported(dev, d) != HETRUN_OK) {
        printf("refused  %s: %s\n", name, ops->last_error());
        refused++;
        return 0;
    }
    const int nargs = hetrun_op_arity(d->kind);
    void *host[HETRUN_OP_MAX_ARGS] = {0}, *ref[HETRUN_OP_MAX_ARGS] = {0},
         *orig[HETRUN_OP_MAX_ARGS] = {0};
    hetrun_buffer *bufs[HETRUN_OP_MAX_ARGS] = {0};
    hetrun_tensor args[HETRUN_OP_MAX_ARGS];
    uint64_t bytes[HETRUN_OP_MAX_ARGS];
    int ok = 1;
    for (int a = 0; a < nargs; a++) {
        const uint64_t n = hetrun_op_arg_elements(d, a);
        bytes[a] = hetrun_op_arg_bytes(d, a);
        host[a] = malloc(bytes[a]);
        ref[a] = malloc(bytes[a]);
        orig[a] = malloc(bytes[a]);
        fill_arg(d, a, host[a], n);
        memcpy(ref[a], host[a], bytes[a]);
        memcpy(orig[a], host[a], bytes[a]);
        /* Offset 16 bytes into the buffer: operands are not always 256-byte aligned. */
        if (ops->mem_alloc(dev, bytes[a] + 64, &bufs[a]) != HETRUN_OK) {
            printf("FAIL %s: mem_alloc: %s\n", name, ops->last_error());
            ok = 0;
            goto out;
        }
        args[a].buffer = bufs[a];
        args[a].offset = (d->m * d->n) % 2 ? 16 : 0;
        if (ops->copy_h2d(queue, args[a], host[a], bytes[a]) != HETRUN_OK) {
            printf("FAIL %s: copy_h2d: %s\n", name, ops->last_error());
            ok = 0;
            goto out;
        }
    }
    uint64_t wsb = 0;
    hetrun_buffer *ws = NULL;
    hetrun_tensor wst = {NULL, 0};
    if (ops->op_workspace_size(dev, d, &wsb) != HETRUN_OK) {
        printf("FAIL %s: op_workspace_size: %s\n", name, ops->last_error());
        ok = 0;
        goto out;
    }
    if (wsb && ops->mem_alloc(dev, wsb, &ws) == HETRUN_OK) wst.buffer = ws;
    if (ops->op_run(queue, d, args, nargs, wst) != HETRUN_OK ||
        ops->queue_sync(queue) != HETRUN_OK) {
        printf("FAIL %s: op_run: %s\n", name, ops->last_error());
        ops->mem_free(ws);
        ok = 0;
        goto out;
    }
    ops->mem_free(ws);
    for (int a = 0; a < nargs; a++)
        if (ops->copy_d2h(queue, host[a], args[a], bytes[a]) != HETRUN_OK) {
            printf("FAIL %s: copy_d2h: %s\n", name, ops->last_error());
            ok = 0;
            goto out;
        }
    if (hetrun_reference_run(d, ref) != 0) {
        printf("FAIL %s: reference refused the descriptor\n", name);
        ok = 0;
        goto out;
    }
    const double tol = tolerance(d);
    double worst = 0.0;
    for (int a = 0; a < nargs && ok; a++) {
        const hetrun_dtype t = hetrun_op_arg_dtype(d, a);
        const uint64_t n = hetrun_op_arg_elements(d, a);
        for (uint64_t i = 0; i < n; i++) {
            const double g = hetrun_load_as_double(host[a], t, i);
            const double r = hetrun_load_as_double(ref[a], t, i);
            double s = elem_scale(d, orig, a, i, r);
            double err = (isnan(g) != isnan(r)) ? INFINITY
                         : isnan(r)             ? 0.0
                                                : fabs(g - r) / (s > 1.0 ? s : 1.0);
            if (err > worst) worst = err;
            if (err > tol) {
                printf(
                    "FAIL %s: operand %d element %llu: got %.9g want %.9g (err %.3g > tol %.3g)\n",
                    name, a, (unsigned long long)i, g, r, err, tol);
                ok = 0;
                break;
            }
        }
    }
    if (ok) printf("ok       %s: max err %.3g (tol %.3g)\n", name, worst, tol);
out:
    for (int a = 0; a < nargs; a++) {
        ops->mem_free(bufs[a]);
        free(host[a]);
        free(ref[a]);
        free(orig[a]);
    }
    checked++;
    if (!ok) failures++;
    return ok;
}

static const hetrun_dtype float_types[] = {HETRUN_F32, HETRUN_F64, HETRUN_F16, HETRUN_BF16};
static const int64_t shapes[][2] = {{1, 1},    {1, 7},      {7, 127},  {127, 1000}, {1000, 7},
                                    {64, 256}, {256, 1024}, {3, 4096}, {1000, 1000}};

static void test_gemm(void) {
    static const struct {
        hetrun_dtype in, out;
    } pairs[] = {{HETRUN_F32, HETRUN_F32}, {HETRUN_F64, HETRUN_F64},   {HETRUN_F16, HETRUN_F16},
                 {HETRUN_F16, HETRUN_F32}, {HETRUN_BF16, HETRUN_BF16}, {HETRUN_BF16, HETRUN_F32},
                 {HETRUN_I8, HETRUN_I32}};
    static const int64_t mnk[][3] = {{1, 1, 1},      {7, 7, 7},      {127, 127, 127}, {1, 1000, 7},
                                     {1000, 7, 127}, {128, 256, 64}, {256, 256, 256}};
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++)
        for (size_t s = 0; s < sizeof mnk / sizeof mnk[0]; s++)
            for (unsigned fl = 0; fl < 4; fl++) {
                hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, pairs[p].in);
                d.out_dtype = pairs[p].out;
                d.m = mnk[s][0];
                d.n = mnk[s][1];
                d.k = mnk[s][2];
                d.flags = fl;
                if (pairs[p].in == HETRUN_I8) {
                    d.beta = (s % 2) ? 1.0 : 0.0;
                } else {
                    d.alpha = 0.75;
                    d.beta = (s % 2) ? 0.5 : 0.0;
                }
                run_case(&d);
                if (s == 5) { /* padded leading dimensions */
                    d.lda = ((fl & HETRUN_OP_TRANS_A) ? d.m : d.k) + 4;
                    d.ldb = ((fl & HETRUN_OP_TRANS_B) ? d.k : d.n) + 4;
                    d.ldc = d.n + 8;
                    run_case(&d);
                }
            }
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
    d.flags = HETRUN_OP_ALLOW_TF32;
    d.m = 256, d.n = 128, d.k = 512;
    run_case(&d);
}

static void test_others(void) {
    for (int kind = 1; kind < HETRUN_OP_FIRST_V1_1;
         kind++ /* 1.1 ops: shapes come with the op table */)
        for (size_t t = 0; t < sizeof float_types / sizeof float_types[0]; t++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                const int nacts = (kind == HETRUN_OP_ACT_FORWARD || kind == HETRUN_OP_ACT_BACKWARD)
                                      ? HETRUN_ACT_COUNT
                                      : 1;
                for (int act = 0; act < nacts; act++) {
                    hetrun_op_desc d = hetrun_op_desc_init((hetrun_op_kind)kind, float_types[t]);
                    d.m = shapes[s][0];
                    d.n = shapes[s][1];
                    d.act = (uint32_t)act;
                    d.alpha = 0.625;
                    d.beta = (s % 2) ? 0.5 : 0.0;
                    if (kind == HETRUN_OP_FILL) d.alpha = 1.375;
                    if (kind == HETRUN_OP_LAYERNORM) d.p[0] = 1e-5;
                    if (kind == HETRUN_OP_SGD_MOMENTUM) {
                        d.p[0] = 0.01, d.p[1] = 0.9, d.p[2] = 1e-4;
                    }
                    if (kind == HETRUN_OP_ADAMW) {
                        d.p[0] = 1e-3, d.p[1] = 0.9, d.p[2] = 0.999, d.p[3] = 1e-8, d.p[4] = 0.01;
                        d.p[5] = 3;
                    }
                    if (kind == HETRUN_OP_CAST) {
                        if (float_types[t] == HETRUN_F32) continue;
                        /* X -> f32 and f32 -> X */
                        d.out_dtype = HETRUN_F32;
                        run_case(&d);
                        d.dtype = HETRUN_F32;
                        d.out_dtype = float_types[t];
                    }
                    run_case(&d);
                }
            }
}

/* A case the module must run: an op_supported refusal is a failure. */
static void run_required(const hetrun_op_desc *d) {
    const int before = refused;
    run_case(d);
    if (refused != before) {
        printf("FAIL the CUDA module claims this op but refused it\n");
        failures++;
    }
}

/* Batched GEMM: every float pair, transposes, broadcast A or B (stride 0), padded strides. */
static void test_batched_gemm(void) {
    static const struct {
        hetrun_dtype in, out;
    } pairs[] = {{HETRUN_F32, HETRUN_F32}, {HETRUN_F64, HETRUN_F64},   {HETRUN_F16, HETRUN_F16},
                 {HETRUN_F16, HETRUN_F32}, {HETRUN_BF16, HETRUN_BF16}, {HETRUN_BF16, HETRUN_F32}};
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++)
        for (unsigned fl = 0; fl < 4; fl++)
            for (int bc = 0; bc < 4; bc++) { /* 0 strided, 1 broadcast A, 2 broadcast B, 3 padded */
                hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, pairs[p].in);
                d.out_dtype = pairs[p].out;
                d.m = 33, d.n = 48, d.k = 40, d.batch = 5;
                d.flags = fl;
                d.alpha = 0.75;
                d.beta = (fl & 1) ? 0.5 : 0.0;
                const int64_t span_a = d.m * d.k, span_b = d.k * d.n;
                d.stride_a = bc == 1 ? 0 : bc == 3 ? span_a + 8 : span_a;
                d.stride_b = bc == 2 ? 0 : bc == 3 ? span_b + 24 : span_b;
                d.stride_c = bc == 3 ? d.m * d.n + 16 : 0;
                run_required(&d);
            }
}

/* GEMM_BIAS_ACT: every float pair, every activation, with and without bias and aux,
 * transposes and a padded ldc. */
static void test_gemm_bias_act(void) {
    static const struct {
        hetrun_dtype in, out;
    } pairs[] = {{HETRUN_F32, HETRUN_F32}, {HETRUN_F64, HETRUN_F64},   {HETRUN_F16, HETRUN_F16},
                 {HETRUN_F16, HETRUN_F32}, {HETRUN_BF16, HETRUN_BF16}, {HETRUN_BF16, HETRUN_F32}};
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++)
        for (int act = 0; act < HETRUN_ACT_COUNT; act++)
            for (unsigned fl = 0; fl < 4; fl++) {
                hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM_BIAS_ACT, pairs[p].in);
                d.out_dtype = pairs[p].out;
                d.m = 65, d.n = 96, d.k = 72;
                d.act = (uint32_t)act;
                d.alpha = 0.75;
                d.beta = (fl & 1) ? 0.5 : 0.0;
                d.flags = (fl & 1 ? HETRUN_OP_TRANS_A : 0u) | (fl & 2 ? HETRUN_OP_TRANS_B : 0u) |
                          HETRUN_OP_HAS_BIAS | (act % 2 ? HETRUN_OP_HAS_AUX : 0u);
                if (fl == 3) d.ldc = d.n + 8;
                if (fl == 2) d.flags &= ~HETRUN_OP_HAS_BIAS;
                run_required(&d);
            }
}

/* ABI 1.1 training ops, every float dtype, shapes with odd sizes and long rows. */
static void test_training_ops(void) {
    static const int64_t sh[][2] = {{1, 1}, {7, 127}, {127, 1000}, {1000, 7}, {300, 1024}};
    for (size_t t = 0; t < sizeof float_types / sizeof float_types[0]; t++)
        for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
            const hetrun_dtype dt = float_types[t];
            hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_LAYERNORM_FORWARD, dt);
            d.m = sh[s][0], d.n = sh[s][1], d.p[0] = 1e-5;
            run_required(&d);
            d = hetrun_op_desc_init(HETRUN_OP_LAYERNORM_BACKWARD, dt);
            d.m = sh[s][0], d.n = sh[s][1];
            for (int acc = 0; acc < 2; acc++) {
                d.beta = acc, d.p[1] = acc;
                run_required(&d);
            }
            d = hetrun_op_desc_init(HETRUN_OP_SOFTMAX_BACKWARD, dt);
            d.m = sh[s][0], d.n = sh[s][1];
            run_required(&d);
            for (int beta = 0; beta < 2; beta++) {
                d = hetrun_op_desc_init(HETRUN_OP_EMBEDDING_FORWARD, dt);
                d.m = sh[s][0], d.n = sh[s][1], d.k = 50, d.alpha = 0.625, d.beta = beta * 0.5;
                run_required(&d);
                d.kind = HETRUN_OP_EMBEDDING_BACKWARD;
                d.beta = beta; /* 0 or 1: overwrite or accumulate */
                run_required(&d);
                if (dt == HETRUN_F16 || dt == HETRUN_BF16) { /* f32 master gradients */
                    d.out_dtype = HETRUN_F32;
                    run_required(&d);
                }
                d = hetrun_op_desc_init(HETRUN_OP_NONFINITE_COUNT, dt);
                d.m = sh[s][0], d.n = sh[s][1], d.beta = beta;
                run_required(&d);
                d = hetrun_op_desc_init(HETRUN_OP_SUM_SQUARES, dt);
                d.m = sh[s][0], d.n = sh[s][1], d.alpha = 0.625, d.beta = beta * 0.5;
                run_required(&d);
            }
        }
    /* A tensor larger than one reduction pass (1024 blocks x 256 threads). */
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_SUM_SQUARES, HETRUN_F32);
    d.m = 1000, d.n = 1000;
    run_required(&d);
    d.kind = HETRUN_OP_NONFINITE_COUNT;
    run_required(&d);
}

/* Attention forward and backward: f32/f16/bf16, head dims 64 and 128, causal with more
 * queries than keys (rows with no kept key: O = 0, lse = -inf), key padding mask, and the
 * fused-QKV layout (token stride 3 * heads * dim). Backward takes a random lse, so the
 * check is of the formula, not of a forward pass. */
static void test_attention(void) {
    static const hetrun_dtype types[] = {HETRUN_F32, HETRUN_F16, HETRUN_BF16};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int dim = 64; dim <= 128; dim *= 2)
            for (unsigned fl = 0; fl < 8; fl++)
                for (int bwd = 0; bwd < 2; bwd++) {
                    hetrun_op_desc d = hetrun_op_desc_init(
                        bwd ? HETRUN_OP_ATTENTION_BACKWARD : HETRUN_OP_ATTENTION_FORWARD, types[t]);
                    d.batch = 2, d.heads = 3, d.k = dim;
                    d.m = (fl & 1) ? 53 : 37; /* causal with Lq > Lk: early rows see no key */
                    d.n = (fl & 1) ? 37 : 53;
                    d.alpha = 1.0 / sqrt((double)dim);
                    d.flags = ((fl & 1) ? HETRUN_OP_CAUSAL : 0u) |
                              ((fl & 2) ? HETRUN_OP_KEY_PADDING_MASK : 0u);
                    if (fl & 4) d.lda = d.ldb = 3 * d.heads * d.k; /* fused QKV rows */
                    run_required(&d);
                }
}

static void expect(int cond, const char *what) {
    printf("%s %s%s%s\n", cond ? "ok  " : "FAIL", what, cond ? "" : ": ",
           cond ? "" : ops->last_error());
    checked++;
    if (!cond) failures++;
}

/* Copies that span several pinned staging chunks (4 MiB each) and end in a partial one,
 * device-to-device, events, the collective group with one rank, telemetry. */
static void test_runtime(void) {
    const uint64_t bytes = (10ull << 20) + 123;
    unsigned char *src = malloc(bytes), *dst = malloc(bytes);
    hetrun_buffer *a = NULL, *b = NULL;
    if (!src || !dst || ops->mem_alloc(dev, bytes, &a) != HETRUN_OK ||
        ops->mem_alloc(dev, bytes, &b) != HETRUN_OK) {
        expect(0, "allocate 10 MiB copy buffers");
        goto out;
    }
    for (uint64_t i = 0; i < bytes; i++)
        src[i] = (unsigned char)(urand() * 127.0 + 128.0);
    memset(dst, 0, bytes);
    hetrun_event *e0 = NULL, *e1 = NULL;
    expect(ops->event_create(dev, &e0) == HETRUN_OK && ops->event_create(dev, &e1) == HETRUN_OK,
           "event_create");
    expect(ops->event_record(e0, queue) == HETRUN_OK, "event_record start");
    expect(ops->copy_h2d(queue, (hetrun_tensor){a, 0}, src, bytes) == HETRUN_OK, "copy_h2d 10 MiB");
    expect(ops->copy_d2d(queue, (hetrun_tensor){b, 0}, (hetrun_tensor){a, 0}, bytes) == HETRUN_OK,
           "copy_d2d 10 MiB");
    expect(ops->copy_d2h(queue, dst, (hetrun_tensor){b, 0}, bytes) == HETRUN_OK, "copy_d2h 10 MiB");
    expect(ops->event_record(e1, queue) == HETRUN_OK, "event_record end");
    double ms = -1.0;
    expect(ops->event_elapsed_ms(e0, e1, &ms) == HETRUN_OK && ms >= 0.0, "event_elapsed_ms");
    expect(memcmp(src, dst, bytes) == 0, "10 MiB round trip h2d -> d2d -> d2h is exact");
    /* Unaligned offset and odd size through the same path. */
    memset(dst, 0, bytes);
    expect(ops->copy_h2d(queue, (hetrun_tensor){a, 3}, src + 5, bytes - 8) == HETRUN_OK &&
               ops->copy_d2h(queue, dst, (hetrun_tensor){a, 3}, bytes - 8) == HETRUN_OK &&
               memcmp(src + 5, dst, bytes - 8) == 0,
           "copy at offset 3 of size 10 MiB + 115");
    expect(ops->copy_h2d(queue, (hetrun_tensor){a, 8}, src, bytes) == HETRUN_ERR_INVALID,
           "copy past the end is refused");
    ops->event_destroy(e0);
    ops->event_destroy(e1);

    if (ops->comm_id_create) {
        uint8_t id[HETRUN_COMM_ID_BYTES];
        hetrun_comm *comm = NULL;
        int ok = ops->comm_id_create(id) == HETRUN_OK &&
                 ops->comm_init(dev, id, 1, 0, &comm) == HETRUN_OK;
        expect(ok, "NCCL communicator of 1 rank");
        if (ok) {
            float v[1000], w[1000];
            for (int i = 0; i < 1000; i++)
                v[i] = (float)urand();
            ok = ops->copy_h2d(queue, (hetrun_tensor){a, 0}, v, sizeof v) == HETRUN_OK &&
                 ops->comm_allreduce(comm, queue, (hetrun_tensor){a, 0}, 1000, HETRUN_F32,
                                     HETRUN_REDUCE_SUM) == HETRUN_OK &&
                 ops->copy_d2h(queue, w, (hetrun_tensor){a, 0}, sizeof w) == HETRUN_OK;
            expect(ok && memcmp(v, w, sizeof v) == 0, "allreduce sum over 1 rank is the identity");
            ops->comm_destroy(comm);
        }
    }
    double j = -1.0;
    hetrun_status st = ops->energy_joules ? ops->energy_joules(dev, &j) : HETRUN_ERR_UNSUPPORTED;
    expect((st == HETRUN_OK && j >= 0.0) || st == HETRUN_ERR_UNSUPPORTED, "energy_joules");
    uint64_t peak = 0;
    expect(ops->memory_peak && ops->memory_peak(dev, &peak) == HETRUN_OK && peak >= 2 * bytes,
           "memory_peak");
out:
    ops->mem_free(a);
    ops->mem_free(b);
    free(src);
    free(dst);
}

/* usage: test_cuda_ops [module.so] [--quick] */
int main(int argc, char **argv) {
    const char *path = argc > 1 && strcmp(argv[1], "--quick") != 0 ? argv[1] : HETRUN_CUDA_MODULE;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "FAIL dlopen(%s): %s\n", path, dlerror());
        return 1;
    }
    hetrun_backend_entry_fn entry =
        (hetrun_backend_entry_fn)dlsym(lib, HETRUN_BACKEND_ENTRY_SYMBOL);
    if (!entry) return 1;
    ops = entry();
    hetrun_host_services host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.abi_major = HETRUN_ABI_MAJOR;
    host.abi_minor = HETRUN_ABI_MINOR;
    host.cpu_threads = 1;
    hetrun_status st = ops->init(&host);
    if (st == HETRUN_ERR_UNAVAILABLE) {
        printf("skipped: %s\n", ops->last_error());
        return 77;
    }
    if (st != HETRUN_OK || ops->device_open(0, &dev) != HETRUN_OK ||
        ops->queue_create(dev, &queue) != HETRUN_OK) {
        fprintf(stderr, "FAIL init/open: %s\n", ops->last_error());
        return 1;
    }
    test_runtime();
    test_gemm();
    test_others();
    test_batched_gemm();
    test_gemm_bias_act();
    test_attention();
    test_training_ops();

    /* Bad input is refused with a reason, never a crash. */
    hetrun_op_desc bad = hetrun_op_desc_init(HETRUN_OP_SCALE, HETRUN_F32);
    bad.m = 4, bad.n = 4;
    hetrun_buffer *small = NULL;
    if (ops->mem_alloc(dev, 16, &small) == HETRUN_OK) {
        hetrun_tensor args[2] = {{small, 0}, {small, 0}};
        st = ops->op_run(queue, &bad, args, 2, (hetrun_tensor){NULL, 0});
        printf("%s out-of-bounds operand: %s\n", st == HETRUN_ERR_INVALID ? "ok  " : "FAIL",
               ops->last_error());
        if (st != HETRUN_ERR_INVALID) failures++;
        ops->mem_free(small);
    }
    printf("%d cases, %d failed, %d refused by op_supported\n", checked, failures, refused);
    ops->queue_destroy(queue);
    ops->device_close(dev);
    ops->finalize();
    return failures ? 1 : 0;
}
