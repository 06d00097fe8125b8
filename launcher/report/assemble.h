/**
 * @file launcher/report/assemble.h
 * @brief A run's report from start to files: the job record (with who ran it), each rank's
 *        record (placement, node, device, results, usage), and rank 0's final report
 *        (gathered ranks, per-node environment, summary, usage record) written as JSON,
 *        CSV and the table or JSON summary on stdout. `hetrun run` calls these and keeps
 *        no report logic of its own.
 */
#ifndef HETRUN_REPORT_ASSEMBLE_H
#define HETRUN_REPORT_ASSEMBLE_H

#include <cjson/cJSON.h>

#include "exec/session.h"
#include "report/report.h"
#include "spec/job.h"
#include "topo/placement.h"

/** The report's "job" object: name, spec path and hash, seed, points and the identity
 *  (scheduler, job/step id, user, account). */
cJSON *hetrun_report_job_json(const hetrun_job *job);

/**
 * A new rank record: rank, host, node (the placement's node index, which
 * exec/job_agree.c set from MPI_Comm_split_type), cpus and placement; the node's first rank
 * also carries the node's environment (moved to environment.nodes on rank 0). Call it after
 * hetrun_job_agree.
 */
cJSON *hetrun_report_rank_new(int rank, const hetrun_placement *pl);

/** Records the backend and device a rank runs on (device facts as topo/device_json.c
 *  writes them everywhere; `version` may be NULL) and registers the rank's live usage
 *  (report/live_usage.h) so a report written before the rank finishes has it. */
void hetrun_report_rank_start(cJSON *rank_obj, const char *backend, const char *version,
                              const hetrun_session *s, const hetrun_usage_clock *c);

/** Appends a result for workload point `w` to the rank's results (workload, label, index,
 *  point, sweep) and returns it for the workload to fill. */
cJSON *hetrun_report_point_new(cJSON *rank_obj, const hetrun_job_workload *w);

/** Marks a point that did not finish: check "error" and the error text. */
void hetrun_report_point_error(cJSON *res, const char *error);

/** Closes a rank record: usage up to now (with the session's device telemetry), status
 *  ("ok" when `rc` is 0) and error; the live registration keeps this final usage
 *  (hetrun_usage_live_close). `s` may be a session that never opened. */
void hetrun_report_rank_close(cJSON *rank_obj, hetrun_session *s, const hetrun_usage_clock *c,
                              int rc);

/** Whether the job's report.formats asks for `fmt` ("json", "csv"; json by default). */
int hetrun_report_wants(const hetrun_job *job, const char *fmt);

/** What rank 0 needs to finish the report. */
typedef struct hetrun_report_run {
    const hetrun_job *job;
    const char *backend;        /**< the backend the job chose */
    const char *path;           /**< JSON report path */
    hetrun_usage_clock clock;   /**< when the job started */
    int quiet;                  /**< no table on stdout */
    int json_stdout;            /**< the summary as JSON on stdout instead of the table */
    void (*before_write)(void); /**< called on every rank before rank 0 writes (the guard's
                                     disarm: the final report replaces the placeholder) */
} hetrun_report_run;

/**
 * Gathers every rank's record on rank 0 and writes the report (JSON and/or CSV per
 * report.formats), then prints the table or the JSON summary. Takes ownership of `job_obj`
 * and `mine`. Collective over MPI_COMM_WORLD. Returns the exit code rank 0 decided
 * (HETRUN_EXIT_OK or HETRUN_EXIT_FAILED) on every rank.
 */
int hetrun_report_finish(const hetrun_report_run *run, cJSON *job_obj, cJSON *mine, int rank,
                         int nranks);

#endif
