/**
 * @file launcher/report/report.h
 * @brief The job report: JSON (schema in docs/report.md), CSV beside it, and the human
 *        table on stdout. Files are written atomically: a reader sees the old file or the
 *        complete new one, never a partial one.
 */
#ifndef HETRUN_REPORT_REPORT_H
#define HETRUN_REPORT_REPORT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

#include "exec/session.h"
#include "util/safe_file.h"

/** Report schema version written into every report. */
#define HETRUN_REPORT_SCHEMA_VERSION "1.0"

/** The "generator" field that marks a report (JSON) as written by hetrun. */
#define HETRUN_REPORT_GENERATOR "hetrun"

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

/** The usage record of one rank. */
cJSON *hetrun_report_usage_json(const hetrun_usage *u);

/** Environment facts for reproducibility: host, CPU model, MPI library, relevant
 *  variables (OPENBLAS_*, OMP_*, visibility variables, HETRUN_*). */
cJSON *hetrun_report_environment(void);

/** Adds what only the gathered rank records tell to `env`: `hosts` (unique host names)
 *  and `backends` (name, module version, driver versions, device names). */
void hetrun_report_environment_ranks(cJSON *env, const cJSON *ranks);

/** Adds `summary` to a report whose `ranks` are complete: check counts; usage totals
 *  and each usage figure per rank with min/median/max; per workload point each rank's
 *  gflops, gbps, percent_of_peak and median time with min/median/max over ranks and the
 *  stragglers (ranks whose median time exceeds the median over ranks by more than
 *  `straggler_threshold`, 0.10 unless $HETRUN_STRAGGLER_THRESHOLD says otherwise); per
 *  collective point each size's per-rank times, the max over ranks and the busbw from it. */
void hetrun_report_summarize(cJSON *report);

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
