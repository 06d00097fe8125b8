/**
 * @file launcher/workloads/gpt_reference.h
 * @brief Checks hetrun's GPT against PyTorch: loads the weights and batch that
 *        tests/data/gpt/make_reference.py wrote, runs forward and backward on this rank's
 *        backend, and compares logits, loss and every parameter gradient.
 */
#ifndef HETRUN_WORKLOADS_GPT_REFERENCE_H
#define HETRUN_WORKLOADS_GPT_REFERENCE_H

#include <cjson/cJSON.h>

#include "exec/session.h"
#include "workloads/gpt.h"

/** Relative tolerance (fp32): max |got - want| over a tensor / max |want| of that tensor. */
#define HETRUN_GPT_REFERENCE_RTOL 1e-4
/** Mixed precision is compared with the same fp32 reference, within this many unit
 *  roundoffs of its compute dtype (bf16: 3.9e-2, fp16: 4.9e-3; measured on cpu: 1.2e-2
 *  and 1.1e-3): wrong code is off by O(1), honest rounding by a few units. */
#define HETRUN_GPT_REFERENCE_MIXED_UNITS 10.0

/**
 * Runs the check with the model shape stated in `dir`/manifest.txt (`spec` is the job's
 * gpt section: a mismatch is reported, not an error). Writes per-tensor errors and
 * "check": passed/failed into `result`. Returns 0, or -1 (unreadable files, an op the
 * backend lacks: s->error).
 */
int hetrun_gpt_reference_check(hetrun_session *s, const hetrun_gpt_config *spec, const char *dir,
                               cJSON *result);

#endif
