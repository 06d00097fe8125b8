/* The ABI 1.1 ops of the OpenCL backend other than GEMM (ocl_ops.c) and LAYERNORM_FORWARD
 * (the LAYERNORM kernel with statistics): attention, layernorm/softmax backward,
 * embedding, non-finite count, sum of squares. Kernels: kernels/opencl/attention.cl,
 * transformer.cl, index.cl. Temporaries (attention row sums, embedding grouping,
 * reduction partials) live in the queue's scratch, so op_workspace_size stays 0. */
#include <inttypes.h>
#include <limits.h>

#include "kernels/catalogue.h"
#include "ocl_internal.h"

/* Work-groups of the two-stage reductions: enough for every core, few partials. */
#define RED_GROUPS 256

typedef struct att_geom {
    int64_t ldq, bsq, ldk, bsk, ldo, bso;
    int64_t batch, heads;
} att_geom;

static att_geom geom_of(const hetrun_op_desc *d) {
    att_geom g;
    hetrun_attention_geometry(d, 'q', &g.ldq, &g.bsq);
    hetrun_attention_geometry(d, 'k', &g.ldk, &g.bsk);
    hetrun_attention_geometry(d, 'o', &g.ldo, &g.bso);
    g.batch = d->batch > 1 ? d->batch : 1;
    g.heads = d->heads > 1 ? d->heads : 1;
    return g;
}

/* Local memory (floats) of attention kernel `base` for query tile bq and key tile bk. */
static uint64_t att_local_floats(int base, uint64_t bq, uint64_t bk, uint64_t dim) {
    switch (base) {
    case HR_K_ATT_FWD: return (2 * bq + 2 * bk) * dim + bq * bk;    /* Q, O | K, V | S */
    case HR_K_ATT_DQ: return (3 * bq + 2 * bk) * dim + bq * bk;     /* Q, dO, dQ | K, V | dS */
    default: return (4 * bk + 2 * bq) * dim + 2 * bk * bq + 2 * bq; /* dK/dV kernel */
    }
}

/* Tiles for attention kernel `base`: the largest power of two up to 64 (and `maxwg`, one
 * work-item per tile row) whose local memory fits the device; a tile no longer than the
 * sequence it covers. Returns 0 when not even one row fits. */
static int att_tiles(const hetrun_device *dev, const hetrun_op_desc *d, int base, size_t maxwg,
                     int *bq, int *bk) {
    for (int t = 64; t >= 1; t /= 2) {
        if ((size_t)t > maxwg) continue;
        int q = t, k = t;
        while (q > 1 && q / 2 >= d->m)
            q /= 2;
        while (k > 1 && k / 2 >= d->n)
            k /= 2;
        if (att_local_floats(base, (uint64_t)q, (uint64_t)k, (uint64_t)d->k) * sizeof(float) <=
            dev->rec->local_mem) {
            *bq = q;
            *bk = k;
            return 1;
        }
    }
    return 0;
}

hetrun_status ocl_transformer_supported(hetrun_device *dev, const hetrun_op_desc *d) {
    const char *dev_name = dev->rec->info.name;
    const uint64_t maxa = dev->rec->info.max_alloc_bytes;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_ATTENTION_FORWARD:
    case HETRUN_OP_ATTENTION_BACKWARD: {
        const att_geom g = geom_of(d);
        if (d->m > INT_MAX || d->n > INT_MAX || d->k > INT_MAX || g.heads > INT_MAX)
            return ocl_fail(HETRUN_ERR_UNSUPPORTED,
                            "op %s m=%" PRId64 " n=%" PRId64 " k=%" PRId64 " heads=%" PRId64
                            " not supported on '%s': each must be < 2^31",
                            ocl_opname(d), d->m, d->n, d->k, g.heads, dev_name);
        static const int fwd[] = {HR_K_ATT_FWD}, bwd[] = {HR_K_ATT_DQ, HR_K_ATT_DKV};
        const int bw = d->kind == HETRUN_OP_ATTENTION_BACKWARD;
        for (int i = 0; i < (bw ? 2 : 1); i++) {
            int bq, bk, base = bw ? bwd[i] : fwd[i];
            if (!att_tiles(dev, d, base, dev->rec->max_wg, &bq, &bk))
                return ocl_fail(HETRUN_ERR_UNSUPPORTED,
                                "op %s head dim k=%" PRId64 " not supported on '%s': one row "
                                "of each tile needs %" PRIu64 " bytes of local memory, the "
                                "device has %" PRIu64,
                                ocl_opname(d), d->k, dev_name,
                                att_local_floats(base, 1, 1, (uint64_t)d->k) * 4,
                                (uint64_t)dev->rec->local_mem);
        }
        uint64_t rows = (uint64_t)(g.batch * g.heads * d->m);
        if (bw && maxa && rows * sizeof(float) > maxa)
            return ocl_fail(HETRUN_ERR_UNSUPPORTED,
                            "op %s batch x heads x m = %" PRIu64 " rows not supported on '%s': "
                            "the row sums need more than CL_DEVICE_MAX_MEM_ALLOC_SIZE %" PRIu64,
                            ocl_opname(d), rows, dev_name, maxa);
        return HETRUN_OK;
    }
    case HETRUN_OP_EMBEDDING_FORWARD:
    case HETRUN_OP_EMBEDDING_BACKWARD:
        if (d->m >= INT_MAX || d->k >= INT_MAX)
            return ocl_fail(HETRUN_ERR_UNSUPPORTED,
                            "op %s m=%" PRId64 " k=%" PRId64
                            " not supported on '%s': ids and table rows must be < 2^31 - 1",
                            ocl_opname(d), d->m, d->k, dev_name);
        if (d->kind == HETRUN_OP_EMBEDDING_BACKWARD && maxa &&
            (uint64_t)(d->k + 1 + d->m) * sizeof(int32_t) > maxa)
            return ocl_fail(HETRUN_ERR_UNSUPPORTED,
                            "op %s m=%" PRId64 " k=%" PRId64 " not supported on '%s': grouping "
                            "the ids needs more than CL_DEVICE_MAX_MEM_ALLOC_SIZE %" PRIu64,
                            ocl_opname(d), d->m, d->k, dev_name, maxa);
        return HETRUN_OK;
    default: return HETRUN_OK;
    }
}

/* Kernel `base` for the descriptor's dtype, with its argument builder. */
static hetrun_status kern(hetrun_queue *q, const hetrun_op_desc *d, int base, int *id,
                          ocl_kargs *a) {
    *id = base < 0 ? HR_K_SINGLE - base - 1 : ocl_dt_index(d->dtype) * HR_K_BASE_COUNT + base;
    cl_kernel k;
    hetrun_status st = ocl_kernel_get(q, *id, &k);
    *a = (ocl_kargs){k, 0, CL_SUCCESS, 0};
    return st;
}
#define SINGLE(s) (-(s)-1) /* `base` argument of kern() for a single kernel */

/* The leading HR_ATT_ARGS of every attention kernel (attention.cl). */
static void att_args(ocl_kargs *a, const hetrun_op_desc *d, const hetrun_tensor *t,
                     const att_geom *g, size_t es, int bq, int bk) {
    const int use_mask = (d->flags & HETRUN_OP_KEY_PADDING_MASK) != 0;
    const hetrun_tensor none = {NULL, 0};
    ka_t(a, &t[0], es);
    ka_i64(a, g->ldq);
    ka_i64(a, g->bsq);
    ka_t(a, &t[1], es);
    ka_t(a, &t[2], es);
    ka_i64(a, g->ldk);
    ka_i64(a, g->bsk);
    ka_t(a, use_mask ? &t[3] : &none, sizeof(int32_t));
    ka_i32(a, use_mask);
    ka_i32(a, g->heads);
    ka_i32(a, d->m);
    ka_i32(a, d->n);
    ka_i32(a, d->k);
    ka_f32(a, d->alpha);
    ka_i32(a, (d->flags & HETRUN_OP_CAUSAL) != 0);
    ka_i32(a, bq);
    ka_i32(a, bk);
}

static void att_locals(ocl_kargs *a, int n, const uint64_t *floats) {
    for (int i = 0; i < n; i++)
        ka_local(a, (size_t)floats[i] * sizeof(float));
}

/* Tiles for kernel `id` on this queue (its work-group limit may be below the device's). */
static hetrun_status att_tiles_for(hetrun_queue *q, const hetrun_op_desc *d, int base, int id,
                                   int *bq, int *bk) {
    if (att_tiles(q->dev, d, base, q->kwg[id], bq, bk)) return HETRUN_OK;
    return ocl_fail(HETRUN_ERR_UNSUPPORTED,
                    "op %s head dim k=%" PRId64 ": no attention tile fits the kernel's "
                    "work-group limit %zu and %" PRIu64 " bytes of local memory on '%s'",
                    ocl_opname(d), d->k, q->kwg[id], (uint64_t)q->dev->rec->local_mem,
                    q->dev->rec->info.name);
}

static hetrun_status run_attention(hetrun_queue *q, const hetrun_op_desc *d,
                                   const hetrun_tensor *t) {
    const att_geom g = geom_of(d);
    const size_t es = hetrun_dtype_size((hetrun_dtype)d->dtype);
    const uint64_t D = (uint64_t)d->k, rows = (uint64_t)(g.batch * g.heads * d->m);
    int id, bq = 1, bk = 1;
    ocl_kargs a;
    hetrun_status st;
    if (d->kind == HETRUN_OP_ATTENTION_FORWARD) {
        if ((st = kern(q, d, HR_K_ATT_FWD, &id, &a)) ||
            (st = att_tiles_for(q, d, HR_K_ATT_FWD, id, &bq, &bk)))
            return st;
        att_args(&a, d, t, &g, es, bq, bk);
        ka_t(&a, &t[4], es);
        ka_i64(&a, g.ldo);
        ka_i64(&a, g.bso);
        ka_t(&a, &t[5], sizeof(float));
        const uint64_t loc[5] = {bq * D, bk * D, bk * D, (uint64_t)bq * bk, bq * D};
        att_locals(&a, 5, loc);
        size_t gs[3] = {(size_t)((d->m + bq - 1) / bq * bq), (size_t)g.heads, (size_t)g.batch};
        size_t ls[3] = {(size_t)bq, 1, 1};
        return ocl_launch(q, &a, id, d, 3, gs, ls);
    }
    /* Backward: delta_i = dO_i . O_i into the scratch, then dQ, then dK and dV. */
    if ((st = ocl_scratch(q, rows * sizeof(float)))) return st;
    if ((st = kern(q, d, HR_K_ATT_DELTA, &id, &a))) return st;
    ka_t(&a, &t[4], es);
    ka_t(&a, &t[5], es);
    ka_i64(&a, g.ldo);
    ka_i64(&a, g.bso);
    ka_u64(&a, rows);
    ka_i32(&a, g.heads);
    ka_i32(&a, d->m);
    ka_i32(&a, d->k);
    ka_mem(&a, q->scratch);
    if ((st = ocl_launch1(q, &a, id, d, rows))) return st;

    for (int pass = 0; pass < 2; pass++) {
        const int base = pass ? HR_K_ATT_DKV : HR_K_ATT_DQ;
        if ((st = kern(q, d, base, &id, &a)) || (st = att_tiles_for(q, d, base, id, &bq, &bk)))
            return st;
        att_args(&a, d, t, &g, es, bq, bk);
        ka_t(&a, &t[5], es);
        ka_i64(&a, g.ldo);
        ka_i64(&a, g.bso);
        ka_t(&a, &t[6], sizeof(float));
        ka_mem(&a, q->scratch);
        size_t gs[3] = {0, (size_t)g.heads, (size_t)g.batch}, ls[3] = {0, 1, 1};
        if (!pass) {
            ka_t(&a, &t[7], es);
            const uint64_t loc[6] = {bq * D, bq * D, bq * D, bk * D, bk * D, (uint64_t)bq * bk};
            att_locals(&a, 6, loc);
            gs[0] = (size_t)((d->m + bq - 1) / bq * bq);
            ls[0] = (size_t)bq;
        } else {
            ka_t(&a, &t[8], es);
            ka_t(&a, &t[9], es);
            const uint64_t loc[10] = {bk * D,
                                      bk * D,
                                      bk * D,
                                      bk * D,
                                      bq * D,
                                      bq * D,
                                      (uint64_t)bk * bq,
                                      (uint64_t)bk * bq,
                                      (uint64_t)bq,
                                      (uint64_t)bq};
            att_locals(&a, 10, loc);
            gs[0] = (size_t)((d->n + bk - 1) / bk * bk);
            ls[0] = (size_t)bk;
        }
        if ((st = ocl_launch(q, &a, id, d, 3, gs, ls))) return st;
    }
    return HETRUN_OK;
}

/* Two-stage reduction (NONFINITE_COUNT, SUM_SQUARES): RED_GROUPS (or fewer) partials into
 * the scratch, then one work-item adds them in order. */
static hetrun_status run_reduction(hetrun_queue *q, const hetrun_op_desc *d,
                                   const hetrun_tensor *t) {
    const int count = d->kind == HETRUN_OP_NONFINITE_COUNT, f64 = d->dtype == HETRUN_F64;
    const size_t es = hetrun_dtype_size((hetrun_dtype)d->dtype);
    const size_t pes = count ? sizeof(int32_t) : f64 ? sizeof(double) : sizeof(float);
    const uint64_t n = (uint64_t)(d->m * d->n);
    int id;
    ocl_kargs a;
    hetrun_status st = kern(q, d, count ? HR_K_NONFINITE_PART : HR_K_SUMSQ_PART, &id, &a);
    if (st) return st;
    const size_t wg = q->kwg[id];
    uint64_t groups = (n + wg - 1) / wg;
    if (groups > RED_GROUPS) groups = RED_GROUPS;
    if ((st = ocl_scratch(q, groups * pes))) return st;
    ka_t(&a, &t[0], es);
    ka_u64(&a, n);
    ka_mem(&a, q->scratch);
    ka_local(&a, wg * pes);
    size_t gs = (size_t)groups * wg;
    if ((st = ocl_launch(q, &a, id, d, 1, &gs, &wg))) return st;
    if ((st = kern(q, d, count ? SINGLE(HR_S_NONFINITE_FINAL) : HR_K_SUMSQ_FINAL, &id, &a)))
        return st;
    ka_mem(&a, q->scratch);
    ka_i32(&a, (int64_t)groups);
    ka_t(&a, &t[1], count ? sizeof(int32_t) : sizeof(float));
    if (count) {
        ka_i32(&a, d->beta != 0.0);
    } else {
        ka_real(&a, f64, d->alpha);
        ka_real(&a, f64, d->beta);
    }
    size_t one = 1;
    return ocl_launch(q, &a, id, d, 1, &one, &one);
}

static hetrun_status run_embedding_backward(hetrun_queue *q, const hetrun_op_desc *d,
                                            const hetrun_tensor *t) {
    const size_t es = hetrun_dtype_size((hetrun_dtype)d->dtype);
    const size_t eo = hetrun_dtype_size((hetrun_dtype)d->out_dtype);
    const int out_f32 = d->out_dtype != d->dtype, f64 = d->dtype == HETRUN_F64;
    int id;
    ocl_kargs a;
    hetrun_status st = ocl_scratch(q, (uint64_t)(d->k + 1 + d->m) * sizeof(int32_t));
    if (st || (st = kern(q, d, SINGLE(HR_S_EMB_SORT), &id, &a))) return st;
    ka_t(&a, &t[0], sizeof(int32_t));
    ka_i32(&a, d->m);
    ka_i32(&a, d->k);
    ka_mem(&a, q->scratch);
    size_t one = 1;
    if ((st = ocl_launch(q, &a, id, d, 1, &one, &one))) return st;
    if ((st = kern(q, d, HR_K_EMB_BWD, &id, &a))) return st;
    ka_t(&a, &t[1], es);
    ka_mem(&a, t[2].buffer->mem); /* dtable in the storage dtype ... */
    ka_t(&a, &t[2], eo);          /* ... or fp32 (out_f32), with its element offset */
    ka_i32(&a, out_f32);
    ka_mem(&a, q->scratch);
    ka_u64(&a, (uint64_t)(d->k * d->n));
    ka_u64(&a, (uint64_t)d->n);
    ka_i64(&a, d->k);
    ka_real(&a, f64, d->alpha);
    ka_real(&a, f64, d->beta);
    return ocl_launch1(q, &a, id, d, (uint64_t)(d->k * d->n));
}

hetrun_status ocl_transformer_run(hetrun_queue *q, const hetrun_op_desc *d,
                                  const hetrun_tensor *t) {
    const size_t es = hetrun_dtype_size((hetrun_dtype)d->dtype);
    const uint64_t m = (uint64_t)d->m, n = (uint64_t)d->n;
    const int f64 = d->dtype == HETRUN_F64;
    int id;
    ocl_kargs a;
    hetrun_status st;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_ATTENTION_FORWARD:
    case HETRUN_OP_ATTENTION_BACKWARD: return run_attention(q, d, t);
    case HETRUN_OP_NONFINITE_COUNT:
    case HETRUN_OP_SUM_SQUARES: return run_reduction(q, d, t);
    case HETRUN_OP_EMBEDDING_BACKWARD: return run_embedding_backward(q, d, t);
    case HETRUN_OP_LAYERNORM_BACKWARD:
        for (int pass = 0; pass < 2; pass++) { /* dX per row, then dgamma/dbeta per column */
            if ((st = kern(q, d, pass ? HR_K_LN_BWD_DGB : HR_K_LN_BWD_DX, &id, &a))) return st;
            ka_t(&a, &t[0], es);
            if (!pass) ka_t(&a, &t[1], es);
            ka_t(&a, &t[2], sizeof(float));
            ka_t(&a, &t[3], sizeof(float));
            ka_t(&a, &t[4], es);
            for (int i = pass ? 6 : 5; i < (pass ? 8 : 6); i++)
                ka_t(&a, &t[i], es);
            ka_u64(&a, m);
            ka_u64(&a, n);
            ka_i32(&a, pass ? d->p[1] != 0.0 : d->beta != 0.0);
            if ((st = ocl_launch1(q, &a, id, d, pass ? n : m))) return st;
        }
        return HETRUN_OK;
    case HETRUN_OP_SOFTMAX_BACKWARD:
        if ((st = kern(q, d, HR_K_SOFTMAX_BWD, &id, &a))) return st;
        for (int i = 0; i < 3; i++)
            ka_t(&a, &t[i], es);
        ka_u64(&a, m);
        ka_u64(&a, n);
        return ocl_launch1(q, &a, id, d, m);
    case HETRUN_OP_EMBEDDING_FORWARD:
        if ((st = kern(q, d, HR_K_EMB_FWD, &id, &a))) return st;
        ka_t(&a, &t[0], sizeof(int32_t));
        ka_t(&a, &t[1], es);
        ka_t(&a, &t[2], es);
        ka_u64(&a, m * n);
        ka_u64(&a, n);
        ka_i64(&a, d->k);
        ka_real(&a, f64, d->alpha);
        ka_real(&a, f64, d->beta);
        return ocl_launch1(q, &a, id, d, m * n);
    default:
        return ocl_fail(HETRUN_ERR_INTERNAL, "op kind %u (%s) has no OpenCL kernel", d->kind,
                        ocl_opname(d));
    }
}
