/**
 * @file launcher/workloads/train_loop.h
 * @brief The one training driver of the train workload, for every model (train_model.h).
 *
 * Per step: the model loads this rank's share of the global batch in micro-batches of
 * model->micro_batch rows; forward and backward accumulate gradients, and during the
 * last micro-batch's backward each gradient bucket is allreduced (sum) as it completes;
 * the loss is scaled by 1/(global rows x units per row), so the sums are global means.
 * Then: non-finite and norm checks (model->grad_stats), fp16 dynamic loss scaling
 * (model->compute F16: an overflow skips the step and halves the scale), clipping, the
 * model's optimizer step with the learning-rate schedule, the divergence guard, the
 * model's after_step (evaluation, progress), checkpoints every checkpoint.every steps or
 * on request, and stop_after. Resume loads the newest valid checkpoint of the job's
 * checkpoint folder (rank 0 reads, every rank receives), refused on another model or
 * configuration. At the end: model->finish, the weights' CRC32 on every rank, and the
 * common report fields.
 */
#ifndef HETRUN_WORKLOADS_TRAIN_LOOP_H
#define HETRUN_WORKLOADS_TRAIN_LOOP_H

#include <cjson/cJSON.h>

#include "exec/session.h"
#include "workloads/train_model.h"
#include "workloads/train_spec.h"

/** Starts a model's create function: zeroes `m`, sets its ops and a zeroed `size`-byte
 *  self (freed by hetrun_train_model_end). Returns the self, or NULL (s->error). */
void *hetrun_train_model_begin(hetrun_session *s, hetrun_train_model *m,
                               const hetrun_train_model_ops *ops, size_t size);

/** Ends a model: its destroy (when it got that far), then its self. */
void hetrun_train_model_end(hetrun_session *s, hetrun_train_model *m);

/** Learning rate of `step` (0-based) of `total` under the spec's warm-up and schedule. */
double hetrun_train_lr_at(const hetrun_train_spec *p, int64_t step, int64_t total);

/** Trains `m` (created, weights initialised) to m->total_steps. Returns 0 or -1 (s->error).
 *  Collective. Does not destroy `m`. */
int hetrun_train_loop(hetrun_session *s, hetrun_train_model *m, const hetrun_train_spec *p,
                      cJSON *result);

#endif
