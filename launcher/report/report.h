/**
 * @file launcher/report/report.h
 * @brief The job report: JSON (schema in docs/report.md), CSV beside it, and the human
 *        table on stdout; the usage record inside it (docs/accounting.md). Files are
 *        written atomically: a reader sees the old file or the complete new one.
 *
 * One job per file: assemble.c (a run's report, from rank records to files), usage_record.c
 * (a rank's usage and the billable usage record), identity.c (scheduler job, user,
 * account), environment.c (per-node facts), summary.c (figures over ranks), table.c (the
 * human tables), tables_csv.c (the CSV tables), target.c (which paths may be written).
 */
#ifndef HETRUN_REPORT_REPORT_H
#define HETRUN_REPORT_REPORT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

#include "exec/session.h"
#include "util/safe_file.h"

/** Report schema version written into every report (2.0: per-node environment, the usage
 *  record in "accounting", rank start/end in usage). */
#define HETRUN_REPORT_SCHEMA_VERSION "2.0"

/** Usage-record schema version (docs/usage.schema.json), versioned apart from the report. */
#define HETRUN_USAGE_SCHEMA_VERSION "1.0"

/** The "generator" field that marks a report (JSON) as written by hetrun. */
#define HETRUN_REPORT_GENERATOR "hetrun"

/** Whether `version` is a report schema this hetrun reads (1.x or 2.x). */
int hetrun_report_version_readable(const char *version);

/**
 * Whether hetrun may write one of its report files (the JSON or a CSV table) at `path`:
 * yes for a new name, or a regular file hetrun wrote (a report with `"generator": "hetrun"`,
 * or a 1.x report of an earlier version; a CSV whose header row is one of hetrun's tables).
 * Refused: the job spec `spec_path`, a symbolic link, a directory, device, FIFO or socket,
 * and any other existing file. Returns 0 (new name), 1 (hetrun's own file, may be
 * replaced) or -1 with the path and cause in err.
 */
int hetrun_report_target_check(const char *path, const char *spec_path, char *err, size_t errlen);

/** The CSV tables beside a JSON report: results, usage and collectives paths. */
void hetrun_report_table_paths(const char *json_path, char out[3][4200]);

/* ---- a rank's usage (usage_record.c) ---- */

/** When a rank started, on both clocks: the wall clock for timestamps, the monotonic one
 *  for durations (a clock step cannot make a duration negative). */
typedef struct hetrun_usage_clock {
    double start_unix, start_mono;
} hetrun_usage_clock;

/** The clock at this moment: call it when the rank starts. */
hetrun_usage_clock hetrun_usage_clock_start(void);

/**
 * A rank's usage up to this moment, as the report's ranks[].usage object: started_at,
 * ended_at (now), final (0 while the rank still runs or was stopped, 1 when it finished
 * its work), wall_seconds (since the clock started), device_busy_seconds, flops, bytes,
 * ops, h2d/d2h/collective bytes, device_memory_peak_bytes (`mem_peak` when >= 0, else the
 * session's count), energy_joules (`energy` when >= 0, else null) and per_op. Only reads
 * `u`: safe to call from a watchdog thread while the rank works (figures may lag by the
 * op in flight). This is the function the failure path renders its per-rank usage with.
 */
cJSON *hetrun_report_usage_json(const hetrun_usage *u, const hetrun_usage_clock *c, double mem_peak,
                                double energy, int final);

/** The figures a usage record sums (wall_seconds ... collective_bytes), in column order;
 *  `hetrun usage`, the summary and the CSV tables all use this list. */
extern const char *const hetrun_usage_sums[];
extern const size_t hetrun_usage_sum_count;

/** The columns of one usage line per rank (the usage CSV, `hetrun usage --parsable`). */
extern const char *const hetrun_usage_columns[];
extern const size_t hetrun_usage_column_count;

/** Column `col` of usage-record rank `rank` in record `record` as text ("" when unknown). */
void hetrun_usage_field(const cJSON *record, const cJSON *rank, const char *col, char *buf,
                        size_t len);

/**
 * The billable usage record (docs/usage.schema.json) of a report whose job, status,
 * started_at/finished_at and ranks[] (each with usage) are set: identity, hosts, and one
 * entry per rank with its device share (ranks that share one device on one host split it:
 * device_seconds = wall_seconds x share, so a device's time is billed once). Works on the
 * partial ranks[] of a failure report too.
 */
cJSON *hetrun_report_accounting(const cJSON *report);

/* ---- who ran it (identity.c) ---- */

/** Adds the job identity to a report's "job" object: scheduler (slurm, pbs, openmpi or
 *  none), job_id, step_id, user, account and account_source ("scheduler", "spec" or
 *  null). `spec_account` is the spec's `account:` (NULL when not given). */
void hetrun_report_job_identity(cJSON *job_obj, const char *spec_account);

/* ---- environment (environment.c) ---- */

struct hetrun_topo_counts;
/** Facts of this node: host, cpu_model, online_cpus, topology counts (`topology`, as the
 *  placement counted them: topo/placement.h; NULL or not valid: null), relevant variables
 *  (OPENBLAS_*, OMP_*, visibility variables, HETRUN_*, scheduler ids). */
cJSON *hetrun_report_node_environment(const struct hetrun_topo_counts *topology);

/** Facts of the job as a whole on rank 0: MPI library and standard, library versions. */
cJSON *hetrun_report_environment(void);

/** Adds what only the gathered rank records tell to `env`: `hosts`, `backends` (name,
 *  module version, driver versions, device names) and `nodes` (each node's facts with its
 *  index and ranks, moved out of the rank records that carried them). */
void hetrun_report_environment_ranks(cJSON *env, cJSON *ranks);

/* ---- figures over ranks (summary.c) ---- */

/** Adds `summary` to a report whose `ranks` are complete: check counts; usage totals
 *  and each usage figure per rank with min/median/max; per workload point each rank's
 *  gflops, gbps, percent_of_peak (against one peak per device and dtype, `summary.peaks`),
 *  median time and the workload's own figures (loss, accuracy, tokens/s, latency) with
 *  min/median/max over ranks and the slowest ranks (median time above the median over
 *  ranks by more than `straggler_threshold`, 0.10 unless $HETRUN_STRAGGLER_THRESHOLD
 *  says otherwise); per collective point each size's per-rank times, the max over ranks
 *  and the busbw from it. */
void hetrun_report_summarize(cJSON *report);

/** The name a point is shown under: "gemm fp32 2048^3" for an op with a shape, else its
 *  label. */
void hetrun_report_point_title(const cJSON *result, char *out, size_t len);

/* ---- output (table.c, tables_csv.c) ---- */

/** Prints the per-rank table (rank, host, backend, device, workload, GFLOP/s, check), the
 *  table of points over ranks, the collective tables (nccl-tests columns) and usage. */
void hetrun_report_print_table(const cJSON *report, FILE *out);

/** Writes the CSV tables atomically: `path` (results: one row per rank and op point),
 *  "<base>.usage.csv" (one row per rank) and, when the job ran collectives,
 *  "<base>.collectives.csv" (one row per rank, point, size and column). */
int hetrun_report_write_csv(const char *path, const cJSON *report, char *err, size_t errlen);

/** The CSV path beside a JSON report path ("x.json" -> "x.csv", else "x" + ".csv"). */
void hetrun_report_csv_path(const char *json_path, char *out, size_t len);

#endif
