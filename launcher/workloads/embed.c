/* The embed workload: sentence embeddings from a pre-trained BERT encoder (a Hugging Face /
 * sentence-transformers folder: safetensors weights, tokenizer.json). Embeds every input
 * sentence once (in length order, so batches carry little padding) into an optional .npy
 * file and compares them with an optional reference; then serves requests of each batch
 * size, end to end (tokenize, ids to the device, forward, embeddings back), and reports
 * latency percentiles and sentences/s. Under mpirun the embedding pass is shared: batches
 * (in length order) are dealt to the ranks in snake order (0 1 1 0 0 1 ...), so every rank
 * gets short and long batches alike, and one sum-allreduce of the disjoint rows gives every rank
 * all of them (adding zeros is exact); each rank's usage counts only the batches it ran. Serving is
 * timed on every rank, independently. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"
#include "report/fields.h"
#include "spec/job.h"
#include "text/sentences.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/progress.h"
#include "workloads/bert.h"
#include "workloads/stats.h"
#include "workloads/train_common.h"
#include "workloads/workload.h"

typedef struct embed_params {
    char *model;
    char *input;
    hetrun_string_list sentences;
    char *output;
    int dtype;
    int attention;
    int64_t max_length;
    hetrun_int_list batch_sizes;
    int64_t warmup, iterations;
    double duration;
    char *reference;
    double min_cosine;
} embed_params;

enum { ATTENTION_GEMM, ATTENTION_FUSED, ATTENTION_AUTO };
static const char *const attention_names[] = {"gemm", "fused", "auto", NULL};

static const hetrun_field embed_fields[] = {
    {"model", HETRUN_FIELD_STRING, HETRUN_FIELD_REQUIRED, offsetof(embed_params, model), 1, 0, NULL,
     NULL, NULL,
     "model folder (config.json, model.safetensors, tokenizer.json), e.g. from "
     "scripts/get-model.sh; ~/ is the home folder, other relative paths start at the spec's "
     "folder"},
    {"input", HETRUN_FIELD_STRING, 0, offsetof(embed_params, input), 1, 0, NULL, NULL, NULL,
     "UTF-8 file of sentences, one per line (or give `sentences`)"},
    {"sentences", HETRUN_FIELD_STRING_LIST, 0, offsetof(embed_params, sentences), 1, 0, NULL, NULL,
     NULL, "the sentences themselves (or give `input`)"},
    {"output", HETRUN_FIELD_STRING, 0, offsetof(embed_params, output), 1, 0, NULL, NULL, NULL,
     ".npy file for the embeddings (sentences x hidden, float32, input order; from the working "
     "directory); rank 0 writes it"},
    {"dtype", HETRUN_FIELD_DTYPE, 0, offsetof(embed_params, dtype), 1, 0, NULL, NULL, "fp32",
     "weights and compute: fp32, bf16 or fp16 (pooling and output in fp32)"},
    {"attention", HETRUN_FIELD_ENUM, 0, offsetof(embed_params, attention), 1, 0, attention_names,
     NULL, "auto",
     "gemm: per head, batched GEMMs over the sentences and a softmax, padded keys masked; "
     "fused: the attention_forward op with a key-padding mask (one op per layer); auto: fused "
     "on the cpu backend (its tuned kernel is the faster there, bench/RESULTS.md), gemm "
     "elsewhere"},
    {"max_length", HETRUN_FIELD_INT, 0, offsetof(embed_params, max_length), 0, 1 << 20, NULL, NULL,
     "0",
     "tokens per sentence, [CLS]/[SEP] included; longer ones are cut (0: the model's, 256 "
     "for all-MiniLM-L6-v2)"},
    {"batch_sizes", HETRUN_FIELD_INT_LIST, 0, offsetof(embed_params, batch_sizes), 1, 65536, NULL,
     NULL, "[1, 32]", "batch sizes to serve, each timed; the largest embeds the input"},
    {"warmup", HETRUN_FIELD_INT, 0, offsetof(embed_params, warmup), 0, 1000000, NULL, NULL, "3",
     "untimed requests per batch size"},
    {"iterations", HETRUN_FIELD_INT, 0, offsetof(embed_params, iterations), 0, 100000000, NULL,
     NULL, "20", "timed requests per batch size (when duration is 0; 0: no timing)"},
    {"duration", HETRUN_FIELD_SECONDS, 0, offsetof(embed_params, duration), 0.0, 86400.0, NULL,
     NULL, "0", "time each batch size for this long instead of a fixed count"},
    {"reference", HETRUN_FIELD_STRING, 0, offsetof(embed_params, reference), 1, 0, NULL, NULL, NULL,
     ".npy of expected embeddings (sentences x hidden): cosine per sentence reported"},
    {"min_cosine", HETRUN_FIELD_FLOAT, 0, offsetof(embed_params, min_cosine), -1.0, 1.0, NULL, NULL,
     "0.0", "check: every sentence's cosine to the reference must reach this"},
};

static void embed_check(const void *obj, const hetrun_check_ctx *ctx) {
    const embed_params *p = obj;
    if (!p->input == !p->sentences.count)
        hetrun_check_error(ctx, "input", "give exactly one of `input` and `sentences`");
    if (p->dtype != HETRUN_F32 && p->dtype != HETRUN_BF16 && p->dtype != HETRUN_F16)
        hetrun_check_error(ctx, "dtype", "embed computes in fp32, bf16 or fp16");
    if (!p->batch_sizes.count) hetrun_check_error(ctx, "batch_sizes", "needs at least one size");
    if (p->max_length == 1 || p->max_length == 2)
        hetrun_check_error(ctx, "max_length", "%lld leaves no room besides [CLS] and [SEP]",
                           (long long)p->max_length);
    if (p->min_cosine > 0 && !p->reference)
        hetrun_check_error(ctx, "min_cosine", "needs a `reference` to compare with");
}

static const hetrun_schema embed_schema = {"embed", sizeof(embed_params), embed_fields,
                                           sizeof embed_fields / sizeof embed_fields[0],
                                           embed_check};

/* Input files: a leading "~/" is the home folder (scripts/get-model.sh fills ~/.cache), other
 * relative paths are taken from the spec file's folder, as for train's data. */
static void resolve_input(const hetrun_session *s, const char *in, char *out, size_t len) {
    const char *home = getenv("HOME");
    if (strncmp(in, "~/", 2) == 0 && home)
        snprintf(out, len, "%s/%s", home, in + 2);
    else
        hetrun_train_resolve(s, in, out, len);
}

typedef struct embed_state {
    hetrun_session *s;
    hetrun_bert m;
    hetrun_sentences sent;
    const char *source; /* file name, or "sentences" */
    int32_t max_len;
    int32_t *ids, *lens; /* max_batch x max_len staging */
    int64_t max_batch;
    int64_t truncated;
    int64_t first_truncated; /* index of the first truncated sentence, or -1 */
} embed_state;

/* Tokenizes sentences idx[0..b), pads to the longest, embeds into out (b x hidden). */
static int embed_some(embed_state *st, const size_t *idx, int64_t b, float *out) {
    int32_t longest = 1;
    char err[512];
    for (int64_t i = 0; i < b; i++) {
        int32_t n;
        int cut;
        size_t k = idx[i];
        if (hetrun_wordpiece_encode(st->m.tok, st->sent.text[k], st->sent.len[k], st->max_len,
                                    st->ids + i * st->max_len, &n, &cut, err, sizeof err) != 0) {
            snprintf(st->s->error, sizeof st->s->error, "embed: %s:%zu: %s", st->source, k + 1,
                     err);
            return -1;
        }
        st->lens[i] = n;
        if (n > longest) longest = n;
    }
    /* Rows pack to the batch's longest sentence; padding ids are never attended to. */
    const int32_t pad = hetrun_wordpiece_pad_id(st->m.tok);
    for (int64_t i = 0; i < b; i++) {
        const int32_t *src = st->ids + i * st->max_len;
        int32_t *dst = st->ids + i * longest;
        memmove(dst, src, (size_t)st->lens[i] * sizeof *dst);
        for (int32_t j = st->lens[i]; j < longest; j++)
            dst[j] = pad;
    }
    return hetrun_bert_embed(st->s, &st->m, st->ids, st->lens, b, longest, out);
}

/* Token counts of every sentence (for ordering and truncation notes). */
static int count_tokens(embed_state *st, int32_t *ntok) {
    char err[512];
    for (size_t k = 0; k < st->sent.count; k++) {
        int cut;
        if (hetrun_wordpiece_encode(st->m.tok, st->sent.text[k], st->sent.len[k], st->max_len,
                                    st->ids, &ntok[k], &cut, err, sizeof err) != 0) {
            snprintf(st->s->error, sizeof st->s->error, "embed: %s:%zu: %s", st->source, k + 1,
                     err);
            return -1;
        }
        if (cut && st->truncated++ == 0) st->first_truncated = (int64_t)k;
    }
    if (st->truncated)
        HETRUN_WARN("embed: %lld of %zu sentences are longer than %d tokens and were cut "
                    "(first: %s:%lld)",
                    (long long)st->truncated, st->sent.count, st->max_len, st->source,
                    (long long)st->first_truncated + 1);
    return 0;
}

static const int32_t *sort_keys;
static int by_tokens(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (sort_keys[x] != sort_keys[y]) return sort_keys[x] < sort_keys[y] ? -1 : 1;
    return (x > y) - (x < y);
}

/* Sums the ranks' disjoint rows of `all` (count floats) on every rank, in pieces MPI's int
 * counts can hold. Collective. */
static int share_rows(hetrun_session *s, float *all, size_t count) {
    const size_t piece = (size_t)1 << 28;
    for (size_t at = 0; at < count; at += piece) {
        int c = (int)(count - at < piece ? count - at : piece);
        int rc = MPI_Allreduce(MPI_IN_PLACE, all + at, c, MPI_FLOAT, MPI_SUM, s->comm);
        if (rc != MPI_SUCCESS) {
            snprintf(s->error, sizeof s->error,
                     "embed: MPI_Allreduce of the embeddings failed (%d)", rc);
            return -1;
        }
    }
    return 0;
}

/* Every sentence once, in length order, batches of max_batch shared round-robin over the
 * ranks; rows back in input order on every rank. Collective: a rank whose batch fails still
 * joins the vote, so no rank waits in the allreduce for one that gave up. */
static int embed_all(embed_state *st, const int32_t *ntok, float *all) {
    hetrun_session *s = st->s;
    const size_t n = st->sent.count;
    const int64_t H = st->m.cfg.hidden;
    size_t *order = malloc(n * sizeof *order);
    float *buf = malloc((size_t)(st->max_batch * H) * sizeof *buf);
    int rc = -1;
    if (order && buf) {
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        sort_keys = ntok;
        qsort(order, n, sizeof *order, by_tokens);
        memset(all, 0, n * (size_t)H * sizeof *all);
        rc = 0;
        size_t batch = 0;
        for (size_t at = 0; at < n && rc == 0; at += (size_t)st->max_batch, batch++) {
            /* snake order (0 1 1 0 0 1 ...): the long batches at the end fall evenly */
            size_t round = batch / (size_t)s->nranks, seat = batch % (size_t)s->nranks;
            if ((round % 2 ? (size_t)s->nranks - 1 - seat : seat) != (size_t)s->rank) continue;
            int64_t b = (int64_t)(n - at) < st->max_batch ? (int64_t)(n - at) : st->max_batch;
            rc = embed_some(st, order + at, b, buf);
            for (int64_t i = 0; i < b && rc == 0; i++)
                memcpy(all + order[at + (size_t)i] * (size_t)H, buf + i * H,
                       (size_t)H * sizeof *buf);
        }
    } else {
        snprintf(s->error, sizeof s->error, "embed: out of host memory");
    }
    free(order);
    free(buf);
    if (s->nranks == 1) return rc;
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MIN, s->comm);
    if (worst != 0) {
        if (rc == 0)
            snprintf(s->error, sizeof s->error,
                     "embed: another rank failed while embedding its share (its report names "
                     "the cause)");
        return -1;
    }
    return share_rows(s, all, n * (size_t)H);
}

/* Cosine of each row with the reference; fills the result and returns 1 when every row
 * reaches min_cosine, 0 when one does not, -1 on error. */
static int compare(embed_state *st, const embed_params *p, const float *all, cJSON *result) {
    char path[4096], err[1024];
    resolve_input(st->s, p->reference, path, sizeof path);
    float *ref = NULL;
    int64_t rows, cols;
    if (hetrun_npy_read_f32(path, &ref, &rows, &cols, err, sizeof err) != 0) {
        snprintf(st->s->error, sizeof st->s->error, "embed: reference: %s", err);
        return -1;
    }
    const int64_t H = st->m.cfg.hidden;
    if (rows != (int64_t)st->sent.count || cols != H) {
        snprintf(st->s->error, sizeof st->s->error,
                 "embed: reference %s is %lld x %lld, the input gives %zu x %lld", path,
                 (long long)rows, (long long)cols, st->sent.count, (long long)H);
        free(ref);
        return -1;
    }
    double worst = 2, sum = 0;
    int64_t worst_at = 0;
    for (int64_t r = 0; r < rows; r++) {
        double dot = 0, na = 0, nb = 0;
        for (int64_t j = 0; j < H; j++) {
            double a = all[r * H + j], b = ref[r * H + j];
            dot += a * b, na += a * a, nb += b * b;
        }
        double c = na > 0 && nb > 0 ? dot / sqrt(na * nb) : 0;
        sum += c;
        if (c < worst) worst = c, worst_at = r;
    }
    free(ref);
    cJSON *cos = cJSON_AddObjectToObject(result, HETRUN_RF_REFERENCE_COSINE);
    cJSON_AddStringToObject(cos, HETRUN_RF_COSINE_FILE, path);
    cJSON_AddNumberToObject(cos, HETRUN_RF_COSINE_MIN, worst);
    cJSON_AddNumberToObject(cos, HETRUN_RF_COSINE_MEAN, sum / (double)rows);
    cJSON_AddNumberToObject(cos, HETRUN_RF_COSINE_MIN_LINE, (double)worst_at + 1);
    cJSON_AddNumberToObject(cos, HETRUN_RF_COSINE_THRESHOLD, p->min_cosine);
    return worst >= p->min_cosine;
}

/* One batch size: warm-up, then timed end-to-end requests cycling through the input. */
static int serve(embed_state *st, const embed_params *p, size_t bi, cJSON *sweep) {
    const int64_t b = p->batch_sizes.items[bi];
    const int64_t H = st->m.cfg.hidden;
    int64_t cap = p->duration > 0 ? 1 << 20 : p->iterations;
    double *lat = malloc((size_t)(cap ? cap : 1) * sizeof *lat);
    size_t *idx = malloc((size_t)b * sizeof *idx);
    float *out = malloc((size_t)(b * H) * sizeof *out);
    int rc = -1;
    if (!lat || !idx || !out) {
        snprintf(st->s->error, sizeof st->s->error, "embed: out of host memory");
        goto done;
    }
    size_t next = 0;
    int64_t count = 0, tokens = 0;
    double start = 0;
    for (int64_t it = -p->warmup;; it++) {
        if (it == 0) start = hetrun_now_s();
        if (it >= 0 && (p->duration > 0 ? (hetrun_now_s() - start >= p->duration || count >= cap)
                                        : count >= p->iterations))
            break;
        for (int64_t i = 0; i < b; i++)
            idx[i] = next++ % st->sent.count;
        double t0 = hetrun_now_s();
        if (embed_some(st, idx, b, out) != 0) goto done;
        if (it >= 0) {
            lat[count++] = (hetrun_now_s() - t0) * 1e3;
            for (int64_t i = 0; i < b; i++)
                tokens += st->lens[i];
            hetrun_progress_serving(b, bi, p->batch_sizes.count, count, p->iterations,
                                    hetrun_now_s() - start, p->duration);
        }
    }
    double elapsed = hetrun_now_s() - start;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, HETRUN_RF_BATCH, (double)b);
    cJSON_AddNumberToObject(e, HETRUN_RF_REQUESTS, (double)count);
    hetrun_latency_json(e, lat, (size_t)count);
    cJSON_AddNumberToObject(e, HETRUN_RF_SENTENCES_PER_S,
                            elapsed > 0 ? (double)(count * b) / elapsed : 0);
    cJSON_AddNumberToObject(e, HETRUN_RF_TOKENS_PER_S, elapsed > 0 ? (double)tokens / elapsed : 0);
    cJSON_AddItemToArray(sweep, e);
    rc = 0;
done:
    free(lat);
    free(idx);
    free(out);
    return rc;
}

static int embed_run(hetrun_session *s, const void *params, cJSON *result) {
    const embed_params *p = params;
    embed_state st = {.s = s, .first_truncated = -1};
    char dir[4096], input[4096], err[1024];
    int32_t *ntok = NULL;
    float *all = NULL;
    int rc = -1;
    resolve_input(s, p->model, dir, sizeof dir);
    if (p->input) {
        resolve_input(s, p->input, input, sizeof input);
        st.source = input;
        if (hetrun_sentences_read(input, &st.sent, err, sizeof err) != 0) {
            snprintf(s->error, sizeof s->error, "embed: input: %s", err);
            goto out;
        }
    } else {
        st.source = "sentences";
        if (hetrun_sentences_from((const char *const *)p->sentences.items, p->sentences.count,
                                  &st.sent, err, sizeof err) != 0) {
            snprintf(s->error, sizeof s->error, "embed: %s", err);
            goto out;
        }
    }
    for (size_t i = 0; i < p->batch_sizes.count; i++)
        if (p->batch_sizes.items[i] > st.max_batch) st.max_batch = p->batch_sizes.items[i];
    const int fused =
        p->attention == ATTENTION_FUSED ||
        (p->attention == ATTENTION_AUTO && strcmp(hetrun_session_backend_name(s), "cpu") == 0);
    if (hetrun_bert_create(s, &st.m, dir, (hetrun_dtype)p->dtype, fused, st.max_batch,
                           p->max_length) != 0)
        goto out;
    st.max_len = (int32_t)st.m.cfg.max_seq;
    st.ids = malloc((size_t)(st.max_batch * st.max_len) * sizeof *st.ids);
    st.lens = malloc((size_t)st.max_batch * sizeof *st.lens);
    ntok = malloc(st.sent.count * sizeof *ntok);
    all = malloc(st.sent.count * (size_t)st.m.cfg.hidden * sizeof *all);
    if (!st.ids || !st.lens || !ntok || !all) {
        snprintf(s->error, sizeof s->error, "embed: out of host memory for %zu sentences",
                 st.sent.count);
        goto out;
    }
    if (count_tokens(&st, ntok) != 0 || embed_all(&st, ntok, all) != 0) goto out;

    int64_t tokens = 0;
    for (size_t k = 0; k < st.sent.count; k++)
        tokens += ntok[k];
    cJSON_AddStringToObject(result, HETRUN_RF_MODEL, dir);
    cJSON_AddStringToObject(result, HETRUN_RF_DTYPE, hetrun_dtype_name((hetrun_dtype)p->dtype));
    cJSON_AddStringToObject(result, HETRUN_RF_ATTENTION, attention_names[fused]);
    cJSON_AddNumberToObject(result, HETRUN_RF_LAYERS, (double)st.m.cfg.layers);
    cJSON_AddNumberToObject(result, HETRUN_RF_HIDDEN, (double)st.m.cfg.hidden);
    cJSON_AddNumberToObject(result, HETRUN_RF_MAX_LENGTH, st.max_len);
    cJSON_AddNumberToObject(result, HETRUN_RF_SENTENCES, (double)st.sent.count);
    cJSON_AddNumberToObject(result, HETRUN_RF_TOKENS, (double)tokens);
    cJSON_AddNumberToObject(result, HETRUN_RF_TRUNCATED, (double)st.truncated);
    cJSON_AddNumberToObject(result, HETRUN_RF_RANKS_SHARING_INPUT, s->nranks);
    int ok = 1;
    if (p->reference && (ok = compare(&st, p, all, result)) < 0) goto out;
    if (p->output && s->rank == 0) {
        const char *path = p->output; /* like report.path: from the working directory */
        if (hetrun_npy_write_f32(path, all, (int64_t)st.sent.count, st.m.cfg.hidden, err,
                                 sizeof err) != 0) {
            snprintf(s->error, sizeof s->error, "embed: output: %s", err);
            goto out;
        }
        cJSON_AddStringToObject(result, HETRUN_RF_OUTPUT, path);
    }
    cJSON *sweep = cJSON_AddArrayToObject(result, HETRUN_RF_BATCHES);
    for (size_t i = 0; i < p->batch_sizes.count && (p->iterations > 0 || p->duration > 0); i++)
        if (serve(&st, p, i, sweep) != 0) goto out;
    hetrun_result_set_check(result, !p->reference ? HETRUN_CHECK_SKIPPED
                                    : ok          ? HETRUN_CHECK_PASSED
                                                  : HETRUN_CHECK_FAILED);
    rc = 0;
out:
    free(ntok);
    free(all);
    free(st.ids);
    free(st.lens);
    hetrun_sentences_free(&st.sent);
    hetrun_bert_destroy(s, &st.m);
    return rc;
}

/* The BERT encoder of bert.c in the point's dtype. Its activation comes from the model's
 * config.json (read at run time): gelu_erf, BERT's own, is listed. */
static void embed_needs(const void *params, hetrun_op_needs *needs) {
    const embed_params *p = params;
    const uint32_t t = (uint32_t)p->dtype;
    hetrun_op_needs_add(needs, HETRUN_OP_EMBEDDING_FORWARD, t, t, 0);
    hetrun_op_needs_add(needs, HETRUN_OP_LAYERNORM, t, t, 0);
    hetrun_op_needs_add(needs, HETRUN_OP_GEMM, t, HETRUN_F32, 0); /* mean pooling */
    hetrun_op_needs_add(needs, HETRUN_OP_GEMM_BIAS_ACT, t, t, HETRUN_ACT_IDENTITY);
    hetrun_op_needs_add(needs, HETRUN_OP_GEMM_BIAS_ACT, t, t, HETRUN_ACT_GELU_ERF);
    /* auto: the cpu backend, which runs fused, has both; other backends run gemm */
    if (p->attention == ATTENTION_FUSED) {
        hetrun_op_needs_add(needs, HETRUN_OP_ATTENTION_FORWARD, t, t, 0);
    } else {
        hetrun_op_needs_add(needs, HETRUN_OP_GEMM, t, t, 0);
        hetrun_op_needs_add(needs, HETRUN_OP_SCALE, t, t, 0);
        hetrun_op_needs_add(needs, HETRUN_OP_SOFTMAX, t, t, 0);
    }
}

const hetrun_workload_type hetrun_workload_embed = {
    "embed",
    "sentence embeddings from a pre-trained BERT encoder (safetensors + tokenizer.json), with "
    "latency percentiles and sentences/s per batch size",
    &embed_schema,
    embed_run,
    0,
    embed_needs,
};
