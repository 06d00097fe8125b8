/* Bucketed, overlapped gradient sum (see grad_sync.h for the paths, the host algorithm,
 * progress, and why the result is deterministic and equal on every rank). */
#include "exec/grad_sync.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/collective.h"
#include "spec/job.h"
#include "util/clock.h"
#include "util/log.h"

typedef enum { PATH_NONE, PATH_DEVICE, PATH_IN_PLACE, PATH_STAGED } sync_path;

/* A bucket's sum on the host paths: idle, its reduce-scatter in flight, its allgather in
 * flight, done (for this step). */
enum { IDLE, SCATTER, GATHER, DONE };

struct hetrun_grad_sync {
    hetrun_session *s;
    hetrun_buffer *grads;
    uint64_t total;
    int nbuckets;
    sync_path path;
    hetrun_grad_bucket *bucket;
    MPI_Comm comm;        /* the host paths' own copy of s->comm: no tag meets another's */
    MPI_Request *req;     /* 2 (nranks - 1) per bucket; MPI_REQUEST_NULL when none */
    float *scratch;       /* per bucket: the peers' parts of this rank's chunk */
    uint64_t *scratch_at; /* per bucket: its element offset in scratch */
    unsigned char *state;
    unsigned char *ready; /* reported in this step */
    int reported, in_flight;
    float *host; /* element 0 of the sums on the host: the gradients or the staging buffer */
    double last_wait_s;
    double warn_after_s; /* a blocked wait names what it waits for after this long */
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

/* Chunk j of a bucket of `count` floats, for `p` ranks: [lo(j), lo(j + 1)). */
static uint64_t chunk_lo(uint64_t count, int p, int j) {
    return count * (uint64_t)j / (uint64_t)p;
}

/* Host paths: where the sums live on the host (in place when the backend allows it), the
 * communicator, and every bucket's scratch for the peers' parts of this rank's chunk. */
static int choose_host(hetrun_grad_sync *g) {
    hetrun_session *s = g->s;
    const int p = s->nranks;
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
    int *ub = NULL, flag = 0;
    MPI_Comm_get_attr(s->comm, MPI_TAG_UB, &ub, &flag);
    if (flag && ub && 2 * g->nbuckets - 1 > *ub) {
        snprintf(s->error, sizeof s->error,
                 "grad_sync: %d buckets need tags up to %d, above this MPI's MPI_TAG_UB %d: use "
                 "fewer, larger buckets",
                 g->nbuckets, 2 * g->nbuckets - 1, *ub);
        return -1;
    }
    uint64_t need = 0;
    for (int b = 0; b < g->nbuckets; b++) {
        const uint64_t n = g->bucket[b].count;
        g->scratch_at[b] = need;
        need += (uint64_t)(p - 1) * (chunk_lo(n, p, s->rank + 1) - chunk_lo(n, p, s->rank));
    }
    g->req = malloc((size_t)g->nbuckets * 2 * (size_t)(p - 1) * sizeof *g->req);
    g->scratch = malloc((size_t)(need ? need : 1) * sizeof(float));
    if (!g->req || !g->scratch) {
        snprintf(s->error, sizeof s->error,
                 "grad_sync: out of memory for %llu floats of scratch on %d ranks",
                 (unsigned long long)need, p);
        return -1;
    }
    memset(g->scratch, 0, (size_t)(need ? need : 1) * sizeof(float)); /* fault pages now */
    for (int i = 0; i < g->nbuckets * 2 * (p - 1); i++)
        g->req[i] = MPI_REQUEST_NULL;
    int rc = MPI_Comm_dup(s->comm, &g->comm);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(g, rc, "MPI_Comm_dup", -1);
}

int hetrun_grad_sync_create(hetrun_session *s, hetrun_buffer *grads, uint64_t total,
                            const hetrun_grad_bucket *buckets, int nbuckets,
                            hetrun_grad_sync **out) {
    if (check_layout(s, total, buckets, nbuckets) != 0) return -1;
    hetrun_grad_sync *g = calloc(1, sizeof *g);
    if (g) {
        g->comm = MPI_COMM_NULL;
        g->bucket = malloc((size_t)nbuckets * sizeof *g->bucket);
        g->scratch_at = calloc((size_t)nbuckets, sizeof *g->scratch_at);
        g->state = calloc((size_t)nbuckets, 1);
        g->ready = calloc((size_t)nbuckets, 1);
    }
    if (!g || !g->bucket || !g->scratch_at || !g->state || !g->ready) {
        hetrun_grad_sync_destroy(g);
        snprintf(s->error, sizeof s->error, "grad_sync: out of memory for %d buckets", nbuckets);
        return -1;
    }
    g->s = s, g->grads = grads, g->total = total, g->nbuckets = nbuckets;
    memcpy(g->bucket, buckets, (size_t)nbuckets * sizeof *g->bucket);
    g->path = PATH_NONE;
    /* A peer silent for limits.peer_timeout counts as lost; one that is alive but never
     * sends its part for as long deserves a word in the log. */
    g->warn_after_s =
        s->job && s->job->limits.peer_timeout_s > 0 ? s->job->limits.peer_timeout_s : 30.0;
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

/* Reduce-scatter: rank j sums chunk j of the bucket. Every rank sends chunk q to rank q and
 * receives the peers' parts of its own chunk into scratch (tag 2b). */
static int post_scatter(hetrun_grad_sync *g, int b) {
    const int p = g->s->nranks, me = g->s->rank;
    const uint64_t n = g->bucket[b].count;
    float *base = g->host + g->bucket[b].offset;
    float *scratch = g->scratch + g->scratch_at[b];
    const uint64_t mine = chunk_lo(n, p, me), len = chunk_lo(n, p, me + 1) - mine;
    MPI_Request *r = g->req + (size_t)b * 2 * (size_t)(p - 1);
    for (int q = 0, k = 0; q < p; q++) {
        if (q == me) continue;
        const uint64_t lo = chunk_lo(n, p, q), cnt = chunk_lo(n, p, q + 1) - lo;
        int rc = MPI_Irecv(scratch + (uint64_t)k * len, (int)len, MPI_FLOAT, q, 2 * b, g->comm,
                           &r[2 * k]);
        if (rc == MPI_SUCCESS)
            rc = MPI_Isend(base + lo, (int)cnt, MPI_FLOAT, q, 2 * b, g->comm, &r[2 * k + 1]);
        if (rc != MPI_SUCCESS) return mpi_fail(g, rc, "MPI_Isend/MPI_Irecv (reduce-scatter)", b);
        k++;
    }
    g->state[b] = SCATTER;
    return 0;
}

/* Sums this rank's chunk in rank order 0, 1, ..., p-1, whichever rank computes it, so the
 * order of additions is fixed by the rank count alone; then the allgather (tag 2b + 1) sends
 * the sum to every peer and receives theirs in place. Each element is summed on one rank
 * only, so every rank ends with the same bits. */
static int post_gather(hetrun_grad_sync *g, int b) {
    const int p = g->s->nranks, me = g->s->rank;
    const uint64_t n = g->bucket[b].count;
    float *base = g->host + g->bucket[b].offset;
    float *scratch = g->scratch + g->scratch_at[b];
    const uint64_t mine = chunk_lo(n, p, me), len = chunk_lo(n, p, me + 1) - mine;
    float *own = base + mine;
    /* Rank r's part: own when r == me, else scratch slot r (r < me) or r - 1 (r > me). */
    float *acc = me == 0 ? own : scratch; /* rank 0's part starts the sum */
    for (int r = 1; r < p; r++) {
        const float *add = r == me ? own : scratch + (uint64_t)(r < me ? r : r - 1) * len;
        for (uint64_t i = 0; i < len; i++)
            acc[i] += add[i];
    }
    if (acc != own && len) memcpy(own, acc, (size_t)len * sizeof(float));
    MPI_Request *r = g->req + (size_t)b * 2 * (size_t)(p - 1);
    for (int q = 0, k = 0; q < p; q++) {
        if (q == me) continue;
        const uint64_t lo = chunk_lo(n, p, q), cnt = chunk_lo(n, p, q + 1) - lo;
        int rc = MPI_Irecv(base + lo, (int)cnt, MPI_FLOAT, q, 2 * b + 1, g->comm, &r[2 * k]);
        if (rc == MPI_SUCCESS)
            rc = MPI_Isend(own, (int)len, MPI_FLOAT, q, 2 * b + 1, g->comm, &r[2 * k + 1]);
        if (rc != MPI_SUCCESS) return mpi_fail(g, rc, "MPI_Isend/MPI_Irecv (allgather)", b);
        k++;
    }
    g->state[b] = GATHER;
    return 0;
}

/* Names, in a warning, the peers whose messages of bucket b's current phase have not
 * arrived: a wait that never ends (a peer lost in another collective) is then diagnosable
 * from the log before limits.timeout ends the job. MPI_Request_get_status frees nothing. */
static void warn_stalled(hetrun_grad_sync *g, int b, const MPI_Request *r, double waited) {
    const int p = g->s->nranks, me = g->s->rank;
    char peers[256] = "";
    size_t n = 0;
    for (int q = 0, k = 0; q < p && n < sizeof peers - 16; q++) {
        if (q == me) continue;
        int recv_done = 1, send_done = 1;
        MPI_Request_get_status(r[2 * k], &recv_done, MPI_STATUS_IGNORE);
        MPI_Request_get_status(r[2 * k + 1], &send_done, MPI_STATUS_IGNORE);
        if (!recv_done || !send_done)
            n += (size_t)snprintf(peers + n, sizeof peers - n, " %d (%s)", q,
                                  !recv_done && !send_done ? "send and receive"
                                  : !recv_done             ? "receive"
                                                           : "send");
        k++;
    }
    HETRUN_WARN("grad_sync: rank %d has waited %.1f s for the %s of gradient bucket %d "
                "(%llu floats); still open with rank(s)%s",
                me, waited, g->state[b] == SCATTER ? "reduce-scatter" : "allgather", b,
                (unsigned long long)g->bucket[b].count, peers);
}

/* Moves bucket b on when its messages are done; `block` waits for them (polling, as
 * MPI_Waitall does here, with a warning after warn_after_s of waiting, then after twice as
 * long, and so on). */
static int advance(hetrun_grad_sync *g, int b, int block) {
    const int m = 2 * (g->s->nranks - 1);
    MPI_Request *r = g->req + (size_t)b * (size_t)m;
    const double t0 = block ? hetrun_now_s() : 0.0;
    double warn_after = g->warn_after_s;
    while (g->state[b] == SCATTER || g->state[b] == GATHER) {
        int done = 0;
        int rc = MPI_Testall(m, r, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(g, rc, "MPI_Testall", b);
        if (!done && !block) return 0;
        if (!done) {
            const double waited = hetrun_now_s() - t0;
            if (waited >= warn_after) warn_stalled(g, b, r, waited), warn_after *= 2;
            continue;
        }
        if (g->state[b] == SCATTER) {
            if (post_gather(g, b) != 0) return -1;
        } else {
            g->state[b] = DONE;
            g->in_flight--;
        }
    }
    return 0;
}

/* The session's progress hook while host sums are in flight (see session.h). */
static int progress_hook(void *ctx) {
    return hetrun_grad_sync_progress(ctx);
}

/* Hands the hook back once nothing is in flight (only if it is still ours). */
static void release_hook(hetrun_grad_sync *g) {
    if (g->s->progress_ctx == g) g->s->progress_hook = NULL, g->s->progress_ctx = NULL;
}

int hetrun_grad_sync_progress(hetrun_grad_sync *g) {
    for (int b = 0; b < g->nbuckets && g->in_flight > 0; b++)
        if (advance(g, b, 0) != 0) return -1;
    if (g->in_flight == 0) release_hook(g);
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
    switch (g->path) {
    case PATH_NONE: break;
    case PATH_DEVICE: /* stream-ordered: the optimizer's ops queue behind it */
        if (hetrun_session_comm_allreduce(s, t, k->count, HETRUN_F32) != 0) return -1;
        break;
    case PATH_IN_PLACE: /* the ops that wrote the bucket must be done before MPI reads it */
        if (hetrun_session_sync(s) != 0) return -1;
        break;
    case PATH_STAGED: /* d2h returns after the queue's earlier work, with the data */
        if (hetrun_session_d2h(s, g->host + k->offset, t, k->count * 4) != 0) return -1;
        break;
    }
    if (g->path == PATH_IN_PLACE || g->path == PATH_STAGED) {
        if (post_scatter(g, b) != 0) return -1;
        g->in_flight++;
        s->progress_hook = progress_hook, s->progress_ctx = g;
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
    /* Buckets in report order is not known here; index order is as good: each wait also
     * progresses every other bucket's messages. */
    for (int b = 0; b < g->nbuckets && g->in_flight > 0; b++)
        if (advance(g, b, 1) != 0) return -1;
    release_hook(g);
    /* The buckets tile the buffer: one copy back instead of one per bucket. */
    if (g->path == PATH_STAGED &&
        hetrun_session_h2d(s, hetrun_tensor_at(g->grads, 0), g->host, g->total * 4) != 0)
        return -1;
    g->last_wait_s = hetrun_now_s() - t0;
    memset(g->ready, 0, (size_t)g->nbuckets);
    memset(g->state, IDLE, (size_t)g->nbuckets);
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
    if (g->s) release_hook(g);
    if (g->in_flight == 0) {
        if (g->comm != MPI_COMM_NULL) MPI_Comm_free(&g->comm);
        free(g->req);
        free(g->scratch);
    } /* else MPI still owns the requests and may write their buffers: leave them */
    free(g->bucket);
    free(g->scratch_at);
    free(g->state);
    free(g->ready);
    free(g);
}
