/* The op catalogue: the op table (one row per op kind, see catalogue.h) and the functions
 * that answer from it. Nothing here switches on an op kind: a fact about an op lives in
 * its row, or in the row's own check/flops function. */
#include "catalogue.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "half.h"
#include "reference.h"

/* ---- dtypes and activations ---- */

static const char *const dtype_names[HETRUN_DTYPE_COUNT] = {"fp32", "fp64", "fp16",
                                                            "bf16", "int8", "int32"};
static const size_t dtype_sizes[HETRUN_DTYPE_COUNT] = {4, 8, 2, 2, 1, 4};
static const double dtype_roundoff[HETRUN_DTYPE_COUNT] = {0x1.0p-24, 0x1.0p-53, 0x1.0p-11,
                                                          0x1.0p-8,  0.0,       0.0};
static const char *const act_names[HETRUN_ACT_COUNT] = {"relu", "gelu", "gelu_erf", "identity"};

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
    return (unsigned)dtype < HETRUN_DTYPE_COUNT ? dtype_roundoff[dtype] : 0.0;
}

const char *hetrun_activation_name(hetrun_activation act) {
    return (unsigned)act < HETRUN_ACT_COUNT ? act_names[act] : NULL;
}

int hetrun_activation_from_name(const char *name) {
    for (int i = 0; i < HETRUN_ACT_COUNT; i++)
        if (name && strcmp(name, act_names[i]) == 0) return i;
    return -1;
}

/* ---- geometry ---- */

/* The 1.1 fields exist only in descriptors that say they are that large. */
static bool v11(const hetrun_op_desc *d) {
    return d->struct_size >= HETRUN_OP_DESC_SIZE_V1_1;
}

static int64_t batch_count(const hetrun_op_desc *d) {
    return v11(d) && d->batch > 1 ? d->batch : 1;
}

static int64_t head_count(const hetrun_op_desc *d) {
    return v11(d) && d->heads > 1 ? d->heads : 1;
}

static int64_t stride_field(const hetrun_op_desc *d, int which) {
    if (!v11(d)) return 0;
    return which == 0 ? d->stride_a : which == 1 ? d->stride_b : d->stride_c;
}

/* Stored rows x cols of GEMM operand `which` (0 = A, 1 = B, 2 = C) and its row stride. */
static void gemm_shape(const hetrun_op_desc *d, int which, int64_t *rows, int64_t *cols,
                       int64_t *ld) {
    const bool ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
    const int64_t r[3] = {ta ? d->k : d->m, tb ? d->n : d->k, d->m};
    const int64_t c[3] = {ta ? d->m : d->k, tb ? d->k : d->n, d->n};
    const int64_t l[3] = {d->lda, d->ldb, d->ldc};
    *rows = r[which];
    *cols = c[which];
    *ld = l[which] ? l[which] : c[which];
}

/* Elements one GEMM matrix spans, including row-stride padding. */
static int64_t gemm_matrix_span(const hetrun_op_desc *d, int which) {
    int64_t rows, cols, ld;
    gemm_shape(d, which, &rows, &cols, &ld);
    return rows > 0 ? (rows - 1) * ld + cols : 0;
}

int64_t hetrun_gemm_batch_stride(const hetrun_op_desc *d, int which) {
    int64_t s = stride_field(d, which);
    if (s || which != 2) return s;
    int64_t rows, cols, ld;
    gemm_shape(d, 2, &rows, &cols, &ld);
    return rows * ld; /* C: 0 means packed */
}

/* Attention operand geometry: tokens per batch entry, token stride, batch stride. */
static void attn_geometry(const hetrun_op_desc *d, int which, int64_t *tokens, int64_t *ld,
                          int64_t *bstride) {
    const int64_t width = head_count(d) * d->k;
    const int64_t l[3] = {d->lda, d->ldb, d->ldc};
    int64_t s = stride_field(d, which);
    *tokens = which == 1 ? d->n : d->m;
    *ld = l[which] ? l[which] : width;
    *bstride = s ? s : *tokens * *ld;
}

static int attn_which(char role) {
    return role == 'q' ? 0 : role == 'k' ? 1 : 2;
}

void hetrun_attention_geometry(const hetrun_op_desc *d, char role, int64_t *ld, int64_t *bstride) {
    int64_t tokens;
    attn_geometry(d, attn_which(role), &tokens, ld, bstride);
}

static int64_t attn_span(const hetrun_op_desc *d, int which) {
    int64_t tokens, ld, bs;
    attn_geometry(d, which, &tokens, &ld, &bs);
    return (batch_count(d) - 1) * bs + (tokens - 1) * ld + head_count(d) * d->k;
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

/* ---- FLOP counts (rows whose count is not a multiple of m*n) ---- */

/* Per-element FLOPs of an activation and of its derivative-times-gradient. */
static double act_flops(uint32_t act, bool backward) {
    static const double fwd[HETRUN_ACT_COUNT] = {1.0, 9.0, 5.0, 0.0}; /* gelu: tanh form */
    static const double bwd[HETRUN_ACT_COUNT] = {2.0, 16.0, 9.0, 1.0};
    return act < HETRUN_ACT_COUNT ? (backward ? bwd : fwd)[act] : 0.0;
}

static double mn_of(const hetrun_op_desc *d) {
    return (double)d->m * (double)d->n;
}

static double flops_gemm(const hetrun_op_desc *d) {
    const double mn = mn_of(d);
    return (double)batch_count(d) * (2.0 * mn * (double)d->k + (d->beta != 0.0 ? 2.0 * mn : 0.0));
}

static double flops_gemm_bias_act(const hetrun_op_desc *d) {
    const double mn = mn_of(d);
    return flops_gemm(d) + ((d->flags & HETRUN_OP_HAS_BIAS) ? mn : 0.0) +
           mn * act_flops(d->act, false);
}

static double flops_act_forward(const hetrun_op_desc *d) {
    return mn_of(d) * act_flops(d->act, false);
}

static double flops_act_backward(const hetrun_op_desc *d) {
    return mn_of(d) * act_flops(d->act, true);
}

static double flops_xent_forward(const hetrun_op_desc *d) {
    return 5.0 * mn_of(d) + 2.0 * (double)d->m;
}

static double flops_reduce_axis0(const hetrun_op_desc *d) {
    return mn_of(d) + 2.0 * (double)d->n;
}

static double flops_reduce_axis1(const hetrun_op_desc *d) {
    return mn_of(d) + 2.0 * (double)d->m;
}

/* Per kept (query, key) pair: forward Q.K and P.V (2 x 2D) plus the softmax (5); backward
 * the four products dP, dV, dQ, dK (4 x 2D) plus dS (3). Recomputing the scores in backward
 * is an implementation choice and is not counted. */
static double flops_attention_forward(const hetrun_op_desc *d) {
    return (double)(batch_count(d) * head_count(d)) * hetrun_attention_kept_pairs(d) *
           (4.0 * (double)d->k + 5.0);
}

static double flops_attention_backward(const hetrun_op_desc *d) {
    return (double)(batch_count(d) * head_count(d)) * hetrun_attention_kept_pairs(d) *
           (8.0 * (double)d->k + 3.0);
}

/* ---- op-specific validity ---- */

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

/* a * b <= limit without overflow, for shape products (elements must fit an int64). */
static bool product_ok(int64_t a, int64_t b, int64_t limit) {
    return a <= 0 || b <= limit / a;
}

/* Largest element count any operand may span: 2^48 (256 TiB of bytes) keeps every
 * offset computation in int64 and rejects absurd shapes before any allocation. */
#define MAX_SPAN ((int64_t)1 << 48)

static bool check_gemm(const hetrun_op_desc *d, char *why, size_t len) {
    static const char *const names[3] = {"A", "B", "C"};
    if (d->k < 1) return fail(why, len, "k %lld must be >= 1", (long long)d->k);
    if (!product_ok(d->m, d->k, MAX_SPAN) || !product_ok(d->k, d->n, MAX_SPAN))
        return fail(why, len, "shape m %lld n %lld k %lld overflows 2^48 elements", (long long)d->m,
                    (long long)d->n, (long long)d->k);
    for (int a = 0; a < 3; a++) {
        int64_t rows, cols, ld;
        gemm_shape(d, a, &rows, &cols, &ld);
        if (ld < cols)
            return fail(why, len, "ld%c %lld is smaller than the row length %lld of %s", "abc"[a],
                        (long long)ld, (long long)cols, names[a]);
        if (!product_ok(rows, ld, MAX_SPAN))
            return fail(why, len, "ld%c %lld x %lld rows of %s overflows 2^48 elements", "abc"[a],
                        (long long)ld, (long long)rows, names[a]);
    }
    for (int a = 0; a < 3 && batch_count(d) > 1; a++) {
        int64_t stride = stride_field(d, a), span = gemm_matrix_span(d, a);
        if (stride < 0 || (stride != 0 && stride < span))
            return fail(why, len,
                        "stride_%c %lld is smaller than one %s matrix (%lld elements): batch "
                        "entries would overlap",
                        "abc"[a], (long long)stride, names[a], (long long)span);
        if (!product_ok(d->batch, stride ? stride : span, MAX_SPAN))
            return fail(why, len, "batch %lld x stride_%c %lld overflows 2^48 elements",
                        (long long)d->batch, "abc"[a], (long long)stride);
    }
    if (d->dtype == HETRUN_I8 && (d->alpha != 1.0 || (d->beta != 0.0 && d->beta != 1.0)))
        return fail(why, len, "alpha %g beta %g: int8 needs alpha 1 and beta 0 or 1", d->alpha,
                    d->beta);
    return true;
}

static bool check_attention(const hetrun_op_desc *d, char *why, size_t len) {
    if (d->k < 1) return fail(why, len, "k (head dim) %lld must be >= 1", (long long)d->k);
    if (d->heads < 0) return fail(why, len, "heads %lld must be >= 0", (long long)d->heads);
    if (!isfinite(d->alpha))
        return fail(why, len, "alpha (softmax scale) %g must be finite", d->alpha);
    const int64_t h = head_count(d), b = batch_count(d);
    if (!product_ok(h, d->k, MAX_SPAN) || !product_ok(b, h * d->m, MAX_SPAN))
        return fail(why, len, "shape batch %lld heads %lld m %lld k %lld overflows 2^48 elements",
                    (long long)b, (long long)h, (long long)d->m, (long long)d->k);
    static const char *const field[3][2] = {
        {"lda", "stride_a"}, {"ldb", "stride_b"}, {"ldc", "stride_c"}};
    for (int r = 0; r < 3; r++) {
        int64_t tokens, ld, bs;
        attn_geometry(d, r, &tokens, &ld, &bs);
        if (ld < h * d->k)
            return fail(why, len, "%s %lld is smaller than heads x head dim (%lld)", field[r][0],
                        (long long)ld, (long long)(h * d->k));
        if (!product_ok(tokens, ld, MAX_SPAN))
            return fail(why, len, "%s %lld x %lld tokens overflows 2^48 elements", field[r][0],
                        (long long)ld, (long long)tokens);
        int64_t one = (tokens - 1) * ld + h * d->k;
        if (bs < 0 || (b > 1 && bs < one))
            return fail(why, len,
                        "%s %lld is smaller than one batch entry (%lld elements): entries "
                        "would overlap",
                        field[r][1], (long long)bs, (long long)one);
        if (!product_ok(b, bs, MAX_SPAN))
            return fail(why, len, "batch %lld x %s %lld overflows 2^48 elements", (long long)b,
                        field[r][1], (long long)bs);
    }
    return true;
}

static bool check_layernorm_backward(const hetrun_op_desc *d, char *why, size_t len) {
    if (d->beta != 0.0 && d->beta != 1.0)
        return fail(why, len, "beta %g must be 0 or 1 (dX overwritten or accumulated)", d->beta);
    if (d->p[1] != 0.0 && d->p[1] != 1.0)
        return fail(why, len, "p[1] %g must be 0 or 1 (dgamma, dbeta overwritten or accumulated)",
                    d->p[1]);
    return true;
}

static bool check_embedding(const hetrun_op_desc *d, char *why, size_t len) {
    if (d->k < 1 || !product_ok(d->k, d->n, MAX_SPAN))
        return fail(why, len, "k (table rows) %lld must be >= 1 and k x n fit 2^48 elements",
                    (long long)d->k);
    return true;
}

static bool check_embedding_backward(const hetrun_op_desc *d, char *why, size_t len) {
    if (!check_embedding(d, why, len)) return false;
    if (d->beta != 0.0 && d->beta != 1.0)
        return fail(why, len, "beta %g must be 0 or 1 (dtable overwritten or accumulated)",
                    d->beta);
    return true;
}

static bool check_adamw(const hetrun_op_desc *d, char *why, size_t len) {
    if (!(d->p[5] >= 1.0)) return fail(why, len, "p[5] (step) %g must be >= 1", d->p[5]);
    return true;
}

/* ---- the table ---- */

/* ARG(name, role, extent, type, values, present_flag, may_alias): one hetrun_op_arg. */
#define ARG(nm, role, ext, type, ...)                                                              \
    { nm, HETRUN_ARG_##role, HETRUN_EXT_##ext, HETRUN_TYPE_##type, __VA_ARGS__ }
#define BIT(a) (1u << (a))
#define FLOAT_PAIRS                                                                                \
    .pairs = {{HETRUN_F32, HETRUN_F32},                                                            \
              {HETRUN_F64, HETRUN_F64},                                                            \
              {HETRUN_F16, HETRUN_F16},                                                            \
              {HETRUN_BF16, HETRUN_BF16}},                                                         \
    .npairs = 4
#define CASES(list) .cases = list, .ncases = (int)(sizeof list / sizeof list[0])

/* Elementwise and row-wise ops: odd and round sizes, a non-zero offset. */
static const hetrun_op_case rows_cases[] = {
    {"1x1", 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"one row", 1, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"odd, offset", 7, 127, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3},
    {"wide rows", 127, 1000, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"round", 64, 256, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"large, offset", 1000, 1000, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BIG, 0, 1},
};

/* The same plus the in-place forms the row allows. */
static const hetrun_op_case inplace_cases[] = {
    {"1x1", 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"odd, offset", 7, 127, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3},
    {"wide rows", 127, 1000, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"round", 64, 256, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"in place", 33, 65, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_INPLACE, 0, 0},
    {"in place on the other input", 7, 127, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_INPLACE2, 0, 1},
    {"large, offset", 1000, 1000, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BIG, 0, 1},
};

/* Ops with out = alpha * f(X) + beta * out: beta 0 over a NaN output, and accumulating. */
static const hetrun_op_case beta_cases[] = {
    {"1x1, beta 0", 1, 1, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 0.0, 0},
    {"beta 0 over NaN", 7, 127, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 0.0, 3},
    {"beta 1", 127, 33, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 1.0, 0},
    {"round, beta 0.5", 64, 256, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 0.5, 1},
    {"large", 1000, 1000, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BIG | HETRUN_CASE_BETA, 1.0, 0},
};

static const hetrun_op_case gemm_cases[] = {
    {"1x1x1", 1, 1, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 0.0, 0},
    {"7^3, beta 0.5", 7, 7, 7, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 0.5, 0},
    {"127^3, offset, beta 0 over NaN", 127, 127, 127, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 0.0, 1},
    {"round", 128, 256, 64, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 0.0, 0},
    {"long k, padded rows", 7, 127, 1000, 0, 0, 0, 3, 0, 0, HETRUN_CASE_BETA, 0.5, 0},
    {"A^T", 127, 7, 33, 0, 0, HETRUN_OP_TRANS_A, 0, 0, 0, HETRUN_CASE_BETA, 0.5, 0},
    {"B^T, padded, offset", 33, 65, 17, 0, 0, HETRUN_OP_TRANS_B, 1, 0, 0, HETRUN_CASE_BETA, 0.5, 3},
    {"A^T B^T, padded", 65, 33, 127, 0, 0, HETRUN_OP_TRANS_A | HETRUN_OP_TRANS_B, 2, 0, 0,
     HETRUN_CASE_BETA, 0.0, 0},
    {"batched, packed", 17, 9, 13, 5, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 0.5, 0},
    {"batched, A broadcast, padded strides", 9, 17, 11, 4, 0, 0, 2, 5, 1, HETRUN_CASE_BETA, 0.0, 1},
    {"batched, B^T broadcast, padded", 16, 8, 24, 3, 0, HETRUN_OP_TRANS_B, 1, 7, 2,
     HETRUN_CASE_BETA, 1.0, 0},
    {"1000^3", 1000, 1000, 1000, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BIG | HETRUN_CASE_BETA, 0.0, 0},
    {"256^3 B^T", 256, 256, 256, 0, 0, HETRUN_OP_TRANS_B, 0, 0, 0,
     HETRUN_CASE_BIG | HETRUN_CASE_BETA, 0.5, 0},
};

static const hetrun_op_case gemm_bias_act_cases[] = {
    {"bias", 33, 65, 17, 0, 0, HETRUN_OP_HAS_BIAS, 0, 0, 0, 0, 0, 1},
    {"plain", 7, 9, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"bias + aux, beta 0.5", 31, 47, 64, 0, 0, HETRUN_OP_HAS_BIAS | HETRUN_OP_HAS_AUX, 0, 0, 0,
     HETRUN_CASE_BETA, 0.5, 0},
    {"A^T, aux, padded", 17, 33, 29, 0, 0, HETRUN_OP_TRANS_A | HETRUN_OP_HAS_AUX, 3, 0, 0, 0, 0, 0},
    {"B^T, bias + aux, padded, offset", 64, 48, 96, 0, 0,
     HETRUN_OP_TRANS_B | HETRUN_OP_HAS_BIAS | HETRUN_OP_HAS_AUX, 1, 0, 0, 0, 0, 3},
    /* few rows against a stored weight: the cpu module's skinny kernel (k tail, column tail) */
    {"B^T few rows, residual, odd, padded", 13, 101, 77, 0, 0,
     HETRUN_OP_TRANS_B | HETRUN_OP_HAS_BIAS | HETRUN_OP_HAS_AUX, 2, 0, 0, HETRUN_CASE_BETA, 1.0, 1},
    {"B^T one row", 1, 50, 384, 0, 0, HETRUN_OP_TRANS_B, 0, 0, 0, 0, 0, 0},
};

#define CAUSAL HETRUN_OP_CAUSAL
#define MASKED HETRUN_OP_KEY_PADDING_MASK
static const hetrun_op_case attention_cases[] = {
    {"one head", 9, 9, 8, 1, 1, 0, 0, 0, 0, 0, 0, 0},
    {"causal", 17, 17, 16, 2, 3, CAUSAL, 0, 0, 0, 0, 0, 0},
    {"key padding mask (batch 1 fully masked)", 13, 21, 8, 3, 2, MASKED, 0, 0, 0, 0, 0, 1},
    {"causal + mask, fused QKV", 16, 16, 16, 2, 2, CAUSAL | MASKED, 0, 0, 0, HETRUN_CASE_FUSED, 0,
     0},
    {"causal, Lq > Lk (fully masked rows)", 12, 5, 8, 2, 2, CAUSAL, 0, 0, 0, 0, 0, 0},
    {"causal, Lq < Lk (decode)", 3, 19, 16, 2, 2, CAUSAL, 0, 0, 0, 0, 0, 0},
    {"padded rows and batch strides", 11, 15, 8, 3, 2, CAUSAL, 5, 9, 0, 0, 0, 2},
    {"fused QKV, padded", 32, 32, 32, 2, 4, CAUSAL, 4, 16, 0, HETRUN_CASE_FUSED, 0, 0},
    {"head dim 64, 128 tokens", 128, 128, 64, 2, 2, CAUSAL | MASKED, 0, 0, 0, HETRUN_CASE_BIG, 0,
     0},
};

static const hetrun_op_case layernorm_backward_cases[] = {
    {"1x1", 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"odd, offset", 7, 127, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3},
    {"accumulate dX", 33, 96, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 1.0, 0},
    {"accumulate dgamma, dbeta", 64, 256, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_P1, 0, 1},
    {"accumulate all", 127, 768, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA | HETRUN_CASE_P1, 1.0, 0},
    {"large", 512, 1024, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BIG, 0, 0},
};

static const hetrun_op_case embedding_cases[] = {
    {"one token", 1, 1, 1, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 0.0, 0},
    {"repeated ids, beta 0 over NaN", 64, 33, 10, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 0.0, 3},
    {"accumulate", 37, 96, 50, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 1.0, 0},
    {"vocab > tokens", 128, 64, 1000, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BETA, 0.0, 1},
    {"large", 2048, 768, 4096, 0, 0, 0, 0, 0, 0, HETRUN_CASE_BIG | HETRUN_CASE_BETA, 1.0, 0},
};

static const hetrun_op_info table[HETRUN_OP_KIND_COUNT] = {
    [HETRUN_OP_GEMM] = {.name = "gemm",
                        .summary = "C = alpha op(A) op(B) + beta C, strided batched",
                        .since_minor = 0,
                        .arity = 3,
                        .args = {ARG("A", IN, GEMM_A, IN, 0, 0, 0),
                                 ARG("B", IN, GEMM_B, IN, 0, 0, 0),
                                 ARG("C", OUT_BETA, GEMM_C, OUT, 0, 0, 0)},
                        .pairs = {{HETRUN_F32, HETRUN_F32},
                                  {HETRUN_F64, HETRUN_F64},
                                  {HETRUN_F16, HETRUN_F16},
                                  {HETRUN_F16, HETRUN_F32},
                                  {HETRUN_BF16, HETRUN_BF16},
                                  {HETRUN_BF16, HETRUN_F32},
                                  {HETRUN_I8, HETRUN_I32}},
                        .npairs = 7,
                        .flags = HETRUN_OP_TRANS_A | HETRUN_OP_TRANS_B | HETRUN_OP_ALLOW_TF32 |
                                 HETRUN_OP_CONST_B,
                        .batched = true,
                        .alpha = 1,
                        .flops = flops_gemm,
                        .flops_doc = "batch (2mnk + 2mn if beta != 0)",
                        .reduction = HETRUN_RED_K,
                        .check = check_gemm,
                        .reference = hetrun_ref_gemm,
                        .bench_shape = HETRUN_BENCH_CUBE,
                        CASES(gemm_cases)},
    [HETRUN_OP_BIAS_ADD] = {.name = "bias_add",
                            .summary = "Y[i,j] = X[i,j] + bias[j]",
                            .since_minor = 0,
                            .arity = 3,
                            .args = {ARG("X", IN, MN, IN, 0, 0, 0), ARG("bias", IN, N, IN, 0, 0, 0),
                                     ARG("Y", OUT, MN, IN, 0, 0, BIT(0))},
                            FLOAT_PAIRS,
                            .alpha = 1,
                            .flops_mn = 1,
                            .flops_doc = "mn",
                            .reference = hetrun_ref_bias_add,
                            CASES(inplace_cases)},
    [HETRUN_OP_ACT_FORWARD] = {.name = "act_forward",
                               .summary = "Y = act(X)",
                               .since_minor = 0,
                               .arity = 2,
                               .args = {ARG("X", IN, MN, IN, 0, 0, 0),
                                        ARG("Y", OUT, MN, IN, 0, 0, BIT(0))},
                               FLOAT_PAIRS,
                               .uses_act = true,
                               .alpha = 1,
                               .flops = flops_act_forward,
                               .flops_doc = "mn x (relu 1, gelu 9, gelu_erf 5, identity 0)",
                               .tol_ulps = 16,
                               .reference = hetrun_ref_act_forward,
                               CASES(inplace_cases)},
    [HETRUN_OP_ACT_BACKWARD] = {.name = "act_backward",
                                .summary = "dX = dY act'(X)",
                                .since_minor = 0,
                                .arity = 3,
                                .args = {ARG("X", IN, MN, IN, 0, 0, 0),
                                         ARG("dY", IN, MN, IN, 0, 0, 0),
                                         ARG("dX", OUT, MN, IN, 0, 0, BIT(1))},
                                FLOAT_PAIRS,
                                .uses_act = true,
                                .alpha = 1,
                                .flops = flops_act_backward,
                                .flops_doc = "mn x (relu 2, gelu 16, gelu_erf 9, identity 1)",
                                .tol_ulps = 16,
                                .reference = hetrun_ref_act_backward,
                                CASES(inplace_cases)},
    [HETRUN_OP_SOFTMAX] = {.name = "softmax",
                           .summary = "row-wise softmax",
                           .since_minor = 0,
                           .arity = 2,
                           .args = {ARG("X", IN, MN, IN, 0, 0, 0), ARG("Y", OUT, MN, IN, 0, 0, 0)},
                           FLOAT_PAIRS,
                           .alpha = 1,
                           .flops_mn = 5,
                           .flops_doc = "5mn",
                           .reduction = HETRUN_RED_N,
                           .tol_ulps = 16,
                           .reference = hetrun_ref_softmax,
                           CASES(rows_cases)},
    [HETRUN_OP_XENT_FORWARD] = {.name = "xent_forward",
                                .summary = "softmax + cross-entropy loss per row",
                                .since_minor = 0,
                                .arity = 4,
                                .args = {ARG("logits", IN, MN, IN, 0, 0, 0),
                                         ARG("labels", IN, M, I32, HETRUN_VAL_LABEL, 0, 0),
                                         ARG("probs", OUT, MN, IN, 0, 0, 0),
                                         ARG("loss", OUT, M, IN, 0, 0, 0)},
                                FLOAT_PAIRS,
                                .alpha = 1,
                                .flops = flops_xent_forward,
                                .flops_doc = "5mn + 2m",
                                .reduction = HETRUN_RED_N,
                                .tol_ulps = 16,
                                .reference = hetrun_ref_xent_forward,
                                CASES(rows_cases)},
    [HETRUN_OP_XENT_BACKWARD] = {.name = "xent_backward",
                                 .summary = "dlogits = alpha (probs - onehot(labels))",
                                 .since_minor = 0,
                                 .arity = 3,
                                 .args = {ARG("probs", IN, MN, IN, HETRUN_VAL_PROB, 0, 0),
                                          ARG("labels", IN, M, I32, HETRUN_VAL_LABEL, 0, 0),
                                          ARG("dlogits", OUT, MN, IN, 0, 0, 0)},
                                 FLOAT_PAIRS,
                                 .alpha = 0.125,
                                 .flops_mn = 2,
                                 .flops_doc = "2mn",
                                 .reference = hetrun_ref_xent_backward,
                                 CASES(rows_cases)},
    [HETRUN_OP_LAYERNORM] = {.name = "layernorm",
                             .summary = "Y = (X - mean) rstd gamma + beta per row",
                             .since_minor = 0,
                             .arity = 4,
                             .args = {ARG("X", IN, MN, IN, 0, 0, 0),
                                      ARG("gamma", IN, N, IN, 0, 0, 0),
                                      ARG("beta", IN, N, IN, 0, 0, 0),
                                      ARG("Y", OUT, MN, IN, 0, 0, 0)},
                             FLOAT_PAIRS,
                             .alpha = 1,
                             .p = {1e-5},
                             .flops_mn = 7,
                             .flops_doc = "7mn",
                             .reduction = HETRUN_RED_N,
                             .reference = hetrun_ref_layernorm,
                             CASES(rows_cases)},
    [HETRUN_OP_REDUCE_SUM_AXIS0] = {.name = "reduce_sum_axis0",
                                    .summary = "out[j] = alpha sum_i X[i,j] + beta out[j]",
                                    .since_minor = 0,
                                    .arity = 2,
                                    .args = {ARG("X", IN, MN, IN, 0, 0, 0),
                                             ARG("out", OUT_BETA, N, IN, 0, 0, 0)},
                                    FLOAT_PAIRS,
                                    .alpha = 0.5,
                                    .flops = flops_reduce_axis0,
                                    .flops_doc = "mn + 2n",
                                    .reduction = HETRUN_RED_M,
                                    .reference = hetrun_ref_reduce_sum_axis0,
                                    CASES(beta_cases)},
    [HETRUN_OP_REDUCE_SUM_AXIS1] = {.name = "reduce_sum_axis1",
                                    .summary = "out[i] = alpha sum_j X[i,j] + beta out[i]",
                                    .since_minor = 0,
                                    .arity = 2,
                                    .args = {ARG("X", IN, MN, IN, 0, 0, 0),
                                             ARG("out", OUT_BETA, M, IN, 0, 0, 0)},
                                    FLOAT_PAIRS,
                                    .alpha = 0.5,
                                    .flops = flops_reduce_axis1,
                                    .flops_doc = "mn + 2m",
                                    .reduction = HETRUN_RED_N,
                                    .reference = hetrun_ref_reduce_sum_axis1,
                                    CASES(beta_cases)},
    [HETRUN_OP_SCALE] = {.name = "scale",
                         .summary = "Y = alpha X",
                         .since_minor = 0,
                         .arity = 2,
                         .args = {ARG("X", IN, MN, IN, 0, 0, 0),
                                  ARG("Y", OUT, MN, IN, 0, 0, BIT(0))},
                         FLOAT_PAIRS,
                         .alpha = -1.25,
                         .flops_mn = 1,
                         .flops_doc = "mn",
                         .reference = hetrun_ref_scale,
                         CASES(inplace_cases)},
    [HETRUN_OP_AXPY] = {.name = "axpy",
                        .summary = "Y = alpha X + Y",
                        .since_minor = 0,
                        .arity = 2,
                        .args = {ARG("X", IN, MN, IN, 0, 0, 0), ARG("Y", INOUT, MN, IN, 0, 0, 0)},
                        FLOAT_PAIRS,
                        .alpha = -1.25,
                        .flops_mn = 2,
                        .flops_doc = "2mn",
                        .reference = hetrun_ref_axpy,
                        CASES(rows_cases)},
    [HETRUN_OP_MUL] = {.name = "mul",
                       .summary = "Z = X Y elementwise",
                       .since_minor = 0,
                       .arity = 3,
                       .args = {ARG("X", IN, MN, IN, 0, 0, 0), ARG("Y", IN, MN, IN, 0, 0, 0),
                                ARG("Z", OUT, MN, IN, 0, 0, BIT(0) | BIT(1))},
                       FLOAT_PAIRS,
                       .alpha = 1,
                       .flops_mn = 1,
                       .flops_doc = "mn",
                       .reference = hetrun_ref_mul,
                       CASES(inplace_cases)},
    [HETRUN_OP_FILL] = {.name = "fill",
                        .summary = "Y = alpha",
                        .since_minor = 0,
                        .arity = 1,
                        .args = {ARG("Y", OUT, MN, IN, 0, 0, 0)},
                        FLOAT_PAIRS,
                        .alpha = 0.375,
                        .flops_doc = "0",
                        .reference = hetrun_ref_fill,
                        CASES(rows_cases)},
    [HETRUN_OP_SGD_MOMENTUM] = {.name = "sgd_momentum",
                                .summary = "SGD with momentum and weight decay (PyTorch)",
                                .since_minor = 0,
                                .arity = 3,
                                .args = {ARG("W", INOUT, MN, IN, 0, 0, 0),
                                         ARG("G", IN, MN, IN, 0, 0, 0),
                                         ARG("V", INOUT, MN, IN, 0, 0, 0)},
                                FLOAT_PAIRS,
                                .alpha = 1,
                                .p = {0.05, 0.9, 1e-4},
                                .flops_mn = 6,
                                .flops_doc = "6mn",
                                .reference = hetrun_ref_sgd_momentum,
                                CASES(rows_cases)},
    [HETRUN_OP_ADAMW] = {.name = "adamw",
                         .summary = "AdamW, decoupled weight decay (PyTorch)",
                         .since_minor = 0,
                         .arity = 4,
                         .args = {ARG("W", INOUT, MN, IN, 0, 0, 0), ARG("G", IN, MN, IN, 0, 0, 0),
                                  ARG("M", INOUT, MN, IN, 0, 0, 0),
                                  ARG("V", INOUT, MN, IN, HETRUN_VAL_POSITIVE, 0, 0)},
                         FLOAT_PAIRS,
                         .alpha = 1,
                         .p = {1e-3, 0.9, 0.999, 1e-8, 0.01, 3},
                         .flops_mn = 16,
                         .flops_doc = "16mn",
                         .tol_ulps = 16,
                         .check = check_adamw,
                         .reference = hetrun_ref_adamw,
                         CASES(rows_cases)},
    [HETRUN_OP_CAST] = {.name = "cast",
                        .summary = "Y = (out_dtype) X, round to nearest even",
                        .since_minor = 0,
                        .arity = 2,
                        .args = {ARG("X", IN, MN, IN, HETRUN_VAL_WIDE, 0, 0),
                                 ARG("Y", OUT, MN, OUT, 0, 0, 0)},
                        .pairs = {{HETRUN_F32, HETRUN_F16},
                                  {HETRUN_F16, HETRUN_F32},
                                  {HETRUN_F32, HETRUN_BF16},
                                  {HETRUN_BF16, HETRUN_F32},
                                  {HETRUN_F32, HETRUN_F64},
                                  {HETRUN_F64, HETRUN_F32}},
                        .npairs = 6,
                        .alpha = 1,
                        .flops_doc = "0",
                        .reference = hetrun_ref_cast,
                        CASES(rows_cases)},
    [HETRUN_OP_GEMM_BIAS_ACT] = {.name = "gemm_bias_act",
                                 .summary = "C = act(alpha op(A) op(B) + beta C + bias)",
                                 .since_minor = 1,
                                 .arity = 5,
                                 .args = {ARG("A", IN, GEMM_A, IN, 0, 0, 0),
                                          ARG("B", IN, GEMM_B, IN, 0, 0, 0),
                                          ARG("bias", IN, N, OUT, 0, HETRUN_OP_HAS_BIAS, 0),
                                          ARG("C", OUT_BETA, GEMM_C, OUT, 0, 0, 0),
                                          ARG("aux", OUT, MN, OUT, 0, HETRUN_OP_HAS_AUX, 0)},
                                 .pairs = {{HETRUN_F32, HETRUN_F32},
                                           {HETRUN_F64, HETRUN_F64},
                                           {HETRUN_F16, HETRUN_F16},
                                           {HETRUN_F16, HETRUN_F32},
                                           {HETRUN_BF16, HETRUN_BF16},
                                           {HETRUN_BF16, HETRUN_F32}},
                                 .npairs = 6,
                                 .flags = HETRUN_OP_TRANS_A | HETRUN_OP_TRANS_B |
                                          HETRUN_OP_ALLOW_TF32 | HETRUN_OP_HAS_BIAS |
                                          HETRUN_OP_HAS_AUX | HETRUN_OP_CONST_B,
                                 .uses_act = true,
                                 .alpha = 1,
                                 .flops = flops_gemm_bias_act,
                                 .flops_doc = "2mnk + 2mn if beta != 0 + mn with bias + mn x act",
                                 .reduction = HETRUN_RED_K,
                                 .tol_ulps = 16,
                                 .check = check_gemm,
                                 .reference = hetrun_ref_gemm_bias_act,
                                 .bench_shape = HETRUN_BENCH_CUBE,
                                 CASES(gemm_bias_act_cases)},
    [HETRUN_OP_ATTENTION_FORWARD] =
        {.name = "attention_forward",
         .summary = "O = softmax(alpha Q K^T, masked) V; lse = its log-sum-exp",
         .since_minor = 1,
         .arity = 6,
         .args = {ARG("Q", IN, ATTN_Q, IN, 0, 0, 0), ARG("K", IN, ATTN_K, IN, 0, 0, 0),
                  ARG("V", IN, ATTN_K, IN, 0, 0, 0),
                  ARG("mask", IN, ATTN_MASK, I32, HETRUN_VAL_MASK, HETRUN_OP_KEY_PADDING_MASK, 0),
                  ARG("O", OUT, ATTN_O, IN, 0, 0, 0), ARG("lse", OUT, ATTN_LSE, F32, 0, 0, 0)},
         .pairs = {{HETRUN_F32, HETRUN_F32}, {HETRUN_F16, HETRUN_F16}, {HETRUN_BF16, HETRUN_BF16}},
         .npairs = 3,
         .flags = HETRUN_OP_CAUSAL | HETRUN_OP_KEY_PADDING_MASK,
         .batched = true,
         .alpha = 0.125,
         .flops = flops_attention_forward,
         .flops_doc = "batch heads kept_pairs (4k + 5)",
         .reduction = HETRUN_RED_ATTN,
         .tol_ulps = 16,
         .check = check_attention,
         .reference = hetrun_ref_attention_forward,
         .bench_shape = HETRUN_BENCH_ATTENTION,
         CASES(attention_cases)},
    [HETRUN_OP_ATTENTION_BACKWARD] =
        {.name = "attention_backward",
         .summary = "dQ, dK, dV of attention_forward from dO and lse",
         .since_minor = 1,
         .arity = 10,
         .args = {ARG("Q", IN, ATTN_Q, IN, 0, 0, 0), ARG("K", IN, ATTN_K, IN, 0, 0, 0),
                  ARG("V", IN, ATTN_K, IN, 0, 0, 0),
                  ARG("mask", IN, ATTN_MASK, I32, HETRUN_VAL_MASK, HETRUN_OP_KEY_PADDING_MASK, 0),
                  ARG("O", IN, ATTN_O, IN, 0, 0, 0), ARG("dO", IN, ATTN_O, IN, 0, 0, 0),
                  ARG("lse", IN, ATTN_LSE, F32, 0, 0, 0), ARG("dQ", OUT, ATTN_Q, IN, 0, 0, 0),
                  ARG("dK", OUT, ATTN_K, IN, 0, 0, 0), ARG("dV", OUT, ATTN_K, IN, 0, 0, 0)},
         .pairs = {{HETRUN_F32, HETRUN_F32}, {HETRUN_F16, HETRUN_F16}, {HETRUN_BF16, HETRUN_BF16}},
         .npairs = 3,
         .flags = HETRUN_OP_CAUSAL | HETRUN_OP_KEY_PADDING_MASK,
         .batched = true,
         .alpha = 0.125,
         .flops = flops_attention_backward,
         .flops_doc = "batch heads kept_pairs (8k + 3)",
         .reduction = HETRUN_RED_ATTN,
         .tol_linear = true,
         .tol_ulps = 16,
         .check = check_attention,
         .reference = hetrun_ref_attention_backward,
         .bench_shape = HETRUN_BENCH_ATTENTION,
         CASES(attention_cases)},
    [HETRUN_OP_LAYERNORM_FORWARD] =
        {.name = "layernorm_forward",
         .summary = "layernorm, also writing mean and rstd",
         .since_minor = 1,
         .arity = 6,
         .args = {ARG("X", IN, MN, IN, 0, 0, 0), ARG("gamma", IN, N, IN, 0, 0, 0),
                  ARG("beta", IN, N, IN, 0, 0, 0), ARG("Y", OUT, MN, IN, 0, 0, 0),
                  ARG("mean", OUT, M, F32, 0, 0, 0), ARG("rstd", OUT, M, F32, 0, 0, 0)},
         FLOAT_PAIRS,
         .alpha = 1,
         .p = {1e-5},
         .flops_mn = 7,
         .flops_doc = "7mn",
         .reduction = HETRUN_RED_N,
         .reference = hetrun_ref_layernorm_forward,
         CASES(rows_cases)},
    [HETRUN_OP_LAYERNORM_BACKWARD] =
        {.name = "layernorm_backward",
         .summary = "dX, dgamma, dbeta of layernorm",
         .since_minor = 1,
         .arity = 8,
         .args = {ARG("X", IN, MN, IN, 0, 0, 0), ARG("gamma", IN, N, IN, 0, 0, 0),
                  ARG("mean", IN, M, F32, 0, 0, 0),
                  ARG("rstd", IN, M, F32, HETRUN_VAL_POSITIVE, 0, 0),
                  ARG("dY", IN, MN, IN, 0, 0, 0), ARG("dX", OUT_BETA, MN, IN, 0, 0, 0),
                  ARG("dgamma", OUT_P1, N, IN, 0, 0, 0), ARG("dbeta", OUT_P1, N, IN, 0, 0, 0)},
         FLOAT_PAIRS,
         .alpha = 1,
         .flops_mn = 14,
         .flops_doc = "14mn",
         .reduction = HETRUN_RED_MAX_MN,
         .tol_linear = true,
         .check = check_layernorm_backward,
         .reference = hetrun_ref_layernorm_backward,
         CASES(layernorm_backward_cases)},
    [HETRUN_OP_SOFTMAX_BACKWARD] = {.name = "softmax_backward",
                                    .summary = "dX = Y (dY - rowsum(dY Y))",
                                    .since_minor = 1,
                                    .arity = 3,
                                    .args = {ARG("Y", IN, MN, IN, HETRUN_VAL_PROB, 0, 0),
                                             ARG("dY", IN, MN, IN, 0, 0, 0),
                                             ARG("dX", OUT, MN, IN, 0, 0, BIT(1))},
                                    FLOAT_PAIRS,
                                    .alpha = 1,
                                    .flops_mn = 4,
                                    .flops_doc = "4mn",
                                    .reduction = HETRUN_RED_N,
                                    .reference = hetrun_ref_softmax_backward,
                                    CASES(inplace_cases)},
    [HETRUN_OP_EMBEDDING_FORWARD] = {.name = "embedding_forward",
                                     .summary = "out[i] = alpha table[ids[i]] + beta out[i]",
                                     .since_minor = 1,
                                     .arity = 3,
                                     .args = {ARG("ids", IN, M, I32, HETRUN_VAL_ID, 0, 0),
                                              ARG("table", IN, KN, IN, 0, 0, 0),
                                              ARG("out", OUT_BETA, MN, IN, 0, 0, 0)},
                                     FLOAT_PAIRS,
                                     .alpha = 1,
                                     .flops_mn = 1,
                                     .flops_doc = "mn",
                                     .check = check_embedding,
                                     .reference = hetrun_ref_embedding_forward,
                                     .bench_shape = HETRUN_BENCH_VOCAB,
                                     CASES(embedding_cases)},
    [HETRUN_OP_EMBEDDING_BACKWARD] =
        {.name = "embedding_backward",
         .summary = "dtable[r] = beta dtable[r] + alpha sum_{ids[i]=r} dout[i]",
         .since_minor = 1,
         .arity = 3,
         .args = {ARG("ids", IN, M, I32, HETRUN_VAL_ID, 0, 0), ARG("dout", IN, MN, IN, 0, 0, 0),
                  ARG("dtable", OUT_BETA, KN, OUT, 0, 0, 0)},
         .pairs = {{HETRUN_F32, HETRUN_F32},
                   {HETRUN_F64, HETRUN_F64},
                   {HETRUN_F16, HETRUN_F16},
                   {HETRUN_BF16, HETRUN_BF16},
                   {HETRUN_F16, HETRUN_F32},
                   {HETRUN_BF16, HETRUN_F32},
                   {HETRUN_F64, HETRUN_F32}},
         .npairs = 7,
         .alpha = 1,
         .flops_mn = 1,
         .flops_doc = "mn",
         .reduction = HETRUN_RED_M,
         .check = check_embedding_backward,
         .reference = hetrun_ref_embedding_backward,
         .bench_shape = HETRUN_BENCH_VOCAB,
         CASES(embedding_cases)},
    [HETRUN_OP_NONFINITE_COUNT] = {.name = "nonfinite_count",
                                   .summary = "count = #NaN/inf in X (+ count if beta)",
                                   .since_minor = 1,
                                   .arity = 2,
                                   .args = {ARG("X", IN, MN, IN, HETRUN_VAL_NONFINITE, 0, 0),
                                            ARG("count", OUT_BETA, ONE, I32, 0, 0, 0)},
                                   FLOAT_PAIRS,
                                   .alpha = 1,
                                   .flops_mn = 1,
                                   .flops_doc = "mn",
                                   .reference = hetrun_ref_nonfinite_count,
                                   CASES(beta_cases)},
    [HETRUN_OP_SUM_SQUARES] = {.name = "sum_squares",
                               .summary = "out = alpha sum X^2 + beta out",
                               .since_minor = 1,
                               .arity = 2,
                               .args = {ARG("X", IN, MN, IN, 0, 0, 0),
                                        ARG("out", OUT_BETA, ONE, F32, 0, 0, 0)},
                               FLOAT_PAIRS,
                               .alpha = 1,
                               .flops_mn = 2,
                               .flops_doc = "2mn",
                               .reduction = HETRUN_RED_MN,
                               .reference = hetrun_ref_sum_squares,
                               CASES(beta_cases)},
};

const hetrun_op_info *hetrun_op_info_of(uint32_t kind) {
    return kind < HETRUN_OP_KIND_COUNT && table[kind].name ? &table[kind] : NULL;
}

const char *hetrun_op_name(hetrun_op_kind kind) {
    const hetrun_op_info *op = hetrun_op_info_of((uint32_t)kind);
    return op ? op->name : NULL;
}

int hetrun_op_from_name(const char *name) {
    for (int i = 0; name && i < HETRUN_OP_KIND_COUNT; i++)
        if (table[i].name && strcmp(name, table[i].name) == 0) return i;
    return -1;
}

/* ---- operand facts, from the row ---- */

static const hetrun_op_arg *arg_of(const hetrun_op_desc *d, int arg) {
    const hetrun_op_info *op = hetrun_op_info_of(d->kind);
    return op && arg >= 0 && arg < op->arity ? &op->args[arg] : NULL;
}

bool hetrun_op_arg_present(const hetrun_op_desc *d, int arg) {
    const hetrun_op_arg *a = arg_of(d, arg);
    return a && (!a->present_flag || (d->flags & a->present_flag));
}

bool hetrun_op_arg_reads(const hetrun_op_desc *d, int arg) {
    const hetrun_op_arg *a = arg_of(d, arg);
    if (!a || !hetrun_op_arg_present(d, arg)) return false;
    switch (a->role) {
    case HETRUN_ARG_IN:
    case HETRUN_ARG_INOUT: return true;
    case HETRUN_ARG_OUT_BETA: return d->beta != 0.0;
    case HETRUN_ARG_OUT_P1: return d->p[1] != 0.0;
    default: return false;
    }
}

bool hetrun_op_arg_writes(const hetrun_op_desc *d, int arg) {
    const hetrun_op_arg *a = arg_of(d, arg);
    return a && a->role != HETRUN_ARG_IN && hetrun_op_arg_present(d, arg);
}

uint64_t hetrun_op_arg_elements(const hetrun_op_desc *d, int arg) {
    const hetrun_op_arg *a = arg_of(d, arg);
    if (!a) return 0;
    const uint64_t m = (uint64_t)d->m, n = (uint64_t)d->n, k = (uint64_t)d->k;
    switch (a->extent) {
    case HETRUN_EXT_MN: return m * n;
    case HETRUN_EXT_M: return m;
    case HETRUN_EXT_N: return n;
    case HETRUN_EXT_KN: return k * n;
    case HETRUN_EXT_ONE: return 1;
    case HETRUN_EXT_GEMM_A:
    case HETRUN_EXT_GEMM_B:
    case HETRUN_EXT_GEMM_C: {
        const int which = a->extent - HETRUN_EXT_GEMM_A;
        const uint64_t one = (uint64_t)gemm_matrix_span(d, which);
        const int64_t stride = hetrun_gemm_batch_stride(d, which);
        return stride ? (uint64_t)(batch_count(d) - 1) * (uint64_t)stride + one : one;
    }
    case HETRUN_EXT_ATTN_Q:
    case HETRUN_EXT_ATTN_K:
    case HETRUN_EXT_ATTN_O: return (uint64_t)attn_span(d, a->extent - HETRUN_EXT_ATTN_Q);
    case HETRUN_EXT_ATTN_MASK: return (uint64_t)batch_count(d) * n;
    case HETRUN_EXT_ATTN_LSE: return (uint64_t)(batch_count(d) * head_count(d)) * m;
    default: return 0;
    }
}

hetrun_dtype hetrun_op_arg_dtype(const hetrun_op_desc *d, int arg) {
    const hetrun_op_arg *a = arg_of(d, arg);
    if (!a) return (hetrun_dtype)d->dtype;
    static const hetrun_dtype fixed[4] = {HETRUN_F32, HETRUN_F32, HETRUN_I32, HETRUN_F32};
    return a->type == HETRUN_TYPE_IN    ? (hetrun_dtype)d->dtype
           : a->type == HETRUN_TYPE_OUT ? (hetrun_dtype)d->out_dtype
                                        : fixed[a->type];
}

uint64_t hetrun_op_arg_bytes(const hetrun_op_desc *d, int arg) {
    return hetrun_op_arg_elements(d, arg) * hetrun_dtype_size(hetrun_op_arg_dtype(d, arg));
}

double hetrun_op_flops(const hetrun_op_desc *d) {
    const hetrun_op_info *op = hetrun_op_info_of(d->kind);
    if (!op) return 0.0;
    return op->flops ? op->flops(d) : op->flops_mn * mn_of(d);
}

double hetrun_op_bytes(const hetrun_op_desc *d) {
    const hetrun_op_info *op = hetrun_op_info_of(d->kind);
    double total = 0.0;
    for (int a = 0; op && a < op->arity; a++) {
        const double b = (double)hetrun_op_arg_bytes(d, a);
        total += (hetrun_op_arg_reads(d, a) ? b : 0.0) + (hetrun_op_arg_writes(d, a) ? b : 0.0);
    }
    return total;
}

double hetrun_op_reduction_length(const hetrun_op_desc *d) {
    const hetrun_op_info *op = hetrun_op_info_of(d->kind);
    const double m = (double)d->m, n = (double)d->n, k = (double)d->k;
    switch (op ? op->reduction : HETRUN_RED_ONE) {
    case HETRUN_RED_K: return k;
    case HETRUN_RED_N: return n;
    case HETRUN_RED_M: return m;
    case HETRUN_RED_MN: return m * n;
    case HETRUN_RED_MAX_MN: return fmax(m, n);
    case HETRUN_RED_ATTN: return k + fmax(m, n);
    default: return 1.0;
    }
}

double hetrun_op_tolerance(const hetrun_op_desc *d) {
    const hetrun_op_info *op = hetrun_op_info_of(d->kind);
    const hetrun_dtype ti = (hetrun_dtype)d->dtype, to = (hetrun_dtype)d->out_dtype;
    const double u_out = fmax(hetrun_dtype_unit_roundoff(ti), hetrun_dtype_unit_roundoff(to));
    double u_acc = hetrun_dtype_unit_roundoff(ti);
    if (ti == HETRUN_F16 || ti == HETRUN_BF16) u_acc = hetrun_dtype_unit_roundoff(HETRUN_F32);
    if (ti == HETRUN_F32 && (d->flags & HETRUN_OP_ALLOW_TF32)) u_acc = 0x1.0p-11;
    const double l = hetrun_op_reduction_length(d);
    if (!op) return 0.0;
    return 4.0 * u_out + op->tol_ulps * u_acc + 8.0 * u_acc * (op->tol_linear ? l : sqrt(l));
}

/* ---- validation: the generic rules, then the row's own ---- */

static const char *flag_name(uint32_t bit) {
    switch (bit) {
    case HETRUN_OP_TRANS_A: return "trans_a";
    case HETRUN_OP_TRANS_B: return "trans_b";
    case HETRUN_OP_ALLOW_TF32: return "allow_tf32";
    case HETRUN_OP_CAUSAL: return "causal";
    case HETRUN_OP_KEY_PADDING_MASK: return "key_padding_mask";
    case HETRUN_OP_HAS_BIAS: return "has_bias";
    case HETRUN_OP_HAS_AUX: return "has_aux";
    case HETRUN_OP_CONST_B: return "const_b";
    default: return "unknown";
    }
}

static bool pair_ok(const hetrun_op_info *op, uint32_t in, uint32_t out) {
    for (int i = 0; i < op->npairs; i++)
        if (op->pairs[i][0] == in && op->pairs[i][1] == out) return true;
    return false;
}

static bool generic_valid(const hetrun_op_info *op, const hetrun_op_desc *d, char *why,
                          size_t len) {
    if (!pair_ok(op, d->dtype, d->out_dtype)) {
        char list[160] = "";
        size_t o = 0;
        for (int i = 0; i < op->npairs && o < sizeof list; i++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s->%s", i ? ", " : "",
                                  dtype_names[op->pairs[i][0]], dtype_names[op->pairs[i][1]]);
        return fail(why, len, "dtype %s / out_dtype %s is not an accepted pair (%s)",
                    dtype_names[d->dtype], dtype_names[d->out_dtype], list);
    }
    if (d->flags & ~op->flags) {
        uint32_t bad = d->flags & ~op->flags;
        return fail(why, len, "flags 0x%x: %s (0x%x) is not a flag of this op (accepted 0x%x)",
                    (unsigned)d->flags, flag_name(bad & -bad), (unsigned)(bad & -bad),
                    (unsigned)op->flags);
    }
    if (op->uses_act && d->act >= HETRUN_ACT_COUNT)
        return fail(why, len, "act %u is not an activation (0..%d)", (unsigned)d->act,
                    HETRUN_ACT_COUNT - 1);
    if (d->m < 1) return fail(why, len, "m %lld must be >= 1", (long long)d->m);
    if (d->n < 1) return fail(why, len, "n %lld must be >= 1", (long long)d->n);
    if (!product_ok(d->m, d->n, MAX_SPAN))
        return fail(why, len, "m %lld x n %lld overflows 2^48 elements", (long long)d->m,
                    (long long)d->n);
    if (v11(d) && d->batch < 0)
        return fail(why, len, "batch %lld must be >= 0", (long long)d->batch);
    if (v11(d) && d->batch > 1 && !op->batched)
        return fail(why, len, "batch %lld: this op is not batched (batch must be 0 or 1)",
                    (long long)d->batch);
    return true;
}

bool hetrun_op_desc_valid(const hetrun_op_desc *d, char *why, size_t len) {
    if (!d) return fail(why, len, "descriptor is NULL");
    if (d->struct_size < HETRUN_OP_DESC_SIZE_V1_0)
        return fail(why, len, "descriptor struct_size %u is smaller than ABI 1.0's %zu",
                    (unsigned)d->struct_size, (size_t)HETRUN_OP_DESC_SIZE_V1_0);
    const hetrun_op_info *op = hetrun_op_info_of(d->kind);
    if (!op) return fail(why, len, "kind %u is not an op kind", (unsigned)d->kind);
    if (op->since_minor >= 1 && !v11(d))
        return fail(why, len, "%s: struct_size %u predates ABI 1.%u (needs %zu)", op->name,
                    (unsigned)d->struct_size, (unsigned)op->since_minor,
                    (size_t)HETRUN_OP_DESC_SIZE_V1_1);
    if (d->dtype >= HETRUN_DTYPE_COUNT || d->out_dtype >= HETRUN_DTYPE_COUNT)
        return fail(why, len, "%s: dtype %u / out_dtype %u is not a dtype", op->name,
                    (unsigned)d->dtype, (unsigned)d->out_dtype);
    char sub[256];
    if (!generic_valid(op, d, sub, sizeof sub) || (op->check && !op->check(d, sub, sizeof sub)))
        return fail(why, len, "%s: %s", op->name, sub);
    return true;
}

/* ---- descriptors for tests and benchmarks ---- */

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

/* Whether the row has an operand with this extent (which geometry the op uses). */
static bool has_extent(const hetrun_op_info *op, int extent) {
    for (int a = 0; a < op->arity; a++)
        if (op->args[a].extent == extent) return true;
    return false;
}

hetrun_op_desc hetrun_op_case_desc(hetrun_op_kind kind, const hetrun_op_case *c, hetrun_dtype dtype,
                                   hetrun_dtype out_dtype, uint32_t act) {
    hetrun_op_desc d = hetrun_op_desc_init(kind, dtype);
    const hetrun_op_info *op = hetrun_op_info_of(kind);
    if (!op) return d;
    d.out_dtype = out_dtype;
    d.m = c->m, d.n = c->n, d.k = c->k;
    d.batch = c->batch, d.heads = c->heads;
    d.flags = c->flags;
    d.act = op->uses_act ? act : 0;
    d.alpha = op->alpha, d.beta = op->beta;
    memcpy(d.p, op->p, sizeof d.p);
    if (c->opts & HETRUN_CASE_BETA) d.beta = c->beta;
    if (c->opts & HETRUN_CASE_P1) d.p[1] = 1.0;
    if (hetrun_dtype_unit_roundoff(out_dtype) == 0.0) /* integer results: exact scalars */
        d.alpha = 1.0, d.beta = d.beta != 0.0 ? 1.0 : 0.0;
    if (has_extent(op, HETRUN_EXT_GEMM_A)) {
        int64_t *ld[3] = {&d.lda, &d.ldb, &d.ldc}, *bs[3] = {&d.stride_a, &d.stride_b, &d.stride_c};
        for (int w = 0; w < 3; w++) {
            int64_t rows, cols, l;
            gemm_shape(&d, w, &rows, &cols, &l);
            *ld[w] = c->pad ? cols + c->pad : 0;
        }
        for (int w = 0; w < 3 && c->batch > 1; w++)
            *bs[w] = (c->broadcast & (1u << w)) ? 0
                     : c->bpad                  ? gemm_matrix_span(&d, w) + c->bpad
                                                : (w == 2 ? 0 : gemm_matrix_span(&d, w));
    } else if (has_extent(op, HETRUN_EXT_ATTN_Q)) {
        const int64_t width = (c->heads > 1 ? c->heads : 1) * c->k;
        const int64_t qk = (c->opts & HETRUN_CASE_FUSED) ? 3 * width : width;
        d.lda = d.ldb = qk + c->pad;
        d.ldc = width + c->pad;
        if (d.lda == width) d.lda = d.ldb = 0; /* packed: say so with 0 */
        if (d.ldc == width) d.ldc = 0;
        if (c->bpad) {
            d.stride_a = c->m * (qk + c->pad) + c->bpad;
            d.stride_b = c->n * (qk + c->pad) + c->bpad;
            d.stride_c = c->m * (width + c->pad) + c->bpad;
        }
    }
    return d;
}

hetrun_op_desc hetrun_op_bench_desc(hetrun_op_kind kind, hetrun_dtype dtype, int64_t size,
                                    int64_t cols) {
    const hetrun_op_info *op = hetrun_op_info_of(kind);
    hetrun_op_case c = {"bench", size, cols, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    hetrun_dtype out = dtype;
    if (op) {
        if (op->ncases) c.k = op->cases[0].k, c.flags = op->cases[0].flags; /* the typical form */
        /* the row's first pair from dtype: int8 GEMM gives int32, fp32 casts give fp16 */
        for (int i = op->npairs - 1; i >= 0; i--)
            if (op->pairs[i][0] == dtype) out = (hetrun_dtype)op->pairs[i][1];
        switch (op->bench_shape) {
        case HETRUN_BENCH_CUBE: c.n = c.k = size; break;
        case HETRUN_BENCH_ATTENTION:
            c.n = size, c.k = 64, c.heads = cols / 64 > 1 ? cols / 64 : 1;
            c.flags |= HETRUN_OP_CAUSAL;
            break;
        case HETRUN_BENCH_VOCAB: c.k = 8192; break;
        default: break;
        }
    }
    return hetrun_op_case_desc(kind, &c, dtype, out, HETRUN_ACT_GELU);
}

/* ---- test values ---- */

static uint64_t splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *state, double lo, double hi) {
    return lo + (hi - lo) * (double)(splitmix(state) >> 11) * 0x1.0p-53;
}

void hetrun_op_fill_arg(const hetrun_op_desc *d, int arg, void *host, uint64_t count,
                        uint64_t *state) {
    const hetrun_op_arg *a = arg_of(d, arg);
    const hetrun_dtype t = hetrun_op_arg_dtype(d, arg);
    const int values = a ? a->values : HETRUN_VAL_UNIFORM;
    int32_t *ints = host;
    for (uint64_t i = 0; i < count; i++) {
        switch (values) {
        case HETRUN_VAL_LABEL: ints[i] = (int32_t)(splitmix(state) % (uint64_t)d->n); break;
        case HETRUN_VAL_ID: ints[i] = (int32_t)(splitmix(state) % (uint64_t)d->k); break;
        case HETRUN_VAL_MASK: /* batch entry 1 keeps no key: its rows are fully masked */
            ints[i] = i / (uint64_t)d->n == 1 ? 0 : (splitmix(state) & 3) != 0;
            break;
        case HETRUN_VAL_POSITIVE:
            hetrun_store_from_double(host, t, i, uniform(state, 0.01, 1.0));
            break;
        case HETRUN_VAL_PROB:
            hetrun_store_from_double(host, t, i, uniform(state, 0.05, 1.05));
            break;
        case HETRUN_VAL_WIDE:
            hetrun_store_from_double(host, t, i, uniform(state, -60000.0, 60000.0));
            break;
        case HETRUN_VAL_NONFINITE: {
            static const double special[3] = {NAN, INFINITY, -INFINITY};
            double v = i % 7 == 3 ? special[(i / 7) % 3] : uniform(state, -1.0, 1.0);
            hetrun_store_from_double(host, t, i, v);
            break;
        }
        default: {
            const double r = t == HETRUN_I8 || t == HETRUN_I32 ? 8.0 : 1.0;
            hetrun_store_from_double(host, t, i, uniform(state, -r, r));
        }
        }
    }
}
