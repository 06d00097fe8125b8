/* CPU backend ops: GEMM through CBLAS (OpenBLAS), fp32 kernels from kernels/cpu, and the
 * catalogue's reference code for the remaining float dtypes (fp64/fp16/bf16 non-GEMM ops
 * run at reference speed: correct, documented, not tuned) and, until their tuned kernels
 * land, for the ABI 1.1 transformer ops. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "cpu_internal.h"
#include "kernels/catalogue.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/half.h"
#include "kernels/reference.h"

static int is_float(uint32_t t) {
    return t == HETRUN_F32 || t == HETRUN_F64 || t == HETRUN_F16 || t == HETRUN_BF16;
}

hetrun_status cpu_op_supported(hetrun_device *dev, const hetrun_op_desc *d) {
    (void)dev;
    char why[256];
    if (!hetrun_op_desc_valid(d, why, sizeof why))
        return cpu_error(HETRUN_ERR_UNSUPPORTED, "cpu: %s", why);
    /* Every catalogue pair is implemented; float dtypes only outside GEMM (the catalogue
     * already enforces that). */
    if (d->kind != HETRUN_OP_GEMM && d->kind != HETRUN_OP_CAST && !is_float(d->dtype))
        return cpu_error(HETRUN_ERR_UNSUPPORTED, "cpu: %s does not take %s",
                         hetrun_op_name(d->kind), hetrun_dtype_name(d->dtype));
    return HETRUN_OK;
}

/* Elements of GEMM operands A, B, C including leading-dimension padding. */
static void gemm_spans(const hetrun_op_desc *d, uint64_t span[3]) {
    for (int a = 0; a < 3; a++)
        span[a] = hetrun_op_arg_elements(d, a);
}

/* fp32 (or fp64, for exact int8) copies of the operands the widened GEMMs need. */
static uint64_t workspace_bytes(const hetrun_op_desc *d) {
    if (d->kind != HETRUN_OP_GEMM) return 0;
    uint64_t s[3];
    gemm_spans(d, s);
    if (d->dtype == HETRUN_F16 || d->dtype == HETRUN_BF16)
        return (s[0] + s[1] + (d->out_dtype == HETRUN_F32 ? 0 : s[2])) * sizeof(float);
    if (d->dtype == HETRUN_I8) return (s[0] + s[1] + s[2]) * sizeof(double);
    return 0;
}

hetrun_status cpu_op_workspace_size(hetrun_device *dev, const hetrun_op_desc *d, uint64_t *bytes) {
    hetrun_status st = cpu_op_supported(dev, d);
    if (st == HETRUN_OK) *bytes = workspace_bytes(d);
    return st;
}

static int lead(int64_t ld, int64_t cols) {
    return (int)(ld ? ld : cols);
}

static void widen(const void *src, uint32_t dtype, float *dst, uint64_t count) {
    const uint16_t *h = src;
    if (dtype == HETRUN_BF16)
        for (uint64_t i = 0; i < count; i++)
            dst[i] = hetrun_bf16_to_f32(h[i]);
    else
        for (uint64_t i = 0; i < count; i++)
            dst[i] = hetrun_f16_to_f32(h[i]);
}

static void narrow(const float *src, uint32_t dtype, void *dst, uint64_t count) {
    uint16_t *h = dst;
    if (dtype == HETRUN_BF16)
        for (uint64_t i = 0; i < count; i++)
            h[i] = hetrun_f32_to_bf16(src[i]);
    else
        for (uint64_t i = 0; i < count; i++)
            h[i] = hetrun_f32_to_f16(src[i]);
}

static void gemm(const hetrun_op_desc *d, void *const *p, void *ws) {
    const enum CBLAS_TRANSPOSE ta = (d->flags & HETRUN_OP_TRANS_A) ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = (d->flags & HETRUN_OP_TRANS_B) ? CblasTrans : CblasNoTrans;
    const int m = (int)d->m, n = (int)d->n, k = (int)d->k;
    const int lda = lead(d->lda, ta == CblasTrans ? m : k);
    const int ldb = lead(d->ldb, tb == CblasTrans ? k : n);
    const int ldc = lead(d->ldc, n);
    uint64_t s[3];
    gemm_spans(d, s);
    switch (d->dtype) {
    case HETRUN_F32:
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, (float)d->alpha, p[0], lda, p[1], ldb,
                    (float)d->beta, p[2], ldc);
        break;
    case HETRUN_F64:
        cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, d->alpha, p[0], lda, p[1], ldb, d->beta, p[2],
                    ldc);
        break;
    case HETRUN_F16:
    case HETRUN_BF16: { /* widen to fp32, one SGEMM (fp32 accumulate), round once */
        float *a = ws, *b = a + s[0], *c = d->out_dtype == HETRUN_F32 ? p[2] : b + s[1];
        widen(p[0], d->dtype, a, s[0]);
        widen(p[1], d->dtype, b, s[1]);
        /* C is widened even when beta is 0: the narrowing below writes C's whole span back,
         * and the elements between rows (ldc > n: another head's columns) must come back
         * unchanged (a round trip through fp32 is exact). */
        if (d->out_dtype != HETRUN_F32) widen(p[2], d->out_dtype, c, s[2]);
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, (float)d->alpha, a, lda, b, ldb, (float)d->beta,
                    c, ldc);
        if (d->out_dtype != HETRUN_F32) narrow(c, d->out_dtype, p[2], s[2]);
        break;
    }
    case HETRUN_I8: { /* exact in fp64: |sum| <= k * 2^14 < 2^53 */
        double *a = ws, *b = a + s[0], *c = b + s[1];
        for (uint64_t i = 0; i < s[0]; i++)
            a[i] = ((const int8_t *)p[0])[i];
        for (uint64_t i = 0; i < s[1]; i++)
            b[i] = ((const int8_t *)p[1])[i];
        for (uint64_t i = 0; i < s[2]; i++)
            c[i] = d->beta != 0.0 ? ((int32_t *)p[2])[i] : 0.0;
        cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, d->beta, c, ldc);
        for (int64_t i = 0; i < d->m; i++)
            for (int64_t j = 0; j < d->n; j++)
                ((int32_t *)p[2])[i * ldc + j] = (int32_t)c[i * ldc + j];
        break;
    }
    default: break;
    }
}

/* One GEMM per batch entry; a broadcast operand (stride 0) is read by every entry. */
static void batched_gemm(const hetrun_op_desc *d, void *const *p, void *ws) {
    hetrun_op_desc one = *d;
    one.batch = 1;
    const hetrun_dtype t[3] = {(hetrun_dtype)d->dtype, (hetrun_dtype)d->dtype,
                               (hetrun_dtype)d->out_dtype};
    for (int64_t b = 0; b < d->batch; b++) {
        void *q[3];
        for (int a = 0; a < 3; a++)
            q[a] = (char *)p[a] +
                   (size_t)(b * hetrun_gemm_batch_stride(d, a)) * hetrun_dtype_size(t[a]);
        gemm(&one, q, ws);
    }
}

static void run_f32(const hetrun_op_desc *d, void *const *p) {
    const int64_t m = d->m, n = d->n, mn = m * n;
    const float alpha = (float)d->alpha, beta = (float)d->beta;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_BIAS_ADD: hetrun_cpu_bias_add_f32(p[0], p[1], p[2], m, n); break;
    case HETRUN_OP_ACT_FORWARD: hetrun_cpu_act_forward_f32(d->act, p[0], p[1], mn); break;
    case HETRUN_OP_ACT_BACKWARD: hetrun_cpu_act_backward_f32(d->act, p[0], p[1], p[2], mn); break;
    case HETRUN_OP_SOFTMAX: hetrun_cpu_softmax_f32(p[0], p[1], m, n); break;
    case HETRUN_OP_XENT_FORWARD: hetrun_cpu_xent_forward_f32(p[0], p[1], p[2], p[3], m, n); break;
    case HETRUN_OP_XENT_BACKWARD:
        hetrun_cpu_xent_backward_f32(p[0], p[1], p[2], m, n, alpha);
        break;
    case HETRUN_OP_LAYERNORM:
        hetrun_cpu_layernorm_f32(p[0], p[1], p[2], p[3], m, n, (float)d->p[0]);
        break;
    case HETRUN_OP_REDUCE_SUM_AXIS0:
        hetrun_cpu_reduce_axis0_f32(p[0], p[1], m, n, alpha, beta);
        break;
    case HETRUN_OP_REDUCE_SUM_AXIS1:
        hetrun_cpu_reduce_axis1_f32(p[0], p[1], m, n, alpha, beta);
        break;
    case HETRUN_OP_SCALE: hetrun_cpu_scale_f32(p[0], p[1], mn, alpha); break;
    case HETRUN_OP_AXPY: hetrun_cpu_axpy_f32(p[0], p[1], mn, alpha); break;
    case HETRUN_OP_MUL: hetrun_cpu_mul_f32(p[0], p[1], p[2], mn); break;
    case HETRUN_OP_FILL: hetrun_cpu_fill_f32(p[0], mn, alpha); break;
    case HETRUN_OP_SGD_MOMENTUM:
        hetrun_cpu_sgd_momentum_f32(p[0], p[1], p[2], mn, (float)d->p[0], (float)d->p[1],
                                    (float)d->p[2]);
        break;
    case HETRUN_OP_ADAMW: hetrun_cpu_adamw_f32(p[0], p[1], p[2], p[3], mn, d->p); break;
    default: break;
    }
}

hetrun_status cpu_op_run(hetrun_queue *q, const hetrun_op_desc *d, const hetrun_tensor *args,
                         int32_t nargs, hetrun_tensor workspace) {
    (void)q;
    hetrun_status st = cpu_op_supported(NULL, d);
    if (st != HETRUN_OK) return st;
    const int arity = hetrun_op_arity(d->kind);
    if (nargs != arity)
        return cpu_error(HETRUN_ERR_INVALID, "cpu: %s takes %d operands, got %d",
                         hetrun_op_name(d->kind), arity, nargs);
    void *p[HETRUN_OP_MAX_ARGS] = {0};
    for (int a = 0; a < arity; a++) {
        if (!hetrun_op_arg_present(d, a)) continue; /* optional operand not in use */
        uint64_t need = hetrun_op_arg_bytes(d, a);
        if (!args[a].buffer || args[a].offset > args[a].buffer->bytes ||
            need > args[a].buffer->bytes - args[a].offset)
            return cpu_error(HETRUN_ERR_INVALID,
                             "cpu: %s operand %d needs %llu bytes at offset %llu, buffer has %llu",
                             hetrun_op_name(d->kind), a, (unsigned long long)need,
                             (unsigned long long)args[a].offset,
                             (unsigned long long)(args[a].buffer ? args[a].buffer->bytes : 0));
        p[a] = (char *)args[a].buffer->ptr + args[a].offset;
    }
    uint64_t ws_need = workspace_bytes(d);
    void *ws = NULL;
    if (ws_need) {
        if (!workspace.buffer || workspace.offset > workspace.buffer->bytes ||
            ws_need > workspace.buffer->bytes - workspace.offset)
            return cpu_error(HETRUN_ERR_INVALID, "cpu: %s needs %llu bytes of workspace",
                             hetrun_op_name(d->kind), (unsigned long long)ws_need);
        ws = (char *)workspace.buffer->ptr + workspace.offset;
    }
    if (d->kind == HETRUN_OP_GEMM && d->batch > 1) {
        batched_gemm(d, p, ws);
    } else if (d->kind == HETRUN_OP_GEMM) {
        gemm(d, p, ws);
    } else if (d->kind == HETRUN_OP_CAST) {
        hetrun_cpu_cast(p[0], (int)d->dtype, p[1], (int)d->out_dtype, d->m * d->n);
    } else if (d->dtype == HETRUN_F32 && d->kind < HETRUN_OP_FIRST_V1_1) {
        run_f32(d, p);
    } else if (hetrun_reference_run(d, p) != 0) {
        return cpu_error(HETRUN_ERR_INTERNAL, "cpu: reference path rejected %s",
                         hetrun_op_name(d->kind));
    }
    return HETRUN_OK;
}
