/**
 * @file launcher/spec/job.h
 * @brief The validated job: what `hetrun run` executes. Produced only from a spec with
 *        zero errors (see spec.h).
 */
#ifndef HETRUN_SPEC_JOB_H
#define HETRUN_SPEC_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema.h"

struct hetrun_workload_type;

/**
 * What the spec knows of a workload type: its key under `workloads:` and its parameter
 * schema. The registry of these is passed in by the caller (workloads/registry.c fills
 * it), so the spec never depends on the workloads. `type` is the runner's handle, copied
 * into each point untouched (the spec never looks inside it).
 */
typedef struct hetrun_workload_schema {
    const char *name;                        /**< e.g. "gemm" */
    const hetrun_schema *schema;             /**< its parameters */
    const struct hetrun_workload_type *type; /**< the runner's handle (workloads/workload.h) */
} hetrun_workload_schema;

/** One workload point to run: a workload after sweep expansion. */
typedef struct hetrun_job_workload {
    const struct hetrun_workload_type *type; /**< gemm, bench, train, infer... */
    const hetrun_schema *schema;             /**< the schema `params` was read with */
    void *params;                            /**< struct filled by `schema`; owned here */
    size_t index;                            /**< position in `workloads:` (before expansion) */
    size_t point;     /**< sweep point number within that workload (0 if no sweep) */
    char *label;      /**< e.g. "gemm[m=1024,dtype=fp32]"; owned */
    char *sweep_json; /**< JSON object of the swept keys and values, or NULL; owned */
    int line, column; /**< location of the workload in the spec */
} hetrun_job_workload;

/** Placement policies (semantics in docs/placement.md). */
typedef enum hetrun_placement_policy {
    HETRUN_PLACE_CLOSEST = 0,
    HETRUN_PLACE_ROUND_ROBIN = 1,
    HETRUN_PLACE_PACK = 2,
    HETRUN_PLACE_MAP = 3
} hetrun_placement_policy;

typedef struct hetrun_job_placement {
    int policy;               /**< ::hetrun_placement_policy */
    int64_t ranks_per_device; /**< 0: as many as needed to spread evenly */
    hetrun_int_list map;      /**< policy map: device index per local rank (-1: CPU) */
    bool bind;                /**< bind the process to its cpus (default true) */
} hetrun_job_placement;

typedef struct hetrun_job_limits {
    double timeout_s;          /**< 0: none */
    int64_t memory_per_device; /**< bytes, 0: none */
    double peer_timeout_s;     /**< silence after which a peer rank counts as lost; 0: off */
    int checkpoint_signal;     /**< ::hetrun_checkpoint_signal */
    int on_signal;             /**< ::hetrun_on_signal */
} hetrun_job_limits;

/** limits.checkpoint_signal: the signal that asks training for a checkpoint. */
typedef enum {
    HETRUN_CKPT_SIGNAL_USR1,
    HETRUN_CKPT_SIGNAL_USR2,
    HETRUN_CKPT_SIGNAL_NONE
} hetrun_checkpoint_signal;
/** limits.on_signal: what training does after that checkpoint. */
typedef enum { HETRUN_ON_SIGNAL_CONTINUE, HETRUN_ON_SIGNAL_STOP } hetrun_on_signal;

typedef struct hetrun_job_report {
    char *path;                 /**< JSON report path (CSV beside it) */
    hetrun_string_list formats; /**< "json", "csv" */
} hetrun_job_report;

typedef struct hetrun_job_checkpoint {
    char *dir;     /**< directory for checkpoints, NULL: none */
    int64_t every; /**< steps between checkpoints, 0: only at the end */
    bool resume;   /**< resume from the newest valid checkpoint */
    int64_t keep;  /**< checkpoints kept */
} hetrun_job_checkpoint;

/** Whether the ranks of one job may run on different backends (spec key backend_mix). */
typedef enum hetrun_backend_mix {
    HETRUN_BACKEND_MIX_REFUSE = 0,
    HETRUN_BACKEND_MIX_ALLOW = 1
} hetrun_backend_mix;

typedef struct hetrun_job {
    char *spec_path;      /**< as given on the command line */
    char spec_sha256[65]; /**< hex SHA-256 of the spec file bytes */
    int64_t version;      /**< spec format version (1) */
    char *name;
    char *description;
    char *account; /**< account/project to bill when the scheduler names none, or NULL */
    hetrun_string_list tags;
    int progress;                /**< job.progress: ::hetrun_progress_mode (util/progress.h) */
    hetrun_string_list backends; /**< preference order; {"auto"} by default */
    bool cpu_fallback;           /**< may fall back to the cpu backend */
    int backend_mix;             /**< ::hetrun_backend_mix: may ranks run on different backends */
    hetrun_job_placement placement;
    int precision; /**< default ::hetrun_dtype for workloads */
    bool allow_tf32;
    int64_t seed;
    hetrun_job_limits limits;
    hetrun_job_checkpoint checkpoint;
    hetrun_job_report report;
    hetrun_job_workload *workloads; /**< after sweep expansion, in run order */
    size_t workload_count;
} hetrun_job;

#endif
