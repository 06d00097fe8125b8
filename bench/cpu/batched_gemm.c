/* Batched SGEMM through the CPU backend module (op_run with batch, stride_a/b/c) against
 * OpenBLAS looping cblas_sgemm over the batch in the same process and library instance, at
 * both thread splits: all threads inside each cblas_sgemm, or one thread per entry with the
 * entries spread over the threads. Timed alternately, REPS rounds of ITERATIONS calls each
 * (median per round). Prints one line per round:
 *   round hetrun_gflops blas_all_threads_gflops blas_entry_per_thread_gflops
 * usage: batched_gemm MODULE THREADS BATCH M N K ITERATIONS REPS */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hetrun/backend.h"

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *,
                         int, float, float *, int);
static sgemm_fn sgemm;
static void (*set_threads)(int);
static int threads, batch, m, n, k;
static float *ha, *hb, *hc;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void entries(int from, int to) {
    for (int b = from; b < to; b++)
        sgemm(101, 111, 111, m, n, k, 1.0f, ha + (size_t)b * m * k, k, hb + (size_t)b * k * n, n,
              0.0f, hc + (size_t)b * m * n, n);
}

static void *slice(void *arg) {
    int t = (int)(intptr_t)arg;
    entries(batch * t / threads, batch * (t + 1) / threads);
    return NULL;
}

static void blas_all_threads(void) {
    set_threads(threads);
    entries(0, batch);
}

static void blas_entry_per_thread(void) {
    pthread_t tid[64];
    set_threads(1);
    for (int t = 1; t < threads; t++)
        pthread_create(&tid[t], NULL, slice, (void *)(intptr_t)t);
    slice(0);
    for (int t = 1; t < threads; t++)
        pthread_join(tid[t], NULL);
    set_threads(threads);
}

static const hetrun_backend_ops *ops;
static hetrun_queue *queue;
static hetrun_op_desc desc;
static hetrun_tensor args[3];

static void through_hetrun(void) {
    if (ops->op_run(queue, &desc, args, 3, (hetrun_tensor){0}) != HETRUN_OK) {
        fprintf(stderr, "batched_gemm: op_run: %s\n", ops->last_error());
        exit(1);
    }
}

/* Median GFLOP/s of `iters` calls of `fn` after one warm-up call. */
static double rate(void (*fn)(void), int iters) {
    double t[64];
    fn();
    for (int i = 0; i < iters; i++) {
        double t0 = now();
        fn();
        t[i] = now() - t0;
    }
    qsort(t, (size_t)iters, sizeof t[0], cmp);
    double med = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
    return 2.0 * batch * (double)m * n * k / med * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: batched_gemm MODULE THREADS BATCH M N K ITERATIONS REPS\n");
        return 2;
    }
    threads = atoi(argv[2]), batch = atoi(argv[3]), m = atoi(argv[4]), n = atoi(argv[5]);
    k = atoi(argv[6]);
    int iters = atoi(argv[7]), reps = atoi(argv[8]);
    if (threads < 1 || threads > 64 || iters < 1 || iters > 64) return 2;
    void *module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    hetrun_backend_entry_fn entry =
        module ? (hetrun_backend_entry_fn)dlsym(module, HETRUN_BACKEND_ENTRY_SYMBOL) : NULL;
    if (!entry) {
        fprintf(stderr, "batched_gemm: cannot load %s\n", argv[1]);
        return 1;
    }
    ops = entry();
    hetrun_host_services host = {.struct_size = sizeof host, .cpu_threads = threads};
    if (ops->init(&host) != HETRUN_OK) {
        fprintf(stderr, "batched_gemm: init: %s\n", ops->last_error());
        return 1;
    }
    /* The module's BLAS, already loaded with its kernels: the peer calls the same code. */
    void *blas = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
    sgemm = blas ? (sgemm_fn)dlsym(blas, "cblas_sgemm") : NULL;
    set_threads = blas ? (void (*)(int))dlsym(blas, "openblas_set_num_threads") : NULL;
    if (!sgemm || !set_threads) {
        fprintf(stderr, "batched_gemm: the module's OpenBLAS is not loaded\n");
        return 1;
    }
    size_t sa = (size_t)m * k, sb = (size_t)k * n, sc = (size_t)m * n;
    ha = malloc(sizeof(float) * batch * (sa + sb + sc));
    hb = ha + batch * sa;
    hc = hb + batch * sb;
    if (!ha) return 1;
    unsigned s = 42;
    for (size_t i = 0; i < (size_t)batch * (sa + sb); i++)
        ha[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    hetrun_device *dev;
    hetrun_buffer *buf[3];
    size_t bytes[3] = {sizeof(float) * batch * sa, sizeof(float) * batch * sb,
                       sizeof(float) * batch * sc};
    if (ops->device_open(0, &dev) || ops->queue_create(dev, &queue)) return 1;
    for (int a = 0; a < 3; a++) {
        if (ops->mem_alloc(dev, bytes[a], &buf[a])) return 1;
        args[a] = (hetrun_tensor){buf[a], 0};
    }
    ops->copy_h2d(queue, args[0], ha, bytes[0]);
    ops->copy_h2d(queue, args[1], hb, bytes[1]);
    desc = (hetrun_op_desc){.struct_size = sizeof desc,
                            .kind = HETRUN_OP_GEMM,
                            .dtype = HETRUN_F32,
                            .out_dtype = HETRUN_F32,
                            .m = m,
                            .n = n,
                            .k = k,
                            .alpha = 1.0,
                            .batch = batch,
                            .stride_a = (int64_t)sa,
                            .stride_b = (int64_t)sb,
                            .stride_c = (int64_t)sc};
    uint64_t ws = 1;
    if (ops->op_workspace_size(dev, &desc, &ws) || ws) {
        fprintf(stderr, "batched_gemm: fp32 GEMM should need no workspace\n");
        return 1;
    }
    for (int r = 0; r < reps; r++)
        printf("%d %.2f %.2f %.2f\n", r, rate(through_hetrun, iters), rate(blas_all_threads, iters),
               rate(blas_entry_per_thread, iters));
    for (int a = 0; a < 3; a++)
        ops->mem_free(buf[a]);
    ops->queue_destroy(queue);
    ops->device_close(dev);
    ops->finalize();
    return 0;
}
