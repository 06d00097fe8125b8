/* hetrun backend template: a complete, working module to copy when adding a vendor
 * runtime (Ascend, Cambricon, MetaX, Moore Threads, Hygon DCU...).
 *
 * It simulates an accelerator runtime in host memory so that it runs anywhere and passes
 * `hetrun-conformance --backend template` from day one; each place that a real runtime
 * replaces is marked "RUNTIME:" with the calls it usually maps to. Ops use the two-phase
 * "workspace size, then run" pattern of aclnn/CNNL: op_workspace_size asks the library,
 * op_run hands it the workspace. Devices obey a visibility variable the way vendor
 * runtimes do (HETRUN_TEMPLATE_VISIBLE_DEVICES, like ASCEND_RT_VISIBLE_DEVICES), so the
 * launcher's placement can be exercised on machines without accelerators.
 *
 * It needs only the installed SDK: hetrun/backend.h, and hetrun/reference.h for the
 * descriptor checks and the plain C reference it runs every op on (libhetrun_reference).
 * The install puts this folder in share/hetrun/template; README.md there says how to build
 * it out of tree with find_package(hetrun) and hetrun_add_backend().
 *
 * Its devices say they are accelerators, so the launcher places ranks on them as it would
 * on NPUs. That is why hetrun's own build never installs the module nor puts it in the
 * default module folder: CMake puts it in lib/hetrun-template, and its tests point
 * HETRUN_BACKEND_PATH there. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strtok_r, clock_gettime under -std=c11 */
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hetrun/backend.h"
#include "hetrun/reference.h"

#define TEMPLATE_DEVICES 2 /* RUNTIME: aclrtGetDeviceCount / cnrtGetDeviceCount */
#define VISIBILITY_ENV "HETRUN_TEMPLATE_VISIBLE_DEVICES"

static _Thread_local char error_text[1024];
static const hetrun_host_services *host;
static int visible[TEMPLATE_DEVICES], nvisible;

static hetrun_status fail(hetrun_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static hetrun_status fail(hetrun_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(error_text, sizeof error_text, "template: ");
    vsnprintf(error_text + n, sizeof error_text - (size_t)n, fmt, ap);
    va_end(ap);
    return st;
}

static const char *tpl_last_error(void) {
    return error_text;
}

/* The visibility variable narrows and renumbers devices, as vendor runtimes do. */
static hetrun_status tpl_init(const hetrun_host_services *services) {
    host = services;
    nvisible = 0;
    const char *env = getenv(VISIBILITY_ENV);
    if (!env) {
        for (int i = 0; i < TEMPLATE_DEVICES; i++)
            visible[nvisible++] = i;
    } else {
        char copy[256], *save = NULL;
        snprintf(copy, sizeof copy, "%s", env);
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *end;
            long v = strtol(tok, &end, 10);
            if (*end || v < 0 || v >= TEMPLATE_DEVICES || nvisible == TEMPLATE_DEVICES)
                return fail(HETRUN_ERR_INVALID, "%s=%s: '%s' is not a device in 0..%d",
                            VISIBILITY_ENV, env, tok, TEMPLATE_DEVICES - 1);
            visible[nvisible++] = (int)v;
        }
    }
    if (nvisible == 0) /* RUNTIME: no driver or no device -> unavailable, never an error */
        return fail(HETRUN_ERR_UNAVAILABLE, "no visible device (%s is empty)", VISIBILITY_ENV);
    return HETRUN_OK;
}

static void tpl_finalize(void) {
    host = NULL;
} /* RUNTIME: aclFinalize */

static hetrun_status tpl_device_count(int32_t *count) {
    *count = nvisible;
    return HETRUN_OK;
}

static hetrun_status tpl_device_info(int32_t index, hetrun_device_info *info) {
    if (index < 0 || index >= nvisible)
        return fail(HETRUN_ERR_INVALID, "no device %d (%d visible)", index, nvisible);
    hetrun_device_info d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.kind = HETRUN_DEVICE_ACCELERATOR; /* simulated, so placement treats it as an NPU */
    snprintf(d.name, sizeof d.name, "template device %d", visible[index]);
    snprintf(d.vendor, sizeof d.vendor, "hetrun template");
    snprintf(d.driver_version, sizeof d.driver_version, "1.0");
    snprintf(d.uuid, sizeof d.uuid, "TEMPLATE-%08d", visible[index]);
    /* RUNTIME: the device's PCI address, e.g. from aclrtGetDeviceInfo or sysfs. An
     * address absent from the topology makes the launcher fall back and say so. */
    snprintf(d.pci_bus_id, sizeof d.pci_bus_id, "00ff:%02x:00.0", visible[index]);
    snprintf(d.arch, sizeof d.arch, "host simulation");
    d.memory_bytes = d.max_alloc_bytes = 1ull << 30;
    d.compute_units = 1;
    snprintf(d.visibility_env, sizeof d.visibility_env, "%s", VISIBILITY_ENV);
    size_t n = info->struct_size < sizeof d ? info->struct_size : sizeof d;
    memcpy(info, &d, n);
    info->struct_size = (uint32_t)n;
    return HETRUN_OK;
}

struct hetrun_device {
    int32_t index;
    uint64_t in_use, peak;
};
static struct hetrun_device devices[TEMPLATE_DEVICES];

static hetrun_status tpl_device_open(int32_t index, hetrun_device **dev) {
    if (index < 0 || index >= nvisible)
        return fail(HETRUN_ERR_INVALID, "no device %d (%d visible)", index, nvisible);
    devices[index].index = index; /* RUNTIME: aclrtSetDevice + context creation */
    *dev = &devices[index];
    return HETRUN_OK;
}

static void tpl_device_close(hetrun_device *dev) {
    (void)dev;
} /* RUNTIME: aclrtResetDevice */

struct hetrun_buffer {
    hetrun_device *dev;
    void *ptr; /* RUNTIME: the device pointer or handle from aclrtMalloc / cnrtMalloc */
    uint64_t bytes;
};

static hetrun_status tpl_mem_alloc(hetrun_device *dev, uint64_t bytes, hetrun_buffer **out) {
    if (!bytes) return fail(HETRUN_ERR_INVALID, "mem_alloc of 0 bytes");
    hetrun_buffer *b = malloc(sizeof *b);
    void *p = b ? malloc((size_t)bytes) : NULL;
    if (!p) {
        free(b);
        return fail(HETRUN_ERR_NO_MEMORY, "cannot allocate %llu bytes on device %d (%llu in use)",
                    (unsigned long long)bytes, dev->index, (unsigned long long)dev->in_use);
    }
    *b = (hetrun_buffer){dev, p, bytes};
    dev->in_use += bytes;
    if (dev->in_use > dev->peak) dev->peak = dev->in_use;
    *out = b;
    return HETRUN_OK;
}

static void tpl_mem_free(hetrun_buffer *b) {
    if (!b) return;
    b->dev->in_use -= b->bytes;
    free(b->ptr);
    free(b);
}

static hetrun_status in_range(hetrun_tensor t, uint64_t bytes, const char *what) {
    if (!t.buffer) return fail(HETRUN_ERR_INVALID, "%s: NULL buffer", what);
    if (t.offset > t.buffer->bytes || bytes > t.buffer->bytes - t.offset)
        return fail(HETRUN_ERR_INVALID, "%s: %llu bytes at offset %llu exceed the buffer's %llu",
                    what, (unsigned long long)bytes, (unsigned long long)t.offset,
                    (unsigned long long)t.buffer->bytes);
    return HETRUN_OK;
}

/* RUNTIME: aclrtMemcpy(Async) + stream sync for the blocking host copies. */
static hetrun_status tpl_copy_h2d(hetrun_queue *q, hetrun_tensor dst, const void *src,
                                  uint64_t bytes) {
    (void)q;
    hetrun_status st = in_range(dst, bytes, "copy_h2d");
    if (st == HETRUN_OK && bytes) memcpy((char *)dst.buffer->ptr + dst.offset, src, bytes);
    return st;
}

static hetrun_status tpl_copy_d2h(hetrun_queue *q, void *dst, hetrun_tensor src, uint64_t bytes) {
    (void)q;
    hetrun_status st = in_range(src, bytes, "copy_d2h");
    if (st == HETRUN_OK && bytes) memcpy(dst, (char *)src.buffer->ptr + src.offset, bytes);
    return st;
}

static hetrun_status tpl_copy_d2d(hetrun_queue *q, hetrun_tensor dst, hetrun_tensor src,
                                  uint64_t bytes) {
    (void)q;
    hetrun_status st = in_range(dst, bytes, "copy_d2d destination");
    if (st == HETRUN_OK) st = in_range(src, bytes, "copy_d2d source");
    if (st == HETRUN_OK && bytes)
        memmove((char *)dst.buffer->ptr + dst.offset, (char *)src.buffer->ptr + src.offset, bytes);
    return st;
}

/* RUNTIME: aclrtCreateStream. The simulation runs work when it is enqueued. */
struct hetrun_queue {
    hetrun_device *dev;
};

static hetrun_status tpl_queue_create(hetrun_device *dev, hetrun_queue **q) {
    if (!(*q = malloc(sizeof **q))) return fail(HETRUN_ERR_NO_MEMORY, "cannot allocate a queue");
    (*q)->dev = dev;
    return HETRUN_OK;
}
static void tpl_queue_destroy(hetrun_queue *q) {
    free(q);
}
static hetrun_status tpl_queue_sync(hetrun_queue *q) {
    (void)q;
    return HETRUN_OK;
}

/* RUNTIME: aclrtCreateEvent / aclrtRecordEvent / aclrtEventElapsedTime. */
struct hetrun_event {
    struct timespec at;
    int recorded;
};

static hetrun_status tpl_event_create(hetrun_device *dev, hetrun_event **ev) {
    (void)dev;
    if (!(*ev = calloc(1, sizeof **ev)))
        return fail(HETRUN_ERR_NO_MEMORY, "cannot allocate an event");
    return HETRUN_OK;
}
static void tpl_event_destroy(hetrun_event *ev) {
    free(ev);
}
static hetrun_status tpl_event_record(hetrun_event *ev, hetrun_queue *q) {
    (void)q;
    clock_gettime(CLOCK_MONOTONIC, &ev->at);
    ev->recorded = 1;
    return HETRUN_OK;
}
static hetrun_status tpl_event_elapsed_ms(hetrun_event *a, hetrun_event *b, double *ms) {
    if (!a->recorded || !b->recorded)
        return fail(HETRUN_ERR_INVALID, "elapsed time of an unrecorded event");
    *ms = (double)(b->at.tv_sec - a->at.tv_sec) * 1e3 +
          (double)(b->at.tv_nsec - a->at.tv_nsec) * 1e-6;
    return HETRUN_OK;
}

/* Ops: say exactly what is supported. RUNTIME: the library's own capability query. */
static hetrun_status tpl_op_supported(hetrun_device *dev, const hetrun_op_desc *d) {
    (void)dev;
    char why[256];
    if (!hetrun_op_desc_valid(d, why, sizeof why))
        return fail(HETRUN_ERR_INVALID, "invalid descriptor: %s", why);
    if (d->dtype != HETRUN_F32 && !(d->kind == HETRUN_OP_CAST))
        return fail(HETRUN_ERR_UNSUPPORTED, "%s supports fp32 only, not %s",
                    hetrun_op_name(d->kind), hetrun_dtype_name(d->dtype));
    return HETRUN_OK;
}

/* Phase 1. RUNTIME: aclnnXxxGetWorkspaceSize / cnnlGetXxxWorkspaceSize. The simulation
 * asks for a scratch copy of the output so phase 2 really uses the workspace. */
static hetrun_status tpl_op_workspace_size(hetrun_device *dev, const hetrun_op_desc *d,
                                           uint64_t *bytes) {
    hetrun_status st = tpl_op_supported(dev, d);
    if (st == HETRUN_OK) *bytes = d->kind == HETRUN_OP_GEMM ? hetrun_op_arg_bytes(d, 2) : 0;
    return st;
}

/* Phase 2. RUNTIME: aclnnXxx(workspace, size, executor, stream) / cnnlXxx(...). */
static hetrun_status tpl_op_run(hetrun_queue *q, const hetrun_op_desc *d, const hetrun_tensor *args,
                                int32_t nargs, hetrun_tensor workspace) {
    hetrun_status st = tpl_op_supported(q->dev, d);
    if (st != HETRUN_OK) return st;
    if (nargs != hetrun_op_arity(d->kind))
        return fail(HETRUN_ERR_INVALID, "%s: nargs %d, but the op takes %d operands",
                    hetrun_op_name(d->kind), nargs, hetrun_op_arity(d->kind));
    void *p[HETRUN_OP_MAX_ARGS] = {NULL};
    for (int a = 0; a < nargs; a++) {
        if (!hetrun_op_arg_present(d, a)) continue; /* optional operand not in use */
        if ((st = in_range(args[a], hetrun_op_arg_bytes(d, a), hetrun_op_name(d->kind))) !=
            HETRUN_OK)
            return st;
        p[a] = (char *)args[a].buffer->ptr + args[a].offset;
    }
    if (d->kind == HETRUN_OP_GEMM) { /* compute into the workspace, then copy out */
        uint64_t cbytes = hetrun_op_arg_bytes(d, 2);
        if ((st = in_range(workspace, cbytes, "gemm workspace")) != HETRUN_OK) return st;
        void *scratch = (char *)workspace.buffer->ptr + workspace.offset;
        memcpy(scratch, p[2], cbytes);
        void *gp[3] = {p[0], p[1], scratch};
        if (hetrun_reference_run(d, gp) != 0) return fail(HETRUN_ERR_INTERNAL, "gemm rejected");
        memcpy(p[2], scratch, cbytes);
        return HETRUN_OK;
    }
    return hetrun_reference_run(d, p) == 0
               ? HETRUN_OK
               : fail(HETRUN_ERR_INTERNAL, "%s rejected", hetrun_op_name(d->kind));
}

static hetrun_status tpl_memory_peak(hetrun_device *dev, uint64_t *bytes) {
    *bytes = dev->peak;
    return HETRUN_OK;
}

static const hetrun_backend_ops template_ops = {
    .abi_major = HETRUN_ABI_MAJOR,
    .abi_minor = HETRUN_ABI_MINOR,
    .struct_size = sizeof(hetrun_backend_ops),
    .name = "template",
    .version = "1.0",
    .init = tpl_init,
    .finalize = tpl_finalize,
    .last_error = tpl_last_error,
    .device_count = tpl_device_count,
    .device_info = tpl_device_info,
    .device_open = tpl_device_open,
    .device_close = tpl_device_close,
    .mem_alloc = tpl_mem_alloc,
    .mem_free = tpl_mem_free,
    .copy_h2d = tpl_copy_h2d,
    .copy_d2h = tpl_copy_d2h,
    .copy_d2d = tpl_copy_d2d,
    .queue_create = tpl_queue_create,
    .queue_destroy = tpl_queue_destroy,
    .queue_sync = tpl_queue_sync,
    .event_create = tpl_event_create,
    .event_destroy = tpl_event_destroy,
    .event_record = tpl_event_record,
    .event_elapsed_ms = tpl_event_elapsed_ms,
    .op_supported = tpl_op_supported,
    .op_workspace_size = tpl_op_workspace_size,
    .op_run = tpl_op_run,
    .memory_peak = tpl_memory_peak,
};

HETRUN_BACKEND_EXPORT const hetrun_backend_ops *hetrun_backend_entry(void) {
    return &template_ops;
}
