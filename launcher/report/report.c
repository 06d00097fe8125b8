/* Building the report: usage records, environment, summary over ranks, table and CSV. */
#include "report/report.h"

#include <math.h>
#include <mpi.h>
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
    static const char *const prefixes[] = {"OPENBLAS_", "OMP_", "MKL_", "GOTO_", "HETRUN_",
                                           "CUDA_VISIBLE_DEVICES=", "CUDA_DEVICE_ORDER=",
                                           "ASCEND_RT_VISIBLE_DEVICES=", "MLU_VISIBLE_DEVICES=",
                                           "HIP_VISIBLE_DEVICES=", "ROCR_VISIBLE_DEVICES=",
                                           "POCL_", "SLURM_JOB_ID=", "OMPI_COMM_WORLD_SIZE="};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(kv, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
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

/* Per workload point, across ranks: min/median/max of gflops; stragglers are ranks whose
 * median time is more than 10% above the median over ranks. */
void hetrun_report_summarize(cJSON *report) {
    const double straggler_threshold = 0.10;
    cJSON *ranks = cJSON_GetObjectItem(report, "ranks");
    cJSON *summary = cJSON_AddObjectToObject(report, "summary");
    int nranks = cJSON_GetArraySize(ranks);
    cJSON_AddNumberToObject(summary, "ranks", nranks);
    int passed = 0, failed = 0, skipped = 0;
    double flops = 0.0, busy = 0.0, bytes = 0.0;
    cJSON *rank;
    cJSON_ArrayForEach(rank, ranks) {
        cJSON *usage = cJSON_GetObjectItem(rank, "usage");
        flops += cJSON_GetNumberValue(cJSON_GetObjectItem(usage, "flops"));
        bytes += cJSON_GetNumberValue(cJSON_GetObjectItem(usage, "bytes"));
        busy += cJSON_GetNumberValue(cJSON_GetObjectItem(usage, "device_busy_seconds"));
        cJSON *res;
        cJSON_ArrayForEach(res, cJSON_GetObjectItem(rank, "results")) {
            const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(res, "check"));
            if (c && strcmp(c, "passed") == 0) passed++;
            else if (c && strcmp(c, "failed") == 0) failed++;
            else skipped++;
        }
    }
    cJSON *checks = cJSON_AddObjectToObject(summary, "checks");
    cJSON_AddNumberToObject(checks, "passed", passed);
    cJSON_AddNumberToObject(checks, "failed", failed);
    cJSON_AddNumberToObject(checks, "skipped", skipped);
    cJSON *usage = cJSON_AddObjectToObject(summary, "usage");
    cJSON_AddNumberToObject(usage, "flops", flops);
    cJSON_AddNumberToObject(usage, "bytes", bytes);
    cJSON_AddNumberToObject(usage, "device_busy_seconds", busy);
    cJSON_AddNumberToObject(summary, "straggler_threshold", straggler_threshold);

    cJSON *points = cJSON_AddArrayToObject(summary, "workloads");
    cJSON *first = cJSON_GetArrayItem(ranks, 0);
    int npoints = cJSON_GetArraySize(cJSON_GetObjectItem(first, "results"));
    double *g = calloc((size_t)(nranks > 0 ? nranks : 1), sizeof *g);
    double *t = calloc((size_t)(nranks > 0 ? nranks : 1), sizeof *t);
    for (int i = 0; g && t && i < npoints; i++) {
        int n = 0;
        cJSON_ArrayForEach(rank, ranks) {
            cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), i);
            cJSON *gf = cJSON_GetObjectItem(res, "gflops");
            cJSON *tm = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "time_ms"), "median");
            if (cJSON_IsNumber(gf)) {
                g[n] = gf->valuedouble;
                t[n++] = cJSON_IsNumber(tm) ? tm->valuedouble : NAN;
            }
        }
        cJSON *p = cJSON_CreateObject();
        cJSON *res0 = cJSON_GetArrayItem(cJSON_GetObjectItem(first, "results"), i);
        cJSON_AddStringToObject(p, "label", cJSON_GetStringValue(cJSON_GetObjectItem(res0, "label")));
        if (n > 0) {
            hetrun_stats gs = hetrun_stats_of(g, (size_t)n), ts = hetrun_stats_of(t, (size_t)n);
            cJSON_AddItemToObject(p, "gflops", hetrun_stats_json(gs));
            cJSON_AddNumberToObject(p, "gflops_total", gs.mean * n);
            cJSON *strag = cJSON_AddArrayToObject(p, "stragglers");
            int r = 0;
            cJSON_ArrayForEach(rank, ranks) {
                cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), i);
                cJSON *tm = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "time_ms"), "median");
                if (cJSON_IsNumber(tm) && tm->valuedouble > ts.median * (1.0 + straggler_threshold))
                    cJSON_AddItemToArray(strag, cJSON_CreateNumber(r));
                r++;
            }
        }
        cJSON_AddItemToArray(points, p);
    }
    free(g);
    free(t);
}

static const char *str_or(const cJSON *o, const char *key, const char *fallback) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : fallback;
}

void hetrun_report_print_table(const cJSON *report, FILE *out) {
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
    fprintf(out, "status: %s", str_or(report, "status", "?"));
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItem(report, "reason"));
    if (reason) fprintf(out, " (%s)", reason);
    fputc('\n', out);
}

void hetrun_report_csv_path(const char *json_path, char *out, size_t len) {
    size_t n = strlen(json_path);
    if (n > 5 && strcmp(json_path + n - 5, ".json") == 0)
        snprintf(out, len, "%.*s.csv", (int)(n - 5), json_path);
    else
        snprintf(out, len, "%s.csv", json_path);
}

/* CSV field: quoted when it holds a comma, quote or newline. */
static void csv_field(char **buf, size_t *len, size_t *cap, const char *s, int last) {
    size_t need = 2 * strlen(s) + 4;
    if (*len + need >= *cap) {
        size_t ncap = (*cap + need) * 2;
        char *grown = realloc(*buf, ncap);
        if (!grown) return;
        *buf = grown;
        *cap = ncap;
    }
    int quote = strpbrk(s, ",\"\n") != NULL;
    char *p = *buf + *len;
    if (quote) *p++ = '"';
    for (; *s; s++) {
        if (*s == '"') *p++ = '"';
        *p++ = *s;
    }
    if (quote) *p++ = '"';
    *p++ = last ? '\n' : ',';
    *len = (size_t)(p - *buf);
}

int hetrun_report_write_csv(const char *path, const cJSON *report, char *err, size_t errlen) {
    static const char *const cols[] = {"rank", "host", "backend", "device", "pci_bus_id",
                                       "workload", "label", "gflops", "time_ms_min",
                                       "time_ms_median", "time_ms_max", "check"};
    const size_t ncols = sizeof cols / sizeof cols[0];
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    if (!buf) return -1;
    for (size_t c = 0; c < ncols; c++) csv_field(&buf, &len, &cap, cols[c], c + 1 == ncols);
    const cJSON *rank;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(report, "ranks")) {
        const cJSON *dev = cJSON_GetObjectItem(rank, "device"), *res;
        cJSON_ArrayForEach(res, cJSON_GetObjectItem(rank, "results")) {
            char v[8][64];
            const cJSON *tm = cJSON_GetObjectItem(res, "time_ms");
            snprintf(v[0], 64, "%d", (int)cJSON_GetNumberValue(cJSON_GetObjectItem(rank, "rank")));
            const cJSON *nums[4] = {cJSON_GetObjectItem(res, "gflops"), cJSON_GetObjectItem(tm, "min"),
                                    cJSON_GetObjectItem(tm, "median"), cJSON_GetObjectItem(tm, "max")};
            for (int i = 0; i < 4; i++) {
                if (cJSON_IsNumber(nums[i])) snprintf(v[1 + i], 64, "%.6g", nums[i]->valuedouble);
                else v[1 + i][0] = '\0';
            }
            const char *row[] = {v[0], str_or(rank, "host", ""), str_or(rank, "backend", ""),
                                 str_or(dev, "name", ""), str_or(dev, "pci_bus_id", ""),
                                 str_or(res, "workload", ""), str_or(res, "label", ""), v[1], v[2],
                                 v[3], v[4], str_or(res, "check", "")};
            for (size_t c = 0; c < ncols; c++) csv_field(&buf, &len, &cap, row[c], c + 1 == ncols);
        }
    }
    int rc = hetrun_write_atomic(path, buf, len, err, errlen);
    free(buf);
    return rc;
}
