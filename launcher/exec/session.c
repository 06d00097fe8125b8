/* The session: every device call a workload makes goes through here, so each op is
 * validated against the catalogue, checked for support, and counted for accounting. */
#include "exec/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/loader.h"

static int fail(hetrun_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(hetrun_session *s, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(s->error, sizeof s->error, "%s backend, device %d (%s): %s",
             s->backend ? s->backend->name : "?", s->device_index, s->info.name, msg);
    return -1;
}

int hetrun_session_open(hetrun_session *s, const hetrun_backend_module *backend, int index) {
    s->backend = backend;
    s->ops = backend->ops;
    s->device_index = index;
    memset(&s->info, 0, sizeof s->info);
    s->info.struct_size = sizeof s->info;
    if (s->ops->device_info(index, &s->info) != HETRUN_OK)
        return fail(s, "device_info: %s", s->ops->last_error());
    if (s->ops->device_open(index, &s->device) != HETRUN_OK)
        return fail(s, "device_open: %s", s->ops->last_error());
    if (s->ops->thread_bind && s->ops->thread_bind(s->device) != HETRUN_OK)
        return fail(s, "thread_bind: %s", s->ops->last_error());
    if (s->ops->queue_create(s->device, &s->queue) != HETRUN_OK)
        return fail(s, "queue_create: %s", s->ops->last_error());
    if (s->ops->event_create(s->device, &s->timer_start) != HETRUN_OK ||
        s->ops->event_create(s->device, &s->timer_stop) != HETRUN_OK ||
        s->ops->event_create(s->device, &s->busy_start) != HETRUN_OK ||
        s->ops->event_create(s->device, &s->busy_stop) != HETRUN_OK)
        return fail(s, "event_create: %s", s->ops->last_error());
    s->busy_open = false;
    return 0;
}

/* Busy spans: opened lazily before the first device command after idle, closed at a
 * synchronisation point, where the queue has drained and the elapsed time is final. An
 * event failure only loses accounting precision, so it is not fatal. Every device command
 * (op, copy, collective) goes through the session, so every one opens a span. */
static void activity(hetrun_session *s) {
    if (s->busy_open || !s->busy_start || !s->queue) return;
    if (s->ops->event_record(s->busy_start, s->queue) == HETRUN_OK) s->busy_open = true;
}

static void busy_close(hetrun_session *s) {
    if (!s->busy_open) return;
    s->busy_open = false;
    double ms = 0.0;
    if (s->ops->event_record(s->busy_stop, s->queue) == HETRUN_OK &&
        s->ops->event_elapsed_ms(s->busy_start, s->busy_stop, &ms) == HETRUN_OK && ms > 0.0)
        s->usage.device_busy_s += ms * 1e-3;
}

void hetrun_session_telemetry(hetrun_session *s, double *mem_peak_bytes, double *energy_joules) {
    uint64_t peak = 0;
    double joules = 0.0;
    *mem_peak_bytes = *energy_joules = -1.0;
    if (!s->device || !s->ops) return;
    if (s->ops->memory_peak && s->ops->memory_peak(s->device, &peak) == HETRUN_OK)
        *mem_peak_bytes = (double)peak;
    if (s->ops->energy_joules && s->ops->energy_joules(s->device, &joules) == HETRUN_OK)
        *energy_joules = joules;
}

void hetrun_session_close(hetrun_session *s) {
    free(s->staging);
    s->staging = NULL;
    s->staging_bytes = 0;
    if (!s->ops) return;
    if (s->queue) s->ops->queue_sync(s->queue);
    if (s->queue) busy_close(s);
    if (s->workspace) hetrun_session_free(s, s->workspace, s->workspace_bytes);
    s->workspace = NULL;
    if (s->device_comm && s->ops->comm_destroy) s->ops->comm_destroy(s->device_comm);
    s->device_comm = NULL;
    s->device_comm_tried = false;
    if (s->timer_start) s->ops->event_destroy(s->timer_start);
    if (s->timer_stop) s->ops->event_destroy(s->timer_stop);
    if (s->busy_start) s->ops->event_destroy(s->busy_start);
    if (s->busy_stop) s->ops->event_destroy(s->busy_stop);
    s->busy_start = s->busy_stop = NULL;
    if (s->queue) s->ops->queue_destroy(s->queue);
    if (s->device) s->ops->device_close(s->device);
    s->timer_start = s->timer_stop = NULL;
    s->queue = NULL;
    s->device = NULL;
}

int hetrun_session_alloc(hetrun_session *s, uint64_t bytes, hetrun_buffer **buf) {
    if (s->ops->mem_alloc(s->device, bytes, buf) != HETRUN_OK)
        return fail(s, "allocating %llu bytes: %s", (unsigned long long)bytes,
                    s->ops->last_error());
    s->usage.mem_in_use += bytes;
    if (s->usage.mem_in_use > s->usage.mem_peak) s->usage.mem_peak = s->usage.mem_in_use;
    return 0;
}

void hetrun_session_free(hetrun_session *s, hetrun_buffer *buf, uint64_t bytes) {
    if (!buf) return;
    s->ops->mem_free(buf);
    s->usage.mem_in_use -= bytes <= s->usage.mem_in_use ? bytes : s->usage.mem_in_use;
}

int hetrun_session_h2d(hetrun_session *s, hetrun_tensor dst, const void *src, uint64_t bytes) {
    activity(s);
    if (s->ops->copy_h2d(s->queue, dst, src, bytes) != HETRUN_OK)
        return fail(s, "copy_h2d of %llu bytes: %s", (unsigned long long)bytes,
                    s->ops->last_error());
    s->usage.h2d_bytes += bytes;
    return 0;
}

int hetrun_session_d2h(hetrun_session *s, void *dst, hetrun_tensor src, uint64_t bytes) {
    activity(s);
    if (s->ops->copy_d2h(s->queue, dst, src, bytes) != HETRUN_OK)
        return fail(s, "copy_d2h of %llu bytes: %s", (unsigned long long)bytes,
                    s->ops->last_error());
    busy_close(s); /* the copy returned with the data: the queue is drained up to here */
    s->usage.d2h_bytes += bytes;
    return 0;
}

int hetrun_session_sync(hetrun_session *s) {
    if (s->ops->queue_sync(s->queue) != HETRUN_OK)
        return fail(s, "queue_sync: %s", s->ops->last_error());
    busy_close(s);
    return 0;
}

int hetrun_session_timer_start(hetrun_session *s) {
    activity(s);
    if (s->ops->event_record(s->timer_start, s->queue) != HETRUN_OK)
        return fail(s, "event_record: %s", s->ops->last_error());
    return 0;
}

int hetrun_session_timer_stop(hetrun_session *s, double *ms) {
    double elapsed = 0.0;
    if (s->ops->event_record(s->timer_stop, s->queue) != HETRUN_OK ||
        s->ops->event_elapsed_ms(s->timer_start, s->timer_stop, &elapsed) != HETRUN_OK)
        return fail(s, "timing: %s", s->ops->last_error());
    busy_close(s); /* elapsed_ms waited for the stop event: the region is done */
    if (ms) *ms = elapsed;
    return 0;
}

/* Asks the backend whether it supports `desc` and how much workspace it needs, once per
 * shape: the answers may not depend on alpha, beta or p[] (backend.h), so those are
 * zeroed in the key. Returns 0 with *ws set, or -1 (s->error). */
static int check_support(hetrun_session *s, const hetrun_op_desc *desc, const char *name,
                         uint64_t *ws) {
    hetrun_op_desc key = *desc;
    key.alpha = key.beta = 0.0;
    memset(key.p, 0, sizeof key.p);
    for (unsigned i = 0; i < s->checked_count; i++)
        if (memcmp(&s->checked[i].key, &key, sizeof key) == 0) {
            *ws = s->checked[i].workspace;
            return 0;
        }
    if (s->ops->op_supported(s->device, desc) != HETRUN_OK)
        return fail(s, "op %s with dtype %s -> %s is not supported: %s", name,
                    hetrun_dtype_name(desc->dtype), hetrun_dtype_name(desc->out_dtype),
                    s->ops->last_error());
    if (s->ops->op_workspace_size(s->device, desc, ws) != HETRUN_OK)
        return fail(s, "op %s: workspace size: %s", name, s->ops->last_error());
    const unsigned n = sizeof s->checked / sizeof s->checked[0];
    unsigned slot = s->checked_count < n ? s->checked_count++ : s->checked_next++ % n;
    s->checked[slot].key = key;
    s->checked[slot].workspace = *ws;
    return 0;
}

/* A module built against ABI 1.0 knows neither batched GEMM nor the 1.1 descriptor fields:
 * run the batch as one call per entry, each with batch 1. Accounting is per entry too. */
static int exec_batched_gemm_v1_0(hetrun_session *s, const hetrun_op_desc *desc,
                                  const hetrun_tensor *args) {
    hetrun_op_desc one = *desc;
    one.batch = 1;
    const hetrun_dtype t[3] = {(hetrun_dtype)desc->dtype, (hetrun_dtype)desc->dtype,
                               (hetrun_dtype)desc->out_dtype};
    for (int64_t b = 0; b < desc->batch; b++) {
        hetrun_tensor entry[3];
        for (int a = 0; a < 3; a++) {
            entry[a] = args[a];
            entry[a].offset +=
                (uint64_t)(b * hetrun_gemm_batch_stride(desc, a)) * hetrun_dtype_size(t[a]);
        }
        if (hetrun_exec_op(s, &one, entry) != 0) return -1;
    }
    return 0;
}

/* `desc` as the session's module may see it: without the ABI 1.3 CONST_B hint for a module
 * older than 1.3, whose validation would refuse the flag as unknown (a copy in `tmp`). */
static const hetrun_op_desc *for_module(const hetrun_session *s, const hetrun_op_desc *desc,
                                        hetrun_op_desc *tmp) {
    if (!(desc->flags & HETRUN_OP_CONST_B) || s->ops->abi_minor >= 3) return desc;
    *tmp = *desc;
    tmp->flags &= ~HETRUN_OP_CONST_B;
    return tmp;
}

int hetrun_exec_op(hetrun_session *s, const hetrun_op_desc *desc, const hetrun_tensor *args) {
    char why[256];
    const char *name = hetrun_op_name(desc->kind) ? hetrun_op_name(desc->kind) : "?";
    if (!hetrun_op_desc_valid(desc, why, sizeof why)) return fail(s, "op %s: %s", name, why);
    hetrun_op_desc hinted;
    desc = for_module(s, desc, &hinted);
    if (s->ops->abi_minor < 1) {
        if (desc->kind >= HETRUN_OP_FIRST_V1_1)
            return fail(s, "op %s needs backend ABI 1.1; module %s declares ABI %u.%u", name,
                        s->ops->name, s->ops->abi_major, s->ops->abi_minor);
        if (desc->kind == HETRUN_OP_GEMM && desc->batch > 1)
            return exec_batched_gemm_v1_0(s, desc, args);
    }
    uint64_t ws = 0;
    if (check_support(s, desc, name, &ws) != 0) return -1;
    if (ws > s->workspace_bytes) { /* grow once, reuse: fresh pages are expensive */
        hetrun_buffer *grown;
        if (hetrun_session_alloc(s, ws, &grown) != 0) return -1;
        hetrun_session_sync(s);
        hetrun_session_free(s, s->workspace, s->workspace_bytes);
        s->workspace = grown;
        s->workspace_bytes = ws;
    }
    hetrun_tensor workspace = {ws ? s->workspace : NULL, 0};
    if (s->progress_hook && s->progress_hook(s->progress_ctx) != 0) return -1;
    activity(s);
    int arity = hetrun_op_arity(desc->kind);
    if (s->ops->op_run(s->queue, desc, args, arity, workspace) != HETRUN_OK)
        return fail(s, "op %s (%s, m=%lld n=%lld k=%lld): %s", name, hetrun_dtype_name(desc->dtype),
                    (long long)desc->m, (long long)desc->n, (long long)desc->k,
                    s->ops->last_error());
    double flops = hetrun_op_flops(desc);
    s->usage.flops += flops;
    s->usage.bytes += hetrun_op_bytes(desc);
    s->usage.ops++;
    s->usage.op_counts[desc->kind]++;
    s->usage.op_flops[desc->kind] += flops;
    return 0;
}

int hetrun_session_supports(hetrun_session *s, const hetrun_op_desc *desc, char *why,
                            size_t whylen) {
    const char *name = hetrun_op_name(desc->kind) ? hetrun_op_name(desc->kind) : "?";
    const hetrun_op_info *op = hetrun_op_info_of(desc->kind);
    if (op && s->ops->abi_minor < op->since_minor) { /* never shown to an older module */
        snprintf(why, whylen, "op %s needs backend ABI 1.%u; module %s declares ABI %u.%u", name,
                 (unsigned)op->since_minor, s->ops->name, (unsigned)s->ops->abi_major,
                 (unsigned)s->ops->abi_minor);
        return 0;
    }
    hetrun_op_desc hinted;
    if (s->ops->op_supported(s->device, for_module(s, desc, &hinted)) == HETRUN_OK) return 1;
    snprintf(why, whylen, "%s backend does not support %s with %s -> %s: %s",
             hetrun_session_backend_name(s), name, hetrun_dtype_name(desc->dtype),
             hetrun_dtype_name(desc->out_dtype), s->ops->last_error());
    return 0;
}

const char *hetrun_session_backend_name(const hetrun_session *s) {
    return s->backend ? s->backend->name : "?";
}

const char *hetrun_session_cache_dir(const hetrun_session *s) {
    (void)s; /* one cache folder per host, the one every module is told about */
    const hetrun_host_services *h = hetrun_host_services_get();
    return h && h->cache_dir && *h->cache_dir ? h->cache_dir : NULL;
}

int hetrun_session_staging(hetrun_session *s, uint64_t bytes, void **host) {
    if (bytes > s->staging_bytes) {
        void *p = NULL;
        if (posix_memalign(&p, 4096, (size_t)bytes) != 0 || !p)
            return fail(s, "posix_memalign(%llu bytes) for the host staging buffer failed",
                        (unsigned long long)bytes);
        memset(p, 0, (size_t)bytes); /* pre-fault every page now, not inside a timed step */
        free(s->staging);
        s->staging = p;
        s->staging_bytes = bytes;
    }
    *host = s->staging;
    return 0;
}

int hetrun_session_host_ptr(hetrun_session *s, hetrun_tensor t, uint64_t bytes, void **host) {
    const hetrun_backend_ops *o = s->ops;
    /* A table older than ABI 1.2 ends before the member: never read past its struct_size. */
    if (!o || !t.buffer || o->struct_size < HETRUN_OPS_SIZE_V1_2 || !o->mem_host_ptr) return 0;
    void *base = NULL;
    hetrun_status st = o->mem_host_ptr(t.buffer, &base);
    if (st == HETRUN_ERR_UNSUPPORTED) return 0;
    if (st != HETRUN_OK || !base)
        return fail(s, "mem_host_ptr for %llu bytes at offset %llu: %s", (unsigned long long)bytes,
                    (unsigned long long)t.offset,
                    st != HETRUN_OK ? o->last_error() : "HETRUN_OK with a NULL address");
    *host = (char *)base + t.offset;
    return 1;
}

bool hetrun_session_has_device_collective(const hetrun_session *s) {
    const hetrun_backend_ops *o = s->ops;
    return o && o->comm_id_create && o->comm_init && o->comm_destroy && o->comm_allreduce;
}

int hetrun_session_comm_id_create(hetrun_session *s, uint8_t id[HETRUN_COMM_ID_BYTES]) {
    if (s->ops->comm_id_create(id) != HETRUN_OK)
        return fail(s, "comm_id_create: %s", s->ops->last_error());
    return 0;
}

int hetrun_session_comm_join(hetrun_session *s, const uint8_t id[HETRUN_COMM_ID_BYTES]) {
    hetrun_comm *comm = NULL;
    if (s->ops->comm_init(s->device, id, s->nranks, s->rank, &comm) != HETRUN_OK)
        return fail(s, "comm_init (rank %d of %d): %s", s->rank, s->nranks, s->ops->last_error());
    s->device_comm = comm;
    return 0;
}

void hetrun_session_comm_leave(hetrun_session *s) {
    if (s->device_comm) s->ops->comm_destroy(s->device_comm);
    s->device_comm = NULL;
}

int hetrun_session_comm_allreduce(hetrun_session *s, hetrun_tensor buf, uint64_t count,
                                  hetrun_dtype dtype) {
    activity(s); /* device work outside hetrun_exec_op: count it busy */
    if (s->ops->comm_allreduce(s->device_comm, s->queue, buf, count, dtype, HETRUN_REDUCE_SUM) !=
        HETRUN_OK)
        return fail(s, "comm_allreduce of %llu %s elements: %s", (unsigned long long)count,
                    hetrun_dtype_name(dtype), s->ops->last_error());
    return 0;
}
