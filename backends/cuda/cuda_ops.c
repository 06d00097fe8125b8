/* Op dispatch of the CUDA backend: which descriptors it runs, their workspace, and the
 * launch of cuBLASLt GEMM (cuda_gemm.c) or hetrun's own kernels (kernels/cuda). */
#include <inttypes.h>
#include <stdio.h>

#include "kernels/catalogue.h"
#include "cuda_internal.h"
#include "kernels.h"

static hetrun_status desc_check(const hetrun_op_desc *d, const char *call) {
    char why[160];
    if (!d) return hcu_fail(HETRUN_ERR_INVALID, "cuda: %s: NULL descriptor", call);
    if (!hetrun_op_desc_valid(d, why, sizeof why)) {
        const char *name = d->kind < HETRUN_OP_KIND_COUNT ? hetrun_op_name(d->kind) : "?";
        return hcu_fail(HETRUN_ERR_INVALID, "cuda: %s: invalid %s descriptor: %s", call, name, why);
    }
    return HETRUN_OK;
}

/* Non-GEMM ops: every catalogue dtype pair (f32, f64, f16, bf16; cast pairs) has a
 * kernel, compiled for sm_80 and sm_90 (+ PTX for newer); older GPUs have no image. */
static hetrun_status kernels_supported(hetrun_device *dev, const hetrun_op_desc *d) {
    char text[160];
    if (dev->cc_major < 8)
        return hcu_fail(HETRUN_ERR_UNSUPPORTED,
                        "cuda: %s: hetrun's CUDA kernels are built for sm_80+, device %d %s is "
                        "sm_%d%d",
                        hcu_op_text(d, text, sizeof text), dev->index, dev->name, dev->cc_major,
                        dev->cc_minor);
    return HETRUN_OK;
}

static bool is_attention(uint32_t kind) {
    return kind == HETRUN_OP_ATTENTION_FORWARD || kind == HETRUN_OP_ATTENTION_BACKWARD;
}

/* Ops run by kernels/cuda/training.cu (ABI 1.1). */
static bool is_training_op(uint32_t kind) {
    switch (kind) {
    case HETRUN_OP_LAYERNORM_FORWARD:
    case HETRUN_OP_LAYERNORM_BACKWARD:
    case HETRUN_OP_SOFTMAX_BACKWARD:
    case HETRUN_OP_EMBEDDING_FORWARD:
    case HETRUN_OP_EMBEDDING_BACKWARD:
    case HETRUN_OP_NONFINITE_COUNT:
    case HETRUN_OP_SUM_SQUARES: return true;
    default: return false;
    }
}

/* The plain GEMM inside a GEMM_BIAS_ACT (cuBLASLt, then the epilogue kernel). */
static hetrun_op_desc gemm_part(const hetrun_op_desc *d) {
    hetrun_op_desc g = *d;
    g.kind = HETRUN_OP_GEMM;
    g.flags &= HETRUN_OP_TRANS_A | HETRUN_OP_TRANS_B | HETRUN_OP_ALLOW_TF32;
    g.batch = 0;
    return g;
}

/* Workspace of hetrun's own kernels, plus room to align its start to 256 bytes. */
static uint64_t kernel_workspace(const hetrun_op_desc *d) {
    const uint64_t b = is_training_op(d->kind) ? hetrun_cuda_training_workspace(d)
                       : is_attention(d->kind) ? hetrun_cuda_attention_workspace(d)
                                               : 0;
    return b ? b + 256u : 0;
}

hetrun_status hcu_op_supported(hetrun_device *dev, const hetrun_op_desc *d) {
    hetrun_status st = hcu_check_alive(dev);
    if (st) return st;
    if ((st = desc_check(d, "op_supported"))) return st; /* a malformed descriptor: INVALID */
    const int64_t batch = d->batch > 1 ? d->batch : 1, heads = d->heads > 1 ? d->heads : 1;
    if (is_attention(d->kind) && (d->k > hetrun_cuda_attention_max_head_dim() || d->m > INT32_MAX ||
                                  d->n > INT32_MAX || heads > 65535 || batch > 65535))
        return hcu_fail(HETRUN_ERR_UNSUPPORTED,
                        "cuda: %s: head dim %" PRId64 " (max %" PRId64 "), tokens %" PRId64
                        "/%" PRId64 " (max 2^31-1), heads %" PRId64 ", batch %" PRId64
                        " (max 65535 each) exceed the CUDA attention kernel",
                        hetrun_op_name(d->kind), d->k, hetrun_cuda_attention_max_head_dim(), d->m,
                        d->n, heads, batch);
    if (d->kind == HETRUN_OP_GEMM_BIAS_ACT) {
        const hetrun_op_desc g = gemm_part(d);
        st = hcu_gemm_supported(dev, &g);
        return st ? st : kernels_supported(dev, d);
    }
    return d->kind == HETRUN_OP_GEMM ? hcu_gemm_supported(dev, d) : kernels_supported(dev, d);
}

hetrun_status hcu_op_workspace_size(hetrun_device *dev, const hetrun_op_desc *d, uint64_t *bytes) {
    hetrun_status st = hcu_check_alive(dev);
    if (st || (st = desc_check(d, "op_workspace_size"))) return st;
    if (!bytes) return hcu_fail(HETRUN_ERR_INVALID, "cuda: op_workspace_size: NULL output");
    *bytes = d->kind == HETRUN_OP_GEMM || d->kind == HETRUN_OP_GEMM_BIAS_ACT ? HCU_GEMM_WORKSPACE
                                                                             : kernel_workspace(d);
    return HETRUN_OK;
}

hetrun_status hcu_op_run(hetrun_queue *q, const hetrun_op_desc *d, const hetrun_tensor *args,
                         int32_t nargs, hetrun_tensor ws) {
    hetrun_status st = hcu_queue_check(q, "op_run");
    if (st || (st = desc_check(d, "op_run"))) return st;
    char text[160];
    const int arity = hetrun_op_arity((hetrun_op_kind)d->kind);
    if (!args || nargs != arity)
        return hcu_fail(HETRUN_ERR_INVALID,
                        "cuda: op_run: %s: nargs %d, but the op takes %d operands",
                        hcu_op_text(d, text, sizeof text), (int)nargs, arity);
    if (d->kind != HETRUN_OP_GEMM && (st = kernels_supported(q->dev, d))) return st;
    void *ptr[HETRUN_OP_MAX_ARGS] = {NULL};
    for (int i = 0; i < arity; i++) {
        if (!hetrun_op_arg_present(d, i)) continue; /* optional operand not used */
        if ((st = hcu_tensor_ptr(q->dev, args[i], hetrun_op_arg_bytes(d, i), "op_run operand",
                                 &ptr[i]))) {
            /* Name the op and operand only on failure: snprintf costs on the hot path. */
            char msg[1024];
            snprintf(msg, sizeof msg, "%s (%s, operand %d of %d)", hcu_last_error(),
                     hcu_op_text(d, text, sizeof text), i, arity);
            return hcu_fail(st, "%s", msg);
        }
    }
    void *wptr = NULL;
    uint64_t wbytes = 0;
    if (ws.buffer) {
        if ((st = hcu_tensor_ptr(q->dev, ws, 0, "op_run workspace", &wptr))) return st;
        wbytes = ws.buffer->bytes - ws.offset;
    }
    if (d->kind == HETRUN_OP_GEMM) return hcu_gemm_run(q, d, ptr[0], ptr[1], ptr[2], wptr, wbytes);
    if (d->kind == HETRUN_OP_GEMM_BIAS_ACT) { /* GEMM into C, then bias, aux and act */
        const hetrun_op_desc g = gemm_part(d);
        if ((st = hcu_gemm_run(q, &g, ptr[0], ptr[1], ptr[3], wptr, wbytes))) return st;
        cudaError_t e =
            hetrun_cuda_bias_act(d, ptr[3], ptr[2], ptr[4], q->stream, q->dev->sm_count);
        return e == cudaSuccess ? HETRUN_OK
                                : hcu_cuda_fail(q->dev, e, "kernel launch (bias_act epilogue)",
                                                hcu_op_text(d, text, sizeof text));
    }
    const uint64_t need = kernel_workspace(d);
    if (need) {
        if (!wptr || wbytes < need)
            return hcu_fail(HETRUN_ERR_INVALID,
                            "cuda: op_run: %s needs %" PRIu64 " bytes of workspace "
                            "(op_workspace_size), got %" PRIu64,
                            hcu_op_text(d, text, sizeof text), need, wptr ? wbytes : 0);
        wptr = (void *)(((uintptr_t)wptr + 255u) & ~(uintptr_t)255u);
    }
    cudaError_t e;
    if (is_training_op(d->kind)) {
        e = hetrun_cuda_training(d, ptr, wptr, q->stream, q->dev->sm_count);
    } else if (is_attention(d->kind)) {
        e = hetrun_cuda_attention(d, ptr, wptr, q->stream);
    } else {
        switch ((hetrun_op_kind)d->kind) {
        case HETRUN_OP_SOFTMAX:
        case HETRUN_OP_XENT_FORWARD:
        case HETRUN_OP_LAYERNORM:
        case HETRUN_OP_REDUCE_SUM_AXIS0:
        case HETRUN_OP_REDUCE_SUM_AXIS1:
            e = hetrun_cuda_rowwise(d, ptr, q->stream, q->dev->sm_count);
            break;
        default: e = hetrun_cuda_elementwise(d, ptr, q->stream, q->dev->sm_count); break;
        }
    }
    if (e == cudaErrorNotSupported)
        return hcu_fail(HETRUN_ERR_INTERNAL, "cuda: op_run: no kernel for %s",
                        hcu_op_text(d, text, sizeof text));
    if (e != cudaSuccess)
        return hcu_cuda_fail(q->dev, e, "kernel launch", hcu_op_text(d, text, sizeof text));
    return HETRUN_OK;
}
