/* The bench workload: one point is one catalogue op (or one collective, bench_coll.c) at
 * one dtype and size; sweeps over op, dtype and size come from the spec's sweep lists.
 *
 * Each op point: random inputs, one checked run, `warmup` untimed runs, `iterations`
 * runs each timed with device events; min/median/max time, GFLOP/s and GB/s from the
 * catalogue's counts, percent of peak (bench_peak.c).
 *
 * Correctness: every op except GEMM is checked in full against kernels/reference.c on
 * host copies of the same inputs (the reference is O(size) like the op itself). GEMM is
 * checked in full when m*n*k <= 2^24, otherwise on 1024 sampled elements of C, each a
 * double-precision dot product. An element passes when
 *   |got - ref| <= tol * (|ref| + max|ref|)          (all ops but GEMM)
 *   |got - ref| <= tol * sum_l |a_il b_lj|            (GEMM, the classical bound)
 * with tol the op table's hetrun_op_tolerance: 4 u_out + ulps u_acc + 8 u_acc sqrt(L)
 * (8 u_acc L for cancelling backward sums), u_out the unit roundoff of the coarser of the
 * input and output dtypes (the final rounding, with room for a tie), ulps the row's
 * allowance for transcendental functions (16, or 0 without), u_acc that of the arithmetic (fp32 for
 * fp16/bf16 inputs, which every backend computes in fp32; the TF32 roundoff for an fp32 GEMM
 * allowed TF32; the dtype's own otherwise) and L the reduction length of the op (1 for elementwise
 * ops). Shapes, inputs and which operands are written come from the op table too. Pure outputs are
 * poisoned before the checked run, so an element never written fails. */
#include "report/fields.h"
#include "util/progress.h"
#include "workloads/bench.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/reference.h"
#include "spec/job.h"
#include "workloads/stats.h"
#include "workloads/workload.h"

/* The `op` choices come from the op table (kind order), then the collectives. Filled
 * before main, read by the schema. */
static const char *op_choices[HETRUN_BENCH_OP_CHOICES + 1];

__attribute__((constructor)) static void bench_fill_choices(void) {
    static const char *const collectives[] = {"allreduce", "allgather", "reduce_scatter",
                                              "broadcast"};
    for (int k = 0; k < HETRUN_OP_KIND_COUNT; k++)
        op_choices[k] = hetrun_op_name((hetrun_op_kind)k);
    for (int c = HETRUN_BENCH_ALLREDUCE; c < HETRUN_BENCH_OP_CHOICES; c++)
        op_choices[c] = collectives[c - HETRUN_BENCH_ALLREDUCE];
}
static const char *const peak_choices[] = {"auto", "backend", "probe", "none", NULL};
static const char *const buffer_choices[] = {"both", "host", "device", NULL};

#define P(f) offsetof(hetrun_bench_params, f)
static const hetrun_field bench_fields[] = {
    {"op", HETRUN_FIELD_ENUM, HETRUN_FIELD_REQUIRED | HETRUN_FIELD_SWEEP, P(op), 1, 0, op_choices,
     NULL, NULL,
     "op of the op table (docs/ops.md: gemm, softmax, attention_forward, ...) or collective "
     "(allreduce, allgather, reduce_scatter, broadcast)"},
    {"dtype", HETRUN_FIELD_DTYPE, HETRUN_FIELD_SWEEP, P(dtype), 1, 0, NULL, NULL, NULL,
     "input type, one the op accepts (docs/ops.md; the output type is the op's first pair "
     "with it: int8 gemm gives int32, cast fp32 gives fp16, others to fp32); collectives: "
     "fp32, fp64 or int32; default: the job's precision"},
    {"size", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, P(size), 1, 1 << 20, NULL, NULL, "1024",
     "gemm, gemm_bias_act: m = n = k = size; attention: tokens (m = n); other ops: rows m"},
    {"cols", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, P(cols), 1, 1 << 24, NULL, NULL, "1024",
     "columns n (the row length softmax, layernorm and axis-1 sums reduce over); attention: "
     "heads x 64 (head dim 64, causal); embeddings: width (8192 table rows)"},
    {"act", HETRUN_FIELD_ENUM, HETRUN_FIELD_SWEEP, P(act), 1, 0, hetrun_act_choices, NULL, "gelu",
     "activation of act_forward, act_backward and gemm_bias_act"},
    {"warmup", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, P(warmup), 0, 1000000, NULL, NULL, "2",
     "untimed runs before the timed ones"},
    {"iterations", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, P(iterations), 1, 1000000, NULL, NULL,
     "10", "timed runs (ops: each timed with device events; collectives: per size)"},
    {"check", HETRUN_FIELD_BOOL, 0, P(check), 1, 0, NULL, NULL, "true",
     "check the output against the reference (ops) or the exact sums (collectives)"},
    {"peak", HETRUN_FIELD_ENUM, 0, P(peak), 1, 0, peak_choices, NULL, "auto",
     "peak FLOP/s for percent_of_peak: auto (backend-declared, else probe), backend, probe, "
     "none"},
    {"probe_size", HETRUN_FIELD_INT, 0, P(probe_size), 64, 16384, NULL, NULL, "2048",
     "GEMM size of the peak probe (result cached under the cache dir)"},
    {"min_bytes", HETRUN_FIELD_BYTES, 0, P(min_bytes), 1, 1e12, NULL, NULL, "8",
     "collectives: smallest message size"},
    {"max_bytes", HETRUN_FIELD_BYTES, 0, P(max_bytes), 1, 2147483648.0 * 8, NULL, NULL, "64MiB",
     "collectives: largest message size"},
    {"step_factor", HETRUN_FIELD_INT, 0, P(step_factor), 2, 1024, NULL, NULL, "2",
     "collectives: size multiplier between rows"},
    {"buffers", HETRUN_FIELD_ENUM, 0, P(buffers), 1, 0, buffer_choices, NULL, "both",
     "collectives: host buffers through MPI, device buffers, or both"},
    {"reference", HETRUN_FIELD_BOOL, 0, P(reference), 1, 0, NULL, NULL, "true",
     "collectives: also time a plain MPI loop on its own buffers, as a reference column"},
};
#undef P

static void bench_check_fields(const void *obj, const hetrun_check_ctx *ctx) {
    const hetrun_bench_params *p = obj;
    hetrun_dtype t = (hetrun_dtype)p->dtype;
    if (p->op >= HETRUN_BENCH_ALLREDUCE) {
        if (t != HETRUN_F32 && t != HETRUN_F64 && t != HETRUN_I32)
            hetrun_check_error(ctx, "dtype", "collectives run on fp32, fp64 or int32, not %s",
                               hetrun_dtype_name(t));
        if (p->min_bytes > p->max_bytes)
            hetrun_check_error(ctx, "min_bytes", "min_bytes %lld is larger than max_bytes %lld",
                               (long long)p->min_bytes, (long long)p->max_bytes);
        return;
    }
    const hetrun_op_info *op = hetrun_op_info_of((uint32_t)p->op);
    int accepted = 0;
    for (int i = 0; i < op->npairs; i++)
        accepted |= op->pairs[i][0] == t;
    if (!accepted) {
        hetrun_check_error(ctx, "dtype", "%s is not an input type of op %s (docs/ops.md)",
                           hetrun_dtype_name(t), op->name);
        return;
    }
    hetrun_op_desc d = hetrun_op_bench_desc((hetrun_op_kind)p->op, t, p->size, p->cols);
    double elements = 0.0;
    for (int a = 0; a < op->arity; a++)
        elements += (double)hetrun_op_arg_elements(&d, a);
    if (elements > 1e12) hetrun_check_error(ctx, "size", "operands larger than 1e12 elements");
}

static const hetrun_schema bench_schema = {"bench", sizeof(hetrun_bench_params), bench_fields,
                                           sizeof bench_fields / sizeof bench_fields[0],
                                           bench_check_fields};

/* The descriptor a point benchmarks: the op table's bench shape, typical scalars. */
static hetrun_op_desc point_desc(const hetrun_bench_params *p, const hetrun_session *s) {
    hetrun_op_desc d =
        hetrun_op_bench_desc((hetrun_op_kind)p->op, (hetrun_dtype)p->dtype, p->size, p->cols);
    const hetrun_op_info *op = hetrun_op_info_of(d.kind);
    if (op->uses_act) d.act = (uint32_t)p->act;
    if (s->job && s->job->allow_tf32 && (op->flags & HETRUN_OP_ALLOW_TF32))
        d.flags |= HETRUN_OP_ALLOW_TF32;
    return d;
}

/* Inputs from the op table's value rules; outputs the op does not read are poisoned (NaN
 * in every float format, INT32_MIN for integers) so an element never written fails. */
static void fill_inputs(const hetrun_op_desc *d, void *const *host, const uint64_t *bytes,
                        hetrun_rng *rng) {
    uint64_t state = hetrun_rng_next(rng);
    for (int a = 0; a < hetrun_op_arity(d->kind); a++) {
        hetrun_dtype t = hetrun_op_arg_dtype(d, a);
        uint64_t count = bytes[a] / hetrun_dtype_size(t);
        if (hetrun_op_arg_reads(d, a)) {
            hetrun_op_fill_arg(d, a, host[a], count, &state);
        } else if (t == HETRUN_I32) {
            for (uint64_t i = 0; i < count; i++)
                ((int32_t *)host[a])[i] = INT32_MIN;
        } else {
            memset(host[a], 0xff, bytes[a]);
        }
    }
}

/* Full comparison of every written operand with the reference. Returns the worst
 * error / (|ref| + max|ref|) over all elements; NaN or an unwritten element gives +inf. */
static double compare_full(const hetrun_op_desc *d, void *const *got, void *const *ref,
                           const uint64_t *bytes) {
    double worst = 0.0;
    int arity = hetrun_op_arity((hetrun_op_kind)d->kind);
    for (int a = 0; a < arity; a++) {
        if (!hetrun_op_arg_writes(d, a)) continue;
        hetrun_dtype t = hetrun_op_arg_dtype(d, a);
        uint64_t count = bytes[a] / hetrun_dtype_size(t);
        double maxref = 0.0;
        for (uint64_t i = 0; i < count; i++) {
            double r = fabs(hetrun_load_as_double(ref[a], t, i));
            if (r > maxref) maxref = r;
        }
        for (uint64_t i = 0; i < count; i++) {
            double g = hetrun_load_as_double(got[a], t, i), r = hetrun_load_as_double(ref[a], t, i);
            double scale = fabs(r) + maxref;
            double e = fabs(g - r);
            double rel = scale > 0.0 ? e / scale : e;
            if (!(rel <= worst)) worst = isnan(rel) ? INFINITY : rel;
        }
    }
    return worst;
}

/* GEMM (no transposes, beta = 0): elements of C vs double dot products, relative to
 * sum |a||b|. All elements when m*n*k <= 2^24, else 1024 random ones. */
static double compare_gemm(const hetrun_op_desc *d, void *const *in, const void *c, hetrun_rng *rng,
                           int *sampled) {
    const hetrun_dtype ti = (hetrun_dtype)d->dtype, to = (hetrun_dtype)d->out_dtype;
    const int64_t m = d->m, n = d->n, k = d->k;
    const int full = (double)m * (double)n * (double)k <= 16777216.0;
    const int64_t samples = full ? m * n : 1024;
    double worst = 0.0;
    *sampled = !full;
    for (int64_t s = 0; s < samples; s++) {
        int64_t i = full ? s / n : (int64_t)(hetrun_rng_next(rng) % (uint64_t)m);
        int64_t j = full ? s % n : (int64_t)(hetrun_rng_next(rng) % (uint64_t)n);
        double want = 0.0, bound = 0.0;
        for (int64_t l = 0; l < k; l++) {
            double a = hetrun_load_as_double(in[0], ti, (uint64_t)(i * k + l));
            double b = hetrun_load_as_double(in[1], ti, (uint64_t)(l * n + j));
            want += a * b;
            bound += fabs(a * b);
        }
        double g = hetrun_load_as_double(c, to, (uint64_t)(i * n + j));
        double e = fabs(g - d->alpha * want);
        double rel = bound > 0.0 ? e / (fabs(d->alpha) * bound) : e;
        if (!(rel <= worst)) worst = isnan(rel) ? INFINITY : rel;
    }
    return worst;
}

static int bench_op(hetrun_session *s, const hetrun_bench_params *p, cJSON *result) {
    hetrun_op_desc d = point_desc(p, s);
    const char *name = hetrun_op_name((hetrun_op_kind)d.kind);
    const int arity = hetrun_op_arity((hetrun_op_kind)d.kind);
    char why[256];
    if (!hetrun_op_desc_valid(&d, why, sizeof why)) {
        snprintf(s->error, sizeof s->error, "bench %s (%s, m=%lld n=%lld): %s", name,
                 hetrun_dtype_name((hetrun_dtype)d.dtype), (long long)d.m, (long long)d.n, why);
        return -1;
    }
    cJSON_AddStringToObject(result, HETRUN_RF_OP, name);
    cJSON_AddStringToObject(result, HETRUN_RF_DTYPE, hetrun_dtype_name((hetrun_dtype)d.dtype));
    /* A sweep over op x dtype meets pairs a backend lacks: such a point is recorded as
     * unsupported (with the backend's reason) and skipped, visibly, not run elsewhere. */
    char reason[512];
    if (!hetrun_session_supports(s, &d, reason, sizeof reason)) {
        cJSON_AddFalseToObject(result, HETRUN_RF_SUPPORTED);
        hetrun_result_set_check(result, HETRUN_CHECK_SKIPPED);
        cJSON_AddStringToObject(result, HETRUN_RF_SKIPPED_REASON, reason);
        return 0;
    }
    uint64_t bytes[HETRUN_OP_MAX_ARGS] = {0};
    for (int a = 0; a < arity; a++)
        bytes[a] = hetrun_op_arg_bytes(&d, a);

    int rc = -1;
    hetrun_buffer *buf[HETRUN_OP_MAX_ARGS] = {NULL};
    void *host[HETRUN_OP_MAX_ARGS] = {NULL}, *ref[HETRUN_OP_MAX_ARGS] = {NULL};
    void *got[HETRUN_OP_MAX_ARGS] = {NULL};
    double *times = calloc((size_t)p->iterations, sizeof *times);
    int ok_alloc = times != NULL;
    for (int a = 0; a < arity; a++) {
        host[a] = malloc(bytes[a]);
        ok_alloc &= host[a] != NULL;
        if (p->check) {
            ref[a] = malloc(bytes[a]);
            got[a] = malloc(bytes[a]);
            ok_alloc &= ref[a] && got[a];
        }
    }
    if (!ok_alloc) {
        uint64_t total = 0;
        for (int a = 0; a < arity; a++)
            total += bytes[a];
        snprintf(s->error, sizeof s->error, "bench %s: out of host memory for %llu bytes (x3)",
                 name, (unsigned long long)total);
        goto out;
    }
    uint64_t seed = s->job ? (uint64_t)s->job->seed : 1;
    hetrun_rng rng = hetrun_rng_seed(seed, (uint64_t)s->rank);
    fill_inputs(&d, host, bytes, &rng);
    hetrun_tensor args[HETRUN_OP_MAX_ARGS];
    for (int a = 0; a < arity; a++) {
        if (hetrun_session_alloc(s, bytes[a], &buf[a]) != 0) goto out;
        args[a] = hetrun_tensor_at(buf[a], 0);
        if (hetrun_session_h2d(s, args[a], host[a], bytes[a]) != 0) goto out;
    }
    if (p->check) {
        if (hetrun_exec_op(s, &d, args) != 0 || hetrun_session_sync(s) != 0) goto out;
        for (int a = 0; a < arity; a++)
            if (hetrun_op_arg_writes(&d, a) &&
                hetrun_session_d2h(s, got[a], args[a], bytes[a]) != 0)
                goto out;
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

    double flops = hetrun_op_flops(&d), moved = hetrun_op_bytes(&d);
    hetrun_stats t = hetrun_stats_of(times, (size_t)p->iterations);
    cJSON_AddStringToObject(result, HETRUN_RF_OUT_DTYPE,
                            hetrun_dtype_name((hetrun_dtype)d.out_dtype));
    cJSON_AddNumberToObject(result, HETRUN_RF_M, (double)d.m);
    cJSON_AddNumberToObject(result, HETRUN_RF_N, (double)d.n);
    cJSON_AddNumberToObject(result, HETRUN_RF_K, (double)d.k);
    cJSON_AddNumberToObject(result, HETRUN_RF_FLOPS_PER_ITERATION, flops);
    cJSON_AddNumberToObject(result, HETRUN_RF_BYTES_PER_ITERATION, moved);
    cJSON_AddNumberToObject(result, HETRUN_RF_CALLS,
                            (double)((p->check ? 1 : 0) + p->warmup + p->iterations));
    cJSON_AddItemToObject(result, HETRUN_RF_TIME_MS, hetrun_stats_json(t));
    double secs = t.median * 1e-3;
    cJSON_AddNumberToObject(result, HETRUN_RF_GFLOPS, secs > 0.0 ? flops / secs / 1e9 : 0.0);
    cJSON_AddNumberToObject(result, HETRUN_RF_GFLOPS_MAX,
                            t.min > 0.0 ? flops / (t.min * 1e-3) / 1e9 : 0.0);
    cJSON_AddNumberToObject(result, HETRUN_RF_GBPS, secs > 0.0 ? moved / secs / 1e9 : 0.0);

    /* Peak of the dtype the op computes in (GEMM: inputs; others: the same). */
    double peak = 0.0;
    const char *source = HETRUN_PEAK_SOURCE_NONE;
    if (hetrun_bench_peak(s, (hetrun_dtype)d.dtype, p->peak, p->probe_size, &peak, &source) != 0)
        goto out;
    if (d.kind == HETRUN_OP_GEMM && t.min > 0.0 &&
        strncmp(source, HETRUN_PEAK_SOURCE_PROBE, strlen(HETRUN_PEAK_SOURCE_PROBE)) == 0 &&
        flops / (t.min * 1e-3) > peak) {
        peak = flops / (t.min * 1e-3); /* this point beat the probe: it is the new best */
        hetrun_bench_peak_observe(s, (hetrun_dtype)d.dtype, p->probe_size, peak);
    }
    if (peak > 0.0 && flops > 0.0 && secs > 0.0) {
        cJSON_AddNumberToObject(result, HETRUN_RF_PERCENT_OF_PEAK, 100.0 * flops / secs / peak);
    } else {
        cJSON_AddNullToObject(result, HETRUN_RF_PERCENT_OF_PEAK);
    }
    if (peak > 0.0)
        cJSON_AddNumberToObject(result, HETRUN_RF_PEAK_FLOPS, peak);
    else
        cJSON_AddNullToObject(result, HETRUN_RF_PEAK_FLOPS);
    cJSON_AddStringToObject(result, HETRUN_RF_PEAK_SOURCE, source);

    if (p->check) {
        double tol = hetrun_op_tolerance(&d);
        double err;
        char method[160];
        if (d.kind == HETRUN_OP_GEMM) {
            hetrun_rng crng = hetrun_rng_seed(seed ^ 0xc0ffee, (uint64_t)s->rank);
            int sampled = 0;
            err = compare_gemm(&d, host, got[2], &crng, &sampled);
            snprintf(method, sizeof method,
                     "%s vs double dot products, error relative to sum |a||b|",
                     sampled ? "1024 sampled elements of C" : "every element of C");
        } else {
            for (int a = 0; a < arity; a++)
                memcpy(ref[a], host[a], bytes[a]);
            if (hetrun_reference_run(&d, ref) != 0) {
                snprintf(s->error, sizeof s->error,
                         "bench %s: the reference refused the descriptor", name);
                goto out;
            }
            err = compare_full(&d, got, ref, bytes);
            snprintf(method, sizeof method,
                     "every output element vs kernels/reference.c, error relative to "
                     "|ref| + max|ref|");
        }
        int ok = err <= tol;
        hetrun_result_set_check(result, ok ? HETRUN_CHECK_PASSED : HETRUN_CHECK_FAILED);
        cJSON_AddNumberToObject(result, HETRUN_RF_MAX_ERROR, isfinite(err) ? err : -1.0);
        cJSON_AddNumberToObject(result, HETRUN_RF_TOLERANCE, tol);
        cJSON_AddStringToObject(result, HETRUN_RF_CHECK_METHOD, method);
    } else {
        hetrun_result_set_check(result, HETRUN_CHECK_SKIPPED);
    }
    rc = 0;
out:
    for (int a = 0; a < arity; a++) {
        hetrun_session_free(s, buf[a], bytes[a]);
        free(host[a]);
        free(ref[a]);
        free(got[a]);
    }
    free(times);
    return rc;
}

static int bench_run(hetrun_session *s, const void *params, cJSON *result) {
    const hetrun_bench_params *p = params;
    if (p->op >= HETRUN_BENCH_ALLREDUCE) return hetrun_bench_collective(s, p, result);
    return bench_op(s, p, result);
}

/* An op point needs its op at the bench descriptor's dtype pair; a collective point needs
 * no op (it runs through the collective group or MPI). */
static void bench_needs(const void *params, hetrun_op_needs *needs) {
    const hetrun_bench_params *p = params;
    if (p->op < 0 || p->op >= HETRUN_OP_KIND_COUNT) return;
    hetrun_op_desc d =
        hetrun_op_bench_desc((hetrun_op_kind)p->op, (hetrun_dtype)p->dtype, p->size, p->cols);
    hetrun_op_needs_add(needs, d.kind, d.dtype, d.out_dtype, (uint32_t)p->act);
}

const hetrun_workload_type hetrun_workload_bench = {
    "bench",
    "op and collective benchmarks: sizes x dtypes, GFLOP/s, GB/s, % of peak, busbw, checked",
    &bench_schema,
    bench_run,
    1, /* collective */
    bench_needs,
};

/** The name of choice `op` of the bench `op` field (for bench_coll.c). */
const char *hetrun_bench_op_name(int op) {
    return op >= 0 && op < HETRUN_BENCH_OP_CHOICES ? op_choices[op] : "?";
}
