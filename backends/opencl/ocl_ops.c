/* Op dispatch for the OpenCL backend: descriptor checks, kernel arguments, launches. */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/catalogue.h"
#include "ocl_internal.h"

/* Storage dtype -> kernel instantiation index, or -1 when the backend has none. */
int ocl_dt_index(uint32_t dtype) {
    switch (dtype) {
    case HETRUN_F32: return HR_DT_F32;
    case HETRUN_F16: return HR_DT_F16;
    case HETRUN_BF16: return HR_DT_BF16;
    case HETRUN_F64: return HR_DT_F64;
    default: return -1;
    }
}

const char *ocl_opname(const hetrun_op_desc *d) {
    const char *n = hetrun_op_name((hetrun_op_kind)d->kind);
    return n ? n : "?";
}

const char *ocl_dtname(uint32_t t) {
    const char *n = hetrun_dtype_name((hetrun_dtype)t);
    return n ? n : "?";
}

static int is_gemm(uint32_t kind) {
    return kind == HETRUN_OP_GEMM || kind == HETRUN_OP_GEMM_BIAS_ACT;
}

static int64_t batch_of(const hetrun_op_desc *d) {
    return d->struct_size >= HETRUN_OP_DESC_SIZE_V1_1 && d->batch > 1 ? d->batch : 1;
}

/* Packing scratch of one GEMM problem, in elements of the compute type (double for f64,
 * float otherwise): op(A) and op(B) as panels padded to the register block. */
static void gemm_panels(const hetrun_device *dev, const hetrun_op_desc *d, uint64_t *pa,
                        uint64_t *pb) {
    uint64_t mp = ((uint64_t)d->m + dev->mr - 1) / dev->mr,
             np = ((uint64_t)d->n + dev->nr - 1) / dev->nr;
    *pa = mp * dev->mr * (uint64_t)d->k;
    *pb = np * dev->nr * (uint64_t)d->k;
}

/* Batch entries packed per pass: as many as fit GEMM_CHUNK_BYTES (and the device's
 * largest allocation), at least one. A broadcast operand (stride 0) is packed once. */
#define GEMM_CHUNK_BYTES ((uint64_t)256 << 20)
static int64_t gemm_chunk(const hetrun_device *dev, const hetrun_op_desc *d, uint64_t *bytes) {
    uint64_t pa, pb, es = d->dtype == HETRUN_F64 ? sizeof(double) : sizeof(float);
    gemm_panels(dev, d, &pa, &pb);
    const int64_t batch = batch_of(d);
    const int64_t sa = batch > 1 ? hetrun_gemm_batch_stride(d, 0) : 0;
    const int64_t sb = batch > 1 ? hetrun_gemm_batch_stride(d, 1) : 0;
    uint64_t fixed = ((sa ? 0 : pa) + (sb ? 0 : pb)) * es,
             per = ((sa ? pa : 0) + (sb ? pb : 0)) * es;
    uint64_t cap = GEMM_CHUNK_BYTES, maxa = dev->rec->info.max_alloc_bytes;
    if (maxa && maxa < cap) cap = maxa;
    int64_t chunk = per && cap > fixed ? (int64_t)((cap - fixed) / per) : batch;
    if (chunk < 1) chunk = 1;
    if (chunk > batch) chunk = batch;
    *bytes = fixed + (uint64_t)chunk * per;
    return chunk;
}

hetrun_status ocl_op_supported(hetrun_device *dev, const hetrun_op_desc *d) {
    char why[256];
    if (!dev || !d) return ocl_fail(HETRUN_ERR_INVALID, "op_supported: NULL device or descriptor");
    if (!hetrun_op_desc_valid(d, why, sizeof why))
        return ocl_fail(HETRUN_ERR_INVALID, "op %s: invalid descriptor: %s", ocl_opname(d), why);
    const char *dev_name = dev->rec->info.name;
    int in = ocl_dt_index(d->dtype), out = ocl_dt_index(d->out_dtype);
    if (d->kind == HETRUN_OP_GEMM && d->dtype == HETRUN_I8) in = out = 0; /* gemm_int8.cl */
    if (in < 0 || out < 0) {
        uint32_t bad = in < 0 ? d->dtype : d->out_dtype;
        return ocl_fail(HETRUN_ERR_UNSUPPORTED,
                        "op %s %s->%s not supported by the opencl backend on '%s': %s kernels "
                        "are not implemented (supported: fp32; fp16 and bf16 storage with fp32 "
                        "arithmetic; fp64 on cl_khr_fp64 devices; int8 GEMM)",
                        ocl_opname(d), ocl_dtname(d->dtype), ocl_dtname(d->out_dtype), dev_name,
                        ocl_dtname(bad));
    }
    if ((d->dtype == HETRUN_F64 || d->out_dtype == HETRUN_F64) && !dev->rec->has_fp64)
        return ocl_fail(HETRUN_ERR_UNSUPPORTED,
                        "op %s %s->%s not supported on '%s': the device does not report "
                        "cl_khr_fp64",
                        ocl_opname(d), ocl_dtname(d->dtype), ocl_dtname(d->out_dtype), dev_name);
    if (is_gemm(d->kind)) {
        if (d->m > INT_MAX || d->n > INT_MAX || d->k > INT_MAX)
            return ocl_fail(HETRUN_ERR_UNSUPPORTED,
                            "op %s m=%" PRId64 " n=%" PRId64 " k=%" PRId64
                            " not supported on '%s': dimensions must be < 2^31",
                            ocl_opname(d), d->m, d->n, d->k, dev_name);
        uint64_t s = 0, maxa = dev->rec->info.max_alloc_bytes;
        if (d->dtype != HETRUN_I8) gemm_chunk(dev, d, &s);
        if (maxa && s > maxa)
            return ocl_fail(HETRUN_ERR_UNSUPPORTED,
                            "op %s m=%" PRId64 " n=%" PRId64 " k=%" PRId64
                            " not supported on '%s': packing needs %" PRIu64
                            " bytes, over CL_DEVICE_MAX_MEM_ALLOC_SIZE %" PRIu64,
                            ocl_opname(d), d->m, d->n, d->k, dev_name, s, maxa);
        return HETRUN_OK;
    }
    if (d->kind >= HETRUN_OP_FIRST_V1_1) return ocl_transformer_supported(dev, d);
    return HETRUN_OK;
}

hetrun_status ocl_op_workspace_size(hetrun_device *dev, const hetrun_op_desc *d, uint64_t *bytes) {
    hetrun_status st = ocl_op_supported(dev, d);
    if (st != HETRUN_OK) return st;
    if (!bytes) return ocl_fail(HETRUN_ERR_INVALID, "op_workspace_size: bytes is NULL");
    *bytes = 0; /* temporaries live in a per-queue scratch the module owns */
    return HETRUN_OK;
}

/* ---- kernel argument builder: remembers the first failure ---- */

static void karg(ocl_kargs *a, size_t size, const void *v) {
    cl_int e = clSetKernelArg(a->k, a->n, size, v);
    if (e != CL_SUCCESS && a->err == CL_SUCCESS) {
        a->err = e;
        a->bad = a->n;
    }
    a->n++;
}
void ka_mem(ocl_kargs *a, cl_mem m) {
    karg(a, sizeof m, &m);
}
void ka_u64(ocl_kargs *a, uint64_t v) {
    cl_ulong x = v;
    karg(a, sizeof x, &x);
}
void ka_i64(ocl_kargs *a, int64_t v) {
    cl_long x = v;
    karg(a, sizeof x, &x);
}
void ka_i32(ocl_kargs *a, int64_t v) {
    cl_int x = (cl_int)v;
    karg(a, sizeof x, &x);
}
void ka_f32(ocl_kargs *a, double v) {
    cl_float x = (cl_float)v;
    karg(a, sizeof x, &x);
}
void ka_real(ocl_kargs *a, int f64, double v) {
    if (f64) {
        cl_double x = v;
        karg(a, sizeof x, &x);
    } else {
        ka_f32(a, v);
    }
}
void ka_local(ocl_kargs *a, size_t bytes) {
    karg(a, bytes, NULL);
}

void ka_t(ocl_kargs *a, const hetrun_tensor *t, size_t esize) {
    ka_mem(a, t->buffer ? t->buffer->mem : NULL);
    ka_u64(a, t->offset / esize);
}

hetrun_status ocl_launch(hetrun_queue *q, ocl_kargs *a, int id, const hetrun_op_desc *d,
                         cl_uint dims, const size_t *gsz, const size_t *lsz) {
    char name[64];
    ocl_kernel_name(id, name, sizeof name);
    if (a->err != CL_SUCCESS)
        return ocl_fail(ocl_status_of(a->err),
                        "clSetKernelArg(%u) failed: %s for kernel '%s' (op %s)", a->bad,
                        ocl_err_name(a->err), name, ocl_opname(d));
    cl_int err = clEnqueueNDRangeKernel(q->q, a->k, dims, NULL, gsz, lsz, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        char local[64] = "runtime-chosen";
        if (lsz)
            snprintf(local, sizeof local, "[%zu,%zu,%zu]", lsz[0], dims > 1 ? lsz[1] : 1,
                     dims > 2 ? lsz[2] : 1);
        return ocl_fail(
            ocl_status_of(err),
            "clEnqueueNDRangeKernel failed: %s for kernel '%s' (op %s %s->%s, m=%" PRId64
            " n=%" PRId64 " k=%" PRId64 ") global=[%zu,%zu,%zu] local=%s on '%s'",
            ocl_err_name(err), name, ocl_opname(d), ocl_dtname(d->dtype), ocl_dtname(d->out_dtype),
            d->m, d->n, d->k, gsz[0], dims > 1 ? gsz[1] : 1, dims > 2 ? gsz[2] : 1, local,
            q->dev->rec->info.name);
    }
    return HETRUN_OK;
}

hetrun_status ocl_launch1(hetrun_queue *q, ocl_kargs *a, int id, const hetrun_op_desc *d,
                          uint64_t n) {
    size_t wg = q->kwg[id], g = (size_t)((n + wg - 1) / wg * wg);
    return ocl_launch(q, a, id, d, 1, &g, &wg);
}

hetrun_status ocl_scratch(hetrun_queue *q, uint64_t bytes) {
    if (q->scratch_bytes >= bytes) return HETRUN_OK;
    hetrun_device *dev = q->dev;
    cl_int err;
    cl_mem m = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, (size_t)bytes, NULL, &err);
    if (!m)
        return ocl_fail(ocl_status_of(err),
                        "clCreateBuffer(%" PRIu64
                        " bytes) for the queue scratch failed: %s on '%s'",
                        bytes, ocl_err_name(err), dev->rec->info.name);
    /* The old scratch is released after the commands already queued on it finish. */
    pthread_mutex_lock(&dev->lock);
    dev->mem_in_use += bytes - q->scratch_bytes;
    if (dev->mem_in_use > dev->mem_peak) dev->mem_peak = dev->mem_in_use;
    pthread_mutex_unlock(&dev->lock);
    if (q->scratch) clReleaseMemObject(q->scratch);
    q->scratch = m;
    q->scratch_bytes = bytes;
    return HETRUN_OK;
}

/* GEMM and GEMM_BIAS_ACT; batched GEMM packs and multiplies `chunk` entries per pass. */
static hetrun_status run_gemm(hetrun_queue *q, const hetrun_op_desc *d, const hetrun_tensor *t) {
    hetrun_device *dev = q->dev;
    const int ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
    const int64_t lda = d->lda ? d->lda : (ta ? d->m : d->k);
    const int64_t ldb = d->ldb ? d->ldb : (tb ? d->k : d->n);
    const int64_t ldc = d->ldc ? d->ldc : d->n;
    const int din = ocl_dt_index(d->dtype), dout = ocl_dt_index(d->out_dtype);
    const size_t ein = hetrun_dtype_size((hetrun_dtype)d->dtype);
    const size_t eout = hetrun_dtype_size((hetrun_dtype)d->out_dtype);
    const int f64 = d->dtype == HETRUN_F64, epi = d->kind == HETRUN_OP_GEMM_BIAS_ACT;
    const hetrun_tensor *ct = &t[epi ? 3 : 2];
    const int64_t batch = batch_of(d);
    const int64_t sa = batch > 1 ? hetrun_gemm_batch_stride(d, 0) : 0;
    const int64_t sb = batch > 1 ? hetrun_gemm_batch_stride(d, 1) : 0;
    const int64_t sc = batch > 1 ? hetrun_gemm_batch_stride(d, 2) : 0;
    const uint64_t oa = t[0].offset / ein, ob = t[1].offset / ein, oc = ct->offset / eout;
    hetrun_status st;
    cl_kernel k;
    if (d->dtype == HETRUN_I8) { /* direct kernel, no packing */
        int id = HR_K_SINGLE + HR_S_GEMM_I8;
        if ((st = ocl_kernel_get(q, id, &k))) return st;
        ocl_kargs a = {k, 0, CL_SUCCESS, 0};
        ka_t(&a, &t[0], 1);
        ka_i64(&a, ta ? 1 : lda);
        ka_i64(&a, ta ? lda : 1);
        ka_i64(&a, sa);
        ka_t(&a, &t[1], 1);
        ka_i64(&a, tb ? 1 : ldb);
        ka_i64(&a, tb ? ldb : 1);
        ka_i64(&a, sb);
        ka_t(&a, ct, sizeof(int32_t));
        ka_i64(&a, ldc);
        ka_i64(&a, sc);
        ka_i32(&a, d->m);
        ka_i32(&a, d->n);
        ka_i32(&a, d->k);
        ka_i32(&a, d->beta != 0.0);
        size_t g[3] = {(size_t)d->n, (size_t)d->m, (size_t)batch};
        return ocl_launch(q, &a, id, d, 3, g, NULL);
    }
    uint64_t pa, pb, need;
    gemm_panels(dev, d, &pa, &pb);
    const int64_t chunk = gemm_chunk(dev, d, &need);
    if ((st = ocl_scratch(q, need))) return st;
    const uint64_t mp = pa / dev->mr / (uint64_t)d->k, np = pb / dev->nr / (uint64_t)d->k;
    const uint64_t obp = (sa ? (uint64_t)chunk : 1) * pa; /* B panels follow A's, in elements */
    for (int64_t e0 = 0; e0 < batch; e0 += chunk) {
        const size_t ce = (size_t)(batch - e0 < chunk ? batch - e0 : chunk);
        /* op(A)(i, p) = A[i * sai + p * sap]; op(B)(p, j) = B[p * sbp + j * sbj]. A
         * broadcast operand's panels stay valid from the first pass. */
        if (sa || e0 == 0) {
            int id = din * HR_K_BASE_COUNT + HR_K_GEMM_PACK_A;
            if ((st = ocl_kernel_get(q, id, &k))) return st;
            ocl_kargs a = {k, 0, CL_SUCCESS, 0};
            ka_mem(&a, t[0].buffer->mem);
            ka_u64(&a, oa + (uint64_t)(e0 * sa));
            ka_i64(&a, ta ? 1 : lda);
            ka_i64(&a, ta ? lda : 1);
            ka_i64(&a, sa);
            ka_i32(&a, d->m);
            ka_i32(&a, d->k);
            ka_mem(&a, q->scratch);
            ka_u64(&a, 0);
            ka_u64(&a, pa);
            size_t g[3] = {(size_t)d->k, (size_t)mp, sa ? ce : 1};
            if ((st = ocl_launch(q, &a, id, d, 3, g, NULL))) return st;
        }
        if (sb || e0 == 0) {
            int id = din * HR_K_BASE_COUNT + HR_K_GEMM_PACK_B;
            if ((st = ocl_kernel_get(q, id, &k))) return st;
            ocl_kargs a = {k, 0, CL_SUCCESS, 0};
            ka_mem(&a, t[1].buffer->mem);
            ka_u64(&a, ob + (uint64_t)(e0 * sb));
            ka_i64(&a, tb ? 1 : ldb);
            ka_i64(&a, tb ? ldb : 1);
            ka_i64(&a, sb);
            ka_i32(&a, d->k);
            ka_i32(&a, d->n);
            ka_mem(&a, q->scratch);
            ka_u64(&a, obp);
            ka_u64(&a, pb);
            size_t g[3] = {(size_t)d->k, (size_t)np, sb ? ce : 1};
            if ((st = ocl_launch(q, &a, id, d, 3, g, NULL))) return st;
        }
        int id = dout * HR_K_BASE_COUNT + HR_K_GEMM_MICRO;
        if ((st = ocl_kernel_get(q, id, &k))) return st;
        ocl_kargs a = {k, 0, CL_SUCCESS, 0};
        ka_i32(&a, d->k);
        ka_mem(&a, q->scratch);
        ka_u64(&a, 0);
        ka_u64(&a, sa ? pa : 0);
        ka_mem(&a, q->scratch);
        ka_u64(&a, obp);
        ka_u64(&a, sb ? pb : 0);
        ka_mem(&a, ct->buffer->mem);
        ka_u64(&a, oc + (uint64_t)(e0 * sc));
        ka_i64(&a, ldc);
        ka_u64(&a, (uint64_t)sc);
        ka_i32(&a, d->m);
        ka_i32(&a, d->n);
        ka_i32(&a, (int64_t)np);
        ka_i32(&a, (int64_t)mp);
        ka_real(&a, f64, d->alpha);
        ka_real(&a, f64, d->beta);
        const int has_bias = epi && (d->flags & HETRUN_OP_HAS_BIAS);
        const int has_aux = epi && (d->flags & HETRUN_OP_HAS_AUX);
        ka_i32(&a, epi ? 4 | has_bias | has_aux << 1 : 0);
        ka_i32(&a, d->act);
        hetrun_tensor none = {NULL, 0};
        ka_t(&a, has_bias ? &t[2] : &none, eout);
        ka_t(&a, has_aux ? &t[4] : &none, eout);
        /* Local size left to the runtime: PoCL then sizes work-groups for its CPU threads. */
        size_t gm[3] = {(size_t)np, (size_t)mp, ce};
        if ((st = ocl_launch(q, &a, id, d, 3, gm, NULL))) return st;
    }
    return HETRUN_OK;
}

hetrun_status ocl_op_run(hetrun_queue *q, const hetrun_op_desc *d, const hetrun_tensor *t,
                         int32_t nargs, hetrun_tensor workspace) {
    (void)workspace; /* op_workspace_size is always 0 */
    if (!q || !d) return ocl_fail(HETRUN_ERR_INVALID, "op_run: NULL queue or descriptor");
    hetrun_status st = ocl_op_supported(q->dev, d);
    if (st != HETRUN_OK) return st;
    const int arity = hetrun_op_arity((hetrun_op_kind)d->kind);
    if (nargs != arity || !t)
        return ocl_fail(HETRUN_ERR_INVALID, "op %s: nargs %d, but the op takes %d operands",
                        ocl_opname(d), nargs, arity);
    for (int i = 0; i < arity; i++) {
        if (!hetrun_op_arg_present(d, i)) continue; /* optional, flag not set: not touched */
        hetrun_dtype adt = hetrun_op_arg_dtype(d, i);
        uint64_t es = hetrun_dtype_size(adt), bytes = hetrun_op_arg_bytes(d, i);
        if (!t[i].buffer)
            return ocl_fail(HETRUN_ERR_INVALID, "op %s: operand %d has a NULL buffer",
                            ocl_opname(d), i);
        if (t[i].buffer->dev != q->dev)
            return ocl_fail(HETRUN_ERR_INVALID, "op %s: operand %d is on another device",
                            ocl_opname(d), i);
        if (t[i].offset % es)
            return ocl_fail(HETRUN_ERR_INVALID,
                            "op %s: operand %d offset %" PRIu64 " is not a multiple of the %s "
                            "element size %" PRIu64,
                            ocl_opname(d), i, t[i].offset, ocl_dtname(adt), es);
        if (t[i].offset > t[i].buffer->bytes || bytes > t[i].buffer->bytes - t[i].offset)
            return ocl_fail(
                HETRUN_ERR_INVALID,
                "op %s (m=%" PRId64 " n=%" PRId64 " k=%" PRId64 "): operand %d needs %" PRIu64
                " bytes at offset %" PRIu64 " but its buffer has %" PRIu64,
                ocl_opname(d), d->m, d->n, d->k, i, bytes, t[i].offset, t[i].buffer->bytes);
    }
    if (is_gemm(d->kind)) return run_gemm(q, d, t);
    if (d->kind >= HETRUN_OP_FIRST_V1_1 && d->kind != HETRUN_OP_LAYERNORM_FORWARD)
        return ocl_transformer_run(q, d, t);

    const int dt = ocl_dt_index(d->dtype);
    const size_t es = hetrun_dtype_size((hetrun_dtype)d->dtype);
    const uint64_t m = (uint64_t)d->m, n = (uint64_t)d->n, mn = m * n;
    const int f64 = d->dtype == HETRUN_F64;
    int base = -1, inst = dt;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_FILL: base = HR_K_FILL; break;
    case HETRUN_OP_SCALE: base = HR_K_SCALE; break;
    case HETRUN_OP_AXPY: base = HR_K_AXPY; break;
    case HETRUN_OP_MUL: base = HR_K_MUL; break;
    case HETRUN_OP_BIAS_ADD: base = HR_K_BIAS_ADD; break;
    case HETRUN_OP_ACT_FORWARD: base = HR_K_ACT_FWD; break;
    case HETRUN_OP_ACT_BACKWARD: base = HR_K_ACT_BWD; break;
    case HETRUN_OP_XENT_BACKWARD: base = HR_K_XENT_BWD; break;
    case HETRUN_OP_SGD_MOMENTUM: base = HR_K_SGD; break;
    case HETRUN_OP_ADAMW: base = HR_K_ADAMW; break;
    case HETRUN_OP_SOFTMAX: base = HR_K_SOFTMAX; break;
    case HETRUN_OP_XENT_FORWARD: base = HR_K_XENT_FWD; break;
    case HETRUN_OP_LAYERNORM:
    case HETRUN_OP_LAYERNORM_FORWARD: base = HR_K_LAYERNORM; break;
    case HETRUN_OP_REDUCE_SUM_AXIS0: base = HR_K_REDUCE0; break;
    case HETRUN_OP_REDUCE_SUM_AXIS1: base = HR_K_REDUCE1; break;
    case HETRUN_OP_CAST:
        /* One side of every cast pair is f32: instantiate on the other side's dtype. */
        if (d->dtype == HETRUN_F32) {
            base = HR_K_CAST_FROM_F32;
            inst = ocl_dt_index(d->out_dtype);
        } else {
            base = HR_K_CAST_TO_F32;
        }
        break;
    default: break;
    }
    if (base < 0) return ocl_fail(HETRUN_ERR_INTERNAL, "op kind %u has no OpenCL kernel", d->kind);
    const int id = inst * HR_K_BASE_COUNT + base;
    cl_kernel k;
    if ((st = ocl_kernel_get(q, id, &k))) return st;
    ocl_kargs a = {k, 0, CL_SUCCESS, 0};
    uint64_t items = mn; /* work-items: one per element unless a row/column op */
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_FILL:
        ka_t(&a, &t[0], es);
        ka_u64(&a, mn);
        ka_real(&a, f64, d->alpha);
        break;
    case HETRUN_OP_SCALE:
    case HETRUN_OP_AXPY:
        ka_t(&a, &t[0], es);
        ka_t(&a, &t[1], es);
        ka_u64(&a, mn);
        ka_real(&a, f64, d->alpha);
        break;
    case HETRUN_OP_MUL:
        ka_t(&a, &t[0], es);
        ka_t(&a, &t[1], es);
        ka_t(&a, &t[2], es);
        ka_u64(&a, mn);
        break;
    case HETRUN_OP_BIAS_ADD:
        ka_t(&a, &t[0], es);
        ka_t(&a, &t[1], es);
        ka_t(&a, &t[2], es);
        ka_u64(&a, mn);
        ka_u64(&a, n);
        break;
    case HETRUN_OP_ACT_FORWARD:
        ka_t(&a, &t[0], es);
        ka_t(&a, &t[1], es);
        ka_u64(&a, mn);
        ka_i32(&a, d->act);
        break;
    case HETRUN_OP_ACT_BACKWARD:
        ka_t(&a, &t[0], es);
        ka_t(&a, &t[1], es);
        ka_t(&a, &t[2], es);
        ka_u64(&a, mn);
        ka_i32(&a, d->act);
        break;
    case HETRUN_OP_XENT_BACKWARD:
        ka_t(&a, &t[0], es);
        ka_t(&a, &t[1], sizeof(int32_t));
        ka_t(&a, &t[2], es);
        ka_u64(&a, mn);
        ka_u64(&a, n);
        ka_real(&a, f64, d->alpha);
        break;
    case HETRUN_OP_SGD_MOMENTUM:
        for (int i = 0; i < 3; i++)
            ka_t(&a, &t[i], es);
        ka_u64(&a, mn);
        ka_real(&a, f64, d->p[0]);
        ka_real(&a, f64, d->p[1]);
        ka_real(&a, f64, d->p[2]);
        break;
    case HETRUN_OP_ADAMW:
        for (int i = 0; i < 4; i++)
            ka_t(&a, &t[i], es);
        ka_u64(&a, mn);
        for (int i = 0; i < 5; i++)
            ka_real(&a, f64, d->p[i]);
        /* Bias corrections in double on the host: 1 - b^t loses digits in float. */
        ka_real(&a, f64, 1.0 - pow(d->p[1], d->p[5]));
        ka_real(&a, f64, 1.0 - pow(d->p[2], d->p[5]));
        break;
    case HETRUN_OP_CAST:
        ka_t(&a, &t[0], es);
        ka_t(&a, &t[1], hetrun_dtype_size((hetrun_dtype)d->out_dtype));
        ka_u64(&a, mn);
        break;
    case HETRUN_OP_SOFTMAX:
        ka_t(&a, &t[0], es);
        ka_t(&a, &t[1], es);
        ka_u64(&a, m);
        ka_u64(&a, n);
        items = m;
        break;
    case HETRUN_OP_XENT_FORWARD:
        ka_t(&a, &t[0], es);
        ka_t(&a, &t[1], sizeof(int32_t));
        ka_t(&a, &t[2], es);
        ka_t(&a, &t[3], es);
        ka_u64(&a, m);
        ka_u64(&a, n);
        items = m;
        break;
    case HETRUN_OP_LAYERNORM:
    case HETRUN_OP_LAYERNORM_FORWARD: {
        const int stats = d->kind == HETRUN_OP_LAYERNORM_FORWARD;
        for (int i = 0; i < 4; i++)
            ka_t(&a, &t[i], es);
        ka_u64(&a, m);
        ka_u64(&a, n);
        ka_real(&a, f64, d->p[0]);
        ka_i32(&a, stats);
        for (int i = 4; i < 6; i++) /* mean, rstd; the output again when unused */
            ka_t(&a, &t[stats ? i : 3], stats ? sizeof(float) : es);
        items = m;
        break;
    }
    case HETRUN_OP_REDUCE_SUM_AXIS0:
    case HETRUN_OP_REDUCE_SUM_AXIS1:
        ka_t(&a, &t[0], es);
        ka_t(&a, &t[1], es);
        ka_u64(&a, m);
        ka_u64(&a, n);
        ka_real(&a, f64, d->alpha);
        ka_real(&a, f64, d->beta);
        items = d->kind == HETRUN_OP_REDUCE_SUM_AXIS0 ? n : m;
        break;
    default: break;
    }
    return ocl_launch1(q, &a, id, d, items);
}
