/* The certificate: module, version, ABI, every device tested, every op x dtype with its worst
 * error and bound, every contract check, pass/fail. A table for people, JSON to publish. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "conform/conform.h"
#include "kernels/catalogue.h"
#include "util/safe_file.h"

static const char *status_name(int st) {
    return st == CONFORM_PASS ? "pass" : st == CONFORM_FAIL ? "fail" : "skip";
}

static const conform_record *module_record(const conform_results *res) {
    for (int i = 0; i < res->count; i++)
        if (res->items[i].type == CONFORM_REC_MODULE) return &res->items[i];
    return NULL;
}

static bool device_tested(const conform_results *res, int dev) {
    for (int i = 0; i < res->count; i++)
        if (res->items[i].device == dev &&
            (res->items[i].type == CONFORM_REC_OP || res->items[i].type == CONFORM_REC_CHECK))
            return true;
    return false;
}

static void print_checks(const conform_results *res, int dev) {
    for (int i = 0; i < res->count; i++) {
        const conform_record *r = &res->items[i];
        if (r->type != CONFORM_REC_CHECK || r->device != dev) continue;
        printf("  %-4s  %-22s %s\n", status_name(r->status), r->name, r->detail);
    }
}

void conform_print_table(const conform_opts *o, const conform_results *res, const char *verdict) {
    const conform_record *m = module_record(res);
    printf("\ncertificate: backend %s", o->backend);
    if (m)
        printf(" (%s), module %s version %s, ABI %d.%d (launcher %d.%d, hetrun %s)\n", m->detail,
               m->name, m->version, m->pass, m->fail, HETRUN_ABI_MAJOR, HETRUN_ABI_MINOR,
               HETRUN_VERSION);
    else
        printf(": the module did not load\n");
    print_checks(res, -1);
    for (int i = 0; i < res->count; i++) {
        const conform_record *d = &res->items[i];
        if (d->type != CONFORM_REC_DEVICE || !device_tested(res, d->device)) continue;
        printf("device %d: %s (%s, %s)\n", d->device, d->name, d->version, d->extra);
        int shown = 0;
        for (int j = 0; j < res->count; j++) {
            const conform_record *r = &res->items[j];
            if (r->type != CONFORM_REC_OP || r->device != d->device) continue;
            if (!shown++)
                printf("  %-4s  %-20s %-11s %5s %5s %5s  %-10s %-10s\n", "", "op", "dtype", "pass",
                       "fail", "unsup", "max error", "bound");
            char pair[32];
            snprintf(pair, sizeof pair, "%s->%s", hetrun_dtype_name((hetrun_dtype)r->dtype),
                     hetrun_dtype_name((hetrun_dtype)r->out_dtype));
            printf("  %-4s  %-20s %-11s %5d %5d %5d  ", status_name(r->status),
                   hetrun_op_name((hetrun_op_kind)r->op), pair, r->pass, r->fail, r->unsup);
            if (r->pass + r->fail)
                printf("%-10.3g %-10.3g\n", r->max_err, r->bound);
            else
                printf("%-10s %-10s\n", "-", "-");
        }
        print_checks(res, d->device);
    }
    printf("overall: %s\n", verdict);
}

static cJSON *check_json(const conform_record *r) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", r->name);
    cJSON_AddStringToObject(c, "status", status_name(r->status));
    cJSON_AddStringToObject(c, "detail", r->detail);
    return c;
}

static cJSON *certificate_json(const conform_opts *o, const conform_results *res,
                               const char *verdict) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "generator", "hetrun conform");
    cJSON_AddStringToObject(root, "hetrun_version", HETRUN_VERSION);
    char abi[32], host[256] = "", when[64];
    snprintf(abi, sizeof abi, "%d.%d", HETRUN_ABI_MAJOR, HETRUN_ABI_MINOR);
    cJSON_AddStringToObject(root, "launcher_abi", abi);
    gethostname(host, sizeof host - 1);
    cJSON_AddStringToObject(root, "host", host);
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    cJSON_AddStringToObject(root, "date", when);
    cJSON *mod = cJSON_AddObjectToObject(root, "module");
    cJSON_AddStringToObject(mod, "backend", o->backend);
    const conform_record *m = module_record(res);
    if (m) {
        snprintf(abi, sizeof abi, "%d.%d", m->pass, m->fail);
        cJSON_AddStringToObject(mod, "name", m->name);
        cJSON_AddStringToObject(mod, "path", m->detail);
        cJSON_AddStringToObject(mod, "version", m->version);
        cJSON_AddStringToObject(mod, "abi", abi);
        cJSON_AddNumberToObject(mod, "device_count", m->unsup);
    }
    cJSON *opts = cJSON_AddObjectToObject(root, "options");
    cJSON_AddBoolToObject(opts, "quick", o->quick);
    cJSON_AddStringToObject(opts, "op", o->only_op ? o->only_op : "all");
    cJSON_AddStringToObject(opts, "dtype", o->only_dtype ? o->only_dtype : "all");
    cJSON *groups = cJSON_AddArrayToObject(opts, "checks");
    for (int i = 0; conform_group_names[i]; i++)
        if (o->checks & (1u << i))
            cJSON_AddItemToArray(groups, cJSON_CreateString(conform_group_names[i]));
    cJSON *checks = cJSON_AddArrayToObject(root, "checks");
    for (int i = 0; i < res->count; i++)
        if (res->items[i].type == CONFORM_REC_CHECK && res->items[i].device < 0)
            cJSON_AddItemToArray(checks, check_json(&res->items[i]));
    cJSON *devices = cJSON_AddArrayToObject(root, "devices");
    for (int i = 0; i < res->count; i++) {
        const conform_record *d = &res->items[i];
        if (d->type != CONFORM_REC_DEVICE || !device_tested(res, d->device)) continue;
        cJSON *dj = cJSON_CreateObject();
        cJSON_AddNumberToObject(dj, "index", d->device);
        cJSON_AddStringToObject(dj, "name", d->name);
        cJSON_AddStringToObject(dj, "vendor", d->version);
        cJSON_AddStringToObject(dj, "driver_pci", d->extra);
        cJSON *ops = cJSON_AddArrayToObject(dj, "ops");
        cJSON *dchecks = cJSON_AddArrayToObject(dj, "checks");
        bool dev_ok = true;
        for (int j = 0; j < res->count; j++) {
            const conform_record *r = &res->items[j];
            if (r->device != d->device) continue;
            if (r->status == CONFORM_FAIL) dev_ok = false;
            if (r->type == CONFORM_REC_CHECK) cJSON_AddItemToArray(dchecks, check_json(r));
            if (r->type != CONFORM_REC_OP) continue;
            cJSON *oj = cJSON_CreateObject();
            cJSON_AddStringToObject(oj, "op", hetrun_op_name((hetrun_op_kind)r->op));
            cJSON_AddStringToObject(oj, "dtype", hetrun_dtype_name((hetrun_dtype)r->dtype));
            cJSON_AddStringToObject(oj, "out_dtype", hetrun_dtype_name((hetrun_dtype)r->out_dtype));
            cJSON_AddStringToObject(oj, "status", status_name(r->status));
            cJSON_AddNumberToObject(oj, "cases_passed", r->pass);
            cJSON_AddNumberToObject(oj, "cases_failed", r->fail);
            cJSON_AddNumberToObject(oj, "cases_unsupported", r->unsup);
            if (r->pass + r->fail) {
                /* +inf (a NaN or a write into padding) is not JSON: a string says it. */
                if (r->max_err <= 1e308)
                    cJSON_AddNumberToObject(oj, "max_error", r->max_err);
                else
                    cJSON_AddStringToObject(oj, "max_error", "inf");
                cJSON_AddNumberToObject(oj, "bound", r->bound);
            }
            cJSON_AddItemToArray(ops, oj);
        }
        cJSON_AddStringToObject(dj, "status", dev_ok ? "pass" : "fail");
        cJSON_AddItemToArray(devices, dj);
    }
    cJSON_AddStringToObject(root, "status", verdict);
    return root;
}

/* hetrun never writes over a file it did not create: an existing --out must be a certificate. */
static bool ours_or_new(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return true;
    if (!S_ISREG(st.st_mode)) return false;
    char *text = NULL;
    size_t len = 0;
    char err[256];
    if (hetrun_file_read_all(path, "certificate", 64u << 20, &text, &len, err, sizeof err) != 0)
        return false;
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "generator");
    bool ours = cJSON_IsString(g) && strcmp(g->valuestring, "hetrun conform") == 0;
    cJSON_Delete(j);
    return ours;
}

int conform_write_json(const conform_opts *o, const conform_results *res, const char *verdict,
                       const char *path) {
    cJSON *root = certificate_json(o, res, verdict);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    int rc = 0;
    char err[512];
    if (!text) {
        fprintf(stderr, "hetrun conform: out of memory printing the certificate\n");
        rc = -1;
    } else if (strcmp(path, "-") == 0) {
        printf("%s\n", text);
    } else if (!ours_or_new(path)) {
        fprintf(stderr,
                "hetrun conform: --out %s: exists and is not a hetrun conform certificate; "
                "not overwritten\n",
                path);
        rc = -1;
    } else if (hetrun_write_atomic(path, text, strlen(text), err, sizeof err) != 0) {
        fprintf(stderr, "hetrun conform: --out: %s\n", err);
        rc = -1;
    }
    free(text);
    return rc;
}
