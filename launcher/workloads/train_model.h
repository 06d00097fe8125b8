/**
 * @file launcher/workloads/train_model.h
 * @brief The model interface of the train workload: what a model (with its data and its
 *        evaluation) gives the one training driver (train_loop.h).
 *
 * A model owns one flat fp32 parameter buffer, a gradient buffer of the same layout and
 * `state_slots` optimizer-state slots after one another in `state` (nn_model.h: named
 * tensors at 64-float offsets, zero padding). `buckets` split the gradient buffer into
 * ranges that backward completes one after another; backward reports each as it completes
 * so the driver can allreduce it while backward still runs. The driver does everything
 * else: the step loop with micro-batches and accumulation, the allreduce, gradient checks,
 * clipping and loss scaling, the optimizer schedule, checkpoints (the named tensors as
 * safetensors) and resume, the divergence guard, timing and the common report fields.
 *
 * A third model is one file: a ::hetrun_train_model_type whose create fills a
 * ::hetrun_train_model, declared below and named in train.c's model list (its own spec
 * keys, if any, go into train_spec.h and train.c's schema).
 */
#ifndef HETRUN_WORKLOADS_TRAIN_MODEL_H
#define HETRUN_WORKLOADS_TRAIN_MODEL_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "exec/session.h"
#include "workloads/nn_checkpoint.h"
#include "workloads/nn_model.h"
#include "workloads/workload.h"

typedef struct hetrun_train_model hetrun_train_model;

/** Backward calls this as gradient bucket `bucket` (index into model->buckets) completes. */
typedef int (*hetrun_bucket_done_fn)(hetrun_session *s, int bucket, void *ctx);

/** Learning-rate and optimizer settings of one step (the driver's schedule). */
typedef struct hetrun_train_opt {
    double lr, momentum, weight_decay, beta1, beta2, eps;
    int64_t t; /**< optimizer steps applied, from 1 (AdamW bias correction) */
} hetrun_train_opt;

/** What the driver tells a model after each step. */
typedef struct hetrun_train_step_info {
    int64_t step, total; /**< steps done (this one included) and steps in the run */
    double loss;         /**< global mean loss of the step */
    double local_loss;   /**< this rank's summed loss of the step (no peer needed) */
    double grad_norm;    /**< global gradient norm before clipping; NaN when not computed */
    double lr;
    double step_s;     /**< wall seconds of the step */
    double rate;       /**< rows per second of training so far (all ranks) */
    int64_t steps_run; /**< steps of this run so far */
} hetrun_train_step_info;

typedef struct hetrun_train_model_ops {
    /** Uploads rows [first, first + count) of this rank's share of step `step`'s batch. */
    int (*load_batch)(hetrun_session *s, hetrun_train_model *m, int64_t step, int64_t first,
                      int64_t count);
    /** Forward with targets of `count` uploaded rows; `*loss_sum` gets their summed loss. */
    int (*forward)(hetrun_session *s, hetrun_train_model *m, int64_t count, double *loss_sum);
    /** Gradients of scale * summed loss into the gradient buffer (added when the model
     *  accumulates, else overwritten), reporting each bucket through `done` as it completes. */
    int (*backward)(hetrun_session *s, hetrun_train_model *m, int64_t count, double scale,
                    hetrun_bucket_done_fn done, void *ctx);
    /** Zeroes the gradients; NULL when backward overwrites them (one micro-batch a step). */
    int (*zero_grads)(hetrun_session *s, hetrun_train_model *m);
    /** One optimizer step over the (reduced) gradients. */
    int (*step)(hetrun_session *s, hetrun_train_model *m, const hetrun_train_opt *o);
    /** After every step: evaluation when due, progress lines, the model's curve. Collective. */
    int (*after_step)(hetrun_session *s, hetrun_train_model *m, const hetrun_train_step_info *i);
    /** At the end: final evaluation and sample, the model's report fields; `*ok` is its
     *  check (accuracy, validation loss). Collective. */
    int (*finish)(hetrun_session *s, hetrun_train_model *m, cJSON *result, int interrupted,
                  int *ok);
    /** Frees what create made (the driver frees `self` itself). */
    void (*destroy)(hetrun_session *s, hetrun_train_model *m);
} hetrun_train_model_ops;

struct hetrun_train_model {
    const hetrun_train_model_ops *ops;
    void *self; /**< the model's own state */
    /* Named parameter tensors over the flat buffers, and gradient buckets in completion order. */
    const hetrun_param_tensor *tensors;
    int tensor_count;
    const hetrun_grad_bucket *buckets;
    int bucket_count;
    const char *bucket_text; /**< what a bucket is, for the report ("one per layer, ...") */
    uint64_t param_count;    /**< floats of the flat buffer, padding included */
    uint64_t real_params;    /**< parameters without padding */
    hetrun_buffer *params, *grads, *state;
    int state_slots; /**< 1: SGD momentum, 2: AdamW moments (each param_count floats) */
    /* The batch: global rows per step, this rank's share, rows per forward. */
    int64_t rows_global, rows_local, rows_first, micro_batch;
    int64_t units_per_row;  /**< loss terms per row (tokens of a sequence; 1 for a sample) */
    const char *rate_field; /**< report field of units per second ("samples_per_s") */
    int64_t total_steps;
    /* Precision of the model's compute: F16 enables dynamic loss scaling. */
    hetrun_dtype compute;
    double loss_scale; /**< F16: initial loss scale */
    int grad_stats;    /**< compute the gradient norm and non-finite count every step */
    double grad_clip;  /**< clip the global gradient norm to this (grad_stats); 0: off */
    /* Checkpoint identity: model text, configuration hash, extra tensors. */
    char model[128];
    char config_sha256[65];
    int64_t vocab; /**< checked on resume when > 0 */
    int extra_count;
    hetrun_nn_ckpt_extra extra[HETRUN_NN_CKPT_MAX_EXTRA];
};

struct hetrun_train_spec;

/** One model of the train workload, as train.c lists them (with its `model:` name). */
typedef struct hetrun_train_model_type {
    /** Loads the model's data and creates it with initial weights into `m` (start with
     *  hetrun_train_model_begin). Returns 0 or -1 (s->error). Collective. */
    int (*create)(hetrun_session *s, const struct hetrun_train_spec *p, uint64_t seed,
                  hetrun_train_model *m, cJSON *result);
    /** The catalogue ops (and dtypes) the model runs, for the backend check before a run. */
    void (*needs)(const struct hetrun_train_spec *p, hetrun_op_needs *needs);
} hetrun_train_model_type;

/** The models (train_mlp.c, train_gpt.c). */
extern const hetrun_train_model_type hetrun_train_mlp, hetrun_train_gpt;

#endif
