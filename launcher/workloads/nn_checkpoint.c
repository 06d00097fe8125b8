/* Named-tensor checkpoints as safetensors (nn_checkpoint.h). */
#include "workloads/nn_checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "util/log.h"
#include "util/safe_file.h"
#include "workloads/checkpoint.h"

#define PREFIX "ckpt-"
#define SUFFIX ".safetensors"

/* PyTorch's names of the optimizer state, by slot count (SGD: 1, AdamW: 2). */
static const char *prefix_of(int slots, int k) {
    static const char *const adamw[2] = {"optimizer.exp_avg.", "optimizer.exp_avg_sq."};
    return slots == 1 ? "optimizer.momentum_buffer." : adamw[k];
}

/* Checkpoint file names in dir, sorted ascending (the zero-padded step sorts). */
static int list(const char *dir, char ***names, int *n) {
    *names = NULL, *n = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int cap = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, PREFIX, strlen(PREFIX)) != 0 || len <= strlen(SUFFIX) ||
            strcmp(e->d_name + len - strlen(SUFFIX), SUFFIX) != 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(*names, (size_t)cap * sizeof *nn);
            if (!nn) break;
            *names = nn;
        }
        (*names)[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    for (int i = 1; i < *n; i++)
        for (int j = i; j > 0 && strcmp((*names)[j - 1], (*names)[j]) > 0; j--) {
            char *t = (*names)[j];
            (*names)[j] = (*names)[j - 1], (*names)[j - 1] = t;
        }
    return 0;
}

static void free_list(char **names, int n) {
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int hetrun_nn_ckpt_write(const char *dir, const hetrun_param_tensor *tensors, int count,
                         uint64_t param_count, const float *params, const float *state,
                         const hetrun_nn_ckpt_meta *meta, int64_t keep, char *err, size_t err_len) {
    if (hetrun_ckpt_mkdirs(dir, err, err_len) != 0) return -1;
    hetrun_clean_stale_temps(dir, PREFIX); /* of writers killed mid-write */
    const int slots = meta->state_slots, planes = 1 + slots;
    const size_t total = (size_t)count * (size_t)planes + (size_t)meta->extra_count;
    hetrun_st_out *out = calloc(total, sizeof *out);
    char *names = calloc((size_t)count * (size_t)(slots ? slots : 1), HETRUN_TENSOR_NAME_MAX + 32);
    if (!out || !names) {
        free(out), free(names);
        snprintf(err, err_len, "checkpoint: out of host memory");
        return -1;
    }
    for (int k = 0; k < planes; k++)
        for (int i = 0; i < count; i++) {
            const hetrun_param_tensor *t = &tensors[i];
            hetrun_st_out *o = &out[k * count + i];
            if (k == 0) {
                o->name = t->name;
                o->data = params + t->offset;
            } else {
                char *nm = names + (size_t)((k - 1) * count + i) * (HETRUN_TENSOR_NAME_MAX + 32);
                snprintf(nm, HETRUN_TENSOR_NAME_MAX + 32, "%s%s", prefix_of(slots, k - 1), t->name);
                o->name = nm;
                o->data = state + (uint64_t)(k - 1) * param_count + t->offset;
            }
            o->dtype = HETRUN_F32, o->ndim = t->ndim;
            memcpy(o->shape, t->shape, sizeof o->shape);
        }
    for (int i = 0; i < meta->extra_count; i++) {
        hetrun_st_out *o = &out[(size_t)count * (size_t)planes + (size_t)i];
        o->name = meta->extra[i].name, o->data = meta->extra[i].data;
        o->dtype = HETRUN_F32, o->ndim = 1, o->shape[0] = meta->extra[i].count;
    }
    char step[32], vocab[32], path[4096];
    snprintf(step, sizeof step, "%lld", (long long)meta->step);
    snprintf(vocab, sizeof vocab, "%lld", (long long)meta->vocab);
    const char *kv[6][2] = {{"format", "hetrun-nn-ckpt-1"},
                            {"step", step},
                            {"config_sha256", meta->config_sha256},
                            {"model", meta->model}};
    size_t nkv = 4;
    if (meta->vocab > 0) kv[nkv][0] = "vocab", kv[nkv++][1] = vocab;
    if (meta->loss_scaler[0]) kv[nkv][0] = "loss_scaler", kv[nkv++][1] = meta->loss_scaler;
    snprintf(path, sizeof path, "%s/" PREFIX "%012lld" SUFFIX, dir, (long long)meta->step);
    int rc =
        hetrun_safetensors_write(path, out, total, (const char *const(*)[2])kv, nkv, err, err_len);
    free(out), free(names);
    if (rc != 0) return -1;
    char **files;
    int n;
    if (keep > 0 && list(dir, &files, &n) == 0) {
        for (int i = 0; i + keep < n; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            if (unlink(path) != 0)
                HETRUN_WARN("checkpoint: cannot delete %s: %s", path, strerror(errno));
        }
        free_list(files, n);
    }
    return 0;
}

static const char *meta_str(const cJSON *md, const char *k) {
    return cJSON_GetStringValue(cJSON_GetObjectItem(md, k));
}

/* Reads one file into params/state. Returns 0, -1 (skip: corrupt), -2 (refuse: mismatch). */
static int load_one(const char *path, const hetrun_param_tensor *tensors, int count,
                    uint64_t param_count, float *params, float *state, hetrun_nn_ckpt_meta *meta,
                    char *err, size_t err_len) {
    hetrun_safetensors f;
    if (hetrun_safetensors_open(path, &f, err, err_len) != 0) return -1;
    uint32_t crc = 0;
    int64_t stated = -1;
    hetrun_safetensors_crc(f.map, f.map_len, &crc, &stated);
    if (stated < 0 || (uint32_t)stated != crc) {
        snprintf(err, err_len, "checkpoint %s: CRC32 %08x of the data does not match the %s%s",
                 path, crc, stated < 0 ? "header (no crc32 in __metadata__)" : "header's ",
                 stated < 0 ? "" : "crc32");
        hetrun_safetensors_close(&f);
        return -1;
    }
    cJSON *h = cJSON_ParseWithLength((const char *)f.map + 8, (size_t)f.header_len);
    const cJSON *md = cJSON_GetObjectItem(h, "__metadata__");
    const char *step = meta_str(md, "step"), *hash = meta_str(md, "config_sha256");
    const char *model = meta_str(md, "model"), *vocab = meta_str(md, "vocab");
    const int slots = meta->state_slots;
    int rc = 0;
    char *end = NULL;
    const long long stepv = step ? strtoll(step, &end, 10) : -1;
    if (!step || !hash || !model || (meta->vocab > 0 && !vocab)) {
        snprintf(err, err_len,
                 "checkpoint %s: __metadata__ lacks step, config_sha256, model or vocab", path);
        rc = -1;
    } else if (!end || *end || stepv < 0 || stepv > (1ll << 50)) {
        snprintf(err, err_len, "checkpoint %s: __metadata__ step \"%s\" is out of range", path,
                 step);
        rc = -1;
    } else if (meta->vocab > 0 && atoll(vocab) != meta->vocab) {
        snprintf(err, err_len,
                 "checkpoint %s: vocabulary %s does not match the job's gpt.vocab %lld", path,
                 vocab, (long long)meta->vocab);
        rc = -2;
    } else if (strcmp(model, meta->model) != 0) {
        snprintf(err, err_len, "checkpoint %s: model \"%s\" does not match the job's \"%s\"", path,
                 model, meta->model);
        rc = -2;
    }
    for (int k = 0; rc == 0 && k < 1 + slots; k++)
        for (int i = 0; rc == 0 && i < count; i++) {
            const hetrun_param_tensor *t = &tensors[i];
            char name[HETRUN_TENSOR_NAME_MAX + 32];
            snprintf(name, sizeof name, "%s%s", k ? prefix_of(slots, k - 1) : "", t->name);
            const hetrun_st_tensor *st =
                hetrun_safetensors_expect(&f, name, t->ndim, t->shape, err, err_len);
            if (!st || st->type != HETRUN_F32) {
                if (st) snprintf(err, err_len, "checkpoint %s: tensor %s is not F32", path, name);
                rc = -2;
                break;
            }
            float *dst = (k ? state + (uint64_t)(k - 1) * param_count : params) + t->offset;
            memcpy(dst, st->data, t->count * 4);
            /* A run that diverged must not come back as a valid starting point. */
            for (uint64_t j = 0; j < t->count; j++)
                if (!isfinite(dst[j])) {
                    snprintf(err, err_len, "checkpoint %s: tensor %s value %llu is %g, not finite",
                             path, name, (unsigned long long)j, (double)dst[j]);
                    rc = -1;
                    break;
                }
        }
    if (rc == 0) {
        meta->step = stepv;
        snprintf(meta->config_sha256, sizeof meta->config_sha256, "%s", hash);
        const char *scaler = meta_str(md, "loss_scaler");
        snprintf(meta->loss_scaler, sizeof meta->loss_scaler, "%s", scaler ? scaler : "");
    }
    cJSON_Delete(h);
    hetrun_safetensors_close(&f);
    return rc;
}

/* Name of a checkpoint of the MLP's former binary format in dir, or "" (names only). */
static void former_format(const char *dir, char *name, size_t len) {
    name[0] = '\0';
    DIR *d = opendir(dir);
    if (!d) return;
    const struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, PREFIX, strlen(PREFIX)) == 0 && n > 4 &&
            strcmp(e->d_name + n - 4, ".bin") == 0 && strcmp(e->d_name, name) > 0)
            snprintf(name, len, "%s", e->d_name);
    }
    closedir(d);
}

int hetrun_nn_ckpt_load_newest(const char *dir, const hetrun_param_tensor *tensors, int count,
                               uint64_t param_count, float *params, float *state,
                               hetrun_nn_ckpt_meta *meta, char *path_out, size_t path_len,
                               char *err, size_t err_len) {
    char **files;
    int n;
    if (list(dir, &files, &n) != 0) {
        snprintf(err, err_len, "checkpoint dir %s: cannot read: %s", dir, strerror(errno));
        return -1;
    }
    char old[256];
    if (n == 0 && (former_format(dir, old, sizeof old), old[0])) {
        snprintf(err, err_len,
                 "checkpoint %s/%s is in the MLP's former binary format (hetrun checkpoint v1); "
                 "training resumes only from named-tensor checkpoints (ckpt-*.safetensors): "
                 "start without checkpoint.resume or from another checkpoint.dir (infer still "
                 "reads the file)",
                 dir, old);
        free_list(files, n);
        return -1;
    }
    int rc = 0;
    char first_err[1024] = "";
    for (int i = n - 1; i >= 0; i--) {
        snprintf(path_out, path_len, "%s/%s", dir, files[i]);
        int r = load_one(path_out, tensors, count, param_count, params, state, meta, err, err_len);
        if (r == 0) {
            rc = 1;
            break;
        }
        if (r == -2) {
            rc = -1;
            break;
        }
        HETRUN_WARN("%s; trying an older checkpoint", err);
        if (!first_err[0]) snprintf(first_err, sizeof first_err, "%s", err);
        rc = -1;
    }
    if (rc == -1 && first_err[0] && !strstr(err, "does not match the job"))
        snprintf(err, err_len, "every checkpoint in %s is invalid; newest: %s", dir, first_err);
    free_list(files, n);
    return rc;
}
