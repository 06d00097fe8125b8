/* The train workload: an MLP classifier trained data-parallel over the job's ranks.
 *
 * Every rank loads the whole dataset, splits it with the same seed and takes its shard of
 * every global batch (ranks 0..n-1 take consecutive slices of the shuffled batch). The
 * loss gradient is scaled by 1/global batch, so the sum-allreduce of the one flat
 * gradient buffer is the global mean; the optimizer is then one op over the flat
 * parameter buffer, and weights stay bitwise identical on every rank (checked at the end
 * by CRC32). On the cpu backend a run is bitwise reproducible for a given seed, rank
 * count and cpu_threads (fixed reduction orders in the kernels, OpenBLAS's partitioning
 * fixed by its thread count, MPI's allreduce order fixed by rank count and size). */
#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/checkpoint_request.h"
#include "exec/collective.h"
#include "report/fields.h"
#include "spec/job.h"
#include "util/log.h"
#include "util/progress.h"
#include "workloads/checkpoint.h"
#include "workloads/ckpt_resume.h"
#include "workloads/model.h"
#include "workloads/stats.h"
#include "workloads/train_common.h"
#include "workloads/train_gpt.h"
#include "workloads/workload.h"

/* `divergence:` guard: fail when the smoothed loss climbs far above its best. */
typedef struct divergence_params {
    double max_loss_ratio; /* 0: off */
    int64_t after_steps;
} divergence_params;

typedef struct train_params {
    int model;
    hetrun_gpt_params gpt;
    hetrun_text_params text;
    hetrun_data_params data;
    hetrun_int_list hidden;
    int activation;
    int optimizer;
    double lr, momentum, weight_decay, beta1, beta2, eps;
    int schedule;
    int64_t warmup_steps;
    double min_lr;
    int64_t batch, epochs, steps, seed;
    double min_accuracy;
    int64_t stop_after, log_every;
    divergence_params divergence;
} train_params;

static const char *const model_names[] = {"mlp", "gpt", NULL};
enum { MODEL_MLP = 0, MODEL_GPT = 1 };
static const char *const opt_names[] = {"sgd", "adamw", NULL};
static const char *const sched_names[] = {"constant", "cosine", NULL};
enum { SCHED_CONSTANT = 0, SCHED_COSINE = 1 };

static const hetrun_field divergence_fields[] = {
    {"max_loss_ratio", HETRUN_FIELD_FLOAT, 0, offsetof(divergence_params, max_loss_ratio), 0.0, 1e6,
     NULL, NULL, "0",
     "fail when the smoothed loss exceeds this multiple of its lowest value; 0: off"},
    {"after_steps", HETRUN_FIELD_INT, 0, offsetof(divergence_params, after_steps), 1, 1000000000,
     NULL, NULL, "20", "steps of this run before the guard starts (the loss settles first)"},
};

static const hetrun_schema divergence_schema = {
    "divergence", sizeof(divergence_params), divergence_fields,
    sizeof divergence_fields / sizeof divergence_fields[0], NULL};

static const hetrun_field train_fields[] = {
    {"model", HETRUN_FIELD_ENUM, 0, offsetof(train_params, model), 1, 0, model_names, NULL, "mlp",
     "mlp (classifier on `data`) or gpt (decoder language model on `text`)"},
    {"gpt", HETRUN_FIELD_OBJECT, 0, offsetof(train_params, gpt), 1, 0, NULL, &hetrun_gpt_schema,
     NULL, "model gpt: shape, batch in tokens, clipping, evaluation (below)"},
    {"text", HETRUN_FIELD_OBJECT, 0, offsetof(train_params, text), 1, 0, NULL, &hetrun_text_schema,
     NULL, "model gpt: corpus, token file, held-out fraction (below)"},
    {"data", HETRUN_FIELD_OBJECT, 0, offsetof(train_params, data), 1, 0, NULL, &hetrun_data_schema,
     NULL, "model mlp (required): the samples: source, path, split, standardisation (below)"},
    {"hidden", HETRUN_FIELD_INT_LIST, 0, offsetof(train_params, hidden), 1, 1 << 20, NULL, NULL,
     "[64]", "hidden layer widths, e.g. [1024, 1024]; [] for a linear model"},
    {"activation", HETRUN_FIELD_ENUM, 0, offsetof(train_params, activation), 1, 0,
     hetrun_mlp_activation_names, NULL, "relu", "activation between layers: relu or gelu"},
    {"optimizer", HETRUN_FIELD_ENUM, 0, offsetof(train_params, optimizer), 1, 0, opt_names, NULL,
     "adamw", "sgd (momentum, L2 weight decay) or adamw (decoupled weight decay)"},
    {"lr", HETRUN_FIELD_FLOAT, 0, offsetof(train_params, lr), 0.0, 100.0, NULL, NULL, "0.001",
     "peak learning rate"},
    {"momentum", HETRUN_FIELD_FLOAT, 0, offsetof(train_params, momentum), 0.0, 1.0, NULL, NULL,
     "0.9", "sgd: momentum"},
    {"weight_decay", HETRUN_FIELD_FLOAT, 0, offsetof(train_params, weight_decay), 0.0, 10.0, NULL,
     NULL, "0.0", "weight decay (sgd: added to the gradient; adamw: decoupled)"},
    {"beta1", HETRUN_FIELD_FLOAT, 0, offsetof(train_params, beta1), 0.0, 1.0, NULL, NULL, "0.9",
     "adamw: first-moment decay"},
    {"beta2", HETRUN_FIELD_FLOAT, 0, offsetof(train_params, beta2), 0.0, 1.0, NULL, NULL, "0.999",
     "adamw: second-moment decay"},
    {"eps", HETRUN_FIELD_FLOAT, 0, offsetof(train_params, eps), 0.0, 1.0, NULL, NULL, "1e-8",
     "adamw: denominator epsilon"},
    {"schedule", HETRUN_FIELD_ENUM, 0, offsetof(train_params, schedule), 1, 0, sched_names, NULL,
     "constant", "learning rate schedule: constant, or cosine decay to min_lr"},
    {"warmup_steps", HETRUN_FIELD_INT, 0, offsetof(train_params, warmup_steps), 0, 100000000, NULL,
     NULL, "0", "linear warm-up steps from lr/warmup_steps to lr (either schedule)"},
    {"min_lr", HETRUN_FIELD_FLOAT, 0, offsetof(train_params, min_lr), 0.0, 100.0, NULL, NULL, "0.0",
     "cosine: final learning rate"},
    {"batch", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, offsetof(train_params, batch), 1, 1 << 24, NULL,
     NULL, "64", "global batch size, split over the ranks"},
    {"epochs", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, offsetof(train_params, epochs), 1, 1000000,
     NULL, NULL, "10", "passes over the training split (ignored when steps > 0)"},
    {"steps", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, offsetof(train_params, steps), 0, 1000000000,
     NULL, NULL, "0", "total optimizer steps; 0: epochs x steps per epoch"},
    {"seed", HETRUN_FIELD_INT, 0, offsetof(train_params, seed), -1, INT64_MAX / 2, NULL, NULL, "-1",
     "seed of data split, shuffles and weights; -1: the job's seed"},
    {"min_accuracy", HETRUN_FIELD_FLOAT, 0, offsetof(train_params, min_accuracy), 0.0, 1.0, NULL,
     NULL, "0.0", "check: final test accuracy must reach this (0: no accuracy check)"},
    {"stop_after", HETRUN_FIELD_INT, 0, offsetof(train_params, stop_after), 0, 1000000000, NULL,
     NULL, "0", "debug: stop after this many steps of this run, as if killed (no end checkpoint)"},
    {"log_every", HETRUN_FIELD_INT, 0, offsetof(train_params, log_every), 0, 1000000000, NULL, NULL,
     "0", "progress line every N steps on rank 0; 0: once per epoch"},
    {"divergence", HETRUN_FIELD_OBJECT, 0, offsetof(train_params, divergence), 1, 0, NULL,
     &divergence_schema, NULL, "divergence guard: max_loss_ratio, after_steps (below)"},
};

static void train_check(const void *obj, const hetrun_check_ctx *ctx) {
    const train_params *p = obj;
    if (p->model == MODEL_MLP && p->data.source != HETRUN_DATA_SYNTHETIC && !p->data.path)
        hetrun_check_error(ctx, "data", "model mlp needs a 'data' section with a path");
    if (p->model == MODEL_GPT && !p->text.tokens && !p->gpt.reference)
        hetrun_check_error(ctx, "text",
                           "model gpt needs 'text.tokens' (and 'text.corpus' to "
                           "create it)");
    if (p->model == MODEL_GPT && p->steps < 1 && !p->gpt.reference)
        hetrun_check_error(ctx, "steps", "model gpt needs 'steps' > 0");
    if (p->model == MODEL_GPT && p->optimizer != HETRUN_OPT_ADAMW)
        hetrun_check_error(ctx, "optimizer", "model gpt trains with adamw only");
    if (p->hidden.count + 1 > HETRUN_MLP_MAX_LAYERS)
        hetrun_check_error(ctx, "hidden", "%zu hidden layers; at most %d", p->hidden.count,
                           HETRUN_MLP_MAX_LAYERS - 1);
    if (p->schedule == SCHED_COSINE && p->min_lr > p->lr)
        hetrun_check_error(ctx, "min_lr", "min_lr (%g) is above lr (%g)", p->min_lr, p->lr);
}

static const hetrun_schema train_schema = {"train", sizeof(train_params), train_fields,
                                           sizeof train_fields / sizeof train_fields[0],
                                           train_check};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double lr_at(const train_params *p, int64_t step, int64_t total) {
    if (p->warmup_steps > 0 && step < p->warmup_steps)
        return p->lr * (double)(step + 1) / (double)p->warmup_steps;
    if (p->schedule != SCHED_COSINE) return p->lr;
    int64_t span = total - p->warmup_steps;
    double frac = span > 0 ? (double)(step - p->warmup_steps) / (double)span : 1.0;
    return p->min_lr + (p->lr - p->min_lr) * 0.5 * (1.0 + cos(M_PI * frac));
}

/* SHA-256 of everything that determines the weight trajectory, in a fixed text form.
 * Deliberately not the spec file's hash: that changes when `checkpoint.resume` is flipped
 * (and with comments or debug knobs like stop_after), which would defeat resume. */
static void config_hash(const train_params *p, uint64_t seed, const hetrun_mlp_shape *sh,
                        char out[65]) {
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "hetrun-train-v1|src=%d|path=%s|labels=%s|lc=%lld|hdr=%d|syn=%lld,%lld,%lld,"
                     "%.17g|test=%.17g|std=%d|act=%d|opt=%d|lr=%.17g|mom=%.17g|wd=%.17g|b=%.17g,"
                     "%.17g,%.17g|sched=%d,%lld,%.17g|batch=%lld|epochs=%lld|steps=%lld|seed=%llu"
                     "|dims=",
                     p->data.source, p->data.path ? p->data.path : "",
                     p->data.labels ? p->data.labels : "", (long long)p->data.label_column,
                     p->data.header, (long long)p->data.samples, (long long)p->data.features,
                     (long long)p->data.classes, p->data.spread, p->data.test_fraction,
                     p->data.standardize, p->activation, p->optimizer, p->lr, p->momentum,
                     p->weight_decay, p->beta1, p->beta2, p->eps, p->schedule,
                     (long long)p->warmup_steps, p->min_lr, (long long)p->batch,
                     (long long)p->epochs, (long long)p->steps, (unsigned long long)seed);
    for (int l = 0; l <= sh->layers && n > 0 && (size_t)n < sizeof text; l++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%lld,", (long long)sh->dims[l]);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Permutation of n training rows from the generator state `state`. */
static void shuffle(int64_t *perm, int64_t n, uint64_t state) {
    hetrun_rng r = {state};
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(hetrun_rng_next(&r) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
}

static uint64_t epoch_state(uint64_t seed, int64_t epoch) {
    return hetrun_rng_seed(seed ^ 0x7a11u, (uint64_t)epoch).state;
}

/* Test accuracy: each rank evaluates its slice of the test split; counts are summed. */
static int evaluate(hetrun_session *s, hetrun_mlp *m, const hetrun_dataset *test, float *logits,
                    double *accuracy) {
    const int64_t n = test->samples, f = test->features, C = m->shape.dims[m->shape.layers];
    const int64_t lo = n * s->rank / s->nranks, hi = n * (s->rank + 1) / s->nranks;
    long long correct = 0, total = 0;
    for (int64_t i = lo; i < hi; i += m->rows) {
        int64_t rows = hi - i < m->rows ? hi - i : m->rows;
        if (hetrun_session_h2d(s, hetrun_mlp_input(m), test->x + i * f, (uint64_t)(rows * f) * 4) ||
            hetrun_mlp_forward(s, m, rows, 0, 0) ||
            hetrun_session_d2h(s, logits, hetrun_mlp_output(m, 0), (uint64_t)(rows * C) * 4))
            return -1;
        for (int64_t r = 0; r < rows; r++) {
            int64_t best = 0;
            for (int64_t c = 1; c < C; c++)
                if (logits[r * C + c] > logits[r * C + best]) best = c;
            correct += best == test->y[i + r];
        }
    }
    long long local[2] = {correct, hi - lo}, global[2];
    MPI_Allreduce(local, global, 2, MPI_LONG_LONG, MPI_SUM, s->comm);
    correct = global[0], total = global[1];
    *accuracy = total ? (double)correct / (double)total : NAN;
    return 0;
}

/* Names the first non-finite parameter ("layer 2 weight [17] = nan, 40 of 6272 values
 * non-finite"); empty when every value is finite. */
static void first_nonfinite(const hetrun_mlp *m, const float *hp, char *out, size_t len) {
    out[0] = '\0';
    for (int l = 0; l < m->shape.layers; l++) {
        const uint64_t nw = (uint64_t)(m->shape.dims[l] * m->shape.dims[l + 1]);
        const uint64_t nb = (uint64_t)m->shape.dims[l + 1];
        const uint64_t off[2] = {m->w_off[l], m->b_off[l]}, cnt[2] = {nw, nb};
        for (int k = 0; k < 2; k++) {
            uint64_t bad = 0, first = 0;
            for (uint64_t i = cnt[k]; i-- > 0;)
                if (!isfinite(hp[off[k] + i])) bad++, first = i;
            if (bad) {
                snprintf(out, len, "layer %d %s [%llu] = %g, %llu of %llu values non-finite", l + 1,
                         k ? "bias" : "weight", (unsigned long long)first,
                         (double)hp[off[k] + first], (unsigned long long)bad,
                         (unsigned long long)cnt[k]);
                return;
            }
        }
    }
}

/* Ends a run whose loss went non-finite: names the step and where the weights broke. */
static void fail_nonfinite(hetrun_session *s, hetrun_mlp *m, float *hp, int64_t step, double loss) {
    char where[256] = "";
    if (hetrun_mlp_get_params(s, m, hp) == 0) first_nonfinite(m, hp, where, sizeof where);
    snprintf(s->error, sizeof s->error,
             "step %lld: the loss is %g (not finite); %s%s; lower train.lr or check the "
             "data's scale",
             (long long)step, loss, where[0] ? "weights after the optimizer step: " : "",
             where[0] ? where
                      : "weights are still finite: the forward pass (xent_forward) "
                        "overflowed");
}

static int write_ckpt(hetrun_session *s, hetrun_mlp *m, int64_t step, uint64_t rng_state,
                      const char *hash, const float *mean, const float *std, float *hp, float *hs,
                      int *written) {
    const hetrun_job *job = s->job;
    int rc = 0;
    if (hetrun_mlp_get_params(s, m, hp) != 0 || hetrun_mlp_get_state(s, m, hs) != 0) rc = -1;
    char where[256] = "";
    if (rc == 0) first_nonfinite(m, hp, where, sizeof where); /* same weights on every rank */
    if (where[0]) {
        snprintf(s->error, sizeof s->error,
                 "step %lld: non-finite weights (%s); no checkpoint written", (long long)step,
                 where);
        return -1;
    }
    if (rc == 0 && s->rank == 0) {
        hetrun_ckpt c;
        memset(&c, 0, sizeof c);
        c.h.version = 1;
        c.h.optimizer = m->optimizer;
        c.h.shape = m->shape;
        c.h.param_count = m->param_count;
        c.h.state_count = m->state_count;
        c.h.step = step;
        c.h.nranks = s->nranks;
        c.h.rng_state = rng_state;
        snprintf(c.h.config_sha256, sizeof c.h.config_sha256, "%s", hash);
        snprintf(c.h.spec_sha256, sizeof c.h.spec_sha256, "%s", job->spec_sha256);
        c.mean = (float *)mean, c.std = (float *)std, c.params = hp, c.state = hs;
        char err[1024];
        if (hetrun_ckpt_write(job->checkpoint.dir, &c, job->checkpoint.keep, err, sizeof err) !=
            0) {
            snprintf(s->error, sizeof s->error, "%s", err);
            rc = -1;
        }
    }
    return hetrun_train_ckpt_agree(s, rc, written);
}

static void progress(const hetrun_session *s, int64_t step, int64_t total, int64_t epoch,
                     double loss, double acc, double sps) {
    if (s->rank != 0) return;
    char line[256];
    if (isnan(acc))
        snprintf(line, sizeof line, "train: step %lld/%lld epoch %lld loss %.4f %.0f samples/s",
                 (long long)step, (long long)total, (long long)epoch, loss, sps);
    else
        snprintf(line, sizeof line,
                 "train: step %lld/%lld epoch %lld loss %.4f test acc %.2f%% %.0f samples/s",
                 (long long)step, (long long)total, (long long)epoch, loss, 100.0 * acc, sps);
    hetrun_progress_note(s->rank, line);
}

static int train_run(hetrun_session *s, const void *params, cJSON *result) {
    const train_params *p = params;
    if (p->model == MODEL_GPT) {
        hetrun_lm_hparams h = {p->lr,
                               p->weight_decay,
                               p->beta1,
                               p->beta2,
                               p->eps,
                               p->min_lr,
                               p->schedule == SCHED_COSINE,
                               p->warmup_steps,
                               p->steps,
                               p->seed,
                               p->stop_after,
                               p->log_every};
        return hetrun_train_gpt_run(s, &p->gpt, &p->text, &h, result);
    }
    const hetrun_job *job = s->job;
    const uint64_t seed = p->seed >= 0 ? (uint64_t)p->seed : job ? (uint64_t)job->seed : 1;
    hetrun_dataset train = {0}, test = {0};
    float *mean = NULL, *std = NULL, *hx = NULL, *hp = NULL, *hs = NULL, *logits = NULL;
    int32_t *hy = NULL;
    int64_t *perm = NULL;
    double *step_ms = NULL;
    hetrun_mlp m;
    memset(&m, 0, sizeof m);
    int rc = -1;
    if (hetrun_train_prepare_data(s, &p->data, seed, &train, &test, &mean, &std) != 0) goto out;

    hetrun_mlp_shape sh;
    memset(&sh, 0, sizeof sh);
    sh.layers = (int32_t)p->hidden.count + 1;
    sh.act = p->activation;
    sh.dims[0] = train.features;
    for (size_t i = 0; i < p->hidden.count; i++)
        sh.dims[i + 1] = p->hidden.items[i];
    sh.dims[sh.layers] = train.classes;

    const int64_t B = p->batch, n = s->nranks, r = s->rank;
    if (B < n) {
        snprintf(s->error, sizeof s->error, "global batch %lld is smaller than %lld ranks",
                 (long long)B, (long long)n);
        goto out;
    }
    const int64_t spe = train.samples / B; /* steps per epoch; the last partial batch drops */
    if (spe < 1) {
        snprintf(s->error, sizeof s->error, "global batch %lld exceeds the %lld training samples",
                 (long long)B, (long long)train.samples);
        goto out;
    }
    const int64_t total = p->steps > 0 ? p->steps : p->epochs * spe;
    const int64_t lb = B / n + (r < B % n), loff = r * (B / n) + (r < B % n ? r : B % n);
    const int64_t lb_max = B / n + (B % n != 0);
    const int64_t rows = lb_max > 256 ? lb_max : 256; /* also the evaluation chunk */
    if (hetrun_mlp_create(s, &m, &sh, p->optimizer, rows) != 0 ||
        hetrun_mlp_init_weights(s, &m, seed) != 0)
        goto out;
    char hash[65];
    config_hash(p, seed, &sh, hash);

    const int64_t f = train.features, C = train.classes;
    hx = malloc((size_t)(lb_max * f) * 4);
    hy = malloc((size_t)lb_max * 4);
    perm = malloc((size_t)train.samples * sizeof *perm);
    logits = malloc((size_t)(rows * C) * 4);
    hp = malloc((size_t)m.param_count * 4);
    hs = malloc((size_t)(m.state_count ? m.state_count : 1) * 4);
    step_ms = malloc((size_t)(total > 0 ? total : 1) * sizeof *step_ms);
    if (!hx || !hy || !perm || !logits || !hp || !hs || !step_ms) {
        snprintf(s->error, sizeof s->error, "out of host memory (%lld parameters)",
                 (long long)m.param_count);
        goto out;
    }

    /* Resume: the newest valid checkpoint, refused on a shape or configuration mismatch. */
    int64_t step = 0;
    uint64_t rng_state = epoch_state(seed, 0);
    int have_state = 0;
    if (job && job->checkpoint.dir && job->checkpoint.resume) {
        hetrun_ckpt c;
        char path[4096], err[1536];
        int got =
            hetrun_ckpt_resume(s, job->checkpoint.dir, &c, path, sizeof path, err, sizeof err);
        if (got < 0) {
            snprintf(s->error, sizeof s->error, "resume: %s", err);
            goto out;
        }
        if (got > 0) {
            char want[256], have[256];
            hetrun_mlp_shape_text(&sh, want, sizeof want);
            hetrun_mlp_shape_text(&c.h.shape, have, sizeof have);
            const char *why = NULL;
            if (memcmp(&c.h.shape, &sh, sizeof sh) != 0)
                why = "model shape";
            else if (c.h.optimizer != p->optimizer || c.h.state_count != m.state_count)
                why = "optimizer";
            else if (strcmp(c.h.config_sha256, hash) != 0)
                why = "training configuration hash";
            else if (c.h.step > total)
                why = "step count (beyond this run's total)";
            if (why) {
                snprintf(s->error, sizeof s->error,
                         "resume: checkpoint %s does not match this job: %s differs "
                         "(checkpoint: %s, config %.16s..., step %lld; job: %s, config %.16s..., "
                         "%lld steps)",
                         path, why, have, c.h.config_sha256, (long long)c.h.step, want, hash,
                         (long long)total);
                hetrun_ckpt_free(&c);
                goto out;
            }
            if (hetrun_mlp_set_params(s, &m, c.params) != 0 ||
                hetrun_mlp_set_state(s, &m, c.state) != 0) {
                hetrun_ckpt_free(&c);
                goto out;
            }
            step = c.h.step;
            rng_state = c.h.rng_state;
            have_state = 1;
            cJSON_AddStringToObject(result, "resumed_from", path);
            cJSON_AddNumberToObject(result, "resumed_at_step", (double)step);
            if (s->rank == 0)
                HETRUN_INFO("train: resumed from %s at step %lld", path, (long long)step);
            hetrun_ckpt_free(&c);
        } else if (s->rank == 0) {
            HETRUN_INFO("train: no checkpoint in %s yet; starting at step 0", job->checkpoint.dir);
        }
    }
    if (hetrun_collective_prepare(s, m.param_count * 4) != 0) goto out;

    int64_t epoch = step / spe;
    if (!have_state) rng_state = epoch_state(seed, epoch);
    shuffle(perm, train.samples, rng_state);
    double compute_s = 0.0, reduce_s = 0.0, train_s = 0.0, loss_sum = 0.0, epoch_t0 = now_s();
    int64_t epoch_steps = 0, steps_run = 0;
    int ckpts = 0, interrupted = 0;
    double acc = NAN, ema = 0.0, best_ema = INFINITY;
    cJSON *epochs = cJSON_AddArrayToObject(result, "epochs");
    const double inv_b = 1.0 / (double)B;
    const int64_t every = job ? job->checkpoint.every : 0;
    while (step < total) {
        const int64_t within = step % spe;
        double t0 = now_s();
        for (int64_t i = 0; i < lb; i++) {
            int64_t row = perm[within * B + loff + i];
            memcpy(hx + i * f, train.x + row * f, (size_t)f * 4);
            hy[i] = train.y[row];
        }
        if (hetrun_session_h2d(s, hetrun_mlp_input(&m), hx, (uint64_t)(lb * f) * 4) ||
            hetrun_session_h2d(s, hetrun_mlp_labels(&m), hy, (uint64_t)lb * 4) ||
            hetrun_mlp_forward(s, &m, lb, 1, 0) || hetrun_mlp_backward(s, &m, lb, inv_b) ||
            hetrun_session_sync(s))
            goto out;
        double t1 = now_s();
        if (hetrun_allreduce_sum_f32(s, hetrun_tensor_at(m.grads, 0), m.param_count) != 0) goto out;
        double t2 = now_s();
        hetrun_opt_step o = {lr_at(p, step, total),
                             p->momentum,
                             p->weight_decay,
                             p->beta1,
                             p->beta2,
                             p->eps,
                             step + 1};
        if (hetrun_mlp_step(s, &m, &o) != 0 ||
            hetrun_session_d2h(s, logits, hetrun_mlp_loss(&m), (uint64_t)lb * 4) != 0)
            goto out;
        double step_loss = 0.0;
        for (int64_t i = 0; i < lb; i++)
            step_loss += logits[i];
        loss_sum += step_loss;
        /* Every rank decides on the global loss, so all stop at the same step together. */
        if (n > 1) MPI_Allreduce(MPI_IN_PLACE, &step_loss, 1, MPI_DOUBLE, MPI_SUM, s->comm);
        step_loss *= inv_b;
        if (!isfinite(step_loss)) {
            fail_nonfinite(s, &m, hp, step + 1, step_loss);
            goto out;
        }
        if (p->divergence.max_loss_ratio > 0.0) {
            ema = steps_run ? 0.9 * ema + 0.1 * step_loss : step_loss;
            if (steps_run + 1 >= p->divergence.after_steps) {
                if (ema < best_ema) best_ema = ema;
                if (best_ema > 0.0 && ema > p->divergence.max_loss_ratio * best_ema) {
                    snprintf(s->error, sizeof s->error,
                             "step %lld: the loss diverged: smoothed loss %.4g is %.1fx its "
                             "lowest %.4g (train.divergence.max_loss_ratio %g); lower train.lr",
                             (long long)step + 1, ema, ema / best_ema, best_ema,
                             p->divergence.max_loss_ratio);
                    goto out;
                }
            }
        }
        double t3 = now_s();
        compute_s += (t1 - t0) + (t3 - t2), reduce_s += t2 - t1, train_s += t3 - t0;
        step_ms[steps_run] = (t3 - t0) * 1e3;
        step++, steps_run++, epoch_steps++;
        char detail[48]; /* this rank's running loss: the live line must not wait for peers */
        snprintf(detail, sizeof detail, "loss %.4f", loss_sum / (double)(epoch_steps * lb));
        hetrun_progress_update(step, total, "steps", detail);
        if (p->log_every > 0 && step % p->log_every == 0 && within + 1 != spe)
            progress(s, step, total, epoch, loss_sum / (double)(epoch_steps * lb), acc,
                     (double)(steps_run * B) / train_s);
        const int epoch_end = within + 1 == spe || step == total;
        if (epoch_end) {
            double gl = 0.0;
            MPI_Allreduce(&loss_sum, &gl, 1, MPI_DOUBLE, MPI_SUM, s->comm);
            if (evaluate(s, &m, &test, logits, &acc) != 0) goto out;
            double secs = now_s() - epoch_t0;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "epoch", (double)epoch);
            cJSON_AddNumberToObject(e, "steps", (double)epoch_steps);
            cJSON_AddNumberToObject(e, "loss", gl / (double)(epoch_steps * B));
            if (isnan(acc))
                cJSON_AddNullToObject(e, "test_accuracy");
            else
                cJSON_AddNumberToObject(e, "test_accuracy", acc);
            cJSON_AddNumberToObject(e, "seconds", secs);
            cJSON_AddItemToArray(epochs, e);
            progress(s, step, total, epoch, gl / (double)(epoch_steps * B), acc,
                     (double)(steps_run * B) / train_s);
            loss_sum = 0.0, epoch_steps = 0, epoch_t0 = now_s();
            if (within + 1 == spe) {
                epoch++;
                rng_state = epoch_state(seed, epoch);
                shuffle(perm, train.samples, rng_state);
            }
        }
        const int req = hetrun_checkpoint_request_poll(s, step); /* a signal asked for one */
        if (job && job->checkpoint.dir && ((every > 0 && step % every == 0) || req) &&
            step < total &&
            write_ckpt(s, &m, step, rng_state, hash, mean, std, hp, hs, &ckpts) != 0)
            goto out;
        if (req == HETRUN_CKPT_REQ_STOP && step < total) {
            hetrun_checkpoint_request_stop_error(s, step);
            goto out;
        }
        if (p->stop_after > 0 && steps_run >= p->stop_after && step < total) {
            interrupted = 1;
            break;
        }
    }
    if (!interrupted && steps_run > 0 && job && job->checkpoint.dir &&
        write_ckpt(s, &m, step, rng_state, hash, mean, std, hp, hs, &ckpts) != 0)
        goto out;
    if (isnan(acc) && evaluate(s, &m, &test, logits, &acc) != 0) goto out;

    /* Weights identical on every rank: CRC32 of the flat parameter buffer. */
    if (hetrun_mlp_get_params(s, &m, hp) != 0) goto out;
    char broken[256];
    first_nonfinite(&m, hp, broken, sizeof broken);
    if (broken[0]) {
        snprintf(s->error, sizeof s->error, "step %lld: non-finite weights at the end: %s",
                 (long long)step, broken);
        goto out;
    }
    char crc[9];
    hetrun_train_crc_hex(hp, m.param_count, crc);
    int equal = hetrun_train_crc_all_equal(s, crc, result);
    if (equal < 0) goto out;

    char shape_text[256];
    hetrun_mlp_shape_text(&sh, shape_text, sizeof shape_text);
    uint64_t real = 0;
    for (int l = 0; l < sh.layers; l++)
        real += (uint64_t)((sh.dims[l] + 1) * sh.dims[l + 1]);
    cJSON_AddStringToObject(result, "model", shape_text);
    cJSON_AddNumberToObject(result, "parameters", (double)real);
    cJSON_AddStringToObject(result, "optimizer", opt_names[p->optimizer]);
    cJSON_AddNumberToObject(result, "global_batch", (double)B);
    cJSON_AddNumberToObject(result, "local_batch", (double)lb);
    cJSON_AddNumberToObject(result, "ranks", (double)n);
    cJSON_AddNumberToObject(result, "train_samples", (double)train.samples);
    cJSON_AddNumberToObject(result, "test_samples", (double)test.samples);
    cJSON_AddNumberToObject(result, "steps_total", (double)total);
    cJSON_AddNumberToObject(result, "steps_run", (double)steps_run);
    cJSON_AddNumberToObject(result, "final_step", (double)step);
    cJSON_AddBoolToObject(result, "interrupted", interrupted);
    if (isnan(acc))
        cJSON_AddNullToObject(result, "final_test_accuracy");
    else
        cJSON_AddNumberToObject(result, "final_test_accuracy", acc);
    cJSON_AddNumberToObject(result, "samples_per_s",
                            train_s > 0 ? (double)(steps_run * B) / train_s : 0.0);
    hetrun_stats st = hetrun_stats_of(step_ms, (size_t)steps_run);
    cJSON_AddItemToObject(result, "step_time_ms", hetrun_stats_json(st));
    cJSON_AddNumberToObject(result, "compute_ms_per_step",
                            steps_run ? 1e3 * compute_s / (double)steps_run : 0.0);
    cJSON_AddNumberToObject(result, "allreduce_ms_per_step",
                            steps_run ? 1e3 * reduce_s / (double)steps_run : 0.0);
    cJSON_AddStringToObject(result, "allreduce",
                            n == 1                           ? "none"
                            : hetrun_collective_is_device(s) ? "device"
                                                             : "host-mpi");
    cJSON_AddStringToObject(result, "weights_crc32", crc);
    cJSON_AddBoolToObject(result, "weights_equal_on_all_ranks", equal == 1);
    cJSON_AddStringToObject(result, "config_sha256", hash);
    cJSON_AddNumberToObject(result, "checkpoints_written", ckpts);
    int ok = equal == 1 && (p->min_accuracy <= 0.0 || (!isnan(acc) && acc >= p->min_accuracy));
    if (p->min_accuracy > 0.0) cJSON_AddNumberToObject(result, "min_accuracy", p->min_accuracy);
    hetrun_result_set_check(result, interrupted && equal == 1 ? HETRUN_CHECK_SKIPPED
                                    : ok                      ? HETRUN_CHECK_PASSED
                                                              : HETRUN_CHECK_FAILED);
    rc = 0;
out:
    hetrun_mlp_destroy(s, &m);
    hetrun_data_free(&train);
    hetrun_data_free(&test);
    free(mean), free(std), free(hx), free(hy), free(perm), free(logits), free(hp), free(hs);
    free(step_ms);
    return rc;
}

/* The ops of model.c (MLP, fp32) and gpt.c (GPT: fp32, or matrix products on bf16/fp16
 * copies made by casts, accumulating in fp32). */
static void train_needs(const void *params, hetrun_op_needs *needs) {
    const train_params *p = params;
    static const hetrun_op_kind mlp[] = {
        HETRUN_OP_GEMM,          HETRUN_OP_BIAS_ADD,         HETRUN_OP_XENT_FORWARD,
        HETRUN_OP_XENT_BACKWARD, HETRUN_OP_REDUCE_SUM_AXIS0, HETRUN_OP_FILL};
    /* Everything but the matrix products runs in fp32. */
    static const hetrun_op_kind gpt[] = {HETRUN_OP_REDUCE_SUM_AXIS0,
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
    if (p->model == MODEL_GPT) {
        const uint32_t c = (uint32_t)p->gpt.precision;
        hetrun_op_needs_add(needs, HETRUN_OP_GEMM, c, HETRUN_F32, 0);
        hetrun_op_needs_add(needs, HETRUN_OP_GEMM_BIAS_ACT, c, HETRUN_F32, HETRUN_ACT_IDENTITY);
        hetrun_op_needs_add(needs, HETRUN_OP_GEMM_BIAS_ACT, c, HETRUN_F32, HETRUN_ACT_GELU);
        if (c != HETRUN_F32) hetrun_op_needs_add(needs, HETRUN_OP_CAST, HETRUN_F32, c, 0);
        for (size_t i = 0; i < sizeof gpt / sizeof gpt[0]; i++)
            hetrun_op_needs_add(needs, gpt[i], HETRUN_F32, HETRUN_F32, 0);
        hetrun_op_needs_add(needs, HETRUN_OP_ACT_BACKWARD, HETRUN_F32, HETRUN_F32, HETRUN_ACT_GELU);
        return;
    }
    for (size_t i = 0; i < sizeof mlp / sizeof mlp[0]; i++)
        hetrun_op_needs_add(needs, mlp[i], HETRUN_F32, HETRUN_F32, 0);
    hetrun_op_needs_add(needs, HETRUN_OP_ACT_FORWARD, HETRUN_F32, HETRUN_F32,
                        (uint32_t)p->activation);
    hetrun_op_needs_add(needs, HETRUN_OP_ACT_BACKWARD, HETRUN_F32, HETRUN_F32,
                        (uint32_t)p->activation);
    hetrun_op_needs_add(needs,
                        p->optimizer == HETRUN_OPT_ADAMW ? HETRUN_OP_ADAMW : HETRUN_OP_SGD_MOMENTUM,
                        HETRUN_F32, HETRUN_F32, 0);
}

const hetrun_workload_type hetrun_workload_train = {
    "train",
    "MLP classifier or GPT language model trained data-parallel (sgd/adamw, checkpoints)",
    &train_schema,
    train_run,
    1, /* collective */
    train_needs,
};
