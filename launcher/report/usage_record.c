/* A rank's usage and the billable usage record (docs/accounting.md, docs/usage.schema.json). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/catalogue.h"
#include "report/report.h"
#include "util/clock.h"

const char *const hetrun_usage_sums[] = {
    "wall_seconds", "device_busy_seconds", "flops",     "bytes",
    "ops",          "h2d_bytes",           "d2h_bytes", "collective_bytes"};
const size_t hetrun_usage_sum_count = sizeof hetrun_usage_sums / sizeof hetrun_usage_sums[0];

/* Identity first (job, step, user, account, rank, host), then the figures: one line per
 * rank, like sacct's. The first four name the table for target.c ("job,spec_sha256,..."
 * was the 1.x head; this head is recognised there too). */
const char *const hetrun_usage_columns[] = {"job",
                                            "job_id",
                                            "step_id",
                                            "user",
                                            "account",
                                            "spec_sha256",
                                            "status",
                                            "rank",
                                            "host",
                                            "backend",
                                            "device",
                                            "device_kind",
                                            "device_id",
                                            "started_at",
                                            "ended_at",
                                            "final",
                                            "wall_seconds",
                                            "device_busy_seconds",
                                            "device_share",
                                            "device_seconds",
                                            "cpus",
                                            "cpu_core_seconds",
                                            "flops",
                                            "bytes",
                                            "ops",
                                            "h2d_bytes",
                                            "d2h_bytes",
                                            "collective_bytes",
                                            "device_memory_peak_bytes",
                                            "energy_joules"};
const size_t hetrun_usage_column_count =
    sizeof hetrun_usage_columns / sizeof hetrun_usage_columns[0];

static void iso_utc(double unix_s, char *buf, size_t len) {
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

hetrun_usage_clock hetrun_usage_clock_start(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    hetrun_usage_clock c = {(double)ts.tv_sec + (double)ts.tv_nsec * 1e-9, hetrun_now_s()};
    return c;
}

cJSON *hetrun_report_usage_json(const hetrun_usage *u, const hetrun_usage_clock *c, double mem_peak,
                                double energy, int final) {
    cJSON *o = cJSON_CreateObject();
    double wall = c ? hetrun_now_s() - c->start_mono : u->wall_s;
    char ts[32];
    if (c) {
        iso_utc(c->start_unix, ts, sizeof ts);
        cJSON_AddStringToObject(o, "started_at", ts);
        iso_utc(c->start_unix + wall, ts, sizeof ts);
        cJSON_AddStringToObject(o, "ended_at", ts);
    }
    cJSON_AddBoolToObject(o, "final", final);
    cJSON_AddNumberToObject(o, "wall_seconds", wall > 0.0 ? wall : 0.0);
    cJSON_AddNumberToObject(o, "device_busy_seconds", u->device_busy_s);
    cJSON_AddNumberToObject(o, "flops", u->flops);
    cJSON_AddNumberToObject(o, "bytes", u->bytes);
    cJSON_AddNumberToObject(o, "ops", (double)u->ops);
    cJSON_AddNumberToObject(o, "h2d_bytes", (double)u->h2d_bytes);
    cJSON_AddNumberToObject(o, "d2h_bytes", (double)u->d2h_bytes);
    cJSON_AddNumberToObject(o, "collective_bytes", u->collective_bytes);
    cJSON_AddNumberToObject(o, "device_memory_peak_bytes",
                            mem_peak >= 0.0 ? mem_peak : (double)u->mem_peak);
    if (energy >= 0.0)
        cJSON_AddNumberToObject(o, "energy_joules", energy);
    else
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

static const char *str_or(const cJSON *o, const char *key, const char *fallback) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : fallback;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* What names one physical device: UUID, else PCI address, else backend + device name
 * (a CPU device: the host's processors). Always qualified by host. */
static void device_id(const cJSON *rank, char *out, size_t len) {
    const cJSON *dev = cJSON_GetObjectItem(rank, "device");
    const char *uuid = cJSON_GetStringValue(cJSON_GetObjectItem(dev, "uuid"));
    const char *pci = cJSON_GetStringValue(cJSON_GetObjectItem(dev, "pci_bus_id"));
    if (uuid && *uuid)
        snprintf(out, len, "%s", uuid);
    else if (pci && *pci)
        snprintf(out, len, "%s/%s", str_or(rank, "host", "?"), pci);
    else
        snprintf(out, len, "%s/%s/%s", str_or(rank, "host", "?"), str_or(rank, "backend", "?"),
                 str_or(dev, "name", "?"));
}

cJSON *hetrun_report_accounting(const cJSON *report) {
    const cJSON *job = cJSON_GetObjectItem(report, "job");
    const cJSON *ranks = cJSON_GetObjectItem(report, "ranks");
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "usage_schema_version", HETRUN_USAGE_SCHEMA_VERSION);
    static const char *const ids[] = {"name",    "spec_sha256", "scheduler", "job_id",
                                      "step_id", "user",        "account",   "account_source"};
    cJSON *j = cJSON_AddObjectToObject(rec, "job");
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const cJSON *v = cJSON_GetObjectItem(job, ids[i]);
        cJSON_AddItemToObject(j, ids[i],
                              cJSON_IsString(v) ? cJSON_Duplicate(v, 0) : cJSON_CreateNull());
    }
    cJSON_AddStringToObject(rec, "status", str_or(report, "status", "failed"));
    const cJSON *reason = cJSON_GetObjectItem(report, "reason");
    cJSON_AddItemToObject(rec, "reason",
                          cJSON_IsString(reason) ? cJSON_Duplicate(reason, 0) : cJSON_CreateNull());
    cJSON_AddStringToObject(rec, "started_at", str_or(report, "started_at", ""));
    cJSON_AddStringToObject(rec, "finished_at", str_or(report, "finished_at", ""));
    cJSON *hosts = cJSON_AddArrayToObject(rec, "hosts");
    cJSON *out = cJSON_AddArrayToObject(rec, "ranks");
    int n = cJSON_GetArraySize(ranks);
    char(*idv)[320] = calloc((size_t)(n > 0 ? n : 1), sizeof *idv);
    if (!idv) return rec;
    for (int i = 0; i < n; i++)
        device_id(cJSON_GetArrayItem(ranks, i), idv[i], sizeof idv[i]);
    for (int i = 0; i < n; i++) {
        const cJSON *rank = cJSON_GetArrayItem(ranks, i);
        const cJSON *u = cJSON_GetObjectItem(rank, "usage");
        const cJSON *dev = cJSON_GetObjectItem(rank, "device");
        const char *host = str_or(rank, "host", "?");
        int seen = 0;
        const cJSON *h;
        cJSON_ArrayForEach(h, hosts) seen |= strcmp(cJSON_GetStringValue(h), host) == 0;
        if (!seen) cJSON_AddItemToArray(hosts, cJSON_CreateString(host));
        /* Ranks of this job on the same device split it evenly. */
        int sharers = 0;
        for (int k = 0; k < n; k++)
            sharers += strcmp(idv[k], idv[i]) == 0;
        double share = 1.0 / (sharers > 0 ? sharers : 1);
        double wall = num(u, "wall_seconds");
        int ncpus = cJSON_GetArraySize(cJSON_GetObjectItem(rank, "cpus"));
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "rank", num(rank, "rank"));
        cJSON_AddStringToObject(e, "host", host);
        if (cJSON_IsNumber(cJSON_GetObjectItem(rank, "node")))
            cJSON_AddNumberToObject(e, "node", num(rank, "node"));
        cJSON_AddStringToObject(e, "status", str_or(rank, "status", "failed"));
        cJSON_AddStringToObject(e, "backend", str_or(rank, "backend", ""));
        cJSON_AddStringToObject(e, "device", str_or(dev, "name", ""));
        cJSON_AddStringToObject(e, "device_kind", str_or(dev, "kind", "unknown"));
        cJSON_AddStringToObject(e, "device_id", idv[i]);
        cJSON_AddStringToObject(e, "started_at", str_or(u, "started_at", ""));
        cJSON_AddStringToObject(e, "ended_at", str_or(u, "ended_at", ""));
        cJSON_AddBoolToObject(e, "final", cJSON_IsTrue(cJSON_GetObjectItem(u, "final")));
        for (size_t k = 0; k < hetrun_usage_sum_count; k++) {
            double v = num(u, hetrun_usage_sums[k]);
            cJSON_AddNumberToObject(e, hetrun_usage_sums[k], isfinite(v) ? v : 0.0);
            if (k == 1) {
                cJSON_AddNumberToObject(e, "device_share", share);
                cJSON_AddNumberToObject(e, "device_seconds", isfinite(wall) ? wall * share : 0.0);
                cJSON_AddNumberToObject(e, "cpus", ncpus);
                cJSON_AddNumberToObject(e, "cpu_core_seconds", isfinite(wall) ? wall * ncpus : 0.0);
            }
        }
        double m = num(u, "device_memory_peak_bytes"), en = num(u, "energy_joules");
        cJSON_AddNumberToObject(e, "device_memory_peak_bytes", isfinite(m) ? m : 0.0);
        if (isfinite(en))
            cJSON_AddNumberToObject(e, "energy_joules", en);
        else
            cJSON_AddNullToObject(e, "energy_joules");
        const cJSON *per = cJSON_GetObjectItem(u, "per_op");
        cJSON_AddItemToObject(e, "per_op", per ? cJSON_Duplicate(per, 1) : cJSON_CreateObject());
        cJSON_AddItemToArray(out, e);
    }
    free(idv);
    return rec;
}

void hetrun_usage_field(const cJSON *record, const cJSON *rank, const char *col, char *buf,
                        size_t len) {
    const cJSON *job = cJSON_GetObjectItem(record, "job");
    const cJSON *v = NULL;
    buf[0] = '\0';
    if (strcmp(col, "job") == 0)
        v = cJSON_GetObjectItem(job, "name");
    else if (strcmp(col, "job_id") == 0 || strcmp(col, "step_id") == 0 ||
             strcmp(col, "user") == 0 || strcmp(col, "account") == 0 ||
             strcmp(col, "spec_sha256") == 0)
        v = cJSON_GetObjectItem(job, col);
    else if (strcmp(col, "status") == 0)
        v = cJSON_GetObjectItem(record, "status");
    else
        v = cJSON_GetObjectItem(rank, col);
    if (cJSON_IsString(v))
        snprintf(buf, len, "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "yes" : "no");
    else if (cJSON_IsNumber(v))
        snprintf(buf, len, "%.10g", v->valuedouble);
}
