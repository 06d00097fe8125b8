/* Shared helpers of the CUDA backend: the thread's last error, CUDA error mapping
 * (sticky errors mark the device failed), binding, op text and operand resolution. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "kernels/catalogue.h"
#include "cuda_internal.h"

const hetrun_host_services *hcu_host;
static _Thread_local char t_err[1024];

const char *hcu_last_error(void) {
    return t_err;
}

hetrun_status hcu_fail(hetrun_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_err, sizeof t_err, fmt, ap);
    va_end(ap);
    return st;
}

void hcu_log(hetrun_log_level level, const char *msg) {
    if (hcu_host && hcu_host->log && (int)level <= hcu_host->log_level)
        hcu_host->log(level, "cuda", msg);
}

/* Errors after which the CUDA context is unusable until the process exits. */
bool hcu_is_sticky(cudaError_t e) {
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorECCUncorrectable:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorNvlinkUncorrectable:
    case cudaErrorExternalDevice:
    case cudaErrorContextIsDestroyed: return true;
    default: return false;
    }
}

hetrun_status hcu_cuda_fail(hetrun_device *dev, cudaError_t err, const char *call,
                            const char *context) {
    if (!hcu_is_sticky(err)) (void)cudaGetLastError(); /* do not leak into the next launch check */
    if (dev && hcu_is_sticky(err)) {
        atomic_store(&dev->failed, true);
        hcu_fail(HETRUN_ERR_DEVICE_LOST,
                 "%s failed: %s: %s (%s); device %d %s uuid %s bus %s marked failed, no retry",
                 call, cudaGetErrorName(err), cudaGetErrorString(err), context ? context : "-",
                 dev->index, dev->name, dev->uuid, dev->bus_id);
        hcu_log(HETRUN_LOG_ERROR, t_err);
        return HETRUN_ERR_DEVICE_LOST;
    }
    hetrun_status st = err == cudaErrorMemoryAllocation ? HETRUN_ERR_NO_MEMORY : HETRUN_ERR_DEVICE;
    if (dev)
        return hcu_fail(st, "%s failed: %s: %s (%s) on device %d %s bus %s", call,
                        cudaGetErrorName(err), cudaGetErrorString(err), context ? context : "-",
                        dev->index, dev->name, dev->bus_id);
    return hcu_fail(st, "%s failed: %s: %s (%s)", call, cudaGetErrorName(err),
                    cudaGetErrorString(err), context ? context : "-");
}

hetrun_status hcu_check_alive(hetrun_device *dev) {
    if (!dev) return hcu_fail(HETRUN_ERR_INVALID, "cuda: NULL device handle");
    if (atomic_load_explicit(&dev->failed, memory_order_relaxed))
        return hcu_fail(HETRUN_ERR_DEVICE_LOST,
                        "cuda: device %d %s uuid %s bus %s was marked failed after a sticky CUDA "
                        "error; no further work is run on it",
                        dev->index, dev->name, dev->uuid, dev->bus_id);
    return HETRUN_OK;
}

hetrun_status hcu_bind(hetrun_device *dev) {
    cudaError_t e = cudaSetDevice(dev->index);
    return e == cudaSuccess ? HETRUN_OK : hcu_cuda_fail(dev, e, "cudaSetDevice", "bind");
}

const char *hcu_op_text(const hetrun_op_desc *d, char *buf, size_t len) {
    const char *name = hetrun_op_name((hetrun_op_kind)d->kind);
    const char *in = hetrun_dtype_name((hetrun_dtype)d->dtype);
    const char *out = hetrun_dtype_name((hetrun_dtype)d->out_dtype);
    if (d->kind == HETRUN_OP_GEMM)
        snprintf(buf, len,
                 "op gemm %s->%s batch=%" PRId64 " m=%" PRId64 " n=%" PRId64 " k=%" PRId64 "%s%s%s",
                 in ? in : "?", out ? out : "?",
                 d->struct_size >= HETRUN_OP_DESC_SIZE_V1_1 && d->batch > 1 ? d->batch : 1, d->m,
                 d->n, d->k, (d->flags & HETRUN_OP_TRANS_A) ? " transA" : "",
                 (d->flags & HETRUN_OP_TRANS_B) ? " transB" : "",
                 (d->flags & HETRUN_OP_ALLOW_TF32) ? " tf32" : "");
    else
        snprintf(buf, len, "op %s %s->%s m=%" PRId64 " n=%" PRId64, name ? name : "?",
                 in ? in : "?", out ? out : "?", d->m, d->n);
    return buf;
}

/* Resolves a tensor to a device pointer, checking the handle, device and bounds. */
hetrun_status hcu_tensor_ptr(hetrun_device *dev, hetrun_tensor t, uint64_t bytes, const char *what,
                             void **out) {
    if (!t.buffer) return hcu_fail(HETRUN_ERR_INVALID, "cuda: %s: NULL buffer", what);
    if (t.buffer->dev != dev)
        return hcu_fail(HETRUN_ERR_INVALID, "cuda: %s: buffer is on device %d, queue on device %d",
                        what, t.buffer->dev->index, dev->index);
    if (t.offset > t.buffer->bytes || bytes > t.buffer->bytes - t.offset)
        return hcu_fail(HETRUN_ERR_INVALID,
                        "cuda: %s: %" PRIu64 " bytes at offset %" PRIu64
                        " exceed the buffer's %" PRIu64 " bytes",
                        what, bytes, t.offset, t.buffer->bytes);
    *out = (char *)t.buffer->ptr + t.offset;
    return HETRUN_OK;
}

hetrun_status hcu_queue_check(hetrun_queue *q, const char *call) {
    if (!q) return hcu_fail(HETRUN_ERR_INVALID, "cuda: %s: NULL queue", call);
    hetrun_status st = hcu_check_alive(q->dev);
    return st ? st : hcu_bind(q->dev);
}
