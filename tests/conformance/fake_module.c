/* A small fake device for `hetrun conform`'s own tests: host memory behind an asynchronous
 * queue (copies and ops are recorded and run at queue_sync or copy_d2h, as on a real device),
 * ops computed by kernels/reference.c. Built once per variant, each with one contract bug
 * (-DFAKE_<VARIANT>); without one (fake_good) it keeps the contract and must pass:
 *   LATE_READ        copy_h2d reads the host buffer when the queue runs, not before returning
 *   INPLACE_MUL      mul with Z on X or Y clears Z before reading it
 *   NEGATIVE_EVENTS  elapsed time is end - start negated
 *   UNSAFE_FREE      mem_free releases memory while queued work still uses it
 *   LEAKY_FREE       mem_free never releases the memory
 *   BETA0_READS      beta 0 computed as a tiny beta: a NaN in the output comes through
 *   NULL_CRASH       copies dereference a NULL buffer instead of refusing it
 *   STALE_CONST      a GEMM's CONST_B operand is copied once per address and never dropped
 *   MEAN_N1          layernorm_forward writes its F32 mean divided by n - 1 instead of n (the
 *                    metric floors reducing ops' errors at their operands' size; this must
 *                    still fail)
 *   CRASH_INIT       init segfaults;  HANG_INIT  init never returns */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hetrun/backend.h"
#include "kernels/catalogue.h"
#include "kernels/reference.h"

static _Thread_local char err_text[1024];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* one device: calls take turns */

static hetrun_status fail(hetrun_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_text, sizeof err_text, fmt, ap);
    va_end(ap);
    return st;
}

static const char *last_error(void) {
    return err_text;
}

struct hetrun_device {
    int open;
};
struct hetrun_buffer {
    unsigned char *p;
    uint64_t bytes;
};
struct hetrun_event {
    struct timespec at;
    int recorded;
};

typedef struct cmd {
    int is_op;
    unsigned char *dst;       /* copy */
    const unsigned char *src; /* copy: device memory, or the caller's memory (LATE_READ) */
    unsigned char *staged;    /* copy: the host data taken when copy_h2d was called */
    uint64_t bytes;
    hetrun_op_desc desc; /* op */
    void *args[HETRUN_OP_MAX_ARGS];
} cmd;

struct hetrun_queue {
    cmd *cmds;
    int n, cap;
    struct hetrun_queue *next;
};

static struct hetrun_device the_device;
static struct hetrun_queue *queues; /* every queue, for mem_free to wait on */

#ifdef FAKE_STALE_CONST
static struct {
    const void *at;
    uint64_t bytes;
    void *copy;
} kept[64]; /* B's bytes as first seen at an address, with CONST_B */
#endif

static void run_op(hetrun_op_desc d, void **args) {
#ifdef FAKE_STALE_CONST
    if ((d.flags & HETRUN_OP_CONST_B) && args[1]) {
        const uint64_t bytes = hetrun_op_arg_bytes(&d, 1);
        int i = 0;
        while (i < 64 && kept[i].at && !(kept[i].at == args[1] && kept[i].bytes == bytes))
            i++;
        if (i < 64 && !kept[i].at && (kept[i].copy = malloc(bytes)) != NULL)
            memcpy(kept[i].copy, args[1], bytes), kept[i].at = args[1], kept[i].bytes = bytes;
        if (i < 64 && kept[i].at) args[1] = kept[i].copy;
    }
#endif
#ifdef FAKE_INPLACE_MUL
    if (d.kind == HETRUN_OP_MUL && (args[2] == args[0] || args[2] == args[1]))
        memset(args[2], 0, hetrun_op_arg_bytes(&d, 2));
#endif
#ifdef FAKE_BETA0_READS
    if (d.beta == 0.0 && hetrun_dtype_unit_roundoff(d.out_dtype) > 0.0) d.beta = 1e-30;
#endif
    hetrun_reference_run(&d, args);
#ifdef FAKE_MEAN_N1
    if (d.kind == HETRUN_OP_LAYERNORM_FORWARD && d.n > 1)
        for (int64_t i = 0; i < d.m; i++)
            ((float *)args[4])[i] *= (float)d.n / (float)(d.n - 1);
#endif
}

static void flush(hetrun_queue *q) {
    for (int i = 0; i < q->n; i++) {
        cmd *c = &q->cmds[i];
        if (c->is_op) {
            run_op(c->desc, c->args);
        } else {
            memmove(c->dst, c->staged ? c->staged : c->src, c->bytes);
            free(c->staged);
        }
    }
    q->n = 0;
}

static hetrun_status push(hetrun_queue *q, const cmd *c) {
    if (q->n == q->cap) {
        int cap = q->cap ? 2 * q->cap : 16;
        cmd *n = realloc(q->cmds, (size_t)cap * sizeof *n);
        if (!n) return fail(HETRUN_ERR_NO_MEMORY, "fake: queue full");
        q->cmds = n, q->cap = cap;
    }
    q->cmds[q->n++] = *c;
    return HETRUN_OK;
}

static hetrun_status init(const hetrun_host_services *host) {
#ifdef FAKE_CRASH_INIT
    raise(SIGSEGV);
#endif
#ifdef FAKE_HANG_INIT
    for (;;)
        pause();
#endif
    return host ? HETRUN_OK : fail(HETRUN_ERR_INVALID, "fake: no host services");
}

static void finalize(void) {}

static hetrun_status device_count(int32_t *count) {
    *count = 1;
    return HETRUN_OK;
}

static hetrun_status device_info(int32_t index, hetrun_device_info *info) {
    if (index != 0) return fail(HETRUN_ERR_INVALID, "fake: no device %d (only 0)", index);
    hetrun_device_info i;
    memset(&i, 0, sizeof i);
    i.struct_size = info->struct_size;
    i.kind = HETRUN_DEVICE_ACCELERATOR;
    snprintf(i.name, sizeof i.name, "fake device (%s)", FAKE_NAME);
    snprintf(i.vendor, sizeof i.vendor, "hetrun tests");
    i.compute_units = 1;
    memcpy(info, &i, info->struct_size < sizeof i ? info->struct_size : sizeof i);
    return HETRUN_OK;
}

static hetrun_status device_open(int32_t index, hetrun_device **dev) {
    if (index != 0) return fail(HETRUN_ERR_INVALID, "fake: no device %d (only 0)", index);
    if (the_device.open) return fail(HETRUN_ERR_INVALID, "fake: device 0 is already open");
    the_device.open = 1;
    *dev = &the_device;
    return HETRUN_OK;
}

static void device_close(hetrun_device *dev) {
    dev->open = 0;
}

static hetrun_status mem_alloc(hetrun_device *dev, uint64_t bytes, hetrun_buffer **out) {
    (void)dev;
    if (bytes == 0) return fail(HETRUN_ERR_INVALID, "fake: mem_alloc of 0 bytes");
    hetrun_buffer *b = malloc(sizeof *b);
    if (b) b->p = malloc(bytes), b->bytes = bytes;
    if (!b || !b->p) {
        free(b);
        return fail(HETRUN_ERR_NO_MEMORY, "fake: cannot allocate %llu bytes",
                    (unsigned long long)bytes);
    }
    *out = b;
    return HETRUN_OK;
}

static void mem_free(hetrun_buffer *b) {
    if (!b) return;
    pthread_mutex_lock(&lock);
#ifndef FAKE_UNSAFE_FREE
    for (hetrun_queue *q = queues; q; q = q->next)
        flush(q); /* queued work may use b */
#endif
#ifndef FAKE_LEAKY_FREE
    free(b->p);
#endif
    free(b);
    pthread_mutex_unlock(&lock);
}

static hetrun_status range(hetrun_tensor t, uint64_t bytes, const char *what) {
#ifdef FAKE_NULL_CRASH
    if (t.offset > t.buffer->bytes || bytes > t.buffer->bytes - t.offset)
#else
    if (!t.buffer || t.offset > t.buffer->bytes || bytes > t.buffer->bytes - t.offset)
#endif
        return fail(HETRUN_ERR_INVALID, "fake: %s: %llu bytes at offset %llu out of range", what,
                    (unsigned long long)bytes, (unsigned long long)t.offset);
    return HETRUN_OK;
}

static hetrun_status copy_h2d(hetrun_queue *q, hetrun_tensor dst, const void *src, uint64_t bytes) {
    hetrun_status st = range(dst, bytes, "copy_h2d");
    if (st != HETRUN_OK) return st;
    cmd c = {.dst = dst.buffer->p + dst.offset, .src = src, .bytes = bytes};
#ifndef FAKE_LATE_READ
    c.staged = malloc(bytes ? bytes : 1); /* the data is taken now: the caller may reuse src */
    if (!c.staged) return fail(HETRUN_ERR_NO_MEMORY, "fake: copy_h2d staging");
    memcpy(c.staged, src, bytes);
#endif
    pthread_mutex_lock(&lock);
    st = push(q, &c);
    pthread_mutex_unlock(&lock);
    return st;
}

static hetrun_status copy_d2h(hetrun_queue *q, void *dst, hetrun_tensor src, uint64_t bytes) {
    hetrun_status st = range(src, bytes, "copy_d2h");
    if (st != HETRUN_OK) return st;
    pthread_mutex_lock(&lock);
    flush(q);
    memcpy(dst, src.buffer->p + src.offset, bytes);
    pthread_mutex_unlock(&lock);
    return HETRUN_OK;
}

static hetrun_status copy_d2d(hetrun_queue *q, hetrun_tensor dst, hetrun_tensor src,
                              uint64_t bytes) {
    hetrun_status st = range(dst, bytes, "copy_d2d destination");
    if (st == HETRUN_OK) st = range(src, bytes, "copy_d2d source");
    if (st != HETRUN_OK) return st;
    cmd c = {.dst = dst.buffer->p + dst.offset, .src = src.buffer->p + src.offset, .bytes = bytes};
    pthread_mutex_lock(&lock);
    st = push(q, &c);
    pthread_mutex_unlock(&lock);
    return st;
}

static hetrun_status queue_create(hetrun_device *dev, hetrun_queue **out) {
    (void)dev;
    hetrun_queue *q = calloc(1, sizeof *q);
    if (!q) return fail(HETRUN_ERR_NO_MEMORY, "fake: queue_create");
    pthread_mutex_lock(&lock);
    q->next = queues, queues = q;
    pthread_mutex_unlock(&lock);
    *out = q;
    return HETRUN_OK;
}

static void queue_destroy(hetrun_queue *q) {
    pthread_mutex_lock(&lock);
    flush(q);
    for (hetrun_queue **p = &queues; *p; p = &(*p)->next)
        if (*p == q) {
            *p = q->next;
            break;
        }
    pthread_mutex_unlock(&lock);
    free(q->cmds);
    free(q);
}

static hetrun_status queue_sync(hetrun_queue *q) {
    pthread_mutex_lock(&lock);
    flush(q);
    pthread_mutex_unlock(&lock);
    return HETRUN_OK;
}

static hetrun_status event_create(hetrun_device *dev, hetrun_event **ev) {
    (void)dev;
    *ev = calloc(1, sizeof **ev);
    return *ev ? HETRUN_OK : fail(HETRUN_ERR_NO_MEMORY, "fake: event_create");
}

static void event_destroy(hetrun_event *ev) {
    free(ev);
}

static hetrun_status event_record(hetrun_event *ev, hetrun_queue *q) {
    queue_sync(q); /* the event is reached when the work before it is done */
    clock_gettime(CLOCK_MONOTONIC, &ev->at);
    ev->recorded = 1;
    return HETRUN_OK;
}

static hetrun_status event_elapsed_ms(hetrun_event *start, hetrun_event *end, double *ms) {
    if (!start->recorded || !end->recorded)
        return fail(HETRUN_ERR_INVALID, "fake: event_elapsed_ms on an event never recorded");
    double t = (double)(end->at.tv_sec - start->at.tv_sec) * 1e3 +
               (double)(end->at.tv_nsec - start->at.tv_nsec) * 1e-6;
#ifdef FAKE_NEGATIVE_EVENTS
    t = -t;
#endif
    *ms = t;
    return HETRUN_OK;
}

static hetrun_status op_supported(hetrun_device *dev, const hetrun_op_desc *d) {
    (void)dev;
    char why[512];
    if (!hetrun_op_desc_valid(d, why, sizeof why))
        return fail(HETRUN_ERR_INVALID, "fake: invalid descriptor: %s", why);
    return HETRUN_OK;
}

static hetrun_status op_workspace_size(hetrun_device *dev, const hetrun_op_desc *d,
                                       uint64_t *bytes) {
    hetrun_status st = op_supported(dev, d);
    if (st == HETRUN_OK) *bytes = 0;
    return st;
}

static hetrun_status op_run(hetrun_queue *q, const hetrun_op_desc *d, const hetrun_tensor *args,
                            int32_t nargs, hetrun_tensor workspace) {
    (void)workspace;
    hetrun_status st = op_supported(NULL, d);
    if (st != HETRUN_OK) return st;
    const int arity = hetrun_op_arity(d->kind);
    if (nargs != arity)
        return fail(HETRUN_ERR_INVALID, "fake: %s: nargs %d, but the op takes %d operands",
                    hetrun_op_name(d->kind), nargs, arity);
    cmd c = {.is_op = 1, .desc = *d};
    for (int a = 0; a < arity; a++) {
        if (!hetrun_op_arg_present(d, a)) continue;
        if (!args[a].buffer)
            return fail(HETRUN_ERR_INVALID, "fake: %s: operand %d is NULL", hetrun_op_name(d->kind),
                        a);
        if ((st = range(args[a], hetrun_op_arg_bytes(d, a), hetrun_op_name(d->kind))) != HETRUN_OK)
            return st;
        c.args[a] = args[a].buffer->p + args[a].offset;
    }
    pthread_mutex_lock(&lock);
    st = push(q, &c);
    pthread_mutex_unlock(&lock);
    return st;
}

static const hetrun_backend_ops table = {
    .abi_major = HETRUN_ABI_MAJOR,
    .abi_minor = HETRUN_ABI_MINOR,
    .struct_size = sizeof(hetrun_backend_ops),
    .name = FAKE_NAME,
    .version = "0.0-test",
    .init = init,
    .finalize = finalize,
    .last_error = last_error,
    .device_count = device_count,
    .device_info = device_info,
    .device_open = device_open,
    .device_close = device_close,
    .mem_alloc = mem_alloc,
    .mem_free = mem_free,
    .copy_h2d = copy_h2d,
    .copy_d2h = copy_d2h,
    .copy_d2d = copy_d2d,
    .queue_create = queue_create,
    .queue_destroy = queue_destroy,
    .queue_sync = queue_sync,
    .event_create = event_create,
    .event_destroy = event_destroy,
    .event_record = event_record,
    .event_elapsed_ms = event_elapsed_ms,
    .op_supported = op_supported,
    .op_workspace_size = op_workspace_size,
    .op_run = op_run,
};

HETRUN_BACKEND_EXPORT const hetrun_backend_ops *hetrun_backend_entry(void) {
    return &table;
}
