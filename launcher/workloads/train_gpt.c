/* `model: gpt` of the train workload: a GPT decoder trained data-parallel on a token file.
 *
 * Every rank maps the same token file; the head is the training split, the tail
 * (val_fraction) the held-out split. A step's global batch is batch_tokens / context
 * sequences; sequence j of step t starts at a position drawn from (seed, t, j) alone, and
 * ranks take consecutive slices of the j range, so the data a step sees does not depend
 * on the rank count, and resuming at step t sees exactly what an uninterrupted run sees.
 * Each rank accumulates its slice in micro-batches; during the last micro-batch's backward
 * each transformer block's gradient bucket is allreduced as soon as it completes. */
#include "report/fields.h"
#include "util/progress.h"
#include "workloads/train_gpt.h"

#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/checkpoint_request.h"
#include "exec/collective.h"
#include "spec/job.h"
#include "util/log.h"
#include "workloads/gpt.h"
#include "workloads/gpt_reference.h"
#include "workloads/ckpt_resume.h"
#include "workloads/nn_checkpoint.h"
#include "workloads/stats.h"
#include "workloads/tokens.h"
#include "workloads/train_common.h"
#include "util/clock.h"

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

static double lr_at(const hetrun_lm_hparams *h, int64_t step) {
    if (h->warmup_steps > 0 && step < h->warmup_steps)
        return h->lr * (double)(step + 1) / (double)h->warmup_steps;
    if (!h->cosine) return h->lr;
    int64_t span = h->steps - h->warmup_steps;
    double frac = span > 0 ? (double)(step - h->warmup_steps) / (double)span : 1.0;
    return h->min_lr + (h->lr - h->min_lr) * 0.5 * (1.0 + cos(M_PI * frac));
}

/* Everything that determines the weight trajectory (not the spec file's hash: resume and
 * debug knobs must not change it). */
static void config_hash(const hetrun_gpt_params *g, const hetrun_lm_hparams *h, uint64_t tokens_crc,
                        uint64_t seed, char out[65]) {
    char text[1024];
    snprintf(text, sizeof text,
             "hetrun-gpt-v1|%lld,%lld,%lld,%lld,%lld|bt=%lld|mb=%lld|clip=%.17g|lr=%.17g,%.17g,"
             "%d,%lld|adamw=%.17g,%.17g,%.17g,%.17g|steps=%lld|seed=%llu|tok=%llx",
             (long long)g->layers, (long long)g->heads, (long long)g->width, (long long)g->context,
             (long long)g->vocab, (long long)g->batch_tokens, (long long)g->micro_batch,
             g->grad_clip, h->lr, h->min_lr, h->cosine, (long long)h->warmup_steps, h->weight_decay,
             h->beta1, h->beta2, h->eps, (long long)h->steps, (unsigned long long)seed,
             (unsigned long long)tokens_crc);
    /* fp32 runs keep the hash they always had, so their checkpoints stay resumable. */
    size_t used = strlen(text);
    if (g->precision != HETRUN_F32)
        snprintf(text + used, sizeof text - used, "|precision=%s,scale=%.17g",
                 hetrun_dtype_name((hetrun_dtype)g->precision), g->loss_scale);
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

typedef struct bucket_ctx {
    int active; /* allreduce buckets during this backward (the last micro-batch) */
    double reduce_s;
} bucket_ctx;

static int reduce_bucket(hetrun_session *s, hetrun_gpt *g, int b, void *ctx) {
    bucket_ctx *c = ctx;
    if (!c->active) return 0;
    double t0 = hetrun_now_s();
    int rc = hetrun_allreduce_sum_f32(s, hetrun_tensor_at(g->grads, g->buckets[b].offset * 4),
                                      g->buckets[b].count);
    c->reduce_s += hetrun_now_s() - t0;
    return rc;
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

/* fp16 dynamic loss scaling state (see the training loop); checkpointed. */
typedef struct loss_scaler {
    double scale;
    int64_t good, skipped; /* clean steps since the last change; steps skipped in all */
} loss_scaler;

static int write_ckpt(hetrun_session *s, hetrun_gpt *g, int64_t step, const char *hash,
                      const char *model, const loss_scaler *ls, float *hp, float *hs,
                      int *written) {
    const hetrun_job *job = s->job;
    int rc = 0;
    if (hetrun_session_d2h(s, hp, hetrun_tensor_at(g->params, 0), g->param_count * 4) != 0 ||
        hetrun_session_d2h(s, hs, hetrun_tensor_at(g->state, 0), 2 * g->param_count * 4) != 0)
        rc = -1;
    if (rc == 0 && s->rank == 0) {
        hetrun_nn_ckpt_meta m = {.step = step, .vocab = g->cfg.vocab};
        snprintf(m.config_sha256, sizeof m.config_sha256, "%s", hash);
        snprintf(m.model, sizeof m.model, "%s", model);
        if (g->cfg.compute == HETRUN_F16)
            snprintf(m.loss_scaler, sizeof m.loss_scaler, "scale=%.17g good=%lld skipped=%lld",
                     ls->scale, (long long)ls->good, (long long)ls->skipped);
        char err[1024];
        if (hetrun_nn_ckpt_write(job->checkpoint.dir, g->tensors, g->tensor_count, g->param_count,
                                 hp, hs, &m, job->checkpoint.keep, err, sizeof err) != 0) {
            snprintf(s->error, sizeof s->error, "%s", err);
            rc = -1;
        }
    }
    return hetrun_train_ckpt_agree(s, rc, written);
}

int hetrun_train_gpt_run(hetrun_session *s, const hetrun_gpt_params *gp,
                         const hetrun_text_params *tp, const hetrun_lm_hparams *h, cJSON *result) {
    const hetrun_job *job = s->job;
    const hetrun_gpt_config cfg = {gp->layers,  gp->heads, gp->width,
                                   gp->context, gp->vocab, (hetrun_dtype)gp->precision};
    if (gp->reference) return hetrun_gpt_reference_check(s, &cfg, gp->reference, result);
    const uint64_t seed = h->seed >= 0 ? (uint64_t)h->seed : job ? (uint64_t)job->seed : 1;
    const int64_t T = gp->context, n = s->nranks, r = s->rank;
    hetrun_tokens tok = {0};
    hetrun_gpt g;
    memset(&g, 0, sizeof g);
    int32_t *hids = NULL, *htgt = NULL;
    float *hloss = NULL, *hp = NULL, *hs = NULL;
    uint64_t *starts = NULL;
    double *step_ms = NULL;
    char *sample_text = NULL;
    FILE *csv = NULL;
    int rc = -1;
    char tok_path[4096];
    if (open_tokens(s, tp, &tok, tok_path, sizeof tok_path) != 0) goto out;
    if ((int64_t)tok.vocab > gp->vocab) {
        snprintf(s->error, sizeof s->error,
                 "token file %s has vocabulary %u, larger than gpt.vocab %lld", tok_path, tok.vocab,
                 (long long)gp->vocab);
        goto out;
    }
    const uint64_t nval = (uint64_t)((double)tok.count * tp->val_fraction);
    const uint64_t ntrain = tok.count - nval;
    if (ntrain < (uint64_t)T + 1 || nval < (uint64_t)T + 1) {
        snprintf(s->error, sizeof s->error,
                 "token file %s holds %llu tokens: its training (%llu) and validation "
                 "(%llu, text.val_fraction %g) splits must each hold more than one context "
                 "(gpt.context %lld)",
                 tok_path, (unsigned long long)tok.count, (unsigned long long)ntrain,
                 (unsigned long long)nval, tp->val_fraction, (long long)T);
        goto out;
    }
    const int64_t G = gp->batch_tokens / T; /* sequences per step, all ranks */
    if (G < n) {
        snprintf(s->error, sizeof s->error,
                 "gpt.batch_tokens %lld is %lld sequences, fewer than the %lld ranks",
                 (long long)gp->batch_tokens, (long long)G, (long long)n);
        goto out;
    }
    const int64_t lb = G / n + (r < G % n), loff = r * (G / n) + (r < G % n ? r : G % n);
    const int64_t mb = gp->micro_batch < lb ? gp->micro_batch : lb;
    const int64_t mb_max =
        gp->micro_batch < G / n + (G % n != 0) ? gp->micro_batch : G / n + (G % n != 0);
    const int64_t total = h->steps; /* > 0: train_check */
    const int64_t eval_max = (int64_t)((nval - 1) / (uint64_t)T);
    int64_t windows = gp->eval_tokens / T > 0 ? gp->eval_tokens / T : 1;
    if (windows > eval_max) windows = eval_max;
    if (hetrun_gpt_create(s, &g, &cfg, mb_max > 1 ? mb_max : 1, 1) != 0 ||
        hetrun_gpt_init_weights(s, &g, seed) != 0)
        goto out;
    char hash[65], model[128];
    config_hash(gp, h, tok.count, seed, hash);
    snprintf(model, sizeof model, "gpt layers=%lld heads=%lld width=%lld context=%lld vocab=%lld",
             (long long)gp->layers, (long long)gp->heads, (long long)gp->width,
             (long long)gp->context, (long long)gp->vocab);
    const size_t rows = (size_t)(g.max_batch * T);
    hids = malloc(rows * 4), htgt = malloc(rows * 4), hloss = malloc(rows * 4);
    hp = malloc((size_t)g.param_count * 4), hs = malloc((size_t)g.param_count * 8);
    starts = malloc((size_t)lb * sizeof *starts);
    step_ms = malloc((size_t)total * sizeof *step_ms);
    if (!hids || !htgt || !hloss || !hp || !hs || !starts || !step_ms) {
        snprintf(s->error, sizeof s->error, "out of host memory (%llu parameters)",
                 (unsigned long long)g.param_count);
        goto out;
    }

    int64_t step = 0;
    loss_scaler resumed_scaler = {0, 0, 0};
    if (job && job->checkpoint.dir && job->checkpoint.resume) {
        char path[4096], err[2048];
        hetrun_nn_ckpt_meta m = {.vocab = gp->vocab};
        snprintf(m.model, sizeof m.model, "%s", model);
        /* Padding of the flat buffers is zero; the loader fills only the tensors. */
        memset(hp, 0, (size_t)g.param_count * 4), memset(hs, 0, (size_t)g.param_count * 8);
        int got =
            hetrun_nn_ckpt_resume(s, job->checkpoint.dir, g.tensors, g.tensor_count, g.param_count,
                                  hp, hs, &m, path, sizeof path, err, sizeof err);
        if (got < 0) {
            snprintf(s->error, sizeof s->error, "resume: %s", err);
            goto out;
        }
        if (got > 0) {
            if (strcmp(m.config_sha256, hash) != 0 || m.step > total) {
                snprintf(s->error, sizeof s->error,
                         "resume: checkpoint %s does not match this job: %s (checkpoint "
                         "config %.16s... step %lld; job config %.16s... %lld steps)",
                         path,
                         m.step > total ? "step beyond this run's total"
                                        : "training configuration differs",
                         m.config_sha256, (long long)m.step, hash, (long long)total);
                goto out;
            }
            if (hetrun_session_h2d(s, hetrun_tensor_at(g.params, 0), hp, g.param_count * 4) ||
                hetrun_session_h2d(s, hetrun_tensor_at(g.state, 0), hs, g.param_count * 8))
                goto out;
            step = m.step;
            if (cfg.compute == HETRUN_F16) {
                long long good = 0, skipped = 0;
                if (sscanf(m.loss_scaler, "scale=%lg good=%lld skipped=%lld", &resumed_scaler.scale,
                           &good, &skipped) != 3 ||
                    !(resumed_scaler.scale > 0)) {
                    snprintf(s->error, sizeof s->error,
                             "resume: checkpoint %s lacks a valid fp16 loss_scaler in its "
                             "__metadata__ (found \"%s\")",
                             path, m.loss_scaler);
                    goto out;
                }
                resumed_scaler.good = good, resumed_scaler.skipped = skipped;
            }
            cJSON_AddStringToObject(result, "resumed_from", path);
            cJSON_AddNumberToObject(result, "resumed_at_step", (double)step);
            if (s->rank == 0)
                HETRUN_INFO("train: resumed from %s at step %lld", path, (long long)step);
        }
    }
    if (hetrun_collective_prepare(s, g.param_count * 4) != 0) goto out;
    if (s->rank == 0 && gp->loss_csv) {
        csv = fopen(gp->loss_csv, step > 0 ? "a" : "w");
        if (!csv) {
            snprintf(s->error, sizeof s->error, "gpt.loss_csv %s: cannot open for writing",
                     gp->loss_csv);
            goto out;
        }
        if (step == 0) fprintf(csv, "step,lr,train_loss,grad_norm,val_loss,step_ms\n");
    }

    /* nats per token to bits per byte of text: a BPE token stands for several bytes */
    uint64_t val_bytes = 0;
    for (uint64_t i = ntrain; i < tok.count; i++)
        val_bytes += tok.token_len[hetrun_token_at(&tok, i)];
    const double val_tokens_per_byte = (double)nval / (double)(val_bytes ? val_bytes : 1);
    const double base = unigram_baseline(&tok, ntrain, ntrain, windows, T, gp->vocab);
    const double inv = 1.0 / (double)(G * T);
    const uint64_t span = ntrain - (uint64_t)T; /* start positions 0 .. span-1 */
    /* fp16: dynamic loss scaling (as PyTorch's GradScaler): the loss is scaled before
     * backward so small gradients survive fp16; an overflow skips the step and halves the
     * scale, 2000 clean steps double it; AdamW's step count advances only on applied steps. */
    loss_scaler ls = {gp->precision == HETRUN_F16 ? gp->loss_scale : 1.0, 0, 0};
    if (resumed_scaler.scale > 0) ls = resumed_scaler;
    int64_t overflow_run = 0;
    double train_flops = 0.0, train_s = 0.0, reduce_s = 0.0, val = NAN;
    int64_t steps_run = 0;
    int ckpts = 0, interrupted = 0, ok = 1;
    const int64_t every = job ? job->checkpoint.every : 0;
    while (step < total) {
        const double t0 = hetrun_now_s(), f0 = s->usage.flops;
        for (int64_t i = 0; i < lb; i++)
            starts[i] = splitmix(seed ^ splitmix((uint64_t)step * 0x100000001b3ull +
                                                 (uint64_t)(loff + i))) %
                        span;
        bucket_ctx bc = {0, 0.0};
        double loss_sum = 0.0;
        if (hetrun_gpt_zero_grads(s, &g) != 0) goto out;
        for (int64_t i = 0; i < lb; i += mb) {
            const int64_t k = lb - i < mb ? lb - i : mb;
            bc.active = i + k == lb;
            if (upload_batch(s, &g, &tok, starts + i, k, T, hids, htgt) != 0 ||
                hetrun_gpt_forward(s, &g, k, T, 1) != 0 ||
                hetrun_session_d2h(s, hloss, hetrun_gpt_loss(&g), (uint64_t)(k * T) * 4) != 0 ||
                hetrun_gpt_backward(s, &g, k, T, inv * ls.scale, reduce_bucket, &bc) != 0)
                goto out;
            for (int64_t j = 0; j < k * T; j++)
                loss_sum += hloss[j];
        }
        double gl = 0.0, sumsq = 0.0;
        int64_t nonfinite = 0;
        MPI_Allreduce(&loss_sum, &gl, 1, MPI_DOUBLE, MPI_SUM, s->comm);
        gl /= (double)(G * T);
        if (hetrun_gpt_grad_stats(s, &g, &sumsq, &nonfinite) != 0) goto out;
        const int overflow = !isfinite(gl) || nonfinite > 0 || !isfinite(sumsq);
        /* every rank sees the same reduced gradients, so every rank skips together */
        const int skip = overflow && gp->precision == HETRUN_F16 && ++overflow_run <= 32;
        if (overflow && !skip) {
            snprintf(s->error, sizeof s->error,
                     "step %lld: non-finite %s (loss %g, %lld non-finite gradient "
                     "elements)%s; lower lr or check the data",
                     (long long)(step + 1), !isfinite(gl) ? "loss" : "gradient", gl,
                     (long long)nonfinite,
                     gp->precision == HETRUN_F16
                         ? ", 33 steps in a row although the fp16 loss scale was halved each "
                           "time (the forward pass itself overflows fp16: try precision bf16)"
                         : "");
            goto out;
        }
        const double lr = lr_at(h, step);
        double gnorm = NAN;
        if (skip) {
            if (s->rank == 0)
                HETRUN_WARN("train: step %lld: fp16 gradients overflowed at loss scale %g: step "
                            "skipped, scale now %g",
                            (long long)(step + 1), ls.scale, ls.scale / 2);
            ls.scale /= 2, ls.good = 0, ls.skipped++;
        } else {
            overflow_run = 0;
            /* one pass over the gradients: unscale and clip together */
            gnorm = sqrt(sumsq) / ls.scale;
            const double clip =
                gp->grad_clip > 0.0 && gnorm > gp->grad_clip ? gp->grad_clip / gnorm : 1.0;
            if (clip / ls.scale != 1.0 && hetrun_gpt_scale_grads(s, &g, clip / ls.scale) != 0)
                goto out;
            if (gp->precision == HETRUN_F16 && ++ls.good == 2000) ls.scale *= 2, ls.good = 0;
            hetrun_gpt_adamw o = {lr,     h->beta1,        h->beta2,
                                  h->eps, h->weight_decay, step + 1 - ls.skipped};
            if (hetrun_gpt_step(s, &g, &o) != 0) goto out;
        }
        if (hetrun_session_sync(s) != 0) goto out;
        double dt = hetrun_now_s() - t0;
        train_flops += s->usage.flops - f0;
        train_s += dt, reduce_s += bc.reduce_s;
        step_ms[steps_run++] = dt * 1e3;
        step++;
        double v = NAN;
        if ((gp->eval_every > 0 && step % gp->eval_every == 0) || step == total) {
            if (evaluate(s, &g, &tok, ntrain, windows, T, hids, htgt, hloss, &v) != 0) goto out;
            val = v;
        }
        if (csv) {
            fprintf(csv, "%lld,%.6g,%.6f,%.6f,", (long long)step, lr, gl, gnorm);
            if (isnan(v))
                fprintf(csv, ",%.3f\n", dt * 1e3);
            else
                fprintf(csv, "%.6f,%.3f\n", v, dt * 1e3);
        }
        char detail[48];
        snprintf(detail, sizeof detail, "loss %.4f", gl);
        hetrun_progress_update(step, total, "steps", detail);
        if (!isnan(v) || (h->log_every > 0 && step % h->log_every == 0))
            progress(s, step, total, gl, gnorm, (double)(steps_run * G * T) / train_s, v,
                     val_tokens_per_byte);
        const int req = hetrun_checkpoint_request_poll(s, step); /* a signal asked for one */
        if (job && job->checkpoint.dir && ((every > 0 && step % every == 0) || req) &&
            step < total && write_ckpt(s, &g, step, hash, model, &ls, hp, hs, &ckpts) != 0)
            goto out;
        if (req == HETRUN_CKPT_REQ_STOP && step < total) {
            hetrun_checkpoint_request_stop_error(s, step);
            goto out;
        }
        if (h->stop_after > 0 && steps_run >= h->stop_after && step < total) {
            interrupted = 1;
            break;
        }
    }
    if (!interrupted && steps_run > 0 && job && job->checkpoint.dir &&
        write_ckpt(s, &g, step, hash, model, &ls, hp, hs, &ckpts) != 0)
        goto out;
    if (isnan(val) && evaluate(s, &g, &tok, ntrain, windows, T, hids, htgt, hloss, &val) != 0)
        goto out;
    if (s->rank == 0 && gp->sample_tokens > 0 && !interrupted) {
        if (sample(s, &g, &tok, ntrain, gp->sample_tokens, gp->temperature, seed, &sample_text) !=
            0)
            goto out;
        fprintf(stderr, "[rank 0] train: sample (temperature %g):\n%s\n", gp->temperature,
                sample_text);
    }

    if (hetrun_session_d2h(s, hp, hetrun_tensor_at(g.params, 0), g.param_count * 4) != 0) goto out;
    char crc[9];
    hetrun_train_crc_hex(hp, g.param_count, crc);
    int equal = hetrun_train_crc_all_equal(s, crc, result);
    if (equal < 0) goto out;

    const double tokens = (double)(steps_run * G * T);
    const double tps = train_s > 0 ? tokens / train_s : 0.0;
    const double peak = s->info.peak_flops[cfg.compute];
    const double fpt = hetrun_gpt_flops_per_token_estimate(&g, T);
    cJSON_AddStringToObject(result, "model", model);
    cJSON_AddNumberToObject(result, "parameters", (double)g.real_params);
    cJSON_AddStringToObject(result, "precision", hetrun_dtype_name(cfg.compute));
    if (cfg.compute == HETRUN_F16) {
        cJSON_AddNumberToObject(result, "loss_scale", ls.scale);
        cJSON_AddNumberToObject(result, "skipped_steps", (double)ls.skipped);
    }
    cJSON_AddStringToObject(result, "tokens_file", tok_path);
    cJSON_AddNumberToObject(result, "train_tokens", (double)ntrain);
    cJSON_AddNumberToObject(result, "val_tokens", (double)nval);
    cJSON_AddNumberToObject(result, "global_batch_tokens", (double)(G * T));
    cJSON_AddNumberToObject(result, "local_sequences", (double)lb);
    cJSON_AddNumberToObject(result, "micro_batch", (double)mb);
    cJSON_AddNumberToObject(result, "accumulation_steps", (double)((lb + mb - 1) / mb));
    cJSON_AddNumberToObject(result, "ranks", (double)n);
    cJSON_AddNumberToObject(result, "steps_total", (double)total);
    cJSON_AddNumberToObject(result, "steps_run", (double)steps_run);
    cJSON_AddNumberToObject(result, "final_step", (double)step);
    cJSON_AddBoolToObject(result, "interrupted", interrupted);
    cJSON_AddNumberToObject(result, "val_loss", val);
    cJSON_AddNumberToObject(result, "val_bits_per_byte", val / M_LN2 * val_tokens_per_byte);
    cJSON_AddStringToObject(result, "tokenizer", hetrun_tokens_kind(&tok));
    cJSON_AddNumberToObject(result, "tokenizer_vocab", tok.vocab);
    cJSON_AddNumberToObject(result, "bytes_per_token",
                            (double)tok.text_bytes / (double)(tok.count ? tok.count : 1));
    cJSON_AddNumberToObject(result, "unigram_val_loss", base);
    cJSON_AddNumberToObject(result, "val_windows", (double)windows);
    cJSON_AddNumberToObject(result, "tokens_per_s", tps);
    cJSON_AddItemToObject(result, "step_time_ms",
                          hetrun_stats_json(hetrun_stats_of(step_ms, (size_t)steps_run)));
    cJSON_AddNumberToObject(result, "allreduce_ms_per_step",
                            steps_run ? 1e3 * reduce_s / (double)steps_run : 0.0);
    cJSON_AddStringToObject(result, "allreduce",
                            n == 1                           ? "none"
                            : hetrun_collective_is_device(s) ? "device"
                                                             : "host-mpi");
    cJSON_AddStringToObject(result, "allreduce_buckets",
                            "per transformer block, issued as its "
                            "gradients complete");
    cJSON_AddNumberToObject(result, "train_flops_counted", train_flops);
    cJSON_AddNumberToObject(result, "train_flops_6n_estimate", fpt * tokens / (double)n);
    cJSON_AddNumberToObject(result, "achieved_flop_s", train_s > 0 ? train_flops / train_s : 0.0);
    if (peak > 0)
        cJSON_AddNumberToObject(result, "mfu", train_s > 0 ? train_flops / train_s / peak : 0.0);
    else
        cJSON_AddNullToObject(result, "mfu");
    cJSON_AddNumberToObject(result, "peak_flop_s", peak); /* of the compute dtype */
    if (sample_text) cJSON_AddStringToObject(result, "sample", sample_text);
    cJSON_AddStringToObject(result, "weights_crc32", crc);
    cJSON_AddBoolToObject(result, "weights_equal_on_all_ranks", equal == 1);
    cJSON_AddStringToObject(result, "config_sha256", hash);
    cJSON_AddNumberToObject(result, "checkpoints_written", ckpts);
    ok = equal == 1 && (gp->max_val_loss <= 0.0 || val <= gp->max_val_loss);
    if (gp->max_val_loss > 0.0) cJSON_AddNumberToObject(result, "max_val_loss", gp->max_val_loss);
    hetrun_result_set_check(result, interrupted && equal == 1 ? HETRUN_CHECK_SKIPPED
                                    : ok                      ? HETRUN_CHECK_PASSED
                                                              : HETRUN_CHECK_FAILED);
    rc = 0;
out:
    if (csv) fclose(csv);
    hetrun_gpt_destroy(s, &g);
    hetrun_tokens_close(&tok);
    free(hids), free(htgt), free(hloss), free(hp), free(hs), free(starts), free(step_ms);
    free(sample_text);
    return rc;
}
