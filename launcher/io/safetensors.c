/* safetensors reader (format and checks in safetensors.h). */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/half.h"

/* Every dtype the format defines with a whole-byte size, so offsets of tensors hetrun does
 * not read (BERT's I64 position_ids) are still checked. */
static const struct {
    const char *name;
    unsigned size;
    int readable;
    hetrun_dtype type;
} dtypes[] = {
    {"F32", 4, 1, HETRUN_F32},  {"F16", 2, 1, HETRUN_F16},     {"BF16", 2, 1, HETRUN_BF16},
    {"F64", 8, 0, HETRUN_F64},  {"I64", 8, 0, HETRUN_F32},     {"U64", 8, 0, HETRUN_F32},
    {"I32", 4, 0, HETRUN_F32},  {"U32", 4, 0, HETRUN_F32},     {"I16", 2, 0, HETRUN_F32},
    {"U16", 2, 0, HETRUN_F32},  {"I8", 1, 0, HETRUN_F32},      {"U8", 1, 0, HETRUN_F32},
    {"BOOL", 1, 0, HETRUN_F32}, {"F8_E4M3", 1, 0, HETRUN_F32}, {"F8_E5M2", 1, 0, HETRUN_F32},
};

/* JSON numbers are doubles: integers are exact up to 2^53, far beyond any real file. */
static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static void shape_str(const hetrun_st_tensor *t, char *buf, size_t len) {
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < t->ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

/* Fills t (not its name) from one header entry; msg gets the cause on error. */
static int parse_entry(const cJSON *e, hetrun_st_tensor *t, char *msg, size_t len) {
    if (!cJSON_IsObject(e)) return snprintf(msg, len, "entry is not an object"), -1;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return snprintf(msg, len, "\"dtype\" missing or not a string"), -1;
    if (!cJSON_IsArray(sh)) return snprintf(msg, len, "\"shape\" missing or not an array"), -1;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return snprintf(msg, len, "\"data_offsets\" missing or not [begin, end]"), -1;
    unsigned size = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dt->valuestring, dtypes[i].name) == 0) {
            size = dtypes[i].size;
            t->readable = dtypes[i].readable;
            t->type = dtypes[i].type;
            snprintf(t->dtype, sizeof t->dtype, "%s", dtypes[i].name);
        }
    if (!size) return snprintf(msg, len, "unknown dtype \"%.32s\"", dt->valuestring), -1;
    t->ndim = cJSON_GetArraySize(sh);
    if (t->ndim > HETRUN_SAFETENSORS_MAX_DIMS)
        return snprintf(msg, len, "%d dimensions, at most %d", t->ndim,
                        HETRUN_SAFETENSORS_MAX_DIMS),
               -1;
    uint64_t n = 1;
    int i = 0;
    for (const cJSON *d = sh->child; d; d = d->next, i++) {
        uint64_t v;
        if (json_u64(d, &v) != 0)
            return snprintf(msg, len, "shape[%d] is not a non-negative integer", i), -1;
        t->shape[i] = (int64_t)v;
        if (__builtin_mul_overflow(n, v, &n))
            return snprintf(msg, len, "shape product overflows 64 bits at shape[%d]", i), -1;
    }
    t->elements = n;
    uint64_t bytes;
    if (__builtin_mul_overflow(n, (uint64_t)size, &bytes))
        return snprintf(msg, len, "%llu elements of %s overflow 64 bits of bytes",
                        (unsigned long long)n, t->dtype),
               -1;
    if (json_u64(cJSON_GetArrayItem(off, 0), &t->begin) != 0 ||
        json_u64(cJSON_GetArrayItem(off, 1), &t->end) != 0)
        return snprintf(msg, len, "data_offsets are not non-negative integers"), -1;
    if (t->end < t->begin)
        return snprintf(msg, len, "data_offsets [%llu, %llu] end before they begin",
                        (unsigned long long)t->begin, (unsigned long long)t->end),
               -1;
    if (t->end - t->begin != bytes) {
        char s[160];
        shape_str(t, s, sizeof s);
        return snprintf(msg, len, "data_offsets [%llu, %llu] hold %llu bytes, %s %s needs %llu",
                        (unsigned long long)t->begin, (unsigned long long)t->end,
                        (unsigned long long)(t->end - t->begin), t->dtype, s,
                        (unsigned long long)bytes),
               -1;
    }
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const hetrun_st_tensor *)a)->name, ((const hetrun_st_tensor *)b)->name);
}

static int cmp_range(const void *a, const void *b) {
    const hetrun_st_tensor *x = *(const hetrun_st_tensor *const *)a;
    const hetrun_st_tensor *y = *(const hetrun_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The byte ranges must tile [0, data_len) exactly, as the format requires. */
static int check_tiling(hetrun_safetensors *f, char *err, size_t err_len) {
    if (f->count == 0) {
        if (f->data_len == 0) return 0;
        snprintf(err, err_len, "%s: no tensors, but %llu data bytes follow the header", f->path,
                 (unsigned long long)f->data_len);
        return -1;
    }
    const hetrun_st_tensor **order = malloc(f->count * sizeof *order);
    if (!order) return snprintf(err, err_len, "%s: out of memory", f->path), -1;
    for (size_t i = 0; i < f->count; i++)
        order[i] = &f->tensors[i];
    qsort(order, f->count, sizeof *order, cmp_range);
    int rc = 0;
    uint64_t at = 0;
    const hetrun_st_tensor *prev = NULL;
    for (size_t i = 0; i < f->count && rc == 0; i++) {
        const hetrun_st_tensor *t = order[i];
        if (t->end > f->data_len) {
            snprintf(err, err_len,
                     "%s: tensor '%s': data_offsets [%llu, %llu] run past the data section "
                     "(%llu bytes)",
                     f->path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                     (unsigned long long)f->data_len);
            rc = -1;
        } else if (t->begin < at) {
            snprintf(err, err_len,
                     "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' [%llu, %llu]",
                     f->path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                     prev->name, (unsigned long long)prev->begin, (unsigned long long)prev->end);
            rc = -1;
        } else if (t->begin > at) {
            snprintf(err, err_len, "%s: tensor '%s': %llu unused bytes before it (offset %llu)",
                     f->path, t->name, (unsigned long long)(t->begin - at), (unsigned long long)at);
            rc = -1;
        }
        at = t->end;
        prev = t;
    }
    if (rc == 0 && at != f->data_len) {
        snprintf(err, err_len,
                 "%s: tensors cover %llu bytes, but %llu data bytes follow the header (last "
                 "tensor '%s')",
                 f->path, (unsigned long long)at, (unsigned long long)f->data_len, prev->name);
        rc = -1;
    }
    free(order);
    return rc;
}

/* __metadata__ is an object of strings (the format's only free-form part). */
static int check_metadata(const cJSON *m) {
    if (!cJSON_IsObject(m)) return -1;
    for (const cJSON *e = m->child; e; e = e->next)
        if (!cJSON_IsString(e)) return -1;
    return 0;
}

/* Builds the tensor table from the parsed header. */
static int read_header(hetrun_safetensors *f, const cJSON *root, char *err, size_t err_len) {
    size_t n = 0, name_bytes = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (check_metadata(e) != 0) {
                snprintf(err, err_len, "%s: __metadata__ is not an object of strings", f->path);
                return -1;
            }
            continue;
        }
        n++;
        name_bytes += strlen(e->string) + 1;
    }
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    f->names = malloc(name_bytes ? name_bytes : 1);
    if (!f->tensors || !f->names) return snprintf(err, err_len, "%s: out of memory", f->path), -1;
    char *np = f->names;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        hetrun_st_tensor *t = &f->tensors[f->count++];
        size_t l = strlen(e->string) + 1;
        memcpy(np, e->string, l);
        t->name = np;
        np += l;
        char msg[384];
        if (parse_entry(e, t, msg, sizeof msg) != 0) {
            snprintf(err, err_len, "%s: tensor '%s': %s", f->path, t->name, msg);
            return -1;
        }
    }
    qsort(f->tensors, f->count, sizeof *f->tensors, cmp_name);
    for (size_t i = 1; i < f->count; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            snprintf(err, err_len, "%s: tensor '%s' is named twice in the header", f->path,
                     f->tensors[i].name);
            return -1;
        }
    if (check_tiling(f, err, err_len) != 0) return -1;
    const uint8_t *data = (const uint8_t *)f->map + 8 + f->header_len;
    for (size_t i = 0; i < f->count; i++)
        f->tensors[i].data = data + f->tensors[i].begin;
    return 0;
}

/* Maps the file and checks the header length. */
static int map_file(hetrun_safetensors *f, char *err, size_t err_len) {
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return snprintf(err, err_len, "%s: cannot open: %s", f->path, strerror(errno)), -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return snprintf(err, err_len, "%s: not a regular file", f->path), -1;
    }
    if (st.st_size < 8) {
        close(fd);
        return snprintf(err, err_len, "%s: %lld bytes, shorter than the 8-byte header length",
                        f->path, (long long)st.st_size),
               -1;
    }
    f->map_len = (size_t)st.st_size;
    f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return snprintf(err, err_len, "%s: cannot map: %s", f->path, strerror(errno)), -1;
    }
    const uint8_t *b = f->map;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    if (n > HETRUN_SAFETENSORS_MAX_HEADER)
        return snprintf(err, err_len, "%s: header length %llu exceeds the %u MiB limit", f->path,
                        (unsigned long long)n, HETRUN_SAFETENSORS_MAX_HEADER >> 20),
               -1;
    if (n > f->map_len - 8)
        return snprintf(err, err_len,
                        "%s: header length %llu runs past the end of the file (%zu bytes)", f->path,
                        (unsigned long long)n, f->map_len),
               -1;
    f->header_len = n;
    f->data_len = f->map_len - 8 - n;
    return 0;
}

int hetrun_safetensors_open(const char *path, hetrun_safetensors *f, char *err, size_t err_len) {
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path) return snprintf(err, err_len, "%s: out of memory", path), -1;
    if (map_file(f, err, err_len) != 0) goto fail;
    const char *h = (const char *)f->map + 8;
    if (f->header_len == 0 || h[0] != '{') {
        snprintf(err, err_len, "%s: the header is not a JSON object (it must start with '{')",
                 f->path);
        goto fail;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, f->header_len, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        long at = end ? (long)(end - h) : (long)(cJSON_GetErrorPtr() - h);
        snprintf(err, err_len, "%s: header is not valid JSON near byte %ld of %llu", f->path,
                 at < 0 ? 0 : at, (unsigned long long)f->header_len);
        cJSON_Delete(root);
        goto fail;
    }
    /* Writers pad the header with spaces to align the data; nothing else may follow. */
    for (const char *p = end; p < h + f->header_len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            snprintf(err, err_len, "%s: bytes after the header's JSON object (byte %ld)", f->path,
                     (long)(p - h));
            cJSON_Delete(root);
            goto fail;
        }
    int rc = read_header(f, root, err, err_len);
    cJSON_Delete(root);
    if (rc == 0) return 0;
fail:
    hetrun_safetensors_close(f);
    return -1;
}

const hetrun_st_tensor *hetrun_safetensors_find(const hetrun_safetensors *f, const char *name) {
    hetrun_st_tensor key = {.name = name};
    return f->count ? bsearch(&key, f->tensors, f->count, sizeof key, cmp_name) : NULL;
}

const hetrun_st_tensor *hetrun_safetensors_expect(const hetrun_safetensors *f, const char *name,
                                                  int ndim, const int64_t *shape, char *err,
                                                  size_t err_len) {
    const hetrun_st_tensor *t = hetrun_safetensors_find(f, name);
    if (!t) return snprintf(err, err_len, "%s: no tensor '%s'", f->path, name), NULL;
    if (!t->readable) {
        snprintf(err, err_len, "%s: tensor '%s' has dtype %s; hetrun reads F32, F16 and BF16",
                 f->path, name, t->dtype);
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        hetrun_st_tensor want = {.ndim = ndim};
        for (int i = 0; i < ndim && i < HETRUN_SAFETENSORS_MAX_DIMS; i++)
            want.shape[i] = shape[i];
        char got_s[160], want_s[160];
        shape_str(t, got_s, sizeof got_s);
        shape_str(&want, want_s, sizeof want_s);
        snprintf(err, err_len, "%s: tensor '%s' has shape %s, the model config needs %s", f->path,
                 name, got_s, want_s);
        return NULL;
    }
    return t;
}

void hetrun_safetensors_to_f32(const hetrun_st_tensor *t, float *dst) {
    const uint8_t *src = t->data;
    if (t->type == HETRUN_F32) {
        memcpy(dst, src, t->elements * sizeof(float));
        return;
    }
    for (uint64_t i = 0; i < t->elements; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, sizeof h);
        dst[i] = t->type == HETRUN_BF16 ? hetrun_bf16_to_f32(h) : hetrun_f16_to_f32(h);
    }
}

void hetrun_safetensors_close(hetrun_safetensors *f) {
    if (f->map) munmap(f->map, f->map_len);
    free(f->tensors);
    free(f->names);
    free(f->path);
    memset(f, 0, sizeof *f);
}
