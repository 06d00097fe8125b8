/* hetrun-conformance: runs every op x dtype of the catalogue that a backend claims, on
 * random (never all-zero) inputs at odd and round sizes, transposes, padded leading
 * dimensions and non-zero offsets, and compares with the reference:
 *   - the cpu backend is compared with kernels/reference.c (double precision);
 *   - every other backend is compared with the cpu backend.
 * Error metric (per output operand): max_i |out_i - ref_i| / max_i |ref_i| (normwise,
 * infinity norm). Bounds: fp32 1e-5, fp64 1e-12, fp16 2e-3, bf16 1.6e-2, int32 exact.
 * Outputs are poisoned (NaN bytes) before each run unless the op reads them, so an
 * unwritten element fails. Exit: 0 all passed, 1 a failure, 2 usage, 77 backend
 * unavailable (skipped).
 *
 * usage: hetrun-conformance --backend NAME [--device N] [--op NAME] [--dtype NAME]
 *                           [--quick] [--verbose]
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/catalogue.h"
#include "kernels/reference.h"
#include "loader/loader.h"
#include "util/log.h"
#include "workloads/stats.h"

typedef struct shape {
    int64_t m, n, k;
    unsigned flags;
    int pad;    /* extra elements per row (GEMM leading dimensions) */
    int offset; /* operand offset in elements */
} shape;

typedef struct backend_ctx {
    hetrun_backend_module module;
    hetrun_device *dev;
    hetrun_queue *q;
} backend_ctx;

static int verbose;

static int open_backend(backend_ctx *b, const char *name, int device) {
    memset(b, 0, sizeof *b);
    snprintf(b->module.name, sizeof b->module.name, "%s", name);
    if (hetrun_loader_find(name, b->module.path, sizeof b->module.path) != 0) {
        fprintf(stderr, "conformance: module libhetrun_backend_%s.so not found\n", name);
        return -1;
    }
    int rc = hetrun_module_open(&b->module, hetrun_host_services_get());
    if (rc != 0) {
        fprintf(stderr, "conformance: backend %s %s: %s\n", name,
                hetrun_module_state_name(b->module.state), b->module.reason);
        return rc > 0 ? 77 : -1;
    }
    if (b->module.device_count <= device) {
        fprintf(stderr, "conformance: backend %s has %d devices, no device %d\n", name,
                b->module.device_count, device);
        return 77;
    }
    const hetrun_backend_ops *o = b->module.ops;
    if (o->device_open(device, &b->dev) != HETRUN_OK ||
        o->queue_create(b->dev, &b->q) != HETRUN_OK) {
        fprintf(stderr, "conformance: backend %s device %d: %s\n", name, device, o->last_error());
        return -1;
    }
    return 0;
}

static void close_backend(backend_ctx *b) {
    if (!b->module.ops) return;
    if (b->q) b->module.ops->queue_destroy(b->q);
    if (b->dev) b->module.ops->device_close(b->dev);
    hetrun_module_close(&b->module);
}

/* Which operands an op writes, and which of those it also reads. */
static int is_output(const hetrun_op_desc *d, int a) {
    int last = hetrun_op_arity(d->kind) - 1;
    switch (d->kind) {
    case HETRUN_OP_XENT_FORWARD: return a >= 2;
    case HETRUN_OP_SGD_MOMENTUM: return a == 0 || a == 2;
    case HETRUN_OP_ADAMW: return a != 1;
    case HETRUN_OP_FILL: return a == 0;
    default: return a == last;
    }
}

static int output_is_read(const hetrun_op_desc *d, int a) {
    switch (d->kind) {
    case HETRUN_OP_GEMM:
    case HETRUN_OP_REDUCE_SUM_AXIS0:
    case HETRUN_OP_REDUCE_SUM_AXIS1: return d->beta != 0.0;
    case HETRUN_OP_AXPY:
    case HETRUN_OP_SGD_MOMENTUM:
    case HETRUN_OP_ADAMW: return 1;
    default: (void)a; return 0;
    }
}

/* Random host contents for operand `a` (labels in range, AdamW second moment >= 0). */
static void fill_operand(const hetrun_op_desc *d, int a, void *host, uint64_t count,
                         hetrun_rng *r) {
    hetrun_dtype t = hetrun_op_arg_dtype(d, a);
    if ((d->kind == HETRUN_OP_XENT_FORWARD || d->kind == HETRUN_OP_XENT_BACKWARD) && a == 1) {
        for (uint64_t i = 0; i < count; i++)
            ((int32_t *)host)[i] = (int32_t)(hetrun_rng_next(r) % (uint64_t)d->n);
        return;
    }
    if (d->kind == HETRUN_OP_XENT_BACKWARD && a == 0) { /* probabilities: rows of softmax */
        for (uint64_t i = 0; i < count; i++)
            hetrun_store_from_double(host, t, i, 0.05 + hetrun_rng_uniform(r));
        return;
    }
    double lo = -1.0, hi = 1.0;
    if (d->kind == HETRUN_OP_ADAMW && a == 3) lo = 0.01;
    if (t == HETRUN_I8) lo = -8.0, hi = 8.0;
    if (d->kind == HETRUN_OP_CAST && t == HETRUN_F32 && d->out_dtype == HETRUN_F16)
        lo = -60000, hi = 60000;
    hetrun_fill_uniform(host, t, count, lo, hi, r);
}

static double tolerance(hetrun_dtype t) {
    switch (t) {
    case HETRUN_F64: return 1e-12;
    case HETRUN_F16: return 2e-3;
    case HETRUN_BF16: return 1.6e-2;
    case HETRUN_I32: return 0.0;
    default: return 1e-5;
    }
}

/* Runs desc on a backend: uploads `in`, runs, downloads into `out`. */
static int run_on(backend_ctx *b, const hetrun_op_desc *d, void *const *in, void **out,
                  const uint64_t *bytes, uint64_t offset_bytes[], char *why, size_t whylen) {
    const hetrun_backend_ops *o = b->module.ops;
    int arity = hetrun_op_arity(d->kind), rc = -1;
    hetrun_buffer *buf[HETRUN_OP_MAX_ARGS] = {0};
    hetrun_tensor args[HETRUN_OP_MAX_ARGS];
    hetrun_buffer *ws = NULL;
    uint64_t ws_bytes = 0;
    for (int a = 0; a < arity; a++) {
        if (o->mem_alloc(b->dev, bytes[a] + offset_bytes[a], &buf[a]) != HETRUN_OK) goto fail;
        args[a].buffer = buf[a];
        args[a].offset = offset_bytes[a];
        if (o->copy_h2d(b->q, args[a], in[a], bytes[a]) != HETRUN_OK) goto fail;
    }
    if (o->op_workspace_size(b->dev, d, &ws_bytes) != HETRUN_OK) goto fail;
    if (ws_bytes && o->mem_alloc(b->dev, ws_bytes, &ws) != HETRUN_OK) goto fail;
    hetrun_tensor wst = {ws, 0};
    if (o->op_run(b->q, d, args, arity, wst) != HETRUN_OK || o->queue_sync(b->q) != HETRUN_OK)
        goto fail;
    for (int a = 0; a < arity; a++)
        if (is_output(d, a) && o->copy_d2h(b->q, out[a], args[a], bytes[a]) != HETRUN_OK) goto fail;
    rc = 0;
fail:
    if (rc != 0) snprintf(why, whylen, "%s", o->last_error());
    for (int a = 0; a < arity; a++)
        o->mem_free(buf[a]);
    o->mem_free(ws);
    return rc;
}

/* Normwise relative error of output `a`; NaN anywhere gives +inf. */
static double compare(const hetrun_op_desc *d, int a, const void *got, const void *want,
                      uint64_t count, const shape *s) {
    hetrun_dtype t = hetrun_op_arg_dtype(d, a);
    double maxdiff = 0.0, maxref = 0.0;
    int64_t cols = d->kind == HETRUN_OP_GEMM ? d->n : 0, ld = cols + s->pad;
    for (uint64_t i = 0; i < count; i++) {
        if (d->kind == HETRUN_OP_GEMM && ld > cols && (int64_t)(i % (uint64_t)ld) >= cols) continue;
        double g = hetrun_load_as_double(got, t, i), w = hetrun_load_as_double(want, t, i);
        if (isnan(g) || isnan(w)) return INFINITY;
        if (fabs(g - w) > maxdiff) maxdiff = fabs(g - w);
        if (fabs(w) > maxref) maxref = fabs(w);
    }
    return maxref > 0.0 ? maxdiff / maxref : maxdiff;
}

static int check_case(backend_ctx *target, backend_ctx *ref, const hetrun_op_desc *d,
                      const shape *s, hetrun_rng *r, int *n_pass, int *n_fail, int *n_unsup) {
    const hetrun_backend_ops *o = target->module.ops;
    char label[256];
    snprintf(label, sizeof label, "%s %s->%s m=%lld n=%lld k=%lld%s%s pad=%d off=%d",
             hetrun_op_name(d->kind), hetrun_dtype_name(d->dtype), hetrun_dtype_name(d->out_dtype),
             (long long)d->m, (long long)d->n, (long long)d->k,
             (d->flags & HETRUN_OP_TRANS_A) ? " tA" : "",
             (d->flags & HETRUN_OP_TRANS_B) ? " tB" : "", s->pad, s->offset);
    if (o->op_supported(target->dev, d) != HETRUN_OK) {
        if (verbose) printf("  unsupported  %s: %s\n", label, o->last_error());
        (*n_unsup)++;
        return 0;
    }
    int arity = hetrun_op_arity(d->kind);
    uint64_t bytes[HETRUN_OP_MAX_ARGS], offs[HETRUN_OP_MAX_ARGS];
    void *in[HETRUN_OP_MAX_ARGS] = {0}, *got[HETRUN_OP_MAX_ARGS] = {0},
         *want[HETRUN_OP_MAX_ARGS] = {0};
    int ok = 1;
    for (int a = 0; a < arity; a++) {
        bytes[a] = hetrun_op_arg_bytes(d, a);
        offs[a] = (uint64_t)s->offset * hetrun_dtype_size(hetrun_op_arg_dtype(d, a));
        in[a] = malloc(bytes[a]);
        got[a] = malloc(bytes[a]);
        want[a] = malloc(bytes[a]);
        fill_operand(d, a, in[a], hetrun_op_arg_elements(d, a), r);
        if (is_output(d, a) && !output_is_read(d, a)) memset(in[a], 0xff, bytes[a]); /* poison */
        memcpy(want[a], in[a], bytes[a]);
    }
    char why[1024] = "";
    if (run_on(target, d, in, got, bytes, offs, why, sizeof why) != 0) {
        printf("  FAIL  %s: backend error: %s\n", label, why);
        ok = 0;
    } else if (ref) {
        if (run_on(ref, d, in, want, bytes, offs, why, sizeof why) != 0) {
            printf("  FAIL  %s: reference (cpu) error: %s\n", label, why);
            ok = 0;
        }
    } else if (hetrun_reference_run(d, want) != 0) {
        printf("  FAIL  %s: reference rejected the descriptor\n", label);
        ok = 0;
    }
    for (int a = 0; ok && a < arity; a++) {
        if (!is_output(d, a)) continue;
        double err = compare(d, a, got[a], want[a], hetrun_op_arg_elements(d, a), s);
        double tol = tolerance(hetrun_op_arg_dtype(d, a));
        if (!(err <= tol)) {
            printf("  FAIL  %s: operand %d error %.3g > %.3g\n", label, a, err, tol);
            ok = 0;
        } else if (verbose) {
            printf("  pass  %s: operand %d error %.3g <= %.3g\n", label, a, err, tol);
        }
    }
    for (int a = 0; a < arity; a++)
        free(in[a]), free(got[a]), free(want[a]);
    ok ? (*n_pass)++ : (*n_fail)++;
    return ok ? 0 : -1;
}

/* Descriptor for op x dtype at a shape, with op-specific parameters. */
static hetrun_op_desc make_desc(int kind, int dtype, int out, const shape *s, unsigned act) {
    hetrun_op_desc d = hetrun_op_desc_init((hetrun_op_kind)kind, (hetrun_dtype)dtype);
    d.out_dtype = (uint32_t)out;
    d.m = s->m, d.n = s->n, d.k = s->k;
    d.act = act;
    switch (kind) {
    case HETRUN_OP_GEMM:
        d.flags = s->flags;
        d.alpha = dtype == HETRUN_I8 ? 1.0 : 0.75;
        d.beta = dtype == HETRUN_I8 ? (s->m % 2 ? 1.0 : 0.0) : (s->m % 2 ? 0.5 : 0.0);
        if (s->pad) {
            d.lda = ((s->flags & HETRUN_OP_TRANS_A) ? s->m : s->k) + s->pad;
            d.ldb = ((s->flags & HETRUN_OP_TRANS_B) ? s->k : s->n) + s->pad;
            d.ldc = s->n + s->pad;
        }
        break;
    case HETRUN_OP_XENT_BACKWARD: d.alpha = 1.0 / (double)s->m; break;
    case HETRUN_OP_LAYERNORM: d.p[0] = 1e-5; break;
    case HETRUN_OP_REDUCE_SUM_AXIS0:
    case HETRUN_OP_REDUCE_SUM_AXIS1: d.alpha = 0.5, d.beta = s->m % 2 ? 1.0 : 0.0; break;
    case HETRUN_OP_SCALE:
    case HETRUN_OP_AXPY: d.alpha = -1.25; break;
    case HETRUN_OP_FILL: d.alpha = 0.375; break;
    case HETRUN_OP_SGD_MOMENTUM: d.p[0] = 0.05, d.p[1] = 0.9, d.p[2] = 1e-4; break;
    case HETRUN_OP_ADAMW:
        d.p[0] = 1e-3, d.p[1] = 0.9, d.p[2] = 0.999, d.p[3] = 1e-8, d.p[4] = 0.01, d.p[5] = 3;
        break;
    default: break;
    }
    return d;
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"backend", required_argument, NULL, 'b'}, {"device", required_argument, NULL, 'd'},
        {"op", required_argument, NULL, 'o'},      {"dtype", required_argument, NULL, 't'},
        {"quick", no_argument, NULL, 'q'},         {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *backend = NULL, *only_op = NULL, *only_dtype = NULL;
    int device = 0, quick = 0, c;
    while ((c = getopt_long(argc, argv, "b:d:o:t:qvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': backend = optarg; break;
        case 'd': device = atoi(optarg); break;
        case 'o': only_op = optarg; break;
        case 't': only_dtype = optarg; break;
        case 'q': quick = 1; break;
        case 'v': verbose = 1; break;
        case 'h':
            printf("usage: hetrun-conformance --backend NAME [--device N] [--op NAME] [--dtype "
                   "NAME] [--quick] [--verbose]\n");
            return 0;
        default: return 2;
        }
    }
    if (!backend) {
        fprintf(stderr, "conformance: --backend NAME is required\n");
        return 2;
    }
    if (only_op && hetrun_op_from_name(only_op) < 0) {
        fprintf(stderr, "conformance: unknown op '%s'\n", only_op);
        return 2;
    }
    hetrun_log_init_from_env();
    backend_ctx target, reference;
    int rc = open_backend(&target, backend, device);
    if (rc != 0) return rc == 77 ? 77 : 1;
    int is_cpu = strcmp(backend, "cpu") == 0;
    if (!is_cpu && open_backend(&reference, "cpu", 0) != 0) {
        close_backend(&target);
        return 1;
    }
    /* Shapes: odd and round sizes; GEMM adds transposes, padded rows and offsets. */
    static const shape gemm_shapes[] = {{1, 1, 1, 0, 0, 0},
                                        {7, 7, 7, 0, 0, 0},
                                        {127, 127, 127, 0, 0, 1},
                                        {128, 256, 64, 0, 0, 0},
                                        {7, 127, 1000, 0, 3, 0},
                                        {127, 7, 33, HETRUN_OP_TRANS_A, 0, 0},
                                        {33, 65, 17, HETRUN_OP_TRANS_B, 1, 3},
                                        {65, 33, 127, HETRUN_OP_TRANS_A | HETRUN_OP_TRANS_B, 2, 0},
                                        {1000, 1000, 1000, 0, 0, 0},
                                        {256, 256, 256, HETRUN_OP_TRANS_B, 0, 0}};
    static const shape elem_shapes[] = {{1, 1, 1, 0, 0, 0},       {1, 7, 1, 0, 0, 0},
                                        {7, 127, 1, 0, 0, 3},     {127, 1000, 1, 0, 0, 0},
                                        {1000, 1000, 1, 0, 0, 1}, {64, 256, 1, 0, 0, 0}};
    const size_t n_gemm = sizeof gemm_shapes / sizeof gemm_shapes[0] - (quick || is_cpu ? 2 : 0);
    const size_t n_elem = sizeof elem_shapes / sizeof elem_shapes[0] - (quick ? 1 : 0);
    static const int gemm_pairs[][2] = {{HETRUN_F32, HETRUN_F32},   {HETRUN_F64, HETRUN_F64},
                                        {HETRUN_F16, HETRUN_F16},   {HETRUN_F16, HETRUN_F32},
                                        {HETRUN_BF16, HETRUN_BF16}, {HETRUN_BF16, HETRUN_F32},
                                        {HETRUN_I8, HETRUN_I32}};
    static const int cast_pairs[][2] = {{HETRUN_F32, HETRUN_F16},  {HETRUN_F16, HETRUN_F32},
                                        {HETRUN_F32, HETRUN_BF16}, {HETRUN_BF16, HETRUN_F32},
                                        {HETRUN_F32, HETRUN_F64},  {HETRUN_F64, HETRUN_F32}};
    static const int float_types[] = {HETRUN_F32, HETRUN_F64, HETRUN_F16, HETRUN_BF16};
    hetrun_rng rng = hetrun_rng_seed(20261122, 0);
    int pass = 0, fail = 0, unsup = 0;
    printf("conformance: backend %s device %d vs %s\n", backend, device,
           is_cpu ? "kernels/reference.c (double)" : "the cpu backend");
    for (int kind = 0; kind < HETRUN_OP_FIRST_V1_1;
         kind++ /* 1.1 ops: shapes come with the op table */) {
        if (only_op && hetrun_op_from_name(only_op) != kind) continue;
        int before_fail = fail, before_pass = pass;
        int pairs[8][2];
        size_t npairs = 0;
        if (kind == HETRUN_OP_GEMM) {
            for (size_t i = 0; i < 7; i++)
                pairs[npairs][0] = gemm_pairs[i][0], pairs[npairs++][1] = gemm_pairs[i][1];
        } else if (kind == HETRUN_OP_CAST) {
            for (size_t i = 0; i < 6; i++)
                pairs[npairs][0] = cast_pairs[i][0], pairs[npairs++][1] = cast_pairs[i][1];
        } else {
            for (size_t i = 0; i < 4; i++)
                pairs[npairs][0] = pairs[npairs][1] = float_types[i], npairs++;
        }
        for (size_t p = 0; p < npairs; p++) {
            if (only_dtype && hetrun_dtype_from_name(only_dtype) != pairs[p][0]) continue;
            const shape *shapes = kind == HETRUN_OP_GEMM ? gemm_shapes : elem_shapes;
            size_t nshapes = kind == HETRUN_OP_GEMM ? n_gemm : n_elem;
            /* The double reference of big GEMMs in half precision is slow: skip 1000^3 there. */
            for (size_t si = 0; si < nshapes; si++) {
                int acts = (kind == HETRUN_OP_ACT_FORWARD || kind == HETRUN_OP_ACT_BACKWARD)
                               ? HETRUN_ACT_COUNT
                               : 1;
                for (int act = 0; act < acts; act++) {
                    hetrun_op_desc d =
                        make_desc(kind, pairs[p][0], pairs[p][1], &shapes[si], (unsigned)act);
                    check_case(&target, is_cpu ? NULL : &reference, &d, &shapes[si], &rng, &pass,
                               &fail, &unsup);
                }
            }
        }
        printf("%-18s %3d passed %3d failed\n", hetrun_op_name((hetrun_op_kind)kind),
               pass - before_pass, fail - before_fail);
    }
    printf("%d passed, %d failed, %d skipped\n", pass, fail, unsup);
    close_backend(&target);
    if (!is_cpu) close_backend(&reference);
    return fail ? 1 : (pass ? 0 : 77);
}
