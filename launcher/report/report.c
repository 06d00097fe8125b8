/* Building the report: usage records, environment, summary over ranks, table and CSV. */
#include "report/report.h"

#include "report/csv.h"

#include <cjson/cJSON.h>
#include <hwloc.h>
#include <math.h>
#include <mpi.h>
#include <yaml.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/catalogue.h"
#include "workloads/stats.h"

extern char **environ;

cJSON *hetrun_report_usage_json(const hetrun_usage *u) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "wall_seconds", u->wall_s);
    cJSON_AddNumberToObject(o, "device_busy_seconds", u->device_busy_s);
    cJSON_AddNumberToObject(o, "flops", u->flops);
    cJSON_AddNumberToObject(o, "bytes", u->bytes);
    cJSON_AddNumberToObject(o, "ops", (double)u->ops);
    cJSON_AddNumberToObject(o, "h2d_bytes", (double)u->h2d_bytes);
    cJSON_AddNumberToObject(o, "d2h_bytes", (double)u->d2h_bytes);
    cJSON_AddNumberToObject(o, "collective_bytes", u->collective_bytes);
    cJSON_AddNumberToObject(o, "device_memory_peak_bytes", (double)u->mem_peak);
    cJSON_AddNullToObject(o, "energy_joules");
    cJSON *per = cJSON_AddObjectToObject(o, "per_op");
    for (int k = 0; k < HETRUN_OP_KIND_COUNT; k++) {
        if (!u->op_counts[k]) continue;
        cJSON *e = cJSON_AddObjectToObject(per, hetrun_op_name((hetrun_op_kind)k));
        cJSON_AddNumberToObject(e, "calls", (double)u->op_counts[k]);
        cJSON_AddNumberToObject(e, "flops", u->op_flops[k]);
    }
    return o;
}

static int relevant_variable(const char *kv) {
    static const char *const prefixes[] = {"OPENBLAS_",
                                           "OMP_",
                                           "MKL_",
                                           "GOTO_",
                                           "HETRUN_",
                                           "CUDA_VISIBLE_DEVICES=",
                                           "CUDA_DEVICE_ORDER=",
                                           "ASCEND_RT_VISIBLE_DEVICES=",
                                           "MLU_VISIBLE_DEVICES=",
                                           "HIP_VISIBLE_DEVICES=",
                                           "ROCR_VISIBLE_DEVICES=",
                                           "POCL_",
                                           "SLURM_JOB_ID=",
                                           "OMPI_COMM_WORLD_SIZE="};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(kv, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

/* Object counts of this node's hwloc topology (null when hwloc cannot load it). */
static cJSON *topology_summary(void) {
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) return cJSON_CreateNull();
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return cJSON_CreateNull();
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "packages", hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE));
    cJSON_AddNumberToObject(o, "numa_nodes", hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE));
    cJSON_AddNumberToObject(o, "cores", hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE));
    cJSON_AddNumberToObject(o, "pus", hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU));
    hwloc_obj_t root = hwloc_get_root_obj(topo);
    cJSON_AddNumberToObject(o, "memory_bytes", root ? (double)root->total_memory : 0.0);
    hwloc_topology_destroy(topo);
    return o;
}

cJSON *hetrun_report_environment(void) {
    cJSON *env = cJSON_CreateObject();
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cJSON_AddStringToObject(env, "host", host);
    char cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
                snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
                cpu[strcspn(cpu, "\n")] = '\0';
                break;
            }
        fclose(f);
    }
    cJSON_AddStringToObject(env, "cpu_model", cpu);
    cJSON_AddNumberToObject(env, "online_cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0, inited = 0;
    MPI_Initialized(&inited);
    MPI_Get_library_version(mpi, &len);
    mpi[strcspn(mpi, "\n,")] = '\0';
    cJSON_AddStringToObject(env, "mpi", mpi);
    int mv = 0, msub = 0;
    MPI_Get_version(&mv, &msub);
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d", mv, msub);
    cJSON_AddStringToObject(env, "mpi_standard", buf);
    cJSON *libs = cJSON_AddObjectToObject(env, "libraries");
    unsigned hv = hwloc_get_api_version();
    snprintf(buf, sizeof buf, "%u.%u.%u", hv >> 16, (hv >> 8) & 0xff, hv & 0xff);
    cJSON_AddStringToObject(libs, "hwloc", buf);
    cJSON_AddStringToObject(libs, "cjson", cJSON_Version());
    cJSON_AddStringToObject(libs, "libyaml", yaml_get_version_string());
    cJSON_AddItemToObject(env, "topology", topology_summary());
    cJSON *vars = cJSON_AddObjectToObject(env, "variables");
    for (char **e = environ; e && *e; e++) {
        if (!relevant_variable(*e)) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        char key[128];
        size_t kl = (size_t)(eq - *e) < sizeof key - 1 ? (size_t)(eq - *e) : sizeof key - 1;
        memcpy(key, *e, kl);
        key[kl] = '\0';
        cJSON_AddStringToObject(vars, key, eq + 1);
    }
    return env;
}

/* ---- environment facts only rank records carry ---- */

static void add_unique(cJSON *arr, const char *v) {
    const cJSON *e;
    if (!v) return;
    cJSON_ArrayForEach(e, arr) if (strcmp(cJSON_GetStringValue(e), v) == 0) return;
    cJSON_AddItemToArray(arr, cJSON_CreateString(v));
}

void hetrun_report_environment_ranks(cJSON *env, const cJSON *ranks) {
    cJSON *hosts = cJSON_AddArrayToObject(env, "hosts");
    cJSON *backends = cJSON_AddArrayToObject(env, "backends");
    const cJSON *rank;
    cJSON_ArrayForEach(rank, ranks) {
        add_unique(hosts, cJSON_GetStringValue(cJSON_GetObjectItem(rank, "host")));
        const char *b = cJSON_GetStringValue(cJSON_GetObjectItem(rank, "backend"));
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(rank, "backend_version"));
        const cJSON *dev = cJSON_GetObjectItem(rank, "device");
        const char *drv = cJSON_GetStringValue(cJSON_GetObjectItem(dev, "driver_version"));
        const char *devname = cJSON_GetStringValue(cJSON_GetObjectItem(dev, "name"));
        if (!b) continue;
        cJSON *entry = NULL, *e;
        cJSON_ArrayForEach(e, backends) {
            if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "name")), b) == 0) entry = e;
        }
        if (!entry) {
            entry = cJSON_CreateObject();
            cJSON_AddStringToObject(entry, "name", b);
            cJSON_AddStringToObject(entry, "module_version", v ? v : "");
            cJSON_AddArrayToObject(entry, "driver_versions");
            cJSON_AddArrayToObject(entry, "devices");
            cJSON_AddItemToArray(backends, entry);
        }
        add_unique(cJSON_GetObjectItem(entry, "driver_versions"), drv);
        add_unique(cJSON_GetObjectItem(entry, "devices"), devname);
    }
}

/* ---- summary over ranks ---- */

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
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
    static const char *const columns[] = {"host", "mpi_reference", "device"};
    const cJSON *res0 =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(ranks, 0), "results"), point);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "label", cJSON_GetStringValue(cJSON_GetObjectItem(res0, "label")));
    cJSON_AddStringToObject(out, "op", cJSON_GetStringValue(cJSON_GetObjectItem(res0, "op")));
    cJSON_AddStringToObject(out, "dtype", cJSON_GetStringValue(cJSON_GetObjectItem(res0, "dtype")));
    const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(res0, "device_path"));
    if (path) cJSON_AddStringToObject(out, "device_path", path);
    double factor = num(res0, "busbw_factor");
    cJSON_AddNumberToObject(out, "busbw_factor", factor);
    cJSON *rows = cJSON_AddArrayToObject(out, "rows");
    double *t = malloc((size_t)(nranks > 0 ? nranks : 1) * sizeof *t);
    const cJSON *row0;
    int r_i = 0;
    cJSON_ArrayForEach(row0, cJSON_GetObjectItem(res0, "rows")) {
        cJSON *row = cJSON_CreateObject();
        double bytes = num(row0, "bytes");
        cJSON_AddNumberToObject(row, "bytes", bytes);
        cJSON_AddNumberToObject(row, "count", num(row0, "count"));
        for (size_t c = 0; t && c < sizeof columns / sizeof columns[0]; c++) {
            if (!cJSON_GetObjectItem(row0, columns[c])) continue;
            double wrong = 0.0;
            int any_wrong = 0, r = 0;
            const cJSON *rank;
            cJSON_ArrayForEach(rank, ranks) {
                const cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), point);
                const cJSON *col = cJSON_GetObjectItem(
                    cJSON_GetArrayItem(cJSON_GetObjectItem(res, "rows"), r_i), columns[c]);
                t[r] = num(col, "time_us");
                if (cJSON_IsNumber(cJSON_GetObjectItem(col, "wrong"))) {
                    wrong += num(col, "wrong");
                    any_wrong = 1;
                }
                if (++r >= nranks) break;
            }
            cJSON *col = spread_json(t, r, threshold, 1);
            double tmax = num(col, "max");
            double algbw = tmax > 0.0 ? bytes / (tmax * 1e-6) / 1e9 : NAN;
            cJSON_AddNumberToObject(col, "time_us", tmax);
            cJSON_AddNumberToObject(col, "algbw_gbps", isfinite(algbw) ? algbw : 0.0);
            cJSON_AddNumberToObject(col, "busbw_gbps", isfinite(algbw) ? algbw * factor : 0.0);
            /* Best batch (host and reference columns): max over ranks of each rank's best. */
            double best = NAN;
            r = 0;
            cJSON_ArrayForEach(rank, ranks) {
                const cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), point);
                double b =
                    num(cJSON_GetObjectItem(
                            cJSON_GetArrayItem(cJSON_GetObjectItem(res, "rows"), r_i), columns[c]),
                        "time_us_min");
                if (isfinite(b) && !(b <= best)) best = b;
                if (++r >= nranks) break;
            }
            if (isfinite(best) && best > 0.0) {
                cJSON_AddNumberToObject(col, "time_us_min", best);
                cJSON_AddNumberToObject(col, "busbw_gbps_best",
                                        bytes / (best * 1e-6) / 1e9 * factor);
            }
            if (any_wrong) cJSON_AddNumberToObject(col, "wrong", wrong);
            cJSON_AddItemToObject(row, columns[c], col);
        }
        cJSON_AddItemToArray(rows, row);
        r_i++;
    }
    free(t);
    return out;
}

static int is_collective(const cJSON *res) {
    return cJSON_IsArray(cJSON_GetObjectItem(res, "rows"));
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
            const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(res, "check"));
            if (c && strcmp(c, "passed") == 0)
                passed++;
            else if (c && (strcmp(c, "failed") == 0 || strcmp(c, "error") == 0))
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
    static const char *const sums[] = {
        "wall_seconds", "device_busy_seconds", "flops",     "bytes",
        "ops",          "h2d_bytes",           "d2h_bytes", "collective_bytes"};
    double *v = malloc((size_t)(nranks > 0 ? nranks : 1) * sizeof *v);
    cJSON *usage = cJSON_AddObjectToObject(summary, "usage");
    cJSON *spread = cJSON_AddObjectToObject(summary, "usage_per_rank");
    for (size_t k = 0; v && k < sizeof sums / sizeof sums[0]; k++) {
        double total = 0.0;
        int r = 0;
        cJSON_ArrayForEach(rank, ranks) {
            v[r] = num(cJSON_GetObjectItem(rank, "usage"), sums[k]);
            if (isfinite(v[r])) total += v[r];
            r++;
        }
        cJSON_AddNumberToObject(usage, sums[k], total);
        int timed =
            strcmp(sums[k], "wall_seconds") == 0 || strcmp(sums[k], "device_busy_seconds") == 0;
        cJSON_AddItemToObject(spread, sums[k], spread_json(v, r, threshold, timed));
    }
    double peak = 0.0, energy = 0.0;
    int energy_known = nranks > 0;
    cJSON_ArrayForEach(rank, ranks) {
        const cJSON *u = cJSON_GetObjectItem(rank, "usage");
        double m = num(u, "device_memory_peak_bytes"), e = num(u, "energy_joules");
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
    cJSON *points = cJSON_AddArrayToObject(summary, "workloads");
    cJSON *colls = cJSON_AddArrayToObject(summary, "collectives");
    cJSON *first = cJSON_GetArrayItem(ranks, 0);
    int npoints = cJSON_GetArraySize(cJSON_GetObjectItem(first, "results"));
    for (int i = 0; v && i < npoints; i++) {
        cJSON *res0 = cJSON_GetArrayItem(cJSON_GetObjectItem(first, "results"), i);
        if (is_collective(res0)) {
            cJSON_AddItemToArray(colls, collective_summary(ranks, i, nranks, threshold));
            continue;
        }
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "label",
                                cJSON_GetStringValue(cJSON_GetObjectItem(res0, "label")));
        cJSON_AddStringToObject(p, "workload",
                                cJSON_GetStringValue(cJSON_GetObjectItem(res0, "workload")));
        cJSON_AddNumberToObject(p, "index", i);
        int nfail = 0;
        static const char *const figures[] = {"gflops", "gbps", "percent_of_peak", "time_ms"};
        for (size_t f = 0; f < sizeof figures / sizeof figures[0]; f++) {
            int r = 0, any = 0;
            int is_time = strcmp(figures[f], "time_ms") == 0;
            cJSON_ArrayForEach(rank, ranks) {
                const cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), i);
                v[r] = is_time ? num(cJSON_GetObjectItem(res, "time_ms"), "median")
                               : num(res, figures[f]);
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
        cJSON_ArrayForEach(rank, ranks) {
            const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(
                cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), i), "check"));
            nfail += c && (strcmp(c, "failed") == 0 || strcmp(c, "error") == 0);
        }
        cJSON_AddNumberToObject(p, "checks_failed", nfail);
        cJSON_AddItemToArray(points, p);
    }
    free(v);
}

/* ---- human tables ---- */

static const char *str_or(const cJSON *o, const char *key, const char *fallback) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : fallback;
}

static void fmt_num(char *buf, size_t len, double v, const char *fmt) {
    if (isfinite(v))
        snprintf(buf, len, fmt, v);
    else
        snprintf(buf, len, "-");
}

static void print_points(const cJSON *report, FILE *out) {
    const cJSON *summary = cJSON_GetObjectItem(report, "summary");
    const cJSON *points = cJSON_GetObjectItem(summary, "workloads");
    const cJSON *ranks = cJSON_GetObjectItem(report, "ranks");
    if (!cJSON_GetArraySize(points)) return;
    fprintf(out, "%-44s %10s %10s %10s %9s %7s %10s %-8s %s\n", "workload point (over ranks)",
            "GFLOP/s", "min", "max", "GB/s", "%peak", "ms(med)", "check", "stragglers");
    const cJSON *p;
    cJSON_ArrayForEach(p, points) {
        const cJSON *g = cJSON_GetObjectItem(p, "gflops"), *b = cJSON_GetObjectItem(p, "gbps");
        const cJSON *pk = cJSON_GetObjectItem(p, "percent_of_peak");
        const cJSON *t = cJSON_GetObjectItem(p, "time_ms_median");
        char c[6][32];
        fmt_num(c[0], 32, num(g, "median"), "%.2f");
        fmt_num(c[1], 32, num(g, "min"), "%.2f");
        fmt_num(c[2], 32, num(g, "max"), "%.2f");
        fmt_num(c[3], 32, num(b, "median"), "%.2f");
        fmt_num(c[4], 32, num(pk, "median"), "%.1f");
        fmt_num(c[5], 32, num(t, "median"), "%.4g");
        /* Check over ranks: failed if any rank failed, else rank 0's word. */
        int idx = (int)num(p, "index");
        const char *chk = str_or(
            cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(ranks, 0), "results"), idx),
            "check", "-");
        if (num(p, "checks_failed") > 0) chk = "failed";
        char strag[64] = "";
        const cJSON *sr;
        cJSON_ArrayForEach(sr, cJSON_GetObjectItem(p, "stragglers")) {
            size_t l = strlen(strag);
            snprintf(strag + l, sizeof strag - l, "%s%d", l ? "," : "", (int)sr->valuedouble);
        }
        fprintf(out, "%-44.44s %10s %10s %10s %9s %7s %10s %-8s %s\n", str_or(p, "label", "?"),
                c[0], c[1], c[2], c[3], c[4], c[5], chk, strag[0] ? strag : "-");
    }
}

static void print_collectives(const cJSON *report, FILE *out) {
    const cJSON *colls = cJSON_GetObjectItem(cJSON_GetObjectItem(report, "summary"), "collectives");
    const cJSON *c;
    cJSON_ArrayForEach(c, colls) {
        fprintf(out,
                "\n# %s %s, %d ranks, busbw factor %.3g; time: max over ranks; device path: %s\n",
                str_or(c, "op", "?"), str_or(c, "dtype", "?"),
                (int)num(cJSON_GetObjectItem(report, "summary"), "ranks"), num(c, "busbw_factor"),
                str_or(c, "device_path", "-"));
        fprintf(out, "%12s %11s | %10s %8s %8s %6s | %10s %8s | %10s %8s %8s %6s\n", "size(B)",
                "count", "host us", "algbw", "busbw", "#wrong", "mpi-ref us", "busbw", "device us",
                "algbw", "busbw", "#wrong");
        const cJSON *row;
        cJSON_ArrayForEach(row, cJSON_GetObjectItem(c, "rows")) {
            char f[10][32];
            const cJSON *h = cJSON_GetObjectItem(row, "host"),
                        *r = cJSON_GetObjectItem(row, "mpi_reference");
            const cJSON *d = cJSON_GetObjectItem(row, "device");
            fmt_num(f[0], 32, h ? num(h, "time_us") : NAN, "%.2f");
            fmt_num(f[1], 32, h ? num(h, "algbw_gbps") : NAN, "%.3f");
            fmt_num(f[2], 32, h ? num(h, "busbw_gbps") : NAN, "%.3f");
            fmt_num(f[3], 32, h ? num(h, "wrong") : NAN, "%.0f");
            fmt_num(f[4], 32, r ? num(r, "time_us") : NAN, "%.2f");
            fmt_num(f[5], 32, r ? num(r, "busbw_gbps") : NAN, "%.3f");
            fmt_num(f[6], 32, d ? num(d, "time_us") : NAN, "%.2f");
            fmt_num(f[7], 32, d ? num(d, "algbw_gbps") : NAN, "%.3f");
            fmt_num(f[8], 32, d ? num(d, "busbw_gbps") : NAN, "%.3f");
            fmt_num(f[9], 32, d ? num(d, "wrong") : NAN, "%.0f");
            fprintf(out, "%12.0f %11.0f | %10s %8s %8s %6s | %10s %8s | %10s %8s %8s %6s\n",
                    num(row, "bytes"), num(row, "count"), f[0], f[1], f[2], f[3], f[4], f[5], f[6],
                    f[7], f[8], f[9]);
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
        fmt_num(e, sizeof e, num(u, "energy_joules"), "%.1f");
        fprintf(out, "%-5d %-8.8s %10.3f %10.3f %14.6g %14.6g %12.0f %10s\n",
                (int)num(rank, "rank"), str_or(rank, "backend", "?"), num(u, "wall_seconds"),
                num(u, "device_busy_seconds"), num(u, "flops"), num(u, "bytes"),
                num(u, "device_memory_peak_bytes"), e);
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
    fprintf(out, "status: %s", str_or(report, "status", "?"));
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
            const cJSON *gf = cJSON_GetObjectItem(res, "gflops");
            char gfs[32] = "-";
            if (cJSON_IsNumber(gf)) snprintf(gfs, sizeof gfs, "%.2f", gf->valuedouble);
            fprintf(out, "%-5d %-14.14s %-8.8s %-32.32s %-28.28s %12s %8s\n",
                    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(rank, "rank")),
                    str_or(rank, "host", "?"), str_or(rank, "backend", "?"),
                    str_or(dev, "name", "?"), str_or(res, "label", "?"), gfs,
                    str_or(res, "check", "-"));
            any = 1;
        }
        if (!any)
            fprintf(out, "%-5d %-14.14s %-8.8s %-32.32s %-28.28s %12s %8s\n",
                    (int)cJSON_GetNumberValue(cJSON_GetObjectItem(rank, "rank")),
                    str_or(rank, "host", "?"), str_or(rank, "backend", "?"),
                    str_or(dev, "name", "?"), "(no results)", "-", str_or(rank, "status", "-"));
    }
    fputc('\n', out);
}

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
                                       "workload",
                                       "label",
                                       "op",
                                       "dtype",
                                       "m",
                                       "n",
                                       "k",
                                       "flops_per_iteration",
                                       "bytes_per_iteration",
                                       "gflops",
                                       "gbps",
                                       "percent_of_peak",
                                       "peak_flops",
                                       "time_ms_min",
                                       "time_ms_median",
                                       "time_ms_max",
                                       "check"};
    enum { NC = sizeof cols / sizeof cols[0] };
    hetrun_csv b = hetrun_csv_begin(cols, NC);
    const cJSON *rank, *res;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(report, "ranks")) {
        const cJSON *dev = cJSON_GetObjectItem(rank, "device");
        cJSON_ArrayForEach(res, cJSON_GetObjectItem(rank, "results")) {
            if (is_collective(res)) continue;
            char v[NC][48];
            const cJSON *tm = cJSON_GetObjectItem(res, "time_ms");
            const char *row[NC];
            csv_num(v[0], 48, rank, "rank");
            static const char *const numeric[] = {"m",
                                                  "n",
                                                  "k",
                                                  "flops_per_iteration",
                                                  "bytes_per_iteration",
                                                  "gflops",
                                                  "gbps",
                                                  "percent_of_peak",
                                                  "peak_flops"};
            for (int i = 0; i < 9; i++)
                csv_num(v[9 + i], 48, res, numeric[i]);
            csv_num(v[18], 48, tm, "min");
            csv_num(v[19], 48, tm, "median");
            csv_num(v[20], 48, tm, "max");
            row[0] = v[0];
            row[1] = str_or(rank, "host", "");
            row[2] = str_or(rank, "backend", "");
            row[3] = str_or(dev, "name", "");
            row[4] = str_or(dev, "pci_bus_id", "");
            row[5] = str_or(res, "workload", "");
            row[6] = str_or(res, "label", "");
            row[7] = str_or(res, "op", "");
            row[8] = str_or(res, "dtype", "");
            for (int i = 9; i <= 20; i++)
                row[i] = v[i];
            row[21] = str_or(res, "check", "");
            hetrun_csv_row(&b, row, NC);
        }
    }
    return hetrun_csv_write(path, &b, err, errlen);
}

/* Collectives: one row per rank, point, size and column (host, mpi_reference, device). */
static int write_collectives(const char *path, const cJSON *report, char *err, size_t errlen) {
    static const char *const cols[] = {"rank",    "backend",    "label",      "op",    "dtype",
                                       "nranks",  "buffers",    "path",       "bytes", "count",
                                       "time_us", "algbw_gbps", "busbw_gbps", "wrong"};
    static const char *const columns[] = {"host", "mpi_reference", "device"};
    enum { NC = sizeof cols / sizeof cols[0] };
    hetrun_csv b = hetrun_csv_begin(cols, NC);
    const cJSON *rank, *res, *row;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(report, "ranks")) {
        cJSON_ArrayForEach(res, cJSON_GetObjectItem(rank, "results")) {
            if (!is_collective(res)) continue;
            cJSON_ArrayForEach(row, cJSON_GetObjectItem(res, "rows")) {
                for (size_t c = 0; c < 3; c++) {
                    const cJSON *col = cJSON_GetObjectItem(row, columns[c]);
                    if (!col) continue;
                    char v[8][48];
                    csv_num(v[0], 48, rank, "rank");
                    csv_num(v[1], 48, res, "nranks");
                    csv_num(v[2], 48, row, "bytes");
                    csv_num(v[3], 48, row, "count");
                    csv_num(v[4], 48, col, "time_us");
                    csv_num(v[5], 48, col, "algbw_gbps");
                    csv_num(v[6], 48, col, "busbw_gbps");
                    csv_num(v[7], 48, col, "wrong");
                    const char *how = c == 0   ? "mpi"
                                      : c == 1 ? "mpi-plain-loop"
                                               : str_or(res, "device_path", "");
                    const char *r[NC] = {v[0],
                                         str_or(rank, "backend", ""),
                                         str_or(res, "label", ""),
                                         str_or(res, "op", ""),
                                         str_or(res, "dtype", ""),
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

/* Usage: one row per rank, the record `hetrun usage` bills from. */
static int write_usage(const char *path, const cJSON *report, char *err, size_t errlen) {
    static const char *const cols[] = {"job",
                                       "spec_sha256",
                                       "status",
                                       "rank",
                                       "host",
                                       "backend",
                                       "device",
                                       "device_kind",
                                       "wall_seconds",
                                       "device_busy_seconds",
                                       "flops",
                                       "bytes",
                                       "ops",
                                       "h2d_bytes",
                                       "d2h_bytes",
                                       "collective_bytes",
                                       "device_memory_peak_bytes",
                                       "energy_joules"};
    enum { NC = sizeof cols / sizeof cols[0] };
    hetrun_csv b = hetrun_csv_begin(cols, NC);
    const cJSON *job = cJSON_GetObjectItem(report, "job"), *rank;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(report, "ranks")) {
        const cJSON *dev = cJSON_GetObjectItem(rank, "device"),
                    *u = cJSON_GetObjectItem(rank, "usage");
        char v[11][48];
        csv_num(v[0], 48, rank, "rank");
        for (int i = 8; i < NC; i++)
            csv_num(v[i - 7], 48, u, cols[i]);
        const char *r[NC] = {str_or(job, "name", ""),      str_or(job, "spec_sha256", ""),
                             str_or(report, "status", ""), v[0],
                             str_or(rank, "host", ""),     str_or(rank, "backend", ""),
                             str_or(dev, "name", ""),      str_or(dev, "kind", "")};
        for (int i = 8; i < NC; i++)
            r[i] = v[i - 7];
        hetrun_csv_row(&b, r, NC);
    }
    return hetrun_csv_write(path, &b, err, errlen);
}

static int has_collectives(const cJSON *report) {
    const cJSON *rank, *res;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(report, "ranks")) cJSON_ArrayForEach(
        res, cJSON_GetObjectItem(rank, "results")) if (is_collective(res)) return 1;
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
