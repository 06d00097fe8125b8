/* The op catalogue: one table of facts per op kind (see catalogue.h). */
#include "catalogue.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct op_entry {
    const char *name;
    int arity;
} op_entry;

static const op_entry ops[HETRUN_OP_KIND_COUNT] = {
    [HETRUN_OP_GEMM] = {"gemm", 3},
    [HETRUN_OP_BIAS_ADD] = {"bias_add", 3},
    [HETRUN_OP_ACT_FORWARD] = {"act_forward", 2},
    [HETRUN_OP_ACT_BACKWARD] = {"act_backward", 3},
    [HETRUN_OP_SOFTMAX] = {"softmax", 2},
    [HETRUN_OP_XENT_FORWARD] = {"xent_forward", 4},
    [HETRUN_OP_XENT_BACKWARD] = {"xent_backward", 3},
    [HETRUN_OP_LAYERNORM] = {"layernorm", 4},
    [HETRUN_OP_REDUCE_SUM_AXIS0] = {"reduce_sum_axis0", 2},
    [HETRUN_OP_REDUCE_SUM_AXIS1] = {"reduce_sum_axis1", 2},
    [HETRUN_OP_SCALE] = {"scale", 2},
    [HETRUN_OP_AXPY] = {"axpy", 2},
    [HETRUN_OP_MUL] = {"mul", 3},
    [HETRUN_OP_FILL] = {"fill", 1},
    [HETRUN_OP_SGD_MOMENTUM] = {"sgd_momentum", 3},
    [HETRUN_OP_ADAMW] = {"adamw", 4},
    [HETRUN_OP_CAST] = {"cast", 2},
    [HETRUN_OP_GEMM_BIAS_ACT] = {"gemm_bias_act", 5},
    [HETRUN_OP_ATTENTION_FORWARD] = {"attention_forward", 6},
    [HETRUN_OP_ATTENTION_BACKWARD] = {"attention_backward", 10},
    [HETRUN_OP_LAYERNORM_FORWARD] = {"layernorm_forward", 6},
    [HETRUN_OP_LAYERNORM_BACKWARD] = {"layernorm_backward", 8},
    [HETRUN_OP_SOFTMAX_BACKWARD] = {"softmax_backward", 3},
    [HETRUN_OP_EMBEDDING_FORWARD] = {"embedding_forward", 3},
    [HETRUN_OP_EMBEDDING_BACKWARD] = {"embedding_backward", 3},
    [HETRUN_OP_NONFINITE_COUNT] = {"nonfinite_count", 2},
    [HETRUN_OP_SUM_SQUARES] = {"sum_squares", 2},
};

static const char *const dtype_names[HETRUN_DTYPE_COUNT] = {"fp32", "fp64", "fp16",
                                                            "bf16", "int8", "int32"};
static const size_t dtype_sizes[HETRUN_DTYPE_COUNT] = {4, 8, 2, 2, 1, 4};
static const char *const act_names[HETRUN_ACT_COUNT] = {"relu", "gelu", "gelu_erf", "identity"};

const char *hetrun_op_name(hetrun_op_kind kind) {
    return (unsigned)kind < HETRUN_OP_KIND_COUNT ? ops[kind].name : NULL;
}

int hetrun_op_from_name(const char *name) {
    for (int i = 0; i < HETRUN_OP_KIND_COUNT; i++)
        if (name && strcmp(name, ops[i].name) == 0) return i;
    return -1;
}

const char *hetrun_dtype_name(hetrun_dtype dtype) {
    return (unsigned)dtype < HETRUN_DTYPE_COUNT ? dtype_names[dtype] : NULL;
}

int hetrun_dtype_from_name(const char *name) {
    static const struct {
        const char *alias;
        hetrun_dtype dtype;
    } aliases[] = {{"f32", HETRUN_F32},     {"float32", HETRUN_F32},   {"f64", HETRUN_F64},
                   {"float64", HETRUN_F64}, {"f16", HETRUN_F16},       {"float16", HETRUN_F16},
                   {"half", HETRUN_F16},    {"bfloat16", HETRUN_BF16}, {"i8", HETRUN_I8},
                   {"i32", HETRUN_I32}};
    if (!name) return -1;
    for (int i = 0; i < HETRUN_DTYPE_COUNT; i++)
        if (strcasecmp(name, dtype_names[i]) == 0) return i;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(name, aliases[i].alias) == 0) return (int)aliases[i].dtype;
    return -1;
}

size_t hetrun_dtype_size(hetrun_dtype dtype) {
    return (unsigned)dtype < HETRUN_DTYPE_COUNT ? dtype_sizes[dtype] : 0;
}

double hetrun_dtype_unit_roundoff(hetrun_dtype dtype) {
    switch (dtype) {
    case HETRUN_F32: return 0x1.0p-24;
    case HETRUN_F64: return 0x1.0p-53;
    case HETRUN_F16: return 0x1.0p-11;
    case HETRUN_BF16: return 0x1.0p-8;
    default: return 0.0;
    }
}

const char *hetrun_activation_name(hetrun_activation act) {
    return (unsigned)act < HETRUN_ACT_COUNT ? act_names[act] : NULL;
}

int hetrun_activation_from_name(const char *name) {
    for (int i = 0; i < HETRUN_ACT_COUNT; i++)
        if (name && strcmp(name, act_names[i]) == 0) return i;
    return -1;
}

hetrun_op_desc hetrun_op_desc_init(hetrun_op_kind kind, hetrun_dtype dtype) {
    hetrun_op_desc d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.kind = kind;
    d.dtype = dtype;
    d.out_dtype = dtype;
    d.alpha = 1.0;
    d.m = d.n = d.k = 1;
    return d;
}

/* Stored rows x cols of GEMM operand `arg` (0 = A, 1 = B, 2 = C) and its row stride. */
static void gemm_shape(const hetrun_op_desc *d, int arg, int64_t *rows, int64_t *cols,
                       int64_t *ld) {
    int64_t r, c, l;
    if (arg == 0) {
        r = (d->flags & HETRUN_OP_TRANS_A) ? d->k : d->m;
        c = (d->flags & HETRUN_OP_TRANS_A) ? d->m : d->k;
        l = d->lda;
    } else if (arg == 1) {
        r = (d->flags & HETRUN_OP_TRANS_B) ? d->n : d->k;
        c = (d->flags & HETRUN_OP_TRANS_B) ? d->k : d->n;
        l = d->ldb;
    } else {
        r = d->m;
        c = d->n;
        l = d->ldc;
    }
    *rows = r;
    *cols = c;
    *ld = l ? l : c;
}

static int64_t batch_count(const hetrun_op_desc *d) {
    return d->batch > 1 ? d->batch : 1;
}

/* Elements one GEMM matrix spans, including leading-dimension padding. */
static uint64_t gemm_matrix_span(const hetrun_op_desc *d, int arg) {
    int64_t rows, cols, ld;
    gemm_shape(d, arg, &rows, &cols, &ld);
    return rows > 0 ? (uint64_t)((rows - 1) * ld + cols) : 0;
}

int64_t hetrun_gemm_batch_stride(const hetrun_op_desc *d, int arg) {
    int64_t s = arg == 0 ? d->stride_a : arg == 1 ? d->stride_b : d->stride_c;
    if (s || arg != 2) return s;
    int64_t rows, cols, ld;
    gemm_shape(d, 2, &rows, &cols, &ld);
    return rows * ld; /* C: 0 means packed */
}

/* Attention operand geometry: tokens per batch entry, token stride, batch stride. */
static void attn_geometry(const hetrun_op_desc *d, char which, int64_t *tokens, int64_t *ld,
                          int64_t *bstride) {
    const int64_t width = (d->heads > 1 ? d->heads : 1) * d->k;
    int64_t l = which == 'q' ? d->lda : which == 'k' ? d->ldb : d->ldc;
    int64_t s = which == 'q' ? d->stride_a : which == 'k' ? d->stride_b : d->stride_c;
    *tokens = which == 'k' ? d->n : d->m;
    *ld = l ? l : width;
    *bstride = s ? s : *tokens * *ld;
}

void hetrun_attention_geometry(const hetrun_op_desc *d, char which, int64_t *ld, int64_t *bstride) {
    int64_t tokens;
    attn_geometry(d, which, &tokens, ld, bstride);
}

static uint64_t attn_span(const hetrun_op_desc *d, char which) {
    int64_t tokens, ld, bs;
    attn_geometry(d, which, &tokens, &ld, &bs);
    const int64_t width = (d->heads > 1 ? d->heads : 1) * d->k;
    return (uint64_t)((batch_count(d) - 1) * bs + (tokens - 1) * ld + width);
}

/* Which attention operand (q, k or o geometry) argument `arg` is; 0 for mask/lse. */
static char attn_role(const hetrun_op_desc *d, int arg) {
    static const char fwd[6] = {'q', 'k', 'k', 0, 'o', 0};
    static const char bwd[10] = {'q', 'k', 'k', 0, 'o', 'o', 0, 'q', 'k', 'k'};
    if (d->kind == HETRUN_OP_ATTENTION_FORWARD) return arg < 6 ? fwd[arg] : 0;
    return arg < 10 ? bwd[arg] : 0;
}

bool hetrun_op_arg_present(const hetrun_op_desc *d, int arg) {
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_GEMM_BIAS_ACT:
        if (arg == 2) return (d->flags & HETRUN_OP_HAS_BIAS) != 0;
        if (arg == 4) return (d->flags & HETRUN_OP_HAS_AUX) != 0;
        return true;
    case HETRUN_OP_ATTENTION_FORWARD:
    case HETRUN_OP_ATTENTION_BACKWARD:
        return arg != 3 || (d->flags & HETRUN_OP_KEY_PADDING_MASK) != 0;
    default: return true;
    }
}

uint64_t hetrun_op_arg_elements(const hetrun_op_desc *d, int arg) {
    uint64_t mn = (uint64_t)d->m * (uint64_t)d->n;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_GEMM: {
        uint64_t one = gemm_matrix_span(d, arg);
        int64_t stride = hetrun_gemm_batch_stride(d, arg);
        return stride ? (uint64_t)(batch_count(d) - 1) * (uint64_t)stride + one : one;
    }
    case HETRUN_OP_GEMM_BIAS_ACT:
        if (arg == 2) return (uint64_t)d->n;
        if (arg == 3) return gemm_matrix_span(d, 2);
        if (arg == 4) return mn;
        return gemm_matrix_span(d, arg);
    case HETRUN_OP_ATTENTION_FORWARD:
    case HETRUN_OP_ATTENTION_BACKWARD: {
        const uint64_t b = (uint64_t)batch_count(d), h = (uint64_t)(d->heads > 1 ? d->heads : 1);
        char role = attn_role(d, arg);
        if (role) return attn_span(d, role);
        return arg == 3 ? b * (uint64_t)d->n : b * h * (uint64_t)d->m; /* mask, lse */
    }
    case HETRUN_OP_LAYERNORM_FORWARD:
        return (arg == 1 || arg == 2) ? (uint64_t)d->n : (arg >= 4 ? (uint64_t)d->m : mn);
    case HETRUN_OP_LAYERNORM_BACKWARD:
        if (arg == 1 || arg >= 6) return (uint64_t)d->n;
        return (arg == 2 || arg == 3) ? (uint64_t)d->m : mn;
    case HETRUN_OP_EMBEDDING_FORWARD:
    case HETRUN_OP_EMBEDDING_BACKWARD:
        if (arg == 0) return (uint64_t)d->m; /* ids */
        /* the table is operand 1 forward (table) and operand 2 backward (dtable) */
        if (arg == (d->kind == HETRUN_OP_EMBEDDING_FORWARD ? 1 : 2))
            return (uint64_t)d->k * (uint64_t)d->n;
        return mn;
    case HETRUN_OP_NONFINITE_COUNT:
    case HETRUN_OP_SUM_SQUARES: return arg == 1 ? 1 : mn;
    case HETRUN_OP_BIAS_ADD: return arg == 1 ? (uint64_t)d->n : mn;
    case HETRUN_OP_XENT_FORWARD: return (arg == 1 || arg == 3) ? (uint64_t)d->m : mn;
    case HETRUN_OP_XENT_BACKWARD: return arg == 1 ? (uint64_t)d->m : mn;
    case HETRUN_OP_LAYERNORM: return (arg == 1 || arg == 2) ? (uint64_t)d->n : mn;
    case HETRUN_OP_REDUCE_SUM_AXIS0: return arg == 1 ? (uint64_t)d->n : mn;
    case HETRUN_OP_REDUCE_SUM_AXIS1: return arg == 1 ? (uint64_t)d->m : mn;
    default: return mn;
    }
}

hetrun_dtype hetrun_op_arg_dtype(const hetrun_op_desc *d, int arg) {
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_GEMM:
    case HETRUN_OP_CAST:
        return arg == hetrun_op_arity(d->kind) - 1 ? (hetrun_dtype)d->out_dtype
                                                   : (hetrun_dtype)d->dtype;
    case HETRUN_OP_XENT_FORWARD:
    case HETRUN_OP_XENT_BACKWARD: return arg == 1 ? HETRUN_I32 : (hetrun_dtype)d->dtype;
    case HETRUN_OP_GEMM_BIAS_ACT:
        return arg >= 2 ? (hetrun_dtype)d->out_dtype : (hetrun_dtype)d->dtype;
    case HETRUN_OP_ATTENTION_FORWARD:
    case HETRUN_OP_ATTENTION_BACKWARD:
        if (arg == 3) return HETRUN_I32;
        if ((d->kind == HETRUN_OP_ATTENTION_FORWARD && arg == 5) ||
            (d->kind == HETRUN_OP_ATTENTION_BACKWARD && arg == 6))
            return HETRUN_F32;
        return (hetrun_dtype)d->dtype;
    case HETRUN_OP_LAYERNORM_FORWARD: return arg >= 4 ? HETRUN_F32 : (hetrun_dtype)d->dtype;
    case HETRUN_OP_LAYERNORM_BACKWARD:
        return (arg == 2 || arg == 3) ? HETRUN_F32 : (hetrun_dtype)d->dtype;
    case HETRUN_OP_EMBEDDING_FORWARD: return arg == 0 ? HETRUN_I32 : (hetrun_dtype)d->dtype;
    case HETRUN_OP_EMBEDDING_BACKWARD:
        return arg == 0   ? HETRUN_I32
               : arg == 2 ? (hetrun_dtype)d->out_dtype
                          : (hetrun_dtype)d->dtype;
    case HETRUN_OP_NONFINITE_COUNT: return arg == 1 ? HETRUN_I32 : (hetrun_dtype)d->dtype;
    case HETRUN_OP_SUM_SQUARES: return arg == 1 ? HETRUN_F32 : (hetrun_dtype)d->dtype;
    default: return (hetrun_dtype)d->dtype;
    }
}

uint64_t hetrun_op_arg_bytes(const hetrun_op_desc *d, int arg) {
    return hetrun_op_arg_elements(d, arg) * hetrun_dtype_size(hetrun_op_arg_dtype(d, arg));
}

/* Per-element FLOPs of an activation and of its derivative-times-gradient. */
static double act_flops(uint32_t act, bool backward) {
    switch (act) {
    case HETRUN_ACT_RELU: return backward ? 2.0 : 1.0;
    case HETRUN_ACT_GELU: return backward ? 16.0 : 9.0;    /* tanh form */
    case HETRUN_ACT_GELU_ERF: return backward ? 9.0 : 5.0; /* erf, exp */
    default: return backward ? 1.0 : 0.0;                  /* identity */
    }
}

double hetrun_attention_kept_pairs(const hetrun_op_desc *d) {
    const double lq = (double)d->m, lk = (double)d->n;
    if (!(d->flags & HETRUN_OP_CAUSAL)) return lq * lk;
    double pairs = 0.0; /* query i keeps min(Lk, max(0, i + Lk - Lq + 1)) keys */
    for (int64_t i = 0; i < d->m; i++) {
        double kept = (double)(i + d->n - d->m + 1);
        pairs += kept < 0.0 ? 0.0 : kept > lk ? lk : kept;
    }
    return pairs;
}

double hetrun_op_flops(const hetrun_op_desc *d) {
    double m = (double)d->m, n = (double)d->n, k = (double)d->k, mn = m * n;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_GEMM:
        return (double)batch_count(d) * (2.0 * m * n * k + (d->beta != 0.0 ? 2.0 * mn : 0.0));
    case HETRUN_OP_GEMM_BIAS_ACT:
        return 2.0 * m * n * k + (d->beta != 0.0 ? 2.0 * mn : 0.0) +
               ((d->flags & HETRUN_OP_HAS_BIAS) ? mn : 0.0) + mn * act_flops(d->act, false);
    case HETRUN_OP_ATTENTION_FORWARD:
    case HETRUN_OP_ATTENTION_BACKWARD: {
        /* Per kept (query, key) pair: forward Q.K and P.V (2 x 2D) plus the softmax (5);
         * backward the four products dP, dV, dQ, dK (4 x 2D) plus dS (3). Recomputing the
         * scores in backward is an implementation choice and is not counted. */
        double per = d->kind == HETRUN_OP_ATTENTION_FORWARD ? 4.0 * k + 5.0 : 8.0 * k + 3.0;
        double bh = (double)batch_count(d) * (double)(d->heads > 1 ? d->heads : 1);
        return bh * hetrun_attention_kept_pairs(d) * per;
    }
    case HETRUN_OP_LAYERNORM_FORWARD: return mn * 7.0;
    case HETRUN_OP_LAYERNORM_BACKWARD: return mn * 14.0;
    case HETRUN_OP_SOFTMAX_BACKWARD: return mn * 4.0;
    case HETRUN_OP_EMBEDDING_FORWARD:
    case HETRUN_OP_EMBEDDING_BACKWARD:
    case HETRUN_OP_NONFINITE_COUNT: return mn;
    case HETRUN_OP_SUM_SQUARES: return 2.0 * mn;
    case HETRUN_OP_BIAS_ADD:
    case HETRUN_OP_SCALE:
    case HETRUN_OP_MUL: return mn;
    case HETRUN_OP_ACT_FORWARD: return mn * act_flops(d->act, false);
    case HETRUN_OP_ACT_BACKWARD: return mn * act_flops(d->act, true);
    case HETRUN_OP_SOFTMAX: /* max, sub+exp+sum, div */ return mn * 5.0;
    case HETRUN_OP_XENT_FORWARD: return mn * 5.0 + 2.0 * m;
    case HETRUN_OP_XENT_BACKWARD: return mn * 2.0;
    case HETRUN_OP_LAYERNORM: /* mean, var (2), normalise (2), affine (2) */ return mn * 7.0;
    case HETRUN_OP_REDUCE_SUM_AXIS0:
    case HETRUN_OP_REDUCE_SUM_AXIS1:
        return mn + (d->kind == HETRUN_OP_REDUCE_SUM_AXIS0 ? 2.0 * n : 2.0 * m);
    case HETRUN_OP_AXPY: return 2.0 * mn;
    case HETRUN_OP_SGD_MOMENTUM: return 6.0 * mn;
    case HETRUN_OP_ADAMW: return 16.0 * mn;
    case HETRUN_OP_FILL:
    case HETRUN_OP_CAST:
    default: return 0.0;
    }
}

double hetrun_op_bytes(const hetrun_op_desc *d) {
    const int kind = (int)d->kind;
    double total = 0.0;
    for (int a = 0; a < hetrun_op_arity(kind); a++) {
        if (!hetrun_op_arg_present(d, a)) continue;
        double b = (double)hetrun_op_arg_bytes(d, a);
        bool last = a == hetrun_op_arity(kind) - 1;
        bool read_write = false; /* outputs that are also read */
        switch (kind) {
        case HETRUN_OP_GEMM: read_write = last && d->beta != 0.0; break;
        case HETRUN_OP_REDUCE_SUM_AXIS0:
        case HETRUN_OP_REDUCE_SUM_AXIS1: read_write = last && d->beta != 0.0; break;
        case HETRUN_OP_AXPY: read_write = last; break;
        case HETRUN_OP_SGD_MOMENTUM: read_write = a != 1; break;
        case HETRUN_OP_ADAMW: read_write = a != 1; break;
        case HETRUN_OP_GEMM_BIAS_ACT: read_write = a == 3 && d->beta != 0.0; break;
        case HETRUN_OP_LAYERNORM_BACKWARD:
            read_write = (a == 5 && d->beta != 0.0) || (a >= 6 && d->p[1] != 0.0);
            break;
        case HETRUN_OP_EMBEDDING_FORWARD:
        case HETRUN_OP_EMBEDDING_BACKWARD:
        case HETRUN_OP_NONFINITE_COUNT:
        case HETRUN_OP_SUM_SQUARES: read_write = last && d->beta != 0.0; break;
        default: break;
        }
        total += read_write ? 2.0 * b : b;
    }
    return total;
}

static bool fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *why, size_t len, const char *fmt, ...) {
    if (why && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool is_float(uint32_t t) {
    return t == HETRUN_F32 || t == HETRUN_F64 || t == HETRUN_F16 || t == HETRUN_BF16;
}

static bool gemm_pair_ok(uint32_t in, uint32_t out) {
    return (in == out && is_float(in)) ||
           ((in == HETRUN_F16 || in == HETRUN_BF16) && out == HETRUN_F32) ||
           (in == HETRUN_I8 && out == HETRUN_I32);
}

static bool dtype_pair_ok(const hetrun_op_desc *d) {
    hetrun_dtype in = (hetrun_dtype)d->dtype, out = (hetrun_dtype)d->out_dtype;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_GEMM: return gemm_pair_ok(in, out);
    case HETRUN_OP_GEMM_BIAS_ACT: return in != HETRUN_I8 && gemm_pair_ok(in, out);
    case HETRUN_OP_CAST:
        return (in == HETRUN_F32 &&
                (out == HETRUN_F16 || out == HETRUN_BF16 || out == HETRUN_F64)) ||
               (out == HETRUN_F32 && (in == HETRUN_F16 || in == HETRUN_BF16 || in == HETRUN_F64));
    case HETRUN_OP_ATTENTION_FORWARD:
    case HETRUN_OP_ATTENTION_BACKWARD:
        return in == out && (in == HETRUN_F32 || in == HETRUN_F16 || in == HETRUN_BF16);
    case HETRUN_OP_EMBEDDING_BACKWARD: return is_float(in) && (out == in || out == HETRUN_F32);
    default: return in == out && is_float(in);
    }
}

/* a * b <= limit without overflow, for shape products (elements must fit an int64). */
static bool product_ok(int64_t a, int64_t b, int64_t limit) {
    return a <= 0 || b <= limit / a;
}

/* Largest element count any operand may span: 2^48 (256 TiB of bytes) keeps every
 * offset computation in int64 and rejects absurd shapes before any allocation. */
#define MAX_SPAN ((int64_t)1 << 48)

static bool gemm_valid(const hetrun_op_desc *d, char *why, size_t len, bool batched) {
    static const char *const names[3] = {"A", "B", "C"};
    if (d->k < 1) return fail(why, len, "k must be >= 1, got %lld", (long long)d->k);
    if (!product_ok(d->m, d->n, MAX_SPAN) || !product_ok(d->m, d->k, MAX_SPAN) ||
        !product_ok(d->k, d->n, MAX_SPAN))
        return fail(why, len, "shape m=%lld n=%lld k=%lld overflows", (long long)d->m,
                    (long long)d->n, (long long)d->k);
    for (int a = 0; a < 3; a++) {
        int64_t rows, cols, ld;
        gemm_shape(d, a, &rows, &cols, &ld);
        if (ld < cols)
            return fail(why, len, "ld%c %lld is smaller than the row length %lld of %s", "abc"[a],
                        (long long)ld, (long long)cols, names[a]);
        if (!product_ok(rows, ld, MAX_SPAN))
            return fail(why, len, "%s spans more than 2^48 elements (rows %lld x ld %lld)",
                        names[a], (long long)rows, (long long)ld);
    }
    if (!batched) return true;
    if (d->batch < 0) return fail(why, len, "batch must be >= 0, got %lld", (long long)d->batch);
    for (int a = 0; a < 3 && d->batch > 1; a++) {
        int64_t stride = a == 0 ? d->stride_a : a == 1 ? d->stride_b : d->stride_c;
        int64_t span = (int64_t)gemm_matrix_span(d, a);
        if (stride < 0 || (stride != 0 && stride < span))
            return fail(why, len,
                        "stride_%c %lld is smaller than one %s matrix (%lld elements): batch "
                        "entries would overlap",
                        "abc"[a], (long long)stride, names[a], (long long)span);
        if (!product_ok(d->batch, stride ? stride : span, MAX_SPAN))
            return fail(why, len, "batch %lld x stride_%c %lld overflows", (long long)d->batch,
                        "abc"[a], (long long)stride);
    }
    return true;
}

static bool attention_valid(const hetrun_op_desc *d, char *why, size_t len) {
    const uint32_t known = HETRUN_OP_CAUSAL | HETRUN_OP_KEY_PADDING_MASK;
    if (d->flags & ~known)
        return fail(why, len, "flags 0x%x are not attention flags (causal 0x%x, mask 0x%x)",
                    d->flags & ~known, HETRUN_OP_CAUSAL, HETRUN_OP_KEY_PADDING_MASK);
    if (d->k < 1) return fail(why, len, "k (head dim) must be >= 1, got %lld", (long long)d->k);
    if (d->heads < 0 || d->batch < 0)
        return fail(why, len, "heads %lld and batch %lld must be >= 0", (long long)d->heads,
                    (long long)d->batch);
    if (!isfinite(d->alpha)) return fail(why, len, "alpha (softmax scale) must be finite");
    const int64_t h = d->heads > 1 ? d->heads : 1, b = batch_count(d);
    if (!product_ok(h, d->k, MAX_SPAN) || !product_ok(d->m, d->n, MAX_SPAN) ||
        !product_ok(b, h * d->m, MAX_SPAN))
        return fail(why, len, "shape batch=%lld heads=%lld m=%lld n=%lld k=%lld overflows",
                    (long long)b, (long long)h, (long long)d->m, (long long)d->n, (long long)d->k);
    static const char roles[3] = {'q', 'k', 'o'};
    static const char *const field[3][2] = {
        {"lda", "stride_a"}, {"ldb", "stride_b"}, {"ldc", "stride_c"}};
    for (int r = 0; r < 3; r++) {
        int64_t tokens, ld, bs;
        attn_geometry(d, roles[r], &tokens, &ld, &bs);
        if (ld < h * d->k)
            return fail(why, len, "%s %lld is smaller than heads x head dim (%lld)", field[r][0],
                        (long long)ld, (long long)(h * d->k));
        if (!product_ok(tokens, ld, MAX_SPAN))
            return fail(why, len, "%s %lld x %lld tokens overflows", field[r][0], (long long)ld,
                        (long long)tokens);
        int64_t one = (tokens - 1) * ld + h * d->k;
        if (b > 1 && bs < one)
            return fail(why, len,
                        "%s %lld is smaller than one batch entry (%lld elements): entries "
                        "would overlap",
                        field[r][1], (long long)bs, (long long)one);
        if (!product_ok(b, bs, MAX_SPAN))
            return fail(why, len, "batch %lld x %s %lld overflows", (long long)b, field[r][1],
                        (long long)bs);
    }
    return true;
}

bool hetrun_op_desc_valid(const hetrun_op_desc *d, char *why, size_t len) {
    if (!d) return fail(why, len, "descriptor is NULL");
    if (d->struct_size < HETRUN_OP_DESC_SIZE_V1_0)
        return fail(why, len, "descriptor struct_size %u is smaller than ABI 1.0's %zu",
                    d->struct_size, (size_t)HETRUN_OP_DESC_SIZE_V1_0);
    if (d->kind >= HETRUN_OP_KIND_COUNT) return fail(why, len, "unknown op kind %u", d->kind);
    const char *op = ops[d->kind].name;
    if (d->kind >= HETRUN_OP_FIRST_V1_1 && d->struct_size < HETRUN_OP_DESC_SIZE_V1_1)
        return fail(why, len, "%s: descriptor struct_size %u predates ABI 1.1 (needs %zu)", op,
                    d->struct_size, (size_t)HETRUN_OP_DESC_SIZE_V1_1);
    if (d->dtype >= HETRUN_DTYPE_COUNT || d->out_dtype >= HETRUN_DTYPE_COUNT)
        return fail(why, len, "%s: unknown dtype %u -> %u", op, d->dtype, d->out_dtype);
    if (!dtype_pair_ok(d))
        return fail(why, len, "%s: dtype %s -> %s is not in the catalogue", op,
                    hetrun_dtype_name(d->dtype), hetrun_dtype_name(d->out_dtype));
    if (d->m < 1) return fail(why, len, "%s: m must be >= 1, got %lld", op, (long long)d->m);
    if (d->n < 1) return fail(why, len, "%s: n must be >= 1, got %lld", op, (long long)d->n);
    if (!product_ok(d->m, d->n, MAX_SPAN))
        return fail(why, len, "%s: m %lld x n %lld overflows", op, (long long)d->m,
                    (long long)d->n);
    const bool v11 = d->struct_size >= HETRUN_OP_DESC_SIZE_V1_1;
    char sub[200] = "";
    bool ok = true;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_GEMM:
        ok = gemm_valid(d, sub, sizeof sub, v11);
        if (ok && d->dtype == HETRUN_I8 && (d->alpha != 1.0 || (d->beta != 0.0 && d->beta != 1.0)))
            ok = fail(sub, sizeof sub, "int8 needs alpha 1 and beta 0 or 1, got alpha %g beta %g",
                      d->alpha, d->beta);
        break;
    case HETRUN_OP_GEMM_BIAS_ACT:
        ok = gemm_valid(d, sub, sizeof sub, false);
        if (ok && d->batch > 1)
            ok = fail(sub, sizeof sub, "is not batched, got batch %lld", (long long)d->batch);
        break;
    case HETRUN_OP_ATTENTION_FORWARD:
    case HETRUN_OP_ATTENTION_BACKWARD: ok = attention_valid(d, sub, sizeof sub); break;
    case HETRUN_OP_LAYERNORM_BACKWARD:
        if ((d->beta != 0.0 && d->beta != 1.0) || (d->p[1] != 0.0 && d->p[1] != 1.0))
            ok = fail(sub, sizeof sub, "beta %g and p[1] %g must each be 0 or 1", d->beta, d->p[1]);
        break;
    case HETRUN_OP_EMBEDDING_FORWARD:
    case HETRUN_OP_EMBEDDING_BACKWARD:
        if (d->k < 1 || !product_ok(d->k, d->n, MAX_SPAN))
            ok = fail(sub, sizeof sub, "k (table rows) must be >= 1 and k x n fit, got k %lld",
                      (long long)d->k);
        else if (d->kind == HETRUN_OP_EMBEDDING_BACKWARD && d->beta != 0.0 && d->beta != 1.0)
            ok = fail(sub, sizeof sub, "beta must be 0 or 1, got %g", d->beta);
        break;
    case HETRUN_OP_ACT_FORWARD:
    case HETRUN_OP_ACT_BACKWARD:
        if (d->act >= HETRUN_ACT_COUNT) ok = fail(sub, sizeof sub, "unknown activation %u", d->act);
        break;
    case HETRUN_OP_ADAMW:
        if (!(d->p[5] >= 1.0))
            ok = fail(sub, sizeof sub, "step p[5] must be >= 1, got %g", d->p[5]);
        break;
    default: break;
    }
    if (!ok) return fail(why, len, "%s: %s", op, sub);
    if (d->kind == HETRUN_OP_GEMM_BIAS_ACT && d->act >= HETRUN_ACT_COUNT)
        return fail(why, len, "%s: unknown activation %u", op, d->act);
    return true;
}
