/* Invalid arguments are refused with HETRUN_ERR_INVALID and a message, never a crash: NULL
 * buffers, ranges past a buffer's end, zero-byte allocations, device indices out of range,
 * elapsed time of events never recorded. */
#include <stdio.h>
#include <string.h>

#include "conform/conform.h"
#include "util/exitcodes.h"

#define BUF_BYTES 4096

typedef struct handle_ctx {
    const hetrun_backend_ops *o;
    int fails, tried;
    char first[1024];
} handle_ctx;

static void expect_invalid(handle_ctx *h, const char *what, hetrun_status st) {
    h->tried++;
    const char *msg = h->o->last_error();
    if (st == HETRUN_ERR_INVALID && msg && msg[0]) return;
    if (!h->fails++)
        snprintf(h->first, sizeof h->first, "%s returned %d%s (want HETRUN_ERR_INVALID %d): %.400s",
                 what, st, st == HETRUN_ERR_INVALID ? " with an empty last_error()" : "",
                 HETRUN_ERR_INVALID, msg ? msg : "(NULL)");
}

int conform_group_handles(const conform_opts *opts, int device) {
    conform_dev d;
    int rc = conform_dev_open_check(&d, opts, device, "invalid_handles");
    if (rc != 0) return rc;
    const hetrun_backend_ops *o = d.module.ops;
    handle_ctx h = {o, 0, 0, ""};
    hetrun_buffer *buf = NULL, *zero = NULL;
    hetrun_event *e0 = NULL, *e1 = NULL;
    char host[2 * BUF_BYTES] = {0};
    if (o->mem_alloc(d.dev, BUF_BYTES, &buf) != HETRUN_OK) {
        conform_emit_check(device, "invalid_handles", CONFORM_FAIL, "mem_alloc(%d): %s", BUF_BYTES,
                           o->last_error());
        conform_dev_close(&d);
        return HETRUN_EXIT_FAILED;
    }
    const hetrun_tensor null_t = {NULL, 0}, at0 = {buf, 0}, past = {buf, BUF_BYTES + 8},
                        near_end = {buf, BUF_BYTES - 100};
    expect_invalid(&h, "copy_h2d to a NULL buffer", o->copy_h2d(d.q, null_t, host, 16));
    expect_invalid(&h, "copy_d2h from a NULL buffer", o->copy_d2h(d.q, host, null_t, 16));
    expect_invalid(&h, "copy_h2d of 200 bytes at offset 3996 of 4096",
                   o->copy_h2d(d.q, near_end, host, 200));
    expect_invalid(&h, "copy_h2d at offset 4104 of 4096", o->copy_h2d(d.q, past, host, 1));
    expect_invalid(&h, "copy_d2h of 200 bytes at offset 3996 of 4096",
                   o->copy_d2h(d.q, host, near_end, 200));
    expect_invalid(&h, "copy_d2h of 8192 bytes from a 4096-byte buffer",
                   o->copy_d2h(d.q, host, at0, 2 * BUF_BYTES));
    expect_invalid(&h, "copy_d2d to a range past the end", o->copy_d2d(d.q, near_end, at0, 200));
    expect_invalid(&h, "copy_d2d from a range past the end", o->copy_d2d(d.q, at0, near_end, 200));
    expect_invalid(&h, "copy_d2d from a NULL buffer", o->copy_d2d(d.q, at0, null_t, 16));
    expect_invalid(&h, "fill of 2048 fp32 into 4096 bytes", conform_fill(&d, at0, 2048, 1.0f));
    expect_invalid(&h, "fill of 64 fp32 at offset 4000 of 4096",
                   conform_fill(&d, (hetrun_tensor){buf, 4000}, 64, 1.0f));
    expect_invalid(&h, "fill into a NULL buffer", conform_fill(&d, null_t, 16, 1.0f));
    expect_invalid(&h, "mem_alloc of 0 bytes", o->mem_alloc(d.dev, 0, &zero));
    if (zero) o->mem_free(zero);
    hetrun_device_info info = {.struct_size = sizeof info};
    const int count = d.module.device_count;
    expect_invalid(&h, "device_info(-1)", o->device_info(-1, &info));
    expect_invalid(&h, "device_info(device count)", o->device_info(count, &info));
    hetrun_device *extra = NULL;
    hetrun_status st = o->device_open(count, &extra);
    expect_invalid(&h, "device_open(device count)", st);
    if (st == HETRUN_OK && extra) o->device_close(extra);
    if (o->event_create(d.dev, &e0) == HETRUN_OK && o->event_create(d.dev, &e1) == HETRUN_OK) {
        double ms = 0.0;
        expect_invalid(&h, "event_elapsed_ms of events never recorded",
                       o->event_elapsed_ms(e0, e1, &ms));
    }
    o->queue_sync(d.q);
    if (e0) o->event_destroy(e0);
    if (e1) o->event_destroy(e1);
    o->mem_free(buf);
    if (h.fails)
        conform_emit_check(device, "invalid_handles", CONFORM_FAIL,
                           "%d of %d refused wrongly; first: %s", h.fails, h.tried, h.first);
    else
        conform_emit_check(device, "invalid_handles", CONFORM_PASS,
                           "%d invalid calls refused with INVALID and a message", h.tried);
    conform_dev_close(&d);
    return h.fails ? HETRUN_EXIT_FAILED : 0;
}
