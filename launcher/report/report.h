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

/** Report schema version written into every report. */
#define HETRUN_REPORT_SCHEMA_VERSION "1.0"

/**
 * Writes `text` to `path` atomically: temp file in the same directory, fsync, rename,
 * fsync of the directory. Returns 0, or -1 with the cause (path and errno text) in err.
 */
int hetrun_write_atomic(const char *path, const char *text, size_t len, char *err, size_t errlen);

/** The usage record of one rank. */
cJSON *hetrun_report_usage_json(const hetrun_usage *u);

/** Environment facts for reproducibility: host, CPU model, MPI library, relevant
 *  variables (OPENBLAS_*, OMP_*, visibility variables, HETRUN_*). */
cJSON *hetrun_report_environment(void);

/** Adds `summary` to a report whose `ranks` are complete: per workload point the
 *  min/median/max over ranks of gflops, check counts, stragglers, usage totals. */
void hetrun_report_summarize(cJSON *report);

/** Prints the per-rank table (rank, host, backend, device, workload, GFLOP/s, check). */
void hetrun_report_print_table(const cJSON *report, FILE *out);

/** Writes the per-rank, per-workload rows as CSV (atomically). */
int hetrun_report_write_csv(const char *path, const cJSON *report, char *err, size_t errlen);

/** The CSV path beside a JSON report path ("x.json" -> "x.csv", else "x" + ".csv"). */
void hetrun_report_csv_path(const char *json_path, char *out, size_t len);

#endif
