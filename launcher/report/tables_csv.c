/* The CSV tables beside a JSON report: results, usage (from the usage record) and
 * collectives. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/access.h"
#include "report/csv.h"
#include "report/report.h"

void hetrun_report_csv_path(const char *json_path, char *out, size_t len) {
    size_t n = strlen(json_path);
    if (n > 5 && strcmp(json_path + n - 5, ".json") == 0)
        snprintf(out, len, "%.*s.csv", (int)(n - 5), json_path);
    else
        snprintf(out, len, "%s.csv", json_path);
}

static void csv_num(char *buf, size_t len, const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    if (cJSON_IsNumber(v))
        snprintf(buf, len, "%.10g", v->valuedouble);
    else
        buf[0] = '\0';
}

/* Results: one row per rank and workload point (collectives: in their own file). */
static int write_results(const char *path, const cJSON *report, char *err, size_t errlen) {
    static const char *const cols[] = {"rank",
                                       "host",
                                       "backend",
                                       "device",
                                       "pci_bus_id",
                                       HETRUN_RF_WORKLOAD,
                                       HETRUN_RF_LABEL,
                                       HETRUN_RF_OP,
                                       HETRUN_RF_DTYPE,
                                       HETRUN_RF_M,
                                       HETRUN_RF_N,
                                       HETRUN_RF_K,
                                       HETRUN_RF_FLOPS_PER_ITERATION,
                                       HETRUN_RF_BYTES_PER_ITERATION,
                                       HETRUN_RF_GFLOPS,
                                       HETRUN_RF_GBPS,
                                       HETRUN_RF_PERCENT_OF_PEAK,
                                       HETRUN_RF_PEAK_FLOPS,
                                       "time_ms_min",
                                       "time_ms_median",
                                       "time_ms_max",
                                       HETRUN_RF_CHECK,
                                       "title"};
    enum { NC = sizeof cols / sizeof cols[0] };
    hetrun_csv b = hetrun_csv_begin(cols, NC);
    const cJSON *rank, *res;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(report, "ranks")) {
        const cJSON *dev = cJSON_GetObjectItem(rank, "device");
        cJSON_ArrayForEach(res, cJSON_GetObjectItem(rank, "results")) {
            if (hetrun_rj_is_collective(res)) continue;
            char v[NC][48];
            const cJSON *tm = cJSON_GetObjectItem(res, HETRUN_RF_TIME_MS);
            const char *row[NC];
            csv_num(v[0], 48, rank, "rank");
            /* m .. peak_flops: numbers of the result under their column names. */
            for (int i = 0; i < 9; i++)
                csv_num(v[9 + i], 48, res, cols[9 + i]);
            csv_num(v[18], 48, tm, HETRUN_RF_STAT_MIN);
            csv_num(v[19], 48, tm, HETRUN_RF_STAT_MEDIAN);
            csv_num(v[20], 48, tm, HETRUN_RF_STAT_MAX);
            row[0] = v[0];
            row[1] = hetrun_rj_str(rank, "host", "");
            row[2] = hetrun_rj_str(rank, "backend", "");
            row[3] = hetrun_rj_str(dev, "name", "");
            row[4] = hetrun_rj_str(dev, "pci_bus_id", "");
            row[5] = hetrun_rj_str(res, HETRUN_RF_WORKLOAD, "");
            row[6] = hetrun_rj_str(res, HETRUN_RF_LABEL, "");
            row[7] = hetrun_rj_str(res, HETRUN_RF_OP, "");
            row[8] = hetrun_rj_str(res, HETRUN_RF_DTYPE, "");
            for (int i = 9; i <= 20; i++)
                row[i] = v[i];
            row[21] = hetrun_rj_str(res, HETRUN_RF_CHECK, "");
            char title[160];
            hetrun_report_point_title(res, title, sizeof title);
            row[22] = title;
            hetrun_csv_row(&b, row, NC);
        }
    }
    return hetrun_csv_write(path, &b, err, errlen);
}

/* Collectives: one row per rank, point, size and column (host, mpi_reference, device). */
static int write_collectives(const char *path, const cJSON *report, char *err, size_t errlen) {
    static const char *const cols[] = {"rank",
                                       "backend",
                                       HETRUN_RF_LABEL,
                                       HETRUN_RF_OP,
                                       HETRUN_RF_DTYPE,
                                       HETRUN_RF_NRANKS,
                                       "buffers",
                                       "path",
                                       HETRUN_RF_BYTES,
                                       HETRUN_RF_COUNT,
                                       HETRUN_RF_TIME_US,
                                       HETRUN_RF_ALGBW_GBPS,
                                       HETRUN_RF_BUSBW_GBPS,
                                       HETRUN_RF_WRONG};
    static const char *const columns[] = {HETRUN_RF_COL_HOST, HETRUN_RF_COL_MPI_REFERENCE,
                                          HETRUN_RF_COL_DEVICE};
    enum { NC = sizeof cols / sizeof cols[0] };
    hetrun_csv b = hetrun_csv_begin(cols, NC);
    const cJSON *rank, *res, *row;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(report, "ranks")) {
        cJSON_ArrayForEach(res, cJSON_GetObjectItem(rank, "results")) {
            if (!hetrun_rj_is_collective(res)) continue;
            cJSON_ArrayForEach(row, cJSON_GetObjectItem(res, HETRUN_RF_ROWS)) {
                for (size_t c = 0; c < 3; c++) {
                    const cJSON *col = cJSON_GetObjectItem(row, columns[c]);
                    if (!col) continue;
                    char v[8][48];
                    csv_num(v[0], 48, rank, "rank");
                    csv_num(v[1], 48, res, HETRUN_RF_NRANKS);
                    csv_num(v[2], 48, row, HETRUN_RF_BYTES);
                    csv_num(v[3], 48, row, HETRUN_RF_COUNT);
                    csv_num(v[4], 48, col, HETRUN_RF_TIME_US);
                    csv_num(v[5], 48, col, HETRUN_RF_ALGBW_GBPS);
                    csv_num(v[6], 48, col, HETRUN_RF_BUSBW_GBPS);
                    csv_num(v[7], 48, col, HETRUN_RF_WRONG);
                    const char *how = c == 0   ? "mpi"
                                      : c == 1 ? "mpi-plain-loop"
                                               : hetrun_rj_str(res, HETRUN_RF_DEVICE_PATH, "");
                    const char *r[NC] = {v[0],
                                         hetrun_rj_str(rank, "backend", ""),
                                         hetrun_rj_str(res, HETRUN_RF_LABEL, ""),
                                         hetrun_rj_str(res, HETRUN_RF_OP, ""),
                                         hetrun_rj_str(res, HETRUN_RF_DTYPE, ""),
                                         v[1],
                                         columns[c],
                                         how,
                                         v[2],
                                         v[3],
                                         v[4],
                                         v[5],
                                         v[6],
                                         v[7]};
                    hetrun_csv_row(&b, r, NC);
                }
            }
        }
    }
    return hetrun_csv_write(path, &b, err, errlen);
}

/* Usage: one row per rank of the usage record, the columns `hetrun usage --parsable`
 * prints. */
static int write_usage(const char *path, const cJSON *report, char *err, size_t errlen) {
    hetrun_csv b = hetrun_csv_begin(hetrun_usage_columns, hetrun_usage_column_count);
    cJSON *owned = NULL;
    const cJSON *record = cJSON_GetObjectItem(report, "accounting");
    if (!record) record = owned = hetrun_report_accounting(report);
    const cJSON *rank;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(record, "ranks")) {
        for (size_t c = 0; c < hetrun_usage_column_count; c++) {
            char v[400];
            hetrun_usage_field(record, rank, hetrun_usage_columns[c], v, sizeof v);
            hetrun_csv_field(&b, v, c + 1 == hetrun_usage_column_count);
        }
    }
    cJSON_Delete(owned);
    return hetrun_csv_write(path, &b, err, errlen);
}

static int has_collectives(const cJSON *report) {
    const cJSON *rank, *res;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(report, "ranks")) cJSON_ArrayForEach(
        res, cJSON_GetObjectItem(rank, "results")) if (hetrun_rj_is_collective(res)) return 1;
    return 0;
}

/* The CSV path for table `kind` beside a base CSV path "x.csv" -> "x.<kind>.csv". */
static void kind_path(const char *csv_path, const char *kind, char *out, size_t len) {
    size_t n = strlen(csv_path);
    if (n > 4 && strcmp(csv_path + n - 4, ".csv") == 0)
        snprintf(out, len, "%.*s.%s.csv", (int)(n - 4), csv_path, kind);
    else
        snprintf(out, len, "%s.%s.csv", csv_path, kind);
}

void hetrun_report_table_paths(const char *json_path, char out[3][4200]) {
    char csv[4200];
    hetrun_report_csv_path(json_path, csv, sizeof csv);
    snprintf(out[0], sizeof out[0], "%s", csv);
    kind_path(csv, "usage", out[1], sizeof out[1]);
    kind_path(csv, "collectives", out[2], sizeof out[2]);
}

int hetrun_report_write_csv(const char *path, const cJSON *report, char *err, size_t errlen) {
    char other[4200];
    if (write_results(path, report, err, errlen) != 0) return -1;
    kind_path(path, "usage", other, sizeof other);
    if (write_usage(other, report, err, errlen) != 0) return -1;
    if (!has_collectives(report)) return 0;
    kind_path(path, "collectives", other, sizeof other);
    return write_collectives(other, report, err, errlen);
}
