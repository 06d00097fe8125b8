/* Fused attention on the CPU: operand packing, ISA dispatch and threading around the
 * per-ISA block kernels of attention_body.h. The forward pass splits each (batch, head)
 * into query ranges when there are fewer (batch, head) pairs than threads; the backward
 * pass runs one (batch, head) per task, so dQ, dK and dV need no reduction and results do
 * not depend on the thread count. */
#include "attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_parallel.h"
#include "kernels/catalogue.h"
#include "kernels/half.h"

#define BQ 48  /* query rows per block, backward */
#define BQF 24 /* query rows per block, forward: finer causal edges, K and V stay in L2 */
#define BK 64  /* keys per block */

typedef struct attn_job {
    int dtype, causal;
    int64_t B, H, Lq, Lk, D, Dp, Lkp, Lqp, off; /* off = Lk - Lq (causal diagonal) */
    int64_t ldq, bsq, ldk, bsk, ldo, bso;
    float alpha;
    const void *q, *k, *v, *o, *dout;
    const int32_t *mask;
    const float *bias; /* B x Lkp: 0 for a kept key, -inf for a padded one; NULL: no mask */
    float *lse;
    void *out, *dq, *dk, *dv;
    int64_t qsplit; /* forward: query ranges per (batch, head) */
    float *scratch;
    int64_t per_worker; /* floats */
} attn_job;

/* One row of n elements of `t` at element offset `off` to fp32 and back; the dtype switch
 * sits outside the loops so each loop vectorises. */
static void load_row(const void *base, int t, int64_t off, int64_t n, float *dst) {
    if (t == HETRUN_F32) {
        memcpy(dst, (const float *)base + off, (size_t)n * sizeof *dst);
        return;
    }
    const uint16_t *h = (const uint16_t *)base + off;
    if (t == HETRUN_BF16)
        for (int64_t e = 0; e < n; e++)
            dst[e] = hetrun_bf16_to_f32(h[e]);
    else
        for (int64_t e = 0; e < n; e++)
            dst[e] = hetrun_f16_to_f32(h[e]);
}

static void store_row(void *base, int t, int64_t off, int64_t n, const float *src, float scale) {
    if (t == HETRUN_F32) {
        float *o = (float *)base + off;
        for (int64_t e = 0; e < n; e++)
            o[e] = src[e] * scale;
        return;
    }
    uint16_t *h = (uint16_t *)base + off;
    if (t == HETRUN_BF16)
        for (int64_t e = 0; e < n; e++)
            h[e] = hetrun_f32_to_bf16(src[e] * scale);
    else
        for (int64_t e = 0; e < n; e++)
            h[e] = hetrun_f32_to_f16(src[e] * scale);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")
#define VL 16
#define MR 12
#define SFX(x) x##_avx512
#include "attention_body.h"
#undef VL
#undef MR
#undef SFX
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#define VL 8
#define MR 6
#define SFX(x) x##_avx2
#include "attention_body.h"
#undef VL
#undef MR
#undef SFX
#pragma GCC pop_options
#define HAVE_X86_VARIANTS 1
#endif

#define VL 4
#define MR 6
#define SFX(x) x##_base
#include "attention_body.h"
#undef VL
#undef MR
#undef SFX

typedef struct variant {
    void (*forward)(const attn_job *, int64_t, int64_t, int64_t, int64_t, float *);
    void (*backward)(const attn_job *, int64_t, int64_t, float *);
    int64_t (*forward_floats)(const attn_job *);
    int64_t (*backward_floats)(const attn_job *);
    int nr; /* keys and head dim are padded to this */
} variant;

static const variant *pick(void) {
    static const variant base = {forward_unit_base, backward_unit_base, forward_floats_base,
                                 backward_floats_base, 8};
#ifdef HAVE_X86_VARIANTS
    static const variant v512 = {forward_unit_avx512, backward_unit_avx512, forward_floats_avx512,
                                 backward_floats_avx512, 32};
    static const variant v256 = {forward_unit_avx2, backward_unit_avx2, forward_floats_avx2,
                                 backward_floats_avx2, 16};
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        return &v512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &v256;
#endif
    return &base;
}

static int64_t round_up(int64_t x, int64_t m) {
    return (x + m - 1) / m * m;
}

/* Geometry, masks and scratch shared by both passes. Returns 0 or -1 (no memory). */
static int job_init(attn_job *j, const hetrun_op_desc *d, const variant *v, const int32_t *mask,
                    int backward) {
    memset(j, 0, sizeof *j);
    j->dtype = (int)d->dtype;
    j->causal = (d->flags & HETRUN_OP_CAUSAL) != 0;
    j->B = d->batch > 1 ? d->batch : 1;
    j->H = d->heads > 1 ? d->heads : 1;
    j->Lq = d->m;
    j->Lk = d->n;
    j->D = d->k;
    j->off = d->n - d->m;
    j->Dp = round_up(d->k, v->nr);
    j->Lkp = round_up(d->n, v->nr);
    j->Lqp = round_up(d->m, 16) + 16; /* room for a whole micro-tile past the last row */
    j->alpha = (float)d->alpha;
    hetrun_attention_geometry(d, 'q', &j->ldq, &j->bsq);
    hetrun_attention_geometry(d, 'k', &j->ldk, &j->bsk);
    hetrun_attention_geometry(d, 'o', &j->ldo, &j->bso);
    const int threads = hetrun_cpu_threads();
    const int64_t units = j->B * j->H;
    j->qsplit = 1;
    if (!backward && units < 2 * threads) {
        int64_t blocks = (j->Lq + BQF - 1) / BQF, want = (2 * threads + units - 1) / units;
        j->qsplit = want < blocks ? want : blocks;
    }
    int64_t per = backward ? v->backward_floats(j) : v->forward_floats(j);
    j->per_worker = round_up(per, 16);
    int64_t total = j->per_worker * threads + (mask ? j->B * j->Lkp : 0);
    j->scratch = aligned_alloc(64, (size_t)total * sizeof(float));
    if (!j->scratch) return -1;
    if (mask) {
        float *bias = j->scratch + j->per_worker * threads;
        for (int64_t b = 0; b < j->B; b++)
            for (int64_t c = 0; c < j->Lkp; c++)
                bias[b * j->Lkp + c] = c < j->Lk && mask[b * j->Lk + c] ? 0.0f : -INFINITY;
        j->mask = mask;
        j->bias = bias;
    }
    return 0;
}

typedef struct task_ctx {
    const attn_job *job;
    const variant *v;
} task_ctx;

static void forward_task(void *arg, int64_t t, int worker) {
    const task_ctx *c = arg;
    const attn_job *j = c->job;
    const int64_t unit = t / j->qsplit, part = t % j->qsplit;
    const int64_t blocks = (j->Lq + BQF - 1) / BQF;
    const int64_t lo = blocks * part / j->qsplit * BQF, hi = blocks * (part + 1) / j->qsplit * BQF;
    c->v->forward(j, unit / j->H, unit % j->H, lo, hi < j->Lq ? hi : j->Lq,
                  j->scratch + (int64_t)worker * j->per_worker);
}

static void backward_task(void *arg, int64_t t, int worker) {
    const task_ctx *c = arg;
    const attn_job *j = c->job;
    c->v->backward(j, t / j->H, t % j->H, j->scratch + (int64_t)worker * j->per_worker);
}

int hetrun_cpu_attention_forward(const hetrun_op_desc *d, void *const *a) {
    const variant *v = pick();
    attn_job j;
    const int32_t *mask = (d->flags & HETRUN_OP_KEY_PADDING_MASK) ? a[3] : NULL;
    if (job_init(&j, d, v, mask, 0) != 0) return -1;
    j.q = a[0];
    j.k = a[1];
    j.v = a[2];
    j.out = a[4];
    j.lse = a[5];
    task_ctx c = {&j, v};
    hetrun_cpu_parallel(j.B * j.H * j.qsplit, forward_task, &c);
    free(j.scratch);
    return 0;
}

int hetrun_cpu_attention_backward(const hetrun_op_desc *d, void *const *a) {
    const variant *v = pick();
    attn_job j;
    const int32_t *mask = (d->flags & HETRUN_OP_KEY_PADDING_MASK) ? a[3] : NULL;
    if (job_init(&j, d, v, mask, 1) != 0) return -1;
    j.q = a[0];
    j.k = a[1];
    j.v = a[2];
    j.o = a[4];
    j.dout = a[5];
    j.lse = a[6];
    j.dq = a[7];
    j.dk = a[8];
    j.dv = a[9];
    task_ctx c = {&j, v};
    hetrun_cpu_parallel(j.B * j.H, backward_task, &c);
    free(j.scratch);
    return 0;
}
