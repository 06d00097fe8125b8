/* `model: gpt` of the train workload: a GPT decoder on a token file (train_model.h).
 *
 * Every rank maps the same token file; the head is the training split, the tail
 * (val_fraction) the held-out split. A step's global batch is batch_tokens / context
 * sequences; sequence j of step t starts at a position drawn from (seed, t, j) alone, and
 * ranks take consecutive slices of the j range, so the data a step sees does not depend
 * on the rank count, and resuming at step t sees exactly what an uninterrupted run sees.
 * Each rank accumulates its slice in micro-batches (the driver, train_loop.h); backward
 * reports each transformer block's gradient bucket as it completes. */
#include "report/fields.h"
#include "util/progress.h"
#include "workloads/train_gpt.h"

#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spec/job.h"
#include "util/log.h"
#include "workloads/gpt.h"
#include "workloads/stats.h"
#include "workloads/tokens.h"
#include "workloads/train_common.h"
#include "workloads/train_loop.h"
#include "workloads/train_model.h"
#include "workloads/train_spec.h"

static void gpt_check(const void *obj, const hetrun_check_ctx *ctx) {
    const hetrun_gpt_params *p = obj;
    if (p->width % p->heads != 0)
        hetrun_check_error(ctx, "width", "width %lld is not a multiple of heads %lld",
                           (long long)p->width, (long long)p->heads);
    if (p->precision != HETRUN_F32 && p->precision != HETRUN_BF16 && p->precision != HETRUN_F16)
        hetrun_check_error(ctx, "precision", "fp32, bf16 or fp16 (mixed precision), not %s",
                           hetrun_dtype_name((hetrun_dtype)p->precision));
    if (p->batch_tokens % p->context != 0)
        hetrun_check_error(ctx, "batch_tokens",
                           "batch_tokens %lld is not a multiple of context %lld (whole sequences)",
                           (long long)p->batch_tokens, (long long)p->context);
}

static const hetrun_field gpt_fields[] = {
    {"layers", HETRUN_FIELD_INT, 0, offsetof(hetrun_gpt_params, layers), 1, HETRUN_GPT_MAX_LAYERS,
     NULL, NULL, "4", "transformer blocks (GPT-2 124M: 12)"},
    {"heads", HETRUN_FIELD_INT, 0, offsetof(hetrun_gpt_params, heads), 1, 1024, NULL, NULL, "4",
     "attention heads per block (GPT-2 124M: 12)"},
    {"width", HETRUN_FIELD_INT, 0, offsetof(hetrun_gpt_params, width), 1, 1 << 16, NULL, NULL,
     "128", "model width, a multiple of heads (GPT-2 124M: 768)"},
    {"context", HETRUN_FIELD_INT, 0, offsetof(hetrun_gpt_params, context), 1, 1 << 20, NULL, NULL,
     "64", "context length in tokens (GPT-2 124M: 1024)"},
    {"vocab", HETRUN_FIELD_INT, 0, offsetof(hetrun_gpt_params, vocab), 2, 1 << 20, NULL, NULL,
     "256", "vocabulary size; byte-level tokens need 256 (GPT-2: 50257)"},
    {"batch_tokens", HETRUN_FIELD_INT, 0, offsetof(hetrun_gpt_params, batch_tokens), 1, 1LL << 40,
     NULL, NULL, "4096", "global batch in tokens per optimizer step, whatever the rank count"},
    {"micro_batch", HETRUN_FIELD_INT, 0, offsetof(hetrun_gpt_params, micro_batch), 1, 1 << 20, NULL,
     NULL, "8", "sequences per forward on one rank; more per step accumulate gradients"},
    {"grad_clip", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_gpt_params, grad_clip), 0.0, 1e9, NULL,
     NULL, "1.0", "clip the global gradient norm to this; 0: no clipping"},
    {"eval_every", HETRUN_FIELD_INT, 0, offsetof(hetrun_gpt_params, eval_every), 0, 1LL << 40, NULL,
     NULL, "0", "validation loss every N steps (and at the end); 0: at the end only"},
    {"eval_tokens", HETRUN_FIELD_INT, 0, offsetof(hetrun_gpt_params, eval_tokens), 1, 1LL << 40,
     NULL, NULL, "65536", "held-out tokens a validation pass scores (fewer if the split is short)"},
    {"sample_tokens", HETRUN_FIELD_INT, 0, offsetof(hetrun_gpt_params, sample_tokens), 0, 1 << 20,
     NULL, NULL, "200", "tokens of sample text generated at the end (rank 0); 0: none"},
    {"temperature", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_gpt_params, temperature), 0.01, 100.0,
     NULL, NULL, "0.8", "sampling temperature"},
    {"max_val_loss", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_gpt_params, max_val_loss), 0.0, 1e6,
     NULL, NULL, "0.0", "check: the final validation loss must be at most this (0: no check)"},
    {"loss_csv", HETRUN_FIELD_STRING, 0, offsetof(hetrun_gpt_params, loss_csv), 1, 0, NULL, NULL,
     NULL,
     "write the loss curve (step, lr, train loss, grad norm, val loss, step ms) here (rank "
     "0; relative to the working folder, like the report)"},
    {"reference", HETRUN_FIELD_STRING, 0, offsetof(hetrun_gpt_params, reference), 1, 0, NULL, NULL,
     NULL,
     "folder of PyTorch reference tensors (tests/data/gpt): check logits, loss and every "
     "gradient against them instead of training"},
    {"precision", HETRUN_FIELD_DTYPE, 0, offsetof(hetrun_gpt_params, precision), 1, 0, NULL, NULL,
     "fp32",
     "fp32, or bf16 / fp16 mixed precision: matrix products on low-precision copies with fp32 "
     "accumulation, fp32 master weights, optimizer, LayerNorm, attention and loss"},
    {"loss_scale", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_gpt_params, loss_scale), 1.0, 1e30, NULL,
     NULL, "65536",
     "fp16: initial dynamic loss scale; halved (and the step skipped) when a gradient "
     "overflows, doubled after 2000 clean steps"},
    {"dropout", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_gpt_params, dropout), 0.0, 0.95, NULL, NULL,
     "0.0",
     "dropout probability in training after the embeddings and on the attention-projection and "
     "MLP residual branches (as GPT-2); masks from (seed, step, sequence); off in evaluation "
     "and sampling"},
};
const hetrun_schema hetrun_gpt_schema = {"gpt", sizeof(hetrun_gpt_params), gpt_fields,
                                         sizeof gpt_fields / sizeof gpt_fields[0], gpt_check};

static const char *const tokenizer_names[] = {"bytes", "bpe", NULL};

static const hetrun_field text_fields[] = {
    {"corpus", HETRUN_FIELD_STRING_LIST, 0, offsetof(hetrun_text_params, corpus), 1, 0, NULL, NULL,
     NULL, "UTF-8 text files, tokenised into `tokens` when that file is missing"},
    {"tokenizer", HETRUN_FIELD_ENUM, 0, offsetof(hetrun_text_params, tokenizer), 1, 0,
     tokenizer_names, NULL, "bytes",
     "bytes (UTF-8 bytes, vocabulary 256) or bpe (byte-pair merges trained on the corpus)"},
    {"bpe_vocab", HETRUN_FIELD_INT, 0, offsetof(hetrun_text_params, bpe_vocab), 257, 65536, NULL,
     NULL, "1024", "bpe: vocabulary to train up to (gpt.vocab must hold it)"},
    {"tokens", HETRUN_FIELD_STRING, 0, offsetof(hetrun_text_params, tokens), 1, 0, NULL, NULL, NULL,
     "token file (hetrun tokenize); relative paths are taken from the spec file's folder"},
    {"val_fraction", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_text_params, val_fraction), 0.001, 0.5,
     NULL, NULL, "0.1", "tail of the token stream held out for validation"},
};
const hetrun_schema hetrun_text_schema = {"text", sizeof(hetrun_text_params), text_fields,
                                          sizeof text_fields / sizeof text_fields[0], NULL};

static uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Everything that determines the weight trajectory (not the spec file's hash: resume and
 * debug knobs must not change it). */
static void config_hash(const hetrun_gpt_params *g, const hetrun_train_spec *h, uint64_t tokens_crc,
                        uint64_t seed, char out[65]) {
    char text[1024];
    snprintf(text, sizeof text,
             "hetrun-gpt-v1|%lld,%lld,%lld,%lld,%lld|bt=%lld|mb=%lld|clip=%.17g|lr=%.17g,%.17g,"
             "%d,%lld|adamw=%.17g,%.17g,%.17g,%.17g|steps=%lld|seed=%llu|tok=%llx",
             (long long)g->layers, (long long)g->heads, (long long)g->width, (long long)g->context,
             (long long)g->vocab, (long long)g->batch_tokens, (long long)g->micro_batch,
             g->grad_clip, h->lr, h->min_lr, h->schedule == HETRUN_SCHED_COSINE,
             (long long)h->warmup_steps, h->weight_decay, h->beta1, h->beta2, h->eps,
             (long long)h->steps, (unsigned long long)seed, (unsigned long long)tokens_crc);
    /* fp32 runs without dropout keep the hash they always had, so their checkpoints stay
     * resumable. */
    size_t used = strlen(text);
    if (g->precision != HETRUN_F32)
        snprintf(text + used, sizeof text - used, "|precision=%s,scale=%.17g",
                 hetrun_dtype_name((hetrun_dtype)g->precision), g->loss_scale);
    used = strlen(text);
    if (g->dropout > 0.0) snprintf(text + used, sizeof text - used, "|dropout=%.17g", g->dropout);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Rank 0 tokenises the corpus when the token file is missing; every rank then maps it. */
static int open_tokens(hetrun_session *s, const hetrun_text_params *t, hetrun_tokens *tok,
                       char *path, size_t path_len) {
    if (!t->tokens) {
        snprintf(s->error, sizeof s->error, "text.tokens: no token file named (model gpt)");
        return -1;
    }
    hetrun_train_resolve(s, t->tokens, path, path_len);
    int rc = 0;
    char err[1536] = "";
    if (s->rank == 0 && access(path, F_OK) != 0) {
        if (t->corpus.count == 0) {
            snprintf(err, sizeof err, "text.tokens: %s does not exist and text.corpus is empty",
                     path);
            rc = -1;
        } else {
            char **in = calloc(t->corpus.count, sizeof *in);
            for (size_t i = 0; in && i < t->corpus.count; i++) {
                in[i] = malloc(4096);
                if (in[i]) hetrun_train_resolve(s, t->corpus.items[i], in[i], 4096);
            }
            uint64_t count = 0;
            uint32_t vocab = 0;
            rc = in ? hetrun_tokens_write((const char *const *)in, (int)t->corpus.count, path,
                                          t->tokenizer ? (uint32_t)t->bpe_vocab : 256u, &count,
                                          &vocab, err, sizeof err)
                    : -1;
            if (rc == 0)
                HETRUN_INFO("train: tokenised %zu corpus file(s) into %s (%llu tokens, %s, "
                            "vocabulary %u)",
                            t->corpus.count, path, (unsigned long long)count,
                            tokenizer_names[t->tokenizer], vocab);
            for (size_t i = 0; in && i < t->corpus.count; i++)
                free(in[i]);
            free(in);
        }
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, s->comm);
    if (rc != 0) {
        snprintf(s->error, sizeof s->error, "%s",
                 s->rank == 0 ? err : "tokenising the corpus on rank 0 failed (see its error)");
        return -1;
    }
    if (hetrun_tokens_open(path, tok, err, sizeof err) != 0) {
        snprintf(s->error, sizeof s->error, "%s", err);
        return -1;
    }
    if (strcmp(hetrun_tokens_kind(tok), tokenizer_names[t->tokenizer]) != 0) {
        snprintf(s->error, sizeof s->error,
                 "token file %s holds %s tokens but text.tokenizer is %s: name another "
                 "text.tokens file (it is made from the corpus when missing)",
                 path, hetrun_tokens_kind(tok), tokenizer_names[t->tokenizer]);
        return -1;
    }
    return 0;
}

/* Fills ids/targets of `n` sequences starting at the given token positions. */
static int upload_batch(hetrun_session *s, hetrun_gpt *g, const hetrun_tokens *tok,
                        const uint64_t *starts, int64_t n, int64_t T, int32_t *hids,
                        int32_t *htgt) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < T; j++) {
            hids[i * T + j] = hetrun_token_at(tok, starts[i] + (uint64_t)j);
            htgt[i * T + j] = hetrun_token_at(tok, starts[i] + (uint64_t)j + 1);
        }
    return hetrun_session_h2d(s, hetrun_gpt_ids(g), hids, (uint64_t)(n * T) * 4) ||
                   hetrun_session_h2d(s, hetrun_gpt_targets(g), htgt, (uint64_t)(n * T) * 4)
               ? -1
               : 0;
}

/* Mean loss over the validation windows (rank r scores windows r, r+n, ...). Collective. */
static int evaluate(hetrun_session *s, hetrun_gpt *g, const hetrun_tokens *tok, uint64_t val0,
                    int64_t windows, int64_t T, int32_t *hids, int32_t *htgt, float *hloss,
                    double *out) {
    uint64_t starts[64];
    double sum = 0.0;
    const int64_t mb = g->max_batch < 64 ? g->max_batch : 64;
    for (int64_t w = s->rank; w < windows;) {
        int64_t n = 0;
        for (; n < mb && w < windows; n++, w += s->nranks)
            starts[n] = val0 + (uint64_t)(w * T);
        if (upload_batch(s, g, tok, starts, n, T, hids, htgt) != 0 ||
            hetrun_gpt_forward(s, g, n, T, 1) != 0 ||
            hetrun_session_d2h(s, hloss, hetrun_gpt_loss(g), (uint64_t)(n * T) * 4) != 0)
            return -1;
        for (int64_t i = 0; i < n * T; i++)
            sum += hloss[i];
    }
    double total = 0.0;
    MPI_Allreduce(&sum, &total, 1, MPI_DOUBLE, MPI_SUM, s->comm);
    *out = total / (double)(windows * T);
    return 0;
}

/* Cross-entropy of the validation targets under the training split's unigram
 * distribution (add-one smoothed): what a model that ignores context scores. */
static double unigram_baseline(const hetrun_tokens *tok, uint64_t train_end, uint64_t val0,
                               int64_t windows, int64_t T, int64_t vocab) {
    double *cnt = calloc((size_t)vocab, sizeof *cnt);
    if (!cnt) return NAN;
    for (uint64_t i = 0; i < train_end; i++)
        cnt[hetrun_token_at(tok, i)] += 1.0;
    const double total = (double)train_end + (double)vocab;
    double ce = 0.0;
    for (int64_t i = 0; i < windows * T; i++)
        ce -= log((cnt[hetrun_token_at(tok, val0 + (uint64_t)i + 1)] + 1.0) / total);
    free(cnt);
    return ce / (double)(windows * T);
}

/* Samples `n` tokens after a prompt on this rank, temperature softmax on the host. */
static int sample(hetrun_session *s, hetrun_gpt *g, const hetrun_tokens *tok, uint64_t val0,
                  int64_t n, double temperature, uint64_t seed, char **text) {
    const int64_t T = g->cfg.context, V = g->cfg.vocab, prompt = T < 16 ? T : 16;
    int32_t *seq = malloc((size_t)(prompt + n) * 4);
    float *logits = malloc((size_t)V * 4);
    double *p = malloc((size_t)V * sizeof *p);
    size_t longest = 1;
    for (uint32_t v = 0; v < tok->vocab; v++)
        if (tok->token_len[v] > longest) longest = tok->token_len[v];
    const size_t cap = (size_t)(prompt + n) * longest + 1;
    char *out = malloc(cap);
    int rc = -1;
    if (!seq || !logits || !p || !out) {
        snprintf(s->error, sizeof s->error, "out of host memory for sampling");
        goto done;
    }
    for (int64_t i = 0; i < prompt; i++)
        seq[i] = hetrun_token_at(tok, val0 + (uint64_t)i);
    hetrun_rng r = hetrun_rng_seed(seed, 0x73616d70);
    for (int64_t len = prompt; len < prompt + n; len++) {
        const int64_t w = len < T ? len : T;
        if (hetrun_session_h2d(s, hetrun_gpt_ids(g), seq + len - w, (uint64_t)w * 4) != 0 ||
            hetrun_gpt_forward(s, g, 1, w, 0) != 0 ||
            hetrun_session_d2h(s, logits,
                               hetrun_tensor_at(g->act, g->logits + (uint64_t)((w - 1) * V) * 4),
                               (uint64_t)V * 4) != 0)
            goto done;
        double mx = -INFINITY, z = 0.0;
        for (int64_t v = 0; v < V; v++)
            if (logits[v] > mx) mx = logits[v];
        for (int64_t v = 0; v < V; v++)
            z += p[v] = exp(((double)logits[v] - mx) / temperature);
        double u = hetrun_rng_uniform(&r) * z, acc = 0.0;
        int64_t pick = V - 1;
        for (int64_t v = 0; v < V; v++)
            if ((acc += p[v]) >= u) {
                pick = v;
                break;
            }
        seq[len] = (int32_t)pick;
    }
    /* Tokens to text; bytes that do not form valid UTF-8 become '?'. */
    for (size_t i = 0, len = hetrun_tokens_decode(tok, seq, (size_t)(prompt + n), out, cap);
         i < len;) {
        size_t bad = hetrun_utf8_invalid_at((unsigned char *)out + i, len - i);
        if (bad == len - i) break;
        out[i + bad] = '?';
        i += bad + 1;
    }
    *text = out, out = NULL;
    rc = 0;
done:
    free(seq), free(logits), free(p), free(out);
    return rc;
}

static void progress(const hetrun_session *s, int64_t step, int64_t total, double loss, double gn,
                     double tps, double val, double tokens_per_byte) {
    if (s->rank != 0) return;
    char line[256];
    if (isnan(val))
        snprintf(line, sizeof line, "train: step %lld/%lld loss %.4f grad norm %.3f %.0f tokens/s",
                 (long long)step, (long long)total, loss, gn, tps);
    else
        snprintf(line, sizeof line,
                 "train: step %lld/%lld loss %.4f val loss %.4f (%.3f bits/byte) %.0f tokens/s",
                 (long long)step, (long long)total, loss, val, val / M_LN2 * tokens_per_byte, tps);
    hetrun_progress_note(s->rank, line);
}

typedef struct gpt_self {
    const hetrun_gpt_params *gp;
    const hetrun_train_spec *p;
    uint64_t seed;
    hetrun_gpt g;
    hetrun_tokens tok;
    char tok_path[4096];
    uint64_t ntrain, nval, span; /* split sizes; training start positions 0 .. span-1 */
    int64_t windows;             /* validation windows of T tokens */
    double tokens_per_byte, base, val;
    int32_t *hids, *htgt;
    float *hloss;
    uint64_t *starts, *keys; /* of this micro-batch's sequences */
    FILE *csv;
    int64_t steps_run;
    char *sample_text;
} gpt_self;

static int load_batch(hetrun_session *s, hetrun_train_model *m, int64_t step, int64_t first,
                      int64_t count) {
    gpt_self *x = m->self;
    for (int64_t i = 0; i < count; i++) {
        const uint64_t j = (uint64_t)(m->rows_first + first + i); /* sequence of the step */
        const uint64_t h = splitmix((uint64_t)step * 0x100000001b3ull + j);
        x->starts[i] = splitmix(x->seed ^ h) % x->span;
        x->keys[i] = splitmix(x->seed ^ 0xd209u ^ splitmix(h)); /* its dropout masks */
    }
    const int64_t T = x->g.cfg.context;
    return upload_batch(s, &x->g, &x->tok, x->starts, count, T, x->hids, x->htgt) ||
                   hetrun_gpt_dropout_masks(s, &x->g, count, T, x->keys)
               ? -1
               : 0;
}

static int forward(hetrun_session *s, hetrun_train_model *m, int64_t count, double *loss_sum) {
    gpt_self *x = m->self;
    const int64_t T = x->g.cfg.context;
    if (hetrun_gpt_forward(s, &x->g, count, T, 1) != 0 ||
        hetrun_session_d2h(s, x->hloss, hetrun_gpt_loss(&x->g), (uint64_t)(count * T) * 4) != 0)
        return -1;
    double sum = 0.0;
    for (int64_t j = 0; j < count * T; j++)
        sum += x->hloss[j];
    *loss_sum = sum;
    return 0;
}

static int backward(hetrun_session *s, hetrun_train_model *m, int64_t count, double scale,
                    hetrun_bucket_done_fn done, void *ctx) {
    gpt_self *x = m->self;
    return hetrun_gpt_backward(s, &x->g, count, x->g.cfg.context, scale, done, ctx);
}

static int zero_grads(hetrun_session *s, hetrun_train_model *m) {
    gpt_self *x = m->self;
    return hetrun_gpt_zero_grads(s, &x->g);
}

static int step(hetrun_session *s, hetrun_train_model *m, const hetrun_train_opt *o) {
    gpt_self *x = m->self;
    hetrun_gpt_adamw a = {o->lr, o->beta1, o->beta2, o->eps, o->weight_decay, o->t};
    return hetrun_gpt_step(s, &x->g, &a);
}

static int validate(hetrun_session *s, gpt_self *x, double *v) {
    return evaluate(s, &x->g, &x->tok, x->ntrain, x->windows, x->g.cfg.context, x->hids, x->htgt,
                    x->hloss, v);
}

/* Validation every eval_every steps and at the end; the loss curve; progress lines. */
static int after_step(hetrun_session *s, hetrun_train_model *m, const hetrun_train_step_info *i) {
    gpt_self *x = m->self;
    x->steps_run = i->steps_run;
    if (s->rank == 0 && x->gp->loss_csv && !x->csv) { /* a resumed run appends */
        const int resumed = i->step > i->steps_run;
        x->csv = fopen(x->gp->loss_csv, resumed ? "a" : "w");
        if (!x->csv) {
            snprintf(s->error, sizeof s->error, "gpt.loss_csv %s: cannot open for writing",
                     x->gp->loss_csv);
            return -1;
        }
        if (!resumed) fprintf(x->csv, "step,lr,train_loss,grad_norm,val_loss,step_ms\n");
    }
    double v = NAN;
    if ((x->gp->eval_every > 0 && i->step % x->gp->eval_every == 0) || i->step == i->total) {
        if (validate(s, x, &v) != 0) return -1;
        x->val = v;
    }
    if (x->csv) {
        fprintf(x->csv, "%lld,%.6g,%.6f,%.6f,", (long long)i->step, i->lr, i->loss, i->grad_norm);
        if (isnan(v))
            fprintf(x->csv, ",%.3f\n", i->step_s * 1e3);
        else
            fprintf(x->csv, "%.6f,%.3f\n", v, i->step_s * 1e3);
    }
    if (!isnan(v) || (x->p->log_every > 0 && i->step % x->p->log_every == 0))
        progress(s, i->step, i->total, i->loss, i->grad_norm, i->rate, v, x->tokens_per_byte);
    return 0;
}

static int finish(hetrun_session *s, hetrun_train_model *m, cJSON *result, int interrupted,
                  int *ok) {
    gpt_self *x = m->self;
    const hetrun_gpt_params *gp = x->gp;
    const int64_t T = gp->context, G = m->rows_global, lb = m->rows_local, mb = m->micro_batch;
    if (isnan(x->val) && validate(s, x, &x->val) != 0) return -1;
    if (s->rank == 0 && gp->sample_tokens > 0 && !interrupted) {
        if (sample(s, &x->g, &x->tok, x->ntrain, gp->sample_tokens, gp->temperature, x->seed,
                   &x->sample_text) != 0)
            return -1;
        fprintf(stderr, "[rank 0] train: sample (temperature %g):\n%s\n", gp->temperature,
                x->sample_text);
    }
    cJSON_AddStringToObject(result, HETRUN_RF_TOKENS_FILE, x->tok_path);
    cJSON_AddNumberToObject(result, HETRUN_RF_TRAIN_TOKENS, (double)x->ntrain);
    cJSON_AddNumberToObject(result, HETRUN_RF_VAL_TOKENS, (double)x->nval);
    cJSON_AddNumberToObject(result, HETRUN_RF_GLOBAL_BATCH_TOKENS, (double)(G * T));
    cJSON_AddNumberToObject(result, HETRUN_RF_LOCAL_SEQUENCES, (double)lb);
    cJSON_AddNumberToObject(result, HETRUN_RF_MICRO_BATCH, (double)mb);
    cJSON_AddNumberToObject(result, HETRUN_RF_ACCUMULATION_STEPS, (double)((lb + mb - 1) / mb));
    cJSON_AddNumberToObject(result, HETRUN_RF_VAL_LOSS, x->val);
    cJSON_AddNumberToObject(result, HETRUN_RF_VAL_BITS_PER_BYTE,
                            x->val / M_LN2 * x->tokens_per_byte);
    cJSON_AddStringToObject(result, HETRUN_RF_TOKENIZER, hetrun_tokens_kind(&x->tok));
    cJSON_AddNumberToObject(result, HETRUN_RF_TOKENIZER_VOCAB, x->tok.vocab);
    cJSON_AddNumberToObject(result, HETRUN_RF_BYTES_PER_TOKEN,
                            (double)x->tok.text_bytes / (double)(x->tok.count ? x->tok.count : 1));
    cJSON_AddNumberToObject(result, HETRUN_RF_UNIGRAM_VAL_LOSS, x->base);
    cJSON_AddNumberToObject(result, HETRUN_RF_VAL_WINDOWS, (double)x->windows);
    /* the 6N estimate over the tokens this run trained, per rank: cross-check of the count */
    cJSON_AddNumberToObject(result, HETRUN_RF_TRAIN_FLOPS_6N,
                            hetrun_gpt_flops_per_token_estimate(&x->g, T) *
                                (double)(x->steps_run * G * T) / (double)s->nranks);
    if (x->sample_text) cJSON_AddStringToObject(result, HETRUN_RF_SAMPLE, x->sample_text);
    cJSON_AddNumberToObject(result, HETRUN_RF_DROPOUT, gp->dropout);
    if (gp->max_val_loss > 0.0)
        cJSON_AddNumberToObject(result, HETRUN_RF_MAX_VAL_LOSS, gp->max_val_loss);
    *ok = gp->max_val_loss <= 0.0 || x->val <= gp->max_val_loss;
    return 0;
}

static void destroy(hetrun_session *s, hetrun_train_model *m) {
    gpt_self *x = m->self;
    if (x->csv) fclose(x->csv);
    hetrun_gpt_destroy(s, &x->g);
    hetrun_tokens_close(&x->tok);
    free(x->hids), free(x->htgt), free(x->hloss), free(x->starts), free(x->keys);
    free(x->sample_text);
}

static const hetrun_train_model_ops gpt_ops = {load_batch, forward,    backward, zero_grads,
                                               step,       after_step, finish,   destroy};

static int create(hetrun_session *s, const hetrun_train_spec *p, uint64_t seed,
                  hetrun_train_model *m, cJSON *result) {
    (void)result;
    const hetrun_gpt_params *gp = &p->gpt;
    const hetrun_text_params *tp = &p->text;
    gpt_self *x = hetrun_train_model_begin(s, m, &gpt_ops, sizeof *x);
    if (!x) return -1;
    x->gp = gp, x->p = p, x->seed = seed, x->val = NAN;
    const hetrun_gpt_config cfg = {gp->layers,  gp->heads, gp->width,
                                   gp->context, gp->vocab, (hetrun_dtype)gp->precision,
                                   gp->dropout};
    const int64_t T = gp->context, n = s->nranks, r = s->rank;
    hetrun_tokens *tok = &x->tok;
    if (open_tokens(s, tp, tok, x->tok_path, sizeof x->tok_path) != 0) return -1;
    if ((int64_t)tok->vocab > gp->vocab) {
        snprintf(s->error, sizeof s->error,
                 "token file %s has vocabulary %u, larger than gpt.vocab %lld", x->tok_path,
                 tok->vocab, (long long)gp->vocab);
        return -1;
    }
    x->nval = (uint64_t)((double)tok->count * tp->val_fraction);
    x->ntrain = tok->count - x->nval;
    if (x->ntrain < (uint64_t)T + 1 || x->nval < (uint64_t)T + 1) {
        snprintf(s->error, sizeof s->error,
                 "token file %s holds %llu tokens: its training (%llu) and validation "
                 "(%llu, text.val_fraction %g) splits must each hold more than one context "
                 "(gpt.context %lld)",
                 x->tok_path, (unsigned long long)tok->count, (unsigned long long)x->ntrain,
                 (unsigned long long)x->nval, tp->val_fraction, (long long)T);
        return -1;
    }
    const int64_t G = gp->batch_tokens / T; /* sequences per step, all ranks */
    if (G < n) {
        snprintf(s->error, sizeof s->error,
                 "gpt.batch_tokens %lld is %lld sequences, fewer than the %lld ranks",
                 (long long)gp->batch_tokens, (long long)G, (long long)n);
        return -1;
    }
    m->rows_global = G;
    m->rows_local = G / n + (r < G % n);
    m->rows_first = r * (G / n) + (r < G % n ? r : G % n);
    m->micro_batch = gp->micro_batch < m->rows_local ? gp->micro_batch : m->rows_local;
    m->units_per_row = T, m->rate_field = HETRUN_RF_TOKENS_PER_S;
    m->total_steps = p->steps; /* > 0: train_check */
    m->compute = cfg.compute;
    m->loss_scale = gp->loss_scale;
    m->grad_stats = 1, m->grad_clip = gp->grad_clip;
    const int64_t lb_max = G / n + (G % n != 0);
    const int64_t mb_max = gp->micro_batch < lb_max ? gp->micro_batch : lb_max;
    const int64_t eval_max = (int64_t)((x->nval - 1) / (uint64_t)T);
    x->windows = gp->eval_tokens / T > 0 ? gp->eval_tokens / T : 1;
    if (x->windows > eval_max) x->windows = eval_max;
    hetrun_gpt *g = &x->g;
    if (hetrun_gpt_create(s, g, &cfg, mb_max > 1 ? mb_max : 1, 1) != 0 ||
        hetrun_gpt_init_weights(s, g, seed) != 0)
        return -1;
    const size_t rows = (size_t)(g->max_batch * T);
    x->hids = malloc(rows * 4), x->htgt = malloc(rows * 4), x->hloss = malloc(rows * 4);
    x->starts = malloc((size_t)g->max_batch * sizeof *x->starts);
    x->keys = malloc((size_t)g->max_batch * sizeof *x->keys);
    if (!x->hids || !x->htgt || !x->hloss || !x->starts || !x->keys) {
        snprintf(s->error, sizeof s->error, "out of host memory (%lld sequences of %lld tokens)",
                 (long long)g->max_batch, (long long)T);
        return -1;
    }
    m->tensors = g->tensors, m->tensor_count = g->tensor_count;
    m->buckets = g->buckets, m->bucket_count = (int)cfg.layers + 1;
    m->bucket_text = "one per transformer block from the last, then the embeddings";
    m->param_count = g->param_count, m->real_params = g->real_params;
    m->params = g->params, m->grads = g->grads, m->state = g->state;
    m->state_slots = 2;
    m->vocab = gp->vocab;
    config_hash(gp, p, tok->count, seed, m->config_sha256);
    snprintf(m->model, sizeof m->model,
             "gpt layers=%lld heads=%lld width=%lld context=%lld vocab=%lld", (long long)gp->layers,
             (long long)gp->heads, (long long)gp->width, (long long)gp->context,
             (long long)gp->vocab);

    /* nats per token to bits per byte of text: a BPE token stands for several bytes */
    uint64_t val_bytes = 0;
    for (uint64_t i = x->ntrain; i < tok->count; i++)
        val_bytes += tok->token_len[hetrun_token_at(tok, i)];
    x->tokens_per_byte = (double)x->nval / (double)(val_bytes ? val_bytes : 1);
    x->base = unigram_baseline(tok, x->ntrain, x->ntrain, x->windows, T, gp->vocab);
    x->span = x->ntrain - (uint64_t)T;
    return 0;
}

/* gpt.c's ops: the matrix products in the compute dtype (fp32, or bf16/fp16 copies made by
 * casts, accumulating in fp32), everything else in fp32; MUL for dropout; the driver's
 * gradient checks (sum of squares, non-finite count, scale). */
static void needs(const hetrun_train_spec *p, hetrun_op_needs *needs) {
    static const hetrun_op_kind ops[] = {HETRUN_OP_REDUCE_SUM_AXIS0,
                                         HETRUN_OP_LAYERNORM_FORWARD,
                                         HETRUN_OP_LAYERNORM_BACKWARD,
                                         HETRUN_OP_AXPY,
                                         HETRUN_OP_EMBEDDING_FORWARD,
                                         HETRUN_OP_EMBEDDING_BACKWARD,
                                         HETRUN_OP_ATTENTION_FORWARD,
                                         HETRUN_OP_ATTENTION_BACKWARD,
                                         HETRUN_OP_XENT_FORWARD,
                                         HETRUN_OP_XENT_BACKWARD,
                                         HETRUN_OP_SUM_SQUARES,
                                         HETRUN_OP_NONFINITE_COUNT,
                                         HETRUN_OP_SCALE,
                                         HETRUN_OP_ADAMW,
                                         HETRUN_OP_FILL};
    const uint32_t c = (uint32_t)p->gpt.precision;
    hetrun_op_needs_add(needs, HETRUN_OP_GEMM, c, HETRUN_F32, 0);
    hetrun_op_needs_add(needs, HETRUN_OP_GEMM_BIAS_ACT, c, HETRUN_F32, HETRUN_ACT_IDENTITY);
    hetrun_op_needs_add(needs, HETRUN_OP_GEMM_BIAS_ACT, c, HETRUN_F32, HETRUN_ACT_GELU);
    if (c != HETRUN_F32) hetrun_op_needs_add(needs, HETRUN_OP_CAST, HETRUN_F32, c, 0);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        hetrun_op_needs_add(needs, ops[i], HETRUN_F32, HETRUN_F32, 0);
    hetrun_op_needs_add(needs, HETRUN_OP_ACT_BACKWARD, HETRUN_F32, HETRUN_F32, HETRUN_ACT_GELU);
    if (p->gpt.dropout > 0.0) hetrun_op_needs_add(needs, HETRUN_OP_MUL, HETRUN_F32, HETRUN_F32, 0);
}

const hetrun_train_model_type hetrun_train_gpt = {create, needs};
