/* The infer workload: serves an MLP (from a training checkpoint, or random weights of a
 * given shape) over a list of batch sizes and reports per-batch latency percentiles and
 * throughput. A timed request is end to end: input copy to the device, forward pass with
 * softmax, probabilities back to the host. With data it also reports accuracy over the
 * data's test split (standardised with the checkpoint's training moments). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report/fields.h"
#include "spec/job.h"
#include "util/log.h"
#include "util/progress.h"
#include "workloads/checkpoint.h"
#include "workloads/model.h"
#include "workloads/stats.h"
#include "workloads/train_common.h"
#include "workloads/workload.h"
#include "util/clock.h"

typedef struct infer_params {
    char *checkpoint;
    int64_t features, classes;
    hetrun_int_list hidden;
    int activation;
    hetrun_int_list batch_sizes;
    int64_t warmup, iterations;
    double duration;
    hetrun_data_params data;
    double min_accuracy;
} infer_params;

static const hetrun_field infer_fields[] = {
    {"checkpoint", HETRUN_FIELD_STRING, 0, offsetof(infer_params, checkpoint), 1, 0, NULL, NULL,
     NULL,
     "checkpoint file, or a folder (its newest valid checkpoint); absent: random weights "
     "of the shape below (a relative path is taken from the working directory, like "
     "checkpoint.dir)"},
    {"features", HETRUN_FIELD_INT, 0, offsetof(infer_params, features), 1, 1 << 24, NULL, NULL,
     "784", "without checkpoint: input features"},
    {"classes", HETRUN_FIELD_INT, 0, offsetof(infer_params, classes), 2, 1 << 24, NULL, NULL, "10",
     "without checkpoint: output classes"},
    {"hidden", HETRUN_FIELD_INT_LIST, 0, offsetof(infer_params, hidden), 1, 1 << 20, NULL, NULL,
     "[1024, 1024]", "without checkpoint: hidden layer widths"},
    {"activation", HETRUN_FIELD_ENUM, 0, offsetof(infer_params, activation), 1, 0,
     hetrun_mlp_activation_names, NULL, "relu", "without checkpoint: activation"},
    {"batch_sizes", HETRUN_FIELD_INT_LIST, 0, offsetof(infer_params, batch_sizes), 1, 1 << 20, NULL,
     NULL, "[1, 64]", "batch sizes to serve, each timed separately"},
    {"warmup", HETRUN_FIELD_INT, 0, offsetof(infer_params, warmup), 0, 1000000, NULL, NULL, "5",
     "untimed requests per batch size"},
    {"iterations", HETRUN_FIELD_INT, 0, offsetof(infer_params, iterations), 1, 100000000, NULL,
     NULL, "100", "timed requests per batch size (when duration is 0)"},
    {"duration", HETRUN_FIELD_SECONDS, 0, offsetof(infer_params, duration), 0.0, 86400.0, NULL,
     NULL, "0", "time each batch size for this long instead of a fixed count"},
    {"data", HETRUN_FIELD_OBJECT, 0, offsetof(infer_params, data), 1, 0, NULL, &hetrun_data_schema,
     NULL, "optional labelled samples (as in train): accuracy over its test split"},
    {"min_accuracy", HETRUN_FIELD_FLOAT, 0, offsetof(infer_params, min_accuracy), 0.0, 1.0, NULL,
     NULL, "0.0", "check: accuracy must reach this (0: no check)"},
};

static void infer_check(const void *obj, const hetrun_check_ctx *ctx) {
    const infer_params *p = obj;
    if (p->hidden.count + 1 > HETRUN_MLP_MAX_LAYERS)
        hetrun_check_error(ctx, "hidden", "%zu hidden layers; at most %d", p->hidden.count,
                           HETRUN_MLP_MAX_LAYERS - 1);
    if (!p->batch_sizes.count) hetrun_check_error(ctx, "batch_sizes", "needs at least one size");
}

static const hetrun_schema infer_schema = {"infer", sizeof(infer_params), infer_fields,
                                           sizeof infer_fields / sizeof infer_fields[0],
                                           infer_check};

static int has_data(const hetrun_data_params *d) {
    return d->source == HETRUN_DATA_SYNTHETIC || d->path != NULL;
}

static int infer_run(hetrun_session *s, const void *params, cJSON *result) {
    const infer_params *p = params;
    const uint64_t seed = s->job ? (uint64_t)s->job->seed : 1;
    hetrun_ckpt ck;
    memset(&ck, 0, sizeof ck);
    hetrun_mlp m;
    memset(&m, 0, sizeof m);
    hetrun_dataset train = {0}, test = {0};
    float *mean = NULL, *std = NULL, *hx = NULL, *out = NULL;
    double *lat = NULL;
    int rc = -1;
    hetrun_mlp_shape sh;
    memset(&sh, 0, sizeof sh);
    if (p->checkpoint) {
        char path[4096], found[4096], err[1536];
        snprintf(path, sizeof path, "%s", p->checkpoint); /* like checkpoint.dir: from the cwd */
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) { /* a folder: its newest valid file */
            int g = hetrun_ckpt_load_newest(path, &ck, found, sizeof found, err, sizeof err);
            if (g <= 0) {
                if (g < 0)
                    snprintf(s->error, sizeof s->error, "infer: %s", err);
                else
                    snprintf(s->error, sizeof s->error,
                             "infer: checkpoint folder %s holds no ckpt-*.bin file", path);
                goto out;
            }
            snprintf(path, sizeof path, "%s", found);
        } else if (hetrun_ckpt_read(path, &ck, err, sizeof err) != 0) {
            snprintf(s->error, sizeof s->error, "infer: %s", err);
            goto out;
        }
        sh = ck.h.shape;
        cJSON_AddStringToObject(result, HETRUN_RF_CHECKPOINT, path);
        cJSON_AddNumberToObject(result, HETRUN_RF_CHECKPOINT_STEP, (double)ck.h.step);
    } else {
        sh.layers = (int32_t)p->hidden.count + 1;
        sh.act = p->activation;
        sh.dims[0] = p->features;
        for (size_t i = 0; i < p->hidden.count; i++)
            sh.dims[i + 1] = p->hidden.items[i];
        sh.dims[sh.layers] = p->classes;
    }
    int64_t maxb = 0;
    for (size_t i = 0; i < p->batch_sizes.count; i++)
        if (p->batch_sizes.items[i] > maxb) maxb = p->batch_sizes.items[i];
    const int64_t f = sh.dims[0], C = sh.dims[sh.layers];
    int64_t rows = maxb > 256 ? maxb : 256;
    if (hetrun_mlp_create(s, &m, &sh, -1, rows) != 0) goto out;
    if (p->checkpoint ? hetrun_mlp_set_params(s, &m, ck.params)
                      : hetrun_mlp_init_weights(s, &m, seed))
        goto out;
    hx = malloc((size_t)(rows * f) * 4);
    out = malloc((size_t)(rows * C) * 4);
    int64_t cap = p->duration > 0 ? 1 << 20 : p->iterations;
    lat = malloc((size_t)cap * sizeof *lat);
    if (!hx || !out || !lat) {
        snprintf(s->error, sizeof s->error, "infer: out of host memory for batch %lld x %lld",
                 (long long)rows, (long long)f);
        goto out;
    }
    /* Request inputs: random standardised features (the model sees the same scale). */
    hetrun_rng rng = hetrun_rng_seed(seed, 0x1f3e + (uint64_t)s->rank);
    for (int64_t i = 0; i < rows * f; i++)
        hx[i] = (float)hetrun_rng_normal(&rng);

    char shape_text[256];
    hetrun_mlp_shape_text(&sh, shape_text, sizeof shape_text);
    cJSON_AddStringToObject(result, HETRUN_RF_MODEL, shape_text);
    cJSON *sweep = cJSON_AddArrayToObject(result, HETRUN_RF_BATCHES);
    for (size_t bi = 0; bi < p->batch_sizes.count; bi++) {
        const int64_t b = p->batch_sizes.items[bi];
        const hetrun_tensor in = hetrun_mlp_input(&m), o = hetrun_mlp_output(&m, 1);
        for (int64_t i = 0; i < p->warmup; i++)
            if (hetrun_session_h2d(s, in, hx, (uint64_t)(b * f) * 4) ||
                hetrun_mlp_forward(s, &m, b, 0, 1) ||
                hetrun_session_d2h(s, out, o, (uint64_t)(b * C) * 4))
                goto out;
        int64_t count = 0;
        double start = hetrun_now_s();
        for (;;) {
            if (p->duration > 0 ? (hetrun_now_s() - start >= p->duration || count >= cap)
                                : count >= p->iterations)
                break;
            double t0 = hetrun_now_s();
            if (hetrun_session_h2d(s, in, hx, (uint64_t)(b * f) * 4) ||
                hetrun_mlp_forward(s, &m, b, 0, 1) ||
                hetrun_session_d2h(s, out, o, (uint64_t)(b * C) * 4))
                goto out;
            lat[count++] = (hetrun_now_s() - t0) * 1e3;
            hetrun_progress_serving(b, bi, p->batch_sizes.count, count, p->iterations,
                                    hetrun_now_s() - start, p->duration);
        }
        double elapsed = hetrun_now_s() - start;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, HETRUN_RF_BATCH, (double)b);
        cJSON_AddNumberToObject(e, HETRUN_RF_REQUESTS, (double)count);
        hetrun_latency_json(e, lat, (size_t)count);
        cJSON_AddNumberToObject(e, HETRUN_RF_SAMPLES_PER_S,
                                elapsed > 0 ? (double)(count * b) / elapsed : 0);
        cJSON_AddItemToArray(sweep, e);
    }

    int ok = 1;
    if (has_data(&p->data)) {
        if (hetrun_train_prepare_data(s, &p->data, seed, &train, &test, &mean, &std) != 0) goto out;
        if (train.features != f) {
            snprintf(s->error, sizeof s->error,
                     "infer: data has %lld features, model %s takes %lld",
                     (long long)train.features, shape_text, (long long)f);
            goto out;
        }
        /* Standardise with the moments the model was trained with, not this split's. */
        if (p->checkpoint && p->data.standardize) {
            for (int64_t j = 0; j < f; j++) /* undo, then apply the checkpoint's */
                for (int64_t i = 0; i < test.samples; i++) {
                    float *v = &test.x[i * f + j];
                    *v = (*v * std[j] + mean[j] - ck.mean[j]) / ck.std[j];
                }
        }
        const hetrun_dataset *d = test.samples ? &test : &train;
        long long correct = 0;
        for (int64_t i = 0; i < d->samples; i += rows) {
            int64_t n = d->samples - i < rows ? d->samples - i : rows;
            if (hetrun_session_h2d(s, hetrun_mlp_input(&m), d->x + i * f, (uint64_t)(n * f) * 4) ||
                hetrun_mlp_forward(s, &m, n, 0, 1) ||
                hetrun_session_d2h(s, out, hetrun_mlp_output(&m, 1), (uint64_t)(n * C) * 4))
                goto out;
            for (int64_t r = 0; r < n; r++) {
                int64_t best = 0;
                for (int64_t c = 1; c < C; c++)
                    if (out[r * C + c] > out[r * C + best]) best = c;
                correct += best == d->y[i + r];
            }
        }
        double acc = (double)correct / (double)d->samples;
        cJSON_AddNumberToObject(result, HETRUN_RF_ACCURACY, acc);
        cJSON_AddNumberToObject(result, HETRUN_RF_ACCURACY_SAMPLES, (double)d->samples);
        if (p->min_accuracy > 0.0) {
            cJSON_AddNumberToObject(result, HETRUN_RF_MIN_ACCURACY, p->min_accuracy);
            ok = acc >= p->min_accuracy;
        }
    }
    hetrun_result_set_check(result, !ok                   ? HETRUN_CHECK_FAILED
                                    : p->min_accuracy > 0 ? HETRUN_CHECK_PASSED
                                                          : HETRUN_CHECK_SKIPPED);
    rc = 0;
out:
    hetrun_mlp_destroy(s, &m);
    hetrun_ckpt_free(&ck);
    hetrun_data_free(&train);
    hetrun_data_free(&test);
    free(mean), free(std), free(hx), free(out), free(lat);
    return rc;
}

/* The forward pass of model.c with probabilities, in fp32. */
static void infer_needs(const void *params, hetrun_op_needs *needs) {
    const infer_params *p = params;
    hetrun_op_needs_add(needs, HETRUN_OP_GEMM, HETRUN_F32, HETRUN_F32, 0);
    hetrun_op_needs_add(needs, HETRUN_OP_BIAS_ADD, HETRUN_F32, HETRUN_F32, 0);
    hetrun_op_needs_add(needs, HETRUN_OP_ACT_FORWARD, HETRUN_F32, HETRUN_F32,
                        (uint32_t)p->activation);
    hetrun_op_needs_add(needs, HETRUN_OP_SOFTMAX, HETRUN_F32, HETRUN_F32, 0);
}

const hetrun_workload_type hetrun_workload_infer = {
    "infer",
    "MLP inference over batch sizes: latency p50/p90/p99/max, samples/s, accuracy",
    &infer_schema,
    infer_run,
    0, /* ranks work independently */
    infer_needs,
};
