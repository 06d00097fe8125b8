/* BERT encoder from a model folder (see bert.h). */
#include "workloads/bert.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"
#include "kernels/half.h"
#include "util/log.h"

/* ---- configuration ---- */

/* Parses dir/name (an object or an array) as JSON; NULL when absent (*missing = 1) or invalid (err
 * set). */
static cJSON *read_json(const char *dir, const char *name, int *missing, char *err,
                        size_t err_len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *missing = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        *missing = errno == ENOENT;
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, fp) : 0;
    int big = buf && !feof(fp);
    fclose(fp);
    cJSON *j = NULL;
    if (!buf || big) {
        snprintf(err, err_len, "%s: larger than 1 MiB, not a configuration file", path);
    } else {
        buf[n] = 0;
        j = cJSON_ParseWithLength(buf, n);
        if (!j || !(cJSON_IsObject(j) || cJSON_IsArray(j))) {
            snprintf(err, err_len, "%s: not a JSON object or array", path);
            cJSON_Delete(j);
            j = NULL;
        }
    }
    free(buf);
    return j;
}

/* A positive integer key of config.json. */
static int cfg_int(const cJSON *j, const char *dir, const char *key, int64_t *out, char *err,
                   size_t err_len) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e9 ||
        v->valuedouble != floor(v->valuedouble))
        return snprintf(err, err_len, "%s/config.json: \"%s\" is missing or not a positive integer",
                        dir, key),
               -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int read_bert_json(const char *dir, hetrun_bert_config *c, char *err, size_t err_len) {
    int missing;
    cJSON *j = read_json(dir, "config.json", &missing, err, err_len);
    if (!j) return -1;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return snprintf(err, err_len, "%s/config.json: not a JSON object", dir), -1;
    }
    int rc = -1;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "hidden_act");
    const cJSON *pet = cJSON_GetObjectItemCaseSensitive(j, "position_embedding_type");
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_eps");
    if (!cJSON_IsString(mt) || strcmp(mt->valuestring, "bert") != 0) {
        snprintf(err, err_len, "%s/config.json: model_type is %s%.32s%s, hetrun's encoder is BERT",
                 dir, cJSON_IsString(mt) ? "\"" : "",
                 cJSON_IsString(mt) ? mt->valuestring : "missing", cJSON_IsString(mt) ? "\"" : "");
    } else if (pet && (!cJSON_IsString(pet) || strcmp(pet->valuestring, "absolute") != 0)) {
        snprintf(err, err_len, "%s/config.json: position_embedding_type must be \"absolute\"", dir);
    } else if (!cJSON_IsString(act) ||
               (strcmp(act->valuestring, "gelu") && strcmp(act->valuestring, "gelu_new") &&
                strcmp(act->valuestring, "gelu_pytorch_tanh"))) {
        snprintf(err, err_len,
                 "%s/config.json: hidden_act must be gelu, gelu_new or gelu_pytorch_tanh", dir);
    } else if (cfg_int(j, dir, "vocab_size", &c->vocab, err, err_len) == 0 &&
               cfg_int(j, dir, "hidden_size", &c->hidden, err, err_len) == 0 &&
               cfg_int(j, dir, "num_hidden_layers", &c->layers, err, err_len) == 0 &&
               cfg_int(j, dir, "num_attention_heads", &c->heads, err, err_len) == 0 &&
               cfg_int(j, dir, "intermediate_size", &c->intermediate, err, err_len) == 0 &&
               cfg_int(j, dir, "max_position_embeddings", &c->max_positions, err, err_len) == 0 &&
               cfg_int(j, dir, "type_vocab_size", &c->type_vocab, err, err_len) == 0) {
        c->gelu_tanh = strcmp(act->valuestring, "gelu") != 0;
        c->ln_eps = cJSON_IsNumber(eps) ? eps->valuedouble : 1e-12;
        if (c->layers > HETRUN_BERT_MAX_LAYERS)
            snprintf(err, err_len, "%s/config.json: num_hidden_layers %lld, at most %d", dir,
                     (long long)c->layers, HETRUN_BERT_MAX_LAYERS);
        else if (c->hidden % c->heads)
            snprintf(
                err, err_len,
                "%s/config.json: hidden_size %lld is not a multiple of num_attention_heads %lld",
                dir, (long long)c->hidden, (long long)c->heads);
        else if (!(c->ln_eps > 0 && c->ln_eps < 1))
            snprintf(err, err_len, "%s/config.json: layer_norm_eps %g is not in (0, 1)", dir,
                     c->ln_eps);
        else
            rc = 0;
    }
    cJSON_Delete(j);
    return rc;
}

/* sentence-transformers' files: pooling, normalisation, sequence length. Absent files take
 * the defaults a plain BERT folder implies (mean pooling, normalised, the model's length). */
static int read_st_json(const char *dir, const hetrun_wordpiece *tok, hetrun_bert_config *c,
                        char *err, size_t err_len) {
    int missing;
    cJSON *j = read_json(dir, "1_Pooling/config.json", &missing, err, err_len);
    if (!j && !missing) return -1;
    if (j) {
        const char *modes[] = {"pooling_mode_cls_token", "pooling_mode_max_tokens",
                               "pooling_mode_mean_sqrt_len_tokens",
                               "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"};
        const cJSON *mean = cJSON_GetObjectItemCaseSensitive(j, "pooling_mode_mean_tokens");
        int bad = !cJSON_IsTrue(mean);
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
            bad |= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, modes[i]));
        cJSON_Delete(j);
        if (bad)
            return snprintf(err, err_len,
                            "%s/1_Pooling/config.json: hetrun pools by the mean over the "
                            "attention mask only (pooling_mode_mean_tokens alone)",
                            dir),
                   -1;
    }
    c->normalize = 1;
    j = read_json(dir, "modules.json", &missing, err, err_len);
    if (!j && !missing) return -1;
    if (j) {
        c->normalize = 0;
        for (const cJSON *e = j->child; e; e = e->next) {
            const cJSON *ty = cJSON_GetObjectItemCaseSensitive(e, "type");
            if (cJSON_IsString(ty) && strstr(ty->valuestring, ".Normalize")) c->normalize = 1;
        }
        cJSON_Delete(j);
    }
    c->max_seq = hetrun_wordpiece_truncation(tok);
    j = read_json(dir, "sentence_bert_config.json", &missing, err, err_len);
    if (!j && !missing) return -1;
    if (j) {
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "max_seq_length");
        if (cJSON_IsNumber(ms) && ms->valuedouble >= 1) c->max_seq = (int64_t)ms->valuedouble;
        cJSON_Delete(j);
    }
    if (c->max_seq <= 0 || c->max_seq > c->max_positions) c->max_seq = c->max_positions;
    return 0;
}

int hetrun_bert_read_config(const char *dir, const hetrun_wordpiece *tok, hetrun_bert_config *c,
                            char *err, size_t err_len) {
    memset(c, 0, sizeof *c);
    if (read_bert_json(dir, c, err, err_len) != 0 || read_st_json(dir, tok, c, err, err_len) != 0)
        return -1;
    if (hetrun_wordpiece_vocab_size(tok) > c->vocab)
        return snprintf(err, err_len,
                        "%s/tokenizer.json: ids up to %d, but config.json vocab_size is %lld", dir,
                        hetrun_wordpiece_vocab_size(tok) - 1, (long long)c->vocab),
               -1;
    return 0;
}

/* ---- weights ---- */

static uint64_t esize(hetrun_dtype t) {
    return t == HETRUN_F32 ? 4 : 2;
}

/* Reserves `elems` elements at the cursor; regions start on 256 bytes (OpenCL sub-buffers). */
static uint64_t place(uint64_t *cursor, uint64_t elems, hetrun_dtype t) {
    uint64_t at = *cursor;
    *cursor += (elems * esize(t) + 255) / 256 * 256;
    return at;
}

typedef struct loader {
    hetrun_session *s;
    hetrun_bert *m;
    hetrun_safetensors f;
    char dir[4096];
    void *conv; /* host staging in the model dtype */
    float *f32; /* host staging in fp32 */
} loader;

/* Reads tensor `name` (after the prefix) of the given shape into L->f32 + at. */
static int fetch(loader *L, const char *name, int64_t rows, int64_t cols, uint64_t at) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", L->m->cfg.prefix, name);
    int64_t shape[2] = {rows, cols};
    const hetrun_st_tensor *t = hetrun_safetensors_expect(&L->f, full, cols ? 2 : 1, shape,
                                                          L->s->error, sizeof L->s->error);
    if (!t) return -1;
    hetrun_safetensors_to_f32(t, L->f32 + at);
    return 0;
}

/* Copies n floats of L->f32 to params + off, converted to the model dtype. */
static int upload(loader *L, uint64_t off, uint64_t n) {
    const hetrun_dtype dt = L->m->dtype;
    const void *src = L->f32;
    if (dt != HETRUN_F32) {
        uint16_t *h = L->conv;
        for (uint64_t i = 0; i < n; i++)
            h[i] = dt == HETRUN_BF16 ? hetrun_f32_to_bf16(L->f32[i]) : hetrun_f32_to_f16(L->f32[i]);
        src = h;
    }
    return hetrun_session_h2d(L->s, hetrun_tensor_at(L->m->params, off), src, n * esize(dt));
}

static int load_vector(loader *L, const char *name, int64_t n, uint64_t off) {
    return fetch(L, name, n, 0, 0) || upload(L, off, (uint64_t)n);
}

static int load_matrix(loader *L, const char *name, int64_t rows, int64_t cols, uint64_t off) {
    return fetch(L, name, rows, cols, 0) || upload(L, off, (uint64_t)(rows * cols));
}

/* Position rows with token type 0's row added in: every sentence is type 0, so the sum is
 * one table and the forward pass one lookup fewer. */
static int load_positions(loader *L) {
    const hetrun_bert_config *c = &L->m->cfg;
    const int64_t H = c->hidden;
    float *type0 = malloc((size_t)H * sizeof *type0);
    if (!type0) {
        snprintf(L->s->error, sizeof L->s->error, "embed: out of host memory");
        return -1;
    }
    int rc = fetch(L, "embeddings.token_type_embeddings.weight", c->type_vocab, H, 0);
    if (rc == 0) {
        memcpy(type0, L->f32, (size_t)H * sizeof *type0);
        rc = fetch(L, "embeddings.position_embeddings.weight", c->max_positions, H, 0);
    }
    for (int64_t r = 0; rc == 0 && r < c->max_positions; r++)
        for (int64_t j = 0; j < H; j++)
            L->f32[r * H + j] += type0[j];
    free(type0);
    return rc || upload(L, L->m->pos, (uint64_t)(c->max_positions * H));
}

static int load_layer(loader *L, int i) {
    const hetrun_bert_config *c = &L->m->cfg;
    const int64_t H = c->hidden, I = c->intermediate;
    char n[3][160];
    const char *qkv[3] = {"query", "key", "value"};
    /* Q, K and V stacked into one [3H x H] weight: one GEMM computes all three. */
    for (int k = 0; k < 3; k++) {
        snprintf(n[k], sizeof n[k], "encoder.layer.%d.attention.self.%s.weight", i, qkv[k]);
        if (fetch(L, n[k], H, H, (uint64_t)(k * H * H)) != 0) return -1;
    }
    if (upload(L, L->m->layer[i].qkv_w, (uint64_t)(3 * H * H)) != 0) return -1;
    for (int k = 0; k < 3; k++) {
        snprintf(n[k], sizeof n[k], "encoder.layer.%d.attention.self.%s.bias", i, qkv[k]);
        if (fetch(L, n[k], H, 0, (uint64_t)(k * H)) != 0) return -1;
    }
    if (upload(L, L->m->layer[i].qkv_b, (uint64_t)(3 * H)) != 0) return -1;
    struct {
        const char *name;
        int64_t rows, cols;
        uint64_t off;
    } rest[] = {
        {"attention.output.dense.weight", H, H, L->m->layer[i].o_w},
        {"attention.output.dense.bias", H, 0, L->m->layer[i].o_b},
        {"attention.output.LayerNorm.weight", H, 0, L->m->layer[i].ln1_g},
        {"attention.output.LayerNorm.bias", H, 0, L->m->layer[i].ln1_b},
        {"intermediate.dense.weight", I, H, L->m->layer[i].i_w},
        {"intermediate.dense.bias", I, 0, L->m->layer[i].i_b},
        {"output.dense.weight", H, I, L->m->layer[i].f_w},
        {"output.dense.bias", H, 0, L->m->layer[i].f_b},
        {"output.LayerNorm.weight", H, 0, L->m->layer[i].ln2_g},
        {"output.LayerNorm.bias", H, 0, L->m->layer[i].ln2_b},
    };
    for (size_t k = 0; k < sizeof rest / sizeof rest[0]; k++) {
        char name[200];
        snprintf(name, sizeof name, "encoder.layer.%d.%s", i, rest[k].name);
        int rc = rest[k].cols ? load_matrix(L, name, rest[k].rows, rest[k].cols, rest[k].off)
                              : load_vector(L, name, rest[k].rows, rest[k].off);
        if (rc != 0) return -1;
    }
    return 0;
}

/* Offsets of every weight in the params buffer; returns its size. */
static uint64_t layout_params(hetrun_bert *m) {
    const hetrun_bert_config *c = &m->cfg;
    const int64_t H = c->hidden, I = c->intermediate;
    const hetrun_dtype t = m->dtype;
    uint64_t at = 0;
    m->word = place(&at, (uint64_t)(c->vocab * H), t);
    m->pos = place(&at, (uint64_t)(c->max_positions * H), t);
    m->emb_g = place(&at, (uint64_t)H, t);
    m->emb_b = place(&at, (uint64_t)H, t);
    for (int64_t i = 0; i < c->layers; i++) {
        m->layer[i].qkv_w = place(&at, (uint64_t)(3 * H * H), t);
        m->layer[i].qkv_b = place(&at, (uint64_t)(3 * H), t);
        m->layer[i].o_w = place(&at, (uint64_t)(H * H), t);
        m->layer[i].o_b = place(&at, (uint64_t)H, t);
        m->layer[i].ln1_g = place(&at, (uint64_t)H, t);
        m->layer[i].ln1_b = place(&at, (uint64_t)H, t);
        m->layer[i].i_w = place(&at, (uint64_t)(I * H), t);
        m->layer[i].i_b = place(&at, (uint64_t)I, t);
        m->layer[i].f_w = place(&at, (uint64_t)(H * I), t);
        m->layer[i].f_b = place(&at, (uint64_t)H, t);
        m->layer[i].ln2_g = place(&at, (uint64_t)H, t);
        m->layer[i].ln2_b = place(&at, (uint64_t)H, t);
    }
    return at;
}

static int load_weights(hetrun_session *s, hetrun_bert *m, const char *dir) {
    loader L = {.s = s, .m = m};
    snprintf(L.dir, sizeof L.dir, "%s/model.safetensors", dir);
    char err[1024];
    if (hetrun_safetensors_open(L.dir, &L.f, err, sizeof err) != 0) {
        snprintf(s->error, sizeof s->error, "embed: %s", err);
        return -1;
    }
    /* BertModel files name tensors "embeddings..."; task models add "bert." */
    if (!hetrun_safetensors_find(&L.f, "embeddings.word_embeddings.weight") &&
        hetrun_safetensors_find(&L.f, "bert.embeddings.word_embeddings.weight"))
        snprintf(m->cfg.prefix, sizeof m->cfg.prefix, "bert.");
    const hetrun_bert_config *c = &m->cfg;
    uint64_t biggest = (uint64_t)(c->vocab * c->hidden);
    if ((uint64_t)(3 * c->hidden * c->hidden) > biggest)
        biggest = (uint64_t)(3 * c->hidden * c->hidden);
    if ((uint64_t)(c->intermediate * c->hidden) > biggest)
        biggest = (uint64_t)(c->intermediate * c->hidden);
    if ((uint64_t)(c->max_positions * c->hidden) > biggest)
        biggest = (uint64_t)(c->max_positions * c->hidden);
    L.f32 = malloc(biggest * sizeof(float));
    L.conv = malloc(biggest * sizeof(uint16_t));
    int rc = -1;
    if (!L.f32 || !L.conv) {
        snprintf(s->error, sizeof s->error, "embed: out of host memory staging %llu weights",
                 (unsigned long long)biggest);
    } else if (load_matrix(&L, "embeddings.word_embeddings.weight", c->vocab, c->hidden, m->word) ==
                   0 &&
               load_positions(&L) == 0 &&
               load_vector(&L, "embeddings.LayerNorm.weight", c->hidden, m->emb_g) == 0 &&
               load_vector(&L, "embeddings.LayerNorm.bias", c->hidden, m->emb_b) == 0) {
        rc = 0;
        for (int i = 0; rc == 0 && i < c->layers; i++)
            rc = load_layer(&L, i);
    }
    free(L.f32);
    free(L.conv);
    hetrun_safetensors_close(&L.f);
    return rc;
}

/* ---- device model ---- */

/* Sentences pooled by one GEMM: a group's weight matrix is sentences x their tokens, so the
 * group size bounds its memory (group x max_tokens) while one op pools a usual batch. */
#define POOL_GROUP 32

static int64_t pool_group(const hetrun_bert *m) {
    return m->max_batch < POOL_GROUP ? m->max_batch : POOL_GROUP;
}

int hetrun_bert_create(hetrun_session *s, hetrun_bert *m, const char *dir, hetrun_dtype dtype,
                       int fused_attention, int64_t max_batch, int64_t max_seq) {
    memset(m, 0, sizeof *m);
    m->dtype = dtype;
    m->fused_attention = fused_attention;
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (hetrun_wordpiece_load(path, &m->tok, err, sizeof err) != 0 ||
        hetrun_bert_read_config(dir, m->tok, &m->cfg, err, sizeof err) != 0) {
        snprintf(s->error, sizeof s->error, "embed: %s", err);
        return -1;
    }
    hetrun_bert_config *c = &m->cfg;
    if (max_seq > 0) c->max_seq = max_seq < c->max_positions ? max_seq : c->max_positions;
    m->max_batch = max_batch;
    m->max_tokens = max_batch * c->max_seq;
    m->params_bytes = layout_params(m);
    if (hetrun_session_alloc(s, m->params_bytes, &m->params) != 0) return -1;
    if (load_weights(s, m, dir) != 0) return -1;

    /* Attention on the packed rows needs per-sentence ops: cheap calls on a host-memory
     * backend (one whose memory the host can address, ABI 1.2 mem_host_ptr), where each also
     * skips the padded queries and keys (bench/RESULTS.md); on a device one gather each way
     * around one padded op keeps the launch count flat. */
    void *host = NULL;
    const int host_memory = hetrun_session_host_ptr(s, hetrun_tensor_at(m->params, 0), 1, &host);
    if (host_memory < 0) return -1;
    m->per_sentence = fused_attention && host_memory == 1;
    const int64_t T = m->max_tokens, H = c->hidden, I = c->intermediate;
    const int64_t padded = m->per_sentence ? 0 : T;
    uint64_t at = 0;
    m->x = place(&at, (uint64_t)(T * H), dtype);
    m->qkv = place(&at, (uint64_t)(T * 3 * H), dtype);
    m->ctx = place(&at, (uint64_t)(T * H), dtype);
    m->tmp = place(&at, (uint64_t)(T * H), dtype);
    m->ff = place(&at, (uint64_t)(T * I), dtype);
    m->lse = place(&at, (uint64_t)(T * c->heads), HETRUN_F32);
    /* the padded attention's copies live in buffers idle while it runs: ff (written next by
     * the MLP) when it is wide enough, tmp (written next by the first LayerNorm) */
    m->qkv_pad = I >= 3 * H ? m->ff : place(&at, (uint64_t)(padded * 3 * H), dtype);
    m->ctx_pad = m->tmp;
    /* scores and key bias: the unfused attention's only */
    const int64_t per_head = fused_attention ? 0 : T * c->max_seq;
    m->scores = place(&at, (uint64_t)per_head, dtype);
    m->key_bias = place(&at, (uint64_t)per_head, dtype);
    m->ids = place(&at, (uint64_t)T, HETRUN_F32); /* I32: the same 4 bytes as F32 */
    m->pos_ids = place(&at, (uint64_t)T, HETRUN_F32);
    m->mask = place(&at, (uint64_t)T, HETRUN_F32);
    m->pad_src = place(&at, (uint64_t)padded, HETRUN_F32);
    m->unpad_src = place(&at, (uint64_t)padded, HETRUN_F32);
    m->pool_w = place(&at, (uint64_t)(pool_group(m) * T), dtype);
    m->pooled = place(&at, (uint64_t)(max_batch * H), HETRUN_F32);
    m->act_bytes = at;
    if (hetrun_session_alloc(s, m->act_bytes, &m->act) != 0) return -1;
    m->stage = malloc((size_t)(5 * T) * sizeof *m->stage);
    m->pool_host = malloc((size_t)(pool_group(m) * T) * sizeof(float));
    m->bias_host = per_head ? malloc((size_t)per_head * esize(dtype)) : NULL;
    if (!m->stage || !m->pool_host || (per_head && !m->bias_host)) {
        snprintf(s->error, sizeof s->error, "embed: out of host memory for %lld tokens",
                 (long long)T);
        return -1;
    }
    HETRUN_INFO("embed: %s: BERT %lld layers, hidden %lld, %lld heads, vocab %lld, %s, max %lld "
                "tokens, %.1f MiB weights + %.1f MiB activations",
                dir, (long long)c->layers, (long long)H, (long long)c->heads, (long long)c->vocab,
                hetrun_dtype_name(dtype), (long long)c->max_seq,
                (double)m->params_bytes / 1048576.0, (double)m->act_bytes / 1048576.0);
    return 0;
}

void hetrun_bert_destroy(hetrun_session *s, hetrun_bert *m) {
    if (m->params) hetrun_session_free(s, m->params, m->params_bytes);
    if (m->act) hetrun_session_free(s, m->act, m->act_bytes);
    hetrun_wordpiece_free(m->tok);
    free(m->stage);
    free(m->pool_host);
    free(m->bias_host);
    memset(m, 0, sizeof *m);
}

/* ---- forward ---- */

static hetrun_tensor act_at(const hetrun_bert *m, uint64_t off) {
    return hetrun_tensor_at(m->act, off);
}

static hetrun_tensor param_at(const hetrun_bert *m, uint64_t off) {
    return hetrun_tensor_at(m->params, off);
}

/* act[c] = fn(act[a] (rows x k) W^T + bias + beta act[c]) in one op: W is the stored [n x k]
 * nn.Linear weight, beta 1 adds the residual already in c, fn is GELU for the MLP's first
 * layer (bias, residual and activation ride in the GEMM's epilogue, not in passes of their own).
 * W is a constant operand: a backend may keep it in a layout of its own (ABI 1.3). */
static int linear(hetrun_session *s, const hetrun_bert *m, int64_t rows, int64_t n, int64_t k,
                  uint64_t a, uint64_t w, uint64_t bias, uint64_t c, double beta,
                  hetrun_activation fn) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM_BIAS_ACT, m->dtype);
    d.flags = HETRUN_OP_TRANS_B | HETRUN_OP_HAS_BIAS | HETRUN_OP_CONST_B;
    d.m = rows, d.n = n, d.k = k, d.beta = beta, d.act = (uint32_t)fn;
    hetrun_tensor none = {NULL, 0};
    hetrun_tensor g[5] = {act_at(m, a), param_at(m, w), param_at(m, bias), act_at(m, c), none};
    return hetrun_exec_op(s, &d, g);
}

static int layernorm(hetrun_session *s, const hetrun_bert *m, int64_t rows, uint64_t x, uint64_t g,
                     uint64_t b, uint64_t y) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_LAYERNORM, m->dtype);
    d.m = rows, d.n = m->cfg.hidden, d.p[0] = m->cfg.ln_eps;
    hetrun_tensor a[4] = {act_at(m, x), param_at(m, g), param_at(m, b), act_at(m, y)};
    return hetrun_exec_op(s, &d, a);
}

/* act[y] = table[ids] + beta act[y] (rows x cols; ids: the source row of each destination
 * row): the embedding lookups, and the row gathers between the packed and padded layouts. */
static int gather(hetrun_session *s, const hetrun_bert *m, int64_t rows, int64_t cols, uint64_t ids,
                  hetrun_tensor table, int64_t table_rows, double beta, uint64_t y) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_EMBEDDING_FORWARD, m->dtype);
    d.m = rows, d.n = cols, d.k = table_rows, d.beta = beta;
    hetrun_tensor a[3] = {act_at(m, ids), table, act_at(m, y)};
    return hetrun_exec_op(s, &d, a);
}

/* Q, K, V read in place from the fused [batch, seq, 3, heads, D] projection at qkv; padded
 * keys masked when there are any; the context into ctx [batch, seq, hidden]. */
static int attention_fused(hetrun_session *s, const hetrun_bert *m, int64_t batch, int64_t seq,
                           int masked, uint64_t qkv, uint64_t ctx) {
    const int64_t H = m->cfg.hidden, D = H / m->cfg.heads;
    const uint64_t es = esize(m->dtype);
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_ATTENTION_FORWARD, m->dtype);
    d.batch = batch, d.heads = m->cfg.heads, d.m = seq, d.n = seq, d.k = D;
    d.lda = d.ldb = 3 * H;
    d.alpha = 1.0 / sqrt((double)D);
    d.flags = masked ? HETRUN_OP_KEY_PADDING_MASK : 0;
    hetrun_tensor a[6] = {act_at(m, qkv),
                          act_at(m, qkv + (uint64_t)H * es),
                          act_at(m, qkv + (uint64_t)(2 * H) * es),
                          act_at(m, m->mask),
                          act_at(m, ctx),
                          act_at(m, m->lse)};
    return hetrun_exec_op(s, &d, a);
}

/* The same attention per head h, batched over the sentences: S = alpha Q K^T + key_bias (0 for
 * a real key, -inf for padding, copied in first since the GEMM adds to C), P = softmax(S)
 * row-wise, O = P V into the head's columns of ctx. Padded query rows are discarded. */
static int attention_gemm(hetrun_session *s, const hetrun_bert *m, int64_t batch, int64_t seq,
                          uint64_t qkv, uint64_t ctx) {
    const int64_t H = m->cfg.hidden, heads = m->cfg.heads, D = H / heads;
    const uint64_t es = esize(m->dtype);
    hetrun_op_desc cp = hetrun_op_desc_init(HETRUN_OP_SCALE, m->dtype);
    cp.m = batch * seq, cp.n = seq;
    hetrun_tensor ca[2] = {act_at(m, m->key_bias), act_at(m, m->scores)};
    hetrun_op_desc qk = hetrun_op_desc_init(HETRUN_OP_GEMM, m->dtype);
    qk.flags = HETRUN_OP_TRANS_B;
    qk.batch = batch, qk.m = seq, qk.n = seq, qk.k = D;
    qk.lda = qk.ldb = 3 * H, qk.stride_a = qk.stride_b = seq * 3 * H, qk.stride_c = seq * seq;
    qk.alpha = 1.0 / sqrt((double)D), qk.beta = 1.0;
    hetrun_op_desc sm = hetrun_op_desc_init(HETRUN_OP_SOFTMAX, m->dtype);
    sm.m = batch * seq, sm.n = seq;
    hetrun_tensor sa[2] = {act_at(m, m->scores), act_at(m, m->scores)};
    hetrun_op_desc pv = hetrun_op_desc_init(HETRUN_OP_GEMM, m->dtype);
    pv.batch = batch, pv.m = seq, pv.n = D, pv.k = seq;
    pv.ldb = 3 * H, pv.ldc = H;
    pv.stride_a = seq * seq, pv.stride_b = seq * 3 * H, pv.stride_c = seq * H;
    for (int64_t h = 0; h < heads; h++) {
        hetrun_tensor qa[3] = {act_at(m, qkv + (uint64_t)(h * D) * es),
                               act_at(m, qkv + (uint64_t)(H + h * D) * es), act_at(m, m->scores)};
        hetrun_tensor pa[3] = {act_at(m, m->scores),
                               act_at(m, qkv + (uint64_t)(2 * H + h * D) * es),
                               act_at(m, ctx + (uint64_t)(h * D) * es)};
        if (hetrun_exec_op(s, &cp, ca) != 0 || hetrun_exec_op(s, &qk, qa) != 0 ||
            hetrun_exec_op(s, &sm, sa) != 0 || hetrun_exec_op(s, &pv, pa) != 0)
            return -1;
    }
    return 0;
}

/* The fused op once per sentence, on its rows of the packed QKV and context: no padded query
 * or key at all, batch cheap calls (the host-memory backends'). */
static int attention_per_sentence(hetrun_session *s, const hetrun_bert *m, const int32_t *lens,
                                  int64_t batch) {
    const int64_t H = m->cfg.hidden, heads = m->cfg.heads, D = H / heads;
    const uint64_t es = esize(m->dtype);
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_ATTENTION_FORWARD, m->dtype);
    d.batch = 1, d.heads = heads, d.k = D;
    d.lda = d.ldb = 3 * H;
    d.alpha = 1.0 / sqrt((double)D);
    uint64_t t = 0;
    for (int64_t b = 0; b < batch; b++) {
        const uint64_t q = m->qkv + t * (uint64_t)(3 * H) * es;
        d.m = d.n = lens[b];
        hetrun_tensor a[6] = {act_at(m, q),
                              act_at(m, q + (uint64_t)H * es),
                              act_at(m, q + (uint64_t)(2 * H) * es),
                              act_at(m, m->mask),
                              act_at(m, m->ctx + t * (uint64_t)H * es),
                              act_at(m, m->lse + t * (uint64_t)heads * 4)};
        if (hetrun_exec_op(s, &d, a) != 0) return -1;
        t += (uint64_t)lens[b];
    }
    return 0;
}

/* ctx = attention over the packed qkv (tokens rows): per sentence, or gathered into the
 * padded batch x seq layout and back. When nothing is padded the packed rows are that layout:
 * one op, no gathers, no mask. */
static int attention(hetrun_session *s, const hetrun_bert *m, const int32_t *lens, int64_t batch,
                     int64_t seq, int64_t tokens) {
    const int64_t H = m->cfg.hidden, padded = batch * seq;
    const int gathered = tokens < padded;
    if (m->per_sentence && gathered) return attention_per_sentence(s, m, lens, batch);
    const uint64_t qkv = gathered ? m->qkv_pad : m->qkv, ctx = gathered ? m->ctx_pad : m->ctx;
    if (gathered && gather(s, m, padded, 3 * H, m->pad_src, act_at(m, m->qkv), tokens, 0, qkv) != 0)
        return -1;
    if ((m->fused_attention ? attention_fused(s, m, batch, seq, gathered, qkv, ctx)
                            : attention_gemm(s, m, batch, seq, qkv, ctx)) != 0)
        return -1;
    return gathered ? gather(s, m, tokens, H, m->unpad_src, act_at(m, ctx), padded, 0, m->ctx) : 0;
}

/* One post-LN encoder block over the packed tokens; its input and output are in x. */
static int block(hetrun_session *s, const hetrun_bert *m, int i, const int32_t *lens, int64_t batch,
                 int64_t seq, int64_t tokens) {
    const hetrun_bert_config *c = &m->cfg;
    const int64_t T = tokens, H = c->hidden, I = c->intermediate;
    const hetrun_activation id = HETRUN_ACT_IDENTITY;
    if (linear(s, m, T, 3 * H, H, m->x, m->layer[i].qkv_w, m->layer[i].qkv_b, m->qkv, 0, id) != 0 ||
        attention(s, m, lens, batch, seq, tokens) != 0)
        return -1;
    /* residual: x = ctx Wo^T + bo + x, LayerNorm into tmp; ff = GELU(tmp Wi^T + bi);
     * residual: tmp = ff Wf^T + bf + tmp, LayerNorm back into x */
    return linear(s, m, T, H, H, m->ctx, m->layer[i].o_w, m->layer[i].o_b, m->x, 1, id) ||
           layernorm(s, m, T, m->x, m->layer[i].ln1_g, m->layer[i].ln1_b, m->tmp) ||
           linear(s, m, T, I, H, m->tmp, m->layer[i].i_w, m->layer[i].i_b, m->ff, 0,
                  c->gelu_tanh ? HETRUN_ACT_GELU : HETRUN_ACT_GELU_ERF) ||
           linear(s, m, T, H, I, m->ff, m->layer[i].f_w, m->layer[i].f_b, m->tmp, 1, id) ||
           layernorm(s, m, T, m->tmp, m->layer[i].ln2_g, m->layer[i].ln2_b, m->x);
}

static void put(const hetrun_bert *m, void *base, int64_t at, float v) {
    if (m->dtype == HETRUN_F32)
        ((float *)base)[at] = v;
    else
        ((uint16_t *)base)[at] =
            m->dtype == HETRUN_BF16 ? hetrun_f32_to_bf16(v) : hetrun_f32_to_f16(v);
}

/* Mean-pooling weights, per group of POOL_GROUP sentences a (sentences x their tokens) matrix,
 * row r 1/len on sentence r's tokens and 0 elsewhere; the groups back to back in pool_host.
 * Returns the elements written. */
static int64_t stage_pooling(hetrun_bert *m, const int32_t *lens, int64_t batch) {
    const int64_t G = pool_group(m);
    int64_t at = 0;
    for (int64_t g0 = 0; g0 < batch; g0 += G) {
        const int64_t g1 = g0 + G < batch ? g0 + G : batch;
        int64_t cols = 0;
        for (int64_t b = g0; b < g1; b++)
            cols += lens[b];
        for (int64_t b = g0, col = 0; b < g1; col += lens[b++])
            for (int64_t j = 0; j < cols; j++)
                put(m, m->pool_host, at + (b - g0) * cols + j,
                    j >= col && j < col + lens[b] ? 1.0f / (float)lens[b] : 0.0f);
        at += (g1 - g0) * cols;
    }
    return at;
}

/* pooled[b] = mean of sentence b's rows of x: one GEMM per group of POOL_GROUP sentences,
 * (sentences x tokens) weights times their (tokens x hidden) rows, fp32 out. */
static int pool(hetrun_session *s, const hetrun_bert *m, const int32_t *lens, int64_t batch) {
    const int64_t G = pool_group(m), H = m->cfg.hidden;
    const uint64_t es = esize(m->dtype);
    uint64_t at = 0, row = 0;
    for (int64_t g0 = 0; g0 < batch; g0 += G) {
        const int64_t g1 = g0 + G < batch ? g0 + G : batch;
        int64_t cols = 0;
        for (int64_t b = g0; b < g1; b++)
            cols += lens[b];
        hetrun_op_desc p = hetrun_op_desc_init(HETRUN_OP_GEMM, m->dtype);
        p.out_dtype = HETRUN_F32;
        p.m = g1 - g0, p.n = H, p.k = cols;
        hetrun_tensor pa[3] = {act_at(m, m->pool_w + at * es),
                               act_at(m, m->x + row * (uint64_t)H * es),
                               act_at(m, m->pooled + (uint64_t)(g0 * H) * 4)};
        if (hetrun_exec_op(s, &p, pa) != 0) return -1;
        at += (uint64_t)((g1 - g0) * cols);
        row += (uint64_t)cols;
    }
    return 0;
}

/* Host inputs of one batch, packed: ids and positions of the real tokens, the pooling
 * weights; for the padded attention the key mask and the row maps between the layouts
 * (pad_src: the packed row of each padded row, the sentence's first for padding; unpad_src:
 * the padded row of each packed one); for the unfused one the key bias. */
static int stage_inputs(hetrun_session *s, hetrun_bert *m, const int32_t *ids, const int32_t *lens,
                        int64_t batch, int64_t seq, int64_t tokens) {
    const int64_t P = batch * seq, MT = m->max_tokens;
    int32_t *packed = m->stage, *pos = m->stage + MT, *mask = m->stage + 2 * MT;
    int32_t *pad_src = m->stage + 3 * MT, *unpad_src = m->stage + 4 * MT;
    for (int64_t b = 0, t = 0; b < batch; b++) {
        const int64_t first = t;
        for (int64_t j = 0; j < seq; j++) {
            const int keep = j < lens[b];
            mask[b * seq + j] = keep;
            pad_src[b * seq + j] = (int32_t)(keep ? first + j : first);
            if (!keep) continue;
            packed[t] = ids[b * seq + j];
            pos[t] = (int32_t)j;
            unpad_src[t++] = (int32_t)(b * seq + j);
        }
    }
    const int64_t pool_elems = stage_pooling(m, lens, batch);
    /* key bias: row i of sentence b adds 0 to its real keys and -inf to its padding */
    const uint64_t es = esize(m->dtype);
    for (int64_t b = 0; !m->fused_attention && b < batch; b++)
        for (int64_t j = 0; j < seq; j++)
            for (int64_t i = 0; i < seq; i++)
                put(m, m->bias_host, (b * seq + i) * seq + j, j < lens[b] ? 0.0f : -INFINITY);
    if (!m->fused_attention &&
        hetrun_session_h2d(s, act_at(m, m->key_bias), m->bias_host, (uint64_t)(P * seq) * es))
        return -1;
    if (!m->per_sentence &&
        (hetrun_session_h2d(s, act_at(m, m->mask), mask, (uint64_t)P * 4) ||
         hetrun_session_h2d(s, act_at(m, m->pad_src), pad_src, (uint64_t)P * 4) ||
         hetrun_session_h2d(s, act_at(m, m->unpad_src), unpad_src, (uint64_t)tokens * 4)))
        return -1;
    return hetrun_session_h2d(s, act_at(m, m->ids), packed, (uint64_t)tokens * 4) ||
           hetrun_session_h2d(s, act_at(m, m->pos_ids), pos, (uint64_t)tokens * 4) ||
           hetrun_session_h2d(s, act_at(m, m->pool_w), m->pool_host, (uint64_t)pool_elems * es);
}

int hetrun_bert_embed(hetrun_session *s, hetrun_bert *m, const int32_t *ids, const int32_t *lens,
                      int64_t batch, int64_t seq, float *out) {
    const hetrun_bert_config *c = &m->cfg;
    const int64_t H = c->hidden;
    if (batch < 1 || batch > m->max_batch || seq < 1 || seq > c->max_seq) {
        snprintf(s->error, sizeof s->error,
                 "embed: batch %lld x %lld tokens is outside the model's buffers (%lld x %lld)",
                 (long long)batch, (long long)seq, (long long)m->max_batch, (long long)c->max_seq);
        return -1;
    }
    int64_t T = 0;
    for (int64_t b = 0; b < batch; b++) {
        if (lens[b] < 1 || lens[b] > seq) {
            snprintf(s->error, sizeof s->error,
                     "embed: sentence %lld of the batch has %d tokens, outside 1..%lld",
                     (long long)b, (int)lens[b], (long long)seq);
            return -1;
        }
        T += lens[b];
    }
    if (stage_inputs(s, m, ids, lens, batch, seq, T) != 0) return -1;
    /* embeddings: word + (position + token type 0), then LayerNorm */
    if (gather(s, m, T, H, m->ids, param_at(m, m->word), c->vocab, 0, m->tmp) != 0 ||
        gather(s, m, T, H, m->pos_ids, param_at(m, m->pos), c->max_positions, 1, m->tmp) != 0 ||
        layernorm(s, m, T, m->tmp, m->emb_g, m->emb_b, m->x) != 0)
        return -1;
    for (int i = 0; i < c->layers; i++)
        if (block(s, m, i, lens, batch, seq, T) != 0) return -1;
    if (pool(s, m, lens, batch) != 0 ||
        hetrun_session_d2h(s, out, act_at(m, m->pooled), (uint64_t)(batch * H) * 4) != 0)
        return -1;
    /* L2 normalisation: batch x H divides on the host, where the rows already are */
    for (int64_t b = 0; c->normalize && b < batch; b++) {
        double ss = 0;
        for (int64_t j = 0; j < H; j++)
            ss += (double)out[b * H + j] * out[b * H + j];
        const float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
        for (int64_t j = 0; j < H; j++)
            out[b * H + j] *= inv;
    }
    return 0;
}
