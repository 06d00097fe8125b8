/* The cpu backend module's fp32 GEMM_BIAS_ACT (C = A B^T, MiniLM's encoder weights) with and
 * without the ABI 1.3 constant-operand hint, both through op_run: `plain` is what the module
 * does with weights as stored (the few-row dot-product tiles of cpu_skinny.c up to 48 rows,
 * OpenBLAS above), `const` sets HETRUN_OP_CONST_B (cpu_packed.c: weights packed once into
 * 16-column panels, a 6 x 16 broadcast-FMA kernel, the shape of onnxruntime's MLAS kernel).
 * Six layers of the four weights (42 MB) so each pass streams them from DRAM, as a batch-1
 * request does. One side per process; `check` runs both once and prints the largest
 * difference; `plain` and `const` print the best of REPS passes (the first pass, which packs,
 * is not timed).
 * usage: const_operand check|plain|const MODULE THREADS M REPS */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hetrun/backend.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

enum { LAYERS = 6, SHAPES = 4, MAX_M = 1024, MAX_DIM = 1536 };
static const long shape[SHAPES][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}}; /* n, k */

static const hetrun_backend_ops *ops;
static hetrun_queue *queue;
static hetrun_tensor t_a, t_c, t_b[LAYERS][SHAPES];

static void gemm(long m, int l, int s, int constant) {
    hetrun_op_desc d = {.struct_size = sizeof d,
                        .kind = HETRUN_OP_GEMM_BIAS_ACT,
                        .dtype = HETRUN_F32,
                        .out_dtype = HETRUN_F32,
                        .m = m,
                        .n = shape[s][0],
                        .k = shape[s][1],
                        .alpha = 1.0,
                        .flags = HETRUN_OP_TRANS_B | (constant ? HETRUN_OP_CONST_B : 0),
                        .act = HETRUN_ACT_IDENTITY};
    const hetrun_tensor args[5] = {t_a, t_b[l][s], {0}, t_c, {0}};
    if (ops->op_run(queue, &d, args, 5, (hetrun_tensor){0}) != HETRUN_OK) {
        fprintf(stderr, "const_operand: op_run: %s\n", ops->last_error());
        exit(1);
    }
}

/* A buffer of the module holding `bytes` of `host`. */
static hetrun_tensor upload(hetrun_device *dev, const float *host, size_t bytes) {
    hetrun_buffer *buf = NULL;
    if (ops->mem_alloc(dev, bytes, &buf) != HETRUN_OK ||
        (host && ops->copy_h2d(queue, (hetrun_tensor){buf, 0}, host, bytes) != HETRUN_OK)) {
        fprintf(stderr, "const_operand: mem_alloc/copy_h2d: %s\n", ops->last_error());
        exit(1);
    }
    return (hetrun_tensor){buf, 0};
}

int main(int argc, char **argv) {
    if (argc != 6)
        return fprintf(stderr, "usage: %s check|plain|const MODULE THREADS M REPS\n", argv[0]), 2;
    const char *mode = argv[1];
    const int threads = atoi(argv[3]), reps = atoi(argv[5]);
    const long m = atol(argv[4]);
    if (threads < 1 || m < 1 || m > MAX_M || reps < 1 ||
        (strcmp(mode, "check") && strcmp(mode, "plain") && strcmp(mode, "const")))
        return fprintf(stderr, "check|plain|const, THREADS >= 1, M in 1..%d, REPS >= 1\n", MAX_M),
               2;
    void *module = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    hetrun_backend_entry_fn entry =
        module ? (hetrun_backend_entry_fn)dlsym(module, HETRUN_BACKEND_ENTRY_SYMBOL) : NULL;
    if (!entry) return fprintf(stderr, "const_operand: cannot load %s\n", argv[2]), 1;
    ops = entry();
    if (ops->abi_minor < 3)
        return fprintf(stderr, "const_operand: module ABI 1.%u predates the hint (1.3)\n",
                       ops->abi_minor),
               1;
    hetrun_host_services host = {.struct_size = sizeof host, .cpu_threads = threads};
    hetrun_device *dev;
    if (ops->init(&host) != HETRUN_OK || ops->device_open(0, &dev) != HETRUN_OK ||
        ops->queue_create(dev, &queue) != HETRUN_OK)
        return fprintf(stderr, "const_operand: %s\n", ops->last_error()), 1;
    const size_t act = (size_t)MAX_M * MAX_DIM;
    float *A = malloc(act * 4), *C = malloc(act * 4), *C2 = malloc(act * 4);
    if (!A || !C || !C2) return fprintf(stderr, "const_operand: out of memory\n"), 1;
    for (size_t i = 0; i < act; i++)
        A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    t_a = upload(dev, A, act * 4);
    t_c = upload(dev, NULL, act * 4);
    for (int l = 0; l < LAYERS; l++)
        for (int s = 0; s < SHAPES; s++) {
            const long nk = shape[s][0] * shape[s][1];
            float *B = malloc((size_t)nk * 4);
            if (!B) return fprintf(stderr, "const_operand: out of memory\n"), 1;
            for (long i = 0; i < nk; i++)
                B[i] = (float)(((i + l * 31 + s) * 104729) % 2000) / 2000.0f - 0.5f;
            t_b[l][s] = upload(dev, B, (size_t)nk * 4);
            free(B);
        }
    if (!strcmp(mode, "check")) {
        double maxdiff = 0.0;
        for (int s = 0; s < SHAPES; s++) {
            const size_t mn = (size_t)m * (size_t)shape[s][0];
            gemm(m, 0, s, 0);
            if (ops->copy_d2h(queue, C, t_c, mn * 4) != HETRUN_OK) return 1;
            gemm(m, 0, s, 1);
            if (ops->copy_d2h(queue, C2, t_c, mn * 4) != HETRUN_OK) return 1;
            for (size_t i = 0; i < mn; i++)
                maxdiff = fmax(maxdiff, fabs((double)C[i] - (double)C2[i]));
        }
        printf("m %ld: largest difference with and without the hint %.1e\n", m, maxdiff);
        return maxdiff > 1e-3;
    }
    const int constant = !strcmp(mode, "const");
    double best = 1e9, flops = 0.0;
    for (int s = 0; s < SHAPES; s++)
        flops += 2.0 * (double)m * (double)shape[s][0] * (double)shape[s][1] * LAYERS;
    for (int r = -1; r < reps; r++) { /* r = -1: packs (const), warms up (plain) */
        const double t0 = now();
        for (int l = 0; l < LAYERS; l++)
            for (int s = 0; s < SHAPES; s++)
                gemm(m, l, s, constant);
        if (ops->queue_sync(queue) != HETRUN_OK) return 1;
        if (r >= 0) best = fmin(best, now() - t0);
    }
    printf("m %ld threads %d %s: %.2f ms %.1f GFLOP/s %.2f GB/s of weights\n", m, threads,
           constant ? "const (packed panels)" : "plain (as stored)", best * 1e3,
           flops / best * 1e-9, 42467328.0 / best * 1e-9); /* the 24 weights */
    return 0;
}
