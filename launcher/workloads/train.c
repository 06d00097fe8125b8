/* The train workload: its spec section, the list of models, and the run: the chosen
 * model (train_model.h) trained by the one driver (train_loop.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/job.h"
#include "workloads/gpt_reference.h"
#include "workloads/model.h"
#include "workloads/train_loop.h"
#include "workloads/train_spec.h"
#include "workloads/workload.h"

/* The models, in the order of model_names (the spec's enum). */
static const hetrun_train_model_type *const models[] = {&hetrun_train_mlp, &hetrun_train_gpt};
static const char *const model_names[] = {"mlp", "gpt", NULL};
enum { MODEL_MLP = 0, MODEL_GPT = 1 };
static const char *const opt_names[] = {"sgd", "adamw", NULL};
static const char *const sched_names[] = {"constant", "cosine", NULL};

static const hetrun_field divergence_fields[] = {
    {"max_loss_ratio", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_divergence_params, max_loss_ratio),
     0.0, 1e6, NULL, NULL, "0",
     "fail when the smoothed loss exceeds this multiple of its lowest value; 0: off"},
    {"after_steps", HETRUN_FIELD_INT, 0, offsetof(hetrun_divergence_params, after_steps), 1,
     1000000000, NULL, NULL, "20",
     "steps of this run before the guard starts (the loss settles first)"},
};

static const hetrun_schema divergence_schema = {
    "divergence", sizeof(hetrun_divergence_params), divergence_fields,
    sizeof divergence_fields / sizeof divergence_fields[0], NULL};

static const hetrun_field train_fields[] = {
    {"model", HETRUN_FIELD_ENUM, 0, offsetof(hetrun_train_spec, model), 1, 0, model_names, NULL,
     "mlp", "mlp (classifier on `data`) or gpt (decoder language model on `text`)"},
    {"gpt", HETRUN_FIELD_OBJECT, 0, offsetof(hetrun_train_spec, gpt), 1, 0, NULL,
     &hetrun_gpt_schema, NULL, "model gpt: shape, batch in tokens, clipping, evaluation (below)"},
    {"text", HETRUN_FIELD_OBJECT, 0, offsetof(hetrun_train_spec, text), 1, 0, NULL,
     &hetrun_text_schema, NULL, "model gpt: corpus, token file, held-out fraction (below)"},
    {"data", HETRUN_FIELD_OBJECT, 0, offsetof(hetrun_train_spec, data), 1, 0, NULL,
     &hetrun_data_schema, NULL,
     "model mlp (required): the samples: source, path, split, standardisation (below)"},
    {"hidden", HETRUN_FIELD_INT_LIST, 0, offsetof(hetrun_train_spec, hidden), 1, 1 << 20, NULL,
     NULL, "[64]", "hidden layer widths, e.g. [1024, 1024]; [] for a linear model"},
    {"activation", HETRUN_FIELD_ENUM, 0, offsetof(hetrun_train_spec, activation), 1, 0,
     hetrun_mlp_activation_names, NULL, "relu", "activation between layers: relu or gelu"},
    {"optimizer", HETRUN_FIELD_ENUM, 0, offsetof(hetrun_train_spec, optimizer), 1, 0, opt_names,
     NULL, "adamw", "sgd (momentum, L2 weight decay) or adamw (decoupled weight decay)"},
    {"lr", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_train_spec, lr), 0.0, 100.0, NULL, NULL, "0.001",
     "peak learning rate"},
    {"momentum", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_train_spec, momentum), 0.0, 1.0, NULL, NULL,
     "0.9", "sgd: momentum"},
    {"weight_decay", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_train_spec, weight_decay), 0.0, 10.0,
     NULL, NULL, "0.0", "weight decay (sgd: added to the gradient; adamw: decoupled)"},
    {"beta1", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_train_spec, beta1), 0.0, 1.0, NULL, NULL,
     "0.9", "adamw: first-moment decay"},
    {"beta2", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_train_spec, beta2), 0.0, 1.0, NULL, NULL,
     "0.999", "adamw: second-moment decay"},
    {"eps", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_train_spec, eps), 0.0, 1.0, NULL, NULL, "1e-8",
     "adamw: denominator epsilon"},
    {"schedule", HETRUN_FIELD_ENUM, 0, offsetof(hetrun_train_spec, schedule), 1, 0, sched_names,
     NULL, "constant", "learning rate schedule: constant, or cosine decay to min_lr"},
    {"warmup_steps", HETRUN_FIELD_INT, 0, offsetof(hetrun_train_spec, warmup_steps), 0, 100000000,
     NULL, NULL, "0", "linear warm-up steps from lr/warmup_steps to lr (either schedule)"},
    {"min_lr", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_train_spec, min_lr), 0.0, 100.0, NULL, NULL,
     "0.0", "cosine: final learning rate"},
    {"batch", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, offsetof(hetrun_train_spec, batch), 1, 1 << 24,
     NULL, NULL, "64", "global batch size, split over the ranks"},
    {"epochs", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, offsetof(hetrun_train_spec, epochs), 1,
     1000000, NULL, NULL, "10", "passes over the training split (ignored when steps > 0)"},
    {"steps", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, offsetof(hetrun_train_spec, steps), 0,
     1000000000, NULL, NULL, "0", "total optimizer steps; 0: epochs x steps per epoch"},
    {"seed", HETRUN_FIELD_INT, 0, offsetof(hetrun_train_spec, seed), -1, INT64_MAX / 2, NULL, NULL,
     "-1", "seed of data split, shuffles and weights; -1: the job's seed"},
    {"min_accuracy", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_train_spec, min_accuracy), 0.0, 1.0,
     NULL, NULL, "0.0", "check: final test accuracy must reach this (0: no accuracy check)"},
    {"stop_after", HETRUN_FIELD_INT, 0, offsetof(hetrun_train_spec, stop_after), 0, 1000000000,
     NULL, NULL, "0",
     "debug: stop after this many steps of this run, as if killed (no end checkpoint)"},
    {"log_every", HETRUN_FIELD_INT, 0, offsetof(hetrun_train_spec, log_every), 0, 1000000000, NULL,
     NULL, "0", "progress line every N steps on rank 0; 0: once per epoch"},
    {"divergence", HETRUN_FIELD_OBJECT, 0, offsetof(hetrun_train_spec, divergence), 1, 0, NULL,
     &divergence_schema, NULL, "divergence guard: max_loss_ratio, after_steps (below)"},
};

static void train_check(const void *obj, const hetrun_check_ctx *ctx) {
    const hetrun_train_spec *p = obj;
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
    if (p->schedule == HETRUN_SCHED_COSINE && p->min_lr > p->lr)
        hetrun_check_error(ctx, "min_lr", "min_lr (%g) is above lr (%g)", p->min_lr, p->lr);
}

static const hetrun_schema train_schema = {"train", sizeof(hetrun_train_spec), train_fields,
                                           sizeof train_fields / sizeof train_fields[0],
                                           train_check};

static int train_run(hetrun_session *s, const void *params, cJSON *result) {
    const hetrun_train_spec *p = params;
    const uint64_t seed = p->seed >= 0 ? (uint64_t)p->seed : s->job ? (uint64_t)s->job->seed : 1;
    if (p->model == MODEL_GPT && p->gpt.reference) {
        const hetrun_gpt_config cfg = {p->gpt.layers,
                                       p->gpt.heads,
                                       p->gpt.width,
                                       p->gpt.context,
                                       p->gpt.vocab,
                                       (hetrun_dtype)p->gpt.precision,
                                       0.0}; /* the reference tensors have no dropout */
        return hetrun_gpt_reference_check(s, &cfg, p->gpt.reference, result);
    }
    hetrun_train_model m;
    memset(&m, 0, sizeof m);
    int rc = models[p->model]->create(s, p, seed, &m, result);
    if (rc == 0) rc = hetrun_train_loop(s, &m, p, result);
    hetrun_train_model_end(s, &m);
    return rc;
}

static void train_needs(const void *params, hetrun_op_needs *needs) {
    const hetrun_train_spec *p = params;
    models[p->model]->needs(p, needs);
}

const hetrun_workload_type hetrun_workload_train = {
    "train",
    "MLP classifier or GPT language model trained data-parallel (sgd/adamw, checkpoints)",
    &train_schema,
    train_run,
    1, /* collective */
    train_needs,
};
