/* Host-buffer contract of the copies: copy_h2d has taken the data when it returns (the host
 * buffer is overwritten at once, also with work pending on the queue), copy_d2h has written
 * it (read at once, without queue_sync, after an op that produced it), and copies at any
 * byte offset round-trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform/conform.h"
#include "util/exitcodes.h"

#define COPY_FLOATS (1 << 21) /* 8 MiB: large enough that a runtime copies asynchronously */
#define GEMM_N 256

static int first_mismatch(const float *got, float (*want)(size_t), size_t n, size_t *at) {
    for (size_t i = 0; i < n; i++)
        if (got[i] != want(i)) {
            *at = i;
            return 1;
        }
    return 0;
}

static float pattern(size_t i) {
    return (float)(i % 1000) * 0.5f + 1.0f;
}

static float three(size_t i) {
    (void)i;
    return 3.0f;
}

/* One h2d, the source overwritten right after it returns, then read back after a sync. */
static int h2d_reuse(conform_dev *d, hetrun_buffer *buf, float *host, float *back, int pending,
                     char *why, size_t len) {
    const hetrun_backend_ops *o = d->module.ops;
    for (size_t i = 0; i < COPY_FLOATS; i++)
        host[i] = pattern(i);
    if (o->copy_h2d(d->q, (hetrun_tensor){buf, 0}, host, COPY_FLOATS * sizeof(float)) != HETRUN_OK)
        return snprintf(why, len, "copy_h2d: %s", o->last_error()), -1;
    memset(host, 0xab, COPY_FLOATS * sizeof(float)); /* the caller reuses its buffer at once */
    if (o->queue_sync(d->q) != HETRUN_OK)
        return snprintf(why, len, "queue_sync: %s", o->last_error()), -1;
    if (o->copy_d2h(d->q, back, (hetrun_tensor){buf, 0}, COPY_FLOATS * sizeof(float)) != HETRUN_OK)
        return snprintf(why, len, "copy_d2h: %s", o->last_error()), -1;
    size_t at;
    if (first_mismatch(back, pattern, COPY_FLOATS, &at))
        return snprintf(why, len,
                        "copy_h2d%s read the host buffer after it returned: element %zu is %g, "
                        "expected %g (the caller had overwritten it)",
                        pending ? " (behind pending work)" : "", at, (double)back[at],
                        (double)pattern(at)),
               -1;
    return 0;
}

int conform_group_copy(const conform_opts *opts, int device) {
    conform_dev d;
    int rc = conform_dev_open_check(&d, opts, device, "copy_h2d_reuse");
    if (rc != 0) return rc;
    char why[2048] = "";
    const hetrun_backend_ops *o = d.module.ops;
    const uint64_t bytes = COPY_FLOATS * sizeof(float);
    hetrun_buffer *buf = NULL, *a = NULL, *b = NULL, *c = NULL;
    float *host = malloc(bytes), *back = malloc(bytes);
    int fails = 0;
    if (!host || !back || o->mem_alloc(d.dev, bytes, &buf) != HETRUN_OK ||
        o->mem_alloc(d.dev, GEMM_N * GEMM_N * 4, &a) != HETRUN_OK ||
        o->mem_alloc(d.dev, GEMM_N * GEMM_N * 4, &b) != HETRUN_OK ||
        o->mem_alloc(d.dev, GEMM_N * GEMM_N * 4, &c) != HETRUN_OK) {
        conform_emit_check(device, "copy_h2d_reuse", CONFORM_FAIL, "allocation: %s",
                           o->last_error());
        fails++;
        goto out;
    }
    /* h2d: idle queue, then behind a GEMM still running. */
    int bad = h2d_reuse(&d, buf, host, back, 0, why, sizeof why);
    if (!bad) {
        hetrun_tensor ta = {a, 0}, tb = {b, 0};
        bad = conform_fill(&d, ta, GEMM_N * GEMM_N, 0.5f) != HETRUN_OK ||
              conform_fill(&d, tb, GEMM_N * GEMM_N, 0.25f) != HETRUN_OK ||
              o->queue_sync(d.q) != HETRUN_OK;
        if (bad)
            snprintf(why, sizeof why, "fill: %s", o->last_error());
        else if (conform_gemm(&d, d.q, a, b, c, GEMM_N, &d.ws) == HETRUN_OK)
            bad = h2d_reuse(&d, buf, host, back, 1, why, sizeof why);
    }
    if (bad) fails++;
    conform_emit_check(device, "copy_h2d_reuse", bad ? CONFORM_FAIL : CONFORM_PASS, "%s",
                       bad ? why
                           : "host buffer overwritten right after copy_h2d returned, "
                             "idle and behind a pending GEMM: the device kept the data");
    /* d2h: the data an op just produced, read without a sync. */
    memset(back, 0xff, bytes);
    bad = conform_fill(&d, (hetrun_tensor){buf, 0}, COPY_FLOATS, 3.0f) != HETRUN_OK ||
          o->copy_d2h(d.q, back, (hetrun_tensor){buf, 0}, bytes) != HETRUN_OK;
    size_t at = 0;
    if (bad)
        snprintf(why, sizeof why, "fill/copy_d2h: %s", o->last_error());
    else if ((bad = first_mismatch(back, three, COPY_FLOATS, &at)))
        snprintf(why, sizeof why,
                 "copy_d2h returned before the host buffer held the data: element %zu is %g, "
                 "expected 3 (written by the fill op enqueued before it)",
                 at, (double)back[at]);
    if (bad) fails++;
    conform_emit_check(device, "copy_d2h_complete", bad ? CONFORM_FAIL : CONFORM_PASS, "%s",
                       bad ? why
                           : "host buffer read right after copy_d2h returned (no sync), "
                             "after the op that wrote it: complete");
    /* Byte offsets: copies take any offset (op operands are aligned, copies are not). */
    const unsigned char src[7] = {1, 2, 3, 4, 5, 6, 7};
    unsigned char got[7] = {0};
    o->queue_sync(d.q);
    bad = o->copy_h2d(d.q, (hetrun_tensor){buf, 3}, src, 7) != HETRUN_OK ||
          o->copy_d2d(d.q, (hetrun_tensor){buf, 1001}, (hetrun_tensor){buf, 3}, 7) != HETRUN_OK ||
          o->copy_d2h(d.q, got, (hetrun_tensor){buf, 1001}, 7) != HETRUN_OK;
    if (bad)
        snprintf(why, sizeof why, "copy at byte offset 3/1001: %s", o->last_error());
    else if ((bad = memcmp(src, got, 7) != 0))
        snprintf(why, sizeof why,
                 "7 bytes copied to byte offset 3, then d2d to 1001, came back "
                 "different");
    if (bad) fails++;
    conform_emit_check(device, "copy_byte_offsets", bad ? CONFORM_FAIL : CONFORM_PASS, "%s",
                       bad ? why : "h2d, d2d and d2h at odd byte offsets round-trip");
out:
    o->queue_sync(d.q);
    o->mem_free(buf), o->mem_free(a), o->mem_free(b), o->mem_free(c);
    free(host), free(back);
    conform_dev_close(&d);
    return fails ? HETRUN_EXIT_FAILED : 0;
}
