/* Figures over ranks: check counts, usage totals and spreads, one peak per device and
 * dtype, per workload point each figure's spread and the slowest ranks, collective rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/access.h"
#include "report/report.h"
#include "workloads/stats.h"

void hetrun_report_point_title(const cJSON *res, char *out, size_t len) {
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItem(res, HETRUN_RF_OP));
    const char *dt = cJSON_GetStringValue(cJSON_GetObjectItem(res, HETRUN_RF_DTYPE));
    double m = hetrun_rj_num(res, HETRUN_RF_M), n = hetrun_rj_num(res, HETRUN_RF_N),
           k = hetrun_rj_num(res, HETRUN_RF_K);
    if (!op) {
        snprintf(out, len, "%s", hetrun_rj_str(res, HETRUN_RF_LABEL, "?"));
        return;
    }
    /* Element-wise and row ops carry k = 1: their shape is m x n. */
    int shaped = m > 0 && n > 0 && k > 1;
    if (shaped && m == n && n == k)
        snprintf(out, len, "%s %s %.0f^3", op, dt ? dt : "", m);
    else if (shaped)
        snprintf(out, len, "%s %s %.0fx%.0fx%.0f", op, dt ? dt : "", m, n, k);
    else if (m > 0 && n > 0)
        snprintf(out, len, "%s %s %.0fx%.0f", op, dt ? dt : "", m, n);
    else if (n > 0)
        snprintf(out, len, "%s %s n=%.0f", op, dt ? dt : "", n);
    else
        snprintf(out, len, "%s %s", op, dt ? dt : "");
}

static cJSON *find_peak(const cJSON *peaks, const char *device, const char *dtype) {
    cJSON *e;
    cJSON_ArrayForEach(e, peaks) {
        if (dtype && !strcmp(hetrun_rj_str(e, "device", ""), device) &&
            !strcmp(hetrun_rj_str(e, "dtype", ""), dtype))
            return e;
    }
    return NULL;
}

/* The one peak of each device and dtype %peak is computed against: the backend's
 * declared value where it has one, else the best measured GEMM peak the ranks report
 * (bench's probe, cached per host with its provenance in peak_source). */
static cJSON *one_peak_per_dtype(const cJSON *ranks) {
    cJSON *peaks = cJSON_CreateArray();
    const cJSON *rank;
    cJSON_ArrayForEach(rank, ranks) {
        const cJSON *dev = cJSON_GetObjectItem(rank, "device");
        const char *name = hetrun_rj_str(dev, "name", "?");
        const cJSON *decl;
        cJSON_ArrayForEach(decl, cJSON_GetObjectItem(dev, "peak_flops")) {
            int have = find_peak(peaks, name, decl->string) != NULL;
            if (have || !cJSON_IsNumber(decl) || decl->valuedouble <= 0.0) continue;
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "device", name);
            cJSON_AddStringToObject(p, "dtype", decl->string);
            cJSON_AddNumberToObject(p, "peak_flops", decl->valuedouble);
            cJSON_AddStringToObject(p, "source", "declared");
            cJSON_AddStringToObject(p, "provenance", "backend device info");
            cJSON_AddItemToArray(peaks, p);
        }
    }
    cJSON_ArrayForEach(rank, ranks) {
        const char *name = hetrun_rj_str(cJSON_GetObjectItem(rank, "device"), "name", "?");
        const cJSON *res;
        cJSON_ArrayForEach(res, cJSON_GetObjectItem(rank, "results")) {
            double pk = hetrun_rj_num(res, HETRUN_RF_PEAK_FLOPS);
            const char *dt = cJSON_GetStringValue(cJSON_GetObjectItem(res, HETRUN_RF_DTYPE));
            const char *src = hetrun_rj_str(res, HETRUN_RF_PEAK_SOURCE, "");
            if (!dt || !(pk > 0.0) ||
                strncmp(src, HETRUN_PEAK_SOURCE_PROBE, strlen(HETRUN_PEAK_SOURCE_PROBE)) != 0)
                continue;
            cJSON *found = find_peak(peaks, name, dt);
            if (found && strcmp(hetrun_rj_str(found, "source", ""), "measured") != 0) continue;
            if (found && hetrun_rj_num(found, "peak_flops") >= pk) continue;
            if (found) cJSON_DetachItemViaPointer(peaks, found), cJSON_Delete(found);
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "device", name);
            cJSON_AddStringToObject(p, "dtype", dt);
            cJSON_AddNumberToObject(p, "peak_flops", pk);
            cJSON_AddStringToObject(p, "source", "measured");
            cJSON_AddStringToObject(p, "provenance",
                                    !strcmp(src, HETRUN_PEAK_SOURCE_PROBE)
                                        ? "GEMM probe in this job"
                                        : "GEMM probe cached on this host");
            cJSON_AddItemToArray(peaks, p);
        }
    }
    return peaks;
}

/* A rank's percent of peak at a point, against the one peak of its device and dtype
 * (the workload's own figure may use another peak: a probe raised by a later point). */
static double percent_of_peak(const cJSON *peaks, const cJSON *rank, const cJSON *res) {
    /* Only where the workload gives a percent of peak (not with `peak: none`). */
    if (!cJSON_IsNumber(cJSON_GetObjectItem(res, HETRUN_RF_PERCENT_OF_PEAK))) return NAN;
    const char *name = hetrun_rj_str(cJSON_GetObjectItem(rank, "device"), "name", "?");
    const char *dt = cJSON_GetStringValue(cJSON_GetObjectItem(res, HETRUN_RF_DTYPE));
    double g = hetrun_rj_num(res, HETRUN_RF_GFLOPS);
    const cJSON *e = find_peak(peaks, name, dt);
    if (e) return 100.0 * g * 1e9 / hetrun_rj_num(e, "peak_flops");
    return NAN;
}

/* The last entry of array `key` in `o` (NULL when absent or empty). */
static const cJSON *last_of(const cJSON *o, const char *key) {
    const cJSON *a = cJSON_GetObjectItem(o, key);
    int n = cJSON_GetArraySize(a);
    return n > 0 ? cJSON_GetArrayItem(a, n - 1) : NULL;
}

/* A workload's own figure of one rank's result (NaN when it has none): the MLP's last
 * epoch loss and final accuracy, the GPT's validation loss and tokens/s, the latency
 * percentiles of the first (smallest) batch of infer and embed. */
static double metric(const cJSON *res, const char *name) {
    double v = hetrun_rj_num(res, name);
    if (isfinite(v)) return v;
    if (!strcmp(name, HETRUN_RF_LOSS)) return hetrun_rj_num(last_of(res, HETRUN_RF_EPOCHS), name);
    if (!strcmp(name, HETRUN_RF_ACCURACY)) return hetrun_rj_num(res, HETRUN_RF_FINAL_TEST_ACCURACY);
    const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItem(res, HETRUN_RF_BATCHES), 0);
    return hetrun_rj_num(b, name);
}

static cJSON *spread_json(const double *v, int n, double threshold, int stragglers);

static void add_metrics(cJSON *p, const cJSON *ranks, int point, double threshold) {
    static const char *const names[] = {HETRUN_RF_LOSS,        HETRUN_RF_ACCURACY,
                                        HETRUN_RF_VAL_LOSS,    HETRUN_RF_TOKENS_PER_S,
                                        HETRUN_RF_LATENCY_P50, HETRUN_RF_LATENCY_P99};
    int n = cJSON_GetArraySize(ranks);
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v) return;
    cJSON *m = NULL;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        int any = 0;
        for (int r = 0; r < n; r++) {
            const cJSON *rank = cJSON_GetArrayItem(ranks, r);
            v[r] =
                metric(cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), point), names[k]);
            any |= isfinite(v[r]);
        }
        if (!any) continue;
        if (!m) m = cJSON_AddObjectToObject(p, "metrics");
        cJSON_AddItemToObject(m, names[k], spread_json(v, n, threshold, 0));
    }
    free(v);
}

/* Stats of the finite values among `v[0..n)`, and the indexes of the values above
 * median * (1 + threshold): the stragglers (slower ranks, for time-like figures). */
static cJSON *spread_json(const double *v, int n, double threshold, int stragglers) {
    double *f = calloc((size_t)(n > 0 ? n : 1), sizeof *f);
    int m = 0;
    for (int i = 0; f && i < n; i++)
        if (isfinite(v[i])) f[m++] = v[i];
    hetrun_stats st = hetrun_stats_of(f, (size_t)m);
    free(f);
    cJSON *o = cJSON_CreateObject();
    cJSON *per = cJSON_AddArrayToObject(o, "per_rank");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(per, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    if (m > 0) {
        cJSON_AddNumberToObject(o, "min", st.min);
        cJSON_AddNumberToObject(o, "median", st.median);
        cJSON_AddNumberToObject(o, "max", st.max);
    } else {
        cJSON_AddNullToObject(o, "min");
        cJSON_AddNullToObject(o, "median");
        cJSON_AddNullToObject(o, "max");
    }
    if (stragglers) {
        cJSON *s = cJSON_AddArrayToObject(o, "stragglers");
        for (int i = 0; m > 0 && i < n; i++)
            if (isfinite(v[i]) && v[i] > st.median * (1.0 + threshold))
                cJSON_AddItemToArray(s, cJSON_CreateNumber(i));
    }
    return o;
}

static double straggler_threshold(void) {
    const char *e = getenv("HETRUN_STRAGGLER_THRESHOLD");
    double t = e ? strtod(e, NULL) : 0.0;
    return t > 0.0 && t < 100.0 ? t : 0.10;
}

/* Collective rows: per size and column, each rank's time and the max over ranks (the
 * collective is done when its slowest rank is), busbw from that max, #wrong summed. */
static cJSON *collective_summary(const cJSON *ranks, int point, int nranks, double threshold) {
    static const char *const columns[] = {HETRUN_RF_COL_HOST, HETRUN_RF_COL_MPI_REFERENCE,
                                          HETRUN_RF_COL_DEVICE};
    const cJSON *res0 =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(ranks, 0), "results"), point);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, HETRUN_RF_LABEL,
                            cJSON_GetStringValue(cJSON_GetObjectItem(res0, HETRUN_RF_LABEL)));
    cJSON_AddStringToObject(out, HETRUN_RF_OP,
                            cJSON_GetStringValue(cJSON_GetObjectItem(res0, HETRUN_RF_OP)));
    cJSON_AddStringToObject(out, HETRUN_RF_DTYPE,
                            cJSON_GetStringValue(cJSON_GetObjectItem(res0, HETRUN_RF_DTYPE)));
    const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(res0, HETRUN_RF_DEVICE_PATH));
    if (path) cJSON_AddStringToObject(out, HETRUN_RF_DEVICE_PATH, path);
    double factor = hetrun_rj_num(res0, HETRUN_RF_BUSBW_FACTOR);
    cJSON_AddNumberToObject(out, HETRUN_RF_BUSBW_FACTOR, factor);
    cJSON *rows = cJSON_AddArrayToObject(out, HETRUN_RF_ROWS);
    double *t = malloc((size_t)(nranks > 0 ? nranks : 1) * sizeof *t);
    const cJSON *row0;
    int r_i = 0;
    cJSON_ArrayForEach(row0, cJSON_GetObjectItem(res0, HETRUN_RF_ROWS)) {
        cJSON *row = cJSON_CreateObject();
        double bytes = hetrun_rj_num(row0, HETRUN_RF_BYTES);
        cJSON_AddNumberToObject(row, HETRUN_RF_BYTES, bytes);
        cJSON_AddNumberToObject(row, HETRUN_RF_COUNT, hetrun_rj_num(row0, HETRUN_RF_COUNT));
        for (size_t c = 0; t && c < sizeof columns / sizeof columns[0]; c++) {
            if (!cJSON_GetObjectItem(row0, columns[c])) continue;
            double wrong = 0.0;
            int any_wrong = 0, r = 0;
            const cJSON *rank;
            cJSON_ArrayForEach(rank, ranks) {
                const cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), point);
                const cJSON *col = cJSON_GetObjectItem(
                    cJSON_GetArrayItem(cJSON_GetObjectItem(res, HETRUN_RF_ROWS), r_i), columns[c]);
                t[r] = hetrun_rj_num(col, HETRUN_RF_TIME_US);
                if (cJSON_IsNumber(cJSON_GetObjectItem(col, HETRUN_RF_WRONG))) {
                    wrong += hetrun_rj_num(col, HETRUN_RF_WRONG);
                    any_wrong = 1;
                }
                if (++r >= nranks) break;
            }
            cJSON *col = spread_json(t, r, threshold, 1);
            double tmax = hetrun_rj_num(col, "max");
            double algbw = tmax > 0.0 ? bytes / (tmax * 1e-6) / 1e9 : NAN;
            cJSON_AddNumberToObject(col, HETRUN_RF_TIME_US, tmax);
            cJSON_AddNumberToObject(col, HETRUN_RF_ALGBW_GBPS, isfinite(algbw) ? algbw : 0.0);
            cJSON_AddNumberToObject(col, HETRUN_RF_BUSBW_GBPS,
                                    isfinite(algbw) ? algbw * factor : 0.0);
            /* Best batch (host and reference columns): max over ranks of each rank's best. */
            double best = NAN;
            r = 0;
            cJSON_ArrayForEach(rank, ranks) {
                const cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), point);
                double b = hetrun_rj_num(
                    cJSON_GetObjectItem(
                        cJSON_GetArrayItem(cJSON_GetObjectItem(res, HETRUN_RF_ROWS), r_i),
                        columns[c]),
                    HETRUN_RF_TIME_US_MIN);
                if (isfinite(b) && !(b <= best)) best = b;
                if (++r >= nranks) break;
            }
            if (isfinite(best) && best > 0.0) {
                cJSON_AddNumberToObject(col, HETRUN_RF_TIME_US_MIN, best);
                cJSON_AddNumberToObject(col, "busbw_gbps_best",
                                        bytes / (best * 1e-6) / 1e9 * factor);
            }
            if (any_wrong) cJSON_AddNumberToObject(col, HETRUN_RF_WRONG, wrong);
            cJSON_AddItemToObject(row, columns[c], col);
        }
        cJSON_AddItemToArray(rows, row);
        r_i++;
    }
    free(t);
    return out;
}

void hetrun_report_summarize(cJSON *report) {
    const double threshold = straggler_threshold();
    cJSON *ranks = cJSON_GetObjectItem(report, "ranks");
    cJSON *summary = cJSON_AddObjectToObject(report, "summary");
    int nranks = cJSON_GetArraySize(ranks);
    cJSON_AddNumberToObject(summary, "ranks", nranks);
    cJSON_AddNumberToObject(summary, "straggler_threshold", threshold);

    /* Checks, counted over every rank's results. */
    int passed = 0, failed = 0, skipped = 0;
    cJSON *rank;
    cJSON_ArrayForEach(rank, ranks) {
        cJSON *res;
        cJSON_ArrayForEach(res, cJSON_GetObjectItem(rank, "results")) {
            hetrun_check c = hetrun_result_check(res);
            if (c == HETRUN_CHECK_PASSED)
                passed++;
            else if (hetrun_check_is_failure(c))
                failed++;
            else
                skipped++;
        }
    }
    cJSON *checks = cJSON_AddObjectToObject(summary, "checks");
    cJSON_AddNumberToObject(checks, "passed", passed);
    cJSON_AddNumberToObject(checks, "failed", failed);
    cJSON_AddNumberToObject(checks, "skipped", skipped);

    /* Usage: job totals (sums; memory peak is the max) and each figure's spread. */
    double *v = malloc((size_t)(nranks > 0 ? nranks : 1) * sizeof *v);
    cJSON *usage = cJSON_AddObjectToObject(summary, "usage");
    cJSON *spread = cJSON_AddObjectToObject(summary, "usage_per_rank");
    for (size_t k = 0; v && k < hetrun_usage_sum_count; k++) {
        double total = 0.0;
        int r = 0;
        cJSON_ArrayForEach(rank, ranks) {
            v[r] = hetrun_rj_num(cJSON_GetObjectItem(rank, "usage"), hetrun_usage_sums[k]);
            if (isfinite(v[r])) total += v[r];
            r++;
        }
        cJSON_AddNumberToObject(usage, hetrun_usage_sums[k], total);
        int timed = strcmp(hetrun_usage_sums[k], "wall_seconds") == 0 ||
                    strcmp(hetrun_usage_sums[k], "device_busy_seconds") == 0;
        cJSON_AddItemToObject(spread, hetrun_usage_sums[k], spread_json(v, r, threshold, timed));
    }
    double peak = 0.0, energy = 0.0;
    int energy_known = nranks > 0;
    cJSON_ArrayForEach(rank, ranks) {
        const cJSON *u = cJSON_GetObjectItem(rank, "usage");
        double m = hetrun_rj_num(u, "device_memory_peak_bytes"),
               e = hetrun_rj_num(u, "energy_joules");
        if (isfinite(m) && m > peak) peak = m;
        if (isfinite(e))
            energy += e;
        else
            energy_known = 0;
    }
    cJSON_AddNumberToObject(usage, "device_memory_peak_bytes", peak);
    if (energy_known)
        cJSON_AddNumberToObject(usage, "energy_joules", energy);
    else
        cJSON_AddNullToObject(usage, "energy_joules");

    /* Per workload point: each figure per rank, its min/median/max, stragglers by time. */
    cJSON *peaks = one_peak_per_dtype(ranks);
    cJSON_AddItemToObject(summary, "peaks", peaks);
    cJSON *points = cJSON_AddArrayToObject(summary, "workloads");
    cJSON *colls = cJSON_AddArrayToObject(summary, "collectives");
    cJSON *first = cJSON_GetArrayItem(ranks, 0);
    int npoints = cJSON_GetArraySize(cJSON_GetObjectItem(first, "results"));
    for (int i = 0; v && i < npoints; i++) {
        cJSON *res0 = cJSON_GetArrayItem(cJSON_GetObjectItem(first, "results"), i);
        if (hetrun_rj_is_collective(res0)) {
            cJSON_AddItemToArray(colls, collective_summary(ranks, i, nranks, threshold));
            continue;
        }
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, HETRUN_RF_LABEL,
                                cJSON_GetStringValue(cJSON_GetObjectItem(res0, HETRUN_RF_LABEL)));
        cJSON_AddStringToObject(
            p, HETRUN_RF_WORKLOAD,
            cJSON_GetStringValue(cJSON_GetObjectItem(res0, HETRUN_RF_WORKLOAD)));
        cJSON_AddNumberToObject(p, HETRUN_RF_INDEX, i);
        char title[160];
        hetrun_report_point_title(res0, title, sizeof title);
        cJSON_AddStringToObject(p, "title", title);
        const char *op = cJSON_GetStringValue(cJSON_GetObjectItem(res0, HETRUN_RF_OP));
        const char *dt = cJSON_GetStringValue(cJSON_GetObjectItem(res0, HETRUN_RF_DTYPE));
        if (op) cJSON_AddStringToObject(p, HETRUN_RF_OP, op);
        if (dt) cJSON_AddStringToObject(p, HETRUN_RF_DTYPE, dt);
        int nfail = 0;
        static const char *const figures[] = {HETRUN_RF_GFLOPS, HETRUN_RF_GBPS,
                                              HETRUN_RF_PERCENT_OF_PEAK, HETRUN_RF_TIME_MS};
        for (size_t f = 0; f < sizeof figures / sizeof figures[0]; f++) {
            int r = 0, any = 0;
            int is_time = strcmp(figures[f], HETRUN_RF_TIME_MS) == 0;
            cJSON_ArrayForEach(rank, ranks) {
                const cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), i);
                v[r] = is_time  ? hetrun_rj_num(cJSON_GetObjectItem(res, HETRUN_RF_TIME_MS),
                                                HETRUN_RF_STAT_MEDIAN)
                       : f == 2 ? percent_of_peak(peaks, rank, res)
                                : hetrun_rj_num(res, figures[f]);
                any |= isfinite(v[r]);
                r++;
            }
            if (!any) continue;
            cJSON *sp = spread_json(v, r, threshold, is_time);
            if (!is_time) cJSON_AddNumberToObject(sp, "total", 0.0);
            if (!is_time) {
                double tot = 0.0;
                for (int k = 0; k < r; k++)
                    tot += isfinite(v[k]) ? v[k] : 0.0;
                cJSON_ReplaceItemInObject(sp, "total", cJSON_CreateNumber(tot));
            }
            cJSON_AddItemToObject(p, is_time ? "time_ms_median" : figures[f], sp);
            if (is_time)
                cJSON_AddItemToObject(p, "stragglers",
                                      cJSON_Duplicate(cJSON_GetObjectItem(sp, "stragglers"), 1));
        }
        cJSON_ArrayForEach(rank, ranks) nfail += hetrun_check_is_failure(
            hetrun_result_check(cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), i)));
        add_metrics(p, ranks, i, threshold);
        cJSON_AddNumberToObject(p, "checks_failed", nfail);
        cJSON_AddItemToArray(points, p);
    }
    free(v);
}
