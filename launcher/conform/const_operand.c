/* Constant operands (ABI 1.3): a GEMM or GEMM_BIAS_ACT with HETRUN_OP_CONST_B may run on a copy
 * of B the module keeps. Each case calls it, then changes B's bytes through the module in every
 * way backend.h names (copy_h2d of all or part, copy_d2d, an op writing B, mem_free and a new
 * buffer) and calls it again; then GEMMs on other regions of the same buffer are interleaved.
 * Every call must match the double reference (kernels/reference.c) on B's current bytes, within
 * the op table's tolerance: a copy kept too long gives the old B's product. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform/conform.h"
#include "kernels/catalogue.h"
#include "util/exitcodes.h"

/* f32 cases: few rows (where a module keeps packed weights; the cpu backend up to 128) and
 * 150 rows (past that: its other path). */
static const struct cb_case {
    const char *name;
    hetrun_op_kind kind;
    uint32_t flags, act;
    int64_t m, n, k, pad, off; /* pad: extra elements per row of B; off: B's first element */
    double beta;
} cases[] = {
    {"(a) gemm_bias_act B^T, bias", HETRUN_OP_GEMM_BIAS_ACT, HETRUN_OP_TRANS_B | HETRUN_OP_HAS_BIAS,
     HETRUN_ACT_IDENTITY, 5, 37, 70, 0, 0, 0.0},
    {"(b) gemm B, beta 0.5", HETRUN_OP_GEMM, 0, 0, 3, 20, 33, 0, 0, 0.5},
    {"(c) gemm_bias_act B^T, padded ldb, B at an offset", HETRUN_OP_GEMM_BIAS_ACT,
     HETRUN_OP_TRANS_B | HETRUN_OP_HAS_BIAS, HETRUN_ACT_IDENTITY, 47, 101, 389, 5, 3, 0.0},
    {"(d) gemm_bias_act B^T, 150 rows, relu", HETRUN_OP_GEMM_BIAS_ACT,
     HETRUN_OP_TRANS_B | HETRUN_OP_HAS_BIAS, HETRUN_ACT_RELU, 150, 64, 96, 0, 0, 0.0},
};

/* What a wrong result at each step means. */
static const char *const meaning[9] = {
    "",
    "wrong on the first call with CONST_B, before any copy could be reused",
    "the second call on the same B is wrong: the kept copy does not hold B",
    "a copy of B kept across a copy_h2d into B: the module did not drop its constant-operand copy",
    "a copy of B kept across a copy_h2d into part of B (odd byte bounds): the module did not drop "
    "its constant-operand copy",
    "a copy of B kept across a copy_d2d into B: the module did not drop its constant-operand copy",
    "a copy of B kept across an op (scale, in place) writing B: the module did not drop its "
    "constant-operand copy",
    "a copy of B kept across mem_free: a new buffer was served the freed one's copy",
    "GEMMs with CONST_B on different regions of one buffer: one was served another's copy (the "
    "copy is not keyed by offset and shape)"};

/* One case's buffers and their host mirrors. desc[0] is the case's GEMM; desc[1] the same
 * shape on B one stored row further on; desc[2] B at desc[0]'s offset with one row fewer
 * (n - 1 for B^T, k - 1 otherwise); all three write the same C. */
typedef struct cb_run {
    conform_dev *d;
    const struct cb_case *cs;
    hetrun_op_desc desc[3];
    uint64_t boff[3];              /* B's element offset of each GEMM */
    int64_t ldb, rows, cols, span; /* B as stored: rows x cols, row stride ldb; elements */
    uint64_t nb;                   /* elements of B's buffer */
    hetrun_buffer *a, *b, *bias, *c;
    float *ha, *hb, *hbias, *hc, *got, *want, *tmp;
    uint64_t *state;
    double worst;                           /* largest error / bound of the calls so far */
    int same_handle, same_addr, addr_known; /* step 7's new B: the freed one's handle, address */
    char why[900];
} cb_run;

static int module_error(cb_run *r, int step, const char *what) {
    snprintf(r->why, sizeof r->why, "%s, step %d: %s: %.600s", r->cs->name, step, what,
             r->d->module.ops->last_error());
    return -1;
}

/* New values for all of B's buffer into r->tmp. */
static void new_b(cb_run *r) {
    hetrun_op_fill_arg(&r->desc[0], 1, r->tmp, r->nb, r->state);
}

/* Runs GEMM `g` (C uploaded first), compares C with the reference on the host mirrors. */
static int call(cb_run *r, int g, int step, const char *label) {
    const hetrun_backend_ops *o = r->d->module.ops;
    const hetrun_op_desc *d = &r->desc[g];
    const int epi = d->kind == HETRUN_OP_GEMM_BIAS_ACT, ci = epi ? 3 : 2;
    const uint64_t cbytes = (uint64_t)(d->m * r->desc[0].n) * 4;
    hetrun_tensor args[5] = {{r->a, 0}, {r->b, r->boff[g] * 4}, {r->c, 0}, {NULL, 0}, {NULL, 0}};
    if (epi) args[2] = (hetrun_tensor){r->bias, 0}, args[3] = (hetrun_tensor){r->c, 0};
    hetrun_tensor ws;
    if (o->copy_h2d(r->d->q, args[ci], r->hc, cbytes) != HETRUN_OK)
        return module_error(r, step, "copy_h2d of C");
    if (conform_ws_get(r->d, r->d->q, &r->d->ws, d, &ws) != HETRUN_OK)
        return module_error(r, step, "workspace");
    if (o->op_run(r->d->q, d, args, hetrun_op_arity(d->kind), ws) != HETRUN_OK ||
        o->queue_sync(r->d->q) != HETRUN_OK)
        return module_error(r, step, label);
    if (o->copy_d2h(r->d->q, r->got, args[ci], cbytes) != HETRUN_OK)
        return module_error(r, step, "copy_d2h of C");
    memcpy(r->want, r->hc, cbytes);
    void *host[5] = {r->ha, r->hb + r->boff[g], epi ? r->hbias : r->want, r->want, NULL};
    if (hetrun_reference_run(d, host) != 0)
        return snprintf(r->why, sizeof r->why, "%s: the reference rejected the descriptor",
                        r->cs->name),
               -1;
    double maxdiff = 0.0, maxref = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < d->m; i++)
        for (int64_t j = 0; j < d->n; j++) {
            const int64_t e = i * d->ldc + j;
            const double w = r->want[e], diff = fabs((double)r->got[e] - w);
            if (fabs(w) > maxref) maxref = fabs(w);
            if (diff > maxdiff || (isnan(diff) && maxdiff < INFINITY))
                maxdiff = isnan(diff) ? INFINITY : diff, at = e;
        }
    const double err = maxref > 0.0 ? maxdiff / maxref : maxdiff, tol = hetrun_op_tolerance(d);
    if (err / tol > r->worst) r->worst = err / tol;
    if (err <= tol) return 0;
    snprintf(r->why, sizeof r->why,
             "%s, step %d (%s): C[%lld,%lld] is %.7g, expected %.7g (error %.3g > bound %.3g): %s",
             r->cs->name, step, label, (long long)(at / d->ldc), (long long)(at % d->ldc),
             (double)r->got[at], r->want[at], err, tol, meaning[step]);
    return -1;
}

/* Copies bytes [lo, hi) of B's buffer from r->tmp to the device and the mirror. */
static int put_b(cb_run *r, uint64_t lo, uint64_t hi, int step, const char *what) {
    memcpy((char *)r->hb + lo, (char *)r->tmp + lo, hi - lo);
    if (r->d->module.ops->copy_h2d(r->d->q, (hetrun_tensor){r->b, lo}, (char *)r->tmp + lo,
                                   hi - lo) != HETRUN_OK)
        return module_error(r, step, what);
    return 0;
}

/* Steps 3 to 7: B's bytes change through the module, then the case's GEMM again. */
static int change_steps(cb_run *r) {
    const hetrun_backend_ops *o = r->d->module.ops;
    const uint64_t b0 = r->boff[0] * 4, bspan = (uint64_t)r->span * 4;
    new_b(r); /* 3: all of the buffer */
    if (put_b(r, 0, r->nb * 4, 3, "copy_h2d") || call(r, 0, 3, "copy_h2d into all of B")) return -1;
    /* 4: three stored rows in the middle, from byte 2 of the first to 1 byte short of the end
     * of the last (the mixed floats stay finite: the new bytes hold sign and exponent) */
    const uint64_t r0 = (uint64_t)(r->rows / 2 - 1), row = (uint64_t)r->ldb * 4;
    new_b(r);
    if (put_b(r, b0 + r0 * row + 2, b0 + (r0 + 2) * row + (uint64_t)r->cols * 4 - 1, 4,
              "copy_h2d") ||
        call(r, 0, 4, "copy_h2d into three rows of B"))
        return -1;
    hetrun_buffer *src = NULL; /* 5: copy_d2d from another buffer */
    new_b(r);
    memcpy(r->hb + r->boff[0], r->tmp, bspan);
    int bad = o->mem_alloc(r->d->dev, bspan, &src) != HETRUN_OK ||
              o->copy_h2d(r->d->q, (hetrun_tensor){src, 0}, r->tmp, bspan) != HETRUN_OK ||
              o->copy_d2d(r->d->q, (hetrun_tensor){r->b, b0}, (hetrun_tensor){src, 0}, bspan) !=
                  HETRUN_OK;
    bad = bad ? module_error(r, 5, "copy_d2d into B") : call(r, 0, 5, "copy_d2d into B");
    o->mem_free(src);
    if (bad) return -1;
    /* 6: scale in place (X = Y = B's span), alpha -0.5; the mirror through the reference */
    hetrun_op_desc sc = hetrun_op_desc_init(HETRUN_OP_SCALE, HETRUN_F32);
    sc.n = r->span, sc.alpha = -0.5;
    const hetrun_tensor xy[2] = {{r->b, b0}, {r->b, b0}};
    void *hxy[2] = {r->hb + r->boff[0], r->hb + r->boff[0]};
    hetrun_reference_run(&sc, hxy);
    if (o->op_run(r->d->q, &sc, xy, 2, (hetrun_tensor){NULL, 0}) != HETRUN_OK)
        return module_error(r, 6, "scale");
    if (call(r, 0, 6, "scale -0.5 in place on B")) return -1;
    /* 7: mem_free(B), a buffer of its size, new values: written through the host address when
     * the module has one (no copy the module sees: only the free can have dropped the copy) */
    const int host_ptr = o->struct_size >= HETRUN_OPS_SIZE_V1_2 && o->mem_host_ptr;
    void *old = NULL, *now = NULL;
    if (o->queue_sync(r->d->q) != HETRUN_OK) return module_error(r, 7, "queue_sync");
    if (host_ptr && o->mem_host_ptr(r->b, &old) != HETRUN_OK) old = NULL;
    const uintptr_t old_addr = (uintptr_t)old, old_handle = (uintptr_t)r->b;
    o->mem_free(r->b);
    r->b = NULL;
    if (o->mem_alloc(r->d->dev, r->nb * 4, &r->b) != HETRUN_OK)
        return module_error(r, 7, "mem_alloc after mem_free");
    r->same_handle = (uintptr_t)r->b == old_handle;
    new_b(r);
    if (host_ptr && o->mem_host_ptr(r->b, &now) == HETRUN_OK && now) {
        r->same_addr = (uintptr_t)now == old_addr, r->addr_known = old_addr != 0;
        memcpy(now, r->tmp, r->nb * 4);
        memcpy(r->hb, r->tmp, r->nb * 4);
    } else if (put_b(r, 0, r->nb * 4, 7, "copy_h2d into the new B")) {
        return -1;
    }
    return call(r, 0, 7,
                now ? "mem_free, mem_alloc, written through mem_host_ptr"
                    : "mem_free, mem_alloc, copy_h2d");
}

static int run_case(cb_run *r) {
    const hetrun_backend_ops *o = r->d->module.ops;
    const struct cb_case *cs = r->cs;
    const int64_t mn = cs->m * cs->n;
    r->ha = malloc((size_t)(cs->m * cs->k) * 4), r->hb = malloc(r->nb * 4);
    r->hbias = malloc((size_t)cs->n * 4), r->hc = malloc((size_t)mn * 4);
    r->got = malloc((size_t)mn * 4), r->want = malloc((size_t)mn * 4);
    r->tmp = malloc(r->nb * 4);
    if (!r->ha || !r->hb || !r->hbias || !r->hc || !r->got || !r->want || !r->tmp)
        return snprintf(r->why, sizeof r->why, "%s: out of host memory", cs->name), -1;
    hetrun_op_fill_arg(&r->desc[0], 0, r->ha, (uint64_t)(cs->m * cs->k), r->state);
    /* bias and C take B's value rule: uniform in [-1, 1) */
    hetrun_op_fill_arg(&r->desc[0], 1, r->hbias, (uint64_t)cs->n, r->state);
    hetrun_op_fill_arg(&r->desc[0], 1, r->hc, (uint64_t)mn, r->state);
    if (o->mem_alloc(r->d->dev, (uint64_t)(cs->m * cs->k) * 4, &r->a) != HETRUN_OK ||
        o->mem_alloc(r->d->dev, r->nb * 4, &r->b) != HETRUN_OK ||
        o->mem_alloc(r->d->dev, (uint64_t)cs->n * 4, &r->bias) != HETRUN_OK ||
        o->mem_alloc(r->d->dev, (uint64_t)mn * 4, &r->c) != HETRUN_OK ||
        o->copy_h2d(r->d->q, (hetrun_tensor){r->a, 0}, r->ha, (uint64_t)(cs->m * cs->k) * 4) !=
            HETRUN_OK ||
        o->copy_h2d(r->d->q, (hetrun_tensor){r->bias, 0}, r->hbias, (uint64_t)cs->n * 4) !=
            HETRUN_OK)
        return module_error(r, 1, "setup");
    new_b(r);
    if (put_b(r, 0, r->nb * 4, 1, "copy_h2d of B") || call(r, 0, 1, "first call") ||
        call(r, 0, 2, "same call again") || change_steps(r))
        return -1;
    new_b(r); /* 8: three GEMMs on regions of one B, interleaved */
    if (put_b(r, 0, r->nb * 4, 8, "copy_h2d")) return -1;
    static const char *const order[3] = {"the case's GEMM", "B one row further on",
                                         "B with one row fewer"};
    char label[96];
    for (int i = 0; i < 6; i++) {
        snprintf(label, sizeof label, "three GEMMs on one B, call %d of 6: %s", i + 1,
                 order[i % 3]);
        if (call(r, i % 3, 8, label)) return -1;
    }
    return 0;
}

static void free_case(cb_run *r) {
    const hetrun_backend_ops *o = r->d->module.ops;
    o->queue_sync(r->d->q);
    o->mem_free(r->a), o->mem_free(r->b), o->mem_free(r->bias), o->mem_free(r->c);
    free(r->ha), free(r->hb), free(r->hbias), free(r->hc), free(r->got), free(r->want);
    free(r->tmp);
}

/* The case's three descriptors and B's geometry. */
static void setup(cb_run *r, const struct cb_case *cs) {
    hetrun_op_desc *d = &r->desc[0];
    *d = hetrun_op_desc_init(cs->kind, HETRUN_F32);
    const int trans = (cs->flags & HETRUN_OP_TRANS_B) != 0;
    d->flags = cs->flags | HETRUN_OP_CONST_B, d->act = cs->act, d->beta = cs->beta;
    d->m = cs->m, d->n = cs->n, d->k = cs->k, d->lda = cs->k, d->ldc = cs->n;
    r->rows = trans ? cs->n : cs->k, r->cols = trans ? cs->k : cs->n;
    r->ldb = d->ldb = r->cols + cs->pad;
    r->span = (r->rows - 1) * r->ldb + r->cols;
    r->nb = (uint64_t)(cs->off + (r->rows + 1) * r->ldb); /* one more row, for desc[1] */
    r->desc[1] = r->desc[2] = *d;
    *(trans ? &r->desc[2].n : &r->desc[2].k) -= 1;
    r->boff[0] = r->boff[2] = (uint64_t)cs->off, r->boff[1] = (uint64_t)(cs->off + r->ldb);
}

int conform_group_const_operand(const conform_opts *opts, int device) {
    conform_dev d;
    int rc = conform_dev_open_check(&d, opts, device, "const_operand");
    if (rc != 0) return rc;
    const hetrun_backend_ops *o = d.module.ops;
    if (o->abi_minor < 3) {
        conform_emit_check(device, "const_operand", CONFORM_SKIP,
                           "module declares ABI 1.%u: it predates 1.3 and is never sent "
                           "HETRUN_OP_CONST_B",
                           o->abi_minor);
        conform_dev_close(&d);
        return 0;
    }
    uint64_t state = 20261201;
    int run = 0, fails = 0, same_handle = 0, same_addr = 0, addr_known = 0;
    double worst = 0.0;
    char first[900] = "", unsup[300] = "";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cb_run r = {.d = &d, .cs = &cases[i], .state = &state};
        setup(&r, &cases[i]);
        hetrun_status st = HETRUN_OK;
        for (int g = 0; g < 3 && st == HETRUN_OK; g++)
            st = o->op_supported(d.dev, &r.desc[g]);
        if (st == HETRUN_ERR_UNSUPPORTED) {
            size_t u = strlen(unsup);
            snprintf(unsup + u, sizeof unsup - u, "%s%s", u ? ", " : "", cases[i].name);
            if (opts->verbose)
                conform_emit_log(device, CONFORM_SKIP, "const_operand %s: %s", cases[i].name,
                                 o->last_error());
            continue;
        }
        int bad;
        if (st != HETRUN_OK) {
            snprintf(r.why, sizeof r.why, "%s: op_supported returned %d with CONST_B: %.600s",
                     cases[i].name, st, o->last_error());
            bad = 1;
        } else {
            bad = run_case(&r) != 0;
            free_case(&r);
        }
        run++, same_handle += r.same_handle, same_addr += r.same_addr, addr_known += r.addr_known;
        if (r.worst > worst) worst = r.worst;
        if (!bad && opts->verbose)
            conform_emit_log(device, CONFORM_PASS,
                             "const_operand %s: 8 steps match, worst error %.2g of its bound",
                             cases[i].name, r.worst);
        if (!bad) continue;
        conform_emit_log(device, CONFORM_FAIL, "const_operand %s", r.why);
        if (!fails++) snprintf(first, sizeof first, "%s", r.why);
    }
    char addr[64] = "its address not known (no mem_host_ptr)";
    if (addr_known) snprintf(addr, sizeof addr, "its address in %d of %d", same_addr, addr_known);
    if (fails)
        conform_emit_check(device, "const_operand", CONFORM_FAIL,
                           "%d of %d cases failed; first: %s", fails, run, first);
    else if (!run)
        conform_emit_check(device, "const_operand", CONFORM_SKIP,
                           "no case supported (fp32 gemm, gemm_bias_act): %s", unsup);
    else
        conform_emit_check(device, "const_operand", CONFORM_PASS,
                           "%d cases x 8 steps with CONST_B (repeat; copy_h2d into all and part "
                           "of B; copy_d2d; scale in place; mem_free + mem_alloc, the freed handle "
                           "reused in %d, %s; three regions of one B): all match the reference, "
                           "worst error %.2g of its bound%s%s",
                           run, same_handle, addr, worst, unsup[0] ? "; unsupported: " : "", unsup);
    conform_dev_close(&d);
    return fails ? HETRUN_EXIT_FAILED : 0;
}
