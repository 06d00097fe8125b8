/* CPU backend ops: GEMM in cpu_gemm.c (the loaded BLAS) or, on a constant B, cpu_packed.c;
 * fp32 kernels from kernels/cpu, and the
 * catalogue's reference code for the remaining float dtypes (fp64/fp16/bf16 non-GEMM ops
 * run at reference speed: correct, documented, not tuned); the ABI 1.1 transformer ops in
 * cpu_fast.c. */
#include <stdio.h>
#include <string.h>

#include "cpu_blas.h"
#include "cpu_internal.h"
#include "cpu_packed.h"
#include "kernels/catalogue.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/reference.h"

static int is_float(uint32_t t) {
    return t == HETRUN_F32 || t == HETRUN_F64 || t == HETRUN_F16 || t == HETRUN_BF16;
}

hetrun_status cpu_op_supported(hetrun_device *dev, const hetrun_op_desc *d) {
    (void)dev;
    char why[256];
    if (!hetrun_op_desc_valid(d, why, sizeof why))
        return cpu_error(HETRUN_ERR_INVALID, "cpu: invalid descriptor: %s", why);
    /* Every catalogue pair is implemented; float dtypes only outside GEMM (the catalogue
     * already enforces that). */
    if (d->kind != HETRUN_OP_GEMM && d->kind != HETRUN_OP_CAST && !is_float(d->dtype))
        return cpu_error(HETRUN_ERR_UNSUPPORTED, "cpu: %s does not take %s",
                         hetrun_op_name(d->kind), hetrun_dtype_name(d->dtype));
    return HETRUN_OK;
}

/* fp32 copies of narrow GEMM operands (and exact fp64 ones of int8), sized once per shape. */
static uint64_t workspace_of(const hetrun_op_desc *d) {
    return d->kind == HETRUN_OP_GEMM_BIAS_ACT ? cpu_bias_act_workspace(d) : cpu_gemm_workspace(d);
}

hetrun_status cpu_op_workspace_size(hetrun_device *dev, const hetrun_op_desc *d, uint64_t *bytes) {
    hetrun_status st = cpu_op_supported(dev, d);
    if (st == HETRUN_OK) *bytes = workspace_of(d);
    return st;
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

/* A GEMM or GEMM_BIAS_ACT on a constant B through cpu_packed.c; 0 when it declines. */
static int run_packed(const hetrun_op_desc *d, const hetrun_tensor *args, void *const *p,
                      void *ws) {
    const int epi = d->kind == HETRUN_OP_GEMM_BIAS_ACT;
    void *const g[5] = {p[0], p[1], epi && (d->flags & HETRUN_OP_HAS_BIAS) ? p[2] : NULL,
                        epi ? p[3] : p[2], epi && (d->flags & HETRUN_OP_HAS_AUX) ? p[4] : NULL};
    return cpu_packed_run(d, args[1], g, ws);
}

hetrun_status cpu_op_run(hetrun_queue *q, const hetrun_op_desc *d, const hetrun_tensor *args,
                         int32_t nargs, hetrun_tensor workspace) {
    (void)q;
    hetrun_status st = cpu_op_supported(NULL, d);
    if (st != HETRUN_OK) return st;
    const int arity = hetrun_op_arity(d->kind);
    if (nargs != arity)
        return cpu_error(HETRUN_ERR_INVALID, "cpu: %s: nargs %d, but the op takes %d operands",
                         hetrun_op_name(d->kind), nargs, arity);
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
    uint64_t ws_need = workspace_of(d);
    void *ws = NULL;
    if (ws_need) {
        if (!workspace.buffer || workspace.offset > workspace.buffer->bytes ||
            ws_need > workspace.buffer->bytes - workspace.offset)
            return cpu_error(HETRUN_ERR_INVALID, "cpu: %s needs %llu bytes of workspace",
                             hetrun_op_name(d->kind), (unsigned long long)ws_need);
        ws = (char *)workspace.buffer->ptr + workspace.offset;
    }
    const hetrun_op_info *info = hetrun_op_info_of(d->kind);
    for (int a = 0; a < arity; a++) /* outputs change bytes a packed copy may have come from */
        if (p[a] && info->args[a].role != HETRUN_ARG_IN)
            cpu_packed_drop(args[a].buffer, args[a].offset, hetrun_op_arg_bytes(d, a));
    if (cpu_packed_takes(d) && run_packed(d, args, p, ws)) {
        return HETRUN_OK;
    } else if (cpu_fast_path(d)) {
        return cpu_fast_run(d, p, ws);
    } else if (d->kind == HETRUN_OP_GEMM) {
        cpu_gemm(d, p, ws);
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
