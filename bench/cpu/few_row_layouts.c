/* Few-row fp32 GEMM (C = A B^T, m <= 48 token rows) over MiniLM's encoder weights, two
 * weight layouts side by side on the same data: the dot-product tiles of the cpu backend's
 * few-row kernel (backends/cpu/cpu_skinny.c: B as stored, [n][k], 4x3 tiles, horizontal
 * sums), and B packed once into 16-column k-major panels for a 6-row x 16-column
 * broadcast-FMA microkernel over k blocks of 256, the shape of onnxruntime's batch-1 hot loop
 * (MLAS's FMA3 SGEMM kernel on weights it packs at session start; perf and objdump of
 * bench/minilm/peers.py ort), which a "constant operand" hint in the ABI would allow. Six
 * layers of the four weights (42 MB) so every call streams them from DRAM, as a batch-1
 * request does. Prints the best of REPS passes for each layout and the largest difference
 * between them. Threads: OpenMP over columns (OMP_NUM_THREADS).
 * usage: few_row_layouts M REPS [PREFETCH_ROWS_AHEAD] */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NB 48 /* B rows per task, as in cpu_skinny.c */
static long pf_ahead = 3;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline __m256 hadd4(__m256 a, __m256 b, __m256 c, __m256 d) {
    return _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
}

/* A copy of the backend's tile (static in cpu_skinny.c, behind its thread pool), so the three
 * layouts run under the same OpenMP threading in one process; k a multiple of 8 (MiniLM's
 * are), so without the masked tail. Keep it in step with cpu_skinny.c. */
static void tile(const float *a[4], const float *b[3], const float *const *pf, long k,
                 float out[12]) {
    __m256 acc[4][3];
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 3; q++)
            acc[r][q] = _mm256_setzero_ps();
    for (long e = 0; e < k; e += 8) {
        if (pf && (e & 15) == 0)
            for (int q = 0; q < 3; q++)
                _mm_prefetch((const char *)(pf[q] + e), _MM_HINT_T0);
        const __m256 b0 = _mm256_loadu_ps(b[0] + e), b1 = _mm256_loadu_ps(b[1] + e),
                     b2 = _mm256_loadu_ps(b[2] + e);
        for (int r = 0; r < 4; r++) {
            const __m256 x = _mm256_loadu_ps(a[r] + e);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
            acc[r][2] = _mm256_fmadd_ps(x, b2, acc[r][2]);
        }
    }
    const __m256 u0 = hadd4(acc[0][0], acc[0][1], acc[0][2], acc[1][0]),
                 u1 = hadd4(acc[1][1], acc[1][2], acc[2][0], acc[2][1]),
                 u2 = hadd4(acc[2][2], acc[3][0], acc[3][1], acc[3][2]);
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                                        _mm256_permute2f128_ps(u0, u1, 0x31)));
    _mm_storeu_ps(out + 8, _mm_add_ps(_mm256_castps256_ps128(u2), _mm256_extractf128_ps(u2, 1)));
}

static void dot_tiles(const float *A, const float *B, float *C, long m, long n, long k) {
#pragma omp parallel for schedule(static)
    for (long t = 0; t < (n + NB - 1) / NB; t++) {
        const long j0 = t * NB, j1 = j0 + NB < n ? j0 + NB : n;
        for (long q0 = j0; q0 < j1; q0 += 3) { /* n is a multiple of 3 here */
            const float *b[3], *next[3];
            for (int q = 0; q < 3; q++) {
                b[q] = B + (q0 + q) * k;
                next[q] = B + (q0 + pf_ahead + q < n ? q0 + pf_ahead + q : q0) * k;
            }
            for (long r0 = 0; r0 < m; r0 += 4) {
                const float *a[4];
                float dot[12];
                for (int r = 0; r < 4; r++)
                    a[r] = A + (r0 + r < m ? r0 + r : r0) * k;
                tile(a, b, r0 == 0 ? next : NULL, k, dot);
                for (int r = 0; r < 4 && r0 + r < m; r++)
                    for (int q = 0; q < 3; q++)
                        C[(r0 + r) * n + q0 + q] = dot[3 * r + q];
            }
        }
    }
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

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: %s M REPS [PREFETCH_ROWS_AHEAD]\n", argv[0]), 2;
    const long m = atol(argv[1]);
    const int reps = atoi(argv[2]);
    if (argc > 3) pf_ahead = atol(argv[3]);
    if (m < 1 || m > 48 || reps < 1) return fprintf(stderr, "M in 1..48, REPS >= 1\n"), 2;
    enum { LAYERS = 6, SHAPES = 4 };
    const long shape[SHAPES][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}}; /* n, k */
    float *B[LAYERS][SHAPES], *P[LAYERS][SHAPES];
    float *A = aligned_alloc(64, 48 * 1536 * 4), *C = aligned_alloc(64, 48 * 1536 * 4),
          *C2 = aligned_alloc(64, 48 * 1536 * 4);
    for (long i = 0; i < 48 * 1536; i++)
        A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int l = 0; l < LAYERS; l++)
        for (int s = 0; s < SHAPES; s++) {
            const long n = shape[s][0], k = shape[s][1];
            B[l][s] = aligned_alloc(64, (size_t)(n * k * 4));
            P[l][s] = aligned_alloc(64, (size_t)(n * k * 4));
            for (long i = 0; i < n * k; i++)
                B[l][s][i] = (float)(((i + l * 31 + s) * 104729) % 2000) / 2000.0f - 0.5f;
            pack16(B[l][s], P[l][s], n, k);
        }
    double maxdiff = 0.0;
    for (int s = 0; s < SHAPES; s++) {
        const long n = shape[s][0], k = shape[s][1];
        dot_tiles(A, B[0][s], C, m, n, k);
        panels(A, P[0][s], C2, m, n, k);
        for (long i = 0; i < m * n; i++)
            maxdiff = fmax(maxdiff, fabs((double)C[i] - (double)C2[i]));
    }
    double best[2] = {1e9, 1e9}, flops = 0.0;
    for (int s = 0; s < SHAPES; s++)
        flops += 2.0 * (double)m * (double)shape[s][0] * (double)shape[s][1] * LAYERS;
    for (int r = 0; r < reps; r++)
        for (int v = 0; v < 2; v++) {
            const double t0 = now();
            for (int l = 0; l < LAYERS; l++)
                for (int s = 0; s < SHAPES; s++) {
                    const long n = shape[s][0], k = shape[s][1];
                    if (v == 0) dot_tiles(A, B[l][s], C, m, n, k);
                    if (v == 1) panels(A, P[l][s], C2, m, n, k);
                }
            best[v] = fmin(best[v], now() - t0);
        }
    const double bytes = 42467328.0; /* the 24 weights */
    printf("m %ld threads %d: dot tiles %.2f ms %.1f GFLOP/s %.2f GB/s | panels 6x16 %.2f ms %.1f "
           "GFLOP/s %.2f GB/s | tiles/panels %.2f | max difference %.1e\n",
           m, omp_get_max_threads(), best[0] * 1e3, flops / best[0] * 1e-9, bytes / best[0] * 1e-9,
           best[1] * 1e3, flops / best[1] * 1e-9, bytes / best[1] * 1e-9, best[0] / best[1],
           maxdiff);
    return maxdiff > 1e-3;
}
