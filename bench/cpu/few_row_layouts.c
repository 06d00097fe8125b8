/* Few-row fp32 GEMM (C = A B^T, m <= 48 token rows) over MiniLM's encoder weights, two
 * weight layouts side by side on the same data: the cpu backend module itself (op_run of a
 * GEMM_BIAS_ACT with B^T: its few-row kernel, backends/cpu/cpu_skinny.c, dot-product tiles
 * on B as stored, [n][k], on the module's threads), and B packed once into 16-column
 * k-major panels for a 6-row x 16-column broadcast-FMA microkernel over k blocks of 256, the
 * shape of onnxruntime's batch-1 hot loop (MLAS's FMA3 SGEMM kernel on weights it packs at
 * session start; perf and objdump of bench/minilm/peers.py ort), which a "constant operand"
 * hint in the ABI would allow (OpenMP threads). Six layers of the four weights (42 MB) so
 * every call streams them from DRAM, as a batch-1 request does. One side per process (two
 * thread pools in one process slow each other): `check` runs both once and prints the
 * largest difference; `module` and `panels` print the best of REPS passes.
 * usage: few_row_layouts check|module|panels MODULE THREADS M REPS */
#include <dlfcn.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
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

/* P[j / 16][e][16]: 16 columns of B^T, k-major */
static void pack16(const float *B, float *P, long n, long k) {
    for (long j = 0; j < n; j += 16)
        for (long e = 0; e < k; e++)
            for (int c = 0; c < 16; c++)
                P[(j / 16) * k * 16 + e * 16 + c] = B[(j + c) * k + e];
}

#define KBLOCK 256 /* 16 KB of a panel: stays in L1 while every row group passes */

/* C[nr x 16] (+)= A[nr x kl] P[kl x 16]: 12 accumulators, a broadcast per row, no sums */
static void kernel6x16(const float *a, long lda, int nr, const float *p, long kl, float *c,
                       long ldc, int accumulate) {
    const float *ar[6];
    __m256 acc[6][2];
    for (int r = 0; r < 6; r++) {
        ar[r] = a + (r < nr ? r : 0) * lda;
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    }
    for (long e = 0; e < kl; e++) {
        _mm_prefetch((const char *)(p + e * 16 + 256), _MM_HINT_T0);
        const __m256 b0 = _mm256_load_ps(p + e * 16), b1 = _mm256_load_ps(p + e * 16 + 8);
#pragma GCC unroll 6
        for (int r = 0; r < 6; r++) {
            const __m256 x = _mm256_broadcast_ss(ar[r] + e);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < nr; r++) {
        float *cr = c + r * ldc;
        if (accumulate) {
            acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(cr));
            acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(cr + 8));
        }
        _mm256_storeu_ps(cr, acc[r][0]);
        _mm256_storeu_ps(cr + 8, acc[r][1]);
    }
}

static void panels(const float *A, const float *P, float *C, long m, long n, long k) {
#pragma omp parallel for schedule(static)
    for (long pj = 0; pj < n / 16; pj++)
        for (long k0 = 0; k0 < k; k0 += KBLOCK) {
            const long kl = k - k0 < KBLOCK ? k - k0 : KBLOCK;
            for (long r0 = 0; r0 < m; r0 += 6)
                kernel6x16(A + r0 * k + k0, k, m - r0 < 6 ? (int)(m - r0) : 6,
                           P + pj * k * 16 + k0 * 16, kl, C + r0 * n + pj * 16, n, k0 > 0);
        }
}

enum { LAYERS = 6, SHAPES = 4 };
static const long shape[SHAPES][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}}; /* n, k */

/* The module's side: its buffers and the descriptor of one call. */
static const hetrun_backend_ops *ops;
static hetrun_queue *queue;
static hetrun_tensor mod_a, mod_c, mod_b[LAYERS][SHAPES];

static void through_module(long m, int l, int s) {
    hetrun_op_desc d = {.struct_size = sizeof d,
                        .kind = HETRUN_OP_GEMM_BIAS_ACT,
                        .dtype = HETRUN_F32,
                        .out_dtype = HETRUN_F32,
                        .m = m,
                        .n = shape[s][0],
                        .k = shape[s][1],
                        .alpha = 1.0,
                        .flags = HETRUN_OP_TRANS_B,
                        .act = HETRUN_ACT_IDENTITY};
    const hetrun_tensor args[5] = {mod_a, mod_b[l][s], {0}, mod_c, {0}};
    if (ops->op_run(queue, &d, args, 5, (hetrun_tensor){0}) != HETRUN_OK) {
        fprintf(stderr, "few_row_layouts: op_run: %s\n", ops->last_error());
        exit(1);
    }
}

/* A buffer of the module holding `bytes` of `host`. */
static hetrun_tensor upload(hetrun_device *dev, const float *host, size_t bytes) {
    hetrun_buffer *buf = NULL;
    if (ops->mem_alloc(dev, bytes, &buf) != HETRUN_OK ||
        (host && ops->copy_h2d(queue, (hetrun_tensor){buf, 0}, host, bytes) != HETRUN_OK)) {
        fprintf(stderr, "few_row_layouts: mem_alloc/copy_h2d: %s\n", ops->last_error());
        exit(1);
    }
    return (hetrun_tensor){buf, 0};
}

int main(int argc, char **argv) {
    if (argc != 6)
        return fprintf(stderr, "usage: %s check|module|panels MODULE THREADS M REPS\n", argv[0]), 2;
    const char *mode = argv[1];
    const int threads = atoi(argv[3]), reps = atoi(argv[5]);
    const long m = atol(argv[4]);
    if (threads < 1 || m < 1 || m > 48 || reps < 1 ||
        (strcmp(mode, "check") && strcmp(mode, "module") && strcmp(mode, "panels")))
        return fprintf(stderr, "check|module|panels, THREADS >= 1, M in 1..48, REPS >= 1\n"), 2;
    void *module = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    hetrun_backend_entry_fn entry =
        module ? (hetrun_backend_entry_fn)dlsym(module, HETRUN_BACKEND_ENTRY_SYMBOL) : NULL;
    if (!entry) return fprintf(stderr, "few_row_layouts: cannot load %s\n", argv[2]), 1;
    ops = entry();
    hetrun_host_services host = {.struct_size = sizeof host, .cpu_threads = threads};
    hetrun_device *dev;
    if (ops->init(&host) != HETRUN_OK || ops->device_open(0, &dev) != HETRUN_OK ||
        ops->queue_create(dev, &queue) != HETRUN_OK)
        return fprintf(stderr, "few_row_layouts: %s\n", ops->last_error()), 1;
    omp_set_num_threads(threads);
    float *B[LAYERS][SHAPES], *P[LAYERS][SHAPES];
    float *A = aligned_alloc(64, 48 * 1536 * 4), *C = aligned_alloc(64, 48 * 1536 * 4),
          *C2 = aligned_alloc(64, 48 * 1536 * 4);
    for (long i = 0; i < 48 * 1536; i++)
        A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    mod_a = upload(dev, A, 48 * 1536 * 4);
    mod_c = upload(dev, NULL, 48 * 1536 * 4);
    for (int l = 0; l < LAYERS; l++)
        for (int s = 0; s < SHAPES; s++) {
            const long n = shape[s][0], k = shape[s][1];
            B[l][s] = aligned_alloc(64, (size_t)(n * k * 4));
            P[l][s] = aligned_alloc(64, (size_t)(n * k * 4));
            for (long i = 0; i < n * k; i++)
                B[l][s][i] = (float)(((i + l * 31 + s) * 104729) % 2000) / 2000.0f - 0.5f;
            pack16(B[l][s], P[l][s], n, k);
            mod_b[l][s] = upload(dev, B[l][s], (size_t)(n * k * 4));
        }
    if (!strcmp(mode, "check")) {
        double maxdiff = 0.0;
        for (int s = 0; s < SHAPES; s++) {
            const long n = shape[s][0], k = shape[s][1];
            through_module(m, 0, s);
            if (ops->copy_d2h(queue, C, mod_c, (uint64_t)(m * n * 4)) != HETRUN_OK) return 1;
            panels(A, P[0][s], C2, m, n, k);
            for (long i = 0; i < m * n; i++)
                maxdiff = fmax(maxdiff, fabs((double)C[i] - (double)C2[i]));
        }
        printf("m %ld: largest difference between the layouts %.1e\n", m, maxdiff);
        return maxdiff > 1e-3;
    }
    const int on_module = !strcmp(mode, "module");
    double best = 1e9, flops = 0.0;
    for (int s = 0; s < SHAPES; s++)
        flops += 2.0 * (double)m * (double)shape[s][0] * (double)shape[s][1] * LAYERS;
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        for (int l = 0; l < LAYERS; l++)
            for (int s = 0; s < SHAPES; s++) {
                if (on_module) through_module(m, l, s);
                if (!on_module) panels(A, P[l][s], C2, m, shape[s][0], shape[s][1]);
            }
        if (on_module && ops->queue_sync(queue) != HETRUN_OK) return 1;
        best = fmin(best, now() - t0);
    }
    printf("m %ld threads %d %s: %.2f ms %.1f GFLOP/s %.2f GB/s of weights\n", m, threads,
           on_module ? "cpu module (dot tiles)" : "panels 6x16", best * 1e3, flops / best * 1e-9,
           42467328.0 / best * 1e-9); /* the 24 weights */
    return 0;
}
