/**
 * @file launcher/workloads/workload.h
 * @brief A workload type: its spec schema and its run function. The registry in
 *        registry.c lists them; adding a workload is one file plus one line there.
 */
#ifndef HETRUN_WORKLOADS_WORKLOAD_H
#define HETRUN_WORKLOADS_WORKLOAD_H

#include <cjson/cJSON.h>

#include "exec/session.h"
#include "spec/schema.h"
#include "spec/spec.h"

/** One op a workload point runs: its kind, dtype pair and (act ops) activation. */
typedef struct hetrun_op_need {
    uint32_t kind, dtype, out_dtype, act;
} hetrun_op_need;

/** The ops a job needs, each once, in the order first added. */
typedef struct hetrun_op_needs {
    hetrun_op_need *items;
    size_t count;
    int failed; /**< out of memory while adding: the list is incomplete */
} hetrun_op_needs;

/** Adds (kind, dtype, out_dtype, act) unless listed; `act` is ignored (0) for ops without
 *  an activation. */
void hetrun_op_needs_add(hetrun_op_needs *needs, uint32_t kind, uint32_t dtype, uint32_t out_dtype,
                         uint32_t act);
void hetrun_op_needs_free(hetrun_op_needs *needs);

typedef struct hetrun_workload_type {
    const char *name;            /**< key under `workloads:` items, e.g. "gemm" */
    const char *summary;         /**< one line for docs and `--help` */
    const hetrun_schema *schema; /**< parameters */
    /**
     * Runs one workload point on this rank. Writes its results (figures, checks) into
     * `result` (a JSON object the report embeds under ranks[].results[]). Returns 0 on
     * success, -1 on failure with the reason in s->error. A failed correctness check is
     * not a failure of the run: it is recorded as `"check": "failed"` in `result` and
     * makes the job status "failed".
     */
    int (*run)(hetrun_session *s, const void *params, cJSON *result);
    /** 1 when run() communicates between ranks (allreduce, collectives benchmark): a rank
     *  that fails then cannot just stop, its peers would wait for it forever, so `run`
     *  aborts the whole job instead (see cli/cmd_run.c). */
    int collective;
    /** (optional) Adds every op (kind and dtype pair) run() may call for these parameters,
     *  so `plan` and `validate --needs` can ask each backend before anything runs. */
    void (*needs)(const void *params, hetrun_op_needs *needs);
} hetrun_workload_type;

/** The activation names workload schemas accept (an enum field's choices, NULL-ended),
 *  indexed by ::hetrun_activation: the catalogue's names, in its order (a prefix of it). */
extern const char *const hetrun_act_choices[];

/** The workload type called `name`, or NULL. */
const hetrun_workload_type *hetrun_workload_find(const char *name);
/** All workload types, NULL-terminated (for docs and did-you-mean). */
const hetrun_workload_type *const *hetrun_workload_all(void);
/** The same types as the spec sees them (name, schema, handle), ending with a NULL name:
 *  the registry hetrun_spec_read takes. */
const hetrun_workload_schema *hetrun_workload_schemas(void);

/** hetrun_spec_read / hetrun_spec_read_bytes with this build's workload types. */
int hetrun_spec_load(const char *path, hetrun_job **job, hetrun_diags *diags);
int hetrun_spec_load_bytes(const char *name, const unsigned char *bytes, size_t len,
                           hetrun_job **job, hetrun_diags *diags);

#endif
