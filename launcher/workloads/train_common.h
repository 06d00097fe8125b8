/**
 * @file launcher/workloads/train_common.h
 * @brief Pieces shared by the train and infer workloads: data preparation, relative
 *        paths, CRC of weights, progress output.
 */
#ifndef HETRUN_WORKLOADS_TRAIN_COMMON_H
#define HETRUN_WORKLOADS_TRAIN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "exec/session.h"
#include "workloads/data.h"

/** Resolves `path` against the spec file's folder when relative; writes into out. */
void hetrun_train_resolve(const hetrun_session *s, const char *path, char *out, size_t len);

/**
 * Loads `p` (relative paths against the spec's folder), splits train/test with `seed`
 * and standardises both with the training split's moments (mean/std returned, malloc'd,
 * identity when standardize is off). Returns 0 or -1 (s->error).
 */
int hetrun_train_prepare_data(hetrun_session *s, const hetrun_data_params *p, uint64_t seed,
                              hetrun_dataset *train, hetrun_dataset *test, float **mean,
                              float **std);

/** CRC32 (zlib) of `count` floats as 8 hex digits. */
void hetrun_train_crc_hex(const float *v, uint64_t count, char out[9]);

/**
 * Gathers this rank's hex CRC from every rank; returns 1 when all equal, 0 when not, -1 on
 * an MPI error. Collective.
 */
int hetrun_train_crc_all_equal(hetrun_session *s, const char crc[9], cJSON *result);

/**
 * After rank 0 wrote a checkpoint (`rc` its result there; other ranks pass their own d2h
 * result): every rank learns rank 0's outcome (and on failure its error, in s->error), so
 * all stop together with the cause; counts a success in `*written`. Returns rank 0's rc.
 * Collective.
 */
int hetrun_train_ckpt_agree(hetrun_session *s, int rc, int *written);

#endif
