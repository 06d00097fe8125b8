/* Op dispatch of the CUDA backend: which descriptors it runs, their workspace, and the
 * launch of cuBLASLt GEMM (cuda_gemm.c) or hetrun's own kernels (kernels/cuda). */
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

hetrun_status hcu_op_supported(hetrun_device *dev, const hetrun_op_desc *d) {
    hetrun_status st = hcu_check_alive(dev);
    if (st) return st;
    char why[160];
    if (!d) return hcu_fail(HETRUN_ERR_INVALID, "cuda: op_supported: NULL descriptor");
    if (!hetrun_op_desc_valid(d, why, sizeof why))
        return hcu_fail(HETRUN_ERR_UNSUPPORTED, "cuda: op_supported: %s", why);
    if (d->kind >= HETRUN_OP_FIRST_V1_1 || (d->kind == HETRUN_OP_GEMM && d->batch > 1) ||
        ((d->kind == HETRUN_OP_ACT_FORWARD || d->kind == HETRUN_OP_ACT_BACKWARD) &&
         d->act >= HETRUN_ACT_GELU_ERF))
        return hcu_fail(HETRUN_ERR_UNSUPPORTED,
                        "cuda: op %s%s not supported yet (ABI 1.1 kernels pending)",
                        hetrun_op_name(d->kind), d->kind == HETRUN_OP_GEMM ? " (batched)" : "");
    return d->kind == HETRUN_OP_GEMM ? hcu_gemm_supported(dev, d) : kernels_supported(dev, d);
}

hetrun_status hcu_op_workspace_size(hetrun_device *dev, const hetrun_op_desc *d, uint64_t *bytes) {
    hetrun_status st = hcu_check_alive(dev);
    if (st || (st = desc_check(d, "op_workspace_size"))) return st;
    if (!bytes) return hcu_fail(HETRUN_ERR_INVALID, "cuda: op_workspace_size: NULL output");
    *bytes = d->kind == HETRUN_OP_GEMM ? HCU_GEMM_WORKSPACE : 0;
    return HETRUN_OK;
}

hetrun_status hcu_op_run(hetrun_queue *q, const hetrun_op_desc *d, const hetrun_tensor *args,
                         int32_t nargs, hetrun_tensor ws) {
    hetrun_status st = hcu_queue_check(q, "op_run");
    if (st || (st = desc_check(d, "op_run"))) return st;
    char text[160];
    const int arity = hetrun_op_arity((hetrun_op_kind)d->kind);
    if (!args || nargs != arity)
        return hcu_fail(HETRUN_ERR_INVALID, "cuda: op_run: %s takes %d operands, got %d",
                        hcu_op_text(d, text, sizeof text), arity, (int)nargs);
    if (d->kind != HETRUN_OP_GEMM && (st = kernels_supported(q->dev, d))) return st;
    void *ptr[HETRUN_OP_MAX_ARGS] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < arity; i++) {
        if ((st = hcu_tensor_ptr(q->dev, args[i], hetrun_op_arg_bytes(d, i), "op_run operand",
                                 &ptr[i]))) {
            /* Name the op and operand only on failure: snprintf costs on the hot path. */
            char msg[1024];
            snprintf(msg, sizeof msg, "%s (%s, operand %d of %d)", hcu_last_error(),
                     hcu_op_text(d, text, sizeof text), i, arity);
            return hcu_fail(st, "%s", msg);
        }
    }
    cudaError_t e;
    if (d->kind == HETRUN_OP_GEMM) {
        void *wptr = NULL;
        uint64_t wbytes = 0;
        if (ws.buffer) {
            if ((st = hcu_tensor_ptr(q->dev, ws, 0, "op_run workspace", &wptr))) return st;
            wbytes = ws.buffer->bytes - ws.offset;
        }
        return hcu_gemm_run(q, d, ptr[0], ptr[1], ptr[2], wptr, wbytes);
    }
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
    if (e == cudaErrorNotSupported)
        return hcu_fail(HETRUN_ERR_INTERNAL, "cuda: op_run: no kernel for %s",
                        hcu_op_text(d, text, sizeof text));
    if (e != cudaSuccess)
        return hcu_cuda_fail(q->dev, e, "kernel launch", hcu_op_text(d, text, sizeof text));
    return HETRUN_OK;
}
