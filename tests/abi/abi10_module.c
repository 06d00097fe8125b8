/* A backend module built against the ABI 1.0 headers kept in tests/abi/v1_0 (and nothing
 * else of hetrun): one host-memory "device" that runs fp32 GEMM through CBLAS. It stands
 * for a vendor module compiled before ABI 1.1 and never rebuilt; test_abi_v1_0.sh checks
 * that a 1.1 launcher still loads and runs it, refuses it 1.1 ops by name, and splits a
 * batched GEMM into one call per entry for it (it knows no `batch` field). */
#include <cblas.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hetrun/backend.h"

_Static_assert(HETRUN_ABI_MINOR == 0 && HETRUN_OP_KIND_COUNT == 17,
               "abi10_module.c must be compiled against the ABI 1.0 headers (tests/abi/v1_0)");

struct hetrun_device {
    int index;
};
struct hetrun_buffer {
    void *ptr;
    uint64_t bytes;
};
struct hetrun_queue {
    hetrun_device *dev;
};
struct hetrun_event {
    double t;
};

static _Thread_local char error_text[512];
static hetrun_device the_device;

static hetrun_status fail(hetrun_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static hetrun_status fail(hetrun_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(error_text, sizeof error_text, "abi10: ");
    vsnprintf(error_text + n, sizeof error_text - (size_t)n, fmt, ap);
    va_end(ap);
    return st;
}

static hetrun_status m_init(const hetrun_host_services *host) {
    (void)host;
    return HETRUN_OK;
}

static void m_finalize(void) {}

static const char *m_last_error(void) {
    return error_text;
}

static hetrun_status m_device_count(int32_t *count) {
    *count = 1;
    return HETRUN_OK;
}

static hetrun_status m_device_info(int32_t index, hetrun_device_info *info) {
    if (index != 0) return fail(HETRUN_ERR_INVALID, "no device %d", (int)index);
    hetrun_device_info mine;
    memset(&mine, 0, sizeof mine);
    mine.struct_size = sizeof mine;
    mine.kind = HETRUN_DEVICE_CPU;
    snprintf(mine.name, sizeof mine.name, "abi 1.0 test device");
    snprintf(mine.vendor, sizeof mine.vendor, "hetrun tests");
    snprintf(mine.arch, sizeof mine.arch, "host");
    mine.memory_bytes = 1ull << 32;
    mine.compute_units = 1;
    size_t n = info->struct_size < sizeof mine ? info->struct_size : sizeof mine;
    uint32_t caller_size = info->struct_size;
    memcpy(info, &mine, n);
    info->struct_size = caller_size;
    return HETRUN_OK;
}

static hetrun_status m_device_open(int32_t index, hetrun_device **dev) {
    if (index != 0) return fail(HETRUN_ERR_INVALID, "no device %d", (int)index);
    *dev = &the_device;
    return HETRUN_OK;
}

static void m_device_close(hetrun_device *dev) {
    (void)dev;
}

static hetrun_status m_mem_alloc(hetrun_device *dev, uint64_t bytes, hetrun_buffer **buf) {
    (void)dev;
    hetrun_buffer *b = malloc(sizeof *b);
    void *p = malloc(bytes ? bytes : 1);
    if (!b || !p) {
        free(b), free(p);
        return fail(HETRUN_ERR_NO_MEMORY, "mem_alloc of %llu bytes", (unsigned long long)bytes);
    }
    b->ptr = p, b->bytes = bytes;
    *buf = b;
    return HETRUN_OK;
}

static void m_mem_free(hetrun_buffer *buf) {
    if (buf) free(buf->ptr), free(buf);
}

static hetrun_status span(hetrun_tensor t, uint64_t bytes, char **p) {
    if (!t.buffer || t.offset > t.buffer->bytes || bytes > t.buffer->bytes - t.offset)
        return fail(HETRUN_ERR_INVALID, "%llu bytes at offset %llu overrun the buffer",
                    (unsigned long long)bytes, (unsigned long long)t.offset);
    *p = (char *)t.buffer->ptr + t.offset;
    return HETRUN_OK;
}

static hetrun_status m_copy_h2d(hetrun_queue *q, hetrun_tensor dst, const void *src,
                                uint64_t bytes) {
    (void)q;
    char *p = NULL;
    hetrun_status st = span(dst, bytes, &p);
    if (st == HETRUN_OK) memcpy(p, src, bytes);
    return st;
}

static hetrun_status m_copy_d2h(hetrun_queue *q, void *dst, hetrun_tensor src, uint64_t bytes) {
    (void)q;
    char *p = NULL;
    hetrun_status st = span(src, bytes, &p);
    if (st == HETRUN_OK) memcpy(dst, p, bytes);
    return st;
}

static hetrun_status m_copy_d2d(hetrun_queue *q, hetrun_tensor dst, hetrun_tensor src,
                                uint64_t bytes) {
    (void)q;
    char *d = NULL, *s = NULL;
    hetrun_status st = span(dst, bytes, &d);
    if (st == HETRUN_OK && (st = span(src, bytes, &s)) == HETRUN_OK) memmove(d, s, bytes);
    return st;
}

static hetrun_status m_queue_create(hetrun_device *dev, hetrun_queue **q) {
    hetrun_queue *n = malloc(sizeof *n);
    if (!n) return fail(HETRUN_ERR_NO_MEMORY, "queue_create");
    n->dev = dev;
    *q = n;
    return HETRUN_OK;
}

static void m_queue_destroy(hetrun_queue *q) {
    free(q);
}

static hetrun_status m_queue_sync(hetrun_queue *q) {
    (void)q;
    return HETRUN_OK;
}

static hetrun_status m_event_create(hetrun_device *dev, hetrun_event **ev) {
    (void)dev;
    *ev = calloc(1, sizeof **ev);
    return *ev ? HETRUN_OK : fail(HETRUN_ERR_NO_MEMORY, "event_create");
}

static void m_event_destroy(hetrun_event *ev) {
    free(ev);
}

static hetrun_status m_event_record(hetrun_event *ev, hetrun_queue *q) {
    (void)q;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ev->t = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
    return HETRUN_OK;
}

static hetrun_status m_event_elapsed_ms(hetrun_event *start, hetrun_event *end, double *ms) {
    *ms = end->t - start->t;
    return HETRUN_OK;
}

/* What a 1.0 module knows: the 1.0 kinds; this one runs fp32 GEMM only. */
static hetrun_status m_op_supported(hetrun_device *dev, const hetrun_op_desc *d) {
    (void)dev;
    if (d->struct_size < sizeof(hetrun_op_desc))
        return fail(HETRUN_ERR_INVALID, "descriptor struct_size %u < %zu", (unsigned)d->struct_size,
                    sizeof(hetrun_op_desc));
    if (d->kind >= HETRUN_OP_KIND_COUNT)
        return fail(HETRUN_ERR_INVALID, "op kind %u is not an ABI 1.0 op", (unsigned)d->kind);
    /* as a 1.0 module's validation would: a flag it does not know is an error */
    if (d->flags & ~(uint32_t)(HETRUN_OP_TRANS_A | HETRUN_OP_TRANS_B | HETRUN_OP_ALLOW_TF32))
        return fail(HETRUN_ERR_INVALID, "unknown descriptor flags 0x%x", (unsigned)d->flags);
    if (d->kind != HETRUN_OP_GEMM || d->dtype != HETRUN_F32 || d->out_dtype != HETRUN_F32)
        return fail(HETRUN_ERR_UNSUPPORTED, "only fp32 gemm (op kind %u, dtype %u -> %u)",
                    (unsigned)d->kind, (unsigned)d->dtype, (unsigned)d->out_dtype);
    return HETRUN_OK;
}

static hetrun_status m_op_workspace_size(hetrun_device *dev, const hetrun_op_desc *d,
                                         uint64_t *bytes) {
    hetrun_status st = m_op_supported(dev, d);
    if (st == HETRUN_OK) *bytes = 0;
    return st;
}

static hetrun_status m_op_run(hetrun_queue *q, const hetrun_op_desc *d, const hetrun_tensor *args,
                              int32_t nargs, hetrun_tensor workspace) {
    (void)workspace;
    hetrun_status st = m_op_supported(q->dev, d);
    if (st != HETRUN_OK) return st;
    if (nargs != 3) return fail(HETRUN_ERR_INVALID, "gemm: nargs %d, but gemm takes 3", (int)nargs);
    const int ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
    const int64_t lda = d->lda ? d->lda : (ta ? d->m : d->k);
    const int64_t ldb = d->ldb ? d->ldb : (tb ? d->k : d->n);
    const int64_t ldc = d->ldc ? d->ldc : d->n;
    const int64_t rows[3] = {ta ? d->k : d->m, tb ? d->n : d->k, d->m};
    const int64_t cols[3] = {ta ? d->m : d->k, tb ? d->k : d->n, d->n};
    const int64_t ld[3] = {lda, ldb, ldc};
    char *p[3];
    for (int a = 0; a < 3; a++)
        if ((st = span(args[a], (uint64_t)((rows[a] - 1) * ld[a] + cols[a]) * sizeof(float),
                       &p[a])) != HETRUN_OK)
            return st;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)d->m, (int)d->n, (int)d->k, (float)d->alpha, (const float *)p[0], (int)lda,
                (const float *)p[1], (int)ldb, (float)d->beta, (float *)p[2], (int)ldc);
    return HETRUN_OK;
}

static const hetrun_backend_ops ops = {
    .abi_major = HETRUN_ABI_MAJOR,
    .abi_minor = HETRUN_ABI_MINOR,
    .struct_size = sizeof(hetrun_backend_ops),
    .name = "abi10",
    .version = "1.0-test",
    .init = m_init,
    .finalize = m_finalize,
    .last_error = m_last_error,
    .device_count = m_device_count,
    .device_info = m_device_info,
    .device_open = m_device_open,
    .device_close = m_device_close,
    .mem_alloc = m_mem_alloc,
    .mem_free = m_mem_free,
    .copy_h2d = m_copy_h2d,
    .copy_d2h = m_copy_d2h,
    .copy_d2d = m_copy_d2d,
    .queue_create = m_queue_create,
    .queue_destroy = m_queue_destroy,
    .queue_sync = m_queue_sync,
    .event_create = m_event_create,
    .event_destroy = m_event_destroy,
    .event_record = m_event_record,
    .event_elapsed_ms = m_event_elapsed_ms,
    .op_supported = m_op_supported,
    .op_workspace_size = m_op_workspace_size,
    .op_run = m_op_run,
};

/* The 1.0 header does not declare the entry point; this does, as 1.0 modules had to. */
HETRUN_BACKEND_EXPORT const hetrun_backend_ops *hetrun_backend_entry(void);
HETRUN_BACKEND_EXPORT const hetrun_backend_ops *hetrun_backend_entry(void) {
    return &ops;
}
