/* `hetrun usage REPORT.json...`: sums the usage records of job reports (docs/accounting.md)
 * grouped by any of job, user, account, backend, device and day, the way a centre bills:
 * rank-seconds of wall time, device-seconds (shared devices split, never double counted),
 * device-busy seconds, counted FLOPs and bytes, collective bytes, energy where known; or
 * prints one line per job, step and rank (--parsable, -o FIELDS) like sacct.
 *
 * Input rules (docs/report.md, "Accounting"):
 *  - a file that is not a hetrun report (unreadable, not JSON, schema_version not 1.x/2.x,
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
#include "report/access.h"
#include "report/report.h"
#include "util/exitcodes.h"

static void usage(FILE *out) {
    fprintf(out, "usage: hetrun usage [options] REPORT.json...\n\n"
                 "Sums the usage records of job reports for billing (docs/accounting.md).\n\n"
                 "options:\n"
                 "  -b, --by KEYS        group by a comma list of job, user, account, backend,\n"
                 "                       device, day (default: backend,device)\n"
                 "  -f, --format F       table (default) or json, on stdout\n"
                 "  -c, --csv FILE       also write the groups as CSV to FILE\n"
                 "  -p, --parsable       one line per job, step and rank, fields separated by '|'\n"
                 "                       (like sacct --parsable2), a header line first\n"
                 "  -o, --fields LIST    the fields of those lines (comma list; implies one line\n"
                 "                       per rank); see --help-fields\n"
                 "      --help-fields    list the fields\n"
                 "  -x, --exclude-failed leave reports with status \"failed\" out entirely\n"
                 "                       (default: summed apart, in the \"failed\" rows)\n"
                 "  -h, --help           this text\n"
                 "exit codes: 0 ok, 2 usage, 3 a file is not a complete hetrun report (nothing\n"
                 "            is printed), 1 the CSV could not be written\n");
}

/* Figures a group sums beyond the record's own sums (hetrun_usage_sums). */
static const char *const extra[] = {"device_seconds", "cpu_core_seconds"};
enum { NEXTRA = sizeof extra / sizeof extra[0], MAXFIG = 16 };

/* Grouping dimensions, in the order they print. */
static const char *const dims[] = {"job", "user", "account", "backend", "device", "day"};
enum { NDIM = sizeof dims / sizeof dims[0] };

typedef struct group {
    char key[NDIM][160];
    char kind[32]; /* device kind, shown with the device dimension */
    int failed;    /* 1: records of failed reports */
    int jobs, records, energy_records;
    double sum[MAXFIG];
    double energy, mem_peak;
    const void *last_job; /* to count each report once per group */
} group;

typedef struct groups {
    group *items;
    size_t count, cap;
} groups;

static size_t nfig(void) {
    return hetrun_usage_sum_count + NEXTRA;
}

static const char *fig_name(size_t f) {
    return f < hetrun_usage_sum_count ? hetrun_usage_sums[f] : extra[f - hetrun_usage_sum_count];
}

static group *find_group(groups *g, char key[NDIM][160], const char *kind, int failed) {
    for (size_t i = 0; i < g->count; i++) {
        group *x = &g->items[i];
        int same = x->failed == failed && !strcmp(x->kind, kind);
        for (int d = 0; same && d < NDIM; d++)
            same = !strcmp(x->key[d], key[d]);
        if (same) return x;
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
    memcpy(x->key, key, sizeof x->key);
    snprintf(x->kind, sizeof x->kind, "%s", kind);
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

/* Whether `r` is a report we can bill from; the reason otherwise. */
static int report_ok(const cJSON *r, char *why, size_t len) {
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(r, "schema_version"));
    if (!cJSON_IsObject(r)) return snprintf(why, len, "not a JSON object"), 0;
    if (!v) return snprintf(why, len, "no schema_version: not a hetrun report"), 0;
    if (!hetrun_report_version_readable(v))
        return snprintf(why, len, "schema_version %s, this hetrun reads 1.x and 2.x", v), 0;
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
        for (size_t f = 0; f < hetrun_usage_sum_count; f++)
            if (!cJSON_IsNumber(cJSON_GetObjectItem(u, hetrun_usage_sums[f])))
                return snprintf(why, len, "ranks[%d].usage.%s is not a number", i,
                                hetrun_usage_sums[f]),
                       0;
        i++;
    }
    if (!strcmp(status, "ok") && i == 0)
        return snprintf(why, len, "status ok but no ranks: an incomplete report"), 0;
    return 1;
}

/* The value of dimension `d` for one rank of a usage record. */
static void dim_value(int d, const cJSON *rec, const cJSON *rank, char *out, size_t len) {
    const cJSON *job = cJSON_GetObjectItem(rec, "job");
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(job, "job_id"));
    const char *step = cJSON_GetStringValue(cJSON_GetObjectItem(job, "step_id"));
    const char *started = hetrun_rj_str(rank, "started_at", "");
    if (!*started) started = hetrun_rj_str(rec, "started_at", "");
    switch (d) {
    case 0: /* job: the scheduler's id (and step), else name@start */
        if (id)
            snprintf(out, len, "%s%s%s", id, step ? "." : "", step ? step : "");
        else
            snprintf(out, len, "%s@%s", hetrun_rj_str(job, "name", "?"),
                     hetrun_rj_str(rec, "started_at", "?"));
        break;
    case 1: snprintf(out, len, "%s", hetrun_rj_str(job, "user", "?")); break;
    case 2: snprintf(out, len, "%s", hetrun_rj_str(job, "account", "-")); break;
    case 3: snprintf(out, len, "%s", hetrun_rj_str(rank, "backend", "?")); break;
    case 4: snprintf(out, len, "%s", hetrun_rj_str(rank, "device", "?")); break;
    default: snprintf(out, len, "%.10s", *started ? started : "?"); break;
    }
}

static void add_record(groups *g, const cJSON *rec, const int *by, const void *id, int failed) {
    const cJSON *rank;
    cJSON_ArrayForEach(rank, cJSON_GetObjectItem(rec, "ranks")) {
        char key[NDIM][160];
        for (int d = 0; d < NDIM; d++) {
            if (by[d])
                dim_value(d, rec, rank, key[d], sizeof key[d]);
            else
                snprintf(key[d], sizeof key[d], "*");
        }
        group *x =
            find_group(g, key, by[4] ? hetrun_rj_str(rank, "device_kind", "?") : "*", failed);
        if (!x) continue;
        if (x->last_job != id) x->jobs++, x->last_job = id;
        x->records++;
        for (size_t f = 0; f < nfig(); f++) {
            double v = hetrun_rj_num(rank, fig_name(f));
            x->sum[f] += isfinite(v) ? v : 0.0;
        }
        double e = hetrun_rj_num(rank, "energy_joules"),
               m = hetrun_rj_num(rank, "device_memory_peak_bytes");
        if (isfinite(e)) x->energy += e, x->energy_records++;
        if (isfinite(m) && m > x->mem_peak) x->mem_peak = m;
    }
}

static cJSON *group_json(const group *x, const int *by) {
    cJSON *o = cJSON_CreateObject();
    for (int d = 0; d < NDIM; d++) {
        if (!by[d]) continue;
        cJSON_AddStringToObject(o, dims[d], x->key[d]);
        if (d == 4) cJSON_AddStringToObject(o, "device_kind", x->kind);
    }
    cJSON_AddStringToObject(o, "status", x->failed ? "failed" : "ok");
    cJSON_AddNumberToObject(o, "jobs", x->jobs);
    cJSON_AddNumberToObject(o, "records", x->records);
    for (size_t f = 0; f < nfig(); f++)
        cJSON_AddNumberToObject(o, fig_name(f), x->sum[f]);
    cJSON_AddNumberToObject(o, "device_hours", x->sum[hetrun_usage_sum_count] / 3600.0);
    cJSON_AddNumberToObject(o, "device_memory_peak_bytes", x->mem_peak);
    /* Energy only when every record had it; a partial sum would under-bill. */
    if (x->energy_records == x->records && x->records > 0)
        cJSON_AddNumberToObject(o, "energy_joules", x->energy);
    else
        cJSON_AddNullToObject(o, "energy_joules");
    cJSON_AddNumberToObject(o, "energy_records", x->energy_records);
    return o;
}

/* The columns of a group row: the grouping keys, the counts, the summed figures, then
 * what is derived from them. */
static size_t group_columns(const int *by, const char **cols, size_t max) {
    static const char *const counts[] = {"status", "jobs", "records"};
    static const char *const derived[] = {"device_hours", "device_memory_peak_bytes",
                                          "energy_joules"};
    size_t n = 0;
    for (int d = 0; d < NDIM && n < max; d++) {
        if (!by[d]) continue;
        cols[n++] = dims[d];
        if (d == 4 && n < max) cols[n++] = "device_kind";
    }
    for (size_t i = 0; i < 3 && n < max; i++)
        cols[n++] = counts[i];
    for (size_t f = 0; f < nfig() && n < max; f++)
        cols[n++] = fig_name(f);
    for (size_t i = 0; i < 3 && n < max; i++)
        cols[n++] = derived[i];
    return n;
}

static void cell(const cJSON *row, const char *col, char *out, size_t len) {
    const cJSON *v = cJSON_GetObjectItem(row, col);
    out[0] = '\0';
    if (cJSON_IsNumber(v))
        snprintf(out, len, "%.17g", v->valuedouble);
    else if (cJSON_IsString(v))
        snprintf(out, len, "%s", v->valuestring);
}

static int write_csv(const char *path, const cJSON *rows, const int *by, char *err, size_t errlen) {
    const char *cols[32];
    size_t nc = group_columns(by, cols, 32);
    hetrun_csv b = hetrun_csv_begin(cols, nc);
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        for (size_t c = 0; c < nc; c++) {
            char field[320];
            cell(row, cols[c], field, sizeof field);
            hetrun_csv_field(&b, field, c + 1 == nc);
        }
    }
    return hetrun_csv_write(path, &b, err, errlen);
}

static void print_table(const cJSON *out, const int *by, FILE *f) {
    for (int d = 0; d < NDIM; d++)
        if (by[d]) fprintf(f, d == 4 ? "%-28s %-12s " : "%-20s ", dims[d], "kind");
    fprintf(f, "%-6s %5s %6s %12s %12s %12s %14s %14s %14s %12s\n", "status", "jobs", "ranks",
            "rank-sec", "device-sec", "busy-sec", "FLOPs", "bytes", "coll bytes", "energy J");
    const cJSON *rows[2] = {cJSON_GetObjectItem(out, "groups"), cJSON_GetObjectItem(out, "totals")};
    for (int t = 0; t < 2; t++) {
        const cJSON *g;
        if (t == 1) fprintf(f, "%s\n", "-- totals --");
        cJSON_ArrayForEach(g, rows[t]) {
            for (int d = 0; d < NDIM; d++) {
                if (!by[d]) continue;
                if (d == 4)
                    fprintf(f, "%-28.28s %-12.12s ", hetrun_rj_str(g, dims[d], "*"),
                            hetrun_rj_str(g, "device_kind", "*"));
                else
                    fprintf(f, "%-20.20s ", hetrun_rj_str(g, dims[d], "*"));
            }
            char es[32] = "n/a";
            double e = hetrun_rj_num(g, "energy_joules");
            if (isfinite(e)) snprintf(es, sizeof es, "%.1f", e);
            fprintf(f, "%-6s %5.0f %6.0f %12.3f %12.3f %12.3f %14.6g %14.6g %14.6g %12s\n",
                    hetrun_rj_str(g, "status", "?"), hetrun_rj_num(g, "jobs"),
                    hetrun_rj_num(g, "records"), hetrun_rj_num(g, "wall_seconds"),
                    hetrun_rj_num(g, "device_seconds"), hetrun_rj_num(g, "device_busy_seconds"),
                    hetrun_rj_num(g, "flops"), hetrun_rj_num(g, "bytes"),
                    hetrun_rj_num(g, "collective_bytes"), es);
        }
    }
}

/* Parses --by: each name once, from `dims`. Returns 0 or -1 (message printed). */
static int parse_by(const char *list, int *by) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    memset(by, 0, NDIM * sizeof *by);
    int any = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int d = 0;
        while (d < NDIM && strcmp(tok, dims[d]) != 0)
            d++;
        if (d == NDIM) {
            fprintf(stderr,
                    "hetrun usage: --by: unknown key '%s' (job, user, account, backend, "
                    "device, day)\n",
                    tok);
            return -1;
        }
        by[d] = any = 1;
    }
    if (!any) fprintf(stderr, "hetrun usage: --by: no key given\n");
    return any ? 0 : -1;
}

/* Parses -o: names from hetrun_usage_columns. Returns the count, or -1 (message printed). */
static int parse_fields(const char *list, const char **out, int max) {
    char *buf = strdup(list);
    int n = 0;
    if (!buf) return -1;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        size_t c = 0;
        while (c < hetrun_usage_column_count && strcmp(tok, hetrun_usage_columns[c]) != 0)
            c++;
        if (c == hetrun_usage_column_count || n == max) {
            fprintf(stderr, "hetrun usage: -o: %s '%s' (see --help-fields)\n",
                    n == max ? "too many fields at" : "unknown field", tok);
            free(buf);
            return -1;
        }
        out[n++] = hetrun_usage_columns[c];
    }
    free(buf);
    if (!n) fprintf(stderr, "hetrun usage: -o: no field given\n");
    return n ? n : -1;
}

/* One line per rank of every record: '|' between fields (parsable) or aligned columns. */
static void print_lines(cJSON *const *recs, int n, const char **fields, int nf, int parsable,
                        FILE *f) {
    for (int c = 0; c < nf; c++)
        fprintf(f, parsable ? "%s%s" : "%s%-16s", c ? (parsable ? "|" : " ") : "", fields[c]);
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        const cJSON *rank;
        if (!recs[i]) continue;
        cJSON_ArrayForEach(rank, cJSON_GetObjectItem(recs[i], "ranks")) {
            for (int c = 0; c < nf; c++) {
                char v[400];
                hetrun_usage_field(recs[i], rank, fields[c], v, sizeof v);
                /* A '|' inside a value would shift every later field. */
                for (char *p = v; parsable && *p; p++)
                    if (*p == '|') *p = '/';
                fprintf(f, parsable ? "%s%s" : "%s%-16s", c ? (parsable ? "|" : " ") : "", v);
            }
            fputc('\n', f);
        }
    }
}

int hetrun_cmd_usage(int argc, char **argv) {
    static const struct option longopts[] = {{"format", required_argument, NULL, 'f'},
                                             {"csv", required_argument, NULL, 'c'},
                                             {"by", required_argument, NULL, 'b'},
                                             {"parsable", no_argument, NULL, 'p'},
                                             {"fields", required_argument, NULL, 'o'},
                                             {"help-fields", no_argument, NULL, 'F'},
                                             {"exclude-failed", no_argument, NULL, 'x'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *format = "table", *csv = NULL, *by_list = "backend,device", *field_list = NULL;
    int exclude_failed = 0, parsable = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:c:b:po:xh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'c': csv = optarg; break;
        case 'b': by_list = optarg; break;
        case 'p': parsable = 1; break;
        case 'o': field_list = optarg; break;
        case 'F':
            for (size_t i = 0; i < hetrun_usage_column_count; i++)
                printf("%s\n", hetrun_usage_columns[i]);
            return HETRUN_EXIT_OK;
        case 'x': exclude_failed = 1; break;
        case 'h': usage(stdout); return HETRUN_EXIT_OK;
        default: usage(stderr); return HETRUN_EXIT_USAGE;
        }
    }
    if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0) {
        fprintf(stderr, "hetrun usage: --format must be table or json, got '%s'\n", format);
        return HETRUN_EXIT_USAGE;
    }
    int by[NDIM];
    if (parse_by(by_list, by) != 0) return HETRUN_EXIT_USAGE;
    const char *fields[64];
    int nf = 0;
    if (field_list && (nf = parse_fields(field_list, fields, 64)) < 0) return HETRUN_EXIT_USAGE;
    if (parsable && !field_list)
        for (size_t i = 0; i < hetrun_usage_column_count; i++)
            fields[nf++] = hetrun_usage_columns[i];
    if (optind >= argc) {
        fprintf(stderr, "hetrun usage: expected at least one REPORT.json\n");
        usage(stderr);
        return HETRUN_EXIT_USAGE;
    }

    /* Parse and vet every file first: one bad file means nothing is billed. */
    int n = argc - optind, bad = 0;
    cJSON **reports = calloc((size_t)n, sizeof *reports);
    cJSON **recs = calloc((size_t)n, sizeof *recs);
    if (!reports || !recs) {
        free(reports);
        free(recs);
        return HETRUN_EXIT_FAILED;
    }
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
                   !strcmp(hetrun_rj_str(job, "spec_sha256", "a"),
                           hetrun_rj_str(other, "spec_sha256", "b")) &&
                   !strcmp(hetrun_rj_str(reports[i], "started_at", "x"),
                           hetrun_rj_str(reports[j], "started_at", "y")) &&
                   !strcmp(hetrun_rj_str(reports[i], "finished_at", "x"),
                           hetrun_rj_str(reports[j], "finished_at", "y"));
        }
        if (seen) {
            fprintf(stderr,
                    "hetrun usage: warning: %s is the same job report as an earlier file; "
                    "counted once\n",
                    path);
            dup++;
            continue;
        }
        int failed = strcmp(hetrun_rj_str(reports[i], "status", ""), "ok") != 0;
        if (failed) {
            fprintf(stderr, "hetrun usage: warning: %s has status failed (%s); %s\n", path,
                    hetrun_rj_str(reports[i], "reason", "no reason given"),
                    exclude_failed ? "left out" : "summed apart in the \"failed\" rows");
            failed_jobs++;
            if (exclude_failed) {
                skipped++;
                continue;
            }
        } else {
            ok_jobs++;
        }
        /* The record the report carries; 1.x reports get one built from their ranks. */
        const cJSON *acc = cJSON_GetObjectItem(reports[i], "accounting");
        recs[i] = acc ? cJSON_Duplicate(acc, 1) : hetrun_report_accounting(reports[i]);
        add_record(&g, recs[i], by, recs[i], failed);
    }

    if (nf > 0) {
        print_lines(recs, n, fields, nf, parsable, stdout);
        free(g.items);
        goto done;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "reports", n);
    cJSON_AddNumberToObject(out, "reports_ok", ok_jobs);
    cJSON_AddNumberToObject(out, "reports_failed", failed_jobs);
    cJSON_AddNumberToObject(out, "reports_duplicate", dup);
    cJSON_AddNumberToObject(out, "reports_excluded", skipped);
    cJSON *by_arr = cJSON_AddArrayToObject(out, "by");
    for (int d = 0; d < NDIM; d++)
        if (by[d]) cJSON_AddItemToArray(by_arr, cJSON_CreateString(dims[d]));
    cJSON *rows = cJSON_AddArrayToObject(out, "groups");
    group totals[2];
    memset(totals, 0, sizeof totals);
    for (int t = 0; t < 2; t++) {
        for (int d = 0; d < NDIM; d++)
            snprintf(totals[t].key[d], sizeof totals[t].key[d], "*");
        snprintf(totals[t].kind, sizeof totals[t].kind, "*");
        totals[t].failed = t;
    }
    for (size_t i = 0; i < g.count; i++) {
        const group *x = &g.items[i];
        group *t = &totals[x->failed];
        cJSON_AddItemToArray(rows, group_json(x, by));
        t->jobs += x->jobs, t->records += x->records, t->energy_records += x->energy_records;
        for (size_t f = 0; f < nfig(); f++)
            t->sum[f] += x->sum[f];
        t->energy += x->energy;
        if (x->mem_peak > t->mem_peak) t->mem_peak = x->mem_peak;
    }
    /* Jobs in totals: each report once, not once per group it touched. */
    totals[0].jobs = ok_jobs;
    totals[1].jobs = exclude_failed ? 0 : failed_jobs;
    cJSON *tot = cJSON_AddArrayToObject(out, "totals");
    cJSON_AddItemToArray(tot, group_json(&totals[0], by));
    if (totals[1].jobs) cJSON_AddItemToArray(tot, group_json(&totals[1], by));
    free(g.items);

    if (strcmp(format, "json") == 0) {
        char *text = cJSON_Print(out);
        if (text) printf("%s\n", text);
        free(text);
    } else {
        print_table(out, by, stdout);
    }
    if (csv) {
        char err[1024];
        cJSON *all = cJSON_Duplicate(rows, 1);
        cJSON *t;
        cJSON_ArrayForEach(t, tot) cJSON_AddItemToArray(all, cJSON_Duplicate(t, 1));
        if (write_csv(csv, all, by, err, sizeof err) != 0) {
            fprintf(stderr, "hetrun usage: cannot write the CSV: %s\n", err);
            rc = HETRUN_EXIT_FAILED;
        }
        cJSON_Delete(all);
    }
    cJSON_Delete(out);
done:
    for (int i = 0; i < n; i++) {
        cJSON_Delete(reports[i]);
        cJSON_Delete(recs[i]);
    }
    free(reports);
    free(recs);
    return rc;
}
