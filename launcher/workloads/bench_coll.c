/* Collective benchmarks in the nccl-tests style: for each size from min_bytes to
 * max_bytes (times step_factor), time, algbw = bytes / time and busbw = algbw * factor
 * (allreduce 2(n-1)/n, allgather and reduce-scatter (n-1)/n, broadcast 1), and #wrong.
 *
 * Three columns per size:
 *  - host: MPI on host buffers allocated once at the largest size and pre-faulted
 *    (a fresh 4 KiB page costs ~11 us, which would otherwise dominate small sizes);
 *  - mpi_reference: a plain MPI loop on its own buffers, the yardstick the host column
 *    must match (it shows the harness adds nothing);
 *  - device: device buffers, through the backend's collective when it has one
 *    (allreduce only in ABI v1; set up and used through exec/collective.c, so the
 *    fallback is the same as training's), else staged through the persistent host buffers
 *    (copy to host, MPI, copy back), which is what a workload without device
 *    collectives pays.
 * Times are wall-clock per call over back-to-back calls after `warmup` calls, from a
 * barrier to the last call's completion (device: after a queue sync). Host and reference
 * columns split `iterations` into up to 10 interleaved batches and report the median
 * batch (time_us) and the best (time_us_min); each rank reports its own times and the
 * report takes the max over ranks.
 *
 * #wrong is exact: every rank's input element i is a small integer 1..8 from a seeded
 * hash of (rank, i), so every sum is exactly representable in fp32/fp64/int32 and the
 * expected output is recomputed on each rank. Outputs are poisoned before the checked
 * call, so an element never written counts as wrong. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/collective.h"
#include "report/fields.h"
#include "spec/job.h"
#include "util/progress.h"
#include "workloads/bench.h"

double hetrun_bench_busbw_factor(int coll, int n) {
    if (n <= 1) return coll == HETRUN_BENCH_BROADCAST ? 1.0 : 0.0;
    switch (coll) {
    case HETRUN_BENCH_ALLREDUCE: return 2.0 * (n - 1) / n;
    case HETRUN_BENCH_ALLGATHER:
    case HETRUN_BENCH_REDUCE_SCATTER: return (double)(n - 1) / n;
    default: return 1.0;
    }
}

static uint32_t input_value(uint32_t seed, int rank, uint64_t i) {
    uint32_t h = (uint32_t)(i * 2654435761u) ^ (uint32_t)((uint32_t)(rank + 1) * 40503u) ^ seed;
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return 1u + (h & 7u);
}

static void store(void *buf, hetrun_dtype t, uint64_t i, double v) {
    if (t == HETRUN_F64)
        ((double *)buf)[i] = v;
    else if (t == HETRUN_I32)
        ((int32_t *)buf)[i] = (int32_t)v;
    else
        ((float *)buf)[i] = (float)v;
}

static double load(const void *buf, hetrun_dtype t, uint64_t i) {
    if (t == HETRUN_F64) return ((const double *)buf)[i];
    if (t == HETRUN_I32) return ((const int32_t *)buf)[i];
    return ((const float *)buf)[i];
}

typedef struct coll_ctx {
    hetrun_session *s;
    int coll, rank, n;
    hetrun_dtype t;
    size_t es;
    MPI_Datatype mt;
    uint32_t seed;
} coll_ctx;

/* Elements each rank sends and receives for a message of `bytes` (0: too small). */
static void shape(const coll_ctx *c, uint64_t bytes, uint64_t *in, uint64_t *out) {
    uint64_t total = bytes / c->es;
    switch (c->coll) {
    case HETRUN_BENCH_ALLGATHER: *in = total / (uint64_t)c->n, *out = *in * (uint64_t)c->n; break;
    case HETRUN_BENCH_REDUCE_SCATTER:
        *out = total / (uint64_t)c->n, *in = *out * (uint64_t)c->n;
        break;
    default: *in = *out = total;
    }
}

static void fill_input(const coll_ctx *c, void *send, uint64_t in) {
    for (uint64_t i = 0; i < in; i++)
        store(send, c->t, i, input_value(c->seed, c->rank, i));
}

static uint64_t count_wrong(const coll_ctx *c, const void *recv, uint64_t out) {
    uint64_t wrong = 0;
    for (uint64_t i = 0; i < out; i++) {
        double want = 0.0;
        switch (c->coll) {
        case HETRUN_BENCH_ALLREDUCE:
            for (int r = 0; r < c->n; r++)
                want += input_value(c->seed, r, i);
            break;
        case HETRUN_BENCH_ALLGATHER: {
            uint64_t per = out / (uint64_t)c->n;
            want = input_value(c->seed, (int)(i / per), i % per);
            break;
        }
        case HETRUN_BENCH_REDUCE_SCATTER:
            for (int r = 0; r < c->n; r++)
                want += input_value(c->seed, r, (uint64_t)c->rank * out + i);
            break;
        default: want = input_value(c->seed, 0, i);
        }
        wrong += load(recv, c->t, i) != want;
    }
    return wrong;
}

/* One host collective; broadcast works in place on `recv` (root fills it). */
static int mpi_call(const coll_ctx *c, const void *send, void *recv, uint64_t in, uint64_t out) {
    MPI_Comm comm = c->s->comm;
    switch (c->coll) {
    case HETRUN_BENCH_ALLREDUCE: return MPI_Allreduce(send, recv, (int)in, c->mt, MPI_SUM, comm);
    case HETRUN_BENCH_ALLGATHER:
        return MPI_Allgather(send, (int)in, c->mt, recv, (int)in, c->mt, comm);
    case HETRUN_BENCH_REDUCE_SCATTER:
        return MPI_Reduce_scatter_block(send, recv, (int)out, c->mt, MPI_SUM, comm);
    default: return MPI_Bcast(recv, (int)out, c->mt, 0, comm);
    }
}

static int mpi_fail(coll_ctx *c, int err, const char *what, uint64_t bytes) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(err, text, &len);
    snprintf(c->s->error, sizeof c->s->error, "bench %s: %s of %llu bytes on %d ranks: %s",
             hetrun_bench_op_name(c->coll), what, (unsigned long long)bytes, c->n, text);
    return -1;
}

/* Host-side setup of a column: inputs filled, outputs poisoned, one checked call
 * (`wrong` NULL: no check), then the warm-up calls. */
static int host_prepare(coll_ctx *c, void *send, void *recv, uint64_t in, uint64_t out,
                        int64_t warmup, uint64_t *wrong) {
    uint64_t bytes = (in > out ? in : out) * c->es;
    int err;
    if (c->coll == HETRUN_BENCH_BROADCAST) {
        if (c->rank == 0)
            fill_input(c, recv, out);
        else
            memset(recv, 0xff, out * c->es);
    } else {
        fill_input(c, send, in);
        memset(recv, 0xff, out * c->es); /* poison: NaN, or -1 for int32 */
    }
    if (wrong) {
        if ((err = mpi_call(c, send, recv, in, out)) != MPI_SUCCESS)
            return mpi_fail(c, err, "checked call", bytes);
        *wrong = count_wrong(c, recv, out);
    }
    for (int64_t i = 0; i < warmup; i++)
        if ((err = mpi_call(c, send, recv, in, out)) != MPI_SUCCESS)
            return mpi_fail(c, err, "warm-up", bytes);
    return 0;
}

/* One timed batch of `calls` back-to-back host calls from a barrier; seconds per call. */
static int host_batch(coll_ctx *c, void *send, void *recv, uint64_t in, uint64_t out, int64_t calls,
                      double *sec) {
    int err;
    MPI_Barrier(c->s->comm);
    double t0 = MPI_Wtime();
    for (int64_t i = 0; i < calls; i++)
        if ((err = mpi_call(c, send, recv, in, out)) != MPI_SUCCESS)
            return mpi_fail(c, err, "timed call", (in > out ? in : out) * c->es);
    *sec = (MPI_Wtime() - t0) / (double)calls;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Host and reference columns, timed in interleaved batches (host, reference, host, ...)
 * so both see the same machine state; each reports the median batch. A shared node's
 * noise then hits both alike, which is what makes the comparison meaningful. */
enum { BATCHES = 10 };
static int host_columns(coll_ctx *c, void *send, void *recv, void *rsend, void *rrecv, uint64_t in,
                        uint64_t out, const hetrun_bench_params *p, uint64_t *wrong,
                        double host_sec[2], double ref_sec[2]) {
    const int do_host = p->buffers != HETRUN_BENCH_BUF_DEVICE;
    if (do_host && host_prepare(c, send, recv, in, out, p->warmup, p->check ? wrong : NULL) != 0)
        return -1;
    if (p->reference && host_prepare(c, rsend, rrecv, in, out, p->warmup, NULL) != 0) return -1;
    int nb = p->iterations < BATCHES ? (int)p->iterations : BATCHES;
    double th[BATCHES], tr[BATCHES];
    for (int b = 0; b < nb; b++) {
        int64_t calls = p->iterations / nb + (b < p->iterations % nb);
        if (do_host && host_batch(c, send, recv, in, out, calls, &th[b]) != 0) return -1;
        if (p->reference && host_batch(c, rsend, rrecv, in, out, calls, &tr[b]) != 0) return -1;
    }
    qsort(th, (size_t)nb, sizeof th[0], cmp_double);
    qsort(tr, (size_t)nb, sizeof tr[0], cmp_double);
    host_sec[0] = do_host ? th[nb / 2] : 0.0, host_sec[1] = do_host ? th[0] : 0.0;
    ref_sec[0] = p->reference ? tr[nb / 2] : 0.0, ref_sec[1] = p->reference ? tr[0] : 0.0;
    return 0;
}

/* Device column. dev holds the input at offset 0 and the output at offset `half`
 * (backend allreduce works in place at offset 0). Staged calls reuse the host buffers. */
static int device_call(coll_ctx *c, hetrun_buffer *dev, uint64_t half, void *send, void *recv,
                       uint64_t in, uint64_t out, int backend) {
    hetrun_session *s = c->s;
    hetrun_tensor din = hetrun_tensor_at(dev, 0), dout = hetrun_tensor_at(dev, half);
    if (backend) return hetrun_allreduce_sum(s, din, in, c->t);
    if ((c->coll != HETRUN_BENCH_BROADCAST || c->rank == 0) &&
        hetrun_session_d2h(s, c->coll == HETRUN_BENCH_BROADCAST ? recv : send, din, in * c->es) !=
            0)
        return -1;
    int err = mpi_call(c, send, recv, in, out);
    if (err != MPI_SUCCESS) return mpi_fail(c, err, "staged call", out * c->es);
    return hetrun_session_h2d(s, dout, recv, out * c->es);
}

static int device_column(coll_ctx *c, hetrun_buffer *dev, uint64_t half, void *send, void *recv,
                         uint64_t in, uint64_t out, int64_t warmup, int64_t iters, int check,
                         int backend, uint64_t *wrong, double *sec) {
    hetrun_session *s = c->s;
    hetrun_tensor din = hetrun_tensor_at(dev, 0), dout = hetrun_tensor_at(dev, half);
    hetrun_tensor result = backend ? din : dout;
    if (check) {
        if (c->coll == HETRUN_BENCH_BROADCAST) {
            if (c->rank == 0)
                fill_input(c, send, in);
            else
                memset(send, 0xff, in * c->es);
        } else {
            fill_input(c, send, in);
        }
        memset(recv, 0xff, out * c->es);
        if (hetrun_session_h2d(s, din, send, in * c->es) != 0) return -1;
        if (!backend && hetrun_session_h2d(s, dout, recv, out * c->es) != 0) return -1;
        if (device_call(c, dev, half, send, recv, in, out, backend) != 0 ||
            hetrun_session_sync(s) != 0)
            return -1;
        if (hetrun_session_d2h(s, recv, result, out * c->es) != 0) return -1;
        *wrong = count_wrong(c, recv, out);
    }
    for (int64_t i = 0; i < warmup; i++)
        if (device_call(c, dev, half, send, recv, in, out, backend) != 0) return -1;
    if (hetrun_session_sync(s) != 0) return -1;
    MPI_Barrier(s->comm);
    double t0 = MPI_Wtime();
    for (int64_t i = 0; i < iters; i++)
        if (device_call(c, dev, half, send, recv, in, out, backend) != 0) return -1;
    if (hetrun_session_sync(s) != 0) return -1;
    *sec = (MPI_Wtime() - t0) / (double)iters;
    return 0;
}

static cJSON *column_json(uint64_t bytes, double sec, double factor, const uint64_t *wrong) {
    cJSON *o = cJSON_CreateObject();
    double algbw = sec > 0.0 ? (double)bytes / sec / 1e9 : 0.0;
    cJSON_AddNumberToObject(o, HETRUN_RF_TIME_US, sec * 1e6);
    cJSON_AddNumberToObject(o, HETRUN_RF_ALGBW_GBPS, algbw);
    cJSON_AddNumberToObject(o, HETRUN_RF_BUSBW_GBPS, algbw * factor);
    if (wrong) cJSON_AddNumberToObject(o, HETRUN_RF_WRONG, (double)*wrong);
    return o;
}

int hetrun_bench_collective(hetrun_session *s, const hetrun_bench_params *p, cJSON *result) {
    coll_ctx c = {s, p->op, s->rank, s->nranks, (hetrun_dtype)p->dtype, 0, MPI_FLOAT, 0};
    c.es = hetrun_dtype_size(c.t);
    c.mt = c.t == HETRUN_F64 ? MPI_DOUBLE : c.t == HETRUN_I32 ? MPI_INT : MPI_FLOAT;
    c.seed = (uint32_t)(s->job ? (uint64_t)s->job->seed : 1);
    const char *name = hetrun_bench_op_name(c.coll);
    const uint64_t max = (uint64_t)p->max_bytes;
    if (max / c.es > INT_MAX) {
        snprintf(s->error, sizeof s->error,
                 "bench %s: max_bytes %llu gives more than INT_MAX elements (MPI counts are int)",
                 name, (unsigned long long)max);
        return -1;
    }
    const int do_host = p->buffers != HETRUN_BENCH_BUF_DEVICE;
    const int do_dev = p->buffers != HETRUN_BENCH_BUF_HOST;
    /* The device communicator is set up as for training (exec/collective.c): every rank
     * or none, and host staging where the backend has none or it failed to start. */
    const int dev_allreduce = do_dev && c.coll == HETRUN_BENCH_ALLREDUCE;
    if (dev_allreduce && hetrun_collective_prepare(s, 0) != 0) return -1;
    const int backend = dev_allreduce && hetrun_collective_is_device(s);

    int rc = -1;
    void *send = malloc(max), *recv = malloc(max);
    void *rsend = p->reference ? malloc(max) : NULL, *rrecv = p->reference ? malloc(max) : NULL;
    hetrun_buffer *dev = NULL;
    if (!send || !recv || (p->reference && (!rsend || !rrecv))) {
        snprintf(s->error, sizeof s->error, "bench %s: out of host memory for 4 x %llu bytes", name,
                 (unsigned long long)max);
        goto out;
    }
    /* Pre-fault every page once, outside any timed region. */
    memset(send, 0, max), memset(recv, 0, max);
    if (rsend) memset(rsend, 0, max), memset(rrecv, 0, max);
    if (do_dev && hetrun_session_alloc(s, 2 * max, &dev) != 0) goto out;

    const double factor = hetrun_bench_busbw_factor(c.coll, c.n);
    cJSON_AddStringToObject(result, HETRUN_RF_OP, name);
    cJSON_AddStringToObject(result, HETRUN_RF_DTYPE, hetrun_dtype_name(c.t));
    cJSON_AddNumberToObject(result, HETRUN_RF_NRANKS, c.n);
    cJSON_AddNumberToObject(result, HETRUN_RF_BUSBW_FACTOR, factor);
    if (do_dev)
        cJSON_AddStringToObject(result, HETRUN_RF_DEVICE_PATH, backend ? "backend" : "host-staged");
    cJSON *rows = cJSON_AddArrayToObject(result, HETRUN_RF_ROWS);
    uint64_t wrong_total = 0, calls = 0;
    int64_t nsizes = 0, sized = 0;
    for (uint64_t bytes = (uint64_t)p->min_bytes; bytes <= max; bytes *= (uint64_t)p->step_factor)
        if (nsizes++, bytes > max / (uint64_t)p->step_factor) break; /* as the sweep below */
    for (uint64_t bytes = (uint64_t)p->min_bytes; bytes <= max; bytes *= (uint64_t)p->step_factor) {
        hetrun_progress_update(sized++, nsizes, "sizes", NULL);
        uint64_t in, out;
        shape(&c, bytes, &in, &out);
        if (in == 0 || out == 0) continue; /* smaller than one element per rank */
        uint64_t real = (in > out ? in : out) * c.es;
        uint64_t per = (uint64_t)((p->check ? 1 : 0) + p->warmup + p->iterations);
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToArray(rows, row);
        cJSON_AddNumberToObject(row, HETRUN_RF_BYTES, (double)real);
        cJSON_AddNumberToObject(row, HETRUN_RF_COUNT, (double)(real / c.es));
        double sec = 0.0, host_sec[2] = {0, 0}, ref_sec[2] = {0, 0};
        uint64_t wrong = 0;
        if ((do_host || p->reference) &&
            host_columns(&c, send, recv, rsend, rrecv, in, out, p, &wrong, host_sec, ref_sec) != 0)
            goto out;
        if (do_host) {
            cJSON *col = column_json(real, host_sec[0], factor, p->check ? &wrong : NULL);
            cJSON_AddNumberToObject(col, HETRUN_RF_TIME_US_MIN, host_sec[1] * 1e6);
            cJSON_AddItemToObject(row, HETRUN_RF_COL_HOST, col);
            wrong_total += wrong;
            calls += per;
        }
        if (p->reference) {
            cJSON *col = column_json(real, ref_sec[0], factor, NULL);
            cJSON_AddNumberToObject(col, HETRUN_RF_TIME_US_MIN, ref_sec[1] * 1e6);
            cJSON_AddItemToObject(row, HETRUN_RF_COL_MPI_REFERENCE, col);
            calls += per - (p->check ? 1 : 0);
        }
        if (do_dev) {
            wrong = 0;
            if (device_column(&c, dev, max, send, recv, in, out, p->warmup, p->iterations, p->check,
                              backend, &wrong, &sec) != 0)
                goto out;
            cJSON_AddItemToObject(row, HETRUN_RF_COL_DEVICE,
                                  column_json(real, sec, factor, p->check ? &wrong : NULL));
            wrong_total += wrong;
            calls += per;
        }
        s->usage.collective_bytes += (double)real * (double)calls;
        calls = 0;
        if (bytes > max / (uint64_t)p->step_factor) break; /* next step would overflow */
    }
    hetrun_progress_update(sized, nsizes, "sizes", NULL);

    cJSON_AddNumberToObject(result, HETRUN_RF_WRONG, (double)wrong_total);
    if (p->check) {
        hetrun_result_set_check(result, wrong_total ? HETRUN_CHECK_FAILED : HETRUN_CHECK_PASSED);
        cJSON_AddStringToObject(result, HETRUN_RF_CHECK_METHOD,
                                "exact: integer inputs 1..8 from a seeded hash of (rank, index)");
    } else {
        hetrun_result_set_check(result, HETRUN_CHECK_SKIPPED);
    }
    rc = 0;
out:
    if (dev) hetrun_session_free(s, dev, 2 * max);
    free(send), free(recv), free(rsend), free(rrecv);
    return rc;
}
