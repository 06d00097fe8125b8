/**
 * @file launcher/workloads/train_spec.h
 * @brief The train workload's spec section as parsed (train.c's schema): the keys every
 *        model shares (optimizer, schedule, batch, steps, divergence guard) and each model's
 *        own section (`data:`/`hidden:` for the MLP, `gpt:`/`text:` for the GPT).
 */
#ifndef HETRUN_WORKLOADS_TRAIN_SPEC_H
#define HETRUN_WORKLOADS_TRAIN_SPEC_H

#include <stdint.h>

#include "spec/schema.h"
#include "workloads/data.h"
#include "workloads/train_gpt.h"

/** `divergence:` guard: fail when the smoothed loss climbs far above its best. */
typedef struct hetrun_divergence_params {
    double max_loss_ratio; /**< 0: off */
    int64_t after_steps;
} hetrun_divergence_params;

enum { HETRUN_SCHED_CONSTANT = 0, HETRUN_SCHED_COSINE = 1 };

typedef struct hetrun_train_spec {
    int model; /**< index into train.c's model list */
    hetrun_gpt_params gpt;
    hetrun_text_params text;
    hetrun_data_params data;
    hetrun_int_list hidden;
    int activation;
    int optimizer; /**< ::hetrun_optimizer */
    double lr, momentum, weight_decay, beta1, beta2, eps;
    int schedule;
    int64_t warmup_steps;
    double min_lr;
    int64_t batch, epochs, steps, seed;
    double min_accuracy;
    int64_t stop_after, log_every;
    hetrun_divergence_params divergence;
} hetrun_train_spec;

#endif
