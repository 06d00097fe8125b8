/* MLP checkpoints for inference (checkpoint.h): named tensors (safetensors, written by the
 * train driver) or the former binary format, verified on read. */
#include "workloads/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cjson/cJSON.h>

#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "util/log.h"
#include "util/safe_file.h"
#include "workloads/nn_model.h"

static const char magic[8] = {'H', 'T', 'R', 'N', 'C', 'K', 'P', '1'};

void hetrun_ckpt_free(hetrun_ckpt *c) {
    free(c->mean);
    free(c->std);
    free(c->params);
    free(c->state);
    c->mean = c->std = c->params = c->state = NULL;
}

/* Whether all `n` floats are finite; the index of the first that is not in *bad. */
static int all_finite(const float *v, uint64_t n, uint64_t *bad) {
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            *bad = i;
            return 0;
        }
    return 1;
}

static int is_hex64(const char *s, int may_be_empty) {
    size_t n = strnlen(s, 65);
    if (n == 0) return may_be_empty;
    return n == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int is_ckpt_name(const char *n) {
    return strlen(n) > 17 && strncmp(n, "ckpt-", 5) == 0 && strspn(n + 5, "0123456789") == 12 &&
           (strcmp(n + 17, ".bin") == 0 || strcmp(n + 17, ".safetensors") == 0);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checkpoint file names in dir, sorted oldest first; *count set. NULL with count 0 if none. */
static char **list_ckpts(const char *dir, size_t *count) {
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_ckpt_name(e->d_name)) continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        names[*count] = strdup(e->d_name);
        if (names[*count]) (*count)++;
    }
    closedir(d);
    if (*count) qsort(names, *count, sizeof *names, cmp_names);
    return names;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int hetrun_ckpt_mkdirs(const char *dir, char *err, size_t err_len) {
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) {
        snprintf(err, err_len, "checkpoint dir \"%.200s\": empty or longer than %zu bytes", dir,
                 sizeof path - 1);
        return -1;
    }
    memcpy(path, dir, n + 1);
    /* Each parent in turn, then the folder itself: mkdir -p. */
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            snprintf(err, err_len, "checkpoint dir %s: mkdir %s: %s", dir, path, strerror(errno));
            return -1;
        }
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, err_len, "checkpoint dir %s: %s exists and is not a folder", dir, path);
            return -1;
        }
        *p = c;
        if (c == '\0') return 0;
    }
}

/* Every header field in range after the CRC matched: a valid CRC over crafted values must
 * be refused, never trusted (sizes, step, counts). */
static int check_header(const char *path, const hetrun_ckpt_header *h, uint64_t size, char *err,
                        size_t err_len) {
    const uint64_t fixed = sizeof magic + sizeof(hetrun_ckpt_header) + 4;
    if (h->version != 1 || h->shape.layers < 1 || h->shape.layers > HETRUN_MLP_MAX_LAYERS) {
        snprintf(err, err_len,
                 "checkpoint %s: version %u with %d layers; expected version 1, 1..%d layers", path,
                 h->version, h->shape.layers, HETRUN_MLP_MAX_LAYERS);
        return -1;
    }
    for (int l = 0; l <= h->shape.layers; l++)
        if (h->shape.dims[l] < 1 || h->shape.dims[l] > (1 << 24)) {
            snprintf(err, err_len, "checkpoint %s: header field dims[%d] = %lld out of 1..%d", path,
                     l, (long long)h->shape.dims[l], 1 << 24);
            return -1;
        }
    for (int l = h->shape.layers + 1; l <= HETRUN_MLP_MAX_LAYERS; l++)
        if (h->shape.dims[l] != 0) {
            snprintf(err, err_len, "checkpoint %s: header field dims[%d] = %lld beyond %d layers",
                     path, l, (long long)h->shape.dims[l], h->shape.layers);
            return -1;
        }
    const char *field = NULL;
    long long value = 0;
    if (h->shape.act < 0 || h->shape.act > 1)
        field = "shape.act", value = h->shape.act;
    else if (h->optimizer != HETRUN_OPT_SGD && h->optimizer != HETRUN_OPT_ADAMW)
        field = "optimizer", value = h->optimizer;
    else if (h->step < 0 || h->step > (1ll << 50))
        field = "step", value = h->step;
    else if (h->nranks < 1 || h->nranks > (1 << 24))
        field = "nranks", value = h->nranks;
    else if (h->param_count != hetrun_mlp_param_count(&h->shape))
        field = "param_count", value = (long long)h->param_count;
    else if (h->state_count != (h->optimizer == HETRUN_OPT_ADAMW ? 2 : 1) * h->param_count)
        field = "state_count", value = (long long)h->state_count;
    if (field) {
        snprintf(err, err_len, "checkpoint %s: header field %s = %lld is out of range", path, field,
                 value);
        return -1;
    }
    if (!is_hex64(h->config_sha256, 0) || !is_hex64(h->spec_sha256, 1)) {
        snprintf(err, err_len, "checkpoint %s: header hash fields are not 64 hex digits", path);
        return -1;
    }
    /* Counts are bounded above (dims <= 2^24, <= 16 layers), so this cannot overflow. */
    const uint64_t f = (uint64_t)h->shape.dims[0];
    if (size != fixed + (2 * f + h->param_count + h->state_count) * 4) {
        snprintf(err, err_len,
                 "checkpoint %s: %llu bytes do not match its header (%llu features, %llu params, "
                 "%llu state floats)",
                 path, (unsigned long long)size, (unsigned long long)f,
                 (unsigned long long)h->param_count, (unsigned long long)h->state_count);
        return -1;
    }
    return 0;
}

/* Copies 1-D or 2-D tensor `name` of the given shape into dst, checked finite. */
static int take(const hetrun_safetensors *f, const char *path, const char *name, int ndim,
                const int64_t *shape, float *dst, char *err, size_t err_len) {
    const hetrun_st_tensor *t = hetrun_safetensors_expect(f, name, ndim, shape, err, err_len);
    if (!t) return -1;
    if (t->type != HETRUN_F32 || !t->readable) {
        snprintf(err, err_len, "checkpoint %s: tensor %s is %s, not F32", path, name, t->dtype);
        return -1;
    }
    memcpy(dst, t->data, t->elements * 4);
    uint64_t bad = 0;
    if (!all_finite(dst, t->elements, &bad)) {
        snprintf(err, err_len, "checkpoint %s: tensor %s value %llu is %g, not finite", path, name,
                 (unsigned long long)bad, (double)dst[bad]);
        return -1;
    }
    return 0;
}

/* A named-tensor MLP checkpoint: shape from __metadata__ "model" ("mlp 64-32-10 relu"),
 * layers.<l>.weight (in x out), layers.<l>.bias, data.feature_mean / data.feature_std. */
static int read_named(const char *path, hetrun_ckpt *c, char *err, size_t err_len) {
    hetrun_safetensors f;
    if (hetrun_safetensors_open(path, &f, err, err_len) != 0) return -1;
    uint32_t crc = 0;
    int64_t stated = -1;
    hetrun_safetensors_crc(f.map, f.map_len, &crc, &stated);
    cJSON *h = NULL;
    int rc = -1;
    if (stated < 0 || (uint32_t)stated != crc) {
        snprintf(err, err_len, "checkpoint %s: CRC32 mismatch (stated %s, computed %08x)", path,
                 stated < 0 ? "none" : "in __metadata__", crc);
        goto out;
    }
    h = cJSON_ParseWithLength((const char *)f.map + 8, (size_t)f.header_len);
    const cJSON *md = cJSON_GetObjectItem(h, "__metadata__");
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItem(md, "model"));
    const char *step = cJSON_GetStringValue(cJSON_GetObjectItem(md, "step"));
    char dims[200], act[16];
    if (!model || !step || sscanf(model, "mlp %199s %15s", dims, act) != 2) {
        snprintf(err, err_len,
                 "checkpoint %s: not an MLP checkpoint (__metadata__ model \"%s\", step %s)", path,
                 model ? model : "", step ? step : "missing");
        goto out;
    }
    hetrun_ckpt_header *hd = &c->h;
    hd->version = 1, hd->step = atoll(step), hd->nranks = 1;
    for (char *tok = strtok(dims, "-"); tok; tok = strtok(NULL, "-")) {
        if (hd->shape.layers > HETRUN_MLP_MAX_LAYERS) break;
        hd->shape.dims[hd->shape.layers++] = atoll(tok);
    }
    hd->shape.layers--;
    hd->shape.act = -1;
    for (int i = 0; hetrun_mlp_activation_names[i]; i++)
        if (strcmp(act, hetrun_mlp_activation_names[i]) == 0) hd->shape.act = i;
    int bad_dim = hd->shape.layers < 1 || hd->shape.layers > HETRUN_MLP_MAX_LAYERS;
    for (int l = 0; !bad_dim && l <= hd->shape.layers; l++)
        bad_dim = hd->shape.dims[l] < 1 || hd->shape.dims[l] > (1 << 24);
    if (bad_dim || hd->shape.act < 0 || hd->step < 0) {
        snprintf(err, err_len,
                 "checkpoint %s: __metadata__ model \"%s\" or step %s is out of range", path, model,
                 step);
        goto out;
    }
    hd->param_count = hetrun_mlp_param_count(&hd->shape);
    const int64_t fdim = hd->shape.dims[0];
    c->mean = malloc((size_t)fdim * 4), c->std = malloc((size_t)fdim * 4);
    c->params = calloc(hd->param_count, 4);
    if (!c->mean || !c->std || !c->params) {
        snprintf(err, err_len, "checkpoint %s: out of memory", path);
        goto out;
    }
    if (take(&f, path, "data.feature_mean", 1, &fdim, c->mean, err, err_len) != 0 ||
        take(&f, path, "data.feature_std", 1, &fdim, c->std, err, err_len) != 0)
        goto out;
    uint64_t off = 0;
    for (int l = 0; l < hd->shape.layers; l++) {
        char name[64];
        const int64_t wshape[2] = {hd->shape.dims[l], hd->shape.dims[l + 1]};
        snprintf(name, sizeof name, "layers.%d.weight", l);
        if (take(&f, path, name, 2, wshape, c->params + off, err, err_len) != 0) goto out;
        off = hetrun_param_align(off + (uint64_t)(wshape[0] * wshape[1]));
        snprintf(name, sizeof name, "layers.%d.bias", l);
        if (take(&f, path, name, 1, &wshape[1], c->params + off, err, err_len) != 0) goto out;
        off = hetrun_param_align(off + (uint64_t)wshape[1]);
    }
    for (int64_t j = 0; j < fdim; j++)
        if (c->std[j] <= 0.0f) {
            snprintf(err, err_len, "checkpoint %s: feature std %lld is %g, not positive", path,
                     (long long)j, (double)c->std[j]);
            goto out;
        }
    rc = 0;
out:
    cJSON_Delete(h);
    hetrun_safetensors_close(&f);
    if (rc != 0) hetrun_ckpt_free(c);
    return rc;
}

int hetrun_ckpt_read(const char *path, hetrun_ckpt *c, char *err, size_t err_len) {
    memset(c, 0, sizeof *c);
    const size_t plen = strlen(path);
    if (plen > 12 && strcmp(path + plen - 12, ".safetensors") == 0)
        return read_named(path, c, err, err_len);
    char *buf = NULL;
    size_t size = 0;
    char why[1024];
    if (hetrun_file_read_all(path, "checkpoint", HETRUN_CKPT_MAX_BYTES, &buf, &size, why,
                             sizeof why) != 0) {
        snprintf(err, err_len, "%s", why);
        return -1;
    }
    int rc = -1;
    const size_t fixed = sizeof magic + sizeof(hetrun_ckpt_header) + 4;
    if (size < fixed) {
        snprintf(err, err_len, "checkpoint %s: %zu bytes, shorter than the %zu-byte header", path,
                 size, fixed);
        goto out;
    }
    if (memcmp(buf, magic, sizeof magic) != 0) {
        snprintf(err, err_len, "checkpoint %s: bad magic (not a hetrun checkpoint v1)", path);
        goto out;
    }
    uint32_t stored;
    memcpy(&stored, buf + size - 4, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < size - 4;) {
        uInt chunk = size - 4 - off > (1u << 30) ? (1u << 30) : (uInt)(size - 4 - off);
        crc = crc32(crc, (const Bytef *)buf + off, chunk);
        off += chunk;
    }
    if (stored != (uint32_t)crc) {
        snprintf(err, err_len,
                 "checkpoint %s: CRC32 mismatch (stored %08x, computed %08x): the file is corrupt",
                 path, stored, (uint32_t)crc);
        goto out;
    }
    memcpy(&c->h, buf + sizeof magic, sizeof c->h);
    const hetrun_ckpt_header *h = &c->h;
    if (check_header(path, h, size, err, err_len) != 0) goto out;
    const uint64_t f = (uint64_t)h->shape.dims[0];
    c->mean = malloc(f * 4), c->std = malloc(f * 4);
    c->params = malloc(h->param_count * 4);
    c->state = malloc(h->state_count * 4);
    if (!c->mean || !c->std || !c->params || !c->state) {
        snprintf(err, err_len, "checkpoint %s: out of memory", path);
        goto out;
    }
    const char *p = buf + sizeof magic + sizeof c->h;
    memcpy(c->mean, p, f * 4), p += f * 4;
    memcpy(c->std, p, f * 4), p += f * 4;
    memcpy(c->params, p, h->param_count * 4), p += h->param_count * 4;
    memcpy(c->state, p, h->state_count * 4);
    /* A run that diverged must not come back as a valid starting point. */
    static const char *const parts[] = {"feature mean", "feature std", "weights",
                                        "optimizer state"};
    const float *arrays[] = {c->mean, c->std, c->params, c->state};
    const uint64_t counts[] = {f, f, h->param_count, h->state_count};
    for (int i = 0; i < 4; i++) {
        uint64_t bad = 0;
        if (!all_finite(arrays[i], counts[i], &bad)) {
            snprintf(err, err_len, "checkpoint %s: %s value %llu is %g, not finite", path, parts[i],
                     (unsigned long long)bad, (double)arrays[i][bad]);
            goto out;
        }
    }
    for (uint64_t j = 0; j < f; j++)
        if (c->std[j] <= 0.0f) {
            snprintf(err, err_len, "checkpoint %s: feature std %llu is %g, not positive", path,
                     (unsigned long long)j, (double)c->std[j]);
            goto out;
        }
    rc = 0;
out:
    if (rc != 0) hetrun_ckpt_free(c);
    free(buf);
    return rc;
}

int hetrun_ckpt_load_newest(const char *dir, hetrun_ckpt *c, char *path_out, size_t path_len,
                            char *err, size_t err_len) {
    size_t n = 0;
    char **names = list_ckpts(dir, &n);
    int rc = 0;
    char first_err[1024] = "";
    for (size_t i = n; i-- > 0;) {
        char path[4096], why[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (hetrun_ckpt_read(path, c, why, sizeof why) == 0) {
            snprintf(path_out, path_len, "%s", path);
            rc = 1;
            break;
        }
        HETRUN_WARN("%s; trying an older checkpoint", why);
        if (!first_err[0]) snprintf(first_err, sizeof first_err, "%s", why);
        rc = -1;
    }
    if (rc == -1)
        snprintf(err, err_len, "no valid checkpoint in %s (%zu refused; newest: %s)", dir, n,
                 first_err);
    free_names(names, n);
    return rc;
}
