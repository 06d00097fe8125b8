/* The op catalogue: one table of facts per op kind (see catalogue.h). */
#include "catalogue.h"

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
};

static const char *const dtype_names[HETRUN_DTYPE_COUNT] = {"fp32", "fp64", "fp16",
                                                            "bf16", "int8", "int32"};
static const size_t dtype_sizes[HETRUN_DTYPE_COUNT] = {4, 8, 2, 2, 1, 4};
static const char *const act_names[HETRUN_ACT_COUNT] = {"relu", "gelu"};

const char *hetrun_op_name(hetrun_op_kind kind) {
    return (unsigned)kind < HETRUN_OP_KIND_COUNT ? ops[kind].name : NULL;
}

int hetrun_op_from_name(const char *name) {
    for (int i = 0; i < HETRUN_OP_KIND_COUNT; i++)
        if (name && strcmp(name, ops[i].name) == 0) return i;
    return -1;
}

int hetrun_op_arity(hetrun_op_kind kind) {
    return (unsigned)kind < HETRUN_OP_KIND_COUNT ? ops[kind].arity : 0;
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

uint64_t hetrun_op_arg_elements(const hetrun_op_desc *d, int arg) {
    uint64_t mn = (uint64_t)d->m * (uint64_t)d->n;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_GEMM: {
        int64_t rows, cols, ld;
        gemm_shape(d, arg, &rows, &cols, &ld);
        return rows > 0 ? (uint64_t)((rows - 1) * ld + cols) : 0;
    }
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
    default: return (hetrun_dtype)d->dtype;
    }
}

uint64_t hetrun_op_arg_bytes(const hetrun_op_desc *d, int arg) {
    return hetrun_op_arg_elements(d, arg) * hetrun_dtype_size(hetrun_op_arg_dtype(d, arg));
}

double hetrun_op_flops(const hetrun_op_desc *d) {
    double m = (double)d->m, n = (double)d->n, k = (double)d->k, mn = m * n;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_GEMM: return 2.0 * m * n * k + (d->beta != 0.0 ? 2.0 * mn : 0.0);
    case HETRUN_OP_BIAS_ADD:
    case HETRUN_OP_SCALE:
    case HETRUN_OP_MUL: return mn;
    case HETRUN_OP_ACT_FORWARD: /* relu: 1 compare; gelu tanh form: 8 ops + tanh */
        return mn * (d->act == HETRUN_ACT_GELU ? 9.0 : 1.0);
    case HETRUN_OP_ACT_BACKWARD: /* derivative then multiply */
        return mn * (d->act == HETRUN_ACT_GELU ? 16.0 : 2.0);
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
        default: break;
        }
        total += read_write ? 2.0 * b : b;
    }
    return total;
}

static bool fail(char *why, size_t len, const char *msg, long long v) {
    if (why && len) snprintf(why, len, msg, v);
    return false;
}

static bool dtype_pair_ok(const hetrun_op_desc *d) {
    hetrun_dtype in = (hetrun_dtype)d->dtype, out = (hetrun_dtype)d->out_dtype;
    if (d->kind == HETRUN_OP_GEMM)
        return (in == out &&
                (in == HETRUN_F32 || in == HETRUN_F64 || in == HETRUN_F16 || in == HETRUN_BF16)) ||
               ((in == HETRUN_F16 || in == HETRUN_BF16) && out == HETRUN_F32) ||
               (in == HETRUN_I8 && out == HETRUN_I32);
    if (d->kind == HETRUN_OP_CAST)
        return (in == HETRUN_F32 &&
                (out == HETRUN_F16 || out == HETRUN_BF16 || out == HETRUN_F64)) ||
               (out == HETRUN_F32 && (in == HETRUN_F16 || in == HETRUN_BF16 || in == HETRUN_F64));
    return in == out &&
           (in == HETRUN_F32 || in == HETRUN_F64 || in == HETRUN_F16 || in == HETRUN_BF16);
}

bool hetrun_op_desc_valid(const hetrun_op_desc *d, char *why, size_t len) {
    if (!d || d->struct_size < sizeof(hetrun_op_desc))
        return fail(why, len, "descriptor struct_size %lld too small",
                    d ? (long long)d->struct_size : 0);
    if (d->kind >= HETRUN_OP_KIND_COUNT) return fail(why, len, "unknown op kind %lld", d->kind);
    if (d->dtype >= HETRUN_DTYPE_COUNT || d->out_dtype >= HETRUN_DTYPE_COUNT)
        return fail(why, len, "unknown dtype %lld", (long long)d->dtype);
    if (!dtype_pair_ok(d))
        return fail(why, len, "dtype pair not in the catalogue (op %lld)", d->kind);
    if (d->m < 1) return fail(why, len, "m must be >= 1, got %lld", (long long)d->m);
    if (d->n < 1) return fail(why, len, "n must be >= 1, got %lld", (long long)d->n);
    if (d->kind == HETRUN_OP_GEMM) {
        if (d->k < 1) return fail(why, len, "k must be >= 1, got %lld", (long long)d->k);
        for (int a = 0; a < 3; a++) {
            int64_t rows, cols, ld;
            gemm_shape(d, a, &rows, &cols, &ld);
            if (ld < cols)
                return fail(why, len, "leading dimension %lld smaller than the row length",
                            (long long)ld);
        }
        if (d->dtype == HETRUN_I8 && (d->alpha != 1.0 || (d->beta != 0.0 && d->beta != 1.0)))
            return fail(why, len, "int8 GEMM needs alpha 1 and beta 0 or 1%lld", 0);
    }
    if ((d->kind == HETRUN_OP_ACT_FORWARD || d->kind == HETRUN_OP_ACT_BACKWARD) &&
        d->act >= HETRUN_ACT_COUNT)
        return fail(why, len, "unknown activation %lld", d->act);
    if (d->kind == HETRUN_OP_ADAMW && d->p[5] < 1.0)
        return fail(why, len, "adamw step p[5] must be >= 1, got %lld", (long long)d->p[5]);
    return true;
}
