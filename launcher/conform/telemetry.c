/* Telemetry contract: each member is optional on its own; a set one answers OK or
 * HETRUN_ERR_UNSUPPORTED; energy is finite, >= 0 and never goes down; the memory peak
 * covers what is allocated right now. */
#include <math.h>
#include <stdio.h>

#include "conform/conform.h"
#include "util/exitcodes.h"

#define TEL_BYTES (4ull << 20)

int conform_group_telemetry(const conform_opts *opts, int device) {
    conform_dev d;
    int rc = conform_dev_open_check(&d, opts, device, "telemetry");
    if (rc != 0) return rc;
    const hetrun_backend_ops *o = d.module.ops;
    char why[1024] = "";
    int bad = 0, answered = 0;
    hetrun_buffer *b = NULL;
    if (o->mem_alloc(d.dev, TEL_BYTES, &b) != HETRUN_OK) {
        snprintf(why, sizeof why, "mem_alloc: %s", o->last_error());
        bad = 1;
    }
    if (!bad && o->memory_peak) {
        uint64_t peak = 0;
        hetrun_status st = o->memory_peak(d.dev, &peak);
        if (st == HETRUN_OK && peak < TEL_BYTES) {
            snprintf(why, sizeof why, "memory_peak %llu bytes with %llu allocated",
                     (unsigned long long)peak, TEL_BYTES);
            bad = 1;
        } else if (st != HETRUN_OK && st != HETRUN_ERR_UNSUPPORTED) {
            snprintf(why, sizeof why, "memory_peak returned %d: %s", st, o->last_error());
            bad = 1;
        }
        answered += st == HETRUN_OK;
    }
    if (!bad && o->energy_joules) {
        double e0 = NAN, e1 = NAN;
        hetrun_status s0 = o->energy_joules(d.dev, &e0);
        conform_fill(&d, (hetrun_tensor){b, 0}, TEL_BYTES / 4, 1.0f);
        o->queue_sync(d.q);
        hetrun_status s1 = o->energy_joules(d.dev, &e1);
        if (s0 != s1 || (s0 != HETRUN_OK && s0 != HETRUN_ERR_UNSUPPORTED)) {
            snprintf(why, sizeof why, "energy_joules returned %d then %d: %s", s0, s1,
                     o->last_error());
            bad = 1;
        } else if (s0 == HETRUN_OK && !(isfinite(e0) && e0 >= 0.0 && e1 >= e0)) {
            snprintf(why, sizeof why, "energy_joules went %g J then %g J", e0, e1);
            bad = 1;
        }
        answered += s0 == HETRUN_OK;
    }
    if (!bad)
        snprintf(why, sizeof why, "memory_peak %s, energy_joules %s (%d answered)",
                 o->memory_peak ? "set" : "not set", o->energy_joules ? "set" : "not set",
                 answered);
    conform_emit_check(device, "telemetry", bad ? CONFORM_FAIL : CONFORM_PASS, "%s", why);
    o->queue_sync(d.q);
    o->mem_free(b);
    conform_dev_close(&d);
    return bad ? HETRUN_EXIT_FAILED : 0;
}
