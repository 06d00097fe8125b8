/* Few-row GEMM against a row-major [n x k] weight (see cpu_skinny.h): every output is a dot
 * product of an A row and a B row, both contiguous in k. A task takes NB rows of B and, three
 * at a time, runs every A row past them (four at a time), so each weight row is read from
 * memory once and A stays in L1/L2; the epilogue (bias, aux, activation) then runs on the
 * task's columns while they are in cache. */
#include "cpu_skinny.h"

#include <immintrin.h>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/cpu_parallel.h"

#define NB 48 /* B rows (output columns) per task */

int cpu_few_row_shape(const hetrun_op_desc *d, int64_t max_rows) {
    static int known, avx2;
    if (!known) {
        __builtin_cpu_init();
        avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        known = 1;
    }
    const int batched = d->struct_size >= HETRUN_OP_DESC_SIZE_V1_1 && d->batch > 1;
    return avx2 && !batched && !(d->flags & HETRUN_OP_TRANS_A) && d->m <= max_rows &&
           d->k < ((int64_t)1 << 31);
}

int cpu_skinny_takes(const hetrun_op_desc *d) {
    return d->kind == HETRUN_OP_GEMM_BIAS_ACT && (d->flags & HETRUN_OP_TRANS_B) &&
           d->dtype == HETRUN_F32 && d->out_dtype == HETRUN_F32 &&
           cpu_few_row_shape(d, CPU_SKINNY_MAX_ROWS);
}

typedef struct skinny_job {
    const hetrun_op_desc *d;
    const float *a, *b, *bias;
    float *c, *aux;
    int64_t lda, ldb, ldc;
} skinny_job;

/* The lane sums of four vectors, per 128-bit half: [v0 v1 v2 v3] of the low lanes in the
 * low half, of the high lanes in the high half. Three hadds for four sums where one sum
 * alone takes five shuffles and adds: a tile has twelve. */
__attribute__((target("avx2,fma"))) static inline __m256 hsum4_halves(__m256 v0, __m256 v1,
                                                                      __m256 v2, __m256 v3) {
    return _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
}

/* out[3 r + q] = a_r . b_q over k for 4 A rows and 3 B rows (callers repeat a row to fill a
 * partial tile and drop its results); the k % 8 tail goes through a masked load. With `pf`,
 * the next three B rows are prefetched as this tile streams its own, so their memory latency
 * overlaps this tile's arithmetic (the weights come from DRAM once per call). */
__attribute__((target("avx2,fma"))) static void tile(const float *const a[4],
                                                     const float *const b[3],
                                                     const float *const *pf, int64_t k,
                                                     float out[12]) {
    __m256 acc[4][3];
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 3; q++)
            acc[r][q] = _mm256_setzero_ps();
    int64_t e = 0;
    for (; e + 8 <= k; e += 8) {
        if (pf && (e & 15) == 0) /* one prefetch per 64-byte line of each row */
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
    if (e < k) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(k - e)), lane);
        const __m256 b0 = _mm256_maskload_ps(b[0] + e, mask),
                     b1 = _mm256_maskload_ps(b[1] + e, mask),
                     b2 = _mm256_maskload_ps(b[2] + e, mask);
        for (int r = 0; r < 4; r++) {
            const __m256 x = _mm256_maskload_ps(a[r] + e, mask);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
            acc[r][2] = _mm256_fmadd_ps(x, b2, acc[r][2]);
        }
    }
    /* out[3 r + q]: sums 0-7 from two vectors' halves, 8-11 from a third's */
    const __m256 u0 = hsum4_halves(acc[0][0], acc[0][1], acc[0][2], acc[1][0]),
                 u1 = hsum4_halves(acc[1][1], acc[1][2], acc[2][0], acc[2][1]),
                 u2 = hsum4_halves(acc[2][2], acc[3][0], acc[3][1], acc[3][2]);
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                                        _mm256_permute2f128_ps(u0, u1, 0x31)));
    _mm_storeu_ps(out + 8, _mm_add_ps(_mm256_castps256_ps128(u2), _mm256_extractf128_ps(u2, 1)));
}

/* Columns [t NB, (t + 1) NB) of C for every row, then their epilogue. */
static void run_task(void *ctx, int64_t t, int worker) {
    (void)worker;
    const skinny_job *j = ctx;
    const hetrun_op_desc *d = j->d;
    const int64_t m = d->m, n = d->n, k = d->k;
    const int64_t j0 = t * NB, j1 = j0 + NB < n ? j0 + NB : n;
    const float alpha = (float)d->alpha, beta = (float)d->beta;
    for (int64_t q0 = j0; q0 < j1; q0 += 3) {
        const int nq = j1 - q0 < 3 ? (int)(j1 - q0) : 3;
        const float *b[3], *next[3];
        for (int q = 0; q < 3; q++) {
            b[q] = j->b + (q0 + (q < nq ? q : 0)) * j->ldb;
            next[q] = j->b + (q0 + 3 + q < n ? q0 + 3 + q : q0) * j->ldb;
        }
        for (int64_t r0 = 0; r0 < m; r0 += 4) {
            const int nr = m - r0 < 4 ? (int)(m - r0) : 4;
            const float *a[4];
            float dot[12]; /* row r, column q at 3 r + q */
            for (int r = 0; r < 4; r++)
                a[r] = j->a + (r0 + (r < nr ? r : 0)) * j->lda;
            tile(a, b, r0 == 0 ? next : NULL, k, dot); /* the first pass streams B */
            for (int r = 0; r < nr; r++) {
                float *c = j->c + (r0 + r) * j->ldc + q0;
                for (int q = 0; q < nq; q++) /* beta 0 never reads C (it may hold NaN) */
                    c[q] = alpha * dot[3 * r + q] + (beta != 0.0f ? beta * c[q] : 0.0f);
            }
        }
    }
    for (int64_t i = 0; i < m; i++) {
        float *row = j->c + i * j->ldc + j0;
        if (j->bias) hetrun_cpu_bias_add_f32(row, j->bias + j0, row, 1, j1 - j0);
        if (j->aux)
            for (int64_t q = j0; q < j1; q++)
                j->aux[i * n + q] = row[q - j0];
        if (d->act != HETRUN_ACT_IDENTITY) hetrun_cpu_act_forward_f32(d->act, row, row, j1 - j0);
    }
}

void cpu_skinny_run(const hetrun_op_desc *d, void *const *p) {
    skinny_job j = {.d = d,
                    .a = p[0],
                    .b = p[1],
                    .bias = p[2],
                    .c = p[3],
                    .aux = p[4],
                    .lda = d->lda ? d->lda : d->k,
                    .ldb = d->ldb ? d->ldb : d->k,
                    .ldc = d->ldc ? d->ldc : d->n};
    if (d->m < 1 || d->n < 1) return;
    /* below ~2 MFLOP (~30 us on one core) waking a helper costs about what it saves */
    const int small = (double)d->m * (double)d->n * (double)d->k < (double)(1 << 20);
    hetrun_cpu_parallel_upto((d->n + NB - 1) / NB, small ? 1 : hetrun_cpu_threads(), run_task, &j);
}
