/* The CPU backend's tuned paths for the ABI 1.1 ops: fused attention
 * (kernels/cpu/attention.c), the row-wise transformer kernels (kernels/cpu/transformer.c),
 * and SGEMM followed by a threaded bias/activation pass (fp16 and bf16 widened to fp32
 * first). GEMM itself, batched included, is cpu_gemm.c's (the one owner of the BLAS). Other
 * dtypes of these ops take the reference path in cpu_ops.c. */
#include <stdlib.h>

#include "cpu_blas.h"

#include "cpu_internal.h"
#include "cpu_skinny.h"
#include "kernels/catalogue.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/cpu_parallel.h"
#include "kernels/cpu/transformer.h"

/* The one BLAS entry point this file uses: the loaded BLAS (cpu_blas.c). */
static void sgemm(const hetrun_op_desc *d, const float *a, const float *b, float *c) {
    const int ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
    const int lda = (int)(d->lda ? d->lda : ta ? d->m : d->k);
    const int ldb = (int)(d->ldb ? d->ldb : tb ? d->k : d->n);
    const int ldc = (int)(d->ldc ? d->ldc : d->n);
    cpu_blas_lib.sgemm(CPU_ROW_MAJOR, ta ? CPU_TRANS : CPU_NO_TRANS, tb ? CPU_TRANS : CPU_NO_TRANS,
                       (int)d->m, (int)d->n, (int)d->k, (float)d->alpha, a, lda, b, ldb,
                       (float)d->beta, c, ldc);
}

int cpu_fast_path(const hetrun_op_desc *d) {
    const int f32 = d->dtype == HETRUN_F32 && d->out_dtype == HETRUN_F32;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_ATTENTION_FORWARD:
    case HETRUN_OP_ATTENTION_BACKWARD: /* token indices are int32 lanes in the kernels */
        return d->m < ((int64_t)1 << 30) && d->n < ((int64_t)1 << 30);
    case HETRUN_OP_GEMM_BIAS_ACT: return d->dtype != HETRUN_F64;
    case HETRUN_OP_LAYERNORM_FORWARD:
    case HETRUN_OP_LAYERNORM_BACKWARD:
    case HETRUN_OP_SOFTMAX_BACKWARD:
    case HETRUN_OP_EMBEDDING_FORWARD:
    case HETRUN_OP_EMBEDDING_BACKWARD:
    case HETRUN_OP_NONFINITE_COUNT:
    case HETRUN_OP_SUM_SQUARES: return f32;
    default: return 0;
    }
}

typedef struct gemm_ctx {
    const hetrun_op_desc *d;
    void *const *p;
    int64_t chunk; /* epilogue rows per task */
} gemm_ctx;

/* C = act(C + bias) row by row, the pre-activation value into aux. */
static void epilogue_rows(void *arg, int64_t t, int worker) {
    (void)worker;
    const gemm_ctx *c = arg;
    const hetrun_op_desc *d = c->d;
    const int64_t n = d->n, ldc = d->ldc ? d->ldc : n;
    const int64_t end = (t + 1) * c->chunk < d->m ? (t + 1) * c->chunk : d->m;
    const float *bias = (d->flags & HETRUN_OP_HAS_BIAS) ? c->p[2] : NULL;
    float *aux = (d->flags & HETRUN_OP_HAS_AUX) ? c->p[4] : NULL;
    for (int64_t i = t * c->chunk; i < end; i++) {
        float *row = (float *)c->p[3] + i * ldc;
        if (bias) hetrun_cpu_bias_add_f32(row, bias, row, 1, n);
        if (aux)
            for (int64_t j = 0; j < n; j++)
                aux[i * n + j] = row[j];
        hetrun_cpu_act_forward_f32(d->act, row, row, n);
    }
}

/* fp32 operands: SGEMM, then the epilogue over the rows. */
static void gemm_bias_act_f32(const hetrun_op_desc *d, void *const *p) {
    sgemm(d, p[0], p[1], p[3]);
    if (!(d->flags & (HETRUN_OP_HAS_BIAS | HETRUN_OP_HAS_AUX)) && d->act == HETRUN_ACT_IDENTITY)
        return;
    gemm_ctx c = {d, p, (1 << 14) / d->n + 1};
    hetrun_cpu_parallel((d->m + c.chunk - 1) / c.chunk, epilogue_rows, &c);
}

uint64_t cpu_bias_act_workspace(const hetrun_op_desc *d) {
    if (d->dtype != HETRUN_F16 && d->dtype != HETRUN_BF16) return 0;
    const uint64_t sa = hetrun_op_arg_elements(d, 0), sb = hetrun_op_arg_elements(d, 1);
    const uint64_t sc = hetrun_op_arg_elements(d, 3), sn = (uint64_t)d->n;
    const uint64_t sx = (uint64_t)d->m * (uint64_t)d->n;
    return (sa + sb + (d->out_dtype != HETRUN_F32 ? sc + sn + sx : 0)) * sizeof(float);
}

/* fp16/bf16 inputs: widened to fp32 copies (exact) in the workspace, the fp32 path, one
 * rounding of C's rows and aux at the end (the padding between C's rows is never written
 * back: a NaN there would not survive the round trip bit for bit). The copies live in the op
 * workspace the launcher allocates once: a malloc per call cost fresh pages of B's size
 * (2.3 MB for a 1536 x 384 weight) on every call. */
static void gemm_bias_act(const hetrun_op_desc *d, void *const *p, void *ws) {
    if (cpu_skinny_takes(d)) {
        void *q[5] = {p[0], p[1], (d->flags & HETRUN_OP_HAS_BIAS) ? p[2] : NULL, p[3],
                      (d->flags & HETRUN_OP_HAS_AUX) ? p[4] : NULL};
        cpu_skinny_run(d, q);
        return;
    }
    if (d->dtype == HETRUN_F32) {
        gemm_bias_act_f32(d, p);
        return;
    }
    const int in = (int)d->dtype, out = (int)d->out_dtype, narrow = out != HETRUN_F32;
    const uint64_t sa = hetrun_op_arg_elements(d, 0), sb = hetrun_op_arg_elements(d, 1);
    const uint64_t sc = hetrun_op_arg_elements(d, 3), sn = (uint64_t)d->n;
    const uint64_t sx = (uint64_t)d->m * (uint64_t)d->n;
    const int bias = (d->flags & HETRUN_OP_HAS_BIAS) != 0,
              aux = (d->flags & HETRUN_OP_HAS_AUX) != 0;
    float *w = ws;
    void *q[5] = {w, w + sa, p[2], p[3], p[4]};
    cpu_convert(p[0], in, q[0], HETRUN_F32, sa);
    cpu_convert(p[1], in, q[1], HETRUN_F32, sb);
    if (narrow) {
        q[3] = w + sa + sb;
        q[2] = (float *)q[3] + sc;
        q[4] = (float *)q[2] + sn;
        cpu_convert(p[3], out, q[3], HETRUN_F32, sc);
        if (bias) cpu_convert(p[2], out, q[2], HETRUN_F32, sn);
    }
    gemm_bias_act_f32(d, q);
    if (narrow) {
        const int64_t ldc = d->ldc ? d->ldc : d->n; /* C's rows only: padding is not C */
        for (int64_t i = 0; i < d->m; i++)
            cpu_convert((float *)q[3] + i * ldc, HETRUN_F32, (uint16_t *)p[3] + i * ldc, out, d->n);
        if (aux) cpu_convert(q[4], HETRUN_F32, p[4], out, sx);
    }
}

hetrun_status cpu_fast_run(const hetrun_op_desc *d, void *const *p, void *ws) {
    const int64_t m = d->m, n = d->n, mn = m * n;
    const float alpha = (float)d->alpha, beta = (float)d->beta;
    switch ((hetrun_op_kind)d->kind) {
    case HETRUN_OP_GEMM_BIAS_ACT: gemm_bias_act(d, p, ws); break;
    case HETRUN_OP_ATTENTION_FORWARD:
    case HETRUN_OP_ATTENTION_BACKWARD:
        if ((d->kind == HETRUN_OP_ATTENTION_FORWARD ? hetrun_cpu_attention_forward(d, p)
                                                    : hetrun_cpu_attention_backward(d, p)) != 0)
            return cpu_error(HETRUN_ERR_NO_MEMORY,
                             "cpu: %s (batch %lld, heads %lld, m %lld, n %lld, k %lld): no memory "
                             "for its per-thread scratch",
                             hetrun_op_name(d->kind), (long long)d->batch, (long long)d->heads,
                             (long long)m, (long long)n, (long long)d->k);
        break;
    case HETRUN_OP_LAYERNORM_FORWARD:
        hetrun_cpu_layernorm_forward_f32(p[0], p[1], p[2], p[3], p[4], p[5], m, n, (float)d->p[0]);
        break;
    case HETRUN_OP_LAYERNORM_BACKWARD:
        hetrun_cpu_layernorm_backward_f32(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], m, n,
                                          d->beta != 0.0, d->p[1] != 0.0);
        break;
    case HETRUN_OP_SOFTMAX_BACKWARD: hetrun_cpu_softmax_backward_f32(p[0], p[1], p[2], m, n); break;
    case HETRUN_OP_EMBEDDING_FORWARD:
        hetrun_cpu_embedding_forward_f32(p[0], p[1], p[2], m, n, d->k, alpha, beta);
        break;
    case HETRUN_OP_EMBEDDING_BACKWARD:
        if (hetrun_cpu_embedding_backward_f32(p[0], p[1], p[2], m, n, d->k, alpha, beta != 0.0f))
            return cpu_error(HETRUN_ERR_NO_MEMORY,
                             "cpu: embedding_backward (m %lld, k %lld): no memory to sort the ids",
                             (long long)m, (long long)d->k);
        break;
    case HETRUN_OP_NONFINITE_COUNT: {
        int32_t *count = p[1];
        int64_t bad = hetrun_cpu_nonfinite_count_f32(p[0], mn) + (beta != 0.0f ? *count : 0);
        *count = (int32_t)bad;
        break;
    }
    case HETRUN_OP_SUM_SQUARES: {
        float *out = p[1];
        double s = d->alpha * hetrun_cpu_sum_squares_f32(p[0], mn);
        *out = (float)(s + (d->beta != 0.0 ? d->beta * (double)*out : 0.0));
        break;
    }
    default:
        return cpu_error(HETRUN_ERR_INTERNAL, "cpu: no tuned path for %s", hetrun_op_name(d->kind));
    }
    return HETRUN_OK;
}
