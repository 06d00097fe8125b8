/* The human tables on stdout: per-rank rows, points over ranks (with each workload's own
 * figures), collectives in nccl-tests columns, usage per rank. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/access.h"
#include "report/report.h"

static void fmt_num(char *buf, size_t len, double v, const char *fmt) {
    if (isfinite(v))
        snprintf(buf, len, fmt, v);
    else
        snprintf(buf, len, "-");
}

/* A point's own figures in a few words: "loss 0.31 acc 0.97 tok/s 1.2e+04 p50 1.2ms". */
static void metrics_text(const cJSON *p, char *out, size_t len) {
    static const struct {
        const char *field, *word, *fmt;
    } shown[] = {
        {HETRUN_RF_LOSS, "loss", "%.4g"},         {HETRUN_RF_ACCURACY, "acc", "%.4g"},
        {HETRUN_RF_VAL_LOSS, "val_loss", "%.4g"}, {HETRUN_RF_TOKENS_PER_S, "tok/s", "%.4g"},
        {HETRUN_RF_LATENCY_P50, "p50", "%.3gms"}, {HETRUN_RF_LATENCY_P99, "p99", "%.3gms"}};
    const cJSON *m = cJSON_GetObjectItem(p, "metrics");
    size_t l = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof shown / sizeof shown[0] && l < len; i++) {
        double v = hetrun_rj_num(cJSON_GetObjectItem(m, shown[i].field), "median");
        if (!isfinite(v)) continue;
        char val[32];
        snprintf(val, sizeof val, shown[i].fmt, v);
        l += (size_t)snprintf(out + l, len - l, "%s%s %s", l ? " " : "", shown[i].word, val);
    }
    if (!out[0]) snprintf(out, len, "-");
}

static void print_points(const cJSON *report, FILE *out) {
    const cJSON *summary = cJSON_GetObjectItem(report, "summary");
    const cJSON *points = cJSON_GetObjectItem(summary, "workloads");
    const cJSON *ranks = cJSON_GetObjectItem(report, "ranks");
    if (!cJSON_GetArraySize(points)) return;
    fprintf(out, "%-36s %10s %10s %10s %9s %7s %10s %-8s %-15s %s\n", "workload point (over ranks)",
            "GFLOP/s", "min", "max", "GB/s", "%peak", "ms(med)", "check", "slowest rank(s)",
            "workload figures");
    const cJSON *p;
    cJSON_ArrayForEach(p, points) {
        const cJSON *g = cJSON_GetObjectItem(p, HETRUN_RF_GFLOPS),
                    *b = cJSON_GetObjectItem(p, HETRUN_RF_GBPS);
        const cJSON *pk = cJSON_GetObjectItem(p, HETRUN_RF_PERCENT_OF_PEAK);
        const cJSON *t = cJSON_GetObjectItem(p, "time_ms_median");
        char c[6][32];
        fmt_num(c[0], 32, hetrun_rj_num(g, "median"), "%.2f");
        fmt_num(c[1], 32, hetrun_rj_num(g, "min"), "%.2f");
        fmt_num(c[2], 32, hetrun_rj_num(g, "max"), "%.2f");
        fmt_num(c[3], 32, hetrun_rj_num(b, "median"), "%.2f");
        fmt_num(c[4], 32, hetrun_rj_num(pk, "median"), "%.1f");
        fmt_num(c[5], 32, hetrun_rj_num(t, "median"), "%.4g");
        /* Check over ranks: failed if any rank failed, else rank 0's word. */
        int idx = (int)hetrun_rj_num(p, HETRUN_RF_INDEX);
        const char *chk = hetrun_check_name(hetrun_result_check(
            cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(ranks, 0), "results"), idx)));
        if (hetrun_rj_num(p, "checks_failed") > 0) chk = "failed";
        /* Rank numbers as "r3": a bare "3" reads like a count. */
        char slow[64] = "";
        const cJSON *sr;
        cJSON_ArrayForEach(sr, cJSON_GetObjectItem(p, "stragglers")) {
            size_t l = strlen(slow);
            if (l + 12 >= sizeof slow) {
                snprintf(slow + l, sizeof slow - l, ",...");
                break;
            }
            snprintf(slow + l, sizeof slow - l, "%sr%d", l ? "," : "", (int)sr->valuedouble);
        }
        char figures[160];
        metrics_text(p, figures, sizeof figures);
        fprintf(out, "%-36.36s %10s %10s %10s %9s %7s %10s %-8s %-15s %s\n",
                hetrun_rj_str(p, "title", hetrun_rj_str(p, HETRUN_RF_LABEL, "?")), c[0], c[1], c[2],
                c[3], c[4], c[5], chk ? chk : "-", slow[0] ? slow : "-", figures);
    }
}

static void print_collectives(const cJSON *report, FILE *out) {
    const cJSON *colls = cJSON_GetObjectItem(cJSON_GetObjectItem(report, "summary"), "collectives");
    const cJSON *c;
    cJSON_ArrayForEach(c, colls) {
        fprintf(
            out, "\n# %s %s, %d ranks, busbw factor %.3g; time: max over ranks; device path: %s\n",
            hetrun_rj_str(c, HETRUN_RF_OP, "?"), hetrun_rj_str(c, HETRUN_RF_DTYPE, "?"),
            (int)hetrun_rj_num(cJSON_GetObjectItem(report, "summary"), "ranks"),
            hetrun_rj_num(c, HETRUN_RF_BUSBW_FACTOR), hetrun_rj_str(c, HETRUN_RF_DEVICE_PATH, "-"));
        fprintf(out, "%12s %11s | %10s %8s %8s %6s | %10s %8s | %10s %8s %8s %6s\n", "size(B)",
                "count", "host us", "algbw", "busbw", "#wrong", "mpi-ref us", "busbw", "device us",
                "algbw", "busbw", "#wrong");
        const cJSON *row;
        cJSON_ArrayForEach(row, cJSON_GetObjectItem(c, HETRUN_RF_ROWS)) {
            char f[10][32];
            const cJSON *h = cJSON_GetObjectItem(row, HETRUN_RF_COL_HOST),
                        *r = cJSON_GetObjectItem(row, HETRUN_RF_COL_MPI_REFERENCE);
            const cJSON *d = cJSON_GetObjectItem(row, HETRUN_RF_COL_DEVICE);
            fmt_num(f[0], 32, h ? hetrun_rj_num(h, HETRUN_RF_TIME_US) : NAN, "%.2f");
            fmt_num(f[1], 32, h ? hetrun_rj_num(h, HETRUN_RF_ALGBW_GBPS) : NAN, "%.3f");
            fmt_num(f[2], 32, h ? hetrun_rj_num(h, HETRUN_RF_BUSBW_GBPS) : NAN, "%.3f");
            fmt_num(f[3], 32, h ? hetrun_rj_num(h, HETRUN_RF_WRONG) : NAN, "%.0f");
            fmt_num(f[4], 32, r ? hetrun_rj_num(r, HETRUN_RF_TIME_US) : NAN, "%.2f");
            fmt_num(f[5], 32, r ? hetrun_rj_num(r, HETRUN_RF_BUSBW_GBPS) : NAN, "%.3f");
            fmt_num(f[6], 32, d ? hetrun_rj_num(d, HETRUN_RF_TIME_US) : NAN, "%.2f");
            fmt_num(f[7], 32, d ? hetrun_rj_num(d, HETRUN_RF_ALGBW_GBPS) : NAN, "%.3f");
            fmt_num(f[8], 32, d ? hetrun_rj_num(d, HETRUN_RF_BUSBW_GBPS) : NAN, "%.3f");
            fmt_num(f[9], 32, d ? hetrun_rj_num(d, HETRUN_RF_WRONG) : NAN, "%.0f");
            fprintf(out, "%12.0f %11.0f | %10s %8s %8s %6s | %10s %8s | %10s %8s %8s %6s\n",
                    hetrun_rj_num(row, HETRUN_RF_BYTES), hetrun_rj_num(row, HETRUN_RF_COUNT), f[0],
                    f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]);
        }
    }
}

static void print_rank_rows(const cJSON *report, FILE *out);

static void print_usage(const cJSON *report, FILE *out) {
    fprintf(out, "\n%-5s %-8s %10s %10s %14s %14s %12s %10s\n", "rank", "backend", "wall s",
            "busy s", "FLOPs", "bytes", "mem peak", "energy J");
    const cJSON *rank;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(report, "ranks")) {
        const cJSON *u = cJSON_GetObjectItem(rank, "usage");
        char e[32];
        fmt_num(e, sizeof e, hetrun_rj_num(u, "energy_joules"), "%.1f");
        fprintf(out, "%-5d %-8.8s %10.3f %10.3f %14.6g %14.6g %12.0f %10s\n",
                (int)hetrun_rj_num(rank, "rank"), hetrun_rj_str(rank, "backend", "?"),
                hetrun_rj_num(u, "wall_seconds"), hetrun_rj_num(u, "device_busy_seconds"),
                hetrun_rj_num(u, "flops"), hetrun_rj_num(u, "bytes"),
                hetrun_rj_num(u, "device_memory_peak_bytes"), e);
    }
}

void hetrun_report_print_table(const cJSON *report, FILE *out) {
    /* Per-rank rows only while they fit a screen; the results CSV always has them. */
    int rows = 0;
    const cJSON *rk;
    cJSON_ArrayForEach(rk, cJSON_GetObjectItem(report, "ranks")) {
        int n = cJSON_GetArraySize(cJSON_GetObjectItem(rk, "results"));
        rows += n ? n : 1;
    }
    if (rows > 24) {
        fprintf(out, "(%d per-rank rows: see the results CSV or ranks[] in the JSON report)\n",
                rows);
    } else {
        print_rank_rows(report, out);
    }
    print_points(report, out);
    print_collectives(report, out);
    print_usage(report, out);
    fprintf(out, "status: %s", hetrun_rj_str(report, "status", "?"));
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItem(report, "reason"));
    if (reason) fprintf(out, " (%s)", reason);
    fputc('\n', out);
}

static void print_rank_rows(const cJSON *report, FILE *out) {
    fprintf(out, "%-5s %-14s %-8s %-32s %-28s %12s %8s\n", "rank", "host", "backend", "device",
            "workload", "GFLOP/s", "check");
    const cJSON *rank;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(report, "ranks")) {
        const cJSON *dev = cJSON_GetObjectItem(rank, "device");
        const cJSON *res;
        int any = 0;
        cJSON_ArrayForEach(res, cJSON_GetObjectItem(rank, "results")) {
            const cJSON *gf = cJSON_GetObjectItem(res, HETRUN_RF_GFLOPS);
            char gfs[32] = "-";
            if (cJSON_IsNumber(gf)) snprintf(gfs, sizeof gfs, "%.2f", gf->valuedouble);
            char title[160];
            hetrun_report_point_title(res, title, sizeof title);
            fprintf(out, "%-5d %-14.14s %-8.8s %-32.32s %-28.28s %12s %8s\n",
                    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(rank, "rank")),
                    hetrun_rj_str(rank, "host", "?"), hetrun_rj_str(rank, "backend", "?"),
                    hetrun_rj_str(dev, "name", "?"), title, gfs,
                    hetrun_rj_str(res, HETRUN_RF_CHECK, "-"));
            any = 1;
        }
        if (!any)
            fprintf(out, "%-5d %-14.14s %-8.8s %-32.32s %-28.28s %12s %8s\n",
                    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(rank, "rank")),
                    hetrun_rj_str(rank, "host", "?"), hetrun_rj_str(rank, "backend", "?"),
                    hetrun_rj_str(dev, "name", "?"), "(no results)", "-",
                    hetrun_rj_str(rank, "status", "-"));
    }
    fputc('\n', out);
}
