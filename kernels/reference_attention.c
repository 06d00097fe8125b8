/* Reference scaled-dot-product attention, forward and backward, in double: the definition
 * every backend's attention (fused or not) is checked against. One (batch, head) at a time;
 * operand layout and masking rules are documented on HETRUN_OP_ATTENTION_FORWARD (ops.h). */
#include <math.h>
#include <stdlib.h>

#include "catalogue.h"
#include "reference.h"

#define LD(p, t, i) hetrun_load_as_double((p), (t), (uint64_t)(i))
#define ST(p, t, i, v) hetrun_store_from_double((p), (t), (uint64_t)(i), (v))

/* Where (batch b, token i, head h) starts in each operand role. */
typedef struct attn_layout {
    int64_t ldq, bsq, ldk, bsk, ldo, bso;
    int64_t heads, lq, lk, dim, batch;
} attn_layout;

static attn_layout layout_of(const hetrun_op_desc *d) {
    attn_layout l;
    hetrun_attention_geometry(d, 'q', &l.ldq, &l.bsq);
    hetrun_attention_geometry(d, 'k', &l.ldk, &l.bsk);
    hetrun_attention_geometry(d, 'o', &l.ldo, &l.bso);
    l.heads = d->heads > 1 ? d->heads : 1;
    l.batch = d->batch > 1 ? d->batch : 1;
    l.lq = d->m;
    l.lk = d->n;
    l.dim = d->k;
    return l;
}

/* Whether query i may attend to key j in batch entry b. */
static int kept(const hetrun_op_desc *d, const int32_t *mask, int64_t b, int64_t i, int64_t j) {
    if ((d->flags & HETRUN_OP_CAUSAL) && j > i + (d->n - d->m)) return 0;
    if ((d->flags & HETRUN_OP_KEY_PADDING_MASK) && mask[b * d->n + j] == 0) return 0;
    return 1;
}

/* Scores alpha * q_i . k_j for every kept j of query row i into s[] (-inf when masked);
 * returns the row maximum (-inf when nothing is kept). */
static double score_row(const hetrun_op_desc *d, const attn_layout *l, void *const *a, int64_t b,
                        int64_t h, int64_t i, double *s) {
    const hetrun_dtype t = (hetrun_dtype)d->dtype;
    double mx = -INFINITY;
    for (int64_t j = 0; j < l->lk; j++) {
        if (!kept(d, a[3], b, i, j)) {
            s[j] = -INFINITY;
            continue;
        }
        double dot = 0.0;
        for (int64_t e = 0; e < l->dim; e++)
            dot += LD(a[0], t, b * l->bsq + i * l->ldq + h * l->dim + e) *
                   LD(a[1], t, b * l->bsk + j * l->ldk + h * l->dim + e);
        s[j] = d->alpha * dot;
        if (s[j] > mx) mx = s[j];
    }
    return mx;
}

void hetrun_ref_attention_forward(const hetrun_op_desc *d, void *const *a) {
    const hetrun_dtype t = (hetrun_dtype)d->dtype;
    const attn_layout l = layout_of(d);
    double *s = malloc((size_t)l.lk * sizeof *s);
    if (!s) abort(); /* reference on test-sized problems only */
    for (int64_t b = 0; b < l.batch; b++)
        for (int64_t h = 0; h < l.heads; h++)
            for (int64_t i = 0; i < l.lq; i++) {
                double mx = score_row(d, &l, a, b, h, i, s), sum = 0.0;
                for (int64_t j = 0; j < l.lk; j++)
                    sum += mx == -INFINITY ? 0.0 : exp(s[j] - mx);
                for (int64_t e = 0; e < l.dim; e++) {
                    double o = 0.0;
                    for (int64_t j = 0; j < l.lk && sum > 0.0; j++)
                        if (s[j] != -INFINITY)
                            o += exp(s[j] - mx) / sum *
                                 LD(a[2], t, b * l.bsk + j * l.ldk + h * l.dim + e);
                    ST(a[4], t, b * l.bso + i * l.ldo + h * l.dim + e, o);
                }
                ST(a[5], HETRUN_F32, (b * l.heads + h) * l.lq + i,
                   sum > 0.0 ? mx + log(sum) : -INFINITY);
            }
    free(s);
}

/* With P = exp(S - lse) and D_i = dO_i . O_i:
 *   dV_j = sum_i P_ij dO_i;  dP_ij = dO_i . V_j;  dS_ij = P_ij (dP_ij - D_i);
 *   dQ_i = alpha sum_j dS_ij K_j;  dK_j = alpha sum_i dS_ij Q_i. */
void hetrun_ref_attention_backward(const hetrun_op_desc *d, void *const *a) {
    const hetrun_dtype t = (hetrun_dtype)d->dtype;
    const attn_layout l = layout_of(d);
    double *s = malloc((size_t)l.lk * sizeof *s);
    double *dq = malloc((size_t)(l.lq * l.dim) * sizeof *dq);
    double *dk = malloc((size_t)(l.lk * l.dim) * sizeof *dk);
    double *dv = malloc((size_t)(l.lk * l.dim) * sizeof *dv);
    if (!s || !dq || !dk || !dv) abort();
    for (int64_t b = 0; b < l.batch; b++)
        for (int64_t h = 0; h < l.heads; h++) {
            for (int64_t x = 0; x < l.lq * l.dim; x++)
                dq[x] = 0.0;
            for (int64_t x = 0; x < l.lk * l.dim; x++)
                dk[x] = dv[x] = 0.0;
            for (int64_t i = 0; i < l.lq; i++) {
                const double lse = LD(a[6], HETRUN_F32, (b * l.heads + h) * l.lq + i);
                if (lse == -INFINITY) continue; /* nothing kept: zero gradients */
                score_row(d, &l, a, b, h, i, s);
                const int64_t qo = b * l.bsq + i * l.ldq + h * l.dim;
                const int64_t oo = b * l.bso + i * l.ldo + h * l.dim;
                double di = 0.0;
                for (int64_t e = 0; e < l.dim; e++)
                    di += LD(a[5], t, oo + e) * LD(a[4], t, oo + e);
                for (int64_t j = 0; j < l.lk; j++) {
                    if (s[j] == -INFINITY) continue;
                    const int64_t ko = b * l.bsk + j * l.ldk + h * l.dim;
                    double p = exp(s[j] - lse), dp = 0.0;
                    for (int64_t e = 0; e < l.dim; e++) {
                        double go = LD(a[5], t, oo + e);
                        dv[j * l.dim + e] += p * go;
                        dp += go * LD(a[2], t, ko + e);
                    }
                    double ds = p * (dp - di) * d->alpha;
                    for (int64_t e = 0; e < l.dim; e++) {
                        dq[i * l.dim + e] += ds * LD(a[1], t, ko + e);
                        dk[j * l.dim + e] += ds * LD(a[0], t, qo + e);
                    }
                }
            }
            for (int64_t i = 0; i < l.lq; i++)
                for (int64_t e = 0; e < l.dim; e++)
                    ST(a[7], t, b * l.bsq + i * l.ldq + h * l.dim + e, dq[i * l.dim + e]);
            for (int64_t j = 0; j < l.lk; j++)
                for (int64_t e = 0; e < l.dim; e++) {
                    ST(a[8], t, b * l.bsk + j * l.ldk + h * l.dim + e, dk[j * l.dim + e]);
                    ST(a[9], t, b * l.bsk + j * l.ldk + h * l.dim + e, dv[j * l.dim + e]);
                }
        }
    free(s);
    free(dq);
    free(dk);
    free(dv);
}
