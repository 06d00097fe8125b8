/* Row-wise transformer kernels: one row (or one fixed chunk) per task, so the pool can
 * spread them and the arithmetic order never depends on the thread count. Row statistics
 * accumulate in double, as the existing layernorm does. */
#include "transformer.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "cpu_parallel.h"

/* Rows per task: enough work (~64K elements) to pay for a hand-off. */
static int64_t rows_per_task(int64_t n) {
    int64_t r = (1 << 16) / (n > 0 ? n : 1);
    return r < 1 ? 1 : r;
}

typedef struct rows_ctx {
    const float *x, *gamma, *beta, *mean, *rstd, *dy, *yin;
    float *y, *dx, *mean_out, *rstd_out;
    int64_t m, n, chunk;
    float eps;
    int add;
} rows_ctx;

HETRUN_CLONES
static void ln_forward_rows(void *arg, int64_t t, int worker) {
    (void)worker;
    const rows_ctx *c = arg;
    const int64_t n = c->n, end = (t + 1) * c->chunk < c->m ? (t + 1) * c->chunk : c->m;
    for (int64_t i = t * c->chunk; i < end; i++) {
        const float *xr = c->x + i * n;
        double s = 0.0;
        for (int64_t j = 0; j < n; j++)
            s += xr[j];
        const double mu = s / (double)n;
        double v = 0.0;
        for (int64_t j = 0; j < n; j++)
            v += ((double)xr[j] - mu) * ((double)xr[j] - mu);
        const float rs = (float)(1.0 / sqrt(v / (double)n + c->eps)), mf = (float)mu;
        float *yr = c->y + i * n;
        for (int64_t j = 0; j < n; j++)
            yr[j] = (xr[j] - mf) * rs * c->gamma[j] + c->beta[j];
        c->mean_out[i] = mf;
        c->rstd_out[i] = rs;
    }
}

void hetrun_cpu_layernorm_forward_f32(const float *x, const float *gamma, const float *beta,
                                      float *y, float *mean, float *rstd, int64_t m, int64_t n,
                                      float eps) {
    rows_ctx c = {.x = x,
                  .gamma = gamma,
                  .beta = beta,
                  .y = y,
                  .mean_out = mean,
                  .rstd_out = rstd,
                  .m = m,
                  .n = n,
                  .eps = eps,
                  .chunk = rows_per_task(n)};
    hetrun_cpu_parallel((m + c.chunk - 1) / c.chunk, ln_forward_rows, &c);
}

/* dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma. */
HETRUN_CLONES
static void ln_backward_rows(void *arg, int64_t t, int worker) {
    (void)worker;
    const rows_ctx *c = arg;
    const int64_t n = c->n, end = (t + 1) * c->chunk < c->m ? (t + 1) * c->chunk : c->m;
    for (int64_t i = t * c->chunk; i < end; i++) {
        const float *xr = c->x + i * n, *dyr = c->dy + i * n;
        const float mu = c->mean[i], rs = c->rstd[i];
        double s1 = 0.0, s2 = 0.0;
        for (int64_t j = 0; j < n; j++) {
            const float g = dyr[j] * c->gamma[j];
            s1 += g;
            s2 += (double)g * ((xr[j] - mu) * rs);
        }
        const float a = (float)(s1 / (double)n), b = (float)(s2 / (double)n);
        float *dxr = c->dx + i * n;
        for (int64_t j = 0; j < n; j++) {
            const float v = rs * (dyr[j] * c->gamma[j] - a - (xr[j] - mu) * rs * b);
            dxr[j] = c->add ? dxr[j] + v : v;
        }
    }
}

/* dgamma and dbeta for a block of columns, rows in ascending order. */
#define COLS 256
typedef struct cols_ctx {
    const float *x, *mean, *rstd, *dy;
    float *dgamma, *dbeta;
    int64_t m, n;
    int add;
} cols_ctx;

HETRUN_CLONES
static void ln_param_cols(void *arg, int64_t t, int worker) {
    (void)worker;
    const cols_ctx *c = arg;
    const int64_t j0 = t * COLS, w = c->n - j0 < COLS ? c->n - j0 : COLS;
    double dg[COLS], db[COLS];
    for (int64_t j = 0; j < w; j++)
        dg[j] = db[j] = 0.0;
    for (int64_t i = 0; i < c->m; i++) {
        const float *xr = c->x + i * c->n + j0, *dyr = c->dy + i * c->n + j0;
        const float mu = c->mean[i], rs = c->rstd[i];
        for (int64_t j = 0; j < w; j++) {
            dg[j] += (double)(dyr[j] * ((xr[j] - mu) * rs));
            db[j] += (double)dyr[j];
        }
    }
    for (int64_t j = 0; j < w; j++) {
        c->dgamma[j0 + j] = (float)(dg[j] + (c->add ? (double)c->dgamma[j0 + j] : 0.0));
        c->dbeta[j0 + j] = (float)(db[j] + (c->add ? (double)c->dbeta[j0 + j] : 0.0));
    }
}

void hetrun_cpu_layernorm_backward_f32(const float *x, const float *gamma, const float *mean,
                                       const float *rstd, const float *dy, float *dx, float *dgamma,
                                       float *dbeta, int64_t m, int64_t n, int add_dx,
                                       int add_params) {
    cols_ctx p = {x, mean, rstd, dy, dgamma, dbeta, m, n, add_params};
    hetrun_cpu_parallel((n + COLS - 1) / COLS, ln_param_cols, &p);
    rows_ctx c = {.x = x,
                  .gamma = gamma,
                  .mean = mean,
                  .rstd = rstd,
                  .dy = dy,
                  .dx = dx,
                  .m = m,
                  .n = n,
                  .add = add_dx,
                  .chunk = rows_per_task(n)};
    hetrun_cpu_parallel((m + c.chunk - 1) / c.chunk, ln_backward_rows, &c);
}

HETRUN_CLONES
static void softmax_backward_rows(void *arg, int64_t t, int worker) {
    (void)worker;
    const rows_ctx *c = arg;
    const int64_t n = c->n, end = (t + 1) * c->chunk < c->m ? (t + 1) * c->chunk : c->m;
    for (int64_t i = t * c->chunk; i < end; i++) {
        const float *yr = c->yin + i * n, *dyr = c->dy + i * n;
        double dot = 0.0;
        for (int64_t j = 0; j < n; j++)
            dot += (double)(yr[j] * dyr[j]);
        const float d = (float)dot;
        float *dxr = c->dx + i * n;
        for (int64_t j = 0; j < n; j++) /* dx may alias dy: each element read before written */
            dxr[j] = yr[j] * (dyr[j] - d);
    }
}

void hetrun_cpu_softmax_backward_f32(const float *y, const float *dy, float *dx, int64_t m,
                                     int64_t n) {
    rows_ctx c = {.yin = y, .dy = dy, .dx = dx, .m = m, .n = n, .chunk = rows_per_task(n)};
    hetrun_cpu_parallel((m + c.chunk - 1) / c.chunk, softmax_backward_rows, &c);
}

typedef struct embed_ctx {
    const int32_t *ids;
    const int64_t *start, *order; /* backward: tokens of row r are order[start[r]..start[r+1]) */
    const float *src;
    float *dst;
    int64_t m, n, k, chunk;
    float alpha, beta;
    int add;
} embed_ctx;

HETRUN_CLONES
static void embed_forward_rows(void *arg, int64_t t, int worker) {
    (void)worker;
    const embed_ctx *c = arg;
    const int64_t n = c->n, end = (t + 1) * c->chunk < c->m ? (t + 1) * c->chunk : c->m;
    for (int64_t i = t * c->chunk; i < end; i++) {
        const int32_t id = c->ids[i];
        float *o = c->dst + i * n;
        if (id < 0 || id >= c->k) { /* an out-of-range id must not pass unnoticed */
            for (int64_t j = 0; j < n; j++)
                o[j] = NAN;
            continue;
        }
        const float *row = c->src + (int64_t)id * n;
        if (c->beta != 0.0f)
            for (int64_t j = 0; j < n; j++)
                o[j] = c->alpha * row[j] + c->beta * o[j];
        else
            for (int64_t j = 0; j < n; j++)
                o[j] = c->alpha * row[j];
    }
}

void hetrun_cpu_embedding_forward_f32(const int32_t *ids, const float *table, float *out, int64_t m,
                                      int64_t n, int64_t k, float alpha, float beta) {
    embed_ctx c = {.ids = ids,
                   .src = table,
                   .dst = out,
                   .m = m,
                   .n = n,
                   .k = k,
                   .alpha = alpha,
                   .beta = beta,
                   .chunk = rows_per_task(n)};
    hetrun_cpu_parallel((m + c.chunk - 1) / c.chunk, embed_forward_rows, &c);
}

/* Each table row sums its tokens in ascending token order: deterministic, no atomics. */
HETRUN_CLONES
static void embed_backward_rows(void *arg, int64_t t, int worker) {
    (void)worker;
    const embed_ctx *c = arg;
    const int64_t n = c->n, end = (t + 1) * c->chunk < c->k ? (t + 1) * c->chunk : c->k;
    for (int64_t r = t * c->chunk; r < end; r++) {
        float *o = c->dst + r * n;
        const int64_t first = c->start[r], last = c->start[r + 1];
        if (first == last) {
            if (!c->add) memset(o, 0, (size_t)n * sizeof *o);
            continue;
        }
        for (int64_t j0 = 0; j0 < n; j0 += COLS) {
            const int64_t w = n - j0 < COLS ? n - j0 : COLS;
            float acc[COLS];
            for (int64_t j = 0; j < w; j++)
                acc[j] = 0.0f;
            for (int64_t e = first; e < last; e++) {
                const float *g = c->src + c->order[e] * n + j0;
                for (int64_t j = 0; j < w; j++)
                    acc[j] += g[j];
            }
            for (int64_t j = 0; j < w; j++)
                o[j0 + j] = c->alpha * acc[j] + (c->add ? o[j0 + j] : 0.0f);
        }
    }
}

int hetrun_cpu_embedding_backward_f32(const int32_t *ids, const float *dout, float *dtable,
                                      int64_t m, int64_t n, int64_t k, float alpha, int add) {
    int64_t *start = calloc((size_t)k + 1, sizeof *start),
            *order = malloc((size_t)m * sizeof *order);
    if (!start || !order) {
        free(start);
        free(order);
        return -1;
    }
    for (int64_t i = 0; i < m; i++) /* counting sort by id, stable */
        if (ids[i] >= 0 && ids[i] < k) start[ids[i] + 1]++;
    for (int64_t r = 0; r < k; r++)
        start[r + 1] += start[r];
    for (int64_t i = 0; i < m; i++)
        if (ids[i] >= 0 && ids[i] < k) order[start[ids[i]]++] = i;
    for (int64_t r = k; r > 0; r--) /* the fill advanced each start to the next row's */
        start[r] = start[r - 1];
    start[0] = 0;
    embed_ctx c = {.start = start,
                   .order = order,
                   .src = dout,
                   .dst = dtable,
                   .m = m,
                   .n = n,
                   .k = k,
                   .alpha = alpha,
                   .add = add,
                   .chunk = rows_per_task(n)};
    hetrun_cpu_parallel((k + c.chunk - 1) / c.chunk, embed_backward_rows, &c);
    free(start);
    free(order);
    return 0;
}

/* Fixed chunks for the whole-tensor reductions: partial results combined in chunk order. */
#define CHUNK ((int64_t)1 << 16)
#define MAX_CHUNKS 4096

typedef struct reduce_ctx {
    const float *x;
    int64_t count, chunk;
    double part[MAX_CHUNKS];
} reduce_ctx;

HETRUN_CLONES
static void nonfinite_chunk(void *arg, int64_t t, int worker) {
    (void)worker;
    reduce_ctx *c = arg;
    const int64_t lo = t * c->chunk, hi = lo + c->chunk < c->count ? lo + c->chunk : c->count;
    int64_t bad = 0;
    for (int64_t i = lo; i < hi; i++)
        bad += !(fabsf(c->x[i]) <= FLT_MAX); /* NaN compares false, inf is above FLT_MAX */
    c->part[t] = (double)bad;
}

/* Chunk size so that there are at most MAX_CHUNKS chunks. */
static int64_t chunk_for(int64_t count) {
    int64_t chunk = CHUNK;
    while ((count + chunk - 1) / chunk > MAX_CHUNKS)
        chunk *= 2;
    return chunk;
}

int64_t hetrun_cpu_nonfinite_count_f32(const float *x, int64_t count) {
    reduce_ctx part, *c = &part;
    int64_t bad = 0;
    c->x = x;
    c->count = count;
    c->chunk = chunk_for(count);
    const int64_t chunks = (count + c->chunk - 1) / c->chunk;
    hetrun_cpu_parallel(chunks, nonfinite_chunk, c);
    for (int64_t t = 0; t < chunks; t++)
        bad += (int64_t)c->part[t];
    return bad;
}

HETRUN_CLONES
static void squares_chunk(void *arg, int64_t t, int worker) {
    (void)worker;
    reduce_ctx *c = arg;
    const int64_t lo = t * c->chunk, hi = lo + c->chunk < c->count ? lo + c->chunk : c->count;
    double lane[16] = {0};
    int64_t i = lo;
    for (; i + 16 <= hi; i += 16)
        for (int l = 0; l < 16; l++)
            lane[l] += (double)c->x[i + l] * (double)c->x[i + l];
    double s = 0.0;
    for (; i < hi; i++)
        s += (double)c->x[i] * (double)c->x[i];
    for (int l = 0; l < 16; l++)
        s += lane[l];
    c->part[t] = s;
}

double hetrun_cpu_sum_squares_f32(const float *x, int64_t count) {
    reduce_ctx part, *c = &part;
    double s = 0.0;
    c->x = x;
    c->count = count;
    c->chunk = chunk_for(count);
    const int64_t chunks = (count + c->chunk - 1) / c->chunk;
    hetrun_cpu_parallel(chunks, squares_chunk, c);
    for (int64_t t = 0; t < chunks; t++)
        s += c->part[t];
    return s;
}
