/**
 * @file launcher/spec/job_schema.c
 * @brief The top-level job spec: its schema tables, `workloads:` with sweep expansion and
 *        the precision default, and hetrun_spec_read / hetrun_job_free.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "kernels/catalogue.h"
#include "spec.h"
#include "util/safe_file.h"

#define NO_RANGE 1.0, 0.0
#define I64_UNBOUNDED 9.3e18

/* ---- the tables ---- */

/* In the order of hetrun_progress_mode (util/progress.h). */
static const char *const progress_modes[] = {"auto", "always", "never", NULL};

static const hetrun_field job_meta_fields[] = {
    {"name", HETRUN_FIELD_STRING, 0, offsetof(hetrun_job, name), NO_RANGE, NULL, NULL, "job",
     "job name shown in logs and reports"},
    {"description", HETRUN_FIELD_STRING, 0, offsetof(hetrun_job, description), NO_RANGE, NULL, NULL,
     NULL, "free text copied into the report"},
    {"account", HETRUN_FIELD_STRING, 0, offsetof(hetrun_job, account), NO_RANGE, NULL, NULL, NULL,
     "account/project billed in the usage record when the scheduler names none"},
    {"tags", HETRUN_FIELD_STRING_LIST, 0, offsetof(hetrun_job, tags), NO_RANGE, NULL, NULL, NULL,
     "labels copied into the report (a string or a list)"},
    {"progress", HETRUN_FIELD_ENUM, 0, offsetof(hetrun_job, progress), NO_RANGE, progress_modes,
     NULL, "auto",
     "rank 0's progress line on stderr: auto (shown unless HETRUN_PROGRESS says), always or "
     "never; `hetrun run --progress` and HETRUN_PROGRESS come first"},
};
static const hetrun_schema job_meta_schema = {"job", sizeof(hetrun_job), job_meta_fields,
                                              sizeof job_meta_fields / sizeof job_meta_fields[0],
                                              NULL};

static const char *const placement_policies[] = {"closest", "round-robin", "pack", "map", NULL};
/* In the order of hetrun_checkpoint_signal and hetrun_on_signal. */
static const char *const checkpoint_signals[] = {"SIGUSR1", "SIGUSR2", "none", NULL};
static const char *const on_signal_actions[] = {"checkpoint-continue", "checkpoint-stop", NULL};

static void placement_check(const void *obj, const hetrun_check_ctx *ctx) {
    const hetrun_job_placement *p = obj;
    if (p->policy == HETRUN_PLACE_MAP && p->map.count == 0)
        hetrun_check_error(ctx, "map",
                           "policy 'map' needs a 'map' list (device index per local "
                           "rank, -1 for the CPU)");
    if (p->policy != HETRUN_PLACE_MAP && p->map.count > 0)
        hetrun_check_error(ctx, "map",
                           "'map' is only used with policy 'map' (policy is '%s'); remove one of "
                           "them",
                           placement_policies[p->policy]);
}

static const hetrun_field placement_fields[] = {
    {"policy", HETRUN_FIELD_ENUM, 0, offsetof(hetrun_job_placement, policy), NO_RANGE,
     placement_policies, NULL, "closest",
     "how local ranks are mapped to devices: closest, round-robin, pack or map"},
    {"ranks_per_device", HETRUN_FIELD_INT, 0, offsetof(hetrun_job_placement, ranks_per_device), 0,
     1024, NULL, NULL, "0", "ranks sharing one device; 0 spreads ranks evenly"},
    {"map", HETRUN_FIELD_INT_LIST, 0, offsetof(hetrun_job_placement, map), -1, 1023, NULL, NULL,
     NULL, "policy map: device index for each local rank (-1: CPU)"},
    {"bind", HETRUN_FIELD_BOOL, 0, offsetof(hetrun_job_placement, bind), NO_RANGE, NULL, NULL,
     "true", "bind each rank to the cores nearest its device"},
};
static const hetrun_schema placement_schema = {
    "placement", sizeof(hetrun_job_placement), placement_fields,
    sizeof placement_fields / sizeof placement_fields[0], placement_check};

static const hetrun_field precision_fields[] = {
    {"dtype", HETRUN_FIELD_DTYPE, 0, offsetof(hetrun_job, precision), NO_RANGE, NULL, NULL, "fp32",
     "dtype of every workload that does not give its own"},
    {"allow_tf32", HETRUN_FIELD_BOOL, 0, offsetof(hetrun_job, allow_tf32), NO_RANGE, NULL, NULL,
     "false", "fp32 GEMMs may use reduced-precision tensor cores (workloads that do not say)"},
};
static const hetrun_schema precision_schema = {"precision", sizeof(hetrun_job), precision_fields,
                                               sizeof precision_fields / sizeof precision_fields[0],
                                               NULL};

static const hetrun_field limits_fields[] = {
    {"timeout", HETRUN_FIELD_SECONDS, 0, offsetof(hetrun_job_limits, timeout_s), 0, 31 * 86400.0,
     NULL, NULL, "0", "wall-clock limit of the whole job (e.g. 10m); 0: none"},
    {"memory_per_device", HETRUN_FIELD_BYTES, 0, offsetof(hetrun_job_limits, memory_per_device), 0,
     I64_UNBOUNDED, NULL, NULL, "0", "device memory a rank may allocate (e.g. 16GiB); 0: none"},
    {"peer_timeout", HETRUN_FIELD_SECONDS, 0, offsetof(hetrun_job_limits, peer_timeout_s), 0,
     86400.0, NULL, NULL, "60s",
     "multi-rank jobs: a rank whose heartbeat is silent this long (stopped, node lost) ends the "
     "job, named; 0: off"},
    {"checkpoint_signal", HETRUN_FIELD_ENUM, 0, offsetof(hetrun_job_limits, checkpoint_signal),
     NO_RANGE, checkpoint_signals, NULL, "SIGUSR1",
     "signal that makes training write a checkpoint at the next step (Slurm: "
     "--signal=USR1@60): SIGUSR1, SIGUSR2 or none"},
    {"on_signal", HETRUN_FIELD_ENUM, 0, offsetof(hetrun_job_limits, on_signal), NO_RANGE,
     on_signal_actions, NULL, "checkpoint-continue",
     "after that checkpoint: checkpoint-continue, or checkpoint-stop (the job ends failed, "
     "saying so; resume later)"},
};
static const hetrun_schema limits_schema = {"limits", sizeof(hetrun_job_limits), limits_fields,
                                            sizeof limits_fields / sizeof limits_fields[0], NULL};

static void checkpoint_check(const void *obj, const hetrun_check_ctx *ctx) {
    const hetrun_job_checkpoint *c = obj;
    if (!c->dir && c->resume)
        hetrun_check_error(ctx, "resume", "'resume: true' needs 'dir' (where checkpoints live)");
    if (!c->dir && c->every > 0)
        hetrun_check_error(ctx, "every", "'every' needs 'dir' (where checkpoints are written)");
    if (c->dir && !c->dir[0]) hetrun_check_error(ctx, "dir", "'dir' must not be empty");
}

static const hetrun_field checkpoint_fields[] = {
    {"dir", HETRUN_FIELD_STRING, 0, offsetof(hetrun_job_checkpoint, dir), NO_RANGE, NULL, NULL,
     NULL, "directory for checkpoints; none when absent"},
    {"every", HETRUN_FIELD_INT, 0, offsetof(hetrun_job_checkpoint, every), 0, I64_UNBOUNDED, NULL,
     NULL, "0", "steps between checkpoints; 0: only at the end"},
    {"resume", HETRUN_FIELD_BOOL, 0, offsetof(hetrun_job_checkpoint, resume), NO_RANGE, NULL, NULL,
     "false", "resume from the newest valid checkpoint in dir"},
    {"keep", HETRUN_FIELD_INT, 0, offsetof(hetrun_job_checkpoint, keep), 1, 1000000, NULL, NULL,
     "3", "checkpoints kept (oldest deleted first)"},
};
static const hetrun_schema checkpoint_schema = {
    "checkpoint", sizeof(hetrun_job_checkpoint), checkpoint_fields,
    sizeof checkpoint_fields / sizeof checkpoint_fields[0], checkpoint_check};

static void report_check(const void *obj, const hetrun_check_ctx *ctx) {
    const hetrun_job_report *r = obj;
    if (r->formats.count > 2) {
        hetrun_check_error(ctx, "formats", "%zu formats listed; there are only json and csv",
                           r->formats.count);
        return;
    }
    bool seen[2] = {false, false};
    for (size_t i = 0; i < r->formats.count; i++) {
        const char *f = r->formats.items[i];
        int k = strcmp(f, "json") == 0 ? 0 : strcmp(f, "csv") == 0 ? 1 : -1;
        if (k < 0) {
            static const char *const fmts[] = {"json", "csv"};
            const char *dym = hetrun_did_you_mean(f, fmts, 2);
            hetrun_check_error(ctx, "formats",
                               "unknown report format '%.64s'; expected json, csv%s%s%s", f,
                               dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
        } else if (seen[k]) {
            hetrun_check_error(ctx, "formats", "report format '%s' is listed twice", f);
        } else {
            seen[k] = true;
        }
    }
    if (r->formats.count == 0)
        hetrun_check_error(ctx, "formats", "'formats' is empty: list json and/or csv");
    if (r->path && !r->path[0]) hetrun_check_error(ctx, "path", "'path' must not be empty");
}

static const hetrun_field report_fields[] = {
    {"path", HETRUN_FIELD_STRING, 0, offsetof(hetrun_job_report, path), NO_RANGE, NULL, NULL,
     "hetrun-report.json", "JSON report path (the CSV goes beside it, .csv)"},
    {"formats", HETRUN_FIELD_STRING_LIST, 0, offsetof(hetrun_job_report, formats), NO_RANGE, NULL,
     NULL, "[json, csv]", "report formats written: json, csv"},
};
static const hetrun_schema report_schema = {"report", sizeof(hetrun_job_report), report_fields,
                                            sizeof report_fields / sizeof report_fields[0],
                                            report_check};

static bool backend_name_ok(const char *s) {
    if (!*s || strlen(s) > 64) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}

/** More backends than any node has modules is a mistake (and keeps the checks linear). */
#define MAX_BACKENDS 32

static void top_check(const void *obj, const hetrun_check_ctx *ctx) {
    const hetrun_job *j = obj;
    if (j->backends.count > MAX_BACKENDS) {
        hetrun_check_error(ctx, "backend", "%zu backends listed; at most %d are allowed",
                           j->backends.count, MAX_BACKENDS);
        return;
    }
    for (size_t i = 0; i < j->backends.count; i++) {
        const char *b = j->backends.items[i];
        if (!backend_name_ok(b))
            hetrun_check_error(ctx, "backend",
                               "invalid backend name '%.64s': use a module name like cpu, cuda, "
                               "opencl (lower-case letters, digits, '_', '-') or auto",
                               b);
        else if (strcmp(b, "auto") == 0 && j->backends.count > 1)
            hetrun_check_error(ctx, "backend",
                               "'auto' cannot be combined with other backends in a preference "
                               "list");
        for (size_t k = 0; k < i; k++)
            if (strcmp(j->backends.items[k], b) == 0)
                hetrun_check_error(ctx, "backend", "backend '%.64s' is listed twice", b);
    }
    if (j->backends.count == 0)
        hetrun_check_error(ctx, "backend", "the backend list is empty: name one or use auto");
}

static const char *const backend_mixes[] = {"refuse", "allow", NULL};

static const hetrun_field top_fields[] = {
    {"version", HETRUN_FIELD_INT, HETRUN_FIELD_REQUIRED, offsetof(hetrun_job, version), 1, 1, NULL,
     NULL, NULL, "spec format version; must be 1"},
    {"job", HETRUN_FIELD_OBJECT, 0, 0, NO_RANGE, NULL, &job_meta_schema, NULL,
     "name, description and tags of the job"},
    {"backend", HETRUN_FIELD_STRING_LIST, 0, offsetof(hetrun_job, backends), NO_RANGE, NULL, NULL,
     "auto", "backend module name, auto, or an ordered preference list"},
    {"cpu_fallback", HETRUN_FIELD_BOOL, 0, offsetof(hetrun_job, cpu_fallback), NO_RANGE, NULL, NULL,
     "false", "run on the cpu backend when no listed backend has a device"},
    {"backend_mix", HETRUN_FIELD_ENUM, 0, offsetof(hetrun_job, backend_mix), NO_RANGE,
     backend_mixes, NULL, "refuse", "refuse or allow ranks running on different backends"},
    {"placement", HETRUN_FIELD_OBJECT, 0, offsetof(hetrun_job, placement), NO_RANGE, NULL,
     &placement_schema, NULL, "how ranks are mapped to devices and cores"},
    {"precision", HETRUN_FIELD_OBJECT, 0, 0, NO_RANGE, NULL, &precision_schema, NULL,
     "default dtype and TF32 policy for workloads"},
    {"seed", HETRUN_FIELD_INT, 0, offsetof(hetrun_job, seed), 0, I64_UNBOUNDED, NULL, NULL, "42",
     "seed of every random input (rank r uses seed + r)"},
    {"limits", HETRUN_FIELD_OBJECT, 0, offsetof(hetrun_job, limits), NO_RANGE, NULL, &limits_schema,
     NULL, "time and memory limits"},
    {"checkpoint", HETRUN_FIELD_OBJECT, 0, offsetof(hetrun_job, checkpoint), NO_RANGE, NULL,
     &checkpoint_schema, NULL, "checkpointing of training workloads"},
    {"report", HETRUN_FIELD_OBJECT, 0, offsetof(hetrun_job, report), NO_RANGE, NULL, &report_schema,
     NULL, "where and how the report is written"},
};
static const hetrun_schema top_schema = {"spec", sizeof(hetrun_job), top_fields,
                                         sizeof top_fields / sizeof top_fields[0], top_check};

static const hetrun_schema *const all_schemas[] = {
    &top_schema,    &job_meta_schema,   &placement_schema, &precision_schema,
    &limits_schema, &checkpoint_schema, &report_schema,    NULL};

const hetrun_schema *hetrun_spec_top_schema(void) {
    return &top_schema;
}

const hetrun_schema *const *hetrun_spec_schemas(void) {
    return all_schemas;
}

/* ---- workloads ---- */

/** A MAP node that borrows the keys/values of another (nothing owned but the arrays). */
typedef struct borrowed_map {
    hetrun_node node;
    hetrun_node **keys, **values;
} borrowed_map;

static void job_free_workloads(hetrun_job *job) {
    for (size_t i = 0; i < job->workload_count; i++) {
        hetrun_job_workload *w = &job->workloads[i];
        if (w->schema && w->params) hetrun_schema_free(w->schema, w->params);
        free(w->params);
        free(w->label);
        free(w->sweep_json);
    }
    free(job->workloads);
    job->workloads = NULL;
    job->workload_count = 0;
}

/** Appends the canonical text of field `f`'s value in `params` to the label and JSON. */
static void sweep_value(const hetrun_field *f, const void *params, char *txt, size_t len,
                        cJSON *obj) {
    const void *v = (const char *)params + f->offset;
    switch (f->type) {
    case HETRUN_FIELD_INT:
    case HETRUN_FIELD_BYTES:
        snprintf(txt, len, "%lld", (long long)*(const int64_t *)v);
        cJSON_AddNumberToObject(obj, f->key, (double)*(const int64_t *)v);
        break;
    case HETRUN_FIELD_FLOAT:
    case HETRUN_FIELD_SECONDS:
        snprintf(txt, len, "%g", *(const double *)v);
        cJSON_AddNumberToObject(obj, f->key, *(const double *)v);
        break;
    case HETRUN_FIELD_BOOL:
        snprintf(txt, len, "%s", *(const bool *)v ? "true" : "false");
        cJSON_AddBoolToObject(obj, f->key, *(const bool *)v);
        break;
    case HETRUN_FIELD_STRING:
        snprintf(txt, len, "%s", *(char *const *)v ? *(char *const *)v : "");
        cJSON_AddStringToObject(obj, f->key, txt);
        break;
    case HETRUN_FIELD_ENUM:
        snprintf(txt, len, "%s", f->choices[*(const int *)v]);
        cJSON_AddStringToObject(obj, f->key, txt);
        break;
    case HETRUN_FIELD_DTYPE:
        snprintf(txt, len, "%s", hetrun_dtype_name((hetrun_dtype) * (const int *)v));
        cJSON_AddStringToObject(obj, f->key, txt);
        break;
    default: snprintf(txt, len, "?"); break;
    }
}

typedef struct sweep_dim {
    size_t key_index; /* index into the params map */
    const hetrun_field *field;
    size_t count;
} sweep_dim;

/** Adds one workload point (params owned by the job afterwards). */
static int push_point(hetrun_job *job, size_t *cap, hetrun_job_workload *w) {
    if (job->workload_count == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        hetrun_job_workload *p = realloc(job->workloads, nc * sizeof *p);
        if (!p) return -1;
        job->workloads = p;
        *cap = nc;
    }
    job->workloads[job->workload_count++] = *w;
    return 0;
}

/** Reads one `workloads:` item: type, params (with precision default), sweep points. */
static int read_workload(hetrun_job *job, size_t *cap, size_t index, const hetrun_node *item,
                         const hetrun_workload_schema *types, const hetrun_node *precision_node,
                         const char *file, size_t *points, hetrun_diags *d) {
    /* Past the error limit the spec is invalid anyway: skip the did-you-mean work, which
     * would otherwise be paid once per item of a hostile 100,000-item list. */
    if (hetrun_diags_full(d)) return 1;
    char path[128];
    snprintf(path, sizeof path, "workloads[%zu]", index);
    const char *names[64];
    size_t nn = 0;
    char list[512] = "";
    size_t lo = 0;
    for (; types && types[nn].name && nn < 64; nn++) {
        names[nn] = types[nn].name;
        lo += (size_t)snprintf(list + lo, lo < sizeof list ? sizeof list - lo : 0, "%s%s",
                               nn ? ", " : "", types[nn].name);
    }
    if (item->kind != HETRUN_NODE_MAP || item->count != 1) {
        hetrun_diags_add(d, file, item->line, item->column, path,
                         "each workload is a mapping with exactly one key, its type (%s), e.g. "
                         "'- gemm: {m: 1024, n: 1024, k: 1024}'; got %s",
                         list,
                         item->kind == HETRUN_NODE_MAP
                             ? (item->count ? "several keys" : "an empty mapping")
                         : item->kind == HETRUN_NODE_SEQ ? "a sequence"
                                                         : "a single value");
        return 1;
    }
    const hetrun_node *kn = item->keys[0], *vn = item->values[0];
    if (kn->kind != HETRUN_NODE_SCALAR) return 1; /* reported by the reader */
    const hetrun_workload_schema *type = NULL;
    for (size_t i = 0; i < nn && !type; i++)
        if (strcmp(names[i], kn->scalar) == 0) type = &types[i];
    char wpath[256];
    snprintf(wpath, sizeof wpath, "%s.%.80s", path, kn->scalar);
    if (!type) {
        const char *dym = hetrun_did_you_mean(kn->scalar, names, nn);
        if (dym)
            hetrun_diags_add(d, file, kn->line, kn->column, wpath,
                             "unknown workload type '%.80s' (did you mean '%s'?)", kn->scalar, dym);
        else
            hetrun_diags_add(d, file, kn->line, kn->column, wpath,
                             "unknown workload type '%.80s'; known types: %s", kn->scalar, list);
        return 1;
    }
    const hetrun_schema *schema = type->schema;
    bool null_params =
        vn->kind == HETRUN_NODE_SCALAR && !vn->quoted &&
        (!vn->scalar[0] || strcmp(vn->scalar, "~") == 0 || strcmp(vn->scalar, "null") == 0);
    if (vn->kind != HETRUN_NODE_MAP && !null_params) {
        hetrun_diags_add(d, file, vn->line, vn->column, wpath,
                         "expected a mapping of %s parameters, got %s", type->name,
                         vn->kind == HETRUN_NODE_SEQ ? "a sequence" : "a single value");
        return 1;
    }

    /* The params map as written, plus the job's precision defaults for keys not given. */
    size_t given = vn->kind == HETRUN_NODE_MAP ? vn->count : 0;
    size_t extra = 2;
    hetrun_node **keys = calloc(given + extra, sizeof *keys);
    hetrun_node **vals = calloc(given + extra, sizeof *vals);
    hetrun_node inj_k[2], inj_v[2];
    if (!keys || !vals) {
        free(keys);
        free(vals);
        hetrun_diags_add(d, file, vn->line, vn->column, wpath, "out of memory");
        return 1;
    }
    for (size_t i = 0; i < given; i++) {
        keys[i] = vn->keys[i];
        vals[i] = vn->values[i];
    }
    hetrun_node map;
    memset(&map, 0, sizeof map);
    map.kind = HETRUN_NODE_MAP;
    map.line = vn->line;
    map.column = vn->column;
    map.keys = keys;
    map.values = vals;
    map.count = given;
    /* Location for injected values: the precision key when written, else the workload. */
    int inj_line = precision_node ? precision_node->line : kn->line;
    int inj_col = precision_node ? precision_node->column : kn->column;
    static const char *const inj_names[2] = {"dtype", "allow_tf32"};
    for (int i = 0; i < 2; i++) {
        const hetrun_field *f = hetrun_schema_field(schema, inj_names[i]);
        if (!f || hetrun_node_get(&map, inj_names[i])) continue;
        if ((i == 0 && f->type != HETRUN_FIELD_DTYPE) || (i == 1 && f->type != HETRUN_FIELD_BOOL))
            continue;
        memset(&inj_k[i], 0, sizeof inj_k[i]);
        memset(&inj_v[i], 0, sizeof inj_v[i]);
        inj_k[i].kind = inj_v[i].kind = HETRUN_NODE_SCALAR;
        inj_k[i].line = inj_v[i].line = inj_line;
        inj_k[i].column = inj_v[i].column = inj_col;
        inj_k[i].scalar = (char *)inj_names[i];
        inj_v[i].scalar = (char *)(i == 0 ? hetrun_dtype_name((hetrun_dtype)job->precision)
                                   : job->allow_tf32 ? "true"
                                                     : "false");
        keys[map.count] = &inj_k[i];
        vals[map.count] = &inj_v[i];
        map.count++;
    }

    int errs = 0;
    void *first = calloc(1, schema->size ? schema->size : 1);
    if (!first) {
        hetrun_diags_add(d, file, vn->line, vn->column, wpath, "out of memory");
        free(keys);
        free(vals);
        return 1;
    }
    errs = hetrun_schema_apply(schema, &map, file, wpath, first, d);
    hetrun_schema_free(schema, first);
    free(first);

    /* Sweep dimensions in the order the keys are written: the first varies slowest. */
    sweep_dim dims[64];
    size_t nd = 0;
    uint64_t total = 1;
    for (size_t i = 0; errs == 0 && i < given && nd < 64; i++) {
        const hetrun_field *f = hetrun_schema_field(schema, keys[i]->scalar);
        if (f && (f->flags & HETRUN_FIELD_SWEEP) && hetrun_field_is_scalar(f) &&
            vals[i]->kind == HETRUN_NODE_SEQ) {
            dims[nd].key_index = i;
            dims[nd].field = f;
            dims[nd].count = vals[i]->count;
            nd++;
            total *= vals[i]->count;
            if (total > HETRUN_SPEC_MAX_POINTS) break;
        }
    }
    if (errs == 0 && *points + total > HETRUN_SPEC_MAX_POINTS) {
        hetrun_diags_add(d, file, kn->line, kn->column, wpath,
                         "the sweeps expand the job to more than %d workload points (limit)",
                         HETRUN_SPEC_MAX_POINTS);
        errs++;
    }
    if (errs > 0) {
        free(keys);
        free(vals);
        return errs;
    }

    hetrun_node *const *orig_vals = vn->kind == HETRUN_NODE_MAP ? vn->values : NULL;
    for (uint64_t p = 0; p < total; p++) {
        /* Mixed radix, last dimension fastest. */
        uint64_t rest = p;
        for (size_t k = nd; k-- > 0;) {
            size_t idx = (size_t)(rest % dims[k].count);
            rest /= dims[k].count;
            vals[dims[k].key_index] = orig_vals[dims[k].key_index]->values[idx];
        }
        void *params = calloc(1, schema->size ? schema->size : 1);
        if (!params) {
            hetrun_diags_add(d, file, vn->line, vn->column, wpath, "out of memory");
            errs++;
            break;
        }
        int e = hetrun_schema_apply(schema, &map, file, wpath, params, d);
        if (e) { /* only cross-field checks can fail for one combination */
            hetrun_schema_free(schema, params);
            free(params);
            errs += e;
            continue;
        }
        hetrun_job_workload w;
        memset(&w, 0, sizeof w);
        w.type = type->type;
        w.schema = schema;
        w.params = params;
        w.index = index;
        w.point = (size_t)p;
        w.line = kn->line;
        w.column = kn->column;
        char label[1024];
        size_t lo2 = (size_t)snprintf(label, sizeof label, "%s", type->name);
        if (nd > 0) {
            cJSON *js = cJSON_CreateObject();
            for (size_t k = 0; k < nd; k++) {
                char txt[256];
                sweep_value(dims[k].field, params, txt, sizeof txt, js);
                if (lo2 < sizeof label)
                    lo2 += (size_t)snprintf(label + lo2, sizeof label - lo2, "%s%s=%s",
                                            k ? "," : "[", dims[k].field->key, txt);
            }
            if (lo2 < sizeof label) snprintf(label + lo2, sizeof label - lo2, "]");
            w.sweep_json = js ? cJSON_PrintUnformatted(js) : NULL;
            cJSON_Delete(js);
        }
        w.label = strdup(label);
        if (!w.label || (nd > 0 && !w.sweep_json) || push_point(job, cap, &w) != 0) {
            hetrun_schema_free(schema, params);
            free(params);
            free(w.label);
            free(w.sweep_json);
            hetrun_diags_add(d, file, vn->line, vn->column, wpath, "out of memory");
            errs++;
            break;
        }
    }
    *points += total;
    free(keys);
    free(vals);
    return errs;
}

/* ---- loading ---- */

void hetrun_job_free(hetrun_job *job) {
    if (!job) return;
    hetrun_schema_free(&top_schema, job);
    job_free_workloads(job);
    free(job->spec_path);
    free(job);
}

static void sha256_hex(const unsigned char *bytes, size_t len, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (!EVP_Digest(bytes, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) return;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int load_bytes(const char *name, const unsigned char *bytes, size_t len,
                      const hetrun_workload_schema *types, hetrun_job **out, hetrun_diags *d);

int hetrun_spec_read_bytes(const char *name, const unsigned char *bytes, size_t len,
                           const hetrun_workload_schema *types, hetrun_job **out, hetrun_diags *d) {
    if (out) *out = NULL;
    hetrun_diags local = {0};
    if (!d) d = &local; /* callers that only want a yes/no */
    int rc = load_bytes(name, bytes, len, types, out, d);
    if (d == &local) hetrun_diags_free(&local);
    return rc;
}

static int load_bytes(const char *name, const unsigned char *bytes, size_t len,
                      const hetrun_workload_schema *types, hetrun_job **out, hetrun_diags *d) {
    const char *file = name ? name : "<spec>";
    hetrun_node *root = hetrun_yaml_parse(file, bytes, len, d);
    if (!root) {
        hetrun_diags_sort(d);
        return d->count ? (int)d->count : 1;
    }
    int errs = 0;
    if (root->kind != HETRUN_NODE_MAP) {
        hetrun_diags_add(d, file, root->line, root->column, "",
                         "the spec must be a mapping of keys (version, job, backend, workloads, "
                         "...), got %s",
                         root->kind == HETRUN_NODE_SEQ ? "a sequence" : "a single value");
        hetrun_node_free(root);
        return 1;
    }
    hetrun_job *job = calloc(1, sizeof *job);
    if (!job) {
        hetrun_diags_add(d, file, 0, 0, "", "out of memory allocating the job");
        hetrun_node_free(root);
        return 1;
    }
    sha256_hex(bytes, len, job->spec_sha256);

    /* The top level without `workloads`, which is read below item by item. */
    const hetrun_node *wl = NULL, *wl_key = NULL;
    hetrun_node top;
    memset(&top, 0, sizeof top);
    top.kind = HETRUN_NODE_MAP;
    top.line = root->line;
    top.column = root->column;
    top.keys = calloc(root->count + 1, sizeof *top.keys);
    top.values = calloc(root->count + 1, sizeof *top.values);
    if (!top.keys || !top.values) {
        free(top.keys);
        free(top.values);
        free(job);
        hetrun_node_free(root);
        hetrun_diags_add(d, file, 0, 0, "", "out of memory");
        return 1;
    }
    for (size_t i = 0; i < root->count; i++) {
        const hetrun_node *k = root->keys[i];
        if (k && k->kind == HETRUN_NODE_SCALAR && strcmp(k->scalar, "workloads") == 0) {
            if (wl) {
                hetrun_diags_add(d, file, k->line, k->column, "workloads",
                                 "duplicate key 'workloads' (first given at line %d)",
                                 wl_key->line);
                errs++;
                continue;
            }
            wl = root->values[i];
            wl_key = k;
            continue;
        }
        /* `workloads` is not in the table, so offer it to typos here ("workload:"). */
        static const char *const wl_name[1] = {"workloads"};
        if (k && k->kind == HETRUN_NODE_SCALAR && !hetrun_diags_full(d) &&
            !hetrun_schema_field(&top_schema, k->scalar) &&
            hetrun_did_you_mean(k->scalar, wl_name, 1)) {
            hetrun_diags_add(d, file, k->line, k->column, k->scalar,
                             "unknown key '%.80s' (did you mean 'workloads'?)", k->scalar);
            errs++;
            continue;
        }
        top.keys[top.count] = root->keys[i];
        top.values[top.count] = root->values[i];
        top.count++;
    }
    errs += hetrun_schema_apply(&top_schema, &top, file, "", job, d);
    if (!wl) {
        hetrun_diags_add(d, file, root->line, root->column, "",
                         "missing required key 'workloads' (the list of work to run)");
        errs++;
    } else if (wl->kind != HETRUN_NODE_SEQ || wl->count == 0) {
        hetrun_diags_add(d, file, wl->line, wl->column, "workloads",
                         "expected a non-empty list of workloads (e.g. '- gemm: {m: 1024, n: "
                         "1024, k: 1024}'), got %s",
                         wl->kind == HETRUN_NODE_SEQ   ? "an empty list"
                         : wl->kind == HETRUN_NODE_MAP ? "a mapping"
                                                       : "a single value");
        errs++;
    } else {
        const hetrun_node *prec = hetrun_node_get(root, "precision");
        const hetrun_node *prec_dtype = prec ? hetrun_node_get(prec, "dtype") : NULL;
        size_t cap = 0, points = 0;
        for (size_t i = 0; i < wl->count; i++)
            errs += read_workload(job, &cap, i, wl->values[i], types,
                                  prec_dtype ? prec_dtype : prec, file, &points, d);
    }
    free(top.keys);
    free(top.values);
    hetrun_node_free(root);
    hetrun_diags_sort(d);
    if (errs > 0) {
        hetrun_job_free(job);
        return errs;
    }
    if (out)
        *out = job;
    else
        hetrun_job_free(job);
    return 0;
}

int hetrun_spec_read(const char *path, const hetrun_workload_schema *types, hetrun_job **out,
                     hetrun_diags *d) {
    if (out) *out = NULL;
    /* Regular files only: a FIFO or device as the spec must not block or stream forever. */
    char why[1024];
    uint64_t size = 0;
    int fd = hetrun_file_open_regular(path, "spec", UINT64_MAX, &size, why, sizeof why);
    FILE *fp = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!fp) {
        if (fd >= 0) close(fd);
        size_t skip = strlen("spec : ") + strlen(path); /* "spec PATH: cause" */
        const char *cause = strlen(why) > skip ? why + skip : why;
        hetrun_diags_add(d, path, 0, 0, "", "%s the spec: %s",
                         strncmp(cause, "cannot open: ", 13) == 0 ? "cannot open" : "cannot read",
                         strncmp(cause, "cannot open: ", 13) == 0 ? cause + 13 : cause);
        return -1;
    }
    /* Read at most one byte past the limit: enough to know the file is too big. */
    size_t cap = HETRUN_SPEC_MAX_BYTES + 1, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        fclose(fp);
        hetrun_diags_add(d, path, 0, 0, "", "out of memory reading the spec");
        return -1;
    }
    while (len < cap) {
        size_t n = fread(buf + len, 1, cap - len, fp);
        if (n == 0) break;
        len += n;
    }
    int rerr = ferror(fp);
    fclose(fp);
    if (rerr) {
        free(buf);
        hetrun_diags_add(d, path, 0, 0, "", "error reading the spec: %s", strerror(errno));
        return -1;
    }
    if (len > HETRUN_SPEC_MAX_BYTES) {
        free(buf);
        hetrun_diags_add(d, path, 0, 0, "", "file is larger than the limit of %u bytes (1 MiB)",
                         (unsigned)HETRUN_SPEC_MAX_BYTES);
        return 1;
    }
    hetrun_job *job = NULL;
    int rc = hetrun_spec_read_bytes(path, buf, len, types, &job, d);
    free(buf);
    if (rc == 0) {
        job->spec_path = strdup(path);
        if (!job->spec_path) {
            hetrun_job_free(job);
            hetrun_diags_add(d, path, 0, 0, "", "out of memory");
            return 1;
        }
        if (out)
            *out = job;
        else
            hetrun_job_free(job);
    }
    return rc;
}
