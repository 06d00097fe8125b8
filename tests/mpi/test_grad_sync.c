/* exec/grad_sync under mpirun (2 and 3 ranks), on three modules: cpu (host in place, ABI
 * 1.2 mem_host_ptr), template (host staged: no host-visible memory) and the ABI 1.0 module
 * (host staged: its table ends before mem_host_ptr, which must never be read).
 *  - exact: gradients k * 2^-10 with |k| < 2^12, so every order of summation over <= 3
 *    ranks is exact and the result must equal the reference sum bit for bit; the
 *    session's progress hook is set while sums are in flight and cleared by wait_all;
 *  - deterministic: random floats in [-1, 1) (inexact sums) reported in a different bucket
 *    order on each rank and each step: every step's result must have the same bits on
 *    every rank and in every repetition, those of the sum in rank order;
 *  - errors: a bucket reported twice, out of range, wait_all with a bucket missing (an
 *    error at once, and the step still completes), a layout with a gap or an overlap;
 *  - the blocking hetrun_allreduce_sum_f32 (exec/collective.c) on the same module, exact;
 *  - a stalled peer (cpu module): the other ranks report at once, rank 1 only after 1.5 s;
 *    with limits.peer_timeout 0.4 s, rank 0's wait must name bucket, phase and rank 1 in
 *    a warning, and the step must still complete with exact sums.
 * usage: mpirun -np N test_grad_sync CPU_MODULE TEMPLATE_MODULE ABI10_MODULE */
#include <mpi.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/collective.h"
#include "exec/grad_sync.h"
#include "loader/loader.h"
#include "spec/job.h"
#include "../check.h"

static int rank, nranks;
static int hooked; /* the session's progress hook was seen set while sums were in flight */

/* Odd sizes, one bucket of one float, and a larger one: no happy path. */
enum { TOTAL = 1 + 4095 + 3001 + 20000 + 7 };
static const hetrun_grad_bucket layout[] = {
    {4096 + 3001, 20000}, {0, 1}, {1, 4095}, {4096, 3001}, {4096 + 3001 + 20000, 7}};
enum { NB = sizeof layout / sizeof layout[0] };

static uint32_t next(uint32_t *x) {
    *x = *x * 1664525u + 1013904223u;
    return *x >> 8;
}

/* Rank r's gradients for step `step`: exact multiples of 2^-10 or arbitrary floats. */
static void gradients(float *g, int r, int step, int exact) {
    uint32_t x = 977u * (uint32_t)r + 31u * (uint32_t)step + 5u;
    for (int i = 0; i < TOTAL; i++) {
        uint32_t v = next(&x);
        g[i] = exact ? (float)((int)(v % 8191) - 4095) / 1024.0f
                     : (float)(v * (2.0 / 16777216.0) - 1.0);
        if (g[i] == 0.0f) g[i] = 0.5f; /* never a zero gradient */
    }
}

/* This rank's exact gradients of `step` in mine, and their sum over all ranks in ref
 * (exact in any order); tmp is scratch. */
static void exact_step(int step, float *mine, float *ref, float *tmp) {
    memset(ref, 0, TOTAL * 4);
    for (int r = 0; r < nranks; r++) {
        gradients(tmp, r, step, 1);
        for (int i = 0; i < TOTAL; i++)
            ref[i] += tmp[i];
    }
    gradients(mine, rank, step, 1);
}

/* A per-rank, per-step permutation of the buckets: ranks disagree on the order. */
static void order(int *o, int step) {
    uint32_t x = 7u * (uint32_t)rank + 101u * (uint32_t)step + 3u;
    for (int i = 0; i < NB; i++)
        o[i] = i;
    for (int i = NB - 1; i > 0; i--) {
        int j = (int)(next(&x) % (uint32_t)(i + 1));
        int t = o[i];
        o[i] = o[j], o[j] = t;
    }
}

/* One step: upload this rank's gradients, report every bucket in `o`'s order (polling in
 * between, as backward would), wait, download the sums. */
static int step(hetrun_session *s, hetrun_grad_sync *g, hetrun_buffer *buf, const float *mine,
                const int *o, float *out) {
    if (hetrun_session_h2d(s, hetrun_tensor_at(buf, 0), mine, TOTAL * 4) != 0) return -1;
    for (int i = 0; i < NB; i++)
        if (hetrun_grad_sync_bucket_ready(g, o[i]) != 0 ||
            (hooked |= s->progress_hook != NULL, hetrun_grad_sync_progress(g) != 0))
            return -1;
    if (hetrun_grad_sync_wait_all(g) != 0) return -1;
    return hetrun_session_d2h(s, out, hetrun_tensor_at(buf, 0), TOTAL * 4);
}

static void test_exact(hetrun_session *s, hetrun_grad_sync *g, hetrun_buffer *buf, float *mine,
                       float *out, float *ref) {
    int o[NB];
    hooked = 0;
    for (int st = 0; st < 3; st++) {
        exact_step(st, mine, ref, out);
        order(o, st);
        CHECK(step(s, g, buf, mine, o, out) == 0, "exact step %d: %s", st, s->error);
        CHECK(s->progress_hook == NULL, "exact step %d: the progress hook outlived wait_all", st);
        int wrong = 0, first = -1;
        for (int i = 0; i < TOTAL; i++)
            if (memcmp(&out[i], &ref[i], 4) != 0 && wrong++ == 0) first = i;
        CHECK(wrong == 0, "exact step %d: %d sums differ from the reference, first at %d: %g vs %g",
              st, wrong, first, first >= 0 ? out[first] : 0.0, first >= 0 ? ref[first] : 0.0);
    }
    /* Host paths hand the session a progress hook while sums are in flight (3 steps of 5
     * buckets: some sum is always still open after its bucket_ready returns). */
    CHECK(nranks == 1 || hooked, "no progress hook was set while sums were in flight");
}

static void test_deterministic(hetrun_session *s, hetrun_grad_sync *g, hetrun_buffer *buf,
                               float *mine, float *out, float *first_run) {
    int o[NB];
    /* The host paths add in rank order 0, 1, ..., n-1 (grad_sync.c): the same float sums. */
    float *ordered = calloc(TOTAL, 4);
    for (int r = 0; r < nranks && ordered; r++) {
        gradients(mine, r, 0, 0);
        for (int i = 0; i < TOTAL; i++)
            ordered[i] = r ? ordered[i] + mine[i] : mine[i];
    }
    gradients(mine, rank, 0, 0);
    for (int rep = 0; rep < 4; rep++) {
        order(o, rep); /* same data, another order each repetition */
        CHECK(step(s, g, buf, mine, o, out) == 0, "repetition %d: %s", rep, s->error);
        if (rep == 0) {
            memcpy(first_run, out, TOTAL * 4);
            CHECK(ordered && memcmp(out, ordered, TOTAL * 4) == 0,
                  "the sums differ from the rank-order sum ((g0 + g1) + g2 ...)");
            continue;
        }
        CHECK(memcmp(out, first_run, TOTAL * 4) == 0,
              "repetition %d: the sums' bits differ from the first repetition", rep);
    }
    /* Every rank holds rank 0's bits. */
    memcpy(out, first_run, TOTAL * 4);
    MPI_Bcast(out, TOTAL, MPI_FLOAT, 0, MPI_COMM_WORLD);
    CHECK(memcmp(out, first_run, TOTAL * 4) == 0, "the sums' bits differ from rank 0's");
    free(ordered);
}

static void test_errors(hetrun_session *s, hetrun_grad_sync *g, hetrun_buffer *buf, float *mine,
                        float *out, float *ref) {
    exact_step(9, mine, ref, out);
    CHECK(hetrun_session_h2d(s, hetrun_tensor_at(buf, 0), mine, TOTAL * 4) == 0, "%s", s->error);
    CHECK(hetrun_grad_sync_bucket_ready(g, NB) == -1 && strstr(s->error, "bucket 5") &&
              strstr(s->error, "there are 5"),
          "out of range: %s", s->error);
    CHECK(hetrun_grad_sync_bucket_ready(g, 2) == 0, "%s", s->error);
    CHECK(hetrun_grad_sync_bucket_ready(g, 2) == -1 && strstr(s->error, "bucket 2") &&
              strstr(s->error, "twice"),
          "twice: %s", s->error);
    CHECK(hetrun_grad_sync_bucket_ready(g, 0) == 0, "%s", s->error);
    CHECK(hetrun_grad_sync_bucket_ready(g, 4) == 0, "%s", s->error);
    /* Returns at once (no hang) naming buckets 1 and 3; the step is still whole. */
    CHECK(hetrun_grad_sync_wait_all(g) == -1 && strstr(s->error, "3 of 5") &&
              strstr(s->error, "missing: 1 3"),
          "missing: %s", s->error);
    CHECK(hetrun_grad_sync_bucket_ready(g, 3) == 0 && hetrun_grad_sync_bucket_ready(g, 1) == 0,
          "%s", s->error);
    CHECK(hetrun_grad_sync_wait_all(g) == 0, "%s", s->error);
    CHECK(hetrun_session_d2h(s, out, hetrun_tensor_at(buf, 0), TOTAL * 4) == 0, "%s", s->error);
    CHECK(memcmp(out, ref, TOTAL * 4) == 0, "after the errors the sums are wrong");

    hetrun_grad_sync *bad = NULL;
    hetrun_grad_bucket gap[] = {{0, 10}, {11, TOTAL - 11}};
    CHECK(hetrun_grad_sync_create(s, buf, TOTAL, gap, 2, &bad) == -1 &&
              strstr(s->error, "bucket 1") && strstr(s->error, "element 10"),
          "gap: %s", s->error);
    hetrun_grad_bucket overlap[] = {{0, 10}, {9, TOTAL - 9}};
    CHECK(hetrun_grad_sync_create(s, buf, TOTAL, overlap, 2, &bad) == -1 &&
              strstr(s->error, "disjoint"),
          "overlap: %s", s->error);
    hetrun_grad_bucket short_[] = {{0, TOTAL - 1}};
    CHECK(hetrun_grad_sync_create(s, buf, TOTAL, short_, 1, &bad) == -1 &&
              strstr(s->error, "every gradient"),
          "short: %s", s->error);
    CHECK(bad == NULL, "a refused create set its output");
}

/* The blocking allreduce (exec/collective.c) on the same module: in place or staged. */
static void test_blocking(hetrun_session *s, hetrun_buffer *buf, float *mine, float *out,
                          float *ref) {
    exact_step(11, mine, ref, out);
    CHECK(hetrun_collective_prepare(s, TOTAL * 4) == 0, "prepare: %s", s->error);
    CHECK(hetrun_session_h2d(s, hetrun_tensor_at(buf, 0), mine, TOTAL * 4) == 0 &&
              hetrun_allreduce_sum_f32(s, hetrun_tensor_at(buf, 0), TOTAL) == 0 &&
              hetrun_session_d2h(s, out, hetrun_tensor_at(buf, 0), TOTAL * 4) == 0,
          "blocking allreduce: %s", s->error);
    CHECK(memcmp(out, ref, TOTAL * 4) == 0, "blocking allreduce: the sums are wrong");
}

/* Rank 1 reports its buckets 1.5 s late; rank 0's stderr is captured while it waits. */
static void test_stall(hetrun_session *s, hetrun_buffer *buf, float *mine, float *out, float *ref) {
    hetrun_job job;
    memset(&job, 0, sizeof job);
    job.limits.peer_timeout_s = 0.4;
    s->job = &job;
    hetrun_grad_sync *g = NULL;
    CHECK(hetrun_grad_sync_create(s, buf, TOTAL, layout, NB, &g) == 0, "stall: %s", s->error);
    s->job = NULL;
    if (!g) return;
    exact_step(1, mine, ref, out);
    char log[] = "/tmp/test_grad_sync_stall.XXXXXX";
    int fd = rank == 0 ? mkstemp(log) : -1, saved = -1;
    if (fd >= 0) fflush(stderr), saved = dup(2), dup2(fd, 2);
    if (rank == 1) nanosleep(&(struct timespec){1, 500000000}, NULL);
    int o[NB];
    order(o, 0);
    CHECK(step(s, g, buf, mine, o, out) == 0, "stall: %s", s->error);
    if (fd >= 0) fflush(stderr), dup2(saved, 2), close(saved);
    CHECK(memcmp(out, ref, TOTAL * 4) == 0, "stall: the sums are wrong");
    if (fd >= 0) {
        char text[4096] = "";
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        text[n > 0 ? n : 0] = '\0';
        CHECK(strstr(text, "grad_sync: rank 0 has waited") && strstr(text, "reduce-scatter") &&
                  strstr(text, "bucket") && strstr(text, "rank(s) 1 (") && !strstr(text, ") 2 ("),
              "stall: rank 0 logged no warning naming the wait and rank 1; it logged: \"%s\"",
              text);
        close(fd), unlink(log);
    }
    hetrun_grad_sync_destroy(g);
}

static void run_module(const char *name, const char *path, const char *want_path) {
    hetrun_backend_module m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.path, sizeof m.path, "%s", path);
    if (hetrun_module_open(&m, hetrun_host_services_get()) != 0) {
        CHECK(0, "cannot open %s (%s): %s", name, path, m.reason);
        return;
    }
    hetrun_session s;
    memset(&s, 0, sizeof s);
    s.comm = MPI_COMM_WORLD, s.rank = rank, s.nranks = nranks;
    CHECK(hetrun_session_open(&s, &m, 0) == 0, "%s: open: %s", name, s.error);
    hetrun_buffer *buf = NULL;
    CHECK(hetrun_session_alloc(&s, TOTAL * 4, &buf) == 0, "%s: alloc: %s", name, s.error);
    hetrun_grad_sync *g = NULL;
    CHECK(hetrun_grad_sync_create(&s, buf, TOTAL, layout, NB, &g) == 0, "%s: create: %s", name,
          s.error);
    float *mine = malloc(TOTAL * 4), *out = malloc(TOTAL * 4), *ref = malloc(TOTAL * 4);
    if (g && buf && mine && out && ref) {
        CHECK(strcmp(hetrun_grad_sync_path(g), want_path) == 0, "%s: path %s, want %s", name,
              hetrun_grad_sync_path(g), want_path);
        int before = failures;
        test_exact(&s, g, buf, mine, out, ref);
        test_deterministic(&s, g, buf, mine, out, ref);
        test_errors(&s, g, buf, mine, out, ref);
        test_blocking(&s, buf, mine, out, ref);
        const int stall = strcmp(name, "cpu") == 0 && nranks > 1;
        if (stall) test_stall(&s, buf, mine, out, ref);
        if (failures == before && rank == 0)
            printf("ok %s (%s): exact, deterministic, errors, blocking%s on %d ranks\n", name,
                   hetrun_grad_sync_path(g), stall ? ", stalled peer" : "", nranks);
    }
    free(mine), free(out), free(ref);
    hetrun_grad_sync_destroy(g);
    hetrun_session_free(&s, buf, TOTAL * 4);
    hetrun_session_close(&s);
    hetrun_module_close(&m);
}

int main(int argc, char **argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided); /* as hetrun run does */
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (argc != 4) {
        if (rank == 0)
            fprintf(stderr, "usage: %s CPU_MODULE TEMPLATE_MODULE ABI10_MODULE\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    run_module("cpu", argv[1], nranks > 1 ? "host in place" : "none");
    run_module("template", argv[2], nranks > 1 ? "host staged" : "none");
    run_module("abi10", argv[3], nranks > 1 ? "host staged" : "none");
    int all = 0;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("%d checks per rank, %d failures over %d ranks\n", checks, all, nranks);
    MPI_Finalize();
    return all ? 1 : 0;
}
