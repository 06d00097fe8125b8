/* mem_free contract: the caller may free a buffer with work pending on it (the module waits
 * for that work or defers the release), and freed memory is given back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform/conform.h"
#include "util/exitcodes.h"

static float pattern(size_t i) {
    return (float)(i % 777) + 0.25f;
}

/* GEMM into C; C freed before it is done and D (C's size: an allocator's next block of
 * that size is C's) allocated at once; A and B freed, still pending too. D is written on a
 * second queue and checked after both queues finish. */
static int pending_round(conform_dev *d, hetrun_queue *q2, int64_t n, char *why, size_t len) {
    const hetrun_backend_ops *o = d->module.ops;
    const uint64_t bytes = (uint64_t)(n * n) * 4;
    hetrun_buffer *a = NULL, *b = NULL, *c = NULL, *dd = NULL;
    float *host = malloc(bytes), *back = malloc(bytes);
    int bad = !host || !back || o->mem_alloc(d->dev, bytes, &a) != HETRUN_OK ||
              o->mem_alloc(d->dev, bytes, &b) != HETRUN_OK ||
              o->mem_alloc(d->dev, bytes, &c) != HETRUN_OK ||
              conform_fill(d, (hetrun_tensor){a, 0}, n * n, 0.5f) != HETRUN_OK ||
              conform_fill(d, (hetrun_tensor){b, 0}, n * n, 0.5f) != HETRUN_OK ||
              conform_gemm(d, d->q, a, b, c, n, &d->ws) != HETRUN_OK;
    if (bad) {
        snprintf(why, len, "setup (n %lld): %s", (long long)n, o->last_error());
        o->queue_sync(d->q);
        o->mem_free(a), o->mem_free(b), o->mem_free(c);
        free(host), free(back);
        return -1;
    }
    o->mem_free(c); /* the GEMM may still be writing it */
    bad = o->mem_alloc(d->dev, bytes, &dd) != HETRUN_OK;
    o->mem_free(b), o->mem_free(a); /* ... and reading these */
    for (size_t i = 0; i < (size_t)(n * n); i++)
        host[i] = pattern(i);
    bad = bad || o->copy_h2d(q2, (hetrun_tensor){dd, 0}, host, bytes) != HETRUN_OK ||
          o->queue_sync(q2) != HETRUN_OK || o->queue_sync(d->q) != HETRUN_OK ||
          o->copy_d2h(q2, back, (hetrun_tensor){dd, 0}, bytes) != HETRUN_OK;
    if (bad)
        snprintf(why, len, "after freeing with work pending (n %lld): %s", (long long)n,
                 o->last_error());
    for (size_t i = 0; !bad && i < (size_t)(n * n); i++)
        if (back[i] != pattern(i)) {
            snprintf(why, len,
                     "C freed while a %lldx%lld GEMM into it was pending: a buffer allocated "
                     "right after changed under the caller (element %zu is %g, expected %g): "
                     "the pending work wrote into released memory",
                     (long long)n, (long long)n, i, (double)back[i], (double)pattern(i));
            bad = 1;
        }
    o->mem_free(dd);
    free(host), free(back);
    return bad ? -1 : 0;
}

int conform_group_free(const conform_opts *opts, int device) {
    conform_dev d;
    int rc = conform_dev_open_check(&d, opts, device, "mem_free_pending");
    if (rc != 0) return rc;
    char why[2048] = "";
    const hetrun_backend_ops *o = d.module.ops;
    hetrun_queue *q2 = NULL;
    int bad = o->queue_create(d.dev, &q2) != HETRUN_OK;
    if (bad) snprintf(why, sizeof why, "a second queue: %s", o->last_error());
    /* Small (allocator reuses the block) and large (1 MiB: past glibc's mmap threshold, the
     * block goes back to the system). Not larger: a reference module's plain-C GEMM of
     * 1024^3 under a sanitizer on a busy machine took longer than the group's limit. */
    const int64_t sizes[2] = {64, 512};
    for (int i = 0; i < 2 && !bad; i++)
        bad = pending_round(&d, q2, sizes[i], why, sizeof why) != 0;
    conform_emit_check(device, "mem_free_pending", bad ? CONFORM_FAIL : CONFORM_PASS, "%s",
                       bad ? why
                           : "A, B, C freed while a GEMM on them was pending (64^2 and "
                             "512^2): no crash, later buffers intact");
    if (q2) o->queue_destroy(q2);
    conform_dev_close(&d);
    return bad ? HETRUN_EXIT_FAILED : 0;
}

/* Resident set size of this process, from /proc/self/statm. */
static long long rss_bytes(void) {
    long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    int n = fscanf(f, "%lld %lld", &size, &resident);
    fclose(f);
    return n == 2 ? resident * 4096LL : -1;
}

#define LEAK_CHUNK (8ull << 20)
#define LEAK_ROUNDS 64

/* Alloc, fill, free 64 times 8 MiB: a module that keeps freed memory grows the process by
 * 8 MiB a round (host-resident memory: the CPU, PoCL, unified memory), or runs a device out of
 * memory (one chunk of a quarter of the device, 8 times, for devices that are not the CPU). */
int conform_group_leak(const conform_opts *opts, int device) {
    conform_dev d;
    int rc = conform_dev_open_check(&d, opts, device, "mem_free_releases");
    if (rc != 0) return rc;
    char why[2048] = "";
    const hetrun_backend_ops *o = d.module.ops;
    void *host = malloc(LEAK_CHUNK);
    int bad = !host;
    if (host) memset(host, 0x3c, LEAK_CHUNK);
#ifdef __SANITIZE_ADDRESS__
    const long long before = -1; /* ASan's quarantine keeps freed memory: no RSS verdict */
#else
    const long long before = rss_bytes();
#endif
    long long mid = before, after = before;
    for (int i = 0; i < LEAK_ROUNDS && !bad; i++) {
        hetrun_buffer *b = NULL;
        bad = o->mem_alloc(d.dev, LEAK_CHUNK, &b) != HETRUN_OK ||
              o->copy_h2d(d.q, (hetrun_tensor){b, 0}, host, LEAK_CHUNK) != HETRUN_OK ||
              o->queue_sync(d.q) != HETRUN_OK;
        if (bad)
            snprintf(why, sizeof why, "round %d of alloc/fill/free %llu MiB: %s", i + 1,
                     LEAK_CHUNK >> 20, o->last_error());
        o->mem_free(b);
        after = rss_bytes();
        if (i == LEAK_ROUNDS / 2 - 1) mid = after;
    }
    /* Allocators keep some freed blocks (a plateau); a leak grows with every round: the
     * second half alone must not grow by half of what it allocated. */
    if (!bad && before >= 0 && after - mid > (long long)(LEAK_ROUNDS / 4) * (long long)LEAK_CHUNK) {
        bad = 1;
        snprintf(why, sizeof why,
                 "%d rounds of alloc/fill/free of %llu MiB grew the process by %lld MiB, %lld "
                 "MiB in the last %d rounds: mem_free does not release memory",
                 LEAK_ROUNDS, LEAK_CHUNK >> 20, (after - before) >> 20, (after - mid) >> 20,
                 LEAK_ROUNDS / 2);
    }
    hetrun_device_info info = {.struct_size = sizeof info};
    if (!bad && o->device_info(device, &info) == HETRUN_OK && info.kind != HETRUN_DEVICE_CPU &&
        info.memory_bytes >= 4 * LEAK_CHUNK) {
        uint64_t chunk = info.memory_bytes / 4;
        if (info.max_alloc_bytes && chunk > info.max_alloc_bytes) chunk = info.max_alloc_bytes;
        for (int i = 0; i < 8 && !bad; i++) {
            hetrun_buffer *b = NULL;
            if ((bad = o->mem_alloc(d.dev, chunk, &b) != HETRUN_OK))
                snprintf(why, sizeof why,
                         "round %d of alloc/free of %llu MiB (a quarter of the device) failed: "
                         "%s: mem_free does not give device memory back",
                         i + 1, (unsigned long long)(chunk >> 20), o->last_error());
            o->mem_free(b);
        }
    }
    if (!bad && before < 0)
        snprintf(why, sizeof why,
                 "%d x %llu MiB alloc/fill/free; growth not judged in an AddressSanitizer build "
                 "(its quarantine keeps freed memory)",
                 LEAK_ROUNDS, LEAK_CHUNK >> 20);
    else if (!bad)
        snprintf(why, sizeof why,
                 "%d x %llu MiB alloc/fill/free: process grew %lld MiB, %lld MiB in the last %d",
                 LEAK_ROUNDS, LEAK_CHUNK >> 20, (after - before) >> 20, (after - mid) >> 20,
                 LEAK_ROUNDS / 2);
    conform_emit_check(device, "mem_free_releases", bad ? CONFORM_FAIL : CONFORM_PASS, "%s", why);
    free(host);
    conform_dev_close(&d);
    return bad ? HETRUN_EXIT_FAILED : 0;
}
