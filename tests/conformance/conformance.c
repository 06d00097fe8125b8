/* hetrun-conformance: runs every op x dtype pair x case of the op table (kernels/catalogue.c)
 * that a backend claims, on random (never all-zero) inputs, and compares with the reference:
 *   - the cpu backend is compared with kernels/reference.c (double precision);
 *   - every other backend is compared with the cpu backend.
 * The cases come from the table: odd and round sizes, transposes, padded row and batch
 * strides, broadcast batch operands, non-zero offsets, in-place forms where the table allows
 * aliasing, fused QKV buffers, causal and key-padding masks, fully masked rows, beta 0 over
 * a NaN output. Outputs the op does not read are poisoned (NaN bytes) first, so an unwritten
 * element fails, and so does a write into padding the op must leave alone.
 * Error metric (per output operand): max_i |out_i - ref_i| / max_i |ref_i| (normwise). The
 * bound is the table's hetrun_op_tolerance (unit roundoffs and the reduction length), twice
 * that when the reference is the cpu backend (both sides round). Invalid descriptors (shape
 * overflow, overlapping batch strides, foreign flags, mismatched dtypes, wrong operand
 * count...) must give HETRUN_ERR_INVALID with a message naming the op, field and value.
 * Exit: 0 all passed, 1 a failure, 2 usage, 77 backend unavailable (skipped).
 *
 * usage: hetrun-conformance --backend NAME [--device N] [--op NAME] [--dtype NAME]
 *                           [--quick] [--verbose]
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invalid_cases.h"
#include "kernels/catalogue.h"
#include "kernels/reference.h"
#include "loader/loader.h"
#include "util/log.h"

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
static int run_on(backend_ctx *b, const hetrun_op_desc *d, const layout *l, void *const *in,
                  void *const *out, int nargs, char *why, size_t whylen) {
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
    if (o->op_run(b->q, d, args, nargs, (hetrun_tensor){ws, 0}) != HETRUN_OK ||
        o->queue_sync(b->q) != HETRUN_OK)
        goto fail;
    for (int a = 0; a < l->arity; a++)
        if (l->bytes[a] &&
            o->copy_d2h(b->q, out[a], (hetrun_tensor){buf[a], 0}, l->bytes[a]) != HETRUN_OK)
            goto fail;
    rc = 0;
fail:
    if (rc != 0) snprintf(why, whylen, "%s", o->last_error());
    for (int a = 0; a < l->arity; a++)
        o->mem_free(buf[a]);
    o->mem_free(ws);
    return rc;
}

/* Normwise relative error of output `a`. Elements with the same bits on both sides (padding
 * left alone, -inf statistics of fully masked rows) agree; any other non-finite value, or a
 * write into padding, gives +inf. */
static double compare(const hetrun_op_desc *d, const layout *l, int a, void *const *got,
                      void *const *want) {
    const hetrun_dtype t = hetrun_op_arg_dtype(d, a);
    const size_t es = esize(d, a);
    const char *g0 = (const char *)got[l->buf[a]] + l->off[a] * es;
    const char *w0 = (const char *)want[l->buf[a]] + l->off[a] * es;
    double maxdiff = 0.0, maxref = 0.0;
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

typedef struct tally {
    int pass, fail, unsup;
} tally;

static void alloc_all(const layout *l, void **p) {
    for (int a = 0; a < l->arity; a++)
        p[a] = l->bytes[a] ? malloc(l->bytes[a]) : NULL;
}

static void free_all(const layout *l, void **p) {
    for (int a = 0; a < l->arity; a++)
        free(p[a]);
}

static void check_case(backend_ctx *target, backend_ctx *ref, const hetrun_op_desc *d,
                       const hetrun_op_case *c, uint64_t *state, tally *t) {
    const hetrun_backend_ops *o = target->module.ops;
    const hetrun_op_info *op = hetrun_op_info_of(d->kind);
    char label[320];
    snprintf(label, sizeof label, "%s %s->%s%s%s m=%lld n=%lld k=%lld batch=%lld [%s]", op->name,
             hetrun_dtype_name(d->dtype), hetrun_dtype_name(d->out_dtype), op->uses_act ? " " : "",
             op->uses_act ? hetrun_activation_name((hetrun_activation)d->act) : "", (long long)d->m,
             (long long)d->n, (long long)d->k, (long long)d->batch, c->what);
    char why[1024] = "";
    if (!hetrun_op_desc_valid(d, why, sizeof why)) {
        printf("  FAIL  %s: the table's own case is invalid: %s\n", label, why);
        t->fail++;
        return;
    }
    /* A module of an older ABI minor is never shown newer ops or fields (ops.h). */
    const bool v11_fields =
        d->batch > 1 || d->heads > 1 || d->stride_a || d->stride_b || d->stride_c;
    if (o->abi_minor < op->since_minor || (o->abi_minor < 1 && v11_fields)) {
        if (verbose) printf("  unsupported  %s: module declares ABI 1.%u\n", label, o->abi_minor);
        t->unsup++;
        return;
    }
    hetrun_status st = o->op_supported(target->dev, d);
    if (st == HETRUN_ERR_UNSUPPORTED) {
        if (verbose) printf("  unsupported  %s: %s\n", label, o->last_error());
        t->unsup++;
        return;
    }
    if (st != HETRUN_OK) {
        printf("  FAIL  %s: op_supported returned %d for a valid descriptor: %s\n", label, st,
               o->last_error());
        t->fail++;
        return;
    }
    layout l;
    if (make_layout(d, c, &l, why, sizeof why) != 0) {
        printf("  FAIL  %s: %s\n", label, why);
        t->fail++;
        return;
    }
    void *in[HETRUN_OP_MAX_ARGS], *got[HETRUN_OP_MAX_ARGS], *want[HETRUN_OP_MAX_ARGS];
    alloc_all(&l, in), alloc_all(&l, got), alloc_all(&l, want);
    fill_host(d, &l, in, state);
    for (int a = 0; a < l.arity; a++)
        if (l.bytes[a]) memcpy(want[a], in[a], l.bytes[a]);
    int ok = 1;
    if (run_on(target, d, &l, in, got, l.arity, why, sizeof why) != 0) {
        printf("  FAIL  %s: backend error: %s\n", label, why);
        ok = 0;
    } else if (ref) {
        if (run_on(ref, d, &l, in, want, l.arity, why, sizeof why) != 0) {
            printf("  FAIL  %s: reference (cpu) error: %s\n", label, why);
            ok = 0;
        }
    } else {
        void *args[HETRUN_OP_MAX_ARGS];
        for (int a = 0; a < l.arity; a++)
            args[a] = hetrun_op_arg_present(d, a) ? (char *)want[l.buf[a]] + l.off[a] * esize(d, a)
                                                  : NULL;
        if (hetrun_reference_run(d, args) != 0) {
            printf("  FAIL  %s: reference rejected the descriptor\n", label);
            ok = 0;
        }
    }
    const double tol = hetrun_op_tolerance(d) * (ref ? 2.0 : 1.0);
    for (int a = 0; ok && a < l.arity; a++) {
        if (!hetrun_op_arg_writes(d, a)) continue;
        double err = compare(d, &l, a, got, want);
        if (!(err <= tol)) {
            printf("  FAIL  %s: %s error %.3g > %.3g\n", label, op->args[a].name, err, tol);
            ok = 0;
        } else if (verbose) {
            printf("  pass  %s: %s error %.3g <= %.3g\n", label, op->args[a].name, err, tol);
        }
    }
    free_all(&l, in), free_all(&l, got), free_all(&l, want);
    ok ? t->pass++ : t->fail++;
}

/* Each invalid descriptor through op_supported and op_run: HETRUN_ERR_INVALID, with a
 * message that names the op, the field and the value. */
static void check_invalid(backend_ctx *b, tally *t) {
    const hetrun_backend_ops *o = b->module.ops;
    for (int i = 0; i < hetrun_invalid_case_count; i++) {
        const hetrun_invalid_case *c = &hetrun_invalid_cases[i];
        hetrun_op_desc d = hetrun_invalid_desc(c);
        const hetrun_op_info *op = hetrun_op_info_of(d.kind);
        int nargs = op->arity + c->nargs_delta;
        uint64_t bytes = 1 << 20;
        hetrun_buffer *buf = NULL;
        hetrun_tensor args[HETRUN_OP_MAX_ARGS + 1];
        if (o->mem_alloc(b->dev, bytes, &buf) != HETRUN_OK) {
            printf("  FAIL  invalid %s: mem_alloc: %s\n", c->what, o->last_error());
            t->fail++;
            continue;
        }
        for (int a = 0; a <= HETRUN_OP_MAX_ARGS; a++)
            args[a] = (hetrun_tensor){buf, 0};
        int ok = 1;
        for (int call = c->nargs_delta ? 1 : 0; call < 2; call++) {
            hetrun_status st = call == 0
                                   ? o->op_supported(b->dev, &d)
                                   : o->op_run(b->q, &d, args, nargs, (hetrun_tensor){NULL, 0});
            const char *msg = o->last_error();
            const char *fn = call == 0 ? "op_supported" : "op_run";
            if (st != HETRUN_ERR_INVALID) {
                printf("  FAIL  invalid %s: %s returned %d, not HETRUN_ERR_INVALID (%d): %s\n",
                       c->what, fn, st, HETRUN_ERR_INVALID, msg);
                ok = 0;
            } else if (!strstr(msg, op->name) || !strstr(msg, c->expect)) {
                printf("  FAIL  invalid %s: %s message does not name '%s' and '%s': %s\n", c->what,
                       fn, op->name, c->expect, msg);
                ok = 0;
            } else if (verbose) {
                printf("  pass  invalid %s: %s: %s\n", c->what, fn, msg);
            }
        }
        o->queue_sync(b->q);
        o->mem_free(buf);
        ok ? t->pass++ : t->fail++;
    }
    printf("%-20s %3d checked\n", "invalid descriptors", hetrun_invalid_case_count);
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
        fprintf(stderr, "conformance: unknown op '%s' (docs/ops.md lists them)\n", only_op);
        return 2;
    }
    if (only_dtype && hetrun_dtype_from_name(only_dtype) < 0) {
        fprintf(stderr, "conformance: unknown dtype '%s'\n", only_dtype);
        return 2;
    }
    hetrun_log_init_from_env();
    backend_ctx target, reference;
    int rc = open_backend(&target, backend, device);
    if (rc != 0) return rc == 77 ? 77 : 1;
    const int is_cpu = strcmp(backend, "cpu") == 0;
    if (!is_cpu && open_backend(&reference, "cpu", 0) != 0) {
        close_backend(&target);
        return 1;
    }
    uint64_t state = 20261122;
    tally all = {0, 0, 0};
    printf("conformance: backend %s device %d vs %s\n", backend, device,
           is_cpu ? "kernels/reference.c (double)" : "the cpu backend");
    if (!only_op && !only_dtype) check_invalid(&target, &all);
    for (int kind = 0; kind < HETRUN_OP_KIND_COUNT; kind++) {
        const hetrun_op_info *op = hetrun_op_info_of((uint32_t)kind);
        if (only_op && hetrun_op_from_name(only_op) != kind) continue;
        tally t = {0, 0, 0};
        for (int p = 0; p < op->npairs; p++) {
            if (only_dtype && hetrun_dtype_from_name(only_dtype) != op->pairs[p][0]) continue;
            /* BIG cases are slow on the double reference, and in --quick runs. */
            for (int ci = 0; ci < op->ncases; ci++) {
                const hetrun_op_case *cs = &op->cases[ci];
                if ((cs->opts & HETRUN_CASE_BIG) && (quick || is_cpu)) continue;
                for (int act = 0; act < (op->uses_act ? HETRUN_ACT_COUNT : 1); act++) {
                    hetrun_op_desc d =
                        hetrun_op_case_desc((hetrun_op_kind)kind, cs, (hetrun_dtype)op->pairs[p][0],
                                            (hetrun_dtype)op->pairs[p][1], (uint32_t)act);
                    check_case(&target, is_cpu ? NULL : &reference, &d, cs, &state, &t);
                }
            }
        }
        printf("%-20s %3d passed %3d failed %3d unsupported\n", op->name, t.pass, t.fail, t.unsup);
        all.pass += t.pass, all.fail += t.fail, all.unsup += t.unsup;
    }
    printf("%d passed, %d failed, %d skipped\n", all.pass, all.fail, all.unsup);
    close_backend(&target);
    if (!is_cpu) close_backend(&reference);
    return all.fail ? 1 : (all.pass ? 0 : 77);
}
