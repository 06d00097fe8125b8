/* GEMM (batched too) on the CPU through the BLAS loaded by cpu_blas.c. fp16 and bf16 accumulate
 * in fp32: bf16 goes to the native bf16 GEMM cpu_blas.c found and self-checked (cblas_sbgemm or
 * oneDNN's), else both are widened to fp32 for one SGEMM and rounded once. int8 runs exactly
 * in fp64. */
#include <immintrin.h>

#include "cpu_blas.h"
#include "kernels/cpu/cpu_parallel.h"
#include "kernels/catalogue.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/half.h"

/* Entries of a batched GEMM: 1 for a 1.0 descriptor, which has no `batch`. */
static int64_t batch_of(const hetrun_op_desc *d) {
    return d->struct_size >= HETRUN_OP_DESC_SIZE_V1_1 && d->batch > 1 ? d->batch : 1;
}

/* Elements of one batch entry's A, B, C including leading-dimension padding. */
static void gemm_spans(const hetrun_op_desc *d, uint64_t span[3]) {
    hetrun_op_desc one = *d;
    if (one.struct_size >= HETRUN_OP_DESC_SIZE_V1_1) one.batch = 1;
    for (int a = 0; a < 3; a++)
        span[a] = hetrun_op_arg_elements(&one, a);
}

/* Widening scratch of one batch entry, in bytes (fp32 copies; fp64 for exact int8). */
static uint64_t entry_workspace(const hetrun_op_desc *d) {
    uint64_t s[3];
    gemm_spans(d, s);
    if (d->dtype == HETRUN_F16 || d->dtype == HETRUN_BF16)
        return (s[0] + s[1] + (d->out_dtype == HETRUN_F32 ? 0 : s[2])) * sizeof(float);
    if (d->dtype == HETRUN_I8) return (s[0] + s[1] + s[2]) * sizeof(double);
    return 0;
}

/* Threads that take batch entries side by side (each entry then runs on one BLAS thread),
 * or 1 to run the entries one after another, each on all of the BLAS's threads. Side by side
 * saves the BLAS a thread synchronisation per entry, which dominates small entries; large
 * entries split well on their own, so they go side by side only when the entries divide
 * evenly over the threads (or are many), else a thread would idle (bench/cpu/batched.sh). */
static int batch_workers(const hetrun_op_desc *d) {
    const int64_t batch = batch_of(d);
    const int threads = cpu_blas_lib.threads;
    const double flops = 2.0 * (double)d->m * (double)d->n * (double)d->k;
    /* oneDNN's bf16 GEMM threads through OpenMP, which set_num_threads does not reach. */
    const int openmp = d->dtype == HETRUN_BF16 && cpu_blas_lib.bf16_lib && cpu_blas_lib.sbgemm;
    const int large = flops > 2.0 * 512 * 512 * 512;
    if (batch < 2 || threads < 2 || !cpu_blas_lib.set_num_threads || openmp ||
        (large && batch % threads != 0 && batch < 4 * threads))
        return 1;
    return batch < threads ? (int)batch : threads;
}

uint64_t cpu_gemm_workspace(const hetrun_op_desc *d) {
    if (d->kind != HETRUN_OP_GEMM) return 0;
    /* Sized for the widening path whichever path runs (the answer must not change with the
     * library a process happened to load), once per thread taking batch entries. */
    return entry_workspace(d) * (uint64_t)batch_workers(d);
}

/* fp16 <-> fp32 with F16C, 8 elements per instruction (the scalar conversion is branchy and
 * does not vectorise); both round to nearest even, widening is exact. */
__attribute__((target("avx,f16c"))) static void f16_widen_f16c(const uint16_t *src, float *dst,
                                                               uint64_t n) {
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = hetrun_f16_to_f32(src[i]);
}

__attribute__((target("avx,f16c"))) static void f16_narrow_f16c(const float *src, uint16_t *dst,
                                                                uint64_t n) {
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = hetrun_f32_to_f16(src[i]);
}

static int have_f16c(void) {
    static int known, yes;
    if (!known) {
        __builtin_cpu_init();
        yes = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
        known = 1;
    }
    return yes;
}

void cpu_convert(const void *src, int from, void *dst, int to, uint64_t count) {
    if (from == HETRUN_F16 && to == HETRUN_F32 && have_f16c())
        f16_widen_f16c(src, dst, count);
    else if (from == HETRUN_F32 && to == HETRUN_F16 && have_f16c())
        f16_narrow_f16c(src, dst, count);
    else
        hetrun_cpu_cast(src, from, dst, to, (int64_t)count);
}

static int lead(int64_t ld, int64_t cols) {
    return (int)(ld ? ld : cols);
}

static void gemm_one(const hetrun_op_desc *d, void *const *p, void *ws) {
    const cpu_blas *L = &cpu_blas_lib;
    const int ta = (d->flags & HETRUN_OP_TRANS_A) ? CPU_TRANS : CPU_NO_TRANS;
    const int tb = (d->flags & HETRUN_OP_TRANS_B) ? CPU_TRANS : CPU_NO_TRANS;
    const int m = (int)d->m, n = (int)d->n, k = (int)d->k;
    const int lda = lead(d->lda, ta == CPU_TRANS ? m : k);
    const int ldb = lead(d->ldb, tb == CPU_TRANS ? k : n);
    const int ldc = lead(d->ldc, n);
    const float alpha = (float)d->alpha, beta = (float)d->beta;
    uint64_t s[3];
    gemm_spans(d, s);
    switch (d->dtype) {
    case HETRUN_F32:
        L->sgemm(CPU_ROW_MAJOR, ta, tb, m, n, k, alpha, p[0], lda, p[1], ldb, beta, p[2], ldc);
        break;
    case HETRUN_F64:
        L->dgemm(CPU_ROW_MAJOR, ta, tb, m, n, k, d->alpha, p[0], lda, p[1], ldb, d->beta, p[2],
                 ldc);
        break;
    case HETRUN_F16:
    case HETRUN_BF16: {
        const int native = d->dtype == HETRUN_BF16 && L->sbgemm;
        float *a = ws, *b = a + s[0], *c = d->out_dtype == HETRUN_F32 ? p[2] : b + s[1];
        if (d->out_dtype != HETRUN_F32 && d->beta != 0.0)
            cpu_convert(p[2], (int)d->out_dtype, c, HETRUN_F32, s[2]);
        if (native) {
            L->sbgemm(CPU_ROW_MAJOR, ta, tb, m, n, k, alpha, p[0], lda, p[1], ldb, beta, c, ldc);
        } else {
            cpu_convert(p[0], (int)d->dtype, a, HETRUN_F32, s[0]);
            cpu_convert(p[1], (int)d->dtype, b, HETRUN_F32, s[1]);
            L->sgemm(CPU_ROW_MAJOR, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        }
        if (d->out_dtype != HETRUN_F32) /* C's rows only: the padding between them is not C */
            for (int64_t i = 0; i < d->m; i++)
                cpu_convert(c + i * ldc, HETRUN_F32, (uint16_t *)p[2] + i * ldc, (int)d->out_dtype,
                            (uint64_t)d->n);
        break;
    }
    case HETRUN_I8: { /* exact in fp64: |sum| <= k * 2^14 < 2^53 */
        double *a = ws, *b = a + s[0], *c = b + s[1];
        for (uint64_t i = 0; i < s[0]; i++)
            a[i] = ((const int8_t *)p[0])[i];
        for (uint64_t i = 0; i < s[1]; i++)
            b[i] = ((const int8_t *)p[1])[i];
        for (uint64_t i = 0; i < s[2]; i++)
            c[i] = d->beta != 0.0 ? ((int32_t *)p[2])[i] : 0.0;
        L->dgemm(CPU_ROW_MAJOR, ta, tb, m, n, k, 1.0, a, lda, b, ldb, d->beta, c, ldc);
        for (int64_t i = 0; i < d->m; i++)
            for (int64_t j = 0; j < d->n; j++)
                ((int32_t *)p[2])[i * ldc + j] = (int32_t)c[i * ldc + j];
        break;
    }
    default: break;
    }
}

typedef struct batch_job {
    const hetrun_op_desc *d;
    void *const *p;
    char *ws;
    uint64_t ws_per_worker;
} batch_job;

/* Batch entry `b`: operands at their batch strides; a broadcast operand (stride 0) is read
 * by every entry. */
static void run_entry(void *ctx, int64_t b, int worker) {
    const batch_job *j = ctx;
    const hetrun_dtype t[3] = {(hetrun_dtype)j->d->dtype, (hetrun_dtype)j->d->dtype,
                               (hetrun_dtype)j->d->out_dtype};
    void *q[3];
    for (int a = 0; a < 3; a++)
        q[a] = (char *)j->p[a] +
               (size_t)(b * (b ? hetrun_gemm_batch_stride(j->d, a) : 0)) * hetrun_dtype_size(t[a]);
    gemm_one(j->d, q, j->ws ? j->ws + (size_t)worker * j->ws_per_worker : NULL);
}

void cpu_gemm(const hetrun_op_desc *d, void *const *p, void *ws) {
    const int64_t batch = batch_of(d);
    batch_job job = {.d = d, .p = p, .ws = ws, .ws_per_worker = entry_workspace(d)};
    const int workers = batch_workers(d);
    if (workers > 1) {
        cpu_blas_lib.set_num_threads(1);
        hetrun_cpu_parallel_upto(batch, workers, run_entry, &job);
        cpu_blas_lib.set_num_threads(cpu_blas_lib.threads);
    } else {
        for (int64_t b = 0; b < batch; b++)
            run_entry(&job, b, 0);
    }
}
