/* The numeric group: every op x dtype pair x case of the op table (kernels/catalogue.c) the
 * module claims, on random (never all-zero) inputs, against kernels/reference.c in double
 * precision (the cpu backend, and every case of at most CONFORM_REFERENCE_FLOPS for the other
 * modules) or against the cpu backend (larger cases of every other module: the double
 * reference would take minutes). Small cases must not be judged against the cpu backend's
 * own float rounding: a one-element GELU backward near its zero (x = -0.75) has a normwise
 * error of 1% between two correctly rounded float results. Outputs the op
 * does not read are poisoned with NaN bytes first, so an unwritten element fails, and so does
 * a write into padding. Error metric per output: max |out - ref| / max |ref| (normwise; for
 * ops that reduce, at least the largest operand: term_scale), bound: the table's
 * hetrun_op_tolerance, twice that against the cpu backend (both round).
 * Two contract checks come from the same cases: "inplace" (the aliasing forms the table
 * allows) and "beta0_no_read" (an output the op must not read, poisoned with NaN). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform/conform.h"
#include "kernels/catalogue.h"
#include "kernels/reference.h"
#include "util/exitcodes.h"

/* Cases up to this many FLOPs are checked against the double reference on every module. */
#define CONFORM_REFERENCE_FLOPS 5e7

/* Where each operand lives: buffer `buf` (an operand index: the owner), element offset. */
typedef struct layout {
    int arity, buf[HETRUN_OP_MAX_ARGS];
    uint64_t off[HETRUN_OP_MAX_ARGS];   /* elements of the operand's dtype */
    uint64_t bytes[HETRUN_OP_MAX_ARGS]; /* per owner: the buffer's size */
} layout;

static uint64_t esize(const hetrun_op_desc *d, int a) {
    return hetrun_dtype_size(hetrun_op_arg_dtype(d, a));
}

/* Own buffers, then the case's sharing: in-place outputs on their partner input, fused
 * Q, K, V (and dQ, dK, dV) interleaved in one buffer of rows [Q | K | V]. */
static int make_layout(const hetrun_op_desc *d, const hetrun_op_case *c, layout *l, char *why,
                       size_t len) {
    const hetrun_op_info *op = hetrun_op_info_of(d->kind);
    l->arity = op->arity;
    for (int a = 0; a < op->arity; a++)
        l->buf[a] = a, l->off[a] = (uint64_t)c->offset;
    for (int a = 0; a < op->arity; a++) {
        uint32_t partners = op->args[a].may_alias;
        if (!(c->opts & (HETRUN_CASE_INPLACE | HETRUN_CASE_INPLACE2)) || !partners) continue;
        int b = (c->opts & HETRUN_CASE_INPLACE2) ? 31 - __builtin_clz(partners)
                                                 : __builtin_ctz(partners);
        if (hetrun_op_arg_dtype(d, a) != hetrun_op_arg_dtype(d, b) ||
            hetrun_op_arg_elements(d, a) != hetrun_op_arg_elements(d, b)) {
            snprintf(why, len, "table: %s operand %d may alias %d but their shapes differ",
                     op->name, a, b);
            return -1;
        }
        l->buf[a] = b;
    }
    if (c->opts & HETRUN_CASE_FUSED) {
        const uint64_t width = (uint64_t)((d->heads > 1 ? d->heads : 1) * d->k);
        for (int a = 0; a + 2 < op->arity; a++)
            if (op->args[a].extent == HETRUN_EXT_ATTN_Q &&
                op->args[a + 1].extent == HETRUN_EXT_ATTN_K &&
                op->args[a + 2].extent == HETRUN_EXT_ATTN_K) {
                for (int j = 1; j < 3; j++)
                    l->buf[a + j] = a, l->off[a + j] = l->off[a] + (uint64_t)j * width;
            }
    }
    memset(l->bytes, 0, sizeof l->bytes);
    for (int a = 0; a < op->arity; a++) {
        uint64_t end = (l->off[a] + hetrun_op_arg_elements(d, a)) * esize(d, a);
        if (hetrun_op_arg_present(d, a) && end > l->bytes[l->buf[a]]) l->bytes[l->buf[a]] = end;
    }
    return 0;
}

/* Host contents: everything poisoned (NaN bytes in every float format), then every operand
 * the op reads filled with the table's values; an in-place output keeps its partner's. */
static void fill_host(const hetrun_op_desc *d, const layout *l, void *const *host,
                      uint64_t *state) {
    for (int a = 0; a < l->arity; a++)
        if (l->bytes[a]) memset(host[a], 0xff, l->bytes[a]);
    for (int a = 0; a < l->arity; a++)
        if (hetrun_op_arg_reads(d, a))
            hetrun_op_fill_arg(d, a, (char *)host[l->buf[a]] + l->off[a] * esize(d, a),
                               hetrun_op_arg_elements(d, a), state);
}

/* Runs desc on a backend: uploads `in`, runs, downloads every buffer into `out`. */
static int run_on(conform_dev *b, const hetrun_op_desc *d, const layout *l, void *const *in,
                  void *const *out, char *why, size_t whylen) {
    const hetrun_backend_ops *o = b->module.ops;
    int rc = -1;
    hetrun_buffer *buf[HETRUN_OP_MAX_ARGS] = {0}, *ws = NULL;
    hetrun_tensor args[HETRUN_OP_MAX_ARGS];
    uint64_t ws_bytes = 0;
    for (int a = 0; a < l->arity; a++) {
        if (!l->bytes[a]) continue;
        if (o->mem_alloc(b->dev, l->bytes[a], &buf[a]) != HETRUN_OK) goto fail;
        if (o->copy_h2d(b->q, (hetrun_tensor){buf[a], 0}, in[a], l->bytes[a]) != HETRUN_OK)
            goto fail;
    }
    for (int a = 0; a < l->arity; a++) {
        args[a].buffer = hetrun_op_arg_present(d, a) ? buf[l->buf[a]] : NULL;
        args[a].offset = args[a].buffer ? l->off[a] * esize(d, a) : 0;
    }
    if (o->op_workspace_size(b->dev, d, &ws_bytes) != HETRUN_OK) goto fail;
    if (ws_bytes && o->mem_alloc(b->dev, ws_bytes, &ws) != HETRUN_OK) goto fail;
    if (o->op_run(b->q, d, args, l->arity, (hetrun_tensor){ws, 0}) != HETRUN_OK ||
        o->queue_sync(b->q) != HETRUN_OK)
        goto fail;
    for (int a = 0; a < l->arity; a++)
        if (l->bytes[a] &&
            o->copy_d2h(b->q, out[a], (hetrun_tensor){buf[a], 0}, l->bytes[a]) != HETRUN_OK)
            goto fail;
    rc = 0;
fail:
    if (rc != 0) snprintf(why, whylen, "%s", o->last_error());
    o->queue_sync(b->q); /* the contract lets mem_free wait; this run does not test that */
    for (int a = 0; a < l->arity; a++)
        o->mem_free(buf[a]);
    o->mem_free(ws);
    return rc;
}

/* Largest |value| over the floating-point operands an op that reduces reads, else 0. The
 * rounding error of a sum is bounded by the size of its terms, not of its result: an output
 * that cancels (the mean of a short row near 0; dX of a one-column LayerNorm, zero up to the
 * rounding of its F32 mean) is judged against this scale instead of its own tiny size, as
 * two correct results differ there far beyond the normwise bound (seen on an H200). */
static double term_scale(const hetrun_op_desc *d, const layout *l, void *const *in) {
    const hetrun_op_info *op = hetrun_op_info_of(d->kind);
    if (op->reduction == HETRUN_RED_ONE) return 0.0;
    double scale = 0.0;
    for (int a = 0; a < op->arity; a++) {
        const hetrun_dtype t = hetrun_op_arg_dtype(d, a);
        if (op->args[a].role != HETRUN_ARG_IN || !hetrun_op_arg_present(d, a) ||
            hetrun_dtype_unit_roundoff(t) == 0.0) /* integer operands (ids, int8) */
            continue;
        const char *v = (const char *)in[l->buf[a]] + l->off[a] * esize(d, a);
        for (uint64_t i = 0, n = hetrun_op_arg_elements(d, a); i < n; i++) {
            const double x = fabs(hetrun_load_as_double(v, t, i));
            if (isfinite(x) && x > scale) scale = x;
        }
    }
    return scale;
}

/* Normwise relative error of output `a`. Elements with the same bits on both sides (padding
 * left alone, -inf statistics of fully masked rows) agree; any other non-finite value, or a
 * write into padding, gives +inf. `scale` is a floor for max |ref|. */
static double compare(const hetrun_op_desc *d, const layout *l, int a, void *const *got,
                      void *const *want, double scale) {
    const hetrun_dtype t = hetrun_op_arg_dtype(d, a);
    const size_t es = esize(d, a);
    const char *g0 = (const char *)got[l->buf[a]] + l->off[a] * es;
    const char *w0 = (const char *)want[l->buf[a]] + l->off[a] * es;
    double maxdiff = 0.0, maxref = scale;
    for (uint64_t i = 0, n = hetrun_op_arg_elements(d, a); i < n; i++) {
        double w = hetrun_load_as_double(w0, t, i);
        if (isfinite(w) && fabs(w) > maxref) maxref = fabs(w);
        if (memcmp(g0 + i * es, w0 + i * es, es) == 0) continue;
        double g = hetrun_load_as_double(g0, t, i);
        if (!isfinite(g) || !isfinite(w)) return INFINITY;
        if (fabs(g - w) > maxdiff) maxdiff = fabs(g - w);
    }
    return maxref > 0.0 ? maxdiff / maxref : maxdiff;
}

/* One op x dtype pair's tally, and the contract checks its cases feed. */
typedef struct tally {
    int pass, fail, unsup;
    double worst_err, worst_bound, worst_ratio; /* the output with the largest err / bound */
    bool have;
} tally;

typedef struct contract_tally {
    int run, fail;
    char first[768]; /* the first failure, for the certificate */
} contract_tally;

static void alloc_all(const layout *l, void **p) {
    for (int a = 0; a < l->arity; a++)
        p[a] = l->bytes[a] ? malloc(l->bytes[a]) : NULL;
}

static void free_all(const layout *l, void **p) {
    for (int a = 0; a < l->arity; a++)
        free(p[a]);
}

/* Whether the case leaves an output the op could read (beta, p[1]) unread: poisoned. */
static bool unread_output(const hetrun_op_desc *d) {
    const hetrun_op_info *op = hetrun_op_info_of(d->kind);
    for (int a = 0; a < op->arity; a++) {
        const int role = op->args[a].role;
        if ((role == HETRUN_ARG_OUT_BETA || role == HETRUN_ARG_OUT_P1) &&
            hetrun_op_arg_present(d, a) && !hetrun_op_arg_reads(d, a))
            return true;
    }
    return false;
}

typedef struct run_ctx {
    const conform_opts *o;
    conform_dev *target, *ref; /* ref NULL: kernels/reference.c */
    uint64_t state;
    contract_tally inplace, beta0;
} run_ctx;

static void note_contract(contract_tally *c, bool ok, const char *label, const char *what) {
    c->run++;
    if (ok) return;
    if (!c->fail++) snprintf(c->first, sizeof c->first, "%s: %s", label, what);
}

/* Returns 1 pass, 0 fail, -1 unsupported. */
static int check_case(run_ctx *x, const hetrun_op_desc *d, const hetrun_op_case *c, tally *t) {
    const hetrun_backend_ops *o = x->target->module.ops;
    const hetrun_op_info *op = hetrun_op_info_of(d->kind);
    const int dev = x->target->index;
    char label[320];
    snprintf(label, sizeof label, "%s %s->%s%s%s m=%lld n=%lld k=%lld batch=%lld [%s]", op->name,
             hetrun_dtype_name(d->dtype), hetrun_dtype_name(d->out_dtype), op->uses_act ? " " : "",
             op->uses_act ? hetrun_activation_name((hetrun_activation)d->act) : "", (long long)d->m,
             (long long)d->n, (long long)d->k, (long long)d->batch, c->what);
    char why[1024] = "";
    if (!hetrun_op_desc_valid(d, why, sizeof why)) {
        conform_emit_log(dev, CONFORM_FAIL, "%s: the table's own case is invalid: %s", label, why);
        return 0;
    }
    /* A module of an older ABI minor is never shown newer ops or fields (ops.h). */
    const bool v11_fields =
        d->batch > 1 || d->heads > 1 || d->stride_a || d->stride_b || d->stride_c;
    if (o->abi_minor < op->since_minor || (o->abi_minor < 1 && v11_fields)) {
        if (x->o->verbose)
            conform_emit_log(dev, CONFORM_SKIP, "%s: module declares ABI 1.%u", label,
                             o->abi_minor);
        return -1;
    }
    hetrun_status st = o->op_supported(x->target->dev, d);
    if (st == HETRUN_ERR_UNSUPPORTED) {
        if (x->o->verbose) conform_emit_log(dev, CONFORM_SKIP, "%s: %s", label, o->last_error());
        return -1;
    }
    if (st != HETRUN_OK) {
        conform_emit_log(dev, CONFORM_FAIL,
                         "%s: op_supported returned %d for a valid descriptor: %s", label, st,
                         o->last_error());
        return 0;
    }
    layout l;
    if (make_layout(d, c, &l, why, sizeof why) != 0) {
        conform_emit_log(dev, CONFORM_FAIL, "%s: %s", label, why);
        return 0;
    }
    void *in[HETRUN_OP_MAX_ARGS], *got[HETRUN_OP_MAX_ARGS], *want[HETRUN_OP_MAX_ARGS];
    alloc_all(&l, in), alloc_all(&l, got), alloc_all(&l, want);
    fill_host(d, &l, in, &x->state);
    for (int a = 0; a < l.arity; a++)
        if (l.bytes[a]) memcpy(want[a], in[a], l.bytes[a]);
    int ok = 1;
    char what[512] = "";
    const bool against_cpu = x->ref && hetrun_op_flops(d) > CONFORM_REFERENCE_FLOPS;
    if (run_on(x->target, d, &l, in, got, why, sizeof why) != 0) {
        snprintf(what, sizeof what, "backend error: %.480s", why);
        ok = 0;
    } else if (against_cpu) {
        if (run_on(x->ref, d, &l, in, want, why, sizeof why) != 0) {
            snprintf(what, sizeof what, "reference (cpu) error: %.460s", why);
            ok = 0;
        }
    } else {
        void *args[HETRUN_OP_MAX_ARGS];
        for (int a = 0; a < l.arity; a++)
            args[a] = hetrun_op_arg_present(d, a) ? (char *)want[l.buf[a]] + l.off[a] * esize(d, a)
                                                  : NULL;
        if (hetrun_reference_run(d, args) != 0) {
            snprintf(what, sizeof what, "reference rejected the descriptor");
            ok = 0;
        }
    }
    const double tol = hetrun_op_tolerance(d) * (against_cpu ? 2.0 : 1.0);
    const double scale = term_scale(d, &l, in);
    for (int a = 0; ok && a < l.arity; a++) {
        if (!hetrun_op_arg_writes(d, a)) continue;
        double err = compare(d, &l, a, got, want, scale);
        const double ratio = tol > 0.0 ? err / tol : (err > 0.0 ? INFINITY : 0.0);
        if (!t->have || !(ratio <= t->worst_ratio))
            t->worst_err = err, t->worst_bound = tol, t->worst_ratio = ratio, t->have = true;
        if (!(err <= tol)) {
            snprintf(what, sizeof what, "%s error %.3g > %.3g", op->args[a].name, err, tol);
            ok = 0;
        } else if (x->o->verbose) {
            conform_emit_log(dev, CONFORM_PASS, "%s: %s error %.3g <= %.3g", label,
                             op->args[a].name, err, tol);
        }
    }
    if (!ok) conform_emit_log(dev, CONFORM_FAIL, "%s: %s", label, what);
    if (c->opts & (HETRUN_CASE_INPLACE | HETRUN_CASE_INPLACE2))
        note_contract(&x->inplace, ok, label, what);
    if (unread_output(d)) note_contract(&x->beta0, ok, label, what);
    free_all(&l, in), free_all(&l, got), free_all(&l, want);
    return ok;
}

static void emit_contract(int dev, const char *name, const contract_tally *c, const char *what) {
    if (!c->run)
        conform_emit_check(dev, name, CONFORM_SKIP, "no %s case selected or supported", what);
    else if (c->fail)
        conform_emit_check(dev, name, CONFORM_FAIL, "%d of %d %s cases failed; first: %s", c->fail,
                           c->run, what, c->first);
    else
        conform_emit_check(dev, name, CONFORM_PASS, "%d %s cases", c->run, what);
}

int conform_group_ops(const conform_opts *o, int device) {
    conform_dev target, ref;
    char why[2048];
    int rc = conform_dev_open(&target, o->backend, device, why, sizeof why);
    if (rc != 0) {
        conform_emit_check(device, "ops", CONFORM_FAIL, "%s", why);
        return rc;
    }
    const int is_cpu = strcmp(o->backend, "cpu") == 0;
    if (!is_cpu && (rc = conform_dev_open(&ref, "cpu", 0, why, sizeof why)) != 0) {
        conform_emit_check(device, "ops", CONFORM_FAIL, "the reference: %s", why);
        conform_dev_close(&target);
        return rc;
    }
    run_ctx x = {o, &target, is_cpu ? NULL : &ref, 20261122, {0, 0, ""}, {0, 0, ""}};
    int pass = 0, fail = 0;
    for (int kind = 0; kind < HETRUN_OP_KIND_COUNT; kind++) {
        const hetrun_op_info *op = hetrun_op_info_of((uint32_t)kind);
        if (o->only_op && hetrun_op_from_name(o->only_op) != kind) continue;
        for (int p = 0; p < op->npairs; p++) {
            if (o->only_dtype && hetrun_dtype_from_name(o->only_dtype) != op->pairs[p][0]) continue;
            tally t = {0, 0, 0, 0.0, 0.0, 0.0, false};
            /* BIG cases are slow on the double reference, and in --quick runs. */
            for (int ci = 0; ci < op->ncases; ci++) {
                const hetrun_op_case *cs = &op->cases[ci];
                if ((cs->opts & HETRUN_CASE_BIG) && (o->quick || is_cpu)) continue;
                for (int act = 0; act < (op->uses_act ? HETRUN_ACT_COUNT : 1); act++) {
                    hetrun_op_desc d =
                        hetrun_op_case_desc((hetrun_op_kind)kind, cs, (hetrun_dtype)op->pairs[p][0],
                                            (hetrun_dtype)op->pairs[p][1], (uint32_t)act);
                    int r = check_case(&x, &d, cs, &t);
                    r > 0 ? t.pass++ : r == 0 ? t.fail++ : t.unsup++;
                }
            }
            conform_record rec;
            memset(&rec, 0, sizeof rec);
            rec.type = CONFORM_REC_OP;
            rec.device = device;
            rec.op = kind, rec.dtype = op->pairs[p][0], rec.out_dtype = op->pairs[p][1];
            rec.pass = t.pass, rec.fail = t.fail, rec.unsup = t.unsup;
            rec.status = t.fail ? CONFORM_FAIL : t.pass ? CONFORM_PASS : CONFORM_SKIP;
            rec.max_err = t.worst_err, rec.bound = t.worst_bound;
            conform_emit(&rec);
            pass += t.pass, fail += t.fail;
        }
    }
    emit_contract(device, "inplace", &x.inplace, "in-place");
    emit_contract(device, "beta0_no_read", &x.beta0, "unread-output (beta 0, p[1] 0)");
    conform_dev_close(&target);
    if (!is_cpu) conform_dev_close(&ref);
    return fail ? HETRUN_EXIT_FAILED : pass ? 0 : HETRUN_EXIT_NOTHING;
}
