/* Event contract: elapsed times are finite and >= 0, a later event is never before an
 * earlier one, and an event recorded again measures from its latest record. */
#include <math.h>
#include <stdio.h>

#include "conform/conform.h"
#include "util/exitcodes.h"

#define GEMM_N 256

int conform_group_events(const conform_opts *opts, int device) {
    conform_dev d;
    int rc = conform_dev_open_check(&d, opts, device, "events");
    if (rc != 0) return rc;
    char why[2048] = "";
    const hetrun_backend_ops *o = d.module.ops;
    hetrun_event *e[3] = {NULL, NULL, NULL};
    hetrun_buffer *a = NULL, *b = NULL, *c = NULL;
    const uint64_t bytes = (uint64_t)GEMM_N * GEMM_N * 4;
    int bad = 0;
    for (int i = 0; i < 3 && !bad; i++)
        bad = o->event_create(d.dev, &e[i]) != HETRUN_OK;
    bad = bad || o->mem_alloc(d.dev, bytes, &a) != HETRUN_OK ||
          o->mem_alloc(d.dev, bytes, &b) != HETRUN_OK ||
          o->mem_alloc(d.dev, bytes, &c) != HETRUN_OK ||
          conform_fill(&d, (hetrun_tensor){a, 0}, GEMM_N * GEMM_N, 0.5f) != HETRUN_OK ||
          conform_fill(&d, (hetrun_tensor){b, 0}, GEMM_N * GEMM_N, 0.5f) != HETRUN_OK;
    if (bad) {
        snprintf(why, sizeof why, "setup: %s", o->last_error());
        goto out;
    }
    /* e0 | GEMM | e1 | GEMM | e2, then e0 again after one more GEMM. */
    double t01 = NAN, t12 = NAN, t02 = NAN, t20 = NAN, t10 = NAN;
    bad = o->event_record(e[0], d.q) != HETRUN_OK ||
          conform_gemm(&d, d.q, a, b, c, GEMM_N, &d.ws) != HETRUN_OK ||
          o->event_record(e[1], d.q) != HETRUN_OK ||
          conform_gemm(&d, d.q, a, b, c, GEMM_N, &d.ws) != HETRUN_OK ||
          o->event_record(e[2], d.q) != HETRUN_OK ||
          o->event_elapsed_ms(e[0], e[1], &t01) != HETRUN_OK ||
          o->event_elapsed_ms(e[1], e[2], &t12) != HETRUN_OK ||
          o->event_elapsed_ms(e[0], e[2], &t02) != HETRUN_OK ||
          conform_gemm(&d, d.q, a, b, c, GEMM_N, &d.ws) != HETRUN_OK ||
          o->event_record(e[0], d.q) != HETRUN_OK ||
          o->event_elapsed_ms(e[2], e[0], &t20) != HETRUN_OK ||
          o->event_elapsed_ms(e[1], e[0], &t10) != HETRUN_OK;
    if (bad) {
        snprintf(why, sizeof why, "record/elapsed: %s", o->last_error());
        goto out;
    }
    /* Timer resolution allowance for "not before": 1 microsecond. */
    const double eps = 1e-3;
    const double all[5] = {t01, t12, t02, t20, t10};
    for (int i = 0; i < 5 && !bad; i++)
        bad = !isfinite(all[i]) || all[i] < 0.0;
    if (bad)
        snprintf(why, sizeof why,
                 "an elapsed time is negative or not finite: e0->e1 %g, e1->e2 %g, e0->e2 %g, "
                 "e2->e0(re-recorded) %g, e1->e0(re-recorded) %g ms",
                 t01, t12, t02, t20, t10);
    else if ((bad = t02 + eps < t01 || t02 + eps < t12 || t10 + eps < t20))
        snprintf(why, sizeof why,
                 "not monotonic: e0->e2 %g ms is shorter than e0->e1 %g or e1->e2 %g, or e1->e0 "
                 "%g shorter than e2->e0 %g after re-recording e0",
                 t02, t01, t12, t10, t20);
    else
        snprintf(why, sizeof why,
                 "e0->e1 %.3g, e1->e2 %.3g, e0->e2 %.3g ms; re-recorded e0: e2->e0 %.3g, "
                 "e1->e0 %.3g ms",
                 t01, t12, t02, t20, t10);
out:
    conform_emit_check(device, "events", bad ? CONFORM_FAIL : CONFORM_PASS, "%s", why);
    o->queue_sync(d.q);
    for (int i = 0; i < 3; i++)
        if (e[i]) o->event_destroy(e[i]);
    o->mem_free(a), o->mem_free(b), o->mem_free(c);
    conform_dev_close(&d);
    return bad ? HETRUN_EXIT_FAILED : 0;
}
