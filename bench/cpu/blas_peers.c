/* One SGEMM library, loaded by path, timed like the gemm workload (warm-up, then each
 * iteration with a monotonic clock, median). For choosing the CPU backend's BLAS: OpenBLAS
 * (cblas_sgemm), BLIS (cblas_sgemm), oneDNN (dnnl_sgemm, row-major). Threads come from the
 * library's variables (OPENBLAS_NUM_THREADS, BLIS_NUM_THREADS, OMP_NUM_THREADS).
 * Prints: median_gflops min_ms median_ms max_ms
 * usage: blas_peers LIBRARY N ITERATIONS WARMUP */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*cblas_fn)(int, int, int, int, int, int, float, const float *, int, const float *,
                         int, float, float *, int);
typedef int (*dnnl_fn)(char, char, int64_t, int64_t, int64_t, float, const float *, int64_t,
                       const float *, int64_t, float, float *, int64_t);

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
    if (argc != 5) {
        fprintf(stderr, "usage: blas_peers LIBRARY N ITERATIONS WARMUP\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "blas_peers: %s\n", dlerror());
        return 1;
    }
    cblas_fn cblas = (cblas_fn)dlsym(lib, "cblas_sgemm");
    dnnl_fn dnnl = (dnnl_fn)dlsym(lib, "dnnl_sgemm");
    if (!cblas && !dnnl) {
        fprintf(stderr, "blas_peers: %s has neither cblas_sgemm nor dnnl_sgemm\n", argv[1]);
        return 1;
    }
    int n = atoi(argv[2]), iters = atoi(argv[3]), warm = atoi(argv[4]);
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(sizeof(float) * nn * 3), *b = a + nn, *c = b + nn;
    double *t = malloc(sizeof(double) * (size_t)iters);
    if (!a || !t) return 1;
    unsigned s = 42;
    for (size_t i = 0; i < 2 * nn; i++)
        a[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    for (int i = -warm; i < iters; i++) {
        double t0 = now_ms();
        if (cblas)
            cblas(101, 111, 111, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        else
            dnnl('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (i >= 0) t[i] = now_ms() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp);
    double med = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
    printf("%.2f %.3f %.3f %.3f\n", 2.0 * n * nn / (med * 1e6), t[0], med, t[iters - 1]);
    return 0;
}
