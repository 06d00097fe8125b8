/**
 * @file launcher/cli/job_needs.h
 * @brief Which ops and dtype pairs a job needs, and whether each backend supports them
 *        (asked with op_supported in a probe child), for `plan` and `validate --needs`.
 */
#ifndef HETRUN_CLI_JOB_NEEDS_H
#define HETRUN_CLI_JOB_NEEDS_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "spec/spec.h"

/** Which backends hetrun_job_needs_json asks. */
typedef enum hetrun_needs_probe {
    HETRUN_NEEDS_NO_PROBE = 0, /**< list the needs only (a plan for another machine) */
    HETRUN_NEEDS_ONE = 1,      /**< only `backend` */
    HETRUN_NEEDS_ALL = 2       /**< every module found on the search path */
} hetrun_needs_probe;

/**
 * Adds "needs" to `obj`: {"ops": [{"op", "dtype", "out_dtype", "act", "workloads"}],
 * "unknown_workloads": [...], "backends": [{"name", "path", "state", "reason", "abi",
 * "version", "supports_all", "ops": [{"op", "dtype", "out_dtype", "act", "supported",
 * "reason"}]}]}. Each backend is probed in a child (op_supported on device 0, on the op
 * table's first conformance shape). Returns the number of needed ops the backend(s) asked
 * do not support (for HETRUN_NEEDS_ONE: that backend's count, a backend that does not load
 * counting every op), or -1 when out of memory.
 */
int hetrun_job_needs_json(const hetrun_job *job, hetrun_needs_probe probe, const char *backend,
                          cJSON *obj);

/** Prints the "needs" member of `obj` (from hetrun_job_needs_json) as a table: one row per
 *  op, one column per backend, then each backend's reasons. */
void hetrun_job_needs_print(const cJSON *obj, FILE *out);

#endif
