/* Bucketed, overlapped gradient sum (see grad_sync.h for the paths, progress and why the
 * result is deterministic and equal on every rank). */
#include "exec/grad_sync.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/collective.h"
#include "util/clock.h"

typedef enum { PATH_NONE, PATH_DEVICE, PATH_IN_PLACE, PATH_STAGED } sync_path;

struct hetrun_grad_sync {
    hetrun_session *s;
    hetrun_buffer *grads;
    uint64_t total;
    int nbuckets;
    sync_path path;
    hetrun_grad_bucket *bucket;
    MPI_Comm *comm;       /* one per bucket (host paths) */
    MPI_Request *req;     /* MPI_REQUEST_NULL when none in flight */
    unsigned char *ready; /* reported in this step */
    int *done_index;      /* MPI_Testsome's output */
    int reported, in_flight;
    float *host; /* element 0 of the sums on the host: the gradients or the staging buffer */
    double last_wait_s;
};

static int mpi_fail(hetrun_grad_sync *g, int code, const char *call, int bucket) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "code %d", code);
    if (bucket >= 0)
        snprintf(g->s->error, sizeof g->s->error,
                 "grad_sync: %s of bucket %d (%llu floats at element %llu) on %d ranks: %s", call,
                 bucket, (unsigned long long)g->bucket[bucket].count,
                 (unsigned long long)g->bucket[bucket].offset, g->s->nranks, text);
    else
        snprintf(g->s->error, sizeof g->s->error, "grad_sync: %s on %d ranks: %s", call,
                 g->s->nranks, text);
    return -1;
}

static int by_offset(const void *a, const void *b) {
    const hetrun_grad_bucket *x = *(const hetrun_grad_bucket *const *)a;
    const hetrun_grad_bucket *y = *(const hetrun_grad_bucket *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The buckets must tile [0, total): a gap would leave gradients unsummed (ranks drift
 * apart silently), an overlap would sum some twice. */
static int check_layout(hetrun_session *s, uint64_t total, const hetrun_grad_bucket *b, int n) {
    if (n <= 0 || total == 0) {
        snprintf(s->error, sizeof s->error,
                 "grad_sync: %d buckets over %llu floats: need at least one bucket and one float",
                 n, (unsigned long long)total);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (b[i].count == 0 || b[i].count > (uint64_t)INT_MAX) {
            snprintf(s->error, sizeof s->error,
                     "grad_sync: bucket %d has %llu floats (must be 1 to %d, MPI's int count)", i,
                     (unsigned long long)b[i].count, INT_MAX);
            return -1;
        }
    const hetrun_grad_bucket **sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) {
        snprintf(s->error, sizeof s->error, "grad_sync: out of memory for %d buckets", n);
        return -1;
    }
    for (int i = 0; i < n; i++)
        sorted[i] = &b[i];
    qsort(sorted, (size_t)n, sizeof *sorted, by_offset);
    uint64_t at = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (sorted[i]->offset != at || sorted[i]->count > total - at) {
            snprintf(s->error, sizeof s->error,
                     "grad_sync: bucket %d (%llu floats at element %llu) does not continue the "
                     "tiling of [0, %llu) at element %llu: buckets must be disjoint and cover "
                     "every gradient",
                     (int)(sorted[i] - b), (unsigned long long)sorted[i]->count,
                     (unsigned long long)sorted[i]->offset, (unsigned long long)total,
                     (unsigned long long)at);
            rc = -1;
        }
        at += sorted[i]->count;
    }
    if (rc == 0 && at != total) {
        snprintf(s->error, sizeof s->error,
                 "grad_sync: buckets cover [0, %llu) of %llu floats: every gradient needs a bucket",
                 (unsigned long long)at, (unsigned long long)total);
        rc = -1;
    }
    free(sorted);
    return rc;
}

/* Host paths: where the sums live on the host, in place when the backend allows it. */
static int choose_host(hetrun_grad_sync *g) {
    hetrun_session *s = g->s;
    void *host = NULL;
    int mapped = hetrun_session_host_ptr(s, hetrun_tensor_at(g->grads, 0), g->total * 4, &host);
    if (mapped < 0) return -1;
    if (mapped) {
        g->path = PATH_IN_PLACE;
    } else {
        if (hetrun_session_staging(s, g->total * 4, &host) != 0) return -1;
        g->path = PATH_STAGED;
    }
    g->host = host;
    for (int i = 0; i < g->nbuckets; i++) {
        int rc = MPI_Comm_dup(s->comm, &g->comm[i]);
        if (rc != MPI_SUCCESS) return mpi_fail(g, rc, "MPI_Comm_dup", i);
    }
    return 0;
}

int hetrun_grad_sync_create(hetrun_session *s, hetrun_buffer *grads, uint64_t total,
                            const hetrun_grad_bucket *buckets, int nbuckets,
                            hetrun_grad_sync **out) {
    if (check_layout(s, total, buckets, nbuckets) != 0) return -1;
    hetrun_grad_sync *g = calloc(1, sizeof *g);
    if (g) {
        g->bucket = malloc((size_t)nbuckets * sizeof *g->bucket);
        g->comm = malloc((size_t)nbuckets * sizeof *g->comm);
        g->req = malloc((size_t)nbuckets * sizeof *g->req);
        g->ready = calloc((size_t)nbuckets, 1);
        g->done_index = malloc((size_t)nbuckets * sizeof *g->done_index);
    }
    if (!g || !g->bucket || !g->comm || !g->req || !g->ready || !g->done_index) {
        hetrun_grad_sync_destroy(g);
        snprintf(s->error, sizeof s->error, "grad_sync: out of memory for %d buckets", nbuckets);
        return -1;
    }
    g->s = s, g->grads = grads, g->total = total, g->nbuckets = nbuckets;
    memcpy(g->bucket, buckets, (size_t)nbuckets * sizeof *g->bucket);
    for (int i = 0; i < nbuckets; i++)
        g->comm[i] = MPI_COMM_NULL, g->req[i] = MPI_REQUEST_NULL;
    g->path = PATH_NONE;
    int rc = 0;
    if (s->nranks > 1) {
        /* Joins the device communicator collectively (or falls back on every rank). */
        rc = hetrun_collective_prepare(s, 0);
        if (rc == 0 && hetrun_collective_is_device(s))
            g->path = PATH_DEVICE;
        else if (rc == 0)
            rc = choose_host(g);
    }
    if (rc != 0) {
        hetrun_grad_sync_destroy(g);
        return -1;
    }
    *out = g;
    return 0;
}

int hetrun_grad_sync_progress(hetrun_grad_sync *g) {
    if (g->in_flight == 0) return 0;
    int done = 0;
    int rc = MPI_Testsome(g->nbuckets, g->req, &done, g->done_index, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_fail(g, rc, "MPI_Testsome", -1);
    if (done != MPI_UNDEFINED) g->in_flight -= done;
    return 0;
}

int hetrun_grad_sync_bucket_ready(hetrun_grad_sync *g, int b) {
    hetrun_session *s = g->s;
    if (b < 0 || b >= g->nbuckets) {
        snprintf(s->error, sizeof s->error,
                 "grad_sync: bucket %d reported ready: there are %d (0 to %d)", b, g->nbuckets,
                 g->nbuckets - 1);
        return -1;
    }
    if (g->ready[b]) {
        snprintf(s->error, sizeof s->error,
                 "grad_sync: bucket %d (%llu floats at element %llu) reported ready twice in one "
                 "step (wait_all ends a step)",
                 b, (unsigned long long)g->bucket[b].count,
                 (unsigned long long)g->bucket[b].offset);
        return -1;
    }
    const hetrun_grad_bucket *k = &g->bucket[b];
    const hetrun_tensor t = hetrun_tensor_at(g->grads, k->offset * 4);
    float *host = g->host + k->offset;
    switch (g->path) {
    case PATH_NONE: break;
    case PATH_DEVICE: /* stream-ordered: the optimizer's ops queue behind it */
        if (hetrun_session_comm_allreduce(s, t, k->count, HETRUN_F32) != 0) return -1;
        break;
    case PATH_IN_PLACE: /* the ops that wrote the bucket must be done before MPI reads it */
        if (hetrun_session_sync(s) != 0) return -1;
        break;
    case PATH_STAGED: /* d2h returns after the queue's earlier work, with the data */
        if (hetrun_session_d2h(s, host, t, k->count * 4) != 0) return -1;
        break;
    }
    if (g->path == PATH_IN_PLACE || g->path == PATH_STAGED) {
        int rc = MPI_Iallreduce(MPI_IN_PLACE, host, (int)k->count, MPI_FLOAT, MPI_SUM, g->comm[b],
                                &g->req[b]);
        if (rc != MPI_SUCCESS) return mpi_fail(g, rc, "MPI_Iallreduce", b);
        g->in_flight++;
    }
    g->ready[b] = 1;
    g->reported++;
    s->usage.collective_bytes += (double)(k->count * 4);
    return hetrun_grad_sync_progress(g);
}

int hetrun_grad_sync_wait_all(hetrun_grad_sync *g) {
    hetrun_session *s = g->s;
    if (g->reported != g->nbuckets) {
        int n = snprintf(s->error, sizeof s->error,
                         "grad_sync: wait_all with %d of %d buckets reported ready; missing:",
                         g->reported, g->nbuckets);
        for (int i = 0, shown = 0; i < g->nbuckets && n > 0 && (size_t)n < sizeof s->error; i++)
            if (!g->ready[i]) {
                n += snprintf(s->error + n, sizeof s->error - (size_t)n,
                              shown++ < 8 ? " %d" : " ...", i);
                if (shown > 8) break;
            }
        return -1;
    }
    const double t0 = hetrun_now_s();
    if (g->in_flight > 0) {
        int rc = MPI_Waitall(g->nbuckets, g->req, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(g, rc, "MPI_Waitall", -1);
        g->in_flight = 0;
    }
    /* The buckets tile the buffer: one copy back instead of one per bucket. */
    if (g->path == PATH_STAGED &&
        hetrun_session_h2d(s, hetrun_tensor_at(g->grads, 0), g->host, g->total * 4) != 0)
        return -1;
    g->last_wait_s = hetrun_now_s() - t0;
    memset(g->ready, 0, (size_t)g->nbuckets);
    g->reported = 0;
    return 0;
}

const char *hetrun_grad_sync_path(const hetrun_grad_sync *g) {
    static const char *const names[] = {"none", "device", "host in place", "host staged"};
    return names[g->path];
}

double hetrun_grad_sync_last_wait_s(const hetrun_grad_sync *g) {
    return g->last_wait_s;
}

void hetrun_grad_sync_destroy(hetrun_grad_sync *g) {
    if (!g) return;
    if (g->in_flight == 0 && g->comm)
        for (int i = 0; i < g->nbuckets; i++)
            if (g->comm[i] != MPI_COMM_NULL) MPI_Comm_free(&g->comm[i]);
    if (g->in_flight == 0) {
        free(g->comm);
        free(g->req);
    } /* else MPI still owns the requests and may write their buffers: leave them */
    free(g->bucket);
    free(g->ready);
    free(g->done_index);
    free(g);
}
