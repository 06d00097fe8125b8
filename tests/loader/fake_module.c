/* A deliberately broken or unavailable backend module, for the loader's tests. The
 * defect is chosen at compile time:
 *   FAKE_ABI_MAJOR=N     claims ABI major N
 *   FAKE_SHORT_STRUCT    claims a struct_size too small for ABI 1.0
 *   FAKE_UNAVAILABLE     init reports "no driver"
 *   FAKE_NO_ENTRY        exports no entry symbol
 *   FAKE_HANG            device_count never returns (a driver stuck in init)
 *   FAKE_HANG_INIT       init never returns
 *   FAKE_CRASH_INIT      init dereferences NULL (SIGSEGV)
 *   FAKE_EXIT_INIT       init calls exit(3) (a runtime that gives up on the process)
 *   FAKE_NULL_FN         copy_d2h and op_run are NULL
 *   FAKE_NAME="x"        ops->name (default "fake"; the file name says otherwise: mismatch)
 *   FAKE_VERSION="v"     ops->version (default "0"), so tests see it reported
 *   FAKE_ONE_DEVICE      loads with one device that supports GEMM F32->F32 only, and
 *                        prints to stdout in init (a probe must keep that out of JSON)
 * Its functions do nothing useful: the loader must refuse or skip it before use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hetrun/backend.h"

#ifndef FAKE_NAME
#define FAKE_NAME "fake"
#endif
#ifndef FAKE_VERSION
#define FAKE_VERSION "0"
#endif
#ifndef FAKE_ABI_MAJOR
#define FAKE_ABI_MAJOR HETRUN_ABI_MAJOR
#endif

static const char *fake_error = "";
static hetrun_status fake_init(const hetrun_host_services *h) {
    (void)h;
#ifdef FAKE_HANG_INIT
    for (;;)
        pause();
#endif
#ifdef FAKE_CRASH_INIT
    volatile int *volatile nowhere = NULL;
    *nowhere = 1;
#endif
#ifdef FAKE_EXIT_INIT
    exit(3);
#endif
#ifdef FAKE_ONE_DEVICE
    printf("fake: hello from init on stdout\n");
    fflush(stdout);
#endif
#ifdef FAKE_UNAVAILABLE
    fake_error = "fake: no driver installed (libfakedrv.so.1 not found)";
    return HETRUN_ERR_UNAVAILABLE;
#else
    return HETRUN_OK;
#endif
}
static void fake_finalize(void) {}
static const char *fake_last_error(void) {
    return fake_error;
}
static hetrun_status fake_count(int32_t *n) {
#ifdef FAKE_HANG
    for (;;)
        pause();
#endif
#ifdef FAKE_ONE_DEVICE
    *n = 1;
#else
    *n = 0;
#endif
    return HETRUN_OK;
}
static hetrun_status fake_info(int32_t i, hetrun_device_info *d) {
#ifdef FAKE_ONE_DEVICE
    if (i == 0) {
        snprintf(d->name, sizeof d->name, "fake device 0");
        snprintf(d->vendor, sizeof d->vendor, "hetrun tests");
        return HETRUN_OK;
    }
#endif
    (void)i;
    (void)d;
    return HETRUN_ERR_INVALID;
}
#ifdef FAKE_ONE_DEVICE
static int fake_device; /* its address is the one device handle */
#endif
static hetrun_status fake_open(int32_t i, hetrun_device **d) {
#ifdef FAKE_ONE_DEVICE
    if (i == 0) {
        *d = (hetrun_device *)(void *)&fake_device;
        return HETRUN_OK;
    }
#endif
    (void)i;
    (void)d;
    return HETRUN_ERR_INVALID;
}
static void fake_close(hetrun_device *d) {
    (void)d;
}
static hetrun_status fake_alloc(hetrun_device *d, uint64_t b, hetrun_buffer **o) {
    (void)d;
    (void)b;
    (void)o;
    return HETRUN_ERR_NO_MEMORY;
}
static void fake_free(hetrun_buffer *b) {
    (void)b;
}
static hetrun_status fake_h2d(hetrun_queue *q, hetrun_tensor t, const void *s, uint64_t b) {
    (void)q;
    (void)t;
    (void)s;
    (void)b;
    return HETRUN_ERR_INVALID;
}
#ifndef FAKE_NULL_FN
static hetrun_status fake_d2h(hetrun_queue *q, void *d, hetrun_tensor t, uint64_t b) {
    (void)q;
    (void)d;
    (void)t;
    (void)b;
    return HETRUN_ERR_INVALID;
}
#endif
static hetrun_status fake_d2d(hetrun_queue *q, hetrun_tensor a, hetrun_tensor b, uint64_t n) {
    (void)q;
    (void)a;
    (void)b;
    (void)n;
    return HETRUN_ERR_INVALID;
}
static hetrun_status fake_qc(hetrun_device *d, hetrun_queue **q) {
    (void)d;
    (void)q;
    return HETRUN_ERR_INVALID;
}
static void fake_qd(hetrun_queue *q) {
    (void)q;
}
static hetrun_status fake_qs(hetrun_queue *q) {
    (void)q;
    return HETRUN_OK;
}
static hetrun_status fake_ec(hetrun_device *d, hetrun_event **e) {
    (void)d;
    (void)e;
    return HETRUN_ERR_INVALID;
}
static void fake_ed(hetrun_event *e) {
    (void)e;
}
static hetrun_status fake_er(hetrun_event *e, hetrun_queue *q) {
    (void)e;
    (void)q;
    return HETRUN_ERR_INVALID;
}
static hetrun_status fake_el(hetrun_event *a, hetrun_event *b, double *ms) {
    (void)a;
    (void)b;
    (void)ms;
    return HETRUN_ERR_INVALID;
}
static hetrun_status fake_sup(hetrun_device *d, const hetrun_op_desc *o) {
    (void)d;
    if (o->kind == HETRUN_OP_GEMM && o->dtype == HETRUN_F32 && o->out_dtype == HETRUN_F32)
        return HETRUN_OK;
    fake_error = "fake: only gemm f32 is implemented";
    return HETRUN_ERR_UNSUPPORTED;
}
static hetrun_status fake_ws(hetrun_device *d, const hetrun_op_desc *o, uint64_t *b) {
    (void)d;
    (void)o;
    (void)b;
    return HETRUN_ERR_UNSUPPORTED;
}
#ifndef FAKE_NULL_FN
static hetrun_status fake_run(hetrun_queue *q, const hetrun_op_desc *o, const hetrun_tensor *a,
                              int32_t n, hetrun_tensor w) {
    (void)q;
    (void)o;
    (void)a;
    (void)n;
    (void)w;
    return HETRUN_ERR_UNSUPPORTED;
}
#endif

static const hetrun_backend_ops fake_ops = {
    .abi_major = FAKE_ABI_MAJOR,
    .abi_minor = HETRUN_ABI_MINOR,
#ifdef FAKE_SHORT_STRUCT
    .struct_size = (uint32_t)offsetof(hetrun_backend_ops, op_run),
#else
    .struct_size = sizeof(hetrun_backend_ops),
#endif
    .name = FAKE_NAME,
    .version = FAKE_VERSION,
    .init = fake_init,
    .finalize = fake_finalize,
    .last_error = fake_last_error,
    .device_count = fake_count,
    .device_info = fake_info,
    .device_open = fake_open,
    .device_close = fake_close,
    .mem_alloc = fake_alloc,
    .mem_free = fake_free,
    .copy_h2d = fake_h2d,
#ifndef FAKE_NULL_FN
    .copy_d2h = fake_d2h,
#endif
    .copy_d2d = fake_d2d,
    .queue_create = fake_qc,
    .queue_destroy = fake_qd,
    .queue_sync = fake_qs,
    .event_create = fake_ec,
    .event_destroy = fake_ed,
    .event_record = fake_er,
    .event_elapsed_ms = fake_el,
    .op_supported = fake_sup,
    .op_workspace_size = fake_ws,
#ifndef FAKE_NULL_FN
    .op_run = fake_run,
#endif
};

#ifndef FAKE_NO_ENTRY
HETRUN_BACKEND_EXPORT const hetrun_backend_ops *hetrun_backend_entry(void) {
    return &fake_ops;
}
#else
HETRUN_BACKEND_EXPORT const hetrun_backend_ops *some_other_symbol(void) {
    return &fake_ops;
}
#endif

#ifdef FAKE_NEEDS_DEP
int fake_vendor_runtime_version(void);
int fake_uses_runtime(void) {
    return fake_vendor_runtime_version();
}
#endif
