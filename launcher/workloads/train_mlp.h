/**
 * @file launcher/workloads/train_mlp.h
 * @brief `model: mlp` of the train workload (train_model.h): an MLP classifier on the rows
 *        of `data` (CSV, IDX, synthetic), evaluated by test accuracy once per epoch.
 */
#ifndef HETRUN_WORKLOADS_TRAIN_MLP_H
#define HETRUN_WORKLOADS_TRAIN_MLP_H

#include <cjson/cJSON.h>

#include "exec/session.h"
#include "workloads/train_model.h"
#include "workloads/train_spec.h"

/** Loads the data and creates the model with initial weights into `m`. Returns 0 or -1
 *  (s->error; m->ops->destroy frees what was made). Collective. */
int hetrun_train_mlp_create(hetrun_session *s, const hetrun_train_spec *p, uint64_t seed,
                            hetrun_train_model *m, cJSON *result);

#endif
