/* GPT-2-style decoder on a session's device through catalogue ops only (see gpt.h). */
#include "workloads/gpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/stats.h"

/* Tensor order inside a block (Hugging Face GPT-2 names). */
enum { LN1_W, LN1_B, QKV_W, QKV_B, PROJ_W, PROJ_B, LN2_W, LN2_B, FC_W, FC_B, FCP_W, FCP_B };
/* Tensor order after the blocks. */
enum { WTE, WPE, LNF_W, LNF_B };

static const char *const block_names[HETRUN_GPT_BLOCK_TENSORS] = {
    "ln_1.weight",        "ln_1.bias",        "attn.c_attn.weight", "attn.c_attn.bias",
    "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",        "ln_2.bias",
    "mlp.c_fc.weight",    "mlp.c_fc.bias",    "mlp.c_proj.weight",  "mlp.c_proj.bias"};

static const double LN_EPS = 1e-5;

static uint64_t align_bytes(uint64_t v) {
    return (v + 255u) / 256u * 256u;
}

static void add_tensor(hetrun_gpt *g, uint64_t *off, const char *name, int64_t d0, int64_t d1) {
    hetrun_param_tensor *t = &g->tensors[g->tensor_count++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = HETRUN_F32;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0, t->shape[1] = d1;
    t->count = (uint64_t)d0 * (uint64_t)(d1 ? d1 : 1);
    t->offset = *off;
    *off = hetrun_param_align(*off + t->count);
    g->real_params += t->count;
}

/* The parameter tensor `which` of block l (l < L) or of the head (l == L). */
static const hetrun_param_tensor *P(const hetrun_gpt *g, int64_t l, int which) {
    return &g->tensors[l * HETRUN_GPT_BLOCK_TENSORS + which];
}
static hetrun_tensor PT(const hetrun_gpt *g, hetrun_buffer *buf, int64_t l, int which) {
    return hetrun_tensor_at(buf, P(g, l, which)->offset * 4);
}
static hetrun_tensor A(const hetrun_gpt *g, uint64_t off) {
    return hetrun_tensor_at(g->act, off);
}
/* Residual stream i (0: embeddings; 2l+1: after block l's attention; 2l+2: after its MLP). */
static uint64_t RES(const hetrun_gpt *g, int64_t i) {
    return g->res +
           (uint64_t)i * align_bytes((uint64_t)(g->max_batch * g->cfg.context * g->cfg.width) * 4);
}

void hetrun_gpt_destroy(hetrun_session *s, hetrun_gpt *g) {
    free(g->drop_host);
    g->drop_host = NULL;
    hetrun_session_free(s, g->params, g->param_count * 4);
    hetrun_session_free(s, g->grads, g->param_count * 4);
    hetrun_session_free(s, g->state, 2 * g->param_count * 4);
    hetrun_session_free(s, g->act, g->act_bytes);
    hetrun_session_free(s, g->lowp, g->param_count * 2);
    g->params = g->grads = g->state = g->act = g->lowp = NULL;
}

static int fill(hetrun_session *s, hetrun_tensor t, uint64_t count, double v) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_FILL, HETRUN_F32);
    d.m = 1, d.n = (int64_t)count, d.alpha = v;
    return hetrun_exec_op(s, &d, &t);
}

static int check_config(hetrun_session *s, const hetrun_gpt_config *c, int64_t max_batch) {
    const char *key = NULL;
    long long v = 0;
    if (c->compute != HETRUN_F32 && c->compute != HETRUN_BF16 && c->compute != HETRUN_F16) {
        snprintf(s->error, sizeof s->error, "gpt: compute dtype %s: fp32, bf16 or fp16 only",
                 hetrun_dtype_name(c->compute));
        return -1;
    }
    if (c->layers < 1 || c->layers > HETRUN_GPT_MAX_LAYERS)
        key = "layers", v = c->layers;
    else if (c->heads < 1 || c->width < 1 || c->width % c->heads != 0)
        key = "width", v = c->width;
    else if (c->context < 1)
        key = "context", v = c->context;
    else if (c->vocab < 2)
        key = "vocab", v = c->vocab;
    else if (max_batch < 1)
        key = "micro_batch", v = max_batch;
    if (!key) return 0;
    snprintf(s->error, sizeof s->error,
             "gpt: %s = %lld is invalid (layers 1..%d, width a multiple of heads %lld, context "
             ">= 1, vocab >= 2, micro_batch >= 1)",
             key, v, HETRUN_GPT_MAX_LAYERS, (long long)c->heads);
    return -1;
}

int hetrun_gpt_create(hetrun_session *s, hetrun_gpt *g, const hetrun_gpt_config *cfg,
                      int64_t max_batch, int trainable) {
    memset(g, 0, sizeof *g);
    if (check_config(s, cfg, max_batch) != 0) return -1;
    g->cfg = *cfg;
    g->max_batch = max_batch;
    g->trainable = trainable;
    const int64_t L = cfg->layers, C = cfg->width, V = cfg->vocab, T = cfg->context;
    uint64_t off = 0;
    char name[HETRUN_TENSOR_NAME_MAX];
    const int64_t dims[HETRUN_GPT_BLOCK_TENSORS][2] = {
        {C, 0}, {C, 0}, {C, 3 * C}, {3 * C, 0}, {C, C},     {C, 0},
        {C, 0}, {C, 0}, {C, 4 * C}, {4 * C, 0}, {4 * C, C}, {C, 0}};
    for (int64_t l = 0; l < L; l++) {
        uint64_t start = off;
        for (int i = 0; i < HETRUN_GPT_BLOCK_TENSORS; i++) {
            snprintf(name, sizeof name, "transformer.h.%lld.%s", (long long)l, block_names[i]);
            add_tensor(g, &off, name, dims[i][0], dims[i][1]);
        }
        g->buckets[L - 1 - l] = (hetrun_grad_bucket){start, off - start};
    }
    uint64_t head = off;
    add_tensor(g, &off, "transformer.wte.weight", V, C);
    add_tensor(g, &off, "transformer.wpe.weight", T, C);
    add_tensor(g, &off, "transformer.ln_f.weight", C, 0);
    add_tensor(g, &off, "transformer.ln_f.bias", C, 0);
    g->buckets[L] = (hetrun_grad_bucket){head, off - head};
    g->param_count = off;

    /* Activations for N = max_batch x context rows. */
    const uint64_t N = (uint64_t)(max_batch * T), c = (uint64_t)C, v = (uint64_t)V;
    const uint64_t H = (uint64_t)cfg->heads;
    uint64_t b = 0;
#define REGION(field, bytes) (field = b, b = align_bytes(b + (bytes)))
    g->res = b;
    b += (uint64_t)(2 * L + 1) * align_bytes(N * c * 4);
    for (int64_t l = 0; l < L; l++) {
        hetrun_gpt_block_acts *k = &g->blk[l];
        REGION(k->ln1, N * c * 4);
        REGION(k->mean1, N * 4);
        REGION(k->rstd1, N * 4);
        REGION(k->qkv, 3 * N * c * 4);
        REGION(k->atty, N * c * 4);
        REGION(k->lse, (uint64_t)max_batch * H * (uint64_t)T * 4);
        REGION(k->ln2, N * c * 4);
        REGION(k->mean2, N * 4);
        REGION(k->rstd2, N * 4);
        REGION(k->fc_pre, 4 * N * c * 4);
        REGION(k->fc_act, 4 * N * c * 4);
    }
    REGION(g->lnf, N * c * 4);
    REGION(g->meanf, N * 4);
    REGION(g->rstdf, N * 4);
    REGION(g->logits, N * v * 4);
    REGION(g->probs, N * v * 4);
    REGION(g->loss, N * 4);
    REGION(g->dres, N * c * 4);
    REGION(g->dln, N * c * 4);
    REGION(g->dfc, 4 * N * c * 4);
    REGION(g->dqkv, 3 * N * c * 4);
    REGION(g->datty, N * c * 4);
    REGION(g->ids, N * 4);
    REGION(g->targets, N * 4);
    REGION(g->pos, N * 4);
    if (cfg->dropout > 0.0 && trainable) REGION(g->drop, (uint64_t)(2 * L + 1) * N * c * 4);
    if (cfg->compute != HETRUN_F32) {
        const uint64_t widest = N * (4 * c > v ? 4 * c : v) * 2;
        REGION(g->cast0, widest);
        REGION(g->cast1, widest);
    }
#undef REGION
    g->act_bytes = b;
    if (hetrun_session_alloc(s, g->param_count * 4, &g->params) != 0) goto fail;
    if (hetrun_session_alloc(s, g->act_bytes, &g->act) != 0) goto fail;
    if (fill(s, hetrun_tensor_at(g->params, 0), g->param_count, 0.0) != 0) goto fail;
    if (cfg->compute != HETRUN_F32 && hetrun_session_alloc(s, g->param_count * 2, &g->lowp) != 0)
        goto fail;
    if (trainable) {
        if (hetrun_session_alloc(s, g->param_count * 4, &g->grads) != 0) goto fail;
        if (hetrun_session_alloc(s, 2 * g->param_count * 4, &g->state) != 0) goto fail;
        if (fill(s, hetrun_tensor_at(g->grads, 0), g->param_count, 0.0) != 0) goto fail;
        if (fill(s, hetrun_tensor_at(g->state, 0), 2 * g->param_count, 0.0) != 0) goto fail;
    }
    return 0;
fail:
    hetrun_gpt_destroy(s, g);
    return -1;
}

int hetrun_gpt_init_weights(hetrun_session *s, hetrun_gpt *g, uint64_t seed) {
    float *h = calloc((size_t)g->param_count, sizeof *h);
    if (!h) {
        snprintf(s->error, sizeof s->error, "gpt: out of host memory for %llu weights",
                 (unsigned long long)g->param_count);
        return -1;
    }
    hetrun_rng r = hetrun_rng_seed(seed, 0x69707432);
    const double proj_sd = 0.02 / sqrt(2.0 * (double)g->cfg.layers);
    for (int i = 0; i < g->tensor_count; i++) {
        const hetrun_param_tensor *t = &g->tensors[i];
        const char *dot = strrchr(t->name, '.');
        int is_ln = strstr(t->name, "ln_") != NULL;
        float *w = h + t->offset;
        if (is_ln && strcmp(dot, ".weight") == 0) {
            for (uint64_t j = 0; j < t->count; j++)
                w[j] = 1.0f;
        } else if (t->ndim == 2) {
            double sd = strstr(t->name, "c_proj.weight") ? proj_sd : 0.02;
            for (uint64_t j = 0; j < t->count; j++)
                w[j] = (float)(sd * hetrun_rng_normal(&r));
        }
    }
    int rc = hetrun_session_h2d(s, hetrun_tensor_at(g->params, 0), h, g->param_count * 4);
    free(h);
    return rc;
}

hetrun_tensor hetrun_gpt_ids(const hetrun_gpt *g) {
    return A(g, g->ids);
}
hetrun_tensor hetrun_gpt_targets(const hetrun_gpt *g) {
    return A(g, g->targets);
}
hetrun_tensor hetrun_gpt_logits(const hetrun_gpt *g) {
    return A(g, g->logits);
}
hetrun_tensor hetrun_gpt_loss(const hetrun_gpt *g) {
    return A(g, g->loss);
}

/* ---- op helpers ---- */

static int cast(hetrun_session *s, hetrun_tensor x, uint64_t count, hetrun_dtype to,
                hetrun_tensor y) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_CAST, HETRUN_F32);
    d.out_dtype = to, d.m = 1, d.n = (int64_t)count;
    hetrun_tensor args[2] = {x, y};
    return hetrun_exec_op(s, &d, args);
}

/* An fp32 activation as a GEMM operand: itself in fp32, else cast into region `slot` (the
 * two regions let both operands of one product be cast). Returns -1 when the cast fails. */
static int operand(hetrun_session *s, const hetrun_gpt *g, hetrun_tensor x, int64_t count, int slot,
                   hetrun_tensor *out) {
    if (g->cfg.compute == HETRUN_F32) {
        *out = x;
        return 0;
    }
    *out = A(g, slot ? g->cast1 : g->cast0);
    return cast(s, x, (uint64_t)count, g->cfg.compute, *out);
}

/* Weight `which` of block l (or the head) as a GEMM operand: the master or its cast copy. */
static hetrun_tensor W(const hetrun_gpt *g, int64_t l, int which) {
    if (g->cfg.compute == HETRUN_F32) return PT(g, g->params, l, which);
    return hetrun_tensor_at(g->lowp, P(g, l, which)->offset * 2);
}

/* C (fp32) = op(A) op(B) + beta C, A and B in the compute dtype. */
static int gemm(hetrun_session *s, const hetrun_gpt *g, uint32_t flags, int64_t M, int64_t N,
                int64_t K, hetrun_tensor a, hetrun_tensor b, hetrun_tensor c, double beta) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, g->cfg.compute);
    d.out_dtype = HETRUN_F32;
    d.m = M, d.n = N, d.k = K, d.flags = flags, d.beta = beta;
    hetrun_tensor args[3] = {a, b, c};
    return hetrun_exec_op(s, &d, args);
}

/* C = act(X W + bias) in fp32, aux = pre-activation when given; X fp32 (M x K). */
static int linear(hetrun_session *s, const hetrun_gpt *g, int64_t M, int64_t N, int64_t K,
                  hetrun_tensor x, int64_t l, int w, int bias, hetrun_tensor c, int act,
                  const hetrun_tensor *aux) {
    hetrun_tensor xo;
    if (operand(s, g, x, M * K, 0, &xo) != 0) return -1;
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM_BIAS_ACT, g->cfg.compute);
    d.out_dtype = HETRUN_F32;
    d.m = M, d.n = N, d.k = K, d.beta = 0.0, d.act = (uint32_t)act;
    d.flags = HETRUN_OP_HAS_BIAS | (aux ? HETRUN_OP_HAS_AUX : 0u);
    hetrun_tensor none = {NULL, 0};
    hetrun_tensor args[5] = {xo, W(g, l, w), PT(g, g->params, l, bias), c, aux ? *aux : none};
    return hetrun_exec_op(s, &d, args);
}

/* Backward of Y = X W + b given dY (M x N), all fp32: dW += X^T dY, db += colsum(dY) and,
 * when dx is given, dX = dY W^T. */
static int linear_backward(hetrun_session *s, const hetrun_gpt *g, int64_t M, int64_t N, int64_t K,
                           hetrun_tensor x, int64_t l, int w, int bias, hetrun_tensor dy,
                           const hetrun_tensor *dx) {
    hetrun_tensor xo, dyo;
    if (operand(s, g, x, M * K, 0, &xo) != 0 || operand(s, g, dy, M * N, 1, &dyo) != 0 ||
        gemm(s, g, HETRUN_OP_TRANS_A, K, N, M, xo, dyo, PT(g, g->grads, l, w), 1.0) != 0)
        return -1;
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_REDUCE_SUM_AXIS0, HETRUN_F32);
    d.m = M, d.n = N, d.beta = 1.0;
    hetrun_tensor args[2] = {dy, PT(g, g->grads, l, bias)};
    if (hetrun_exec_op(s, &d, args) != 0) return -1;
    return dx ? gemm(s, g, HETRUN_OP_TRANS_B, M, K, N, dyo, W(g, l, w), *dx, 0.0) : 0;
}

static int layernorm(hetrun_session *s, int64_t M, int64_t N, hetrun_tensor x, hetrun_tensor w,
                     hetrun_tensor b, hetrun_tensor y, hetrun_tensor mean, hetrun_tensor rstd) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_LAYERNORM_FORWARD, HETRUN_F32);
    d.m = M, d.n = N, d.p[0] = LN_EPS;
    hetrun_tensor args[6] = {x, w, b, y, mean, rstd};
    return hetrun_exec_op(s, &d, args);
}

/* dX (accumulated into the residual gradient when accumulate), dgamma and dbeta += . */
static int layernorm_backward(hetrun_session *s, int64_t M, int64_t N, hetrun_tensor x,
                              hetrun_tensor w, hetrun_tensor mean, hetrun_tensor rstd,
                              hetrun_tensor dy, hetrun_tensor dx, hetrun_tensor dw,
                              hetrun_tensor db, int accumulate) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_LAYERNORM_BACKWARD, HETRUN_F32);
    d.m = M, d.n = N, d.p[0] = LN_EPS, d.beta = accumulate ? 1.0 : 0.0, d.p[1] = 1.0;
    hetrun_tensor args[8] = {x, w, mean, rstd, dy, dx, dw, db};
    return hetrun_exec_op(s, &d, args);
}

static int axpy(hetrun_session *s, int64_t count, hetrun_tensor x, hetrun_tensor y) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_AXPY, HETRUN_F32);
    d.m = 1, d.n = count, d.alpha = 1.0;
    hetrun_tensor args[2] = {x, y};
    return hetrun_exec_op(s, &d, args);
}

/* z = x * (dropout mask of `site`), elementwise; z may be x. */
static int drop(hetrun_session *s, const hetrun_gpt *g, int64_t site, int64_t count,
                hetrun_tensor x, hetrun_tensor z) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_MUL, HETRUN_F32);
    d.m = 1, d.n = count;
    const uint64_t plane = (uint64_t)(g->max_batch * g->cfg.context * g->cfg.width) * 4;
    hetrun_tensor args[3] = {x, A(g, g->drop + (uint64_t)site * plane), z};
    return hetrun_exec_op(s, &d, args);
}

int hetrun_gpt_dropout_masks(hetrun_session *s, hetrun_gpt *g, int64_t batch, int64_t T,
                             const uint64_t *keys) {
    const double p = g->cfg.dropout;
    if (!(p > 0.0) || !g->drop) return 0;
    const int64_t C = g->cfg.width, sites = 2 * g->cfg.layers + 1, n = batch * T * C;
    const uint64_t plane = (uint64_t)(g->max_batch * g->cfg.context * C);
    if (!g->drop_host && !(g->drop_host = malloc((size_t)n * sizeof *g->drop_host))) {
        snprintf(s->error, sizeof s->error, "gpt: out of host memory for dropout masks");
        return -1;
    }
    /* keep with probability 1 - p: the top 24 bits of a draw against p 2^24 */
    const uint64_t cut = (uint64_t)(p * 16777216.0);
    const float keep = (float)(1.0 / (1.0 - p));
    for (int64_t site = 0; site < sites; site++) {
        for (int64_t i = 0; i < batch; i++) {
            hetrun_rng r = hetrun_rng_seed(keys[i], (uint64_t)site);
            float *m = g->drop_host + i * T * C;
            for (int64_t e = 0; e < T * C; e++)
                m[e] = (hetrun_rng_next(&r) >> 40) >= cut ? keep : 0.0f;
        }
        if (hetrun_session_h2d(s, A(g, g->drop + (uint64_t)site * plane * 4), g->drop_host,
                               (uint64_t)n * 4) != 0)
            return -1;
    }
    g->drop_on = 1;
    return 0;
}

static int embedding(hetrun_session *s, int backward, int64_t M, int64_t N, int64_t rows,
                     hetrun_tensor ids, hetrun_tensor table_or_dout, hetrun_tensor out,
                     double beta) {
    hetrun_op_desc d = hetrun_op_desc_init(
        backward ? HETRUN_OP_EMBEDDING_BACKWARD : HETRUN_OP_EMBEDDING_FORWARD, HETRUN_F32);
    d.m = M, d.n = N, d.k = rows, d.beta = beta;
    hetrun_tensor args[3] = {ids, table_or_dout, out};
    return hetrun_exec_op(s, &d, args);
}

/* Q, K, V read out of the fused [B, T, 3, H, D] projection; O written as [B, T, H * D]. */
static hetrun_op_desc attention_desc(const hetrun_gpt *g, hetrun_op_kind kind, int64_t batch,
                                     int64_t T) {
    const int64_t C = g->cfg.width, H = g->cfg.heads, D = C / H;
    hetrun_op_desc d = hetrun_op_desc_init(kind, HETRUN_F32);
    d.batch = batch, d.heads = H, d.m = T, d.n = T, d.k = D;
    d.lda = d.ldb = 3 * C, d.ldc = C;
    d.stride_a = d.stride_b = T * 3 * C, d.stride_c = T * C;
    d.alpha = 1.0 / sqrt((double)D);
    d.flags = HETRUN_OP_CAUSAL;
    return d;
}

/* Position ids 0..T-1 per sequence, uploaded when T changes. */
static int positions(hetrun_session *s, hetrun_gpt *g, int64_t T) {
    if (g->pos_len == T) return 0;
    const int64_t N = g->max_batch * T;
    int32_t *h = malloc((size_t)N * sizeof *h);
    if (!h) {
        snprintf(s->error, sizeof s->error, "gpt: out of host memory for position ids");
        return -1;
    }
    for (int64_t i = 0; i < N; i++)
        h[i] = (int32_t)(i % T);
    int rc = hetrun_session_h2d(s, A(g, g->pos), h, (uint64_t)N * 4);
    free(h);
    if (rc == 0) g->pos_len = T;
    return rc;
}

int hetrun_gpt_forward(hetrun_session *s, hetrun_gpt *g, int64_t batch, int64_t T,
                       int with_targets) {
    const hetrun_gpt_config *c = &g->cfg;
    const int64_t L = c->layers, C = c->width, V = c->vocab, N = batch * T;
    if (batch < 1 || batch > g->max_batch || T < 1 || T > c->context) {
        snprintf(s->error, sizeof s->error,
                 "gpt: forward of %lld sequences x %lld tokens; the model holds 1..%lld x "
                 "1..%lld (context)",
                 (long long)batch, (long long)T, (long long)g->max_batch, (long long)c->context);
        return -1;
    }
    if (positions(s, g, T) != 0) return -1;
    if (g->lowp && cast(s, hetrun_tensor_at(g->params, 0), g->param_count, c->compute,
                        hetrun_tensor_at(g->lowp, 0)) != 0)
        return -1;
    hetrun_tensor x0 = A(g, RES(g, 0));
    if (embedding(s, 0, N, C, V, A(g, g->ids), PT(g, g->params, L, WTE), x0, 0.0) != 0 ||
        embedding(s, 0, N, C, T, A(g, g->pos), PT(g, g->params, L, WPE), x0, 1.0) != 0)
        return -1;
    const int dr = g->drop_on && with_targets; /* training: masks made for this forward */
    if (dr && drop(s, g, 0, N * C, x0, x0) != 0) return -1;
    for (int64_t l = 0; l < L; l++) {
        const hetrun_gpt_block_acts *k = &g->blk[l];
        hetrun_tensor xin = A(g, RES(g, 2 * l)), xmid = A(g, RES(g, 2 * l + 1));
        hetrun_tensor xout = A(g, RES(g, 2 * l + 2)), qkv = A(g, k->qkv);
        hetrun_tensor fc_pre = A(g, k->fc_pre);
        if (layernorm(s, N, C, xin, PT(g, g->params, l, LN1_W), PT(g, g->params, l, LN1_B),
                      A(g, k->ln1), A(g, k->mean1), A(g, k->rstd1)) != 0 ||
            linear(s, g, N, 3 * C, C, A(g, k->ln1), l, QKV_W, QKV_B, qkv, HETRUN_ACT_IDENTITY,
                   NULL) != 0)
            return -1;
        hetrun_op_desc d = attention_desc(g, HETRUN_OP_ATTENTION_FORWARD, batch, T);
        hetrun_tensor none = {NULL, 0};
        hetrun_tensor args[6] = {qkv,
                                 A(g, k->qkv + (uint64_t)C * 4),
                                 A(g, k->qkv + (uint64_t)C * 8),
                                 none,
                                 A(g, k->atty),
                                 A(g, k->lse)};
        if (hetrun_exec_op(s, &d, args) != 0 ||
            linear(s, g, N, C, C, A(g, k->atty), l, PROJ_W, PROJ_B, xmid, HETRUN_ACT_IDENTITY,
                   NULL) != 0 ||
            (dr && drop(s, g, 2 * l + 1, N * C, xmid, xmid) != 0) ||
            axpy(s, N * C, xin, xmid) != 0 ||
            layernorm(s, N, C, xmid, PT(g, g->params, l, LN2_W), PT(g, g->params, l, LN2_B),
                      A(g, k->ln2), A(g, k->mean2), A(g, k->rstd2)) != 0 ||
            linear(s, g, N, 4 * C, C, A(g, k->ln2), l, FC_W, FC_B, A(g, k->fc_act), HETRUN_ACT_GELU,
                   &fc_pre) != 0 ||
            linear(s, g, N, C, 4 * C, A(g, k->fc_act), l, FCP_W, FCP_B, xout, HETRUN_ACT_IDENTITY,
                   NULL) != 0 ||
            (dr && drop(s, g, 2 * l + 2, N * C, xout, xout) != 0) ||
            axpy(s, N * C, xmid, xout) != 0)
            return -1;
    }
    hetrun_tensor lnf;
    if (layernorm(s, N, C, A(g, RES(g, 2 * L)), PT(g, g->params, L, LNF_W),
                  PT(g, g->params, L, LNF_B), A(g, g->lnf), A(g, g->meanf), A(g, g->rstdf)) != 0 ||
        operand(s, g, A(g, g->lnf), N * C, 0, &lnf) != 0 ||
        gemm(s, g, HETRUN_OP_TRANS_B, N, V, C, lnf, W(g, L, WTE), A(g, g->logits), 0.0) != 0)
        return -1;
    if (!with_targets) return 0;
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_XENT_FORWARD, HETRUN_F32);
    d.m = N, d.n = V;
    hetrun_tensor args[4] = {A(g, g->logits), A(g, g->targets), A(g, g->probs), A(g, g->loss)};
    return hetrun_exec_op(s, &d, args);
}

int hetrun_gpt_backward(hetrun_session *s, hetrun_gpt *g, int64_t batch, int64_t T, double scale,
                        hetrun_gpt_bucket_fn on_bucket, void *ctx) {
    const hetrun_gpt_config *c = &g->cfg;
    const int64_t L = c->layers, C = c->width, V = c->vocab, N = batch * T;
    if (!g->trainable) {
        snprintf(s->error, sizeof s->error, "gpt: backward on an inference-only model");
        return -1;
    }
    hetrun_buffer *pw = g->params, *gw = g->grads;
    const int dr = g->drop_on;
    hetrun_tensor dlogits = A(g, g->logits), dres = A(g, g->dres), dln = A(g, g->dln);
    /* LM head (tied): dlogits = scale (probs - onehot); dwte += dlogits^T lnf; dlnf. */
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_XENT_BACKWARD, HETRUN_F32);
    d.m = N, d.n = V, d.alpha = scale;
    hetrun_tensor xargs[3] = {A(g, g->probs), A(g, g->targets), dlogits};
    hetrun_tensor dlo, lnf;
    if (hetrun_exec_op(s, &d, xargs) != 0 || operand(s, g, dlogits, N * V, 1, &dlo) != 0 ||
        operand(s, g, A(g, g->lnf), N * C, 0, &lnf) != 0 ||
        gemm(s, g, HETRUN_OP_TRANS_A, V, C, N, dlo, lnf, PT(g, gw, L, WTE), 1.0) != 0 ||
        gemm(s, g, 0, N, C, V, dlo, W(g, L, WTE), dln, 0.0) != 0 ||
        layernorm_backward(s, N, C, A(g, RES(g, 2 * L)), PT(g, pw, L, LNF_W), A(g, g->meanf),
                           A(g, g->rstdf), dln, dres, PT(g, gw, L, LNF_W), PT(g, gw, L, LNF_B),
                           0) != 0)
        return -1;
    for (int64_t l = L - 1; l >= 0; l--) {
        const hetrun_gpt_block_acts *k = &g->blk[l];
        hetrun_tensor dfc = A(g, g->dfc), datty = A(g, g->datty), dqkv = A(g, g->dqkv);
        /* MLP branch; dres is the gradient of the block's output (through its dropout mask
         * into datty, free until the attention branch). */
        hetrun_tensor dy = dr ? datty : dres;
        if (dr && drop(s, g, 2 * l + 2, N * C, dres, dy) != 0) return -1;
        if (linear_backward(s, g, N, C, 4 * C, A(g, k->fc_act), l, FCP_W, FCP_B, dy, &dfc) != 0)
            return -1;
        hetrun_op_desc a = hetrun_op_desc_init(HETRUN_OP_ACT_BACKWARD, HETRUN_F32);
        a.m = N, a.n = 4 * C, a.act = HETRUN_ACT_GELU;
        hetrun_tensor aargs[3] = {A(g, k->fc_pre), dfc, dfc};
        if (hetrun_exec_op(s, &a, aargs) != 0 ||
            linear_backward(s, g, N, 4 * C, C, A(g, k->ln2), l, FC_W, FC_B, dfc, &dln) != 0 ||
            layernorm_backward(s, N, C, A(g, RES(g, 2 * l + 1)), PT(g, pw, l, LN2_W),
                               A(g, k->mean2), A(g, k->rstd2), dln, dres, PT(g, gw, l, LN2_W),
                               PT(g, gw, l, LN2_B), 1) != 0)
            return -1;
        /* Attention branch; dres is now the gradient of the mid-block residual (through its
         * dropout mask into dln, free until the QKV projection's backward). */
        dy = dr ? dln : dres;
        if (dr && drop(s, g, 2 * l + 1, N * C, dres, dy) != 0) return -1;
        if (linear_backward(s, g, N, C, C, A(g, k->atty), l, PROJ_W, PROJ_B, dy, &datty) != 0)
            return -1;
        hetrun_op_desc ad = attention_desc(g, HETRUN_OP_ATTENTION_BACKWARD, batch, T);
        hetrun_tensor none = {NULL, 0};
        const uint64_t cb = (uint64_t)C * 4;
        hetrun_tensor bargs[10] = {A(g, k->qkv),          A(g, k->qkv + cb),
                                   A(g, k->qkv + 2 * cb), none,
                                   A(g, k->atty),         datty,
                                   A(g, k->lse),          dqkv,
                                   A(g, g->dqkv + cb),    A(g, g->dqkv + 2 * cb)};
        if (hetrun_exec_op(s, &ad, bargs) != 0 ||
            linear_backward(s, g, N, 3 * C, C, A(g, k->ln1), l, QKV_W, QKV_B, dqkv, &dln) != 0 ||
            layernorm_backward(s, N, C, A(g, RES(g, 2 * l)), PT(g, pw, l, LN1_W), A(g, k->mean1),
                               A(g, k->rstd1), dln, dres, PT(g, gw, l, LN1_W), PT(g, gw, l, LN1_B),
                               1) != 0)
            return -1;
        if (on_bucket && on_bucket(s, (int)(L - 1 - l), ctx) != 0) return -1;
    }
    g->drop_on = 0; /* the next forward makes its own masks */
    if ((dr && drop(s, g, 0, N * C, dres, dres) != 0) ||
        embedding(s, 1, N, C, V, A(g, g->ids), dres, PT(g, gw, L, WTE), 1.0) != 0 ||
        embedding(s, 1, N, C, c->context, A(g, g->pos), dres, PT(g, gw, L, WPE), 1.0) != 0)
        return -1;
    return on_bucket ? on_bucket(s, (int)L, ctx) : 0;
}

int hetrun_gpt_zero_grads(hetrun_session *s, hetrun_gpt *g) {
    return fill(s, hetrun_tensor_at(g->grads, 0), g->param_count, 0.0);
}

int hetrun_gpt_step(hetrun_session *s, hetrun_gpt *g, const hetrun_gpt_adamw *o) {
    for (int i = 0; i < g->tensor_count; i++) {
        const hetrun_param_tensor *t = &g->tensors[i];
        hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_ADAMW, HETRUN_F32);
        d.m = 1, d.n = (int64_t)t->count;
        d.p[0] = o->lr, d.p[1] = o->beta1, d.p[2] = o->beta2, d.p[3] = o->eps;
        d.p[4] = t->ndim >= 2 ? o->weight_decay : 0.0, d.p[5] = (double)o->t;
        hetrun_tensor args[4] = {hetrun_tensor_at(g->params, t->offset * 4),
                                 hetrun_tensor_at(g->grads, t->offset * 4),
                                 hetrun_tensor_at(g->state, t->offset * 4),
                                 hetrun_tensor_at(g->state, (g->param_count + t->offset) * 4)};
        if (hetrun_exec_op(s, &d, args) != 0) return -1;
    }
    return 0;
}

double hetrun_gpt_flops_per_token_estimate(const hetrun_gpt *g, int64_t T) {
    const double wpe = (double)(g->cfg.context * g->cfg.width);
    return 6.0 * ((double)g->real_params - wpe) +
           12.0 * (double)g->cfg.layers * (double)g->cfg.width * (double)T;
}
