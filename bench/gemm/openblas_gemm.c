/* The peer for hetrun's GEMM: a direct OpenBLAS call, timed the way the gemm workload
 * times (warm-up, then each iteration with a monotonic clock, median). Prints one line:
 *   direct m n k threads median_gflops min_ms median_ms max_ms
 * usage: openblas_gemm M N K ITERATIONS WARMUP THREADS */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: openblas_gemm M N K ITERATIONS WARMUP THREADS\n");
        return 2;
    }
    int m = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]);
    int iters = atoi(argv[4]), warm = atoi(argv[5]), threads = atoi(argv[6]);
    openblas_set_num_threads(threads);
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n);
    double *t = malloc(sizeof(double) * (size_t)iters);
    if (!a || !b || !c || !t) return 1;
    unsigned s = 42;
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    for (size_t i = 0; i < (size_t)k * n; i++)
        b[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    for (size_t i = 0; i < (size_t)m * n; i++)
        c[i] = 0.0f;
    for (int i = 0; i < warm + 1; i++) /* +1: the workload's checked run */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c,
                    n);
    for (int i = 0; i < iters; i++) {
        double t0 = now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c,
                    n);
        t[i] = now_ms() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp);
    double med = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
    printf("direct %d %d %d %d %.3f %.4f %.4f %.4f\n", m, n, k, threads,
           2.0 * m * n * k / (med * 1e-3) / 1e9, t[0], med, t[iters - 1]);
    free(a), free(b), free(c), free(t);
    return 0;
}
