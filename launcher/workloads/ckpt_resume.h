/**
 * @file launcher/workloads/ckpt_resume.h
 * @brief Resume as one decision for the whole job: rank 0 reads the newest valid
 *        checkpoint of its checkpoint folder and broadcasts the state (step, weights,
 *        optimizer state, with a CRC32 every rank checks), so every rank trains from the
 *        same bytes whether the folder is shared or node-local.
 *
 * Only rank 0 writes checkpoints (train_common.h) and only rank 0 reads them: other ranks
 * never open their own folder, so a node-local folder (/tmp on each node) that is empty,
 * stale or corrupt on another node cannot make that node start from other weights. The
 * checkpoint is found wherever the job's rank 0 runs; a rank whose own folder names a newer
 * checkpoint than rank 0 resumed from (rank 0 moved to another node) warns, naming its
 * folder, host and step (names only: nothing is read). All functions are collective.
 */
#ifndef HETRUN_WORKLOADS_CKPT_RESUME_H
#define HETRUN_WORKLOADS_CKPT_RESUME_H

#include <stddef.h>
#include <stdint.h>

#include "exec/session.h"
#include "workloads/nn_checkpoint.h"

/**
 * hetrun_nn_ckpt_load_newest on rank 0, its outcome and state broadcast to every rank:
 * params (param_count floats), state (meta->state_slots x param_count floats) and meta
 * arrive identical on every rank (the same bytes, with a CRC32 every rank checks). Returns
 * 1 (loaded; `path` is rank 0's file), 0 (no checkpoint in rank 0's folder: every rank
 * starts fresh), or -1 on every rank with the cause in `err` (rank 0's checkpoints are
 * invalid: its message, naming rank 0's host; or a transfer failed or arrived with another
 * CRC: naming the rank).
 */
int hetrun_nn_ckpt_resume(hetrun_session *s, const char *dir, const hetrun_param_tensor *tensors,
                          int count, uint64_t param_count, float *params, float *state,
                          hetrun_nn_ckpt_meta *meta, char *path, size_t path_len, char *err,
                          size_t err_len);

#endif
