/* `hetrun usage REPORT.json...`: sums the per-rank usage records of job reports by
 * backend and device, the way a centre bills: rank-seconds of wall time, device-busy
 * seconds, counted FLOPs and bytes, collective bytes, energy where known.
 *
 * Input rules (docs/report.md, "Accounting"):
 *  - a file that is not a hetrun report (unreadable, not JSON, no schema_version 1.x,
 *    no status, no ranks array, a rank without a usage record) is refused: nothing is
 *    printed and the exit code is 3 (invalid input), the same for every file given;
 *  - a report with status "failed" is not billed with the complete ones: a warning names
 *    it and its records are summed into a separate "failed" total (with
 *    --exclude-failed they are left out entirely);
 *  - the same job report given twice (same spec hash and start/finish times) counts once,
 *    with a warning. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "report/csv.h"
#include "report/report.h"
#include "util/exitcodes.h"

static void usage(FILE *out) {
    fprintf(out, "usage: hetrun usage [options] REPORT.json...\n\n"
                 "Sums the usage records of job reports per backend and device (for billing).\n\n"
                 "options:\n"
                 "  -f, --format F       table (default) or json, on stdout\n"
                 "  -c, --csv FILE       also write the groups as CSV to FILE\n"
                 "  -x, --exclude-failed leave reports with status \"failed\" out entirely\n"
                 "                       (default: summed apart, in the \"failed\" rows)\n"
                 "  -h, --help           this text\n"
                 "exit codes: 0 ok, 2 usage, 3 a file is not a complete hetrun report (nothing\n"
                 "            is printed), 1 the CSV could not be written\n");
}

/* Figures summed per group; energy is summed only over records that have it. */
static const char *const figures[] = {
    "wall_seconds", "device_busy_seconds", "flops",     "bytes",
    "ops",          "h2d_bytes",           "d2h_bytes", "collective_bytes"};
enum { NFIG = sizeof figures / sizeof figures[0] };

typedef struct group {
    char backend[64], kind[32], device[128];
    int failed; /* 1: records of failed reports */
    int jobs, records, energy_records;
    double sum[NFIG];
    double energy, mem_peak;
    const char *last_job; /* to count each report once per group */
} group;

typedef struct groups {
    group *items;
    size_t count, cap;
} groups;

static group *find_group(groups *g, const char *backend, const char *kind, const char *device,
                         int failed) {
    for (size_t i = 0; i < g->count; i++) {
        group *x = &g->items[i];
        if (x->failed == failed && !strcmp(x->backend, backend) && !strcmp(x->kind, kind) &&
            !strcmp(x->device, device))
            return x;
    }
    if (g->count == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 8;
        group *grown = realloc(g->items, cap * sizeof *grown);
        if (!grown) return NULL;
        g->items = grown;
        g->cap = cap;
    }
    group *x = &g->items[g->count++];
    memset(x, 0, sizeof *x);
    snprintf(x->backend, sizeof x->backend, "%s", backend);
    snprintf(x->kind, sizeof x->kind, "%s", kind);
    snprintf(x->device, sizeof x->device, "%s", device);
    x->failed = failed;
    return x;
}

static char *read_file(const char *path, char *why, size_t len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, len, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n < cap - 1) break;
        if (cap > ((size_t)1 << 30)) {
            snprintf(why, len, "larger than 1 GiB");
            free(buf);
            fclose(f);
            return NULL;
        }
        char *grown = realloc(buf, cap * 2);
        if (!grown) free(buf);
        buf = grown;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        snprintf(why, len, "%s", buf ? "read error" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static const char *str_or(const cJSON *o, const char *key, const char *fallback) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : fallback;
}

/* Whether `r` is a report we can bill from; the reason otherwise. */
static int report_ok(const cJSON *r, char *why, size_t len) {
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(r, "schema_version"));
    if (!cJSON_IsObject(r)) return snprintf(why, len, "not a JSON object"), 0;
    if (!v) return snprintf(why, len, "no schema_version: not a hetrun report"), 0;
    if (strncmp(v, "1.", 2) != 0)
        return snprintf(why, len, "schema_version %s, this hetrun reads 1.x", v), 0;
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(r, "status"));
    if (!status || (strcmp(status, "ok") && strcmp(status, "failed")))
        return snprintf(why, len, "status is %s, expected \"ok\" or \"failed\"",
                        status ? status : "missing"),
               0;
    const cJSON *ranks = cJSON_GetObjectItem(r, "ranks");
    if (!cJSON_IsArray(ranks)) return snprintf(why, len, "no ranks array"), 0;
    int i = 0;
    const cJSON *rank;
    cJSON_ArrayForEach(rank, ranks) {
        const cJSON *u = cJSON_GetObjectItem(rank, "usage");
        if (!cJSON_IsObject(u)) return snprintf(why, len, "ranks[%d] has no usage record", i), 0;
        for (int f = 0; f < NFIG; f++)
            if (!cJSON_IsNumber(cJSON_GetObjectItem(u, figures[f])))
                return snprintf(why, len, "ranks[%d].usage.%s is not a number", i, figures[f]), 0;
        i++;
    }
    if (!strcmp(status, "ok") && i == 0)
        return snprintf(why, len, "status ok but no ranks: an incomplete report"), 0;
    return 1;
}

static void add_report(groups *g, const cJSON *r, const char *path, int failed) {
    const cJSON *rank;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(r, "ranks")) {
        const cJSON *dev = cJSON_GetObjectItem(rank, "device"),
                    *u = cJSON_GetObjectItem(rank, "usage");
        group *x = find_group(g, str_or(rank, "backend", "?"), str_or(dev, "kind", "?"),
                              str_or(dev, "name", "?"), failed);
        if (!x) continue;
        if (x->last_job != path) x->jobs++, x->last_job = path;
        x->records++;
        for (int f = 0; f < NFIG; f++)
            x->sum[f] += cJSON_GetObjectItem(u, figures[f])->valuedouble;
        const cJSON *e = cJSON_GetObjectItem(u, "energy_joules"),
                    *m = cJSON_GetObjectItem(u, "device_memory_peak_bytes");
        if (cJSON_IsNumber(e)) x->energy += e->valuedouble, x->energy_records++;
        if (cJSON_IsNumber(m) && m->valuedouble > x->mem_peak) x->mem_peak = m->valuedouble;
    }
}

static cJSON *group_json(const group *x) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "backend", x->backend);
    cJSON_AddStringToObject(o, "device_kind", x->kind);
    cJSON_AddStringToObject(o, "device", x->device);
    cJSON_AddStringToObject(o, "status", x->failed ? "failed" : "ok");
    cJSON_AddNumberToObject(o, "jobs", x->jobs);
    cJSON_AddNumberToObject(o, "records", x->records);
    for (int f = 0; f < NFIG; f++)
        cJSON_AddNumberToObject(o, figures[f], x->sum[f]);
    cJSON_AddNumberToObject(o, "device_hours", x->sum[1] / 3600.0);
    cJSON_AddNumberToObject(o, "device_memory_peak_bytes", x->mem_peak);
    /* Energy only when every record had it; a partial sum would under-bill. */
    if (x->energy_records == x->records && x->records > 0)
        cJSON_AddNumberToObject(o, "energy_joules", x->energy);
    else
        cJSON_AddNullToObject(o, "energy_joules");
    cJSON_AddNumberToObject(o, "energy_records", x->energy_records);
    return o;
}

static int write_csv(const char *path, const cJSON *rows, char *err, size_t errlen) {
    static const char *const cols[] = {"backend",
                                       "device_kind",
                                       "device",
                                       "status",
                                       "jobs",
                                       "records",
                                       "wall_seconds",
                                       "device_busy_seconds",
                                       "device_hours",
                                       "flops",
                                       "bytes",
                                       "ops",
                                       "h2d_bytes",
                                       "d2h_bytes",
                                       "collective_bytes",
                                       "device_memory_peak_bytes",
                                       "energy_joules"};
    const size_t nc = sizeof cols / sizeof cols[0];
    hetrun_csv b = hetrun_csv_begin(cols, nc);
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        for (size_t c = 0; c < nc; c++) {
            char field[320] = "";
            const cJSON *v = cJSON_GetObjectItem(row, cols[c]);
            if (cJSON_IsNumber(v))
                snprintf(field, sizeof field, "%.17g", v->valuedouble);
            else if (cJSON_IsString(v))
                snprintf(field, sizeof field, "%s", v->valuestring);
            hetrun_csv_field(&b, field, c + 1 == nc);
        }
    }
    return hetrun_csv_write(path, &b, err, errlen);
}

static void print_table(const cJSON *out, FILE *f) {
    fprintf(f, "%-8s %-12s %-28s %-6s %5s %6s %12s %12s %14s %14s %14s %12s\n", "backend", "kind",
            "device", "status", "jobs", "ranks", "rank-sec", "busy-sec", "FLOPs", "bytes",
            "coll bytes", "energy J");
    const cJSON *rows[2] = {cJSON_GetObjectItem(out, "groups"), cJSON_GetObjectItem(out, "totals")};
    for (int t = 0; t < 2; t++) {
        const cJSON *g;
        if (t == 1) fprintf(f, "%s\n", "-- totals --");
        cJSON_ArrayForEach(g, rows[t]) {
            const cJSON *e = cJSON_GetObjectItem(g, "energy_joules");
            char es[32] = "n/a";
            if (cJSON_IsNumber(e)) snprintf(es, sizeof es, "%.1f", e->valuedouble);
            fprintf(f,
                    "%-8.8s %-12.12s %-28.28s %-6s %5.0f %6.0f %12.3f %12.3f %14.6g %14.6g %14.6g "
                    "%12s\n",
                    str_or(g, "backend", "*"), str_or(g, "device_kind", "*"),
                    str_or(g, "device", "*"), str_or(g, "status", "?"),
                    cJSON_GetNumberValue(cJSON_GetObjectItem(g, "jobs")),
                    cJSON_GetNumberValue(cJSON_GetObjectItem(g, "records")),
                    cJSON_GetNumberValue(cJSON_GetObjectItem(g, "wall_seconds")),
                    cJSON_GetNumberValue(cJSON_GetObjectItem(g, "device_busy_seconds")),
                    cJSON_GetNumberValue(cJSON_GetObjectItem(g, "flops")),
                    cJSON_GetNumberValue(cJSON_GetObjectItem(g, "bytes")),
                    cJSON_GetNumberValue(cJSON_GetObjectItem(g, "collective_bytes")), es);
        }
    }
}

int hetrun_cmd_usage(int argc, char **argv) {
    static const struct option longopts[] = {{"format", required_argument, NULL, 'f'},
                                             {"csv", required_argument, NULL, 'c'},
                                             {"exclude-failed", no_argument, NULL, 'x'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *format = "table", *csv = NULL;
    int exclude_failed = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:c:xh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'c': csv = optarg; break;
        case 'x': exclude_failed = 1; break;
        case 'h': usage(stdout); return HETRUN_EXIT_OK;
        default: usage(stderr); return HETRUN_EXIT_USAGE;
        }
    }
    if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0) {
        fprintf(stderr, "hetrun usage: --format must be table or json, got '%s'\n", format);
        return HETRUN_EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "hetrun usage: expected at least one REPORT.json\n");
        usage(stderr);
        return HETRUN_EXIT_USAGE;
    }

    /* Parse and vet every file first: one bad file means nothing is billed. */
    int n = argc - optind, bad = 0;
    cJSON **reports = calloc((size_t)n, sizeof *reports);
    if (!reports) return HETRUN_EXIT_FAILED;
    for (int i = 0; i < n; i++) {
        const char *path = argv[optind + i];
        char why[512] = "";
        char *text = read_file(path, why, sizeof why);
        if (text) {
            reports[i] = cJSON_Parse(text);
            free(text);
            if (!reports[i])
                snprintf(why, sizeof why, "not valid JSON");
            else if (!report_ok(reports[i], why, sizeof why)) {
                cJSON_Delete(reports[i]);
                reports[i] = NULL;
            }
        }
        if (!reports[i]) {
            fprintf(stderr, "hetrun usage: %s: %s\n", path, why);
            bad++;
        }
    }
    int rc = HETRUN_EXIT_OK;
    if (bad) {
        fprintf(stderr,
                "hetrun usage: %d of %d files are not complete hetrun reports; nothing "
                "summed\n",
                bad, n);
        rc = HETRUN_EXIT_INVALID_SPEC;
        goto done;
    }

    groups g = {NULL, 0, 0};
    int ok_jobs = 0, failed_jobs = 0, dup = 0, skipped = 0;
    for (int i = 0; i < n; i++) {
        const char *path = argv[optind + i];
        const cJSON *job = cJSON_GetObjectItem(reports[i], "job");
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) {
            const cJSON *other = cJSON_GetObjectItem(reports[j], "job");
            seen = reports[j] &&
                   !strcmp(str_or(job, "spec_sha256", "a"), str_or(other, "spec_sha256", "b")) &&
                   !strcmp(str_or(reports[i], "started_at", "x"),
                           str_or(reports[j], "started_at", "y")) &&
                   !strcmp(str_or(reports[i], "finished_at", "x"),
                           str_or(reports[j], "finished_at", "y"));
        }
        if (seen) {
            fprintf(stderr,
                    "hetrun usage: warning: %s is the same job report as an earlier file; "
                    "counted once\n",
                    path);
            dup++;
            continue;
        }
        int failed = strcmp(str_or(reports[i], "status", ""), "ok") != 0;
        if (failed) {
            fprintf(stderr, "hetrun usage: warning: %s has status failed (%s); %s\n", path,
                    str_or(reports[i], "reason", "no reason given"),
                    exclude_failed ? "left out" : "summed apart in the \"failed\" rows");
            failed_jobs++;
            if (exclude_failed) {
                skipped++;
                continue;
            }
        } else {
            ok_jobs++;
        }
        add_report(&g, reports[i], path, failed);
    }

    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "reports", n);
    cJSON_AddNumberToObject(out, "reports_ok", ok_jobs);
    cJSON_AddNumberToObject(out, "reports_failed", failed_jobs);
    cJSON_AddNumberToObject(out, "reports_duplicate", dup);
    cJSON_AddNumberToObject(out, "reports_excluded", skipped);
    cJSON *rows = cJSON_AddArrayToObject(out, "groups");
    group totals[2];
    memset(totals, 0, sizeof totals);
    for (int t = 0; t < 2; t++) {
        snprintf(totals[t].backend, sizeof totals[t].backend, "*");
        snprintf(totals[t].kind, sizeof totals[t].kind, "*");
        snprintf(totals[t].device, sizeof totals[t].device, "*");
        totals[t].failed = t;
    }
    for (size_t i = 0; i < g.count; i++) {
        const group *x = &g.items[i];
        group *t = &totals[x->failed];
        cJSON_AddItemToArray(rows, group_json(x));
        t->jobs += x->jobs, t->records += x->records, t->energy_records += x->energy_records;
        for (int f = 0; f < NFIG; f++)
            t->sum[f] += x->sum[f];
        t->energy += x->energy;
        if (x->mem_peak > t->mem_peak) t->mem_peak = x->mem_peak;
    }
    /* Jobs in totals: each report once, not once per group it touched. */
    totals[0].jobs = ok_jobs;
    totals[1].jobs = exclude_failed ? 0 : failed_jobs;
    cJSON *tot = cJSON_AddArrayToObject(out, "totals");
    cJSON_AddItemToArray(tot, group_json(&totals[0]));
    if (totals[1].jobs) cJSON_AddItemToArray(tot, group_json(&totals[1]));
    free(g.items);

    if (strcmp(format, "json") == 0) {
        char *text = cJSON_Print(out);
        if (text) printf("%s\n", text);
        free(text);
    } else {
        print_table(out, stdout);
    }
    if (csv) {
        char err[1024];
        cJSON *all = cJSON_Duplicate(rows, 1);
        cJSON *t;
        cJSON_ArrayForEach(t, tot) cJSON_AddItemToArray(all, cJSON_Duplicate(t, 1));
        if (write_csv(csv, all, err, sizeof err) != 0) {
            fprintf(stderr, "hetrun usage: cannot write the CSV: %s\n", err);
            rc = HETRUN_EXIT_FAILED;
        }
        cJSON_Delete(all);
    }
    cJSON_Delete(out);
done:
    for (int i = 0; i < n; i++)
        cJSON_Delete(reports[i]);
    free(reports);
    return rc;
}
