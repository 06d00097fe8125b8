/* The gemm workload: C = alpha * op(A) op(B) + beta * C on the rank's device, timed per
 * iteration with device events, then checked against a double-precision reference.
 *
 * The check is a random projection (Freivalds): with a random vector x it compares
 * C x with A (B x) in double, which costs O(mn + mk + kn) instead of O(mnk), so even
 * 8192^3 runs are checked. Each component's error is bounded relative to |A| |B| |x|
 * (the classical componentwise GEMM error bound); the tolerance is 8 u sqrt(k) with u
 * the unit roundoff of the dtype. C is poisoned (NaN, or INT32_MIN for int8) before
 * the checked run, so an element the backend never wrote fails the check. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/reference.h"
#include "report/fields.h"
#include "spec/job.h"
#include "util/progress.h"
#include "workloads/stats.h"
#include "workloads/workload.h"

typedef struct gemm_params {
    int64_t m, n, k;
    int dtype;
    int64_t iterations, warmup;
    bool trans_a, trans_b;
    double alpha, beta;
    bool check;
} gemm_params;

static const hetrun_field gemm_fields[] = {
    {"m", HETRUN_FIELD_INT, HETRUN_FIELD_REQUIRED | HETRUN_FIELD_SWEEP, offsetof(gemm_params, m), 1,
     1 << 20, NULL, NULL, NULL, "rows of op(A) and C"},
    {"n", HETRUN_FIELD_INT, HETRUN_FIELD_REQUIRED | HETRUN_FIELD_SWEEP, offsetof(gemm_params, n), 1,
     1 << 20, NULL, NULL, NULL, "columns of op(B) and C"},
    {"k", HETRUN_FIELD_INT, HETRUN_FIELD_REQUIRED | HETRUN_FIELD_SWEEP, offsetof(gemm_params, k), 1,
     1 << 20, NULL, NULL, NULL, "inner dimension"},
    {"dtype", HETRUN_FIELD_DTYPE, HETRUN_FIELD_SWEEP, offsetof(gemm_params, dtype), 1, 0, NULL,
     NULL, NULL,
     "element type of A and B: fp32, fp64, fp16, bf16 (C the same) or int8 (C int32); "
     "default: the job's precision"},
    {"iterations", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, offsetof(gemm_params, iterations), 1,
     1000000, NULL, NULL, "10", "timed iterations"},
    {"warmup", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, offsetof(gemm_params, warmup), 0, 1000000,
     NULL, NULL, "2", "untimed iterations first"},
    {"trans_a", HETRUN_FIELD_BOOL, HETRUN_FIELD_SWEEP, offsetof(gemm_params, trans_a), 1, 0, NULL,
     NULL, "false", "use A transposed (A stored k x m)"},
    {"trans_b", HETRUN_FIELD_BOOL, HETRUN_FIELD_SWEEP, offsetof(gemm_params, trans_b), 1, 0, NULL,
     NULL, "false", "use B transposed (B stored n x k)"},
    {"alpha", HETRUN_FIELD_FLOAT, 0, offsetof(gemm_params, alpha), -1e30, 1e30, NULL, NULL, "1.0",
     "scale of op(A) op(B)"},
    {"beta", HETRUN_FIELD_FLOAT, 0, offsetof(gemm_params, beta), -1e30, 1e30, NULL, NULL, "0.0",
     "scale of the previous C (0: C is overwritten)"},
    {"check", HETRUN_FIELD_BOOL, 0, offsetof(gemm_params, check), 1, 0, NULL, NULL, "true",
     "check the result against a double-precision reference"},
};

static void gemm_check_fields(const void *obj, const hetrun_check_ctx *ctx) {
    const gemm_params *p = obj;
    if (p->dtype == HETRUN_I32)
        hetrun_check_error(ctx, "dtype", "int32 is not a GEMM input type (use int8: C is int32)");
    if (p->dtype == HETRUN_I8 && (p->alpha != 1.0 || (p->beta != 0.0 && p->beta != 1.0)))
        hetrun_check_error(ctx, "alpha", "int8 GEMM needs alpha 1 and beta 0 or 1");
    /* Three operands of m*k, k*n and m*n elements must fit a 64-bit byte count. */
    if ((double)p->m * (double)p->k + (double)p->k * (double)p->n + (double)p->m * (double)p->n >
        1e15)
        hetrun_check_error(ctx, NULL, "m, n, k give matrices larger than 1e15 elements");
}

static const hetrun_schema gemm_schema = {"gemm", sizeof(gemm_params), gemm_fields,
                                          sizeof gemm_fields / sizeof gemm_fields[0],
                                          gemm_check_fields};

/* y = op(M) x in double, M stored rows x cols with row stride ld. */
static void matvec(const void *mat, hetrun_dtype t, int trans, int64_t rows, int64_t cols,
                   int64_t ld, const double *x, double *y, int absolute) {
    int64_t out = trans ? cols : rows, in = trans ? rows : cols;
    for (int64_t i = 0; i < out; i++)
        y[i] = 0.0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double v = hetrun_load_as_double(mat, t, (uint64_t)(r * ld + c));
            if (absolute) v = fabs(v);
            if (trans)
                y[c] += v * x[r];
            else
                y[r] += v * x[c];
        }
    (void)in;
}

/* Freivalds check of host copies: returns the worst error / bound ratio scaled to tol. */
static double check_result(const hetrun_op_desc *d, const void *a, const void *b, const void *c0,
                           const void *c, hetrun_rng *rng, double *tol_out) {
    const int ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
    const hetrun_dtype ti = (hetrun_dtype)d->dtype, to = (hetrun_dtype)d->out_dtype;
    const int64_t m = d->m, n = d->n, k = d->k;
    const int64_t lda = ta ? m : k, ldb = tb ? k : n;
    double *x = malloc((size_t)n * sizeof *x), *bx = malloc((size_t)k * sizeof *bx);
    double *abx = malloc((size_t)m * sizeof *abx), *cx = malloc((size_t)m * sizeof *cx);
    double *bnd1 = malloc((size_t)k * sizeof *bnd1);
    double *bnd = malloc((size_t)m * sizeof *bnd), *c0x = malloc((size_t)m * sizeof *c0x);
    double worst = INFINITY;
    if (x && bx && abx && cx && bnd1 && bnd && c0x) {
        for (int64_t j = 0; j < n; j++)
            x[j] = hetrun_rng_uniform(rng) + 0.5;
        matvec(b, ti, tb, tb ? n : k, tb ? k : n, ldb, x, bx, 0);
        matvec(a, ti, ta, ta ? k : m, ta ? m : k, lda, bx, abx, 0);
        matvec(b, ti, tb, tb ? n : k, tb ? k : n, ldb, x, bnd1, 1);
        matvec(a, ti, ta, ta ? k : m, ta ? m : k, lda, bnd1, bnd, 1);
        matvec(c, to, 0, m, n, n, x, cx, 0);
        if (d->beta != 0.0) matvec(c0, to, 0, m, n, n, x, c0x, 0);
        const double u = fmax(hetrun_dtype_unit_roundoff(ti), hetrun_dtype_unit_roundoff(to));
        const double tol = 8.0 * u * sqrt((double)k) + 1e-300;
        worst = 0.0;
        for (int64_t i = 0; i < m; i++) {
            double want = d->alpha * abx[i] + (d->beta != 0.0 ? d->beta * c0x[i] : 0.0);
            double scale =
                fabs(d->alpha) * bnd[i] + (d->beta != 0.0 ? fabs(d->beta * c0x[i]) : 0.0);
            double err = fabs(cx[i] - want);
            double rel = scale > 0.0 ? err / scale : err;
            if (!(rel <= worst)) worst = rel; /* NaN propagates as a failure */
        }
        *tol_out = ti == HETRUN_I8 ? 0.0 : tol;
    }
    free(x), free(bx), free(abx), free(cx), free(bnd1), free(bnd), free(c0x);
    return worst;
}

static int gemm_run(hetrun_session *s, const void *params, cJSON *result) {
    const gemm_params *p = params;
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, (hetrun_dtype)p->dtype);
    d.out_dtype = p->dtype == HETRUN_I8 ? HETRUN_I32 : (uint32_t)p->dtype;
    d.m = p->m, d.n = p->n, d.k = p->k;
    d.alpha = p->alpha, d.beta = p->beta;
    d.flags = (p->trans_a ? HETRUN_OP_TRANS_A : 0) | (p->trans_b ? HETRUN_OP_TRANS_B : 0);
    if (s->job && s->job->allow_tf32) d.flags |= HETRUN_OP_ALLOW_TF32;
    uint64_t bytes[3];
    for (int a = 0; a < 3; a++)
        bytes[a] = hetrun_op_arg_bytes(&d, a);

    int rc = -1;
    hetrun_buffer *buf[3] = {NULL, NULL, NULL};
    void *host[4] = {NULL, NULL, NULL, NULL}; /* A, B, C0, C */
    double *times = calloc((size_t)p->iterations, sizeof *times);
    for (int a = 0; a < 3; a++)
        host[a] = malloc(bytes[a]);
    host[3] = malloc(bytes[2]);
    if (!times || !host[0] || !host[1] || !host[2] || !host[3]) {
        snprintf(s->error, sizeof s->error, "gemm: out of host memory for %llu bytes",
                 (unsigned long long)(bytes[0] + bytes[1] + 2 * bytes[2]));
        goto out;
    }
    uint64_t seed = s->job ? (uint64_t)s->job->seed : 1;
    hetrun_rng rng = hetrun_rng_seed(seed, (uint64_t)s->rank);
    double range = p->dtype == HETRUN_I8 ? 8.0 : 1.0;
    hetrun_fill_uniform(host[0], d.dtype, bytes[0] / hetrun_dtype_size(d.dtype), -range, range,
                        &rng);
    hetrun_fill_uniform(host[1], d.dtype, bytes[1] / hetrun_dtype_size(d.dtype), -range, range,
                        &rng);
    hetrun_fill_uniform(host[2], d.out_dtype, bytes[2] / hetrun_dtype_size(d.out_dtype), -range,
                        range, &rng);
    for (int a = 0; a < 3; a++) {
        if (hetrun_session_alloc(s, bytes[a], &buf[a]) != 0) goto out;
        if (hetrun_session_h2d(s, hetrun_tensor_at(buf[a], 0), host[a], bytes[a]) != 0) goto out;
    }
    hetrun_tensor args[3] = {hetrun_tensor_at(buf[0], 0), hetrun_tensor_at(buf[1], 0),
                             hetrun_tensor_at(buf[2], 0)};

    /* Checked run first, from the known C0, with C's unwritten parts poisoned if beta=0. */
    if (p->check) {
        if (d.beta == 0.0) {
            memset(host[3], 0xff, bytes[2]); /* NaN for floats, -1 for int32 */
            if (d.out_dtype == HETRUN_I32)
                for (uint64_t i = 0; i < bytes[2] / 4; i++)
                    ((int32_t *)host[3])[i] = INT32_MIN;
            if (hetrun_session_h2d(s, args[2], host[3], bytes[2]) != 0) goto out;
        }
        if (hetrun_exec_op(s, &d, args) != 0 || hetrun_session_sync(s) != 0) goto out;
        if (hetrun_session_d2h(s, host[3], args[2], bytes[2]) != 0) goto out;
    }
    for (int64_t i = 0; i < p->warmup; i++)
        if (hetrun_exec_op(s, &d, args) != 0) goto out;
    if (hetrun_session_sync(s) != 0) goto out;
    for (int64_t i = 0; i < p->iterations; i++) {
        if (hetrun_session_timer_start(s) != 0 || hetrun_exec_op(s, &d, args) != 0 ||
            hetrun_session_timer_stop(s, &times[i]) != 0)
            goto out;
        hetrun_progress_update(i + 1, p->iterations, "iterations", NULL);
    }
    double flops = hetrun_op_flops(&d);
    hetrun_stats t = hetrun_stats_of(times, (size_t)p->iterations);
    /* The op and its shape, so tables and CSV name what was measured ("gemm fp32 2048^3"). */
    cJSON_AddStringToObject(result, HETRUN_RF_OP, hetrun_op_name(HETRUN_OP_GEMM));
    cJSON_AddStringToObject(result, HETRUN_RF_DTYPE, hetrun_dtype_name(d.dtype));
    cJSON_AddNumberToObject(result, HETRUN_RF_M, (double)d.m);
    cJSON_AddNumberToObject(result, HETRUN_RF_N, (double)d.n);
    cJSON_AddNumberToObject(result, HETRUN_RF_K, (double)d.k);
    cJSON_AddNumberToObject(result, HETRUN_RF_FLOPS_PER_ITERATION, flops);
    cJSON_AddItemToObject(result, HETRUN_RF_TIME_MS, hetrun_stats_json(t));
    cJSON_AddNumberToObject(result, HETRUN_RF_GFLOPS, flops / (t.median * 1e-3) / 1e9);
    cJSON_AddNumberToObject(result, HETRUN_RF_GFLOPS_MAX, flops / (t.min * 1e-3) / 1e9);
    double peak = s->info.peak_flops[d.dtype < HETRUN_MAX_DTYPES ? d.dtype : 0];
    if (peak > 0.0)
        cJSON_AddNumberToObject(result, HETRUN_RF_PERCENT_OF_PEAK,
                                100.0 * flops / (t.median * 1e-3) / peak);
    else
        cJSON_AddNullToObject(result, HETRUN_RF_PERCENT_OF_PEAK);
    if (p->check) {
        double tol = 0.0;
        hetrun_rng crng = hetrun_rng_seed(seed ^ 0xc0ffee, (uint64_t)s->rank);
        double err = check_result(&d, host[0], host[1], host[2], host[3], &crng, &tol);
        int ok = err <= tol;
        hetrun_result_set_check(result, ok ? HETRUN_CHECK_PASSED : HETRUN_CHECK_FAILED);
        cJSON_AddNumberToObject(result, HETRUN_RF_MAX_ERROR, isfinite(err) ? err : -1.0);
        cJSON_AddNumberToObject(result, HETRUN_RF_TOLERANCE, tol);
        cJSON_AddStringToObject(
            result, HETRUN_RF_CHECK_METHOD,
            "random projection vs double reference, error relative to |A||B||x|");
    } else {
        hetrun_result_set_check(result, HETRUN_CHECK_SKIPPED);
    }
    rc = 0;
out:
    for (int a = 0; a < 3; a++)
        hetrun_session_free(s, buf[a], bytes[a]);
    for (int a = 0; a < 4; a++)
        free(host[a]);
    free(times);
    return rc;
}

static void gemm_needs(const void *params, hetrun_op_needs *needs) {
    const gemm_params *p = params;
    hetrun_op_needs_add(needs, HETRUN_OP_GEMM, (uint32_t)p->dtype,
                        p->dtype == HETRUN_I8 ? HETRUN_I32 : (uint32_t)p->dtype, 0);
}

const hetrun_workload_type hetrun_workload_gemm = {
    "gemm",
    "matrix multiply C = alpha op(A) op(B) + beta C, timed and checked",
    &gemm_schema,
    gemm_run,
    0, /* ranks work independently */
    gemm_needs,
};
