/* CPU backend module: devices, memory, queues and events. Ops are in cpu_ops.c.
 *
 * The "device" is the set of cores this rank was given; queues execute synchronously
 * (an op is done when op_run returns), so events are host timestamps. GEMM runs in the
 * BLAS that cpu_blas.c loads at init, with its thread count bounded by the launcher's
 * cpu_threads. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu_blas.h"
#include "cpu_internal.h"
#include "cpu_packed.h"
#include "kernels/cpu/cpu_parallel.h"

static _Thread_local char last_error_text[1024];
static const hetrun_host_services *host;
static hetrun_device the_device;
static _Atomic int64_t mem_in_use, mem_peak; /* two queues may allocate at once */
static cpu_isa isa;

hetrun_status cpu_error(hetrun_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error_text, sizeof last_error_text, fmt, ap);
    va_end(ap);
    return status;
}

void cpu_log(hetrun_log_level level, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (host && host->log) host->log(level, "cpu", msg);
}

static const char *cpu_last_error(void) {
    return last_error_text;
}

static hetrun_status cpu_init(const hetrun_host_services *services) {
    if (!services || services->struct_size < offsetof(hetrun_host_services, log_level))
        return cpu_error(HETRUN_ERR_INVALID, "cpu: host services missing or too old");
    host = services;
    int threads = services->cpu_threads > 0 ? services->cpu_threads : 1;
    cpu_isa_detect(&isa);
    char features[256], msg[512];
    cpu_isa_features(&isa, features, sizeof features);
    snprintf(msg, sizeof msg, "CPUID: %s family %u model %u: %s", isa.vendor, isa.family, isa.model,
             features);
    if (services->log) services->log(HETRUN_LOG_INFO, "cpu", msg);
    hetrun_cpu_threads_set(threads); /* the backend's own kernels (attention...) */
    mem_in_use = mem_peak = 0;
    return cpu_blas_load(&isa, threads);
}

static void cpu_finalize(void) {
    hetrun_cpu_threads_shutdown(); /* no worker may outlive the module's code */
    cpu_blas_unload();
    host = NULL;
}

static hetrun_status cpu_device_count(int32_t *count) {
    *count = 1;
    return HETRUN_OK;
}

/* "model name" from /proc/cpuinfo, and the max MHz seen. */
static void cpu_model(char *name, size_t len, double *mhz) {
    snprintf(name, len, "CPU");
    *mhz = 0.0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    int have_name = 0;
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *val = colon + 2;
        val[strcspn(val, "\n")] = '\0';
        if (!have_name && strncmp(line, "model name", 10) == 0) {
            snprintf(name, len, "%s", val);
            have_name = 1;
        } else if (strncmp(line, "cpu MHz", 7) == 0) {
            double v = atof(val);
            if (v > *mhz) *mhz = v;
        }
    }
    fclose(f);
}

static hetrun_status cpu_device_info(int32_t index, hetrun_device_info *info) {
    if (index != 0) return cpu_error(HETRUN_ERR_INVALID, "cpu: no device %d (only 0)", index);
    if (!info || info->struct_size < offsetof(hetrun_device_info, visibility_env))
        return cpu_error(HETRUN_ERR_INVALID, "cpu: device_info struct too small");
    hetrun_device_info d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.kind = HETRUN_DEVICE_CPU;
    double mhz;
    cpu_model(d.name, sizeof d.name, &mhz);
    snprintf(d.vendor, sizeof d.vendor, "%s",
             strcmp(isa.vendor, "GenuineIntel") == 0   ? "Intel"
             : strcmp(isa.vendor, "AuthenticAMD") == 0 ? "AMD"
                                                       : isa.vendor);
    /* The BLAS, its version and kernel set ("OpenBLAS 0.3.21 Zen (cpuid)"), and the ISA. */
    cpu_blas_summary(d.driver_version, sizeof d.driver_version);
    snprintf(d.arch, sizeof d.arch, "x86-64 %s%s%s", cpu_isa_name(&isa),
             isa.avx512_fp16 ? " +fp16" : "", isa.amx_tile && isa.amx_bf16 ? " +amx-bf16" : "");
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    d.memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    d.max_alloc_bytes = d.memory_bytes;
    int threads = host && host->cpu_threads > 0 ? host->cpu_threads : 1;
    d.compute_units = (uint32_t)threads;
    d.clock_mhz = (uint32_t)mhz;
    /* Declared peak: the FMA probe on as many threads as this rank has, cached. */
    cpu_peak_get(host, &isa, d.name, threads, d.peak_flops);
    memcpy(info, &d, info->struct_size < sizeof d ? info->struct_size : sizeof d);
    info->struct_size = info->struct_size < sizeof d ? info->struct_size : (uint32_t)sizeof d;
    return HETRUN_OK;
}

static hetrun_status cpu_device_open(int32_t index, hetrun_device **dev) {
    if (index != 0) return cpu_error(HETRUN_ERR_INVALID, "cpu: no device %d (only 0)", index);
    the_device.index = 0;
    *dev = &the_device;
    return HETRUN_OK;
}

static void cpu_device_close(hetrun_device *dev) {
    (void)dev;
}

void cpu_mem_account(int64_t delta) {
    const int64_t now = atomic_fetch_add(&mem_in_use, delta) + delta;
    int64_t peak = atomic_load(&mem_peak);
    while (now > peak && !atomic_compare_exchange_weak(&mem_peak, &peak, now)) {
    }
}

static hetrun_status cpu_mem_alloc(hetrun_device *dev, uint64_t bytes, hetrun_buffer **out) {
    (void)dev;
    if (bytes == 0) return cpu_error(HETRUN_ERR_INVALID, "cpu: mem_alloc of 0 bytes");
    hetrun_buffer *b = malloc(sizeof *b);
    void *p = NULL;
    int rc = b ? posix_memalign(&p, 64, (size_t)bytes) : ENOMEM;
    if (rc != 0) {
        free(b);
        return cpu_error(HETRUN_ERR_NO_MEMORY, "cpu: cannot allocate %llu bytes: %s",
                         (unsigned long long)bytes, strerror(rc));
    }
    b->ptr = p;
    b->bytes = bytes;
    b->packed = NULL;
    cpu_mem_account((int64_t)bytes);
    *out = b;
    return HETRUN_OK;
}

static void cpu_mem_free(hetrun_buffer *b) {
    if (!b) return;
    cpu_packed_drop(b, 0, UINT64_MAX);
    cpu_mem_account(-(int64_t)b->bytes);
    free(b->ptr);
    free(b);
}

/* Buffers are host memory: the launcher may reduce gradients in place (MPI on the pointer). */
static hetrun_status cpu_mem_host_ptr(hetrun_buffer *b, void **host) {
    if (!b) return cpu_error(HETRUN_ERR_INVALID, "cpu: mem_host_ptr: NULL buffer");
    *host = b->ptr;
    return HETRUN_OK;
}

static hetrun_status check_range(hetrun_tensor t, uint64_t bytes, const char *what) {
    if (!t.buffer) return cpu_error(HETRUN_ERR_INVALID, "cpu: %s: NULL buffer", what);
    if (t.offset > t.buffer->bytes || bytes > t.buffer->bytes - t.offset)
        return cpu_error(HETRUN_ERR_INVALID,
                         "cpu: %s: %llu bytes at offset %llu exceed the buffer's %llu bytes", what,
                         (unsigned long long)bytes, (unsigned long long)t.offset,
                         (unsigned long long)t.buffer->bytes);
    return HETRUN_OK;
}

static hetrun_status cpu_copy_h2d(hetrun_queue *q, hetrun_tensor dst, const void *src,
                                  uint64_t bytes) {
    (void)q;
    hetrun_status st = check_range(dst, bytes, "copy_h2d");
    if (st == HETRUN_OK) cpu_packed_drop(dst.buffer, dst.offset, bytes);
    if (st == HETRUN_OK && bytes) memcpy((char *)dst.buffer->ptr + dst.offset, src, bytes);
    return st;
}

static hetrun_status cpu_copy_d2h(hetrun_queue *q, void *dst, hetrun_tensor src, uint64_t bytes) {
    (void)q;
    hetrun_status st = check_range(src, bytes, "copy_d2h");
    if (st == HETRUN_OK && bytes) memcpy(dst, (char *)src.buffer->ptr + src.offset, bytes);
    return st;
}

static hetrun_status cpu_copy_d2d(hetrun_queue *q, hetrun_tensor dst, hetrun_tensor src,
                                  uint64_t bytes) {
    (void)q;
    hetrun_status st = check_range(dst, bytes, "copy_d2d destination");
    if (st == HETRUN_OK) st = check_range(src, bytes, "copy_d2d source");
    if (st == HETRUN_OK) cpu_packed_drop(dst.buffer, dst.offset, bytes);
    if (st == HETRUN_OK && bytes)
        memmove((char *)dst.buffer->ptr + dst.offset, (char *)src.buffer->ptr + src.offset, bytes);
    return st;
}

/* Queues are synchronous: a token is enough. */
struct hetrun_queue {
    hetrun_device *dev;
};

static hetrun_status cpu_queue_create(hetrun_device *dev, hetrun_queue **q) {
    hetrun_queue *n = malloc(sizeof *n);
    if (!n) return cpu_error(HETRUN_ERR_NO_MEMORY, "cpu: cannot allocate a queue");
    n->dev = dev;
    *q = n;
    return HETRUN_OK;
}

static void cpu_queue_destroy(hetrun_queue *q) {
    free(q);
}

static hetrun_status cpu_queue_sync(hetrun_queue *q) {
    (void)q;
    return HETRUN_OK;
}

struct hetrun_event {
    struct timespec at;
    int recorded;
};

static hetrun_status cpu_event_create(hetrun_device *dev, hetrun_event **ev) {
    (void)dev;
    hetrun_event *e = calloc(1, sizeof *e);
    if (!e) return cpu_error(HETRUN_ERR_NO_MEMORY, "cpu: cannot allocate an event");
    *ev = e;
    return HETRUN_OK;
}

static void cpu_event_destroy(hetrun_event *ev) {
    free(ev);
}

static hetrun_status cpu_event_record(hetrun_event *ev, hetrun_queue *q) {
    (void)q;
    clock_gettime(CLOCK_MONOTONIC, &ev->at);
    ev->recorded = 1;
    return HETRUN_OK;
}

static hetrun_status cpu_event_elapsed_ms(hetrun_event *start, hetrun_event *end, double *ms) {
    if (!start->recorded || !end->recorded)
        return cpu_error(HETRUN_ERR_INVALID, "cpu: event_elapsed_ms on an unrecorded event");
    *ms = (double)(end->at.tv_sec - start->at.tv_sec) * 1e3 +
          (double)(end->at.tv_nsec - start->at.tv_nsec) * 1e-6;
    return HETRUN_OK;
}

static hetrun_status cpu_memory_peak(hetrun_device *dev, uint64_t *bytes) {
    (void)dev;
    *bytes = (uint64_t)atomic_load(&mem_peak);
    return HETRUN_OK;
}

static const hetrun_backend_ops cpu_ops_table = {
    .abi_major = HETRUN_ABI_MAJOR,
    .abi_minor = HETRUN_ABI_MINOR,
    .struct_size = sizeof(hetrun_backend_ops),
    .name = "cpu",
    .version = HETRUN_VERSION, /* the project version, from CMake */
    .init = cpu_init,
    .finalize = cpu_finalize,
    .last_error = cpu_last_error,
    .device_count = cpu_device_count,
    .device_info = cpu_device_info,
    .device_open = cpu_device_open,
    .device_close = cpu_device_close,
    .mem_alloc = cpu_mem_alloc,
    .mem_free = cpu_mem_free,
    .copy_h2d = cpu_copy_h2d,
    .copy_d2h = cpu_copy_d2h,
    .copy_d2d = cpu_copy_d2d,
    .queue_create = cpu_queue_create,
    .queue_destroy = cpu_queue_destroy,
    .queue_sync = cpu_queue_sync,
    .event_create = cpu_event_create,
    .event_destroy = cpu_event_destroy,
    .event_record = cpu_event_record,
    .event_elapsed_ms = cpu_event_elapsed_ms,
    .op_supported = cpu_op_supported,
    .op_workspace_size = cpu_op_workspace_size,
    .op_run = cpu_op_run,
    .memory_peak = cpu_memory_peak,
    .mem_host_ptr = cpu_mem_host_ptr,
};

HETRUN_BACKEND_EXPORT const hetrun_backend_ops *hetrun_backend_entry(void) {
    return &cpu_ops_table;
}
