/* Two queues on one device, each driven by its own thread at the same time (the launcher
 * serialises calls per queue, not per device): both must give the reference's results. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform/conform.h"
#include "kernels/catalogue.h"
#include "kernels/reference.h"
#include "util/exitcodes.h"

#define CONC_N 160
#define CONC_ROUNDS 12

typedef struct worker {
    conform_dev *d;
    hetrun_queue *q;
    uint64_t seed;
    conform_ws ws;
    char why[1024];
    int bad;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    const hetrun_backend_ops *o = w->d->module.ops;
    const size_t nn = (size_t)CONC_N * CONC_N;
    const uint64_t bytes = nn * 4;
    hetrun_op_desc desc = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
    desc.m = desc.n = desc.k = CONC_N;
    float *a = malloc(bytes), *b = malloc(bytes), *c = malloc(bytes), *want = malloc(bytes);
    hetrun_buffer *da = NULL, *db = NULL, *dc = NULL;
    if (!a || !b || !c || !want) {
        snprintf(w->why, sizeof w->why, "out of host memory");
        w->bad = 1;
        goto out;
    }
    hetrun_op_fill_arg(&desc, 0, a, nn, &w->seed);
    hetrun_op_fill_arg(&desc, 1, b, nn, &w->seed);
    void *ref_args[3] = {a, b, want};
    hetrun_reference_run(&desc, ref_args);
    if (o->thread_bind && o->thread_bind(w->d->dev) != HETRUN_OK) {
        snprintf(w->why, sizeof w->why, "thread_bind: %s", o->last_error());
        w->bad = 1;
        goto out;
    }
    w->bad = o->mem_alloc(w->d->dev, bytes, &da) != HETRUN_OK ||
             o->mem_alloc(w->d->dev, bytes, &db) != HETRUN_OK ||
             o->mem_alloc(w->d->dev, bytes, &dc) != HETRUN_OK ||
             o->copy_h2d(w->q, (hetrun_tensor){da, 0}, a, bytes) != HETRUN_OK ||
             o->copy_h2d(w->q, (hetrun_tensor){db, 0}, b, bytes) != HETRUN_OK;
    for (int r = 0; r < CONC_ROUNDS && !w->bad; r++)
        w->bad = conform_gemm(w->d, w->q, da, db, dc, CONC_N, &w->ws) != HETRUN_OK;
    w->bad = w->bad || o->queue_sync(w->q) != HETRUN_OK ||
             o->copy_d2h(w->q, c, (hetrun_tensor){dc, 0}, bytes) != HETRUN_OK;
    if (w->bad) {
        snprintf(w->why, sizeof w->why, "%s", o->last_error());
        goto out;
    }
    double maxdiff = 0.0, maxref = 0.0;
    for (size_t i = 0; i < nn; i++) {
        double diff = fabs((double)c[i] - (double)want[i]);
        if (!(diff <= maxdiff)) maxdiff = diff;
        if (fabs(want[i]) > maxref) maxref = fabs(want[i]);
    }
    const double err = maxdiff / maxref, tol = 2.0 * hetrun_op_tolerance(&desc);
    if (!(err <= tol)) {
        snprintf(w->why, sizeof w->why, "GEMM %dx%d on its own queue: error %.3g > %.3g", CONC_N,
                 CONC_N, err, tol);
        w->bad = 1;
    }
out:
    if (w->q) o->queue_sync(w->q);
    o->mem_free(da), o->mem_free(db), o->mem_free(dc), o->mem_free(w->ws.buf);
    free(a), free(b), free(c), free(want);
    return NULL;
}

int conform_group_concurrency(const conform_opts *opts, int device) {
    conform_dev d;
    int rc = conform_dev_open_check(&d, opts, device, "concurrency");
    if (rc != 0) return rc;
    char why[2048] = "";
    const hetrun_backend_ops *o = d.module.ops;
    worker w[2] = {{&d, d.q, 11, {NULL, 0}, "", 0}, {&d, NULL, 22, {NULL, 0}, "", 0}};
    int bad = o->queue_create(d.dev, &w[1].q) != HETRUN_OK;
    if (bad) snprintf(why, sizeof why, "a second queue: %s", o->last_error());
    pthread_t t[2];
    int started = 0;
    for (int i = 0; i < 2 && !bad; i++, started++)
        if (pthread_create(&t[i], NULL, work, &w[i]) != 0) {
            snprintf(why, sizeof why, "pthread_create failed");
            bad = 1;
            break;
        }
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2 && !bad; i++)
        if (w[i].bad) {
            snprintf(why, sizeof why, "queue %d of 2 (own thread): %s", i + 1, w[i].why);
            bad = 1;
        }
    if (!bad)
        snprintf(why, sizeof why, "2 threads x %d GEMMs %dx%d on 2 queues at once: both right",
                 CONC_ROUNDS, CONC_N, CONC_N);
    conform_emit_check(device, "concurrency", bad ? CONFORM_FAIL : CONFORM_PASS, "%s", why);
    if (w[1].q) o->queue_destroy(w[1].q);
    conform_dev_close(&d);
    return bad ? HETRUN_EXIT_FAILED : 0;
}
