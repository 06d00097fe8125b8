/* Tests the OpenCL backend module through the ABI only (dlopen + entry symbol).
 *
 * Every op x dtype the module claims (op_supported == OK) is run on random inputs and
 * compared with kernels/reference.c (double arithmetic). Error definitions:
 *  - GEMM: per element |out - ref| <= tol * (|alpha| * sum_p |A_ip||B_pj| + |beta||C_ij|),
 *    the standard forward-error bound shape for a dot product (k up to 1000);
 *  - REDUCE_SUM_*: per element |out - ref| <= tol * (|alpha| * sum |x| + |beta||out_old|);
 *  - every other op: norm-wise, max |out - ref| <= tol * max |ref| over the operand.
 * tol = 1e-5 for fp32 outputs (1e-4 for attention), 2e-3 (2 ulp of binary16) for fp16
 * outputs, 1.6e-2 (2 ulp of bfloat16) for bf16 outputs, 1e-12 for fp64 and 0 (exact) for
 * int8 GEMM and the int32 non-finite count. Equal values (-inf lse of a row with no kept
 * key) and NaN against NaN (rows of out-of-range embedding ids) count as exact. Operands sit at
 * non-zero, unaligned byte offsets inside larger buffers, and the guard elements around each
 * operand must come back unchanged (catches out-of-bounds writes).
 *
 * Usage: test_opencl_backend <module.so> [--cache-only | --only=<group>[,<group>...]]
 * Exit: 0 pass, 1 fail, 77 skipped (module reports no OpenCL platform/device). */
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hetrun/backend.h"
#include "kernels/catalogue.h"
#include "kernels/half.h"
#include "kernels/reference.h"

static const hetrun_backend_ops *B;
static hetrun_device *dev;
static hetrun_queue *q;
static int failures, checks;
static char logbuf[1 << 16];
static size_t loglen;

static void host_log(hetrun_log_level level, const char *backend, const char *msg) {
    fprintf(stderr, "[%s:%d] %s\n", backend, (int)level, msg);
    size_t n = strlen(msg);
    if (loglen + n + 2 < sizeof logbuf) {
        memcpy(logbuf + loglen, msg, n);
        loglen += n;
        logbuf[loglen++] = '\n';
        logbuf[loglen] = 0;
    }
}

static hetrun_host_services host = {
    .struct_size = sizeof(hetrun_host_services),
    .abi_major = HETRUN_ABI_MAJOR,
    .abi_minor = HETRUN_ABI_MINOR,
    .log = host_log,
    .alloc = malloc,
    .free = free,
    .cpu_threads = 2,
    .log_level = HETRUN_LOG_DEBUG,
};

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    failures++;
}

#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        hetrun_status st_ = (call);                                                                \
        if (st_ != HETRUN_OK) {                                                                    \
            fail("%s -> %d: %s", #call, (int)st_, B->last_error());                                \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* xorshift64*: reproducible random inputs, never all zero. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 0x2545f4914f6cdd1dull) >> 11) * (1.0 / 9007199254740992.0);
}

static double tol_for(hetrun_dtype t) {
    switch (t) {
    case HETRUN_F16: return 2e-3;
    case HETRUN_BF16: return 1.6e-2;
    case HETRUN_F64: return 1e-12;
    case HETRUN_I32: return 0.0; /* int8 GEMM: exact */
    default: return 1e-5;
    }
}

/* Attention sums exp() terms over up to ~200 keys in float, and backward chains three
 * such products: 1e-4 for fp32 results (the narrow types keep their rounding tolerance). */
static double case_tol(const hetrun_op_desc *d, hetrun_dtype t) {
    int attention =
        d->kind == HETRUN_OP_ATTENTION_FORWARD || d->kind == HETRUN_OP_ATTENTION_BACKWARD;
    return attention && t == HETRUN_F32 ? 1e-4 : tol_for(t);
}

#define PRE 3  /* guard elements before each operand: makes the offset non-zero, unaligned */
#define POST 5 /* guard elements after */

typedef struct operand {
    hetrun_dtype dt;
    size_t es;
    uint64_t elems;
    unsigned char *init, *ref, *got; /* PRE + elems + POST elements each */
    hetrun_buffer *buf;
    int alias;     /* index of the operand this one shares memory with, or -1 */
    uint64_t aoff; /* with alias: element offset inside that operand (fused QKV) */
    int absent;    /* optional operand whose flag is not set: NULL buffer */
} operand;

/* Attention backward inputs: batch entry whose keys are all masked (-1: none). */
static int64_t masked_batch = -1;

/* Value for input element i of operand a of desc d. */
static double gen_value(const hetrun_op_desc *d, int a, uint64_t i) {
    (void)i;
    hetrun_dtype t = hetrun_op_arg_dtype(d, a);
    const uint32_t kind = d->kind;
    if ((kind == HETRUN_OP_EMBEDDING_FORWARD || kind == HETRUN_OP_EMBEDDING_BACKWARD) && a == 0) {
        double u = urand(); /* ids: 1 in 20 out of range (-1 or k) */
        return u < 0.05 ? (u < 0.025 ? -1.0 : (double)d->k) : (double)(int)(urand() * d->k);
    }
    if ((kind == HETRUN_OP_ATTENTION_FORWARD || kind == HETRUN_OP_ATTENTION_BACKWARD) && a == 3)
        return urand() < 0.2 ? 0.0 : 1.0; /* key-padding mask: 1 in 5 keys dropped */
    if (kind == HETRUN_OP_NONFINITE_COUNT) {
        if (a == 1) return (double)(int)(urand() * 10.0); /* old count */
        double u = urand();
        return u < 0.01 ? NAN : u < 0.02 ? INFINITY : u < 0.03 ? -INFINITY : 2.0 * urand() - 1.0;
    }
    if (kind == HETRUN_OP_LAYERNORM_BACKWARD && a == 3) return 0.5 + 1.5 * urand(); /* rstd */
    if (kind == HETRUN_OP_SOFTMAX_BACKWARD && a == 0) return urand();               /* Y */
    if (t == HETRUN_I8) return (double)(int)(urand() * 256.0) - 128.0;
    if (t == HETRUN_I32 && d->kind == HETRUN_OP_GEMM) return (double)(int)(urand() * 2e6) - 1e6;
    if ((d->kind == HETRUN_OP_XENT_FORWARD || d->kind == HETRUN_OP_XENT_BACKWARD) && a == 1)
        return (double)(int)(urand() * (double)d->n);
    if (d->kind == HETRUN_OP_ADAMW && a == 3) return urand();         /* V >= 0 */
    if (d->kind == HETRUN_OP_XENT_BACKWARD && a == 0) return urand(); /* probabilities */
    if (d->kind == HETRUN_OP_SOFTMAX || d->kind == HETRUN_OP_XENT_FORWARD)
        return 8.0 * urand() - 4.0;
    return 2.0 * urand() - 1.0;
}

static const char *case_name(const hetrun_op_desc *d, char *buf, size_t len) {
    snprintf(buf, len, "%s %s->%s m=%lld n=%lld k=%lld flags=%u lda=%lld ldb=%lld ldc=%lld act=%u",
             hetrun_op_name(d->kind), hetrun_dtype_name(d->dtype), hetrun_dtype_name(d->out_dtype),
             (long long)d->m, (long long)d->n, (long long)d->k, d->flags, (long long)d->lda,
             (long long)d->ldb, (long long)d->ldc, d->act);
    return buf;
}

/* Attention backward takes O and lse from the forward pass: runs the reference forward
 * on the generated Q, K, V and mask (`args` point into the initial operand images). */
static void attention_inputs(const hetrun_op_desc *d, void *const *args) {
    if (masked_batch >= 0 && (d->flags & HETRUN_OP_KEY_PADDING_MASK))
        for (int64_t j = 0; j < d->n; j++)
            ((int32_t *)args[3])[masked_batch * d->n + j] = 0;
    if (d->kind != HETRUN_OP_ATTENTION_BACKWARD) return;
    hetrun_op_desc f = *d;
    f.kind = HETRUN_OP_ATTENTION_FORWARD;
    void *fa[6] = {args[0], args[1], args[2], args[3], args[4], args[6]};
    if (hetrun_reference_run(&f, fa) != 0) fail("reference attention forward refused the inputs");
}

/* Runs one descriptor on the device and on the reference; compares every operand.
 * alias[a] >= 0: operand a lives inside operand alias[a], aoff[a] elements in (aoff NULL:
 * at its start). */
static void run_case(const hetrun_op_desc *d, const int *alias, const uint64_t *aoff) {
    char name[256];
    case_name(d, name, sizeof name);
    int arity = hetrun_op_arity(d->kind);
    operand op[HETRUN_OP_MAX_ARGS];
    memset(op, 0, sizeof op);
    for (int a = 0; a < arity; a++) {
        operand *o = &op[a];
        o->alias = alias ? alias[a] : -1;
        o->aoff = aoff ? aoff[a] : 0;
        o->absent = !hetrun_op_arg_present(d, a);
        o->dt = hetrun_op_arg_dtype(d, a);
        o->es = hetrun_dtype_size(o->dt);
        o->elems = hetrun_op_arg_elements(d, a);
    }
    for (int a = 0; a < arity; a++) /* an operand holding others spans them all */
        if (op[a].alias >= 0 && op[a].aoff + op[a].elems > op[op[a].alias].elems)
            op[op[a].alias].elems = op[a].aoff + op[a].elems;
    for (int a = 0; a < arity; a++) {
        operand *o = &op[a];
        if (o->alias >= 0 || o->absent) continue;
        size_t total = (PRE + o->elems + POST) * o->es;
        o->init = malloc(total);
        o->ref = malloc(total);
        o->got = malloc(total);
        for (uint64_t i = 0; i < PRE + o->elems + POST; i++)
            hetrun_store_from_double(o->init, o->dt, i, gen_value(d, a, i));
    }
    void *refp[HETRUN_OP_MAX_ARGS] = {0}, *initp[HETRUN_OP_MAX_ARGS] = {0};
    hetrun_tensor t[HETRUN_OP_MAX_ARGS];
    for (int a = 0; a < arity; a++) {
        operand *o = op[a].alias >= 0 ? &op[op[a].alias] : &op[a];
        uint64_t at = PRE + (op[a].alias >= 0 ? op[a].aoff : 0);
        refp[a] = o->absent ? NULL : o->ref + at * o->es;
        initp[a] = o->absent ? NULL : o->init + at * o->es;
        t[a] = (hetrun_tensor){o->absent ? NULL : o->buf, o->absent ? 0 : at * o->es};
    }
    if (d->kind == HETRUN_OP_ATTENTION_FORWARD || d->kind == HETRUN_OP_ATTENTION_BACKWARD)
        attention_inputs(d, initp);
    for (int a = 0; a < arity; a++) {
        operand *o = &op[a];
        if (o->alias >= 0 || o->absent) continue;
        size_t total = (PRE + o->elems + POST) * o->es;
        memcpy(o->ref, o->init, total);
        CHECK_OK(B->mem_alloc(dev, total, &o->buf));
        CHECK_OK(B->copy_h2d(q, (hetrun_tensor){o->buf, 0}, o->init, total));
        t[a].buffer = o->buf;
    }
    for (int a = 0; a < arity; a++)
        if (op[a].alias >= 0) t[a].buffer = op[op[a].alias].buf;
    /* Scales for the per-element bounds, from the inputs before the op runs. */
    double *scale = NULL;
    int out_arg = arity - 1;
    if (d->kind == HETRUN_OP_GEMM || d->kind == HETRUN_OP_REDUCE_SUM_AXIS0 ||
        d->kind == HETRUN_OP_REDUCE_SUM_AXIS1) {
        scale = calloc(op[out_arg].elems, sizeof *scale);
        if (d->kind == HETRUN_OP_GEMM) {
            int ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
            int64_t lda = d->lda ? d->lda : (ta ? d->m : d->k);
            int64_t ldb = d->ldb ? d->ldb : (tb ? d->k : d->n);
            int64_t ldc = d->ldc ? d->ldc : d->n;
            int64_t batch = d->batch > 1 ? d->batch : 1;
            for (int64_t e = 0; e < batch; e++) {
                int64_t oa = e * hetrun_gemm_batch_stride(d, 0),
                        ob = e * hetrun_gemm_batch_stride(d, 1),
                        oc = e * hetrun_gemm_batch_stride(d, 2);
                for (int64_t i = 0; i < d->m; i++)
                    for (int64_t j = 0; j < d->n; j++) {
                        double s = 0;
                        for (int64_t p = 0; p < d->k; p++)
                            s += fabs(hetrun_load_as_double(refp[0], op[0].dt,
                                                            oa + (ta ? p * lda + i : i * lda + p)) *
                                      hetrun_load_as_double(refp[1], op[1].dt,
                                                            ob + (tb ? j * ldb + p : p * ldb + j)));
                        s = fabs(d->alpha) * s;
                        if (d->beta != 0)
                            s += fabs(d->beta) *
                                 fabs(hetrun_load_as_double(refp[2], op[2].dt, oc + i * ldc + j));
                        scale[oc + i * ldc + j] = s + 1e-30;
                    }
            }
        } else {
            int ax0 = d->kind == HETRUN_OP_REDUCE_SUM_AXIS0;
            for (int64_t i = 0; i < d->m; i++)
                for (int64_t j = 0; j < d->n; j++)
                    scale[ax0 ? j : i] +=
                        fabs(d->alpha * hetrun_load_as_double(refp[0], op[0].dt, i * d->n + j));
            for (uint64_t e = 0; e < op[1].elems; e++)
                scale[e] += fabs(d->beta * hetrun_load_as_double(refp[1], op[1].dt, e)) + 1e-30;
        }
    }
    if (hetrun_reference_run(d, refp) != 0) {
        fail("%s: reference refused the descriptor", name);
        goto out;
    }
    uint64_t ws = 0;
    CHECK_OK(B->op_workspace_size(dev, d, &ws));
    hetrun_buffer *wsb = NULL;
    if (ws) CHECK_OK(B->mem_alloc(dev, ws, &wsb));
    hetrun_status st = B->op_run(q, d, t, arity, (hetrun_tensor){wsb, 0});
    if (st == HETRUN_OK) st = B->queue_sync(q);
    if (st != HETRUN_OK) {
        fail("%s: op_run/queue_sync -> %d: %s", name, (int)st, B->last_error());
        B->mem_free(wsb);
        goto out;
    }
    B->mem_free(wsb);
    for (int a = 0; a < arity; a++) {
        operand *o = &op[a];
        if (o->alias >= 0 || o->absent) continue;
        size_t total = (PRE + o->elems + POST) * o->es;
        CHECK_OK(B->copy_d2h(q, o->got, (hetrun_tensor){o->buf, 0}, total));
        for (uint64_t i = 0; i < PRE + o->elems + POST; i++) {
            if (i >= PRE && i < PRE + o->elems) continue;
            if (memcmp(o->got + i * o->es, o->init + i * o->es, o->es) != 0) {
                fail("%s: operand %d guard element %llu was overwritten", name, a,
                     (unsigned long long)i);
                break;
            }
        }
        double tol = case_tol(d, o->dt), maxref = 0, maxerr = 0, worst = 0;
        uint64_t worst_i = 0;
        for (uint64_t i = 0; i < o->elems; i++)
            maxref = fmax(maxref, fabs(hetrun_load_as_double(o->ref, o->dt, PRE + i)));
        for (uint64_t i = 0; i < o->elems; i++) {
            double r = hetrun_load_as_double(o->ref, o->dt, PRE + i);
            double g = hetrun_load_as_double(o->got, o->dt, PRE + i);
            double err = fabs(g - r);
            if (r == g || (isnan(r) && isnan(g))) err = 0; /* also -inf lse, NaN rows */
            double bound = (scale && a == out_arg) ? tol * scale[i] : tol * fmax(maxref, 1e-30);
            if (scale && a == out_arg && d->kind == HETRUN_OP_GEMM && scale[i] == 0)
                bound = 0; /* padding between C rows: must be untouched */
            double ratio = err / (bound > 0 ? bound : 1e-300);
            if (!(err <= bound) && !(ratio <= worst)) {
                worst = isnan(ratio) ? INFINITY : ratio;
                worst_i = i;
            }
            maxerr = fmax(maxerr, err);
        }
        checks++;
        if (worst > 0)
            fail("%s: operand %d element %llu: got %.9g, want %.9g (error %.3g x the bound, tol "
                 "%.1e)",
                 name, a, (unsigned long long)worst_i,
                 hetrun_load_as_double(o->got, o->dt, PRE + worst_i),
                 hetrun_load_as_double(o->ref, o->dt, PRE + worst_i), worst, tol);
    }
out:
    for (int a = 0; a < arity; a++) {
        if (op[a].alias >= 0 || op[a].absent) continue;
        B->mem_free(op[a].buf);
        free(op[a].init);
        free(op[a].ref);
        free(op[a].got);
    }
    free(scale);
}

static int supported(const hetrun_op_desc *d) {
    hetrun_status st = B->op_supported(dev, d);
    if (st == HETRUN_OK) return 1;
    if (st != HETRUN_ERR_UNSUPPORTED) {
        char name[256];
        fail("%s: op_supported -> %d: %s", case_name(d, name, sizeof name), (int)st,
             B->last_error());
    } else if (!*B->last_error()) {
        fail("op_supported said UNSUPPORTED with no reason");
    }
    return 0;
}

static const hetrun_dtype dtypes[] = {HETRUN_F32, HETRUN_F16, HETRUN_BF16, HETRUN_F64};
#define NDT (int)(sizeof dtypes / sizeof dtypes[0])

static const hetrun_dtype gemm_pairs[][2] = {{HETRUN_F32, HETRUN_F32},  {HETRUN_F16, HETRUN_F16},
                                             {HETRUN_F16, HETRUN_F32},  {HETRUN_BF16, HETRUN_BF16},
                                             {HETRUN_BF16, HETRUN_F32}, {HETRUN_F64, HETRUN_F64},
                                             {HETRUN_I8, HETRUN_I32}};
#define NPAIRS (int)(sizeof gemm_pairs / sizeof gemm_pairs[0])

static void test_gemm(void) {
    static const int64_t shapes[][3] = {
        {1, 1, 1},      {7, 7, 7},    {1, 127, 7},     {127, 1, 1000},  {7, 1000, 127},
        {1000, 7, 127}, {64, 64, 64}, {256, 256, 256}, {127, 127, 127}, {17, 33, 1000}};
    for (int p = 0; p < NPAIRS; p++) {
        hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, gemm_pairs[p][0]);
        d.out_dtype = gemm_pairs[p][1];
        if (!supported(&d)) {
            printf("gemm %s->%s: unsupported: %s\n", hetrun_dtype_name(gemm_pairs[p][0]),
                   hetrun_dtype_name(gemm_pairs[p][1]), B->last_error());
            continue;
        }
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (unsigned fl = 0; fl < 4; fl++) {
                /* Every shape x transpose at fp32; a subset for the narrow types. */
                if (gemm_pairs[p][0] != HETRUN_F32 && (s % 3) != fl % 3) continue;
                d.m = shapes[s][0];
                d.n = shapes[s][1];
                d.k = shapes[s][2];
                d.flags = fl;
                d.lda = d.ldb = d.ldc = 0;
                d.alpha = 1.0;
                d.beta = 0.0;
                if (s % 2) { /* padded leading dims, alpha/beta */
                    d.lda = ((fl & HETRUN_OP_TRANS_A) ? d.m : d.k) + 3;
                    d.ldb = ((fl & HETRUN_OP_TRANS_B) ? d.k : d.n) + 5;
                    d.ldc = d.n + 2;
                    d.alpha = -0.75;
                    d.beta = 0.5;
                    if (gemm_pairs[p][0] == HETRUN_I8) { /* the catalogue's int8 form */
                        d.alpha = 1.0;
                        d.beta = 1.0;
                    }
                }
                run_case(&d, NULL, NULL);
            }
    }
}

static void test_elementwise(void) {
    static const int64_t shapes[][2] = {{1, 1},    {1, 7},      {7, 127}, {1000, 1},
                                        {1, 1000}, {127, 1000}, {64, 64}, {1000, 33}};
    for (int kind = 1; kind < HETRUN_OP_FIRST_V1_1;
         kind++ /* 1.1 ops: shapes come with the op table */) {
        for (int di = 0; di < NDT; di++) {
            hetrun_op_desc d = hetrun_op_desc_init(kind, dtypes[di]);
            if (kind == HETRUN_OP_ADAMW) d.p[5] = 1; /* step >= 1 for a valid descriptor */
            if (kind == HETRUN_OP_CAST) {
                if (dtypes[di] == HETRUN_F32) continue; /* pairs handled below */
                for (int dir = 0; dir < 2; dir++) {
                    d.dtype = dir ? HETRUN_F32 : dtypes[di];
                    d.out_dtype = dir ? dtypes[di] : HETRUN_F32;
                    if (!supported(&d)) {
                        printf("cast %s->%s: unsupported: %s\n", hetrun_dtype_name(d.dtype),
                               hetrun_dtype_name(d.out_dtype), B->last_error());
                        continue;
                    }
                    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                        d.m = shapes[s][0];
                        d.n = shapes[s][1];
                        run_case(&d, NULL, NULL);
                    }
                }
                continue;
            }
            if (!supported(&d)) {
                printf("%s %s: unsupported: %s\n", hetrun_op_name(kind),
                       hetrun_dtype_name(dtypes[di]), B->last_error());
                continue;
            }
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (int variant = 0; variant < 2; variant++) {
                    d.m = shapes[s][0];
                    d.n = shapes[s][1];
                    d.alpha = variant ? -1.25 : 0.5;
                    d.beta = variant ? 0.75 : 0.0;
                    d.act = (uint32_t)variant;
                    memset(d.p, 0, sizeof d.p);
                    if (kind == HETRUN_OP_LAYERNORM) d.p[0] = 1e-5;
                    if (kind == HETRUN_OP_SGD_MOMENTUM) {
                        d.p[0] = 0.1;
                        d.p[1] = 0.9;
                        d.p[2] = variant ? 0.01 : 0.0;
                    }
                    if (kind == HETRUN_OP_ADAMW) {
                        d.p[0] = 1e-3;
                        d.p[1] = 0.9;
                        d.p[2] = 0.999;
                        d.p[3] = 1e-8;
                        d.p[4] = 0.01;
                        d.p[5] = variant ? 1 : 7;
                    }
                    run_case(&d, NULL, NULL);
                }
            /* In-place forms the catalogue allows. */
            if (dtypes[di] == HETRUN_F32) {
                d.m = 7;
                d.n = 127;
                int al[4] = {-1, -1, -1, -1};
                if (kind == HETRUN_OP_SCALE || kind == HETRUN_OP_ACT_FORWARD)
                    al[1] = 0;
                else if (kind == HETRUN_OP_BIAS_ADD || kind == HETRUN_OP_MUL)
                    al[2] = 0;
                else if (kind == HETRUN_OP_ACT_BACKWARD || kind == HETRUN_OP_XENT_BACKWARD)
                    al[2] = kind == HETRUN_OP_ACT_BACKWARD ? 1 : 0;
                else
                    continue;
                run_case(&d, al, NULL);
            }
        }
    }
}

/* ---- ABI 1.1 ---- */

/* Elements of one stored GEMM matrix (0 A, 1 B, 2 C) with its leading dimension. */
static int64_t gemm_span(const hetrun_op_desc *d, int arg) {
    int ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
    if (arg == 0) return (ta ? d->k : d->m) * (d->lda ? d->lda : (ta ? d->m : d->k));
    if (arg == 1) return (tb ? d->n : d->k) * (d->ldb ? d->ldb : (tb ? d->k : d->n));
    return d->m * (d->ldc ? d->ldc : d->n);
}

/* Strided batched GEMM: packed, broadcast A, broadcast B, padded strides with transposes,
 * padded leading dims and alpha/beta; sizes off every register block. */
static void test_batched_gemm(void) {
    static const int64_t shapes[][4] = {
        {7, 13, 5, 3}, {33, 17, 65, 4}, {1, 1, 1, 2}, {70, 9, 31, 5}, {16, 32, 8, 7}};
    for (int p = 0; p < NPAIRS; p++) {
        hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, gemm_pairs[p][0]);
        d.out_dtype = gemm_pairs[p][1];
        d.batch = 2;
        if (!supported(&d)) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int mode = 0; mode < 4; mode++) {
                if (gemm_pairs[p][0] != HETRUN_F32 && (int)(s % 4) != mode) continue;
                d.m = shapes[s][0];
                d.n = shapes[s][1];
                d.k = shapes[s][2];
                d.batch = shapes[s][3];
                d.flags = mode == 3 ? (unsigned)(s % 4) : 0;
                d.lda = d.ldb = d.ldc = 0;
                d.alpha = 1.0;
                d.beta = 0.0;
                if (mode == 3) {
                    d.lda = ((d.flags & HETRUN_OP_TRANS_A) ? d.m : d.k) + 3;
                    d.ldb = ((d.flags & HETRUN_OP_TRANS_B) ? d.k : d.n) + 1;
                    d.ldc = d.n + 2;
                    d.alpha = gemm_pairs[p][0] == HETRUN_I8 ? 1.0 : -0.75;
                    d.beta = gemm_pairs[p][0] == HETRUN_I8 ? 1.0 : 0.5;
                }
                d.stride_a = mode == 1 ? 0 : gemm_span(&d, 0) + (mode == 3 ? 7 : 0);
                d.stride_b = mode == 2 ? 0 : gemm_span(&d, 1) + (mode == 3 ? 3 : 0);
                d.stride_c = mode == 3 ? gemm_span(&d, 2) + 5 : 0;
                run_case(&d, NULL, NULL);
            }
    }
}

/* GEMM with the fused epilogue: every activation, with and without bias and aux. */
static void test_gemm_bias_act(void) {
    static const int64_t shapes[][3] = {{7, 13, 5}, {65, 33, 70}, {1, 17, 3}, {40, 40, 16}};
    for (int p = 0; p < NPAIRS; p++) {
        if (gemm_pairs[p][0] == HETRUN_I8) continue;
        hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM_BIAS_ACT, gemm_pairs[p][0]);
        d.out_dtype = gemm_pairs[p][1];
        if (!supported(&d)) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (unsigned act = 0; act < HETRUN_ACT_COUNT; act++)
                for (unsigned opt = 0; opt < 4; opt++) {
                    if (gemm_pairs[p][0] != HETRUN_F32 && (s + act) % 4 != opt) continue;
                    d.m = shapes[s][0];
                    d.n = shapes[s][1];
                    d.k = shapes[s][2];
                    d.act = act;
                    d.flags = (opt & 1 ? HETRUN_OP_HAS_BIAS : 0) |
                              (opt & 2 ? HETRUN_OP_HAS_AUX : 0) |
                              (unsigned)((s + act) % 4); /* transposes */
                    d.lda = d.ldb = 0;
                    d.ldc = s % 2 ? d.n + 3 : 0;
                    d.alpha = s % 2 ? -0.75 : 1.0;
                    d.beta = s % 2 ? 0.5 : 0.0;
                    run_case(&d, NULL, NULL);
                }
    }
}

/* Attention forward and backward: causal, key-padding mask, both, Lq != Lk (Lq > Lk
 * leaves causal rows with no key), a batch entry with every key masked, fused QKV (Q, K,
 * V inside one [B, L, 3, H, D] buffer, dQ/dK/dV likewise) with a padded O, sizes off the
 * tile sizes. */
static void test_attention(void) {
    enum { CM = HETRUN_OP_CAUSAL | HETRUN_OP_KEY_PADDING_MASK };
    static const struct {
        int64_t b, h, lq, lk, dim;
        unsigned flags;
        int fused, masked;
    } cases[] = {
        {2, 3, 37, 37, 16, CM, 0, -1},
        {1, 2, 1, 50, 64, HETRUN_OP_KEY_PADDING_MASK, 0, -1},
        {2, 2, 70, 45, 32, HETRUN_OP_CAUSAL, 0, -1},
        {3, 1, 65, 130, 8, 0, 0, -1},
        {2, 2, 67, 67, 24, CM, 1, -1},
        {3, 2, 20, 20, 16, HETRUN_OP_KEY_PADDING_MASK, 0, 1},
        {1, 1, 130, 129, 64, HETRUN_OP_CAUSAL, 0, -1},
    };
    const hetrun_dtype dts[] = {HETRUN_F32, HETRUN_F16, HETRUN_BF16};
    for (int di = 0; di < 3; di++)
        for (int bwd = 0; bwd < 2; bwd++) {
            hetrun_op_desc d = hetrun_op_desc_init(
                bwd ? HETRUN_OP_ATTENTION_BACKWARD : HETRUN_OP_ATTENTION_FORWARD, dts[di]);
            if (!supported(&d)) continue;
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                if (dts[di] != HETRUN_F32 && c % 2) continue;
                d.batch = cases[c].b;
                d.heads = cases[c].h;
                d.m = cases[c].lq;
                d.n = cases[c].lk;
                d.k = cases[c].dim;
                d.flags = cases[c].flags;
                d.alpha = 1.0 / sqrt((double)d.k);
                d.lda = d.ldb = d.ldc = 0;
                masked_batch = cases[c].masked;
                int al[HETRUN_OP_MAX_ARGS];
                uint64_t off[HETRUN_OP_MAX_ARGS] = {0};
                for (int a = 0; a < HETRUN_OP_MAX_ARGS; a++)
                    al[a] = -1;
                if (cases[c].fused) {
                    const int64_t hd = d.heads * d.k;
                    d.lda = d.ldb = 3 * hd;
                    d.ldc = hd + 5;
                    al[1] = al[2] = 0;
                    off[1] = (uint64_t)hd;
                    off[2] = 2 * (uint64_t)hd;
                    if (bwd) {
                        al[8] = al[9] = 7;
                        off[8] = (uint64_t)hd;
                        off[9] = 2 * (uint64_t)hd;
                    }
                }
                run_case(&d, cases[c].fused ? al : NULL, cases[c].fused ? off : NULL);
            }
        }
    masked_batch = -1;
}

/* Row, embedding and check ops, the new activations, in-place and accumulating forms. */
static void test_rows_v11(void) {
    static const int64_t shapes[][3] = {{1, 1, 1},       {7, 127, 5},   {37, 19, 5},
                                        {300, 64, 1000}, {1000, 33, 7}, {64, 64, 64}};
    static const int kinds[] = {
        HETRUN_OP_ACT_FORWARD,        HETRUN_OP_ACT_BACKWARD,     HETRUN_OP_LAYERNORM_FORWARD,
        HETRUN_OP_LAYERNORM_BACKWARD, HETRUN_OP_SOFTMAX_BACKWARD, HETRUN_OP_EMBEDDING_FORWARD,
        HETRUN_OP_EMBEDDING_BACKWARD, HETRUN_OP_NONFINITE_COUNT,  HETRUN_OP_SUM_SQUARES};
    for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++)
        for (int di = 0; di < NDT; di++)
            for (int f32out = 0; f32out < 2; f32out++) {
                const int kind = kinds[ki];
                if (f32out && (kind != HETRUN_OP_EMBEDDING_BACKWARD || dtypes[di] == HETRUN_F32))
                    continue;
                hetrun_op_desc d = hetrun_op_desc_init(kind, dtypes[di]);
                if (f32out) d.out_dtype = HETRUN_F32; /* fp32 master gradients */
                if (!supported(&d)) continue;
                for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                    for (int variant = 0; variant < 2; variant++) {
                        d.m = shapes[s][0];
                        d.n = shapes[s][1];
                        d.k = shapes[s][2];
                        d.act = HETRUN_ACT_GELU_ERF + (uint32_t)variant; /* erf, identity */
                        d.alpha = variant ? 0.5 : 1.0;
                        d.beta = variant ? 1.0 : 0.0;
                        memset(d.p, 0, sizeof d.p);
                        d.p[0] = 1e-5;
                        d.p[1] = variant;
                        run_case(&d, NULL, NULL);
                    }
                /* In-place: softmax dX over dY, act backward dX over dY, act forward. */
                int al[3] = {-1, -1, -1};
                d.m = 7;
                d.n = 127;
                d.beta = 0.0;
                if (kind == HETRUN_OP_SOFTMAX_BACKWARD || kind == HETRUN_OP_ACT_BACKWARD)
                    al[2] = 1;
                else if (kind == HETRUN_OP_ACT_FORWARD)
                    al[1] = 0;
                else
                    continue;
                run_case(&d, al, NULL);
            }
}

/* Embedding backward is deterministic: two runs give the same bits (many repeated ids). */
static void test_embedding_determinism(void) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_EMBEDDING_BACKWARD, HETRUN_F32);
    d.m = 4096;
    d.n = 96;
    d.k = 3;
    const size_t ib = (size_t)d.m * 4, db = (size_t)(d.m * d.n) * 4, tb = (size_t)(d.k * d.n) * 4;
    int32_t *ids = malloc(ib);
    float *dout = malloc(db), *r1 = malloc(tb), *r2 = malloc(tb);
    for (int64_t i = 0; i < d.m; i++)
        ids[i] = (int32_t)(urand() * 3);
    for (int64_t i = 0; i < d.m * d.n; i++)
        dout[i] = (float)(urand() * 2e3 - 1e3);
    hetrun_buffer *b[3];
    CHECK_OK(B->mem_alloc(dev, ib, &b[0]));
    CHECK_OK(B->mem_alloc(dev, db, &b[1]));
    CHECK_OK(B->mem_alloc(dev, tb, &b[2]));
    CHECK_OK(B->copy_h2d(q, (hetrun_tensor){b[0], 0}, ids, ib));
    CHECK_OK(B->copy_h2d(q, (hetrun_tensor){b[1], 0}, dout, db));
    hetrun_tensor t[3] = {{b[0], 0}, {b[1], 0}, {b[2], 0}};
    for (int run = 0; run < 2; run++) {
        CHECK_OK(B->op_run(q, &d, t, 3, (hetrun_tensor){0}));
        CHECK_OK(B->copy_d2h(q, run ? r2 : r1, t[2], tb));
    }
    if (memcmp(r1, r2, tb) != 0) fail("embedding_backward: two runs gave different bits");
    checks++;
    for (int i = 0; i < 3; i++)
        B->mem_free(b[i]);
    free(ids);
    free(dout);
    free(r1);
    free(r2);
}

/* Invalid 1.1 descriptors: INVALID with a message naming the field, never a crash. */
static void expect_invalid(const hetrun_op_desc *d, const char *needle, const char *what) {
    hetrun_status st = B->op_supported(dev, d);
    if (st != HETRUN_ERR_INVALID || !strstr(B->last_error(), needle))
        fail("%s: op_supported gave %d '%s', want INVALID naming '%s'", what, (int)st,
             B->last_error(), needle);
    checks++;
}

static void test_errors_v11(void) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
    d.m = d.n = d.k = 8;
    d.batch = 3;
    d.stride_a = 63;
    d.stride_b = 64;
    expect_invalid(&d, "stride_a", "batch stride smaller than a matrix");
    d = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
    d.m = d.n = d.k = (int64_t)1 << 40;
    expect_invalid(&d, "overflows", "GEMM shape overflow");
    d = hetrun_op_desc_init(HETRUN_OP_GEMM_BIAS_ACT, HETRUN_F32);
    d.batch = 2;
    expect_invalid(&d, "batch", "batched GEMM_BIAS_ACT");
    d = hetrun_op_desc_init(HETRUN_OP_ATTENTION_FORWARD, HETRUN_F32);
    d.m = d.n = 16;
    d.k = 8;
    d.heads = 4;
    d.lda = 16;
    expect_invalid(&d, "lda", "attention row stride below heads x head dim");
    d.lda = 0;
    d.flags = 0x100;
    expect_invalid(&d, "flags", "attention with an unknown mask flag");
    d.flags = 0;
    d.dtype = d.out_dtype = HETRUN_F64;
    expect_invalid(&d, "fp64", "attention in fp64");
    d.dtype = HETRUN_F16;
    d.out_dtype = HETRUN_F32;
    expect_invalid(&d, "dtype fp16 / out_dtype fp32", "attention with mismatched dtypes");
    d = hetrun_op_desc_init(HETRUN_OP_EMBEDDING_BACKWARD, HETRUN_F32);
    d.beta = 0.5;
    expect_invalid(&d, "beta", "embedding backward with beta 0.5");
    d = hetrun_op_desc_init(HETRUN_OP_ACT_FORWARD, HETRUN_F32);
    d.act = HETRUN_ACT_COUNT;
    expect_invalid(&d, "activation", "unknown activation");
    /* A flagged optional operand with no buffer. */
    hetrun_buffer *b;
    CHECK_OK(B->mem_alloc(dev, 1 << 16, &b));
    d = hetrun_op_desc_init(HETRUN_OP_ATTENTION_FORWARD, HETRUN_F32);
    d.m = d.n = d.k = 4;
    d.flags = HETRUN_OP_KEY_PADDING_MASK;
    hetrun_tensor t[6] = {{b, 0}, {b, 64}, {b, 128}, {NULL, 0}, {b, 256}, {b, 512}};
    hetrun_status st = B->op_run(q, &d, t, 6, (hetrun_tensor){0});
    if (st != HETRUN_ERR_INVALID || !strstr(B->last_error(), "operand 3"))
        fail("attention mask flag with a NULL mask: got %d '%s', want INVALID naming operand 3",
             (int)st, B->last_error());
    d.flags = 0; /* without the flag the NULL mask is fine */
    CHECK_OK(B->op_run(q, &d, t, 6, (hetrun_tensor){0}));
    CHECK_OK(B->queue_sync(q));
    B->mem_free(b);
    checks++;
}

/* Bad inputs give a status and a message naming the cause, never a crash. */
static void test_errors(void) {
    hetrun_buffer *b;
    CHECK_OK(B->mem_alloc(dev, 64, &b));
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_SCALE, HETRUN_F32);
    d.m = 4;
    d.n = 4; /* 64 bytes per operand */
    hetrun_tensor t[2] = {{b, 0}, {b, 4}};
    hetrun_status st = B->op_run(q, &d, t, 2, (hetrun_tensor){0});
    if (st != HETRUN_ERR_INVALID || !strstr(B->last_error(), "offset"))
        fail("overrunning operand: got %d '%s', want INVALID naming the offset", (int)st,
             B->last_error());
    t[1].offset = 2;
    st = B->op_run(q, &d, t, 2, (hetrun_tensor){0});
    if (st != HETRUN_ERR_INVALID) fail("misaligned offset: got %d, want INVALID", (int)st);
    st = B->op_run(q, &d, t, 1, (hetrun_tensor){0});
    if (st != HETRUN_ERR_INVALID) fail("wrong operand count: got %d, want INVALID", (int)st);
    d.m = 0;
    if (B->op_supported(dev, &d) != HETRUN_ERR_INVALID) fail("m=0 descriptor accepted");
    char big[128];
    st = B->copy_d2h(q, big, (hetrun_tensor){b, 32}, 64);
    if (st != HETRUN_ERR_INVALID) fail("copy_d2h past the end: got %d, want INVALID", (int)st);
    B->mem_free(b);
    checks++;
}

static void test_events(void) {
    hetrun_event *e0, *e1;
    CHECK_OK(B->event_create(dev, &e0));
    CHECK_OK(B->event_create(dev, &e1));
    hetrun_buffer *b;
    CHECK_OK(B->mem_alloc(dev, 1 << 22, &b));
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_FILL, HETRUN_F32);
    d.m = 1024;
    d.n = 1024;
    hetrun_tensor t = {b, 0};
    /* Warm up first: the program is built at first use, on the host, between the events. */
    CHECK_OK(B->op_run(q, &d, &t, 1, (hetrun_tensor){0}));
    CHECK_OK(B->queue_sync(q));
    CHECK_OK(B->event_record(e0, q));
    CHECK_OK(B->op_run(q, &d, &t, 1, (hetrun_tensor){0}));
    CHECK_OK(B->event_record(e1, q));
    double ms = -1;
    CHECK_OK(B->event_elapsed_ms(e0, e1, &ms));
    if (!(ms >= 0 && ms < 10000)) fail("event_elapsed_ms gave %g ms for a 4 MiB fill", ms);
    printf("event_elapsed_ms: fill of 4 MiB took %.3f ms\n", ms);
    uint64_t peak = 0;
    CHECK_OK(B->memory_peak(dev, &peak));
    if (peak < (1u << 22))
        fail("memory_peak %llu below a live 4 MiB buffer", (unsigned long long)peak);
    B->mem_free(b);
    B->event_destroy(e0);
    B->event_destroy(e1);
    checks++;
}

/* Two threads, each with its own queue, race on the first use of the device's program
 * and then run ops concurrently; results must be exact (scale by 2 is exact in fp32). */
static pthread_barrier_t start_line;

static void *worker(void *arg) {
    int *bad = arg;
    hetrun_queue *wq;
    hetrun_buffer *b;
    enum { N = 4099 };
    static _Thread_local float x[N], y[N];
    if (B->queue_create(dev, &wq) != HETRUN_OK || B->mem_alloc(dev, N * 4, &b) != HETRUN_OK) {
        *bad = -1;
        return NULL;
    }
    pthread_barrier_wait(&start_line);
    for (int round = 0; round < 20 && !*bad; round++) {
        for (int i = 0; i < N; i++)
            x[i] = (float)(i % 97) - 48.5f + (float)round;
        hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_SCALE, HETRUN_F32);
        d.m = 1;
        d.n = N;
        d.alpha = 2.0;
        hetrun_tensor t[2] = {{b, 0}, {b, 0}};
        if (B->copy_h2d(wq, t[0], x, sizeof x) || B->op_run(wq, &d, t, 2, (hetrun_tensor){0}) ||
            B->copy_d2h(wq, y, t[0], sizeof y)) {
            *bad = -2;
            break;
        }
        for (int i = 0; i < N; i++)
            if (y[i] != 2.0f * x[i]) {
                *bad = i + 1;
                break;
            }
    }
    B->mem_free(b);
    B->queue_destroy(wq);
    return NULL;
}

static void test_threads(void) {
    pthread_t th[2];
    int bad[2] = {0, 0};
    pthread_barrier_init(&start_line, NULL, 2);
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, worker, &bad[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start_line);
    for (int i = 0; i < 2; i++)
        if (bad[i]) fail("thread %d: concurrent queues gave error/mismatch code %d", i, bad[i]);
    checks++;
}

static int open_all(const char *cache_dir) {
    host.cache_dir = cache_dir;
    hetrun_status st = B->init(&host);
    if (st == HETRUN_ERR_UNAVAILABLE) {
        printf("SKIP: opencl unavailable: %s\n", B->last_error());
        return 77;
    }
    CHECK_OK(st);
    int32_t n = 0;
    CHECK_OK(B->device_count(&n));
    hetrun_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK_OK(B->device_info(0, &info));
    printf("device 0 of %d: %s | %s | %s | %s | %u CUs @ %u MHz | pci '%s' | peak fp32 %.1f "
           "GFLOP/s\n",
           n, info.name, info.vendor, info.driver_version, info.arch, info.compute_units,
           info.clock_mhz, info.pci_bus_id, info.peak_flops[HETRUN_F32] * 1e-9);
    if (!info.name[0] || info.memory_bytes == 0) fail("device_info left name/memory empty");
    CHECK_OK(B->device_open(0, &dev));
    CHECK_OK(B->queue_create(dev, &q));
    return 0;
}

static void close_all(void) {
    B->queue_destroy(q);
    B->device_close(dev);
    B->finalize();
}

/* One small op with a fresh module state; returns 0 when its result is right. */
static void cache_round(const char *dir, const char *expect_log, const char *what) {
    loglen = 0;
    logbuf[0] = 0;
    if (open_all(dir) != 0) exit(1);
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_SCALE, HETRUN_F32);
    d.m = 7;
    d.n = 127;
    d.alpha = 3.0;
    run_case(&d, NULL, NULL);
    close_all();
    if (!strstr(logbuf, expect_log))
        fail("program cache, %s: expected a log line containing '%s'; log was:\n%s", what,
             expect_log, logbuf);
    checks++;
}

static int find_entry(const char *dir, char *path, size_t len) {
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/opencl", dir);
    DIR *dp = opendir(sub);
    if (!dp) return -1;
    struct dirent *e;
    int found = -1;
    while ((e = readdir(dp)))
        if (strstr(e->d_name, ".clbin") && !strstr(e->d_name, ".tmp")) {
            snprintf(path, len, "%s/%s", sub, e->d_name);
            found = 0;
        }
    closedir(dp);
    return found;
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Changes one character of the key stored in a cache entry and re-seals its checksum
 * (layout: magic[8], u32 version, u32 key_len, u64 bin_len, u64 checksum, key, binary). */
static int restamp_key(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    uint32_t klen;
    uint64_t blen;
    memcpy(&klen, buf + 12, 4);
    memcpy(&blen, buf + 16, 8);
    if (got != (size_t)size || 32 + klen + blen != (uint64_t)size || klen < 8) {
        free(buf);
        return -1;
    }
    buf[32 + 7] ^= 0x20; /* first character of the device name after "device=" */
    uint64_t sum = fnv1a(fnv1a(0xcbf29ce484222325ull, buf + 32, klen), buf + 32 + klen, blen);
    memcpy(buf + 24, &sum, 8);
    f = fopen(path, "wb");
    int rc = f && fwrite(buf, 1, (size_t)size, f) == (size_t)size ? 0 : -1;
    if (f) fclose(f);
    free(buf);
    return rc;
}

/* A corrupt, truncated or stale cache entry must be rejected and rebuilt, never trusted. */
static void test_cache(void) {
    char dir[] = "/tmp/hetrun-ocl-cache-XXXXXX";
    if (!mkdtemp(dir)) {
        fail("mkdtemp failed");
        return;
    }
    cache_round(dir, "cache miss", "cold");
    char path[8192];
    if (find_entry(dir, path, sizeof path) != 0) {
        fail("program cache: no entry written under %s/opencl", dir);
        return;
    }
    cache_round(dir, "cache hit", "warm");
    /* Flip bytes in the middle of the binary (checksum must catch it). */
    FILE *f = fopen(path, "r+b");
    struct stat sb;
    stat(path, &sb);
    fseek(f, sb.st_size / 2, SEEK_SET);
    unsigned char junk[16];
    for (int i = 0; i < 16; i++)
        junk[i] = (unsigned char)(urand() * 256);
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    cache_round(dir, "rejected", "corrupted");
    cache_round(dir, "cache hit", "after rebuilding a corrupted entry");
    if (truncate(path, sb.st_size / 3) != 0) fail("truncate failed");
    cache_round(dir, "rejected", "truncated");
    cache_round(dir, "cache hit", "after rebuilding a truncated entry");
    /* A well-formed entry for another key (what a hash collision or a hand-copied file
     * looks like): valid checksum, different device name in the key. */
    if (restamp_key(path) != 0) fail("program cache: could not rewrite the key of %s", path);
    cache_round(dir, "stale", "other key");
    cache_round(dir, "cache hit", "after rebuilding a stale entry");
    /* No cache dir: works, writes nothing. */
    host.cache_dir = NULL;
    if (open_all(NULL) != 0) exit(1);
    close_all();
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fail("cleanup of %s failed", dir);
}

/* Whether `name` is one of the comma-separated names in `list`. */
static int listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <libhetrun_backend_opencl.so> [--cache-only]\n", argv[0]);
        return 2;
    }
    int cache_only = argc > 2 && strcmp(argv[2], "--cache-only") == 0;
    /* --only=<group>[,<group>...]: some groups (names in main's table); ctest splits the
     * suite this way so each part has its own timeout. */
    const char *only = argc > 2 && strncmp(argv[2], "--only=", 7) == 0 ? argv[2] + 7 : NULL;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "FAIL: dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    hetrun_backend_entry_fn entry = (hetrun_backend_entry_fn)dlsym(h, HETRUN_BACKEND_ENTRY_SYMBOL);
    if (!entry) {
        fprintf(stderr, "FAIL: %s has no %s\n", argv[1], HETRUN_BACKEND_ENTRY_SYMBOL);
        return 1;
    }
    B = entry();
    if (B->abi_major != HETRUN_ABI_MAJOR || B->struct_size < HETRUN_OPS_SIZE_V1_0) {
        fprintf(stderr, "FAIL: ABI %u.%u size %u\n", B->abi_major, B->abi_minor, B->struct_size);
        return 1;
    }
    if (cache_only) {
        /* Probe availability first so a machine without OpenCL skips. */
        host.cache_dir = NULL;
        int rc = open_all(NULL);
        if (rc) return rc;
        close_all();
        test_cache();
    } else {
        int rc = open_all(NULL);
        if (rc) return rc;
        static const struct {
            const char *name;
            void (*fn)(void);
        } tests[] = {{"threads", test_threads}, /* first: threads race on building the program */
                     {"errors", test_errors},
                     {"events", test_events},
                     {"elementwise", test_elementwise},
                     {"gemm", test_gemm},
                     {"errors_v11", test_errors_v11},
                     {"batched_gemm", test_batched_gemm},
                     {"gemm_bias_act", test_gemm_bias_act},
                     {"rows_v11", test_rows_v11},
                     {"embedding_determinism", test_embedding_determinism},
                     {"attention", test_attention}};
        for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
            if (!only || listed(only, tests[i].name)) tests[i].fn();
        close_all();
    }
    printf("%s: %d checks, %d failures\n", failures ? "FAIL" : "PASS", checks, failures);
    return failures ? 1 : 0;
}
