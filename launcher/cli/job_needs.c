/* Which ops a job needs (from each workload type's needs()) and whether each backend
 * supports them (op_supported, asked in a probe child). */
#include <stdlib.h>
#include <string.h>

#include "cli/job_needs.h"
#include "kernels/catalogue.h"
#include "loader/loader.h"
#include "loader/probe.h"
#include "workloads/workload.h"

static void add_need_fields(cJSON *o, const hetrun_op_need *n) {
    const hetrun_op_info *op = hetrun_op_info_of(n->kind);
    cJSON_AddStringToObject(o, "op", hetrun_op_name((hetrun_op_kind)n->kind));
    cJSON_AddStringToObject(o, "dtype", hetrun_dtype_name((hetrun_dtype)n->dtype));
    cJSON_AddStringToObject(o, "out_dtype", hetrun_dtype_name((hetrun_dtype)n->out_dtype));
    if (op && op->uses_act)
        cJSON_AddStringToObject(o, "act", hetrun_activation_name((hetrun_activation)n->act));
    else
        cJSON_AddNullToObject(o, "act");
}

/* The descriptor asked: the op table's first conformance shape with the needed dtype pair
 * and activation (op_supported must not depend on scalars; shapes are the table's). */
static hetrun_op_desc need_desc(const hetrun_op_need *n) {
    const hetrun_op_info *op = hetrun_op_info_of(n->kind);
    if (!op || op->ncases < 1) {
        hetrun_op_desc d = hetrun_op_desc_init((hetrun_op_kind)n->kind, (hetrun_dtype)n->dtype);
        d.out_dtype = n->out_dtype;
        return d;
    }
    return hetrun_op_case_desc((hetrun_op_kind)n->kind, &op->cases[0], (hetrun_dtype)n->dtype,
                               (hetrun_dtype)n->out_dtype, n->act);
}

/* Appends one probed module's entry; returns the count of needs it does not support. */
static int add_backend(const char *name, const char *path, const hetrun_op_needs *needs,
                       const hetrun_probe_result *rp, cJSON *arr) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "name", name);
    cJSON_AddStringToObject(b, "path", path);
    cJSON_AddStringToObject(b, "state", hetrun_probe_outcome_name(rp->outcome));
    if (rp->reason[0])
        cJSON_AddStringToObject(b, "reason", rp->reason);
    else
        cJSON_AddNullToObject(b, "reason");
    if (rp->table_read) {
        char abi[32];
        snprintf(abi, sizeof abi, "%u.%u", rp->abi_major, rp->abi_minor);
        cJSON_AddStringToObject(b, "abi", abi);
        cJSON_AddStringToObject(b, "version", rp->version);
    } else {
        cJSON_AddNullToObject(b, "abi");
        cJSON_AddNullToObject(b, "version");
    }
    int unsupported = 0;
    cJSON *ops = cJSON_AddArrayToObject(b, "ops");
    for (size_t i = 0; i < needs->count; i++) {
        cJSON *o = cJSON_CreateObject();
        add_need_fields(o, &needs->items[i]);
        /* No answer (module broken or without devices) counts as not supported. */
        int ok = rp->ops && rp->ops[i].status == HETRUN_OK;
        cJSON_AddBoolToObject(o, "supported", ok);
        if (rp->ops && !ok)
            cJSON_AddStringToObject(o, "reason", rp->ops[i].reason);
        else if (!ok)
            cJSON_AddStringToObject(o, "reason", rp->reason[0] ? rp->reason : "not asked");
        else
            cJSON_AddNullToObject(o, "reason");
        unsupported += !ok;
        cJSON_AddItemToArray(ops, o);
    }
    cJSON_AddBoolToObject(b, "supports_all", unsupported == 0);
    cJSON_AddItemToArray(arr, b);
    return unsupported;
}

/* Probes every FOUND module of `list` at once for the needs; returns the unsupported count,
 * or -1 when out of memory. */
static int probe_all(const hetrun_module_list *list, const hetrun_op_needs *needs,
                     const hetrun_op_desc *descs, cJSON *arr) {
    size_t n = list->count ? list->count : 1, k = 0;
    const char **paths = calloc(n, sizeof *paths);
    hetrun_probe_options *opts = calloc(n, sizeof *opts);
    hetrun_probe_result *res = calloc(n, sizeof *res);
    const hetrun_backend_module **mods = calloc(n, sizeof *mods);
    int unsupported = -1;
    if (paths && opts && res && mods) {
        for (size_t i = 0; i < list->count; i++)
            if (list->items[i].state == HETRUN_MODULE_FOUND) {
                mods[k] = &list->items[i];
                paths[k] = list->items[i].path;
                opts[k++] = (hetrun_probe_options){
                    .name = list->items[i].name, .ops = descs, .nops = (int)needs->count};
            }
        hetrun_probe_modules(k, paths, opts, res);
        unsupported = 0;
        for (size_t i = 0; i < k; i++) {
            unsupported += add_backend(mods[i]->name, mods[i]->path, needs, &res[i], arr);
            hetrun_probe_result_free(&res[i]);
        }
    }
    free(paths);
    free(opts);
    free(res);
    free(mods);
    return unsupported;
}

int hetrun_job_needs_json(const hetrun_job *job, hetrun_needs_probe probe, const char *backend,
                          cJSON *obj) {
    hetrun_op_needs needs = {0};
    cJSON *root = cJSON_AddObjectToObject(obj, "needs");
    cJSON *ops = root ? cJSON_AddArrayToObject(root, "ops") : NULL;
    cJSON *unknown = root ? cJSON_AddArrayToObject(root, "unknown_workloads") : NULL;
    cJSON *backends = root ? cJSON_AddArrayToObject(root, "backends") : NULL;
    if (!backends) return -1;
    for (size_t w = 0; w < job->workload_count; w++) {
        const hetrun_job_workload *jw = &job->workloads[w];
        const hetrun_workload_type *type = jw->type;
        if (!type->needs) {
            cJSON_AddItemToArray(unknown, cJSON_CreateString(jw->label));
            continue;
        }
        type->needs(jw->params, &needs);
    }
    /* Which workload points need each op (by label), so a failure can be traced. */
    for (size_t i = 0; i < needs.count; i++) {
        cJSON *o = cJSON_CreateObject();
        add_need_fields(o, &needs.items[i]);
        cJSON *by = cJSON_AddArrayToObject(o, "workloads");
        for (size_t w = 0; w < job->workload_count; w++) {
            const hetrun_job_workload *jw = &job->workloads[w];
            if (!jw->type->needs) continue;
            hetrun_op_needs one = {0};
            jw->type->needs(jw->params, &one);
            for (size_t k = 0; k < one.count; k++)
                if (memcmp(&one.items[k], &needs.items[i], sizeof one.items[k]) == 0) {
                    cJSON_AddItemToArray(by, cJSON_CreateString(jw->label));
                    break;
                }
            hetrun_op_needs_free(&one);
        }
        cJSON_AddItemToArray(ops, o);
    }
    int unsupported = 0, rc = needs.failed ? -1 : 0;
    hetrun_op_desc *descs = calloc(needs.count ? needs.count : 1, sizeof *descs);
    if (!descs) rc = -1;
    for (size_t i = 0; descs && i < needs.count; i++)
        descs[i] = need_desc(&needs.items[i]);
    if (rc == 0 && probe == HETRUN_NEEDS_ONE && backend) {
        char path[4096];
        if (hetrun_loader_find(backend, path, sizeof path) == 0) {
            hetrun_probe_options opt = {.name = backend, .ops = descs, .nops = (int)needs.count};
            hetrun_probe_result r;
            hetrun_probe_module(path, &opt, &r);
            unsupported = add_backend(backend, path, &needs, &r, backends);
            hetrun_probe_result_free(&r);
        } else {
            cJSON *b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "name", backend);
            cJSON_AddStringToObject(b, "state", "not found");
            cJSON_AddBoolToObject(b, "supports_all", needs.count == 0);
            cJSON_AddItemToArray(backends, b);
            unsupported = (int)needs.count;
        }
    } else if (rc == 0 && probe == HETRUN_NEEDS_ALL) {
        hetrun_module_list list;
        if (hetrun_loader_scan(&list) == 0) {
            unsupported = probe_all(&list, &needs, descs, backends);
            if (unsupported < 0) rc = -1;
            hetrun_module_list_free(&list);
        }
    }
    free(descs);
    hetrun_op_needs_free(&needs);
    return rc < 0 ? rc : unsupported;
}

static const char *js(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void need_text(const cJSON *o, char *out, size_t len) {
    const char *act = js(o, "act");
    snprintf(out, len, "%s %s->%s%s%s", js(o, "op"), js(o, "dtype"), js(o, "out_dtype"),
             *act ? " " : "", act);
}

void hetrun_job_needs_print(const cJSON *obj, FILE *out) {
    const cJSON *root = cJSON_GetObjectItemCaseSensitive(obj, "needs");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(root, "ops");
    const cJSON *backends = cJSON_GetObjectItemCaseSensitive(root, "backends");
    const cJSON *unknown = cJSON_GetObjectItemCaseSensitive(root, "unknown_workloads");
    if (!root) return;
    fprintf(out, "\nops this job needs (%d)%s\n", cJSON_GetArraySize(ops),
            cJSON_GetArraySize(backends) ? ", supported by:" : ":");
    fprintf(out, "  %-44s", "op dtype->out_dtype [act]");
    const cJSON *b, *o;
    cJSON_ArrayForEach(b, backends) fprintf(out, " %-12.12s", js(b, "name"));
    fprintf(out, "\n");
    int i = 0;
    cJSON_ArrayForEach(o, ops) {
        char text[128];
        need_text(o, text, sizeof text);
        fprintf(out, "  %-44s", text);
        cJSON_ArrayForEach(b, backends) {
            const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "ops"), i);
            fprintf(out, " %-12s",
                    a && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "supported")) ? "yes"
                                                                                        : "NO");
        }
        fprintf(out, "\n");
        i++;
    }
    cJSON_ArrayForEach(o, unknown)
        fprintf(out, "  (workload %s does not declare its ops)\n", o->valuestring);
    cJSON_ArrayForEach(b, backends) {
        const char *state = js(b, "state");
        if (strcmp(state, "loaded") != 0) {
            const char *why = js(b, "reason");
            fprintf(out, "  %s: %s\n", js(b, "name"), *why ? why : state);
            continue;
        }
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(b, "ops")) {
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "supported"))) continue;
            char text[128];
            need_text(o, text, sizeof text);
            fprintf(out, "  %s: %s not supported: %s\n", js(b, "name"), text, js(o, "reason"));
        }
    }
}
