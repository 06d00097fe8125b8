/* MLP on a session's device through catalogue ops only (see model.h for the layout). */
#include "workloads/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/stats.h"

const char *const hetrun_mlp_activation_names[] = {"relu", "gelu", NULL};

#define ALIGN_FLOATS 64u /* 256 bytes: sub-buffer alignment of common OpenCL devices */

static uint64_t align_up(uint64_t v, uint64_t a) {
    return (v + a - 1) / a * a;
}

uint64_t hetrun_mlp_param_count(const hetrun_mlp_shape *sh) {
    uint64_t n = 0;
    for (int l = 0; l < sh->layers; l++) {
        n = align_up(n + (uint64_t)(sh->dims[l] * sh->dims[l + 1]), ALIGN_FLOATS);
        n = align_up(n + (uint64_t)sh->dims[l + 1], ALIGN_FLOATS);
    }
    return n;
}

void hetrun_mlp_shape_text(const hetrun_mlp_shape *sh, char *out, size_t len) {
    size_t used = 0;
    out[0] = '\0';
    for (int l = 0; l <= sh->layers && used < len; l++)
        used += (size_t)snprintf(out + used, len - used, "%s%lld", l ? "-" : "",
                                 (long long)sh->dims[l]);
    if (used < len)
        snprintf(out + used, len - used, " %s", hetrun_activation_name((hetrun_activation)sh->act));
}

void hetrun_mlp_destroy(hetrun_session *s, hetrun_mlp *m) {
    hetrun_session_free(s, m->params, m->param_count * sizeof(float));
    hetrun_session_free(s, m->grads, m->param_count * sizeof(float));
    hetrun_session_free(s, m->state, m->state_count * sizeof(float));
    hetrun_session_free(s, m->act, m->act_bytes);
    m->params = m->grads = m->state = m->act = NULL;
}

/* Zeroes `count` floats at `t` with one FILL op (keeps padding zero on every backend). */
static int zero(hetrun_session *s, hetrun_tensor t, uint64_t count) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_FILL, HETRUN_F32);
    d.m = 1, d.n = (int64_t)count, d.alpha = 0.0;
    return hetrun_exec_op(s, &d, &t);
}

/* Layer l (1-based) as one GEMM_BIAS_ACT: A_l = act(A_{l-1} W_l + b_l), with the
 * pre-activation Z_l in aux when training (ACT_BACKWARD reads it); the last layer is bias
 * only, into Z_L (logits). */
static hetrun_op_desc layer_desc(const hetrun_mlp *m, int l, int64_t rows) {
    const hetrun_mlp_shape *sh = &m->shape;
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM_BIAS_ACT, HETRUN_F32);
    d.m = rows, d.n = sh->dims[l], d.k = sh->dims[l - 1], d.beta = 0.0;
    d.flags = HETRUN_OP_HAS_BIAS | (l < sh->layers && m->optimizer >= 0 ? HETRUN_OP_HAS_AUX : 0) |
              (m->optimizer < 0 ? HETRUN_OP_CONST_B : 0); /* inference: weights never change */
    d.act = (uint32_t)(l < sh->layers ? sh->act : HETRUN_ACT_IDENTITY);
    return d;
}

int hetrun_mlp_create(hetrun_session *s, hetrun_mlp *m, const hetrun_mlp_shape *sh, int optimizer,
                      int64_t rows) {
    memset(m, 0, sizeof *m);
    m->shape = *sh;
    m->optimizer = optimizer;
    m->rows = rows;
    if (sh->layers < 1 || sh->layers > HETRUN_MLP_MAX_LAYERS) {
        snprintf(s->error, sizeof s->error, "model: %d layers; 1..%d supported", sh->layers,
                 HETRUN_MLP_MAX_LAYERS);
        return -1;
    }
    uint64_t off = 0;
    int64_t widest = 0;
    for (int l = 0; l < sh->layers; l++) {
        m->w_off[l] = off;
        off = align_up(off + (uint64_t)(sh->dims[l] * sh->dims[l + 1]), ALIGN_FLOATS);
        m->b_off[l] = off;
        off = align_up(off + (uint64_t)sh->dims[l + 1], ALIGN_FLOATS);
    }
    for (int l = 0; l <= sh->layers; l++)
        if (sh->dims[l] > widest) widest = sh->dims[l];
    m->param_count = off;
    m->state_count = optimizer == HETRUN_OPT_ADAMW ? 2 * off
                     : optimizer == HETRUN_OPT_SGD ? off
                                                   : 0;
    /* Activations: A_0 is the input; Z_l and A_l for each layer (A_L unused); two scratch
     * gradients as wide as the widest layer; probs, loss and labels. */
    const uint64_t r = (uint64_t)rows, A = 256;
    uint64_t b = 0;
    m->a_off[0] = b, b = align_up(b + r * (uint64_t)sh->dims[0] * 4, A);
    for (int l = 1; l <= sh->layers; l++) {
        m->z_off[l] = b, b = align_up(b + r * (uint64_t)sh->dims[l] * 4, A);
        if (l < sh->layers) m->a_off[l] = b, b = align_up(b + r * (uint64_t)sh->dims[l] * 4, A);
    }
    for (int i = 0; i < 2; i++)
        m->d_off[i] = b, b = align_up(b + r * (uint64_t)widest * 4, A);
    m->probs_off = b, b = align_up(b + r * (uint64_t)sh->dims[sh->layers] * 4, A);
    m->loss_off = b, b = align_up(b + r * 4, A);
    m->labels_off = b, b = align_up(b + r * 4, A);
    m->act_bytes = b;
    if (hetrun_session_alloc(s, off * 4, &m->params) != 0) goto fail;
    if (hetrun_session_alloc(s, m->act_bytes, &m->act) != 0) goto fail;
    if (optimizer >= 0) {
        if (hetrun_session_alloc(s, off * 4, &m->grads) != 0) goto fail;
        if (hetrun_session_alloc(s, m->state_count * 4, &m->state) != 0) goto fail;
        if (zero(s, hetrun_tensor_at(m->grads, 0), off) != 0) goto fail;
        if (zero(s, hetrun_tensor_at(m->state, 0), m->state_count) != 0) goto fail;
    }
    /* One op per layer instead of three (GEMM, BIAS_ADD, ACT_FORWARD) where the backend has
     * the ABI 1.1 epilogue: two fewer passes over each layer's output. */
    m->fused = 1;
    for (int l = 1; l <= sh->layers && m->fused; l++) {
        const hetrun_op_desc d = layer_desc(m, l, rows);
        m->fused = hetrun_session_supports(s, &d, NULL, 0) == 1;
    }
    return 0;
fail:
    hetrun_mlp_destroy(s, m);
    return -1;
}

int hetrun_mlp_init_weights(hetrun_session *s, hetrun_mlp *m, uint64_t seed) {
    float *h = calloc((size_t)m->param_count, sizeof *h);
    if (!h) {
        snprintf(s->error, sizeof s->error, "model: out of host memory for %llu weights",
                 (unsigned long long)m->param_count);
        return -1;
    }
    hetrun_rng r = hetrun_rng_seed(seed, 0x3e1911);
    for (int l = 0; l < m->shape.layers; l++) {
        const int64_t in = m->shape.dims[l], out = m->shape.dims[l + 1];
        const double sd = sqrt(2.0 / (double)in);
        for (int64_t i = 0; i < in * out; i++)
            h[m->w_off[l] + (uint64_t)i] = (float)(sd * hetrun_rng_normal(&r));
    }
    int rc = hetrun_mlp_set_params(s, m, h);
    free(h);
    return rc;
}

int hetrun_mlp_set_params(hetrun_session *s, hetrun_mlp *m, const float *host) {
    return hetrun_session_h2d(s, hetrun_tensor_at(m->params, 0), host, m->param_count * 4);
}
int hetrun_mlp_get_params(hetrun_session *s, hetrun_mlp *m, float *host) {
    return hetrun_session_d2h(s, host, hetrun_tensor_at(m->params, 0), m->param_count * 4);
}
int hetrun_mlp_set_state(hetrun_session *s, hetrun_mlp *m, const float *host) {
    if (!m->state_count) return 0;
    return hetrun_session_h2d(s, hetrun_tensor_at(m->state, 0), host, m->state_count * 4);
}
int hetrun_mlp_get_state(hetrun_session *s, hetrun_mlp *m, float *host) {
    if (!m->state_count) return 0;
    return hetrun_session_d2h(s, host, hetrun_tensor_at(m->state, 0), m->state_count * 4);
}

hetrun_tensor hetrun_mlp_input(const hetrun_mlp *m) {
    return hetrun_tensor_at(m->act, m->a_off[0]);
}
hetrun_tensor hetrun_mlp_labels(const hetrun_mlp *m) {
    return hetrun_tensor_at(m->act, m->labels_off);
}
hetrun_tensor hetrun_mlp_output(const hetrun_mlp *m, int probs) {
    return hetrun_tensor_at(m->act, probs ? m->probs_off : m->z_off[m->shape.layers]);
}
hetrun_tensor hetrun_mlp_loss(const hetrun_mlp *m) {
    return hetrun_tensor_at(m->act, m->loss_off);
}

static hetrun_tensor W(const hetrun_mlp *m, hetrun_buffer *buf, int l) {
    return hetrun_tensor_at(buf, m->w_off[l] * 4);
}
static hetrun_tensor B(const hetrun_mlp *m, hetrun_buffer *buf, int l) {
    return hetrun_tensor_at(buf, m->b_off[l] * 4);
}
static hetrun_tensor ACT(const hetrun_mlp *m, uint64_t off) {
    return hetrun_tensor_at(m->act, off);
}

static int gemm(hetrun_session *s, uint32_t flags, int64_t M, int64_t N, int64_t K, hetrun_tensor a,
                hetrun_tensor b, hetrun_tensor c) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
    d.m = M, d.n = N, d.k = K, d.flags = flags, d.beta = 0.0;
    hetrun_tensor args[3] = {a, b, c};
    return hetrun_exec_op(s, &d, args);
}

static int op2(hetrun_session *s, hetrun_op_kind kind, int64_t M, int64_t N, int act, double alpha,
               hetrun_tensor a, hetrun_tensor b) {
    hetrun_op_desc d = hetrun_op_desc_init(kind, HETRUN_F32);
    d.m = M, d.n = N, d.act = (uint32_t)act, d.alpha = alpha;
    hetrun_tensor args[2] = {a, b};
    return hetrun_exec_op(s, &d, args);
}

static int op3(hetrun_session *s, hetrun_op_kind kind, int64_t M, int64_t N, int act, double alpha,
               hetrun_tensor a, hetrun_tensor b, hetrun_tensor c) {
    hetrun_op_desc d = hetrun_op_desc_init(kind, HETRUN_F32);
    d.m = M, d.n = N, d.act = (uint32_t)act, d.alpha = alpha;
    hetrun_tensor args[3] = {a, b, c};
    return hetrun_exec_op(s, &d, args);
}

int hetrun_mlp_forward(hetrun_session *s, hetrun_mlp *m, int64_t rows, int with_labels,
                       int softmax) {
    const hetrun_mlp_shape *sh = &m->shape;
    const int L = sh->layers;
    if (rows < 1 || rows > m->rows) {
        snprintf(s->error, sizeof s->error, "model: forward of %lld rows, buffers hold 1..%lld",
                 (long long)rows, (long long)m->rows);
        return -1;
    }
    for (int l = 1; l <= L && m->fused; l++) {
        const hetrun_op_desc d = layer_desc(m, l, rows);
        hetrun_tensor args[5] = {ACT(m, m->a_off[l - 1]),
                                 W(m, m->params, l - 1),
                                 B(m, m->params, l - 1),
                                 ACT(m, m->z_off[l]),
                                 {0}};
        if (l < L) args[3] = ACT(m, m->a_off[l]), args[4] = ACT(m, m->z_off[l]);
        if (hetrun_exec_op(s, &d, args) != 0) return -1;
    }
    for (int l = 1; l <= L && !m->fused; l++) {
        const int64_t in = sh->dims[l - 1], out = sh->dims[l];
        hetrun_tensor z = ACT(m, m->z_off[l]);
        if (gemm(s, m->optimizer < 0 ? HETRUN_OP_CONST_B : 0, rows, out, in,
                 ACT(m, m->a_off[l - 1]), W(m, m->params, l - 1), z) != 0)
            return -1;
        if (op3(s, HETRUN_OP_BIAS_ADD, rows, out, 0, 1.0, z, B(m, m->params, l - 1), z) != 0)
            return -1;
        if (l < L &&
            op2(s, HETRUN_OP_ACT_FORWARD, rows, out, sh->act, 1.0, z, ACT(m, m->a_off[l])) != 0)
            return -1;
    }
    const int64_t C = sh->dims[L];
    if (with_labels) {
        hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_XENT_FORWARD, HETRUN_F32);
        d.m = rows, d.n = C;
        hetrun_tensor args[4] = {ACT(m, m->z_off[L]), hetrun_mlp_labels(m), ACT(m, m->probs_off),
                                 hetrun_mlp_loss(m)};
        return hetrun_exec_op(s, &d, args);
    }
    if (softmax)
        return op2(s, HETRUN_OP_SOFTMAX, rows, C, 0, 1.0, ACT(m, m->z_off[L]),
                   ACT(m, m->probs_off));
    return 0;
}

int hetrun_mlp_backward(hetrun_session *s, hetrun_mlp *m, int64_t rows, double scale,
                        hetrun_mlp_layer_fn done, void *ctx) {
    const hetrun_mlp_shape *sh = &m->shape;
    const int L = sh->layers;
    if (!m->grads) {
        snprintf(s->error, sizeof s->error, "model: backward on an inference-only model");
        return -1;
    }
    int cur = 0;
    if (op3(s, HETRUN_OP_XENT_BACKWARD, rows, sh->dims[L], 0, scale, ACT(m, m->probs_off),
            hetrun_mlp_labels(m), ACT(m, m->d_off[cur])) != 0)
        return -1;
    for (int l = L; l >= 1; l--) {
        const int64_t in = sh->dims[l - 1], out = sh->dims[l];
        hetrun_tensor dz = ACT(m, m->d_off[cur]);
        /* dW = A_{l-1}^T dZ (in x out); db = column sums of dZ. */
        if (gemm(s, HETRUN_OP_TRANS_A, in, out, rows, ACT(m, m->a_off[l - 1]), dz,
                 W(m, m->grads, l - 1)) != 0)
            return -1;
        if (op2(s, HETRUN_OP_REDUCE_SUM_AXIS0, rows, out, 0, 1.0, dz, B(m, m->grads, l - 1)) != 0)
            return -1;
        if (done && done(s, l - 1, ctx) != 0) return -1;
        if (l == 1) break; /* no gradient for the input */
        /* dA_{l-1} = dZ W^T, then dZ_{l-1} = act'(Z_{l-1}) * dA_{l-1} in place. */
        hetrun_tensor da = ACT(m, m->d_off[!cur]);
        if (gemm(s, HETRUN_OP_TRANS_B, rows, in, out, dz, W(m, m->params, l - 1), da) != 0)
            return -1;
        if (op3(s, HETRUN_OP_ACT_BACKWARD, rows, in, sh->act, 1.0, ACT(m, m->z_off[l - 1]), da,
                da) != 0)
            return -1;
        cur = !cur;
    }
    return 0;
}

int hetrun_mlp_step(hetrun_session *s, hetrun_mlp *m, const hetrun_opt_step *o) {
    hetrun_op_desc d;
    hetrun_tensor args[4];
    int n = 0;
    if (m->optimizer == HETRUN_OPT_SGD) {
        d = hetrun_op_desc_init(HETRUN_OP_SGD_MOMENTUM, HETRUN_F32);
        d.p[0] = o->lr, d.p[1] = o->momentum, d.p[2] = o->weight_decay;
        args[n++] = hetrun_tensor_at(m->params, 0);
        args[n++] = hetrun_tensor_at(m->grads, 0);
        args[n++] = hetrun_tensor_at(m->state, 0);
    } else if (m->optimizer == HETRUN_OPT_ADAMW) {
        d = hetrun_op_desc_init(HETRUN_OP_ADAMW, HETRUN_F32);
        d.p[0] = o->lr, d.p[1] = o->beta1, d.p[2] = o->beta2, d.p[3] = o->eps;
        d.p[4] = o->weight_decay, d.p[5] = (double)o->t;
        args[n++] = hetrun_tensor_at(m->params, 0);
        args[n++] = hetrun_tensor_at(m->grads, 0);
        args[n++] = hetrun_tensor_at(m->state, 0);
        args[n++] = hetrun_tensor_at(m->state, m->param_count * 4);
    } else {
        snprintf(s->error, sizeof s->error, "model: optimizer step on an inference-only model");
        return -1;
    }
    d.m = 1, d.n = (int64_t)m->param_count;
    return hetrun_exec_op(s, &d, args);
}
