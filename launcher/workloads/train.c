/* The train workload: its spec section, the list of models, and the run: the chosen
 * model (train_model.h) trained by the one driver (train_loop.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/job.h"
#include "workloads/gpt_reference.h"
#include "workloads/model.h"
#include "workloads/train_gpt.h"
#include "workloads/train_loop.h"
#include "workloads/train_mlp.h"
#include "workloads/train_spec.h"
#include "workloads/workload.h"

typedef hetrun_train_spec train_params;
typedef hetrun_divergence_params divergence_params;

/* The models, by their spec name: each creates itself with its data into a train model. */
typedef int (*model_create_fn)(hetrun_session *s, const hetrun_train_spec *p, uint64_t seed,
                               hetrun_train_model *m, cJSON *result);
static const model_create_fn model_create[] = {hetrun_train_mlp_create, hetrun_train_gpt_create};
static const char *const model_names[] = {"mlp", "gpt", NULL};
enum { MODEL_MLP = 0, MODEL_GPT = 1 };
static const char *const opt_names[] = {"sgd", "adamw", NULL};
static const char *const sched_names[] = {"constant", "cosine", NULL};

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
    if (p->schedule == HETRUN_SCHED_COSINE && p->min_lr > p->lr)
        hetrun_check_error(ctx, "min_lr", "min_lr (%g) is above lr (%g)", p->min_lr, p->lr);
}

static const hetrun_schema train_schema = {"train", sizeof(train_params), train_fields,
                                           sizeof train_fields / sizeof train_fields[0],
                                           train_check};

static int train_run(hetrun_session *s, const void *params, cJSON *result) {
    const train_params *p = params;
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
    int rc = model_create[p->model](s, p, seed, &m, result);
    if (rc == 0) rc = hetrun_train_loop(s, &m, p, result);
    hetrun_train_model_end(s, &m);
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
        if (p->gpt.dropout > 0.0)
            hetrun_op_needs_add(needs, HETRUN_OP_MUL, HETRUN_F32, HETRUN_F32, 0);
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
