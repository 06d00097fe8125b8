/* Constant-operand GEMM (see cpu_packed.h): B packed once into panels, a 6 x 16 register
 * tile over them.
 *
 * Panel layout: panel j holds op(B)'s columns [16 j, 16 j + 16) as k rows of 16 floats (the
 * last panel zero-padded), so a k step of the kernel is two aligned loads; k is walked in
 * blocks of 256 (16 KB of a panel, which stays in L1 while every row group passes over it).
 * A task is one panel for a block of up to 96 rows: its 16 columns are summed in a small
 * accumulator, then the epilogue (alpha, beta, bias, aux, activation) runs on them while they
 * are in cache. */
#include "cpu_packed.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_blas.h"
#include "cpu_skinny.h"
#include "kernels/catalogue.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/cpu_parallel.h"

#define PANEL 16   /* columns per panel: two AVX registers */
#define ROWS 6     /* rows per register tile: 12 accumulators + 2 panel loads + 1 broadcast */
#define KBLOCK 256 /* k per block: 16 KB of a panel */
#define RBLOCK 96  /* rows per task: an A block of 96 KB per k block, in L2 */

/* One packed copy: which bytes of its buffer it came from and how they were read. */
typedef struct cpu_packed {
    struct cpu_packed *next;
    uint64_t offset, span; /* B's bytes in the buffer: [offset, offset + span) */
    int64_t n, k, ldb;
    int trans;      /* B stored n x k (HETRUN_OP_TRANS_B) rather than k x n */
    uint32_t dtype; /* B's dtype as read (the panels are fp32 either way) */
    uint64_t bytes;
    float *panels; /* ceil(n / 16) panels of k x 16 */
} cpu_packed;

/* Guards every buffer's list and the total below: two queues may share a constant B. Held
 * while packing, so a second caller waits for the panels rather than making its own. */
static pthread_mutex_t packed_lock = PTHREAD_MUTEX_INITIALIZER;
/* Bytes of all packed copies, and the most they may take: a copy is a second (for fp16/bf16
 * weights a third) copy of the weights, and a speed-up must never run a node out of memory.
 * HETRUN_CPU_PACKED_MB, else a quarter of the physical memory; past it, weights run as
 * stored (the BLAS or the few-row tiles), said once in the log. */
static uint64_t packed_total, packed_budget;
static int budget_said;

static uint64_t budget(void) {
    if (!packed_budget) {
        const char *mb = getenv("HETRUN_CPU_PACKED_MB");
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
        packed_budget = mb && *mb               ? (uint64_t)strtoull(mb, NULL, 10) << 20
                        : pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page / 4
                                                : (uint64_t)1 << 30;
        if (!packed_budget) packed_budget = 1; /* HETRUN_CPU_PACKED_MB=0: never pack */
    }
    return packed_budget;
}

int cpu_packed_takes(const hetrun_op_desc *d) {
    const int narrow = d->dtype == HETRUN_F16 || d->dtype == HETRUN_BF16;
    return (d->flags & HETRUN_OP_CONST_B) &&
           (d->kind == HETRUN_OP_GEMM || d->kind == HETRUN_OP_GEMM_BIAS_ACT) &&
           (d->dtype == HETRUN_F32 || narrow) &&
           (d->out_dtype == d->dtype || d->out_dtype == HETRUN_F32) &&
           cpu_few_row_shape(d, CPU_PACKED_MAX_ROWS);
}

static int64_t ldb_of(const hetrun_op_desc *d) {
    return d->ldb ? d->ldb : (d->flags & HETRUN_OP_TRANS_B) ? d->k : d->n;
}

static void pack(const float *b, cpu_packed *p) {
    const int64_t n = p->n, k = p->k, ldb = p->ldb;
    for (int64_t j0 = 0; j0 < n; j0 += PANEL) {
        float *dst = p->panels + (j0 / PANEL) * k * PANEL;
        const int cols = n - j0 < PANEL ? (int)(n - j0) : PANEL;
        for (int64_t e = 0; e < k; e++)
            for (int c = 0; c < PANEL; c++)
                dst[e * PANEL + c] = c >= cols  ? 0.0f
                                     : p->trans ? b[(j0 + c) * ldb + e]
                                                : b[e * ldb + j0 + c];
    }
}

/* The panels of `d`'s B at `b`, made now if none match (packed_lock held). */
static cpu_packed *find_or_pack(const hetrun_op_desc *d, hetrun_tensor b, const void *host) {
    const int trans = (d->flags & HETRUN_OP_TRANS_B) != 0;
    const int64_t ldb = ldb_of(d);
    for (cpu_packed *p = b.buffer->packed; p; p = p->next)
        if (p->offset == b.offset && p->n == d->n && p->k == d->k && p->ldb == ldb &&
            p->trans == trans && p->dtype == d->dtype)
            return p;
    const uint64_t bytes =
        (uint64_t)((d->n + PANEL - 1) / PANEL) * PANEL * (uint64_t)d->k * sizeof(float);
    if (packed_total + bytes > budget()) {
        if (!budget_said) {
            budget_said = 1;
            cpu_log(HETRUN_LOG_WARN,
                    "packed copies of constant weights reached HETRUN_CPU_PACKED_MB's %llu MB: "
                    "further weights run as stored (slower, no extra memory)",
                    (unsigned long long)(budget() >> 20));
        }
        return NULL;
    }
    cpu_packed *p = malloc(sizeof *p);
    if (!p) return NULL;
    *p = (cpu_packed){.offset = b.offset,
                      .span = hetrun_op_arg_bytes(d, 1),
                      .n = d->n,
                      .k = d->k,
                      .ldb = ldb,
                      .trans = trans,
                      .dtype = d->dtype,
                      .bytes = bytes};
    void *mem = NULL;
    if (posix_memalign(&mem, 64, (size_t)p->bytes) != 0) {
        free(p);
        return NULL;
    }
    p->panels = mem;
    if (d->dtype == HETRUN_F32) {
        pack(host, p);
    } else { /* fp16/bf16 weights: widened once (exactly) for the fp32 kernel */
        const uint64_t count = hetrun_op_arg_elements(d, 1);
        float *wide = malloc((size_t)count * sizeof *wide);
        if (!wide) {
            free(mem);
            free(p);
            return NULL;
        }
        cpu_convert(host, (int)d->dtype, wide, HETRUN_F32, count);
        pack(wide, p);
        free(wide);
    }
    cpu_mem_account((int64_t)p->bytes);
    packed_total += p->bytes;
    p->next = b.buffer->packed;
    __atomic_store_n(&b.buffer->packed, p, __ATOMIC_RELEASE); /* cpu_packed_drop peeks unlocked */
    return p;
}

void cpu_packed_drop(hetrun_buffer *buf, uint64_t offset, uint64_t bytes) {
    if (!buf || !__atomic_load_n(&buf->packed, __ATOMIC_RELAXED)) return; /* the common case */
    pthread_mutex_lock(&packed_lock);
    for (cpu_packed **link = &buf->packed; *link;) {
        cpu_packed *p = *link;
        const int overlaps =
            bytes == UINT64_MAX || (offset < p->offset + p->span && p->offset < offset + bytes);
        if (!overlaps) {
            link = &p->next;
            continue;
        }
        __atomic_store_n(link, p->next, __ATOMIC_RELEASE);
        cpu_mem_account(-(int64_t)p->bytes);
        packed_total -= p->bytes;
        free(p->panels);
        free(p);
    }
    pthread_mutex_unlock(&packed_lock);
}

/* acc[r][0..16) += A[r][0..kl) P[0..kl)[0..16) for NR rows: NR x 2 accumulators stay in
 * registers, one broadcast of A per row and k step. always_inline with a constant NR makes
 * one unrolled kernel per row count. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
tile(const int NR, const float *a, int64_t lda, const float *p, int64_t kl, float *acc) {
    __m256 c[ROWS][2];
    for (int r = 0; r < NR; r++) {
        c[r][0] = _mm256_loadu_ps(acc + r * PANEL);
        c[r][1] = _mm256_loadu_ps(acc + r * PANEL + 8);
    }
    for (int64_t e = 0; e < kl; e++) {
        _mm_prefetch((const char *)(p + e * PANEL + 256), _MM_HINT_T0); /* 1 KB ahead */
        const __m256 b0 = _mm256_load_ps(p + e * PANEL), b1 = _mm256_load_ps(p + e * PANEL + 8);
        for (int r = 0; r < NR; r++) {
            const __m256 x = _mm256_broadcast_ss(a + r * lda + e);
            c[r][0] = _mm256_fmadd_ps(x, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(x, b1, c[r][1]);
        }
    }
    for (int r = 0; r < NR; r++) {
        _mm256_storeu_ps(acc + r * PANEL, c[r][0]);
        _mm256_storeu_ps(acc + r * PANEL + 8, c[r][1]);
    }
}

__attribute__((target("avx2,fma"))) static void tile_rows(int nr, const float *a, int64_t lda,
                                                          const float *p, int64_t kl, float *acc) {
    switch (nr) {
    case 1: tile(1, a, lda, p, kl, acc); break;
    case 2: tile(2, a, lda, p, kl, acc); break;
    case 3: tile(3, a, lda, p, kl, acc); break;
    case 4: tile(4, a, lda, p, kl, acc); break;
    case 5: tile(5, a, lda, p, kl, acc); break;
    default: tile(6, a, lda, p, kl, acc); break;
    }
}

typedef struct packed_job {
    const hetrun_op_desc *d;
    const cpu_packed *pk;
    const float *a, *bias;
    float *c, *aux;
    int64_t lda, ldc, npanels;
} packed_job;

/* Rows [i0, i0 + m) of the task's columns: C = act(alpha acc + beta C + bias), aux the value
 * before act. In vectors, masked for a last partial panel: scalar stores read back by the
 * vector loads of the bias and activation passes stalled on store forwarding (20% of a
 * batch-1 MiniLM request in perf). */
__attribute__((target("avx2,fma"))) static void
epilogue(const packed_job *j, float *acc, int64_t i0, int64_t m, int64_t j0, int cols) {
    const hetrun_op_desc *d = j->d;
    const __m256 alpha = _mm256_set1_ps((float)d->alpha), beta = _mm256_set1_ps((float)d->beta);
    const int read_c = d->beta != 0.0; /* beta 0 never reads C (it may hold NaN) */
    const int act = d->kind == HETRUN_OP_GEMM_BIAS_ACT && d->act != HETRUN_ACT_IDENTITY;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask[2] = {_mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane),
                             _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane)};
    __m256 bias[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int h = 0; h < 2 && j->bias; h++)
        bias[h] = _mm256_maskload_ps(j->bias + j0 + 8 * h, mask[h]);
    for (int64_t r = 0; r < m; r++) {
        float *row = j->c + (i0 + r) * j->ldc + j0, *v = acc + r * PANEL;
        for (int h = 0; h < 2; h++) {
            __m256 x = _mm256_mul_ps(alpha, _mm256_load_ps(v + 8 * h));
            if (read_c) x = _mm256_fmadd_ps(beta, _mm256_maskload_ps(row + 8 * h, mask[h]), x);
            if (j->bias) x = _mm256_add_ps(x, bias[h]);
            _mm256_store_ps(v + 8 * h, x);
            if (j->aux) _mm256_maskstore_ps(j->aux + (i0 + r) * d->n + j0 + 8 * h, mask[h], x);
            if (!act) _mm256_maskstore_ps(row + 8 * h, mask[h], x);
        }
        if (act) hetrun_cpu_act_forward_f32(d->act, v, row, cols);
    }
}

/* Task t: panel t % npanels (columns [16 p, 16 p + 16) of C) for row block t / npanels, then
 * their epilogue. Consecutive tasks share a row block, so each thread's A block stays in its
 * L2 while the panels stream past. */
static void run_panel(void *ctx, int64_t t, int worker) {
    (void)worker;
    const packed_job *j = ctx;
    const hetrun_op_desc *d = j->d;
    const int64_t n = d->n, k = d->k, pj = t % j->npanels, i0 = t / j->npanels * RBLOCK;
    const int64_t m = d->m - i0 < RBLOCK ? d->m - i0 : RBLOCK, j0 = pj * PANEL;
    const int cols = n - j0 < PANEL ? (int)(n - j0) : PANEL;
    const float *panel = j->pk->panels + pj * k * PANEL, *a = j->a + i0 * j->lda;
    float acc[RBLOCK * PANEL] __attribute__((aligned(64)));
    memset(acc, 0, (size_t)m * PANEL * sizeof *acc);
    for (int64_t k0 = 0; k0 < k; k0 += KBLOCK) {
        const int64_t kl = k - k0 < KBLOCK ? k - k0 : KBLOCK;
        for (int64_t r0 = 0; r0 < m; r0 += ROWS)
            tile_rows(m - r0 < ROWS ? (int)(m - r0) : ROWS, a + r0 * j->lda + k0, j->lda,
                      panel + k0 * PANEL, kl, acc + r0 * PANEL);
    }
    epilogue(j, acc, i0, m, j0, cols);
}

/* Rows of `rows` x `cols` elements between dtypes, row strides `ld_from` and `ld_to`. */
static void cast_rows(const void *src, int from, int64_t ld_from, void *dst, int to, int64_t ld_to,
                      int64_t rows, int64_t cols) {
    const size_t sf = hetrun_dtype_size((hetrun_dtype)from),
                 st = hetrun_dtype_size((hetrun_dtype)to);
    for (int64_t i = 0; i < rows; i++)
        cpu_convert((const char *)src + (size_t)(i * ld_from) * sf, from,
                    (char *)dst + (size_t)(i * ld_to) * st, to, (uint64_t)cols);
}

int cpu_packed_run(const hetrun_op_desc *d, hetrun_tensor b, void *const *p, void *ws) {
    pthread_mutex_lock(&packed_lock);
    const cpu_packed *pk = find_or_pack(d, b, p[1]);
    pthread_mutex_unlock(&packed_lock);
    if (!pk) return 0; /* over the budget or out of memory: the caller runs B as stored */
    const int64_t m = d->m, n = d->n, k = d->k, lda = d->lda ? d->lda : k,
                  ldc = d->ldc ? d->ldc : n;
    packed_job j = {.d = d,
                    .pk = pk,
                    .a = p[0],
                    .bias = p[2],
                    .c = p[3],
                    .aux = p[4],
                    .lda = lda,
                    .ldc = ldc,
                    .npanels = (n + PANEL - 1) / PANEL};
    /* fp16/bf16: A widened into the workspace; a narrow C, bias and aux go through fp32
     * copies there too, rounded once at the end (the workspace is cpu_ops.c's, sized for the
     * widening path, which needs more) */
    const int in = (int)d->dtype, out = (int)d->out_dtype, narrow_out = out != HETRUN_F32;
    float *w = ws;
    if (in != HETRUN_F32) {
        cast_rows(p[0], in, lda, w, HETRUN_F32, k, m, k);
        j.a = w, j.lda = k, w += m * k;
    }
    if (narrow_out) {
        j.c = w, j.ldc = n, w += m * n;
        if (d->beta != 0.0) cast_rows(p[3], out, ldc, j.c, HETRUN_F32, n, m, n);
        if (p[2]) cpu_convert(p[2], out, w, HETRUN_F32, (uint64_t)n), j.bias = w, w += n;
        if (p[4]) j.aux = w;
    }
    /* below ~2 MFLOP (~30 us on one core) waking a helper costs about what it saves */
    const int small = (double)m * (double)n * (double)k < (double)(1 << 20);
    hetrun_cpu_parallel_upto(j.npanels * ((m + RBLOCK - 1) / RBLOCK),
                             small ? 1 : hetrun_cpu_threads(), run_panel, &j);
    if (narrow_out) { /* C's rows only: the padding between them is not C */
        cast_rows(j.c, HETRUN_F32, n, p[3], out, ldc, m, n);
        if (p[4]) cpu_convert(j.aux, HETRUN_F32, p[4], out, (uint64_t)(m * n));
    }
    return 1;
}
